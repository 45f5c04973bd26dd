#!/usr/bin/env bash
# The GPU images' real tools on CPU (shared/DESIGN.md "The real tools run here"): for each image, a
# CPU virtual environment from its requirements.lock (tests/images/venv.sh, cached under
# ~/.cache/recipe-venvs), then its checks: verl's RLHFDataset, BatchRewardManager and run_ppo's Ray
# start-up (train-rl); vLLM's serve parser and request model (generate); lmms-engine's dataset,
# processor, packing, an optimizer step, checkpoint, resume and export through the launcher
# (train-sft); lmms-eval's task loading and OpenAI-compatible model type scored by the project's
# verifier (evaluate); each lock against its packages' declared requirements (every image). Then
# e2e: a run with training and evaluation on, in the embedded runtime (recipe run), with both the
# train-sft and the evaluate environments: train-sft killed and resumed, train-rl from its model,
# evaluate, the report's table (tests/images/e2e).
#   bash tests/images/run.sh [image ... | e2e]     (default: train-rl generate train-sft evaluate e2e)
set -euo pipefail
cd "$(dirname "$0")/../.."
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(train-rl generate train-sft evaluate e2e)
for image in "${images[@]}"; do
  start=$SECONDS
  if [ "$image" = e2e ]; then
    sft_python="$(bash tests/images/venv.sh train-sft)"
    python="$(bash tests/images/venv.sh evaluate)"
    echo "== e2e: environments ready in $((SECONDS - start)) s ($sft_python, $python)"
    RECIPE_SFT_PYTHON="$sft_python" "$python" -m pytest -q -p no:cacheprovider --import-mode=importlib \
      --rootdir tests/images tests/images/e2e
    continue
  fi
  python="$(bash tests/images/venv.sh "$image")"
  echo "== $image: environment ready in $((SECONDS - start)) s ($python)"
  RECIPE_IMAGE="$image" "$python" -m pytest -q -p no:cacheprovider --import-mode=importlib \
    --rootdir tests/images tests/images/test_locks.py tests/images/test_architectures.py "tests/images/$image"
done
