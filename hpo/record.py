"""The trial record: what a trial and its study store, in one place.

Optuna keeps a trial's bookkeeping as untyped user attributes. Every name is a constant
here, every read and write goes through the helpers below, and :class:`TrialRecord` is the
typed view of one trial. The objective registry (:data:`OBJECTIVES`) says, per objective,
its direction, where its value after a given epoch comes from (a learning-curve point or a
static attribute) and how it is measured: adding an objective is one entry here plus its
measurement in :mod:`hpo.objective`.

The learning curve (``curve``) is a list of ``{"epoch", "pckh", "loss", "time_s",
"wall_s"}`` points, epoch 1-based, ``time_s`` the charged training time so far (what the
``train_time`` objective charges) and ``wall_s`` the clock so far. Every trial that trained
at least one epoch carries its time so far (``train_time_s`` and ``wall_time_s``), pruned
and failed ones included. This module imports neither torch nor optuna.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DESIGN",
    "CONFIG",
    "CONFIG_HASH",
    "CURVE",
    "PARAMS",
    "FLOPS",
    "LAYERS",
    "OPS_PER_STEP",
    "STEP_LATENCY",
    "LATENCY",
    "MODEL_HASH",
    "EPOCHS_RUN",
    "EPOCHS_TRAINED",
    "WALL_TIME_S",
    "TRAIN_TIME_S",
    "COMPILE_S",
    "TRAIN_IMG_S",
    "DEVICE",
    "CPU_THREADS",
    "RESUMED_FROM_EPOCH",
    "PCKH_JOINTS",
    "PRUNED_AT_EPOCH",
    "PLANNED_EPOCHS",
    "PLANNED_DESIGN",
    "CONTINUES",
    "PRUNE_REASON",
    "FAIL_REASON",
    "TRACEBACK",
    "RETRY_OF",
    "COPIED_FROM",
    "WORKER",
    "FAILED_TRIAL",
    "RETRY_HISTORY",
    "STUDY_OBJECTIVES",
    "STUDY_PRESET",
    "STUDY_WARM_STARTED",
    "STUDY_TABLE_PLANNED",
    "ObjectiveSpec",
    "OBJECTIVES",
    "objective_spec",
    "config_hash",
    "find_trial",
    "get",
    "put",
    "put_all",
    "study_get",
    "study_put",
    "system_get",
    "seed_attrs",
    "copy_of",
    "COPIED_ATTRS",
    "curve_point",
    "rung_values",
    "value_so_far",
    "times_so_far",
    "TrialRecord",
    "model_label",
]

# --- trial user attributes -------------------------------------------------------------
DESIGN = "design"  # name of a seed design (warm start) or of a designs-space choice
CONFIG = "config"  # the resolved TrainConfig as a dict (what `hpo export` writes)
CONFIG_HASH = "config_hash"  # config_hash(CONFIG)
CURVE = "curve"  # the learning curve (module doc)
PARAMS = "params"  # counted costs (hourglass.costs)
FLOPS = "flops"
LAYERS = "layers"
OPS_PER_STEP = "ops_per_step"
STEP_LATENCY = "step_latency"  # measured seconds of one training step
LATENCY = "latency"  # ms of one batch-1 forward pass, ONNX Runtime CPU, 1 thread
MODEL_HASH = "model_hash"  # config_hash of the model section (the latency cache key)
EPOCHS_RUN = "epochs_run"
EPOCHS_TRAINED = "epochs_trained"  # epochs_run less those resumed from a checkpoint
WALL_TIME_S = "wall_time_s"  # the clock so far
TRAIN_TIME_S = "train_time_s"  # the charged train_time so far (noise-robust, hourglass.steptime)
COMPILE_S = "compile_s"  # compile/capture seconds the trial paid (in its train_time)
TRAIN_IMG_S = "train_img_s"
DEVICE = "device"
# torch's intra-op thread count a CPU trial trained with. Float sums differ with it, so
# `hpo train` on an export uses the same count to reproduce the trial's PCKh.
CPU_THREADS = "cpu_threads"
RESUMED_FROM_EPOCH = "resumed_from_epoch"
PCKH_JOINTS = "pckh_joints"  # final PCKh@0.5 per joint, {"Head": .., ..., "Mean": ..}
PRUNED_AT_EPOCH = "pruned_at_epoch"
# epochs the sampler planned for the trial (hpo.screening; pruner "planned" stops it there)
PLANNED_EPOCHS = "planned_epochs"
# the params it planned, written before they are suggested: other workers see the design taken
PLANNED_DESIGN = "planned_design"
# the trial whose checkpoint this one resumes: a promotion continues its design's screen
# (hpo.screening), so the epochs the screen trained are not paid again
CONTINUES = "continues"
PRUNE_REASON = "prune_reason"  # "mo_rung", "planned", "optuna_pruner" or "diverged"
FAIL_REASON = "fail_reason"  # "oom" or "exception"
TRACEBACK = "traceback"
RETRY_OF = "retry_of"  # number of the first trial of a retry chain
# the completed trial whose resolved config (seed included) this one repeated: its record and
# values were copied instead of training the same thing again (nothing trained here)
COPIED_FROM = "copied_from"
WORKER = "worker"  # id of the worker process that ran the trial

# --- trial system attributes Optuna writes (its retry callback), read by the workers
FAILED_TRIAL = "failed_trial"  # on a retry: number of the first trial of its chain
RETRY_HISTORY = "retry_history"  # on a retry: the numbers of the attempts before it

# --- study user attributes -------------------------------------------------------------
STUDY_OBJECTIVES = "objectives"  # the objective names, in value order
STUDY_PRESET = "preset"  # the preset as a dict (storage URL redacted)
STUDY_WARM_STARTED = "warm_started"  # the seed-designs file enqueued once
STUDY_TABLE_PLANNED = "table_planned"  # hpo bench-table: how many grid trials were enqueued, once


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective: its direction, where its value after an epoch comes from (the curve
    point's ``curve_key``, else the static trial attribute ``attr``) and how it is measured."""

    name: str
    direction: str  # "maximize" or "minimize"
    measured: str
    curve_key: str | None = None
    attr: str | None = None

    def at(self, attrs: Mapping[str, Any], point: Mapping[str, Any]) -> Any:
        """The value after the epoch of curve ``point`` (None where not recorded)."""
        return point.get(self.curve_key) if self.curve_key else attrs.get(self.attr)


