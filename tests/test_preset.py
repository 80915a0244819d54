import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from hourglass.designs import SEED_DESIGNS, load_designs
from hourglass.errors import ConfigError
from hourglass.validate import from_dict
from hpo.preset import (
    STUDIES_DIR,
    StudyPreset,
    list_presets,
    load_preset,
)
from hpo.pruning import ParetoHalvingPruner
from hpo.record import OBJECTIVES
from hpo.space import SPACES_DIR
from hpo.space_param import schema_defaults
from hpo.strategy import create_pruner, create_sampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_shipped_presets_load_and_resolve():
    assert {"quickstart", "mpii_pareto"} <= set(list_presets())
    quick = load_preset("quickstart")
    assert quick.name == "quickstart"
    assert quick.objectives == ("pckh", "params", "train_time")
    assert quick.directions == ["maximize", "minimize", "minimize"]
    assert quick.storage == "journal://studies/quickstart.log"  # two workers: tests/test_quickstart.py
    assert Path(quick.space) == (SPACES_DIR / "tiny.yaml").resolve()
    assert quick.data.startswith("synthetic:")
    # the schedule is the defaults with the preset's values on top
    defaults = schema_defaults()["schedule"]
    assert quick.schedule["epochs"] < defaults["epochs"]
    assert quick.schedule["lr"] == defaults["lr"] and quick.schedule["optimizer"] == defaults["optimizer"]
    assert isinstance(create_pruner(quick), ParetoHalvingPruner)

    real = load_preset(STUDIES_DIR / "mpii_pareto.yaml")
    assert Path(real.space) == (SPACES_DIR / "full.yaml").resolve()
    assert Path(real.warm_start) == SEED_DESIGNS.resolve()
    assert real.data.endswith(".h5") and real.device == "cuda"
    assert (real.schedule["epochs"], real.schedule["batch_size"], list(real.schedule["milestones"])) == (
        20,
        24,
        [15, 17],
    )
    assert real.budget.trials >= 100 or real.budget.timeout_s


def test_preset_round_trips_through_its_dict():
    preset = load_preset("quickstart")
    again = from_dict(StudyPreset, preset.to_dict())
    assert again == preset
    assert isinstance(preset.to_dict()["schedule"], dict)


def test_preset_by_path_takes_its_name_from_the_file_and_finds_the_space_next_to_it(tmp_path):
    (tmp_path / "my_space.yaml").write_text((SPACES_DIR / "tiny.yaml").read_text())
    path = write(
        tmp_path,
        """
        objectives: [pckh]
        pruner: {name: median, min_epochs: 2}
        budget: {timeout_s: 60}
        space: my_space.yaml
        storage: journal:///tmp/x.log
    """,
        "one_obj.yaml",
    )
    preset = load_preset(path)
    assert preset.name == "one_obj" and preset.storage == "journal:///tmp/x.log"
    assert Path(preset.space) == (tmp_path / "my_space.yaml").resolve()
    pruner = create_pruner(preset)
    assert isinstance(pruner, optuna.pruners.MedianPruner)


def test_unknown_preset_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"no such preset .* \(found: .*mpii_pareto.*quickstart"):
        load_preset("quikstart")


