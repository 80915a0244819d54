"""MPII Human Pose annotations, read from any of the four formats in circulation, as one table.

The stacked-hourglass community passes MPII around as a community JSON (all 25,204 persons,
no head boxes), the reference ``valid.h5`` (the 2,958 validation persons, with the PCKh unit),
Tompson's ``detections_our_format.mat`` (the published evaluation's ground truth) and the
official MATLAB release. Every reader returns the same :class:`PoseAnnotations`, one row per
person, so the cache builder and the PCKh evaluator never care which file they were given.

Coordinates are kept exactly as stored: all four formats derive from the official release
and share its (MATLAB) pixel coordinates, so predictions scored against any of them agree.
Any unreadable, truncated or unexpectedly laid out file raises a one-line :class:`DataError`
that names the file.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from hourglass.errors import DataError

__all__ = [
    "JOINT_NAMES",
    "FLIP_PAIRS",
    "flip_order",
    "HEAD_SIZE_FACTOR",
    "PoseAnnotations",
    "read_annotations",
    "read_json",
    "read_h5",
    "read_detections_mat",
    "read_release_mat",
    "tompson_val_pairs",
    "read_predictions",
    "write_predictions",
]

JOINT_NAMES = (
    "r_ankle",
    "r_knee",
    "r_hip",
    "l_hip",
    "l_knee",
    "l_ankle",
    "pelvis",
    "thorax",
    "upper_neck",
    "head_top",
    "r_wrist",
    "r_elbow",
    "r_shoulder",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
)
FLIP_PAIRS = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))  # left/right swap under horizontal flip
HEAD_SIZE_FACTOR = 0.6  # PCKh unit = 0.6 x head-box diagonal (SC_BIAS of the published evaluation)
NUM_JOINTS = len(JOINT_NAMES)


def flip_order(joints: int, pairs: tuple[tuple[int, int], ...] = FLIP_PAIRS) -> tuple[int, ...]:
    """Joint ids after a horizontal flip: left and right partners exchange slots (the one
    flip permutation; augmentation, GPU batches and flip-test evaluation all use it)."""
    order = list(range(joints))
    for a, b in pairs:
        order[a], order[b] = b, a
    return tuple(order)


# valid.h5 stores the reference training code's crop adjustment (measured against the JSON:
# scale x 1.25 and centre moved down by 15 x scale px, "so cropping keeps the feet"); undone
# on read so that ``center``/``scale`` mean objpos / MPII scale in every format.
_H5_SCALE_FACTOR = 1.25
_H5_CENTER_SHIFT = 15.0

# What a reader may hit on a damaged file: h5py/gzip raise OSError, zlib.error or EOFError,
# loadmat raises MatReadError/ValueError/TypeError, json raises ValueError.
_READ_ERRORS = (
    OSError,
    EOFError,
    zlib.error,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    MatReadError,
    NotImplementedError,
    UnicodeDecodeError,
)


@dataclass(frozen=True)
class PoseAnnotations:
    """One row per annotated person, in the file's order (see each reader for what it fills)."""

    image: np.ndarray  # (N,) str, image file name
    center: np.ndarray  # (N,2) float32, person centre (objpos) in pixels; NaN if unknown
    scale: np.ndarray  # (N,) float32, person height / 200 px; NaN if unknown
    joints: np.ndarray  # (N,16,2) float32, pixels in the original image, as stored; 0 where missing
    present: np.ndarray  # (N,16) bool, joint annotated (missing joints: excluded from loss and PCKh)
    visible: np.ndarray  # (N,16) bool, annotated and not occluded
    normalizer: np.ndarray  # (N,) float32, PCKh unit = 0.6 x head-box diagonal; NaN without head boxes
    is_val: np.ndarray  # (N,) bool, Tompson validation split
    source: str  # path it was read from

    def __post_init__(self) -> None:
        n = len(self.image)
        shapes = {
            "center": (n, 2),
            "scale": (n,),
            "joints": (n, NUM_JOINTS, 2),
            "present": (n, NUM_JOINTS),
            "visible": (n, NUM_JOINTS),
            "normalizer": (n,),
            "is_val": (n,),
        }
        for name, shape in shapes.items():
            got = np.shape(getattr(self, name))
            if got != shape:
                raise DataError(f"{self.source}: {name}: expected shape {shape}, but got {got}")

    def __len__(self) -> int:
        return len(self.image)

    def subset(self, rows: np.ndarray) -> PoseAnnotations:
        """The persons selected by a boolean mask or an index array, in that order."""
        pick = {
            name: getattr(self, name)[rows]
            for name in ("image", "center", "scale", "joints", "present", "visible", "normalizer", "is_val")
        }
        return PoseAnnotations(**pick, source=self.source)


