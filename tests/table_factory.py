"""Bench tables made up in milliseconds, shaped like a recorded one (hpo.bench.table).

Every point of a space with a ``schedule.seed`` param gets, per seed, a saturating PCKh curve
whose ceiling grows with width and stacks and falls without skips, plus seed noise; times and
parameter counts grow with the design. The numbers are invented; the format is the real one
(written by :func:`hpo.bench.table.write_table`, read by :func:`hpo.bench.table.load_table`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from hpo.bench.table import SEED_PARAM, TABLE_KIND, TABLE_VERSION, grid_trials, params_key, write_table
from hpo.space import SearchSpace

SPACE_DOC = {
    "description": "a small grid for tests",
    "base": {
        "model": {
            "stacks": 1,
            "features": 16,
            "depth": 2,
            "joints": 16,
            "input_size": 64,
            "block": {"name": "bottleneck"},
            "stem": {"name": "conv7", "channels": 8},
        }
    },
    "params": {
        "model.block.name": {"choices": ["bottleneck", "conv2"]},
        "model.block.skip": {"choices": [True, False]},
        "model.features": {"choices": [16, 32]},
        "model.stacks": {"choices": [1, 2]},
        "schedule.lr": {"choices": [0.003, 0.008]},
        SEED_PARAM: {"choices": [0, 1]},
    },
}


def _design(params: dict[str, Any]) -> tuple[int, float, float]:
    """(params, ceiling PCKh, seconds per epoch) of a made-up design."""
    f, s = params["model.features"], params["model.stacks"]
    conv2 = params["model.block.name"] == "conv2"
    n_params = int(f * f * (9 if conv2 else 4) * s * 6 + 1000)
    ceiling = 30 + 0.6 * f + 6 * s + (4 if conv2 else 0) - (8 if not params["model.block.skip"] else 0)
    ceiling += 3 if params["schedule.lr"] == 0.008 else 0
    return n_params, ceiling, 0.5 + f / 32 * s * (1.6 if conv2 else 1.0)


def make_table_doc(
    epochs: int = 9,
    space_doc: dict[str, Any] | None = None,
    seed: int = 0,
    seeds: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """A table of ``space_doc``'s grid (by default :data:`SPACE_DOC`), trained under the
    space's training seeds, or under ``seeds`` if given (e.g. four, as the shipped table)."""
    doc = space_doc or SPACE_DOC
    if seeds is not None:
        doc = {**doc, "params": {**doc["params"], SEED_PARAM: {"choices": list(seeds)}}}
    space = SearchSpace.from_dict(doc, source="<test space>")
    rng = np.random.default_rng(seed)
    points: dict[str, dict[str, Any]] = {}
    for params in grid_trials(space):
        design = {k: v for k, v in params.items() if k != SEED_PARAM}
        n_params, ceiling, per_epoch = _design(params)
        rate = 0.25 + 0.1 * rng.random()
        pckh = [ceiling * (1 - math.exp(-rate * e)) + rng.normal(0, 1.5) for e in range(1, epochs + 1)]
        time_s = [per_epoch * e * (1 + 0.05 * rng.random()) for e in range(1, epochs + 1)]
        entry = points.setdefault(
            params_key(design),
            {
                "params": design,
                "config": {"model": {"features": params["model.features"]}, "schedule": {"seed": 0}},
                "costs": {"params": n_params, "flops": n_params * 100, "ops_per_step": 300, "layers": 20},
                "runs": {},
            },
        )
        entry["runs"][str(params[SEED_PARAM])] = {
            "pckh": pckh,
            "loss": [1e-3 / e for e in range(1, epochs + 1)],
            "time_s": time_s,
            "wall_s": time_s,
        }
    return {
        "kind": TABLE_KIND,
        "version": TABLE_VERSION,
        "study": "test",
        "space": doc,
        "preset": {},
        "epochs": epochs,
        "seeds": sorted(doc["params"][SEED_PARAM]["choices"]),
        "grid_points": len(points),
        "missing": 0,
        "points": list(points.values()),
    }


def make_table(path: Path, **kwargs: Any) -> Path:
    return write_table(make_table_doc(**kwargs), path)
