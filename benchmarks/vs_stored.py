"""One method, replayed again, against every method of a stored ``hpo bench-search`` JSON.

After a change to one sampler only the changed method needs replaying (with ``random``, whose
front sets the within-a-third and within-a-sixth targets): the other methods' per-seed
held-out hypervolumes are the stored ones, on the same seeds. Checks that ``random``
replays identically (the rivals' code did not change), then prints and writes, per stored
method, the difference of the medians and the two-sided Mann-Whitney U p-value.

    python -m benchmarks.vs_stored NEW.json benchmarks/results/bench_table_heldout_b30_s100.json \
        --method screen_promote --json benchmarks/results/screen_promote_vs_stored.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hpo.bench.summary import versus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("new", type=Path)
    ap.add_argument("stored", type=Path)
    ap.add_argument("--method", default="screen_promote")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args()
    new, stored = json.loads(args.new.read_text()), json.loads(args.stored.read_text())
    if new["seed_list"] != stored["seed_list"] or new["budget_epochs"] != stored["budget_epochs"]:
        sys.exit("the two runs differ in seeds or budget")
    same_random = (
        new["methods"]["random"]["heldout"]["hv_per_seed"]
        == stored["methods"]["random"]["heldout"]["hv_per_seed"]
    )
    if not same_random:
        sys.exit("random replays differently from the stored run: replay every method again")
    ours = new["methods"][args.method]
    hv = ours["heldout"]["hv_per_seed"]
    out = {
        args.method: {
            "median": ours["heldout_median_hv"],
            "within_third": ours["within_third"],
            "within_sixth": ours["within_sixth"],
            "trials_mean": ours["trials_mean"],
            "epochs_per_trial_mean": ours["epochs_per_trial_mean"],
            "wall_s_mean": ours["wall_s_mean"],
        },
        "random_identical": same_random,
        "vs_stored": {},
    }
    for name, entry in stored["methods"].items():
        if name == args.method:
            continue
        v = versus(hv, entry["heldout"]["hv_per_seed"])
        out["vs_stored"][name] = {"median": entry["heldout_median_hv"], "diff": v["median_diff"], "p": v["p"]}
        print(f"{name:18s} {entry['heldout_median_hv']:.4f}  diff {v['median_diff']:+.4f}  p {v['p']:.2g}")
    args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
