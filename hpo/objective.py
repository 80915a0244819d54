"""The study's objective: trial -> design -> costs -> short training -> objective values.

Everything a trial learns is stored on it, in the trial record of :mod:`hpo.record`:
static costs, the per-epoch learning curve (``curve``, since ``Trial.report`` is not
available in multi-objective studies), the full resolved config for export, the training
time so far (pruned and failed trials too), and for pruned or failed trials the reason.
A trial's checkpoints live in a folder keyed by the hash of its resolved config and the
first trial of its retry chain (``<hash>-t<N>``), next to the study, so a retried trial
(same params, Optuna system attr ``failed_trial`` = N) resumes where its worker died and
inherits the curve so far, while two workers that happen to draw the same params never
train into one folder.
"""

from __future__ import annotations

import gc
import shutil
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch

from hourglass.costs import Costs, costs
from hourglass.data.dataset import PoseArrays
from hourglass.train import (
    EpochMetrics,
    TrainingDiverged,
    checkpoint_history,
    is_out_of_memory,
    pick_device,
    train,
)
from hourglass.train_config import TrainConfig
from hpo import optuna_compat as compat
from hpo import record as rec
from hpo.deploy import cached_latency_ms
from hpo.preset import StudyPreset
from hpo.record import LATENCY
from hpo.screening import continued_trial
from hpo.space import SearchSpace
from hpo.strategy import Pruning

__all__ = ["Objective", "completed_twin", "TrialOutOfMemory"]


def completed_twin(study: optuna.Study, key: str) -> optuna.trial.FrozenTrial | None:
    """The first completed trial of ``study`` whose resolved config hashes to ``key`` (never
    a copy: a copy is created after the trial it copies, so it comes later).

    Why: a sampler over a discrete space proposes designs it has already seen, and with the
    study's one training seed they train to the same result, so the repeat copies the record
    instead of spending the epochs again."""
    return rec.find_trial(study, rec.CONFIG_HASH, key, states=(optuna.trial.TrialState.COMPLETE,))


class TrialOutOfMemory(RuntimeError):
    """The design did not fit in the device's memory (the trial fails, the worker goes on)."""


def _release_memory() -> None:
    """Free what a failed trial left on the device: its tensors die with the traceback that
    held their frames (so call this after leaving the ``except`` block), then the cache."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _curve_point(m: EpochMetrics) -> dict[str, float]:
    """One epoch of the curve: ``time_s`` is what train_time charges (the noise-robust time,
    see hourglass.steptime), ``wall_s`` the clock."""
    return {"epoch": m.epoch, "pckh": m.pckh, "loss": m.loss, "time_s": m.train_time_s, "wall_s": m.time_s}


def continues_line(trial: optuna.Trial, chain: int, epochs: int) -> str:
    """What a retry does, in one line: ``trial 11 continues trial 10 from epoch 2``."""
    history = trial.storage.get_trial_system_attrs(compat.trial_id(trial)).get(rec.RETRY_HISTORY) or [chain]
    where = f"from epoch {epochs} (its checkpoint)" if epochs else "from the start (no checkpoint yet)"
    return f"trial {trial.number:3d} continues trial {history[-1]} {where}"


def _take_checkpoint(source: Path, target: Path) -> None:
    """Move a paused trial's checkpoint folder to the trial that continues it. A rename is
    atomic: of two workers continuing one trial at once, one gets it and the other starts
    from the beginning, and neither trains into the other's folder."""
    if target.exists():
        return  # this trial's own checkpoint (a retry of the promotion) is further along
    try:
        source.rename(target)
    except OSError:
        pass  # gone (taken by another worker, or never written): train from the start


