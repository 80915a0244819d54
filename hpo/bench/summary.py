"""The JSON summary of ``hpo bench-search``: per method, its fronts and how it compares.

Two views of a front. *As trained*: a complete design is valued by the run that trained it.
*Held out* (only on a recorded table, the headline there): by the mean of the table's seeds it
was **not** trained on. A pruner completes the designs whose drawn curve looks good early, so
its as-trained front carries the luck of the draw (the winner's curse); the held-out front
does not.

Per method: the final hypervolume per seed in both views (median, mean, std); against the
default method (:data:`hpo.bench.settings.DEFAULT_METHOD`) the difference of the medians
with a two-sided Mann-Whitney U p-value; and the share of seeds whose front reached random
search's final front of the same seed within a third and within a sixth of the budget, each
with a 95 % Wilson interval.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from scipy.stats import binomtest, mannwhitneyu, spearmanr

from hpo.bench.front import Reference, epochs_to_reach, hv_at
from hpo.bench.settings import DEFAULT_METHOD, SearchBenchSettings
from hpo.bench.table import cached_table

__all__ = ["summarize", "share_with_interval", "versus", "predictiveness", "table_rung_predictiveness"]

_FRACTIONS = {"within_third": 3, "within_sixth": 6}


def _mean_std(xs: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def share_with_interval(hits: Sequence[bool]) -> dict[str, Any]:
    """The share of true ``hits`` with its 95 % Wilson score interval."""
    k, n = int(sum(hits)), len(hits)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson") if n else None
    return {
        "share": k / n if n else None,
        "k": k,
        "n": n,
        "low": float(ci.low) if ci else None,
        "high": float(ci.high) if ci else None,
    }


def versus(xs: Sequence[float], default: Sequence[float]) -> dict[str, Any]:
    """Median of ``xs`` minus median of ``default`` and the two-sided Mann-Whitney U p-value."""
    if len(xs) < 2 or len(default) < 2:
        return {"median_diff": None, "p": None}
    p = float(mannwhitneyu(xs, default, alternative="two-sided").pvalue)
    return {"median_diff": float(np.median(xs) - np.median(default)), "p": p}


def _spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None  # undefined for constant input
    rho = spearmanr(x, y).statistic
    return None if not np.isfinite(rho) else float(rho)


def predictiveness(curves: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Spearman of each epoch's PCKh against the final one, over the full-length ``curves``:
    what a rung at that epoch can know."""
    if not curves:
        return {"trials": 0, "spearman_by_epoch": {}}
    full = max(len(c) for c in curves)
    curves = [c for c in curves if len(c) == full]
    final = [c[-1] for c in curves]
    return {
        "trials": len(curves),
        "final_epoch": full,
        "spearman_by_epoch": {str(e + 1): _spearman([c[e] for c in curves], final) for e in range(full - 1)},
    }


def table_rung_predictiveness(path: str) -> dict[str, Any]:
    """:func:`predictiveness` over every point and seed of a table."""
    return predictiveness([run["pckh"] for p in cached_table(path).points for run in p.runs.values()])


def _view(
    runs: Sequence[Mapping[str, Any]], targets: Mapping[int, float], budget: int, key: str
) -> dict[str, Any]:
    """One view (``key``: ``hv`` or ``hv_heldout``) of one method's runs."""
    finals = [hv_at(r["records"], budget, key) for r in runs]
    to_random = [
        epochs_to_reach(r["records"], targets[r["seed"]], budget, key) if r["seed"] in targets else None
        for r in runs
    ]
    mean, std = _mean_std(finals)
    out = {
        "median_hv": float(np.median(finals)),
        "mean_hv": mean,
        "std_hv": std,
        "hv_per_seed": finals,
        "epochs_to_random_final_per_seed": to_random,
        "reached_random_final": sum(e is not None for e in to_random),
    }
    for name, div in _FRACTIONS.items():
        out[name] = share_with_interval([e is not None and e <= budget / div for e in to_random])
    return out


