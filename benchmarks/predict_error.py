"""How far a trained model's predicted joints land from the true ones on generated people
it never saw: images written as PNG files and read back, run through ``hpo predict``'s
library (:func:`hourglass.predict.predict_images`), compared with the generator's joints.

    python benchmarks/predict_error.py m/model.onnx --n 200 --seed 1000 --out benchmarks/results/predict_error.json

Prints and writes the median / 90th-percentile joint error in pixels and in PCKh units
(the person's normalizer: 0.6 x head-box diagonal), and the share within 0.5 units.
The seed must differ from the training data's (``synthetic:N:S:seed``) so that these
people are new to the model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from hourglass.data.synthetic import make_synthetic
from hourglass.predict import predict_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    data = make_synthetic(args.n, args.size, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, image in enumerate(data.images):
            files.append(Path(tmp) / f"person_{i:04d}.png")
            cv2.imwrite(str(files[-1]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        written = [p for p in predict_images(args.model, files, Path(tmp) / "pred") if p.suffix == ".json"]
        pred = np.array(
            [[[j["x"], j["y"]] for j in json.loads(p.read_text())["persons"][0]["joints"]] for p in written]
        )
    err = np.linalg.norm(pred - data.keypoints, axis=-1)  # (n, 16) px
    units = err / data.normalizer[:, None]
    result = {
        "model": str(args.model),
        "people": args.n,
        "size": args.size,
        "seed": args.seed,
        "median_error_px": float(np.median(err)),
        "p90_error_px": float(np.percentile(err, 90)),
        "median_error_pckh_units": float(np.median(units)),
        "within_0.5_units_percent": float(100 * (units <= 0.5).mean()),
        "median_normalizer_px": float(np.median(data.normalizer)),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
