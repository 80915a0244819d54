"""Plotly figures of a study and a self-contained HTML report of them.

Figures: the Pareto front in every objective pair and in 3-D, PCKh learning curves of every
trial (pruned ones dashed and faded, so what the pruner cut is visible), the hypervolume
history, and the cost model: measured seconds per epoch against parameters, FLOPs, layers
and operator calls, with Spearman rank correlations (the reference study's finding was
that time follows layer count, not parameters; this checks it on every study); with the
``latency`` objective also the deployment latency against params, FLOPs and layers.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import optuna
import plotly.graph_objects as go
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from plotly.subplots import make_subplots
from scipy.stats import spearmanr

from hpo.directions import signs
from hpo.names import file_under
from hpo.pareto import (
    StudySnapshot,
    default_reference_point,
    hypervolume_history,
    nondominated,
    pareto_rows,
    snapshot,
)
from hpo.preset import home_storage
from hpo.record import CURVE, EPOCHS_RUN, LATENCY, WALL_TIME_S, TrialRecord, get
from hpo.storage import default_storage_url, redact_url

__all__ = [
    "build_report",
    "write_report",
    "default_report_path",
    "pareto_2d_figure",
    "pareto_3d_figure",
    "learning_curves_figure",
    "hypervolume_figure",
    "cost_model_figure",
    "latency_figure",
    "spearman",
    "best_predictor",
    "COST_AXES",
]

LABELS = {
    "pckh": "PCKh@0.5 (%)",
    "params": "parameters",
    "train_time": "charged training time (s)",
    LATENCY: "latency (ms, ORT CPU 1 thread)",
}
COST_AXES = {
    "params": "parameters",
    "flops": "forward FLOPs",
    "layers": "conv + norm layers",
    "ops_per_step": "aten ops per step",
}
STATE_STYLE = {  # line dash, opacity, colour
    TrialState.COMPLETE: ("solid", 0.85, "#1f77b4"),
    TrialState.PRUNED: ("dash", 0.7, "#ff7f0e"),
    TrialState.FAIL: ("dot", 0.35, "#9467bd"),
}
_OTHER_STYLE = ("dot", 0.35, "#7f7f7f")
PARETO_COLOUR = "#d62728"
FAINT = "rgba(127,127,127,0.45)"


def _label(name: str, direction: StudyDirection) -> str:
    arrow = "↑" if direction == StudyDirection.MAXIMIZE else "↓"
    return f"{LABELS.get(name, name)} {arrow}"


def _hover(trial: FrozenTrial) -> str:
    record = TrialRecord.of(trial)
    design, block = record.design, record.block
    parts = (
        [f"trial {trial.number}"]
        + ([design] if design else [])
        + ([block["name"]] if "name" in block else [])
    )
    return " · ".join(parts)


def pareto_2d_figure(source: StudySnapshot | optuna.Study) -> go.Figure:
    """Every objective pair: all COMPLETE trials, the Pareto set in red, and the pair's own
    2-D front as a staircase (a design can be on the 3-D front yet dominated in a pair)."""
    snap = snapshot(source)
    names, dirs = snap.names, snap.directions
    trials, front = snap.require_complete(), {t.number for t in snap.front}
    values = np.array([t.values for t in trials], dtype=float)
    pairs = list(itertools.combinations(range(len(names)), 2))
    fig = make_subplots(
        rows=1,
        cols=max(len(pairs), 1),
        subplot_titles=[f"{names[j]} vs {names[i]}" for i, j in pairs],
        horizontal_spacing=0.08,
    )
    on = np.array([t.number in front for t in trials])
    text = [_hover(t) for t in trials]
    for col, (i, j) in enumerate(pairs, start=1):
        first = col == 1
        for mask, name, colour, size in ((~on, "COMPLETE", FAINT, 7), (on, "Pareto set", PARETO_COLOUR, 10)):
            fig.add_trace(
                go.Scatter(
                    x=values[mask, i],
                    y=values[mask, j],
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=first,
                    marker={"color": colour, "size": size},
                    text=[t for t, m in zip(text, mask) if m],
                    hovertemplate="%{text}<br>%{x}, %{y}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        stair = _front_2d(values[:, [i, j]], [dirs[i], dirs[j]])
        # The dominated region's boundary between neighbours sorted by x: it steps at the
        # left point when x is minimized and at the right one when x is maximized.
        shape = "vh" if dirs[i] == StudyDirection.MAXIMIZE else "hv"
        fig.add_trace(
            go.Scatter(
                x=stair[:, 0],
                y=stair[:, 1],
                mode="lines",
                line={"shape": shape, "dash": "dot", "color": PARETO_COLOUR},
                name="2-D front",
                legendgroup="2d",
                showlegend=first,
                hoverinfo="skip",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=_label(names[i], dirs[i]), row=1, col=col)
        fig.update_yaxes(title_text=_label(names[j], dirs[j]), row=1, col=col)
    fig.update_layout(title="Pareto front, objective pairs", template="plotly_white", height=420)
    return fig


def _front_2d(points: np.ndarray, dirs: Sequence[StudyDirection]) -> np.ndarray:
    front = points[nondominated(points * np.array(signs(dirs)))]
    return front[np.argsort(front[:, 0], kind="stable")]


def pareto_3d_figure(source: StudySnapshot | optuna.Study) -> go.Figure:
    """The first three objectives in 3-D: the Pareto set in the 2-D figures' red, the other
    COMPLETE trials faint. The scene leaves room for its axis titles (a tight scene clips
    them), and no colour scale: every colour on the plot is one the legend names."""
    snap = snapshot(source)
    names, dirs = snap.names, snap.directions
    trials, front = snap.require_complete(), {t.number for t in snap.front}
    fig = go.Figure()
    for on, name in ((False, "COMPLETE"), (True, "Pareto set")):
        sel = [t for t in trials if (t.number in front) == on]
        v = np.array([t.values for t in sel], dtype=float).reshape(-1, len(names))
        marker = {"size": 6, "color": PARETO_COLOUR} if on else {"size": 4, "color": FAINT}
        fig.add_trace(
            go.Scatter3d(
                x=v[:, 0],
                y=v[:, 1] if v.shape[1] > 1 else None,
                z=v[:, 2] if v.shape[1] > 2 else None,
                mode="markers",
                name=name,
                marker=marker,
                text=[_hover(t) for t in sel],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    axes = {
        k: {"title": {"text": _label(n, d), "font": {"size": 12}}, "tickfont": {"size": 10}}
        for k, n, d in zip(("xaxis", "yaxis", "zaxis"), names, dirs)
    }
    fig.update_layout(
        title="Pareto front (3-D)",
        template="plotly_white",
        height=640,
        scene={
            **axes,
            "domain": {"x": [0.05, 0.95], "y": [0.0, 0.92]},
            "aspectmode": "cube",
            "camera": {"eye": {"x": 1.9, "y": 1.9, "z": 1.3}},
        },  # far enough that the titles stay inside
        margin={"l": 40, "r": 40, "t": 70, "b": 40},
        legend={"orientation": "h", "x": 0.0, "y": 1.0, "yanchor": "bottom"},
    )
    return fig


def learning_curves_figure(source: StudySnapshot | optuna.Study) -> go.Figure:
    """PCKh per epoch of every trial with a curve. Pruned trials dashed, ending in a cross
    where the pruner stopped them (a trial cut after epoch 1 is a single cross, not a speck);
    the Pareto set red and thick. Every style has its legend entry. (Optuna cannot store
    intermediate values in a multi-objective study, so the curves come from ``curve``.)"""
    snap = snapshot(source)
    front = {t.number for t in snap.front}  # none before the first COMPLETE trial: curves still show
    fig = go.Figure()
    shown: set[str] = set()
    for t in snap.trials:
        curve = get(t, CURVE) or []
        if not curve:
            continue
        dash, opacity, colour = STATE_STYLE.get(t.state, _OTHER_STYLE)
        best = t.number in front
        if best:
            group, opacity, colour, width = "Pareto set (red, thick)", 1.0, PARETO_COLOUR, 3
        else:
            group, width = (f"{t.state.name} ({dash})" if dash != "solid" else t.state.name), 1.5
        stopped = t.state == TrialState.PRUNED
        group += ", x where cut" if stopped else ""
        symbols = ["circle"] * (len(curve) - 1) + ["x" if stopped else "circle"]
        fig.add_trace(
            go.Scatter(
                x=[p["epoch"] for p in curve],
                y=[p["pckh"] for p in curve],
                mode="lines+markers",
                name=group,
                legendgroup=group,
                showlegend=group not in shown,
                opacity=opacity,
                line={"dash": dash, "color": colour, "width": width},
                marker={
                    "size": [5] * (len(curve) - 1) + [10 if stopped else 5],
                    "symbol": symbols,
                    "color": colour,
                },
                text=[_hover(t)] * len(curve),
                hovertemplate="%{text}<br>epoch %{x}: %{y:.2f}<extra></extra>",
            )
        )
        shown.add(group)
    fig.update_layout(
        title="Learning curves (Pareto set red and thick, pruned dashed with a cross where cut)",
        template="plotly_white",
        xaxis_title="epoch",
        yaxis_title=LABELS["pckh"],
        height=420,
    )
    return fig


def hypervolume_figure(
    source: StudySnapshot | optuna.Study, reference_point: Sequence[float] | None = None
) -> go.Figure:
    snap = snapshot(source)
    ref = list(reference_point) if reference_point is not None else default_reference_point(snap)
    numbers = [t.number for t in snap.require_complete()]
    history = hypervolume_history(snap, ref)
    ref_text = ", ".join(f"{n}={v:.4g}" for n, v in zip(snap.names, ref))
    fig = go.Figure(
        go.Scatter(x=numbers, y=history, mode="lines+markers", line={"shape": "hv"}, name="hypervolume")
    )
    fig.update_layout(
        title=f"Hypervolume history<br><sup>reference point: {ref_text}</sup>",
        template="plotly_white",
        xaxis_title="trial number (COMPLETE trials)",
        yaxis_title="hypervolume",
        height=420,
    )
    return fig


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho, NaN where it is undefined (fewer than 3 points or a constant axis)."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def _epoch_seconds(t: FrozenTrial) -> float | None:
    """Seconds per epoch: the run's wall time so far (a stopped trial), else its learning
    curve's last clock reading (a trial still running)."""
    wall, epochs = get(t, WALL_TIME_S), get(t, EPOCHS_RUN)
    if wall is not None and epochs:
        return wall / epochs
    last = (get(t, CURVE) or [{}])[-1]
    seconds = last.get("wall_s")
    return seconds / last["epoch"] if seconds is not None and last.get("epoch") else None


