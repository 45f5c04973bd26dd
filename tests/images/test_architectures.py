"""core/models/image-architectures.ts (what `recipe validate` refuses a model by) is what this image's
lock actually loads: a lock bump without regenerating it fails here."""

from __future__ import annotations

import os

import pytest

from architectures import read, supported


def test_the_table_recipe_validate_uses_is_this_locks():
    image = os.environ.get("RECIPE_IMAGE", "train-rl")
    if image == "train-sft":
        # No vLLM in it, and one architecture: its launcher refuses any base model but Qwen2.5-VL.
        pytest.skip("train-sft serves nothing: the table is vLLM's and transformers' intersection")

    assert read().get(image) == supported(), (
        f"run: $(bash tests/images/venv.sh {image}) tests/images/architectures.py {image}"
    )
