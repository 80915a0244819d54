"""hpo: the Optuna side of hourglass-hpo (search spaces, studies, pruning, reports, CLI)."""

__version__ = "0.1.0"

# The environment variable naming the storage URL (keeps a password out of the process list);
# here, in the package root, so that the CLI can name it without importing the workers.
STORAGE_ENV = "HPO_STORAGE"
