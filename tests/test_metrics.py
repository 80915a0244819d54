import numpy as np
import pytest
import torch

from hourglass.data.heatmaps import (
    decode_heatmaps,
    flip_back,
    heatmap_to_input,
    input_to_heatmap,
    to_image_coords,
)
from hourglass.data.mpii import JOINT_NAMES
from hourglass.errors import DataError
from hourglass.metrics import format_table, pckh

J = {name: i for i, name in enumerate(JOINT_NAMES)}


def _gaussian(h, w, x, y, sigma=1.0):
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    return torch.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))


# --- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "want"),
    [
        (10.3, 7.8, (10.25, 7.75)),  # right of pixel 10 -> +0.25; above pixel 8 -> -0.25
        (4.7, 3.2, (4.75, 3.25)),  # argmax 5 / 3, higher neighbour left / below
        (6.0, 9.0, (6.0, 9.0)),  # centred peak: equal neighbours, no shift
        (0.2, 15.0, (0.0, 15.0)),  # on the border: no shift along that axis
    ],
)
def test_decode_quarter_pixel_toward_higher_neighbour(x, y, want):
    hm = _gaussian(16, 16, x, y)[None, None]
    assert decode_heatmaps(hm)[0, 0].tolist() == pytest.approx(list(want))


def test_decode_batched_shapes_and_independence():
    peaks = [[(2.0, 3.0), (12.4, 5.0), (7.0, 1.6)], [(9.0, 9.0), (1.0, 14.0), (3.3, 3.0)]]
    hm = torch.stack([torch.stack([_gaussian(16, 20, x, y) for x, y in row]) for row in peaks])  # (2,3,16,20)
    out = decode_heatmaps(hm)
    assert out.shape == (2, 3, 2) and out.dtype == torch.float32
    assert out[0, 1].tolist() == [12.25, 5.0] and out[0, 2].tolist() == [7.0, 1.75]
    assert out[1, 2].tolist() == [3.25, 3.0]
    assert (out - torch.tensor(peaks)).abs().max() < 0.3


# --- flipping -------------------------------------------------------------------------------


def test_flip_back_swaps_left_right_and_mirrors_x():
    hm = torch.zeros(1, 16, 8, 12)
    hm[0, J["r_ankle"], 2, 3] = 1.0
    hm[0, J["head_top"], 5, 1] = 1.0
    back = flip_back(hm)
    assert back[0, J["l_ankle"], 2, 12 - 1 - 3] == 1.0 and back[0, J["r_ankle"]].sum() == 0
    assert back[0, J["head_top"], 5, 10] == 1.0
    assert torch.equal(flip_back(back), hm)


def test_pixel_centre_convention_makes_flip_exact():
    stride, w_in = 4, 64
    x_in = torch.tensor([0.0, 10.0, 37.5, 63.0])
    w_hm = w_in // stride
    # flipping the input (x -> W-1-x) is flipping the heatmap (c -> w-1-c): no extra shift
    assert torch.allclose(
        input_to_heatmap(w_in - 1 - x_in, stride), w_hm - 1 - input_to_heatmap(x_in, stride)
    )
    assert torch.allclose(heatmap_to_input(input_to_heatmap(x_in, stride), stride), x_in)
    assert heatmap_to_input(torch.tensor(0.0), stride) == 1.5  # centre of input pixels 0..3


def test_to_image_coords_numpy_and_torch():
    coords = np.array([[[3.0, 4.0], [0.0, 0.0]]])  # (1,2,2) heatmap px
    affine = np.array([[[2.0, 0.0, 100.0], [0.0, 2.0, 50.0]]])  # input px -> original px
    out = to_image_coords(coords, affine, stride=4)  # input (13.5, 17.5), (1.5, 1.5)
    assert out.tolist() == [[[127.0, 85.0], [103.0, 53.0]]]
    rot = np.array([[[0.0, -1.0, 10.0], [1.0, 0.0, 0.0]]])  # 90 degrees: (x, y) -> (10 - y, x)
    assert to_image_coords(coords, rot, stride=1).tolist() == [[[6.0, 3.0], [10.0, 0.0]]]
    t = to_image_coords(torch.tensor(coords), torch.tensor(affine), stride=4)
    assert isinstance(t, torch.Tensor) and t.tolist() == out.tolist()


# --- PCKh -----------------------------------------------------------------------------------


