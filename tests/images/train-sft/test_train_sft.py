"""The train-sft image's lmms-engine, on CPU, driven by the launcher itself (a file:// bucket): the
sample run's SFT set as write-sft-dataset writes it, a tiny Qwen2.5-VL-shaped model made here.
lmms-engine's own vision_iterable dataset and qwen2_5_vl processor load the rows and images, pack
them, take an optimizer step and write a checkpoint; a second launch with more steps resumes from
it; the exported folder loads with transformers. And the rendered config composes against
lmms-engine's own config classes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT, node

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# flash-attn's one unguarded import in lmms-engine (cpu_stubs/flash_attn): lmms_engine imports here too.
sys.path.insert(0, str(HERE / "cpu_stubs"))

RUN = "sft"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from tiny_model import tiny_model_folder

    return Path(tiny_model_folder(str(tmp_path_factory.mktemp("tiny-qwen2.5-vl"))))


@pytest.fixture(scope="module")
def bucket(tmp_path_factory, tiny_model) -> Path:
    out = json.loads(node("tests/images/train-sft/make_sft_fixture.ts", str(tmp_path_factory.mktemp("bucket")), str(tiny_model)))
    assert out["runId"] == RUN
    return Path(out["bucket"])


def launch(bucket: Path, workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["node", "--import", "tsx", "batch-images/train-sft/src/main.ts", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "RECIPE_BUCKET": f"file://{bucket}",
            "RECIPE_RUN_ID": RUN,
            "RECIPE_WORKDIR": str(workdir),
            "RECIPE_SFT_PYTHON": sys.executable,
            # flash-attn's import and CUDA's device questions, answered for a machine with no GPU.
            "PYTHONPATH": str(HERE / "cpu_stubs"),
            "RECIPE_SFT_SETTLE_SECONDS": "1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=1500,
    )


def set_sft(bucket: Path, **fields) -> None:
    """Changes the run's resolved training.sft settings (what the launcher reads) in place."""
    path = bucket / "runs" / RUN / "config.json"
    config = json.loads(path.read_text())
    config["training"]["sft"].update(fields)
    path.write_text(json.dumps(config))


def rendered(device: str) -> dict:
    text = node("tests/images/train-sft/render_config.ts", "examples/openmmreasoner.run.json", device)
    return yaml.safe_load(text)


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_the_rendered_config_composes_against_lmms_engines_own_config_classes(device):
    from lmms_engine.datasets import DatasetConfig
    from lmms_engine.datasets.processor import ProcessorConfig
    from lmms_engine.models import ModelConfig
    from lmms_engine.train import TrainerConfig, TrainingArguments

    config = rendered(device)
    dataset = DatasetConfig(**config["dataset_config"])
    model = ModelConfig(**config["model_config"])
    trainer = dict(config["trainer_args"])
    if device == "cuda":
        # TrainingArguments refuses bf16 on a machine with no GPU unless use_cpu: the one field changed here.
        assert trainer["use_cpu"] is False
        trainer["use_cpu"] = True
    args = TrainingArguments(**trainer)
    TrainerConfig(dataset_config=dataset, model_config=model, trainer_type=config["trainer_type"], trainer_args=args)

    # What lmms-engine reads back is the recipe's (RECIPE.md stage 1b), as floats and ints, not strings.
    assert dataset.dataset_type == "vision_iterable" and dataset.packing and dataset.packing_strategy == "first_fit"
    assert dataset.packing_length == 61440 and dataset.filter_overlong
    assert ProcessorConfig(**dataset.processor_config).extra_kwargs["image_max_pixels"] == 4194304
    assert args.learning_rate == 5e-5 and args.warmup_ratio == 0.1 and args.weight_decay == 0.0
    assert args.lr_scheduler_type == "cosine" and args.max_steps == 4300 and args.save_steps == 2000
    assert args.save_total_limit == 3 and args.per_device_train_batch_size == 1
    assert args.bf16 and args.gradient_checkpointing and args.fsdp2
    assert args.fsdp_config["transformer_layer_cls_to_wrap"] == ["Qwen2_5_VLDecoderLayer"]
    assert args.fsdp_config["reshard_after_forward"] is False
    assert args.use_liger_kernel == (device == "cuda") and args.use_rmpad == (device == "cuda")
    assert args.report_to == []
    assert model.attn_implementation == ("flash_attention_2" if device == "cuda" else "sdpa")


def test_image_max_pixels_reaches_the_processor_only_from_processor_config(tiny_model):
    """lmms-engine's qwen2_5_vl processor reads image_max_pixels from processor_config.extra_kwargs; the
    repository's YAML gives it in dataset_config.extra_kwargs, where it changes nothing."""
    from lmms_engine.datasets.processor import ProcessorConfig
    from lmms_engine.mapping_func import DATAPROCESSOR_MAPPING
    from PIL import Image

    config = rendered("cuda")["dataset_config"]
    ours = dict(config["processor_config"], processor_name=str(tiny_model))
    theirs = {k: v for k, v in ours.items() if k != "extra_kwargs"}  # the repository's placement
    big = Image.new("RGB", (3000, 3000))

    def pixels(processor_config: dict) -> int:
        processor = DATAPROCESSOR_MAPPING["qwen2_5_vl"](ProcessorConfig(**processor_config))
        processor.build()
        _, h, w = processor.processor.image_processor([big], return_tensors="pt")["image_grid_thw"][0].tolist()
        return h * w * 14 * 14

    small = dict(ours, extra_kwargs={"image_max_pixels": 200704})
    assert pixels(small) == 200704
    assert pixels(dict(theirs)) > 200704


