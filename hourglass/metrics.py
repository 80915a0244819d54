"""PCKh@0.5 and heatmap decoding, matching the numbers papers publish for MPII.

Two PCKh conventions are in circulation and differ by about half a point, so both are kept
and always labelled. The *table* (per-joint columns and Mean) follows the published
stacked-hourglass evaluation: a joint is correct when error / normalizer < 0.5, a column is
the mean of its left and right joints, Mean is the unweighted mean of the 14 joints other than
pelvis and thorax. The *Total* is the official MPII figure: the same 14 joints pooled, correct
when error / normalizer <= 0.5. Missing joints count in neither.

Predictions are decoded from heatmaps by :mod:`hourglass.data.heatmaps`, whose coordinate
convention (pixel centres at integers) they follow.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hourglass.data.mpii import JOINT_NAMES, read_annotations, read_predictions, tompson_val_pairs
from hourglass.errors import DataError

__all__ = ["TABLE_COLUMNS", "PCKhResult", "pckh", "format_table", "evaluate_files"]

TABLE_COLUMNS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle")
_J = {name: i for i, name in enumerate(JOINT_NAMES)}
_COLUMN_JOINTS = {
    "Head": (_J["head_top"],),
    "Shoulder": (_J["l_shoulder"], _J["r_shoulder"]),
    "Elbow": (_J["l_elbow"], _J["r_elbow"]),
    "Wrist": (_J["l_wrist"], _J["r_wrist"]),
    "Hip": (_J["l_hip"], _J["r_hip"]),
    "Knee": (_J["l_knee"], _J["r_knee"]),
    "Ankle": (_J["l_ankle"], _J["r_ankle"]),
}
# The 14 scored joints: pelvis and thorax are left out of MPII's Mean and Total.
_SCORED = np.array([i for i, name in enumerate(JOINT_NAMES) if name not in ("pelvis", "thorax")])


@dataclass(frozen=True)
class PCKhResult:
    """PCKh of one set of predictions; every figure in percent (0-100)."""

    per_joint: dict[str, float]  # "Head".."Ankle", "Mean" (table convention, error < threshold)
    total: float  # official MPII Total: 14 joints pooled, error <= threshold
    joint_accuracy: np.ndarray  # (J,) per joint, table convention; NaN where never present
    count: int  # persons scored
    threshold: float = field(default=0.5)

    def to_json(self) -> dict[str, Any]:
        return {"per_joint": {k: float(v) for k, v in self.per_joint.items()}, "total": float(self.total)}


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _percent(hits: np.ndarray, counted: np.ndarray) -> float:
    total = counted.sum()
    return float(100.0 * hits.sum() / total) if total else float("nan")


def _nanmean(values: np.ndarray) -> float:
    """Mean over the joints that were ever present (NaN only when none was)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def pckh(pred: Any, gt: Any, present: Any, normalizer: Any, threshold: float = 0.5) -> PCKhResult:
    """Score ``pred`` against ``gt`` (both (N,J,2) pixels); ``normalizer`` (N,) is the PCKh unit.

    A joint never present is NaN in ``joint_accuracy`` and left out of its column and of Mean
    (on MPII's validation set every joint is present somewhere, so this never changes a figure).

    numpy or torch inputs. Predictions that are NaN count as wrong. A person with a present
    joint needs a finite positive normalizer (the JSON annotations have none: DataError).
    """
    pred, gt, normalizer = _numpy(pred), _numpy(gt), _numpy(normalizer)
    present = _numpy(present) > 0
    n, j = gt.shape[:2]
    if pred.shape != gt.shape or gt.shape[2:] != (2,) or present.shape != (n, j) or normalizer.shape != (n,):
        raise ValueError(
            f"pckh: expected pred/gt (N,J,2), present (N,J), normalizer (N,), but got "
            f"{pred.shape}, {gt.shape}, {present.shape}, {normalizer.shape}"
        )
    bad = present.any(1) & ~(np.isfinite(normalizer) & (normalizer > 0))
    if bad.any():
        raise DataError(
            f"PCKh needs a finite positive head-size normalizer for every annotated person, but "
            f"{int(bad.sum())} of {n} have {float(normalizer[bad][0])} (the JSON has no head boxes)"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.linalg.norm(pred - gt, axis=-1) / normalizer[:, None]  # (N,J), NaN pred -> NaN -> wrong
    table_hit = (err < threshold) & present
    joint_acc = np.array([_percent(table_hit[:, k], present[:, k]) for k in range(j)])
    if j == len(JOINT_NAMES):
        per_joint = {col: _nanmean(joint_acc[list(ids)]) for col, ids in _COLUMN_JOINTS.items()}
        scored = _SCORED
    else:  # another skeleton: no named columns, every joint scored
        per_joint, scored = {}, np.arange(j)
    per_joint["Mean"] = _nanmean(joint_acc[scored])
    total_hit = (err[:, scored] <= threshold) & present[:, scored]
    return PCKhResult(
        per_joint=per_joint,
        total=_percent(total_hit, present[:, scored]),
        joint_accuracy=joint_acc,
        count=n,
        threshold=float(threshold),
    )


def format_table(result: PCKhResult, width: int = 80) -> str:
    """Header row, value row, and the Total with both conventions, in ``width`` columns
    (the 8 MPII columns fit 80; the notes wrap)."""
    t = f"{result.threshold:g}"
    label = f"PCKh@{t} (err < {t})"
    names = list(result.per_joint)
    first = max(len(label), len(f"{result.count} persons"))
    cells = [max(len(k), len("100.00")) for k in names]
    header = label.ljust(first) + "".join(f" {k:>{w}}" for k, w in zip(names, cells))
    values = f"{result.count} persons".ljust(first) + "".join(
        f" {v:>{w}.2f}" for v, w in zip(result.per_joint.values(), cells)
    )
    if len(names) > 1:
        pooled = "14 joints pooled"
        rule = "table: columns = mean of left/right, Head = head top, Mean = 14 joints without pelvis/thorax"
    else:
        pooled, rule = "all joints pooled", "table: Mean = unweighted mean over joints"
    total = (
        f"Total {result.total:.2f}  (official MPII: {pooled}, err <= {t}; "
        f"err in units of 0.6 x head-box diagonal; {rule})"
    )
    return "\n".join([header, values, textwrap.fill(total, width, subsequent_indent="  ")])


# --- files ----------------------------------------------------------------------------------


def evaluate_files(
    annotations: str | Path, predictions: str | Path, val_split: str | Path | None = None
) -> PCKhResult:
    """PCKh of a predictions file against an annotation file (``hpo eval-preds``).

    Scores the annotation rows marked ``is_val`` (all rows of valid.h5 and the detections
    .mat; Tompson's persons of the release .mat when ``val_split`` names valid.h5 or the JSON),
    or every row when none is marked. Predictions are (N,16,2) in that row order.
    """
    pairs = tompson_val_pairs(val_split) if val_split is not None else None
    ann = read_annotations(annotations, val_pairs=pairs)
    if ann.is_val.any():
        ann = ann.subset(ann.is_val)
    preds = read_predictions(predictions)
    want = (len(ann), len(JOINT_NAMES), 2)
    if preds.shape != want:
        raise DataError(
            f"{predictions}: preds: expected shape {want} (one row per person scored in "
            f"{annotations}, same order), but got {preds.shape}"
        )
    return pckh(preds, ann.joints, ann.present, ann.normalizer)
