#!/usr/bin/env bash
# The CUDA path's acceptance run: at most 6 minutes on one H100 or H200.
#
#   bash scripts/gpu_acceptance.sh                       # on the GPU machine (python3 with torch)
#   bash scripts/gpu_acceptance.sh --device cpu --quick  # the same steps at CI size (CI runs this)
#   bash scripts/gpu_acceptance.sh --throughput 1,2,4    # also study throughput for K workers per GPU
#
# The GPU machine has no network and no optuna, optuna-dashboard, albumentations or plotly:
# scripts/gpu_wheels.sh downloads them beforehand into .whl/ (ignored by git; it travels
# with the tree, e.g. the device tool's `carry: [".whl"]`). They are installed from there
# with --no-index into a folder of their own ($HPO_WHEEL_SITE, default /tmp/hpo-site) that
# goes on PYTHONPATH, so the machine's own packages (torch, numpy, opencv) stay as they are.
# Leaves <out>/acceptance.json (default acceptance/) and prints a summary; all other
# arguments go to scripts/gpu_acceptance.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1
if ! "$PY" -c "import optuna, optuna_dashboard, albumentations, plotly" 2>/dev/null; then
  if [ ! -d .whl ]; then
    echo "error: optuna, optuna-dashboard, albumentations or plotly is missing and there is no .whl/ folder;" \
         "run scripts/gpu_wheels.sh on a machine with the package index first" >&2
    exit 2
  fi
  site=${HPO_WHEEL_SITE:-/tmp/hpo-site}
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
exec "$PY" scripts/gpu_acceptance.py "$@"
