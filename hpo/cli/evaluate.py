"""``hpo eval-preds``: PCKh@0.5 of a predictions file against MPII annotations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()  # this module's commands; hpo.cli registers it on the root app


@app.command("eval-preds")
def eval_preds(
    annotations: Annotated[
        Path,
        typer.Option(
            "--annotations", help="valid.h5, detections_our_format.mat or the official release .mat."
        ),
    ],
    predictions: Annotated[
        Path,
        typer.Option(
            "--predictions",
            help="HDF5 or .mat with 'preds' (N,16,2), original-image pixels, rows in the "
            "annotation file's order.",
        ),
    ],
    val_split: Annotated[
        Path | None,
        typer.Option(
            "--val-split",
            help="Release .mat only: valid.h5 or the JSON naming Tompson's validation persons "
            "(then rows are those persons, in valid.h5 order).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {per_joint, total} as JSON (percent).")
    ] = False,
) -> None:
    """Print the per-joint PCKh@0.5 table and the official MPII Total, each with its convention.

    Table: error < 0.5 head units, left/right averaged, Mean of 14 joints. Total: 14 joints pooled,
    error <= 0.5.

    Rows: all of valid.h5 and detections_our_format.mat, in file order.

    Release .mat: each person with joints in a training image (image, then person order).

    Release .mat with --val-split: only Tompson's validation persons (the order of valid.h5).
    """
    from hourglass.metrics import evaluate_files, format_table

    result = evaluate_files(annotations, predictions, val_split)
    typer.echo(json.dumps(result.to_json(), indent=2) if as_json else format_table(result))
