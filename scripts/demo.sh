#!/usr/bin/env bash
# scripts/demo.sh — `make demo`: two devices of one user stay in sync through
# the database alone.  Installs what is missing, builds, starts a throwaway
# cluster, narrates each step with real output, and removes the cluster.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/deps.sh
make -s >/dev/null
make -s install >/dev/null

# shellcheck source=scripts/cluster.sh
source scripts/cluster.sh
probe_pid=""
gateway_pid=""
device_pid=""
events=$(mktemp)
gwlog=$(mktemp)
devlog=$(mktemp)
finish() {
	for p in "$device_pid" "$gateway_pid" "$probe_pid"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null || true
	done
	rm -f "$events" "$gwlog" "$devlog"
	cluster_stop >/dev/null 2>&1 || true
}
trap finish EXIT
cluster_start >/dev/null

cc -O2 -o test/notify_probe test/notify_probe.c \
	-I"$(pg_config --includedir)" -L"$(pg_config --libdir)" -lpq

ANN=5e0c0c1a-0000-4000-8000-0000000000a1
export PGDATABASE=roastr_demo
psql -X -q -d postgres -c "CREATE DATABASE roastr_demo"
psql -X -q -c "CREATE EXTENSION roastr_state"

bold=$(tput bold 2>/dev/null || true)
plain=$(tput sgr0 2>/dev/null || true)
step() { printf '\n%s── %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '   %s\n' "$*"; }

# The service (the backend, role service_role) runs a statement.
as_service() {
	psql -X -At -v ON_ERROR_STOP=1 -c "SET ROLE service_role" -c "$1" | sed '/^SET$/d'
}
# A device of Ann's: role authenticated with Ann's JWT claims, as PostgREST
# sets them.  Errors are shown, not fatal.
as_device() {
	psql -X -At -c "SET ROLE authenticated" \
		-c "SELECT set_config('request.jwt.claims', '{\"sub\": \"$ANN\", \"role\": \"authenticated\"}', false) IS NULL" \
		-c "\\set SHOW_CONTEXT never" -c "$1" 2>&1 | sed '/^SET$/d; /^f$/d; s/^/   /' || true
}

step "1. The backend creates Ann's state (service role)"
show "SELECT roastr_state.ensure_user('$ANN', 'ann@example.com', 'Ann');"
as_service "SELECT jsonb_pretty(roastr_state.ensure_user('$ANN', 'ann@example.com', 'Ann') - 'persona' - 'subscription')" | sed 's/^/   /'

step "2. A gateway LISTENs on Ann's channel (any thin WebSocket relay would)"
test/notify_probe -t 20000 "user:$ANN" >"$events" &
probe_pid=$!
for _ in $(seq 100); do grep -q '^ready$' "$events" && break; sleep 0.05; done
show "LISTEN \"user:$ANN\"   -- ready"

step "2b. The reference gateway (gateway/, Node.js + Socket.IO) relays it to devices"
[ -d gateway/node_modules ] || npm ci --prefix gateway --no-audit --no-fund --loglevel=error >/dev/null
JWT_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export JWT_SECRET
# a login role of its own, whose only membership is authenticated
psql -X -q -v ON_ERROR_STOP=1 -d postgres >/dev/null <<'SQL'
DO $$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'roastr_gateway') THEN
		CREATE ROLE roastr_gateway LOGIN NOINHERIT;
	END IF;
END $$;
GRANT authenticated TO roastr_gateway;
SQL
PGUSER=roastr_gateway PORT=0 HOST=127.0.0.1 node gateway/server.js >"$gwlog" 2>&1 &
gateway_pid=$!
for _ in $(seq 100); do grep -q '"msg":"listening"' "$gwlog" && break; sleep 0.05; done
GWPORT=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$gwlog" | head -n 1)
node gateway/examples/device.js "http://127.0.0.1:$GWPORT" "$ANN" 1 1 >"$devlog" 2>&1 &
device_pid=$!
for _ in $(seq 100); do grep -q '^ready$' "$devlog" && break; sleep 0.05; done
show "gateway on 127.0.0.1:$GWPORT; the laptop's socket joined room user:$ANN with cursor 1"

step "3. Phone and laptop both load the state: version 1, roasting on"
show "phone : $(as_device "SELECT roastr_state.state_full()->'roasting' || jsonb_build_object('version', roastr_state.state_full()->'_meta'->'version')" | tr -d ' ')"
show "laptop: $(as_device "SELECT roastr_state.state_full()->'roasting' || jsonb_build_object('version', roastr_state.state_full()->'_meta'->'version')" | tr -d ' ')"

