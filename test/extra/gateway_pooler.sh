#!/usr/bin/env bash
# The reference gateway and a transaction pooler: LISTEN needs a session of
# its own.  PgBouncer (Debian's package) runs in pool_mode = transaction on
# a unix socket, as in test/extra/pooler.sh.
#
#   1. PG* point the whole gateway at the pooler, LISTEN included: it must
#      refuse to start (exit 3) saying LISTEN needs a direct session.  The
#      same when only LISTEN_DATABASE_URL points at the pooler.
#   2. PG* point at the pooler, LISTEN_PGHOST/LISTEN_PGPORT at PostgreSQL:
#      it starts, and devices work (test/gateway_pooler.js): authorized and
#      synced through the pooler, changes relayed live over the direct
#      LISTEN connection, patches, catch-ups, the HTTP reads.  PgBouncer's
#      SHOW CLIENTS holds the gateway's query connections and no LISTEN
#      connection; PostgreSQL holds the LISTEN connection.
#
# It takes a pooler process, a gateway and WebSocket clients, so it is not a
# SQL test.  Exit 0 = pass.
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v node >/dev/null || { echo "gateway_pooler: node not found (install nodejs)"; exit 1; }
if [ -z "${ROASTR_CLUSTER_DIR:-}" ] || [ ! -d "$ROASTR_CLUSTER_DIR/data" ]; then
	echo "gateway_pooler: needs the cluster of scripts/cluster.sh (ROASTR_CLUSTER_DIR)"; exit 1
fi
# shellcheck source=scripts/harness.sh
source scripts/harness.sh
gateway_node_modules

db=rs_gateway_pooler
gw_role=roastr_gateway
user_id=c3333333-3333-4333-8333-333333333333
secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
owner=$(stat -c %U "$ROASTR_CLUSTER_DIR")
dir=$(mktemp -d /tmp/roastr_gateway_pooler.XXXXXX)
chmod 755 "$dir"
port=6438
pgb_pid=""
gw_pid=""
# shellcheck disable=SC2317   # called through the EXIT trap
cleanup() {
	[ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null || true
	[ -n "$pgb_pid" ] && kill "$pgb_pid" 2>/dev/null && wait "$pgb_pid" 2>/dev/null || true
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION roastr_state;
SELECT roastr_state.ensure_user('$user_id', 'p@example.com', 'Pat') IS NOT NULL;
DO \$\$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$gw_role') THEN
		CREATE ROLE $gw_role LOGIN NOINHERIT;
	END IF;
END \$\$;
GRANT authenticated TO $gw_role;
SQL

# One pool of 2 server connections; trust on the unix socket, as the
# cluster is; postgres may read SHOW CLIENTS.
pgbouncer_start "$dir" "$port" "$gw_role postgres" \
	"$db = host=$PGHOST port=$PGPORT dbname=$db pool_size=2" || exit 1

passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }

# 1. LISTEN through the pooler: refused at start.
refused() {   # refused NAME ENV...
	local name=$1 rc=0 out=$dir/refused.log
	shift
	env PGDATABASE=$db PGUSER=$gw_role JWT_SECRET="$secret" PORT=0 HOST=127.0.0.1 "$@" \
		timeout 60 node gateway/server.js >"$out" 2>&1 || rc=$?
	if [ "$rc" -eq 3 ] \
		&& grep -q '^gateway: refusing to start: the LISTEN connection goes through a transaction pooler (.*). LISTEN needs a direct session' "$out" \
		&& grep -q '"msg":"refusing to start","kind":"pooler"' "$out" && ! grep -q '"msg":"listening"' "$out"; then
		ok "$name"
		grep '^gateway:' "$out" | sed 's/^/#   /'
	else
		not_ok "$name (exit $rc):"; cat "$out"
	fi
}
refused "the gateway refuses to start when PG* point its LISTEN connection at the transaction pooler" \
	PGHOST="$dir" PGPORT=$port
refused "... and when only LISTEN_DATABASE_URL points at it" \
	LISTEN_DATABASE_URL="postgresql://$gw_role@/$db?host=$dir&port=$port"

# 2. Queries through the pooler, LISTEN direct: works.
log_file=$dir/gateway.log
env PGDATABASE=$db PGUSER=$gw_role JWT_SECRET="$secret" PORT=0 HOST=127.0.0.1 HEARTBEAT_MS=1000 \
	PGHOST="$dir" PGPORT=$port LISTEN_PGHOST="$PGHOST" LISTEN_PGPORT="$PGPORT" \
	node gateway/server.js >"$log_file" 2>&1 &
gw_pid=$!
gw_port=""
for _ in $(seq 200); do
	gw_port=$(sed -n 's/.*"msg":"listening","port":\([0-9]*\).*/\1/p' "$log_file")
	[ -n "$gw_port" ] && break
	sleep 0.05
done
if [ -n "$gw_port" ]; then
	ok "with LISTEN_PGHOST/LISTEN_PGPORT pointing at PostgreSQL and PG* at the pooler, the gateway starts"
else
	not_ok "the gateway did not start with a direct LISTEN connection:"; cat "$log_file"
	exit 1
fi

rc=0
GW_URL=http://127.0.0.1:$gw_port JWT_SECRET=$secret USER_ID=$user_id PGDATABASE=$db \
	node test/gateway_pooler.js >"$dir/driver.log" 2>&1 || rc=$?
grep -E '^(ok|not ok) ' "$dir/driver.log" || true
p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$dir/driver.log")
f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$dir/driver.log")
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-1}))
[ "$rc" -eq 0 ] || { [ "${f:-1}" -gt 0 ] || failed=$((failed + 1)); cat "$dir/driver.log"; }

# Who is connected where; the heartbeat (every second) has run meanwhile.
sleep 2
# (the application_name column by its header: PgBouncer 1.21 and later add
# columns after it)
clients=$(psql -X -A -F '|' -h "$dir" -p $port -U postgres -d pgbouncer -c 'SHOW CLIENTS' |
	awk -F '|' -v db=$db 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "application_name") a = i; next }
		$3 == db { print $1, $2, $a }' | sort | uniq -c)
direct=$(psql -X -At -d "$db" -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$gw_role' AND application_name = 'roastr_state_gateway_listen'")
if grep -q "C $gw_role roastr_state_gateway\$" <<<"$clients" && ! grep -q roastr_state_gateway_listen <<<"$clients" && [ "$direct" = 1 ]; then
	ok "the gateway's query connections are PgBouncer's clients; its one LISTEN connection is PostgreSQL's, directly"
else
	not_ok "where the gateway is connected: pgbouncer clients [$clients], direct LISTEN connections $direct"
fi
if grep -q '"level":"error"' "$log_file"; then
	not_ok "the gateway logged errors:"; grep '"level":"error"' "$log_file"
else
	ok "no error in the gateway's log (the heartbeat found the LISTEN connection's pid unchanged)"
fi

kill -TERM "$gw_pid"
wait "$gw_pid" || true
gw_pid=""
echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
	echo "---- gateway log"; tail -n 30 "$log_file"
	echo "---- pgbouncer log"; tail -n 30 "$dir/pgbouncer.log"
	exit 1
fi
