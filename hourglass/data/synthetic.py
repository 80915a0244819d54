"""A synthetic pose set: articulated limb figures with the 16 MPII joints, made in seconds.

Why: the search must run offline and on CPU, and a search is only informative if the task
is learnable but not trivial. Each image holds one figure built like an MPII person:
pelvis/thorax/neck/head chain, shoulders and hips across the torso, two-segment arms and
legs with joint limits, body yaw (narrower shoulders, sometimes seen from behind), random
scale, rotation and position, on a cluttered background, sometimes behind an occluder.
Right limbs are warm-coloured and wider, left limbs cool-coloured and narrower, so
left/right is decidable from the image (as it is for a person, from context) even when
the figure faces away.

Geometry follows MPII, so PCKh means the same thing: body units of 1/200 of a standing
person's height; head length (upper neck -> head top) 33.3 units, as in the MPII
annotations (exactly 33.33 x scale there); a figure of scale 1 fills 80% of the content box
(MPII crops: box 250 x scale, person ~200 x scale); normalizer = 0.75 x head length, which is
MPII's 0.6 x head-box diagonal (= 25 x scale, checked on the 2,958 validation persons).

Occluded joints keep present=1 with visible=0 (the network must still find them, as in
MPII); joints outside the image are visible=0 too. Self-occlusion is not modelled.
``poses=`` takes joint configurations from real MPII annotations instead of the kinematic
model (rows with all 16 joints annotated, normalised by centre and scale).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hourglass.data.cache import PoseArrays
from hourglass.data.mpii import JOINT_NAMES, read_annotations
from hourglass.errors import ConfigError, DataError

__all__ = ["make_synthetic", "sample_kinematic_poses", "normalised_real_poses", "VAL_FRACTION", "HEAD_LENGTH"]

VAL_FRACTION = 0.15  # the last 15% of rows are the validation split
HEAD_LENGTH = 100 / 3  # units (1/200 of a standing person): MPII upper-neck -> head-top
_SHIFT = 4  # cv2 fixed-point bits: sub-pixel drawing, so small images keep exact joint positions
_ONE = 1 << _SHIFT

# drawing order of limb segments per side: (from joint, to joint, thickness in units)
_LIMBS = {
    "right": ((12, 11, 10.0), (11, 10, 8.5), (2, 1, 12.0), (1, 0, 10.0)),
    "left": ((13, 14, 7.0), (14, 15, 6.0), (3, 4, 8.5), (4, 5, 7.0)),
}
_ENDS = {"right": ((10, 6.5), (0, 7.0)), "left": ((15, 5.0), (5, 5.5))}  # hands/feet: (joint, radius)


def _unit(angle: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def _rotate(v: np.ndarray, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle)[..., None], np.sin(angle)[..., None]
    return np.concatenate([c * v[..., :1] - s * v[..., 1:], s * v[..., :1] + c * v[..., 1:]], axis=-1)


def sample_kinematic_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random poses ``(n, 16, 2)`` in body units (y down), pelvis at the origin.

    Joint limits: torso lean +-35 deg, head tilt +-25 deg, upper arm -25..170 deg from
    hanging, elbow 0..150 deg, thigh -25..85 deg, knee 0..130 deg (each bend direction
    random: a 2-D projection of a 3-D pose bends either way); segment lengths foreshortened
    to 60-100% (limbs pointing toward the camera); body yaw narrows shoulders and hips.
    """
    deg = np.pi / 180
    j = np.zeros((n, 16, 2))
    size = rng.uniform(0.92, 1.08, n)[:, None]  # per-figure proportions
    u_t = _unit(-np.pi / 2 + np.clip(rng.normal(0, 12, n), -35, 35) * deg)  # pelvis -> thorax
    perp = np.stack([-u_t[:, 1], u_t[:, 0]], axis=-1)  # screen-right when upright
    facing = np.where(rng.random(n) < 0.25, -1.0, 1.0)  # -1: seen from behind
    yaw = (facing * rng.uniform(0.35, 1.0, n))[:, None]
    j[:, 7] = 55 * size * u_t  # thorax (pelvis = 0)
    j[:, 2], j[:, 3] = -17 * size * yaw * perp, 17 * size * yaw * perp  # person's right on screen-left
    j[:, 12] = j[:, 7] - 28 * size * yaw * perp - 3 * u_t
    j[:, 13] = j[:, 7] + 28 * size * yaw * perp - 3 * u_t
    u_n = _rotate(u_t, np.clip(rng.normal(0, 8, n), -20, 20) * deg)
    j[:, 8] = j[:, 7] + 13 * size * u_n
    u_h = _rotate(u_n, np.clip(rng.normal(0, 8, n), -25, 25) * deg)
    j[:, 9] = j[:, 8] + HEAD_LENGTH * rng.uniform(0.88, 1.12, n)[:, None] * u_h
    down = -u_t
    chains = (
        (12, 11, 10, 42, 38, (-25, 170), (0, 150), -1),
        (13, 14, 15, 42, 38, (-25, 170), (0, 150), 1),
        (2, 1, 0, 50, 48, (-25, 85), (0, 130), -1),
        (3, 4, 5, 50, 48, (-25, 85), (0, 130), 1),
    )
    for root, mid, end, l1, l2, lim1, lim2, side in chains:
        outward = side * np.sign(yaw) * perp  # away from the body midline on screen
        a1 = rng.uniform(*lim1, n) * deg
        d1 = np.cos(a1)[:, None] * down + np.sin(a1)[:, None] * outward
        bend = rng.uniform(*lim2, n) * deg * np.where(rng.random(n) < 0.5, -1, 1)
        d2 = _rotate(d1, bend)
        j[:, mid] = j[:, root] + l1 * size * rng.uniform(0.6, 1.0, n)[:, None] * d1
        j[:, end] = j[:, mid] + l2 * size * rng.uniform(0.6, 1.0, n)[:, None] * d2
    return j