def _make(source: Path, n: int, **arrays: Any) -> PoseAnnotations:
    """Build with the contract's dtypes; fields a format lacks default to unknown (NaN/False/'')."""
    nan = np.full(n, np.nan, np.float32)
    joints = np.asarray(arrays["joints"], np.float32).reshape(n, NUM_JOINTS, 2)
    present = np.asarray(arrays["present"], bool).reshape(n, NUM_JOINTS)
    return PoseAnnotations(
        image=np.asarray(arrays.get("image", [""] * n), dtype=str).reshape(n),
        center=np.asarray(arrays.get("center", np.full((n, 2), np.nan)), np.float32).reshape(n, 2),
        scale=np.asarray(arrays.get("scale", nan), np.float32).reshape(n),
        joints=np.where(present[..., None], joints, 0.0).astype(np.float32),
        present=present,
        visible=np.asarray(arrays.get("visible", np.zeros((n, NUM_JOINTS))), bool).reshape(n, NUM_JOINTS)
        & present,
        normalizer=np.asarray(arrays.get("normalizer", nan), np.float32).reshape(n),
        is_val=np.asarray(arrays["is_val"], bool).reshape(n),
        source=str(source),
    )


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: expected a file, but it is a directory")
    return path


@contextlib.contextmanager
def _reading(path: Path, expected: str) -> Iterator[None]:
    """Turn whatever a damaged file makes the parser raise into one DataError naming the file."""
    try:
        yield
    except _READ_ERRORS as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise DataError(f"{path}: cannot read it as {expected} ({detail})") from None


def _load_json(path: Path) -> Any:
    """JSON, gzipped or not (told by the gzip magic bytes, not the suffix)."""
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _check_shape(path: Path, name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> np.ndarray:
    ok = array.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, array.shape))
    if not ok:
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise DataError(f"{path}: {name}: expected shape {want}, but got {array.shape}")
    return array


def read_annotations(
    path: str | Path, *, val_pairs: Iterable[tuple[int, int]] | None = None
) -> PoseAnnotations:
    """Read any supported MPII annotation file, chosen by suffix (and, for .mat, by content).

    ``val_pairs`` marks Tompson's validation persons in the official release (see
    :func:`read_release_mat`); the other formats carry their split themselves.
    """
    path = _existing(path)
    name = path.name.lower()
    if name.endswith((".json", ".json.gz")):
        reader = read_json
    elif name.endswith((".h5", ".hdf5")):
        reader = read_h5
    elif name.endswith(".mat"):
        with _reading(path, "a MATLAB .mat file"):
            variables = {v[0] for v in scipy.io.whosmat(path)}
        if "RELEASE" in variables:
            return read_release_mat(path, val_pairs=val_pairs)
        if "pos_gt_src" not in variables:
            raise DataError(
                f"{path}: expected the MPII release (variable RELEASE) or Tompson's detections "
                f"(pos_gt_src, jnt_missing, headboxes_src), but got variables {sorted(variables)}"
            )
        reader = read_detections_mat
    else:
        raise DataError(f"{path}: unknown annotation format; expected .json, .json.gz, .h5 or .mat")
    if val_pairs is not None:
        raise DataError(
            f"{path}: a validation split list applies only to the official release .mat; "
            "this file marks its own split"
        )
    return reader(path)