@dataclass
class Objective:
    preset: StudyPreset
    space: SearchSpace
    arrays: PoseArrays
    checkpoint_root: Path
    device: str | None = None
    pruning: Pruning | None = None  # the study's (Pruning.for_preset); None: trials are never pruned
    progress: bool = True
    on_epoch: Callable[[optuna.Trial, EpochMetrics], None] | None = None  # e.g. a log line per epoch
    note: Callable[[str], None] | None = None  # one line when a trial continues an earlier one
    # What the train_time objective charges for a design's first `epoch` epochs. None: the
    # noise-robust measured time (fast step x steps + evaluation + compile, see
    # hourglass.steptime). A benchmark sets a deterministic cost model instead. Either way
    # the curve's "time_s" holds the charge and "wall_s" the clock.
    time_model: Callable[[TrainConfig, Costs, int], float] | None = None

    def resolve(self, trial: optuna.Trial) -> TrainConfig:
        return self.preset.train_config(self.space.suggest(trial), where=f"trial {trial.number}")

    def _values(self, static: dict[str, float], pckh: float, time_s: float) -> list[float]:
        known = {**static, "pckh": pckh, "train_time": time_s}
        return [float(known[name]) for name in self.preset.objectives]

    def __call__(self, trial: optuna.Trial) -> Sequence[float] | float:
        """Map how a trial ends to Optuna states and user attrs: pruned (rung or NaN loss,
        checkpoint removed), FAIL with ``fail_reason`` ``oom`` (device memory released) or
        ``exception`` (with its ``traceback``); the checkpoint of a FAIL trial stays for a retry."""
        config = self.resolve(trial)
        resolved = config.to_dict()
        twin = completed_twin(trial.study, rec.config_hash(resolved))
        if twin is not None:  # the same config and seed trains to the same result: copy it
            rec.put_all(trial, rec.copy_of(twin))
            return list(twin.values) if self.preset.multi_objective else twin.values[0]
        if "design" in trial.params and rec.get(trial, rec.DESIGN) is None:  # a designs space (grid)
            rec.put(trial, rec.DESIGN, trial.params["design"])  # named like a warm-start trial
        # a retry (Optuna's RetryHeartbeatStaleTrialCallback) names the chain's first attempt
        chain = (
            compat.study_storage(trial.study)
            .get_trial_system_attrs(compat.trial_id(trial))
            .get(rec.FAILED_TRIAL, trial.number)
        )
        if chain != trial.number:
            rec.put(trial, rec.RETRY_OF, chain)
        ckpt_dir = self.checkpoint_root / f"{rec.config_hash(resolved)}-t{chain}"
        paused = continued_trial(trial)
        if paused is not None and chain == trial.number:  # a promotion: take over its screen's checkpoint
            _take_checkpoint(self.checkpoint_root / f"{rec.config_hash(resolved)}-t{paused}", ckpt_dir)
        # a retry resumes after the last checkpointed epoch: its curve starts with those epochs
        curve: list[dict[str, float]] = [_curve_point(m) for m in checkpoint_history(ckpt_dir)]
        rec.put_all(trial, {rec.RESUMED_FROM_EPOCH: len(curve), rec.CURVE: curve})
        if chain != trial.number and self.note is not None:
            self.note(continues_line(trial, chain, len(curve)))
        out_of_memory = False
        try:
            return self._run(trial, config, ckpt_dir, curve)
        except optuna.TrialPruned:
            rec.put_all(trial, rec.times_so_far(curve))  # a pruned trial keeps its time so far
            if rec.get(trial, rec.PRUNE_REASON) != "planned":  # a paused one may be continued
                shutil.rmtree(ckpt_dir, ignore_errors=True)
            raise
        except TrainingDiverged as exc:
            rec.put_all(
                trial,
                {
                    rec.PRUNE_REASON: "diverged",
                    rec.PRUNED_AT_EPOCH: len(curve) + 1,
                    **rec.times_so_far(curve),
                },
            )
            shutil.rmtree(ckpt_dir, ignore_errors=True)
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        except Exception as exc:
            if not is_out_of_memory(exc):  # cuDNN/cuBLAS allocation failures are OOM too
                reason = getattr(exc, "fail_reason", "exception")  # e.g. disk_full (hourglass.checkpoint)
                rec.put_all(
                    trial,
                    {
                        rec.FAIL_REASON: reason,
                        rec.TRACEBACK: traceback.format_exc()[-4000:],
                        **rec.times_so_far(curve),
                    },
                )
                raise
            out_of_memory = True  # handled below, once the exception and its frames are gone
        if out_of_memory:
            _release_memory()
            rec.put_all(trial, {rec.FAIL_REASON: "oom", **rec.times_so_far(curve)})
            raise TrialOutOfMemory(
                f"trial {trial.number}: out of memory on {self.device or 'the default device'} "
                f"(batch {config.schedule.batch_size}); memory released"
            )
        raise AssertionError("unreachable")  # every branch above returns or raises

    def _run(
        self, trial: optuna.Trial, config: TrainConfig, ckpt_dir: Path, curve: list[dict[str, float]]
    ) -> Sequence[float] | float:
        resolved = config.to_dict()
        c = costs(
            config.model,
            time_steps=3 if "step_latency" in self.preset.objectives else 0,
            device=pick_device(self.device),
        )  # the device the trial trains on (auto: the GPU)
        static = {"params": c.params, "flops": c.flops, "step_latency": c.step_time_s or 0.0}
        rec.put_all(
            trial,
            {
                rec.PARAMS: c.params,
                rec.FLOPS: c.flops,
                rec.LAYERS: c.layers,
                rec.OPS_PER_STEP: c.ops_per_step,
                rec.CONFIG: resolved,
                rec.CONFIG_HASH: rec.config_hash(resolved),
            },
        )
        if c.step_time_s is not None:
            rec.put(trial, rec.STEP_LATENCY, c.step_time_s)
        if LATENCY in self.preset.objectives:
            key, static[LATENCY] = cached_latency_ms(trial.study, resolved["model"], f"trial {trial.number}")
            rec.put_all(trial, {rec.MODEL_HASH: key, LATENCY: static[LATENCY]})
        multi = self.preset.multi_objective
        pruning = self.pruning or Pruning(None, multi)

        def charged(m: EpochMetrics) -> float:
            if self.time_model is None:
                return m.train_time_s
            return float(self.time_model(config, c, m.epoch))

        def on_epoch_end(m: EpochMetrics) -> None:
            curve.append({**_curve_point(m), "time_s": charged(m)})
            if m.compile_s:  # paid once per process, in its first epoch; pruned trials keep it too
                rec.put(trial, rec.COMPILE_S, m.compile_s)
            rec.put_all(trial, {rec.CURVE: curve, rec.EPOCHS_RUN: m.epoch})
            if self.on_epoch is not None:
                self.on_epoch(trial, m)
            if m.epoch >= config.schedule.epochs:
                return
            if pruning.should_stop(trial, m.epoch, m.pckh, self._values(static, m.pckh, charged(m))):
                rec.put_all(trial, {rec.PRUNED_AT_EPOCH: m.epoch, rec.PRUNE_REASON: pruning.reason})
                raise optuna.TrialPruned(f"pruned at epoch {m.epoch} (PCKh {m.pckh:.1f})")

        result = train(
            config,
            self.arrays,
            device=self.device,
            on_epoch_end=on_epoch_end,
            checkpoint_dir=ckpt_dir,
            progress=self.progress,
        )
        shutil.rmtree(ckpt_dir, ignore_errors=True)  # finished: the export retrains from the config
        rec.put_all(
            trial,
            {
                rec.EPOCHS_RUN: len(result.history),
                rec.EPOCHS_TRAINED: len(result.history) - result.resumed_from_epoch,
                rec.WALL_TIME_S: result.wall_time_s,
                rec.TRAIN_TIME_S: charged(result.history[-1]),
                rec.COMPILE_S: result.compile_s,
                rec.TRAIN_IMG_S: sum(m.train_img_s for m in result.history) / max(len(result.history), 1),
                rec.DEVICE: result.device,
                rec.RESUMED_FROM_EPOCH: result.resumed_from_epoch,
            },
        )
        if result.device == "cpu":
            rec.put(trial, rec.CPU_THREADS, torch.get_num_threads())
        if result.final is not None:  # the final per-joint table (Table 1); the curve keeps the Mean
            rec.put(trial, rec.PCKH_JOINTS, {k: float(v) for k, v in result.final.per_joint.items()})
        values = self._values(static, result.history[-1].pckh, charged(result.history[-1]))
        return values if multi else values[0]
