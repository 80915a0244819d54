import functools
import gzip
import json

import cv2
import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from hourglass.data.cache import PoseArrays
from hourglass.data.synthetic import make_synthetic
from hpo.cli import app

runner = CliRunner()


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [
        line for line in result.output.strip().splitlines() if not line.startswith("crops:")
    ]  # progress bar
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


@functools.lru_cache(maxsize=1)
def _entries(path):
    with gzip.open(path, "rt") as f:
        return tuple(json.load(f))


@pytest.fixture
def mpii_folder(tmp_path, mpii_dir):
    """A tiny MPII folder: real annotations of 3 training images + 1 validation image, placeholder
    JPEGs with a white dot on every visible joint, and one annotated image left out."""
    entries = _entries(mpii_dir / "mpii_annotations.json.gz")
    names = []
    for e in entries:
        if e["img_paths"] not in names and (len(names) < 4 or (e["isValidation"] and len(names) == 4)):
            names.append(e["img_paths"])
        if len(names) == 5:
            break
    subset = [e for e in entries if e["img_paths"] in names]
    folder = tmp_path / "mpii"
    (folder / "images").mkdir(parents=True)
    (folder / "mpii_annotations.json").write_text(json.dumps(subset))
    for name in names[1:]:  # names[0] stays missing
        people = [e for e in subset if e["img_paths"] == name]
        h, w = int(people[0]["img_height"]), int(people[0]["img_width"])
        img = np.full((h, w, 3), 60, np.uint8)
        img[:, :, 1] = np.linspace(0, 120, w, dtype=np.uint8)
        for person in people:
            radius = int(8 * person["scale_provided"])  # 2 px in a 64 px crop of the 250 x scale box
            for x, y, vis in person["joint_self"]:
                if vis and (x, y) != (0, 0):
                    cv2.circle(img, (int(round(x)), int(round(y))), radius, (255, 255, 255), -1)
        cv2.imwrite(str(folder / "images" / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder, subset, names


def test_prepare_crops_persons_and_reports_missing_images(tmp_path, mpii_folder):
    folder, subset, names = mpii_folder
    out = tmp_path / "crops.h5"
    result = runner.invoke(
        app, ["data", "prepare", "--mpii-dir", str(folder), "--out", str(out), "--size", "64"]
    )
    assert result.exit_code == 0, result.output
    kept = [e for e in subset if e["img_paths"] != names[0]]
    assert f"{len(kept)} of {len(subset)} persons" in result.output
    assert "skipped 1 missing or unreadable images" in result.output and names[0] in result.output
    data = PoseArrays.load(out)
    assert len(data) == len(kept) and data.crop_size == 64 + 2 * 8 and data.content_size == 64
    assert data.attrs["source"] == "mpii"
    np.testing.assert_array_equal(data.is_val, [bool(e["isValidation"]) for e in kept])
    c = (data.crop_size - 1) / 2
    for i, e in enumerate(kept):
        s = e["scale_provided"]
        t = data.transform[i]
        # the crop centre is the reference box centre: objpos moved down by 15 x scale
        np.testing.assert_allclose(
            t[:, :2] @ [c, c] + t[:, 2], [e["objpos"][0], e["objpos"][1] + 15 * s], atol=1e-2
        )
        assert t[0, 0] == pytest.approx(250 * s / 64, rel=1e-5)  # box side 200 x 1.25 x scale -> 64 px
        assert data.normalizer[i] == pytest.approx(64 / 10, rel=1e-5)  # 25 x scale in a 250 x scale box
        joints = np.array(e["joint_self"])
        present = ~((joints[:, 0] == 0) & (joints[:, 1] == 0))
        np.testing.assert_array_equal(data.present[i], present)
        back = data.keypoints[i] @ t[:, :2].T + t[:, 2]
        np.testing.assert_allclose(back[present], joints[present, :2], atol=1e-2)
        # the crop shows the image: a white dot under every visible joint inside the crop
        for j in np.flatnonzero(data.visible[i]):
            x, y = np.rint(data.keypoints[i, j]).astype(int)
            if 1 <= x < data.crop_size - 1 and 1 <= y < data.crop_size - 1:
                assert data.images[i, y - 1 : y + 2, x - 1 : x + 2].max() > 150


def test_prepare_head_normalizers_split_and_limit(tmp_path, mpii_folder, mpii_dir):
    folder, subset, names = mpii_folder
    out = tmp_path / "val.h5"
    args = [
        "data",
        "prepare",
        "--mpii-dir",
        str(folder),
        "--out",
        str(out),
        "--size",
        "32",
        "--margin",
        "0",
        "--split",
        "val",
        "--head-normalizers",
        str(mpii_dir / "valid.h5"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    n_val = sum(bool(e["isValidation"]) for e in subset)
    assert f"head boxes for {n_val}," in result.output
    data = PoseArrays.load(out)
    assert len(data) == n_val and data.is_val.all() and data.crop_size == 32
    with h5py.File(mpii_dir / "valid.h5") as f:
        head = dict(zip((name.decode() for name in f["imgname"][:]), f["normalize"][:]))
    val = [e for e in subset if e["isValidation"]]
    expected = [
        head[e["img_paths"]] * 32 / (250 * e["scale_provided"]) for e in val
    ]  # one person per image here
    np.testing.assert_allclose(data.normalizer, expected, rtol=1e-6)  # the head box, not 25 x (rounded) scale
    assert data.normalizer == pytest.approx(np.full(n_val, 3.2), rel=1e-3)  # which agrees with 25 x scale
    result = runner.invoke(
        app,
        [
            "data",
            "prepare",
            "--mpii-dir",
            str(folder),
            "--out",
            str(out),
            "--size",
            "32",
            "--split",
            "train",
            "--limit",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    first = [e for e in subset if not e["isValidation"]][:4]
    assert len(PoseArrays.load(out)) == sum(e["img_paths"] != names[0] for e in first) > 0


def test_prepare_errors_are_one_line(tmp_path, mpii_folder):
    folder, _, _ = mpii_folder
    out = str(tmp_path / "x.h5")
    _one_line_error(
        runner.invoke(app, ["data", "prepare", "--mpii-dir", str(tmp_path / "nowhere"), "--out", out]),
        "nowhere: no such directory",
    )
    (tmp_path / "empty" / "images").mkdir(parents=True)
    _one_line_error(
        runner.invoke(app, ["data", "prepare", "--mpii-dir", str(tmp_path / "empty"), "--out", out]),
        "no MPII annotations found",
        "--annotations",
    )
    blank = tmp_path / "blank"
    (blank / "images").mkdir(parents=True)
    (blank / "mpii_annotations.json").write_text((folder / "mpii_annotations.json").read_text())
    _one_line_error(
        runner.invoke(app, ["data", "prepare", "--mpii-dir", str(blank), "--out", out]),
        "none of the",
        "could be read",
    )
    assert not (tmp_path / "x.h5").exists()
    _one_line_error(
        runner.invoke(app, ["data", "prepare", "--mpii-dir", str(folder), "--out", out, "--split", "x"]),
        "--split",
    )


def test_synth_writes_the_same_set_as_make_synthetic(tmp_path):
    out = tmp_path / "s.h5"
    result = runner.invoke(
        app, ["data", "synth", "--out", str(out), "--n", "40", "--size", "32", "--seed", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "40 persons (34 train, 6 val)" in result.output
    data = PoseArrays.load(out)
    assert data.images.tobytes() == make_synthetic(40, 32, 4).images.tobytes()
    _one_line_error(runner.invoke(app, ["data", "synth", "--out", str(out), "--size", "8"]), "--size")


def test_bench_json_and_text(tmp_path):
    cache = make_synthetic(6, 32, 0).save(tmp_path / "b.h5")
    result = runner.invoke(app, ["data", "bench", "--cache", str(cache), "--n", "4", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["rows"] == 4 and figures["input_size"] == 32 and figures["augment"] is True
    for key in ("hdf5_img_s", "memory_img_s", "jpeg_img_s"):
        assert figures[key] > 0
    assert figures["hdf5_vs_jpeg"] == pytest.approx(figures["hdf5_img_s"] / figures["jpeg_img_s"])
    result = runner.invoke(app, ["data", "bench", "--cache", str(cache), "--n", "2", "--no-augment"])
    assert result.exit_code == 0, result.output
    assert "HDF5 / JPEG" in result.output and "augmentation off" in result.output


def test_bench_on_a_corrupt_cache_is_one_line(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    _one_line_error(runner.invoke(app, ["data", "bench", "--cache", str(bad)]), "broken.h5")
