#!/usr/bin/env bash
# Entry point of the `generate` image. With RECIPE_SERVING=batch it starts vLLM's OpenAI server for the
# configured model (the serving plan of core/generate/serve-plan.ts), waits for /health, runs the worker
# against it and stops the server; with RECIPE_SERVING=endpoint it runs the worker against
# OPENAI_BASE_URL. Exit codes follow the Batch contract: 0 done, 3 bad input, 75 transient.
set -uo pipefail

WORKER_CMD=${RECIPE_WORKER_CMD:-"node /opt/recipe/generate.mjs"}
PORT=${RECIPE_VLLM_PORT:-8000}
HEALTH_TIMEOUT=${RECIPE_VLLM_STARTUP_SECONDS:-2400}
SERVER_PID=""

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
}
trap stop_server EXIT
# Spot reclaim sends SIGTERM: stop cleanly and ask Batch to retry; finished responses are cached.
trap 'echo "{\"level\":\"WARN\",\"message\":\"SIGTERM: stopping, will resume from the cache\"}"; stop_server; exit 75' TERM

# The model's config files only (config.json, the safetensors index): what the serving plan needs.
META_CMD=${RECIPE_MODEL_META_CMD:-"python3 -c 'import sys; from huggingface_hub import snapshot_download; print(snapshot_download(sys.argv[1], allow_patterns=[\"config.json\", \"model.safetensors.index.json\"]))'"}
SERVE_ARGS_CMD=${RECIPE_SERVE_ARGS_CMD:-"node /opt/recipe/serve-args.mjs"}
# Weights staged in S3 (teacher.weightsUri, rl.policyWeightsUri): copied to the host's disk through the
# S3 gateway endpoint and served from there, instead of every child downloading from the Hub.
STAGE_CMD=${RECIPE_STAGE_WEIGHTS_CMD:-"node /opt/recipe/stage-weights.mjs"}
WEIGHTS_ROOT=${RECIPE_WEIGHTS_ROOT:-/workspace/weights}

if [ "${RECIPE_SERVING:-batch}" = "batch" ]; then
  if [ -z "${RECIPE_SERVE_MODEL:-}" ]; then echo '{"level":"ERROR","message":"RECIPE_SERVE_MODEL is not set"}'; exit 3; fi
  RECIPE_GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  RECIPE_GPU_MEMORY_MIB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -1 | tr -dc '0-9')
  export RECIPE_GPUS RECIPE_GPU_MEMORY_MIB
  SERVE_FROM="$RECIPE_SERVE_MODEL"
  if [ -n "${RECIPE_WEIGHTS_URI:-}" ]; then
    STAGED=$($STAGE_CMD "$RECIPE_WEIGHTS_URI" "$WEIGHTS_ROOT")
    rc=$?
    if [ "$rc" -ne 0 ]; then echo "{\"level\":\"ERROR\",\"message\":\"cannot stage the weights from $RECIPE_WEIGHTS_URI\"}"; exit "$rc"; fi
    META_DIR="$STAGED"
    SERVE_FROM="$STAGED"
  elif ! META_DIR=$(eval "$META_CMD" '"$RECIPE_SERVE_MODEL"'); then
    echo '{"level":"ERROR","message":"cannot read the model config (model id, token or network)"}'; exit 75
  fi
  # TP from the model's attention heads and the GPUs, data parallel over the rest, context and
  # multimodal flags (core/generate/serve-plan.ts); exit 3 when the model cannot run on this instance.
  PLAN_FILE=$(mktemp)
  $SERVE_ARGS_CMD "$META_DIR" > "$PLAN_FILE" || exit $?
  mapfile -t PLAN < "$PLAN_FILE"
  ARGS=(serve "$SERVE_FROM" --host 127.0.0.1 --port "$PORT" --served-model-name "$RECIPE_SERVE_MODEL" "${PLAN[@]}")
  echo "{\"level\":\"INFO\",\"message\":\"starting vLLM\",\"model\":\"$RECIPE_SERVE_MODEL\"}"
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} vllm "${ARGS[@]}" &
  SERVER_PID=$!
  waited=0
  until curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo '{"level":"ERROR","message":"vLLM exited during start-up"}'; exit 75; fi
    if [ "$waited" -ge "$HEALTH_TIMEOUT" ]; then echo '{"level":"ERROR","message":"vLLM not healthy in time"}'; exit 75; fi
    sleep 2; waited=$((waited + 2))
  done
  export OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1"
  export RECIPE_MODEL="$RECIPE_SERVE_MODEL"
fi

$WORKER_CMD &
WORKER_PID=$!
wait "$WORKER_PID"
CODE=$?
stop_server
exit "$CODE"
