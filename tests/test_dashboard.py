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
