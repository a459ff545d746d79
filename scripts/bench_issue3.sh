# shellcheck shell=bash
# shellcheck disable=SC2154   # $work, $PM, $T, $REPS... come from scripts/bench.sh
# scripts/bench_issue3.sh — the issue 3 group of `make bench` (BENCH_GROUPS
# issue3): roastr_state side by side with a bare UPDATE and with the same
# semantics written in PL/pgSQL (bench/plpgsql_twin.sql), on 10k users with
# 25 logged changes each; then the hot user, persona crypto, notification
# delivery and storage.  Sourced by scripts/bench.sh, which has built the
# extension, started the cluster ($PM) and defined the shared helpers; it
# appends its report to bench/results/latest.md and prints it.

USERS=10000                     # pgbench users; user USERS+1 is the latency user
ROUNDS=25                       # logged changes per user at load
CURSOR=$((1 + ROUNDS - 5))      # state_sync from here returns 5 fields
NOTIFY_RATE=200                 # patches per second in the latency runs
NOTIFY_N=$((NOTIFY_RATE * T))   # 2000 at the default
STORAGE_UPDATES=$((100000 * T)) # 1M at the default

cc -O2 -Wall -Wextra -pthread -o "$work/notify_latency" bench/notify_latency.c \
	-I"$(pg_config --includedir)" -L"$(pg_config --libdir)" -lpq

psql -X -q -d postgres -c "CREATE DATABASE bench"
export PGDATABASE=bench

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
log "loading $USERS users with $ROUNDS logged changes each (roastr_state, twin, bare)"
psql -X -q -v ON_ERROR_STOP=1 -v users=$USERS -v rounds=$ROUNDS -f bench/setup.sql \
	>"$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; exit 1; }
LATENCY_USER=$(q -c "SELECT bench.uid($USERS + 1)")
[ "$(q -c "SELECT jsonb_array_length(roastr_state.state_sync(bench.uid(1), $CURSOR)->'changes')")" = 5 ] \
	|| { echo "bench: state_sync from $CURSOR does not return 5 fields" >&2; exit 1; }
[ "$(q -c "SELECT jsonb_array_length(twin.state_sync(bench.uid(1), $CURSOR)->'changes')")" = 5 ] \
	|| { echo "bench: twin.state_sync from $CURSOR does not return 5 fields" >&2; exit 1; }

# Users for the persona read (pro, three 300-byte persona fields) and the
# hot-user quota run; deleted again before the storage measurement.
PBASE=$((USERS + 100))
PEND=$((USERS + 1099))
HOT_N=$((USERS + 2))
HOT_LIMIT=500
log "loading 1000 pro users with persona text, and the hot user"
psql -X -q -v ON_ERROR_STOP=1 >"$work/persona.log" 2>&1 <<SQL || { cat "$work/persona.log" >&2; exit 1; }
SET roastr_state.notify_mode = direct;
SELECT count(roastr_state.ensure_user(bench.uid(i), 'p' || i || '@example.com')) FROM generate_series($PBASE, $PEND) i;
SELECT count(roastr_state.patch(bench.uid(i), '{"subscription.plan": "pro"}')) FROM generate_series($PBASE, $PEND) i;
SELECT count(roastr_state.patch(bench.uid(i), jsonb_build_object(
	'persona.identity', repeat('i', 300), 'persona.intolerance', repeat('n', 300),
	'persona.tolerance', repeat('t', 300)))) FROM generate_series($PBASE, $PEND) i;
SELECT roastr_state.ensure_user(bench.uid($HOT_N), 'hot@example.com');
SELECT roastr_state.patch(bench.uid($HOT_N), '{"subscription.plan": "starter"}');
SQL
[ "$(q -c "SELECT length(roastr_state.state_full(bench.uid($PBASE))->'persona'->>'tolerance')")" = 300 ] \
	|| { echo "bench: persona users were not set up" >&2; exit 1; }

SIZE_SQL_ROASTR="pg_total_relation_size('roastr_state.state') + pg_total_relation_size('roastr_state.persona') + pg_total_relation_size('roastr_state.mutations')"
SIZE_SQL_TWIN="pg_total_relation_size('twin.state') + pg_total_relation_size('twin.changes')"
SIZE_SQL_BARE="pg_total_relation_size('bench.bare')"
NUSERS=$((USERS + 1))
per_user() { q -c "SELECT round(($1)::numeric / $NUSERS)"; }
LOAD_B_ROASTR=$(per_user "$SIZE_SQL_ROASTR")
LOAD_B_TWIN=$(per_user "$SIZE_SQL_TWIN")
LOAD_B_BARE=$(per_user "$SIZE_SQL_BARE")

