"""verl 0.6.1's own data path and reward manager, on CPU, over this project's RL Parquet.

The rows go through verl's RLHFDataset with the config the launcher renders for the published run
(composed with verl's Hydra config), a tiny Qwen2.5-VL-shaped processor built offline, and verl's
collate_fn; then verl's BatchRewardManager (loaded by verl's load_reward_manager from the composed
config) scores responses with recipe_reward.py. A row verl drops, or an image it loses, fails here.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import verl
from conftest import ROOT
from tiny_qwen_vl import tiny_processor

REWARD = ROOT / "batch-images" / "train-rl" / "src" / "recipe_reward.py"


def composed(overrides: list[str]):
    GlobalHydra.instance().clear()
    config_dir = Path(verl.__file__).parent / "trainer" / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        return compose(
            config_name="ppo_trainer",
            overrides=[o.replace("/opt/recipe/recipe_reward.py", str(REWARD)) for o in overrides],
        )


@pytest.fixture(scope="module")
def processor():
    return tiny_processor()


@pytest.fixture(scope="module")
def config(published_verl):
    return composed(published_verl["overrides"])


def parquet_rows(files: list[str]) -> list[dict]:
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def load(files: list[str], config, processor):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    return RLHFDataset(data_files=files, tokenizer=processor.tokenizer, config=config.data, processor=processor)


def assert_every_row_and_image(dataset, rows: list[dict], processor) -> None:
    assert len(dataset) == len(rows), f"verl kept {len(dataset)} of {len(rows)} rows"
    tok = processor.tokenizer
    vision_start = tok.convert_tokens_to_ids("<|vision_start|>")
    image_pad = tok.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size**2
    by_id = {r["extra_info"]["question_id"]: r for r in rows}
    for i in range(len(dataset)):
        item = dataset[i]
        row = by_id[item["extra_info"]["question_id"]]
        want = len(row["images"] or [])
        markers = sum(m["content"].count("<image>") for m in row["prompt"])
        assert markers == want, f"{row['extra_info']['question_id']}: {markers} <image> markers, {want} images"
        got = len(item.get("multi_modal_data", {}).get("image", []))
        assert got == want, f"{row['extra_info']['question_id']}: verl has {got} of {want} images"
        ids = item["input_ids"][item["attention_mask"].bool()]
        assert int((ids == vision_start).sum()) == want
        if want:
            grid = item["multi_modal_inputs"]["image_grid_thw"]
            assert grid.shape[0] == want
            assert int((ids == image_pad).sum()) == int(grid.prod(dim=-1).sum()) // merge
            # Qwen-VL's 3-D rotary positions (verl's get_rope_index) for text + 3 axes.
            assert item["position_ids"].shape[0] == 4


@pytest.mark.parametrize("part", ["sample", "multi", "split"])
def test_every_row_reaches_verl_with_all_its_images(outputs, config, processor, part):
    files = outputs["split"]["train"] + outputs["split"]["val"] if part == "split" else outputs["rl"][part]
    rows = parquet_rows(files)
    assert rows, f"no rows in {files}"
    if part == "multi":
        assert all(len(r["images"]) >= 1 for r in rows) and max(len(r["images"]) for r in rows) >= 3

    assert_every_row_and_image(load(files, config, processor), rows, processor)


def test_the_validation_split_is_disjoint_from_training_and_loads_in_verl(outputs, config, processor):
    train = parquet_rows(outputs["split"]["train"])
    val = parquet_rows(outputs["split"]["val"])
    ids = lambda rows: {r["extra_info"]["question_id"] for r in rows}  # noqa: E731

    assert val and not (ids(train) & ids(val))
    assert ids(train) | ids(val) == ids(parquet_rows(outputs["rl"]["sample"] + outputs["rl"]["multi"]))
    assert len(load(outputs["split"]["val"], config, processor)) == len(val)


def test_a_qwen_vl_utils_before_0_0_13_would_drop_every_image_row(outputs, config, processor, tmp_path):
    """The failure the old base image had: verl 0.6.1 calls fetch_image(image, image_patch_size=...);
    qwen-vl-utils 0.0.11's fetch_image(ele, size_factor=...) raises TypeError, which verl's long-prompt
    filter catches and counts as too long. Runs the real 0.0.11 (from PyPI) in place of the lock's."""
    uv = subprocess.run(["bash", str(ROOT / "tests/images/uv.sh")], check=True, capture_output=True, text=True)
    subprocess.run(
        [uv.stdout.strip(), "pip", "install", "-q", "--no-deps", "--target", str(tmp_path), "qwen-vl-utils==0.0.11"],
        check=True,
    )
    spec = importlib.util.spec_from_file_location("old_vision_process", tmp_path / "qwen_vl_utils" / "vision_process.py")
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    import verl.utils.dataset.vision_utils as vision_utils

    files = outputs["rl"]["sample"] + outputs["rl"]["multi"]
    rows = parquet_rows(files)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vision_utils, "fetch_image", old.fetch_image)
        dataset = load(files, config, processor)

    assert len(dataset) == sum(1 for r in rows if not r["images"])