def _people(n=3, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(50, 500, size=(n, 16, 2))
    return gt, np.ones((n, 16), bool), np.full(n, 10.0)


def test_perfect_prediction_is_100_everywhere():
    gt, present, norm = _people()
    r = pckh(gt.copy(), gt, present, norm)
    assert set(r.per_joint) == {"Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"}
    assert all(v == 100.0 for v in r.per_joint.values()) and r.total == 100.0 and r.count == 3
    assert r.to_json() == {"per_joint": r.per_joint, "total": 100.0}


def test_exactly_half_a_head_counts_for_total_but_not_the_table():
    gt, present, norm = _people(n=1)
    pred = gt.copy()
    pred[0, J["head_top"], 0] += 5.0  # error 5 px = 0.5 x normalizer 10
    r = pckh(pred, gt, present, norm)
    assert r.per_joint["Head"] == 0.0 and r.total == 100.0
    assert r.per_joint["Mean"] == pytest.approx(100 * 13 / 14)


def test_columns_average_left_right_and_skip_missing_and_torso():
    gt, present, norm = _people(n=2)
    pred = gt.copy()
    pred[:, J["r_wrist"]] += 100.0  # r wrist wrong in both persons
    pred[0, J["l_knee"]] += 100.0  # l knee wrong once ...
    present[0, J["l_knee"]] = False  # ... but missing there: not counted
    pred[:, J["pelvis"]] += 100.0  # pelvis/thorax are not scored
    pred[1, J["l_elbow"]] = np.nan  # NaN prediction is wrong
    r = pckh(torch.tensor(pred), torch.tensor(gt), torch.tensor(present), torch.tensor(norm))
    assert r.per_joint["Wrist"] == 50.0 and r.per_joint["Knee"] == 100.0 and r.per_joint["Elbow"] == 75.0
    assert r.joint_accuracy[J["pelvis"]] == 0.0 and r.per_joint["Mean"] == pytest.approx(
        100 * (14 - 1 - 0.5) / 14
    )
    assert r.total == pytest.approx(100 * (27 - 3) / 27)  # 28 scored joints, 1 missing; 3 wrong


def test_never_present_joint_is_nan_and_left_out_of_mean():
    gt, present, norm = _people(n=2)
    present[:, J["head_top"]] = False
    r = pckh(gt, gt, present, norm)
    assert np.isnan(r.joint_accuracy[J["head_top"]]) and np.isnan(r.per_joint["Head"])
    assert r.per_joint["Mean"] == 100.0
    present[:, J["l_hip"]] = False
    pred = gt.copy()
    pred[:, J["r_hip"]] += 100.0
    assert pckh(pred, gt, present, norm).per_joint["Hip"] == 0.0  # the side that was present


def test_other_joint_counts_have_only_mean_and_pool_all_joints():
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    pred[0, 0] = [5.0, 0.0]  # exactly 0.5: wrong in Mean, right in Total
    pred[1, 2] = [9.0, 0.0]
    r = pckh(pred, gt, np.ones((2, 3), bool), np.full(2, 10.0))
    assert list(r.per_joint) == ["Mean"] and r.per_joint["Mean"] == pytest.approx(100 * 4 / 6)
    assert r.total == pytest.approx(100 * 5 / 6)


def test_nan_normalizer_is_a_data_error_and_bad_shapes_a_value_error():
    gt, present, norm = _people()
    norm[1] = np.nan
    with pytest.raises(DataError, match="1 of 3 have nan"):
        pckh(gt, gt, present, norm)
    present[1] = False  # a person with no annotated joint needs no normalizer
    assert pckh(gt, gt, present, norm).total == 100.0
    with pytest.raises(ValueError, match="expected pred/gt"):
        pckh(gt[:, :15], gt, present, norm)


def test_format_table_states_both_conventions():
    gt, present, norm = _people()
    pred = gt.copy()
    pred[:, J["l_ankle"]] += 100.0
    text = format_table(pckh(pred, gt, present, norm))
    header, values, *notes = text.splitlines()
    total = " ".join(notes)
    assert max(map(len, text.splitlines())) <= 80, text
    assert header.split()[-8:] == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"]
    assert values.split()[-8:] == ["100.00"] * 6 + ["50.00", f"{100 * 13 / 14:.2f}"]
    assert "err < 0.5" in header and total.startswith(f"Total {100 * 39 / 42:.2f}") and "<= 0.5" in total
