import math

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from scipy.stats import spearmanr

from hourglass.errors import ConfigError
from hpo.pareto import default_reference_point, hypervolume_history, pareto_trials
from hpo.report import best_predictor, build_report, cost_model_figure, spearman, write_report
from tests.study_factory import TRIALS, make_study, trial_attrs


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("report"))[0]


@pytest.fixture(scope="module")
def figures(study):
    return build_report(study)


def test_report_has_every_figure(figures):
    assert set(figures) == {"pareto_2d", "pareto_3d", "learning_curves", "hypervolume", "cost_model"}


def test_pair_fronts_show_the_pareto_set_and_each_pair_front(study, figures):
    fig = figures["pareto_2d"]
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["params vs pckh", "train_time vs pckh", "train_time vs params"]
    front = sorted(t.values[0] for t in pareto_trials(study))
    marked = [tr for tr in fig.data if tr.name == "Pareto set"]
    assert len(marked) == 3 and all(sorted(tr.x) == pytest.approx(front) for tr in marked[:2])
    # pckh/params staircase: increasing PCKh must cost more parameters, or it is not a front
    stair = next(tr for tr in fig.data if tr.name == "2-D front")
    assert list(stair.x) == sorted(stair.x) and list(stair.y) == sorted(stair.y)
    assert stair.line.shape == "vh"


def test_learning_curves_show_every_trial_and_mark_pruned(study, figures):
    traces = figures["learning_curves"].data
    assert len(traces) == len(study.trials)  # every trial of the factory has a curve
    by_name = {}
    for tr in traces:
        by_name.setdefault(tr.legendgroup, []).append(tr)
    pruned = by_name["PRUNED (dash), x where cut"]
    assert len(pruned) == 2 and all(tr.line.dash == "dash" and tr.opacity >= 0.6 for tr in pruned)
    assert all(tr.marker.symbol[-1] == "x" and tr.marker.size[-1] > tr.marker.size[0] for tr in pruned)
    thick = by_name["Pareto set (red, thick)"]
    assert len(thick) == len(pareto_trials(study)) and all(tr.line.width == 3 for tr in thick)
    # every line style has exactly one legend entry
    legend = [tr.name for tr in traces if tr.showlegend]
    assert sorted(legend) == sorted(by_name) and len(legend) == len(set(legend))
    longest = max(traces, key=lambda tr: len(tr.x))
    assert list(longest.x) == [1, 2, 3, 4, 5, 6]


def test_3d_front_colours_match_the_legend_and_leave_room_for_titles(figures):
    fig = figures["pareto_3d"]
    colours = {tr.name: tr.marker.color for tr in fig.data}
    assert colours["Pareto set"] == "#d62728" and all(
        isinstance(c, str) for c in colours.values()
    )  # no scale
    assert fig.layout.scene.xaxis.title.text.startswith("PCKh") and fig.layout.margin.l >= 20
    assert fig.layout.scene.camera.eye.x > 1.25  # plotly's default eye clips the axis titles


def test_hypervolume_figure_plots_the_history(study, figures):
    (trace,) = figures["hypervolume"].data
    assert list(trace.y) == pytest.approx(hypervolume_history(study, default_reference_point(study)))
    assert "reference point: pckh=0" in figures["hypervolume"].layout.title.text


def test_cost_model_titles_carry_spearman_of_the_data(study, figures):
    titles = {a.text.split(":")[0]: a.text for a in figures["cost_model"].layout.annotations}
    assert set(titles) == {"params", "flops", "layers", "ops_per_step"}
    timed = [t for t in study.trials if t.user_attrs.get("wall_time_s")]
    secs = [t.user_attrs["wall_time_s"] / t.user_attrs["epochs_run"] for t in timed]
    for key, title in titles.items():
        rho = spearmanr([t.user_attrs[key] for t in timed], secs).statistic
        assert f"ρ = {rho:.2f} (n={len(timed)})" in title
    assert "ρ = 1.00" in titles["layers"]  # the factory's time is a monotone function of layer count
    # six COMPLETE trials: rho per panel, but no verdict
    assert "too few to tell which cost predicts the time (6 complete trials, 8 needed)" in (
        figures["cost_model"].layout.title.text
    )
    assert "wall s/epoch" in figures["cost_model"].layout.title.text


