import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hourglass.config import BlockConfig, HourglassConfig, StemConfig
from hourglass.errors import ConfigError


def test_defaults_are_the_canonical_baseline():
    cfg = HourglassConfig()
    assert (cfg.stacks, cfg.features, cfg.depth, cfg.joints, cfg.input_size) == (2, 256, 4, 16, 256)
    assert cfg.block == BlockConfig("bottleneck") and cfg.stem == StemConfig("conv7")
    assert cfg.loss_weights == (1.0, 1.0)


def test_round_trip_through_dict():
    cfg = HourglassConfig.from_dict(
        {
            "stacks": 1,
            "features": 64,
            "depth": 2,
            "input_size": 64,
            "block": {"name": "multidilated", "rates": [1, 2]},
            "stem": {"name": "patch4", "channels": 8},
        }
    )
    assert cfg.block.rates == (1, 2)
    assert HourglassConfig.from_dict(cfg.to_dict()) == cfg
    assert isinstance(cfg.to_dict()["block"]["rates"], list)


@pytest.mark.parametrize(
    "data, needle",
    [
        (
            {"block": {"name": "resnext"}},
            "block.name: expected one of 'bottleneck', 'conv2', 'multidilated', but got 'resnext'",
        ),
        ({"block": {"dilation": 0}}, "block.dilation: expected one of 1, 2, 3, 4, but got 0"),
        ({"block": {"name": "conv2", "separable": "mid"}}, "block.separable: expected one of 'none', 'all'"),
        ({"block": {"name": "multidilated", "dilation": 2}}, "block.dilation: expected one of 1, but got 2"),
        ({"features": 255}, "features: expected a multiple of 2"),
        ({"features": 36, "block": {"name": "multidilated"}}, "features: expected a multiple of 8"),
        ({"input_size": 100}, "input_size: expected a multiple of 64"),
        ({"stack_weights": [1.0]}, "stack_weights: expected 2 weights"),
        ({"output_weights": [0.3, 0.3, 0.4]}, "output_weights: expected 2 weights"),
        ({"output_weights": [0.3, float("nan")]}, "output_weights: expected a finite number"),
        ({"output_mode": "mean"}, "output_mode: expected one of 'sum', 'merge', but got 'mean'"),
        ({"stem": {"layout": "bearpaw"}}, "stem.layout: expected one of 'newell', 'pytorch_pose'"),
        ({"stacks": "two"}, "stacks: expected an integer, but got 'two'"),
        ({"stacks": True}, "stacks: expected an integer"),
        ({"blocks": {}}, "unknown key 'blocks'"),
        ({"block": {"skip": "yes"}}, "block.skip: expected true or false"),
        ({"stem": {"name": "patch8"}}, "stem.name: expected one of 'conv7', 'patch3', 'patch4'"),
    ],
)
def test_bad_config_names_field_and_allowed_values(data, needle):
    with pytest.raises(ConfigError) as err:
        HourglassConfig.from_dict(data, where="model")
    assert needle in str(err.value)
    assert str(err.value).startswith("model")
    assert "\n" not in str(err.value)


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="dilation"):
        BlockConfig(dilation=5)


# a loaded 2-core CI machine can be slow to build models: no deadline, no too_slow check
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["stacks", "features", "depth", "input_size", "joints"]),
        st.one_of(st.integers(-5, 600), st.text(max_size=3), st.none(), st.floats()),
    )
)
def test_any_bad_value_is_a_config_error_never_a_crash(data):
    try:
        cfg = HourglassConfig.from_dict(data)
    except ConfigError:
        return
    assert HourglassConfig.from_dict(cfg.to_dict()) == cfg
