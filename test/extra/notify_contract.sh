#!/usr/bin/env bash
# The notification contract as a law (test/notify_contract.js): on every
# write path the extension has, each notification names exactly the fields
# state_sync reports from the version before, carries their values where
# payloads may, and a device applying it ends equal to state_full.  It needs
# a LISTENing client next to the writer, so it is not a SQL test.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v node >/dev/null || { echo "notify_contract: node not found (install nodejs)"; exit 1; }
# the pg driver, exactly as the gateway's lockfile pins it
stamp=gateway/node_modules/.roastr-lock-stamp
if ! cmp -s gateway/package-lock.json "$stamp" 2>/dev/null; then
	npm ci --prefix gateway --no-audit --no-fund --loglevel=error >/dev/null
	cp gateway/package-lock.json "$stamp"
fi
exec node test/notify_contract.js