# ---------------------------------------------------------------------------
# Measuring one run (the shared helpers are in scripts/bench.sh)
# ---------------------------------------------------------------------------

# Before a write run: every user of the table the variant writes back to
# roasting_enabled = true (the patch scripts rely on it), VACUUM, CHECKPOINT.
prepare_run() {
	local sql=""
	case $1 in
		write_bare)
			sql="UPDATE bench.bare SET roasting_enabled = true WHERE NOT roasting_enabled;
VACUUM bench.bare;" ;;
		write_patch | write_patch_direct | write_patch_worker | write_update_c | quota_consume)
			sql="SET roastr_state.notify_mode = direct;
UPDATE roastr_state.state SET roasting_enabled = true WHERE NOT roasting_enabled;
VACUUM roastr_state.state;" ;;
		write_twin_patch | write_update_twin)
			sql="UPDATE twin.state SET roasting_enabled = true WHERE NOT roasting_enabled;
VACUUM twin.state, twin.changes;" ;;
	esac
	printf '%s\nCHECKPOINT;\n' "$sql" | psql -X -q -v ON_ERROR_STOP=1 >/dev/null
}

# run_pgbench PHASE VARIANT CLIENTS SYNC REP [pgbench args...]
# Appends "phase variant clients sync rep tps ntx cpu_us_per_txn wal_bytes_per_txn p99_ms"
# to $work/runs.tsv.
run_pgbench() {
	local phase=$1 variant=$2 clients=$3 sync=$4 rep=$5
	shift 5
	local j=$((clients < NPROC ? clients : NPROC))
	local out="$work/$phase.$variant.$clients.$sync.$rep"
	local wal0 wal1 c0 c1 tps ntx failed cpu wal p99
	local script=$variant options="-c synchronous_commit=$sync"

	# a *_direct / *_worker variant is its script with that notify_mode
	if [[ $variant == *_direct ]]; then
		script=${variant%_direct}
		options="$options -c roastr_state.notify_mode=direct"
	elif [[ $variant == *_worker ]]; then
		script=${variant%_worker}
		options="$options -c roastr_state.notify_mode=worker"
	fi
	prepare_run "$variant"
	wal0=$(q -c "SELECT pg_current_wal_insert_lsn()")
	wait_backends_gone
	c0=$(server_ticks)
	if ! PGOPTIONS="$options" pgbench -n -M prepared -c "$clients" -j "$j" \
		-T "$T" -D n=0 -D nc="$clients" -D users="$USERS" "$@" \
		-l --log-prefix="$out.log" -f "bench/pgbench/$script.sql" >"$out.txt" 2>&1; then
		cat "$out.txt" >&2
		echo "bench: pgbench failed in $phase $variant" >&2
		exit 1
	fi
	case $variant in write_patch* | write_update_c | quota_*) wait_notifier_drained ;; esac
	wait_backends_gone
	c1=$(server_ticks)
	wal1=$(q -c "SELECT pg_current_wal_insert_lsn()")

	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out.txt")
	ntx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out.txt")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out.txt")
	if [ -z "$tps" ] || [ -z "$ntx" ] || [ "$ntx" -eq 0 ] || [ "${failed:-0}" -ne 0 ]; then
		cat "$out.txt" >&2
		echo "bench: unusable pgbench result in $phase $variant" >&2
		exit 1
	fi
	cpu=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$ntx" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
	wal=$(q -c "SELECT round(pg_wal_lsn_diff('$wal1', '$wal0') / $ntx)")
	p99=$(log_percentile 0.99 "$out.log".*)
	rm -f "$out.log".*
	echo "$phase $variant $clients $sync $rep $tps $ntx $cpu $wal $p99" >>"$work/runs.tsv"
	log "$(printf '%-5s %-18s c=%d sync=%-3s rep %d: %8.0f tps  %6.1f us/txn  %5d WAL B/txn  p99 %s ms' \
		"$phase" "$variant" "$clients" "$sync" "$rep" "$tps" "$cpu" "$wal" "$p99")"
}

