"""hpo predict: crops as the data pipeline does and maps joints back to the original image."""

import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hourglass.data.dataset import STRIDE
from hourglass.data.heatmaps import input_to_heatmap, render_heatmaps
from hourglass.data.synthetic import make_synthetic
from hourglass.predict import Predictor, centred_box, draw_skeleton, person_box
from hpo.cli import app


class _Oracle(Predictor):
    """A 'network' whose heatmaps peak where the known joints fall in its input, so any
    error left is the crop / decode / back-mapping geometry under test."""

    def __init__(self, joints, box, input_size=64):
        self.input_size, self.path = input_size, "oracle"
        to_input = box.to_input(input_size)
        xy = joints @ to_input[:, :2].T + to_input[:, 2]
        hm = input_to_heatmap(torch.from_numpy(xy).float(), STRIDE)
        self._heat = render_heatmaps(
            hm[None], torch.ones(1, 16, dtype=torch.bool), input_size // STRIDE, 1.0
        ).numpy()

    def heatmaps(self, x):
        assert x.shape == (1, 3, self.input_size, self.input_size) and x.dtype == np.float32
        return self._heat


@pytest.mark.parametrize("box_of", ["centred", "person"])
def test_joints_come_back_in_original_pixels(box_of):
    rng = np.random.default_rng(0)
    h, w = 300, 180  # not square, not the input size
    image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    box = centred_box(h, w) if box_of == "centred" else person_box((90.0, 120.0), 0.8)
    joints = np.asarray(box.center) + rng.uniform(-0.4, 0.4, (16, 2)) * box.side
    pred = _Oracle(joints, box).predict(image, box)
    err = np.linalg.norm(pred.keypoints - joints, axis=1)
    # a 4x-downsampled heatmap decodes to within ~0.36 heatmap px: box/64*4*0.36 px here
    assert err.max() < box.side / 64 * STRIDE * 0.5, err
    assert err.max() > 0  # it really went through the heatmaps


def test_draw_skeleton_marks_the_joints():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    joints = np.full((16, 2), 32.0)
    joints[:, 0] = np.linspace(5, 58, 16)
    canvas = draw_skeleton(image, [joints])
    assert canvas.shape == (256, 256, 3)  # enlarged 4x so lines stay visible
    assert canvas.sum() > 0 and canvas[:100].sum() == 0  # drawn along the middle row only


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch tiny model from `hpo train --out` (its .pt and .onnx)."""
    root = tmp_path_factory.mktemp("predict")
    cfg = root / "cfg.yaml"
    cfg.write_text(
        "model: {features: 16, depth: 2, stacks: 1, input_size: 64, stem: {channels: 8}}\n"
        "schedule: {epochs: 2, batch_size: 16}\ndata: synthetic:120:64:0\n"
    )
    result = CliRunner().invoke(app, ["train", str(cfg), "--out", str(root / "m")])
    assert result.exit_code == 0, result.output
    return root / "m"


def test_predict_writes_json_and_png_and_pt_agrees_with_onnx(trained, tmp_path):
    data = make_synthetic(3, 64, 123)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"p{i}.png"), cv2.cvtColor(data.images[i], cv2.COLOR_RGB2BGR))
    outs = {}
    for kind in ("pt", "onnx"):
        result = CliRunner().invoke(
            app, ["predict", str(trained / f"model.{kind}"), str(folder), "--out", str(tmp_path / kind)]
        )
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in (tmp_path / kind).iterdir()) == sorted(
            f"p{i}.{e}" for i in range(3) for e in ("json", "png")
        )
        outs[kind] = [json.loads((tmp_path / kind / f"p{i}.json").read_text()) for i in range(3)]
    for pt, onnx in zip(outs["pt"], outs["onnx"]):
        (person,) = pt["persons"]
        assert [j["name"] for j in person["joints"]][:3] == ["r_ankle", "r_knee", "r_hip"] and len(
            person["joints"]
        ) == 16
        a = np.array([[j["x"], j["y"]] for j in person["joints"]])
        b = np.array([[j["x"], j["y"]] for j in onnx["persons"][0]["joints"]])
        assert np.abs(a - b).max() < 1e-3 and (a >= -2).all() and (a <= 66).all()
    png = cv2.imread(str(tmp_path / "pt" / "p0.png"))
    assert png.shape == (256, 256, 3)


def test_predict_with_center_and_scale_and_bad_input(trained, tmp_path):
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), np.zeros((100, 150, 3), np.uint8))
    ok = CliRunner().invoke(
        app,
        [
            "predict",
            str(trained / "model.pt"),
            str(img),
            "--out",
            str(tmp_path / "o"),
            "--center",
            "75,40",
            "--scale",
            "0.3",
        ],
    )
    assert ok.exit_code == 0, ok.output
    box = json.loads((tmp_path / "o" / "x.json").read_text())["persons"][0]["box"]
    assert box == {"center": [75.0, 40.0 + 15 * 0.3], "side": pytest.approx(250 * 0.3)}
    for args, message in [
        (["--center", "1"], "--center/--scale: expected both"),
        (["--center", "a,b", "--scale", "1"], "--center: expected two numbers"),
        ([], None),
    ]:
        bad = CliRunner().invoke(
            app, ["predict", str(tmp_path / "nope.pt"), str(img), "--out", str(tmp_path / "b"), *args]
        )
        assert bad.exit_code == 2
        assert (message or "nope.pt: no such model file") in bad.output
