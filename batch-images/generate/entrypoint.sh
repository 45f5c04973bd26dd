#!/usr/bin/env bash
# Entry point of the `generate` image. With RECIPE_SERVING=batch it starts vLLM's OpenAI server for the
# configured model (tensor parallelism = GPU count unless set), waits for /health, runs the worker
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

if [ "${RECIPE_SERVING:-batch}" = "batch" ]; then
  if [ -z "${RECIPE_SERVE_MODEL:-}" ]; then echo '{"level":"ERROR","message":"RECIPE_SERVE_MODEL is not set"}'; exit 3; fi
  GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  TP=${RECIPE_TENSOR_PARALLEL:-${GPUS:-1}}
  if [ "$TP" -lt 1 ]; then TP=1; fi
  ARGS=(serve "$RECIPE_SERVE_MODEL" --host 127.0.0.1 --port "$PORT" --tensor-parallel-size "$TP"
        --served-model-name "$RECIPE_SERVE_MODEL" --limit-mm-per-prompt "{\"image\": ${RECIPE_MAX_IMAGES:-8}}")
  if [ -n "${RECIPE_MAX_MODEL_LEN:-}" ]; then ARGS+=(--max-model-len "$RECIPE_MAX_MODEL_LEN"); fi
  echo "{\"level\":\"INFO\",\"message\":\"starting vLLM\",\"model\":\"$RECIPE_SERVE_MODEL\",\"tensorParallel\":$TP}"
  vllm "${ARGS[@]}" &
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
