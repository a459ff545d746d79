#!/usr/bin/env bash
# scripts/soak.sh — `make soak`: a long, concurrent, mixed workload against
# roastr_state, then proof that nothing was overdrawn, lost or skipped.
#
#   make soak                                   # 64 clients, 600 s (about 15 min)
#   SOAK_CLIENTS=16 SOAK_SECONDS=60 make soak   # a quick pass
#   make soak TOPOLOGY=production               # scripts/soak_prod.sh: a primary,
#                                               # an asynchronous standby, PgBouncer,
#                                               # two gateways and a failover
#
# TOPOLOGY (environment or make variable): single (the default: one server,
# this script) or production (scripts/soak_prod.sh, which documents itself).
#
# Knobs (environment): SOAK_CLIENTS (default 64) pgbench clients,
# SOAK_SECONDS (default 600) pgbench duration, SOAK_DEVICES (default 200)
# devices following the gateway, SOAK_PORT (default 5496) the throwaway
# cluster's port, SOAK_REPORT_DIR (default bench/soak/results) where the
# report goes, SOAK_KEEP=1 to leave the cluster (and the ledger) running for
# inspection at the end.  `make test` runs a 20 s soak
# (test/extra/soak_short.sh) so that the harness itself cannot rot.
#
# What it does: installs missing deps, builds and installs the extension,
# starts a throwaway cluster (scripts/cluster.sh: fsync on,
# synchronous_commit on, roastr_state preloaded so the background notifier
# sends), loads 10k users (bench/setup.sql) plus one hot user and the harness
# (bench/soak/setup.sql, bench/soak/checks.sql), then runs pgbench -M
# prepared for SOAK_SECONDS with SOAK_CLIENTS clients and these weights:
#
#   patch 20, patch_base 15, patch_mut 5   multi-field patches: last write
#       wins; with a stale base version (real PT409 conflicts, mostly on
#       zipfian-hot users and the hot user); with a mutation_id, retried
#   sync 25                a simulated device per user syncs from its cursor
#   consume 15, consume_key 5  consume_roasts, 40% on the hot user (starter,
#       500/month, driven past its limit), 20% on 32 warm users (free, 100),
#       the rest spread; keyed calls are retried and replayed by others
#   webhook 8, webhook_dup 4, webhook_redeliver 3  signed Polar events;
#       redeliveries of an event id, some concurrent
#
# Every call goes through a wrapper in schema soak that records what was
# acknowledged in soak.ledger in the same transaction, and catches the
# expected refusals (PT409, PT402), so no client may abort.  Meanwhile one
# session samples pg_notification_queue_usage() every second and a client
# (test/notify_probe.c) LISTENs on roastr_state and consumes every payload.
#
# The checks (bench/soak/checks.sql, plus pgbench's and the server's state);
# any failure makes the last line "soak: FAIL" and the exit status 1:
#
#   pgbench   no client aborted, no failed transaction, pgbench exited 0: no
#             unexpected error reached a client; the server log has no crash.
#   ledger    every transaction pgbench acknowledged (its per-transaction
#             log: client, transaction number, script) left exactly its calls
#             in the ledger, and the ledger holds no other calls (but those of
#             a client's last transaction, cut off by the end of the run): the
#             checks below see every acknowledged effect.
#   overdraft no user's count is above its plan limit; the hot user, driven
#             past its limit, ends exactly at it; each user's count = its
#             baseline + the roasts of its acknowledged consumptions (keyed
#             replays once); every allowed call answered used <= limit and
#             the answers form a chain by version (no increment lost); every
#             refusal happened when the roasts did not fit.
#   lost updates  acknowledged changes (consumptions, patches carrying new
#             random text, first applications of a mutation id) claim
#             distinct versions, all in (baseline, final]; every patched
#             field's final value is its last acknowledged write, and its
#             logged version is that of its last acknowledged change; row
#             version = state_full's = state_sync's cursor = newest field
#             version; no base-version patch overwrote a change made after its
#             base; every PT409 names a patched field changed after the base;
#             replays of a mutation id or idempotency key answered the same;
#             each webhook id was processed by exactly one delivery and
#             recorded so, every redelivery a duplicate, and each
#             subscription ends at its newest applied event.
#   cursor gaps  for every user, replaying state_sync(0) gives state_full's
#             fields; every device that synced during the run, applying a
#             final sync from the cursor it holds to the state it built, gets
#             state_full; so do 2% of mid-run sync points kept with their
#             cursor; no sync answer held a change at or below its cursor,
#             above its new cursor, or twice.
#   notify    pg_notification_queue_usage() stayed under 1%; the listener
#             received the newest version of every user written in the run.
#   gateway   SOAK_DEVICES (default 200) socket.io devices -- the hot user,
#             the warm users, the most written zipfian users and random ones
#             -- follow their users through the reference gateway (shared
#             LISTEN) for the whole run, applying state_update and
#             state_sync as gateway/README.md says (bench/soak/devices.js):
#             each ends equal to state_full at its user's final version, and
#             no state_update reached a device that did not continue its
#             cursor or lacked a value it names.
#
# Progress goes to stderr; the report (figures and checks) to stdout and to
# bench/soak/results/latest.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

