#!/usr/bin/env bash
# Proves the reference gateway (gateway/) end to end with real processes: two
# gateways, one per LISTEN mode (per-user, shared), against a fresh database
# of the running cluster; socket.io-client devices with HS256 JWTs; patches
# made through SQL; a restart of the PostgreSQL server while devices are
# connected.  The checks are in gateway/test/e2e.js.  SQL cannot test this:
# it takes WebSocket clients, timing and a server restart.  Before, a gateway
# must refuse to start when it logs in as Supabase's authenticator (granted
# anon and service_role too) or as a superuser; the gateways log in as a
# dedicated role (roastr_gateway, granted authenticated only).  Afterwards
# the gateways must stop cleanly on SIGTERM, and their logs must hold no
# token, no secret and no payload.
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in node npm; do
	command -v "$tool" >/dev/null || { echo "gateway_e2e: $tool not found (install nodejs and npm)"; exit 1; }
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
	echo "gateway_e2e: Node.js 18 or later is needed (found $(node --version))"; exit 1
fi
if [ -z "${ROASTR_CLUSTER_DIR:-}" ] || [ ! -d "$ROASTR_CLUSTER_DIR/data" ]; then
	echo "gateway_e2e: needs the cluster of scripts/cluster.sh (ROASTR_CLUSTER_DIR), to restart it"; exit 1
fi

# Node dependencies, exactly as locked; again only when the lockfile changed.
# shellcheck source=scripts/harness.sh
source scripts/harness.sh
gateway_node_modules

db=rs_gateway_e2e
user_a=a1111111-1111-4111-8111-111111111111
user_b=b2222222-2222-4222-8222-222222222222
secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
logdir=$(mktemp -d)
declare -A gw_pid=()
gw_role=roastr_gateway

