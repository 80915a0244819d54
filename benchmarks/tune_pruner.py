"""Which pruner and sampler settings make the search pay? Replays against the recorded table.

For each setting (first rung, eta, the front-gain rule, TPE's random start) this replays
``random`` and ``tpe_mopruning`` for ``--seeds`` seeds at ``--budget-trials`` full trials
(``hpo bench-search --table``) and prints, per setting, the share of seeds in which TPE with
our pruner reached random search's final hypervolume within a third of the budget, and both
methods' median final hypervolume. The presets' pruner defaults come from this table.

    python -m benchmarks.tune_pruner --table benchmarks/tiny_table.json.gz --seeds 30 --json reports/tune_pruner.json
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json

from benchmarks.table_args import table_bench_args
from hpo.bench.search import run_search_bench
from hpo.bench.settings import SearchBenchSettings

GRID = {
    "min_epochs": (1, 2),
    "eta": (2, 3),
    "min_gain": (-1.0, 0.005),
    "n_startup_trials": (2, 5),
}  # min_gain < 0: off


def main() -> None:
    args, budget = table_bench_args(__doc__, "reports/tune_pruner.json")
    rows = []
    for values in itertools.product(*GRID.values()):
        knobs = dict(zip(GRID, values))
        s = SearchBenchSettings(
            table=args.table,
            seeds=args.seeds,
            seed_offset=args.seed_offset,
            budget_epochs=budget,
            workers=args.workers,
            methods=("random", "tpe_mopruning"),
            **knobs,
        )
        with contextlib.redirect_stdout(io.StringIO()):  # one line per setting, not per run
            out = run_search_bench(s, progress=False)
        ours, rnd = out["methods"]["tpe_mopruning"], out["methods"]["random"]
        rows.append(
            {
                **knobs,
                "within_third": ours["within_third"]["share"],
                "median_hv": ours["heldout_median_hv"],
                "random_median_hv": rnd["heldout_median_hv"],
                "epochs_per_trial": ours["epochs_per_trial_mean"],
            }
        )
        print(
            " ".join(f"{k}={v}" for k, v in knobs.items()),
            f"within 1/3: {rows[-1]['within_third']:.0%}  median HV {rows[-1]['median_hv']:.4f} "
            f"(random {rows[-1]['random_median_hv']:.4f})  epochs/trial {rows[-1]['epochs_per_trial']:.2f}",
            flush=True,
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"budget_epochs": budget, "seeds": args.seeds, "rows": rows}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