case ${TOPOLOGY:-single} in
	single) ;;
	production) exec bash scripts/soak_prod.sh ;;
	*) echo "soak: TOPOLOGY must be single or production (got '$TOPOLOGY')" >&2; exit 2 ;;
esac

CLIENTS=${SOAK_CLIENTS:-64}
T=${SOAK_SECONDS:-600}
NDEV=${SOAK_DEVICES:-200}
for v in CLIENTS T NDEV; do
	if ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
		name=${v/NDEV/DEVICES}
		echo "soak: SOAK_${name/#T/SECONDS} must be a positive integer (got '${!v}')" >&2
		exit 2
	fi
done
USERS=10000   # bench/setup.sql users; user USERS+1 is bench's latency user, untouched here
HOT=$((USERS + 2))
WARM=32
CUSERS=9000   # consumption users 1..CUSERS; webhook users CUSERS+1..USERS
NPROC=$(nproc)
CLK_TCK=$(getconf CLK_TCK)
export ROASTR_PORT=${SOAK_PORT:-5496}
START_SECONDS=$SECONDS

# script:weight (bench/soak/<script>.sql)
SCRIPTS=(patch:20 patch_base:15 patch_mut:5 sync:25 consume:15 consume_key:5
	webhook:8 webhook_dup:4 webhook_redeliver:3)

HARNESS_NAME=soak
# shellcheck source=scripts/harness.sh
source scripts/harness.sh
harness_build

# shellcheck source=scripts/cluster.sh
source scripts/cluster.sh
harness_workdir
finish() {
	local rc=$?
	if [ "${SOAK_KEEP:-0}" = 1 ] && [ -n "${ROASTR_CLUSTER_DIR:-}" ]; then
		echo "soak: SOAK_KEEP=1: cluster left running: PGHOST=$ROASTR_CLUSTER_DIR PGPORT=$ROASTR_PORT PGDATABASE=soak;" \
			"files in $work; stop with: runuser -u postgres -- pg_ctl -D $ROASTR_CLUSTER_DIR/data stop;" \
			"rm -rf $ROASTR_CLUSTER_DIR $work" >&2
		exit "$rc"
	fi
	harness_cleanup
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

gateway_node_modules

cc -O2 -Wall -o "$work/notify_probe" test/notify_probe.c \
	-I"$(pg_config --includedir)" -L"$(pg_config --libdir)" -lpq

log "starting a throwaway cluster on port $ROASTR_PORT"
cluster_start "fsync = on" "synchronous_commit = on" "shared_buffers = '256MB'" \
	"max_connections = $((CLIENTS + 20))" >&2
PM=$(head -n 1 "$ROASTR_CLUSTER_DIR/data/postmaster.pid")
psql -X -q -d postgres -c "CREATE DATABASE soak"
export PGDATABASE=soak

log "loading $USERS users (bench/setup.sql), the hot user and the harness (bench/soak/)"
{
	psql -X -q -v ON_ERROR_STOP=1 -v users=$USERS -v rounds=5 -f bench/setup.sql &&
	psql -X -q -v ON_ERROR_STOP=1 -v users=$USERS -v hot=$HOT -v warm=$WARM -v cusers=$CUSERS \
		-f bench/soak/setup.sql &&
	psql -X -q -v ON_ERROR_STOP=1 -f bench/soak/checks.sql
} >"$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; exit 1; }

# ---------------------------------------------------------------------------
# The listener and the queue sampler
# ---------------------------------------------------------------------------
# notify_probe prints "ready", then "roastr_state <payload>" per
# notification, flushing every line; the sentinel, sent after the notifier
# drained, is the last line of the run.
"$work/notify_probe" -t $(((T + 3600) * 1000)) roastr_state >"$work/listen.txt" 2>"$work/listener.err" &
probe_pid=$!
bg_pids+=("$probe_pid")
for _ in $(seq 100); do [ -s "$work/listen.txt" ] && break; sleep 0.1; done
[ "$(head -n 1 "$work/listen.txt")" = ready ] || { cat "$work/listener.err" >&2; echo "soak: the listener did not start" >&2; exit 1; }

# one session, one sample a second, until the stop file appears
{
	while [ ! -e "$work/sampler.stop" ]; do
		echo "SELECT extract(epoch FROM clock_timestamp()), pg_notification_queue_usage();"
		sleep 1
	done
} | psql -X -At -F ' ' -v ON_ERROR_STOP=1 >"$work/queue.txt" 2>"$work/sampler.err" &
sampler_pid=$!
bg_pids+=("$sampler_pid")

# ---------------------------------------------------------------------------
# The gateway and the devices that follow it
# ---------------------------------------------------------------------------
jwt_secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
# its own login role (it refuses authenticator, which may become service_role)
q -d postgres -c "CREATE ROLE roastr_gateway LOGIN NOINHERIT" -c "GRANT authenticated TO roastr_gateway" >/dev/null
PGUSER=roastr_gateway JWT_SECRET=$jwt_secret LISTEN_MODE=shared PORT=0 HOST=127.0.0.1 \
	PG_POOL_MAX=4 node gateway/server.js >"$work/gateway.log" 2>&1 &
gw_pid=$!
bg_pids+=("$gw_pid")
gw_port=""
for _ in $(seq 200); do
	gw_port=$(sed -n 's/.*"msg":"listening","port":\([0-9]*\).*/\1/p' "$work/gateway.log")
	[ -n "$gw_port" ] && break
	sleep 0.05
done
[ -n "$gw_port" ] || { cat "$work/gateway.log" >&2; echo "soak: the gateway did not start" >&2; exit 1; }
# the hot user, the warm ones, the most written zipfian ones, then random
q -c "SELECT soak.uid(u) FROM (SELECT $HOT AS u, 0 AS o UNION SELECT generate_series(1, $WARM), 1
		UNION SELECT generate_series(1, 100), 2
		UNION SELECT (random() * ($USERS - 1))::int + 1, 3 FROM generate_series(1, $NDEV)) d
	   GROUP BY u ORDER BY min(o), random() LIMIT $NDEV" >"$work/device_users.txt"
