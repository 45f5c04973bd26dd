"""An image's requirements.lock: read it, check an environment installs exactly it, and check it
against what the pinned packages themselves declare (their Requires-Dist).

    python3 lock.py verify <requirements.lock> [--skip NAME ...]

verifies that every package of the lock is installed at its pinned version (the Dockerfiles run
this after installing the lock; a base image's own build of a pin, e.g. torch 2.8.0+cu128 for
torch==2.8.0, counts as that pin). tests/images/test_locks.py uses the same functions.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

# The images' interpreter and platform (vllm/vllm-openai:v0.11.0), for evaluating markers.
IMAGE_ENVIRONMENT = {
    **default_environment(),
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}


def read_lock(path: str | Path) -> dict[str, str]:
    """Package name (canonical) -> pinned version, for every `name==version` line."""
    pins: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)", line)
        if m:
            pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def public(version: str) -> Version:
    """A version without its local label (2.8.0+cu128 -> 2.8.0)."""
    return Version(Version(version).public)


def requirement_problems(
    pins: dict[str, str],
    declared: dict[str, list[str]],
    extras: dict[str, set[str]] | None = None,
) -> list[str]:
    """Every declared requirement (of a pinned package, for the extras asked of it) that the lock's pin
    of the required package does not satisfy. `declared`: package -> its Requires-Dist lines."""
    extras = extras or {}
    problems = []
    for package, lines in sorted(declared.items()):
        asked = extras.get(package, set()) | {""}
        for line in lines:
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({**IMAGE_ENVIRONMENT, "extra": e}) for e in asked):
                continue
            name = canonicalize_name(req.name)
            if name not in pins:
                # Required but absent: only the packages the image leaves to its base or the CPU
                # environment leaves out may be absent; the caller says which.
                problems.append(f"{package} {pins.get(package, '?')} requires {req}, which the lock does not pin")
                continue
            if req.specifier and not req.specifier.contains(public(pins[name]), prereleases=True):
                problems.append(f"{package} {pins.get(package, '?')} requires {req}; the lock pins {name}=={pins[name]}")
    return problems


def installed_problems(pins: dict[str, str], skip: set[str]) -> list[str]:
    """Pins the running interpreter does not have at exactly the pinned version."""
    problems = []
    for name, want in sorted(pins.items()):
        if name in skip:
            continue
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}=={want}: not installed")
            continue
        if public(have) != public(want):
            problems.append(f"{name}=={want}: {have} is installed")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "verify":
        print(__doc__, file=sys.stderr)
        return 2
    skip = {canonicalize_name(s) for s in argv[argv.index("--skip") + 1 :]} if "--skip" in argv else set()
    pins = read_lock(argv[1])
    problems = installed_problems(pins, skip)
    for p in problems:
        print(f"lock mismatch: {p}", file=sys.stderr)
    if not problems:
        print(f"{argv[1]}: all {len(pins) - len(skip & pins.keys())} pinned packages installed at their pins")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
