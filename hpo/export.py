"""Trials as stand-alone YAML configs that ``hpo train CONFIG`` retrains.

A trial's ``config`` user attr holds the fully resolved ``model``/``schedule``/``data``
sections (hpo.record), so an export is that dict plus a comment header saying where it
came from and what it scored. The model section is validated before anything is written:
an export that would not rebuild the same network is an error, not a file. A CPU trial's
export also says ``cpu_threads``: the intra-op thread count it trained with, which
``hpo train`` uses again (float sums, hence the PCKh, depend on it).
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
from hpo.record import CONFIG, CPU_THREADS, get
from hpo.pareto import objective_names, pareto_trials, trial_row

__all__ = ["export_trials", "trial_document", "SECTIONS"]

SECTIONS = ("model", "schedule", "data")


def _by_number(study: optuna.Study, numbers: Sequence[int]) -> list[FrozenTrial]:
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    for n in numbers:
        if n not in trials:
            span = f"0..{max(trials)}" if trials else "none"
            raise ConfigError(f"study {study.study_name!r}: no trial number {n} (trials: {span})")
    return [trials[n] for n in numbers]


def trial_document(study: optuna.Study, trial: FrozenTrial) -> dict:
    """``{"model", "schedule", "data"}`` of ``trial`` (and ``cpu_threads`` where the trial
    recorded it), checked; a one-line error if unusable."""
    where = f"study {study.study_name!r} trial {trial.number}"
    config = get(trial, CONFIG)
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: expected a 'config' user attr (a mapping), but got {config!r}")
    missing = [s for s in ("model", "schedule") if not isinstance(config.get(s), dict)]
    if missing or not isinstance(config.get("data"), (str, dict)):
        raise ConfigError(
            f"{where}: config: expected mappings model and schedule and a data spec, but {(missing or ['data'])[0]!r} is missing"
        )
    HourglassConfig.from_dict(config["model"], where=f"{where}: config.model")
    # JSON round trip: storages hand back plain data, but never let a tuple reach safe_dump.
    doc = {s: config[s] for s in SECTIONS}
    doc["model"] = without_unused_knobs(config["model"])  # no rates on a bottleneck: what it reads
    if isinstance(get(trial, CPU_THREADS), int):
        doc[CPU_THREADS] = get(trial, CPU_THREADS)
    return json.loads(json.dumps(doc))


def _header(study: optuna.Study, trial: FrozenTrial, filename: str) -> str:
    row = trial_row(trial, objective_names(study))
    design = f" (design {row['design']})" if row.get("design") else ""
    lines = [f"hourglass-hpo export: study {study.study_name!r}, trial {trial.number}{design}, {trial.state.name}"]
    if trial.state.name == "PRUNED":
        lines.append(f"pruned at epoch {row.get('pruned_at_epoch')} ({row.get('prune_reason')}); values so far:")
    values = ", ".join(f"{n} = {_fmt(row.get(n))}" for n in objective_names(study))
    lines.append(values)
    lines.append(f"flops = {_fmt(row.get('flops'))}, layers = {_fmt(row.get('layers'))}, epochs run = {_fmt(row.get('epochs'))}")
    lines.append(f"retrain: hpo train {filename}")
    return "".join(f"# {line}\n" for line in lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "n/a" if value is None else str(value)


def _onnx(study: optuna.Study, trial: FrozenTrial, doc: dict):
    """The trial's network as checked ONNX (fresh weights: a trial keeps its config, not its
    weights; ``hpo train`` retrains them), static 1x3xSxS input, last stack's heatmaps."""
    from hourglass.onnx_export import export_onnx

    where = f"study {study.study_name!r} trial {trial.number}"
    return export_onnx(HourglassConfig.from_dict(doc["model"], where=where), where=where)


def export_trials(study: optuna.Study, numbers: Sequence[int] | None, out_dir: str | Path, *,
                  onnx: bool = False) -> list[Path]:
    """Write ``trial_<N>.yaml`` per trial (``numbers``; ``None`` = the Pareto set), and with
    ``onnx`` also ``trial_<N>.onnx`` beside it.

    Every trial is checked (and exported to ONNX) before the first file is written, so a bad
    one leaves no half-finished export behind.
    """
    if onnx:
        require_deploy("export --onnx")
    trials = pareto_trials(study) if numbers is None else _by_number(study, numbers)
    docs = [(t, trial_document(study, t)) for t in trials]
    models = [_onnx(study, t, doc) if onnx else None for t, doc in docs]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for (trial, doc), model in zip(docs, models):
        path = out / f"trial_{trial.number}.yaml"
        path.write_text(_header(study, trial, path.name) + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None), encoding="utf-8")
        paths.append(path)
        if model is not None:
            paths.append(model.save(path.with_suffix(".onnx")))
    return paths
