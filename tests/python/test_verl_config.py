"""The verl command the train-rl launcher renders, checked against the verl the image installs.

A fake verl accepts any override; the real one (its Hydra config, in struct mode) refuses a key it
does not have, and refuses a loss mode or loss aggregation it does not implement only at step 1 on
8 GPUs. Here the overrides are composed with Hydra against `verl/trainer/config/ppo_trainer.yaml` of
the pinned verl (installed with --no-deps: composing needs no torch and no GPU), and the values verl
validates are looked up in that verl's own source.
"""

import ast
import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "batch-images" / "train-rl" / "Dockerfile"
LOCK = ROOT / "batch-images" / "train-rl" / "requirements.lock"


def verl_root() -> Path:
    spec = importlib.util.find_spec("verl")  # finds the package without importing it (no torch here)
    assert spec and spec.submodule_search_locations, "verl is not installed (tests/python/run.sh installs it)"
    return Path(list(spec.submodule_search_locations)[0])


def installed_verl_version() -> str:
    from importlib.metadata import version

    return version("verl")


def rendered(run_json: str, algorithm: str | None = None) -> dict:
    out = subprocess.run(
        ["node", "--import", "tsx", "tests/python/render_verl.ts", run_json, *([algorithm] if algorithm else [])],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def compose_overrides(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(verl_root() / "trainer" / "config"), version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


def registered_policy_losses() -> set[str]:
    tree = ast.parse((verl_root() / "trainer" / "ppo" / "core_algos.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                if (
                    isinstance(d, ast.Call)
                    and getattr(d.func, "id", None) == "register_policy_loss"
                    and d.args
                    and isinstance(d.args[0], ast.Constant)
                ):
                    names.add(d.args[0].value)
    return names


def loss_agg_modes() -> set[str]:
    source = (verl_root() / "trainer" / "ppo" / "core_algos.py").read_text()
    return set(re.findall(r'loss_agg_mode == "([a-z-]+)"', source))


def test_the_image_installs_the_verl_this_check_uses():
    pins = re.findall(r"^verl==([0-9.]+)", LOCK.read_text(), re.M)
    assert pins, "the train-rl lock does not pin verl"
    assert "requirements.lock" in DOCKERFILE.read_text(), "the train-rl Dockerfile does not install its lock"
    assert set(pins) == {installed_verl_version()}


@pytest.mark.parametrize("run_json", ["examples/openmmreasoner.run.json", "examples/run.sample.json"])
def test_rendered_overrides_compose_against_verls_own_config(run_json: str):
    r = rendered(run_json)
    cfg = compose_overrides(r["overrides"])

    assert cfg.actor_rollout_ref.actor.policy_loss.loss_mode == r["lossMode"]
    assert cfg.actor_rollout_ref.actor.loss_agg_mode == r["lossAggMode"]
    assert cfg.algorithm.adv_estimator == "grpo"
    assert cfg.custom_reward_function.name == "compute_score_batch"
    assert cfg.reward_model.reward_manager == "batch"
    rollout = cfg.actor_rollout_ref.rollout
    assert rollout.enable_chunked_prefill is False
    assert rollout.engine_kwargs.vllm.disable_mm_preprocessor_cache is True
    assert rollout.tensor_model_parallel_size == r["training"]["rolloutTensorParallelSize"]
    assert rollout.gpu_memory_utilization == r["training"]["rolloutGpuMemoryUtilization"]
    assert cfg.actor_rollout_ref.actor.ulysses_sequence_parallel_size == r["training"]["sequenceParallelSize"]
    assert cfg.actor_rollout_ref.ref.fsdp_config.param_offload is True
    assert cfg.trainer.max_actor_ckpt_to_keep == r["training"]["maxCheckpointsToKeep"]
    assert cfg.trainer.nnodes == r["training"]["nodes"]
    assert cfg.data.image_key == "images"
    assert list(cfg.data.train_files) == [
        "/workspace/data/split/train-00000.parquet",
        "/workspace/data/split/train-00001.parquet",
    ]
    # Validation: the held-out split, in batches, every testFreq steps (never the first training part).
    assert list(cfg.data.val_files) == ["/workspace/data/split/val-00000.parquet"]
    assert cfg.data.val_batch_size == r["training"]["validationBatchSize"]
    assert cfg.trainer.test_freq == r["training"]["testFreq"]
    # Ray workers (the reward runs in them) get the run's verifier preset and NCCL/Gloo's interfaces.
    env_vars = cfg.ray_kwargs.ray_init.runtime_env.env_vars
    assert env_vars.RECIPE_VERIFY_PRESET == r["verifyPreset"]
    assert env_vars.NCCL_SOCKET_IFNAME == "^lo,docker,ecs"
    # Gloo takes an interface name, not NCCL's exclusion list: the list picked the host's eth0.
    assert env_vars.GLOO_SOCKET_IFNAME == "eth0"


def test_the_batch_reward_manager_is_registered_and_calls_the_glue_with_names_it_accepts():
    """verl's BatchRewardManager calls custom_reward_function.name with keyword arguments: the glue's
    batched function must take exactly those names (a mismatch fails at step 1, on GPUs)."""
    import inspect
    import sys

    source = (verl_root() / "workers" / "reward_manager" / "batch.py").read_text()
    assert re.search(r'@register\("batch"\)', source), "verl registers no reward manager named batch"
    tree = ast.parse(source)
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "compute_score"
    ]
    assert calls, "verl's BatchRewardManager no longer calls self.compute_score"
    keywords = {k.arg for k in calls[0].keywords if k.arg}
    sys.path.insert(0, str(ROOT / "batch-images" / "train-rl" / "src"))
    import recipe_reward

    assert keywords == set(inspect.signature(recipe_reward.compute_score_batch).parameters)


def test_verl_implements_the_loss_the_recipe_uses():
    r = rendered("examples/openmmreasoner.run.json")
    assert r["lossMode"] == "gspo"
    assert r["lossMode"] in registered_policy_losses()
    assert r["lossAggMode"] in loss_agg_modes()


# shared/RECIPE.md, "The repository's RL scripts for the algorithms it compares": what each
# `training.rl.algorithm` must reach verl as (GRPO and DAPO as published).
RECIPE_ALGORITHMS = {
    "gspo": {"loss_mode": "gspo", "loss_agg_mode": "seq-mean-token-mean", "clip_ratio_low": 3e-4, "clip_ratio_high": 4e-4},
    "grpo": {"loss_mode": "vanilla", "loss_agg_mode": "token-mean", "clip_ratio_low": 0.2, "clip_ratio_high": 0.2},
    "dapo": {"loss_mode": "vanilla", "loss_agg_mode": "token-mean", "clip_ratio_low": 0.2, "clip_ratio_high": 0.2},
}


@pytest.mark.parametrize("algorithm", sorted(RECIPE_ALGORITHMS))
def test_each_algorithm_composes_against_verls_own_config_with_the_recipes_settings(algorithm: str):
    r = rendered("examples/openmmreasoner.run.json", algorithm)
    cfg = compose_overrides(r["overrides"])

    actor = cfg.actor_rollout_ref.actor
    expected = RECIPE_ALGORITHMS[algorithm]
    assert r["training"]["algorithm"] == algorithm
    assert actor.policy_loss.loss_mode == expected["loss_mode"]
    assert actor.loss_agg_mode == expected["loss_agg_mode"]
    assert actor.clip_ratio_low == pytest.approx(expected["clip_ratio_low"])
    assert actor.clip_ratio_high == pytest.approx(expected["clip_ratio_high"])
    # What all three scripts share.
    assert cfg.algorithm.adv_estimator == "grpo"
    assert cfg.algorithm.use_kl_in_reward is False
    assert actor.use_kl_loss is False
    assert cfg.data.max_response_length == 28696
    assert cfg.actor_rollout_ref.rollout.temperature == 1.0
    assert actor.use_dynamic_bsz is True
    # verl implements the loss and the aggregation it is told to use (else it fails at step 1, on GPUs).
    assert actor.policy_loss.loss_mode in registered_policy_losses()
    assert actor.loss_agg_mode in loss_agg_modes()


def test_an_unknown_override_is_refused_as_verl_would():
    with pytest.raises(Exception, match="not_a_verl_key"):
        compose_overrides(["actor_rollout_ref.actor.not_a_verl_key=1"])


def verl_validation_metrics():
    """verl's own `process_validation_metrics` (and the helpers it calls), taken from the pinned
    verl's source: its module imports torch, which this check does not install."""
    import collections
    import functools
    import typing

    import numpy as np

    path = verl_root() / "trainer" / "ppo" / "metric_utils.py"
    tree = ast.parse(path.read_text())
    wanted = {"bootstrap_metric", "calc_maj_val", "process_validation_metrics"}
    module = ast.Module(body=[n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted], type_ignores=[])
    assert {n.name for n in module.body} == wanted
    namespace = {
        "np": np,
        "defaultdict": collections.defaultdict,
        "partial": functools.partial,
        "Any": typing.Any,
        "Callable": typing.Callable,
    }
    exec(compile(module, str(path), "exec"), namespace)
    return namespace["process_validation_metrics"]


def test_every_value_the_reward_returns_survives_verls_validation_metrics(monkeypatch):
    import sys

    sys.path.insert(0, str(ROOT / "batch-images" / "train-rl" / "src"))
    import recipe_reward

    cli = f"node {ROOT / 'bin' / 'recipe.mjs'} verify --input - --preset strict"
    monkeypatch.setattr(recipe_reward, "_verifier", recipe_reward.Verifier(command=cli, preset="strict"))
    try:
        # The first sample of the group extracts nothing: verl decides per field from its first value.
        responses = ["I cannot tell.", "<think>2+2</think><answer>4</answer>", "<answer>5</answer>", "\\boxed{4}"]
        scores = recipe_reward.compute_score_batch(["s"] * 4, responses, ["4"] * 4, [{}] * 4)
    finally:
        recipe_reward._verifier.close()

    infos = {k: [s[k] for s in scores] for k in scores[0]}
    metrics = verl_validation_metrics()(["s"] * 4, ["uid-1"] * 4, infos)
    assert infos["extracted"][0] == ""  # nothing extracted is an empty string, never None
    assert metrics["s"]["score"]["mean@4"] == pytest.approx(sum(s["score"] for s in scores) / 4)
