import json
import subprocess
import sys
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from hourglass.errors import ConfigError
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
    before = study._storage.get_study_system_attrs(study._study_id)
    publish_figures(study)
    assert study._storage.get_study_system_attrs(study._study_id) == before


def test_before_the_first_complete_trial_only_curves_and_costs_are_published(tmp_path):
    study, _ = make_study(tmp_path, trials=[(None, {}, 20.0, "PRUNED", 2)])
    assert publish_figures(study) == ["hpo-learning-curves", "hpo-cost-model"]


def test_a_busy_port_is_a_one_line_error(tmp_path):
    _, url = make_study(tmp_path, trials=[])
    with serving(url) as server:
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{server.server_port}"):
            make_server(url, "127.0.0.1", server.server_port)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install -y chromium)")
def test_screenshot_of_the_pareto_page(tmp_path):
    cv2 = pytest.importorskip("cv2")
    make_study(tmp_path)
    out = tmp_path / "shot.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "dashboard_screenshot.py"), str(tmp_path / "demo.db"),
         "--out", str(out), "--budget-ms", "10000"],
        capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    image = cv2.imread(str(out))
    assert image.shape == (1000, 1400, 3)
    colours = np.unique(image.reshape(-1, 3), axis=0)
    assert image.std() > 20 and len(colours) > 200  # a rendered page, not a blank canvas
    b, g, r = (image[..., i].astype(int) for i in range(3))
    red = (r > 150) & (g < 110) & (b < 110)  # the Pareto plot's red "best trial" colour bar and points
    assert red.sum() > 1000 and np.argwhere(red)[:, 0].max() < 800  # drawn in the top panel


def _request(server, method, path, headers=None):
    req = urllib.request.Request(f"http://127.0.0.1:{server.server_port}{path}", method=method, headers=headers or {})
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
        status, _ = _request(server, "POST", f"/api/studies/{study_id}/rename", {"Content-Type": "application/json"})
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
    result = CliRunner().invoke(app, ["dashboard", "demo", "--storage", url, "--host", "0.0.0.0", "--no-publish"])
    assert result.exit_code == 0, result.output
    assert "no authentication" in result.output and "SSH tunnel" in result.output and "(read-only)" in result.output
    assert hpo.dashboard.is_loopback("127.0.0.1") and hpo.dashboard.is_loopback("::1")
    assert not hpo.dashboard.is_loopback("0.0.0.0") and not hpo.dashboard.is_loopback("10.1.2.3")
