#!/usr/bin/env bash
# Persona text never lands anywhere in the clear (issue 4, "A leak test").
#
# Persona text carrying a random marker, LEAK-<hex>-<round>-<case>, is sent
# through every write path there is -- patch of persona.identity, of
# persona.intolerance, of both with another field, of persona.tolerance on a
# pro user, by the user (JWT claims) and by the service, with a mutation_id
# and its retry, then mark_embeddings; and through every failing path we
# know of: PT409 (stale base version), PT402 (tolerance below pro), PT404,
# 22023 (too long, a bad sibling field on either side of the persona key in
# jsonb's key order, an unknown field, a negative base version, a reused
# mutation_id), 42501 (another user's state, a service field), a direct
# UPDATE/INSERT of plain text into roastr_state.persona, a rolled-back
# transaction and a rolled-back savepoint.  Some errors are raised before
# patch() reaches the persona key -- jsonb sorts keys shortest first, so
# "x", "auth.name" and "auth.email" come before "persona.identity" -- or
# before it parses the changes at all (another user's state, a negative
# base version): those cases check that the statement is hidden anyway.
# Then CHECKPOINT and
# pg_switch_wal(), and the marker is searched for in:
#
#   * every table of the roastr_state schema (row_to_json of every row, as
#     text, and the hex form of the marker, which is how row_to_json shows a
#     bytea holding it),
#   * the server log, whole (it is this script's own cluster),
#   * the raw bytes of every file under the data directory -- pg_wal, base,
#     global, pg_notify, ... (pg_waldump does not print tuple data, so it
#     could not prove absence),
#   * every NOTIFY payload (the writing session LISTENs on the user channels,
#     roastr_state and roastr_state_embeddings; round 1 through the
#     background notifier, round 2 with notify_mode = direct),
#   * every error message psql received.
#
# Zero hits are required.  So that the search is shown able to fail, the
# same searches must find control markers: CONTROL-<hex>-name, written as
# auth.name (stored in the clear by design), in the state table, in pg_wal
# and in base/; CONTROL-<hex>-stmt-<round>, the text of a failing statement
# that carries no persona text, in a STATEMENT line of the log; and
# CONTROL-<hex>-warn, the text of a statement that raises a WARNING, in
# round 2.  Per-case markers make any hit name the case that leaked.
#
# Round 1 uses the cluster's logging as configured (PostgreSQL's defaults:
# log_statement = none, log_min_error_statement = error, log_min_messages =
# warning, checked below).  Round 2 sets, in the writing session,
# log_min_error_statement = debug5 and log_min_messages = debug4, so every
# message that reaches the log would carry its statement unless hidden; it
# adds a persona patch that waits for a row lock with log_lock_waits on
# (the "still waiting"/"acquired" LOG lines are raised inside patch) and one
# that hits the key-file reload WARNING (the key file made group-readable
# for a moment: the WARNING is raised by crypto.c inside the call).  Both
# controls are checked to have fired.
#
# What this cannot prove, by construction:
#   * log_statement = 'all' (or 'mod'), log_min_duration_statement,
#     auto_explain, pg_stat_statements and log_min_messages = debug5 (whose
#     per-transaction debug lines carry the statement) record the statement
#     text of every call, including persona text sent as a literal.
#     errhidestmt cannot help there; do not enable them in production.
#   * Statements that fail before patch() runs: a malformed JSON literal or
#     uuid is rejected by PostgreSQL's input functions while parsing the
#     statement (22P02), and jsonb's error CONTEXT quotes the input.
#   * A deadlock report's DETAIL quotes the current query of every process
#     in the cycle (PostgreSQL's DeadLockReport), whatever the STATEMENT
#     setting.
#   Clients that pass persona text as a bind parameter (PostgREST does)
#   avoid the last two and the statement-logging settings above: the query
#   text then holds $1, not the text.
#   * Memory: backend memory, core dumps and swap are not searched.
#   * A direct write of bytes that merely look like an envelope (right
#     magic and version, any payload) is accepted by the persona table's
#     check; that is deliberate writing of arbitrary bytes, not a path that
#     stores text by mistake.
#   * Values over ~2 kB would be pglz-compressed if stored in the clear, so
#     the raw-byte search relies on the short writes (every case but
#     "long" and "toolong" is short).
#
# Starts its own cluster (it changes the key file's mode and needs the data
# directory and the log to itself); must run as root or the cluster's owner.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/cluster.sh
source scripts/cluster.sh