def test_the_dry_run_checks_the_set_and_prints_the_command_writing_nothing(bucket, tmp_path):
    before = sorted(p.relative_to(bucket) for p in bucket.rglob("*"))
    r = launch(bucket, tmp_path / "dry", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "-m \\\n  lmms_engine.launch.cli" in r.stdout and "--standalone" in r.stdout
    assert '"dataset_type": "vision_iterable"' in r.stdout
    assert sorted(p.relative_to(bucket) for p in bucket.rglob("*")) == before


def test_lmms_engine_trains_checkpoints_resumes_and_exports(bucket, tiny_model, tmp_path):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    ckpts = bucket / "runs" / RUN / "train-sft" / "checkpoints"
    model_dir = bucket / "runs" / RUN / "models" / "sft"

    # 1. One optimizer step over the packed SFT set, a checkpoint every step.
    first = launch(bucket, tmp_path / "a")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert "starting from" in first.stdout
    assert (ckpts / "1" / "_COMPLETE").exists()
    assert (ckpts / "1" / "pytorch_model_fsdp_0" / "model_world_size_1_rank_0.pt").exists()
    assert (ckpts / "1" / "dataloader_state" / "dataloader_state_world_size_1_rank_0.pt").exists()
    log = json.loads((bucket / "runs" / RUN / "train-sft" / "train-log.json").read_text())
    assert [m["step"] for m in log["metrics"]] == [1]
    assert log["metrics"][0]["loss"] > 0

    # The exported folder loads with transformers, and the step changed the weights.
    assert json.loads((model_dir / "config.json").read_text())["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    trained = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir)
    AutoProcessor.from_pretrained(model_dir)
    start = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model)
    a, b = trained.state_dict(), start.state_dict()
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k].float(), b[k].float()) for k in a)
    card = (model_dir / "README.md").read_text()
    assert "runs/sft/datasets/sft/README.md" in card and "- Steps: 1" in card and "| 1 |" in card
    success = json.loads((bucket / "runs" / RUN / "train-sft" / "_SUCCESS").read_text())
    assert success["extra"]["steps"] == 1 and success["model"] == "runs/sft/models/sft/"

    # 2. A new attempt (fresh disk) with one more step resumes from checkpoint 1.
    set_sft(bucket, maxSteps=2)
    second = launch(bucket, tmp_path / "b")
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert "resuming from checkpoint 1" in second.stdout
    assert "Loaded checkpoint from" in second.stdout + second.stderr  # lmms-engine's own resume
    assert (ckpts / "2" / "_COMPLETE").exists()
    log = json.loads((bucket / "runs" / RUN / "train-sft" / "train-log.json").read_text())
    assert [m["step"] for m in log["metrics"]] == [1, 2]
    assert [t["fromStep"] for t in log["attempts"]] == [0, 1]
    assert "(2 attempts; resumed from step 1)" in (model_dir / "README.md").read_text()
    Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir)


def test_train_rl_starts_from_the_exported_sft_model(bucket, tmp_path):
    """The exported folder is train-rl's start model (s3://<pipeline bucket>/runs/<id>/models/sft/): its
    launcher stages it and passes its architecture check (verl itself is the stand-in of
    tests/helpers/fake-verl.mjs here; tests/images/train-rl runs the real verl)."""
    model_dir = bucket / "runs" / RUN / "models" / "sft"
    assert (model_dir / "config.json").exists(), "runs after the training test"
    uri = f"s3://pipeline/runs/{RUN}/models/sft/"
    path = bucket / "runs" / RUN / "config.json"
    config = json.loads(path.read_text())
    rl = config["training"]["rl"] if isinstance(config["training"].get("rl"), dict) else config["training"]
    rl["startModel"] = uri
    # The sample's RL set is 7 prompts: batches of 2 give verl steps to take.
    rl["trainBatchSize"] = 2
    rl["ppoMiniBatchSize"] = 2
    path.write_text(json.dumps(config))

    r = subprocess.run(
        ["node", "--import", "tsx", "batch-images/train-rl/src/main.ts"],
        cwd=ROOT,
        env={
            **os.environ,
            "RECIPE_BUCKET": f"file://{bucket}",
            "RECIPE_RUN_ID": RUN,
            "RECIPE_WORKDIR": str(tmp_path / "rl"),
            "RECIPE_VERL_CMD": f"node {ROOT / 'tests' / 'helpers' / 'fake-verl.mjs'}",
            # After training, train-rl exports the policy with verl's model merger (not in this image).
            "RECIPE_MERGE_CMD": f"node {ROOT / 'tests' / 'helpers' / 'fake-model-merger.mjs'}",
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"start model: {uri} (" in r.stdout
    staged = tmp_path / "rl" / "model"
    assert json.loads((staged / "config.json").read_text())["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert (staged / "model.safetensors").stat().st_size == (model_dir / "model.safetensors").stat().st_size
