"""The pose HDF5 cache: one file layout for MPII person crops and for the synthetic set.

Why a cache: decoding a 1280x720 JPEG and cropping it costs more than a training step of a
small network, so ``hpo data prepare`` does it once and training reads fixed-size uint8
crops (``images`` chunked one row per chunk, so a random row is one contiguous read).
Layout (N rows, one per person; see INTERFACES.md):

    images (N,C,C,3) uint8 RGB   keypoints (N,J,2) float32 crop px   present, visible (N,J) uint8
    normalizer (N,) float32 crop px   transform (N,2,3) float32 crop px -> original px   is_val (N,) uint8
    attrs: source, crop_size C, content_size, joint_names

:class:`PoseArrays` is the in-memory form; ``PoseArrays.load(path, lazy=True)`` keeps the
images on disk and reads one row per access (for caches larger than memory), everything
else is always loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hourglass.data.mpii import JOINT_NAMES
from hourglass.errors import DataError

__all__ = ["PoseArrays", "CacheWriter", "H5Images", "write_cache", "CACHE_KEYS"]

# name -> (dtype in the file, shape after the row dimension; "J" = joints, "C" = crop size)
CACHE_KEYS: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "images": (np.uint8, ("C", "C", 3)),
    "keypoints": (np.float32, ("J", 2)),
    "present": (np.uint8, ("J",)),
    "visible": (np.uint8, ("J",)),
    "normalizer": (np.float32, ()),
    "transform": (np.float32, (2, 3)),
    "is_val": (np.uint8, ()),
}
_BOOL_KEYS = ("present", "visible", "is_val")
_REQUIRED_ATTRS = ("source", "crop_size", "content_size", "joint_names")


def _row_shape(key: str, crop_size: int, joints: int) -> tuple[int, ...]:
    sizes = {"C": crop_size, "J": joints}
    return tuple(sizes.get(d, d) for d in CACHE_KEYS[key][1])


def _plain(value: Any) -> Any:
    """h5py attribute values -> plain Python (str, int, float, list of str)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


class H5Images:
    """Rows of a cache's ``images`` dataset, read from disk on access.

    Picklable (DataLoader workers reopen the file in their own process: an HDF5 handle must
    not cross a fork), and sliceable by a row list without reading anything.
    """

    def __init__(self, path: str | Path, rows: np.ndarray, row_shape: tuple[int, ...]) -> None:
        self.path = str(path)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.shape = (len(self.rows), *row_shape)
        self.dtype = np.dtype(np.uint8)
        self._file: h5py.File | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> np.ndarray:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        try:
            return self._file["images"][int(self.rows[i])]
        except OSError as exc:
            raise DataError(f"{self.path}: cannot read images row {int(self.rows[i])} ({exc})") from None

    def take(self, rows: np.ndarray) -> H5Images:
        return H5Images(self.path, self.rows[rows], self.shape[1:])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": -1}