BAD = [
    (
        "pruner: {name: median}",
        "pruner.name: 'median' needs a single-objective study, but got objectives ['pckh', 'params', "
        "'train_time']; use mo_halving or none",
    ),
    (
        "pruner: {name: hyperband}\nobjectives: [pckh, flops]",
        "pruner.name: 'hyperband' needs a single-objective study",
    ),
    (
        "objectives: [pckh, accuracy]",
        "objectives: expected one of 'pckh', 'params', 'train_time', 'flops', 'step_latency', 'latency', "
        "but got 'accuracy'",
    ),
    ("objectives: [pckh, pckh]", "objectives: expected each at most once"),
    ("objectives: []", "objectives: expected at least one of"),
    (
        "sampler: {name: cmaes}",
        "sampler.name: expected one of 'tpe', 'nsga2', 'nsga3', 'gp', 'random', 'grid', 'screen_promote', "
        "but got 'cmaes'",
    ),
    ("sampler: {name: tpe, kwargs: {n_startup: 3}}", "sampler.kwargs: TPESampler does not take them"),
    ("sampler: {name: random, kwargs: {seed: 3}}", "sampler.kwargs: 'seed' is set by the study"),
    ("sampler: {name: grid}", "the grid sampler needs unconditional params"),
    ("pruner: {name: mo_halving, eta: 1}", "pruner.eta: expected an integer >= 2, but got 1"),
    ("budget: {}", "budget.trials: expected a number of trials and/or timeout_s, but got neither"),
    ("budget: {trials: 0}", "budget.trials: expected an integer in [1, 100000], but got 0"),
    (
        "data: mpii",
        "data: expected 'synthetic:N[:size[:seed]]' or a path to a .h5 crop cache, but got 'mpii'",
    ),
    ("space: nowhere.yaml", "space: no such file 'nowhere.yaml'"),
    ("warm_start: no_designs", "warm_start: no such file 'no_designs'"),
    ("schedule: {lr: 0.01}", "schedule.lr: the space"),
    ("schedule: {epochs: three}", "schedule.epochs: expected an integer, but got 'three'"),
    ("schedule: {epoch: 3}", "schedule: unknown key 'epoch'"),
    ("device: gpu", "device: expected auto, cpu, cuda, cuda:N or mps, but got 'gpu'"),
    ("name: 'my study'", "name: expected at most 100 letters, digits"),
    ("samplr: {name: tpe}", "unknown key 'samplr'"),
    ("- a list", "expected a mapping of preset fields"),
    ("model: [32]", "model: expected a mapping of model fields, but got [32]"),
    ("model: {joints: 0}", "joints: expected an integer >= 1, but got 0"),
    ("model: {features: 24}", "model.features is searched by the space, so it cannot also be fixed"),
    ("workers: 0", "workers: expected an integer in [1, 256], but got 0"),
    ("workers: two", "workers: expected an integer"),
    (
        "workers: 2",
        "workers: 2 processes share one study, but SQLite (sqlite:///studies/study.db) takes one at a "
        "time; set storage: journal://studies/study.log",
    ),
]


