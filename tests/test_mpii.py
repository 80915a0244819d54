import functools
import gzip

import h5py
import numpy as np
import pytest
import scipy.io

from hourglass.data.mpii import (
    FLIP_PAIRS,
    JOINT_NAMES,
    read_annotations,
    read_detections_mat,
    read_h5,
    read_json,
    read_predictions,
    read_release_mat,
    tompson_val_pairs,
    write_predictions,
)
from hourglass.errors import DataError


@functools.cache
def _json(path):
    return read_json(path)


def _one_line_naming(exc, path):
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


# --- the real files -------------------------------------------------------------------------


def test_joint_names_and_flip_pairs_are_mirror_images():
    for a, b in FLIP_PAIRS:
        assert JOINT_NAMES[a][2:] == JOINT_NAMES[b][2:] and {JOINT_NAMES[a][0], JOINT_NAMES[b][0]} == {
            "l",
            "r",
        }
    assert len(JOINT_NAMES) == 16 and len({i for p in FLIP_PAIRS for i in p}) == 12


def test_json_has_every_person_and_maps_zero_joints_to_missing(mpii_dir):
    ann = _json(mpii_dir / "mpii_annotations.json.gz")
    assert len(ann) == 25_204 and ann.is_val.sum() == 2_958 and (~ann.is_val).sum() == 22_246
    assert ann.joints.shape == (25_204, 16, 2) and ann.joints.dtype == np.float32
    assert (~ann.present).sum() == 27_001  # the (0, 0) / vis 0 entries
    assert (ann.joints[ann.present] < 0).any()  # joints just outside the frame stay present
    assert not (ann.visible & ~ann.present).any() and ann.visible.sum() > 0
    assert np.isnan(ann.normalizer).all() and ann.image[0] == "015601864.jpg"
    assert ann.scale[0] == pytest.approx(3.021) and ann.center[0].tolist() == [594.0, 257.0]


def test_h5_matches_the_json_validation_rows(mpii_dir):
    h5 = read_h5(mpii_dir / "valid.h5")
    val = _json(mpii_dir / "mpii_annotations.json.gz").subset(
        _json(mpii_dir / "mpii_annotations.json.gz").is_val
    )
    assert len(h5) == 2_958 and h5.is_val.all() and (~h5.present).sum() == 3_088
    assert (h5.image == val.image).all() and (h5.present == val.present).all()
    assert (h5.visible == val.visible).all()
    # the stored crop adjustment (scale x 1.25, centre + 15 x scale) is undone: objpos again
    np.testing.assert_allclose(h5.center, val.center, atol=0.01)
    np.testing.assert_allclose(h5.scale, val.scale, atol=1e-3)
    np.testing.assert_allclose(h5.joints, val.joints, atol=1.0)  # h5 rounds head/neck to whole pixels
    assert (h5.normalizer > 10).all()


def test_detections_mat_normalizer_is_06_head_diagonal(mpii_dir):
    det = read_detections_mat(mpii_dir / "detections_our_format.mat")
    h5 = read_h5(mpii_dir / "valid.h5")
    assert len(det) == 2_958 and (det.present == h5.present).all()
    np.testing.assert_allclose(det.normalizer, h5.normalizer, rtol=1e-5)
    assert (det.image == "").all() and np.isnan(det.scale).all()
    same = np.abs(det.joints - h5.joints).max(-1) <= 1.0
    assert (~same).sum() == 13  # the 13 joints with x = 0 in the .mat (README)


def test_dispatch_by_suffix_and_content(mpii_dir):
    assert len(read_annotations(mpii_dir / "valid.h5")) == 2_958
    assert read_annotations(mpii_dir / "detections_our_format.mat").normalizer.dtype == np.float32
    with pytest.raises(DataError, match="applies only to the official release"):
        read_annotations(mpii_dir / "valid.h5", val_pairs=[(0, 0)])


def test_tompson_pairs_agree_between_h5_and_json(mpii_dir):
    pairs = tompson_val_pairs(mpii_dir / "valid.h5")
    assert len(pairs) == 2_958 and pairs == tompson_val_pairs(mpii_dir / "mpii_annotations.json.gz")


# --- the official release layout, written by the test ---------------------------------------


