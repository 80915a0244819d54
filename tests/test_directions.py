"""hpo.directions: the one place a maximized objective's sign is flipped."""

import math

import numpy as np
import pytest
from optuna.study import StudyDirection

from hpo.directions import as_losses, maximized, signs
from hpo.pareto import hypervolume
from hpo.pruning import nondominated_ranks


def test_losses_flip_maximized_objectives_and_make_nan_the_worst():
    dirs = ["maximize", StudyDirection.MINIMIZE]
    assert as_losses([[70.0, 5.0], [float("nan"), 2.0]], dirs) == [[-70.0, 5.0], [math.inf, 2.0]]
    assert maximized(StudyDirection.MAXIMIZE) and not maximized("minimize")
    with pytest.raises(ValueError, match="direction must be"):
        maximized("up")
    with pytest.raises(ValueError, match="one value per direction"):
        as_losses([[1.0]], dirs)


def test_the_pruner_and_the_hypervolume_agree_on_which_point_is_better():
    """Both read the same losses: the point the pruner ranks first is the one whose
    hypervolume is larger (PCKh maximized, params minimized)."""
    dirs = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    good, bad = [80.0, 10.0], [60.0, 20.0]
    assert nondominated_ranks([good, bad], dirs) == [0, 1]
    ref = [0.0, 30.0]
    assert hypervolume(np.array([good]), ref, dirs) == pytest.approx(80.0 * 20.0)
    assert hypervolume(np.array([good]), ref, dirs) > hypervolume(np.array([bad]), ref, dirs)


def test_signs_make_losses_as_as_losses_does():
    dirs = [StudyDirection.MAXIMIZE, "minimize"]
    values = [[70.0, 5.0], [3.0, 2.0]]
    assert (np.array(values) * np.array(signs(dirs))).tolist() == as_losses(values, dirs)