# A rank correlation over a handful of trials says little: below this many COMPLETE trials
# the cost panel names no winner.
MIN_TRIALS_FOR_VERDICT = 8


def best_predictor(rhos: dict[str, float], complete: int = MIN_TRIALS_FOR_VERDICT) -> str:
    """One sentence naming the cost whose rank order follows the wall time per epoch best
    (highest Spearman rho), the story the cost panel tells (reference study: layers, not
    parameters); with fewer than :data:`MIN_TRIALS_FOR_VERDICT` ``complete`` trials it says so."""
    ranked = sorted(((rho, key) for key, rho in rhos.items() if rho == rho), reverse=True)
    if complete < MIN_TRIALS_FOR_VERDICT or not ranked:
        return (
            f"too few to tell which cost predicts the time ({complete} complete trials, "
            f"{MIN_TRIALS_FOR_VERDICT} needed)"
        )
    (rho, key), rest = ranked[0], ranked[1:]
    others = ", ".join(f"{COST_AXES[k]} {r:.2f}" for r, k in rest)
    return f"wall time per epoch follows {COST_AXES[key]} best (ρ = {rho:.2f})" + (
        f"; then {others}" if others else ""
    )


def cost_model_figure(
    source: StudySnapshot | optuna.Study,
    height: int = 600,
    *,
    measure: Callable[[FrozenTrial], float | None] = _epoch_seconds,
    unit: str = "wall s / epoch",
    axes: dict[str, str] = COST_AXES,
    title: str = "Cost model: wall s/epoch vs counted costs (Spearman ρ)",
) -> go.Figure:
    """A measured cost (default: wall seconds per epoch, ``wall_time_s / epochs_run``, so
    pruned trials count too) against each counted cost, with Spearman's rho over all those
    trials in the titles and, for the default measure, which cost predicts the time best
    (given enough COMPLETE trials, :func:`best_predictor`)."""
    trials = [t for t in snapshot(source).trials if measure(t) is not None]
    titles, columns, rhos = [], [], {}
    for key, label in axes.items():
        pts = [(get(t, key), measure(t), t) for t in trials if get(t, key) is not None]
        rho = rhos[key] = spearman([p[0] for p in pts], [p[1] for p in pts])
        titles.append(
            f"{key}: ρ = {rho:.2f} (n={len(pts)})" if rho == rho else f"{key}: ρ n/a (n={len(pts)})"
        )
        columns.append((key, label, pts))
    fig = make_subplots(
        rows=(len(columns) + 1) // 2,
        cols=2,
        subplot_titles=titles,
        vertical_spacing=0.2,
        horizontal_spacing=0.12,
    )
    shown: set[str] = set()
    for k, (_key, label, pts) in enumerate(columns):
        row, col = divmod(k, 2)
        for state in sorted({p[2].state for p in pts}, key=lambda s: s.value):
            sel = [p for p in pts if p[2].state == state]
            colour = STATE_STYLE.get(state, _OTHER_STYLE)[2]
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in sel],
                    y=[p[1] for p in sel],
                    mode="markers",
                    name=state.name,
                    legendgroup=state.name,
                    showlegend=state.name not in shown,
                    marker={"color": colour, "size": 7},
                    text=[_hover(p[2]) for p in sel],
                    hovertemplate=f"%{{text}}<br>%{{x}}: %{{y:.3g}} {unit}<extra></extra>",
                ),
                row=row + 1,
                col=col + 1,
            )
            shown.add(state.name)
        fig.update_xaxes(title_text=label, row=row + 1, col=col + 1)
        fig.update_yaxes(title_text=unit, row=row + 1, col=col + 1)
    fig.update_annotations(font_size=13)  # the subplot titles
    if measure is _epoch_seconds:  # the sentence speaks of training time
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        title = f"{title}<br><sup>{best_predictor(rhos, complete)}</sup>"
    fig.update_layout(title=title, template="plotly_white", height=height, margin={"t": 100})
    return fig


