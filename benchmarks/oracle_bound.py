"""Is the 1/3 goal a pruning problem or a sampling one? Oracle bounds on the recorded table.

Replays ``random`` and ``tpe_mopruning`` (``hpo bench-search --table``) for ``--seeds`` seeds
at ``--budget-trials`` full trials; then, per seed, with random search's final hypervolume of
that seed as the target, asks :mod:`hpo.bench.bounds` how many designs an all-knowing choice
needs, and whether the screening oracle (random search's own proposals and seed draws, each
screened for one epoch, the best completed knowing their final values) reaches the target
within a third of the budget: an upper bound for every pruner over random proposals. Both
on the held-out front (each design valued on the table's seeds it was not trained on).

    python -m benchmarks.oracle_bound --seeds 100 --json benchmarks/results/oracle_bound.json
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np

from benchmarks.table_args import table_bench_args
from hpo.bench.bounds import fewest_designs
from hpo.bench.front import table_reference
from hpo.bench.search import run_search_bench
from hpo.bench.settings import SearchBenchSettings
from hpo.bench.table import cached_table


def main() -> None:
    args, budget = table_bench_args(__doc__, "reports/oracle_bound.json")
    s = SearchBenchSettings(
        table=args.table,
        seeds=args.seeds,
        seed_offset=args.seed_offset,
        budget_epochs=budget,
        workers=args.workers,
        methods=("random", "tpe_mopruning"),
    )
    with contextlib.redirect_stdout(io.StringIO()):
        out = run_search_bench(s, progress=False)
    table = cached_table(args.table)
    targets = out["methods"]["random"]["heldout"]["hv_per_seed"]
    third = budget // 3
    oracle = out["oracle"]["heldout"]["epochs_within_third_per_seed"]
    fewest = fewest_designs(table, table_reference(table), targets)
    result = {
        "table": args.table,
        "seeds": args.seeds,
        "budget_epochs": budget,
        "third": third,
        "random_final_hv_median": float(np.median(targets)),
        "fewest_designs_per_seed": fewest,
        "fewest_designs_counts": {str(k): fewest.count(k) for k in sorted(set(fewest), key=str)},
        "screening_oracle_within_third": out["oracle"]["heldout"]["within_third"],
        "screening_oracle_epochs_per_seed": oracle,
        "tpe_mopruning_within_third": out["methods"]["tpe_mopruning"]["within_third"],
    }
    print(
        f"{args.seeds} seeds, budget {budget} epochs, a third = {third}: random's final front needs "
        f"{result['fewest_designs_counts']} designs (all-knowing); the screening oracle reaches it within "
        "a third "
        f"in {result['screening_oracle_within_third']['share']:.0%} of seeds, tpe_mopruning in "
        f"{result['tpe_mopruning_within_third']['share']:.0%}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