# ---------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------
: >"$work/runs.tsv"
READS=(read_bare read_sync read_full read_full_persona read_twin_sync)
WRITES=(write_bare write_patch write_update_c write_twin_patch write_update_twin write_patch_direct write_patch_worker quota_consume)
SETTINGS=("off 1" "off 2" "on 8")

log "reads: ${READS[*]} (1 client, $T s, $REPS alternating runs each)"
for rep in $(seq "$REPS"); do
	for v in "${READS[@]}"; do
		run_pgbench read "$v" 1 on "$rep" -D cursor="$CURSOR" -D pbase="$PBASE" -D pend="$PEND"
	done
done

for setting in "${SETTINGS[@]}"; do
	read -r sync clients <<<"$setting"
	log "writes: synchronous_commit=$sync, $clients clients"
	for rep in $(seq "$REPS"); do
		for v in "${WRITES[@]}"; do
			run_pgbench write "$v" "$clients" "$sync" "$rep"
		done
	done
done

# One hot user at its limit: 16 clients consume from the same user; the
# final count must be exactly the limit (starter: $HOT_LIMIT).
: >"$work/hot.tsv"
log "quota: 16 clients on one user with a limit of $HOT_LIMIT"
for rep in $(seq "$REPS"); do
	q -c "SET roastr_state.notify_mode = direct" \
		-c "UPDATE roastr_state.state SET monthly_roasts_used = 0, usage_period_end = NULL WHERE user_id = bench.uid($HOT_N)" >/dev/null
	PGOPTIONS="-c synchronous_commit=on" pgbench -n -M prepared -c 16 -j "$NPROC" -T "$T" -D hotn="$HOT_N" \
		-f bench/pgbench/quota_hot.sql >"$work/hot.$rep.txt" 2>&1 || { cat "$work/hot.$rep.txt" >&2; exit 1; }
	used=$(q -c "SELECT monthly_roasts_used FROM roastr_state.state WHERE user_id = bench.uid($HOT_N)")
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$work/hot.$rep.txt")
	echo "$rep $tps $used" >>"$work/hot.tsv"
	log "quota hot user rep $rep: $tps tps, final count $used (limit $HOT_LIMIT)"
	[ "$used" = "$HOT_LIMIT" ] || { echo "bench: hot user ended at $used, not at its limit $HOT_LIMIT" >&2; exit 1; }
done
q -c "SET roastr_state.notify_mode = direct" \
	-c "SELECT count(roastr_state.delete_user(bench.uid(i))) FROM generate_series($PBASE, $PEND) i" \
	-c "SELECT roastr_state.delete_user(bench.uid($HOT_N))" -c "VACUUM" >/dev/null

# Persona crypto against libsodium's floor, same process, same key.
cc -O2 -Isrc/core -o "$work/bench_crypto" test/unit/bench_crypto.c src/core/envelope.c \
	src/core/keyfile.c -lsodium || { echo "bench: cannot build bench_crypto" >&2; exit 1; }
"$work/bench_crypto" 7 >"$work/crypto.txt" || { cat "$work/crypto.txt" >&2; exit 1; }
CRYPTO_RAW=$(sed -n 's/.*fixed nonce) *\([0-9.]*\) us\/op.*/\1/p' "$work/crypto.txt")
CRYPTO_RAWN=$(sed -n 's/.*random nonce *\([0-9.]*\) us\/op.*/\1/p' "$work/crypto.txt")
CRYPTO_ENV=$(sed -n 's/.*rs_env_seal + rs_env_open *\([0-9.]*\) us\/op.*/\1/p' "$work/crypto.txt")

# Notification delivery: commit acknowledged -> LISTENing session's receipt,
# idle and while 8 other clients patch with synchronous_commit on.
: >"$work/latency.tsv"
latency_run() {
	local mode=$1 load=$2
	local pid="" res load_tps="—" out="$work/latency.$1.$2"
	if [ "$load" = load ]; then
		prepare_run write_patch
		PGOPTIONS="-c synchronous_commit=on -c roastr_state.notify_mode=$mode" \
			pgbench -n -M prepared -c 8 -j "$NPROC" -T $((NOTIFY_N / NOTIFY_RATE + 2)) \
			-D n=0 -D nc=8 -D users="$USERS" -f bench/pgbench/write_patch.sql >"$out.pgbench" 2>&1 &
		pid=$!
		bg_pids+=("$pid")
		sleep 1
	fi
	res=$("$work/notify_latency" -u "$LATENCY_USER" -n "$NOTIFY_N" -r "$NOTIFY_RATE" -m "$mode" -w 10000) || {
		echo "bench: notification latency run failed ($mode, $load): $res" >&2
		exit 1
	}
	if [ -n "$pid" ]; then
		wait "$pid" || { cat "$out.pgbench" >&2; exit 1; }
		load_tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out.pgbench")
	fi
	echo "$mode $load $load_tps $res" >>"$work/latency.tsv"
	log "latency $mode $load: $res${pid:+ (load: $load_tps tps)}"
}
log "notification latency: $NOTIFY_N patches at $NOTIFY_RATE/s of one user"
latency_run worker idle
latency_run direct idle
latency_run worker load
latency_run direct load
NOTIFY_STATS=$(q -c "SELECT roastr_state.notify_stats()")

