"""Is the 1/3 goal a pruning problem or a sampling one? Oracle bounds on the recorded table.

Replays ``random`` and ``tpe_mopruning`` (``hpo bench-search --table``) for ``--seeds`` seeds
at ``--budget-trials`` full trials; then, per seed, with random search's final hypervolume of
that seed as the target, asks :mod:`hpo.bench.bounds` how many designs an all-knowing choice
needs, and whether the screening oracle (random proposals, each screened for one epoch, the
best completed knowing their final values) reaches the target within a third of the budget:
an upper bound for every pruner over random proposals.

    python -m benchmarks.oracle_bound --seeds 100 --json benchmarks/results/oracle_bound.json
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np

from benchmarks.table_args import table_bench_args
from hpo.bench.bounds import fewest_designs, screening_oracle
from hpo.bench.replay import cached_table
from hpo.bench.search import SearchBenchSettings, run_search_bench, table_reference_point


def main() -> None:
    args, budget = table_bench_args(__doc__, "reports/oracle_bound.json")
    s = SearchBenchSettings(table=args.table, seeds=args.seeds, budget_epochs=budget, workers=args.workers,
                            methods=("random", "tpe_mopruning"))
    with contextlib.redirect_stdout(io.StringIO()):
        out = run_search_bench(s, progress=False)
    table, reference = cached_table(args.table), table_reference_point(s)
    targets = out["methods"]["random"]["final_hv_per_seed"]
    third = budget // 3
    oracle = [screening_oracle(table, reference, hv, third, seed) for seed, hv in enumerate(targets)]
    fewest = fewest_designs(table, reference, targets)
    result = {
        "table": args.table, "seeds": args.seeds, "budget_epochs": budget, "third": third,
        "random_final_hv_median": float(np.median(targets)),
        "fewest_designs_per_seed": fewest,
        "fewest_designs_counts": {str(k): fewest.count(k) for k in sorted(set(fewest), key=str)},
        "screening_oracle_within_third_share": sum(e is not None for e in oracle) / len(oracle),
        "screening_oracle_epochs_per_seed": oracle,
        "tpe_mopruning_within_third_share": out["methods"]["tpe_mopruning"]["random_final_within_third_share"],
    }
    print(f"{args.seeds} seeds, budget {budget} epochs, a third = {third}: random's final front needs "
          f"{result['fewest_designs_counts']} designs (all-knowing); the screening oracle reaches it within a third "
          f"in {result['screening_oracle_within_third_share']:.0%} of seeds, tpe_mopruning in "
          f"{result['tpe_mopruning_within_third_share']:.0%}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