OBJECTIVES: dict[str, ObjectiveSpec] = {
    s.name: s
    for s in (
        ObjectiveSpec("pckh", "maximize", "validation PCKh@0.5 (percent) after the epoch", curve_key="pckh"),
        ObjectiveSpec("params", "minimize", "parameter count (hourglass.costs)", attr=PARAMS),
        ObjectiveSpec(
            "train_time",
            "minimize",
            "charged training seconds so far (hourglass.steptime)",
            curve_key="time_s",
        ),
        ObjectiveSpec("flops", "minimize", "FLOPs of one forward pass (hourglass.costs)", attr=FLOPS),
        ObjectiveSpec("step_latency", "minimize", "measured seconds of one training step", attr=STEP_LATENCY),
        ObjectiveSpec(
            LATENCY, "minimize", "ONNX Runtime CPU ms, batch 1, 1 thread (hpo.deploy)", attr=LATENCY
        ),
    )
}


def objective_spec(name: str) -> ObjectiveSpec:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; expected one of {list(OBJECTIVES)}")
    return OBJECTIVES[name]


# --- reading and writing ----------------------------------------------------------------
def get(trial: Any, key: str, default: Any = None) -> Any:
    """A trial's user attribute (a FrozenTrial or a live optuna.Trial)."""
    return trial.user_attrs.get(key, default)


def put(trial: Any, key: str, value: Any) -> None:
    trial.set_user_attr(key, value)


def put_all(trial: Any, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        trial.set_user_attr(key, value)


def system_get(trial: Any, key: str, default: Any = None) -> Any:
    """A trial's system attribute (Optuna's own bookkeeping, e.g. :data:`FAILED_TRIAL`)."""
    return trial.system_attrs.get(key, default)


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable short hash of a resolved config or one of its sections (key order does not
    matter): what :data:`CONFIG_HASH` and :data:`MODEL_HASH` hold."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def find_trial(
    study: Any, attr: str, key: Any, *, states: Container[Any] | None = None, having: str | None = None
) -> Any:
    """The first trial of ``study`` (number order; ``states`` as in ``Study.get_trials``)
    whose user attr ``attr`` equals ``key`` and, with ``having``, that recorded that attr
    too; None if there is none. A study is its own cache: what one trial measured for a
    design (its result, its latency) a later trial of the same design finds here."""
    for t in study.get_trials(deepcopy=False, states=states):
        if get(t, attr) == key and (having is None or get(t, having) is not None):
            return t
    return None


def study_get(study: Any, key: str, default: Any = None) -> Any:
    return study.user_attrs.get(key, default)


def study_put(study: Any, key: str, value: Any) -> None:
    study.set_user_attr(key, value)


# what a repeat of a completed design copies from it (hpo.objective, hpo.bench.replay)
COPIED_ATTRS = (
    PARAMS,
    FLOPS,
    LAYERS,
    OPS_PER_STEP,
    STEP_LATENCY,
    LATENCY,
    MODEL_HASH,
    CONFIG,
    CONFIG_HASH,
    CURVE,
    EPOCHS_RUN,
    TRAIN_TIME_S,
    PCKH_JOINTS,
    DEVICE,
    CPU_THREADS,
)


