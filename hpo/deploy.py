"""The ``latency`` objective on the study side: its name, and a per-study cache.

The measurement itself lives in :mod:`hourglass.latency` (ONNX Runtime CPU, batch 1, one
thread, median of warm runs). A study samples the same design more than once (TPE
repeats, retries of a killed trial, several workers), and an export plus timing costs
seconds, so a design is measured once: its latency is stored on the trial with the hash
of its model section, and any later trial with the same hash reuses it. The cache is the
study itself, so it works across workers and restarts. This module imports no torch:
presets, the pruner and the report only need the name.
"""

from __future__ import annotations

from typing import Any

import optuna

# the objective's name (ms of one batch-1 forward pass, ONNX Runtime CPU, 1 thread) and the
# cache key beside it, both trial attributes named in hpo.record
from hpo.record import LATENCY, MODEL_HASH, get

__all__ = ["LATENCY", "MODEL_HASH", "cached_latency_ms"]



def cached_latency_ms(study: optuna.Study, model: dict[str, Any], where: str) -> tuple[str, float]:
    """``(model hash, latency ms)`` of a design: from any trial of ``study`` that measured
    the same model, else exported (checked against PyTorch) and measured now."""
    from hourglass.config import HourglassConfig
    from hourglass.latency import measure_latency
    from hpo.objective import config_hash

    key = config_hash(model)
    for t in study.get_trials(deepcopy=False):
        if get(t, MODEL_HASH) == key and get(t, LATENCY) is not None:
            return key, float(get(t, LATENCY))
    config = HourglassConfig.from_dict(model, where=where)
    return key, measure_latency(config, all_threads=False, where=where).ort_1t_ms
