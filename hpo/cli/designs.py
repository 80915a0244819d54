"""``hpo designs``: the named designs of a space file, with what each one costs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from hpo.cli._app import app


@app.command()
def designs(
    space: Annotated[Optional[Path], typer.Option(
        "--space", help="YAML file of named designs (base + overrides) (default: search_spaces/seed_designs.yaml).",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list instead of a table.")] = False,
    time_steps: Annotated[
        int, typer.Option("--time", help="Also time this many train steps per design (batch 2, CPU/GPU).", show_default=False)
    ] = 0,
    input_size: Annotated[int, typer.Option(help="Input resolution for FLOPs and timing.")] = 256,
    device: Annotated[str, typer.Option(help="Device for --time.")] = "cpu",
) -> None:
    """List every design with parameters, forward GFLOPs, conv/norm layers and ops per step.

    The reference study found training time follows layer (kernel-launch) count rather than
    parameters, so both are shown; --time measures real steps on --device.
    """
    from hourglass.costs import costs
    from hourglass.designs import SEED_DESIGNS, load_designs

    space = space or SEED_DESIGNS
    rows = []
    for name, cfg in load_designs(space, input_size=input_size).items():
        c = costs(cfg, time_steps=time_steps, device=device)
        row = {"name": name, "params": c.params, "flops": c.flops, "layers": c.layers,
               "ops_per_step": c.ops_per_step, "input_size": c.input_size}
        if c.step_time_s is not None:
            row["step_time_s"] = c.step_time_s
        rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"designs in {space} at {input_size}x{input_size}")
    for col in ("name", "params", "GFLOPs", "layers", "ops/step") + (("step s",) if time_steps else ()):
        table.add_column(col, justify="left" if col == "name" else "right")
    for r in rows:
        cells = [r["name"], f"{r['params']:,}", f"{r['flops'] / 1e9:.2f}", str(r["layers"]), str(r["ops_per_step"])]
        if time_steps:
            cells.append(f"{r['step_time_s']:.3f}")
        table.add_row(*cells)
    Console().print(table)