JWT_SECRET=$jwt_secret node bench/soak/devices.js "http://127.0.0.1:$gw_port" \
	"$work/device_users.txt" "$work/devices.jsonl" >"$work/devices.log" 2>&1 &
dev_pid=$!
bg_pids+=("$dev_pid")
for _ in $(seq 100); do grep -q '^ready' "$work/devices.log" && break; sleep 0.1; done
grep -q '^ready' "$work/devices.log" || { cat "$work/devices.log" >&2; echo "soak: the devices did not start" >&2; exit 1; }
log "gateway on port $gw_port, $(wc -l <"$work/device_users.txt") devices following it"

# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------
q -c "SELECT soak.take_baseline()" >/dev/null
q -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
pgb_args=()
for s in "${SCRIPTS[@]}"; do pgb_args+=(-f "bench/soak/${s%%:*}.sql@${s##*:}"); done
wal0=$(q -c "SELECT pg_current_wal_insert_lsn()")
c0=$(server_ticks)
log "pgbench: $CLIENTS clients, $T s, -M prepared (progress every 30 s)"
pgb_rc=0
pgbench -n -M prepared -c "$CLIENTS" -j "$NPROC" -T "$T" -P 30 \
	-D users=$USERS -D hot=$HOT -D warm=$WARM -D cusers=$CUSERS \
	-D t=0 -l --log-prefix="$work/pgbench_log" "${pgb_args[@]}" \
	>"$work/pgbench.txt" 2> >(tee "$work/pgbench.err" >&2) || pgb_rc=$?

# let the notifier send what the run queued, then the sentinel, which the
# listener receives after everything queued before it
for _ in $(seq 600); do
	[ "$(q -c "SELECT (roastr_state.notify_stats()->>'queued_bytes')::bigint = 0")" = t ] && break
	sleep 0.1
done
c1=$(server_ticks)
wal1=$(q -c "SELECT pg_current_wal_insert_lsn()")
sleep 1
q -c "NOTIFY roastr_state, 'soak-sentinel'" >/dev/null
for _ in $(seq 600); do [ "$(tail -n 1 "$work/listen.txt")" = "roastr_state soak-sentinel" ] && break; sleep 0.1; done
[ "$(tail -n 1 "$work/listen.txt")" = "roastr_state soak-sentinel" ] ||
	log "warning: the listener had not received the sentinel after 60 s"
