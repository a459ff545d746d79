#!/usr/bin/env bash
# The device client end to end in a real browser: the example page
# (client/examples/, using client/src as it is) in headless Chromium,
# driven by Playwright (client/test/browser/e2e.js), two browser contexts
# as two devices of one user, against the REAL gateway (node
# gateway/server.js) and a fresh database of the running cluster.  Proves
# live delivery of a toggle (latency measured), the offline queue through a
# reload (localStorage, never persona text) applied exactly once, a
# same-field conflict and its three resolutions, and HTTP polling when the
# socket is refused; saves screenshots in tmp_check/client_browser/.
#
# Needs Debian's chromium (installed here when missing, as root) and the
# client's npm packages (playwright-core, pinned; npm ci when the lock file
# changed).  Never downloads a browser.
#   ROASTR_BROWSER_BREAK=no-update|no-storage   break the client in the page
#                                               (the test must then fail)
#   CLIENT_BROWSER_LISTEN_MODE=per-user|shared  the gateway's mode (per-user)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

for tool in node npm psql; do
	command -v "$tool" >/dev/null || { echo "client_browser: $tool not found"; exit 1; }
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
	echo "client_browser: Node.js 20 or later is needed (found $(node --version))"; exit 1
fi
if [ -z "${PGHOST:-}" ]; then
	echo "client_browser: needs the test cluster (PGHOST etc., as make test exports them)"; exit 1
fi

# Debian's Chromium (scripts/deps.sh lists it too); Playwright's own
# browser download is never used.
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "client_browser: $chromium not found; install it: sudo apt-get install chromium"; exit 1
	fi
	echo "client_browser: installing Debian's chromium"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; } \
		|| { echo "client_browser: apt-get install chromium failed"; exit 1; }
fi

# shellcheck source=scripts/harness.sh
source scripts/harness.sh
client_node_modules
gateway_node_modules

db=rs_client_browser
user=c1111111-1111-4111-8111-111111111111
secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
out=$root/tmp_check/client_browser
logdir=$(mktemp -d)
gw_pid=""
page_pid=""
driver_pid=""

# shellcheck disable=SC2317   # called through the EXIT trap
cleanup() {
	local p
	for p in "$driver_pid" "$gw_pid" "$page_pid"; do
		[ -n "$p" ] || continue
		kill "$p" 2>/dev/null || true
		timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
	done
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$logdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$out"
mkdir -p "$out"

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SET client_min_messages = warning" \
	-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
CREATE EXTENSION roastr_state;
SELECT roastr_state.ensure_user('$user', 'cleo@example.com', 'Cleo') IS NOT NULL;
SQL

# What sed -n SCRIPT prints of FILE once it prints something (up to 10 s,
# while process PID lives).
wait_for() {
	local file=$1 script=$2 pid=$3 v=""
	for _ in $(seq 200); do
		v=$(sed -n "$script" "$file" | head -n 1)
		[ -n "$v" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	printf '%s' "$v"
}

# The page's files (client/examples, client/src, two browser modules).
node client/examples/serve.js --static --port 0 >"$logdir/page.log" 2>&1 &
page_pid=$!
page_url=$(wait_for "$logdir/page.log" 's|^example: serving \(http://[0-9.:]*\)/examples/.*|\1|p' "$page_pid")
if [ -z "$page_url" ]; then
	echo "client_browser: the page server did not start:"; cat "$logdir/page.log"; exit 1
fi

# The real gateway, logging in as a role of its own whose only membership is
# authenticated (README, Gateway), the page's origin admitted (CORS_ORIGIN).
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
DO $$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'roastr_gateway') THEN
		CREATE ROLE roastr_gateway LOGIN NOINHERIT;
	END IF;
END $$;
GRANT authenticated TO roastr_gateway;
SQL
mode=${CLIENT_BROWSER_LISTEN_MODE:-per-user}
PGDATABASE=$db PGUSER=roastr_gateway JWT_SECRET=$secret LISTEN_MODE=$mode CORS_ORIGIN=$page_url \
	PORT=0 HOST=127.0.0.1 node gateway/server.js >"$logdir/gateway.log" 2>&1 &
gw_pid=$!
port=$(wait_for "$logdir/gateway.log" 's/.*"msg":"listening","port":\([0-9]*\).*/\1/p' "$gw_pid")
if [ -z "$port" ]; then
	echo "client_browser: the gateway did not start:"; cat "$logdir/gateway.log"; exit 1
fi
echo "client_browser: page $page_url, gateway http://127.0.0.1:$port ($mode), database $db, $("$chromium" --version 2>/dev/null || echo chromium)"

# In the background, so that a signal (test.sh's timeout, Ctrl-C) runs the
# cleanup at once; the driver closes the browser on SIGTERM.
status=0
(cd client && exec env PGDATABASE=$db PAGE_URL="$page_url" GW_URL="http://127.0.0.1:$port" JWT_SECRET="$secret" \
	USER_ID=$user OUT_DIR="$out" CHROMIUM="$chromium" timeout 300 node test/browser/e2e.js) &
driver_pid=$!
wait "$driver_pid" || status=$?
driver_pid=""

if ! kill -0 "$gw_pid" 2>/dev/null; then
	echo "not ok - the gateway was no longer running (it crashed)"; status=1
fi
if [ "$status" -ne 0 ]; then
	echo "---- last 30 lines of the gateway log"; tail -n 30 "$logdir/gateway.log"
	echo "client_browser: FAILED"
else
	echo "client_browser: ok"
fi
exit "$status"
