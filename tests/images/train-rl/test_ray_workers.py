"""The run's settings reach verl's Ray workers on a cluster started by `ray start`, as on a multi-node
job: a Ray head started apart from verl (without the settings in its environment), then verl's own
run_ppo (its ray.init with the composed runtime_env) and a task runner in a Ray worker that reads them
and asks recipe_reward.py which preset it uses."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import ray
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import verl
from conftest import ROOT

REWARD = ROOT / "batch-images" / "train-rl" / "src" / "recipe_reward.py"
KEYS = ["RECIPE_VERIFY_PRESET", "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"]


def composed(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head --block` with an environment that lacks the run's settings (as a node's Ray
    head would if only the driver had them), in its own process group and temp folder, stopped by its
    group id afterwards. Yields its address."""
    env = {k: v for k, v in os.environ.items() if k not in KEYS}
    env.update(RAY_USAGE_STATS_ENABLED="0", RECIPE_VERIFY_CMD=f"node {ROOT / 'bin' / 'recipe.mjs'} verify")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    ray_bin = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen(
        [sys.executable, ray_bin, "start", "--head", "--block", "--port=0", "--num-cpus=2",
         "--include-dashboard=false", f"--temp-dir={temp}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    printed = []
    address = None
    for line in head.stdout:  # ends if the head exits
        printed.append(line)
        m = re.search(r"--address='([^']+)'", line)
        if m:
            address = m.group(1)
            break
    try:
        assert address, "".join(printed)
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def worker_view(config, record: Path) -> dict:
    """verl's run_ppo with a task runner that records what a Ray worker sees."""
    from verl.trainer.main_ppo import run_ppo

    class Probe:  # defined here, so that Ray ships it by value to the worker
        def run(self, config):
            import importlib.util

            spec = importlib.util.spec_from_file_location("recipe_reward", str(REWARD))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            seen = {k: os.environ.get(k) for k in KEYS}
            seen["reward_preset"] = module.Verifier().preset
            seen["pid"] = os.getpid()
            record.write_text(json.dumps(seen))

    try:
        run_ppo(config, task_runner_class=ray.remote(num_cpus=1)(Probe))
    finally:
        ray.shutdown()
    return json.loads(record.read_text())


def test_verls_ray_workers_read_the_runs_verifier_preset_and_interfaces(published_verl, ray_head, tmp_path, monkeypatch):
    for k in KEYS:
        monkeypatch.delenv(k, raising=False)
    # The launcher sets RAY_ADDRESS=auto for verl on a multi-node job; here, this test's own head.
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    config = composed(published_verl["overrides"])

    seen = worker_view(config, tmp_path / "seen.json")

    assert seen["pid"] != os.getpid()
    assert seen["RECIPE_VERIFY_PRESET"] == published_verl["verifyPreset"] == "recipe"
    assert seen["reward_preset"] == "recipe"
    assert seen["NCCL_SOCKET_IFNAME"] == "^lo,docker,ecs"
    assert seen["GLOO_SOCKET_IFNAME"] == "eth0"


def test_without_the_runtime_env_a_worker_falls_back_to_the_strict_preset(published_verl, ray_head, tmp_path, monkeypatch):
    """The defect this guards against: the driver alone has the preset; the reward falls back to strict."""
    monkeypatch.setenv("RECIPE_VERIFY_PRESET", published_verl["verifyPreset"])
    monkeypatch.setenv("RAY_ADDRESS", ray_head)
    config = composed([o for o in published_verl["overrides"] if "runtime_env" not in o])

    seen = worker_view(config, tmp_path / "seen.json")

    assert seen["RECIPE_VERIFY_PRESET"] is None
    assert seen["reward_preset"] == "strict"
