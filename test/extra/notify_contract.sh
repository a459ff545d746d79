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
# shellcheck source=scripts/harness.sh
source scripts/harness.sh
gateway_node_modules
exec node test/notify_contract.js
