"""Trials as stand-alone YAML configs that ``hpo train CONFIG`` retrains.

A trial's ``config`` user attr holds the fully resolved ``model``/``schedule``/``data``
sections (hpo.record), so an export is that dict plus a comment header saying where it
came from and what it scored. The model section is validated before anything is written:
an export that would not rebuild the same network is an error, not a file. A CPU trial's
export also says ``cpu_threads``: the intra-op thread count it trained with, which
``hpo train`` uses again (float sums, hence the PCKh, depend on it).

The schedule to retrain with (:func:`retrain_schedule`): as the trial trained (``trial``),
the reference study's (``reference``: 20 epochs, lr steps at 15 and 17), or a preset's
``retrain:`` (else its ``schedule:``); by default the study's own preset's ``retrain:``
when it has one, else the trial's. The chosen values are merged over the trial's schedule.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial

from hourglass.config import HourglassConfig, without_unused_knobs
from hourglass.errors import ConfigError
from hourglass.extras import require_deploy
from hourglass.onnx_export import OnnxModel, export_onnx
from hourglass.train_config import ScheduleConfig, TrainConfig
from hourglass.validate import to_dict
from hourglass.yamlio import deep_merge
from hpo import record as rec
from hpo.pareto import StudySnapshot, pareto_trials, snapshot, trial_row
from hpo.preset import load_preset
from hpo.record import CONFIG, CPU_THREADS, get

__all__ = ["export_trials", "trial_document", "retrain_schedule", "SECTIONS", "SCHEDULES"]

SECTIONS = ("model", "schedule", "data")
SCHEDULES = ("trial", "reference")  # or a preset name / YAML path


def retrain_schedule(snap: StudySnapshot, choice: str | None = None) -> tuple[str, dict]:
    """``(label, schedule values)`` to merge over each exported trial's schedule:
    ``trial`` (none), ``reference`` (the reference study's whole schedule), a preset (its
    ``retrain:``, else its ``schedule:``); None: the study's preset's ``retrain:`` if any."""
    if choice is None:
        stored = snap.attrs.get(rec.STUDY_PRESET)
        retrain = stored.get("retrain") if isinstance(stored, dict) else None
        return ("the study preset's retrain:", dict(retrain)) if retrain else ("trial", {})
    if choice == "trial":
        return "trial", {}
    if choice == "reference":
        return "reference", to_dict(ScheduleConfig())
    preset = load_preset(choice)
    if preset.retrain:
        return f"preset {preset.name}'s retrain:", dict(preset.retrain)
    return f"preset {preset.name}'s schedule:", dict(preset.schedule)


def _by_number(snap: StudySnapshot, numbers: Sequence[int]) -> list[FrozenTrial]:
    trials = {t.number: t for t in snap.trials}
    for n in numbers:
        if n not in trials:
            span = f"0..{max(trials)}" if trials else "none"
            raise ConfigError(f"study {snap.study_name!r}: no trial number {n} (trials: {span})")
    return [trials[n] for n in numbers]


def trial_document(source: StudySnapshot | optuna.Study, trial: FrozenTrial) -> dict:
    """``{"model", "schedule", "data"}`` of ``trial`` (and ``cpu_threads`` where the trial
    recorded it), checked; a one-line error if unusable."""
    where = f"study {source.study_name!r} trial {trial.number}"
    config = get(trial, CONFIG)
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: expected a 'config' user attr (a mapping), but got {config!r}")
    missing = [s for s in ("model", "schedule") if not isinstance(config.get(s), dict)]
    if missing or not isinstance(config.get("data"), (str, dict)):
        raise ConfigError(
            f"{where}: config: expected mappings model and schedule and a data spec, but "
            f"{(missing or ['data'])[0]!r} is missing"
        )
    HourglassConfig.from_dict(config["model"], where=f"{where}: config.model")
    # JSON round trip: storages hand back plain data, but never let a tuple reach safe_dump.
    doc = {s: config[s] for s in SECTIONS}
    doc["model"] = without_unused_knobs(config["model"])  # no rates on a bottleneck: what it reads
    if isinstance(get(trial, CPU_THREADS), int):
        doc[CPU_THREADS] = get(trial, CPU_THREADS)
    return json.loads(json.dumps(doc))


def _with_schedule(doc: dict, label: str, values: dict, where: str) -> dict:
    if not values:
        return doc
    out = {**doc, "schedule": deep_merge(doc["schedule"], values)}
    TrainConfig.from_dict({s: out[s] for s in SECTIONS}, where=f"{where} with schedule {label}")
    return out


def _header(snap: StudySnapshot, trial: FrozenTrial, filename: str, schedule: str = "trial") -> str:
    row = trial_row(trial, snap.names)
    design = f" (design {row['design']})" if row.get("design") else ""
    lines = [
        f"hourglass-hpo export: study {snap.study_name!r}, trial {trial.number}{design}, {trial.state.name}"
    ]
    if trial.state.name == "PRUNED":
        lines.append(
            f"pruned at epoch {row.get('pruned_at_epoch')} ({row.get('prune_reason')}); values so far:"
        )
    values = ", ".join(f"{n} = {_fmt(row.get(n))}" for n in snap.names)
    lines.append(values)
    lines.append(
        f"flops = {_fmt(row.get('flops'))}, layers = {_fmt(row.get('layers'))}, epochs run = "
        f"{_fmt(row.get('epochs'))}"
    )
    lines.append(
        f"schedule: {schedule}" if schedule == "trial" else f"schedule: {schedule} (not the trial's own)"
    )
    lines.append(f"retrain: hpo train {filename} --out {filename.rsplit('.', 1)[0]}/")
    return "".join(f"# {line}\n" for line in lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "n/a" if value is None else str(value)


def _onnx(snap: StudySnapshot, trial: FrozenTrial, doc: dict) -> OnnxModel:
    """The trial's network as checked ONNX, UNTRAINED (fresh weights: a trial keeps its
    config, not its weights; ``hpo train --out`` writes the trained network's model.onnx),
    static 1x3xSxS input, last stack's heatmaps."""
    where = f"study {snap.study_name!r} trial {trial.number}"
    return export_onnx(HourglassConfig.from_dict(doc["model"], where=where), where=where)


