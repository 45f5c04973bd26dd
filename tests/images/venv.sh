#!/usr/bin/env bash
# Prints the python of a CPU virtual environment installed from one GPU image's lock, building it on
# first use. The environment is cached outside the repository, one per lock:
#   ~/.cache/recipe-venvs/<image>-<hash of the lock, the GPU-only list, the test tools and this script>
# so a changed lock builds a new one and an unchanged one is reused (RECIPE_VENV_CACHE moves it).
#   bash tests/images/venv.sh <image>          (an image folder under batch-images/ with a requirements.lock)
# Installs exactly the lock (--no-deps) less tests/images/gpu-only.txt, then the test tools constrained
# by the lock. Only PyPI is needed (torch's CPU index is not: PyPI's CUDA torch imports without a GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
image="${1:?usage: venv.sh <image>}"
lock="batch-images/$image/requirements.lock"
[ -f "$lock" ] || { echo "no $lock" >&2; exit 3; }
cache="${RECIPE_VENV_CACHE:-$HOME/.cache/recipe-venvs}"
hash="$(cat "$lock" tests/images/gpu-only.txt tests/images/requirements-test.txt tests/images/venv.sh | sha256sum | cut -c1-16)"
dir="$cache/$image-$hash"
if [ -f "$dir/.complete" ]; then echo "$dir/bin/python"; exit 0; fi

uv="$(bash tests/images/uv.sh)"
# The images run Python 3.12 (vllm/vllm-openai:v0.11.0); the CPU environment uses the same minor.
python=""
for p in "${RECIPE_PYTHON312:-}" "$(command -v python3.12 || true)" "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
  if [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
    python="$p"; break
  fi
done
[ -n "$python" ] || python="3.12" # uv finds or downloads one
start=$SECONDS
rm -rf "$dir.tmp"
mkdir -p "$cache"
"$uv" venv -q --relocatable -p "$python" "$dir.tmp" >&2
filtered="$dir.tmp/requirements.cpu.txt"
skip="$(grep -v '^#' tests/images/gpu-only.txt | grep . | paste -sd'|')"
grep -E '^[A-Za-z0-9]' "$lock" | grep -viE "^($skip)==" > "$filtered"
"$uv" pip install -q -p "$dir.tmp/bin/python" --no-deps -r "$filtered" >&2
"$uv" pip install -q -p "$dir.tmp/bin/python" -r tests/images/requirements-test.txt -c "$filtered" >&2
rm -rf "$dir" && mv "$dir.tmp" "$dir"
echo "$image: $(wc -l < "$dir/requirements.cpu.txt") packages of $lock installed in $((SECONDS - start)) s ($(du -sh "$dir" | cut -f1)) at $dir" >&2
touch "$dir/.complete"
echo "$dir/bin/python"
