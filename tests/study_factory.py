"""Real Optuna studies (SQLite) filled the way hpo.objective fills them (hpo.record).

Costs come from the real model family (tiny designs at 64 px), so exported configs can be
checked against them; accuracies and times are made up but shaped like a real study.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from hourglass.config import HourglassConfig
from hourglass.costs import costs
from hpo import record as rec

OBJECTIVES = ["pckh", "params", "train_time"]
DIRECTIONS = ["maximize", "minimize", "minimize"]
BASE = {"stacks": 1, "features": 32, "depth": 2, "input_size": 64, "stem": {"channels": 8}}

# (design name or None, model overrides, final PCKh, state, epochs run)
TRIALS = [
    ("baseline", {}, 71.0, "COMPLETE", 6),
    ("dwsep_mid", {"block": {"separable": "mid"}}, 66.5, "COMPLETE", 6),
    ("conv_two", {"block": {"name": "conv2"}}, 73.5, "COMPLETE", 6),
    (None, {"stacks": 2}, 74.0, "COMPLETE", 6),
    (None, {"features": 16, "block": {"name": "conv2", "separable": "all"}}, 52.0, "COMPLETE", 6),
    (None, {"block": {"dilation": 2}}, 60.0, "COMPLETE", 6),  # dominated by baseline (same cost, lower PCKh)
    (None, {"block": {"name": "multidilated"}}, 31.0, "PRUNED", 2),
    (None, {"features": 16}, 22.0, "PRUNED", 3),
    (None, {"stacks": 2, "block": {"skip": False}}, None, "FAIL", 1),
]


SPACE = {
    "stacks": IntDistribution(1, 4),
    "features": CategoricalDistribution([16, 32, 64]),
    "block": CategoricalDistribution(["bottleneck", "conv2", "multidilated"]),
    "separable": CategoricalDistribution(["none", "mid", "all"]),
    "dilation": IntDistribution(1, 4),
}


@functools.cache
def _costs(model_json: str):
    return costs(HourglassConfig.from_dict(json.loads(model_json)))


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def trial_attrs(overrides: dict, pckh: float | None, epochs: int, state: str) -> tuple[dict, float]:
    """User attrs like hpo.objective writes them, and the trial's training time."""
    model = HourglassConfig.from_dict(_merge(BASE, overrides)).to_dict()
    c = _costs(json.dumps(model, sort_keys=True))
    epoch_s = 0.5 + c.layers / 40  # time follows layer count, as the reference study found
    final = pckh if pckh is not None else 5.0
    curve = [
        {
            "epoch": e,
            "pckh": round(final * (1 - math.exp(-0.8 * e)) / (1 - math.exp(-4.8)), 3),
            "loss": round(0.01 / e, 5),
            "time_s": round(epoch_s * e, 3),
        }
        for e in range(1, epochs + 1)
    ]
    attrs = {
        rec.PARAMS: c.params,
        rec.FLOPS: c.flops,
        rec.LAYERS: c.layers,
        rec.OPS_PER_STEP: c.ops_per_step,
        rec.EPOCHS_RUN: epochs,
        rec.WALL_TIME_S: epoch_s * epochs,
        rec.TRAIN_IMG_S: 400.0 / epoch_s,
        rec.DEVICE: "cpu",
        rec.CONFIG: {
            "model": model,
            "schedule": {"epochs": 6, "lr": 1e-3, "batch_size": 8},
            "data": "synthetic:64:64:0",
        },
        rec.CURVE: curve,
    }
    if state == "PRUNED":
        attrs.update({rec.PRUNED_AT_EPOCH: epochs, rec.PRUNE_REASON: "mo_rung"})
    return attrs, epoch_s * epochs


def make_study(tmp_path: Path, name: str = "demo", trials=TRIALS) -> tuple[optuna.Study, str]:
    """A multi-objective study in ``tmp_path/<name>.db``; returns (study, storage URL)."""
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    study = optuna.create_study(study_name=name, storage=url, directions=DIRECTIONS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(OBJECTIVES)
    rec.study_put(study, rec.STUDY_OBJECTIVES, OBJECTIVES)
    rec.study_put(study, rec.STUDY_PRESET, {"name": "tiny", "epochs": 6})
    for design, over, pckh, state, epochs in trials:
        attrs, seconds = trial_attrs(over, pckh, epochs, state)
        if design:
            attrs[rec.DESIGN] = design
        values = [pckh, attrs[rec.PARAMS], seconds] if state == "COMPLETE" else None
        model = attrs[rec.CONFIG]["model"]
        params = {
            "stacks": model["stacks"],
            "features": model["features"],
            "block": model["block"]["name"],
            "separable": model["block"]["separable"],
            "dilation": model["block"]["dilation"],
        }
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState[state], values=values, user_attrs=attrs, params=params, distributions=SPACE
            )
        )
    return study, url
