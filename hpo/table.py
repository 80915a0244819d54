"""The reference study's Table 1 for one of our studies: per design, PCKh@0.5 of the seven
joint columns and Mean, parameters, and training time absolute and relative to ``baseline``.

Reads the trial bookkeeping of :mod:`hpo.objective`: the final per-joint PCKh (user attr
:data:`PCKH_JOINTS`), ``params``, and the training time the ``train_time`` objective charged
(else the measured ``wall_time_s``). One row per COMPLETE trial, designs in the order of the
seed designs file, then the rest by trial number.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hourglass.designs import design_overrides
from hourglass.errors import ConfigError
from hpo.pareto import StudySnapshot, snapshot
from hpo.published import PUBLISHED, PUBLISHED_COLUMNS
from hpo.record import DESIGN, PARAMS, PCKH_JOINTS, WALL_TIME_S, get

__all__ = ["JOINT_COLUMNS", "format_table", "published_rho", "table_rows", "write_table"]

# the table columns of hourglass.metrics.TABLE_COLUMNS (kept literal: no torch import here)
JOINT_COLUMNS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")
_SHORT = {"Shoulder": "Sho", "Elbow": "Elb", "Wrist": "Wri", "Ankle": "Ank"}


def _design(trial: FrozenTrial) -> str:
    return str(get(trial, DESIGN) or trial.params.get("design") or f"trial {trial.number}")


def _time(trial: FrozenTrial, names: Sequence[str]) -> float | None:
    if "train_time" in names and trial.values is not None:
        return float(trial.values[list(names).index("train_time")])
    t = get(trial, WALL_TIME_S)
    return None if t is None else float(t)


def _order() -> list[str]:
    try:
        return list(design_overrides()[1])
    except ConfigError:  # a broken shipped file must not hide a study's results
        return []


def table_rows(source: StudySnapshot | optuna.Study, *, published: bool = False) -> list[dict[str, Any]]:
    """One flat row per COMPLETE trial (see the module doc); ``published`` adds the study's
    published row of the design (:mod:`hpo.published`) as ``pub_<column>`` (``pub_Mean``,
    ``pub_params_m``, ``pub_time_s``, ...) and ``pub_time_vs_baseline``."""
    snap = snapshot(source)
    trials = snap.complete
    if not trials:
        raise ConfigError(
            f"study {snap.study_name!r}: no COMPLETE trial yet, so no table (run the study first)"
        )
    names = list(snap.names)
    order = {name: i for i, name in enumerate(_order())}
    trials = sorted(trials, key=lambda t: (order.get(_design(t), len(order)), t.number))
    rows: list[dict[str, Any]] = []
    for t in trials:
        joints = get(t, PCKH_JOINTS) or {}
        row: dict[str, Any] = {"design": _design(t), "trial": t.number}
        for col in JOINT_COLUMNS:
            row[col] = joints.get(col)
        row["params"] = get(t, PARAMS)
        row["pckh"] = float(t.values[names.index("pckh")]) if "pckh" in names and t.values else None
        row["train_time_s"] = _time(t, names)
        rows.append(row)
    base = next((r["train_time_s"] for r in rows if r["design"] == "baseline" and r["train_time_s"]), None)
    for r in rows:
        r["time_vs_baseline"] = (
            None if base is None or r["train_time_s"] is None else r["train_time_s"] / base
        )
    if published:
        pub_base = PUBLISHED["baseline"]["time_s"]
        for r in rows:
            pub = PUBLISHED.get(r["design"], {})
            r.update({f"pub_{col}": pub.get(col) for col in PUBLISHED_COLUMNS})
            r["pub_time_vs_baseline"] = None if r["pub_time_s"] is None else r["pub_time_s"] / pub_base
    return rows


def published_rho(rows: Sequence[dict[str, Any]]) -> tuple[float, float, int] | None:
    """Spearman's rho (and its two-sided p-value) between the designs' Mean here and the
    published Mean, over the designs that have both (a design trained more than once counts
    with its average); None below 3 such designs or when either side is constant."""
    from scipy.stats import spearmanr

    ours: dict[str, list[float]] = {}
    for r in rows:
        mean = r["Mean"] if r["Mean"] is not None else r.get("pckh")  # the objective is the Mean
        if r.get("pub_Mean") is not None and mean is not None:
            ours.setdefault(r["design"], []).append(float(mean))
    if len(ours) < 3:
        return None
    pub = {r["design"]: float(r["pub_Mean"]) for r in rows if r["design"] in ours}
    x, y = [sum(v) / len(v) for v in ours.values()], [pub[d] for d in ours]
    if len(set(x)) == 1 or len(set(y)) == 1:
        return None
    result = spearmanr(x, y)
    return float(result.statistic), float(result.pvalue), len(ours)


def _num(value: Any, spec: str) -> str:  # CSV/Markdown cells
    return "" if value is None else format(value, spec)


def _pct(value: float | None) -> str:
    """One decimal in at most 4 characters (100 without its decimal), for 80-column rows."""
    if value is None:
        return ""
    return "100" if round(value, 1) >= 100 else f"{value:.1f}"


def _params(count: float | None) -> str:
    """Millions as the study prints them (6.73M); tiny CPU designs in thousands (20.6k)."""
    if count is None:
        return ""
    return f"{count / 1e6:.2f}M" if count >= 1e6 else f"{count / 1e3:.1f}k"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 600:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    minutes = round(seconds / 60)  # as the study prints its times (2h30min), in 6 characters
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes < 6000 else f"{seconds / 3600:.0f}h"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Table 1 as fixed-width text within 80 columns: joints and Mean to one decimal (two in
    the CSV/Markdown), parameters in millions, time and time / baseline; a ``published`` line
    with the same columns under each design the study published (blank = not printed)."""
    width = max([len("design"), *(len(r["design"]) for r in rows)])
    heads = [_SHORT.get(c, c) for c in JOINT_COLUMNS]
    header = "design".ljust(width) + "".join(f"{h:>5}" for h in heads) + f"{'params':>7}{'time':>7}{'rel':>6}"
    lines = [header, "-" * len(header)]
    for r in rows:
        params = _params(r["params"])
        rel = "" if r["time_vs_baseline"] is None else f"{r['time_vs_baseline']:.2f}x"
        lines.append(
            r["design"].ljust(width)
            + "".join(f"{_pct(r[c]):>5}" for c in JOINT_COLUMNS)
            + f"{params:>7}{_duration(r['train_time_s']):>7}{rel:>6}"
        )
        if r.get("pub_Mean") is not None or r.get("pub_params_m") is not None:
            pub = "" if r.get("pub_params_m") is None else f"{r['pub_params_m']:.2f}M"
            rel = "" if r.get("pub_time_vs_baseline") is None else f"{r['pub_time_vs_baseline']:.2f}x"
            lines.append(
                (
                    "  published".ljust(width)
                    + "".join(f"{_pct(r.get(f'pub_{c}')):>5}" for c in JOINT_COLUMNS)
                    + f"{pub:>7}{_duration(r.get('pub_time_s')):>7}{rel:>6}"
                ).rstrip()
            )
    return "\n".join(lines)


