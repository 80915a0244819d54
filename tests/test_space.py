import functools
import textwrap
from pathlib import Path

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hourglass.blocks import BLOCKS, DILATIONS, SEPARABLE
from hourglass.config import HourglassConfig
from hourglass.designs import SEED_DESIGNS, design_overrides, load_designs
from hourglass.errors import ConfigError
from hpo.space import SPACES_DIR, SearchSpace, plan_seed_trials, seed_trials
from hpo.space_check import build_model_config, check_combinations, count_combinations
from hpo.space_param import get_path, leaves

optuna.logging.set_verbosity(optuna.logging.WARNING)

TINY = SPACES_DIR / "tiny.yaml"
FULL = SPACES_DIR / "full.yaml"


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def sample(space: SearchSpace, n: int, seed: int = 0):
    """n (trial params, resolved config) pairs from a random-sampling study."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        cfg = space.suggest(trial)
        out.append((dict(trial.params), cfg))
        study.tell(trial, 0.0)
    return out


@functools.cache
def _tiny() -> SearchSpace:
    return SearchSpace.load(TINY)


@pytest.fixture(scope="module")
def tiny() -> SearchSpace:
    return _tiny()


@pytest.fixture(scope="module")
def full() -> SearchSpace:
    return SearchSpace.load(FULL)


def test_block_knobs_are_conditioned_by_the_registry(tiny):
    by_name = {p.name: p for p in tiny.params}
    # dilation: asked exactly for the blocks whose spec has it
    with_dilation = tuple(b for b, spec in BLOCKS.items() if spec.dilation)
    assert by_name["model.block.dilation"].when == (("model.block.name", with_dilation),)
    # separable: split per block, each with exactly the modes its spec allows
    for block, spec in BLOCKS.items():
        name = f"model.block.separable@{block}"
        if len(spec.separable) > 1:
            assert set(by_name[name].choices) == set(spec.separable) & set(SEPARABLE)
        else:
            assert name not in by_name
    rates_blocks = tuple(b for b, spec in BLOCKS.items() if spec.rates)
    assert by_name["model.block.rates"].when == (("model.block.name", rates_blocks),)


def test_suggest_gives_valid_tiny_configs_and_asks_only_what_applies(tiny):
    seen_blocks = set()
    for params, cfg in sample(tiny, 60):
        model = HourglassConfig.from_dict(cfg["model"])
        assert model.to_dict() == cfg["model"]
        assert (model.depth, model.input_size, model.stem.channels) == (2, 64, 8)
        assert 16 <= model.features <= 32 and model.stacks in (1, 2)
        spec = BLOCKS[model.block.name]
        seen_blocks.add(model.block.name)
        assert ("model.block.dilation" in params) == spec.dilation
        assert ("model.block.rates" in params) == spec.rates
        assert ("model.block.stack_weights" in params) is False
        assert ("model.stack_weights" in params) == (model.stacks == 2)
        if model.stacks == 1:
            assert model.stack_weights is None
        assert 1e-3 <= cfg["schedule"]["lr"] <= 1e-2
        assert set(cfg["schedule"]) == {"lr"}  # the rest is the preset's
    assert seen_blocks == set(BLOCKS)


def test_list_choices_travel_as_primitives_and_come_back_as_lists(tiny):
    for params, cfg in sample(tiny, 40, seed=1):
        for value in params.values():
            assert value is None or isinstance(value, (bool, int, float, str))
        if "model.stack_weights" in params and params["model.stack_weights"] is not None:
            assert isinstance(cfg["model"]["stack_weights"], list)
            assert cfg["model"]["stack_weights"] == [
                float(x) for x in params["model.stack_weights"].strip("[]").split(",")
            ]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_params_for_reproduces_any_suggested_config(seed):
    space = _tiny()
    for params, cfg in sample(space, 3, seed=seed):
        assert space.params_for(cfg) == params


def test_params_for_full_space_and_enqueue_round_trip(full):
    pairs = sample(full, 20, seed=3)
    study = optuna.create_study()
    for params, cfg in pairs:
        assert full.params_for(cfg) == params
        study.enqueue_trial(full.params_for(cfg))
        trial = study.ask()
        assert full.suggest(trial) == cfg
        study.tell(trial, 0.0)


def test_params_for_names_what_cannot_be_expressed(tiny):
    with pytest.raises(
        ConfigError,
        match=r"tiny.yaml: cannot express model.features=256: model.features takes integers in \[16, 32\]",
    ):
        tiny.params_for({"model": {"features": 256}})
    with pytest.raises(
        ConfigError, match=r"cannot express model.stem.channels=64: the space has it fixed at 8"
    ):
        tiny.params_for({"model": {"stem": {"channels": 64}}})
    with pytest.raises(ConfigError, match="not a config path"):
        tiny.params_for({"model": {"stem": {"width": 64}}})


def test_seed_designs_map_onto_the_tiny_and_full_spaces(tiny, full):
    _, overrides = design_overrides(SEED_DESIGNS)
    for space in (tiny, full):
        plan = plan_seed_trials(space, SEED_DESIGNS)
        assert plan.skipped == []
        assert [n for n, _ in plan.trials] == list(overrides)
        study = optuna.create_study()
        for name, params in plan.trials:
            study.enqueue_trial(params, user_attrs={"design": name})
            trial = study.ask()
            cfg = space.suggest(trial)
            for path, want in leaves({"model": overrides[name]}).items():
                assert get_path(cfg, path) == (list(want) if isinstance(want, (list, tuple)) else want), (
                    name,
                    path,
                )
            assert trial.user_attrs["design"] == name
            study.tell(trial, 0.0)
    # the full space holds the designs at their real size: the exact configs come back
    designs = load_designs(SEED_DESIGNS)
    for name, params in plan_seed_trials(full, SEED_DESIGNS).trials:
        study.enqueue_trial(params)
        trial = study.ask()
        assert full.suggest(trial)["model"] == designs[name].to_dict()
        study.tell(trial, 0.0)


def test_seed_designs_a_space_cannot_express_are_skipped_with_a_reason(tmp_path):
    path = write(
        tmp_path,
        """
        base: {model: {features: 32, depth: 2, input_size: 64, stem: {channels: 8}}}
        params:
          model.block.name: {choices: [bottleneck, conv2]}
          model.block.dilation: {choices: [1, 2]}
    """,
    )
    plan = plan_seed_trials(SearchSpace.load(path), SEED_DESIGNS)
    kept = [n for n, _ in plan.trials]
    skipped = dict(plan.skipped)
    assert kept == ["baseline", "dilated", "conv_two"]
    assert "model.output_weights" in skipped["hg_weights_03_07"]
    assert "model.stem.name='patch3'" in skipped["patchify"]
    assert "model.block.separable='all'" in skipped["dwsep_two"]
    assert all("\n" not in r for r in skipped.values())
    assert seed_trials(SearchSpace.load(path), SEED_DESIGNS) == plan.trials


def test_seed_designs_file_is_a_one_param_categorical_space():
    space = SearchSpace.load(SEED_DESIGNS)
    designs = load_designs(SEED_DESIGNS)
    assert space.names == ("design",)
    assert space.grid() == {"design": list(designs)}
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(space.grid(), seed=0))
    seen = {}

    def objective(trial):
        cfg = space.suggest(trial)["model"]
        seen[trial.params["design"]] = cfg
        return 0.0

    study.optimize(objective, n_trials=len(designs) + 5)  # the grid sampler stops after 11
    assert len(study.trials) == len(designs)
    assert seen == {name: cfg.to_dict() for name, cfg in designs.items()}
    # and as warm starts onto itself, each design maps to its own label
    assert [(n, p["design"]) for n, p in seed_trials(space, SEED_DESIGNS)] == [(n, n) for n in designs]


def test_rebased_designs_at_tiny_size_and_no_fixing_searched_paths(tiny):
    small = SearchSpace.load(SEED_DESIGNS).rebased(
        {"model": {"features": 32, "input_size": 64, "depth": 2, "stem": {"channels": 8}}}
    )
    for _, cfg in sample(small, 5):
        assert (cfg["model"]["features"], cfg["model"]["input_size"]) == (32, 64)
    with pytest.raises(ConfigError, match="model.features is searched by the space"):
        tiny.rebased({"model": {"features": 16}})


def test_grid_refuses_a_conditional_space(tiny):
    with pytest.raises(
        ConfigError, match="grid sampler needs unconditional params, but model.block.dilation"
    ) as err:
        tiny.grid()
    assert "\n" not in str(err.value)


def test_unasked_knob_falls_back_when_the_block_rejects_the_base(tmp_path):
    path = write(
        tmp_path,
        """
        base:
          model: {features: 32, depth: 2, input_size: 64, stem: {channels: 8}, block: {dilation: 3, separable: mid}}
        params:
          model.block.name: {choices: [bottleneck, multidilated, conv2]}
    """,
    )
    space = SearchSpace.load(path)
    by_block = {cfg["model"]["block"]["name"]: cfg["model"]["block"] for _, cfg in sample(space, 30)}
    assert by_block["bottleneck"]["dilation"] == 3 and by_block["bottleneck"]["separable"] == "mid"
    assert by_block["multidilated"]["dilation"] == 1  # multidilated has no dilation knob
    assert by_block["conv2"] == {
        **by_block["conv2"],
        "dilation": 3,
        "separable": "none",
    }  # conv2 has no "mid"


def test_shipped_spaces_every_combination_is_a_valid_model(tiny, full):
    for space in (tiny, full):
        n = count_combinations(space.params, space.base)
        assert check_combinations(space.params, space.base, space.source, limit=10**6) == n
    # 432 block/stem/width combinations x (2 stacks: 4 loss x 3 output weightings + 1 stack)
    assert count_combinations(tiny.params, tiny.base) == 432 * (4 * 3 + 1)


BAD = [
    (
        "params: {model.features: {type: int, low: 32, high: 16}}",
        "params.model.features: expected low <= high, but got low=32 high=16",
    ),
    (
        "params: {model.block.name: {choices: []}}",
        "params.model.block.name.choices: expected a non-empty list, but got []",
    ),
    ("params: {model.block.name: {choices: [a], lo: 1}}", "params.model.block.name: unknown key 'lo'"),
    ("parms: {}", "unknown key 'parms' (allowed: 'description', 'base', 'params')"),
    (
        "params: {model.block.nam: {choices: [bottleneck]}}",
        "params.model.block.nam: 'model.block.nam' is not a config path (did you mean 'model.block.name'?)",
    ),
    (
        "params: {model.block.name: {choices: [bottleneck, resnext]}}",
        "params.model.block.name.choices[1]: expected one of 'bottleneck', 'conv2', 'multidilated', but "
        "got 'resnext'",
    ),
    (
        "params: {model.block.name: {choices: [resnet, conv2]}, model.block.dilation: {choices: [1, 2]}}",
        "params.model.block.name.choices[0]: expected one of 'bottleneck', 'conv2', 'multidilated', but "
        "got 'resnet'",
    ),
    (
        "params: {model.block.dilation: {choices: [1, 5]}}",
        "params.model.block.dilation.choices: 5 fits none of the blocks the space can pick (bottleneck)",
    ),
    (
        "params: {model.block.separable: {choices: [none, mid]}}\nbase: {model: {block: {name: conv2}}}",
        "params.model.block.separable.choices: 'mid' fits none of the blocks",
    ),
    (
        "params: {model.block.skip: {choices: ['yes']}}",
        "params.model.block.skip.choices[0]: expected true or false, but got 'yes'",
    ),
    (
        "params: {model.features: {type: int, low: 16.5, high: 32}}",
        "params.model.features.low: expected an integer, but got 16.5",
    ),
    (
        "params: {schedule.lr: {type: float, low: 1e-4, high: 1.0e-2}}",
        "params.schedule.lr.low: expected a number, but got the string '1e-4' (YAML reads 1e-3 as text: "
        "write 1.0e-3)",
    ),
    (
        "params: {schedule.lr: {type: float, low: 0.0, high: 1.0e-2, log: true}}",
        "params.schedule.lr.low: a log range needs low > 0, but got 0.0",
    ),
    (
        "params: {model.block.dilation: {type: int, low: 1, high: 2}}",
        "params.model.block.dilation: expected choices (block knobs are categorical)",
    ),
    (
        "params: {model.stacks: {choices: [1, 2]}, model.stack_weights: {choices: [[0.3, 0.7]]}}",
        "params: model.stacks=1, model.stack_weights='[0.3, 0.7]' gives a model the config rejects: "
        "stack_weights: expected 1 weights",
    ),
    (
        "base: {model: {features: 32, depth: 2, input_size: 64, stem: {channels: 8}}}\nparams: "
        "{model.block.name: {choices: [multidilated]}, model.block.rates: {choices: [[1, 2, 3]]}}",
        "model.block.rates='[1, 2, 3]' gives a model the config rejects: features: expected a multiple of 6",
    ),
    (
        "params: {model.stack_weights: {when: {model.stacks: 2}, choices: [null]}, model.stacks: {choices: "
        "[1, 2]}}",
        "params.model.stack_weights depends on model.stacks, which params.model.stacks sets after it",
    ),
    (
        "params: {model.block.rates: {choices: [[1, 2]]}, model.block.name: {choices: [multidilated]}}",
        "params.model.block.rates.choices: [1, 2] fits none of the blocks the space can pick (bottleneck)",
    ),
    (
        "params: {model.features: {type: int, low: 16, high: 32, step: 8, default: 20}}",
        "params.model.features.default: expected integers in [16, 32] step 8, but got 20",
    ),
    (
        "base: {model: {stacks: 0}}\nparams: {model.features: {choices: [32]}}",
        "base.model.stacks: expected an integer in [1, 16], but got 0",
    ),
    ("params: {model.features: {choices: [32, 32]}}", "params.model.features.choices: 32 is listed twice"),
    (
        "params: {model.stacks: {when: {model.stack: 2}, choices: [1]}}",
        "params.model.stacks.when: 'model.stack' is not a config path",
    ),
    ("params: [a, b]", "params: expected a non-empty mapping"),
    (
        "params: {a: {path: model.features, choices: [16]}, b: {path: model.features, choices: [32]}}",
        "params.b and params.a both set model.features; give them exclusive 'when' conditions",
    ),
    (
        "params: {model.features: {choices: [32]}}\nbase: {schedule: {optimiser: adam}}",
        "base.schedule: unknown key 'optimiser'",
    ),
    ("params: {model.features: {choices: [32]\n", "malformed YAML at line"),
]


@pytest.mark.parametrize("text, needle", BAD)
def test_bad_space_is_one_line_naming_file_and_key(tmp_path, text, needle):
    path = write(tmp_path, text, "bad.yaml")
    with pytest.raises(ConfigError) as err:
        SearchSpace.load(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert needle in message, message
    assert "\n" not in message


_model_dicts = st.fixed_dictionaries(
    {
        "stacks": st.integers(1, 3),
        "features": st.sampled_from([8, 12, 16, 24, 32]),
        "depth": st.integers(1, 3),
        "input_size": st.sampled_from([32, 48, 64]),
        "joints": st.just(16),
        "block": st.fixed_dictionaries(
            {
                "name": st.sampled_from(sorted(BLOCKS)),
                "dilation": st.sampled_from(DILATIONS + (5,)),
                "separable": st.sampled_from(SEPARABLE),
                "skip": st.booleans(),
                "rates": st.lists(st.sampled_from(DILATIONS), min_size=1, max_size=4),
            }
        ),
        "stem": st.fixed_dictionaries(
            {"name": st.sampled_from(["conv7", "patch3", "patch4"]), "channels": st.sampled_from([4, 6, 8])}
        ),
        "stack_weights": st.one_of(st.none(), st.lists(st.floats(0, 2), min_size=1, max_size=3)),
    }
)


@settings(max_examples=200, deadline=None)
@given(_model_dicts)
def test_fast_model_check_agrees_with_from_dict(model):
    try:
        want = HourglassConfig.from_dict(model)
    except ConfigError as exc:
        with pytest.raises(ConfigError) as err:
            build_model_config(model)
        assert str(err.value) == str(exc)
    else:
        assert build_model_config(model) == want
