"""hpo: the Optuna side of hourglass-hpo (search spaces, studies, pruning, reports, CLI)."""

__version__ = "0.1.0"
