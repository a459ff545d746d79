#!/usr/bin/env bash
# scripts/soak_prod.sh — `make soak TOPOLOGY=production`: the soak's mixed
# workload on a production-shaped topology, with a gateway crash, every
# server connection killed and an asynchronous failover under it; then
# proof of what was lost (exactly what the promoted standby had not
# received), that nothing else was, and that every device ends on the new
# history with exactly the new primary's state.
#
#   make soak TOPOLOGY=production                  # 8 clients, 300 s (about 6 min)
#   SOAK_SECONDS=60 make soak TOPOLOGY=production  # a quick pass
#
# Knobs (environment): SOAK_CLIENTS (default 8) application clients,
# SOAK_SECONDS (default 300) length of the traffic, SOAK_DEVICES (default
# 300) socket.io devices split between the two gateways, SOAK_USERS
# (default 10000) users, SOAK_CUT_SECONDS (default 3) how long before the
# old primary's stop the replication link is cut (0: not cut; the standby
# then loses only what was in flight), SOAK_RESTANDBY (default 1) build a
# new standby from the new primary after the failover, SOAK_PORT (default
# 5497) the servers' port (unix sockets only), SOAK_REPORT_DIR (default
# bench/soak/results) where the report goes (prod-latest.txt), SOAK_BUILD=0
# to use the roastr_state installed as it is (no build, no install),
# SOAK_KEEP_FILES=DIR to copy the run's files (logs, the clients' records)
# there at the end.  Loopback
# only: every server, the pooler and the gateways listen on unix sockets
# (the gateways on 127.0.0.1).
#
# The topology (all in temporary directories, removed on every exit path):
#
#   primary      scripts/cluster.sh's cluster (fsync, synchronous_commit
#                on, roastr_state preloaded), as the postgres OS user
#   standby      pg_basebackup -R of it with a replication slot, streaming,
#                asynchronous, hot_standby_feedback on
#   "primary"    a symlink naming the primary's socket directory: the
#                loopback stand-in for the DNS name or virtual IP a failover
#                moves; the gateways' LISTEN connections, the notification
#                listener and the queue sampler connect through it
#   PgBouncer    pool_mode = transaction (Debian's, from scripts/deps.sh),
#                database soak (8 server connections) on the primary and
#                soak_ro (4) on the standby; the application and the
#                gateways' queries go through it
#   application  bench/soak/app.js: SOAK_CLIENTS clients making the soak's
#                requests as PostgREST makes them (see that file), and
#                polling devices syncing alternately on the standby and the
#                primary with their cursors and histories
#   gateways     two reference gateways (shared LISTEN and per-user LISTEN),
#                queries through PgBouncer, LISTEN direct; SOAK_DEVICES
#                devices (bench/soak/devices.js) split between them
#
# The run, at fractions of SOAK_SECONDS:
#
#   0.2  gateway B is SIGKILLed, and restarted 2 s later on its port: its
#        devices reconnect with their cursors and histories
#   0.4  every server connection of the pooler and of the gateways
#        (sessions of authenticator and roastr_gateway, on both servers) is
#        terminated at once with pg_terminate_backend
#   0.6  failover: the standby's replication link is cut (primary_conninfo
#        emptied), SOAK_CUT_SECONDS later the primary is stopped with -m
#        immediate, the standby promoted, every user's version noted, the
#        "primary" name moved to it, PgBouncer's targets rewritten and
#        reloaded (SIGHUP); the application delivers again every webhook
#        event acknowledged since 10 s before the cut; then (SOAK_RESTANDBY)
#        a new standby from the new primary becomes the read pool
#   1.0  the application stops, syncs its devices once more, and writes its
#        records; the gateways' devices wait until they hold their users'
#        final versions of the new history
#
# Then the old primary is read as it was left: pg_waldump lists its commits
# after the switch point (the new timeline's history file), and the data
# directory is started apart as a standalone copy to read its ledger rows of
# the last seconds (with their transaction ids), every user's version and
# count, and to check its quota (soak.quota_checks()).
#
# The checks (bench/soak/checks.sql adapted, bench/soak/prod.sql added;
# any failure makes the last line "soak: FAIL" and the exit status 1):
#
#   ledger, overdraft, lost updates, cursor gaps, notify, gateway   as in
#             scripts/soak.sh, on the new primary, against the client's own
#             record of every request instead of pgbench's log: every
#             acknowledged request but those lost in the promotion left its
#             call in the ledger, and no failed one did (in-doubt ones, whose
#             COMMIT got no answer, may have or not)
#   promotion the acknowledged requests lost are exactly the ones committed
#             after the switch point on the old primary (counted; > 0 when
#             the link was cut); no other acknowledged request is missing;
#             the old primary's crash recovery kept everything it
#             acknowledged; webhook events lost are processed again exactly
#             once by a delivery after the promotion
#   old primary  no overdraft on the lost side either
#   histories every sampled mid-run (cursor, history) is reset, or not, as
#             the rule of README "Replicas, failover and restore" says
#             (computed here from the switch point); every device that held
#             a lost version was reset; no device field holds a value only
#             the lost history had
#   devices   every device, gateway or polling, ends equal to state_full at
#             the final version of the final history
#   requests  no unexpected error; connection failures only around the
#             disruptions
#   shell     both gateways' LISTEN connections came back after the
#             terminations and the failover; the servers' logs hold no
#             crash; the application and the devices finished cleanly
#
# Progress goes to stderr; the report to stdout and to
# bench/soak/results/prod-latest.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CLIENTS=${SOAK_CLIENTS:-8}
T=${SOAK_SECONDS:-300}
NDEV=${SOAK_DEVICES:-300}
USERS=${SOAK_USERS:-10000}
CUT=${SOAK_CUT_SECONDS:-3}
RESTANDBY=${SOAK_RESTANDBY:-1}
check_int() { # NAME VALUE MIN
	if ! [[ "$2" =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ]; then
		echo "soak_prod: $1 must be an integer >= $3 (got '$2')" >&2
		exit 2
	fi
}
check_int SOAK_CLIENTS "$CLIENTS" 2
check_int SOAK_SECONDS "$T" 20
check_int SOAK_DEVICES "$NDEV" 2
check_int SOAK_USERS "$USERS" 200
check_int SOAK_CUT_SECONDS "$CUT" 0
[[ "$RESTANDBY" =~ ^[01]$ ]] || { echo "soak_prod: SOAK_RESTANDBY must be 0 or 1 (got '$RESTANDBY')" >&2; exit 2; }
if [ "$(id -u)" -ne 0 ]; then
	echo "soak_prod: run as root (the servers and PgBouncer run as the postgres OS user)" >&2
	exit 2
fi
HOT=$((USERS + 2))      # user USERS+1 is bench's latency user, untouched here
WARM=32
CUSERS=$((USERS * 9 / 10))
NPROC=$(nproc)
SPORT=${SOAK_PORT:-5497}
PGB_PORT=6441
export ROASTR_PORT=$SPORT
START_SECONDS=$SECONDS
LOAD0=$(cut -d ' ' -f 1-3 /proc/loadavg)
now_ms() { date +%s%3N; }

HARNESS_NAME=soak-prod
# shellcheck source=scripts/harness.sh
source scripts/harness.sh
if [ "${SOAK_BUILD:-1}" != 0 ]; then
	harness_build
fi

# shellcheck source=scripts/cluster.sh
source scripts/cluster.sh
harness_workdir
PG_BIN=$(pg_config --bindir)
topo=""                 # the topology's directory (standbys, pooler, the "primary" name)
app_pid="" dev_pid="" gwa_pid="" gwb_pid="" lis1_pid="" lis2_pid="" sampler_pid="" pgb_pid="" sleep_pid=""
pdir="" sdir="" s2dir=""

# Stop a server of ours (not the cluster of scripts/cluster.sh) and make
# sure its postmaster is gone.
server_stop() { # DATA_DIR [MODE]
	local data=$1 mode=${2:-fast} pid
	[ -f "$data/postmaster.pid" ] || return 0
	pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
	cluster_run_as_owner "$PG_BIN/pg_ctl" -D "$data" -m "$mode" -w stop >/dev/null 2>&1 || true
	if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
		kill -QUIT "$pid" 2>/dev/null || true
		sleep 2
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# Kill a process of ours still running (by the pid we started), and reap it.
stop_pid() { # PID [SIGNAL]
	[ -n "$1" ] || return 0
	kill "-${2:-TERM}" "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

reported=0
finish() {
	local rc=$?
	trap '' INT TERM
	if [ "$rc" -ne 0 ] && [ "$reported" = 0 ]; then
		echo "soak: FAIL (the run stopped before its checks, exit status $rc: see the messages above)"
	fi
	for p in "$sleep_pid" "$app_pid" "$dev_pid" "$gwa_pid" "$gwb_pid" "$lis1_pid" "$lis2_pid" "$sampler_pid"; do
		stop_pid "$p"
	done
	[ -n "$topo" ] && touch "$topo/sampler.stop" 2>/dev/null
	stop_pid "$pgb_pid"
	[ -n "$s2dir" ] && server_stop "$s2dir/data" immediate
	[ -n "$sdir" ] && server_stop "$sdir/data" immediate
	if [ -n "${SOAK_KEEP_FILES:-}" ] && [ -n "${work:-}" ]; then
		{ mkdir -p "$SOAK_KEEP_FILES" && cp -a "$work/." "$SOAK_KEEP_FILES/"; } 2>/dev/null || true
	fi
	harness_cleanup          # the primary (scripts/cluster.sh) and $work
	[ -n "$topo" ] && rm -rf "$topo"
	exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

gateway_node_modules

cc -O2 -Wall -o "$work/notify_probe" test/notify_probe.c \
	-I"$(pg_config --includedir)" -L"$(pg_config --libdir)" -lpq
mkdir -p "$work/app"

# ---------------------------------------------------------------------------
# The primary, its data, the standby
# ---------------------------------------------------------------------------
log "starting the primary on port $SPORT"
cluster_start "fsync = on" "synchronous_commit = on" "shared_buffers = '128MB'" \
	"max_connections = $((CLIENTS + 40))" "wal_level = replica" "max_wal_senders = 5" \
	"max_replication_slots = 5" "hot_standby_feedback = on" >&2
pdir=$ROASTR_CLUSTER_DIR
OWNER=$(stat -c %U "$pdir")
topo=$(mktemp -d /tmp/roastr_soakprod.XXXXXX)
chmod 755 "$topo"
ln -s "$pdir" "$topo/primary"
export PGHOST=$topo/primary
psql -X -q -d postgres -c "CREATE DATABASE soak"
export PGDATABASE=soak

log "loading $USERS users (bench/setup.sql), the hot user and the harness (bench/soak/)"
{
	psql -X -q -v ON_ERROR_STOP=1 -v users="$USERS" -v rounds=5 -f bench/setup.sql &&
	psql -X -q -v ON_ERROR_STOP=1 -v users="$USERS" -v hot=$HOT -v warm=$WARM -v cusers=$CUSERS \
		-f bench/soak/setup.sql &&
	psql -X -q -v ON_ERROR_STOP=1 -f bench/soak/checks.sql &&
	psql -X -q -v ON_ERROR_STOP=1 -f bench/soak/prod.sql
} >"$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; exit 1; }
# the gateways' login role: it may become authenticated and nothing else
q -d postgres -c "CREATE ROLE roastr_gateway LOGIN NOINHERIT" -c "GRANT authenticated TO roastr_gateway" >/dev/null
OLD_LINE=$(q -c "SELECT roastr_state.state_full(soak.uid($HOT))->'_meta'->>'history'" | cut -d. -f1,2)

# A standby of DATA's server in DIR: base backup with its own slot, its own
# socket directory, started; waits until it has replayed what the source
# had written.
standby_start() { # DIR SOURCE_SOCKET_DIR SLOT
	local dir=$1 src=$2 slot=$3 lsn
	mkdir -p "$dir"
	chown "$OWNER": "$dir"
	chmod 700 "$dir"
	cluster_run_as_owner "$PG_BIN/pg_basebackup" -h "$src" -p "$SPORT" -U postgres -D "$dir/data" \
		-X stream -c fast -C -S "$slot" -R >"$work/basebackup_$slot.log" 2>&1 ||
		{ cat "$work/basebackup_$slot.log" >&2; echo "soak_prod: pg_basebackup failed" >&2; return 1; }
	printf "\n# ---- the standby's own socket (scripts/soak_prod.sh) ----\nunix_socket_directories = '%s'\n" \
		"$dir" >>"$dir/data/postgresql.conf"
	cluster_run_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -w -l "$dir/server.log" start >/dev/null ||
		{ tail -n 30 "$dir/server.log" >&2; echo "soak_prod: the standby did not start" >&2; return 1; }
	lsn=$(q -h "$src" -c "SELECT pg_current_wal_lsn()")
	for _ in $(seq 600); do
		[ "$(q -h "$dir" -c "SELECT coalesce(pg_last_wal_replay_lsn() >= '$lsn', false)")" = t ] && return 0
		sleep 0.1
	done
	echo "soak_prod: the standby did not catch up within 60 s" >&2
	return 1
}

log "building the standby (pg_basebackup, streaming, asynchronous)"
sdir=$topo/standby
standby_start "$sdir" "$pdir" soak_standby

# ---------------------------------------------------------------------------
# PgBouncer, the listener, the queue sampler
# ---------------------------------------------------------------------------
mkdir "$topo/pgbouncer"
pgbouncer_start "$topo/pgbouncer" "$PGB_PORT" "authenticator roastr_gateway postgres" \
	"soak = host=$pdir port=$SPORT dbname=soak pool_size=8
soak_ro = host=$sdir port=$SPORT dbname=soak pool_size=4" \
	"server_login_retry = 1
query_wait_timeout = 60
server_connect_timeout = 5" >&2
PGB_INI=$topo/pgbouncer/pgbouncer.ini

# PgBouncer's targets: rewrite [databases] and reload (SIGHUP = RELOAD).
pgbouncer_target() { # RW_DIR RO_DIR
	local pid
	sed -i -e "s|^soak = host=[^ ]*|soak = host=$1|" -e "s|^soak_ro = host=[^ ]*|soak_ro = host=$2|" "$PGB_INI"
	pid=$(cat "$topo/pgbouncer/pgbouncer.pid")
	kill -HUP "$pid"
	for _ in $(seq 50); do
		psql -X -At -h "$topo/pgbouncer" -p "$PGB_PORT" -U postgres -d pgbouncer -c "SHOW DATABASES" 2>/dev/null |
			grep -q "^soak|$1|" && return 0
		sleep 0.1
	done
	echo "soak_prod: PgBouncer did not take its new target $1" >&2
	return 1
}

# The LISTENing client, through the "primary" name: one per primary.  Its
# pid goes to the variable named PIDVAR.
listener_start() { # OUT PIDVAR
	"$work/notify_probe" -t $(((T + 3600) * 1000)) roastr_state >"$1" 2>"$1.err" &
	printf -v "$2" '%s' "$!"
	for _ in $(seq 100); do [ -s "$1" ] && break; sleep 0.1; done
	[ "$(head -n 1 "$1")" = ready ] || { cat "$1.err" >&2; echo "soak_prod: the listener did not start" >&2; return 1; }
}
listener_start "$work/listen1.txt" lis1_pid

# pg_notification_queue_usage() once a second, a new session each time, so
# that it follows the "primary" name through the failover
{
	while [ ! -e "$topo/sampler.stop" ]; do
		psql -X -At -F ' ' -c "SELECT extract(epoch FROM clock_timestamp()), pg_notification_queue_usage()" 2>/dev/null || true
		sleep 1
	done
} >"$work/queue.txt" &
sampler_pid=$!

# ---------------------------------------------------------------------------
# The gateways and their devices
# ---------------------------------------------------------------------------
jwt_secret=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
gw_start() { # NAME MODE PORT PIDVAR
	PGHOST=$topo/pgbouncer PGPORT=$PGB_PORT PGDATABASE=soak PGUSER=roastr_gateway \
		LISTEN_PGHOST=$topo/primary LISTEN_PGPORT=$SPORT JWT_SECRET=$jwt_secret \
		LISTEN_MODE=$2 PORT=$3 HOST=127.0.0.1 PG_POOL_MAX=4 RECONNECT_MAX_MS=2000 \
		node gateway/server.js >>"$work/gateway_$1.log" 2>&1 &
	printf -v "$4" '%s' "$!"
}
# the port of the N-th "listening" line of a gateway's log
gw_port() { # NAME N
	local p=""
	for _ in $(seq 300); do
		p=$(sed -n 's/.*"msg":"listening","port":\([0-9]*\).*/\1/p' "$work/gateway_$1.log" | sed -n "${2}p")
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.1
	done
	cat "$work/gateway_$1.log" >&2
	echo "soak_prod: gateway $1 did not start" >&2
	return 1
}
gw_start a shared 0 gwa_pid
gw_start b per-user 0 gwb_pid
gwa_port=$(gw_port a 1)
gwb_port=$(gw_port b 1)
q -c "SELECT soak.uid(u) FROM (SELECT $HOT AS u, 0 AS o UNION SELECT generate_series(1, $WARM), 1
		UNION SELECT generate_series(1, 100), 2
		UNION SELECT (random() * ($USERS - 1))::int + 1, 3 FROM generate_series(1, $NDEV)) d
	   GROUP BY u ORDER BY min(o), random() LIMIT $NDEV" >"$work/device_users.txt"
JWT_SECRET=$jwt_secret node bench/soak/devices.js "http://127.0.0.1:$gwa_port,http://127.0.0.1:$gwb_port" \
	"$work/device_users.txt" "$work/devices.jsonl" >"$work/devices.log" 2>&1 &
dev_pid=$!
for _ in $(seq 100); do grep -q '^ready' "$work/devices.log" && break; sleep 0.1; done
grep -q '^ready' "$work/devices.log" || { cat "$work/devices.log" >&2; echo "soak_prod: the devices did not start" >&2; exit 1; }
log "gateways on ports $gwa_port (shared LISTEN) and $gwb_port (per-user), $(wc -l <"$work/device_users.txt") devices"

# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------
q -c "SELECT soak.take_baseline()" >/dev/null
q -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
wal0=$(q -c "SELECT pg_current_wal_insert_lsn()")
APP_POOL_HOST=$topo/pgbouncer APP_POOL_PORT=$PGB_PORT APP_DB_RW=soak APP_DB_RO=soak_ro \
	APP_CLIENTS=$CLIENTS APP_USERS=$USERS APP_HOT=$HOT APP_WARM=$WARM APP_CUSERS=$CUSERS \
	APP_OUT=$work/app node bench/soak/app.js >"$work/app.log" 2>&1 &
app_pid=$!
for _ in $(seq 100); do grep -q '^ready' "$work/app.log" && break; sleep 0.1; done
grep -q '^ready' "$work/app.log" || { cat "$work/app.log" >&2; echo "soak_prod: the application did not start" >&2; exit 1; }
t_start=$(now_ms)
log "application: $CLIENTS clients through PgBouncer for $T s"
: >"$work/disruptions.tsv"

# (a sleep in the background: a signal's trap runs at once, not after it)
wait_until() { # MS since t_start
	local left
	left=$(($1 - ($(now_ms) - t_start)))
	if [ "$left" -gt 0 ]; then
		sleep "$(awk -v l="$left" 'BEGIN { printf "%.3f", l / 1000 }')" &
		sleep_pid=$!
		wait "$sleep_pid" || true
		sleep_pid=""
	fi
}

# 0.2: gateway B crashes
wait_until $((T * 200))
log "SIGKILL gateway B (pid $gwb_pid); restarting it on port $gwb_port in 2 s"
kill -KILL "$gwb_pid"
wait "$gwb_pid" 2>/dev/null || true
gwb_pid=""
sleep 2
gw_start b per-user "$gwb_port" gwb_pid
gw_port b 2 >/dev/null

# 0.4: every server connection of the pooler and the gateways, at once
wait_until $((T * 400))
TERM_SQL="SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	WHERE backend_type = 'client backend' AND usename IN ('authenticator', 'roastr_gateway')"
t=$(now_ms)
n_term_p=$(q -c "$TERM_SQL")
n_term_s=$(q -h "$sdir" -c "$TERM_SQL")
printf 'terminate\t%s\t%s\n' "$t" "$(now_ms)" >>"$work/disruptions.tsv"
log "terminated $n_term_p server connections on the primary, $n_term_s on the standby"

# 0.6: the failover
wait_until $((T * 600))
t_cut=""
if [ "$CUT" -gt 0 ]; then
	q -h "$sdir" -c "ALTER SYSTEM SET primary_conninfo = ''" -c "SELECT pg_reload_conf()" >/dev/null
	for _ in $(seq 100); do
		[ "$(q -h "$sdir" -c "SELECT count(*) FROM pg_stat_wal_receiver")" = 0 ] && break
		sleep 0.05
	done
	[ "$(q -h "$sdir" -c "SELECT count(*) FROM pg_stat_wal_receiver")" = 0 ] ||
		{ echo "soak_prod: the standby's WAL receiver did not stop" >&2; exit 1; }
	t_cut=$(now_ms)
	log "replication link cut; stopping the primary in $CUT s"
	sleep "$CUT"
fi
t_stop=$(now_ms)
cluster_run_as_owner "$PG_BIN/pg_ctl" -D "$pdir/data" -m immediate stop >/dev/null
stop_pid "$lis1_pid"
lis1_pid=""
cluster_run_as_owner "$PG_BIN/pg_ctl" -D "$sdir/data" -w promote >/dev/null
t_prom=$(now_ms)
q -h "$sdir" -c "INSERT INTO soak.at_promotion SELECT user_id, version, monthly_roasts_used FROM roastr_state.state" >/dev/null
ln -sfn "$sdir" "$topo/primary.new"
mv -T "$topo/primary.new" "$topo/primary"
listener_start "$work/listen2.txt" lis2_pid
pgbouncer_target "$sdir" "$sdir"
t_reload=$(now_ms)
printf 'failover\t%s\t%s\n' "$t_stop" "$t_reload" >>"$work/disruptions.tsv"
echo $((${t_cut:-$t_stop} - 10000)) >"$work/app/redeliver.since"
kill -USR1 "$app_pid"
log "promoted in $((t_prom - t_stop)) ms; PgBouncer and the \"primary\" name moved $((t_reload - t_stop)) ms after the stop"
if [ "$RESTANDBY" = 1 ]; then
	s2dir=$topo/standby2
	standby_start "$s2dir" "$sdir" soak_standby2
	t=$(now_ms)
	pgbouncer_target "$sdir" "$s2dir"
	printf 'restandby\t%s\t%s\n' "$t" "$(now_ms)" >>"$work/disruptions.tsv"
	log "new standby streaming from the new primary; it is the read pool now"
fi

# 1.0: the end
wait_until $((T * 1000))
log "stopping the application (it syncs its devices once more)"
t_traffic_end=$(now_ms)
kill -USR2 "$app_pid"
# it ends its requests, redeliveries and final syncs; 5 minutes at most
for _ in $(seq 3000); do kill -0 "$app_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$app_pid" 2>/dev/null; then
	log "the application did not finish within 5 minutes; stopping it"
	kill -TERM "$app_pid"
fi
app_rc=0
wait "$app_pid" || app_rc=$?
app_pid=""
t_end=$(now_ms)
# let the notifier send what the run queued, then the sentinel
for _ in $(seq 600); do
	[ "$(q -c "SELECT (roastr_state.notify_stats()->>'queued_bytes')::bigint = 0")" = t ] && break
	sleep 0.1
done
wal1=$(q -c "SELECT pg_current_wal_insert_lsn()")
sleep 1
q -c "NOTIFY roastr_state, 'soak-sentinel'" >/dev/null
for _ in $(seq 600); do [ "$(tail -n 1 "$work/listen2.txt")" = "roastr_state soak-sentinel" ] && break; sleep 0.1; done
[ "$(tail -n 1 "$work/listen2.txt")" = "roastr_state soak-sentinel" ] ||
	log "warning: the listener had not received the sentinel after 60 s"
stop_pid "$lis2_pid"
lis2_pid=""
NEW_LINE=$(q -c "SELECT roastr_state.state_full(soak.uid($HOT))->'_meta'->>'history'" | cut -d. -f1,2)
q -F $'\t' -c "SELECT s.user_id, s.version, '$NEW_LINE' FROM roastr_state.state s" >"$work/devices.jsonl.targets"
kill -USR2 "$dev_pid"
dev_rc=0
wait "$dev_pid" || dev_rc=$?
dev_pid=""
gw_reconnects_a=$(grep -c '"msg":"listen connection ready".*"reconnected":true' "$work/gateway_a.log" || true)
gw_reconnects_b=$(grep -c '"msg":"listen connection ready".*"reconnected":true' "$work/gateway_b.log" || true)
# a device whose announced version was lost in the failover syncs again
# until the gateway gives up on that announcement (the payloads carry no
# history to tell it apart)
gw_behind=$(cat "$work/gateway_a.log" "$work/gateway_b.log" | grep -c '"msg":"state_sync stays behind an announced version"' || true)
stop_pid "$gwa_pid"
stop_pid "$gwb_pid"
gwa_pid="" gwb_pid=""
touch "$topo/sampler.stop"
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""
NOTIFY_STATS=$(q -c "SELECT roastr_state.notify_stats()")
[ -n "$s2dir" ] && server_stop "$s2dir/data" fast

# ---------------------------------------------------------------------------
# The old primary, as it was left
# ---------------------------------------------------------------------------
log "reading the old primary: its WAL after the switch point, then its data (started apart)"
t_collect=$SECONDS
hist=$(find "$sdir/data/pg_wal" -name '*.history' | sort | tail -n 1)
new_tli=$((16#$(basename "$hist" .history)))
old_tli=$((new_tli - 1))
switchpoint=$(awk -F'\t' -v t="$old_tli" '$1 == t { print $2 }' "$hist")
[ -n "$switchpoint" ] || { cat "$hist" >&2; echo "soak_prod: no switch point in $hist" >&2; exit 1; }
"$PG_BIN/pg_waldump" -p "$pdir/data/pg_wal" -t "$old_tli" -s "$switchpoint" \
	>"$work/waldump.txt" 2>"$work/waldump.err" || true
# commits after the switch point: xid, LSN; the last record's LSN
awk '/desc: COMMIT/ {
		if (!match($0, /tx: *[0-9]+/)) next
		x = substr($0, RSTART, RLENGTH); sub(/tx: */, "", x)
		if (!match($0, /lsn: [0-9A-F]+\/[0-9A-F]+/)) next
		print x "\t" substr($0, RSTART + 5, RLENGTH - 5)
	}' "$work/waldump.txt" >"$work/old_commits.tsv"
old_end=$(sed -n 's/.*lsn: \([0-9A-F]*\/[0-9A-F]*\),.*/\1/p' "$work/waldump.txt" | tail -n 1)
old_end=${old_end:-$switchpoint}
[ -s "$work/waldump.txt" ] || { cat "$work/waldump.err" >&2; echo "soak_prod: pg_waldump read nothing after the switch point" >&2; exit 1; }

cluster_run_as_owner "$PG_BIN/pg_ctl" -D "$pdir/data" -w -l "$pdir/copy.log" start >/dev/null ||
	{ tail -n 30 "$pdir/copy.log" >&2; echo "soak_prod: the old primary's copy did not start" >&2; exit 1; }
since_cut="to_timestamp($((${t_cut:-$t_stop} - 30000)) / 1000.0)"
q -h "$pdir" -c "COPY (SELECT l.*, l.xmin::text::bigint FROM soak.ledger l
		WHERE l.client IS NOT NULL AND l.at >= $since_cut) TO STDOUT" >"$work/old_ledger.copy"
q -h "$pdir" -c "COPY (SELECT user_id, version, monthly_roasts_used FROM roastr_state.state) TO STDOUT" >"$work/old_state.copy"
q -h "$pdir" -F $'\t' -c "SELECT name, value, ok FROM soak.quota_checks()" >"$work/old_side.tsv"
server_stop "$pdir/data" fast

# ---------------------------------------------------------------------------
# Load what the clients recorded, collect, check
# ---------------------------------------------------------------------------
old_commits=$(wc -l <"$work/old_commits.tsv")
# The line of an announcement is its payload's history; the listener that
# received one (of the old primary or the new) tells it for a payload
# without one (a library before the payloads carried it).
announced() { # FILE LINE
	awk -v line="$2" '$1 == "roastr_state" {
		if (!match($0, /"user_id":"[0-9a-f-]+"/)) next
		u = substr($0, RSTART + 11, RLENGTH - 12)
		l = line
		if (match($0, /"history":"[0-9]+\.[0-9]+"/)) l = substr($0, RSTART + 11, RLENGTH - 12)
		if (!match($0, /"version":[0-9]+/)) next
		print u "\t" substr($0, RSTART + 10, RLENGTH - 10) "\t" l
	}' "$1"
}
{ announced "$work/listen1.txt" "$OLD_LINE"; announced "$work/listen2.txt" "$NEW_LINE"; } >"$work/announced.tsv"
awk 'NF == 2 { print $1 "\t" $2 }' "$work/queue.txt" >"$work/queue.tsv"
JSONL="WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
q -c "INSERT INTO soak.promotion VALUES ($CUT, ${t_cut:-NULL}, $t_stop, $t_prom, $t_reload,
		'$switchpoint', '$old_end', '$OLD_LINE', '$NEW_LINE', $old_commits)" \
	-c "\\copy soak.requests FROM '$work/app/requests.tsv'" \
	-c "\\copy soak.disruptions FROM '$work/disruptions.tsv'" \
	-c "\\copy soak.old_ledger FROM '$work/old_ledger.copy'" \
	-c "\\copy soak.old_commits FROM '$work/old_commits.tsv'" \
	-c "\\copy soak.old_state FROM '$work/old_state.copy'" \
	-c "\\copy soak.old_side FROM '$work/old_side.tsv'" \
	-c "\\copy soak.announced FROM '$work/announced.tsv'" \
	-c "\\copy soak.queue_samples FROM '$work/queue.tsv'" \
	-c "\\copy soak.gateway_devices (j) FROM '$work/devices.jsonl' $JSONL" \
	-c "\\copy soak.poll_devices (j) FROM '$work/app/devices.jsonl' $JSONL" \
	-c "\\copy soak.poll_points (j) FROM '$work/app/points.jsonl' $JSONL" \
	-c "\\copy soak.poll_syncs (j) FROM '$work/app/syncs.jsonl' $JSONL" >/dev/null
LOST=$(q -c "SELECT soak.prepare_prod()")
log "collecting the final state of every user and checking ($LOST acknowledged transactions lost in the promotion)"
q -c "SELECT soak.collect()" >/dev/null
t_collect=$((SECONDS - t_collect))
t_checks=$SECONDS
q -F $'\t' -c "SELECT section, name, value, ok, ms FROM soak.checks()" >"$work/checks.tsv"
q -F $'\t' -c "SELECT section, name, value, ok, ms FROM soak.checks_prod()" >>"$work/checks.tsv"
t_checks=$((SECONDS - t_checks))
q -F $'\t' -c "SELECT name, value FROM soak.figures()" >"$work/figures.tsv"
q -F $'\t' -c "SELECT name, value FROM soak.figures_prod()" >"$work/figures_prod.tsv"
if awk -F '\t' '$4 != "t"' "$work/checks.tsv" | grep -q .; then
	q -F ': ' -c "SELECT what, detail FROM soak.diagnose()" >"$work/diagnose.txt" || true
fi

# checks made here, outside SQL
yes_no() { if eval "$1"; then echo t; else echo f; fi; }
{
	awk -F '\t' '{ printf "old primary\t%s\t%s\t%s\t\n", $1, $2, $3 }' "$work/old_side.tsv"
	printf 'shell\tapplication exit status\t%s\t%s\t\n' "$app_rc" "$(yes_no "[ $app_rc = 0 ]")"
	printf 'shell\tdevices (gateway) exit status\t%s\t%s\t\n' "$dev_rc" "$(yes_no "[ $dev_rc = 0 ]")"
	printf 'shell\tserver connections terminated (primary + standby)\t%s + %s\t%s\t\n' "$n_term_p" "$n_term_s" \
		"$(yes_no "[ $((n_term_p + n_term_s)) -gt 0 ]")"
	printf 'shell\tLISTEN reconnections of gateway A / B (>= 2 each: termination, failover)\t%s / %s\t%s\t\n' \
		"$gw_reconnects_a" "$gw_reconnects_b" "$(yes_no "[ $gw_reconnects_a -ge 2 ] && [ $gw_reconnects_b -ge 2 ]")"
	crashes=$(cat "$pdir/server.log" "$pdir/copy.log" "$sdir/server.log" ${s2dir:+"$s2dir/server.log"} |
		grep -cE 'PANIC|TRAP:|terminated by signal|was terminated' || true)
	printf 'shell\tserver logs: crashes, PANICs, assertion failures\t%s\t%s\t\n' "$crashes" "$(yes_no "[ $crashes = 0 ]")"
} >"$work/checks0.tsv"

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
DURATION=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", (b - a) / 1000 }')
NREQ=$(wc -l <"$work/app/requests.tsv")
WAL_MB=$(q -c "SELECT round(pg_wal_lsn_diff('$wal1', '$wal0') / 1048576)" 2>/dev/null || echo '?')
ELAPSED=$((SECONDS - START_SECONDS))
VERDICT_S=$((($(now_ms) - t_traffic_end + 500) / 1000))
pctl() { # P SRC: nearest-rank latency percentile (ms) of acknowledged requests
	awk -F '\t' -v p="$1" -v s="$2" '$4 == "ack" && (s == "" || $3 == s) { print $8 - $7 }' "$work/app/requests.tsv" |
		sort -n | awk -v p="$1" '{ a[++n] = $1 } END { if (n == 0) { print "-"; exit }
			i = int(p * n); if (i < p * n) i++; if (i < 1) i = 1; print a[i] }'
}
report() {
	local fails
	echo "roastr_state production soak — $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "machine: $NPROC cores, $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo), $(pg_config --version), $(pgbouncer --version | head -n 1), node $(node --version); load before the run: $LOAD0"
	echo "topology: primary + asynchronous streaming standby (unix sockets), PgBouncer transaction mode, 2 gateways"
	echo "load: $USERS users + hot user, $CLIENTS application clients, $NDEV gateway devices, $T s; link cut $CUT s before the stop"
	echo
	echo "== run"
	printf '  %-50s %s\n' "duration (s)" "$DURATION" \
		"requests (all outcomes)" "$NREQ" \
		"latency p50 / p99 (ms, acknowledged)" "$(pctl 0.50 '') / $(pctl 0.99 '')" \
		"WAL written on the final primary's timeline (MB)" "$WAL_MB" \
		"notifier (notify_stats, new primary)" "$NOTIFY_STATS"
	echo
	echo "== requests by script (acknowledged, p50 / p99 ms)"
	awk -F '\t' '$4 == "ack" { n[$3]++ } END { for (s in n) print s, n[s] }' "$work/app/requests.tsv" | sort |
		while read -r s n; do printf '  %-20s %9s   %s / %s\n' "$s" "$n" "$(pctl 0.50 "$s")" "$(pctl 0.99 "$s")"; done
	echo
	echo "== operations"
	cat "$work/figures.tsv" "$work/figures_prod.tsv" | awk -F '\t' '{ printf "  %-50s %s\n", $1, $2 }'
	printf '  %-50s %s\n' "gateways: devices given up on, synced 20 times behind an announced (lost) version" "$gw_behind"
	echo
	soak_checks_table
	echo
	echo "== time to the verdict (s)"
	printf '  %-50s %s\n' "from the end of the traffic to the verdict" "$VERDICT_S" \
		"  old primary read, data loaded, final state collected" "$t_collect" \
		"  checks (all sections)" "$t_checks"
	soak_section_times
	fails=$(soak_failed_checks)
	soak_diagnosis
	if [ "$fails" -ne 0 ]; then
		echo
		echo "== unexpected request errors (first 10)"
		awk -F '\t' '$5 == "unexpected"' "$work/app/requests.tsv" | head -n 10 | sed 's/^/  /'
		echo "== application log (last 10 lines)"
		tail -n 10 "$work/app.log" | sed 's/^/  /'
	fi
	echo
	echo "wall clock: $((ELAPSED / 60)) min $((ELAPSED % 60)) s (build, setup, traffic, checks)"
	if [ "$fails" -eq 0 ]; then echo "soak: PASS"; else echo "soak: FAIL ($fails checks)"; fi
}
out_dir=${SOAK_REPORT_DIR:-bench/soak/results}
mkdir -p "$out_dir"
report | tee "$out_dir/prod-latest.txt"
reported=1
tail -n 1 "$out_dir/prod-latest.txt" | grep -q '^soak: PASS$'
