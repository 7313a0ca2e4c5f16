#!/usr/bin/env bash
# The test command: installs what is missing, then type-checks and runs every jest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc --noEmit -p .
npm test --silent -- "$@"
