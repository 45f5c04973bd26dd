"""core/models/image-architectures.ts (what `recipe validate` refuses a model by) is what this image's
lock actually loads: a lock bump without regenerating it fails here."""

from __future__ import annotations

import os

from architectures import read, supported


def test_the_table_recipe_validate_uses_is_this_locks():
    image = os.environ.get("RECIPE_IMAGE", "train-rl")

    assert read().get(image) == supported(), (
        f"run: $(bash tests/images/venv.sh {image}) tests/images/architectures.py {image}"
    )
