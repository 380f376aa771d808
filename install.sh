#!/usr/bin/env bash
# Install streamal and its two apps into ./.venv (idempotent). Uses constraints.txt, which pins
# the CPU build of torch these machines carry; on a GPU node, drop `-c constraints.txt`.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt \
    -e ".[dev,mpi]" -e "apps/diffraction[test]" -e apps/nas
