#!/usr/bin/env bash
# Unit tests of the reference gateway (gateway/test/unit/*.test.js): what
# needs no database — configuration, token checks, cursor, history, channel and patch
# parsing, the relay-or-catch-up decision (histories too), each device's state machine (failovers, PT503), error
# mapping, backoff, the HTTP handler (on loopback, with a fake database),
# the login role and transaction pooler checks (with a fake PostgreSQL),
# the metrics.
# Runs `npm test` in gateway/ (node --test) and prints node's summary; exit 0
# when every test passes.  The end-to-end checks are gateway_e2e.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in node npm; do
	command -v "$tool" >/dev/null || { echo "gateway_unit: $tool not found (install nodejs and npm)"; exit 1; }
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
	echo "gateway_unit: Node.js 18 or later is needed (found $(node --version))"; exit 1
fi

# Node dependencies, exactly as locked; again only when the lockfile changed
# (scripts/harness.sh).
# shellcheck source=scripts/harness.sh
source scripts/harness.sh
gateway_node_modules

# node --test's report, one line per test, then its summary.
npm_test_report gateway_unit gateway --test-reporter=tap
