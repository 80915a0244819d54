"""Does train_time still depend on what else the machine is doing? Train one design N times.

The train_time objective charges ``fast step x steps + evaluation (the same way) +
compile`` (:mod:`hourglass.steptime`), the wall time is kept beside it. This trains the
same design and seed ``--runs`` times in a row (optionally while ``--load`` busy-loop
processes compete for the cores) and prints both figures per run and their spread
((max - min) / mean), plus the load average. A JSON copy goes to ``--json``.

    python -m benchmarks.train_time_noise --runs 2 --epochs 3 --load 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time

import torch

from hourglass.config import HourglassConfig, StemConfig
from hourglass.data.synthetic import make_synthetic
from hourglass.train import train
from hourglass.train_config import ScheduleConfig, TrainConfig


def _burn(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def _spread(values: list[float]) -> float:
    return (max(values) - min(values)) / (sum(values) / len(values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--n", type=int, default=400, help="synthetic persons (85 %% train)")
    ap.add_argument("--load", type=int, default=0, help="busy-loop processes during the odd-numbered runs")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = HourglassConfig(stacks=1, features=24, depth=2, input_size=64, stem=StemConfig(channels=8))
    config = TrainConfig(
        model,
        ScheduleConfig(epochs=args.epochs, batch_size=8, milestones=(), seed=0),
        data=f"synthetic:{args.n}:64:0",
    )
    arrays = make_synthetic(args.n, 64, seed=0)
    rows = []
    for run in range(args.runs):
        burners = []
        if args.load and run % 2 == 1:
            stop_at = time.time() + 3600
            burners = [
                multiprocessing.Process(target=_burn, args=(stop_at,), daemon=True) for _ in range(args.load)
            ]
            for p in burners:
                p.start()
        try:
            result = train(config, arrays, device="cpu", progress=False)
        finally:
            for p in burners:
                p.terminate()
                p.join()
        rows.append(
            {
                "run": run,
                "extra_load": len(burners),
                "wall_s": result.wall_time_s,
                "train_time_s": result.train_time_s,
                "load_avg_1m": os.getloadavg()[0],
                "pckh": result.history[-1].pckh,
                "epochs": [
                    {
                        "step_s": m.step_s,
                        "eval_s": m.eval_s,
                        "train_time_s": m.train_time_s,
                        "wall_s": m.time_s,
                    }
                    for m in result.history
                ],
            }
        )
        print(
            f"run {run}: wall {result.wall_time_s:6.2f} s  train_time {result.train_time_s:6.2f} s  "
            f"(+{len(burners)} busy processes, load {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    out = {
        "runs": rows,
        "spread_wall": _spread([r["wall_s"] for r in rows]),
        "spread_train_time": _spread([r["train_time_s"] for r in rows]),
    }
    print(
        f"spread (max-min)/mean: wall {100 * out['spread_wall']:.1f} %, "
        f"train_time {100 * out['spread_train_time']:.1f} %"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