work=$(mktemp -d)
trap 'cluster_stop; rm -rf "$work"' EXIT
t0=$SECONDS

# shellcheck disable=SC2119   # no extra postgresql.conf lines
ROASTR_PORT=${ROASTR_LEAK_PORT:-5583} cluster_start >/dev/null
log=$(cluster_log)
data=$ROASTR_CLUSTER_DIR/data
keyfile=$ROASTR_MASTER_KEY_FILE

hex=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
LEAK=LEAK-$hex
CONTROL=CONTROL-$hex
leak_hex=$(printf '%s' "$LEAK" | od -An -tx1 | tr -d ' \n')

ua=e1000000-0000-4000-8000-00000000000a     # free plan, writes as the user
ub=e2000000-0000-4000-8000-00000000000b     # pro plan, written by the service
uc=e3000000-0000-4000-8000-00000000000c     # someone else
ud=e4000000-0000-4000-8000-00000000000d     # has no state
fail=0
bad() { echo "FAIL: $*"; fail=1; }

psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE EXTENSION roastr_state;
SELECT roastr_state.ensure_user('$ua', 'a@example.com');
SELECT roastr_state.ensure_user('$ub', 'b@example.com');
SELECT roastr_state.ensure_user('$uc', 'c@example.com');
SELECT roastr_state.patch('$ub', '{"subscription.plan": "pro"}');
SQL

# The control written in the clear: auth.name of every user, several times
# (a marker that straddles a WAL page boundary is split by the page header).
for i in 1 2 3; do
	for u in "$ua" "$ub" "$uc"; do
		psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT roastr_state.patch('$u', '{"auth.name": "$CONTROL-name-$i"}');
SQL
	done
done

settings=$(psql -X -At -c "SELECT current_setting('log_statement') || ' ' || current_setting('log_min_error_statement') || ' ' || current_setting('log_min_messages')")
if [ "$settings" != "none error warning" ]; then
	bad "round 1 expects PostgreSQL's default logging, got log_statement, log_min_error_statement, log_min_messages = $settings"
fi

long_pad=$(printf 'x%.0s' $(seq 3000))   # "long": 3000+ bytes, accepted
toolong_pad=$(printf 'x%.0s' $(seq 4100)) # "toolong": over 4000 bytes, 22023

