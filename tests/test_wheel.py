"""The package as a user installs it: a wheel (not editable) in a fresh venv, run from an
empty folder, finds its presets and search spaces as package data."""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("hpo", "hourglass", "studies", "search_spaces", "pyproject.toml", "README.md")


def _run(cmd, cwd, env, timeout=600):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv with the wheel built from this checkout; torch & co. come from the system
    site-packages (--no-deps: no downloads), the package itself only from the wheel."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"  # a copy: building writes build/ and *.egg-info next to the sources
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name,
                src / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.db*", "*_checkpoints"),
            )
        else:
            shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HPO_HOME", "HPO_STORAGE")}
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(src),
            "-w",
            str(root / "dist"),
        ],
        root,
        env,
    )
    (wheel,) = (root / "dist").glob("hourglass_hpo-*.whl")
    _run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(root / "venv")],
        root,
        env,
    )
    python = root / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)], root, env)
    return root, wheel, python, env


def test_the_wheel_holds_every_package_and_the_yaml(venv):
    _, wheel, _, _ = venv
    names = zipfile.ZipFile(wheel).namelist()
    for init in [*ROOT.glob("hpo/**/__init__.py"), *ROOT.glob("hourglass/**/__init__.py")]:
        assert init.relative_to(ROOT).as_posix() in names  # pyproject's package list is complete
    for kind, package in (("studies", "hpo/presets"), ("search_spaces", "hpo/spaces")):
        for path in (ROOT / kind).glob("*.yaml"):
            assert f"{package}/{path.name}" in names


def test_from_an_empty_folder_it_runs_a_study(venv, tmp_path):
    root, _, python, env = venv
    work = tmp_path / "empty"
    work.mkdir()
    where = _run(
        [str(python), "-c", "import hpo, hourglass.designs as d; print(hpo.__file__); print(d.SEED_DESIGNS)"],
        work,
        env,
    ).split()
    site = root / "venv" / "lib"
    assert all(Path(p).is_relative_to(site) for p in where), (
        where
    )  # not the checkout, not an editable install
    hpo = [str(python), "-m", "hpo"]
    listed = _run([*hpo, "presets", "--spaces"], work, env)
    assert f"package  {site}" in listed and "quickstart" in listed and "seed_designs" in listed
    # the quickstart, made tiny by a user preset that shadows it from $HPO_HOME (the
    # working directory stays empty; the space and seed designs still come from the wheel)
    home = tmp_path / "home"
    (home / "studies").mkdir(parents=True)
    doc = yaml.safe_load(
        _run(
            [
                str(python),
                "-c",
                "import importlib.resources as r; "
                "print(r.files('hpo.presets').joinpath('quickstart.yaml').read_text())",
            ],
            work,
            env,
        )
    )
    doc.update(data="synthetic:120:64:0", schedule={**doc["schedule"], "epochs": 1, "milestones": []})
    (home / "studies" / "quickstart.yaml").write_text(yaml.safe_dump(doc))
    out = _run(
        [
            *hpo,
            "--home",
            str(home),
            "run",
            "--n-trials",
            "1",
            "--quiet",
            "--report",
            str(tmp_path / "r.html"),
        ],
        work,
        env,
    )
    assert (
        "study 'quickstart': not yet in journal://studies/quickstart.log "
        f"({work / 'studies' / 'quickstart.log'})" in out
    )
    assert out.count("worker done:") == 2  # the preset's two workers, started from the wheel
    assert "trial   0 complete" in out and "conv2_one_stack" in out, out  # the seed design
    again = _run([*hpo, "pareto", "quickstart", "--html", str(tmp_path / "p.html")], work, env)
    # two workers may both start the one trial asked for
    assert re.search(
        re.escape(
            f"study 'quickstart' in journal://studies/quickstart.log ({work / 'studies' / 'quickstart.log'}): "
        )
        + "[12] finished trials",
        again,
    ), again
    elsewhere = subprocess.run(
        [*hpo, "pareto", "quickstart"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert (
        elsewhere.returncode == 2
        and f"no such file ({tmp_path / 'studies' / 'quickstart.log'})" in elsewhere.stderr
    )