# Storage: STORAGE_UPDATES one-field updates through each system (direct
# UPDATEs of a quarter of the users at a time, each through the triggers),
# VACUUM after each statement as autovacuum would, then VACUUM and measure.
STATEMENTS=$((STORAGE_UPDATES / (USERS / 4)))
log "storage: $STORAGE_UPDATES one-field updates per system ($STATEMENTS statements of $((USERS / 4)) rows)"
storage_updates() {
	local table=$1 vacuum=$2
	psql -X -q -v ON_ERROR_STOP=1 >"$work/storage.log" 2>&1 <<SQL || { cat "$work/storage.log" >&2; exit 1; }
SET roastr_state.notify_mode = direct;
SELECT stmt
FROM generate_series(0, $STATEMENTS - 1) s,
	 LATERAL (VALUES
		(1, format('UPDATE $table SET %s WHERE user_id IN (SELECT bench.uid(i) FROM generate_series(%s, $USERS, 4) i)',
				   CASE (s / 4) % 5
					   WHEN 0 THEN 'roasting_enabled = NOT roasting_enabled'
					   WHEN 1 THEN 'roast_level = roast_level % 5 + 1'
					   WHEN 2 THEN 'shield_level = CASE shield_level WHEN ''tolerante'' THEN ''balanceado'' WHEN ''balanceado'' THEN ''estricto'' ELSE ''tolerante'' END'
					   WHEN 3 THEN format('name = %L', 'Storage name ' || s)
					   ELSE format('embeddings_model = %L', 'storage-model-' || s)
				   END,
				   s % 4 + 1)),
		(2, 'VACUUM $vacuum')) AS x(k, stmt)
ORDER BY s, k \gexec
SQL
}
storage_updates roastr_state.state roastr_state.state
storage_updates twin.state "twin.state, twin.changes"
storage_updates bench.bare bench.bare
q -c "VACUUM" >/dev/null
AFTER_B_ROASTR=$(per_user "$SIZE_SQL_ROASTR")
AFTER_B_TWIN=$(per_user "$SIZE_SQL_TWIN")
AFTER_B_BARE=$(per_user "$SIZE_SQL_BARE")
TWIN_LOG_ROWS=$(q -c "SELECT count(*) || ' rows, at most ' || max(n) || ' per user' FROM (SELECT count(*) AS n FROM twin.changes GROUP BY user_id) c")
q -c "VACUUM FULL" >/dev/null
FULL_B_ROASTR=$(per_user "$SIZE_SQL_ROASTR")
FULL_B_TWIN=$(per_user "$SIZE_SQL_TWIN")
FULL_B_BARE=$(per_user "$SIZE_SQL_BARE")
ROW_B_ROASTR=$(q -c "SELECT round(avg(pg_column_size(s.*))) FROM roastr_state.state s")
ROW_B_TWIN=$(q -c "SELECT round(avg(pg_column_size(s.*))) FROM twin.state s")

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
PG_VERSION=$(q -c "SELECT version()")
setting_of() { q -c "SHOW $1"; }
SETTINGS_LINE="fsync=$(setting_of fsync), full_page_writes=$(setting_of full_page_writes), shared_buffers=$(setting_of shared_buffers), max_connections=$(setting_of max_connections), wal_level=$(setting_of wal_level), autovacuum=$(setting_of autovacuum) (explicit VACUUM + CHECKPOINT before every run), shared_preload_libraries=$(setting_of shared_preload_libraries), roastr_state.notify_mode=$(setting_of roastr_state.notify_mode) unless a row says direct"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
ELAPSED=$(((SECONDS - START_SECONDS + 30) / 60))