# Every case: a statement, then "@case NAME SQLSTATE" on stdout.  Expected
# SQLSTATEs are in $want below.  $1 = round, $2 = marker prefix.
round_sql() {
	local r=$1 m=$2 mid
	mid=e9000000-0000-4000-8000-00000000000$r
	cat <<SQL
LISTEN "user:$ua"; LISTEN "user:$ub"; LISTEN roastr_state; LISTEN roastr_state_embeddings;
SET ROLE authenticated;
SET request.jwt.claims = '{"sub": "$ua", "role": "authenticated"}';
SELECT roastr_state.patch(NULL, '{"persona.identity": "I am $m-identity, really"}');
\echo @case identity :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.intolerance": "$m-intolerance"}');
\echo @case intolerance :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-both-i", "persona.intolerance": "$m-both-n", "roasting.roast_level": 4}');
\echo @case both :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-mutation"}', NULL, '$mid');
\echo @case mutation :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-mutation"}', NULL, '$mid');
\echo @case mutation_retry :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-mutation-reused"}', NULL, '$mid');
\echo @case mutation_reused :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-long $long_pad"}');
\echo @case long :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-pt409"}', 1);
\echo @case pt409 :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.tolerance": "$m-pt402"}');
\echo @case pt402 :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-toolong $toolong_pad"}');
\echo @case toolong :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-badlevel", "roasting.roast_level": 9}');
\echo @case bad_field_after :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-badtype", "persona.intolerance": 5}');
\echo @case bad_persona_after :SQLSTATE
SELECT roastr_state.patch(NULL, '{"auth.name": 5, "persona.identity": "$m-badname"}');
\echo @case bad_field_before :SQLSTATE
SELECT roastr_state.patch(NULL, '{"x": 1, "persona.identity": "$m-unknown"}');
\echo @case unknown_field :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-negbase"}', -1);
\echo @case negative_base :SQLSTATE
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-newbase"}', 1000000);
\echo @case future_base :SQLSTATE
SELECT roastr_state.patch('$uc', '{"persona.identity": "$m-otheruser"}');
\echo @case other_user :SQLSTATE
SELECT roastr_state.patch(NULL, '{"auth.email": "z@example.com", "persona.identity": "$m-servicefield"}');
\echo @case service_field :SQLSTATE
BEGIN;
SELECT roastr_state.patch(NULL, '{"persona.identity": "$m-rolledback"}');
ROLLBACK;
\echo @case rolled_back :SQLSTATE
BEGIN;
SAVEPOINT s;
SELECT roastr_state.patch(NULL, '{"persona.intolerance": "$m-savepoint"}');
ROLLBACK TO SAVEPOINT s;
COMMIT;
\echo @case savepoint :SQLSTATE
RESET ROLE;
RESET request.jwt.claims;
SELECT roastr_state.patch('$ub', '{"persona.tolerance": "$m-tolerance"}');
\echo @case tolerance_pro :SQLSTATE
SELECT roastr_state.patch('$ub', '{"persona.identity": "$m-ub-i", "persona.intolerance": "$m-ub-n"}');
\echo @case service_patch :SQLSTATE
SELECT roastr_state.patch('$ud', '{"persona.identity": "$m-pt404"}');
\echo @case pt404 :SQLSTATE
UPDATE roastr_state.persona SET identity = convert_to('$m-direct-update', 'UTF8') WHERE user_id = '$ua';
\echo @case direct_update :SQLSTATE
INSERT INTO roastr_state.persona (user_id, identity) VALUES ('$uc', convert_to('$m-direct-insert', 'UTF8'));
\echo @case direct_insert :SQLSTATE
SELECT roastr_state.patch('$ua', '{"persona.identity": "$m-final"}');
\echo @case final :SQLSTATE
SELECT roastr_state.mark_embeddings('$ua', 'model-$r', now());
\echo @case mark_embeddings :SQLSTATE
SELECT '$CONTROL-stmt-$r' AS control, roastr_state.patch('$ua', '{"roasting.roast_level": 9}');
\echo @case control_stmt :SQLSTATE
SELECT pg_sleep(0.5);
SELECT 1;
SQL
}

want="identity 00000
intolerance 00000
both 00000
mutation 00000
mutation_retry 00000
mutation_reused 22023
long 00000
pt409 PT409
pt402 PT402
toolong 22023
bad_field_after 22023
bad_persona_after 22023
bad_field_before 22023
unknown_field 22023
negative_base 22023
future_base 22023
other_user 42501
service_field 42501
rolled_back 00000
savepoint 00000
tolerance_pro 00000
service_patch 00000
pt404 PT404
direct_update 22023
direct_insert 22023
final 00000
mark_embeddings 00000
control_stmt 22023"

# check_cases ROUND OUTFILE [extra expected lines]
check_cases() {
	local r=$1 out=$2 expected got
	expected=$(printf '%s\n%s' "$want" "${3:-}" | sed '/^$/d' | sort)
	got=$(sed -n 's/^@case //p' "$out" | sort)
	if [ "$expected" != "$got" ]; then
		bad "round $r: cases did not end as expected (< expected, > got):"
		diff <(echo "$expected") <(echo "$got") | grep '^[<>]' | sed 's/^/    /' || true
	fi
}

# ---------------------------------------------------------------- round 1
echo "round 1: logging as configured (log_statement = none, log_min_error_statement = error)"
round_sql 1 "$LEAK-r1" | psql -X -v VERBOSITY=verbose >"$work/r1.out" 2>"$work/r1.err" || true
check_cases 1 "$work/r1.out"