def read_json(path: str | Path) -> PoseAnnotations:
    """The community JSON (``mpii_annotations.json[.gz]``): every single-person annotation.

    Missing joints are stored as (0, 0) with visibility 0 (all 27,001 such entries in the
    shipped file); negative or zero-on-one-axis coordinates are real joints just outside the
    frame (visibility 1) and stay present. There are no head boxes: normalizer is NaN.
    """
    path = _existing(path)
    with _reading(path, "MPII JSON annotations"):
        entries = _load_json(path)
    keys = ("img_paths", "objpos", "scale_provided", "joint_self", "isValidation")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise DataError(
            f"{path}: expected a non-empty JSON list of person records, but got {type(entries).__name__}"
        )
    absent = [k for k in keys if k not in entries[0]]
    if absent:
        raise DataError(f"{path}: missing key {absent[0]!r}; expected records with {', '.join(keys)}")
    with _reading(path, "MPII JSON annotations"):
        joint_self = np.asarray([e["joint_self"] for e in entries], np.float64)
        center = np.asarray([e["objpos"] for e in entries], np.float64)
        scale = np.asarray([e["scale_provided"] for e in entries], np.float64)
        is_val = np.asarray([e["isValidation"] for e in entries], np.float64) > 0
        image = [str(e["img_paths"]) for e in entries]
    _check_shape(path, "joint_self", joint_self, (None, NUM_JOINTS, 3))
    _check_shape(path, "objpos", center, (None, 2))
    xy = joint_self[..., :2]
    present = ~((xy[..., 0] == 0) & (xy[..., 1] == 0))
    return _make(
        path,
        len(entries),
        image=image,
        center=center,
        scale=scale,
        joints=xy,
        present=present,
        visible=joint_self[..., 2] > 0,
        is_val=is_val,
    )


def read_h5(path: str | Path) -> PoseAnnotations:
    """The reference ``valid.h5``: the validation persons with the PCKh unit (``normalize``).

    Missing joints are (0, 0). ``center``/``scale`` are stored with the reference code's crop
    adjustment, which is undone here (objpos and MPII scale, as in the other formats).
    """
    path = _existing(path)
    keys = ("imgname", "center", "scale", "part", "visible", "normalize")
    with _reading(path, "an MPII HDF5 annotation file"), h5py.File(path, "r") as f:
        absent = [k for k in keys if k not in f]
        if absent:
            raise DataError(f"{path}: missing dataset {absent[0]!r}; expected {', '.join(keys)}")
        data = {k: np.asarray(f[k][()]) for k in keys}
    n = len(data["imgname"])
    part = _check_shape(path, "part", data["part"].astype(np.float64), (n, NUM_JOINTS, 2))
    center = _check_shape(path, "center", data["center"].astype(np.float64), (n, 2))
    _check_shape(path, "visible", data["visible"], (n, NUM_JOINTS))
    _check_shape(path, "normalize", data["normalize"], (n,))
    scale = _check_shape(path, "scale", data["scale"].astype(np.float64), (n,)) / _H5_SCALE_FACTOR
    center = center - np.stack([np.zeros_like(scale), _H5_CENTER_SHIFT * scale], axis=1)
    names = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in data["imgname"]]
    return _make(
        path,
        n,
        image=names,
        center=center,
        scale=scale,
        joints=part,
        present=~(part == 0).all(-1),
        visible=np.asarray(data["visible"]) > 0,
        normalizer=data["normalize"],
        is_val=np.ones(n, bool),
    )