def write_table(rows: Sequence[dict[str, Any]], path: str | Path, *, markdown: bool = False) -> Path:
    """The rows as CSV (every field, full precision) or as a Markdown table (two decimals)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not markdown:
        fields = list(dict.fromkeys(k for row in rows for k in row))
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        return path
    pub = any("pub_Mean" in r for r in rows)
    cols = [
        "design",
        *JOINT_COLUMNS,
        *(["Mean (published)"] if pub else []),
        "params",
        *(["params (published)"] if pub else []),
        "train time",
        "vs baseline",
    ]
    out = ["| " + " | ".join(cols) + " |", "|---" + "|---:" * (len(cols) - 1) + "|"]
    for r in rows:
        cells = [r["design"], *(_num(r[c], ".2f") for c in JOINT_COLUMNS)]
        if pub:
            cells.append(_num(r.get("pub_Mean"), ".2f"))
        cells.append(_params(r["params"]))
        if pub:
            cells.append("" if r.get("pub_params_m") is None else f"{r['pub_params_m']:.2f}M")
        cells += [
            _duration(r["train_time_s"]),
            _num(r["time_vs_baseline"], ".2f") + ("x" if r["time_vs_baseline"] is not None else ""),
        ]
        out.append("| " + " | ".join(cells) + " |")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path
