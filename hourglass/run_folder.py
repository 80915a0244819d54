"""What ``hpo train CONFIG --out DIR`` leaves in DIR, rewritten as each epoch ends:

- ``model.pt``: weights + config + metrics (:mod:`hourglass.model_file`; ``torch.load``
  with ``weights_only=True`` reads it, :func:`hourglass.model_file.load_model` rebuilds it);
- ``model.onnx``: the trained network (images -> last stack's heatmaps), checked against
  PyTorch (:func:`hourglass.onnx_export.export_onnx`), when onnx/onnxruntime are installed;
- ``metrics.json``: PCKh per joint and per table column, Mean, Total, parameters, time,
  device and the curve (loss, PCKh, lr per epoch);
- ``pckh.txt``: the per-joint table; ``curve.png`` (matplotlib, if installed) or
  ``curve.html`` (plotly): loss and PCKh per epoch;
- ``predictions/val_<i>.png``: the skeleton predicted on a few validation images;
- ``checkpoint/last.pt``: the training state ``--resume`` continues from.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from hourglass.data.cache import PoseArrays
from hourglass.data.dataset import STRIDE
from hourglass.data.heatmaps import decode_heatmaps, to_image_coords
from hourglass.data.mpii import JOINT_NAMES
from hourglass.extras import deploy_available
from hourglass.metrics import PCKhResult, format_table
from hourglass.model_file import save_model
from hourglass.predict import Box, crop_input, draw_skeleton
from hourglass.train import EpochMetrics
from hourglass.train_config import TrainConfig

__all__ = ["RunFolder", "CHECKPOINT", "MODEL", "ONNX", "METRICS", "TABLE", "PREDICTIONS"]

CHECKPOINT, MODEL, ONNX, METRICS, TABLE, PREDICTIONS = (
    "checkpoint",
    "model.pt",
    "model.onnx",
    "metrics.json",
    "pckh.txt",
    "predictions",
)
N_PREDICTIONS = 4  # validation images drawn per epoch


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)  # atomic: a reader (or a kill) never sees half a file


class RunFolder:
    """Writes a training run's files into ``out`` (see the module docstring).

    Args:
        out: the folder (created).
        config: what is trained.
        arrays: the loaded data (validation images for the prediction pictures).
        device: where it trains (recorded in the metrics).
        history: epochs already done (a resumed run), so the curve starts at epoch 1.
        onnx: also write ``model.onnx`` (default: when the deploy extra is installed).
    """

    def __init__(
        self,
        out: str | Path,
        config: TrainConfig,
        arrays: PoseArrays,
        *,
        device: str,
        history: list[EpochMetrics] | None = None,
        onnx: bool | None = None,
    ) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.arrays = arrays
        self.device = device
        self.history = list(history or [])
        self.onnx = deploy_available() if onnx is None else onnx
        self.onnx_max_abs_diff: float | None = None
        self.curve_path: Path | None = None
        val = np.flatnonzero(arrays.is_val)
        self._val_rows = (
            val[np.linspace(0, len(val) - 1, min(N_PREDICTIONS, len(val))).astype(int)] if len(val) else val
        )

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / CHECKPOINT

    def epoch_end(self, m: EpochMetrics, result: PCKhResult, model: nn.Module) -> None:
        """Everything for the weights after epoch ``m.epoch`` (train()'s ``on_epoch_result``)."""
        self.history.append(m)
        with torch.random.fork_rng(devices=[]):  # training draws from the global RNG: leave it alone
            net = copy.deepcopy(model).to("cpu").eval()  # the training model stays where and as it is
            params = sum(p.numel() for p in net.parameters())
            if self.onnx:
                from hourglass.onnx_export import export_onnx

                exported = export_onnx(net, self.config.model.input_size, where=str(self.out / ONNX))
                exported.save(self.out / ONNX)
                self.onnx_max_abs_diff = exported.max_abs_diff
            metrics = self.metrics(result, params)
            save_model(self.out / MODEL, net, self.config, metrics=metrics, epoch=m.epoch)
            _write_text(self.out / METRICS, json.dumps(metrics, indent=2) + "\n")
            _write_text(self.out / TABLE, format_table(result) + "\n")
            self.curve_path = write_curve(self.out, self.history)
            self._draw_predictions(net)

    def metrics(self, result: PCKhResult, params: int) -> dict[str, Any]:
        last = self.history[-1]
        return {
            "pckh": {**{k: float(v) for k, v in result.per_joint.items()}, "Total": float(result.total)},
            "pckh_per_joint": {
                n: (None if np.isnan(a) else float(a)) for n, a in zip(JOINT_NAMES, result.joint_accuracy)
            },
            "persons_scored": int(result.count),
            "params": int(params),
            "epochs": int(last.epoch),
            "epochs_planned": int(self.config.schedule.epochs),
            "wall_time_s": float(last.time_s),
            "train_time_s": float(last.train_time_s),
            "device": self.device,
            "onnx_max_abs_diff": self.onnx_max_abs_diff,
            "config": self.config.to_dict(),
            "history": [h.to_dict() for h in self.history],
        }

    def _draw_predictions(self, net: nn.Module) -> None:
        folder = self.out / PREDICTIONS
        folder.mkdir(exist_ok=True)
        size = self.config.model.input_size
        crop, content = self.arrays.crop_size, self.arrays.content_size
        box = Box(((crop - 1) / 2, (crop - 1) / 2), float(content))  # the content box, as in evaluation
        for row in self._val_rows:
            image = np.asarray(self.arrays.images[int(row)])
            x, to_crop = crop_input(image, box, size)
            with torch.no_grad():
                heat = net(torch.from_numpy(x))[:, -1].float()
            pts = to_image_coords(decode_heatmaps(heat).numpy().astype(np.float64), to_crop[None], STRIDE)[0]
            cv2.imwrite(str(folder / f"val_{int(row)}.png"), draw_skeleton(image, [pts]))


def write_curve(out: Path, history: list[EpochMetrics]) -> Path:
    """Loss and PCKh per epoch: ``curve.png`` with matplotlib if it is installed (it is no
    dependency), else ``curve.html`` with plotly (a dependency)."""
    epochs = [m.epoch for m in history]
    loss = [m.loss for m in history]
    pck = [m.pckh for m in history]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from plotly.subplots import make_subplots

        fig = make_subplots(specs=[[{"secondary_y": True}]])
        fig.add_scatter(x=epochs, y=loss, name="training loss", mode="lines+markers")
        fig.add_scatter(x=epochs, y=pck, name="PCKh@0.5 Mean (val)", mode="lines+markers", secondary_y=True)
        fig.update_xaxes(title_text="epoch")
        fig.update_yaxes(title_text="loss", type="log", secondary_y=False)
        fig.update_yaxes(title_text="PCKh@0.5 (%)", secondary_y=True)
        path = out / "curve.html"
        tmp = out / "curve.html.tmp"
        fig.write_html(tmp, include_plotlyjs=True, full_html=True)  # offline: the JS is inside
        os.replace(tmp, path)
        return path
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.semilogy(epochs, loss, "o-", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(epochs, pck, "s-", color="tab:orange", label="PCKh@0.5 Mean (val)")
    ax2.set_ylabel("PCKh@0.5 (%)")
    fig.legend(loc="lower center", ncol=2)
    fig.tight_layout()
    path = out / "curve.png"
    fig.savefig(out / "curve.tmp.png", dpi=100)
    plt.close(fig)
    os.replace(out / "curve.tmp.png", path)
    return path