def test_cost_model_names_the_best_predictor_from_eight_complete_trials(tmp_path):
    more = [
        (None, {"features": f, "stacks": s}, 50.0 + f / 8 + s, "COMPLETE", 6) for f, s in ((16, 2), (64, 1))
    ]
    study, _ = make_study(tmp_path, trials=TRIALS + more)
    title = cost_model_figure(study).layout.title.text
    assert "wall time per epoch follows conv + norm layers best (ρ = 1.00); then" in title


def test_best_predictor_in_words():
    assert best_predictor({"params": 0.5, "layers": 0.9, "flops": float("nan")}, complete=8) == (
        "wall time per epoch follows conv + norm layers best (ρ = 0.90); then parameters 0.50"
    )
    assert best_predictor({"params": 0.5, "layers": 0.9}, complete=4).startswith("too few to tell")
    assert "too few" in best_predictor({"params": float("nan")}, complete=20)


def test_spearman_is_nan_when_undefined():
    assert math.isnan(spearman([1, 2], [3, 4]))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert spearman([1, 2, 3, 4], [10, 20, 25, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_write_report_is_one_offline_html(study, tmp_path):
    path = write_report(study, tmp_path / "sub" / "demo.html", reference_point=[0.0, 1e5, 30.0])
    text = path.read_text()
    assert text.count("Plotly.newPlot") == 5
    assert text.count("plotly.js v") == 1 and '<script src="http' not in text  # inlined once, no network
    assert "<td>baseline</td>" in text and "<td>dwsep_mid</td>" in text and "Study demo" in text
    assert "params=1e+05" in text and "train_time=30" in text
    complete = sum(t.state == TrialState.COMPLETE for t in study.trials)
    assert f"{complete} COMPLETE" in text
    assert (
        "<th>model.block.separable</th>" in text and "<th>stem</th>" not in text
    )  # searched paths, not a pick


def test_report_of_a_study_without_complete_trials_is_an_error(tmp_path):
    empty = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    with pytest.raises(ConfigError, match="expected at least one COMPLETE trial"):
        write_report(empty, tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()
    assert np.isfinite(
        default_reference_point(make_study(tmp_path, "one", trials=[(None, {}, 50.0, "COMPLETE", 2)])[0])
    ).all()


def test_cost_model_counts_running_trials_by_their_curve(tmp_path):
    study, _ = make_study(tmp_path)
    attrs, _ = trial_attrs({"features": 16, "stacks": 2}, 20.0, 2, "RUNNING")
    del attrs["wall_time_s"]  # written when a trial stops; a running one has its curve's clock
    attrs["curve"] = [{**p, "wall_s": 1.5 * p["epoch"]} for p in attrs["curve"]]
    study.add_trial(optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs=attrs))
    timed = sum("wall_time_s" in t.user_attrs for t in study.trials) + 1
    titles = [a.text for a in cost_model_figure(study).layout.annotations]
    assert all(f"(n={timed})" in title for title in titles), titles


def test_latency_panel_shows_latency_against_params_flops_layers():
    from hpo.record import LATENCY

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_user_attr("objectives", ["pckh", LATENCY])
    costs = [(10, 100, 30), (20, 50, 10), (30, 300, 20), (40, 200, 40)]  # params, flops, layers
    for i, (params, flops, layers) in enumerate(costs):
        attrs = {
            "params": params,
            "flops": flops,
            "layers": layers,
            LATENCY: 0.1 * layers,
            "wall_time_s": 2.0,
            "epochs_run": 1,
        }
        study.add_trial(optuna.trial.create_trial(values=[50.0 + i, 0.1 * layers], user_attrs=attrs))
    figures = build_report(study)
    titles = {a.text.split(":")[0]: a.text for a in figures["latency"].layout.annotations}
    assert set(titles) == {"params", "flops", "layers"}
    latency = [0.1 * c[2] for c in costs]
    for k, key in enumerate(("params", "flops", "layers")):
        rho = spearmanr([c[k] for c in costs], latency).statistic
        assert f"ρ = {rho:.2f} (n=4)" in titles[key]
    assert "ρ = 1.00" in titles["layers"] and "ρ = 1.00" not in titles["params"]
    assert "latency (ms, ORT CPU 1 thread)" in figures["pareto_2d"].layout.yaxis.title.text
