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
    python -m benchmarks.quickstart_replay --seeds 40 --workers   # WORKER_SETTINGS, two workers

With ``--workers`` (:func:`replay_workers`) the replay follows the live budget rule instead: a
study of ``trials`` finished trials, worked on by parallel workers; it reports the makespan,
the end of the last worker, in the same units.
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from hpo import record as rec
from hpo.bench.ledger import TableRun
from hpo.bench.replay import _play
from hpo.bench.table import cached_table, params_key
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


def _start(epochs: int, eta: int, min_trials: int, min_gain: float | None, seed: int, startup: int):
    """One replay's parts: the table's lookup, the quickstart preset with these pruner and
    TPE settings, the time unit (the seed design's full training), the pruning, a study with
    the seed design enqueued, and each design's training seed (drawn once per run)."""
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
    return look, preset, unit, pruning, study, TableRun.of(table, seed)


def replay(
    epochs: int,
    eta: int,
    min_trials: int,
    min_gain: float | None,
    seed: int,
    designs: int = 10,
    startup: int = 2,
) -> dict:
    look, preset, unit, pruning, study, ledger = _start(epochs, eta, min_trials, min_gain, seed, startup)
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
        state, values, trained = _play(trial, point, ledger, epochs, pruning)
        study.tell(trial, values=values, state=state)
        cost += ledger.curve(point)["time_s"][trained - 1] / unit
        done += 1
        if state == TrialState.PRUNED:
            cut += 1
        else:
            complete[key] = values
    front = sum(r == 0 for r in nondominated_ranks(list(complete.values()), preset.directions))
    return {"cost": cost, "cut": cut, "complete": len(complete), "front": front}


@dataclass(frozen=True)
class _Lookup:
    points: dict
    space: Any


def _lookup(path: str) -> _Lookup:
    table = cached_table(path)
    return _Lookup(table.by_params(), table.search_space())


@dataclass
class _Running:
    """One worker's trial in flight: its table run, the epochs trained, when it started."""

    trial: optuna.Trial
    point: Any
    run: Any
    start: float
    curve: list = field(default_factory=list)


def replay_workers(
    epochs: int,
    eta: int,
    min_trials: int,
    min_gain: float | None,
    seed: int,
    workers: int = 2,
    trials: int = 10,
    startup: int = 2,
    copy: bool = False,
) -> dict:
    """The live budget rule with ``workers`` processes on one study: each worker takes a new
    trial while the study holds fewer than ``trials`` finished plus running ones (copies of a
    completed design finish at once and count, as live), and epochs end in the order of
    their measured times, so a rung sees the other workers' trials as far as they got (running
    ones included, as live). One sampler asks for all the workers (live each has its own seed).
    The table has two learning rates, the live space a continuous range: live, a repeat of a
    table point is another design (another rate) that trains, so it trains here too unless
    ``copy`` (then it is copied at no cost and counts, as a live exact repeat). Returns the makespan (the last worker's end) and the total work, in seed-trial units."""
    look, preset, unit, pruning, study, ledger = _start(epochs, eta, min_trials, min_gain, seed, startup)
    complete: dict = {}
    finished = copies = cut = 0
    work = makespan = 0.0
    events: list[tuple[float, int, int]] = []  # (time an epoch ends, worker, epoch)
    running: dict[int, _Running] = {}

    def take(worker: int, now: float) -> None:
        nonlocal finished, copies
        while finished + len(running) < trials:
            trial = study.ask()
            key = params_key(look.space.suggest_params(trial))
            if key in complete and copy:
                study.tell(trial, values=complete[key])
                finished, copies = finished + 1, copies + 1
                continue
            point = look.points[key]
            rec.put_all(trial, {rec.PARAMS: int(point.costs["params"]), rec.CONFIG: point.config})
            running[worker] = _Running(trial, point, ledger.curve(point), now)
            heapq.heappush(events, (now + running[worker].run["time_s"][0] / unit, worker, 1))
            return

    for w in range(workers):
        take(w, 0.0)
    while events:
        now, w, e = heapq.heappop(events)
        r = running[w]
        pckh, time_s = r.run["pckh"][e - 1], r.run["time_s"][e - 1]
        r.curve.append({"epoch": e, "pckh": pckh, "loss": r.run["loss"][e - 1], "time_s": time_s})
        rec.put_all(r.trial, {rec.CURVE: r.curve, rec.EPOCHS_RUN: e})
        values = [pckh, float(rec.get(r.trial, rec.PARAMS)), time_s]
        pruned = e < epochs and pruning.should_stop(r.trial, e, pckh, values)
        if e < epochs and not pruned:
            heapq.heappush(events, (r.start + r.run["time_s"][e] / unit, w, e + 1))
            continue
        if pruned:
            rec.put_all(r.trial, {rec.PRUNED_AT_EPOCH: e, rec.PRUNE_REASON: pruning.reason})
            study.tell(r.trial, state=TrialState.PRUNED)
            cut += 1
        else:
            study.tell(r.trial, values=values)
            complete[params_key(look.space.suggest_params(r.trial))] = values
        finished += 1
        work += time_s / unit
        makespan = max(makespan, now)
        del running[w]
        take(w, now)
    front = sum(r == 0 for r in nondominated_ranks(list(complete.values()), preset.directions))
    return {
        "makespan": makespan,
        "work": work,
        "designs": finished - copies,
        "copies": copies,
        "cut": cut,
        "complete": len(complete),
        "front": front,
    }


