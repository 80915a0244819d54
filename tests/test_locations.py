"""Where presets and search spaces come from: $HPO_HOME, then ./, then the package."""

import pytest
from typer.testing import CliRunner

from hpo.cli import app
from hpo.locations import HOME_ENV, SPACES, STUDIES, find_named, listing, search_dirs, shipped_dir
from hpo.preset import load_preset

runner = CliRunner()


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(HOME_ENV, raising=False)
    return tmp_path


def _user_preset(folder, name="quickstart", trials=7):
    (folder / STUDIES).mkdir(parents=True, exist_ok=True)
    text = (shipped_dir(STUDIES) / "quickstart.yaml").read_text()
    (folder / STUDIES / f"{name}.yaml").write_text(
        text.replace("budget: {trials: 12", f"budget: {{trials: {trials}")
    )


def test_from_an_empty_folder_the_shipped_files_answer(empty_cwd):
    assert search_dirs(STUDIES) == [("package", shipped_dir(STUDIES))]
    preset = load_preset("quickstart")
    assert preset.budget.trials == 12
    assert preset.space.startswith(str(shipped_dir(SPACES).resolve()))
    assert {f.name for f in listing(STUDIES)} >= {"quickstart", "mpii_pareto"}


def test_a_preset_in_the_working_directory_shadows_the_shipped_one(empty_cwd):
    _user_preset(empty_cwd, trials=7)
    assert load_preset("quickstart").budget.trials == 7
    (found,) = [f for f in listing(STUDIES) if f.name == "quickstart"]
    assert found.origin == "cwd" and found.shadows == (shipped_dir(STUDIES) / "quickstart.yaml",)
    # its space still comes from the package: the user has no search_spaces/
    assert load_preset("quickstart").space == str((shipped_dir(SPACES) / "tiny.yaml").resolve())


def test_hpo_home_comes_before_the_working_directory(empty_cwd, tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    _user_preset(empty_cwd, trials=7)
    _user_preset(home, trials=3)
    (home / SPACES).mkdir()
    (home / SPACES / "tiny.yaml").write_text((shipped_dir(SPACES) / "tiny.yaml").read_text())
    monkeypatch.setenv(HOME_ENV, str(home))
    preset = load_preset("quickstart")
    assert preset.budget.trials == 3 and preset.space == str((home / SPACES / "tiny.yaml").resolve())
    assert [o for o, _ in search_dirs(STUDIES)] == ["home", "cwd", "package"]
    assert find_named(SPACES, "full") == shipped_dir(SPACES) / "full.yaml"


def test_hpo_presets_lists_names_origins_and_shadowing(empty_cwd, tmp_path_factory):
    _user_preset(empty_cwd, name="mine")
    _user_preset(empty_cwd, name="quickstart")
    home = tmp_path_factory.mktemp("home2")
    result = runner.invoke(app, ["--home", str(home), "presets", "--spaces"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "studies, looked up in this order:"
    assert lines[1].split() == ["cwd", str(empty_cwd / STUDIES)]  # home has no studies/: not listed
    assert lines[2].split() == ["package", str(shipped_dir(STUDIES))]
    assert ["mine", "cwd"] in [line.split() for line in lines]
    assert ["quickstart", "cwd", "(shadows", "1", "further", "down)"] in [line.split() for line in lines]
    assert ["mpii_pareto", "package"] in [line.split() for line in lines]
    assert ["seed_designs", "package"] in [line.split() for line in lines]
    assert all(
        len(line) <= 80 for line in lines if not line.startswith("  package") and not line.startswith("  cwd")
    )


def test_a_missing_preset_names_where_it_looked(empty_cwd):
    result = runner.invoke(app, ["run", "nosuch"])
    assert result.exit_code == 2
    assert (
        "preset 'nosuch': no such preset in" in result.output and str(shipped_dir(STUDIES)) in result.output
    )


def test_home_must_be_a_folder(empty_cwd):
    result = runner.invoke(app, ["--home", str(empty_cwd / "nope"), "presets"])
    assert result.exit_code == 2 and "no such folder" in result.output