@dataclass(frozen=True)
class PoseArrays:
    """Every row of a pose cache as numpy arrays (bools as ``bool``), plus the file attrs.

    ``index`` is each row's position in the file, kept through :meth:`split` so that a
    prediction can always be traced back to its row (and, via ``transform``, its image).
    """

    images: np.ndarray | H5Images  # (N, C, C, 3) uint8 RGB
    keypoints: np.ndarray  # (N, J, 2) float32, crop px
    present: np.ndarray  # (N, J) bool
    visible: np.ndarray  # (N, J) bool
    normalizer: np.ndarray  # (N,) float32, PCKh unit in crop px
    transform: np.ndarray  # (N, 2, 3) float32, crop px -> original px
    is_val: np.ndarray  # (N,) bool
    attrs: dict[str, Any] = field(default_factory=dict)
    index: np.ndarray | None = None  # (N,) int64, row in the file; None = arange(N)

    def __post_init__(self) -> None:
        if self.index is None:
            object.__setattr__(self, "index", np.arange(len(self.keypoints), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def crop_size(self) -> int:
        return int(self.attrs["crop_size"])

    @property
    def content_size(self) -> int:
        return int(self.attrs["content_size"])

    @property
    def joints(self) -> int:
        return int(self.keypoints.shape[1])

    def take(self, rows: np.ndarray) -> PoseArrays:
        """A subset of rows (images stay lazy if they were)."""
        rows = np.asarray(rows, dtype=np.int64)
        images = self.images.take(rows) if isinstance(self.images, H5Images) else self.images[rows]
        return PoseArrays(
            images=images,
            keypoints=self.keypoints[rows],
            present=self.present[rows],
            visible=self.visible[rows],
            normalizer=self.normalizer[rows],
            transform=self.transform[rows],
            is_val=self.is_val[rows],
            attrs=dict(self.attrs),
            index=self.index[rows],
        )

    def split(self, name: str) -> PoseArrays:
        """The ``"train"`` rows (is_val False) or the ``"val"`` rows."""
        if name not in ("train", "val"):
            raise ValueError(f"split: expected 'train' or 'val', but got {name!r}")
        return self.take(np.flatnonzero(self.is_val if name == "val" else ~self.is_val))

    def arrays(self) -> dict[str, np.ndarray]:
        """The datasets as written to the file (images materialised if lazy)."""
        images = self.images
        if isinstance(images, H5Images):
            images = (
                np.stack([images[i] for i in range(len(images))])
                if len(images)
                else np.zeros(images.shape, np.uint8)
            )
        return {
            "images": images,
            "keypoints": self.keypoints,
            "present": self.present,
            "visible": self.visible,
            "normalizer": self.normalizer,
            "transform": self.transform,
            "is_val": self.is_val,
        }

    def save(self, path: str | Path) -> Path:
        return write_cache(path, self.arrays(), **self.attrs)

    @classmethod
    def load(cls, path: str | Path, lazy: bool = False) -> PoseArrays:
        """Read a cache file; any problem with it is one :class:`DataError` naming the file."""
        path = Path(path)
        if not path.is_file():
            raise DataError(
                f"{path}: pose cache not found (make one with `hpo data prepare` or `hpo data synth`)"
            )
        try:
            with h5py.File(path, "r") as f:
                return cls._read(f, path, lazy)
        except OSError as exc:
            reason = " ".join(str(exc).split())
            raise DataError(f"{path}: not a readable pose cache HDF5 file ({reason})") from None

    @classmethod
    def _read(cls, f: h5py.File, path: Path, lazy: bool) -> PoseArrays:
        missing = [k for k in CACHE_KEYS if k not in f]
        if missing:
            raise DataError(
                f"{path}: missing dataset {missing[0]!r} (a pose cache has {', '.join(CACHE_KEYS)})"
            )
        missing = [a for a in _REQUIRED_ATTRS if a not in f.attrs]
        if missing:
            raise DataError(
                f"{path}: missing attribute {missing[0]!r} (a pose cache has {', '.join(_REQUIRED_ATTRS)})"
            )
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
        n, crop = len(f["keypoints"]), int(attrs["crop_size"])
        joints = f["keypoints"].shape[1] if f["keypoints"].ndim == 3 else -1
        for key in CACHE_KEYS:
            want = (n, *_row_shape(key, crop, joints))
            if f[key].shape != want:
                raise DataError(f"{path}: dataset {key!r} expected shape {want}, but got {f[key].shape}")
        data: dict[str, Any] = {}
        for key, (dtype, _) in CACHE_KEYS.items():
            if key == "images" and lazy:
                data[key] = H5Images(path, np.arange(n), _row_shape(key, crop, joints))
                continue
            arr = f[key][...].astype(dtype, copy=False)
            data[key] = arr.astype(bool) if key in _BOOL_KEYS else arr
        return cls(**data, attrs=attrs)


class CacheWriter:
    """Streams rows into a new cache file, so a cache larger than memory can be built.

    Writes to ``<path>.partial`` and renames on a clean close: an interrupted
    ``hpo data prepare`` never leaves a file that looks complete.
    """

    def __init__(self, path: str | Path, capacity: int, crop_size: int, joints: int, **attrs: Any) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        self._file = h5py.File(self._tmp, "w")
        cap = max(int(capacity), 1)
        for key, (dtype, _) in CACHE_KEYS.items():
            shape = _row_shape(key, crop_size, joints)
            chunks = (1, *shape) if key == "images" else None
            self._file.create_dataset(
                key, shape=(cap, *shape), maxshape=(None, *shape), dtype=dtype, chunks=chunks or True
            )
        attrs = {"crop_size": int(crop_size), **attrs}
        for k, v in attrs.items():
            self._file.attrs[k] = list(v) if isinstance(v, tuple) else v

    def append(self, rows: dict[str, np.ndarray]) -> None:
        """Append a batch of rows: ``rows[key]`` has a leading row dimension for every key."""
        m = len(rows["keypoints"])
        end = self.rows + m
        for key, (dtype, _) in CACHE_KEYS.items():
            ds = self._file[key]
            if end > ds.shape[0]:
                ds.resize(max(end, 2 * ds.shape[0]), axis=0)
            ds[self.rows : end] = np.asarray(rows[key]).astype(dtype, copy=False)
        self.rows = end

    def close(self) -> Path:
        for key in CACHE_KEYS:
            self._file[key].resize(self.rows, axis=0)
        self._file.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_cache(path: str | Path, arrays: dict[str, np.ndarray], **attrs: Any) -> Path:
    """Write a whole cache at once (``arrays`` holds every key of :data:`CACHE_KEYS`).

    ``attrs`` must give ``source`` and ``content_size``; ``crop_size`` is taken from the
    images and ``joint_names`` defaults to the 16 MPII joints.
    """
    missing = [k for k in CACHE_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"arrays: missing {missing[0]!r} (need {', '.join(CACHE_KEYS)})")
    images = np.asarray(arrays["images"])
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != 3:
        raise ValueError(f"images: expected (N, C, C, 3), but got {images.shape}")
    attrs = dict(attrs)
    attrs.pop("crop_size", None)
    if "joint_names" not in attrs:
        attrs["joint_names"] = list(JOINT_NAMES)
    joints = np.asarray(arrays["keypoints"]).shape[1]
    with CacheWriter(path, len(images), images.shape[1], joints, **attrs) as writer:
        writer.append({k: arrays[k] for k in CACHE_KEYS})
    return Path(path)
