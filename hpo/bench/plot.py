"""Plots of a ``hpo bench-search`` summary: hypervolume against epochs spent per method.

On a recorded table the plotted front is the held-out one (the summary's ``headline`` key),
as in the printed table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hpo.bench.front import hv_at

__all__ = ["write_html", "write_svg", "hv_bands"]


def write_html(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Hypervolume vs epochs spent: mean line and a 95 % interval of the mean (normal
    approximation, 1.96 standard errors) per method."""
    import plotly.graph_objects as go
    from plotly.colors import hex_to_rgb, qualitative

    fig = go.Figure()
    for i, (m, b) in enumerate(hv_bands(summary).items()):
        grid, mean = b["epochs"], b["mean"]
        color = qualitative.Plotly[i % len(qualitative.Plotly)]
        band = "rgba({}, {}, {}, 0.15)".format(*hex_to_rgb(color))
        fig.add_trace(
            go.Scatter(
                x=grid + grid[::-1],
                y=b["high"] + b["low"][::-1],
                fill="toself",
                fillcolor=band,
                line={"width": 0},
                hoverinfo="skip",
                legendgroup=m,
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=grid, y=mean, mode="lines", name=m, legendgroup=m, line={"color": color, "shape": "hv"}
            )
        )
    ref = summary["reference"]
    fig.update_layout(
        title=(
            f"{_view(summary)} hypervolume vs training epochs spent ({summary['seeds']} seeds, mean and 95 % "
            f"interval)<br><sup>objectives "
            f"PCKh/100, params/{ref['params']:.0f}, train time/{ref['time_s']:.1f} s; reference point (0, "
            "1, 1)</sup>"
        ),
        xaxis_title="training epochs spent",
        yaxis_title="hypervolume (normalised)",
        template="plotly_white",
        height=520,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def hv_bands(summary: Mapping[str, Any], step: int = 1) -> dict[str, dict[str, list[float]]]:
    """Per method, on epochs ``0, step, ..., budget``: the mean hypervolume (the summary's
    headline view) over seeds and its 95 % interval (1.96 standard errors)."""
    grid = list(range(0, summary["budget_epochs"] + 1, step))
    key = summary.get("headline", "hv")
    out = {}
    for m, per_seed in summary["curves"].items():
        curves = np.array([[hv_at(recs, e, key) for e in grid] for recs in per_seed.values()])
        mean = curves.mean(0)
        half = 1.96 * curves.std(0, ddof=1) / np.sqrt(len(curves)) if len(curves) > 1 else np.zeros_like(mean)
        out[m] = {
            "epochs": grid,
            "mean": mean.tolist(),
            "low": (mean - half).tolist(),
            "high": (mean + half).tolist(),
        }
    return out


_SVG_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def write_svg(summary: Mapping[str, Any], path: str | Path, width: int = 760, height: int = 420) -> Path:
    """The plot of :func:`write_html` as a small static SVG (no JavaScript), for the README:
    mean hypervolume against epochs spent per method, with its 95 % interval as a band."""
    bands = hv_bands(summary, step=max(1, summary["budget_epochs"] // 150))
    left, right, top, bottom = 60, 170, 30, 45
    w, h = width - left - right, height - top - bottom
    budget = summary["budget_epochs"]
    lows = [v for b in bands.values() for v in b["low"][1:]]
    y0 = max(0.0, math.floor(min(lows) * 20) / 20) if lows else 0.0
    y1 = math.ceil(max(v for b in bands.values() for v in b["high"]) * 20) / 20 or 1.0

    def x(e: float) -> float:
        return left + w * e / budget

    def y(v: float) -> float:
        return top + h * (1 - (min(max(v, y0), y1) - y0) / (y1 - y0))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="18" font-size="13">{_view(summary)} hypervolume vs training epochs spent '
        f"({summary['seeds']} seeds, mean and 95 % interval)</text>",
    ]
    for i in range(6):  # axes, ticks, grid
        v = y0 + (y1 - y0) * i / 5
        parts.append(
            f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>'
        )
        e = budget * i / 5
        parts.append(f'<text x="{x(e):.1f}" y="{top + h + 16}" text-anchor="middle">{e:.0f}</text>')
    parts.append(
        f'<line x1="{x(budget / 3):.1f}" x2="{x(budget / 3):.1f}" y1="{top}" y2="{top + h}" stroke="#999" '
        f'stroke-dasharray="4 3"/><text x="{x(budget / 3) + 4:.1f}" y="{top + 12}" fill="#666">1/3 '
        "budget</text>"
    )
    parts.append(
        f'<text x="{left + w / 2}" y="{height - 8}" text-anchor="middle">training epochs spent</text>'
    )
    if "random" in bands:  # the goal: random search's final front, within a third of the budget
        v = bands["random"]["mean"][-1]
        parts.append(
            f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#999" '
            f'stroke-dasharray="4 3"/><text x="{left + 4}" y="{y(v) - 4:.1f}" fill="#666">random, '
            "final</text>"
        )
    for i, (m, b) in enumerate(bands.items()):
        c = _SVG_COLOURS[i % len(_SVG_COLOURS)]
        upper = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in zip(b["epochs"], b["high"]))
        lower = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in zip(reversed(b["epochs"]), reversed(b["low"])))
        line = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in zip(b["epochs"], b["mean"]))
        parts.append(f'<polygon points="{upper} {lower}" fill="{c}" fill-opacity="0.15" stroke="none"/>')
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{c}" '
            f'stroke-width="{2.5 if m == summary.get("default_method") else 1.5}"/>'
        )
        ly = top + 14 + 18 * i
        parts.append(
            f'<line x1="{left + w + 12}" x2="{left + w + 32}" y1="{ly - 4}" y2="{ly - 4}" stroke="{c}" '
            'stroke-width="2.5"/>'
            f'<text x="{left + w + 38}" y="{ly}">{m}</text>'
        )
    parts.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#333"/></svg>')
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def _view(summary: Mapping[str, Any]) -> str:
    return "Held-out" if summary.get("headline") == "hv_heldout" else "As-trained"
