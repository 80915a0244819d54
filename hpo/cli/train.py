"""``hpo train CONFIG``: retrain one exported design from scratch and score it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from hourglass.errors import ConfigError
from hpo.cli._app import CompileOpt, show_progress

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


@app.command("train")
def train_command(
    config: Annotated[Path, typer.Argument(help="YAML with model/schedule/data, e.g. from `hpo export`.")],
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if present).")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the schedule's epochs.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write the model (model.pt, model.onnx), metrics.json, pckh.txt, the curve and "
            "prediction pictures here, as each epoch ends.",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last epoch.")
    ] = False,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(help="Save a checkpoint per epoch here and resume from it (--out keeps its own)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final metrics as JSON.")] = False,
    compile_: CompileOpt = None,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU intra-op threads (default: the file's cpu_threads, as its trial trained, else 1 like "
            "a study worker).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train CONFIG with its full schedule, then print the per-joint PCKh@0.5 table.

    With --out DIR the trained model is kept: model.pt (weights + config + metrics, read by
    hourglass.model_file.load_model), model.onnx (checked against PyTorch), metrics.json,
    pckh.txt, curve.html (curve.png with matplotlib) and predictions/*.png, all rewritten as
    each epoch ends; --resume continues DIR's run. See docs/retrain.md.

    The table uses the published convention (err/normalizer < 0.5, columns = mean of left and
    right, Mean over 14 joints); Total is the official pooled MPII figure (<= 0.5). On a CPU
    it trains with the thread count its trial used, so an export reproduces its trial's PCKh.
    """
    import torch

    from hourglass.metrics import format_table
    from hourglass.train import EpochMetrics, pick_device, set_compile_default, train
    from hourglass.train_config import TrainConfig
    from hourglass.validate import check_int
    from hourglass.validate import convert as check_type
    from hourglass.yamlio import load_yaml
    from hpo.record import CPU_THREADS

    doc = load_yaml(config)
    recorded = doc.pop(CPU_THREADS, None) if isinstance(doc, dict) else None
    if recorded is not None:
        check_int(f"{config}: {CPU_THREADS}", check_type(int, recorded, f"{config}: {CPU_THREADS}"), low=1)
    if threads is not None:
        check_int("--threads", threads, low=1)
    cfg = TrainConfig.from_dict(doc, where=f"{config}:")
    set_compile_default(compile_)
    if epochs is not None:
        cfg = replace(cfg, schedule=replace(cfg.schedule, epochs=epochs))
    if pick_device(device).type == "cpu":
        torch.set_num_threads(threads or recorded or 1)
    folder = None
    if out is not None:
        if checkpoint_dir is not None:
            raise ConfigError("--checkpoint-dir: not with --out (the run folder keeps its own checkpoint)")
        from hourglass.data.dataset import load_pose_data
        from hourglass.run_folder import RunFolder
        from hourglass.train import checkpoint_history

        _check_run_folder(out, cfg, resume)
        arrays = load_pose_data(cfg.data)
        folder = RunFolder(
            out, cfg, arrays, device=str(pick_device(device)), history=checkpoint_history(out / "checkpoint")
        )
        checkpoint_dir = folder.checkpoint_dir
    elif resume:
        raise ConfigError("--resume: needs --out DIR (the run to continue)")

    def epoch_line(m: EpochMetrics) -> None:  # as each epoch ends, so that a log shows how far it got
        typer.echo(
            f"epoch {m.epoch:3d}  loss {m.loss:.3e}  PCKh {m.pckh:5.2f}  {m.train_img_s:7.1f} img/s  "
            f"{m.time_s:7.1f} s wall"
        )

    result = train(
        cfg,
        None if folder is None else folder.arrays,
        device=device,
        checkpoint_dir=checkpoint_dir,
        progress=show_progress(as_json),
        on_epoch_end=None if as_json else epoch_line,
        on_epoch_result=None if folder is None else folder.epoch_end,
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "params": result.params,
                    "device": result.device,
                    "wall_time_s": result.wall_time_s,
                    "history": [m.to_dict() for m in result.history],
                    **(result.final.to_json() if result.final else {}),
                },
                indent=2,
            )
        )
        return
    typer.echo(
        f"{cfg.model.block.name}/{cfg.model.stem.name}: {result.params:,} parameters on {result.device}"
    )
    if result.final is not None:
        typer.echo(format_table(result.final))
    if folder is None:
        typer.echo("the trained weights were not kept: pass --out DIR for model.pt and model.onnx")
    else:
        onnx = "model.onnx" if folder.onnx else "no model.onnx (needs the deploy extra)"
        curve = folder.curve_path.name if folder.curve_path else "curve"
        typer.echo(f"wrote {out}/: model.pt, {onnx}, metrics.json, pckh.txt, {curve}, predictions/")
        typer.echo(f"predict: hpo predict {out / 'model.pt'} IMAGE... --out predictions/")


def _check_run_folder(out: Path, cfg, resume: bool) -> None:
    """A run folder is never overwritten by another run: --resume continues the same
    config (more epochs allowed), anything else is an error that names the way out."""
    import torch

    from hourglass.train import checkpoint_history
    from hourglass.train_config import TrainConfig

    ckpt = out / "checkpoint" / "last.pt"
    if not ckpt.is_file():
        if resume:
            raise ConfigError(f"--resume: {out} holds no run to continue (no checkpoint/last.pt)")
        if out.exists() and any(out.iterdir()):
            raise ConfigError(f"--out: {out} is not empty; pass an empty or new folder")
        return
    done = len(checkpoint_history(out / "checkpoint"))
    if not resume:
        raise ConfigError(
            f"--out: {out} already holds a run ({done} epochs done); pass --resume to continue "
            f"it, or another folder"
        )
    saved = TrainConfig.from_dict(
        torch.load(ckpt, map_location="cpu", weights_only=True)["config"], where=str(ckpt)
    )
    if replace(saved, schedule=replace(saved.schedule, epochs=cfg.schedule.epochs)) != cfg:
        raise ConfigError(
            f"--resume: {out} trained another config than this one (only the epochs may change)"
        )
