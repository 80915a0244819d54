"""The ``latency`` objective on the study side: a per-study cache of the measurement.

The measurement itself lives in :mod:`hourglass.latency` (ONNX Runtime CPU, batch 1, one
thread, median of warm runs). A study samples the same design more than once (TPE
repeats, retries of a killed trial, several workers), and an export plus timing costs
seconds, so a design is measured once: its latency is stored on the trial with the hash
of its model section, and any later trial with the same hash reuses it. The cache is the
study itself, so it works across workers and restarts. The objective's name and the cache
key are trial attributes of :mod:`hpo.record`.
"""

from __future__ import annotations

from typing import Any

import optuna

from hourglass.config import HourglassConfig
from hourglass.latency import measure_latency
from hpo import record as rec

__all__ = ["cached_latency_ms"]


def cached_latency_ms(study: optuna.Study, model: dict[str, Any], where: str) -> tuple[str, float]:
    """``(model hash, latency ms)`` of a design: from any trial of ``study`` that measured
    the same model, else exported (checked against PyTorch) and measured now."""
    key = rec.config_hash(model)
    measured = rec.find_trial(study, rec.MODEL_HASH, key, having=rec.LATENCY)
    if measured is not None:
        return key, float(rec.get(measured, rec.LATENCY))
    config = HourglassConfig.from_dict(model, where=where)
    return key, measure_latency(config, all_threads=False, where=where).ort_1t_ms