def _structs(rows, fields):
    """A MATLAB struct array: fields every element has; absent values are [] as in MATLAB."""
    arr = np.zeros((1, len(rows)), dtype=[(f, "O") for f in fields])
    for i, row in enumerate(rows):
        arr[0, i] = tuple(row.get(f, np.zeros((0, 0))) for f in fields)
    return arr


def _points(spec):
    return {
        "point": _structs(
            [
                dict(zip(("id", "x", "y", "is_visible"), p))
                if len(p) == 4
                else dict(zip(("id", "x", "y"), p))
                for p in spec
            ],
            ("id", "x", "y", "is_visible"),
        )
    }


def _write_release(path):
    head = ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")
    img0 = _structs(
        [
            {
                "x1": 10.0,
                "y1": 20.0,
                "x2": 40.0,
                "y2": 60.0,
                "scale": 2.0,
                "objpos": {"x": 100.0, "y": 110.0},
                "annopoints": _points(
                    [(0, 101.0, 201.0, 1), (9, 30.0, 25.0, "1"), (8, 31.0, 50.0), (15, 5.0, 6.0, 0)]
                ),
            },
            {
                "x1": 1.0,
                "y1": 1.0,
                "x2": 2.0,
                "y2": 2.0,
                "scale": 1.0,
                "objpos": {"x": 5.0, "y": 5.0},
            },  # no joints
            {
                "x1": 0.0,
                "y1": 0.0,
                "x2": 6.0,
                "y2": 8.0,
                "scale": 1.5,
                "objpos": {"x": 7.0, "y": 8.0},
                "annopoints": _points([(3, 11.0, 12.0, 1), (4, 13.0, 14.0, 1)]),
            },
        ],
        head,
    )
    test_img = _structs([{"scale": 3.0, "objpos": {"x": 1.0, "y": 2.0}}], ("scale", "objpos"))
    img2 = _structs(
        [
            {
                "scale": 4.0,
                "objpos": {"x": 50.0, "y": 60.0},  # no head box fields at all
                "annopoints": _points([(6, 55.0, 66.0, 1)]),
            }
        ],
        ("scale", "objpos", "annopoints"),
    )
    annolist = _structs(
        [
            {"image": {"name": "000000001.jpg"}, "annorect": img0},
            {"image": {"name": "000000002.jpg"}, "annorect": test_img},
            {"image": {"name": "000000003.jpg"}, "annorect": img2},
            {"image": {"name": "000000004.jpg"}, "annorect": np.zeros((0, 0))},
        ],
        ("image", "annorect"),
    )
    single = np.empty((4, 1), dtype=object)
    single[:, 0] = [np.array([[1]]), np.array([[1]]), np.array(1), np.zeros((0, 0))]
    release = {
        "annolist": annolist,
        "img_train": np.array([[1, 0, 1, 1]]),
        "single_person": single,
        "version": "12",
    }
    scipy.io.savemat(path, {"RELEASE": release})
    return path


def test_release_rows_fields_and_missing_values(tmp_path):
    ann = read_annotations(_write_release(tmp_path / "mpii_human_pose_v1_u12_1.mat"))
    assert len(ann) == 3 and list(ann.image) == ["000000001.jpg", "000000001.jpg", "000000003.jpg"]
    assert ann.present[0].nonzero()[0].tolist() == [0, 8, 9, 15]
    assert ann.joints[0, 9].tolist() == [30.0, 25.0] and ann.joints[0, 1].tolist() == [0.0, 0.0]
    assert ann.visible[0].nonzero()[0].tolist() == [0, 9]  # '1' as text counts; no is_visible -> not visible
    assert ann.normalizer[0] == pytest.approx(0.6 * 50.0) and ann.normalizer[1] == pytest.approx(6.0)
    assert np.isnan(ann.normalizer[2])  # no head box in that image
    assert ann.center[2].tolist() == [50.0, 60.0] and ann.scale.tolist() == [2.0, 1.5, 4.0]
    assert not ann.is_val.any()


