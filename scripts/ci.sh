#!/usr/bin/env bash
# The test command: installs what is missing, then type-checks, lints, checks formatting and runs every jest suite.
# The three static checks run beside the suites (which spend much of their time waiting on windows and servers);
# each one's output is printed when the suites are done, and any failure fails the command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
declare -A pids
check() {
  local name=$1
  shift
  "$@" >"$logs/$name" 2>&1 &
  pids[$name]=$!
}
check typecheck npx tsc --noEmit -p .
check lint npx eslint --max-warnings 0 .
check format npx prettier --check --log-level warn .

status=0
npm test --silent -- "$@" || status=$?

for name in typecheck lint format; do
  if wait "${pids[$name]}"; then
    echo "$name: ok"
  else
    echo "$name: FAILED"
    cat "$logs/$name"
    status=1
  fi
done
exit "$status"
