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

# node --test's report, one line per test, then its summary.
npm_test_report client_unit client
