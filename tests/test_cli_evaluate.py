import json

import h5py
import numpy as np
from test_mpii import _write_release
from typer.testing import CliRunner

from hourglass.data.mpii import read_h5, write_predictions
from hpo.cli import app

runner = CliRunner()

# Published PCKh@0.5 of the 2-stack reference predictions (README of the shared MPII folder).
PUBLISHED = {
    "Head": 95.80,
    "Shoulder": 94.57,
    "Elbow": 88.12,
    "Wrist": 83.31,
    "Hip": 86.24,
    "Knee": 80.88,
    "Ankle": 77.44,
    "Mean": 86.76,
}


def _eval(*args):
    return runner.invoke(app, ["eval-preds", *map(str, args)])


def _json(*args):
    result = _eval(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_reference_hg2_reproduces_the_published_table(mpii_dir):
    out = _json(
        "--annotations",
        mpii_dir / "detections_our_format.mat",
        "--predictions",
        mpii_dir / "reference_predictions" / "hg2_bearpaw.mat",
    )
    assert {k: round(v, 2) for k, v in out["per_joint"].items()} == PUBLISHED
    assert round(out["total"], 2) == 87.30


def test_reference_hg2_against_valid_h5(mpii_dir):
    out = _json(
        "--annotations",
        mpii_dir / "valid.h5",
        "--predictions",
        mpii_dir / "reference_predictions" / "hg2_bearpaw.mat",
    )
    joints = {k: round(v, 2) for k, v in out["per_joint"].items()}
    assert joints["Mean"] == 86.76 and round(out["total"], 2) == 87.30
    assert joints["Head"] == 95.84 and joints["Ankle"] == 77.47


def test_table_output_names_the_conventions(mpii_dir):
    result = _eval(
        "--annotations",
        mpii_dir / "detections_our_format.mat",
        "--predictions",
        mpii_dir / "reference_predictions" / "hg2_bearpaw.mat",
    )
    assert result.exit_code == 0, result.output
    header, values, *notes = result.output.strip().splitlines()
    total = " ".join(notes)
    assert max(len(line) for line in result.output.splitlines()) <= 80, result.output
    assert "err < 0.5" in header and "95.80" in values and "2958 persons" in values
    assert total.startswith("Total 87.30") and "err <= 0.5" in total


def test_hg8_reference_scores_in_a_sane_range(mpii_dir):
    out = _json(
        "--annotations",
        mpii_dir / "valid.h5",
        "--predictions",
        mpii_dir / "reference_predictions" / "hg8_newell.h5",
    )
    assert 80 < out["per_joint"]["Mean"] < 95 and 80 < out["total"] < 95
    assert out["per_joint"]["Head"] > out["per_joint"]["Ankle"]


def test_perfect_predictions_score_100_and_shifted_ones_less(mpii_dir, tmp_path):
    ann = read_h5(mpii_dir / "valid.h5")
    perfect = write_predictions(tmp_path / "perfect.h5", ann.joints)
    out = _json("--annotations", mpii_dir / "valid.h5", "--predictions", perfect)
    assert out["total"] == 100.0 and set(out["per_joint"].values()) == {100.0}
    for fraction, want in ((0.45, 100.0), (0.55, 0.0)):  # error as a fraction of each person's head unit
        shift = np.stack([fraction * ann.normalizer[:, None] * np.ones(16), np.zeros((len(ann), 16))], -1)
        moved = write_predictions(tmp_path / f"moved{fraction}.h5", ann.joints + shift)
        out = _json("--annotations", mpii_dir / "valid.h5", "--predictions", moved)
        assert out["total"] == want and out["per_joint"]["Mean"] == want


def test_shape_mismatch_is_one_line(mpii_dir, tmp_path):
    preds = write_predictions(tmp_path / "short.h5", np.zeros((10, 16, 2)))
    result = _eval("--annotations", mpii_dir / "valid.h5", "--predictions", preds)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert (
        len(lines) == 1
        and "short.h5" in lines[0]
        and "(2958, 16, 2)" in lines[0]
        and "(10, 16, 2)" in lines[0]
    )


def test_missing_and_wrong_files_are_one_line(tmp_path, mpii_dir):
    result = _eval("--annotations", tmp_path / "nope.h5", "--predictions", tmp_path / "p.h5")
    assert result.exit_code == 2 and "nope.h5: no such file" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    not_h5 = tmp_path / "p.h5"
    not_h5.write_text("hello")
    result = _eval("--annotations", mpii_dir / "valid.h5", "--predictions", not_h5)
    assert result.exit_code == 2 and "p.h5: cannot read" in result.output


def test_release_mat_with_a_validation_split(tmp_path):
    release = _write_release(tmp_path / "release.mat")
    split = tmp_path / "split.h5"
    with h5py.File(split, "w") as f:  # Tompson's split as valid.h5 stores it: 0-based image, person
        f["index"], f["person"] = np.array([0.0, 0.0]), np.array([0.0, 2.0])
    gt = np.zeros((2, 16, 2))
    gt[0, [0, 8, 9, 15]] = [[101, 201], [31, 50], [30, 25], [5, 6]]
    gt[1, [3, 4]] = [[11, 12], [13, 14]]
    preds = write_predictions(tmp_path / "p.mat", gt)
    out = _json("--annotations", release, "--val-split", split, "--predictions", preds)
    assert out["total"] == 100.0 and out["per_joint"]["Head"] == 100.0
    gt[1, 3, 0] += 2.9  # person 2's head unit is 0.6 x 10 = 6: 2.9 px is within half of it
    gt[1, 4, 0] += 3.1
    moved = write_predictions(tmp_path / "q.mat", gt)
    out = _json("--annotations", release, "--val-split", split, "--predictions", moved)
    assert out["per_joint"]["Hip"] == 100.0 and out["per_joint"]["Knee"] == 0.0  # right side never present
    # without the split every annotated person is scored, and the third has no head box
    result = _eval("--annotations", release, "--predictions", preds)
    assert result.exit_code == 2 and "(3, 16, 2)" in result.output


def test_json_annotations_cannot_be_scored(mpii_dir, tmp_path):
    preds = write_predictions(tmp_path / "p.h5", np.zeros((2958, 16, 2)))
    result = _eval("--annotations", mpii_dir / "mpii_annotations.json.gz", "--predictions", preds)
    assert result.exit_code == 2 and "no head boxes" in result.output


def test_split_only_for_the_release(mpii_dir):
    result = _eval(
        "--annotations",
        mpii_dir / "valid.h5",
        "--val-split",
        mpii_dir / "valid.h5",
        "--predictions",
        mpii_dir / "reference_predictions" / "hg8_newell.h5",
    )
    assert result.exit_code == 2 and "applies only to the official release" in result.output
