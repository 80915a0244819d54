import pickle

import h5py
import numpy as np
import pytest

from hourglass.data.cache import CACHE_KEYS, CacheWriter, PoseArrays, write_cache
from hourglass.data.mpii import JOINT_NAMES
from hourglass.data.synthetic import make_synthetic
from hourglass.errors import DataError


@pytest.fixture(scope="module")
def small():
    return make_synthetic(12, 32, seed=5)


@pytest.fixture
def cache_file(tmp_path, small):
    return small.save(tmp_path / "small.h5")


def _assert_same(a: PoseArrays, b: PoseArrays) -> None:
    for key in CACHE_KEYS:
        x, y = np.asarray(a.arrays()[key]), np.asarray(b.arrays()[key])
        assert x.dtype == y.dtype and np.array_equal(x, y), key


def test_round_trip_keeps_arrays_dtypes_and_attrs(cache_file, small):
    loaded = PoseArrays.load(cache_file)
    _assert_same(loaded, small)
    assert loaded.present.dtype == bool and loaded.is_val.dtype == bool
    assert loaded.attrs["source"] == "synthetic" and loaded.attrs["joint_names"] == list(JOINT_NAMES)
    assert loaded.crop_size == 32 and loaded.content_size == 32
    with h5py.File(cache_file) as f:
        assert f["images"].chunks == (1, 32, 32, 3)
        assert f["present"].dtype == np.uint8 and f["normalizer"].dtype == np.float32
        assert f["transform"].shape == (12, 2, 3)


def test_split_keeps_file_rows(cache_file):
    data = PoseArrays.load(cache_file)
    val, train = data.split("val"), data.split("train")
    assert len(val) + len(train) == 12 and val.is_val.all() and not train.is_val.any()
    assert list(val.index) == list(np.flatnonzero(data.is_val))
    np.testing.assert_array_equal(val.images[0], data.images[val.index[0]])
    with pytest.raises(ValueError, match="'train' or 'val'"):
        data.split("test")


def test_lazy_images_read_rows_and_survive_pickling(cache_file, small):
    lazy = PoseArrays.load(cache_file, lazy=True)
    assert not isinstance(lazy.images, np.ndarray) and lazy.images.shape == (12, 32, 32, 3)
    val = lazy.split("val")
    np.testing.assert_array_equal(val.images[1], small.images[val.index[1]])
    clone = pickle.loads(pickle.dumps(val))  # what a DataLoader worker receives
    np.testing.assert_array_equal(clone.images[0], small.images[val.index[0]])
    _assert_same(lazy, small)


def test_missing_file_is_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.h5: pose cache not found"):
        PoseArrays.load(tmp_path / "nope.h5")


def test_truncated_file_names_the_file(tmp_path, cache_file):
    data = cache_file.read_bytes()
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError) as info:
        PoseArrays.load(bad)
    assert "truncated.h5" in str(info.value) and "\n" not in str(info.value)


def test_not_hdf5_names_the_file(tmp_path):
    bad = tmp_path / "garbage.h5"
    bad.write_bytes(b"this is not an HDF5 file" * 10)
    with pytest.raises(DataError, match="garbage.h5: not a readable pose cache"):
        PoseArrays.load(bad)


def test_missing_key_and_wrong_shape_are_named(tmp_path, cache_file):
    with h5py.File(cache_file, "a") as f:
        del f["visible"]
    with pytest.raises(DataError, match="missing dataset 'visible'"):
        PoseArrays.load(cache_file)
    other = tmp_path / "shape.h5"
    with h5py.File(other, "w") as f:
        f.attrs.update(source="synthetic", crop_size=8, content_size=8, joint_names=list(JOINT_NAMES))
        f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
        f["keypoints"] = np.zeros((2, 16, 2), np.float32)
        for key in ("present", "visible"):
            f[key] = np.zeros((2, 16), np.uint8)
        f["normalizer"] = np.zeros(3, np.float32)  # wrong length
        f["transform"] = np.zeros((2, 2, 3), np.float32)
        f["is_val"] = np.zeros(2, np.uint8)
    with pytest.raises(DataError, match=r"'normalizer' expected shape \(2,\), but got \(3,\)"):
        PoseArrays.load(other)


def test_writer_streams_batches_and_aborts_cleanly(tmp_path, small):
    path = tmp_path / "stream.h5"
    with CacheWriter(
        path, 2, 32, 16, source="synthetic", content_size=32, joint_names=list(JOINT_NAMES)
    ) as w:
        for lo in range(0, 12, 5):  # grows past the initial capacity
            w.append({k: v[lo : lo + 5] for k, v in small.arrays().items()})
    _assert_same(PoseArrays.load(path), small)
    failed = tmp_path / "failed.h5"
    with pytest.raises(RuntimeError):
        with CacheWriter(failed, 2, 32, 16, source="x", content_size=32, joint_names=[]):
            raise RuntimeError("interrupted")
    assert not failed.exists() and not list(tmp_path.glob("failed*"))


def test_write_cache_checks_its_input(tmp_path, small):
    arrays = small.arrays()
    del arrays["transform"]
    with pytest.raises(ValueError, match="missing 'transform'"):
        write_cache(tmp_path / "x.h5", arrays, source="synthetic", content_size=32)
