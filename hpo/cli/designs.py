"""``hpo designs``: the named designs of a space file, with what each one costs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


if TYPE_CHECKING:
    from hourglass.config import HourglassConfig

# measured columns: row key -> table header (the rho lines below the table use both)
_MEASURED = {
    "step_time_s": "step s",
    "ort_1t_ms": "ORT 1t ms",
    "ort_all_ms": "ORT all ms",
    "torch_ms": "torch ms",
}
_RHO_AGAINST = ("params", "flops", "layers")


@app.command()
def designs(
    space: Annotated[
        Path | None,
        typer.Option(
            "--space",
            help="YAML file of named designs (base + overrides) (default: search_spaces/seed_designs.yaml).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    time_steps: Annotated[
        int,
        typer.Option(
            "--time",
            help="Also time this many train steps per design (batch 2, CPU/GPU).",
            show_default=False,
        ),
    ] = 0,
    input_size: Annotated[int, typer.Option(help="Input resolution for FLOPs and timing.")] = 256,
    device: Annotated[
        str, typer.Option(help="Device for --time and for --latency's PyTorch column.")
    ] = "cpu",
    latency: Annotated[
        bool,
        typer.Option(
            "--latency",
            help="Also measure batch-1 inference: ONNX Runtime CPU with 1 thread and "
            "with all threads, and PyTorch eager on --device (median ms; needs the deploy extra).",
        ),
    ] = False,
    runs: Annotated[
        int, typer.Option(help="Timed runs per --latency figure (after 3 warm-up runs).", min=1)
    ] = 20,
    onnx_dir: Annotated[
        Path | None,
        typer.Option(
            "--onnx",
            help="Write <design>.onnx per design into this folder (needs the deploy extra).",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[
        int,
        typer.Option(
            help="PyTorch intra-op threads for --time and --latency's torch column "
            "(1: as a CPU training worker runs).",
            min=1,
        ),
    ] = 1,
) -> None:
    """List every design with parameters, forward GFLOPs, conv/norm layers and ops per step.

    The reference study found training time follows layer (kernel-launch) count rather than
    parameters, so both are shown; --time measures real steps on --device, --latency the
    deployed network's inference, each with Spearman's rho against params, FLOPs and layers.
    """
    if latency or onnx_dir is not None:
        from hourglass.extras import require_deploy

        require_deploy("--latency" if latency else "--onnx")
    import torch

    torch.set_num_threads(threads)

    from hourglass.costs import costs
    from hourglass.designs import SEED_DESIGNS, load_designs

    space = space or SEED_DESIGNS
    rows = []
    for name, cfg in load_designs(space, input_size=input_size).items():
        c = costs(cfg, time_steps=time_steps, device=device)
        row = {
            "name": name,
            "params": c.params,
            "flops": c.flops,
            "layers": c.layers,
            "ops_per_step": c.ops_per_step,
            "input_size": c.input_size,
        }
        if c.step_time_s is not None:
            row["step_time_s"] = c.step_time_s
        if latency or onnx_dir is not None:
            row.update(_deploy(name, cfg, space, onnx_dir, latency, device, runs))
        rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    measured = [k for k in _MEASURED if k in rows[0]]
    # No borders and one space between columns, headers on two lines: every column of
    # --time --latency fits 80 columns with no number cut (rich would cut, not wrap, them).
    # The title on a line of its own: as the table's title it would wrap at the table's width.
    title = f"designs in {_shown(space)} at {input_size}x{input_size}"
    table = Table(box=None, pad_edge=False, collapse_padding=True, show_edge=False)
    for col in ("name", "params", "GFLOPs", "layers", "ops/step", *(_MEASURED[k] for k in measured)):
        header = col.replace("/", "/\n") if col == "ops/step" else col.replace(" ", "\n", 1)
        table.add_column(header, justify="left" if col == "name" else "right", no_wrap=True)
    for r in rows:
        cells = [
            r["name"],
            f"{r['params']:,}",
            f"{r['flops'] / 1e9:.2f}",
            str(r["layers"]),
            str(r["ops_per_step"]),
        ]
        cells += [f"{r[k]:.3f}" if k == "step_time_s" else f"{r[k]:.2f}" for k in measured]
        table.add_row(*cells)
    console = Console()
    console.print(title, highlight=False)
    console.print(table)
    if latency:
        typer.echo(
            f"latency: batch 1, median of {runs} runs after 3 warm-up;\n"
            f"torch on {device}, {threads} thread(s); load average {os.getloadavg()[0]:.2f}"
        )
    if measured:
        _print_rho(rows, measured)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter to read)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _deploy(
    name: str, cfg: HourglassConfig, space: Path, onnx_dir: Path | None, latency: bool, device: str, runs: int
) -> dict:
    """Export one design (checked against PyTorch); write it and/or time it."""
    from hourglass.latency import measure_latency
    from hourglass.onnx_export import export_onnx, seeded_model

    model = seeded_model(cfg)
    exported = export_onnx(model, where=f"{space}: designs.{name}")
    out: dict = {"onnx_max_abs_diff": exported.max_abs_diff}
    if onnx_dir is not None:
        out["onnx"] = str(exported.save(onnx_dir / f"{name}.onnx"))
    if latency:
        lat = measure_latency(model, onnx_model=exported, torch_device=device, runs=runs)
        out.update(ort_1t_ms=lat.ort_1t_ms, ort_all_ms=lat.ort_all_ms, torch_ms=lat.torch_ms)
    return out


def _print_rho(rows: list[dict], measured: list[str]) -> None:
    """Spearman's rho of each measured column against the counted costs."""
    from hpo.report import spearman

    typer.echo(f"Spearman rho (n={len(rows)}) vs " + " / ".join(_RHO_AGAINST) + ":")
    for key in measured:
        y = [r[key] for r in rows]
        rhos = "  ".join(f"{spearman([r[c] for r in rows], y):+.2f}" for c in _RHO_AGAINST)
        typer.echo(f"  {_MEASURED[key]:<11} {rhos}")