def read_detections_mat(path: str | Path) -> PoseAnnotations:
    """Tompson's ``detections_our_format.mat``, the ground truth of the published evaluation.

    Holds only joints, missing flags and head boxes: image names are '', centre/scale NaN,
    visible False (no flags in the format). normalizer = 0.6 x head-box diagonal.
    """
    path = _existing(path)
    with _reading(path, "Tompson's detections .mat"):
        mat = scipy.io.loadmat(path, variable_names=("pos_gt_src", "jnt_missing", "headboxes_src"))
    absent = [k for k in ("pos_gt_src", "jnt_missing", "headboxes_src") if k not in mat]
    if absent:
        raise DataError(
            f"{path}: missing variable {absent[0]!r}; expected pos_gt_src, jnt_missing, headboxes_src"
        )
    gt = _check_shape(path, "pos_gt_src", np.asarray(mat["pos_gt_src"], np.float64), (NUM_JOINTS, 2, None))
    n = gt.shape[2]
    missing = _check_shape(path, "jnt_missing", np.asarray(mat["jnt_missing"]), (NUM_JOINTS, n))
    boxes = _check_shape(path, "headboxes_src", np.asarray(mat["headboxes_src"], np.float64), (2, 2, n))
    normalizer = HEAD_SIZE_FACTOR * np.linalg.norm(boxes[1] - boxes[0], axis=0)
    return _make(
        path,
        n,
        joints=gt.transpose(2, 0, 1),
        present=missing.T == 0,
        normalizer=normalizer,
        is_val=np.ones(n, bool),
    )


# --- the official MATLAB release -------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    """A MATLAB struct array / cell / scalar as a list (loadmat squeezes 1-element arrays away)."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    return [value]


def _number(value: Any) -> float | None:
    """A MATLAB scalar (number, '1' char, 1x1 array) or None when the field is empty/absent."""
    if value is None or (isinstance(value, np.ndarray) and value.size == 0):
        return None
    if isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        return float(text) if text.strip() else None
    return float(np.asarray(value, np.float64).ravel()[0])


def _release_person(rect: Any, where: str) -> dict[str, Any] | None:
    """Joints, box and position of one ``annorect``, or None when it has no annotated joints."""
    annopoints = getattr(rect, "annopoints", None)
    points = _items(getattr(annopoints, "point", None))
    if not points:
        return None
    joints = np.zeros((NUM_JOINTS, 2))
    present = np.zeros(NUM_JOINTS, bool)
    visible = np.zeros(NUM_JOINTS, bool)
    for point in points:
        jid, x, y = (_number(getattr(point, k, None)) for k in ("id", "x", "y"))
        if jid is None or x is None or y is None:
            continue
        if not (0 <= jid < NUM_JOINTS and jid == int(jid)):
            raise DataError(f"{where}: point id: expected an integer in [0, 15], but got {jid!r}")
        joints[int(jid)] = (x, y)
        present[int(jid)] = True
        visible[int(jid)] = bool(
            _number(getattr(point, "is_visible", None)) or 0
        )  # absent: not known visible
    box = [_number(getattr(rect, k, None)) for k in ("x1", "y1", "x2", "y2")]
    head = np.nan if None in box else HEAD_SIZE_FACTOR * float(np.hypot(box[2] - box[0], box[3] - box[1]))
    objpos = getattr(rect, "objpos", None)
    center = [_number(getattr(objpos, k, None)) for k in ("x", "y")]
    scale = _number(getattr(rect, "scale", None))
    return {
        "joints": joints,
        "present": present,
        "visible": visible,
        "normalizer": head,
        "center": [np.nan if c is None else c for c in center],
        "scale": np.nan if scale is None else scale,
    }