def copy_of(twin: Any) -> dict[str, Any]:
    """The attrs of a trial that repeats the completed trial ``twin`` (see :data:`COPIED_FROM`)."""
    attrs = {k: twin.user_attrs[k] for k in COPIED_ATTRS if k in twin.user_attrs}
    return {**attrs, COPIED_FROM: twin.number, EPOCHS_TRAINED: 0, WALL_TIME_S: 0.0}


def seed_attrs(design: str) -> dict[str, Any]:
    """User attrs of an enqueued seed design (``study.enqueue_trial(params, user_attrs=...)``)."""
    return {DESIGN: design}


def curve_point(attrs: Mapping[str, Any], epoch: int) -> Mapping[str, Any] | None:
    return next((p for p in attrs.get(CURVE) or () if p.get("epoch") == epoch), None)


def rung_values(attrs: Mapping[str, Any], epoch: int, objectives: Sequence[str]) -> list[float] | None:
    """The objective values as they stood after ``epoch`` epochs, or None if the trial did
    not reach that epoch or lacks one of them."""
    point = curve_point(attrs, epoch)
    if point is None:
        return None
    out = []
    for name in objectives:
        value = objective_spec(name).at(attrs, point)
        if value is None:
            return None
        out.append(float(value))
    return out


def value_so_far(attrs: Mapping[str, Any], name: str) -> Any:
    """What a trial without values (pruned, failed, running) measured of objective ``name``
    by its last epoch: its last curve point or static attribute."""
    if name not in OBJECTIVES:
        return None
    return OBJECTIVES[name].at(attrs, (attrs.get(CURVE) or [{}])[-1])


def times_so_far(curve: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``{train_time_s, wall_time_s}`` of a trial stopped after the last point of ``curve``
    (nothing before its first epoch), so pruned and failed trials carry their time too."""
    if not curve:
        return {}
    last = curve[-1]
    return {TRAIN_TIME_S: float(last["time_s"]), WALL_TIME_S: float(last.get("wall_s", last["time_s"]))}


def model_label(block: Any, stem: Any, features: Any, stacks: Any) -> str:
    """What a sampled design is, in a few characters: ``multidilated/conv7 16x2``
    (block/stem features x stacks)."""
    return f"{block or '?'}/{stem or '?'} {features or '?'}x{stacks or '?'}"


@dataclass(frozen=True)
class TrialRecord:
    """The typed view of one trial's user attributes (missing ones are None)."""

    number: int
    state: str
    design: str | None
    config: dict[str, Any]
    curve: list[dict[str, float]]
    params: int | None
    flops: int | None
    layers: int | None
    ops_per_step: int | None
    epochs_run: int | None
    wall_time_s: float | None
    train_time_s: float | None
    pruned_at_epoch: int | None
    prune_reason: str | None
    fail_reason: str | None
    copied_from: int | None = None
    continues: int | None = None
    resumed_from_epoch: int | None = None

    @classmethod
    def of(cls, trial: Any) -> TrialRecord:
        a = trial.user_attrs
        return cls(
            number=trial.number,
            state=trial.state.name,
            design=a.get(DESIGN),
            config=a.get(CONFIG) or {},
            curve=list(a.get(CURVE) or ()),
            params=a.get(PARAMS),
            flops=a.get(FLOPS),
            layers=a.get(LAYERS),
            ops_per_step=a.get(OPS_PER_STEP),
            epochs_run=a.get(EPOCHS_RUN),
            wall_time_s=a.get(WALL_TIME_S),
            train_time_s=a.get(TRAIN_TIME_S),
            pruned_at_epoch=a.get(PRUNED_AT_EPOCH),
            prune_reason=a.get(PRUNE_REASON),
            fail_reason=a.get(FAIL_REASON),
            copied_from=a.get(COPIED_FROM),
            continues=a.get(CONTINUES),
            resumed_from_epoch=a.get(RESUMED_FROM_EPOCH),
        )

    @property
    def wall_s_so_far(self) -> float | None:
        """The clock so far: ``wall_time_s`` of a trial that stopped, else the curve's last
        reading (a trial still running)."""
        if self.wall_time_s is not None:
            return self.wall_time_s
        last = self.curve[-1] if self.curve else {}
        return last.get("wall_s")

    @property
    def label(self) -> str:
        """The design's name (a seed design, a designs-space choice), else :func:`model_label`."""
        return self.design or model_label(
            self.block.get("name"),
            self.stem.get("name"),
            self.model.get("features"),
            self.model.get("stacks"),
        )

    @property
    def model(self) -> dict[str, Any]:
        return self.config.get("model") or {}

    @property
    def block(self) -> dict[str, Any]:
        return self.model.get("block") or {}

    @property
    def stem(self) -> dict[str, Any]:
        return self.model.get("stem") or {}
