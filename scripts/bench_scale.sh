# shellcheck shell=bash
# shellcheck disable=SC2154   # $work, $PM, $T, $REPS... come from scripts/bench.sh
# scripts/bench_scale.sh — the scale group of `make bench` (issue 17;
# BENCH_GROUPS=scale).  Sourced by scripts/bench.sh, which has built the
# extension, started the cluster ($PM) and defined the shared helpers.
#
#   1. Two databases loaded the same way (bench/scale_setup.sql): BENCH_USERS
#      users (default 1,000,000) and 10,000 users, each with one organization
#      holding the same fraction of its users (BENCH_ORG_MEMBERS, default
#      10,000, in the large one).  The load time is reported.
#   2. Side by side, alternating (script at the large size, the same at 10k,
#      the next script ...), BENCH_REPS times: state_sync, state_full, patch
#      and consume_roasts, 1 client, the scripts of bench/pgbench/: tps,
#      server µs/txn, p99.  Target: the two sizes within 10 %.
#   3. On the large database, while 8 clients patch with synchronous_commit
#      on: a plan-limit change (UPDATE roastr_state.plans ... WHERE plan =
#      'free', every user is on it), then a rename of the organization.  The
#      change's commit time, and the latency of the writers' transactions
#      that overlapped it against those that did not (pgbench -l, which
#      stamps every transaction's end).  Targets: commit in milliseconds, no
#      writer waits more than 10 ms because of it.
#      Beside them, the same at both sizes on bench.bare (the state rows in a
#      plain table): a random read and a random one-column UPDATE, the
#      floor: how far apart the sizes are for PostgreSQL alone.
#   4. Bytes per user (every relation of the roastr_state schema, indexes and
#      TOAST included, over the users) after the load and at the end; the
#      notifier's memory (VmRSS of the background worker, sampled from
#      /proc during the changes' load) and notify_stats().
#
# Only the SQL API is used (plans, patch, consume_roasts, state_sync,
# state_full, create_organization, add_member, rename_organization), so the
# same script measures 0.6.0 and whatever comes after it.

SCALE_USERS=${BENCH_USERS:-1000000}
SCALE_SMALL=10000
SCALE_MEMBERS=${BENCH_ORG_MEMBERS:-10000}
SCALE_T=${BENCH_SCALE_SECONDS:-$(((2 * T + 4) / 5))} # per side-by-side run: 4 s at the default
CHANGE_SECONDS=${BENCH_CHANGE_SECONDS:-12}          # the patch load around each change
CHANGE_TIMEOUT=${BENCH_CHANGE_TIMEOUT:-60}          # a change still running then is cancelled
CHANGE_CLIENTS=8
CHANGE_AT=$((CHANGE_SECONDS / 3))                   # seconds into the load when the change starts
COMMIT_TARGET_MS=100                                # "commits in milliseconds", read as at most this
WAIT_TARGET_MS=10
APART_TARGET=10                                     # percent
SCALE_BATCH=100000
SCALE_CURSOR=21                                     # state_sync from here returns five fields
DB_BIG=bench_scale_big
DB_SMALL=bench_scale_10k
SCALE_VARIANTS=(read_sync read_full write_patch quota_consume)
# PostgreSQL alone on the same rows (bench.bare): what size costs anything
# that reads or writes random rows, the floor the variants are read against
SCALE_FLOORS=(read_bare write_bare_random)

