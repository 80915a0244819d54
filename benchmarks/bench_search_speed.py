"""How long does ``hpo bench-search --table`` take, serial against its default worker processes?

Runs the command users run (``python -m hpo bench-search --table ... --seeds N``, every table
method) twice, one after the other: ``--workers 1`` (every run in one process) and the default
(one process per CPU). Both under ``PYTHONHASHSEED=0``: SMAC3 iterates sets of configurations,
so ``smac_mf`` depends on the string-hash seed (see :func:`hpo.bench.search._pinned_hash_seed`).
Records per variant the wall time, the CPU seconds of the command and its processes, the load
average before and after (the machine may be shared: compare the two variants as a ratio),
the per-method mean wall time of one run, and whether both summaries are identical once wall
times and the worker count are left aside (they must be).

    python -m benchmarks.bench_search_speed --seeds 30 --json benchmarks/results/bench_search_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_NOT_RESULTS = ("wall_s", "wall_s_mean", "workers")  # what may differ between the variants


def strip_timings(value: Any) -> Any:
    """``value`` without wall times and the worker count, at every depth."""
    if isinstance(value, dict):
        return {k: strip_timings(v) for k, v in value.items() if k not in _NOT_RESULTS}
    if isinstance(value, list):
        return [strip_timings(v) for v in value]
    return value


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_variant(table: str, seeds: int, offset: int, workers: int | None, folder: Path) -> dict[str, Any]:
    """One ``hpo bench-search`` run; its timings and the path of its JSON."""
    out = folder / f"workers_{workers or 'default'}.json"
    cmd = [sys.executable, "-m", "hpo", "bench-search", "--table", table, "--seeds", str(seeds)]
    cmd += [
        "--seed-offset",
        str(offset),
        "--quiet",
        "--json",
        str(out),
        "--html",
        str(out.with_suffix(".html")),
    ]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    load_before, cpu_before, start = os.getloadavg(), _cpu_children(), time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall, cpu, load_after = time.perf_counter() - start, _cpu_children() - cpu_before, os.getloadavg()
    summary = json.loads(out.read_text(encoding="utf-8"))
    return {
        "workers": summary["settings"]["workers"],
        "wall_s": wall,
        "cpu_s": cpu,
        "load_before": list(load_before),
        "load_after": list(load_after),
        "run_wall_s_mean": {m: v["wall_s_mean"] for m, v in summary["methods"].items()},
        "json": str(out),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default="benchmarks/tiny_table.json.gz")
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--seed-offset", type=int, default=0)
    ap.add_argument("--json", type=Path, default=Path("reports/bench_search_speed.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpo_speed_") as tmp:
        serial = run_variant(args.table, args.seeds, args.seed_offset, 1, Path(tmp))
        default = run_variant(args.table, args.seeds, args.seed_offset, None, Path(tmp))
        same = strip_timings(json.loads(Path(serial["json"]).read_text(encoding="utf-8"))) == strip_timings(
            json.loads(Path(default["json"]).read_text(encoding="utf-8"))
        )
    result = {
        "command": f"hpo bench-search --table {args.table} --seeds {args.seeds} --seed-offset {args.seed_offset}",
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "serial": {k: v for k, v in serial.items() if k != "json"},
        "default": {k: v for k, v in default.items() if k != "json"},
        "wall_ratio_default_to_serial": default["wall_s"] / serial["wall_s"],
        "identical_results": same,
    }
    print(
        f"{args.seeds} seeds: serial {serial['wall_s']:.1f} s wall ({serial['cpu_s']:.1f} CPU s), "
        f"{default['workers']} workers {default['wall_s']:.1f} s wall ({default['cpu_s']:.1f} CPU s), "
        f"ratio {result['wall_ratio_default_to_serial']:.2f}; identical results: {same}; "
        f"load {serial['load_before'][0]:.1f} -> {default['load_after'][0]:.1f}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if not same:
        sys.exit("the serial and the parallel summaries differ")


if __name__ == "__main__":
    main()
