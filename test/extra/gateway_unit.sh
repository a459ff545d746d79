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

out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
# node --test's TAP stream: one line per test (the whole stream when one
# failed), then node's summary.
npm test --prefix gateway --silent -- --test-reporter=tap >"$out" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
	cat "$out"
else
	grep -E '^(not )?ok [0-9]+ - ' "$out" || true
fi
grep -E '^# (tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) ' "$out"
if [ "$status" -ne 0 ]; then
	echo "gateway_unit: FAILED (npm test exited $status)"
else
	echo "gateway_unit: ok"
fi
exit "$status"
