#!/usr/bin/env bash
# scripts/example.sh — `make example`: the device client's example page
# (client/examples/: two devices side by side, the settings screen, the
# conflict dialog) in your browser, against the REAL gateway and database:
# a throwaway cluster, a database with the extension and one user, the
# reference gateway (node gateway/server.js), and the page's file server
# (node client/examples/serve.js --gateway … --secret … --user …).  Prints
# the URL to open and what to type to change things as the backend would;
# runs until Ctrl-C, then removes everything.
#
#   EXAMPLE_PORT    the page's port (default 8090)
#   GATEWAY_PORT    the gateway's port (default 8080)
#   ROASTR_NO_BUILD=1   use the installed extension as it is (no build, no
#                   make install)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [ -z "${ROASTR_NO_BUILD:-}" ]; then
	bash scripts/deps.sh
	make -s >/dev/null
	make -s install >/dev/null
fi

# shellcheck source=scripts/cluster.sh
source scripts/cluster.sh
# shellcheck source=scripts/harness.sh
HARNESS_NAME=example source scripts/harness.sh
gateway_node_modules
client_node_modules

page_port=${EXAMPLE_PORT:-8090}
gw_port=${GATEWAY_PORT:-8080}
ANN=5e0c0c1a-0000-4000-8000-0000000000a1
work=$(mktemp -d /tmp/roastr_example.XXXXXX)
gw_pid=""
page_pid=""
finish() {
	local p
	trap '' INT TERM
	for p in "$page_pid" "$gw_pid"; do
		[ -n "$p" ] || continue
		kill "$p" 2>/dev/null || true
		timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
	done
	cluster_stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap finish EXIT
trap 'echo; exit 0' INT
trap 'exit 143' TERM

for p in "$page_port" "$gw_port"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		echo "example: port $p is in use; choose others: EXAMPLE_PORT=… GATEWAY_PORT=… make example" >&2
		exit 1
	fi
done

cluster_start >/dev/null
export PGDATABASE=roastr_example
psql -X -q -d postgres -c "CREATE DATABASE roastr_example"
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION roastr_state;
SELECT roastr_state.ensure_user('$ANN', 'ann@example.com', 'Ann') IS NOT NULL;
SQL

JWT_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
page=http://127.0.0.1:$page_port
gateway=http://127.0.0.1:$gw_port

# The gateway logs in as a role of its own whose only membership is
# authenticated (README, Gateway) and admits the page's origin.
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
DO $$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'roastr_gateway') THEN
		CREATE ROLE roastr_gateway LOGIN NOINHERIT;
	END IF;
END $$;
GRANT authenticated TO roastr_gateway;
SQL
PGUSER=roastr_gateway JWT_SECRET=$JWT_SECRET PORT=$gw_port HOST=127.0.0.1 CORS_ORIGIN=$page \
	node gateway/server.js >"$work/gateway.log" 2>&1 &
gw_pid=$!
for _ in $(seq 200); do
	grep -q '"msg":"listening"' "$work/gateway.log" && break
	kill -0 "$gw_pid" 2>/dev/null || break
	sleep 0.05
done
if ! grep -q '"msg":"listening"' "$work/gateway.log"; then
	echo "example: the gateway did not start:" >&2; cat "$work/gateway.log" >&2; exit 1
fi

# The page, with a token for Ann signed with the gateway's secret.
(cd client && exec node examples/serve.js --port "$page_port" --gateway "$gateway" --secret "$JWT_SECRET" --user "$ANN") \
	>"$work/page.log" 2>&1 &
page_pid=$!
url=""
for _ in $(seq 200); do
	url=$(sed -n 's/^example: open \(http[^ ]*\).*/\1/p' "$work/page.log")
	[ -n "$url" ] && break
	kill -0 "$page_pid" 2>/dev/null || break
	sleep 0.05
done
if [ -z "$url" ]; then
	echo "example: the page server did not start:" >&2; cat "$work/page.log" >&2; exit 1
fi

bold=$(tput bold 2>/dev/null || true)
plain=$(tput sgr0 2>/dev/null || true)
cat <<EOF

${bold}The example page against the real gateway and database${plain}

  Open in your browser:
    $url

  Two devices of Ann's, each a createStateClient with its own storage and
  connection.  Tick "sin conexión" on one, change the same setting on both,
  untick it: the conflict dialog offers keep mine / use the server's /
  combine.  The same URL in another browser (or a private window) adds two
  more devices.

  What the backend does, as the service (the page follows at once):
    psql -h $PGHOST -p $PGPORT -U postgres roastr_example -c "SELECT roastr_state.consume_roasts('$ANN', 10)"
    psql -h $PGHOST -p $PGPORT -U postgres roastr_example -c "SELECT roastr_state.patch('$ANN', '{\"subscription.plan\": \"pro\"}')"
    psql -h $PGHOST -p $PGPORT -U postgres roastr_example -c "SELECT roastr_state.state_full('$ANN')->'roasting'"

  gateway $gateway (per-user LISTEN; log: $work/gateway.log) · database roastr_example
  Ctrl-C stops the page, the gateway and the cluster.
EOF

# Until Ctrl-C (or one of them stops).
while kill -0 "$gw_pid" 2>/dev/null && kill -0 "$page_pid" 2>/dev/null; do
	sleep 1 &
	wait $! || true
done
# (Ctrl-C reaches them too: give the INT trap its moment first)
sleep 0.5 &
wait $! || true
echo "example: the gateway or the page server stopped:" >&2
tail -n 20 "$work/gateway.log" "$work/page.log" >&2
exit 1