def normalised_real_poses(source: str | Path) -> np.ndarray:
    """Fully annotated MPII poses ``(M, 16, 2)`` in body units around their pelvis.

    Body units are pixels / scale (MPII scale = person height / 200 px).
    """
    ann = read_annotations(source)
    full = ann.present.all(axis=1) & (ann.scale > 0)
    if not full.any():
        raise DataError(f"{source}: no person with all 16 joints annotated to take poses from")
    joints = ann.joints[full].astype(np.float64)
    return (joints - joints[:, 6:7]) / ann.scale[full, None, None]


def _place(rng: np.random.Generator, poses: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotate, scale and move body-unit poses into the image; returns (joints px, px per unit)."""
    n = len(poses)
    ppu = size / 250 * rng.uniform(0.85, 1.05, n)  # px per body unit: a 200-unit person is ~80% of the box
    rot = rng.uniform(-20, 20, n) * np.pi / 180
    centre = (poses.max(axis=1) + poses.min(axis=1)) / 2  # (n, 2) bounding-box centre
    pts = _rotate(poses - centre[:, None], rot[:, None]) * ppu[:, None, None]
    offset = (size - 1) / 2 + rng.normal(0, 0.04 * size, (n, 2))
    return pts + offset[:, None], ppu


def _muted(rng: np.random.Generator) -> tuple[int, int, int]:
    grey = rng.uniform(40, 215)
    return tuple(int(v) for v in np.clip(grey + rng.normal(0, 18, 3), 0, 255))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    a, b = np.array(_muted(rng), float), np.array(_muted(rng), float)
    ramp = np.linspace(0, 1, size)
    t = ramp[:, None] if rng.random() < 0.5 else ramp[None, :]
    img = np.ascontiguousarray((a + (b - a) * t[..., None]) * np.ones((size, size, 1)), dtype=np.uint8)
    for _ in range(rng.integers(3, 9)):  # clutter: lines, boxes, blobs
        p = (rng.uniform(-0.1, 1.1, 4) * size * _ONE).astype(int)
        colour = _muted(rng)
        kind = rng.integers(3)
        if kind == 0:
            cv2.line(
                img, p[:2], p[2:], colour, max(1, int(rng.integers(1, 4) * size / 64)), cv2.LINE_AA, _SHIFT
            )
        elif kind == 1:
            cv2.rectangle(img, p[:2], p[2:], colour, -1, cv2.LINE_AA, _SHIFT)
        else:
            cv2.circle(
                img, p[:2], int(rng.uniform(0.03, 0.15) * size * _ONE), colour, -1, cv2.LINE_AA, _SHIFT
            )
    return img


def _side_colour(rng: np.random.Generator, side: str) -> tuple[int, int, int]:
    if side == "right":  # warm: reds to oranges
        rgb = (rng.uniform(190, 255), rng.uniform(30, 140), rng.uniform(10, 70))
    else:  # cool: blues to cyans
        rgb = (rng.uniform(10, 70), rng.uniform(80, 190), rng.uniform(190, 255))
    return tuple(int(v) for v in rgb)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * _ONE)), int(round(p[1] * _ONE))


def _draw_figure(rng: np.random.Generator, img: np.ndarray, j: np.ndarray, ppu: float) -> None:
    """Draw one figure (joints ``j`` (16, 2) px) in place: far limbs, torso, head, near limbs."""
    width = lambda units: max(1, int(round(units * ppu)))  # noqa: E731
    colours = {side: _side_colour(rng, side) for side in ("right", "left")}
    skin = tuple(int(v) for v in (rng.uniform(150, 240), rng.uniform(110, 190), rng.uniform(80, 150)))
    near = "right" if rng.random() < 0.5 else "left"
    far = "left" if near == "right" else "right"

    def limbs(side: str) -> None:
        for a, b, t in _LIMBS[side]:
            cv2.line(img, _pt(j[a]), _pt(j[b]), colours[side], width(t), cv2.LINE_AA, _SHIFT)
        for k, r in _ENDS[side]:
            cv2.circle(img, _pt(j[k]), max(_ONE, int(r * ppu * _ONE)), colours[side], -1, cv2.LINE_AA, _SHIFT)

    limbs(far)
    torso = np.array([_pt(j[k]) for k in (12, 13, 3, 2)], dtype=np.int32)
    cv2.fillPoly(img, [torso], _muted(rng), cv2.LINE_AA, _SHIFT)
    cv2.line(img, _pt(j[7]), _pt(j[8]), skin, width(9), cv2.LINE_AA, _SHIFT)
    radius = np.linalg.norm(j[9] - j[8]) / 2
    cv2.circle(img, _pt((j[8] + j[9]) / 2), int(radius * _ONE), skin, -1, cv2.LINE_AA, _SHIFT)
    limbs(near)


def _occlude(rng: np.random.Generator, img: np.ndarray, j: np.ndarray, ppu: float) -> np.ndarray:
    """Maybe draw 1-2 boxes over the figure; returns (16,) bool: joint hidden by one."""
    hidden = np.zeros(len(j), dtype=bool)
    if rng.random() >= 0.35:
        return hidden
    for _ in range(rng.integers(1, 3)):
        centre = j[rng.integers(len(j))] + rng.normal(0, 10 * ppu, 2)
        half = rng.uniform(10, 22, 2) * ppu
        lo, hi = centre - half, centre + half
        cv2.rectangle(img, _pt(lo), _pt(hi), _muted(rng), -1, cv2.LINE_AA, _SHIFT)
        hidden |= ((j >= lo) & (j <= hi)).all(axis=1)
    return hidden


def _poses_label(poses: str | Path | np.ndarray | None) -> str:
    if poses is None:
        return "kinematic"
    return f"array of {len(poses)} poses" if isinstance(poses, np.ndarray) else str(poses)


def make_synthetic(n: int, size: int, seed: int, poses: str | Path | np.ndarray | None = None) -> PoseArrays:
    """``n`` synthetic persons on ``size`` x ``size`` crops; identical bytes for the same arguments.

    poses: an MPII annotation file (anything ``read_annotations`` reads) to draw joint
    configurations from instead of the kinematic model, or an already loaded
    :func:`normalised_real_poses` array.
    """
    if n < 1 or size < 16:
        raise ConfigError(f"synthetic: expected n >= 1 and size >= 16, but got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    if poses is None:
        body = sample_kinematic_poses(rng, n)
    else:
        bank = poses if isinstance(poses, np.ndarray) else normalised_real_poses(poses)
        body = bank[rng.integers(len(bank), size=n)]
    joints, ppu = _place(rng, body, size)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    visible = np.empty((n, 16), dtype=bool)
    for i in range(n):
        img = _background(rng, size)
        _draw_figure(rng, img, joints[i], ppu[i])
        hidden = _occlude(rng, img, joints[i], ppu[i])
        noise = rng.normal(0, rng.uniform(0, 6), img.shape)
        images[i] = np.clip(img + noise, 0, 255).astype(np.uint8)
        inside = ((joints[i] >= 0) & (joints[i] <= size - 1)).all(axis=1)
        visible[i] = inside & ~hidden
    head = np.linalg.norm(joints[:, 9] - joints[:, 8], axis=1)
    is_val = np.arange(n) >= n - int(round(VAL_FRACTION * n))
    return PoseArrays(
        images=images,
        keypoints=joints.astype(np.float32),
        present=np.ones((n, 16), dtype=bool),
        visible=visible,
        normalizer=(0.75 * head).astype(np.float32),
        transform=np.tile(np.eye(2, 3, dtype=np.float32), (n, 1, 1)),
        is_val=is_val,
        attrs={
            "source": "synthetic",
            "crop_size": size,
            "content_size": size,
            "joint_names": list(JOINT_NAMES),
            "seed": seed,
            "poses": _poses_label(poses),
        },
    )