def read_release_mat(
    path: str | Path, *, val_pairs: Iterable[tuple[int, int]] | None = None, single_person_only: bool = False
) -> PoseAnnotations:
    """The official ``mpii_human_pose_v1_u12_1.mat`` (``RELEASE``), via scipy's loadmat.

    Rows: every person with annotated joints in a training image (``img_train`` = 1; the
    public test set has none), ordered by image then by person (``annolist`` order, then
    ``annorect`` order) - the order of ``valid.h5`` once restricted to its persons.
    ``val_pairs`` holds 0-based (image index, annorect index) pairs of Tompson's split (see
    :func:`tompson_val_pairs`); without it ``is_val`` is all False, since the release itself
    does not define the split. ``single_person_only`` keeps the ``RELEASE.single_person`` rows.
    Empty or absent fields mean unknown: no head box -> NaN normalizer, no ``is_visible`` ->
    not visible, a point without coordinates -> missing.
    """
    path = _existing(path)
    with _reading(path, "the MPII release .mat"):
        release = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False).get("RELEASE")
    if release is None or not hasattr(release, "annolist"):
        raise DataError(f"{path}: expected a struct RELEASE with fields annolist, img_train, single_person")
    wanted = None if val_pairs is None else {(int(i), int(p)) for i, p in val_pairs}
    annolist = _items(release.annolist)
    img_train = np.asarray(getattr(release, "img_train", np.ones(len(annolist))), np.float64).reshape(-1)
    singles = _items(getattr(release, "single_person", None))
    if len(img_train) != len(annolist) or (singles and len(singles) != len(annolist)):
        raise DataError(
            f"{path}: RELEASE: img_train/single_person have {len(img_train)}/{len(singles)} entries "
            f"for {len(annolist)} images"
        )
    rows: list[dict[str, Any]] = []
    with _reading(path, "the MPII release .mat"):
        for i, ann in enumerate(annolist):
            if img_train[i] != 1:
                continue
            single = {int(s) - 1 for s in _items(singles[i])} if singles else set()
            name = str(getattr(getattr(ann, "image", None), "name", ""))
            for j, rect in enumerate(_items(getattr(ann, "annorect", None))):
                if single_person_only and j not in single:
                    continue
                person = _release_person(rect, f"{path}: annolist({i + 1}).annorect({j + 1})")
                if person is not None:
                    rows.append(person | {"image": name, "is_val": wanted is not None and (i, j) in wanted})
    if not rows:
        raise DataError(f"{path}: RELEASE has no person with annotated joints in a training image")
    return _make(path, len(rows), **{k: [r[k] for r in rows] for k in rows[0]})


def tompson_val_pairs(path: str | Path) -> frozenset[tuple[int, int]]:
    """Tompson's validation persons as 0-based (release image index, annorect index) pairs.

    From ``valid.h5`` (``index``, ``person``) or the community JSON (``annolist_index`` and
    ``people_index``, 1-based, of the ``isValidation`` rows); the two agree on all 2,958.
    """
    path = _existing(path)
    if path.name.lower().endswith((".h5", ".hdf5")):
        with _reading(path, "an MPII HDF5 annotation file"), h5py.File(path, "r") as f:
            if "index" not in f or "person" not in f:
                raise DataError(
                    f"{path}: expected datasets 'index' and 'person' (release image/person indices)"
                )
            index, person = f["index"][()], f["person"][()]
    else:
        with _reading(path, "MPII JSON annotations"):
            val = [e for e in _load_json(path) if e.get("isValidation")]
            index = np.asarray([e["annolist_index"] for e in val]) - 1
            person = np.asarray([e["people_index"] for e in val]) - 1
    return frozenset(zip(np.asarray(index).astype(int).tolist(), np.asarray(person).astype(int).tolist()))


# --- prediction files -----------------------------------------------------------------------


def read_predictions(path: str | Path) -> np.ndarray:
    """``preds`` (N,J,2) in original-image pixels from an HDF5 or a .mat file, as float64."""
    path = _existing(path)
    if path.name.lower().endswith(".mat"):
        with _reading(path, "a MATLAB .mat file"):
            preds = scipy.io.loadmat(path, variable_names=("preds",)).get("preds")
    else:
        with _reading(path, "an HDF5 predictions file"), h5py.File(path, "r") as f:
            preds = f["preds"][()] if "preds" in f else None
    if preds is None:
        raise DataError(f"{path}: expected a variable/dataset 'preds' of shape (N, 16, 2)")
    return _check_shape(path, "preds", np.asarray(preds, np.float64), (None, None, 2))


def write_predictions(path: str | Path, preds: np.ndarray) -> Path:
    """Save ``preds`` (N,J,2) where :func:`read_predictions` (and the MATLAB tools) find it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    preds = np.asarray(preds, np.float64)
    if path.suffix.lower() == ".mat":
        scipy.io.savemat(path, {"preds": preds})
    else:
        with h5py.File(path, "w") as f:
            f.create_dataset("preds", data=preds)
    return path