for v in BENCH_USERS:SCALE_USERS BENCH_ORG_MEMBERS:SCALE_MEMBERS BENCH_SCALE_SECONDS:SCALE_T \
	BENCH_CHANGE_SECONDS:CHANGE_SECONDS BENCH_CHANGE_TIMEOUT:CHANGE_TIMEOUT; do
	knob=${v%%:*} var=${v#*:}
	if ! [[ "${!var}" =~ ^[1-9][0-9]*$ ]]; then
		echo "bench: $knob must be a positive integer (got '${!var}')" >&2
		exit 2
	fi
done
if [ "$SCALE_USERS" -lt "$SCALE_SMALL" ] || [ "$SCALE_USERS" -lt $((2 * SCALE_MEMBERS)) ]; then
	echo "bench: BENCH_USERS must be at least $SCALE_SMALL and twice BENCH_ORG_MEMBERS" >&2
	exit 2
fi
[ "$CHANGE_SECONDS" -ge 6 ] || { echo "bench: BENCH_CHANGE_SECONDS must be at least 6" >&2; exit 2; }
# the 10k database's organization holds the same fraction of its users
SMALL_MEMBERS=$((SCALE_SMALL * SCALE_MEMBERS / SCALE_USERS))
[ "$SMALL_MEMBERS" -ge 2 ] || SMALL_MEMBERS=2
SCALE_LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
SCALE_START=$SECONDS
: >"$work/scale_runs.tsv"
: >"$work/scale_load.tsv"
: >"$work/scale_changes.tsv"
: >"$work/scale_rss.tsv"

human() { awk -v n="$1" 'BEGIN { if (n >= 1e6 && n % 1e6 == 0) printf "%dM", n / 1e6; else if (n >= 1e3 && n % 1e3 == 0) printf "%dk", n / 1e3; else printf "%d", n }'; }
BIG_LABEL=$(human "$SCALE_USERS")
now_s() { date +%s.%N; }

# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

# bytes_per_user DB USERS -> "state_table_bytes all_relations_bytes" per user
bytes_per_user() {
	q -d "$1" -F ' ' -c "SELECT round(pg_total_relation_size('roastr_state.state')::numeric / ($2 + 1)),
		round(sum(pg_total_relation_size(c.oid))::numeric / ($2 + 1))
	FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
	WHERE ns.nspname = 'roastr_state' AND c.relkind IN ('r', 'p')"
}

# scale_load DB USERS MEMBERS: create and load the database; appends
# "db users members template_s copies_s org_s vacuum_s total_s state_B all_B bare_s"
# to scale_load.tsv.
scale_load() {
	local db=$1 users=$2 members=$3 t0 t1 marks bare
	psql -X -q -d postgres -c "CREATE DATABASE $db"
	log "scale: loading $users users into $db (organization of $members members)"
	t0=$(now_s)
	if ! psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -v users="$users" -v members="$members" \
		-v batch="$SCALE_BATCH" -f bench/scale_setup.sql >"$work/scale_setup.$db.log" 2>&1; then
		cat "$work/scale_setup.$db.log" >&2
		echo "bench: loading $db failed" >&2
		exit 1
	fi
	t1=$(now_s)
	# the script prints "mark NAME EPOCH" after each step
	marks=$(awk -v t0="$t0" -v t1="$t1" '$1 == "mark" { m[$2] = $3 }
		END { printf "%.2f %.2f %.2f %.2f %.2f", m["template"] - t0, m["copies"] - m["template"],
			m["organization"] - m["copies"], t1 - m["bare"], t1 - t0 - (m["bare"] - m["organization"]) }' "$work/scale_setup.$db.log")
	bare=$(awk '$1 == "mark" { m[$2] = $3 } END { printf "%.2f", m["bare"] - m["organization"] }' "$work/scale_setup.$db.log")
	echo "$db $users $members $marks $(bytes_per_user "$db" "$users") $bare" >>"$work/scale_load.tsv"
	log "scale: $db loaded: template, copies, organization, VACUUM ANALYZE + CHECKPOINT, total (s): $marks; the bare floor table copied in $bare s"
}

# ---------------------------------------------------------------------------
# Side by side
# ---------------------------------------------------------------------------

# Before a run: the patch script needs every user at roasting.enabled =
# true (see BENCHMARKS.md); VACUUM what the previous run left; CHECKPOINT.
scale_prepare() {
	local db=$1 variant=$2 sql=""
	case $variant in
		write_patch)
			sql="SET roastr_state.notify_mode = direct;
UPDATE roastr_state.state SET roasting_enabled = true WHERE NOT roasting_enabled;
VACUUM roastr_state.state;" ;;
		quota_consume) sql="VACUUM roastr_state.state;" ;;
		read_bare | write_bare_random) sql="VACUUM bench.bare;" ;;
	esac
	printf '%s\nCHECKPOINT;\n' "$sql" | psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null
}