# (workers, trials, min_gain, n_startup_trials), 8 epochs, eta 2, min_trials 2: one worker
# before, then two workers with the budget and the front-gain rule around the quickstart's
WORKER_SETTINGS = [
    (1, 10, 0.2, 2),
    (2, 10, 0.2, 2),
    (2, 11, 0.2, 2),
    (2, 12, 0.2, 2),
    (2, 10, 0.3, 2),
    (2, 11, 0.3, 2),
    (2, 12, 0.3, 2),
    (2, 12, 0.3, 1),
]


def _main_workers(seeds: int, out_path: Path | None) -> None:
    out = []
    for workers, trials, min_gain, startup in WORKER_SETTINGS:
        runs = [
            replay_workers(8, 2, 2, min_gain, seed, workers=workers, trials=trials, startup=startup)
            for seed in range(seeds)
        ]
        spans = sorted(r["makespan"] for r in runs)
        row = {
            "workers": workers,
            "trials": trials,
            "min_gain": min_gain,
            "n_startup_trials": startup,
            "makespan_mean": statistics.mean(spans),
            "makespan_p90": spans[int(0.9 * len(spans))],
            "makespan_max": spans[-1],
            "work_mean": statistics.mean(r["work"] for r in runs),
            "cut_mean": statistics.mean(r["cut"] for r in runs),
            "runs_cutting_under_2": sum(r["cut"] < 2 for r in runs),
            "complete_mean": statistics.mean(r["complete"] for r in runs),
            "front_mean": statistics.mean(r["front"] for r in runs),
            "seeds": seeds,
        }
        out.append(row)
        print(
            f"workers {workers} trials {trials} min_gain {min_gain} startup {startup}: makespan "
            f"{row['makespan_mean']:.2f} (p90 {row['makespan_p90']:.2f}), work {row['work_mean']:.2f}, cut "
            f"{row['cut_mean']:.1f} (<2 in {row['runs_cutting_under_2']}/{seeds}), front {row['front_mean']:.1f}",
            flush=True,
        )
    if out_path:
        out_path.write_text(json.dumps(out, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--eta", type=int)
    ap.add_argument("--min-trials", type=int)
    ap.add_argument("--min-gain", type=float, help="< 0: off")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--workers", action="store_true", help="the settings of WORKER_SETTINGS, in parallel")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.workers:
        _main_workers(args.seeds, args.json)
        return
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