# shellcheck disable=SC2317   # called through the EXIT trap
cleanup() {
	local p
	for p in "${gw_pid[@]}"; do kill "$p" 2>/dev/null || true; done
	# e2e.js takes LOGIN away for a moment; never leave it so
	psql -X -q -d postgres -c "ALTER ROLE $gw_role LOGIN" >/dev/null 2>&1 || true
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$logdir"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
CREATE EXTENSION roastr_state;
SELECT roastr_state.ensure_user('$user_a', 'a@example.com', 'Ann') IS NOT NULL;
SELECT roastr_state.ensure_user('$user_b', 'b@example.com', 'Bob') IS NOT NULL;
SQL

# The gateways' own login role, as gateway/README.md tells operators to
# create it: it can become authenticated and nothing else.  Roles are
# cluster-wide; it stays, like cluster.sh's.
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<SQL
SET client_min_messages = warning;
DO \$\$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$gw_role') THEN
		CREATE ROLE $gw_role LOGIN NOINHERIT;
	END IF;
END \$\$;
GRANT authenticated TO $gw_role;
SQL

status=0
# A login role that could become more than authenticated: refused at start,
# exit 3, with a message naming what is too much.  ALLOW_PRIVILEGED_LOGIN_ROLE
# turns that into a warning.
refusal() {   # refusal NAME PGUSER PATTERN [ENV...]: the gateway must exit 3 saying PATTERN
	local name=$1 user=$2 pattern=$3 rc=0 out
	shift 3
	out=$logdir/refused.log
	env "$@" PGDATABASE=$db PGUSER="$user" JWT_SECRET="$secret" PORT=0 HOST=127.0.0.1 \
		timeout 30 node gateway/server.js >"$out" 2>&1 || rc=$?
	if [ "$rc" -eq 3 ] && grep -q "^gateway: refusing to start: .*$pattern" "$out" \
		&& grep -q '"msg":"refusing to start"' "$out" && ! grep -qF -- "$secret" "$out"; then
		echo "ok - $name"
	else
		echo "not ok - $name (exit $rc):"; cat "$out"; status=1
	fi
}
refusal "the gateway refuses to start as authenticator (also granted anon and service_role)" \
	authenticator 'the login role "authenticator" is a member of "anon", "service_role" besides "authenticated"'
refusal "the gateway refuses to start as a superuser" postgres 'the login role "postgres" is a superuser'
refusal "the gateway refuses a DB_ROLE that bypasses row security" $gw_role 'DB_ROLE "service_role" has BYPASSRLS' DB_ROLE=service_role
PGDATABASE=$db PGUSER=authenticator JWT_SECRET=$secret PORT=0 HOST=127.0.0.1 ALLOW_PRIVILEGED_LOGIN_ROLE=true \
	node gateway/server.js >"$logdir/allowed.log" 2>&1 &
allowed_pid=$!
for _ in $(seq 100); do grep -q '"msg":"listening"' "$logdir/allowed.log" && break; sleep 0.05; done
kill -TERM "$allowed_pid" 2>/dev/null || true
wait "$allowed_pid" || true
if grep -q '"msg":"listening"' "$logdir/allowed.log" && grep -q '"level":"warn","msg":"ALLOW_PRIVILEGED_LOGIN_ROLE: .*service_role' "$logdir/allowed.log"; then
	echo "ok - ALLOW_PRIVILEGED_LOGIN_ROLE=true lets it start as authenticator, with a warning"
else
	echo "not ok - ALLOW_PRIVILEGED_LOGIN_ROLE=true:"; cat "$logdir/allowed.log"; status=1
fi

urls=""
for mode in per-user shared; do
	PGDATABASE=$db PGUSER=$gw_role JWT_SECRET=$secret LISTEN_MODE=$mode \
		PORT=0 HOST=127.0.0.1 LOG_LEVEL=debug \
		node gateway/server.js >"$logdir/$mode.log" 2>&1 &
	gw_pid[$mode]=$!
	port=""
	for _ in $(seq 100); do
		port=$(sed -n 's/.*"msg":"listening","port":\([0-9]*\).*/\1/p' "$logdir/$mode.log")
		[ -n "$port" ] && break
		sleep 0.05
	done
	if [ -z "$port" ]; then
		echo "gateway_e2e: the $mode gateway did not start:"; cat "$logdir/$mode.log"; exit 1
	fi
	urls="$urls $mode=http://127.0.0.1:$port"
done

# Restarting the server the way cluster.sh runs it: as the cluster's owner.
bindir=$("${PG_CONFIG:-pg_config}" --bindir)
owner=$(stat -c %U "$ROASTR_CLUSTER_DIR")
as_owner=""
if [ "$(id -u)" -eq 0 ] && [ "$owner" != root ]; then as_owner="runuser -u $owner --"; fi
restart="cd '$ROASTR_CLUSTER_DIR' && $as_owner '$bindir/pg_ctl' -D '$ROASTR_CLUSTER_DIR/data'"
restart="$restart -l '$ROASTR_CLUSTER_DIR/server.log' -w -m fast restart >/dev/null"

PGDATABASE=$db GW_URLS=$urls GW_DB_USER=$gw_role JWT_SECRET=$secret USER_A=$user_a USER_B=$user_b \
	PG_RESTART_CMD=$restart node gateway/test/e2e.js || status=$?

# Graceful shutdown: SIGTERM, exit 0, promptly.
for mode in "${!gw_pid[@]}"; do
	p=${gw_pid[$mode]}
	rc=0
	if ! kill -TERM "$p" 2>/dev/null; then
		echo "not ok - the $mode gateway was no longer running (it crashed)"; status=1
	fi
	if ! timeout 10 tail --pid="$p" -f /dev/null; then
		kill -KILL "$p" 2>/dev/null || true
		rc=124
	fi
	wait "$p" || rc=$?
	unset "gw_pid[$mode]"
	if [ "$rc" -ne 0 ] || ! grep -q '"msg":"stopped"' "$logdir/$mode.log"; then
		echo "not ok - $mode gateway did not stop cleanly on SIGTERM (status $rc)"; status=1
	else
		echo "ok - $mode gateway stopped cleanly on SIGTERM"
	fi
done

# Logs: structured, and nothing secret or personal in them.
for mode in per-user shared; do
	f=$logdir/$mode.log
	if grep -vq '^{"time":' "$f"; then
		echo "not ok - $mode gateway wrote lines that are not JSON logs:"; grep -v '^{"time":' "$f" | head -5; status=1
	fi
	for needle in "$secret" 'eyJhbGci' '"data"' '"changes"' '"claims"' 'example.com' 'Ann ' 'roast_level' 'iambic' 'E_CONFLICT'; do
		if grep -qF -- "$needle" "$f"; then
			echo "not ok - $mode gateway log contains '$needle'"; status=1
		fi
	done
done

if [ "$status" -ne 0 ]; then
	for mode in per-user shared; do
		echo "---- last 40 lines of the $mode gateway log"; tail -n 40 "$logdir/$mode.log"
	done
else
	echo "gateway_e2e: ok"
fi
exit "$status"
