#!/usr/bin/env bash
# pg_dump, then restore into a fresh database: every user's state, version,
# change log (so every client cursor), recorded mutation outcomes and the
# operator's plan changes survive (with the change stamps each state row
# recorded of them, and the stamp sequence), and writing continues where it
# stopped.
# Persona text too: the restored database (same cluster, so the same master
# key file) decrypts every persona field to the same text, with user_keys
# and the persona ciphertext byte-identical -- restoring copies ciphertext,
# it never decrypts or encrypts again -- and the restored data key keeps
# working for new writes.
# This needs pg_dump and a second database, so it is not a SQL test.
set -euo pipefail
cd "$(dirname "$0")/../.."

src=rs_dump_src
dst=rs_dump_dst
dump=$(mktemp)
trap 'rm -f "$dump"' EXIT
u1=d1111111-1111-4111-8111-111111111111
u2=d2222222-2222-4222-8222-222222222222
mid=d9999999-9999-4999-8999-999999999999
identity="Dumped and restored, ñandú ✓"
intolerance="puns before coffee"
tolerance="dad jokes, on pro"

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $src" -c "DROP DATABASE IF EXISTS $dst" \
	-c "CREATE DATABASE $src" -c "CREATE DATABASE $dst" 2>/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$src" >/dev/null <<SQL
CREATE EXTENSION roastr_state;
SELECT roastr_state.ensure_user('$u1', 'one@example.com', 'One');
SELECT roastr_state.ensure_user('$u2', 'two@example.com');
SELECT roastr_state.patch('$u1', '{"roasting.enabled": false}');
SELECT roastr_state.patch('$u1', '{"roasting.roast_level": 5, "roasting.shield_level": "estricto"}', 2, '$mid');
SELECT roastr_state.patch('$u2', '{"subscription.plan": "pro", "subscription.status": "trial", "subscription.trial_ends_at": "2999-01-01T00:00:00Z"}');
UPDATE roastr_state.plans SET monthly_roasts_limit = 1500 WHERE plan = 'pro';
-- settled before the dump (a pending change would be settled by each
-- database's first read, at different times)
SELECT roastr_state.state_full('$u2');
SELECT roastr_state.patch('$u2', '{"persona.identity": "$identity", "persona.intolerance": "$intolerance"}');
SELECT roastr_state.patch('$u2', '{"persona.tolerance": "$tolerance"}');
SQL

snapshot() {
	psql -X -At -v ON_ERROR_STOP=1 -d "$1" <<SQL
SELECT user_id, (roastr_state.state_sync(user_id, 0) - 'lastSyncedAt' - 'history')::text FROM roastr_state.state ORDER BY user_id;
SELECT user_id, version, field_log, created_at, updated_at, limits_seen, organization_seen FROM roastr_state.state ORDER BY user_id;
SELECT plan, monthly_roasts_limit, trial_days, changed_stamp FROM roastr_state.plans ORDER BY plan;
SELECT last_value FROM roastr_state.shared_stamp;
SELECT user_id, mutation_id, request_hash, result FROM roastr_state.mutations ORDER BY 1, 2;
SELECT user_id, keygen, master_key_id, encode(wrapped, 'hex'), created_at, rewrapped_at FROM roastr_state.user_keys ORDER BY user_id;
SELECT user_id, encode(identity, 'hex'), encode(intolerance, 'hex'), encode(tolerance, 'hex') FROM roastr_state.persona ORDER BY user_id;
SELECT user_id, roastr_state.state_full(user_id)->'persona' FROM roastr_state.state ORDER BY user_id;
SQL
}

pg_dump -d "$src" >"$dump"
psql -X -q -v ON_ERROR_STOP=1 -d "$dst" -f "$dump" >/dev/null

fail=0
# the persona decrypts to the very text written, in both databases
want_persona="$identity|$intolerance|$tolerance"
for db in "$src" "$dst"; do
	got=$(psql -X -At -d "$db" -c "SELECT concat_ws('|', p->>'identity', p->>'intolerance', p->>'tolerance') FROM roastr_state.state_full('$u2') f, LATERAL (SELECT f->'persona') x(p)")
	if [ "$got" != "$want_persona" ]; then echo "$db: persona of u2 reads '$got'"; fail=1; fi
done
keys=$(psql -X -At -d "$dst" -c "SELECT count(*) || ':' || count(*) FILTER (WHERE length(wrapped) = 72) FROM roastr_state.user_keys")
if [ "$keys" != "1:1" ]; then echo "user_keys after restore: $keys"; fail=1; fi
before=$(snapshot "$src")
after=$(snapshot "$dst")
if [ "$before" != "$after" ]; then
	echo "the restored database differs:"; diff <(echo "$before") <(echo "$after") || true; fail=1
fi

# writing continues at the next version; a retried mutation returns its outcome
next=$(psql -X -At -d "$dst" -c "SELECT roastr_state.patch('$u1', '{\"auth.name\": \"Uno\"}')->>'version'")
retry=$(psql -X -At -d "$dst" -c "SELECT (roastr_state.patch('$u1', '{\"roasting.roast_level\": 5, \"roasting.shield_level\": \"estricto\"}', 2, '$mid') - 'history')::text")
# ... with the history of the restored database's cluster, which it now belongs to
retry_history=$(psql -X -At -d "$dst" -c "SELECT roastr_state.patch('$u1', '{\"roasting.roast_level\": 5, \"roasting.shield_level\": \"estricto\"}', 2, '$mid')->>'history' = s.system_identifier || '.' || c.timeline_id FROM pg_control_system() s, pg_control_checkpoint() c")
if [ "$next" != "4" ]; then echo "after restore, the next version is $next, expected 4"; fail=1; fi
if [ "$retry_history" != "t" ]; then echo "a retried mutation after restore is not of the cluster's history"; fail=1; fi
if [ "$retry" != '{"applied": ["roasting.roast_level", "roasting.shield_level"], "version": 3}' ]; then
	echo "a retried mutation after restore returned: $retry"; fail=1
fi
# the restored data key keeps working: a new persona write, read back, and
# the untouched fields still open
p2=$(psql -X -At -d "$dst" -c "SELECT roastr_state.patch('$u2', '{\"persona.identity\": \"after restore\"}')->>'applied'" \
	-c "SELECT concat_ws('|', p->>'identity', p->>'intolerance', p->>'tolerance') FROM roastr_state.state_full('$u2') f, LATERAL (SELECT f->'persona') x(p)")
if [ "$p2" != '["persona.identity"]
after restore|'"$intolerance|$tolerance" ]; then
	echo "a persona write after restore: $p2"; fail=1
fi
# the operator's plan change is there once, not duplicated
pro=$(psql -X -At -d "$dst" -c "SELECT count(*) || ':' || min(monthly_roasts_limit) FROM roastr_state.plans WHERE plan = 'pro'")
if [ "$pro" != "1:1500" ]; then echo "plans after restore: $pro"; fail=1; fi

psql -X -q -d postgres -c "DROP DATABASE $src" -c "DROP DATABASE $dst"
[ "$fail" -eq 0 ] && echo "dump_restore: ok ($(echo "$before" | wc -l) lines of state identical after restore)"
exit "$fail"
