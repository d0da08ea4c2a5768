#!/usr/bin/env bash
# End-to-end tests of the web client: real parley server + Debian's headless Chromium.
#   PARLEY_BIN=/path/to/parley web/tests/run.sh [extra node --test args]
# Without PARLEY_BIN the helper looks for target/release/parley and target/debug/parley.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x /usr/bin/chromium ]; then
  echo "run.sh: /usr/bin/chromium is missing (apt-get install -y chromium)" >&2
  exit 1
fi
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
exec node --test --test-concurrency=1 --test-timeout=180000 "$@" ./*.test.mjs
