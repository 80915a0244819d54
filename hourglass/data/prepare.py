"""``hpo data prepare``: MPII images + annotations -> the pose HDF5 crop cache.

Crop geometry is the reference stacked-hourglass code's (Newell's ``crop`` and bearpaw's
``pytorch-pose``): the person box is centred on ``objpos`` moved DOWN by ``15 x scale`` px
("so the feet stay in"), with side ``200 x scale x 1.25`` px (MPII scale = person height /
200 px, plus 25% context). That box becomes the central ``content_size`` px of the crop; a
margin of ``margin x content_size`` px on each side keeps real image content available for
rotation/scale augmentation (the reference pads with black instead). No rotation here: the
crop is axis-aligned, and ``transform`` maps crop px back to original px exactly.

PCKh unit: the JSON has no head boxes. ``--head-normalizers valid.h5`` takes the exact
0.6 x head-box diagonal for the persons it lists (matched by image and centre); everyone
else gets the estimate ``25 x scale`` px, which is exact, not approximate, for MPII: the
dataset's scale was derived from the head box, and on all 2,958 validation persons
0.6 x head-box diagonal / scale_provided = 25.000 (deviation < 1e-6). In crop px that is
always ``content_size / 10``.

Images are read once per person run (persons of an image are consecutive in every MPII
file), one at a time; rows stay in annotation order. A missing or unreadable image skips
its persons, is counted and reported, and never stops the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hourglass.data.augment import compose_affine, invert_affine, warp_affine
from hourglass.data.cache import CacheWriter
from hourglass.data.mpii import JOINT_NAMES, PoseAnnotations, read_annotations
from hourglass.errors import DataError

__all__ = [
    "prepare_mpii",
    "PrepareReport",
    "mpii_box",
    "original_to_crop_matrix",
    "find_annotations",
    "NORMALIZER_PER_SCALE",
]

NORMALIZER_PER_SCALE = 25.0  # MPII: 0.6 x head-box diagonal = 25 x scale (exact on the validation split)
_BOX_PER_SCALE = 200 * 1.25
_CENTRE_SHIFT_PER_SCALE = 15.0
_ANNOTATION_NAMES = (
    "mpii_annotations.json.gz",
    "mpii_annotations.json",
    "annot/mpii_annotations.json.gz",
    "annot/mpii_annotations.json",
)


@dataclass(frozen=True)
class PrepareReport:
    out: Path
    rows: int  # persons written
    persons: int  # persons asked for
    images_read: int
    missing_images: int  # images that could not be read (their persons are skipped)
    missing_examples: tuple[str, ...] = field(default=())
    head_normalizers: int = 0  # persons whose PCKh unit came from a head box, not 25 x scale
    seconds: float = 0.0


def mpii_box(center: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference crop box: centre ``objpos + (0, 15 scale)``, side ``250 scale`` (both px)."""
    center = np.asarray(center, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    box_center = center + np.stack([np.zeros_like(scale), _CENTRE_SHIFT_PER_SCALE * scale], axis=-1)
    return box_center, _BOX_PER_SCALE * scale


def original_to_crop_matrix(
    box_center: np.ndarray, box_side: float, crop_size: int, content_size: int
) -> np.ndarray:
    """2x3 affine original px -> crop px: the box fills the central ``content_size`` px."""
    k = content_size / float(box_side)
    c = (crop_size - 1) / 2
    return np.array([[k, 0.0, c - k * box_center[0]], [0.0, k, c - k * box_center[1]]])


def find_annotations(mpii_dir: Path) -> Path:
    for name in _ANNOTATION_NAMES:
        if (mpii_dir / name).is_file():
            return mpii_dir / name
    raise DataError(
        f"{mpii_dir}: no MPII annotations found (looked for {', '.join(_ANNOTATION_NAMES)}); "
        "pass --annotations FILE"
    )


def _crop(image: np.ndarray, matrix: np.ndarray, crop_size: int) -> np.ndarray:
    """Warp the part of ``image`` under the crop (only that part is resampled or shrunk)."""
    inv = invert_affine(matrix)
    corners = np.array([[0, 0], [crop_size - 1, crop_size - 1]]) @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.maximum(np.floor(corners[0]).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(corners[1]).astype(int) + 2, [image.shape[1], image.shape[0]])
    if x1 <= x0 or y1 <= y0:  # the box lies entirely outside the image
        return np.zeros((crop_size, crop_size, image.shape[2]), dtype=image.dtype)
    roi_to_image = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])
    return warp_affine(image[y0:y1, x0:x1], compose_affine(matrix, roi_to_image), crop_size)