# scale_run VARIANT SIZE(big|small) REP: one pgbench run of 1 client;
# appends "variant size rep tps ntx cpu_us wal_B p99_ms" to scale_runs.tsv.
scale_run() {
	local variant=$1 size=$2 rep=$3 db users sync=on out wal0 wal1 c0 c1 tps ntx failed cpu wal p99
	if [ "$size" = big ]; then db=$DB_BIG users=$SCALE_USERS; else db=$DB_SMALL users=$SCALE_SMALL; fi
	case $variant in write_* | quota_*) sync=off ;; esac
	out="$work/scale.$variant.$size.$rep"
	scale_prepare "$db" "$variant"
	wal0=$(q -d "$db" -c "SELECT pg_current_wal_insert_lsn()")
	wait_backends_gone "$db"
	c0=$(server_ticks)
	if ! PGDATABASE=$db PGOPTIONS="-c synchronous_commit=$sync" pgbench -n -M prepared -c 1 -j 1 -T "$SCALE_T" \
		-D n=0 -D nc=1 -D users="$users" -D cursor="$SCALE_CURSOR" \
		-l --log-prefix="$out.log" -f "bench/pgbench/$variant.sql" >"$out.txt" 2>&1; then
		cat "$out.txt" >&2
		echo "bench: pgbench failed in scale $variant ($db)" >&2
		exit 1
	fi
	wait_notifier_drained "$db"
	wait_backends_gone "$db"
	c1=$(server_ticks)
	wal1=$(q -d "$db" -c "SELECT pg_current_wal_insert_lsn()")
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out.txt")
	ntx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out.txt")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out.txt")
	if [ -z "$tps" ] || [ -z "$ntx" ] || [ "$ntx" -eq 0 ] || [ "${failed:-0}" -ne 0 ]; then
		cat "$out.txt" >&2
		echo "bench: unusable pgbench result in scale $variant ($db)" >&2
		exit 1
	fi
	cpu=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$ntx" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
	wal=$(q -d "$db" -c "SELECT round(pg_wal_lsn_diff('$wal1', '$wal0') / $ntx)")
	p99=$(log_percentile 0.99 "$out.log".*)
	rm -f "$out.log".*
	echo "$variant $size $rep $tps $ntx $cpu $wal $p99" >>"$work/scale_runs.tsv"
	log "$(printf 'scale %-14s %-5s rep %d: %8.0f tps  %6.1f us/txn  %5d WAL B/txn  p99 %s ms' \
		"$variant" "$size" "$rep" "$tps" "$cpu" "$wal" "$p99")"
}

# ---------------------------------------------------------------------------
# Changes under load
# ---------------------------------------------------------------------------

