"""How fast one loader worker turns rows into training samples: HDF5 cache vs JPEG per sample.

Both paths do the same augmentation, normalisation and heatmap rendering (one affine warp
each); they differ only in where the pixels come from:

- ``hdf5``: one uint8 crop row read from the cache file (lazy, chunk = one row), as a
  DataLoader worker does for a cache larger than memory;
- ``memory``: the crop already in memory (``PoseArrays.load``), the upper bound;
- ``jpeg``: ``cv2.imread`` of a full-size photo, then the SAME single warp straight from the
  original to the input (the crop box folded into the matrix). The photos are the cached
  crops scaled up to ``jpeg_size`` (default 1280x720, MPII's most common size) with mild
  noise, saved at JPEG quality 95, so decoding costs what an MPII image costs.

Timing is single-process with one torch thread: the figures are images/s per worker.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from hourglass.data.augment import AugmentConfig, PoseAugmenter, invert_affine
from hourglass.data.cache import PoseArrays
from hourglass.data.dataset import PoseDataset, make_sample
from hourglass.data.synthetic import make_synthetic

__all__ = ["benchmark_loader"]

_WARMUP = 3


def _rate(fn: Any, n: int) -> float:
    for i in range(min(_WARMUP, n)):
        fn(i)
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def _all_train(arrays: PoseArrays) -> PoseArrays:
    return dataclasses.replace(arrays, is_val=np.zeros(len(arrays), dtype=bool))


def _write_photos(
    arrays: PoseArrays, folder: Path, size: tuple[int, int], seed: int
) -> tuple[list[Path], np.ndarray]:
    """Each crop scaled up to a ``size`` (w, h) photo; returns paths and photo px -> crop px."""
    w, h = size
    c = arrays.crop_size
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(len(arrays)):
        photo = cv2.resize(np.asarray(arrays.images[i]), (w, h), interpolation=cv2.INTER_LINEAR)
        photo = np.clip(photo + rng.normal(0, 6, photo.shape), 0, 255).astype(np.uint8)
        paths.append(folder / f"{i:06d}.jpg")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    sx, sy = c / w, c / h  # pixel centres at integers on both sides
    to_crop = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
    return paths, to_crop


def benchmark_loader(
    cache: str | Path | None = None,
    n: int = 200,
    input_size: int | None = None,
    augment: AugmentConfig | None = AugmentConfig(),
    sigma: float = 1.0,
    jpeg_size: tuple[int, int] = (1280, 720),
    seed: int = 0,
) -> dict[str, Any]:
    """Samples/s of one worker from the cache (``hdf5``, ``memory``) and from JPEGs (``jpeg``).

    cache: a pose cache .h5; ``None`` benchmarks ``n`` synthetic 256x256 crops (written to a
    temporary cache). Uses the first ``n`` rows. ``input_size`` defaults to the content size.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
            folder = Path(tmp)
            if cache is None:
                path = make_synthetic(max(n, 1), 256, seed).save(folder / "synthetic.h5")
            else:
                path = Path(cache)
            lazy = PoseArrays.load(path, lazy=True)
            rows = np.arange(min(n, len(lazy)))
            lazy = _all_train(lazy.take(rows))
            memory = _all_train(PoseArrays.load(path).take(rows))
            size = input_size or lazy.content_size
            count = len(rows)

            rates = {}
            for name, arrays in (("hdf5", lazy), ("memory", memory)):
                ds = PoseDataset(arrays, "train", size, sigma=sigma, augment=augment, seed=seed)
                rates[name] = _rate(ds.__getitem__, count)

            photos, photo_to_crop = _write_photos(memory, folder, jpeg_size, seed)
            crop_to_photo = invert_affine(photo_to_crop)
            augmenter = PoseAugmenter(augment, memory.crop_size, memory.content_size, size, seed=seed)
            heatmap_size = size // 4

            def from_jpeg(i: int) -> dict[str, torch.Tensor]:
                photo = cv2.cvtColor(cv2.imread(str(photos[i]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                kp = memory.keypoints[i] @ crop_to_photo[:, :2].T + crop_to_photo[:, 2]
                out = augmenter(photo, kp.astype(np.float32), memory.present[i], pre=photo_to_crop)
                return make_sample(out, float(memory.normalizer[i]), i, heatmap_size, sigma)

            rates["jpeg"] = _rate(from_jpeg, count)
    finally:
        torch.set_num_threads(threads)
    return {
        "cache": str(cache) if cache is not None else "synthetic (temporary)",
        "rows": count,
        "crop_size": memory.crop_size,
        "input_size": size,
        "augment": augment is not None,
        "jpeg_size": list(jpeg_size),
        "hdf5_img_s": rates["hdf5"],
        "memory_img_s": rates["memory"],
        "jpeg_img_s": rates["jpeg"],
        "hdf5_vs_jpeg": rates["hdf5"] / rates["jpeg"],
    }
