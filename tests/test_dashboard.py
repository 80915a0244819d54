import json
import os
import subprocess
import sys
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from hourglass.errors import ConfigError
from hpo import optuna_compat as compat
from hpo.dashboard import FIGURE_IDS, make_server, publish_figures, study_url
from hpo.pareto import pareto_trials
from tests.study_factory import make_study

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def serving(url):
    server = make_server(url, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()


def _get(server, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}{path}", timeout=30) as resp:
        return resp.status, resp.read()


def test_api_lists_the_study_its_trials_and_the_published_figures(tmp_path):
    study, url = make_study(tmp_path)
    assert publish_figures(study) == list(FIGURE_IDS)
    with serving(url) as server:
        status, body = _get(server, "/api/studies")
        (summary,) = json.loads(body)["study_summaries"]
        assert status == 200 and summary["study_name"] == "demo"
        assert summary["directions"] == ["maximize", "minimize", "minimize"]
        status, body = _get(server, f"/api/studies/{summary['study_id']}")
        detail = json.loads(body)
        assert [t["number"] for t in detail["trials"]] == [t.number for t in study.trials]
        assert {t["number"] for t in detail["best_trials"]} == {t.number for t in pareto_trials(study)}
        assert detail["objective_names"] == ["pckh", "params", "train_time"]
        graphs = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
        assert set(graphs) == set(FIGURE_IDS)
        assert len(graphs["hpo-learning-curves"]["data"]) == len(study.trials)
        page_url = study_url(server, study)
        assert page_url == f"http://127.0.0.1:{server.server_port}/dashboard/studies/{summary['study_id']}"
        status, body = _get(server, page_url.split(str(server.server_port), 1)[1])
        assert status == 200 and b"<html" in body.lower()


def test_republishing_overwrites_instead_of_piling_up(tmp_path):
    study, _ = make_study(tmp_path)
    publish_figures(study)
    before = compat.study_storage(study).get_study_system_attrs(compat.study_id(study))
    publish_figures(study)
    assert compat.study_storage(study).get_study_system_attrs(compat.study_id(study)) == before


def test_before_the_first_complete_trial_only_curves_and_costs_are_published(tmp_path):
    study, _ = make_study(tmp_path, trials=[(None, {}, 20.0, "PRUNED", 2)])
    assert publish_figures(study) == ["hpo-learning-curves", "hpo-cost-model"]


def test_a_busy_port_is_a_one_line_error(tmp_path):
    _, url = make_study(tmp_path, trials=[])
    with serving(url) as server:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{server.server_port}"):
            make_server(url, "127.0.0.1", server.server_port)


def _served_by_hpo_dashboard(url: str, cwd: Path) -> tuple[subprocess.Popen, str]:
    """``hpo dashboard demo`` as a user starts it, on a free port; returns it and the study page."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo", "dashboard", "demo", "--storage", url, "--port", "0"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    for line in proc.stdout:  # "open http://127.0.0.1:PORT/dashboard/studies/1  (Ctrl-C stops it)"
        seen.append(line)
        if line.startswith("open "):
            return proc, line.split()[1]
    proc.wait(timeout=30)
    raise AssertionError(f"hpo dashboard exited {proc.returncode}: {''.join(seen)[-2000:]}")


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium; .ci/run does)"
)
def test_the_study_page_draws_the_front_and_our_figures_without_console_errors(tmp_path, capsys):
    pytest.importorskip("websocket", reason="needs websocket-client (the test extra)")
    cv2 = pytest.importorskip("cv2")
    sys.path.insert(0, str(ROOT / "scripts"))
    from dashboard_screenshot import inspect_page

    _, url = make_study(tmp_path)  # a finished study, trials recorded as hpo.objective records them
    proc, page = _served_by_hpo_dashboard(url, tmp_path)
    try:
        report = inspect_page(
            page, tmp_path / "dashboard.png", chromium=str(CHROMIUM), figures=1 + len(FIGURE_IDS)
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with capsys.disabled():
        print(f"\ndashboard screenshot: {report.screenshot}")
    assert not report.errors, report.errors
    titles = [f["title"] for f in report.figures]
    ours = ["Learning curves", "Hypervolume history", "Cost model"]
    assert titles.count("Pareto Front") == 1, titles  # the dashboard's own plot
    for title in ours:
        assert sum(t.startswith(title) for t in titles) == 1, titles
    image = cv2.imread(str(report.screenshot))
    for fig in report.figures:
        if not fig["title"].startswith((*ours, "Pareto Front")):
            continue
        assert fig["traces"] > 0 and fig["width"] > 200 and fig["height"] > 200, fig
        x, y, w, h = (int(fig[k]) for k in ("x", "y", "width", "height"))
        crop = image[y : y + h, x : x + w]
        ink = (crop.min(axis=2) < 200).mean()  # pixels that are not white or near it
        colours = len(np.unique(crop.reshape(-1, 3), axis=0))
        assert ink > 0.01 and colours > 50, (fig["title"], ink, colours)
    b, g, r = (image[..., i].astype(int) for i in range(3))
    assert ((r > 150) & (g < 110) & (b < 110)).sum() > 500  # the Pareto set's red is drawn somewhere


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium; .ci/run does)"
)
def test_the_page_check_sees_console_errors_and_uncaught_exceptions(tmp_path):
    pytest.importorskip("websocket", reason="needs websocket-client (the test extra)")
    sys.path.insert(0, str(ROOT / "scripts"))
    from dashboard_screenshot import inspect_page

    page = "data:text/html,<p>x</p><script>console.error('boom'); notDefined();</script>"
    report = inspect_page(page, tmp_path / "x.png", chromium=str(CHROMIUM), figures=0, timeout_s=5)
    assert report.errors[0] == "console.error: boom" and "notDefined is not defined" in report.errors[1]
    assert report.figures == [] and report.screenshot.stat().st_size > 0


def _request(server, method, path, headers=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{server.server_port}{path}", method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_the_dashboard_is_read_only_unless_writes_are_allowed(tmp_path):
    """optuna-dashboard has no authentication: DELETE/rename through its API is refused."""
    import optuna

    study, url = make_study(tmp_path)
    study_id = study._storage.get_study_id_from_name("demo")
    with serving(url) as server:
        status, body = _request(server, "DELETE", f"/api/studies/{study_id}")
        assert status == 403 and b"--allow-writes" in body
        status, _ = _request(
            server, "POST", f"/api/studies/{study_id}/rename", {"Content-Type": "application/json"}
        )
        assert status == 403
        assert _request(server, "GET", f"/api/studies/{study_id}")[0] == 200
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["demo"]
    assert len(optuna.load_study(study_name="demo", storage=url).trials) == len(study.trials)

    server = make_server(url, "127.0.0.1", 0, allow_writes=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert _request(server, "DELETE", f"/api/studies/{study_id}")[0] == 204
    finally:
        server.shutdown()
        server.server_close()
    assert optuna.get_all_study_summaries(url) == []


def test_static_files_are_served_to_a_client_that_sends_no_accept_encoding(tmp_path):
    import http.client

    _, url = make_study(tmp_path)
    with serving(url) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        conn.putrequest("GET", "/static/bundle.js", skip_accept_encoding=True)  # as curl sends it
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 200 and len(resp.read()) > 10_000


def test_a_non_loopback_host_gets_a_warning_about_authentication(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import hpo.dashboard
    from hpo.cli import app

    _, url = make_study(tmp_path)

    class NoServe:
        server_address, server_port = ("0.0.0.0", 8080), 8080

        def serve_forever(self):
            pass

        def server_close(self):
            pass

    monkeypatch.setattr(hpo.dashboard, "make_server", lambda *a, **k: NoServe())
    result = CliRunner().invoke(
        app, ["dashboard", "demo", "--storage", url, "--host", "0.0.0.0", "--no-publish"]
    )
    assert result.exit_code == 0, result.output
    assert (
        "no authentication" in result.output
        and "SSH tunnel" in result.output
        and "(read-only)" in result.output
    )
    assert hpo.dashboard.is_loopback("127.0.0.1") and hpo.dashboard.is_loopback("::1")
    assert not hpo.dashboard.is_loopback("0.0.0.0") and not hpo.dashboard.is_loopback("10.1.2.3")
