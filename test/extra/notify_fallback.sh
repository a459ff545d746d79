#!/usr/bin/env bash
# Notifications still arrive when the background notifier cannot be used:
#  1. the library is not in shared_preload_libraries (no shared memory), and
#  2. no background worker slot is free (max_worker_processes exhausted),
# in which case writers NOTIFY from their own transaction.  Each case needs
# a server started with different settings, so this starts its own clusters.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/cluster.sh
source scripts/cluster.sh

probe=test/notify_probe
cc -O2 -Wall -Wextra -o "$probe" test/notify_probe.c \
	-I"$(pg_config --includedir)" -L"$(pg_config --libdir)" -lpq

u=c1111111-1111-4111-8111-111111111111
fail=0

# run_case NAME EXPECTED_PRELOADED EXPECTED_FALLBACKS [conf lines...]
run_case() {
	local name=$1 want_preloaded=$2 want_fallbacks=$3 out stats
	shift 3
	out=$(mktemp)
	cluster_start "$@" >/dev/null
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION roastr_state;
SELECT roastr_state.ensure_user('$u', 'fallback@example.com');
SQL
	"$probe" -n 1 -t 10000 "user:$u" >"$out" &
	local pid=$!
	for _ in $(seq 100); do grep -q '^ready$' "$out" && break; sleep 0.05; done
	psql -X -q -v ON_ERROR_STOP=1 -c "SELECT roastr_state.patch('$u', '{\"roasting.enabled\": false}')" >/dev/null
	local status=0
	wait "$pid" || status=$?
	stats=$(psql -X -At -c "SELECT roastr_state.notify_stats()")
	if [ "$status" -ne 0 ] || ! grep -q "^user:$u {\"type\":\"roasting_toggle\",\"version\":2," "$out"; then
		echo "$name: the notification did not arrive (probe status $status): $(cat "$out")"; fail=1
	elif [ "$(psql -X -At -c "SELECT '$stats'::jsonb->>'preloaded'")" != "$want_preloaded" ]; then
		echo "$name: expected preloaded=$want_preloaded: $stats"; fail=1
	elif [ "$want_fallbacks" != "-" ] &&
		[ "$(psql -X -At -c "SELECT '$stats'::jsonb->>'direct_fallbacks'")" != "$want_fallbacks" ]; then
		echo "$name: expected direct_fallbacks=$want_fallbacks: $stats"; fail=1
	else
		echo "$name: ok ($stats)"
	fi
	cluster_stop
	rm -f "$out"
}

ROASTR_PORT=5497 ROASTR_PRELOAD="" run_case "not preloaded" false -
# the logical replication launcher takes the only worker slot
ROASTR_PORT=5497 run_case "no worker slot" true 1 "max_worker_processes = 1"
exit "$fail"
