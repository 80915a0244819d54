"""hpo train --out: the trained model, its ONNX, metrics, curve and pictures; --resume."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hourglass.data.dataset import load_pose_data
from hourglass.model_file import FORMAT, load_model
from hourglass.onnx_export import INPUT_NAME, OUTPUT_NAME, ort_session
from hourglass.predict import centred_box, crop_input
from hpo.cli import app

CONFIG = (
    "model: {features: 16, depth: 2, stacks: 2, input_size: 64, stem: {channels: 8}}\n"
    "schedule: {epochs: 2, batch_size: 16}\ndata: synthetic:120:64:0\n"
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    (root / "cfg.yaml").write_text(CONFIG)
    result = CliRunner().invoke(app, ["train", str(root / "cfg.yaml"), "--out", str(root / "m"), "--json"])
    assert result.exit_code == 0, result.output
    return root, json.loads(result.output[result.output.index("{") :])


def test_the_folder_holds_the_model_and_what_it_scored(run):
    root, printed = run
    m = root / "m"
    assert {p.name for p in m.iterdir()} >= {
        "model.pt",
        "model.onnx",
        "metrics.json",
        "pckh.txt",
        "checkpoint",
        "predictions",
    }
    assert (m / "curve.png").is_file() or (m / "curve.html").is_file()
    assert len(list((m / "predictions").glob("val_*.png"))) == 4
    metrics = json.loads((m / "metrics.json").read_text())
    assert metrics["pckh"]["Mean"] == pytest.approx(printed["per_joint"]["Mean"])
    assert metrics["pckh"]["Total"] == pytest.approx(printed["total"])
    assert len(metrics["pckh_per_joint"]) == 16 and metrics["params"] == printed["params"]
    assert [h["epoch"] for h in metrics["history"]] == [1, 2] and metrics["device"] == "cpu"
    assert "Mean" in (m / "pckh.txt").read_text()


def test_model_pt_is_plain_data_and_rebuilds_the_trained_network(run):
    root, _ = run
    state = torch.load(root / "m" / "model.pt", weights_only=True)  # no pickled classes
    assert (
        state["format"] == FORMAT and state["epoch"] == 2 and state["config"]["data"] == "synthetic:120:64:0"
    )
    saved = load_model(root / "m" / "model.pt")
    assert not saved.model.training and saved.metrics["pckh"]["Mean"] == state["metrics"]["pckh"]["Mean"]
    assert any(not torch.equal(v, torch.zeros_like(v)) for v in saved.model.state_dict().values())


def test_onnx_heatmaps_match_pytorch_on_the_trained_weights(run):
    root, _ = run
    saved = load_model(root / "m" / "model.pt")
    image = load_pose_data("synthetic:120:64:0").images[-1]  # a validation person
    x, _ = crop_input(image, centred_box(64, 64), 64)
    with torch.no_grad():
        expected = saved.model(torch.from_numpy(x))[:, -1].numpy()
    got = ort_session((root / "m" / "model.onnx").read_bytes(), 1).run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    assert got.shape == (1, 16, 16, 16) and np.abs(got - expected).max() < 1e-4
    assert np.abs(expected).max() > 1e-3  # trained heatmaps, not zeros


def test_an_existing_run_is_kept_and_resume_continues_it(run):
    root, _ = run
    again = CliRunner().invoke(app, ["train", str(root / "cfg.yaml"), "--out", str(root / "m")])
    assert again.exit_code == 2 and "already holds a run (2 epochs done); pass --resume" in again.output
    other = root / "other.yaml"
    other.write_text(CONFIG.replace("batch_size: 16", "batch_size: 8"))
    wrong = CliRunner().invoke(app, ["train", str(other), "--out", str(root / "m"), "--resume"])
    assert wrong.exit_code == 2 and "trained another config" in wrong.output
    before = json.loads((root / "m" / "metrics.json").read_text())["history"]
    more = CliRunner().invoke(
        app, ["train", str(root / "cfg.yaml"), "--out", str(root / "m"), "--resume", "--epochs", "3"]
    )
    assert more.exit_code == 0, more.output
    after = json.loads((root / "m" / "metrics.json").read_text())
    assert after["history"][:2] == before and after["history"][2]["epoch"] == 3
    assert torch.load(root / "m" / "model.pt", weights_only=True)["epoch"] == 3


def test_export_onnx_of_a_trained_folder_uses_its_weights(run, tmp_path):
    root, _ = run
    result = CliRunner().invoke(app, ["export", str(root / "m"), "--onnx", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "trained weights" in result.output
    saved = load_model(root / "m" / "model.pt")
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = saved.model(torch.from_numpy(x))[:, -1].numpy()
    got = ort_session((tmp_path / "model.onnx").read_bytes(), 1).run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    assert np.abs(got - expected).max() < 1e-4
