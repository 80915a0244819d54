#!/usr/bin/env bash
# One-off, after the branches that restyle the tree are merged: bring every Python file to
# the ruff style configured in pyproject.toml ([tool.ruff]), then check that nothing is
# left. Values do not change: ruff format rewrites layout only, ruff check --fix applies
# safe fixes (import order, pyupgrade), scripts/wrap_long_strings.py splits long string
# literals into adjacent ones. What it prints at the end needs a hand (long comments and
# docstrings).
set -euo pipefail
cd "$(dirname "$0")/.."
ruff format .
ruff check --fix --exit-zero .
python scripts/wrap_long_strings.py $(git ls-files '*.py')
ruff format .
ruff check --fix --exit-zero .
ruff format --check .
ruff check .
