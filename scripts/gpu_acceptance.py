"""The acceptance run of the CUDA path; ``scripts/gpu_acceptance.sh`` installs the wheels and calls this.

Steps, each timed, each a section of ``<out>/acceptance.json``, a summary printed at the end:

1. ``pytest -m gpu`` (tests/test_gpu.py): device batches and targets equal to the CPU
   path's, one epoch on the device, resume equivalence, a deliberate OOM that fails only its
   trial, compiled training with its compile seconds;
2. ``hpo bench --device D --quick --json``: img/s per seed design, compile seconds, the
   projected seed schedule and MFU (on a GPU);
3. a 4-trial, 2-epoch study on synthetic data (256 px from the full space on a GPU; 64 px
   from the tiny space with ``--quick``), with per-trial compile seconds, train_time and wall time;
4. with ``--throughput 1,2,4``: study throughput (trial-epochs per hour) for K workers on
   one GPU (``hpo run --workers K --gpus 0`` on a journal-file storage).

``--device cpu --quick`` runs the same steps at CI size (CI runs it). Exit status 1 when
a step failed. Steps after the time budget (``--budget-s``) are skipped and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, float]:
    start = time.perf_counter()
    try:
        p = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        code, out = p.returncode, p.stdout
    except subprocess.TimeoutExpired as exc:
        code, out = 124, (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
    return code, out, time.perf_counter() - start


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _study_files(out: Path, name: str, device: str, quick: bool, trials: int, epochs: int) -> Path:
    """A preset (and its space) for the acceptance study, written into ``out``."""
    import yaml

    space = str(ROOT / "search_spaces" / "full.yaml")  # the real family at 256 px
    data = "synthetic:320:256:0"
    if quick:  # the same knobs on toy networks (32 px), so that CI can afford it
        space = str(out / f"{name}_space.yaml")
        Path(space).write_text(
            yaml.safe_dump(
                {
                    "description": "acceptance --quick: toy designs",
                    "base": {
                        "model": {
                            "stacks": 1,
                            "features": 16,
                            "depth": 1,
                            "input_size": 32,
                            "stem": {"channels": 8},
                        }
                    },
                    # a float lr too: 4 trials are 4 distinct configs (a repeat would be copied, not trained)
                    "params": {
                        "model.block.name": {"choices": ["bottleneck", "conv2", "multidilated"]},
                        "schedule.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
                    },
                }
            )
        )
        data = "synthetic:60:32:0"
    preset = {
        "name": name,
        "objectives": ["pckh", "params", "train_time"],
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "budget": {"trials": trials},
        "data": data,
        "space": space,
        "schedule": {
            "epochs": epochs,
            "batch_size": 8 if quick else 24,
            "milestones": [],
            "eval_flip": False,
        },
        "seed": 0,
        "device": device,
    }
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(preset, sort_keys=False))
    return path


def _trials(storage: str, name: str) -> list[dict]:
    import optuna

    sys.path.insert(0, str(ROOT))
    from hpo.storage import open_storage  # journal:// and the rest, as hpo opens them

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    rows = []
    for t in study.trials:
        a = t.user_attrs
        curve = a.get("curve") or [{}]
        rows.append(
            {
                "number": t.number,
                "state": t.state.name,
                "params": a.get("params"),
                "pckh": curve[-1].get("pckh"),
                "epochs": a.get("epochs_run"),
                "train_time_s": a.get("train_time_s"),
                "wall_time_s": a.get("wall_time_s"),
                "compile_s": a.get("compile_s"),
                "train_img_s": a.get("train_img_s"),
                "device": a.get("device"),
                "fail_reason": a.get("fail_reason"),
            }
        )
    return rows


def throughput(trials: list[dict], wall_s: float) -> dict:
    """Trial-epochs per hour of a study run: every epoch trained counts, whoever trained it."""
    epochs = sum(t["epochs"] or 0 for t in trials)
    return {
        "finished": sum(t["state"] in ("COMPLETE", "PRUNED") for t in trials),
        "trial_epochs": epochs,
        "wall_s": wall_s,
        "trial_epochs_per_hour": 3600.0 * epochs / wall_s if wall_s > 0 else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description="Acceptance run of the CUDA path (see the module doc).")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="CI size: tiny models, 64 px, fewer steps")
    ap.add_argument("--out", type=Path, default=ROOT / "acceptance")
    ap.add_argument("--throughput", default="", help="worker counts per GPU to measure, e.g. 1,2,4")
    ap.add_argument("--budget-s", type=float, default=360.0, help="skip the remaining steps after this")
    args = ap.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "PYTHONUNBUFFERED": "1",
        "HPO_ACCEPT_DEVICE": args.device,
        "HPO_ACCEPT_QUICK": "1" if args.quick else "0",
    }
    started = time.perf_counter()
    result: dict = {"device": args.device, "quick": args.quick, "steps": {}}
    failed: list[str] = []

    def left() -> float:
        return args.budget_s - (time.perf_counter() - started)

    def step(name: str, cmd: list[str]) -> tuple[int, str]:
        if left() <= 5:
            result["steps"][name] = {"skipped": "time budget spent"}
            print(f"[{name}] skipped: time budget spent", flush=True)
            return -1, ""
        print(f"[{name}] {' '.join(cmd[1:])}", flush=True)
        code, text, seconds = _run(cmd, env, timeout=max(left(), 10))
        result["steps"][name] = {"rc": code, "seconds": round(seconds, 1)}
        if code != 0:
            failed.append(name)
            print(_tail(text), flush=True)
        return code, text

    code, text = step(
        "tests", [py, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests/test_gpu.py"]
    )
    if code >= 0:
        counts = dict((k, int(n)) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", text))
        result["steps"]["tests"].update(counts)
    bench_json = out / "bench.json"
    code, _ = step(
        "bench",
        [py, "-m", "hpo", "bench", "--device", args.device, "--quick", "--json", str(bench_json)]
        + (["--smoke", "--threads", "1", "--designs", "baseline"] if args.quick else []),
    )
    if code == 0:
        b = json.loads(bench_json.read_text())
        result["device_name"], result["torch"] = b["device_name"], b["torch"]
        result["steps"]["bench"].update(
            {
                "img_s": {n: round(d["train_img_s"], 1) for n, d in b["designs"].items()},
                "eval_img_s": {n: round(d["eval_img_s"], 1) for n, d in b["designs"].items()},
                "with_data_img_s": b["train_with_data"]["img_s"],
                "compile_s": b["compile_s"],
                "projected_seed_schedule_s": b["projected_seed_schedule_s"],
                "projected_seed_schedule_eager_s": b["projected_seed_schedule_eager_s"],
                "mfu": b["mfu"],
                "peak_memory_bytes": b["memory"]["peak_bytes"],
                "json": str(bench_json),
            }
        )
    trials, epochs = 4, 2
    preset = _study_files(out, "acceptance", args.device, args.quick, trials, epochs)
    storage = f"sqlite:///{out / 'acceptance.db'}"
    if Path(out / "acceptance.db").exists():
        (out / "acceptance.db").unlink()
    start = time.perf_counter()
    code, _ = step(
        "study",
        [
            py,
            "-m",
            "hpo",
            "run",
            str(preset),
            "--storage",
            storage,
            "--quiet",
            "--report",
            str(out / "acceptance.html"),
            "--checkpoint-dir",
            str(out / "ckpt"),
        ],
    )
    if code >= 0:
        rows = _trials(storage, "acceptance")
        result["steps"]["study"].update(throughput(rows, time.perf_counter() - start), trials=rows)
        if sum(r["state"] == "COMPLETE" for r in rows) < trials:
            failed.append("study")
    for k in [int(k) for k in args.throughput.split(",") if k.strip()]:
        log = out / f"throughput_k{k}.log"
        log.unlink(missing_ok=True)
        name = f"throughput_k{k}"
        start = time.perf_counter()
        cmd = [
            py,
            "-m",
            "hpo",
            "run",
            str(preset),
            "--storage",
            f"journal:///{log}",
            "--workers",
            str(k),
            "--n-trials",
            str(2 * k),
            "--quiet",
            "--report",
            str(out / f"{name}.html"),
            "--checkpoint-dir",
            str(out / "ckpt"),
        ] + (["--gpus", "0"] if args.device.startswith("cuda") else [])
        code, _ = step(name, cmd)
        if code >= 0:
            result["steps"][name].update(
                throughput(_trials(f"journal:///{log}", "acceptance"), time.perf_counter() - start), workers=k
            )
    result["failed"] = failed
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    (out / "acceptance.json").write_text(json.dumps(result, indent=2) + "\n")
    _summary(result, out / "acceptance.json")
    return 1 if failed else 0


def _summary(r: dict, path: Path) -> None:
    s = r["steps"]
    print(
        f"\nacceptance on {r['device']} ({r.get('device_name', '?')}, torch {r.get('torch', '?')})"
        f"{' quick' if r['quick'] else ''}: {r['elapsed_s']} s"
    )
    t = s.get("tests", {})
    print(
        f"  tests -m gpu: {t.get('passed', 0)} passed, {t.get('failed', 0)} failed, "
        f"{t.get('skipped', 0)} skipped ({t.get('seconds', '-')} s)"
    )
    b = s.get("bench", {})
    if "img_s" in b:
        print("  train img/s: " + ", ".join(f"{n} {v}" for n, v in b["img_s"].items()))
        mfu = b["mfu"]
        mfu_text = (
            "-"
            if mfu is None
            else (f"{100 * mfu['vs_spec']:.1f}% of spec, " if mfu["vs_spec"] else "")
            + (f"{100 * mfu['vs_matmul']:.1f}% of matmul" if mfu else "")
        )
        compile_text = "-" if b["compile_s"] is None else f"{b['compile_s']:.1f} s"
        print(
            f"  seed schedule projected {b['projected_seed_schedule_s']:.0f} s "
            f"(eager {b['projected_seed_schedule_eager_s']:.0f} s); compile {compile_text}; MFU {mfu_text}"
        )
    st = s.get("study", {})
    for row in st.get("trials", []):
        print(
            f"  trial {row['number']}: {row['state']:<8} pckh {row['pckh'] or 0:5.1f}  train_time "
            f"{row['train_time_s'] or 0:6.1f} s  wall {row['wall_time_s'] or 0:6.1f} s  compile "
            f"{row['compile_s'] or 0:5.1f} s  {row['fail_reason'] or ''}"
        )
    for name, v in s.items():
        if name.startswith("throughput_k") and "trial_epochs_per_hour" in v:
            print(
                f"  K={v['workers']}: {v['trial_epochs_per_hour']:.0f} trial-epochs/h "
                f"({v['trial_epochs']} in {v['wall_s']:.0f} s)"
            )
    print(f"  failed: {', '.join(r['failed']) or 'nothing'}; JSON: {path}")


if __name__ == "__main__":
    sys.exit(main())
