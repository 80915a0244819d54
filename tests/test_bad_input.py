"""Bad input anywhere on the command line: one line naming the file/field/URL, exit code 2,
no traceback (``--debug`` shows it); YAML is only ever read with the safe loader."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hourglass.errors import ConfigError
from hourglass.yamlio import dump_yaml
from hpo.cli import app
from hpo.preset import load_preset
from tests.workers_support import write_preset

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _file(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def _preset(folder: Path, **fields) -> str:
    return str(write_preset(folder, "p", **fields))


def _broken_preset(folder: Path, text: str) -> str:
    _preset(folder)  # the space file next to it
    return _file(folder, "p.yaml", text)


def _train_config(folder: Path, **changes) -> str:
    doc = {
        "model": {"stacks": 1, "features": 16, "depth": 1, "input_size": 32, "stem": {"channels": 8}},
        "schedule": {"epochs": 1, "batch_size": 16},
        "data": "synthetic:40:32:0",
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        doc[section] = {**doc[section], field: value} if field else value
    return str(dump_yaml(doc, folder / "train.yaml"))


def _corrupt_h5(folder: Path) -> str:
    path = folder / "corrupt.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    return str(path)


def _wrong_layout_h5(folder: Path) -> str:
    path = folder / "layout.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 4, 4, 3), np.uint8)
    return str(path)


def _valid_h5(folder: Path) -> str:
    """MPII's valid.h5 when the shared copy is there (tests/conftest.py), else a stand-in
    with the wrong layout (then the annotations are what the one line is about)."""
    shared = ROOT.parent / "shared" / "mpii" / "valid.h5"
    return str(shared) if shared.is_file() else _wrong_layout_h5(folder)


def _sqlite(folder: Path) -> str:
    return f"sqlite:///{folder / 'study.db'}"


# (id, args from a tmp folder (or (args, environment)), text the one line must contain)
CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    (
        "run: malformed YAML",
        lambda d: ["run", _broken_preset(d, "objectives: [pckh\nbudget: {")],
        "malformed YAML at line",
    ),
    ("run: unknown key", lambda d: ["run", _preset(d, epochz=3)], "epochz"),
    ("run: wrong type", lambda d: ["run", _preset(d, budget={"trials": "ten"})], "trials"),
    ("run: unknown objective", lambda d: ["run", _preset(d, objectives=["pckh", "speed"])], "speed"),
    ("run: not a mapping", lambda d: ["run", _broken_preset(d, "- a\n- b\n")], "expected a mapping"),
    (
        "run: YAML python tag",
        lambda d: ["run", _broken_preset(d, "!!python/object/apply:os.system ['touch pwned']\n")],
        "malformed YAML",
    ),
    ("run: no such preset", lambda d: ["run", "no_such_preset"], "no such preset"),
    (
        "run: missing space file",
        lambda d: ["run", _preset(d, space="nowhere_space.yaml")],
        "space: no such file",
    ),
    (
        "run: bad space param",
        lambda d: [
            "run",
            _preset(
                d,
                space=_file(
                    d, "bad_space.yaml", "params:\n  model.block.name: {choices: [nonexistent_block]}\n"
                ),
            ),
        ],
        "nonexistent_block",
    ),
    # a block knob after the name: the knob's per-block choices are derived from the registry
    (
        "run: unknown block among choices",
        lambda d: [
            "run",
            _preset(
                d,
                space=_file(
                    d,
                    "bad_space.yaml",
                    "params:\n  model.block.name: {choices: [bottleneck, conv2, resnet]}\n"
                    "  model.block.dilation: {choices: [1, 2]}\n",
                ),
            ),
        ],
        "params.model.block.name.choices[2]: expected one of 'bottleneck'",
    ),
    (
        "run: unknown stem among choices",
        lambda d: [
            "run",
            _preset(
                d, space=_file(d, "bad_space.yaml", "params:\n  model.stem.name: {choices: [conv7, conv9]}\n")
            ),
        ],
        "conv9",
    ),
    (
        "run: unknown block in a bundle",
        lambda d: [
            "run",
            _preset(
                d,
                space=_file(
                    d,
                    "bad_space.yaml",
                    "params:\n  d: {choices: {a: {model: {block: {name: resnet}}}}}\n"
                    "  model.block.dilation: {choices: [1, 2]}\n",
                ),
            ),
        ],
        "resnet",
    ),
    (
        "run: missing dataset",
        lambda d: ["run", _preset(d, data=str(d / "missing.h5")), "--storage", _sqlite(d)],
        "pose cache not found",
    ),
    (
        "run: corrupt HDF5",
        lambda d: ["run", _preset(d, data=_corrupt_h5(d)), "--storage", _sqlite(d)],
        "not a readable pose cache",
    ),
    (
        "run: HDF5 of another layout",
        lambda d: ["run", _preset(d, data=_wrong_layout_h5(d)), "--storage", _sqlite(d)],
        "missing dataset",
    ),
    ("run: storage not a URL", lambda d: ["run", _preset(d), "--storage", "studies/x.db"], "expected a URL"),
    (
        "run: SQLite with workers",
        lambda d: ["run", _preset(d), "--storage", _sqlite(d), "--workers", "2"],
        "PostgreSQL",
    ),
    (
        "run: unknown compile mode",
        lambda d: ["run", _preset(d), "--storage", _sqlite(d), "--compile", "fast"],
        "reduce-overhead",
    ),
    (
        "run: bad GPU list",
        lambda d: ["run", _preset(d), "--storage", _sqlite(d), "--gpus", "0,zero"],
        "--gpus",
    ),
    (
        "worker: GPU not visible",
        lambda d: ["worker", _preset(d), "--storage", _sqlite(d), "--gpus", "9"],
        "GPU 9 is not visible",
    ),
    ("run: bad device", lambda d: ["run", _preset(d), "--storage", _sqlite(d), "--device", "tpu"], "device"),
    (
        "run: zero trials",
        lambda d: ["run", _preset(d), "--storage", _sqlite(d), "--n-trials", "0"],
        "--n-trials",
    ),
    (
        "worker: no such preset or study",
        lambda d: ["worker", "no_such_thing", "--storage", _sqlite(d)],
        "neither a preset",
    ),
    (
        "worker: a GPU that is not there",
        lambda d: ["worker", _preset(d), "--storage", _sqlite(d), "--device", "cuda:99"],
        "expected a visible CUDA device",
    ),
    (
        "worker: bad heartbeat setting",
        lambda d: (["worker", _preset(d), "--storage", _sqlite(d)], {"HPO_GRACE_S": "soon"}),
        "HPO_GRACE_S",
    ),
    (
        "train: malformed YAML",
        lambda d: ["train", _file(d, "t.yaml", "model: {stacks: 1\n")],
        "malformed YAML",
    ),
    ("train: unknown key", lambda d: ["train", _train_config(d, model__wings=2)], "wings"),
    ("train: wrong type", lambda d: ["train", _train_config(d, schedule__epochs="three")], "epochs"),
    (
        "train: file apart from key",
        lambda d: ["train", _train_config(d, model__block={"name": "nope"})],
        "train.yaml: model.block.name: expected one of",
    ),
    (
        "train: bad cpu_threads",
        lambda d: ["train", _train_config(d, cpu_threads=0)],
        "train.yaml: cpu_threads: expected an integer >= 1",
    ),
    ("train: missing file", lambda d: ["train", str(d / "absent.yaml")], "no such file"),
    (
        "train: missing dataset",
        lambda d: ["train", _train_config(d, data=str(d / "gone.h5"))],
        "pose cache not found",
    ),
    (
        "train: corrupt HDF5",
        lambda d: ["train", _train_config(d, data=_corrupt_h5(d))],
        "not a readable pose cache",
    ),
    (
        "designs: malformed YAML",
        lambda d: ["designs", "--space", _file(d, "s.yaml", "base: [1\n")],
        "malformed YAML",
    ),
    (
        "designs: unknown block",
        lambda d: [
            "designs",
            "--space",
            _file(d, "s.yaml", "base: {stacks: 1}\ndesigns:\n  x: {block: {name: warp_drive}}\n"),
        ],
        "warp_drive",
    ),
    (
        "eval-preds: missing annotations",
        lambda d: ["eval-preds", "--annotations", str(d / "valid.h5"), "--predictions", _corrupt_h5(d)],
        "valid.h5",
    ),
    (
        "eval-preds: corrupt predictions",
        lambda d: ["eval-preds", "--annotations", _valid_h5(d), "--predictions", _corrupt_h5(d)],
        ".h5",
    ),
    (
        "data bench: corrupt cache",
        lambda d: ["data", "bench", "--cache", _corrupt_h5(d), "--n", "2"],
        "corrupt.h5",
    ),
    ("data synth: no persons", lambda d: ["data", "synth", "--out", str(d / "s.h5"), "--n", "0"], "0"),
    (
        "data prepare: missing MPII folder",
        lambda d: ["data", "prepare", "--mpii-dir", str(d / "mpii"), "--out", str(d / "c.h5")],
        "mpii",
    ),
    ("pareto: no such study", lambda d: ["pareto", "nostudy", "--storage", _sqlite(d)], "no such file"),
]


@pytest.mark.parametrize("make_args, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, monkeypatch, make_args, expected):
    monkeypatch.chdir(tmp_path)  # nothing a case writes by default (studies/, reports/) lands in the repo
    args = make_args(tmp_path)
    args, env = args if isinstance(args, tuple) else (args, {})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, args)
    # besides the line saying which study a command opened (hpo.study_location), one error line
    lines = [line for line in result.output.strip().splitlines() if not line.startswith("study '")]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0]
    assert "Traceback" not in result.output and "hunter2-pw" not in result.output
    assert not (tmp_path / "pwned").exists() and not (ROOT / "pwned").exists()


def test_at_least_twenty_malformed_inputs_across_every_command():
    assert len(CASES) >= 20
    assert {c[0].split(":")[0].split()[0] for c in CASES} >= {
        "run",
        "worker",
        "train",
        "designs",
        "eval-preds",
        "data",
    }


def test_debug_shows_the_traceback(tmp_path):
    preset = _broken_preset(tmp_path, "objectives: [pckh\n")
    result = runner.invoke(app, ["--debug", "run", preset])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)
    assert "malformed YAML" in str(result.exception)


def test_no_yaml_is_read_without_the_safe_loader():
    """Nor eval/exec, nor pickle, nor a torch.load that may unpickle code (checkpoints hold
    tensors and plain data)."""
    unsafe = re.compile(
        r"yaml\.(unsafe_load|full_load|load_all|load)\s*\(|Loader\s*=\s*yaml\.(Loader|FullLoader|UnsafeLoader)"
        r"|(?<![.\w])(eval|exec)\s*\(|\bpickle\.loads?\(|weights_only\s*=\s*False"
    )
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for folder in ("hourglass", "hpo", "scripts")
        for p in sorted((ROOT / folder).rglob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if unsafe.search(line)
    ]
    assert offenders == []


# ---- a fuzz of presets: whatever the YAML, load_preset gives a preset or one ConfigError ----

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=12)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_KEYS = st.sampled_from(
    [
        "objectives",
        "sampler",
        "pruner",
        "budget",
        "data",
        "space",
        "schedule",
        "storage",
        "seed",
        "warm_start",
        "device",
        "name",
        "unknown_key",
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(_KEYS, _VALUES, min_size=1, max_size=3))
def test_fuzzed_presets_load_or_fail_with_one_config_error(tmp_path, changes):
    base = yaml.safe_load(Path(_preset(tmp_path)).read_text())
    path = tmp_path / "fuzz.yaml"
    try:
        path.write_text(yaml.safe_dump({**base, **changes}))
    except (yaml.YAMLError, UnicodeEncodeError):
        return  # not representable as YAML text
    try:
        load_preset(path)
    except ConfigError as exc:
        assert "\n" not in str(exc).strip()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("{}[]:,-!&*#|>'\"\n abc12.")), max_size=60))
def test_fuzzed_yaml_text_loads_or_fails_with_one_config_error(tmp_path, text):
    path = tmp_path / "p.yaml"
    _preset(tmp_path)
    path.write_text(text)
    try:
        load_preset(path)
    except ConfigError as exc:
        assert "\n" not in str(exc).strip()


def test_a_torch_checkpoint_is_not_a_config(tmp_path):
    """A binary file given as a config is reported, not executed or dumped."""
    path = tmp_path / "model.yaml"
    torch.save({"x": torch.zeros(2)}, path)
    result = runner.invoke(app, ["train", str(path)])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
