"""The held-out table of docs/benchmark.md ("Results"), written from an ``hpo bench-search --table`` JSON.

Prints the Markdown table (one row per method, the default in bold, the screening oracle's
row last) and two lists: the methods whose held-out difference to the default is inside the
noise (two-sided Mann-Whitney p >= 0.05) and those outside it, with the sign. Nothing is
claimed that the p-values do not carry.

    python -m benchmarks.heldout_markdown benchmarks/results/bench_table_heldout_b30_s100.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ALPHA = 0.05  # a difference with p below this is called outside the noise


def _share(w: dict[str, Any]) -> str:
    return f"{w['share']:.0%} [{w['low']:.0%}, {w['high']:.0%}]" if w["n"] else "-"


def _p(p: float | None) -> str:
    return "-" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def table_lines(summary: dict[str, Any]) -> list[str]:
    """The Markdown table of the held-out view."""
    default = summary["default_method"]
    out = [
        "| method | held-out median HV | diff vs " + str(default) + " | p | as-trained median "
        "| within 1/3 [95 % CI] | within 1/6 [95 % CI] | trials | epochs/trial |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in summary["methods"].items():
        v = m["heldout"]
        vs = v.get("vs_default") or {}
        mine = name == default
        out.append(
            f"| {f'**{name}**' if mine else name} | {v['median_hv']:.4f} | "
            f"{'-' if mine else format(vs.get('median_diff') or 0.0, '+.4f')} | "
            f"{'-' if mine else _p(vs.get('p'))} | {m['as_trained']['median_hv']:.4f} | "
            f"{_share(v['within_third'])} | {_share(v['within_sixth'])} | {m['trials_mean']:.0f} | "
            f"{m['epochs_per_trial_mean']:.2f} |"
        )
    oracle = summary.get("oracle")
    if oracle:
        o = oracle["heldout"]
        out.append(
            f"| *oracle (bound)* | | | | | {_share(o['within_third'])} | {_share(o['within_sixth'])} | | |"
        )
    return out


def noise_lines(summary: dict[str, Any]) -> list[str]:
    """Which held-out differences to the default are inside the noise, which are not."""
    default = summary["default_method"]
    inside, outside = [], []
    for name, m in summary["methods"].items():
        if name == default:
            continue
        vs = m["heldout"].get("vs_default") or {}
        if vs.get("p") is None:
            continue
        p = _p(vs["p"])
        text = f"{name} ({vs['median_diff']:+.4f}, p {p if p.startswith('<') else '= ' + p})"
        (inside if vs["p"] >= ALPHA else outside).append(text)
    return [
        f"- *Inside the noise* (p >= {ALPHA}) against {default}: {', '.join(inside) or 'none'}.",
        f"- *Outside the noise* (p < {ALPHA}): {', '.join(outside) or 'none'}.",
    ]


def readme_lines(summary: dict[str, Any]) -> list[str]:
    """Two README lines: how many reporting seeds, who is inside the default's noise, who
    is above or below it."""
    default = summary["default_method"]
    groups: dict[str, list[str]] = {"inside": [], "above": [], "below": []}
    for name, m in summary["methods"].items():
        vs = m["heldout"].get("vs_default") or {}
        if name == default or vs.get("p") is None:
            continue
        group = "inside" if vs["p"] >= ALPHA else ("above" if vs["median_diff"] > 0 else "below")
        groups[group].append(name)
    return [
        f"  On {summary['seeds']} held-out reporting seeds, inside the noise of our default "
        f"{default}: {', '.join(groups['inside']) or 'none'};",
        f"  above it (p < {ALPHA}): {', '.join(groups['above']) or 'none'}; below it: "
        f"{', '.join(groups['below']) or 'none'}.",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary", type=Path, help="a JSON written by hpo bench-search --table")
    args = ap.parse_args()
    summary = json.loads(args.summary.read_text(encoding="utf-8"))
    seeds = summary["seed_list"]
    curves, points = summary["rung_predictiveness"]["trials"], summary["reference"]["designs"]
    print(
        f"Budget {summary['budget_epochs']} epochs, {summary['seeds']} seeds ({seeds[0]}-{seeds[-1]}); "
        f"table {summary['settings'].get('table')}: {points} points x {curves // points} training seeds"
    )
    print()
    print("\n".join(table_lines(summary)))
    print()
    print("\n".join(noise_lines(summary)))
    print()
    print("README (docs links, two lines):")
    print("\n".join(readme_lines(summary)))


if __name__ == "__main__":
    main()
