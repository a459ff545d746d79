#!/usr/bin/env bash
# Tests of the device client (client/test/*.test.js), no database needed:
# the queue, rebase and conflict rules, the transports (PostgREST requests
# and error mapping; the gateway protocol over a real Socket.IO server with
# the stand-in gateway), the storage adapters, the Zustand/React bindings,
# the TypeScript declarations, and the randomized test (several devices,
# faults, reloads and failovers against a model of the extension).  Runs
# `npm test` in client/ (node --test) and prints node's summary; exit 0 when
# every test passes.  The browser end-to-end test is client_browser.sh.
#   ROASTR_SEED=N / ROASTR_ITERATIONS=N   passed on to the randomized test
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in node npm; do
	command -v "$tool" >/dev/null || { echo "client_unit: $tool not found (install nodejs and npm)"; exit 1; }
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
	echo "client_unit: Node.js 20 or later is needed (found $(node --version))"; exit 1
fi

# Node dependencies, exactly as locked; again only when the lockfile changed
# (scripts/harness.sh).
# shellcheck source=scripts/harness.sh
source scripts/harness.sh
client_node_modules

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# node --test's report (TAP when not on a terminal, as here, up to Node 22;
# spec from 23): one line per test (everything when one failed), the
# randomized test's seed and counts, then node's summary.
npm test --prefix client --silent >"$out" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
	cat "$out"
else
	grep -E '^(not )?ok [0-9]+ - |^[✔✖] |randomized: ' "$out" || true
fi
grep -E '^(#|ℹ) (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' "$out"
if [ "$status" -ne 0 ]; then
	echo "client_unit: FAILED (npm test exited $status)"
else
	echo "client_unit: ok"
fi
exit "$status"
