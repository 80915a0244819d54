"""Any design as an ONNX model for deployment, checked against PyTorch before it is kept.

The exported graph takes a static ``(1, 3, S, S)`` image batch and returns the last
stack's heatmaps ``(1, joints, S/4, S/4)``: the intermediate stacks only serve the
training loss, so a deployed network neither computes nor ships them as outputs.

We use torch's own exporter in its TorchScript mode (``dynamo=False``): in torch 2.13 it
exports every design of the family in ~3 s where the torch.export-based one takes ~15 s
on the same loaded CPU, and the latency objective exports one model per trial. The onnx
and onnxruntime packages are an optional extra (``[deploy]``, see :mod:`hourglass.extras`).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hourglass.config import HourglassConfig
from hourglass.errors import HourglassError
from hourglass.extras import require_deploy
from hourglass.model import build_model

__all__ = [
    "OPSET",
    "ATOL",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "LastStack",
    "OnnxModel",
    "export_onnx",
    "ort_session",
    "seeded_model",
]

OPSET = 17
ATOL = 1e-4  # max |ONNX Runtime - PyTorch| on random input, else the export fails
INPUT_NAME, OUTPUT_NAME = "images", "heatmaps"


def seeded_model(config: HourglassConfig, seed: int = 0) -> nn.Module:
    """``build_model(config)`` with weights from ``seed``, leaving the global RNG as it was
    (a trial measures its latency before it trains, and training draws from that RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config)


class LastStack(nn.Module):
    """The deployed network: images ``(N, 3, S, S)`` -> last stack's heatmaps ``(N, J, S/4, S/4)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)[:, -1]  # (N, stacks, J, h, w) -> (N, J, h, w)


@dataclass(frozen=True)
class OnnxModel:
    """A checked export: the serialized model, and how far ONNX Runtime was from PyTorch."""

    data: bytes
    input_size: int
    max_abs_diff: float

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.data)
        return path


def ort_session(data: bytes, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0 = ONNX Runtime's default (all physical cores)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def export_onnx(
    model_or_config: nn.Module | HourglassConfig,
    input_size: int | None = None,
    *,
    opset: int = OPSET,
    atol: float = ATOL,
    seed: int = 0,
    where: str = "",
) -> OnnxModel:
    """Export a design (config: freshly initialised; module: its weights) and check it.

    The check runs the ONNX model in ONNX Runtime (CPU, 1 thread) and the eager model on the
    same random input; a difference above ``atol`` raises with the figure, so no file of a
    model that computes something else is ever written."""
    require_deploy()
    import onnx

    model = (
        seeded_model(model_or_config, seed)
        if isinstance(model_or_config, HourglassConfig)
        else model_or_config
    )
    config = getattr(model, "config", None)
    size = input_size if input_size is not None else getattr(config, "input_size", None)
    if size is None:
        raise ValueError("input_size is required for a model without a .config")
    net = LastStack(model).to("cpu").eval()
    images = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            net,
            (images,),
            buffer,
            opset_version=opset,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            do_constant_folding=True,
        )
        expected = net(images).numpy()
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data))
    got = ort_session(data, threads=1).run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]
    diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    if not diff <= atol:
        prefix = f"{where}: " if where else ""
        raise HourglassError(
            f"{prefix}ONNX export differs from PyTorch: max abs difference {diff:.3g} > {atol:g} "
            f"(output {got.shape} vs {expected.shape})"
        )
    return OnnxModel(data=data, input_size=size, max_abs_diff=diff)
