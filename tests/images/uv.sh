#!/usr/bin/env bash
# Prints the path of a pinned uv (PyPI's `uv` wheel in its own small venv, cached under
# ~/.cache/recipe-venvs), installing it on first use. Shared by lock.sh and venv.sh.
set -euo pipefail
UV_VERSION=0.13.9
cache="${RECIPE_VENV_CACHE:-$HOME/.cache/recipe-venvs}"
dir="$cache/uv-$UV_VERSION"
if [ ! -x "$dir/bin/uv" ]; then
  mkdir -p "$cache"
  rm -rf "$dir.tmp"
  python3 -m venv "$dir.tmp" >&2
  "$dir.tmp/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" >&2
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
fi
echo "$dir/bin/uv"
