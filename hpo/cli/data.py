"""``hpo data ...``: make the synthetic set, build the MPII crop cache, time the loader."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from hourglass.validate import check_choice, check_float, check_int

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app

data_app = typer.Typer(
    help="Pose data: the synthetic set, the MPII crop cache (HDF5), loader throughput.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@data_app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="HDF5 pose cache to write.")],
    n: Annotated[int, typer.Option("--n", help="Number of persons (the last 15% are the val split).")] = 2000,
    size: Annotated[int, typer.Option(help="Crop size in pixels (square).")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 0,
    poses: Annotated[
        Path | None,
        typer.Option(
            help="MPII annotation file (e.g. mpii_annotations.json.gz): draw poses from real people."
        ),
    ] = None,
) -> None:
    """Write a synthetic pose set: limb figures with the 16 MPII joints, clutter and occluders."""
    from hourglass.data.synthetic import make_synthetic

    check_int("--n", n, low=2)
    check_int("--size", size, low=16)
    start = time.perf_counter()
    data = make_synthetic(n, size, seed, poses=poses)
    data.save(out)
    val = int(data.is_val.sum())
    typer.echo(
        f"wrote {out}: {n} persons ({n - val} train, {val} val), {size}x{size}, seed {seed}, "
        f"{data.attrs['poses']} poses, {time.perf_counter() - start:.1f}s"
    )


@data_app.command()
def prepare(
    mpii_dir: Annotated[Path, typer.Option("--mpii-dir", help="MPII folder: images/ and the annotations.")],
    out: Annotated[Path, typer.Option("--out", help="HDF5 crop cache to write.")],
    annotations: Annotated[
        Path | None,
        typer.Option(
            help="Annotation file (.json[.gz], .h5, .mat); default: mpii_annotations.json[.gz] in --mpii-dir."
        ),
    ] = None,
    size: Annotated[int, typer.Option(help="Person box size in the crop (content), pixels.")] = 256,
    margin: Annotated[
        float, typer.Option(help="Extra context on each side, as a fraction of --size (for augmentation).")
    ] = 0.125,
    head_normalizers: Annotated[
        Path | None,
        typer.Option(
            help="valid.h5 (or another file with head boxes): exact PCKh unit for the persons it lists."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="Which persons: all, train or val.")] = "all",
    limit: Annotated[int | None, typer.Option(help="Only the first N persons (for a quick check).")] = None,
) -> None:
    """Crop every annotated person once (reference box: objpos + 15 scale down, side 250 scale) into an
    HDF5 cache."""
    from hourglass.data.prepare import prepare_mpii

    check_int("--size", size, low=16)
    check_float("--margin", margin, low=0.0)
    check_choice("--split", split, ("all", "train", "val"))
    if limit is not None:
        check_int("--limit", limit, low=1)
    report = prepare_mpii(
        mpii_dir,
        out,
        annotations=annotations,
        content_size=size,
        margin=margin,
        head_normalizers=head_normalizers,
        split=split,
        limit=limit,
    )
    typer.echo(
        f"wrote {report.out}: {report.rows} of {report.persons} persons from {report.images_read} images "
        f"in {report.seconds:.1f}s; PCKh unit from head boxes for {report.head_normalizers}, "
        f"25 x scale for the rest"
    )
    if report.missing_images:
        examples = ", ".join(report.missing_examples)
        typer.echo(
            f"skipped {report.missing_images} missing or unreadable images (e.g. {examples})", err=True
        )


@data_app.command()
def bench(
    cache: Annotated[
        Path | None,
        typer.Option(help="Pose cache .h5 to read; default: a temporary synthetic 256x256 set."),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="Rows to time.")] = 200,
    input_size: Annotated[
        int | None, typer.Option(help="Network input size; default: the cache's content size.")
    ] = None,
    augment: Annotated[bool, typer.Option(help="Time with the default augmentation.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Images/s of ONE loader worker: HDF5 crop cache vs decoding a JPEG and cropping per sample."""
    from hourglass.data.augment import AugmentConfig
    from hpo.bench.loader import benchmark_loader

    check_int("--n", n, low=1)
    if input_size is not None:
        check_int("--input-size", input_size, low=4)
    result = benchmark_loader(cache, n=n, input_size=input_size, augment=AugmentConfig() if augment else None)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    w, h = result["jpeg_size"]
    typer.echo(
        f"loader, one worker, {result['rows']} rows of {result['cache']} -> {result['input_size']}px input, "
        f"augmentation {'on' if result['augment'] else 'off'}:"
    )
    typer.echo(f"  HDF5 cache (row read per sample) {result['hdf5_img_s']:8.1f} img/s")
    typer.echo(f"  cache in memory                  {result['memory_img_s']:8.1f} img/s")
    typer.echo(f"  JPEG {w}x{h} decode + crop      {result['jpeg_img_s']:8.1f} img/s")
    typer.echo(f"  HDF5 / JPEG                      {result['hdf5_vs_jpeg']:8.2f}x")