def summarize(
    runs: Iterable[Mapping[str, Any]],
    s: SearchBenchSettings,
    reference: Reference,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON summary (module docstring); ``extra`` (e.g. the oracle's reference line) is
    kept as given. ``curves`` holds every run's records."""
    by = {(r["method"], r["seed"]): r for r in runs}
    seeds = sorted({seed for _, seed in by})
    budget = s.budget_epochs
    views = ("hv_heldout", "hv") if s.table else ("hv",)
    headline = views[0]
    default = DEFAULT_METHOD if any(m == DEFAULT_METHOD for m, _ in by) else None
    targets = {
        key: {
            seed: hv_at(by[("random", seed)]["records"], budget, key)
            for seed in seeds
            if ("random", seed) in by
        }
        for key in views
    }
    methods: dict[str, Any] = {}
    for m in s.methods:
        rs = [by[(m, seed)] for seed in seeds if (m, seed) in by]
        if not rs:
            continue
        within = [[x for x in r["records"] if x["spent"] <= budget] for r in rs]
        trials = [len(w) for w in within]
        spent = [w[-1]["spent"] if w else 0 for w in within]
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in rs]}
        for key in views:
            entry["heldout" if key == "hv_heldout" else "as_trained"] = _view(rs, targets[key], budget, key)
        head = entry["heldout" if headline == "hv_heldout" else "as_trained"]
        entry.update(
            {  # the headline view's figures, flat, as the issue names them
                "heldout_median_hv": entry["heldout"]["median_hv"] if "heldout" in entry else None,
                "as_trained_median_hv": entry["as_trained"]["median_hv"],
                "within_third": head["within_third"],
                "within_sixth": head["within_sixth"],
                "trials_mean": float(np.mean(trials)),
                "pruned_mean": float(np.mean([sum(x["state"] == "pruned" for x in w) for w in within])),
                "complete_mean": float(np.mean([sum(x["state"] == "complete" for x in w) for w in within])),
                "epochs_per_trial_mean": float(np.sum(spent) / max(np.sum(trials), 1)),
                "epochs_spent_mean": float(np.mean(spent)),
                "wall_s_mean": float(np.mean([r["wall_s"] for r in rs])),
            }
        )
        methods[m] = entry
    if default in methods:
        for entry in methods.values():
            for key in views:
                name = "heldout" if key == "hv_heldout" else "as_trained"
                entry[name]["vs_default"] = versus(
                    entry[name]["hv_per_seed"], methods[default][name]["hv_per_seed"]
                )
    return {
        "seeds": len(seeds),
        "seed_list": seeds,
        "budget_epochs": budget,
        "default_method": default,
        "headline": headline,
        "methods": methods,
        **dict(extra or {}),
        "rung_predictiveness": table_rung_predictiveness(s.table)
        if s.table
        else predictiveness(
            [
                x["pckh_curve"]
                for r in by.values()
                for x in r["records"]
                if x["state"] == "complete" and x.get("pckh_curve")
            ]
        ),
        "seed_grid_designs": next((r["designs"] for r in by.values() if "designs" in r), None),
        "reference": reference.to_dict(),
        "time_objective": _time_objective(by.values(), table=bool(s.table)),
        "settings": asdict(s),
        "curves": {
            m: {str(seed): by[(m, seed)]["records"] for seed in seeds if (m, seed) in by} for m in s.methods
        },
    }


def _time_objective(runs: Iterable[Mapping[str, Any]], *, table: bool) -> dict[str, Any]:
    """How ``train_time`` was measured; live, how well the charge ranks the wall time."""
    if table:
        return {"kind": "table", "measured": "the table's recorded training time (hourglass.steptime)"}
    runs = list(runs)
    charged, wall = [], []
    for r in runs:
        for x in r["records"]:
            if x["values"] is not None and x.get("wall_s") is not None:
                charged.append(x["values"][2])
                wall.append(x["wall_s"])
    return {
        "kind": "charged",
        "model": next((r["time_model"] for r in runs if "time_model" in r), None),
        "spearman_charged_vs_wall": _spearman(charged, wall),
        "trials": len(charged),
    }
