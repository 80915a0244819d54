"""``hpo predict MODEL IMAGE_OR_FOLDER...``: a trained network's joints on images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hourglass.errors import ConfigError

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@app.command()
def predict(
    model: Annotated[
        Path, typer.Argument(help="model.pt or model.onnx from hpo train --out.", show_default=False)
    ],
    images: Annotated[list[Path], typer.Argument(help="Images, or folders of images.", show_default=False)],
    out: Annotated[
        Path, typer.Option("--out", help="Folder for <image>.json and <image>.png.", show_default=False)
    ],
    center: Annotated[
        str | None,
        typer.Option(
            "--center", help="Person centre x,y in pixels (MPII objpos); with --scale.", show_default=False
        ),
    ] = None,
    scale: Annotated[
        float | None,
        typer.Option(
            "--scale", help="Person height / 200 px (MPII scale); with --center.", show_default=False
        ),
    ] = None,
    annotations: Annotated[
        Path | None,
        typer.Option(
            "--annotations",
            help="MPII annotation file (.json/.json.gz/.h5/.mat): crop every person it lists "
            "in each image, by file name.",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads.")] = 1,
) -> None:
    """Find the 16 joints in images: a JSON and a PNG with the skeleton per image.

    The JSON holds the MPII joints in original image pixels, each with its heatmap peak
    as a score. MODEL is a model.pt (PyTorch) or model.onnx (ONNX Runtime).

    The person is cropped as in training: by default the image's centred square (a person
    roughly centred, about 80 % of the longer side); --center/--scale or --annotations give
    the MPII box (centre moved down 15 x scale, side 250 x scale).
    """
    from hourglass.predict import predict_images

    if (center is None) != (scale is None):
        raise ConfigError("--center/--scale: expected both (x,y and a scale) or neither")
    if annotations is not None and center is not None:
        raise ConfigError("--annotations: not with --center/--scale (the file gives each person's box)")
    point = None
    if center is not None:
        try:
            x, y = (float(v) for v in center.split(","))
        except ValueError:
            raise ConfigError(f"--center: expected two numbers x,y, but got {center!r}") from None
        if not scale > 0:
            raise ConfigError(f"--scale: expected a number > 0, but got {scale!r}")
        point = (x, y)
    files = []
    for path in images:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"{path}: no such image or folder")
    if not files:
        raise ConfigError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, images))}")
    for written in predict_images(
        model, files, out, center=point, scale=scale, annotations=annotations, threads=threads
    ):
        typer.echo(str(written))
