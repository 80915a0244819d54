"""Is the synthetic pose set learnable? Train a tiny hourglass on CPU and report val PCKh@0.5.

Not part of the package: a standalone check of the data pipeline (make_synthetic ->
PoseDataset with augmentation -> heatmap_loss) with a plain Adam loop, written before the
project's trainer existed. Usage (from the repository root):

    python -m benchmarks.learn_synthetic --n 2000 --size 64 --epochs 30
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from hourglass.config import HourglassConfig, StemConfig
from hourglass.costs import count_params
from hourglass.data.augment import AugmentConfig
from hourglass.data.dataset import STRIDE, PoseDataset
from hourglass.data.heatmaps import decode_heatmaps, heatmap_loss, heatmap_to_input
from hourglass.data.synthetic import make_synthetic
from hourglass.metrics import PCKhResult, format_table, pckh
from hourglass.model import build_model


def evaluate(model: torch.nn.Module, loader: DataLoader) -> PCKhResult:
    model.eval()
    preds, gts, present, norms = [], [], [], []
    with torch.no_grad():
        for batch in loader:
            heatmaps = model(batch["image"])[:, -1]  # (N, J, H, W) last stack
            preds.append(heatmap_to_input(decode_heatmaps(heatmaps), STRIDE))
            gts.append(batch["keypoints"])
            present.append(batch["present"])
            norms.append(batch["normalizer"])
    model.train()
    return pckh(torch.cat(preds), torch.cat(gts), torch.cat(present), torch.cat(norms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--stacks", type=int, default=2)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-augment", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = make_synthetic(args.n, args.size, args.seed)
    print(f"generated {args.n} images {args.size}x{args.size} in {time.perf_counter() - t0:.1f}s")
    augment = None if args.no_augment else AugmentConfig()
    train = PoseDataset(data, "train", args.size, sigma=args.sigma, augment=augment, seed=args.seed)
    val = PoseDataset(data, "val", args.size, sigma=args.sigma)
    train_loader = DataLoader(train, batch_size=args.batch, shuffle=True, drop_last=True)
    val_loader = DataLoader(val, batch_size=128)
    cfg = HourglassConfig(
        stacks=args.stacks,
        features=args.features,
        depth=args.depth,
        input_size=args.size,
        stem=StemConfig(channels=8),
    )
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    # constant LR, then one 10x drop for the last quarter of the epochs
    sched = torch.optim.lr_scheduler.MultiStepLR(
        opt, milestones=[int(0.75 * args.epochs) * len(train_loader)], gamma=0.1
    )
    print(f"model: {count_params(model):,} params, {len(train)} train / {len(val)} val")
    start, best = time.perf_counter(), 0.0
    cpu0 = time.process_time()
    for epoch in range(1, args.epochs + 1):
        total = 0.0
        for batch in train_loader:
            loss = heatmap_loss(model(batch["image"]), batch["heatmaps"], batch["present"], cfg.loss_weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        result = evaluate(model, val_loader)
        score = result.total
        best = max(best, score)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        print(
            f"epoch {epoch:3d}  loss {total / len(train_loader):.5f}  val PCKh@0.5 {score:5.1f}%  "
            f"{elapsed:6.0f}s wall  {cpu:6.0f}s cpu",
            flush=True,
        )
    print(format_table(result))
    print(
        f"final val PCKh@0.5 {score:.1f}% (best {best:.1f}%) after {epoch} epochs, "
        f"{time.perf_counter() - start:.0f}s wall, {time.process_time() - cpu0:.0f}s cpu"
    )


if __name__ == "__main__":
    main()