def latency_figure(source: StudySnapshot | optuna.Study, height: int = 600) -> go.Figure:
    """The deployment latency objective (ONNX Runtime CPU, 1 thread) against params, FLOPs
    and layers: FLOPs and params are the proxies people quote; depthwise convolutions have
    few FLOPs and many layers, and this shows which proxy the runtime follows."""
    return cost_model_figure(
        source,
        height,
        measure=lambda t: get(t, LATENCY),
        unit=f"{LATENCY} ms",
        axes={k: COST_AXES[k] for k in ("params", "flops", "layers")},
        title="Deployment latency (ONNX Runtime CPU, batch 1, 1 thread) vs counted costs (Spearman ρ)",
    )


def build_report(
    source: StudySnapshot | optuna.Study, reference_point: Sequence[float] | None = None
) -> dict[str, go.Figure]:
    """All report figures by name; a one-line ConfigError when no trial is COMPLETE."""
    snap = snapshot(source)
    snap.require_complete()
    figures = {}
    if len(snap.directions) >= 2:
        figures["pareto_2d"] = pareto_2d_figure(snap)
    if len(snap.directions) >= 3:
        figures["pareto_3d"] = pareto_3d_figure(snap)
    figures["learning_curves"] = learning_curves_figure(snap)
    figures["hypervolume"] = hypervolume_figure(snap, reference_point)
    figures["cost_model"] = cost_model_figure(snap)
    if any(get(t, LATENCY) is not None for t in snap.trials):
        figures["latency"] = latency_figure(snap)
    return figures