step "4. The phone turns roasting off, based on version 1"
show "SELECT roastr_state.patch(NULL, '{\"roasting.enabled\": false}', base_version => 1);"
as_device "SELECT roastr_state.patch(NULL, '{\"roasting.enabled\": false}', base_version => 1)"

step "5. The commit's notification (sent by the background notifier) reached the laptop live"
for _ in $(seq 100); do [ "$(grep -c '^user:' "$events")" -ge 1 ] && break; sleep 0.05; done
grep '^user:' "$events" | sed 's/^user:[^ ]* /   NOTIFY payload : /'
for _ in $(seq 100); do grep -q '^state_update' "$devlog" && break; sleep 0.05; done
grep '^state_update' "$devlog" | sed 's/^/   laptop socket  : /'

step "6. The laptop syncs from its cursor (1): only what changed comes back"
show "SELECT roastr_state.state_sync(NULL, 1);"
as_device "SELECT jsonb_pretty(jsonb_set(roastr_state.state_sync(NULL, 1), '{lastSyncedAt}', '\"…\"'))" | sed 's/"updated_at": "[^"]*"/"updated_at": "…"/'

step "7. A stale write: the laptop had not synced and turns roasting back on, based on version 1"
show "SELECT roastr_state.patch(NULL, '{\"roasting.enabled\": true}', base_version => 1);"
as_device "SELECT roastr_state.patch(NULL, '{\"roasting.enabled\": true}', base_version => 1)"
show "(SQLSTATE PT409 becomes HTTP 409 through PostgREST; the DETAIL is the JSON a client needs.)"

step "8. Field-level locking: the same stale base is fine for a field nobody else touched"
show "SELECT roastr_state.patch(NULL, '{\"roasting.roast_level\": 5}', base_version => 1);"
as_device "SELECT roastr_state.patch(NULL, '{\"roasting.roast_level\": 5}', base_version => 1)"

step "9. Quota: the backend takes roasts as Ann uses them (free plan: 100 a month)"
show "SELECT roastr_state.consume_roasts(user_id => '…', n => 98);"
as_service "SELECT roastr_state.consume_roasts('$ANN', 98) - 'reset_date'" | sed 's/^/   /'
show "SELECT roastr_state.consume_roasts(user_id => '…', n => 5);   -- more than is left"
as_service "SELECT roastr_state.consume_roasts('$ANN', 5) - 'reset_date'" | sed 's/^/   /'
show "(refused: allowed = false, nothing consumed; concurrent calls can never overdraw)"
as_service "SELECT roastr_state.patch('$ANN', '{\"subscription.plan\": \"pro\"}')" >/dev/null
show "the backend moves Ann to pro; her usage now reads:"
show "$(as_device "SELECT (roastr_state.state_full()->'usage') - 'reset_date' - 'period_start'" | tr -d ' ')"

step "10. Persona text is encrypted at rest, per user and per field"
as_device "SELECT roastr_state.patch(NULL, '{\"persona.identity\": \"I roast with love\"}')" | tail -1
show "in the table : $(psql -X -At -c "SELECT substr(encode(identity, 'hex'), 1, 48) || '…' FROM roastr_state.persona")"
show "to Ann       : $(as_device "SELECT roastr_state.state_full()->'persona'->>'identity'" | sed 's/^ *//' | tr -d '\n')"

step "11. Another user's state is out of reach for Ann's devices"
as_device "SELECT roastr_state.state_full('00000000-0000-4000-8000-000000000b0b')"

step "12. Everything the gateway relayed, in version order"
for _ in $(seq 100); do [ "$(grep -c '^user:' "$events")" -ge 6 ] && break; sleep 0.05; done
grep '^user:' "$events" | sed 's/^user:[^ ]* /   /'

step "13. The same in a browser: the device client (client/) on a settings screen"
show "make example    # its own cluster with Ann, the real gateway, and client/examples/ served on"
show "                # http://127.0.0.1:8090 (two devices, offline switch, conflict dialog); Ctrl-C ends it"
show "With a gateway of your own (started with CORS_ORIGIN=http://127.0.0.1:8090):"
show "  cd client && npm ci && npm run example -- --gateway http://127.0.0.1:8080 --secret \"\$JWT_SECRET\" --user <uuid>"
show "and open the URL it prints (client/README.md, \"Example\")."

printf '\n%sDone.%s The cluster is removed on exit; `make test` runs the full suite.\n' "$bold" "$plain"