# One line per running notifier of the large database: "pid VmRSS RssAnon
# RssShmem" (kB).  Its process title names the database's OID.
notifier_rss() {
	local p
	for p in $(ps -o pid= --ppid "$PM" || true); do
		if { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "roastr_state notifier for database $BIG_OID\b"; then
			awk -v p="$p" '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^RssShmem:/ { s = $2 }
				END { if (r != "") print p, r, a, s }' "/proc/$p/status" 2>/dev/null || true
		fi
	done
}

# scale_change KIND(plan|rename): CHANGE_CLIENTS clients patch the large
# database with synchronous_commit on for CHANGE_SECONDS; CHANGE_AT seconds
# in, the change runs in its own session (statement_timeout CHANGE_TIMEOUT).
# Appends "kind ok commit_ms n_in max_in_ms over_in n_out max_out_ms
# p99_out_ms tps" to scale_changes.tsv.
scale_change() {
	local kind=$1 out="$work/change.$1" pid spid sql rc t0 t1 ok=yes res tps
	case $kind in
		plan) sql="UPDATE roastr_state.plans SET monthly_roasts_limit = monthly_roasts_limit + 1 WHERE plan = 'free';" ;;
		rename) sql="SELECT roastr_state.rename_organization(id, 'Renamed organization') FROM bench.scale_org \\g /dev/null" ;;
	esac
	scale_prepare "$DB_BIG" write_patch
	wait_backends_gone "$DB_BIG"
	PGDATABASE=$DB_BIG PGOPTIONS="-c synchronous_commit=on" pgbench -n -M prepared -c "$CHANGE_CLIENTS" -j "$NPROC" \
		-T "$CHANGE_SECONDS" -D n=0 -D nc="$CHANGE_CLIENTS" -D users="$SCALE_USERS" \
		-l --log-prefix="$out.log" -f bench/pgbench/write_patch.sql >"$out.txt" 2>&1 &
	pid=$!
	bg_pids+=("$pid")
	# the notifier's memory, every 0.2 s while the load runs
	( while kill -0 "$pid" 2>/dev/null; do notifier_rss; sleep 0.2; done ) >>"$work/scale_rss.tsv" &
	spid=$!
	bg_pids+=("$spid")
	sleep "$CHANGE_AT"
	log "scale: $kind change under a $CHANGE_CLIENTS-client patch load"
	printf "SET statement_timeout = '%ss';\nSELECT 'start ' || extract(epoch FROM clock_timestamp());\n%s\nSELECT 'end ' || extract(epoch FROM clock_timestamp());\n" \
		"$CHANGE_TIMEOUT" "$sql" >"$out.sql"
	rc=0
	res=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB_BIG" -f "$out.sql" 2>&1) || rc=$?
	t0=$(sed -n 's/^start //p' <<<"$res")
	t1=$(sed -n 's/^end //p' <<<"$res")
	if [ "$rc" -ne 0 ] || [ -z "$t1" ]; then
		if ! grep -q 'statement timeout' <<<"$res"; then
			echo "bench: the $kind change failed: $res" >&2
			exit 1
		fi
		ok=cancelled
		t1=$(now_s)
	fi
	wait "$pid" || { cat "$out.txt" >&2; echo "bench: pgbench failed during the $kind change" >&2; exit 1; }
	wait "$spid" || true
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out.txt")
	# pgbench -l: client txno latency_us script epoch_s epoch_us (the end)
	cat "$out.log".* | awk -v t0="$t0" -v t1="$t1" -v lim=$((WAIT_TARGET_MS * 1000)) -v outs="$out.outside" '
		{ e = $5 + $6 / 1e6; s = e - $3 / 1e6
		  if (s < t1 && e > t0) { nin++; if ($3 > maxin) maxin = $3; if ($3 > lim) over++ }
		  else { nout++; if ($3 > maxout) maxout = $3; print > outs } }
		END { printf "%d %.2f %d %d %.2f", nin, maxin / 1000, over, nout, maxout / 1000 }' >"$out.window"
	echo "$kind $ok $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) * 1000 }') $(cat "$out.window") $(log_percentile 0.99 "$out.outside") ${tps:-nan}" \
		>>"$work/scale_changes.tsv"
	log "scale: $kind: $(tail -n 1 "$work/scale_changes.tsv")"
	rm -f "$out.log".* "$out.outside"
}

# ---------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------
scale_load "$DB_BIG" "$SCALE_USERS" "$SCALE_MEMBERS"
scale_load "$DB_SMALL" "$SCALE_SMALL" "$SMALL_MEMBERS"
BIG_OID=$(q -d postgres -c "SELECT oid FROM pg_database WHERE datname = '$DB_BIG'")
for db in "$DB_BIG" "$DB_SMALL"; do
	[ "$(q -d "$db" -c "SELECT jsonb_array_length(roastr_state.state_sync(bench.uid(1), $SCALE_CURSOR)->'changes')")" = 5 ] \
		|| { echo "bench: state_sync from $SCALE_CURSOR does not return 5 fields in $db" >&2; exit 1; }
done

log "scale: ${SCALE_VARIANTS[*]} ${SCALE_FLOORS[*]} at $SCALE_USERS and $SCALE_SMALL users, alternating (1 client, $SCALE_T s, $REPS runs each)"
for rep in $(seq "$REPS"); do
	for v in "${SCALE_VARIANTS[@]}" "${SCALE_FLOORS[@]}"; do
		scale_run "$v" big "$rep"
		scale_run "$v" small "$rep"
	done
done

FREE_LIMIT_BEFORE=$(q -d "$DB_BIG" -c "SELECT monthly_roasts_limit FROM roastr_state.plans WHERE plan = 'free'")
scale_change plan
if [ "$(awk '$1 == "plan" { print $2 }' "$work/scale_changes.tsv")" = yes ]; then
	got=$(q -d "$DB_BIG" -c "SELECT roastr_state.state_full(bench.uid(1))->'usage'->>'monthly_roasts_limit'")
	[ "$got" = $((FREE_LIMIT_BEFORE + 1)) ] \
		|| { echo "bench: after the plan change user 1 shows a limit of $got, not $((FREE_LIMIT_BEFORE + 1))" >&2; exit 1; }
