"""``PoseDataset``: cache rows -> (normalised image, heatmap targets, joint mask, inverse map).

Everything a training step or a PCKh evaluation needs comes out of one ``__getitem__``:
keypoints and the PCKh normalizer in input pixels (so scoring needs no extra geometry),
``to_crop`` to take predictions back to crop and then (via the cache's ``transform``)
original-image pixels, and ``index`` to find the row again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from hourglass.data.augment import AugmentConfig, Augmented, PoseAugmenter
from hourglass.data.cache import PoseArrays
from hourglass.data.heatmaps import input_to_heatmap, render_heatmaps
from hourglass.errors import ConfigError, DataError

__all__ = ["PoseDataset", "load_pose_data", "make_sample", "IMAGE_MEAN", "IMAGE_STD", "STRIDE"]

# ImageNet statistics: a fixed, documented normalisation that does not depend on the data set
IMAGE_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGE_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_MEAN = torch.from_numpy(IMAGE_MEAN)[:, None, None]  # (3, 1, 1)
_STD = torch.from_numpy(IMAGE_STD)[:, None, None]
STRIDE = 4  # input px per heatmap px (the stem downsamples 4x)


def _stream_seed(*parts: int) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little")


class PoseDataset(Dataset):
    """The ``split`` rows of ``arrays`` as training/evaluation samples at ``input_size``.

    Augmentation randomness is reproducible: with ``num_workers=0`` it is one stream per
    epoch, seeded by ``seed`` and the epoch (:meth:`set_epoch`); in a DataLoader worker the
    stream is reseeded from ``seed`` and the worker's torch seed, which differs per worker
    and per epoch (and follows ``torch.manual_seed``), so workers never repeat each other's
    augmentations.
    """

    def __init__(
        self,
        arrays: PoseArrays,
        split: str,
        input_size: int,
        sigma: float = 1.0,
        augment: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        if input_size < STRIDE or input_size % STRIDE:
            raise ConfigError(f"input_size: expected a positive multiple of {STRIDE}, but got {input_size!r}")
        if not sigma > 0:
            raise ConfigError(f"sigma: expected a number > 0, but got {sigma!r}")
        self.rows = arrays.split(split)
        self.split = split
        self.input_size = input_size
        self.heatmap_size = input_size // STRIDE
        self.sigma = float(sigma)
        self.seed = seed
        self.augmenter = PoseAugmenter(augment, arrays.crop_size, arrays.content_size, input_size, seed=seed)
        self.epoch = 0
        self._stream: int | None = None

    def set_epoch(self, epoch: int) -> None:
        """Give every epoch its own augmentation stream, so that a run resumed from a
        checkpoint at epoch k augments exactly as the uninterrupted run did."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def _sync_stream(self) -> None:
        info = torch.utils.data.get_worker_info()
        stream = _stream_seed(self.seed, self.epoch) if info is None else _stream_seed(self.seed, info.seed)
        if stream != self._stream:
            self.augmenter.reseed(stream)
            self._stream = stream

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        self._sync_stream()
        r = self.rows
        out = self.augmenter(r.images[i], r.keypoints[i], r.present[i])
        return make_sample(out, float(r.normalizer[i]), int(r.index[i]), self.heatmap_size, self.sigma)


def make_sample(
    out: Augmented, normalizer: float, index: int, heatmap_size: int, sigma: float
) -> dict[str, torch.Tensor]:
    """An augmented crop -> the sample dict (normalised image, heatmaps, masks, geometry)."""
    image = torch.from_numpy(out.image).permute(2, 0, 1).contiguous().float()  # (3, S, S), 0-255
    image = image.div_(255.0).sub_(_MEAN).div_(_STD)
    hm_xy = input_to_heatmap(torch.from_numpy(out.keypoints), STRIDE)  # (J, 2)
    present = torch.from_numpy(out.present)  # (J,)
    heatmaps = render_heatmaps(hm_xy[None], present[None], heatmap_size, sigma)[0]  # (J, H, W)
    return {
        "image": image,
        "heatmaps": heatmaps,
        "present": present,
        "keypoints": torch.from_numpy(out.keypoints),
        "normalizer": torch.tensor(normalizer * out.scale, dtype=torch.float32),
        "index": torch.tensor(index, dtype=torch.int64),
        "to_crop": torch.from_numpy(out.to_crop),
    }


def load_pose_data(spec: str | Path) -> PoseArrays:
    """``"synthetic:N[:size[:seed]]"`` (generated in memory) or the path of a pose cache .h5."""
    text = str(spec)
    if text.startswith("synthetic"):
        from hourglass.data.synthetic import make_synthetic

        parts = text.split(":")[1:]
        expected = "'synthetic:N[:size[:seed]]' with integers, e.g. 'synthetic:2000:64:0'"
        if not 1 <= len(parts) <= 3 or not all(p.strip().lstrip("-").isdigit() for p in parts):
            raise ConfigError(f"data: expected {expected}, but got {text!r}")
        defaults = (None, 64, 0)  # N is required; size 64, seed 0
        n, size, seed = [int(p) for p in parts] + list(defaults[len(parts) :])
        if n < 2 or size < 16:
            raise ConfigError(f"data: expected N >= 2 and size >= 16 in {expected}, but got {text!r}")
        return make_synthetic(n, size, seed)
    path = Path(text)
    if path.suffix.lower() not in (".h5", ".hdf5"):
        raise DataError(f"{path}: expected a pose cache .h5 file or 'synthetic:N[:size[:seed]]'")
    return PoseArrays.load(path)
