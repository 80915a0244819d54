"""The command line the table benchmarks share (``benchmarks.tune_pruner``, ``benchmarks.oracle_bound``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hpo.bench.settings import budget_for


def table_bench_args(doc: str, json_default: str) -> tuple[argparse.Namespace, int]:
    """Parse ``--table --seeds --seed-offset --budget-trials --workers --json``; returns the arguments and
    the budget in epochs (``--budget-trials`` full trials of the table)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--table", default="benchmarks/tiny_table.json.gz")
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--seed-offset", type=int, default=0, help="first seed (tune on 0-29, report on others)")
    ap.add_argument("--budget-trials", type=float, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path(json_default))
    args = ap.parse_args()
    return args, budget_for(None, args.budget_trials, args.table, "quickstart")
