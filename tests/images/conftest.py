"""Shared fixtures of the GPU images' CPU checks (tests/images/run.sh runs each image's folder in
the CPU virtual environment installed from that image's lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "batch-images"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Nothing is fetched from a model hub: the models are built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def node(*args: str) -> str:
    out = subprocess.run(["node", "--import", "tsx", *args], cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout


@pytest.fixture(scope="session")
def outputs(tmp_path_factory) -> dict:
    """This project's real outputs (tests/images/make_fixtures.ts): RL Parquet, serve commands, requests."""
    return json.loads(node("tests/images/make_fixtures.ts", str(tmp_path_factory.mktemp("outputs"))))


@pytest.fixture(scope="session")
def published_verl() -> dict:
    """The verl overrides the launcher renders for the published config (tests/python/render_verl.ts)."""
    return json.loads(node("tests/python/render_verl.ts", "examples/openmmreasoner.run.json"))
