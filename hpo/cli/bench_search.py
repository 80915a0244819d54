"""``hpo bench-search``: does the search pay? Hypervolume per training epoch, against baselines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hpo.cli._app import show_progress

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


def _methods(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def _share(w: dict) -> str:
    return f"{w['share']:4.0%} [{w['low']:.0%}-{w['high']:.0%}]" if w["n"] else "-"


def summary_lines(summary: dict) -> list[str]:
    """The summary as lines of at most 80 columns: the headline view per method against the
    default (median HV, difference, Mann-Whitney p, shares reaching random's final front
    with 95 % intervals), the other view's median, then the trial counts."""
    budget, n, default = summary["budget_epochs"], summary["seeds"], summary["default_method"]
    held = summary["headline"] == "hv_heldout"
    view, other = ("heldout", "as_trained") if held else ("as_trained", None)
    seeds = summary["seed_list"]
    out = [
        f"{'Held-out' if held else 'As-trained'} hypervolume after {budget} training epochs, {n} seeds "
        f"({seeds[0]}-{seeds[-1]})",
        f"diff, p: median vs {default or '(no default run)'}, two-sided Mann-Whitney U",
        "<= 1/3, <= 1/6: share of seeds reaching random's final front by then",
        f"{'method':17s}{'median':>7s}{'diff':>8s}{'p':>6s}  {'<= 1/3 [95% CI]':>16s} "
        f"{'<= 1/6 [95% CI]':>15s}" + (f"{'trained':>8s}" if other else ""),
    ]
    for name, m in summary["methods"].items():
        v = m[view]
        vs = v.get("vs_default") or {}
        diff = "-" if vs.get("median_diff") is None or name == default else f"{vs['median_diff']:+.4f}"
        p = "-" if vs.get("p") is None or name == default else f"{vs['p']:.2f}"
        out.append(
            f"{name:17.17s}{v['median_hv']:7.4f}{diff:>8s}{p:>6s}  {_share(v['within_third']):>16s} "
            f"{_share(v['within_sixth']):>15s}" + (f"{m[other]['median_hv']:8.4f}" if other else "")
        )
    oracle = summary.get("oracle")
    if oracle:
        o = oracle[view]
        out.append(
            f"{'oracle (bound)':17s}{'':7s}{'':8s}{'':6s}  {_share(o['within_third']):>16s} "
            f"{_share(o['within_sixth']):>15s}"
        )
    out.append("")
    out.append(
        f"{'method':17s}{'trials':>8s}{'pruned':>8s}{'complete':>9s}{'epochs/trial':>13s}{'s/run':>7s}"
    )
    for name, m in summary["methods"].items():
        out.append(
            f"{name:17.17s}{m['trials_mean']:8.1f}{m['pruned_mean']:8.1f}{m['complete_mean']:9.1f}"
            f"{m['epochs_per_trial_mean']:13.2f}{m['wall_s_mean']:7.1f}"
        )
    rho = summary["time_objective"].get("spearman_charged_vs_wall")
    if rho is not None:
        out.append(
            f"charged training time vs wall time: Spearman {rho:.2f} over "
            f"{summary['time_objective']['trials']} trials"
        )
    return out


