"""Live ``hpo bench-search``: every (method, seed) a real study that trains.

Each (method, seed) is its own study in a temporary SQLite file, run by the real
:class:`hpo.objective.Objective` (the study's own training, costs and pruning). Epochs spent
= epochs actually trained, pruned trials included. The bench seed seeds the sampler and the
training (``schedule.seed``); the data set is the same for all.

Why a cost model instead of wall time. On a shared machine the wall time of the same design
varies by 2x with the neighbours' load, which would decide the comparison by who ran when.
The ``train_time`` objective is therefore charged by :class:`StepCostModel`, a deterministic
model of CPU training time: time follows the number of operator calls per step (kernel
launches) more than FLOPs (measured on 24 tiny designs: Spearman 0.82 for ops, 0.27 for
FLOPs), so a step costs ``s_per_op * ops_per_step + s_per_mflop * batch * MFLOPs``, with the
two coefficients fitted on those measurements. The wall time is still recorded per trial and
the summary reports how well the charge ranks it.

Reference point: ``P_ref`` and ``T_ref`` are 1.1 x the largest parameter count and the
largest charged training time (``epochs_per_trial`` epochs) over the space's structural
corners (:func:`reference_point`).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from tqdm.auto import tqdm

from hourglass.costs import Costs, costs
from hourglass.data.dataset import PoseArrays, load_pose_data
from hourglass.train_config import TrainConfig
from hpo.bench.front import REFERENCE_MARGIN, Reference, Tracker
from hpo.bench.settings import SearchBenchSettings, base_preset, method_preset
from hpo.objective import Objective
from hpo.preset import StudyPreset, resolve_file
from hpo.record import seed_attrs
from hpo.space import SPACES_DIR, SearchSpace, plan_seed_trials
from hpo.space_check import build_model_config, walk_combinations, written_paths
from hpo.space_param import Param, fit_block_knobs
from hpo.strategy import Pruning
from hpo.study import open_study

__all__ = ["COST_FREE", "StepCostModel", "reference_point", "run_method"]

# Space knobs that change neither the weights nor the layer graph, hence no cost: stack
# weights only weight the loss, dilation only spaces a kernel's taps (tests check the latter),
# output weights add S multiply-adds of the heatmaps (a few operator calls, no weights).
COST_FREE = ("model.stack_weights", "model.block.dilation", "model.output_weights")


@dataclass(frozen=True)
class StepCostModel:
    """Charged CPU seconds for training a design (see the module docstring for why).

    Coefficients: least squares on 24 tiny designs (64 px, batch 8, one thread, 2-core
    machine), step time ~ ``s_per_op * ops_per_step + s_per_mflop * batch * forward MFLOPs``.
    Evaluation (forward only, no optimizer) is charged ``eval_share`` of a train step.
    """

    s_per_op: float = 13.8e-6
    s_per_mflop: float = 0.117e-3  # per image and forward MFLOP, for forward + backward + Adam
    eval_share: float = 1 / 3

    def seconds(self, c: Costs, epochs: int, n_train: int, n_val: int, batch: int) -> float:
        mflops = c.flops / 1e6
        steps = n_train // batch if n_train > batch else 1  # the loader drops the last batch
        images = steps * batch if n_train > batch else n_train
        train = steps * c.ops_per_step * self.s_per_op + images * mflops * self.s_per_mflop
        eval_batches = math.ceil(n_val / max(batch, 32))  # the trainer's evaluation batch
        evaluate = self.eval_share * (
            eval_batches * c.ops_per_step * self.s_per_op + n_val * mflops * self.s_per_mflop
        )
        return epochs * (train + evaluate)

    def for_data(self, arrays: PoseArrays) -> Callable[[TrainConfig, Costs, int], float]:
        """The Objective's ``time_model`` hook for this data set."""
        n_val = int(np.asarray(arrays.is_val).astype(bool).sum())
        return partial(_charge, self, len(arrays.is_val) - n_val, n_val)


def _charge(
    model: StepCostModel, n_train: int, n_val: int, config: TrainConfig, c: Costs, epoch: int
) -> float:
    return model.seconds(c, epoch, n_train, n_val, config.schedule.batch_size)


