"""Run a trained network on images: crop as the data pipeline does, decode the heatmaps,
map the joints back to the original image, draw the skeleton.

The crop: a square box around the person is warped onto the network's S x S input, then
normalised like every training image (:data:`hourglass.data.dataset.IMAGE_MEAN`/``STD``).
The box is the MPII reference box when the person's centre and scale are known
(``objpos`` moved down by 15 x scale, side 250 x scale: :func:`hourglass.data.prepare.mpii_box`),
else the image's centred square of side max(height, width): a person roughly centred and
filling about 80 % of the longer side is then framed as in training.

Both a ``model.pt`` (PyTorch) and a ``model.onnx`` (ONNX Runtime, the ``[deploy]`` extra)
run through :class:`Predictor`; they give the same heatmaps within the export check.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from hourglass.data.augment import invert_affine, warp_affine
from hourglass.data.dataset import IMAGE_MEAN, IMAGE_STD, STRIDE
from hourglass.data.heatmaps import decode_heatmaps, to_image_coords
from hourglass.data.mpii import JOINT_NAMES
from hourglass.data.prepare import mpii_box, original_to_crop_matrix
from hourglass.errors import DataError

__all__ = [
    "Box",
    "centred_box",
    "person_box",
    "Predictor",
    "Prediction",
    "read_image",
    "draw_skeleton",
    "SKELETON",
    "crop_input",
    "predict_images",
]

# MPII joint indices joined by a limb, drawn in this order: right side warm, left cool
SKELETON = (
    (0, 1),
    (1, 2),
    (2, 6),
    (6, 3),
    (3, 4),
    (4, 5),  # legs through the pelvis
    (6, 7),
    (7, 8),
    (8, 9),  # pelvis - thorax - upper neck - head top
    (10, 11),
    (11, 12),
    (12, 7),
    (7, 13),
    (13, 14),
    (14, 15),  # arms through the thorax
)
_RIGHT, _LEFT, _MIDDLE = (0, 80, 255), (255, 160, 0), (0, 220, 0)  # BGR


@dataclass(frozen=True)
class Box:
    """A square in original-image pixels: what fills the network's input."""

    center: tuple[float, float]
    side: float

    def to_input(self, size: int) -> np.ndarray:
        """The 2x3 affine original px -> input px."""
        return original_to_crop_matrix(np.asarray(self.center), self.side, size, size)


def centred_box(height: int, width: int) -> Box:
    """The centred square of side max(height, width) (a person roughly centred)."""
    return Box(((width - 1) / 2, (height - 1) / 2), float(max(height, width)))


def person_box(center: tuple[float, float], scale: float) -> Box:
    """The MPII reference box of a person with ``objpos`` ``center`` and ``scale`` (height / 200 px)."""
    c, side = mpii_box(np.asarray(center, dtype=np.float64), np.asarray(scale, dtype=np.float64))
    return Box((float(c[0]), float(c[1])), float(side))


