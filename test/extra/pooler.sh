#!/usr/bin/env bash
# Behind a transaction pooler: every client reaches roastr_state through
# PgBouncer (Debian's package) in pool_mode = transaction with a pool of 2
# server connections, calling it the way PostgREST does (BEGIN; SET LOCAL
# ROLE; set_config('request.jwt.claims', ..., true); the call; COMMIT).  The
# checks are in test/pooler.js.  It takes a pooler process and many client
# connections, so it is not a SQL test.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v node >/dev/null || { echo "pooler: node not found (install nodejs)"; exit 1; }
if [ -z "${ROASTR_CLUSTER_DIR:-}" ] || [ ! -d "$ROASTR_CLUSTER_DIR/data" ]; then
	echo "pooler: needs the cluster of scripts/cluster.sh (ROASTR_CLUSTER_DIR)"; exit 1
fi
# shellcheck source=scripts/harness.sh
source scripts/harness.sh
gateway_node_modules

db=rs_pooler
dir=$(mktemp -d /tmp/roastr_pooler.XXXXXX)
port=6439
pgb_pid=""
# shellcheck disable=SC2317   # called through the EXIT trap
cleanup() {
	[ -n "$pgb_pid" ] && kill "$pgb_pid" 2>/dev/null && wait "$pgb_pid" 2>/dev/null || true
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION roastr_state" >/dev/null

# Two pools of the same database: "rs_pooler" with 2 server connections for
# the load, "rs_pooler_one" with 1 for the deterministic demonstrations of
# what leaks through a pooler (a session-level setting, a named prepared
# statement).  Trust on the unix socket, as the cluster is.
pgbouncer_start "$dir" "$port" "authenticator postgres" \
	"$db = host=$PGHOST port=$PGPORT dbname=$db pool_size=2
${db}_one = host=$PGHOST port=$PGPORT dbname=$db pool_size=1" || exit 1

status=0
POOL_PGBOUNCER_VERSION=$(pgbouncer --version | sed -n '1s/^PgBouncer \([0-9.]*\).*/\1/p') \
	POOL_HOST=$dir POOL_PORT=$port POOL_DB=$db DIRECT_DB=$db node test/pooler.js || status=$?
if [ "$status" -ne 0 ]; then
	echo "---- pgbouncer log"; tail -n 30 "$dir/pgbouncer.log"
fi
exit "$status"
