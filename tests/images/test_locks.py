"""Each image's requirements.lock against what its pinned packages declare, checked in the CPU
environment installed from that lock (RECIPE_IMAGE names the image): every Requires-Dist of every
pinned package (verl's tensordict range, vLLM's torch and transformers floors, ...) is met by the lock's
pins, and the needs the tools have but do not declare (below, each with its reason) are met too."""

from __future__ import annotations

import inspect
import os
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT
from lock import installed_problems, read_lock, requirement_problems

IMAGE = os.environ.get("RECIPE_IMAGE", "train-rl")
LOCK = ROOT / "batch-images" / IMAGE / "requirements.lock"
GPU_ONLY = {
    canonicalize_name(line.strip())
    for line in (ROOT / "tests" / "images" / "gpu-only.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}

# What the pinned tools need and their metadata does not say, with why.
UNDECLARED = {
    "train-rl": {
        "qwen-vl-utils": (">=0.0.13", "verl 0.6.1 calls fetch_image(image, image_patch_size=...)"),
        "transformers": (">=4.57", "the recipe trained with 4.57.1; Qwen3-VL is in transformers from 4.57"),
    },
    "train-sft": {
        "opencv-python-headless": (
            ">=4",
            "lmms-engine 0.1.2 imports cv2 (its Bagel transforms, through the model registry its cli loads) without declaring it",
        ),
    },
    "generate": {
        "transformers": (">=4.57", "vLLM 0.11.0's qwen3_vl.py imports transformers.models.qwen3_vl (4.57+)"),
    },
    "evaluate": {
        "transformers": (">=4.57", "vLLM 0.11.0's qwen3_vl.py imports transformers.models.qwen3_vl (4.57+)"),
    },
}


def declared(pins: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, set[str]]]:
    """Requires-Dist of every pinned package installed here, and the extras the others ask of each."""
    requires = {}
    for name in pins:
        try:
            requires[name] = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            assert name in GPU_ONLY, f"{name} is pinned but not installed"
    extras: dict[str, set[str]] = {}
    for lines in requires.values():
        for line in lines:
            req = Requirement(line)
            if req.extras and not (req.marker and "extra" in str(req.marker)):
                extras.setdefault(canonicalize_name(req.name), set()).update(req.extras)
    # The extras the image's own requirements.in asks for.
    for line in (LOCK.parent / "requirements.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line.split("#")[0].strip())
            extras.setdefault(canonicalize_name(req.name), set()).update(req.extras)
    return requires, extras


def undeclared_problems(pins: dict[str, str]) -> list[str]:
    problems = []
    for name, (spec, why) in UNDECLARED[IMAGE].items():
        req = Requirement(f"{name}{spec}")
        if name not in pins or not req.specifier.contains(pins[name]):
            problems.append(f"{name} {spec} ({why}); the lock pins {pins.get(name)}")
    return problems


def test_the_lock_meets_every_requirement_its_packages_declare():
    pins = read_lock(LOCK)
    requires, extras = declared(pins)

    assert requirement_problems(pins, requires, extras) == []
    assert undeclared_problems(pins) == []


def requirements_in_problems(pins: dict[str, str]) -> list[str]:
    """The image's own requirements.in (the recipe's pins: vLLM 0.11.0, transformers 4.57.1, ...)."""
    problems = []
    for line in (LOCK.parent / "requirements.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line.split("#")[0].strip())
            pin = pins.get(canonicalize_name(req.name))
            if pin is None or not req.specifier.contains(pin):
                problems.append(f"requirements.in asks {req}; the lock pins {pin}")
    return problems


def test_the_lock_pins_what_requirements_in_asks():
    assert requirements_in_problems(read_lock(LOCK)) == []


def test_this_environment_is_the_lock_less_the_gpu_only_packages():
    assert installed_problems(read_lock(LOCK), GPU_ONLY) == []


@pytest.mark.parametrize(
    "old",
    [
        {"tensordict": "0.6.2"},  # the verl 0.5 application image's
        {"transformers": "4.55.4"},  # the verl 0.5 application image's
        {"qwen-vl-utils": "0.0.11"},
        {"torch": "2.7.1"},
        {"vllm": "0.10.0"},
    ],
)
def test_the_old_image_pins_fail_the_check(old):
    pins = {**read_lock(LOCK), **old}
    requires, extras = declared(read_lock(LOCK))
    name = next(iter(old))
    if name not in read_lock(LOCK):
        pytest.skip(f"{IMAGE} does not pin {name}")
    if IMAGE == "train-sft" and name == "qwen-vl-utils":
        pytest.skip("lmms-engine 0.1.2 asks no version of qwen-vl-utils (verl 0.6.1's need is train-rl's)")

    problems = requirement_problems(pins, requires, extras) + undeclared_problems(pins) + requirements_in_problems(pins)

    assert any(f"{name}=={old[name]}" in p or f"pins {old[name]}" in p for p in problems), problems


def test_the_undeclared_needs_are_real_in_this_environment():
    """The reasons above, checked against the installed code (not a fake)."""
    from importlib.util import find_spec

    if IMAGE == "train-sft":
        spec = find_spec("lmms_engine")
        transforms = Path(spec.origin).parent / "models" / "bagel" / "transforms.py"
        assert re.search(r"^import cv2$", transforms.read_text(), re.M)
        assert "cv2" not in " ".join(metadata.requires("lmms-engine") or [])
        return
    if IMAGE == "train-rl":
        from qwen_vl_utils import fetch_image

        assert "image_patch_size" in inspect.signature(fetch_image).parameters
        import verl.utils.dataset.vision_utils as vision_utils

        assert "image_patch_size=" in inspect.getsource(vision_utils)
    import transformers.models.qwen3_vl  # noqa: F401  (4.57+)
    import transformers.models.qwen3_vl_moe  # noqa: F401

    spec = find_spec("vllm.model_executor.models.qwen3_vl")
    assert spec and re.search(r"from transformers\.models\.qwen3_vl", Path(spec.origin).read_text())
