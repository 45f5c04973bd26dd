#!/usr/bin/env bash
# npm run test:localstack: install LocalStack (pinned, cached venv), start it in host mode on a free
# port with all its state under .recipe/localstack/, run the LocalStack suite, and stop it by PID
# whatever happens, checking that no LocalStack or Lambda process is left behind.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
VERSION=4.14.0
VENV="$ROOT/.venv-localstack"
LOCK="$ROOT/tests/localstack/requirements-runtime-$VERSION.txt"
EXECUTOR="$ROOT/tests/localstack/executor"
PY313="${LOCALSTACK_PYTHON:-$( (pyenv root 2>/dev/null || echo "$HOME/.pyenv") )/versions/3.13.0/bin/python3}"

stamp="$VERSION $(cat "$LOCK" "$EXECUTOR/pyproject.toml" | sha256sum | cut -c1-16)"
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.recipe-stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "[localstack] installing localstack-core $VERSION into $VENV"
  [[ -x "$PY313" ]] || { echo "[localstack] needs Python 3.13 (set LOCALSTACK_PYTHON); not found at $PY313" >&2; exit 2; }
  rm -rf "$VENV"
  "$PY313" -m venv "$VENV"
  "$VENV/bin/pip" install -q -c "$LOCK" "localstack-core[runtime]==$VERSION"
  "$VENV/bin/pip" install -q --no-deps -e "$EXECUTOR"
  echo "$stamp" > "$VENV/.recipe-stamp"
fi

STATE="$ROOT/.recipe/localstack"
rm -rf "$STATE"
mkdir -p "$STATE/tmp"
PORT="${LOCALSTACK_PORT:-$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
ENDPOINT="http://127.0.0.1:$PORT"

# Its own session, so the whole process group can be stopped by PID.
setsid env \
  OVERRIDE_IN_DOCKER=0 \
  FILESYSTEM_ROOT="$STATE" TMPDIR="$STATE/tmp" \
  GATEWAY_LISTEN="127.0.0.1:$PORT" \
  SERVICES=s3,stepfunctions,lambda,events,iam,sts,logs,cloudformation,ssm,ec2,kms,sns,sqs,cloudwatch,secretsmanager \
  DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 \
  LAMBDA_RUNTIME_EXECUTOR=recipe-host \
  RECIPE_LAMBDA_NODE="$(command -v node)" \
  RECIPE_LAMBDA_NODE_MODULES="$ROOT/node_modules" \
  "$VENV/bin/python" "$ROOT/tests/localstack/launch.py" > "$STATE/localstack.log" 2>&1 &
LS_PID=$!

# Paths LocalStack writes to when it believes it runs in its Docker image; none may appear.
OUTSIDE=(/tmp/lambda /etc/localstack /var/lib/localstack /usr/lib/localstack /tmp/localstack-s3-storage /tmp/localstack)
before=""
for p in "${OUTSIDE[@]}"; do [[ -e "$p" ]] && before+="$p "; done

leftovers() { pgrep -f "recipe_localstack_executor/bootstrap.mjs" || true; }
stop() {
  local rc=$?
  if kill -0 "$LS_PID" 2>/dev/null; then
    kill -TERM -- "-$LS_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$LS_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$LS_PID" 2>/dev/null || true
  fi
  # Lambda environments run in sessions of their own and exit when LocalStack goes; wait for that.
  for _ in $(seq 1 50); do [[ -z "$(leftovers)" ]] && break; sleep 0.2; done
  if [[ -n "$(leftovers)" ]]; then
    echo "[localstack] Lambda processes left running: $(leftovers | tr '\n' ' ')" >&2
    leftovers | xargs -r kill -KILL
    rc=1
  fi
  for p in "${OUTSIDE[@]}"; do
    if [[ -e "$p" && " $before " != *" $p "* ]]; then
      echo "[localstack] wrote outside the project: $p" >&2
      rc=1
    fi
  done
  if [[ $rc -ne 0 ]]; then echo "[localstack] last lines of $STATE/localstack.log:" >&2; tail -40 "$STATE/localstack.log" >&2 || true; fi
  exit $rc
}
trap stop EXIT

for i in $(seq 1 150); do
  if curl -fsS "$ENDPOINT/_localstack/health" >/dev/null 2>&1; then break; fi
  kill -0 "$LS_PID" 2>/dev/null || { echo "[localstack] exited during start" >&2; exit 1; }
  [[ $i -eq 150 ]] && { echo "[localstack] not healthy after 30 s" >&2; exit 1; }
  sleep 0.2
done
echo "[localstack] up at $ENDPOINT (pid $LS_PID, state in $STATE)"

export RECIPE_TEST_TARGET=localstack LOCALSTACK_ENDPOINT="$ENDPOINT" LOCALSTACK_STATE="$STATE"
if [[ "${1:-}" == "--" ]]; then
  shift
  "$@" # another command against the running LocalStack (debugging)
else
  npx vitest run tests/integration/localstack.test.ts "$@"
fi
