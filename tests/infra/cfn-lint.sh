#!/usr/bin/env bash
# cfn-lint (PyPI, pinned, in a git-ignored virtual environment) over the templates `cdk synth` emits:
# the default context and with alarmEmail. Prebuilt image URIs stand in for the Docker assets (no
# Docker engine here); everything else is the template a user deploys. Fails on any cfn-lint error;
# warnings are printed (W3005: CDK adds DependsOn that a GetAtt already implies).
set -euo pipefail
cd "$(dirname "$0")/../.."
CFN_LINT_VERSION=1.58.0
VENV=.venv-cfn-lint
if ! "$VENV/bin/cfn-lint" --version 2>/dev/null | grep -q "$CFN_LINT_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "cfn-lint==$CFN_LINT_VERSION"
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/recipe-cfn-lint-XXXXXX")
trap 'rm -rf "$out"' EXIT
images=(-c generateImageUri=123456789012.dkr.ecr.us-east-1.amazonaws.com/recipe-generate:1
  -c trainImageUri=123456789012.dkr.ecr.us-east-1.amazonaws.com/recipe-train-rl:1
  -c sftImageUri=123456789012.dkr.ecr.us-east-1.amazonaws.com/recipe-train-sft:1
  -c evalImageUri=123456789012.dkr.ecr.us-east-1.amazonaws.com/recipe-evaluate:1)
for variant in default alarm-email; do
  extra=()
  [ "$variant" = alarm-email ] && extra=(-c alarmEmail=ops@example.com)
  if ! npx cdk synth -q -o "$out/$variant" "${images[@]}" "${extra[@]}" >"$out/$variant.log" 2>&1; then
    cat "$out/$variant.log" >&2
    echo "cdk synth failed for the $variant context" >&2
    exit 1
  fi
  echo "cfn-lint $CFN_LINT_VERSION: $variant context"
  # Exit status is a bit mask: 2 errors, 4 warnings, 8 informational. Only errors fail; warnings print.
  rc=0
  "$VENV/bin/cfn-lint" --regions us-east-1 -- "$out/$variant"/*.template.json || rc=$?
  if (( rc & 2 )); then
    echo "cfn-lint found errors in the $variant template" >&2
    exit 1
  fi
done
echo "cfn-lint: no errors"
