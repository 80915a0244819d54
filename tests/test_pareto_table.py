import io

import pytest
from rich.console import Console

from hourglass.errors import ConfigError
from hpo.pareto_table import choose_columns, format_value, render_pareto_table

OBJECTIVES = ["pckh", "params", "train_time"]


def _row(number, pckh, params, **paths):
    row = {
        "number": number,
        "design": None,
        "pckh": pckh,
        "params": params,
        "train_time": 123.45,
        "flops": 2.5e8,
        "layers": 140,
        "epochs": 6,
        "ops_per_step": 1234,
        "model.block.name": "multidilated",
        "model.stem.name": "patch4",
        "model.features": 32,
        "model.stacks": 2,
        "model.block.separable": "none",
        "model.block.dilation": 1,
        "model.block.skip": True,
        "model.block.rates": [1, 2, 4, 4],
        "model.stack_weights": None,
        "schedule.lr": 0.005,
    }
    row.update({k.replace("__", "."): v for k, v in paths.items()})
    return row


ROWS = [
    _row(
        12,
        71.25,
        1_234_567,
        model__block__name="bottleneck",
        schedule__lr=0.00316,
        model__stack_weights=[0.3, 0.7],
    ),
    _row(3, 64.5, 98_765, model__block__separable="mid", model__block__skip=False, model__stem__name="conv7"),
    _row(
        27,
        33.12,
        8_008,
        model__block__dilation=3,
        model__block__rates=[1, 2],
        model__features=16,
        model__stacks=1,
    ),
]
DIFFERING = [
    "model.block.name",
    "model.stem.name",
    "model.features",
    "model.stacks",
    "model.block.separable",
    "model.block.dilation",
    "model.block.skip",
    "model.block.rates",
    "model.stack_weights",
    "schedule.lr",
]


def _render(width, **kwargs):
    out = io.StringIO()
    render_pareto_table(Console(file=out, width=width), "Pareto set", ROWS, OBJECTIVES, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("width", [60, 80, 100, 140, 200])
def test_every_number_and_every_differing_knob_is_shown_within_the_width(width):
    text = _render(width)
    assert max(len(line) for line in text.splitlines()) <= width, text
    for r in ROWS:
        assert f"{r['pckh']:.2f}" in text and f"{r['params']:,}" in text  # never cut
    shown, folded, _ = choose_columns(ROWS, OBJECTIVES, width)
    assert {c.key for c in shown + folded} >= set(DIFFERING)
    for value in ("multidilated", "bottleneck", "0.00316", "0.3/0.7", "1/2/4/4", "false", "patch4"):
        assert value in text
    assert "design" not in text  # no empty column


def test_narrow_terminals_fold_knobs_into_other_and_name_the_hidden_costs():
    shown, folded, hidden = choose_columns(ROWS, OBJECTIVES, 80)
    assert [c.header for c in shown[:4]] == ["#", "PCKh", "params", "train s"]
    assert folded and "other" in _render(80)
    assert [c.header for c in hidden] == ["epochs", "GFLOPs", "layers", "ops/step"]
    assert "not shown: epochs, GFLOPs, layers, ops/step" in " ".join(_render(80).split())


def test_the_train_time_column_is_named_the_charged_time_not_the_wall_time():
    assert "train s: charged training time (fast step x steps), not the wall time" in _render(80)
    out = io.StringIO()
    render_pareto_table(Console(file=out, width=80), "Pareto set", ROWS, ["pckh", "params"])
    assert "charged" not in out.getvalue()


def test_knobs_every_design_label_spells_out_get_no_column_of_their_own():
    def labelled(row, design=None):
        flat = {
            "block": row["model.block.name"],
            "stem": row["model.stem.name"],
            "features": row["model.features"],
            "stacks": row["model.stacks"],
        }
        return {
            **row,
            **flat,
            "design": design or f"{flat['block']}/{flat['stem']} {flat['features']}x{flat['stacks']}",
        }

    rows = [labelled(r) for r in ROWS]
    shown, folded, _ = choose_columns(rows, OBJECTIVES, 200)
    headers = [c.header for c in shown + folded]
    assert "design" in headers and not {"block", "stem", "feat", "stacks"} & set(headers)
    assert {"sep", "dil", "rates", "lr"} <= set(headers)
    rows[0] = labelled(ROWS[0], design="baseline")  # a seed design's name does not say them
    headers = [c.header for c in sum(choose_columns(rows, OBJECTIVES, 200)[:2], [])]
    assert {"design", "block", "stem", "feat", "stacks"} <= set(headers)


def test_wide_and_columns_show_more_than_fits():
    text = _render(80, wide=True)
    assert "GFLOPs" in text and "0.250" in text and "ops/step" in text and "not shown" not in text
    text = _render(80, columns=["lr", "layers", "model.block.name"])
    header = next(line for line in text.splitlines() if "PCKh" in line).split()
    assert header == ["#", "PCKh", "params", "train", "s", "lr", "layers", "block"]
    with pytest.raises(
        ConfigError, match=r"--columns: unknown column 'speed' \(these rows have: block, stem"
    ):
        _render(80, columns=["speed"])


def test_design_column_only_when_a_row_has_a_design_and_constant_knobs_are_left_out():
    rows = [dict(ROWS[0], design="baseline"), dict(ROWS[0], number=1, pckh=50.0, **{"schedule.lr": 0.01})]
    shown, folded, _ = choose_columns(rows, OBJECTIVES, 200)
    assert [c.header for c in shown + folded][:6] == ["#", "PCKh", "params", "train s", "design", "lr"]
    assert "block" not in [c.header for c in shown + folded]


@pytest.mark.parametrize(
    "value, text",
    [
        (None, "-"),
        (True, "true"),
        (0.0031622, "0.00316"),
        ([0.3, 0.7], "0.3/0.7"),
        (32, "32"),
        ("mid", "mid"),
    ],
)
def test_format_value(value, text):
    assert format_value(value) == text