def test_verls_batch_reward_manager_scores_with_the_recipe_verifier(outputs, config, processor, monkeypatch):
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.utils.dataset.rl_dataset import collate_fn

    monkeypatch.setenv("RECIPE_VERIFY_CMD", f"node {ROOT / 'bin' / 'recipe.mjs'} verify")
    monkeypatch.setenv("RECIPE_VERIFY_PRESET", "recipe")
    dataset = load(outputs["rl"]["sample"] + outputs["rl"]["multi"], config, processor)
    items = [dataset[i] for i in range(len(dataset))]
    batch = collate_fn(items)
    truths = [item["reward_model"]["ground_truth"] for item in items]
    # Three responses per prompt: right with the format, wrong with the format, empty.
    responses = (
        [f"<think>checking</think><answer>{t}</answer>" for t in truths]
        + ["<think>checking</think><answer>no such answer</answer>"] * len(items)
        + [""] * len(items)
    )
    tok = processor.tokenizer
    encoded = [tok.encode(r, add_special_tokens=False) for r in responses]
    width = max(1, max(len(e) for e in encoded))
    resp = torch.full((len(responses), width), tok.pad_token_id, dtype=torch.long)
    resp_mask = torch.zeros((len(responses), width), dtype=torch.long)
    for i, e in enumerate(encoded):
        resp[i, : len(e)] = torch.tensor(e, dtype=torch.long)
        resp_mask[i, : max(1, len(e))] = 1  # verl scores at the last valid position (0 for an empty one)
    prompts = batch["input_ids"].repeat(3, 1)
    data = DataProto.from_dict(
        tensors={
            "prompts": prompts,
            "responses": resp,
            "attention_mask": torch.cat([batch["attention_mask"].repeat(3, 1), resp_mask], dim=-1),
        },
        non_tensors={k: list(batch[k]) * 3 for k in ("data_source", "reward_model", "extra_info")},
    )
    manager = load_reward_manager(config, tok, num_examine=0, **config.reward_model.get("reward_kwargs", {}))
    assert type(manager).__name__ == "BatchRewardManager"

    out = manager(data, return_dict=True)

    n = len(items)
    last = resp_mask.sum(-1) - 1
    scores = out["reward_tensor"][torch.arange(3 * n), last].tolist()
    assert scores[:n] == pytest.approx([1.0] * n)  # 0.9 accuracy + 0.1 format
    assert scores[n : 2 * n] == pytest.approx([0.1] * n)  # format only
    assert scores[2 * n :] == pytest.approx([0.0] * n)
    assert out["reward_extra_info"]["acc"] == [1.0] * n + [0.0] * (2 * n)
    assert float(out["reward_tensor"].sum()) == pytest.approx(sum(scores))