_TABLE_COLUMNS = ("number", "design", "pckh", "params", "train_time", LATENCY, "flops", "layers", "epochs")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return html.escape(str(value))


REPORTS_DIR = Path("reports")


def default_report_path(study_name: str, storage: str) -> Path:
    """``reports/<study>.html`` for the study's own storage (``sqlite:///studies/<study>.db``,
    or the ``storage:`` of its preset: :func:`hpo.preset.home_storage`), else
    ``reports/<study>@<storage>.html``, the storage named by its file's stem (SQLite,
    journal) or its host and database: the same study name in another storage (a warm-started
    copy, a PostgreSQL twin) gets its own report instead of overwriting this one."""
    if storage in (default_storage_url(study_name), home_storage(study_name)):
        return file_under(REPORTS_DIR, study_name, ".html")  # a checked name, never outside reports/
    url = redact_url(storage)
    _, _, rest = url.partition("://")
    if url.startswith(("sqlite:", "journal:")):
        label = Path(rest.lstrip("/") or "memory").stem
    else:
        host, _, db = rest.rpartition("@")[2].partition("/")
        label = "-".join(part for part in (host.split(":")[0], db.split("?")[0]) if part)
    return file_under(
        REPORTS_DIR, study_name, f"@{re.sub(r'[^A-Za-z0-9._-]+', '_', label) or 'storage'}.html"
    )


def write_report(
    source: StudySnapshot | optuna.Study,
    path: str | Path,
    reference_point: Sequence[float] | None = None,
    storage: str | None = None,
) -> Path:
    """One self-contained HTML file (plotly.js inlined once, so it opens offline); it names
    the study and, given ``storage``, its storage URL (password redacted)."""
    snap = snapshot(source)
    figures = build_report(snap, reference_point)
    rows = pareto_rows(snap)
    # then every searched config path (schedule.lr too), so that no two rows look alike
    searched = [k for k in (rows[0] if rows else {}) if k.startswith(("model.", "schedule."))]
    columns = [c for c in _TABLE_COLUMNS if any(r.get(c) not in (None, "") for r in rows)] + searched
    counts = snap.counts
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    plots = "\n".join(
        fig.to_html(full_html=False, include_plotlyjs=(k == 0), default_width="100%")
        for k, fig in enumerate(figures.values())
    )
    name = html.escape(snap.study_name)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    where = f"<p>storage: <code>{html.escape(redact_url(storage))}</code></p>" if storage else ""
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{name}: hourglass-hpo report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head>
<body><h1>Study {name}</h1>{where}<p>{html.escape(summary)} trials; {len(rows)} on the Pareto front.</p>
<h2>Pareto set</h2><table><tr>{head}</tr>{body}</table>
{plots}
</body></html>
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