def test_release_split_and_single_person(tmp_path):
    path = _write_release(tmp_path / "release.mat")
    ann = read_release_mat(path, val_pairs={(0, 2), (2, 0)})
    assert ann.is_val.tolist() == [False, True, True]
    single = read_release_mat(path, single_person_only=True)
    assert list(single.image) == ["000000001.jpg", "000000003.jpg"] and single.scale.tolist() == [2.0, 4.0]


def test_release_bad_point_id_names_the_person(tmp_path):
    rect = _structs([{"annopoints": _points([(16, 1.0, 1.0, 1)])}], ("annopoints",))
    annolist = _structs([{"image": {"name": "a.jpg"}, "annorect": rect}], ("image", "annorect"))
    scipy.io.savemat(tmp_path / "r.mat", {"RELEASE": {"annolist": annolist, "img_train": 1}})
    with pytest.raises(DataError, match=r"annolist\(1\)\.annorect\(1\): point id"):
        read_release_mat(tmp_path / "r.mat")


# --- damaged and wrong files ----------------------------------------------------------------


def _truncated(src, dst):
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.mark.parametrize("name", ["mpii_annotations.json.gz", "valid.h5", "detections_our_format.mat"])
def test_truncated_real_files_are_one_line_data_errors(mpii_dir, tmp_path, name):
    path = _truncated(mpii_dir / name, tmp_path / name)
    with pytest.raises(DataError) as exc:
        read_annotations(path)
    assert "cannot read" in _one_line_naming(exc, path)


def test_missing_file_directory_and_unknown_suffix(tmp_path):
    for path, what in [(tmp_path / "nope.h5", "no such file"), (tmp_path, "directory")]:
        with pytest.raises(DataError, match=what) as exc:
            read_annotations(path)
        _one_line_naming(exc, path)
    (tmp_path / "a.csv").write_text("x")
    with pytest.raises(DataError, match="unknown annotation format"):
        read_annotations(tmp_path / "a.csv")


def test_not_hdf5_and_wrong_keys(tmp_path):
    fake = tmp_path / "valid.h5"
    fake.write_text("not an hdf5 file\n")
    with pytest.raises(DataError) as exc:
        read_h5(fake)
    _one_line_naming(exc, fake)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["imgname"] = np.array([b"a.jpg"])
    with pytest.raises(DataError, match="missing dataset 'center'") as exc:
        read_h5(other)
    _one_line_naming(exc, other)


def test_wrong_shapes_and_variables(tmp_path):
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        for k, v in {
            "imgname": np.array([b"a.jpg"]),
            "center": np.zeros((1, 2)),
            "scale": np.ones(1),
            "part": np.zeros((1, 14, 2)),
            "visible": np.zeros((1, 16)),
            "normalize": np.ones(1),
        }.items():
            f[k] = v
    with pytest.raises(DataError, match=r"part: expected shape \(1, 16, 2\), but got \(1, 14, 2\)"):
        read_h5(bad)
    mat = tmp_path / "x.mat"
    scipy.io.savemat(mat, {"something": np.zeros(3)})
    with pytest.raises(DataError, match="expected the MPII release") as exc:
        read_annotations(mat)
    _one_line_naming(exc, mat)


def test_json_wrong_keys_and_not_json(tmp_path):
    wrong = tmp_path / "a.json.gz"
    with gzip.open(wrong, "wt") as fh:
        fh.write('[{"img_paths": "a.jpg"}]')
    with pytest.raises(DataError, match="missing key 'objpos'"):
        read_json(wrong)
    text = tmp_path / "b.json"
    text.write_text("{not json")
    with pytest.raises(DataError, match="cannot read") as exc:
        read_json(text)
    _one_line_naming(exc, text)


@pytest.mark.parametrize("suffix", [".h5", ".mat"])
def test_predictions_round_trip_and_missing_variable(tmp_path, suffix):
    preds = np.arange(2 * 16 * 2, dtype=np.float64).reshape(2, 16, 2)
    assert np.array_equal(read_predictions(write_predictions(tmp_path / f"p{suffix}", preds)), preds)
    other = tmp_path / f"q{suffix}"
    if suffix == ".mat":
        scipy.io.savemat(other, {"pred": preds})
    else:
        with h5py.File(other, "w") as f:
            f["pred"] = preds
    with pytest.raises(DataError, match="'preds'"):
        read_predictions(other)
