"""The study's objective: trial -> design -> costs -> short training -> objective values.

Everything a trial learns is stored on it (see "Trial bookkeeping" in the README): static
costs, the per-epoch learning curve (user attr ``curve``, since ``Trial.report`` is not
available in multi-objective studies), the full resolved config for export, and for pruned
or failed trials the reason. A trial's checkpoints live in a folder keyed by the hash of its
resolved config, next to the study, so a retried trial resumes where its worker died.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch

from hourglass.config import HourglassConfig
from hourglass.costs import Costs, costs
from hourglass.data.dataset import PoseArrays
from hourglass.train import EpochMetrics, ScheduleConfig, TrainConfig, TrainingDiverged, train
from hourglass.yamlio import deep_merge
from hpo.preset import StudyPreset
from hpo.pruning import ParetoHalvingPruner
from hpo.space import SearchSpace

__all__ = ["Objective", "config_hash"]


def config_hash(config: dict[str, Any]) -> str:
    """A stable short hash of a resolved trial config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class Objective:
    preset: StudyPreset
    space: SearchSpace
    arrays: PoseArrays
    checkpoint_root: Path
    device: str | None = None
    pruner: optuna.pruners.BasePruner | None = None  # multi-objective: consulted here, per rung
    progress: bool = True
    # What the train_time objective charges for a design's first `epoch` epochs. None: the
    # measured wall time. A benchmark sets a deterministic cost model (wall time on a shared
    # machine is noise); then the curve's "time_s" holds the charge and "wall_s" the clock.
    time_model: Callable[[TrainConfig, Costs, int], float] | None = None

    def resolve(self, trial: optuna.Trial) -> TrainConfig:
        suggested = self.space.suggest(trial)
        schedule = deep_merge(dict(self.preset.schedule), suggested.get("schedule", {}))
        return TrainConfig.from_dict(
            {"model": suggested["model"], "schedule": schedule, "data": self.preset.data},
            where=f"trial {trial.number}",
        )

    def _values(self, static: dict[str, float], pckh: float, time_s: float) -> list[float]:
        known = {**static, "pckh": pckh, "train_time": time_s}
        return [float(known[name]) for name in self.preset.objectives]

    def __call__(self, trial: optuna.Trial) -> Sequence[float] | float:
        config = self.resolve(trial)
        resolved = config.to_dict()
        c = costs(config.model, time_steps=3 if "step_latency" in self.preset.objectives else 0,
                  device=self.device or "cpu")
        static = {"params": c.params, "flops": c.flops, "step_latency": c.step_time_s or 0.0}
        for key, value in {"params": c.params, "flops": c.flops, "layers": c.layers,
                           "ops_per_step": c.ops_per_step, "config": resolved,
                           "config_hash": config_hash(resolved)}.items():
            trial.set_user_attr(key, value)
        if c.step_time_s is not None:
            trial.set_user_attr("step_latency", c.step_time_s)
        ckpt_dir = self.checkpoint_root / config_hash(resolved)
        curve: list[dict[str, float]] = []
        multi = len(self.preset.objectives) > 1
        study = trial.study

        def charged(m: EpochMetrics) -> float:
            return m.time_s if self.time_model is None else float(self.time_model(config, c, m.epoch))

        def on_epoch_end(m: EpochMetrics) -> None:
            point = {"epoch": m.epoch, "pckh": m.pckh, "loss": m.loss, "time_s": charged(m)}
            curve.append(point if self.time_model is None else {**point, "wall_s": m.time_s})
            trial.set_user_attr("curve", curve)
            trial.set_user_attr("epochs_run", m.epoch)
            if m.epoch >= config.schedule.epochs:
                return
            if multi:
                prune = isinstance(self.pruner, ParetoHalvingPruner) and self.pruner.should_prune(
                    study, trial.number, m.epoch, self._values(static, m.pckh, charged(m)), study.directions
                )
            else:
                trial.report(m.pckh, m.epoch)
                prune = trial.should_prune()
            if prune:
                trial.set_user_attr("pruned_at_epoch", m.epoch)
                trial.set_user_attr("prune_reason", "mo_rung" if multi else "optuna_pruner")
                raise optuna.TrialPruned(f"pruned at epoch {m.epoch} (PCKh {m.pckh:.1f})")

        try:
            result = train(config, self.arrays, device=self.device, on_epoch_end=on_epoch_end,
                           checkpoint_dir=ckpt_dir, progress=self.progress)
        except optuna.TrialPruned:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
            raise
        except TrainingDiverged as exc:
            trial.set_user_attr("prune_reason", "diverged")
            trial.set_user_attr("pruned_at_epoch", len(curve) + 1)
            shutil.rmtree(ckpt_dir, ignore_errors=True)
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        except torch.cuda.OutOfMemoryError:
            trial.set_user_attr("fail_reason", "oom")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise
        except Exception:
            trial.set_user_attr("fail_reason", "exception")
            trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
            raise
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: the export retrains from the config
        trial.set_user_attr("epochs_run", len(result.history))
        trial.set_user_attr("wall_time_s", result.wall_time_s)
        trial.set_user_attr("train_img_s", sum(m.train_img_s for m in result.history) / max(len(result.history), 1))
        trial.set_user_attr("device", result.device)
        trial.set_user_attr("resumed_from_epoch", result.resumed_from_epoch)
        values = self._values(static, result.history[-1].pckh, charged(result.history[-1]))
        return values if multi else values[0]