kill "$probe_pid" 2>/dev/null || true
# the newest version announced and the number of payloads, per user
awk '$1 == "roastr_state" {
		if (!match($0, /"user_id":"[0-9a-f-]+"/)) next
		u = substr($0, RSTART + 11, RLENGTH - 12)
		if (!match($0, /"version":[0-9]+/)) next
		v = substr($0, RSTART + 10, RLENGTH - 10) + 0
		n[u]++
		if (v > m[u]) m[u] = v
	}
	END { for (u in m) printf "%s\t%d\t%d\n", u, m[u], n[u] }' "$work/listen.txt" >"$work/notified.tsv"
# the devices: once each has reached its user's final version (or 60 s),
# they write what they hold
q -F $'\t' -c "SELECT s.user_id, s.version FROM roastr_state.state s" >"$work/devices.jsonl.targets"
kill -USR2 "$dev_pid"
wait "$dev_pid" || { cat "$work/devices.log" >&2; echo "soak: the devices failed" >&2; }
kill -TERM "$gw_pid" 2>/dev/null || true
touch "$work/sampler.stop"
wait "$sampler_pid" || { cat "$work/sampler.err" >&2; echo "soak: the queue sampler failed" >&2; }
NOTIFY_STATS=$(q -c "SELECT roastr_state.notify_stats()")

# ---------------------------------------------------------------------------
# Figures of pgbench
# ---------------------------------------------------------------------------
num() { sed -n "s/^$1 *\([0-9.]*\).*/\1/p" "$work/pgbench.txt" | head -n 1; }
TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$work/pgbench.txt")
[ -n "$TPS" ] && TPS=$(printf '%.1f' "$TPS")
NTX=$(num 'number of transactions actually processed:')
FAILED=$(num 'number of failed transactions:')
ABORTED=$(grep -c 'aborted in command' "$work/pgbench.err" || true)
DURATION=$(num 'duration:')
# per script: number, name, transactions
awk '/^SQL script [0-9]+:/ { s = $3; sub(/:$/, "", s); f = $4; sub(/^.*\//, "", f); sub(/\.sql$/, "", f) }
	 /^ - [0-9]+ transactions/ { print s, f, $2 }' "$work/pgbench.txt" >"$work/scripts.txt"
# latency percentiles (ms) by script from the per-transaction logs (client,
# tx, latency us, script number, ...), and over all
cat "$work"/pgbench_log.* 2>/dev/null | awk '{ print $4, $3 }' | sort -k1,1n -k2,2n >"$work/lat.txt" || true
awk '{ print -1, $2 }' "$work/lat.txt" | sort -k2,2n >"$work/lat_all.txt"
pctl() { # pctl P [script]: nearest-rank percentile in ms
	local s=${2:--1} f="$work/lat.txt"
	[ "$s" -lt 0 ] && f="$work/lat_all.txt"
	awk -v p="$1" -v s="$s" '$1 == s { a[++n] = $2 }
		END { if (n == 0) { print "-"; exit }
			  i = int(p * n); if (i < p * n) i++; if (i < 1) i = 1; printf "%.1f", a[i] / 1000 }' "$f"
}
P50=$(pctl 0.50)
P99=$(pctl 0.99)
cpu_per_tx=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="${NTX:-0}" 'BEGIN { if (n > 0) printf "%.0f", d * 1e6 / hz / n; else print "-" }')
cpu_cores=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v t="${DURATION:-$T}" 'BEGIN { printf "%.2f", d / hz / t }')
WAL_BYTES=$(q -c "SELECT pg_wal_lsn_diff('$wal1', '$wal0')::bigint")

# the scripts (number in the log, name, wrapper calls per transaction) and
# the acknowledged transactions (client, its transaction number, script)
while read -r num name _; do
	printf '%s\t%s\t%s\n' "$((num - 1))" "$name" "$(grep -c '^SELECT soak\.' "bench/soak/$name.sql")"
done <"$work/scripts.txt" >"$work/scripts.tsv"
cat "$work"/pgbench_log.* 2>/dev/null | awk '{ print $1 "\t" $2 "\t" $4 }' >"$work/pgbench_tx.tsv"
awk 'NF == 2 { print $1 "\t" $2 }' "$work/queue.txt" >"$work/queue.tsv"
q -c "\\copy soak.pgbench_scripts FROM '$work/scripts.tsv'" \
	-c "\\copy soak.pgbench_log FROM '$work/pgbench_tx.tsv'" \
	-c "\\copy soak.queue_samples FROM '$work/queue.tsv'" \
	-c "\\copy soak.notified FROM '$work/notified.tsv'" \
	-c "\\copy soak.gateway_devices (j) FROM '$work/devices.jsonl' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')" >/dev/null