@pytest.mark.parametrize("text, needle", BAD)
def test_bad_preset_is_one_line_naming_file_and_field(tmp_path, text, needle):
    base = "" if text.startswith("-") else "budget: {trials: 2}\nspace: tiny\n"  # later keys win in YAML
    path = write(tmp_path, base + text)
    with pytest.raises(ConfigError) as err:
        load_preset(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert needle in message, message
    assert "\n" not in message


def _preset(tmp_path, sampler: str, objectives="[pckh, params]", space="tiny", kwargs="{}") -> StudyPreset:
    return load_preset(
        write(
            tmp_path,
            f"""
        objectives: {objectives}
        sampler: {{name: {sampler}, kwargs: {kwargs}}}
        budget: {{trials: 3}}
        space: {space}
    """,
            f"{sampler}.yaml",
        )
    )


@pytest.mark.parametrize(
    "name, cls",
    [
        ("tpe", optuna.samplers.TPESampler),
        ("nsga2", optuna.samplers.NSGAIISampler),
        ("nsga3", optuna.samplers.NSGAIIISampler),
        ("gp", optuna.samplers.GPSampler),
        ("random", optuna.samplers.RandomSampler),
    ],
)
def test_create_sampler_builds_the_named_sampler_seeded(tmp_path, name, cls):
    preset = _preset(tmp_path, name, kwargs="{population_size: 4}" if name.startswith("nsga") else "{}")
    space = preset.search_space()

    def first_configs(seed):
        study = optuna.create_study(directions=preset.directions, sampler=create_sampler(preset, seed))
        assert isinstance(study.sampler, cls)
        out = []
        for _ in range(3):
            trial = study.ask()
            out.append(space.suggest(trial))
            study.tell(trial, [float(trial.number), 1.0])
        return out

    assert first_configs(7) == first_configs(7)
    assert first_configs(7) != first_configs(8)


def test_grid_sampler_enumerates_a_designs_space(tmp_path):
    preset = _preset(tmp_path, "grid", objectives="[params]", space="seed_designs")
    space = preset.search_space()
    study = optuna.create_study(direction="minimize", sampler=create_sampler(preset))
    names = []

    def objective(trial):
        space.suggest(trial)
        names.append(trial.params["design"])
        return 0.0

    study.optimize(objective, n_trials=50)
    assert sorted(names) == sorted(load_designs(SEED_DESIGNS))


@pytest.mark.parametrize(
    "name, cls",
    [
        ("median", optuna.pruners.MedianPruner),
        ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("none", optuna.pruners.NopPruner),
    ],
)
def test_create_pruner_single_objective_gives_optuna_pruners(tmp_path, name, cls):
    preset = load_preset(
        write(
            tmp_path,
            f"""
        objectives: [pckh]
        pruner: {{name: {name}, min_epochs: 2, eta: 3}}
        budget: {{trials: 3}}
    """,
        )
    )
    assert isinstance(create_pruner(preset), cls)


def test_create_pruner_mo_halving_takes_the_preset_numbers(tmp_path):
    preset = load_preset(
        write(
            tmp_path,
            """
        objectives: [pckh, flops]
        pruner: {name: mo_halving, min_epochs: 2, eta: 4, min_trials: 7}
        budget: {trials: 3}
    """,
        )
    )
    pruner = create_pruner(preset)
    assert (pruner.min_epochs, pruner.eta, pruner.min_trials_at_rung, pruner.objectives) == (
        2,
        4,
        7,
        ("pckh", "flops"),
    )
    assert pruner.rungs(40) == [2, 8, 32]


def test_objective_directions_cover_every_objective():
    directions = {name: spec.direction for name, spec in OBJECTIVES.items()}
    assert set(directions.values()) == {"maximize", "minimize"}
    assert directions["pckh"] == "maximize"
    assert all(directions[o] == "minimize" for o in directions if o != "pckh")


def test_reference_study_presets_grid_the_eleven_designs():
    designs = load_designs(SEED_DESIGNS)
    gpu, cpu = load_preset("reference_study"), load_preset("reference_study_cpu")
    for preset in (gpu, cpu):
        assert preset.sampler.name == "grid" and preset.budget.trials == len(designs) == 11
        assert preset.search_space().grid() == {"design": list(designs)}
    assert gpu.device == "cuda" and gpu.data.endswith(".h5")
    assert (
        gpu.schedule["epochs"],
        gpu.schedule["batch_size"],
        gpu.schedule["optimizer"],
        gpu.schedule["lr"],
        list(gpu.schedule["milestones"]),
        gpu.schedule["gamma"],
    ) == (20, 24, "adam", 1e-3, [15, 17], 0.1)
    # the CPU twin: the same designs at tiny widths (the preset's model values over the space's base)
    assert cpu.device == "cpu" and cpu.data.startswith("synthetic:")
    base = cpu.search_space().base["model"]
    assert (base["features"], base["input_size"], base["stem"]["channels"], base["stem"]["layout"]) == (
        32,
        64,
        8,
        "pytorch_pose",
    )
    assert gpu.search_space().base["model"]["features"] == 256


def test_deploy_preset_has_latency_as_an_objective():
    deploy = load_preset("deploy_pareto")
    assert deploy.objectives == ("pckh", "latency", "params")
    assert deploy.directions == ["maximize", "minimize", "minimize"]
    assert deploy.device == "cpu" and deploy.budget.timeout_s <= 480


def test_latency_objective_without_the_deploy_extra_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # find_spec then reports it missing
    path = write(tmp_path, "objectives: [pckh, latency]\nbudget: {trials: 2}\n")
    with pytest.raises(ConfigError) as err:
        load_preset(path)
    assert str(err.value) == (
        f'{path}: objectives: latency needs the deploy extra (missing: onnx): pip install -e ".[deploy]"'
    )