fi
q -d "$DB_BIG" -c "VACUUM roastr_state.state" >/dev/null
scale_change rename
if [ "$(awk '$1 == "rename" { print $2 }' "$work/scale_changes.tsv")" = yes ]; then
	got=$(q -d "$DB_BIG" -c "SELECT roastr_state.state_full(bench.uid(2 * stride))->'organization'->>'name' FROM bench.scale_org")
	[ "$got" = "Renamed organization" ] \
		|| { echo "bench: after the rename a member shows the organization as '$got'" >&2; exit 1; }
fi
SCALE_NOTIFY_STATS=$(q -d "$DB_BIG" -c "SELECT roastr_state.notify_stats()")
q -d "$DB_BIG" -c "VACUUM" >/dev/null
q -d "$DB_SMALL" -c "VACUUM" >/dev/null
read -r END_STATE_BIG END_ALL_BIG <<<"$(bytes_per_user "$DB_BIG" "$SCALE_USERS")"
read -r END_STATE_SMALL END_ALL_SMALL <<<"$(bytes_per_user "$DB_SMALL" "$SCALE_SMALL")"

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

# column $3 of scale_runs.tsv for a variant and size, sorted
svals() { awk -v v="$1" -v s="$2" -v f="$3" '$1 == v && $2 == s { print $f }' "$work/scale_runs.tsv" | sort -g; }
smed() { svals "$@" | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
scell() {
	printf '%.0f (%.0f–%.0f) · %.0f µs · p99 %s ms · WAL %.0f B' "$(smed "$1" "$2" 4)" "$(svals "$1" "$2" 4 | head -n 1)" \
		"$(svals "$1" "$2" 4 | tail -n 1)" "$(smed "$1" "$2" 6)" "$(smed "$1" "$2" 8)" "$(smed "$1" "$2" 7)"
}
# how much worse the large database is, in percent (negative: better):
# lower tps, more µs, a higher p99
worse_pct() {
	case $2 in
		4) awk -v b="$(smed "$1" big 4)" -v s="$(smed "$1" small 4)" 'BEGIN { printf "%+.1f", (s - b) / s * 100 }' ;;
		*) awk -v b="$(smed "$1" big "$2")" -v s="$(smed "$1" small "$2")" 'BEGIN { printf "%+.1f", (b - s) / s * 100 }' ;;
	esac
}
# met, or missed by how much: the worst of tps, µs/txn and p99 apart
apart_verdict() {
	printf '%s tps\n%s µs/txn\n%s p99\n' "$(worse_pct "$1" 4)" "$(worse_pct "$1" 6)" "$(worse_pct "$1" 8)" | sort -g | tail -n 1 |
		awk -v t="$APART_TARGET" '{ if ($1 <= t) print "**met**"; else printf "**missed**: %s %.1f%% apart, %.1f points over the %s%% allowed", $2, $1, $1 - t, t }'
}
scale_verdict() { # VALUE LIMIT: met, or missed by how much
	awk -v x="$1" -v t="$2" 'BEGIN { if (x <= t) print "**met**"; else if (x > 2 * t) printf "**missed** (%.1f× the limit)", x / t; else printf "**missed** by %.0f%%", (x - t) / t * 100 }'
}
slabel() {
	case $1 in
		read_sync) echo "state_sync(u, $SCALE_CURSOR): five fields" ;;
		read_full) echo "state_full(u)" ;;
		write_patch) echo "patch(u, roasting.enabled), sync commit off" ;;
		quota_consume) echo "consume_roasts(u, 1), sync commit off" ;;
		read_bare) echo "floor: one random row of bench.bare as JSON" ;;
		write_bare_random) echo "floor: UPDATE of one column of a random bench.bare row, sync commit off" ;;
	esac
}
load_field() { awk -v d="$1" -v f="$2" '$1 == d { print $f }' "$work/scale_load.tsv"; }
chg() { awk -v k="$1" -v f="$2" '$1 == k { print $f }' "$work/scale_changes.tsv"; }
rss_max() { awk -v f="$1" 'BEGIN { m = 0 } $f > m { m = $f } END { printf "%.1f", m / 1024 }' "$work/scale_rss.tsv"; }

