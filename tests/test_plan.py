"""One resolved study plan: an ``hpo run`` loads its search space once and resolves its
warm start once, however many steps (preset, storage/device overrides, study, objective)
read them."""

import sys
from dataclasses import replace

import optuna
import pytest
from typer.testing import CliRunner

import hpo.preset
import hpo.study
from hourglass.designs import load_designs
from hpo.cli import app
from hpo.preset import load_preset
from hpo.space import SPACES_DIR, SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()


@pytest.fixture
def counted(monkeypatch):
    """Counts of space loads (``space``) and of file resolutions (``resolve <what>``), in
    every hpo module."""
    counts = {"space": 0}
    load = SearchSpace.load.__func__

    def counting_load(cls, path):
        counts["space"] += 1
        return load(cls, path)

    monkeypatch.setattr(SearchSpace, "load", classmethod(counting_load))
    original = hpo.preset.resolve_file

    def counting_resolve(ref, *, near, folder, what):
        counts[f"resolve {what}"] = counts.get(f"resolve {what}", 0) + 1
        return original(ref, near=near, folder=folder, what=what)

    for name, module in list(sys.modules.items()):
        if (name == "hpo" or name.startswith("hpo.")) and getattr(module, "resolve_file", None) is original:
            monkeypatch.setattr(module, "resolve_file", counting_resolve)
    return counts


def test_hpo_run_loads_the_space_and_resolves_the_warm_start_once(tmp_path, monkeypatch, counted):
    path = tmp_path / "plan.yaml"
    path.write_text(f"""
objectives: [pckh, params, train_time]
sampler: {{name: random}}
budget: {{trials: 1}}
data: synthetic:8:64:0
space: tiny
model: {{stem: {{channels: 16}}}}
warm_start: quickstart_seeds
schedule: {{epochs: 1, batch_size: 4}}
storage: sqlite:///{tmp_path / "unused.db"}
""")
    built = {}

    def no_training(study, objective, **kwargs):  # hpo.trial_loop.work: the setup is what counts
        built["study"], built["objective"] = study, objective
        return []

    monkeypatch.setattr(hpo.study, "work", no_training)
    result = runner.invoke(
        app,
        ["run", str(path), "--storage", f"sqlite:///{tmp_path / 'plan.db'}", "--device", "cpu", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    waiting = built["study"].get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["design"] for t in waiting] == list(
        load_designs(SPACES_DIR / "quickstart_seeds.yaml")
    )
    objective = built["objective"]
    assert objective.space.base["model"]["stem"]["channels"] == 16 and objective.preset.device == "cpu"
    assert counted["space"] == 1, f"the space was loaded {counted['space']} times"
    assert counted["resolve warm_start"] == 1, (
        f"warm_start was resolved {counted['resolve warm_start']} times"
    )


def test_replacing_the_space_or_model_gives_the_new_space(tmp_path):
    preset = load_preset("quickstart")
    space = preset.search_space()
    assert preset.search_space() is space
    assert preset.replace(device="cpu", storage="sqlite:///x.db").search_space() is space  # kept
    assert replace(preset, device="cpu").search_space().names == space.names  # loaded again
    for changed in (
        preset.replace(model={"stem": {"channels": 16}}),
        replace(preset, model={"stem": {"channels": 16}}),
    ):
        assert changed.search_space().base["model"]["stem"]["channels"] == 16
    designs = str((SPACES_DIR / "seed_designs.yaml").resolve())
    for changed in (preset.replace(space=designs), replace(preset, space=designs)):
        assert changed.search_space().names == ("design",)
        mapped = changed.warm_start_trials(designs)  # a designs file mapped onto its own designs space
        assert mapped[0] == ("baseline", {"design": "baseline"}) and len(mapped) == len(load_designs(designs))
    assert [name for name, _ in preset.warm_start_trials()] == list(load_designs(preset.warm_start))
    assert preset.train_schedule.epochs == preset.schedule["epochs"] == 8