def read_image(path: str | Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; a one-line error if OpenCV cannot read it."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: not an image OpenCV can read")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def crop_input(image: np.ndarray, box: Box, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(input (1, 3, S, S) float32 normalised, affine input px -> original px (2, 3))``."""
    to_input = box.to_input(size)
    crop = warp_affine(image, to_input, size).astype(np.float32) / 255.0  # (S, S, 3)
    x = ((crop - IMAGE_MEAN) / IMAGE_STD).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x, dtype=np.float32), invert_affine(to_input)


@dataclass(frozen=True)
class Prediction:
    keypoints: np.ndarray  # (16, 2) x, y in original image pixels
    scores: np.ndarray  # (16,) the heatmap peak of each joint (confidence, not a probability)
    box: Box

    def to_json(self) -> dict[str, Any]:
        return {
            "box": {"center": list(self.box.center), "side": self.box.side},
            "joints": [
                {"name": name, "x": float(x), "y": float(y), "score": float(s)}
                for name, (x, y), s in zip(JOINT_NAMES, self.keypoints, self.scores)
            ],
        }


class Predictor:
    """A trained network from ``model.pt`` (:mod:`hourglass.model_file`) or ``model.onnx``
    (:mod:`hourglass.onnx_export`), with its input size."""

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such model file")
        self.path = path
        if path.suffix.lower() == ".onnx":
            from hourglass.onnx_export import INPUT_NAME, OUTPUT_NAME, ort_session

            self._session = ort_session(path.read_bytes(), threads=threads)
            shape = self._session.get_inputs()[0].shape  # [1, 3, S, S]
            if len(shape) != 4 or not isinstance(shape[-1], int):
                raise DataError(f"{path}: expected a static (1, 3, S, S) input, but got {shape}")
            self.input_size = int(shape[-1])
            self._io = (INPUT_NAME, OUTPUT_NAME)
            self._model = None
        elif path.suffix.lower() == ".pt":
            from hourglass.model_file import load_model

            torch.set_num_threads(threads)
            saved = load_model(path)
            self._model = saved.model
            self.input_size = saved.config.model.input_size
        else:
            raise DataError(f"{path}: expected a .pt (hpo train --out) or .onnx model")

    def heatmaps(self, x: np.ndarray) -> np.ndarray:
        """(1, 3, S, S) normalised input -> the last stack's (1, 16, S/4, S/4) heatmaps."""
        if self._model is None:
            name_in, name_out = self._io
            return self._session.run([name_out], {name_in: x})[0]
        with torch.no_grad():
            return self._model(torch.from_numpy(x))[:, -1].float().numpy()

    def predict(self, image: np.ndarray, box: Box | None = None) -> Prediction:
        """Joints of the person in ``box`` (default: :func:`centred_box`) of an RGB image."""
        box = box or centred_box(*image.shape[:2])
        x, to_original = crop_input(image, box, self.input_size)
        heat = torch.from_numpy(self.heatmaps(x))  # (1, J, h, w)
        coords = decode_heatmaps(heat)  # (1, J, 2) heatmap px
        keypoints = to_image_coords(coords.numpy().astype(np.float64), to_original[None], STRIDE)[0]
        scores = heat.flatten(2).amax(-1)[0].numpy()
        return Prediction(keypoints.astype(np.float32), scores.astype(np.float32), box)


def draw_skeleton(image: np.ndarray, people: Sequence[np.ndarray], boxes: Sequence[Box] = ()) -> np.ndarray:
    """A BGR copy of the RGB ``image`` (for ``cv2.imwrite``) with each person's limbs and
    joints drawn (``people``: (16, 2) keypoints in image pixels) and their crop boxes; small
    images are enlarged first so the lines stay visible."""
    h, w = image.shape[:2]
    k = max(1, int(np.ceil(256 / max(h, w))))
    canvas = cv2.cvtColor(
        cv2.resize(image, (w * k, h * k), interpolation=cv2.INTER_NEAREST), cv2.COLOR_RGB2BGR
    )
    thick = max(1, round(max(h, w) * k / 200))
    for box in boxes:
        (cx, cy), half = box.center, box.side / 2
        cv2.rectangle(
            canvas,
            _pt((cx - half, cy - half), k),
            _pt((cx + half, cy + half), k),
            (200, 200, 200),
            1,
            cv2.LINE_AA,
        )
    for keypoints in people:
        pts = np.asarray(keypoints, dtype=np.float64)
        for a, b in SKELETON:
            sides = {JOINT_NAMES[a][:2], JOINT_NAMES[b][:2]}
            colour = _RIGHT if "r_" in sides else _LEFT if "l_" in sides else _MIDDLE
            cv2.line(canvas, _pt(pts[a], k), _pt(pts[b], k), colour, thick, cv2.LINE_AA)
        for p in pts:
            cv2.circle(canvas, _pt(p, k), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
    return canvas


def _pt(p: Any, k: float = 1.0) -> tuple[int, int]:
    return int(round((p[0] + 0.5) * k - 0.5)), int(round((p[1] + 0.5) * k - 0.5))


def _boxes(
    image_path: Path,
    image: np.ndarray,
    *,
    center: tuple[float, float] | None,
    scale: float | None,
    annotations: Any,
) -> list[Box]:
    if annotations is not None:
        rows = np.flatnonzero(annotations.image == image_path.name)
        ok = [r for r in rows if np.isfinite(annotations.center[r]).all() and annotations.scale[r] > 0]
        if not ok:
            raise DataError(
                f"{annotations.source}: no person with objpos and scale in image {image_path.name!r}"
            )
        return [person_box(tuple(annotations.center[r]), float(annotations.scale[r])) for r in ok]
    if center is not None and scale is not None:
        return [person_box(center, scale)]
    return [centred_box(*image.shape[:2])]


def predict_images(
    model: str | Path,
    images: Sequence[str | Path],
    out: str | Path,
    *,
    center: tuple[float, float] | None = None,
    scale: float | None = None,
    annotations: str | Path | None = None,
    threads: int = 1,
) -> Iterator[Path]:
    """For each image, ``<out>/<stem>.json`` (the joints of every person cropped, in
    original pixels) and ``<out>/<stem>.png`` (the skeletons drawn); yields the paths.

    The box per person: ``annotations`` (an MPII file, persons matched by image file name),
    else ``center`` and ``scale``, else :func:`centred_box`."""
    predictor = Predictor(model, threads=threads)
    ann = None
    if annotations is not None:
        from hourglass.data.mpii import read_annotations

        ann = read_annotations(annotations)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for path in map(Path, images):
        image = read_image(path)
        preds = [
            predictor.predict(image, box)
            for box in _boxes(path, image, center=center, scale=scale, annotations=ann)
        ]
        doc = {
            "image": str(path),
            "width": int(image.shape[1]),
            "height": int(image.shape[0]),
            "model": str(predictor.path),
            "input_size": predictor.input_size,
            "persons": [p.to_json() for p in preds],
        }
        json_path = out / f"{path.stem}.json"
        tmp = json_path.with_name(json_path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, json_path)
        png = out / f"{path.stem}.png"
        cv2.imwrite(str(png), draw_skeleton(image, [p.keypoints for p in preds], [p.box for p in preds]))
        yield json_path
        yield png
