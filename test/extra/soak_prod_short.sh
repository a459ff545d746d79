#!/usr/bin/env bash
# A short production soak (scripts/soak_prod.sh: 30 s of traffic, 2,000
# users, 8 clients, 60 gateway devices) so that the production topology --
# the standby, PgBouncer's reload, the gateways' crash and restart, the
# failover with its lost commits, the old primary read apart, and every
# check -- cannot rot between the long runs of `make soak
# TOPOLOGY=production`.  It runs its own servers (port 5497), PgBouncer and
# gateways, so it is a shell test: 50 s on the idle 2-core machine, 75 s
# under load (PostgreSQL 15 and, in its root, 17).  The
# verdict is the soak's: the last line is "soak: PASS" and the exit status 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
SOAK_SECONDS=${SOAK_PROD_SHORT_SECONDS:-30} SOAK_USERS=2000 SOAK_CLIENTS=8 SOAK_DEVICES=60 \
	SOAK_REPORT_DIR=tmp_check/soak_prod_short exec bash scripts/soak_prod.sh