# ----------------------------------------------------------------------------- reference point
def _corner_models(space: SearchSpace) -> list[dict[str, Any]]:
    """Every structurally distinct model the space can produce at its largest: categorical
    model params over all their choices, numeric ones (features; stacks as numeric choices)
    at their maximum, since every cost grows with width and stack count; schedule params and
    :data:`COST_FREE` knobs at their default."""
    out: dict[str, dict[str, Any]] = {}

    def corner_values(i: int, p: Param) -> list[Any]:
        structural = p.path is None or (p.path.startswith("model.") and p.path not in COST_FREE)
        if not structural:
            return [p.default]
        if p.kind != "categorical":
            return [p.high]
        if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p.choices):
            return [max(p.choices)]
        return list(p.choices)

    base = {"model": space.base["model"], "schedule": space.base["schedule"]}
    for config, chosen in walk_combinations(space.params, base, corner_values):
        model = {k: dict(v) if isinstance(v, dict) else v for k, v in config["model"].items()}
        fit_block_knobs(model, written_paths(space.params, chosen))
        out.setdefault(repr(sorted(model.items(), key=str)), model)
    return list(out.values())


@lru_cache(maxsize=4)
def _arrays(spec: str) -> PoseArrays:
    return load_pose_data(spec)  # once per process and data set


def _model_costs(model: dict[str, Any]) -> Costs:
    torch.set_num_threads(1)
    return costs(build_model_config(model))


def reference_point(
    s: SearchBenchSettings,
    cost_model: StepCostModel = StepCostModel(),
    *,
    progress: bool = True,
    map_fn: Callable[..., Iterable[Any]] = map,
) -> Reference:
    """``P_ref``/``T_ref``: 1.1 x the largest params / charged time over :func:`_corner_models`
    (``map_fn``: e.g. a process pool's ``map``; counting costs takes ~0.5 s a design)."""
    preset = method_preset(base_preset(s.preset), s, "random", 0, "sqlite:///unused.db")
    charge = cost_model.for_data(_arrays(preset.data))
    config = TrainConfig(schedule=preset.train_schedule, data=preset.data)
    epochs = config.schedule.epochs
    models = _corner_models(preset.search_space())
    found = list(
        tqdm(
            map_fn(_model_costs, models),
            total=len(models),
            desc="reference point",
            unit="design",
            disable=not progress,
        )
    )
    best_p = max(c.params for c in found)
    best_t = max(charge(config, c, epochs) for c in found)
    return Reference(
        REFERENCE_MARGIN * best_p, REFERENCE_MARGIN * best_t, len(models), best_p, best_t, epochs
    )


# ----------------------------------------------------------------------------- one run
def run_method(
    s: SearchBenchSettings,
    method: str,
    seed: int,
    reference: Reference,
    cost_model: StepCostModel = StepCostModel(),
) -> dict[str, Any]:
    """Run one (method, seed) study until ``s.budget_epochs`` epochs are spent."""
    torch.set_num_threads(1)  # measured: 2 threads were ~40x slower on the loaded 2-core machine
    base = base_preset(s.preset)
    start = time.perf_counter()
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study" line per run
    try:
        return _run_method(s, base, method, seed, reference, cost_model, start)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _run_method(
    s: SearchBenchSettings,
    base: StudyPreset,
    method: str,
    seed: int,
    reference: Reference,
    cost_model: StepCostModel,
    start: float,
) -> dict[str, Any]:
    designs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="hpo_bench_") as tmp:
        preset = method_preset(base, s, method, seed, f"sqlite:///{Path(tmp) / 'study.db'}")
        arrays = _arrays(preset.data)
        space = preset.search_space()
        study = open_study(preset, seed=seed)
        objective = Objective(
            preset,
            space,
            arrays,
            Path(tmp) / "checkpoints",
            device=None if preset.device == "auto" else preset.device,
            pruning=Pruning.for_preset(preset),
            progress=False,
            time_model=cost_model.for_data(arrays),
        )
        n_trials = 4 * s.budget_epochs  # a guard: trials that fail before their first epoch cost nothing
        if method == "seed_grid":  # the designs the space can express, in file order
            plan = plan_seed_trials(
                space, resolve_file(s.designs, near=None, folder=SPACES_DIR, what="designs")
            )
            for name, params in plan.trials:
                study.enqueue_trial(params, user_attrs=seed_attrs(name))
            designs, n_trials = [name for name, _ in plan.trials], len(plan.trials)
        tracker = Tracker(s.budget_epochs, reference)
        study.optimize(
            objective, n_trials=n_trials, callbacks=[tracker], catch=(Exception,), gc_after_trial=True
        )
    return {
        "method": method,
        "seed": seed,
        "records": tracker.records,
        "spent": tracker.spent,
        "wall_s": time.perf_counter() - start,
        "time_model": asdict(cost_model),
        **({"designs": designs} if method == "seed_grid" else {}),
    }
