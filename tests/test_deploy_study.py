"""The latency objective in a real study: measured once per design, stored, on the front."""

import pytest

from hpo.pareto import objective_names, pareto_rows
from hpo.preset import load_preset
from hpo.record import LATENCY, MODEL_HASH
from hpo.study import open_study, run_study

pytestmark = pytest.mark.slow

SPACE = """
base: {model: {stacks: 1, features: 16, depth: 1, input_size: 32, stem: {channels: 4}}}
params:
  model.stem.name: {choices: [conv7, patch4]}
  schedule.lr: {choices: [5.0e-3, 1.0e-3]}
"""


def test_latency_is_an_objective_measured_once_per_design(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE)
    path = tmp_path / "deploy.yaml"
    path.write_text(f"""
objectives: [pckh, latency, params]
sampler: {{name: random}}
pruner: {{name: none}}
budget: {{trials: 3}}
data: synthetic:48:32:0
space: {tmp_path / "space.yaml"}
schedule: {{epochs: 1, batch_size: 8, milestones: []}}
storage: sqlite:///{tmp_path / "deploy.db"}
device: cpu
""")
    preset = load_preset(path)
    study = open_study(preset)
    for stem, lr in (("conv7", 5e-3), ("conv7", 1e-3), ("patch4", 5e-3)):  # the first two: one design
        study.enqueue_trial({"model.stem.name": stem, "schedule.lr": lr})
    study = run_study(preset, progress=False).study
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert objective_names(study) == ["pckh", "latency", "params"]
    for t in trials:
        assert t.values[1] == t.user_attrs[LATENCY] > 0
    assert (
        trials[0].user_attrs[MODEL_HASH]
        == trials[1].user_attrs[MODEL_HASH]
        != trials[2].user_attrs[MODEL_HASH]
    )
    assert trials[1].user_attrs[LATENCY] == trials[0].user_attrs[LATENCY]  # cached, not measured again
    assert all(row[LATENCY] > 0 for row in pareto_rows(study))