def export_trials(
    source: StudySnapshot | optuna.Study,
    numbers: Sequence[int] | None,
    out_dir: str | Path,
    *,
    onnx: bool = False,
    schedule: str | None = None,
) -> list[Path]:
    """Write ``trial_<N>.yaml`` per trial (``numbers``; ``None`` = the Pareto set), with the
    schedule :func:`retrain_schedule` picks for ``schedule``, and with ``onnx`` also
    ``trial_<N>.onnx`` beside it: the architecture with fresh, UNTRAINED weights.

    Every trial is checked (and exported to ONNX) before the first file is written, so a bad
    one leaves no half-finished export behind.
    """
    if onnx:
        require_deploy("export --onnx")
    snap = snapshot(source)
    trials = pareto_trials(snap) if numbers is None else _by_number(snap, numbers)
    label, values = retrain_schedule(snap, schedule)
    docs = [
        (
            t,
            _with_schedule(
                trial_document(snap, t), label, values, f"study {snap.study_name!r} trial {t.number}"
            ),
        )
        for t in trials
    ]
    models = [_onnx(snap, t, doc) if onnx else None for t, doc in docs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for (trial, doc), model in zip(docs, models):
        path = out / f"trial_{trial.number}.yaml"
        path.write_text(
            _header(snap, trial, path.name, label)
            + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None),
            encoding="utf-8",
        )
        paths.append(path)
        if model is not None:
            paths.append(model.save(path.with_suffix(".onnx")))
    return paths
