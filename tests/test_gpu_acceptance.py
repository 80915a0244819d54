"""scripts/gpu_acceptance.sh --device cpu --quick: the GPU machine's acceptance run, at CI
size on the CPU, so that the script (and the gpu-marked tests it runs) keep working."""

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _driver():
    spec = importlib.util.spec_from_file_location("gpu_acceptance", ROOT / "scripts" / "gpu_acceptance.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_throughput_counts_every_trained_epoch():
    trials = [
        {"state": "COMPLETE", "epochs": 2},
        {"state": "PRUNED", "epochs": 1},
        {"state": "FAIL", "epochs": None},
    ]
    out = _driver().throughput(trials, wall_s=90.0)
    assert out == {"finished": 2, "trial_epochs": 3, "wall_s": 90.0, "trial_epochs_per_hour": 120.0}


@pytest.mark.slow
def test_the_acceptance_script_passes_on_the_cpu(tmp_path):
    run = subprocess.run(
        [
            "bash",
            str(ROOT / "scripts" / "gpu_acceptance.sh"),
            "--device",
            "cpu",
            "--quick",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "acceptance on cpu" in run.stdout and "failed: nothing" in run.stdout
    r = json.loads((tmp_path / "acceptance.json").read_text())
    assert r["failed"] == [] and r["device"] == "cpu" and r["quick"]
    tests = r["steps"]["tests"]
    assert tests["rc"] == 0 and tests["passed"] >= 4 and "failed" not in tests
    bench = r["steps"]["bench"]
    assert bench["rc"] == 0 and bench["img_s"]["baseline"] > 0 and bench["compile_s"] is None
    assert bench["projected_seed_schedule_s"] > 0 and bench["mfu"] is None  # no GPU: no MFU
    study = r["steps"]["study"]
    assert [t["state"] for t in study["trials"]] == ["COMPLETE"] * 4 and study["trial_epochs"] == 8
    for t in study["trials"]:
        assert 0 < t["train_time_s"] and 0 < t["wall_time_s"] and t["compile_s"] == 0.0
