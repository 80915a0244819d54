"""Hostile or careless input (issue 27): names too long or path-like, absurd epochs and
trials, YAML alias bombs, a study stored under a name that climbs out of reports/. Each is
one line and exit code 2, in seconds and without eating memory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from hourglass.errors import ConfigError
from hpo.names import MAX_NAME_LENGTH, check_study_name, file_under
from tests.workers_support import worker_env, write_preset

BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + BOMB  # 9**9 leaves from 90 nodes


# The child reports its own peak memory (VmHWM: this process image's, reset by exec; the
# rusage of a child counts the parent's memory at the fork, pytest's included).
_PEAK = (
    "import atexit, runpy, sys\n"
    "def peak():\n"
    "    hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')]\n"
    "    sys.stderr.write('\\nPEAK ' + hwm[0].split()[1] + '\\n')\n"
    "atexit.register(peak)\n"
    "sys.argv = ['hpo', *sys.argv[1:]]\n"
    "runpy.run_module('hpo', run_name='__main__')\n"
)


def _hpo(*args: str, cwd: Path) -> tuple[int, list[str], float, float]:
    """``python -m hpo ARGS``: exit code, output lines, CPU seconds, peak memory in MB."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _PEAK, *args],
        cwd=cwd,
        env={**worker_env(), "COLUMNS": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    peak_kb = [int(ln.split()[1]) for ln in lines if ln.startswith("PEAK ")]
    return (
        proc.returncode,
        [ln for ln in lines if not ln.startswith("PEAK ")],
        usage.ru_utime + usage.ru_stime,
        (peak_kb[0] if peak_kb else 10**9) / 1024,
    )


def _bombed_preset(folder: Path, where: str) -> Path:
    """A preset whose ``where`` (budget.trials, model.stem.channels, sampler kwargs, the
    space's description) is an alias bomb."""
    preset = write_preset(folder, "bombed")
    space = folder / "bombed_space.yaml"
    if where == "description":
        space.write_text(BOMB + space.read_text().replace("description: ", "description: *i\n_old: ", 1))
        return preset
    text = preset.read_text()
    target = {
        "budget.trials": ("budget:\n  trials: 3", "budget:\n  trials: *i"),
        "model.stem.channels": ("seed: 0", "seed: 0\nmodel: {stem: {channels: *i}}"),
        "sampler kwargs": ("sampler:\n  name: random", "sampler:\n  name: random\n  kwargs: {seed: *i}"),
    }[where]
    assert target[0] in text, text
    preset.write_text(BOMB + text.replace(*target))
    return preset


@pytest.fixture(scope="module")
def plain_error_cpu(tmp_path_factory) -> float:
    """CPU seconds of `hpo run` on a preset with an ordinary one-line error (imports included):
    what a hostile input may cost, give or take, on however loaded a machine."""
    folder = tmp_path_factory.mktemp("plain")
    preset = write_preset(folder, "p")
    preset.write_text(preset.read_text().replace("name: p", "name: 'my study'"))
    code, lines, cpu, _ = _hpo("run", str(preset), "--storage", f"sqlite:///{folder}/s.db", cwd=folder)
    assert code == 2, lines
    return cpu


@pytest.mark.parametrize(
    "case",
    [
        "name of 300",
        "name of 10000",
        "path-like name",
        "epochs 1e9",
        "trials 1e9",
        "bomb in budget.trials",
        "bomb in model.stem.channels",
        "bomb in description",
        "bomb in sampler kwargs",
        "recursive alias",
    ],
)
def test_hostile_input_is_one_line_exit_2_in_seconds_and_little_memory(tmp_path, case, plain_error_cpu):
    if case.startswith("name of"):
        preset = write_preset(tmp_path, "p")
        preset.write_text(preset.read_text().replace("name: p", f"name: {'n' * int(case.split()[-1])}"))
        needle = f"at most {MAX_NAME_LENGTH}"
    elif case == "path-like name":
        preset = write_preset(tmp_path, "p")
        preset.write_text(preset.read_text().replace("name: p", "name: ../../x/evil"))
        needle = "name: expected"
    elif case == "epochs 1e9":
        preset = write_preset(tmp_path, epochs=1_000_000_000)
        needle = "epochs: expected an integer in [1, 10000]"
    elif case == "trials 1e9":
        preset = write_preset(tmp_path, trials=1_000_000_000)
        needle = "trials: expected an integer in [1, 100000]"
    elif case == "recursive alias":
        preset = write_preset(tmp_path, "r")
        preset.write_text("a: &a [1, *a]\n" + preset.read_text())
        needle = "refers to its own anchor"
    else:
        preset = _bombed_preset(tmp_path, case.removeprefix("bomb in "))
        needle = "an alias bomb"
    code, lines, cpu, mb = _hpo("run", str(preset), "--storage", f"sqlite:///{tmp_path}/s.db", cwd=tmp_path)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert len(lines[0]) < 400  # a 10,000-character name is not echoed whole
    # about 2 s of CPU on an idle machine (imports); a bomb expanded would take minutes and GBs
    assert cpu < plain_error_cpu + 2 and mb < 500, (cpu, plain_error_cpu, mb)


def test_a_stored_name_that_climbs_out_of_reports_is_refused(tmp_path):
    """The database is not ours to trust: a study stored as ../../x/evil gets no report."""
    url = f"sqlite:///{tmp_path}/s.db"
    optuna.create_study(study_name="../../x/evil", storage=url)
    (tmp_path / "work").mkdir()
    code, lines, _, _ = _hpo("pareto", "../../x/evil", "--storage", url, cwd=tmp_path / "work")
    assert code == 2 and lines == [
        "error: study: expected at most 100 letters, digits, '_', '-', '.' (starting "
        "with a letter or digit), but got '../../x/evil'"
    ], lines
    assert not (tmp_path / "x").exists()


def test_names_and_the_files_they_become():
    assert check_study_name("mpii_pareto-2.v1") == "mpii_pareto-2.v1"
    for bad in ("", ".hidden", "a/b", "..", "a b", "x" * 101, None, 3, "é"):
        with pytest.raises(ConfigError):
            check_study_name(bad)
    assert file_under("reports", "demo", ".html") == Path("reports/demo.html")
    with pytest.raises(ConfigError):
        file_under("reports", "../demo", ".html")
