"""Issue 24's "done when", end to end in the embedded runtime (`node bin/recipe.mjs run`: the S3
emulator, the state machine from cdk synth, Batch jobs as child processes):

SFT set -> train-sft (the real lmms-engine on CPU over the sample's SFT set, a tiny Qwen2.5-VL base
model uploaded into the bucket) -> checkpoints in S3 -> killed (SIGKILL of the `recipe run` process
group once checkpoint 1 is complete) -> the same command again: train-sft resumes from the checkpoint
-> the SFT model -> train-rl (a dry run, here) names it as its start model -> evaluate (the real
lmms-eval on CPU over a MathVista-testmini-shaped fixture, answers from a local OpenAI-compatible
server, scored by this project's verifier) -> the report's benchmark table.

Run by tests/images/run.sh with the evaluate image's CPU environment (lmms-eval); the train-sft one
comes from RECIPE_SFT_PYTHON or tests/images/venv.sh train-sft.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, node

sys.path.insert(0, str(ROOT / "tests" / "images" / "evaluate"))
sys.path.insert(0, str(ROOT / "tests" / "images"))
from fixture import TASK, make_dataset  # noqa: E402

RUN = "e2e"
BUCKET = "recipe-local"
MODEL_PREFIX = "models/tiny-qwen2.5-vl/"
# Enough steps that training is still going when its first checkpoint is complete in S3 (a step of the
# tiny model takes a fraction of a second here; a checkpoint is complete in S3 a few seconds after it
# is saved, and lmms-engine may delete a local one before the sync has seen it settle).
MAX_STEPS = 40


def sft_python() -> str:
    given = os.environ.get("RECIPE_SFT_PYTHON")
    if given:
        return given
    out = subprocess.run(["bash", "tests/images/venv.sh", "train-sft"], cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def obj(data: Path, key: str) -> Path:
    """Where the S3 emulator (s3rver) keeps an object of the local bucket on disk."""
    return data / "s3" / BUCKET / f"{key}._S3rver_object"


def keys_under(data: Path, prefix: str) -> list[str]:
    root = data / "s3" / BUCKET
    return sorted(
        str(p.relative_to(root))[: -len("._S3rver_object")]
        for p in (root / prefix).rglob("*._S3rver_object")
    )


def complete_steps(data: Path, prefix: str) -> list[int]:
    return sorted(int(k[len(prefix):].split("/")[0]) for k in keys_under(data, prefix) if k.endswith("/_COMPLETE"))


def test_sft_checkpoint_kill_resume_rl_start_evaluate_report(tmp_path):
    from test_lmms_eval import Served

    served = Served("no-judge")  # the sample run has no judge
    work = tmp_path / "work"
    work.mkdir()
    (work / "sample").symlink_to(ROOT / "examples" / "sample")
    data = tmp_path / "data"

    # A tiny Qwen2.5-VL base model (random weights, offline processor), in the run's bucket.
    py = sft_python()
    model_dir = tmp_path / "tiny-model"
    subprocess.run(
        [py, "tests/images/train-sft/tiny_model.py", str(model_dir)],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tests" / "images")},
    )
    uploaded = json.loads(node("tests/images/e2e/upload.ts", str(data), str(model_dir), MODEL_PREFIX))
    base_uri = f"s3://{BUCKET}/{MODEL_PREFIX}"
    assert uploaded["uri"] == base_uri

    config = json.loads((ROOT / "examples" / "run.sample.json").read_text())
    config.pop("$schema", None)
    config["runId"] = RUN
    config["training"] = {
        "sft": {
            "enabled": True,
            "baseModel": base_uri,
            # A CPU run of the tiny model: short packed sequences, a checkpoint every step.
            "packingLength": 2048,
            "maxSteps": MAX_STEPS,
            "saveSteps": 1,
            "saveTotalLimit": 3,
            "imageMaxPixels": 200704,
            "nodes": 1,
            "gpusPerNode": 1,
        },
        # The sample's RL set is a few prompts: batches of 2 give verl steps to take.
        "rl": {"enabled": True, "trainBatchSize": 2, "ppoMiniBatchSize": 2},
    }
    config["evaluation"] = {"enabled": True, "tasks": [TASK], "limit": 4, "batchSize": 4}
    run_json = work / "run.json"
    run_json.write_text(json.dumps(config))

    # lmms-engine's CPU stand-ins (flash_attn import, CUDA device questions) for train-sft's Python only.
    sft_wrapper = tmp_path / "sft-python"
    sft_wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT / "tests/images/train-sft/cpu_stubs"}" exec "{py}" "$@"\n'
    )
    sft_wrapper.chmod(0o755)
    env = {
        **os.environ,
        "RECIPE_SFT_PYTHON": str(sft_wrapper),
        "RECIPE_SFT_SETTLE_SECONDS": "1",
        "RECIPE_SFT_SYNC_SECONDS": "2",
        "RECIPE_EVAL_PYTHON": sys.executable,
        "RECIPE_EVAL_MODEL_URL": served.url,
        "RECIPE_EVAL_DATASETS": str(make_dataset(tmp_path / "datasets")),
        "HF_HOME": str(tmp_path / "hf"),
    }
    env.pop("PYTHONPATH", None)
    command = ["node", str(ROOT / "bin" / "recipe.mjs"), "run", str(run_json), "--data-dir", str(data), "--parallelism", "2"]
    ckpts = f"runs/{RUN}/train-sft/checkpoints/"
    sft_log = data / "logs" / f"TrainSft-{RUN}" / "0.log"

    # 1. Until train-sft has put a complete checkpoint in S3, then the whole process group is killed.
    first_out = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(command, cwd=work, env=env, stdout=first_out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 1200
    try:
        while not (data / "s3" / BUCKET / ckpts).exists() or not complete_steps(data, ckpts):
            assert first.poll() is None, f"recipe run ended ({first.returncode}) before a checkpoint: {(tmp_path / 'first.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no complete checkpoint within 20 minutes"
            time.sleep(0.2)
    finally:
        # The run, its Batch children and their trainers: the kill under test, or nothing left behind.
        os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    first_out.close()
    at_kill = complete_steps(data, ckpts)[-1]
    assert not obj(data, f"runs/{RUN}/train-sft/_SUCCESS").exists(), "train-sft finished before the kill"
    assert not obj(data, f"{ckpts}{MAX_STEPS}/_COMPLETE").exists(), "training ended before the kill"
    assert not obj(data, f"runs/{RUN}/models/sft/config.json").exists()
    assert "starting from " + base_uri in sft_log.read_text()

    # 2. The same command: the run goes on, train-sft resumes from its checkpoint.
    second = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = second.communicate(timeout=1800)
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
    assert second.returncode == 0, out[-4000:] + err[-4000:] + sft_log.read_text()[-4000:]
    assert "starting run e2e again" in out

    # The second train-sft attempt (the log's last one) restored a checkpoint and lmms-engine loaded it.
    attempts = re.split(rf"^=== TrainSft-{RUN} \[0\] attempt \d+ started .*$", sft_log.read_text(), flags=re.M)[1:]
    assert len(attempts) == 2, sft_log.read_text()[-4000:]
    last = attempts[-1]
    assert "resuming from checkpoint " in last and "starting from " not in last, last[-4000:]
    resumed = int(last.split("resuming from checkpoint ")[1].split()[0])
    assert resumed == at_kill < MAX_STEPS  # the newest complete one when it was killed
    assert "Loaded checkpoint from" in last  # lmms-engine's own resume

    # Checkpoints in S3, each with _COMPLETE; the train log keeps both attempts.
    stored = keys_under(data, ckpts)
    steps = complete_steps(data, ckpts)
    assert at_kill in steps and resumed in steps and steps[-1] == MAX_STEPS
    assert f"{ckpts}{MAX_STEPS}/pytorch_model_fsdp_0/model_world_size_1_rank_0.pt" in stored
    train_log = json.loads(obj(data, f"runs/{RUN}/train-sft/train-log.json").read_text())
    assert [a["fromStep"] for a in train_log["attempts"]] == [0, resumed]
    success = json.loads(obj(data, f"runs/{RUN}/train-sft/_SUCCESS").read_text())
    assert success["extra"]["steps"] == MAX_STEPS and success["extra"]["resumedFrom"] == resumed

    # The SFT model: config.json and weights, the model card last.
    sft_model = f"runs/{RUN}/models/sft/"
    model_keys = keys_under(data, sft_model)
    assert f"{sft_model}config.json" in model_keys and f"{sft_model}model.safetensors" in model_keys
    card = obj(data, f"{sft_model}README.md").read_text()
    assert f"runs/{RUN}/datasets/sft/README.md" in card and f"- Steps: {MAX_STEPS}" in card
    assert "resumed from step" in card

    # train-rl (a dry run without a GPU) starts from this run's SFT model and stages it.
    rl_log = (data / "logs" / f"TrainRl-{RUN}").glob("*.log")
    rl_text = "".join(p.read_text() for p in rl_log)
    sft_uri = f"s3://{BUCKET}/{sft_model}"
    assert f"this run's SFT model (train-sft's output): {sft_uri}" in rl_text, rl_text[-3000:]
    assert f"start model: {sft_uri} (" in rl_text  # its config.json read, its files staged (not "no model yet")

    # evaluate: base and SFT on the fixture's task; no RL model exists after a dry run, so none for rl.
    results = {}
    for m in ("base", "sft"):
        results[m] = json.loads(obj(data, f"runs/{RUN}/eval/{m}/{TASK}.json").read_text())
        assert obj(data, f"runs/{RUN}/eval/{m}/{TASK}.samples.jsonl.gz").exists()
        assert results[m]["task"] == TASK and results[m]["samples"] == 4
    assert results["base"]["modelUri"] == base_uri
    assert results["sft"]["modelUri"].rstrip("/") == sft_uri.rstrip("/")
    # The served answers: 3 of 4 right for the SFT model, 2 of 4 for the base (no judge for the 4th).
    assert results["sft"]["accuracy"] > results["base"]["accuracy"]
    assert not (data / "s3" / BUCKET / "runs" / RUN / "eval" / "rl").exists()
    assert obj(data, f"runs/{RUN}/evaluate/_SUCCESS").exists()
    assert {r["model"] for r in served.requests} == {"base", "sft"}

    # The report's benchmark table.
    report = json.loads(obj(data, f"runs/{RUN}/report/report.json").read_text())
    rows = report["evaluation"]["benchmarks"]
    assert [r["task"] for r in rows] == [TASK]
    assert rows[0]["models"]["base"]["accuracy"] == results["base"]["accuracy"]
    assert rows[0]["models"]["sft"]["accuracy"] == results["sft"]["accuracy"]
    html = obj(data, f"runs/{RUN}/report/report.html").read_text()
    assert 'id="benchmarks"' in html and TASK in html
