#!/usr/bin/env bash
# Python tests (dataset loaders, reward glue): a virtual environment with pinned packages, then pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q -r tests/python/requirements.txt
.venv/bin/python -m pytest tests/python -q
