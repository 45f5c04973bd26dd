"""The RL reward glue gives the verifier's verdicts, survives one crash of the Node process, and fails loudly on a second."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "batch-images" / "train-rl" / "src"))
import recipe_reward  # noqa: E402

CLI = f"{sys.executable and 'node'} {ROOT / 'bin' / 'recipe.mjs'} verify"
TABLE = [json.loads(line) for line in (ROOT / "tests" / "fixtures" / "verify-cases.jsonl").read_text().splitlines() if line.strip()]


def cli_verdicts(cases, preset):
    lines = "".join(json.dumps({k: v for k, v in c.items() if k in ("id", "response", "answer", "choices", "answerType")}) + "\n" for c in cases)
    out = subprocess.run(["node", str(ROOT / "bin" / "recipe.mjs"), "verify", "--input", "-", "--preset", preset], input=lines, capture_output=True, text=True, cwd=ROOT, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("preset", ["strict", "recipe"])
def test_the_regression_table_gives_the_same_verdicts_through_the_glue_as_through_the_cli(preset):
    cases = [c for c in TABLE if c.get("preset", "strict") == preset and not c.get("judge")]
    expected = cli_verdicts(cases, preset)
    verifier = recipe_reward.Verifier(command=CLI, preset=preset)
    try:
        got = verifier.verify([recipe_reward._case(c["response"], c["answer"], {"choices": c.get("choices"), "answer_type": c.get("answerType")}) for c in cases])
    finally:
        verifier.close()

    assert len(got) == len(cases) > 0
    for case, e, g in zip(cases, expected, got):
        assert (g["correct"], g["reason"], g["format"], g["extracted"]) == (e["correct"], e["reason"], e["format"], e["extracted"]), case["id"]


def test_compute_score_is_the_recipe_reward(monkeypatch):
    monkeypatch.setattr(recipe_reward, "_verifier", recipe_reward.Verifier(command=CLI, preset="strict"))
    try:
        right = recipe_reward.compute_score("s", "<think>2+2</think><answer>4</answer>", "4", {"index": 0})
        wrong = recipe_reward.compute_score("s", "<think>2+2</think><answer>5</answer>", "4", None)
        unformatted = recipe_reward.compute_score("s", "\\boxed{4}", "4", {})
        # The gold as a data set gives it (a solution text), read by the verifier's gold extraction.
        solution_gold = recipe_reward.compute_score("s", "<think>w</think><answer>840</answer>", "so it is \\boxed{840}.\n**Final Answer**\n\\boxed{840}", {})
        unreadable_gold = recipe_reward.compute_score("s", "<think>w</think><answer>1</answer>", "\\boxed{W(n) = 1", {})
        batch = recipe_reward.compute_score_batch(["s", "s"], ["<answer>B</answer>", "<answer>C</answer>"], ["B", "B"], [{"choices": ["1", "2", "3"]}, {"choices": ["1", "2", "3"]}])
    finally:
        recipe_reward._verifier.close()

    assert right["score"] == pytest.approx(1.0) and right["reason"] == "match_exact"
    assert wrong["score"] == pytest.approx(0.1) and wrong["acc"] == 0.0
    assert unformatted["score"] == pytest.approx(0.9)
    assert [b["acc"] for b in batch] == [1.0, 0.0]
    assert solution_gold["acc"] == 1.0 and unreadable_gold["reason"] == "gold_unreadable"


def test_the_glue_restarts_a_crashed_verifier_once():
    verifier = recipe_reward.Verifier(command=CLI, preset="strict")
    try:
        first = verifier.verify([{"response": "<answer>1</answer>", "answer": "1"}])
        verifier.proc.kill()
        verifier.proc.wait()
        second = verifier.verify([{"response": "<answer>2</answer>", "answer": "2"}])
    finally:
        verifier.close()

    assert first[0]["correct"] and second[0]["correct"]
    assert verifier.restarts == 1


def test_the_glue_fails_loudly_when_the_verifier_keeps_crashing(tmp_path):
    crasher = tmp_path / "crash.sh"
    crasher.write_text("#!/bin/sh\nexit 1\n")
    crasher.chmod(0o755)
    verifier = recipe_reward.Verifier(command=str(crasher), preset="strict")

    with pytest.raises(recipe_reward.VerifierCrashed):
        verifier.verify([{"response": "<answer>1</answer>", "answer": "1"}])
