"""``hpo train CONFIG``: retrain one exported design from scratch and score it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import typer

from hpo.cli._app import show_progress

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


@app.command("train")
def train_command(
    config: Annotated[Path, typer.Argument(help="YAML with model/schedule/data, e.g. from `hpo export`.")],
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if present).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override the schedule's epochs.")] = None,
    checkpoint_dir: Annotated[
        Optional[Path], typer.Option(help="Save a checkpoint per epoch here and resume from it.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final metrics as JSON.")] = False,
    compile_: Annotated[Optional[str], typer.Option("--compile", help="Compile the training step: off, default (fused kernels), reduce-overhead (fused kernels replayed as CUDA graphs). Default: reduce-overhead on CUDA, off on CPU; also $HPO_COMPILE.", show_default=False)] = None,
    threads: Annotated[Optional[int], typer.Option(
        help="CPU intra-op threads (default: the file's cpu_threads, as its trial trained, else 1 like a study worker).",
        show_default=False)] = None,
) -> None:
    """Train CONFIG with its full schedule, then print the per-joint PCKh@0.5 table.

    The table uses the published convention (err/normalizer < 0.5, columns = mean of left and
    right, Mean over 14 joints); Total is the official pooled MPII figure (<= 0.5). On a CPU
    it trains with the thread count its trial used, so an export reproduces its trial's PCKh.
    """
    import torch

    from hourglass.validate import convert as check_type
    from hourglass.validate import check_int
    from hourglass.metrics import format_table
    from hourglass.train import EpochMetrics, TrainConfig, pick_device, set_compile_default, train
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

    def epoch_line(m: EpochMetrics) -> None:  # as each epoch ends, so that a log shows how far it got
        typer.echo(f"epoch {m.epoch:3d}  loss {m.loss:.3e}  PCKh {m.pckh:5.2f}  {m.train_img_s:7.1f} img/s  {m.time_s:7.1f} s wall")

    result = train(cfg, device=device, checkpoint_dir=checkpoint_dir, progress=show_progress(as_json),
                   on_epoch_end=None if as_json else epoch_line)
    if as_json:
        typer.echo(json.dumps({
            "params": result.params, "device": result.device, "wall_time_s": result.wall_time_s,
            "history": [m.to_dict() for m in result.history], **(result.final.to_json() if result.final else {}),
        }, indent=2))
        return
    typer.echo(f"{cfg.model.block.name}/{cfg.model.stem.name}: {result.params:,} parameters on {result.device}")
    if result.final is not None:
        typer.echo(format_table(result.final))