scale_report() {
	local v kind label excess
	echo
	echo "## Scale (issue 17) — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Group \`scale\` of \`make bench\` (BENCH_USERS=$SCALE_USERS, BENCH_ORG_MEMBERS=$SCALE_MEMBERS, $SCALE_T s per side-by-side run, $REPS alternating runs; changes under a ${CHANGE_SECONDS} s load, statement_timeout ${CHANGE_TIMEOUT} s); this group ≈ $(((SECONDS - SCALE_START + 30) / 60)) min"
	echo
	echo "- Machine: $NPROC CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM; load average before this group $SCALE_LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "- PostgreSQL: $(q -d postgres -c "SELECT version()"); roastr_state $(q -d "$DB_BIG" -c "SELECT extversion FROM pg_extension WHERE extname = 'roastr_state'"); shared_buffers=$(q -d postgres -c 'SHOW shared_buffers'), fsync=$(q -d postgres -c 'SHOW fsync'), autovacuum off (VACUUM + CHECKPOINT before every run)"
	echo "- Data: users are copies of a template user that got 25 one-field patches (version 26, a change log of every field; state_sync(u, $SCALE_CURSOR) returns five fields), inserted $(human "$SCALE_BATCH") per INSERT … SELECT through the state table's trigger (its restore path: no notification); one organization with every (users / members)-th user as a member, added by add_member"
	echo
	echo "### Load"
	echo
	echo "| database | users | organization members | template (25 patches) | copies (INSERT … SELECT) | add_member calls | VACUUM ANALYZE + CHECKPOINT | total | users/s (copies) | bytes/user: state table · all roastr_state relations | the floor's bench.bare copied (not in the total) |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	for db in "$DB_BIG" "$DB_SMALL"; do
		printf '| %s | %s | %s | %s s | %s s | %s s | %s s | %s s | %s | %s · %s B | %s s |\n' "$db" "$(load_field "$db" 2)" "$(load_field "$db" 3)" \
			"$(load_field "$db" 4)" "$(load_field "$db" 5)" "$(load_field "$db" 6)" "$(load_field "$db" 7)" "$(load_field "$db" 8)" \
			"$(awk -v n="$(load_field "$db" 2)" -v s="$(load_field "$db" 5)" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "—" }')" \
			"$(load_field "$db" 9)" "$(load_field "$db" 10)" "$(load_field "$db" 11)"
	done
	echo
	echo "### The same pgbench scripts at $BIG_LABEL and at 10k users"
	echo
	echo "1 client, random users (patch: each user in turn, every write a real change); cells: tps median (min–max) · server µs/txn · p99 · WAL per transaction, medians of $REPS runs. *Apart*: how much worse $BIG_LABEL is than 10k (tps / µs / p99; negative = better)."
	echo
	echo "| script | $BIG_LABEL users | 10k users | apart: tps / µs / p99 | ≤ ${APART_TARGET}% |"
	echo "|---|---|---|---|---|"
	for v in "${SCALE_VARIANTS[@]}" "${SCALE_FLOORS[@]}"; do
		printf '| %s | %s | %s | %s%% / %s%% / %s%% | %s |\n' "$(slabel "$v")" "$(scell "$v" big)" "$(scell "$v" small)" \
			"$(worse_pct "$v" 4)" "$(worse_pct "$v" 6)" "$(worse_pct "$v" 8)" "$(apart_verdict "$v")"
	done
	echo
	echo "### Changes under load ($BIG_LABEL users, $CHANGE_CLIENTS clients patching, synchronous_commit on)"
	echo
	echo "The change runs ${CHANGE_AT} s into a ${CHANGE_SECONDS} s pgbench load of bench/pgbench/write_patch.sql; *during* = the writers' transactions whose span (end − latency … end, from pgbench -l) overlapped the change (its start to its acknowledged commit), *outside* = the others."
	echo
	echo "| change | commit | load tps | writers during: n · max · over ${WAIT_TARGET_MS} ms | writers outside: n · max · p99 |"
	echo "|---|---|---|---|---|"
	for kind in plan rename; do
		if [ "$kind" = plan ]; then label="plan limit: UPDATE roastr_state.plans SET monthly_roasts_limit = monthly_roasts_limit + 1 WHERE plan = 'free' (every user)"
		else label="rename_organization, $SCALE_MEMBERS members"; fi
		printf '| %s | %s | %.0f | %s · %s ms · %s | %s · %s ms · %s ms |\n' "$label" \
			"$( [ "$(chg "$kind" 2)" = yes ] && echo "$(chg "$kind" 3) ms" || echo "not within ${CHANGE_TIMEOUT} s: cancelled after $(chg "$kind" 3) ms")" \
			"$(chg "$kind" 10)" "$(chg "$kind" 4)" "$(chg "$kind" 5)" "$(chg "$kind" 6)" "$(chg "$kind" 7)" "$(chg "$kind" 8)" "$(chg "$kind" 9)"
	done
	echo
	echo "### Memory and storage"
	echo
	if [ -s "$work/scale_rss.tsv" ]; then
		echo "- The notifier of $DB_BIG (background worker, /proc/<pid>/status every 0.2 s during the changes' load, $(wc -l <"$work/scale_rss.tsv") samples): VmRSS max $(rss_max 2) MB, of which anonymous (its own) $(rss_max 3) MB and shared memory it touched $(rss_max 4) MB"
	else
		echo "- The notifier of $DB_BIG: not seen running during the changes' load"
	fi
	echo "- notify_stats() of $DB_BIG at the end: $SCALE_NOTIFY_STATS"
	echo "- Bytes per user, state table · all roastr_state relations (indexes and TOAST included): $DB_BIG $(load_field "$DB_BIG" 9) · $(load_field "$DB_BIG" 10) B after the load, $END_STATE_BIG · $END_ALL_BIG B at the end (after VACUUM); $DB_SMALL $(load_field "$DB_SMALL" 9) · $(load_field "$DB_SMALL" 10) B after the load, $END_STATE_SMALL · $END_ALL_SMALL B at the end"
	echo
	echo "## Targets of issue 17 (this run)"
	echo
	for v in "${SCALE_VARIANTS[@]}"; do
		case $v in write_patch) f="" ;; quota_*|write_*) f=write_bare_random ;; *) f=read_bare ;; esac
		echo "- $(slabel "$v") at $BIG_LABEL within ${APART_TARGET}% of 10k: tps $(worse_pct "$v" 4)%, µs/txn $(worse_pct "$v" 6)%, p99 $(worse_pct "$v" 8)% — $(apart_verdict "$v")$(
			[ -n "$f" ] && echo "; PostgreSQL alone ($(slabel "$f" | sed 's/^floor: //')): tps $(worse_pct "$f" 4)%, µs/txn $(worse_pct "$f" 6)%, p99 $(worse_pct "$f" 8)%")"
	done
	for kind in plan rename; do
		if [ "$kind" = plan ]; then label="Plan-limit change"; else label="Organization rename ($SCALE_MEMBERS members)"; fi
		if [ "$(chg "$kind" 2)" = yes ]; then
			echo "- $label commits in milliseconds (≤ ${COMMIT_TARGET_MS} ms) under load: $(chg "$kind" 3) ms — $(scale_verdict "$(chg "$kind" 3)" "$COMMIT_TARGET_MS")"
		else
			echo "- $label commits in milliseconds (≤ ${COMMIT_TARGET_MS} ms) under load: not within ${CHANGE_TIMEOUT} s (cancelled) — **missed** (more than $((CHANGE_TIMEOUT * 1000 / COMMIT_TARGET_MS))× the limit)"
		fi
		excess=$(awk -v a="$(chg "$kind" 5)" -v b="$(chg "$kind" 8)" 'BEGIN { x = a - b; if (x < 0) x = 0; printf "%.2f", x }')
		echo "- $label: no writer waits more than ${WAIT_TARGET_MS} ms because of it: the slowest overlapping writer took $(chg "$kind" 5) ms, the slowest other one $(chg "$kind" 8) ms (p99 $(chg "$kind" 9) ms), so the change added at most $excess ms; $(chg "$kind" 6) of $(chg "$kind" 4) overlapping writers took over ${WAIT_TARGET_MS} ms — $(scale_verdict "$excess" "$WAIT_TARGET_MS")"
	done
}

scale_report | tee -a bench/results/latest.md
