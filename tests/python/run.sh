#!/usr/bin/env bash
# Python tests (dataset loaders, reward glue): a virtual environment with pinned packages, then pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/python -m pip install -q -r tests/python/requirements.txt
# The verl the train-rl image's lock pins, for composing its Hydra config (no torch: --no-deps).
.venv/bin/python -m pip install -q --no-deps "verl==$(sed -n 's/^verl==\([0-9.]*\).*/\1/p' batch-images/train-rl/requirements.lock)"
.venv/bin/python -m pytest tests/python -q
