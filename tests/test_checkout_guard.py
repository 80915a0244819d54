"""The conftest guard that fails a test which writes into the checkout."""

import os
import subprocess

from tests.conftest import checkout_files


def test_guard_sees_a_new_a_changed_and_a_removed_file_but_not_caches(tmp_path):
    # tmp_path is no git clone: every file there is watched
    (tmp_path / "hpo").mkdir()
    (tmp_path / "hpo" / "a.py").write_text("a")
    (tmp_path / "gone.txt").write_text("x")
    before = checkout_files(tmp_path)
    assert set(before) == {os.path.join("hpo", "a.py"), "gone.txt"}
    for cache in ("__pycache__", ".pytest_cache", "x.egg-info"):
        (tmp_path / "hpo" / cache).mkdir()
        (tmp_path / "hpo" / cache / "c").write_text("c")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr")
    assert checkout_files(tmp_path) == before
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "demo.html").write_text("<html>")
    os.utime(tmp_path / "hpo" / "a.py", ns=(1, 1))
    (tmp_path / "gone.txt").unlink()
    after = checkout_files(tmp_path)
    touched = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert touched == {os.path.join("reports", "demo.html"), os.path.join("hpo", "a.py"), "gone.txt"}


def test_files_git_tracks_are_left_to_git(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "tracked.py").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "tracked.py"], check=True)
    (tmp_path / "new.html").write_text("x")
    assert set(checkout_files(tmp_path)) == {"new.html"}
