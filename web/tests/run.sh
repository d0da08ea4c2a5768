#!/usr/bin/env bash
# End-to-end tests of the web client: real parley server + Debian's headless Chromium.
#   PARLEY_BIN=/path/to/parley web/tests/run.sh [extra node --test args] [some.test.mjs ...]
# Without test files it runs them all. Without PARLEY_BIN the helper looks for
# target/release/parley and target/debug/parley.
set -euo pipefail
# Test files may be given relative to where this was started, or to web/tests.
args=()
tests=0
for arg in "$@"; do
  case "$arg" in
    *.test.mjs)
      tests=1
      if [ -f "$arg" ]; then arg="$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")"; fi
      ;;
  esac
  args+=("$arg")
done
cd "$(dirname "$0")"
if [ ! -x /usr/bin/chromium ]; then
  echo "run.sh: /usr/bin/chromium is missing (apt-get install -y chromium)" >&2
  exit 1
fi
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
if [ "$tests" = 0 ]; then args+=(./*.test.mjs); fi
exec node --test --test-concurrency=1 --test-timeout=180000 "${args[@]}"
