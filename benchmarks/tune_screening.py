"""Which screen_promote settings reach random search's front soonest? Replays against the table.

For each setting of :class:`hpo.screening.ScreenPromoteSampler` in ``SETTINGS`` this replays
``random`` and ``screen_promote`` for ``--seeds`` seeds (tuning seeds 0-29 by default; report
on others) at ``--budget-trials`` full trials (``hpo bench-search --table``) and prints, per
setting, the share of seeds whose held-out front reached random search's final one within a
sixth and within a third of the budget, and the median held-out hypervolume. The sampler's
defaults come from this table (docs/benchmark.md).

    python -m benchmarks.tune_screening --seeds 30 --json reports/tune_screening.json
"""

from __future__ import annotations

import contextlib
import io
import json

from benchmarks.table_args import table_bench_args
from hpo.bench.search import run_search_bench
from hpo.bench.settings import SearchBenchSettings

SETTINGS: tuple[dict, ...] = (
    {"n_startup": 10, "screens_per_promotion": 2, "spread_start": False},  # as first shipped
    {"n_startup": 10, "screens_per_promotion": 2},
    {"n_startup": 10, "screens_per_promotion": 2, "promote_unscreened": False},
    {"n_startup": 10, "screens_per_promotion": 2, "screen_epochs": 2},
    {"n_startup": 10, "screens_per_promotion": 2, "check_epochs": 3},
    {"n_startup": 10, "screens_per_promotion": 2, "check_epochs": 3, "per_epoch": True},
    {"n_startup": 10, "screens_per_promotion": 2, "per_epoch": True},
    {"n_startup": 6, "burst": 4, "screens_per_promotion": 2},
    {},  # the defaults: n_startup 8, burst 3, screens_per_promotion 1
)


def main() -> None:
    args, budget = table_bench_args(__doc__, "reports/tune_screening.json")
    rows = []
    for kwargs in SETTINGS:
        s = SearchBenchSettings(
            table=args.table,
            seeds=args.seeds,
            seed_offset=args.seed_offset,
            budget_epochs=budget,
            workers=args.workers,
            methods=("random", "screen_promote"),
            sampler_kwargs=kwargs,
        )
        with contextlib.redirect_stdout(io.StringIO()):  # one line per setting, not per run
            out = run_search_bench(s, progress=False)
        ours = out["methods"]["screen_promote"]
        rows.append(
            {
                "kwargs": kwargs,
                "within_sixth": ours["within_sixth"]["share"],
                "within_third": ours["within_third"]["share"],
                "median_hv": ours["heldout_median_hv"],
                "random_median_hv": out["methods"]["random"]["heldout_median_hv"],
                "epochs_per_trial": ours["epochs_per_trial_mean"],
                "wall_s_per_run": ours["wall_s_mean"],
            }
        )
        r = rows[-1]
        print(
            json.dumps(kwargs),
            f"within 1/6: {r['within_sixth']:.0%}  1/3: {r['within_third']:.0%}  "
            f"median HV {r['median_hv']:.4f} (random {r['random_median_hv']:.4f})",
            flush=True,
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"budget_epochs": budget, "seeds": args.seeds, "seed_offset": args.seed_offset, "rows": rows},
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