# ---------------------------------------------------------------- round 2
echo "round 2: log_min_error_statement = debug5, log_min_messages = debug4, lock wait, key file WARNING, notify_mode = direct"
# A transaction that holds ua's row for 2 s, so round 2's first patch waits.
psql -X -q -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<SQL &
SET application_name = 'leak_holder';
BEGIN;
SELECT roastr_state.patch('$ua', '{"roasting.enabled": false}');
SELECT pg_sleep(2);
COMMIT;
SQL
holder=$!
for _ in $(seq 100); do
	[ "$(psql -X -At -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'leak_holder' AND wait_event = 'PgSleep'")" = 1 ] && break
	sleep 0.05
done
{
	cat <<SQL
SET log_min_error_statement = debug5;
SET log_min_messages = debug4;
SET log_lock_waits = on;
SET deadlock_timeout = '100ms';
SET roastr_state.notify_mode = direct;
SELECT roastr_state.patch('$ua', '{"persona.identity": "$LEAK-r2-lockwait"}');
\echo @case lock_wait :SQLSTATE
\! chmod 640 '$keyfile'
SELECT roastr_state.patch('$ua', '{"persona.identity": "$LEAK-r2-keyfile-warning"}');
\echo @case keyfile_warning :SQLSTATE
\! chmod 600 '$keyfile'
DO \$\$ DECLARE c text := '$CONTROL-warn'; BEGIN RAISE WARNING 'control warning'; END \$\$;
\echo @case control_warn :SQLSTATE
SQL
	round_sql 2 "$LEAK-r2"
} | psql -X -v VERBOSITY=verbose >"$work/r2.out" 2>"$work/r2.err" || true
wait "$holder" || bad "the lock holder of round 2 failed"
check_cases 2 "$work/r2.out" "lock_wait 00000
keyfile_warning 00000
control_warn 00000"
grep -q 'still waiting for ShareLock' "$log" ||
	bad "round 2: the lock-wait control did not fire (no 'still waiting' line in the log)"
grep -q 'has group or world access' "$log" ||
	bad "round 2: the key-file WARNING control did not fire"

# ------------------------------------------------------------- the search
psql -X -q -v ON_ERROR_STOP=1 -c CHECKPOINT -c "SELECT pg_switch_wal()" >/dev/null

# every persona field still decrypts to the last text written
got=$(psql -X -At -v ON_ERROR_STOP=1 <<SQL
SELECT concat_ws('|', p->>'identity', p->>'intolerance', p->>'tolerance')
  FROM (VALUES (1, '$ua'::uuid), (2, '$ub'), (3, '$uc')) v(i, u),
	   LATERAL (SELECT roastr_state.state_full(u)->'persona') s(p) ORDER BY i;
SQL
)
# (uc has none: an empty last line, which $(...) drops)
expected="$LEAK-r2-final|$LEAK-r2-both-n
$LEAK-r2-ub-i|$LEAK-r2-ub-n|$LEAK-r2-tolerance"
if [ "$got" != "$expected" ]; then
	bad "persona texts did not read back as written: $(echo "$got" | sed "s/$LEAK/LEAK/g" | tr '\n' ' ')"
fi

# 1. every table of the schema
tables=$(psql -X -At -F ' ' -v ON_ERROR_STOP=1 <<SQL
SELECT format('SELECT %L, count(*) FILTER (WHERE strpos(t, %L) > 0 OR strpos(t, %L) > 0), count(*) FILTER (WHERE strpos(t, %L) > 0) FROM (SELECT row_to_json(r)::text AS t FROM %s r) s',
			  c.relname, '$LEAK', '$leak_hex', '$CONTROL-name', c.oid::regclass)
  FROM pg_class c
 WHERE c.relnamespace = 'roastr_state'::regnamespace AND c.relkind IN ('r', 'p', 'm')
 ORDER BY c.relname
\gexec
SQL
)
ntables=$(echo "$tables" | wc -l)
[ "$ntables" -ge 10 ] || bad "only $ntables tables searched: $tables"
leaky_tables=$(echo "$tables" | awk '$2 > 0 { print $1 }')
[ -z "$leaky_tables" ] || bad "the marker is in table(s): $leaky_tables"
control_rows=$(echo "$tables" | awk '$1 == "state" { print $3 }')
[ "${control_rows:-0}" -ge 3 ] || bad "the control marker was not found in the state table ($tables)"

