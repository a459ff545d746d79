#!/usr/bin/env bash
# A short soak (scripts/soak.sh: 20 s, 16 clients, 50 gateway devices) so
# that the soak harness -- its workload, ledger, gateway devices and every
# check -- cannot rot between the long runs of `make soak`.  It runs its own
# throwaway cluster (port 5496), so it is a shell test, not a SQL one.  The
# verdict is the soak's: the last line is "soak: PASS" and the exit status 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
SOAK_SECONDS=${SOAK_SHORT_SECONDS:-20} SOAK_CLIENTS=16 SOAK_DEVICES=50 \
	SOAK_REPORT_DIR=tmp_check/soak_short exec bash scripts/soak.sh
