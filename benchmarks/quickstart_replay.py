"""What a 10-design quickstart costs under given pruner settings, replayed on the recorded table.

The quickstart must finish 10 designs within its time budget, so what matters is the work
they take, in units of one full trial of the seed design. Each replay runs the quickstart's
sampler and a pruner setting against the recorded table (``hpo bench-table``: 160 tiny
designs, 9-epoch curves and measured training times): the seed design first, then the sampler
until 10 distinct designs have finished; an epoch costs what the table measured for it. The
table's first ``--epochs`` epochs stand in for a schedule of that many epochs (the quickstart's
learning curves are other curves, the pruning decisions the same kind).

    python -m benchmarks.quickstart_replay --seeds 100            # the settings in SETTINGS
    python -m benchmarks.quickstart_replay --seeds 40 --epochs 4 --eta 3 --min-trials 3 --min-gain 0.005
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from hpo import record as rec
from hpo.bench.replay import _lookup, _play, cached_table
from hpo.bench.table import params_key
from hpo.preset import PrunerConfig, SamplerConfig, load_preset
from hpo.pruning import nondominated_ranks
from hpo.strategy import Pruning, create_pruner, create_sampler

TABLE = "benchmarks/tiny_table.json.gz"
SEED = {
    "model.block.name": "bottleneck",
    "model.block.separable": "none",
    "model.block.skip": True,
    "model.stem.name": "conv7",
    "model.features": 32,
    "model.stacks": 2,
    "schedule.lr": 0.008,
}
# (epochs, eta, min_trials, min_gain): the old quickstart, then the candidates
SETTINGS = [(4, 3, 3, 0.005), (8, 3, 3, 0.005), (8, 3, 3, 0.1), (8, 2, 2, 0.1), (8, 2, 2, 0.2)]


def replay(
    epochs: int,
    eta: int,
    min_trials: int,
    min_gain: float | None,
    seed: int,
    designs: int = 10,
    startup: int = 2,
) -> dict:
    table, look = cached_table(TABLE), _lookup(TABLE)
    base = load_preset("quickstart")
    preset = base.replace(
        pruner=PrunerConfig("mo_halving", 1, eta, min_trials, min_gain),
        sampler=SamplerConfig("tpe", {"n_startup_trials": startup}),
        seed=seed,
    )
    seed_point = look.points[params_key(SEED)]
    unit = statistics.mean(seed_point.runs[s]["time_s"][epochs - 1] for s in table.seeds)
    pruning = Pruning(create_pruner(preset), True)
    study = optuna.create_study(directions=preset.directions, sampler=create_sampler(preset, seed))
    rec.study_put(study, rec.STUDY_OBJECTIVES, list(preset.objectives))
    study.enqueue_trial(SEED)
    rng = np.random.default_rng([seed, 7919])
    cost, done, cut, complete = 0.0, 0, 0, {}
    for _ in range(6 * designs):  # a sampler that only repeats completed designs ends the run
        if done == designs:
            break
        trial = study.ask()
        key = params_key(look.space.suggest_params(trial))
        if key in complete:  # a repeat is copied at no cost, as live (hpo.objective.completed_twin)
            study.tell(trial, values=complete[key])
            continue
        point = look.points[key]
        run = point.runs[table.seeds[int(rng.integers(len(table.seeds)))]]
        state, values = _play(trial, point, run, epochs, pruning)
        study.tell(trial, values=values, state=state)
        cost += run["time_s"][study.trials[-1].user_attrs[rec.EPOCHS_RUN] - 1] / unit
        done += 1
        if state == TrialState.PRUNED:
            cut += 1
        else:
            complete[key] = values
    front = sum(r == 0 for r in nondominated_ranks(list(complete.values()), preset.directions))
    return {"cost": cost, "cut": cut, "complete": len(complete), "front": front}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--eta", type=int)
    ap.add_argument("--min-trials", type=int)
    ap.add_argument("--min-gain", type=float, help="< 0: off")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = SETTINGS
    if args.epochs is not None:
        gain = None if args.min_gain is None or args.min_gain < 0 else args.min_gain
        settings = [(args.epochs, args.eta or 3, args.min_trials or 3, gain)]
    out = []
    for epochs, eta, min_trials, min_gain in settings:
        runs = [replay(epochs, eta, min_trials, min_gain, seed) for seed in range(args.seeds)]
        costs = sorted(r["cost"] for r in runs)
        row = {
            "epochs": epochs,
            "eta": eta,
            "min_trials": min_trials,
            "min_gain": min_gain,
            "cost_mean": statistics.mean(costs),
            "cost_p90": costs[int(0.9 * len(costs))],
            "cost_max": costs[-1],
            "cut_mean": statistics.mean(r["cut"] for r in runs),
            "runs_cutting_under_2": sum(r["cut"] < 2 for r in runs),
            "complete_mean": statistics.mean(r["complete"] for r in runs),
            "front_mean": statistics.mean(r["front"] for r in runs),
            "seeds": args.seeds,
        }
        out.append(row)
        print(
            f"epochs {epochs} eta {eta} min_trials {min_trials} min_gain {min_gain}: seed-trial units "
            f"{row['cost_mean']:.2f} (p90 {row['cost_p90']:.2f}), cut {row['cut_mean']:.1f} "
            f"(<2 in {row['runs_cutting_under_2']}/{args.seeds}), front {row['front_mean']:.1f}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