@app.command("bench-search")
def bench_search(
    budget_epochs: Annotated[
        int | None,
        typer.Option(
            "--budget-epochs",
            help="Training epochs each method gets per seed (pruned trials count what they trained). "
            "Default: 40, or --budget-trials full trials with --table.",
            show_default=False,
        ),
    ] = None,
    budget_trials: Annotated[
        float | None,
        typer.Option(
            "--budget-trials",
            help="The budget as this many full trials' epochs (instead of --budget-epochs). Default with "
            "--table: 30.",
            show_default=False,
        ),
    ] = None,
    table: Annotated[
        Path | None,
        typer.Option(
            help="A recorded table (hpo bench-table): replay every method against it in seconds instead of "
            "training.",
            show_default=False,
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Seeds (each seeds the samplers and the training).")] = 5,
    seed_offset: Annotated[
        int,
        typer.Option(
            "--seed-offset",
            help="First seed: report on seeds not used for tuning (the quickstart's pruner settings were "
            "tuned on seeds 0-29).",
        ),
    ] = 0,
    json_path: Annotated[Path, typer.Option("--json", help="Summary and per-seed curves, JSON.")] = Path(
        "reports/bench_search.json"
    ),
    runs_dir: Annotated[
        Path | None,
        typer.Option(
            "--runs-dir",
            help="Keep every finished (method, seed) run here and reuse those found: a long benchmark "
            "resumes, a shorter one is summarised at once.",
            show_default=False,
        ),
    ] = None,
    curves: Annotated[
        bool,
        typer.Option(
            "--curves/--no-curves",
            help="Keep every run's per-trial records in the JSON (large for many seeds).",
        ),
    ] = True,
    html: Annotated[
        Path, typer.Option(help="Plot of hypervolume vs epochs spent (mean and 95 % interval per method).")
    ] = Path("reports/bench_search.html"),
    svg: Annotated[
        Path | None,
        typer.Option(help="The same plot as a small static SVG (e.g. for a README).", show_default=False),
    ] = None,
    preset: Annotated[
        str, typer.Option(help="Study preset (space, schedule, data, TPE and pruner settings).")
    ] = "quickstart",
    epochs_per_trial: Annotated[
        int | None,
        typer.Option(
            "--epochs-per-trial",
            help="Epochs of an unpruned trial (default: the preset's).",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(help="Pose data, e.g. synthetic:400:64:0 (default: the preset's).", show_default=False),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Training batch size (default: the preset's).", show_default=False),
    ] = None,
    population_size: Annotated[int, typer.Option("--population-size", help="NSGA-II generation size.")] = 6,
    min_epochs: Annotated[
        int | None,
        typer.Option("--min-epochs", help="Pruner: first rung (default: the preset's).", show_default=False),
    ] = None,
    eta: Annotated[
        int | None,
        typer.Option(help="Pruner: rung spacing and keep 1/eta (default: the preset's).", show_default=False),
    ] = None,
    min_trials: Annotated[
        int | None,
        typer.Option(
            "--min-trials",
            help="Pruner: trials a rung needs before it prunes (default: the preset's).",
            show_default=False,
        ),
    ] = None,
    methods: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated methods (default: random,seed_grid,nsga2,tpe_mopruning,nsga2_mopruning; "
            "with --table also tpe, moasha, hub_multi_metric, bohb_tpe, and syne_moasha, smac_mf with "
            "the [bench] extra); 'tpe' (TPE without pruning) may be added as a control, "
            "'screen_promote' (hpo.screening) live or replayed.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes running (method, seed) studies at once (one CPU thread each). Default: 1 live, "
            "one per CPU with --table (the same results as one).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Give random search, the reference designs, NSGA-II, and TPE / NSGA-II with Pareto-rank
    pruning the same budget of training epochs on the preset's (synthetic) data and compare
    the hypervolume of their (PCKh, params, training time) fronts against epochs spent.

    Live, training time is charged by a deterministic cost model (operator calls and FLOPs per step),
    not wall time, so that a loaded machine does not decide the comparison. With --table, each design
    trains with one of its recorded seeds, fixed for the run, and is scored on the seeds it was not
    trained on (the headline; the as-trained front beside it); outside rules (moasha, hub_multi_metric,
    bohb_tpe) and the peers' own code (syne_moasha, smac_mf) join.
    """
    from hpo.bench.plot import write_html, write_svg
    from hpo.bench.search import run_search_bench
    from hpo.bench.settings import METHODS, TABLE_METHODS, SearchBenchSettings, budget_for, default_workers

    default_methods = TABLE_METHODS if table is not None else METHODS
    settings = SearchBenchSettings(
        preset=preset,
        budget_epochs=budget_for(budget_epochs, budget_trials, table, preset, epochs_per_trial),
        seeds=seeds,
        seed_offset=seed_offset,
        epochs_per_trial=epochs_per_trial,
        data=data,
        batch_size=batch_size,
        population_size=population_size,
        min_epochs=min_epochs,
        eta=eta,
        min_trials=min_trials,
        methods=_methods(methods) if methods is not None else default_methods,
        workers=workers if workers is not None else default_workers(table),
        table=str(table) if table is not None else None,
    )
    summary = run_search_bench(
        settings, progress=show_progress(quiet), echo=typer.echo, log_runs=not quiet, runs_dir=runs_dir
    )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    kept = summary if curves else {k: v for k, v in summary.items() if k != "curves"}
    json_path.write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
    for line in summary_lines(summary):
        typer.echo(line)
    typer.echo(f"json: {json_path}")
    typer.echo(f"plot: {write_html(summary, html)}")
    if svg is not None:
        typer.echo(f"plot: {write_svg(summary, svg)}")