# values of column $5 of runs.tsv for one group ($1..$4 = phase variant clients sync)
vals() { awk -v k="$1 $2 $3 $4" -v f="$5" '($1 " " $2 " " $3 " " $4) == k { print $f }' "$work/runs.tsv" | sort -g; }
med() { vals "$@" | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
tps_cell() {
	local m lo hi
	m=$(med "$@" 6); lo=$(vals "$@" 6 | head -n 1); hi=$(vals "$@" 6 | tail -n 1)
	printf "%.0f (%.0f–%.0f)" "$m" "$lo" "$hi"
}
fmt() { awk -v x="$1" -v f="$2" 'BEGIN { printf f, x }'; }

label() {
	case $1 in
		read_bare) echo "bare SELECT of the row as JSON" ;;
		read_sync) echo "roastr_state.state_sync" ;;
		read_full) echo "roastr_state.state_full (no persona set)" ;;
		read_full_persona) echo "roastr_state.state_full, 3 persona fields decrypted" ;;
		write_patch_worker) echo "roastr_state.patch, notify_mode=worker" ;;
		quota_consume) echo "roastr_state.consume_roasts(u, 1), 10k users" ;;
		read_twin_sync) echo "twin.state_sync (PL/pgSQL)" ;;
		write_bare) echo "bare UPDATE, no trigger" ;;
		write_patch) echo "roastr_state.patch (notify_mode=auto)" ;;
		write_update_c) echo "UPDATE through the C trigger" ;;
		write_twin_patch) echo "twin.patch (PL/pgSQL)" ;;
		write_update_twin) echo "UPDATE through the PL/pgSQL trigger" ;;
		write_patch_direct) echo "roastr_state.patch, notify_mode=direct" ;;
	esac
}

# ratio and extra CPU against the group's bare variant
row() {
	local phase=$1 v=$2 clients=$3 sync=$4 scen=$5 bare=$6
	local tm bm cm bc ratio extra synccol
	tm=$(med "$phase" "$v" "$clients" "$sync" 6)
	bm=$(med "$phase" "$bare" "$clients" "$sync" 6)
	cm=$(med "$phase" "$v" "$clients" "$sync" 8)
	bc=$(med "$phase" "$bare" "$clients" "$sync" 8)
	ratio=$(awk -v a="$tm" -v b="$bm" 'BEGIN { printf "%.2f", a / b }')
	if [ "$v" = "$bare" ]; then extra="—"; else extra=$(awk -v a="$cm" -v b="$bc" 'BEGIN { printf "%+.0f", a - b }'); fi
	synccol=$sync
	[ "$phase" = read ] && synccol="—"
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | p99 %s ms · WAL %s B |\n' \
		"$scen" "$(label "$v")" "$clients" "$synccol" "$(tps_cell "$phase" "$v" "$clients" "$sync")" \
		"$ratio" "$(fmt "$cm" '%.0f')" "$extra" \
		"$(med "$phase" "$v" "$clients" "$sync" 10)" "$(fmt "$(med "$phase" "$v" "$clients" "$sync" 9)" '%.0f')"
}

