"""`hpo bench`: the JSON has every figure, with sane values; no timing targets asserted here
(targets live in the benchmark and the README, not in timed unit tests)."""

import json
import math
import sqlite3

import pytest
from typer.testing import CliRunner

from hpo.bench.trial_cost import SEED_SCHEDULE, measure_bookkeeping
from hpo.bench.trial_cost import trial_cost_settings as bench_settings
from hpo.cli import app


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_settings_fit_the_device():
    cpu = bench_settings("cpu", quick=True)
    assert (cpu.input_size, cpu.batch_size) == (64, 8) and "reduced" in cpu.note
    assert bench_settings("cpu").input_size == 128
    gpu = bench_settings("cuda")  # only the sizes: nothing runs on the device here
    assert (gpu.input_size, gpu.batch_size) == (256, 24)
    with pytest.raises(Exception, match="--threads"):
        bench_settings("cpu", threads=-1)


def test_bookkeeping_is_timed_on_a_real_sqlite_study(tmp_path):
    out = measure_bookkeeping(tmp_path, prior_trials=6, epochs=4)
    assert _positive(out["per_trial_s"]) and _positive(out["writes_s"]) and out["pruning_s"] >= 0
    assert out["per_trial_s"] == pytest.approx(out["writes_s"] + out["pruning_s"])
    with sqlite3.connect(tmp_path / "bookkeeping.db") as db:
        states = [s for (s,) in db.execute("select state from trials")]
        curve = db.execute(
            "select value_json from trial_user_attributes where key = 'curve' "
            "and trial_id = (select max(trial_id) from trials)"
        ).fetchone()[0]
    assert len(states) == 7 and all(s == "COMPLETE" for s in states)  # the 6 prior trials + the timed one
    assert [p["epoch"] for p in json.loads(curve)] == [1, 2, 3, 4]


def test_unknown_design_is_a_one_line_error():
    result = CliRunner().invoke(app, ["bench", "--device", "cpu", "--designs", "baseline,nope"])
    assert result.exit_code == 2
    assert (
        "nope" in result.output
        and "dwsep_two" in result.output
        and len(result.output.strip().splitlines()) == 1
    )


@pytest.mark.slow
def test_quick_bench_json_has_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--device",
            "cpu",
            "--quick",
            "--threads",
            "1",
            "--designs",
            "dwsep_two,baseline",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "train step vs reference" in result.output
    r = json.loads(out.read_text())
    assert r["device"] == "cpu" and r["reduced_size"] and r["settings"]["input_size"] == 64
    assert r["threads"]["chosen"] == 1
    assert _positive(r["ratios"]["train_step_vs_reference"]) and _positive(
        r["ratios"]["cache_loader_vs_decode"]
    )
    assert list(r["designs"]) == ["baseline", "dwsep_two"]  # the baseline first, whatever the order asked
    assert _positive(r["ratios"]["train_step_vs_reference_paired"])
    # the yardstick is built in the baseline design's stem layout (pytorch_pose)
    assert r["designs"]["baseline"]["params"] == r["reference"]["params"] == 6_730_912
    assert r["designs"]["dwsep_two"]["params"] == 2_373_856
    for row in (*r["designs"].values(), r["reference"]):
        assert _positive(row["train_img_s"]) and _positive(row["eval_img_s"])
        assert row["train_img_s"] == pytest.approx(8 / row["train_step_s"])  # batch 8 at the quick CPU size
        assert row["train_step_s"] <= row["train_step_median_s"]
    base = r["designs"]["baseline"]
    ref_step = r["reference"]["train_step_s"]
    assert r["ratios"]["train_step_vs_reference"] == pytest.approx(base["train_step_s"] / ref_step)
    pw = r["data"]["per_worker"]
    assert r["ratios"]["cache_loader_vs_decode"] == pytest.approx(pw["memory_img_s"] / pw["jpeg_img_s"])
    assert r["ratios"]["cache_rows_vs_decode"] == pytest.approx(pw["hdf5_img_s"] / pw["jpeg_img_s"])
    assert all(_positive(v) for v in pw.values())
    assert _positive(r["data"]["workers_hdf5_img_s"]) and _positive(r["data"]["device_batches_img_s"])
    bk = r["bookkeeping"]
    assert 0 < bk["share"] < 1 and 0 < bk["share_fastest_design"] < 1 and _positive(bk["costs_s"])
    expected = SEED_SCHEDULE["epochs"] * (
        SEED_SCHEDULE["train_rows"] / r["train_with_data"]["img_s"]
        + SEED_SCHEDULE["val_rows"] / base["eval_img_s"]
    )
    assert r["projected_seed_schedule_s"] == pytest.approx(expected)
    assert r["memory"]["peak_bytes"] > 100 * 2**20  # two full-width models and their optimizers are resident
    assert r["mfu"] is None and _positive(r["achieved_tflops"])  # no bf16 peak to divide by on a CPU
    assert r["compile_s"] is None and r["settings"]["compile"] is False  # compiling is the CUDA default only
    assert r["projected_seed_schedule_eager_s"] == r["projected_seed_schedule_s"]


def test_thread_probe_keeps_the_faster_count():
    import os
    import time

    import torch

    from hpo.bench.trial_cost import _choose_threads, _Runner

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    before = torch.get_num_threads()

    def step():  # one thread is the slow setting here
        time.sleep(0.03 if torch.get_num_threads() == 1 else 0.001)

    slow_single = _Runner("baseline", 1, step, lambda: None)
    try:
        out = _choose_threads(slow_single, bench_settings("cpu"))
        assert out["chosen"] == cores == torch.get_num_threads()
        assert set(out["probe"]) == {str(n) for n in {1, cores}}
        assert _choose_threads(slow_single, bench_settings("cpu", threads=1)) == {"chosen": 1, "probe": None}
        assert _choose_threads(slow_single, bench_settings("cpu", quick=True))["chosen"] == 1
    finally:
        torch.set_num_threads(before)


def test_compile_seconds_are_the_warm_up_over_the_steady_median():
    from hpo.bench.trial_cost import bf16_spec_flops, compile_seconds

    assert compile_seconds([30.0, 0.2, 0.1], [0.1, 0.1, 0.12]) == pytest.approx(29.9 + 0.1)
    assert compile_seconds([0.05], [0.1, 0.1]) == 0.0 and compile_seconds([1.0], []) == 0.0
    assert (
        bf16_spec_flops("NVIDIA H100 PCIe") == 756e12 and bf16_spec_flops("NVIDIA H100 80GB HBM3") == 989e12
    )
    assert bf16_spec_flops("NVIDIA H200") == 989e12 and bf16_spec_flops("Intel Xeon") is None
    assert bench_settings("cuda").compile and not bench_settings("cpu").compile
    assert not bench_settings("cuda", compile=False).compile
