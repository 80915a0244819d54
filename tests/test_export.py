import optuna
import pytest
import yaml

from hourglass.config import HourglassConfig
from hourglass.costs import costs
from hourglass.errors import ConfigError
from hpo.export import export_trials
from hpo.pareto import pareto_trials
from tests.study_factory import make_study, trial_attrs


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("export"))[0]


def test_pareto_export_rebuilds_the_same_networks(study, tmp_path):
    paths = export_trials(study, None, tmp_path / "designs")
    front = pareto_trials(study)
    assert [p.name for p in paths] == [f"trial_{t.number}.yaml" for t in front]
    for path, trial in zip(paths, front):
        doc = yaml.safe_load(path.read_text())
        assert list(doc) == ["model", "schedule", "data"]
        stored = trial.user_attrs["config"]
        block = doc["model"].pop("block")
        assert {**doc, "model": {**doc["model"], "block": stored["model"]["block"]}} == stored
        # only the knobs the block reads: no rates on a bottleneck or conv2
        knobs = {
            "bottleneck": ["dilation", "name", "separable", "skip"],
            "conv2": ["dilation", "name", "separable", "skip"],
        }
        assert sorted(block) == knobs[block["name"]], block
        assert block == {k: v for k, v in stored["model"]["block"].items() if k in block}
        model = HourglassConfig.from_dict({**doc["model"], "block": block})
        assert model == HourglassConfig.from_dict(stored["model"])  # the same network
        assert costs(model).params == trial.user_attrs["params"]


def test_a_multidilated_export_has_rates_and_no_dilation_or_separable(study, tmp_path):
    (path,) = export_trials(study, [6], tmp_path)
    assert sorted(yaml.safe_load(path.read_text())["model"]["block"]) == ["name", "rates", "skip"]


def test_header_says_where_it_came_from_and_how_to_retrain(study, tmp_path):
    (path,) = export_trials(study, [0], tmp_path)
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert "study 'demo', trial 0 (design baseline), COMPLETE" in header[0]
    assert f"pckh = {study.trials[0].values[0]:.2f}" in header[1]
    assert f"params = {study.trials[0].user_attrs['params']:,}" in header[1]
    assert header[-2:] == ["# schedule: trial", "# retrain: hpo train trial_0.yaml --out trial_0/"]


def test_a_pruned_trial_can_be_exported_and_says_so(study, tmp_path):
    (path,) = export_trials(study, [6], tmp_path)
    text = path.read_text()
    assert "PRUNED" in text and "pruned at epoch 2 (mo_rung)" in text
    assert yaml.safe_load(text)["model"]["block"]["name"] == "multidilated"


def test_unknown_trial_number_is_an_error(study, tmp_path):
    with pytest.raises(ConfigError, match=r"no trial number 42 \(trials: 0..8\)"):
        export_trials(study, [0, 42], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_broken_config_fails_before_any_file_is_written(tmp_path):
    study, _ = make_study(tmp_path, trials=[(None, {}, 50.0, "COMPLETE", 2)])
    attrs, _ = trial_attrs({}, 40.0, 2, "COMPLETE")
    attrs["config"]["model"]["block"]["name"] = "nope"
    study.add_trial(optuna.trial.create_trial(values=[40.0, attrs["params"], 9.0], user_attrs=attrs))
    study.add_trial(optuna.trial.create_trial(values=[45.0, 10.0, 9.0], user_attrs={"params": 10}))
    with pytest.raises(
        ConfigError, match=r"trial 1: config\.model.*block\.name: expected one of 'bottleneck'"
    ):
        export_trials(study, [0, 1], tmp_path / "out")
    with pytest.raises(ConfigError, match=r"trial 2: expected a 'config' user attr"):
        export_trials(study, [2], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_schedule_choices_are_merged_over_the_trials_schedule(study, tmp_path):
    from hpo import record as rec

    trained = study.trials[0].user_attrs["config"]["schedule"]
    (trial,) = export_trials(study, [0], tmp_path / "t", schedule="trial")
    assert yaml.safe_load(trial.read_text())["schedule"] == trained
    (ref,) = export_trials(study, [0], tmp_path / "r", schedule="reference")
    doc = yaml.safe_load(ref.read_text())
    assert doc["schedule"]["epochs"] == 20 and doc["schedule"]["milestones"] == [15, 17]
    assert "# schedule: reference (not the trial's own)" in ref.read_text()
    # a preset: its retrain: if it has one, else its whole schedule
    preset = tmp_path / "long.yaml"
    preset.write_text(
        "space: tiny\nschedule: {epochs: 3, batch_size: 8}\nretrain: {epochs: 12, milestones: [9]}\n"
    )
    (long,) = export_trials(study, [0], tmp_path / "p", schedule=str(preset))
    assert yaml.safe_load(long.read_text())["schedule"] == {**trained, "epochs": 12, "milestones": [9]}
    # default: the study's own preset's retrain:, else as trained
    assert yaml.safe_load(export_trials(study, [0], tmp_path / "d")[0].read_text())["schedule"] == trained
    rec.study_put(study, rec.STUDY_PRESET, {"name": "demo", "retrain": {"epochs": 30}})
    try:
        (default,) = export_trials(study, [0], tmp_path / "d2")
    finally:
        rec.study_put(study, rec.STUDY_PRESET, None)
    assert yaml.safe_load(default.read_text())["schedule"] == {**trained, "epochs": 30}


def test_a_bad_retrain_schedule_is_a_one_line_error(study, tmp_path):
    preset = tmp_path / "bad.yaml"
    preset.write_text("space: tiny\nretrain: {epochs: 0}\n")
    with pytest.raises(ConfigError, match="retrain.*epochs"):
        export_trials(study, [0], tmp_path / "x", schedule=str(preset))
    with pytest.raises(ConfigError, match="no such"):
        export_trials(study, [0], tmp_path / "x", schedule="nosuch_preset")
