"""``hpo bench``: training, evaluation, data and bookkeeping throughput, side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from hpo.cli._app import show_progress

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


def _gib(n: int | None) -> str:
    return f"{n / 2**30:.2f}" if n else "-"


def _print(result: dict[str, Any], console: Console) -> None:
    s = result["settings"]
    threads = result["threads"]["chosen"] if result["threads"] else "-"
    table = Table(
        title=f"training on {result['device']} ({result['device_name']}), input {s['input_size']}, "
        f"batch {s['batch_size']}, threads {threads}"
    )
    for col in ("model", "params", "GFLOPs", "train img/s", "step vs reference", "eval img/s", "peak GiB"):
        table.add_column(col, justify="left" if col == "model" else "right")
    ref = result["reference"]
    table.add_row(
        "reference",
        f"{ref['params']:,}",
        "",
        f"{ref['train_img_s']:.1f}",
        "1.00",
        f"{ref['eval_img_s']:.1f}",
        _gib(ref["peak_memory_bytes"]),
    )
    for name, d in result["designs"].items():
        flops = f"{d['flops'] / 1e9:.2f}" if "flops" in d else ""
        table.add_row(
            name,
            f"{d['params']:,}",
            flops,
            f"{d['train_img_s']:.1f}",
            f"{d['train_step_vs_reference']:.2f}",
            f"{d['eval_img_s']:.1f}",
            _gib(d["peak_memory_bytes"]),
        )
    console.print(table)
    data, bk, r = result["data"], result["bookkeeping"], result["ratios"]
    pw = data["per_worker"]
    console.print(
        f"data at {data['input_size']}px, img/s per worker: cache in memory {pw['memory_img_s']:.0f}, "
        f"HDF5 row per sample {pw['hdf5_img_s']:.0f} ({data['workers_hdf5_img_s']:.0f} with "
        f"{data['workers']} workers), JPEG decode-and-crop {pw['jpeg_img_s']:.0f}; "
        f"device batches on {data['device_batches_device']} {data['device_batches_img_s']:.0f}"
    )
    wd = result["train_with_data"]
    console.print(
        f"baseline with its data ({wd['data_path']}): {wd['img_s']:.1f} img/s; seed schedule projected "
        f"{result['projected_seed_schedule_s']:.0f} s ({result['projected_basis']})"
    )
    console.print(
        f"bookkeeping per trial ({bk['prior_trials']} trials in the study): {bk['per_trial_s']:.2f} s "
        f"(writes {bk['writes_s']:.2f} s, pruning {bk['pruning_s']:.3f} s) = {100 * bk['share']:.3f}% of a "
        f"trial; {100 * bk['share_fastest_design']:.3f}% for {bk['fastest_design']}; "
        f"costs() {bk['costs_s']:.2f} s"
    )
    m = result["mfu"]
    mfu = ""
    if m is not None:
        spec = f"{100 * m['vs_spec']:.1f}% of the data sheet, " if m["vs_spec"] is not None else ""
        mfu = f", MFU ({m['of']}) {spec}{100 * m['vs_matmul']:.1f}% of a measured bf16 matmul"
    if result["compile_s"] is not None:
        console.print(f"compile + capture: {result['compile_s']:.1f} s (counted in the projection)")
    console.print(
        f"peak memory: {_gib(result['memory']['peak_bytes'])} GiB ({result['memory']['kind']}); "
        f"achieved {result['achieved_tflops']:.3f} TFLOP/s{mfu}"
    )
    console.print(
        f"ratios: train step vs reference {r['train_step_vs_reference']:.2f} (lower is better), "
        f"cache loader vs decode {r['cache_loader_vs_decode']:.2f}x "
        f"(row-per-sample HDF5 {r['cache_rows_vs_decode']:.2f}x); {result['elapsed_s']:.0f} s in all"
    )


@app.command()
def bench(
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: cuda if present).")
    ] = None,
    designs: Annotated[
        str | None,
        typer.Option(help="Comma-separated seed designs to time (default: all; baseline always)."),
    ] = None,
    json_file: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the full result as JSON to this file ('-': stdout only)."),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="Fewer steps and a smaller CPU input: a smoke run in under a minute.")
    ] = False,
    threads: Annotated[
        int, typer.Option(help="CPU threads; 0 = time 1 vs all cores and use the faster (--quick: 1).")
    ] = 0,
    smoke: Annotated[
        bool, typer.Option("--smoke", hidden=True, help="Toy sizes, every section once (CI).")
    ] = False,
    compile_: Annotated[
        bool | None,
        typer.Option(
            "--compile/--no-compile",
            help="Also time the baseline compiled as trials run it (default: on CUDA).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Measure what a trial costs on DEVICE, every figure also as a ratio to the textbook network.

    Training img/s per design (forward + backward + optimizer, steady state), evaluation,
    the data pipeline (HDF5 cache vs JPEG decode-and-crop, per worker and with workers,
    and GPU-resident batches), Optuna bookkeeping per trial, and peak memory. On a CPU the
    model input is reduced (the JSON says so); the data pipeline always runs at 256 px.
    """
    from hpo.bench.trial_cost import run_trial_cost_bench, trial_cost_settings

    names = tuple(n.strip() for n in designs.split(",") if n.strip()) if designs else ()
    settings = trial_cost_settings(
        device, quick=quick, designs=names, threads=threads, compile=compile_, smoke=smoke
    )
    result = run_trial_cost_bench(
        settings, progress=show_progress(json_file is not None and str(json_file) == "-")
    )
    if json_file is not None and str(json_file) == "-":
        typer.echo(json.dumps(result, indent=2))
        return
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(json.dumps(result, indent=2) + "\n")
    _print(result, Console())
    if json_file is not None:
        typer.echo(f"wrote {json_file}")