log "collecting the final state of every user and checking"
t_collect=$SECONDS
q -c "SELECT soak.collect()" >/dev/null
t_collect=$((SECONDS - t_collect))
t_checks=$SECONDS
q -F $'\t' -c "SELECT section, name, value, ok, ms FROM soak.checks()" >"$work/checks.tsv"
t_checks=$((SECONDS - t_checks))
q -F $'\t' -c "SELECT name, value FROM soak.figures()" >"$work/figures.tsv"
if awk -F '\t' '$4 != "t"' "$work/checks.tsv" | grep -q .; then
	q -F ': ' -c "SELECT what, detail FROM soak.diagnose()" >"$work/diagnose.txt"
fi

# checks made here, outside SQL
{
	printf 'pgbench\tclients aborted\t%s\t%s\n' "$ABORTED" "$([ "$ABORTED" = 0 ] && echo t || echo f)"
	printf 'pgbench\tfailed transactions\t%s\t%s\n' "${FAILED:-?}" "$([ "${FAILED:-x}" = 0 ] && echo t || echo f)"
	printf 'pgbench\texit status\t%s\t%s\n' "$pgb_rc" "$([ "$pgb_rc" = 0 ] && echo t || echo f)"
	crashes=$(grep -cE 'PANIC|TRAP:|terminated by signal|was terminated|exited with exit code [1-9]' \
		"$(cluster_log)" || true)
	printf 'pgbench\tserver log: crashes, PANICs, assertion failures\t%s\t%s\n' "$crashes" "$([ "$crashes" = 0 ] && echo t || echo f)"
} >"$work/checks0.tsv"

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
ELAPSED=$(((SECONDS - START_SECONDS + 30) / 60))
report() {
	local fails
	echo "roastr_state soak — $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "machine: $NPROC cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo), $(pg_config --version)"
	echo "cluster: fsync on, synchronous_commit on, roastr_state preloaded (notify_mode auto: the background notifier sends)"
	echo "load: $USERS users + hot user, pgbench -M prepared -c $CLIENTS -j $NPROC -T $T"
	echo
	echo "== run"
	printf '  %-50s %s\n' "duration (s)" "${DURATION:-?}" \
		"transactions" "${NTX:-?}" \
		"tps" "${TPS:-?}" \
		"latency p50 / p99 (ms, all scripts)" "$P50 / $P99" \
		"server CPU (cores busy; us per transaction)" "$cpu_cores; $cpu_per_tx" \
		"WAL written (MB; bytes per transaction)" "$(awk -v b="$WAL_BYTES" -v n="${NTX:-0}" 'BEGIN { printf "%.0f; %.0f", b / 1048576, (n > 0 ? b / n : 0) }')" \
		"notifier (notify_stats)" "$NOTIFY_STATS"
	echo
	echo "== transactions by script (weight, count, p50 / p99 ms)"
	local num name tx w
	while read -r num name tx; do
		w=$(printf '%s\n' "${SCRIPTS[@]}" | sed -n "s/^$name://p")
		printf '  %-20s %3s %9s   %s / %s\n' "$name" "$w" "$tx" "$(pctl 0.50 $((num - 1)))" "$(pctl 0.99 $((num - 1)))"
	done <"$work/scripts.txt"
	echo
	echo "== operations"
	awk -F '\t' '{ printf "  %-50s %s\n", $1, $2 }' "$work/figures.tsv"
	echo
	soak_checks_table
	echo
	echo "== time to the verdict (s)"
	printf '  %-50s %s\n' "collect (state_full, syncs of every user)" "$t_collect" \
		"checks (all sections)" "$t_checks"
	soak_section_times
	fails=$(soak_failed_checks)
	soak_diagnosis
	echo
	echo "wall clock: $ELAPSED min"
	if [ "$fails" -eq 0 ]; then echo "soak: PASS"; else echo "soak: FAIL ($fails checks)"; fi
}
out_dir=${SOAK_REPORT_DIR:-bench/soak/results}
mkdir -p "$out_dir"
report | tee "$out_dir/latest.txt"
tail -n 1 "$out_dir/latest.txt" | grep -q '^soak: PASS$'
