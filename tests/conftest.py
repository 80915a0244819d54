import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Tiny test models: one intra-op thread is faster, and immune to a loaded 2-core machine.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
SHARED_MPII = ROOT.parent / "shared" / "mpii"


@pytest.fixture
def mpii_dir() -> Path:
    if not SHARED_MPII.is_dir():
        pytest.skip(f"real MPII annotation files not found at {SHARED_MPII}")
    return SHARED_MPII


@pytest.fixture
def one_thread():
    """For tests that change the thread count (the bench's probe): restore it afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Tests write only under temporary paths: every test is checked for files it added, changed
# or removed in the checkout (caches, hidden folders and virtual environments aside). Files
# git tracks are left out, so that editing the sources while the suite runs is no failure.
_NOT_CHECKED = {"__pycache__", "node_modules"}


@functools.cache
def _tracked(root: Path) -> frozenset[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):  # no git, or not a clone: every file is watched
        return frozenset()
    return frozenset(os.path.normpath(p) for p in out.decode().split("\0") if p)


def checkout_files(root: Path = ROOT) -> dict[str, int]:
    """Every untracked file of the checkout that a test could write by mistake, with its mtime."""
    tracked = _tracked(root)
    files: dict[str, int] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _NOT_CHECKED
            and not d.endswith(".egg-info")
            and not (Path(folder) / d / "pyvenv.cfg").exists()
        ]
        for name in names:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            if rel in tracked:
                continue
            try:
                files[rel] = os.stat(path).st_mtime_ns
            except FileNotFoundError:  # removed while we looked
                pass
    return files


@pytest.fixture(autouse=True)
def _writes_only_under_tmp(request) -> Iterator[None]:
    before = checkout_files()
    yield
    after = checkout_files()
    touched = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    if touched:
        pytest.fail(
            f"{request.node.nodeid} wrote into the checkout ({ROOT}): {', '.join(touched[:5])}"
            " (tests write only under tmp_path)",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _our_loggers_enabled(monkeypatch):
    """The benchmark rivals' libraries (SMAC, Syne Tune) reconfigure logging when they run and
    can disable loggers that existed before; each test starts with ours as a process has them."""
    import logging

    if logging.root.level > logging.WARNING:  # SMAC sets the root logger's level
        monkeypatch.setattr(logging.root, "level", logging.WARNING)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and name.split(".")[0] in ("hourglass", "hpo"):
            monkeypatch.setattr(logger, "disabled", False)
            monkeypatch.setattr(logger, "propagate", True)
