"""ONNX export of any design: static 1x3xSxS input, last stack's heatmaps, equal to PyTorch."""

import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from hourglass.config import HourglassConfig
from hourglass.errors import ConfigError, HourglassError
from hourglass.extras import require_deploy
from hourglass.model import build_model
from hourglass.onnx_export import ATOL, OPSET, export_onnx, seeded_model

SMALL = {"features": 16, "depth": 2, "input_size": 32, "joints": 5, "stem": {"channels": 4}}
# the three: a depthwise-separable block, the patch4 stem, four stacks
DESIGNS = {
    "dwsep_all": {**SMALL, "block": {"name": "bottleneck", "separable": "all"}},
    "patch4": {**SMALL, "stem": {"name": "patch4", "channels": 4}},
    "four_stacks": {**SMALL, "stacks": 4, "block": {"name": "conv2", "dilation": 2}},
}


@pytest.mark.parametrize("name", DESIGNS)
def test_export_runs_in_onnx_runtime_like_pytorch(name, tmp_path):
    config = HourglassConfig.from_dict(DESIGNS[name])
    model = seeded_model(config, seed=3)
    path = export_onnx(model).save(tmp_path / f"{name}.onnx")

    graph = onnx.load(str(path))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= OPSET >= 17
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 32, 32]  # static, batch 1

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    got = session.run(None, {session.get_inputs()[0].name: images.numpy()})[0]
    with torch.no_grad():
        stacks = model.eval()(images)  # (1, stacks, J, 8, 8)
    assert got.shape == (1, 5, 8, 8)
    assert np.abs(got - stacks[:, -1].numpy()).max() <= ATOL
    if config.stacks > 1:  # the output really is the LAST stack, not the first
        assert np.abs(got - stacks[:, 0].numpy()).max() > ATOL


def test_export_of_a_config_is_seeded_and_leaves_the_global_rng_alone():
    config = HourglassConfig.from_dict(DESIGNS["patch4"])
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a, b = export_onnx(config, seed=1), export_onnx(config, seed=1)
    assert torch.equal(torch.rand(3), before)
    assert a.data == b.data and a.input_size == 32 and a.max_abs_diff <= ATOL


def test_a_mismatch_fails_with_the_figure():
    model = build_model(HourglassConfig.from_dict(DESIGNS["patch4"]))
    with pytest.raises(
        HourglassError, match=r"^trial 3: ONNX export differs from PyTorch: max abs difference \S+ > -1"
    ):
        export_onnx(model, atol=-1.0, where="trial 3")


def test_missing_deploy_packages_fail_in_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # find_spec then reports it missing
    with pytest.raises(
        ConfigError,
        match=r'--onnx needs the deploy extra \(missing: onnxruntime\): pip install -e "\.\[deploy\]"',
    ):
        require_deploy("--onnx")
    with pytest.raises(ConfigError, match=r"deploy extra"):
        export_onnx(HourglassConfig.from_dict(DESIGNS["patch4"]))