# 2. the server log
log_hits=$(grep -a -o -e "$LEAK-[A-Za-z0-9_-]*" "$log" | sort | uniq -c || true)
log_hex_hits=$(grep -a -c -i -e "$leak_hex" "$log" || true)
if [ -n "$log_hits" ] || [ "$log_hex_hits" != 0 ]; then
	bad "the marker is in the server log ($log_hex_hits hex hits); cases (count marker):"
	while IFS= read -r line; do echo "    $line"; done <<<"$log_hits"
	grep -a -e "$LEAK" "$log" | cut -c1-200 | sed "s/$LEAK/LEAK/g; s/^/    | /" | head -20
fi
for r in 1 2; do
	grep -a -q -e "STATEMENT: .*$CONTROL-stmt-$r" "$log" ||
		bad "round $r: the control statement is not in a STATEMENT line of the log"
done
grep -a -q -e "STATEMENT: .*$CONTROL-warn" "$log" ||
	bad "round 2: the WARNING control statement is not in a STATEMENT line of the log"

# 3. the raw bytes of every file of the data directory
leak_files=$(grep -r -l -a -F -D skip -e "$LEAK" "$data" || true)
[ -z "$leak_files" ] || bad "the marker is in the raw bytes of: $leak_files"
ctl_wal=$(grep -r -l -a -F -D skip -e "$CONTROL-name" "$data/pg_wal" | wc -l || true)
ctl_base=$(grep -r -l -a -F -D skip -e "$CONTROL-name" "$data/base" | wc -l || true)
ctl_wal_hits=$(grep -r -h -o -a -F -D skip -e "$CONTROL-name" "$data/pg_wal" | wc -l || true)
[ "$ctl_wal" -ge 1 ] || bad "the control marker is in no WAL segment: the raw-byte search proves nothing"
[ "$ctl_base" -ge 1 ] || bad "the control marker is in no file under base/: the raw-byte search proves nothing"
wal_bytes=$(du -sb "$data/pg_wal" | cut -f1)
data_files=$(find "$data" -type f | wc -l)

# 4. NOTIFY payloads and 5. what psql received
for r in 1 2; do
	if grep -a -q -e "$LEAK" "$work/r$r.err"; then
		bad "round $r: an error message carries the marker:"
		grep -a -e "$LEAK" "$work/r$r.err" | sed "s/$LEAK/LEAK/g; s/^/    /"
	fi
	if grep -a 'Asynchronous notification' "$work/r$r.out" | grep -a -q -e "$LEAK"; then
		bad "round $r: a notification payload carries the marker"
	fi
	grep -a -q 'Asynchronous notification "roastr_state_embeddings"' "$work/r$r.out" ||
		bad "round $r: no embeddings notification arrived (the payload search saw nothing)"
	grep -a -q 'persona_update' "$work/r$r.out" ||
		bad "round $r: no persona_update notification arrived (the payload search saw nothing)"
done

# the master key's hex is nowhere in the log or the data directory
key_hex=$(sed -n 's/^[[:space:]]*[0-9][0-9]*[[:space:]][[:space:]]*\([0-9A-Fa-f]\{64\}\).*/\1/p' "$keyfile")
[ -n "$key_hex" ] || bad "could not read the key back from $keyfile"
if grep -a -q -i -e "$key_hex" "$log" || grep -r -l -a -i -D skip -e "$key_hex" "$data" >/dev/null; then
	bad "the master key's hex is in the server log or the data directory"
fi

echo "searched: $ntables tables, $(wc -c <"$log") bytes of server log, $data_files files under the data directory" \
	"($wal_bytes bytes of pg_wal); control found in $ctl_wal WAL segment(s) ($ctl_wal_hits hits) and $ctl_base file(s) under base/"
if [ "$fail" -eq 0 ]; then
	echo "persona_leak: ok (no trace of $LEAK anywhere; $((SECONDS - t0)) s)"
fi
exit "$fail"
