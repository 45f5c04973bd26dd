#!/usr/bin/env bash
# Resolves each GPU image's requirements.in into its requirements.lock: every package pinned, for
# the images' Python (3.12, x86_64 Linux, as in vllm/vllm-openai:v0.11.0). EXCLUDE_NEWER keeps a
# re-lock reproducible: the resolver sees PyPI as it stood then (after the pins' own releases).
#   bash tests/images/lock.sh [image ...]      (default: every batch-images/*/requirements.in)
set -euo pipefail
cd "$(dirname "$0")/../.."
EXCLUDE_NEWER=2025-12-01
uv="$(bash tests/images/uv.sh)"
images=("$@")
if [ ${#images[@]} -eq 0 ]; then
  for f in batch-images/*/requirements.in; do images+=("$(basename "$(dirname "$f")")"); done
fi
for image in "${images[@]}"; do
  dir="batch-images/$image"
  "$uv" pip compile "$dir/requirements.in" -o "$dir/requirements.lock" -q \
    --python-version 3.12 --python-platform x86_64-manylinux_2_28 --exclude-newer "$EXCLUDE_NEWER" \
    --custom-compile-command "bash tests/images/lock.sh $image"
  echo "$dir/requirements.lock: $(grep -c '^[a-z0-9]' "$dir/requirements.lock") packages"
done
