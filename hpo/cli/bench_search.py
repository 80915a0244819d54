"""``hpo bench-search``: does the search pay? Hypervolume per training epoch, against baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from hpo.cli._app import show_progress

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


def _methods(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def print_summary(summary: dict) -> None:
    budget = summary["budget_epochs"]
    table = Table(title=f"Hypervolume after {budget} training epochs, {summary['seeds']} seeds (normalised, ref (0, 1, 1))")
    for col in ("method", "final HV", "± std", "median", f"epochs to random's final (of {budget})", "reached",
                "≤ 1/3", "trials", "pruned", "epochs/trial"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, m in summary["methods"].items():
        to_random = m["epochs_to_random_final"]
        table.add_row(name, f"{m['final_hv_mean']:.4f}", f"{m['final_hv_std']:.4f}", f"{m['final_hv_median']:.4f}",
                      "-" if to_random is None else f"{to_random:.1f}",
                      f"{m['reached_random_final_seeds']}/{summary['seeds']}",
                      f"{m['random_final_within_third_share']:.0%}", f"{m['trials_mean']:.1f}",
                      f"{m['pruned_mean']:.1f}", f"{m['epochs_per_trial_mean']:.2f}")
    Console(width=max(Console().width, 120)).print(table)
    if summary["wins_vs_nsga2_nopruning"] is not None:
        typer.echo(f"tpe_mopruning beats nsga2 (no pruning) in {summary['wins_vs_nsga2_nopruning']} of {summary['seeds']} seeds")
    rho = summary["time_objective"].get("spearman_charged_vs_wall")
    if rho is not None:
        typer.echo(f"charged training time vs measured wall time: Spearman {rho:.2f} over {summary['time_objective']['trials']} trials")


@app.command("bench-search")
def bench_search(
    budget_epochs: Annotated[Optional[int], typer.Option("--budget-epochs", help="Training epochs each method gets per seed (pruned trials count what they trained). Default: 40, or --budget-trials full trials with --table.", show_default=False)] = None,
    budget_trials: Annotated[Optional[float], typer.Option("--budget-trials", help="The budget as this many full trials' epochs (instead of --budget-epochs). Default with --table: 30.", show_default=False)] = None,
    table: Annotated[Optional[Path], typer.Option(help="A recorded table (hpo bench-table): replay every method against it in seconds instead of training.", show_default=False)] = None,
    seeds: Annotated[int, typer.Option(help="Seeds (each seeds the samplers and the training).")] = 5,
    json_path: Annotated[Path, typer.Option("--json", help="Summary and per-seed curves, JSON.")] = Path("reports/bench_search.json"),
    html: Annotated[Path, typer.Option(help="Plot of hypervolume vs epochs spent (mean and 95 % interval per method).")] = Path("reports/bench_search.html"),
    svg: Annotated[Optional[Path], typer.Option(help="The same plot as a small static SVG (e.g. for a README).", show_default=False)] = None,
    preset: Annotated[str, typer.Option(help="Study preset (space, schedule, data, TPE and pruner settings).")] = "quickstart",
    epochs_per_trial: Annotated[Optional[int], typer.Option("--epochs-per-trial", help="Epochs of an unpruned trial (default: the preset's).", show_default=False)] = None,
    data: Annotated[Optional[str], typer.Option(help="Pose data, e.g. synthetic:400:64:0 (default: the preset's).", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Training batch size (default: the preset's).", show_default=False)] = None,
    population_size: Annotated[int, typer.Option("--population-size", help="NSGA-II generation size.")] = 6,
    min_epochs: Annotated[Optional[int], typer.Option("--min-epochs", help="Pruner: first rung (default: the preset's).", show_default=False)] = None,
    eta: Annotated[Optional[int], typer.Option(help="Pruner: rung spacing and keep 1/eta (default: the preset's).", show_default=False)] = None,
    min_trials: Annotated[Optional[int], typer.Option("--min-trials", help="Pruner: trials a rung needs before it prunes (default: the preset's).", show_default=False)] = None,
    methods: Annotated[Optional[str], typer.Option(help="Comma-separated methods (default: random,seed_grid,nsga2,tpe_mopruning,nsga2_mopruning; with --table also tpe, moasha, hub_multi_metric); 'tpe' (TPE without pruning) may be added as a control.", show_default=False)] = None,
    workers: Annotated[int, typer.Option(help="Processes running (method, seed) studies at once (one CPU thread each).")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Give random search, the reference designs, NSGA-II, and TPE / NSGA-II with Pareto-rank
    pruning the same budget of training epochs on the preset's (synthetic) data and compare
    the hypervolume of their (PCKh, params, training time) fronts against epochs spent.

    Live, training time is charged by a deterministic cost model (operator calls and FLOPs per step), not wall time, so that a loaded machine does not decide the comparison. With --table, each trial's curve (one of the point's recorded seeds, drawn per trial) and its measured training time come from the table; the outside baselines MOASHA (moasha) and OptunaHub's multi_metric_pruner (hub_multi_metric) join.
    """
    from hpo.bench.search import (
        METHODS, SearchBenchSettings, budget_for, run_search_bench, table_methods, write_html, write_svg,
    )

    default_methods = table_methods() if table is not None else METHODS
    settings = SearchBenchSettings(
        preset=preset, budget_epochs=budget_for(budget_epochs, budget_trials, table, preset, epochs_per_trial),
        seeds=seeds, epochs_per_trial=epochs_per_trial, data=data,
        batch_size=batch_size, population_size=population_size, min_epochs=min_epochs, eta=eta,
        min_trials=min_trials, methods=_methods(methods) if methods is not None else default_methods, workers=workers,
        table=str(table) if table is not None else None,
    )
    summary = run_search_bench(settings, progress=show_progress(quiet))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print_summary(summary)
    typer.echo(f"json: {json_path}")
    typer.echo(f"plot: {write_html(summary, html)}")
    if svg is not None:
        typer.echo(f"plot: {write_svg(summary, svg)}")
