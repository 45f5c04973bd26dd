"""verl reward glue: the project's one verifier, through a long-lived Node process.

verl loads this file by path (``custom_reward_function.path``) and calls ``compute_score`` (or
``compute_score_batch``). Each call is a JSON line to ``recipe verify --input -`` running as a child
process, and its verdict line back: one verifier implementation for the SFT filter, difficulty
estimation and the RL reward; no Python port.

    score = 0.9 * accuracy + 0.1 * format

Environment: RECIPE_VERIFY_CMD (default ``node /opt/recipe/verify.mjs``), RECIPE_VERIFY_PRESET
(``strict`` or ``recipe``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
from typing import Any

ACCURACY_WEIGHT = 0.9
FORMAT_WEIGHT = 0.1


class VerifierCrashed(RuntimeError):
    """The Node verifier died twice in a row: rewards cannot be trusted, so training must stop."""


class Verifier:
    """A long-lived ``recipe verify`` process; restarts it once after a crash, then fails loudly."""

    def __init__(self, command: str | None = None, preset: str | None = None) -> None:
        self.command = command or os.environ.get("RECIPE_VERIFY_CMD", "node /opt/recipe/verify.mjs")
        self.preset = preset or os.environ.get("RECIPE_VERIFY_PRESET", "strict")
        self.proc: subprocess.Popen[str] | None = None
        self.restarts = 0  # in total, for logs
        self._consecutive = 0  # crashes since the last good exchange
        self._lock = threading.Lock()
        self._next_id = 0

    def _start(self) -> None:
        args = shlex.split(self.command) + ["--input", "-", "--preset", self.preset]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env={**os.environ, "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED": "true"},
        )

    def _exchange(self, lines: list[str]) -> list[dict[str, Any]]:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write("".join(line + "\n" for line in lines))
        self.proc.stdin.flush()
        out = []
        for _ in lines:
            reply = self.proc.stdout.readline()
            if not reply:
                raise BrokenPipeError("verifier closed its output")
            out.append(json.loads(reply))
        return out

    def verify(self, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with self._lock:
            lines = []
            for case in cases:
                self._next_id += 1
                lines.append(json.dumps({**case, "id": self._next_id}))
            while True:
                if self.proc is not None and self.proc.poll() is not None:
                    self._crashed()
                try:
                    result = self._exchange(lines)
                    self._consecutive = 0
                    return result
                except (BrokenPipeError, OSError, ValueError):
                    self._crashed()

    def _crashed(self) -> None:
        """Counts a crash; a second crash in a row stops training instead of giving wrong rewards."""
        self.close()
        if self._consecutive >= 1:
            raise VerifierCrashed(f"the verifier process ({self.command}) crashed again after a restart")
        self._consecutive += 1
        self.restarts += 1

    def close(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.proc = None


_verifier: Verifier | None = None


def _shared() -> Verifier:
    global _verifier
    if _verifier is None:
        _verifier = Verifier()
    return _verifier


def _case(solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None) -> dict[str, Any]:
    extra = extra_info or {}
    case: dict[str, Any] = {"response": solution_str or "", "answer": str(ground_truth)}
    choices = extra.get("choices")
    if choices is not None and len(choices) > 0:
        case["choices"] = [str(c) for c in choices]
    if extra.get("answer_type"):
        case["answerType"] = str(extra["answer_type"])
    return case


def _score(verdict: dict[str, Any]) -> dict[str, Any]:
    accuracy = 1.0 if verdict["correct"] else 0.0
    fmt = float(verdict["format"])
    return {
        "score": ACCURACY_WEIGHT * accuracy + FORMAT_WEIGHT * fmt,
        "acc": accuracy,
        "format": fmt,
        "reason": verdict["reason"],
        # Never None: verl's process_validation_metrics skips a field only when its first value is a
        # string and calls np.mean on any other, so a None here crashed the first validation.
        "extracted": verdict.get("extracted") or "",
    }


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """verl's reward signature; returns a dict whose ``score`` is the reward."""
    return _score(_shared().verify([_case(solution_str, ground_truth, extra_info)])[0])


def compute_score_batch(
    data_sources: list[str],
    solution_strs: list[str],
    ground_truths: list[Any],
    extra_infos: list[dict[str, Any] | None],
) -> list[dict[str, Any]]:
    """The batched variant: one round trip for the whole batch."""
    cases = [_case(s, g, e) for s, g, e in zip(solution_strs, ground_truths, extra_infos)]
    return [_score(v) for v in _shared().verify(cases)]
