#!/usr/bin/env bash
# The GPU images' real tools on CPU (shared/DESIGN.md "The real tools run here"): for each image, a
# CPU virtual environment from its requirements.lock (tests/images/venv.sh, cached under
# ~/.cache/recipe-venvs), then its checks: verl's RLHFDataset, BatchRewardManager and run_ppo's Ray
# start-up (train-rl); vLLM's serve parser and request model (generate); lmms-engine's dataset,
# processor, packing, an optimizer step, checkpoint, resume and export through the launcher
# (train-sft); lmms-eval's task loading and OpenAI-compatible model type scored by the project's
# verifier (evaluate); each lock against its packages' declared requirements (every image).
#   bash tests/images/run.sh [image ...]     (default: train-rl generate train-sft evaluate)
set -euo pipefail
cd "$(dirname "$0")/../.."
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(train-rl generate train-sft evaluate)
for image in "${images[@]}"; do
  start=$SECONDS
  python="$(bash tests/images/venv.sh "$image")"
  echo "== $image: environment ready in $((SECONDS - start)) s ($python)"
  RECIPE_IMAGE="$image" "$python" -m pytest -q -p no:cacheprovider --import-mode=importlib \
    --rootdir tests/images tests/images/test_locks.py tests/images/test_architectures.py "tests/images/$image"
done
