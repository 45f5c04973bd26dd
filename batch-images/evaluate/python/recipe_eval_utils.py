"""lmms-eval task functions of the recipe's benchmarks, scored by this project's verifier.

Each benchmark's ``<task>.py`` (rendered by core/eval/tasks.ts) calls ``bind(spec)`` with its columns
and gets lmms-eval's ``doc_to_visual``, ``doc_to_text``, ``process_results`` and the ``verdict``
metric's aggregation. ``process_results`` sends each answer to the evaluate image's verifier service
(``verify.mjs``: core/verify with the run's extraction preset, the deployed judge for what the rules
leave undecided), through the same long-lived-process glue as the RL reward (train-rl's
recipe_reward.py ``Verifier``, loaded from RECIPE_REWARD_PATH). Metrics, as the recipe's repository
reports them: ``acc_score`` (0/1) and ``format_score`` means.

Environment: RECIPE_REWARD_PATH (default /opt/recipe/recipe_reward.py), RECIPE_VERIFY_CMD (default
``node /opt/recipe/verify.mjs``), RECIPE_VERIFY_PRESET (``strict`` or ``recipe``).
"""

from __future__ import annotations

import ast
import importlib.util
import os
from typing import Any

LETTERS = "ABCDEFGHIJ"

_verifier = None


def _shared_verifier():
    """One verifier process per lmms-eval process, from the RL reward's own glue."""
    global _verifier
    if _verifier is None:
        path = os.environ.get("RECIPE_REWARD_PATH", "/opt/recipe/recipe_reward.py")
        spec = importlib.util.spec_from_file_location("recipe_reward", path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load the verifier glue from {path} (RECIPE_REWARD_PATH)")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _verifier = module.Verifier()
    return _verifier


def _choices(doc: dict[str, Any], column: str | None) -> list[str]:
    if not column:
        return []
    value = doc.get(column)
    if value is None:
        return []
    if isinstance(value, str):
        # MMMU keeps its options as a Python list literal ("['1', '2']").
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def _question(doc: dict[str, Any], spec: dict[str, Any]) -> str:
    cols = spec["columns"]
    text = str(doc.get(cols["question"], "")) if cols["question"] else ""
    choices = _choices(doc, cols.get("choices"))
    if choices and cols["question"]:
        text += "\n" + "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices) if i < len(LETTERS))
    return text


def _gold(doc: dict[str, Any], spec: dict[str, Any]) -> tuple[str, list[str]]:
    """The gold answer and the options the verifier may match a letter against."""
    answer = str(doc[spec["columns"]["answer"]])
    choices = _choices(doc, spec["columns"].get("choices"))
    if spec["choiceAnswer"] == "content" and choices and answer in choices:
        # MathVista: the gold is the option's content; the verifier reads it as that option's letter.
        return LETTERS[choices.index(answer)], choices
    return answer, choices


def bind(spec: dict[str, Any]):
    cols = spec["columns"]

    def doc_to_visual(doc):
        images = []
        for column in cols["images"]:
            image = doc.get(column)
            if image is not None:
                images.append(image.convert("RGB"))
        return images

    def doc_to_text(doc, lmms_eval_specific_kwargs=None):
        kwargs = lmms_eval_specific_kwargs or {}
        question = _question(doc, spec) or "Answer the question in the image."
        return f"{kwargs.get('pre_prompt', '')}{question}{kwargs.get('post_prompt', '')}"

    def process_results(doc, results):
        response = results[0] if results else ""
        gold, choices = _gold(doc, spec)
        case: dict[str, Any] = {"response": response or "", "answer": gold, "question": _question(doc, spec)}
        if choices:
            case["choices"] = choices
        verdict = _shared_verifier().verify([case])[0]
        correct = bool(verdict.get("correct"))
        return {
            "acc_score": 1.0 if correct else 0.0,
            "format_score": float(verdict.get("format", 0.0)),
            "verdict": {
                "id": str(doc.get(cols["id"], "")),
                "correct": correct,
                "reason": verdict.get("reason"),
                "extracted": verdict.get("extracted"),
                "judged": bool(verdict.get("judged", False)),
            },
        }

    def judged_count(items):
        """The ``verdict`` metric's aggregation: answers the judge decided."""
        return sum(1 for v in items if v.get("judged"))

    return doc_to_visual, doc_to_text, process_results, judged_count
