#!/usr/bin/env bash
# Download, on a machine with the package index, the wheels that scripts/gpu_acceptance.sh
# installs on the GPU machine (no network there): optuna, optuna-dashboard, albumentations,
# plotly and what they need that the GPU image lacks, for its python (CPython 3.12, x86-64
# Linux, torch 2.11 with numpy, scipy, opencv, pyyaml already installed).
#
#   bash scripts/gpu_wheels.sh [DEST]          # default DEST: .whl (ignored by git)
#
# pip resolves the dependencies for that target; wheels of packages the image already has
# are then removed again (two versions of one package on PYTHONPATH break the install, and
# the folder must stay small: it travels with the working tree, 64 MiB at most).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.whl}
PY=${PYTHON:-python3}
mkdir -p "$dest"
# versions pinned as in pyproject.toml
pins=(optuna==5.0.0 optuna-dashboard==0.21.0 albumentations==2.0.8 plotly==7.1.0)
platforms=()
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
"$PY" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
  --platform manylinux2014_x86_64 --platform linux_x86_64 "${platforms[@]}" --platform any -d "$dest" "${pins[@]}"
# already on the GPU image (KINDS.md's package list): keep its versions
present="numpy scipy opencv_python_headless opencv_python pyyaml PyYAML typing_extensions packaging tqdm
  jinja2 MarkupSafe markupsafe narwhals scikit_learn joblib threadpoolctl colorama sympy mpmath"
for name in $present; do
  rm -f "$dest/$name"-[0-9]*.whl "$dest/$(echo "$name" | tr '[:upper:]' '[:lower:]')"-[0-9]*.whl
done
ls "$dest"
du -sh "$dest"
