#!/usr/bin/env bash
# The test command: installs what is missing, then type-checks, lints, checks formatting and runs every jest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc --noEmit -p .
npx eslint --max-warnings 0 .
npx prettier --check --log-level warn .
npm test --silent -- "$@"
