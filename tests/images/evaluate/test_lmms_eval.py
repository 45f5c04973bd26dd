"""The evaluate launcher over the real lmms-eval (the image's lock) on CPU.

A small benchmark in MathVista testmini's schema (its columns, a few rows and images made here) is
rendered by the launcher into this project's lmms-eval task; lmms-eval loads it through its own task
loader, asks an OpenAI-compatible server through its OpenAI-compatible model type, and every answer is
scored by this project's verifier (core/verify, through the same Python glue as the RL reward), with
the judge for what the rules leave undecided. The launcher writes each model's EvalResult and logged
samples, then `_SUCCESS`; run again, it skips what is written.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture import TASK, make_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]

# What the served models answer, by question; the SFT model also gets the dots right.
ANSWERS = {
    "What is 2 + 3?": "<think>2 + 3 = 5</think><answer>5</answer>",
    "Which shape is red?": "<think>The square is red.</think><answer>B</answer>",
    "How many dots are there?": {"base": "<think>I count them.</think><answer>8</answer>", "sft": "<think>I count them.</think><answer>7</answer>"},
    "Which bar is taller?": "<think>Compare the bars.</think><answer>the one on the left</answer>",
}


class Served:
    """An OpenAI-compatible server answering as the base and SFT models, and as the judge."""

    def __init__(self, judge_model: str) -> None:
        self.requests: list[dict] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                served.requests.append(body)
                text = served.answer(body, judge_model)
                reply = json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def answer(body: dict, judge_model: str) -> str:
        content = body["messages"][-1]["content"]
        text = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
        if body["model"] == judge_model:
            m = re.search(r"<predicted_answer>\s*(.*?)\s*</predicted_answer>", text, re.S)
            return "1" if m and "left" in m.group(1) else "0"
        for question, answer in ANSWERS.items():
            if question in text:
                return answer[body["model"]] if isinstance(answer, dict) else answer
        return "I do not know."


def launcher(bucket: Path, work: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["node", "--import", "tsx", "batch-images/evaluate/src/main.ts"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )


def test_lmms_eval_scores_with_the_project_verifier(tmp_path):
    judge_model = "Qwen/Qwen3-235B-A22B-Instruct-2507"
    served = Served(judge_model)
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    made = json.loads(
        subprocess.run(
            ["node", "--import", "tsx", "tests/images/evaluate/make_run.ts", str(bucket), "evalcpu", served.url, TASK],
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout
    )
    assert made["judgeModel"] == judge_model
    env = {
        **os.environ,
        "RECIPE_BUCKET": f"file://{bucket}",
        "RECIPE_RUN_ID": "evalcpu",
        "RECIPE_WORKDIR": str(tmp_path / "work"),
        "RECIPE_EVAL_PYTHON": sys.executable,
        "RECIPE_EVAL_MODEL_URL": served.url,
        "RECIPE_EVAL_DATASETS": str(make_dataset(tmp_path / "datasets")),
        "HF_HOME": str(tmp_path / "hf"),
    }
    run = launcher(bucket, tmp_path / "work", env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    prefix = bucket / "runs" / "evalcpu"
    results = {m: json.loads((prefix / "eval" / m / f"{TASK}.json").read_text()) for m in ("base", "sft")}
    assert not (prefix / "eval" / "rl").exists()  # no RL model exported: not evaluated
    base, sft = results["base"], results["sft"]
    assert base["samples"] == sft["samples"] == 4
    assert base["accuracy"] == 0.75 and sft["accuracy"] == 1.0  # the dots: 8 (wrong) from base, 7 from sft
    assert base["format"] == 1.0
    assert base["judged"] == {"asked": 1, "correct": 1}  # "the one on the left": the judge decided it
    assert base["preset"] == made["preset"] and base["tools"]["lmmsEval"] == "0.5.0"
    assert sft["modelUri"] == "s3://local/runs/evalcpu/models/sft/"
    samples = [json.loads(line) for line in gzip.decompress((prefix / "eval" / "base" / f"{TASK}.samples.jsonl.gz").read_bytes()).decode().splitlines()]
    by_id = {s["verdict"]["id"]: s["verdict"] for s in samples}
    assert by_id["2"]["correct"] and by_id["2"]["reason"] != "judge_mismatch"  # "B" against the option "square"
    assert by_id["3"]["correct"] is False and by_id["3"]["extracted"] == "8"
    assert by_id["4"]["judged"] is True
    assert json.loads((prefix / "evaluate" / "_SUCCESS").read_text())["out"] == 2

    # lmms-eval asked the served models with the image, the run's instruction and its full token budget
    # (lmms-eval 0.5.0 alone would cap it at 4096).
    asked = [r for r in served.requests if r["model"] in ("base", "sft")]
    assert len(asked) == 8
    assert all(r["max_tokens"] == made["maxNewTokens"] for r in asked)
    parts = asked[0]["messages"][0]["content"]
    assert any(p["type"] == "image_url" and p["image_url"]["url"].startswith("data:image/png;base64,") for p in parts)
    assert parts[0]["text"].startswith(made["systemPrompt"])

    # Run again: every (model, task) is written, so nothing is asked again.
    before = len(served.requests)
    again = launcher(bucket, tmp_path / "work", env)
    assert again.returncode == 0, again.stdout[-4000:]
    assert again.stdout.count("done before, skipped") == 2
    assert len(served.requests) == before


def test_the_launcher_serves_a_staged_model_with_vllm_and_stops_it(tmp_path):
    """Without RECIPE_EVAL_MODEL_URL the launcher stages the model's folder, starts `vllm serve` with the
    serving plan (a stand-in vllm with the same CLI, /health and chat endpoint: tests/helpers/fake-vllm.mjs),
    waits for /health, runs lmms-eval against it and stops it."""
    import socket

    judge = Served("Qwen/Qwen3-235B-A22B-Instruct-2507")
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    subprocess.run(
        ["node", "--import", "tsx", "tests/images/evaluate/make_run.ts", str(bucket), "evalvllm", judge.url, TASK, "sft"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args_file = tmp_path / "vllm-args.json"
    env = {
        **os.environ,
        "RECIPE_BUCKET": f"file://{bucket}",
        "RECIPE_RUN_ID": "evalvllm",
        "RECIPE_WORKDIR": str(tmp_path / "work"),
        "RECIPE_EVAL_PYTHON": sys.executable,
        "RECIPE_EVAL_DATASETS": str(make_dataset(tmp_path / "datasets")),
        "RECIPE_VLLM_CMD": f"node {ROOT / 'tests' / 'helpers' / 'fake-vllm.mjs'}",
        "RECIPE_VLLM_PORT": str(port),
        "RECIPE_GPUS": "8",
        "RECIPE_GPU_MEMORY_MIB": "81559",
        "FAKE_VLLM_ARGS": str(args_file),
        "HF_HOME": str(tmp_path / "hf"),
    }
    run = launcher(bucket, tmp_path / "work", env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]

    args = json.loads(args_file.read_text())
    staged = Path(args[1])
    assert args[0] == "serve" and (staged / "config.json").exists()  # the s3:// folder, copied to disk
    assert args[args.index("--served-model-name") + 1] == "sft"
    assert args[args.index("--gpu-memory-utilization") + 1] == "0.7"
    # The recipe's layout: one engine per GPU (a 7B fits one), data parallel over the eight.
    assert args[args.index("--tensor-parallel-size") + 1] == "1"
    assert args[args.index("--data-parallel-size") + 1] == "8"
    assert args[args.index("--max-model-len") + 1] == str(49152 + 16384)
    result = json.loads((bucket / "runs" / "evalvllm" / "eval" / "sft" / f"{TASK}.json").read_text())
    assert result["samples"] == 4 and result["tools"] == {"lmmsEval": "0.5.0", "vllm": "0.11.0"}
    assert not (bucket / "runs" / "evalvllm" / "eval" / "base").exists()  # evaluation.models: sft only
    # The server is gone once the job is done.
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_one_answer_may_take_an_hour_not_the_openai_clients_ten_minutes():
    """lmms-eval's `timeout` is its pause between retries; the HTTP timeout was the OpenAI client's
    default 600 s, less than a 49,152-token answer can take, so long answers failed every retry."""
    sys.path.insert(0, str(ROOT / "batch-images" / "evaluate" / "python"))
    from recipe_eval_model import RecipeOpenAICompatible

    model = RecipeOpenAICompatible(
        model_version="base", base_url="http://127.0.0.1:9/v1", api_key="EMPTY", request_timeout=3600
    )
    assert model.client.timeout == 3600.0