def _head_normalizers(ann: PoseAnnotations, source: Path) -> np.ndarray:
    """Per annotation row, 0.6 x head-box diagonal from ``source`` (NaN where not listed there)."""
    ref = read_annotations(source)
    by_image: dict[str, list[int]] = {}
    for i, name in enumerate(ref.image):
        by_image.setdefault(str(name), []).append(i)
    out = np.full(len(ann), np.nan)
    for r in range(len(ann)):
        rows = by_image.get(str(ann.image[r]), [])
        if not rows:
            continue
        dist = np.linalg.norm(ref.center[rows] - ann.center[r], axis=1)
        best = int(np.argmin(dist))
        if dist[best] <= 2.0 and np.isfinite(ref.normalizer[rows[best]]):
            out[r] = ref.normalizer[rows[best]]
    return out


def prepare_mpii(
    mpii_dir: str | Path,
    out: str | Path,
    *,
    annotations: str | Path | None = None,
    content_size: int = 256,
    margin: float = 0.125,
    head_normalizers: str | Path | None = None,
    split: str = "all",
    limit: int | None = None,
    progress: bool = True,
) -> PrepareReport:
    """Build the crop cache ``out`` from ``mpii_dir/images`` and the annotations (see module doc)."""
    start = time.perf_counter()
    mpii_dir = Path(mpii_dir)
    if not mpii_dir.is_dir():
        raise DataError(
            f"{mpii_dir}: no such directory (expected the MPII folder holding images/ and the annotations)"
        )
    images_dir = mpii_dir / "images"
    if not images_dir.is_dir():
        raise DataError(f"{mpii_dir}: no images/ folder in it (expected {images_dir} with the MPII JPEGs)")
    if split not in ("all", "train", "val"):
        raise DataError(f"split: expected one of 'all', 'train', 'val', but got {split!r}")
    if content_size < 16 or not 0 <= margin <= 1:
        raise DataError(
            f"crop: expected size >= 16 and margin in [0, 1], but got size={content_size}, margin={margin}"
        )
    ann_path = Path(annotations) if annotations is not None else find_annotations(mpii_dir)
    ann = read_annotations(ann_path)
    if split != "all":
        ann = ann.subset(ann.is_val if split == "val" else ~ann.is_val)
    if limit is not None:
        ann = ann.subset(np.arange(min(limit, len(ann))))
    if not np.isfinite(ann.center).all() or not (ann.scale > 0).all():
        raise DataError(
            f"{ann_path}: every person needs objpos and scale to be cropped (this file lacks some)"
        )
    crop_size = content_size + 2 * int(round(margin * content_size))
    box_center, box_side = mpii_box(ann.center, ann.scale)
    head = np.where(np.isfinite(ann.normalizer), ann.normalizer, np.nan)
    if head_normalizers is not None:
        matched = _head_normalizers(ann, Path(head_normalizers))
        head = np.where(np.isfinite(matched), matched, head)
    n_head = int(np.isfinite(head).sum())
    normalizer_orig = np.where(np.isfinite(head), head, NORMALIZER_PER_SCALE * ann.scale)

    runs = np.flatnonzero(np.r_[True, ann.image[1:] != ann.image[:-1]])
    bounds = list(zip(runs, np.r_[runs[1:], len(ann)]))
    missing: list[str] = []
    attrs = {
        "source": "mpii",
        "content_size": content_size,
        "joint_names": list(JOINT_NAMES),
        "annotations": str(ann_path),
        "margin": margin,
        "box": "objpos + (0, 15 scale), side 250 scale (reference stacked-hourglass crop)",
    }
    with CacheWriter(out, len(ann), crop_size, len(JOINT_NAMES), **attrs) as writer:
        for lo, hi in tqdm(bounds, desc="crops", unit="img", disable=not progress):
            name = str(ann.image[lo])
            file = images_dir / name
            image = cv2.imread(str(file), cv2.IMREAD_COLOR) if file.is_file() else None
            if image is None:
                missing.append(name)
                continue
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            rows: dict[str, list[np.ndarray]] = {
                k: [] for k in ("images", "keypoints", "normalizer", "transform")
            }
            for r in range(lo, hi):
                m = original_to_crop_matrix(box_center[r], box_side[r], crop_size, content_size)
                rows["images"].append(_crop(image, m, crop_size))
                kp = ann.joints[r] @ m[:, :2].T + m[:, 2]
                rows["keypoints"].append(np.where(ann.present[r][:, None], kp, 0.0))
                rows["normalizer"].append(normalizer_orig[r] * m[0, 0])
                rows["transform"].append(invert_affine(m))
            writer.append(
                {
                    **{k: np.stack(v) for k, v in rows.items()},
                    "present": ann.present[lo:hi],
                    "visible": ann.visible[lo:hi],
                    "is_val": ann.is_val[lo:hi],
                }
            )
        written = writer.rows
        if written == 0 and bounds:
            raise DataError(
                f"{images_dir}: none of the {len(bounds)} annotated images could be read "
                f"(first: {missing[0]}); is --mpii-dir the MPII folder?"
            )
    return PrepareReport(
        out=Path(out),
        rows=written,
        persons=len(ann),
        images_read=len(bounds) - len(missing),
        missing_images=len(missing),
        missing_examples=tuple(missing[:5]),
        head_normalizers=n_head,
        seconds=time.perf_counter() - start,
    )