lat_field() { awk -v m="$1" -v l="$2" -v f="$3" '$1 == m && $2 == l { for (i = 4; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$work/latency.tsv"; }
lat_tps() { awk -v m="$1" -v l="$2" '$1 == m && $2 == l { print $3 }' "$work/latency.tsv"; }
lat_row() {
	local mode=$1 load=$2 variant tpscell="$NOTIFY_RATE/s (paced)" clients=1
	if [ "$load" = load ]; then
		variant="patch, notify_mode=$mode, while 8 clients patch"
		clients="1 + 8"
		tpscell="$NOTIFY_RATE/s + $(fmt "$(lat_tps "$mode" "$load")" "%.0f") load"
	else
		variant="patch, notify_mode=$mode, idle server"
	fi
	printf '| notify latency, commit → receipt | %s | %s | on | %s | — | — | — | p50 %s ms · p99 %s ms · max %s ms · %s/%s received |\n' \
		"$variant" "$clients" "$tpscell" "$(lat_field "$mode" "$load" p50_ms)" "$(lat_field "$mode" "$load" p99_ms)" \
		"$(lat_field "$mode" "$load" max_ms)" "$(lat_field "$mode" "$load" received)" "$NOTIFY_N"
}

STORAGE_LABEL=$(awk -v n="$STORAGE_UPDATES" 'BEGIN { if (n >= 1000000) printf "%gM", n / 1e6; else printf "%gk", n / 1e3 }')

report() {
	echo "# roastr_state benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Command: \`make bench\` with BENCH_SECONDS=$T ($T s per run, $REPS alternating runs per variant; whole run ≈ $ELAPSED min)"
	echo
	echo "- Machine: $NPROC CPUs, $CPU_MODEL, $MEM RAM, Linux $(uname -r); load average before $LOAD_BEFORE, after $LOAD_AFTER"
	echo "- PostgreSQL: $PG_VERSION; $(pgbench --version)"
	echo "- Settings: $SETTINGS_LINE"
	echo "- synchronous_commit per row (PGOPTIONS); pgbench -M prepared -n, -j = min(clients, $NPROC), Unix socket"
	echo "- Data: $USERS users (+1 for the latency run) with $ROUNDS logged changes each in roastr_state and the twin; bench.bare has the same rows"
	echo "- Cells: tps median (min–max) of $REPS runs; ratio = median tps / median tps of the bare variant of the same group; server µs/txn = CPU time of every server process (backends, notifier, WAL writer, checkpointer...) per transaction, median; p99 latency and WAL bytes per transaction, median"
	echo
	echo "| scenario | variant | clients | sync commit | tps median (min–max) | ratio vs bare | server µs/txn | extra µs vs bare | notes |"
	echo "|---|---|---|---|---|---|---|---|---|"
	row read read_bare 1 on "read one user" read_bare
	row read read_sync 1 on "read one user: sync, 5 fields" read_bare
	row read read_twin_sync 1 on "read one user: sync, 5 fields" read_bare
	row read read_full 1 on "read one user: whole state" read_bare
	row read read_full_persona 1 on "read one user: whole state" read_bare
	for setting in "${SETTINGS[@]}"; do
		read -r sync clients <<<"$setting"
		for v in "${WRITES[@]}"; do
			row write "$v" "$clients" "$sync" "write one field" write_bare
		done
	done
	printf '| consume_roasts, one hot user at its limit (%s) | roastr_state.consume_roasts(u, 1) | 16 | on | %s | — | — | — | final count per run: %s (never above the limit) |\n' \
		"$HOT_LIMIT" "$(awk '{ print $2 }' "$work/hot.tsv" | sort -g | awk '{ a[NR] = $1 } END { printf "%.0f (%.0f–%.0f)", a[int((NR + 1) / 2)], a[1], a[NR] }')" \
		"$(awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $3 }' "$work/hot.tsv")"
	printf '| persona encrypt+decrypt, 300 B, µs/op | rs_env_seal + rs_env_open vs libsodium | 1 | — | — | %s | — | — | ours %s µs; libsodium with a random nonce %s µs, with a fixed nonce %s µs (median of 7 × 100k) |\n' \
		"$(awk -v a="$CRYPTO_ENV" -v b="$CRYPTO_RAWN" 'BEGIN { printf "%.2f", a / b }')" "$CRYPTO_ENV" "$CRYPTO_RAWN" "$CRYPTO_RAW"
	lat_row worker idle
	lat_row direct idle
	lat_row worker load
	lat_row direct load
	printf '| storage after %s more updates | roastr_state: state + persona + mutations | | | | | | | %s B/user after VACUUM (%s at load, %s after VACUUM FULL); row %s B |\n' \
		"$STORAGE_LABEL" "$AFTER_B_ROASTR" "$LOAD_B_ROASTR" "$FULL_B_ROASTR" "$ROW_B_ROASTR"
	printf '| storage after %s more updates | twin: state + changes | | | | | | | %s B/user after VACUUM (%s at load, %s after VACUUM FULL); row %s B; change log %s |\n' \
		"$STORAGE_LABEL" "$AFTER_B_TWIN" "$LOAD_B_TWIN" "$FULL_B_TWIN" "$ROW_B_TWIN" "$TWIN_LOG_ROWS"
	printf '| storage after %s more updates | bare table | | | | | | | %s B/user after VACUUM (%s at load, %s after VACUUM FULL) |\n' \
		"$STORAGE_LABEL" "$AFTER_B_BARE" "$LOAD_B_BARE" "$FULL_B_BARE"
	echo
	echo "Notifier counters at the end of the latency runs: $NOTIFY_STATS"
	echo
	targets
}

ratio_of() { awk -v a="$(med write "$1" "$2" "$3" 6)" -v b="$(med write write_bare "$2" "$3" 6)" 'BEGIN { printf "%.2f", a / b }'; }
extra_of() { awk -v a="$(med write "$1" "$2" "$3" 8)" -v b="$(med write write_bare "$2" "$3" 8)" 'BEGIN { printf "%.0f", a - b }'; }
verdict() { awk -v x="$1" -v t="$2" -v dir="$3" 'BEGIN {
	ok = (dir == ">=") ? (x >= t) : (x <= t)
	if (ok) print "**met**"; else if (dir == ">=") printf "**missed** by %.0f%%", (t - x) / t * 100
	else if (x > 2 * t) printf "**missed** (%.1f× the limit)", x / t
	else printf "**missed** by %.0f%%", (x - t) / t * 100 }'; }

targets() {
	local rp ru ep et eu ew r8p r8u sp fp lw ll
	rp=$(ratio_of write_patch 1 off); ru=$(ratio_of write_update_c 1 off)
	ep=$(extra_of write_patch 1 off); et=$(extra_of write_twin_patch 1 off)
	eu=$(extra_of write_update_c 1 off); ew=$(extra_of write_update_twin 1 off)
	r8p=$(ratio_of write_patch 8 on); r8u=$(ratio_of write_update_c 8 on)
	sp=$(med read read_sync 1 on 10); fp=$(med read read_full 1 on 10)
	local pp; pp=$(med read read_full_persona 1 on 10)
	lw=$(lat_field worker idle p99_ms); ll=$(lat_field worker load p99_ms)
	echo "## Targets of issue 3 (this run)"
	echo
	echo "- One-field patch ≥ 0.75 of bare, synchronous_commit off, 1 client: patch $rp, direct UPDATE $ru (patch with notify_mode=direct $(ratio_of write_patch_direct 1 off)) — $(verdict "$rp" 0.75 ">=")"
	echo "- Server CPU added per write ≤ 1/3 of the twin's (synchronous_commit off, 1 client): patch +$ep µs vs twin.patch +$et µs (limit $(awk -v t="$et" 'BEGIN { printf "%.0f", t / 3 }')) — $(verdict "$ep" "$(awk -v t="$et" 'BEGIN { print t / 3 }')" "<="); direct UPDATE +$eu µs vs PL/pgSQL trigger +$ew µs — $(verdict "$eu" "$(awk -v t="$ew" 'BEGIN { print t / 3 }')" "<=")"
	echo "- Notifying writes ≥ 0.8 of bare, synchronous_commit on, 8 clients: patch $r8p, direct UPDATE $r8u (twin.patch $(ratio_of write_twin_patch 8 on), patch with notify_mode=direct $(ratio_of write_patch_direct 8 on)) — $(verdict "$r8p" 0.8 ">=")"
	echo "- Delivery p99 < 50 ms (worker mode): idle $lw ms, under load $ll ms — $(verdict "$(awk -v a="$lw" -v b="$ll" 'BEGIN { print (a > b) ? a : b }')" 50 "<=")"
	echo "- state_sync p99 < 0.2 ms at 1 client: $sp ms — $(verdict "$sp" 0.2 "<=")"
	echo "- state_full p99 < 0.3 ms with three persona fields decrypted: $pp ms (without persona $fp ms) — $(verdict "$pp" 0.3 "<=")"
	echo "- Persona encrypt+decrypt within 15% of libsodium's floor (the same AEAD with a fresh random nonce, as every write needs): $CRYPTO_ENV vs $CRYPTO_RAWN µs — $(verdict "$(awk -v a="$CRYPTO_ENV" -v b="$CRYPTO_RAWN" 'BEGIN { print a / b }')" 1.15 "<=") (against the fixed-nonce primitive alone: $(awk -v a="$CRYPTO_ENV" -v b="$CRYPTO_RAW" 'BEGIN { printf "%.2f", a / b }')×; the difference is randombytes_buf)"
	echo "- consume_roasts on one hot user at its limit, 16 clients: final count equals the limit in every run ($(awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $3 }' "$work/hot.tsv") of $HOT_LIMIT)"
	echo "- Storage bounded by users × fields: roastr_state $LOAD_B_ROASTR → $AFTER_B_ROASTR B/user, twin $LOAD_B_TWIN → $AFTER_B_TWIN B/user after $STORAGE_LABEL more updates (plus the write scenarios' updates)"
}

report | tee -a bench/results/latest.md
