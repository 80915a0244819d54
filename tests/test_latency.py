"""Latency: warm-up then the median; ONNX Runtime and PyTorch eager; the study's cache."""

import itertools
import math

import optuna
import pytest

from hourglass.config import HourglassConfig
from hourglass.latency import Latency, measure_latency, median_ms
from hpo.deploy import cached_latency_ms
from hpo.record import LATENCY, MODEL_HASH, config_hash

TINY = HourglassConfig.from_dict({"features": 16, "depth": 1, "input_size": 32, "stem": {"channels": 4}})


def test_median_ms_skips_the_warmup_and_ignores_one_stall(monkeypatch):
    clock = itertools.count()
    # perf_counter ticks: every call 1 s apart, except a 100 s stall in the 2nd timed run
    ticks = iter([0, 1, 10, 111, 120, 121])
    monkeypatch.setattr("hourglass.latency.time.perf_counter", lambda: next(ticks))
    calls = []
    ms = median_ms(lambda: calls.append(next(clock)), warmup=2, runs=3)
    assert len(calls) == 5 and ms == 1000.0  # runs of 1 s, 101 s, 1 s -> median 1 s
    with pytest.raises(ValueError, match="runs must be >= 1"):
        median_ms(lambda: None, runs=0)


def test_measure_latency_times_both_runtimes():
    lat = measure_latency(TINY, torch_device="cpu", warmup=1, runs=3)
    assert isinstance(lat, Latency) and lat.runs == 3 and lat.torch_device == "cpu"
    for ms in (lat.ort_1t_ms, lat.ort_all_ms, lat.torch_ms):
        assert 0 < ms < 10_000 and math.isfinite(ms)
    only = measure_latency(TINY, all_threads=False, warmup=0, runs=1)
    assert only.ort_all_ms is None and only.torch_ms is None and only.ort_1t_ms > 0


def test_latency_is_measured_once_per_model_and_cached_in_the_study(monkeypatch):
    study = optuna.create_study()
    model = TINY.to_dict()
    key, ms = cached_latency_ms(study, model, "trial 0")
    assert key == config_hash(model) and ms > 0
    study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={MODEL_HASH: key, LATENCY: 12.5}))

    def must_not_measure(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr("hpo.deploy.measure_latency", must_not_measure)
    assert cached_latency_ms(study, dict(model), "trial 1") == (key, 12.5)
    other = {**model, "features": 8}
    with pytest.raises(AssertionError, match="measured again"):
        cached_latency_ms(study, other, "trial 2")
