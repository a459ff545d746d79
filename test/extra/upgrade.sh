#!/usr/bin/env bash
# The upgrade path equals a fresh install.  Database A gets CREATE EXTENSION
# roastr_state (the default version, read from roastr_state.control), which
# runs the full install script of that version (sql/roastr_state--X.Y.Z.sql);
# database B gets VERSION '0.1.0', is used through the 0.1.0 API -- served by
# the installed library, which is the newest one -- and is then taken to the
# default version with ALTER EXTENSION UPDATE (0.1.0 -> 0.2.0 -> 0.3.0 ...).
# Then:
#   1. every object of the extension is compared between A and B through the
#      catalogs, strictly (see catalog_sql);
#   2. B's data survived the upgrade (see the rule at compare_snapshots);
#   3. 0.2.0's features work on users created before the upgrade, and
#      0.3.0's mark_embeddings refuses NULLs there;
#   4. PUBLIC, anon, authenticated and service_role have the same privileges
#      on every function, table and the schema in A and B.
# This needs two databases, and sessions on both sides of an ALTER EXTENSION,
# so it is not a SQL test.
set -euo pipefail
cd "$(dirname "$0")/../.."

fresh=rs_upgrade_fresh      # A
old=rs_upgrade_old          # B
tmp=$(mktemp -d)
# shellcheck disable=SC2317   # called through the EXIT trap
cleanup() {
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $fresh" -c "DROP DATABASE IF EXISTS $old" \
		-c "DROP DATABASE IF EXISTS rs_upgrade_06" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# Writers notify directly, so no background notifier is still connected to
# a database when it is dropped at the end (dropping waits for it).
export PGOPTIONS="${PGOPTIONS:-} -c roastr_state.notify_mode=direct"

u1=f1111111-1111-4111-8111-111111111111
u2=f2222222-2222-4222-8222-222222222222
u3=f3333333-3333-4333-8333-333333333333
u4=f4444444-4444-4444-8444-444444444444
mid=f9999999-9999-4999-8999-999999999999
fail=0
# the version CREATE EXTENSION installs, and the upgrade's target
target=$(sed -n "s/^default_version *= *'\(.*\)'.*/\1/p" roastr_state.control)

psql -X -q -v ON_ERROR_STOP=1 -d postgres \
	-c "DROP DATABASE IF EXISTS $fresh" -c "DROP DATABASE IF EXISTS $old" \
	-c "CREATE DATABASE $fresh" -c "CREATE DATABASE $old" 2>/dev/null

# Loaded first by every session: pg_temp.expect() prints one line per failed
# check and nothing otherwise, so a session's output is its list of failures.
cat >"$tmp/helpers.sql" <<'SQL'
\set QUIET 1
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET check_function_bodies = off;
-- the SQLSTATE of a statement, 00000 when it succeeds
CREATE FUNCTION pg_temp.outcome(cmd text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
BEGIN
	EXECUTE cmd;
	RETURN '00000';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
	RETURN st;
END
$$;
CREATE FUNCTION pg_temp.expect(what text, got text, want text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
BEGIN
	IF got IS DISTINCT FROM want THEN
		RETURN NEXT format('%s: got %s, expected %s', what,
			coalesce(got, 'NULL'), coalesce(want, 'NULL'));
	END IF;
END
$$;
CREATE FUNCTION pg_temp.ver(u uuid) RETURNS text LANGUAGE sql AS
$$ SELECT version::text FROM roastr_state.state WHERE user_id = u $$;
CREATE FUNCTION pg_temp.fields(j jsonb) RETURNS text LANGUAGE sql AS
$$ SELECT jsonb_path_query_array(j, '$.changes[*].field')::text $$;
-- Everything B holds, as the API and the tables show it, without read times.
-- A row's change log by field id, {id: [version, time in microseconds since
-- 2000-01-01 UTC]}, from either layout: field_versions/field_times indexed by
-- field id (up to 0.6.0), or 0.7.0's field_log of pairs in slot order (the
-- slot -> field id map of src/fieldlog.c).  Fields never logged (version 0,
-- or no entry in a shorter array) are left out.
CREATE FUNCTION pg_temp.change_log(r jsonb) RETURNS jsonb LANGUAGE sql AS $$
SELECT coalesce(jsonb_object_agg(f, jsonb_build_array(v, t) ORDER BY f), '{}')
FROM (SELECT i - 1 AS f, (r->'field_versions'->>(i - 1))::bigint AS v,
             (extract(epoch FROM (r->'field_times'->>(i - 1))::timestamptz) * 1000000)::bigint - 946684800000000 AS t
        FROM generate_series(1, coalesce(jsonb_array_length(r->'field_versions'), 0)) i
      UNION ALL
      SELECT m.f, (r->'field_log'->>(2 * (m.s::int - 1)))::bigint, (r->'field_log'->>(2 * (m.s::int - 1) + 1))::bigint
        FROM unnest(ARRAY[17, 14, 15, 16, 18, 20, 1, 9, 10, 11, 12, 13, 3, 2, 5, 6, 4, 23, 7, 8, 21, 19, 22, 0, 24, 25])
             WITH ORDINALITY m(f, s)
       WHERE r ? 'field_log' AND 2 * m.s <= jsonb_array_length(r->'field_log')) x
WHERE v > 0
$$;
CREATE FUNCTION pg_temp.snapshot() RETURNS text LANGUAGE sql AS $$
SELECT jsonb_pretty(jsonb_build_object(
	'users', (SELECT jsonb_object_agg(s.user_id, jsonb_build_object(
			'state_sync', roastr_state.state_sync(s.user_id, 0) - 'lastSyncedAt' - 'history',
			'state_full', roastr_state.state_full(s.user_id) #- '{_meta,lastSyncedAt}' #- '{_meta,history}',
			'row', to_jsonb(s) - 'field_versions' - 'field_times' - 'field_log'
				|| jsonb_build_object('change_log', pg_temp.change_log(to_jsonb(s)))))
		FROM roastr_state.state s),
	'mutations', (SELECT jsonb_agg(to_jsonb(m) ORDER BY m.user_id, m.mutation_id) FROM roastr_state.mutations m),
	'deleted_users', (SELECT jsonb_agg(to_jsonb(d) ORDER BY d.user_id) FROM roastr_state.deleted_users d),
	'plans', (SELECT jsonb_agg(to_jsonb(p) ORDER BY p.plan) FROM roastr_state.plans p),
	'persona', (SELECT coalesce(jsonb_agg(to_jsonb(p) ORDER BY p.user_id), '[]') FROM roastr_state.persona p)))
$$;
-- "v" cut to the shape of "shape": objects keep only shape's keys (a key v
-- lacks shows as a marker), arrays of equal length are cut element by element.
CREATE FUNCTION pg_temp.project(shape jsonb, v jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	IF jsonb_typeof(shape) = 'object' AND jsonb_typeof(v) = 'object' THEN
		RETURN coalesce((SELECT jsonb_object_agg(k, CASE WHEN v ? k THEN pg_temp.project(shape -> k, v -> k)
														  ELSE '"(missing after the upgrade)"' END)
						   FROM jsonb_object_keys(shape) k), '{}');
	ELSIF jsonb_typeof(shape) = 'array' AND jsonb_typeof(v) = 'array'
		  AND jsonb_array_length(shape) = jsonb_array_length(v) THEN
		RETURN coalesce((SELECT jsonb_agg(pg_temp.project(e, v -> (i::int - 1)) ORDER BY i)
						   FROM jsonb_array_elements(shape) WITH ORDINALITY a(e, i)), '[]');
	END IF;
	RETURN v;
END
$$;
-- the keys "v" has and "shape" lacks, as path = value
CREATE FUNCTION pg_temp.added(shape jsonb, v jsonb, path text DEFAULT '') RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	k text;
BEGIN
	IF jsonb_typeof(shape) = 'object' AND jsonb_typeof(v) = 'object' THEN
		FOR k IN SELECT jsonb_object_keys(v) LOOP
			IF shape ? k THEN
				RETURN QUERY SELECT pg_temp.added(shape -> k, v -> k, path || '.' || k);
			ELSE
				RETURN NEXT path || '.' || k || ' = ' || (v -> k)::text;
			END IF;
		END LOOP;
	ELSIF jsonb_typeof(shape) = 'array' AND jsonb_typeof(v) = 'array'
		  AND jsonb_array_length(shape) = jsonb_array_length(v) THEN
		FOR i IN 0 .. jsonb_array_length(v) - 1 LOOP
			RETURN QUERY SELECT pg_temp.added(shape -> i, v -> i, path || '[' || i || ']');
		END LOOP;
	END IF;
END
$$;
RESET check_function_bodies;
SQL

# run_sql DB [psql options]: the helpers, then stdin.  Prints the failed
# checks (and psql's error, if a statement failed).
run_sql() {
	local db=$1
	shift
	{ cat "$tmp/helpers.sql"; cat; } |
		psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -v u1="$u1" -v u2="$u2" -v u3="$u3" \
			-v u4="$u4" -v mid="$mid" -v tmp="$tmp" -v target="$target" "$@" 2>&1
}
# report LABEL OUTPUT STATUS: a non-empty output or a failed psql is a failure
report() {
	if [ "$3" -ne 0 ] || [ -n "$2" ]; then
		echo "$1:"
		# shellcheck disable=SC2001
		echo "$2" | sed 's/^/  /'
		fail=1
	fi
}

# ---------------------------------------------------------------- A: fresh
out=$(psql -X -q -v ON_ERROR_STOP=1 -d "$fresh" -c "CREATE EXTENSION roastr_state" 2>&1) && st=0 || st=$?
report "CREATE EXTENSION in $fresh" "$out" "$st"

# ---------------------------------------------------- B: 0.1.0, then UPDATE
# One session uses 0.1.0, records B, upgrades, and records B again: the
# backend's cached plans were built for the 0.1.0 tables.  Its writes after
# the upgrade are rolled back, so that the next session's record is
# comparable.
out=$(run_sql "$old" <<'SQL'
CREATE EXTENSION roastr_state VERSION '0.1.0';
SELECT pg_temp.expect('installed version', (SELECT extversion FROM pg_extension WHERE extname = 'roastr_state'), '0.1.0');
SELECT pg_temp.expect('0.1.0 has no consume_roasts', to_regprocedure('roastr_state.consume_roasts(uuid,integer,text)')::text, NULL);

-- ensure_user, patch, a mutation_id, conflicts
SELECT roastr_state.ensure_user(:'u1', 'one@example.com', 'One') AS full1 \gset
SELECT pg_temp.expect('ensure_user on 0.1.0', (:'full1'::jsonb @> format('{"auth": {"name": "One", "email": "one@example.com", "userId": "%s"}, "_meta": {"version": 1},
	 "usage": {"remaining_roasts": 100, "monthly_roasts_used": 0, "monthly_roasts_limit": 100},
	 "persona": {"identity": null, "tolerance": null, "intolerance": null, "embeddings_model": null, "embeddings_generated_at": null},
	 "roasting": {"enabled": true, "roast_level": 3, "shield_level": "balanceado"}, "organization": null,
	 "subscription": {"plan": "free", "status": "active", "trial_ends_at": null, "polar_customer_id": null, "current_period_end": null,
	                  "current_period_start": null, "trial_days_remaining": null, "polar_subscription_id": null}}', :'u1')::jsonb)::text
	|| ': ' || :'full1', 'true: ' || :'full1');
SELECT roastr_state.ensure_user(:'u2', 'two@example.com') \g /dev/null
SELECT roastr_state.ensure_user(:'u3', 'three@example.com') \g /dev/null
SELECT roastr_state.ensure_user(:'u4', 'four@example.com') \g /dev/null
SELECT pg_temp.expect('patch on 0.1.0', (roastr_state.patch(:'u1', '{"roasting.enabled": false}') - 'history')::text,
	'{"applied": ["roasting.enabled"], "version": 2}');
SELECT pg_temp.expect('patch with a mutation_id on 0.1.0',
	(roastr_state.patch(:'u1', '{"roasting.roast_level": 5, "roasting.shield_level": "estricto"}', 2, :'mid') - 'history')::text,
	'{"applied": ["roasting.roast_level", "roasting.shield_level"], "version": 3}');
SELECT pg_temp.expect('its retry on 0.1.0',
	(roastr_state.patch(:'u1', '{"roasting.roast_level": 5, "roasting.shield_level": "estricto"}', 2, :'mid') - 'history')::text,
	'{"applied": ["roasting.roast_level", "roasting.shield_level"], "version": 3}');
SELECT pg_temp.expect('a stale patch on 0.1.0',
	pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": true}', 1)$$, :'u1')), 'PT409');
SELECT pg_temp.expect('service patch on 0.1.0', roastr_state.patch(:'u2',
	'{"subscription.plan": "pro", "subscription.status": "trial", "subscription.trial_ends_at": "2999-01-01T00:00:00Z"}')->>'version', '2');
-- a field whose column 0.1.0 lacks (0.6.0's): refused, nothing written; it reads false
SELECT pg_temp.expect('cancel_at_period_end cannot be patched on 0.1.0',
	pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"subscription.cancel_at_period_end": true}')$$, :'u2')), '0A000');
SELECT pg_temp.expect('cancel_at_period_end reads false on 0.1.0',
	roastr_state.state_full(:'u2')->'subscription'->>'cancel_at_period_end', 'false');
SELECT pg_temp.expect('ensure_user updates the e-mail on 0.1.0', roastr_state.ensure_user(:'u3', 'three@new.example.com')->'_meta'->>'version', '2');

-- direct UPDATEs through the 0.1.0 trigger
UPDATE roastr_state.state SET monthly_roasts_used = 7, usage_period_start = date_trunc('month', now(), 'UTC')
 WHERE user_id = :'u1';
SELECT pg_temp.expect('direct UPDATE on 0.1.0', pg_temp.ver(:'u1'), '4');
UPDATE roastr_state.state SET roast_level = 2, version = 1 WHERE user_id = :'u2';
SELECT pg_temp.expect('direct UPDATE with a base version on 0.1.0', pg_temp.ver(:'u2'), '3');
SELECT pg_temp.expect('a stale direct UPDATE on 0.1.0',
	pg_temp.outcome(format($$UPDATE roastr_state.state SET plan = 'plus', version = 1 WHERE user_id = %L$$, :'u2')), 'PT409');

-- state_full and state_sync
SELECT pg_temp.expect('state_full on 0.1.0',
	(SELECT jsonb_build_object('usage', (f -> 'usage') - 'period_start' - 'reset_date', 'roasting', f -> 'roasting')::text
	   FROM roastr_state.state_full(:'u1') f),
	'{"usage": {"remaining_roasts": 93, "monthly_roasts_used": 7, "monthly_roasts_limit": 100}, "roasting": {"enabled": false, "roast_level": 5, "shield_level": "estricto"}}');
SELECT pg_temp.expect('state_full of a trial on 0.1.0',
	(roastr_state.state_full(:'u2') -> 'subscription' ->> 'status') || ' ' || (roastr_state.state_full(:'u2') -> 'usage' ->> 'monthly_roasts_limit'), 'trial 1000');
SELECT pg_temp.expect('state_sync on 0.1.0', pg_temp.fields(roastr_state.state_sync(:'u1', 3)),
	'["usage.monthly_roasts_used", "usage.period_start", "usage.remaining_roasts"]');
SELECT pg_temp.expect('its cursor', roastr_state.state_sync(:'u1', 3) ->> 'cursor', '4');
SELECT pg_temp.expect('state_sync from 0 on 0.1.0', roastr_state.state_sync(:'u1', 0) ->> 'cursor', '4');
SELECT pg_temp.expect('a cursor newer than the server on 0.1.0', (roastr_state.state_sync(:'u1', 99) - 'lastSyncedAt' - 'history' - 'reset')::text,
	(roastr_state.state_sync(:'u1', 0) - 'lastSyncedAt' - 'history' - 'reset')::text);
SELECT pg_temp.expect('... flagged reset', roastr_state.state_sync(:'u1', 99)->>'reset', 'true');
SELECT pg_temp.expect('state_sync by time on 0.1.0',
	(roastr_state.state_sync(:'u1', '2000-01-01'::timestamptz) - 'lastSyncedAt' - 'history')::text,
	(roastr_state.state_sync(:'u1', 0) - 'lastSyncedAt' - 'history')::text);

-- persona text is refused on 0.1.0, by patch and by the table's guard
SELECT pg_temp.expect('persona patch on 0.1.0',
	pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"persona.identity": "secret MARKER-u1"}')$$, :'u1')), '0A000');
SELECT pg_temp.expect('persona INSERT on 0.1.0',
	pg_temp.outcome(format($$INSERT INTO roastr_state.persona (user_id, identity) VALUES (%L, 'secret')$$, :'u1')), '0A000');
SELECT pg_temp.expect('nothing stored', (SELECT count(*) FROM roastr_state.persona)::text, '0');

-- a user on 0.1.0, through the JWT claims
SET ROLE authenticated;
SELECT set_config('request.jwt.claims', format('{"sub": "%s", "role": "authenticated"}', :'u3'), false) \g /dev/null
SELECT pg_temp.expect('a user patches on 0.1.0', (roastr_state.patch(NULL, '{"auth.name": "Three"}') - 'history')::text, '{"applied": ["auth.name"], "version": 3}');
SELECT pg_temp.expect('and syncs', pg_temp.fields(roastr_state.state_sync(NULL, 2)), '["auth.name"]');
SELECT pg_temp.expect('another user''s state on 0.1.0', pg_temp.outcome(format('SELECT roastr_state.state_full(%L)', :'u1')), '42501');
RESET ROLE;
SELECT set_config('request.jwt.claims', '', false) \g /dev/null

-- a deleted user: its last version is remembered
SELECT roastr_state.patch(:'u4', '{"roasting.enabled": false}') \g /dev/null
DELETE FROM roastr_state.state WHERE user_id = :'u4';
SELECT pg_temp.expect('deleted on 0.1.0', (SELECT last_version FROM roastr_state.deleted_users WHERE user_id = :'u4')::text, '2');

\o :tmp/before.json
SELECT pg_temp.snapshot();
\o
ALTER EXTENSION roastr_state UPDATE;
SELECT pg_temp.expect('version after the update', (SELECT extversion FROM pg_extension WHERE extname = 'roastr_state'), :'target');
\o :tmp/after_same_session.json
SELECT pg_temp.snapshot();
\o

-- writing from this backend after the upgrade
BEGIN;
SELECT pg_temp.expect('patch in the upgrading session', (roastr_state.patch(:'u1', '{"roasting.enabled": true}') - 'history')::text,
	'{"applied": ["roasting.enabled"], "version": 5}');
SELECT pg_temp.expect('consume_roasts in the upgrading session', roastr_state.consume_roasts(:'u1', 1) ->> 'monthly_roasts_used', '8');
SELECT pg_temp.expect('persona patch in the upgrading session',
	(roastr_state.patch(:'u1', '{"persona.identity": "same session MARKER-u1"}') - 'history')::text, '{"applied": ["persona.identity"], "version": 7}');
SELECT pg_temp.expect('persona read in the upgrading session', roastr_state.state_full(:'u1') -> 'persona' ->> 'identity', 'same session MARKER-u1');
ROLLBACK;
SQL
) && st=0 || st=$?
report "0.1.0 use and upgrade in $old" "$out" "$st"
# without the upgrade, what follows would only repeat that failure
if [ "$(psql -X -At -d "$old" -c "SELECT extversion FROM pg_extension WHERE extname = 'roastr_state'")" != "$target" ]; then
	echo "$old was not upgraded to $target; stopping"
	exit 1
fi

out=$(run_sql "$old" <<'SQL'
\o :tmp/after.json
SELECT pg_temp.snapshot();
\o
SQL
) && st=0 || st=$?
report "recording $old after the upgrade" "$out" "$st"

# ------------------------------------------------------ B: data survived
# The rule: after the upgrade, every key of the record taken before it
# holds the identical value -- objects compared key by key, arrays element
# by element, recursively.  So every user's state_sync from 0 (each field's
# value, version and change time, and the cursor), state_full, raw state
# row (version, its change log by field id from either layout, created_at,
# updated_at ...),
# the recorded mutations, deleted users, plans and persona rows are
# identical.  Only lastSyncedAt, the time of the read, is left out of the
# record; the derived values (usage period, trial days left) depend on the
# clock, so a run straddling a month's start (UTC) could fail.
# Keys that only the record after the upgrade has are 0.2.0's additions,
# allowed in one place only: a state row's columns that 0.1.0 did not have
# (the upgrade adds them: usage_period_end, limits_changed_at, ...), which
# must be NULL in every upgraded row.  The output of state_sync and
# state_full gains no key at all: one library serves both versions.
# 0.6.0's cancel_at_period_end is NOT NULL DEFAULT false: false in every
# upgraded row.  0.8.0's change stamps are NOT NULL DEFAULT 0: 0 in every
# upgraded state row (limits_seen, organization_seen) and plan row
# (changed_stamp), so nothing is pending after the upgrade.
new_column_re='^\.users\.<user>\.row\.([a-z_]+ = null|cancel_at_period_end = false|(limits_seen|organization_seen) = 0)$|^\.plans\[[0-9]+\]\.changed_stamp = 0$'
compare_snapshots() {     # compare_snapshots BEFORE AFTER LABEL
	local projected added
	projected=$(echo "SELECT jsonb_pretty(pg_temp.project(:'b'::jsonb, :'a'::jsonb));" |
		run_sql "$old" -v b="$(cat "$1")" -v a="$(cat "$2")") ||
		{ echo "$3: $projected"; fail=1; return; }
	if [ "$projected" != "$(cat "$1")" ]; then
		echo "$3 differs from the record taken before the upgrade (- before, + after):"
		diff -u "$1" <(echo "$projected") | tail -n +3 || true
		fail=1
	fi
	added=$(echo "SELECT pg_temp.added(:'b'::jsonb, :'a'::jsonb);" |
		run_sql "$old" -v b="$(cat "$1")" -v a="$(cat "$2")") ||
		{ echo "$3: $added"; fail=1; return; }
	added=$(echo "$added" | sed -E 's/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/<user>/g' | LC_ALL=C sort -u)
	new_columns=$(echo "$added" | sed -nE 's/^\.users\.<user>\.row\.([a-z_]+) = null$/\1/p' | paste -sd, -)
	if [ -n "$added" ] && echo "$added" | grep -vqE "$new_column_re"; then
		echo "$3: keys the upgrade added (only new columns of state and plan rows, NULL or their default, may appear):"
		# shellcheck disable=SC2001
		echo "$added" | sed 's/^/  /'
		fail=1
	fi
}
if [ -s "$tmp/before.json" ] && [ -s "$tmp/after.json" ]; then
	compare_snapshots "$tmp/before.json" "$tmp/after_same_session.json" "$old in the upgrading session"
	compare_snapshots "$tmp/before.json" "$tmp/after.json" "$old in a new session"
else
	echo "no record of $old to compare"; fail=1
fi

# ------------------------------- B: 0.2.0 and 0.3.0 on pre-upgrade users
out=$(run_sql "$old" <<'SQL'
-- the mutation recorded on 0.1.0 still replays, and is still bound to its request
SELECT pg_temp.expect('mutation replay after the upgrade',
	(roastr_state.patch(:'u1', '{"roasting.roast_level": 5, "roasting.shield_level": "estricto"}', 2, :'mid') - 'history')::text,
	'{"applied": ["roasting.roast_level", "roasting.shield_level"], "version": 3}');
SELECT pg_temp.expect('the replay writes nothing', pg_temp.ver(:'u1'), '4');
SELECT pg_temp.expect('the mutation_id reused for another patch',
	pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"roasting.roast_level": 4}', 2, %L)$$, :'u1', :'mid')), '22023');

-- consume_roasts counts on from the 0.1.0 count
SELECT pg_temp.expect('consume_roasts on a pre-upgrade user', (roastr_state.consume_roasts(:'u1', 2, 'upgrade-1') - 'reset_date')::text,
	'{"allowed": true, "remaining_roasts": 91, "monthly_roasts_used": 9, "monthly_roasts_limit": 100}');
SELECT pg_temp.expect('its retry', (roastr_state.consume_roasts(:'u1', 2, 'upgrade-1') - 'reset_date')::text,
	'{"allowed": true, "remaining_roasts": 91, "monthly_roasts_used": 9, "monthly_roasts_limit": 100}');
SELECT pg_temp.expect('one new version', pg_temp.ver(:'u1'), '5');
SELECT pg_temp.expect('synced', pg_temp.fields(roastr_state.state_sync(:'u1', 4)), '["usage.monthly_roasts_used", "usage.remaining_roasts"]');

-- persona text: written encrypted, read decrypted
SELECT pg_temp.expect('persona patch on a pre-upgrade user',
	(roastr_state.patch(:'u1', '{"persona.identity": "upgraded MARKER-u1"}') - 'history')::text, '{"applied": ["persona.identity"], "version": 6}');
SELECT pg_temp.expect('state_full decrypts it', roastr_state.state_full(:'u1') -> 'persona' ->> 'identity', 'upgraded MARKER-u1');
SELECT pg_temp.expect('state_sync decrypts it', roastr_state.state_sync(:'u1', 5) -> 'changes' -> 0 ->> 'value', 'upgraded MARKER-u1');
SELECT pg_temp.expect('no plaintext stored',
	(SELECT count(*) FROM roastr_state.persona WHERE position('MARKER' in encode(identity, 'escape')) > 0)::text, '0');
SELECT pg_temp.expect('a data key for the user', (SELECT count(*) FROM roastr_state.user_keys WHERE user_id = :'u1')::text, '1');
SELECT pg_temp.expect('plaintext INSERT after the upgrade',
	pg_temp.outcome(format($$INSERT INTO roastr_state.persona (user_id, identity) VALUES (%L, 'plain')$$, :'u2')), '22023');

-- the service writes subscription fields without a webhook
SELECT (date_trunc('day', now()) - interval '1 day') AS cps, (date_trunc('day', now()) + interval '29 days') AS cpe \gset
SELECT pg_temp.expect('service patch of subscription fields',
	(SELECT jsonb_agg(f ORDER BY f)::text FROM jsonb_array_elements_text(roastr_state.patch(:'u3', jsonb_build_object(
		'subscription.plan', 'pro', 'subscription.status', 'active',
		'subscription.current_period_start', :'cps'::timestamptz, 'subscription.current_period_end', :'cpe'::timestamptz,
		'subscription.polar_subscription_id', 'sub_upgrade', 'subscription.polar_customer_id', 'cus_upgrade')) -> 'applied') f),
	'["subscription.current_period_end", "subscription.current_period_start", "subscription.plan", "subscription.polar_customer_id", "subscription.polar_subscription_id", "subscription.status"]');
SELECT pg_temp.expect('one new version', pg_temp.ver(:'u3'), '4');
SELECT pg_temp.expect('the subscription',
	(SELECT format('%s %s %s %s %s %s', s ->> 'plan', s ->> 'status', s ->> 'polar_subscription_id', s ->> 'polar_customer_id',
				   (s ->> 'current_period_start')::timestamptz = :'cps', (s ->> 'current_period_end')::timestamptz = :'cpe')
	   FROM (SELECT roastr_state.state_full(:'u3') -> 'subscription') x(s)),
	'pro active sub_upgrade cus_upgrade t t');
SELECT pg_temp.expect('the usage of the new plan',
	(SELECT format('%s %s %s %s', u ->> 'monthly_roasts_limit', u ->> 'remaining_roasts',
				   (u ->> 'period_start')::timestamptz = :'cps', (u ->> 'reset_date')::timestamptz = :'cpe')
	   FROM (SELECT roastr_state.state_full(:'u3') -> 'usage') x(u)),
	'1000 1000 t t');

-- an operator's new limit reaches pre-upgrade users as a new version,
-- written by their next call (0.8.0), not by the operator's UPDATE
UPDATE roastr_state.plans SET monthly_roasts_limit = 150 WHERE plan = 'free';
SELECT pg_temp.expect('a changed plan limit writes no state row', pg_temp.ver(:'u1'), '6');
SELECT pg_temp.expect('is synced', (SELECT jsonb_object_agg(c ->> 'field', c -> 'value')::text
	FROM jsonb_array_elements(roastr_state.state_sync(:'u1', 6) -> 'changes') c),
	'{"usage.remaining_roasts": 141, "usage.monthly_roasts_limit": 150}');
SELECT pg_temp.expect('as a new version, written by that sync', pg_temp.ver(:'u1'), '7');

-- a user deleted on 0.1.0 comes back above its last version
SELECT pg_temp.expect('re-created after the upgrade', roastr_state.ensure_user(:'u4', 'four@example.com') -> '_meta' ->> 'version', '3');
-- delete_user (0.2.0) on a pre-upgrade user
SELECT pg_temp.ver(:'u2') AS v2 \gset
SELECT pg_temp.expect('delete_user', roastr_state.delete_user(:'u2')::text, 'true');
SELECT pg_temp.expect('remembered', (SELECT last_version FROM roastr_state.deleted_users WHERE user_id = :'u2')::text, :'v2');

-- mark_embeddings (0.3.0) refuses NULLs and records a real embedding
SELECT pg_temp.ver(:'u1') AS v1 \gset
SELECT pg_temp.expect('mark_embeddings with a NULL model',
	pg_temp.outcome(format($$SELECT roastr_state.mark_embeddings(%L, NULL, now())$$, :'u1')), '22023');
SELECT pg_temp.expect('mark_embeddings with a NULL time',
	pg_temp.outcome(format($$SELECT roastr_state.mark_embeddings(%L, 'm', NULL)$$, :'u1')), '22023');
SELECT pg_temp.expect('nothing written', pg_temp.ver(:'u1'), :'v1');
SELECT pg_temp.expect('mark_embeddings', roastr_state.mark_embeddings(:'u1', 'emb-1', now()) -> 'applied' ->> 0,
	'persona.embeddings_generated_at');
SELECT pg_temp.expect('recorded', roastr_state.state_full(:'u1') -> 'persona' ->> 'embeddings_model', 'emb-1');

-- the user, after the upgrade
SET ROLE authenticated;
SELECT set_config('request.jwt.claims', format('{"sub": "%s", "role": "authenticated"}', :'u1'), false) \g /dev/null
SELECT pg_temp.expect('the user consumes', roastr_state.consume_roasts(NULL, 1) ->> 'monthly_roasts_used', '10');
SELECT pg_temp.expect('and reads', roastr_state.state_full(NULL) -> 'persona' ->> 'identity', 'upgraded MARKER-u1');
RESET ROLE;
SQL
) && st=0 || st=$?
report "0.2.0 and 0.3.0 on pre-upgrade users in $old" "$out" "$st"

# ------------------------------ C: 0.6.0's organizations through 0.8.0
# Organizations made before 0.8.0, whose state rows their members' own
# rows still name, upgraded: nothing is pending right after the upgrade
# (every stamp starts at 0), and a rename, a role change and a deletion
# reach those members at their next read, as versions of their own.
if [ "$target" = "0.8.0" ] || [ "$(printf '%s\n' "$target" 0.8.0 | sort -V | head -n 1)" = "0.8.0" ]; then
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS rs_upgrade_06" -c "CREATE DATABASE rs_upgrade_06" 2>/dev/null
	out=$(run_sql rs_upgrade_06 <<'SQL'
CREATE EXTENSION roastr_state VERSION '0.6.0';
SELECT roastr_state.ensure_user(:'u1', 'one@example.com') \g /dev/null
SELECT roastr_state.ensure_user(:'u2', 'two@example.com') \g /dev/null
SELECT roastr_state.create_organization(:'u1', 'Old', 'old-org') AS org \gset
SELECT roastr_state.add_member(:'org', :'u2', 'member') \g /dev/null
SELECT pg_temp.expect('0.6.0: the organization is current for both',
	(SELECT count(*) FROM roastr_state.state WHERE organization_id = :'org')::text, '2');
ALTER EXTENSION roastr_state UPDATE TO '0.8.0';
SELECT pg_temp.ver(:'u1') AS v1, pg_temp.ver(:'u2') AS v2 \gset
SELECT pg_temp.expect('nothing pending after the upgrade',
	roastr_state.stats()->>'users_with_shared_moves_pending', '0');
SELECT pg_temp.expect('a read after the upgrade writes nothing',
	roastr_state.state_full(:'u2')->'_meta'->>'version', :'v2');
SELECT roastr_state.rename_organization(:'org', 'Renamed') \g /dev/null
SELECT roastr_state.set_member_role(:'org', :'u2', 'admin') \g /dev/null
SELECT pg_temp.expect('the rename and the role change wrote no state row',
	pg_temp.ver(:'u1') || ' ' || pg_temp.ver(:'u2'), :'v1' || ' ' || :'v2');
SELECT pg_temp.expect('a pre-upgrade member''s next sync reports them, at one version of their own',
	pg_temp.fields(roastr_state.state_sync(:'u2', :'v2'::bigint)) || ' ' || pg_temp.ver(:'u2'),
	'["organization.id", "organization.name", "organization.role", "organization.slug"] ' || (:'v2'::int + 1));
SELECT pg_temp.expect('with the new values', (SELECT o->>'name' || ' ' || (o->>'role') FROM roastr_state.state_full(:'u2') f,
	LATERAL (SELECT f->'organization') x(o)), 'Renamed admin');
SELECT roastr_state.delete_organization(:'org') \g /dev/null
SELECT pg_temp.expect('the deletion wrote no state row', pg_temp.ver(:'u1'), :'v1');
SELECT pg_temp.expect('the owner''s next read has no organization',
	(roastr_state.state_full(:'u1')->'organization')::text || ' ' || pg_temp.ver(:'u1'), 'null ' || (:'v1'::int + 1));
SQL
) && st=0 || st=$?
	report "0.6.0 organizations upgraded to 0.8.0 in rs_upgrade_06" "$out" "$st"
	psql -X -q -d postgres -c "DROP DATABASE IF EXISTS rs_upgrade_06" >/dev/null 2>&1 || true
fi

# ------------------------------------------------ A and B: the catalogs
# Every member of the extension (pg_depend deptype 'e'), and everything
# that hangs off a member table, one property per line.  No OIDs appear:
# foreign keys' internal triggers and TOAST tables are described by what
# they are.  The comparison is strict, column order included: A ran the
# full install script of the current version, B the chain of upgrade
# scripts (0.1.0, 0.1.0--0.2.0, 0.2.0--0.3.0, ...), and nothing may differ --
# columns added by ALTER TABLE come last in the full script too, function
# bodies and comments are the chain's final ones, and the tables are
# registered with pg_extension_config_dump in the chain's order.
catalog_sql=$(cat <<'SQL'
WITH ext AS (SELECT * FROM pg_extension WHERE extname = 'roastr_state'),
mem AS (SELECT d.classid, d.objid, d.objsubid
		  FROM pg_depend d, ext e
		 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
		   AND d.deptype = 'e')
SELECT line FROM (
-- the extension, and its pg_extension_config_dump registrations in order
SELECT format('extension|%s|version=%s|schema=%s|relocatable=%s|owner=%s',
		e.extname, e.extversion, e.extnamespace::regnamespace, e.extrelocatable,
		pg_get_userbyid(e.extowner)) AS line
  FROM ext e
UNION ALL
SELECT format('extension|config|%s|%s|condition=%s', to_char(c.i, 'FM00'), c.tab::regclass,
		coalesce(e.extcondition[c.i], '<null>'))
  FROM ext e, unnest(e.extconfig) WITH ORDINALITY c(tab, i)
UNION ALL
SELECT format('extension|config|count=%s|conditions=%s',
		coalesce(cardinality(e.extconfig), 0), coalesce(cardinality(e.extcondition), 0))
  FROM ext e
-- every member, by kind and identity
UNION ALL
SELECT format('member|%s|%s', o.type, o.identity)
  FROM mem m, pg_identify_object(m.classid, m.objid, m.objsubid) o
-- objects in the extension's schema that are not members
UNION ALL
SELECT format('non-member|relation|%s|%s', c.oid::regclass, c.relkind)
  FROM pg_class c, ext e
 WHERE c.relnamespace = e.extnamespace AND c.relkind NOT IN ('i', 'I')
   AND (c.tableoid, c.oid) NOT IN (SELECT classid, objid FROM mem)
UNION ALL
SELECT format('non-member|function|%s', p.oid::regprocedure)
  FROM pg_proc p, ext e
 WHERE p.pronamespace = e.extnamespace
   AND (p.tableoid, p.oid) NOT IN (SELECT classid, objid FROM mem)
-- the schema
UNION ALL
SELECT format('schema|%s|owner=%s|comment=%s', n.nspname, pg_get_userbyid(n.nspowner),
		coalesce(obj_description(n.oid, 'pg_namespace'), '<null>'))
  FROM pg_namespace n, ext e WHERE n.oid = e.extnamespace
UNION ALL
SELECT format('schema|%s|acl|%s|%s%s|grantor=%s', n.nspname,
		CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
		a.privilege_type, CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
		pg_get_userbyid(a.grantor))
  FROM pg_namespace n, ext e, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
 WHERE n.oid = e.extnamespace
-- functions
UNION ALL
SELECT format('function|%s|%s=%s', p.oid::regprocedure, k, v)
  FROM mem m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid,
       LATERAL (VALUES
		('arguments', pg_get_function_arguments(p.oid)),
		('result', pg_get_function_result(p.oid)),
		('kind', p.prokind::text),
		('language', (SELECT lanname FROM pg_language WHERE oid = p.prolang)),
		('volatility', p.provolatile::text),
		('strict', p.proisstrict::text),
		('parallel', p.proparallel::text),
		('security_definer', p.prosecdef::text),
		('leakproof', p.proleakproof::text),
		('returns_set', p.proretset::text),
		('cost', p.procost::text),
		('rows', p.prorows::text),
		('support', p.prosupport::regproc::text),
		('config', coalesce(p.proconfig::text, '<null>')),
		('probin', coalesce(p.probin, '<null>')),
		('owner', pg_get_userbyid(p.proowner)),
		('comment', coalesce(obj_description(p.oid, 'pg_proc'), '<null>'))) AS prop(k, v)
-- the source (a C function's is its symbol), line by line
UNION ALL
SELECT format('function|%s|prosrc|%s|%s', p.oid::regprocedure, to_char(l.n, 'FM0000'), l.text)
  FROM mem m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid,
       regexp_split_to_table(p.prosrc, E'\n') WITH ORDINALITY l(text, n)
UNION ALL
SELECT format('function|%s|acl|%s|%s%s|grantor=%s', p.oid::regprocedure,
		CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
		a.privilege_type, CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
		pg_get_userbyid(a.grantor))
  FROM mem m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid,
       aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
-- tables (and any other relation)
UNION ALL
SELECT format('relation|%s|%s=%s', c.oid::regclass, k, v)
  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid,
       LATERAL (VALUES
		('kind', c.relkind::text),
		('persistence', c.relpersistence::text),
		('rowsecurity', c.relrowsecurity::text),
		('forcerowsecurity', c.relforcerowsecurity::text),
		('replica_identity', c.relreplident::text),
		('options', coalesce(c.reloptions::text, '<null>')),
		('access_method', coalesce((SELECT amname FROM pg_am WHERE oid = c.relam), '<null>')),
		('has_toast', (c.reltoastrelid <> 0)::text),
		('owner', pg_get_userbyid(c.relowner)),
		('comment', coalesce(obj_description(c.oid, 'pg_class'), '<null>'))) AS prop(k, v)
UNION ALL
SELECT format('relation|%s|acl|%s|%s%s|grantor=%s', c.oid::regclass,
		CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
		a.privilege_type, CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
		pg_get_userbyid(a.grantor))
  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid,
       aclexplode(coalesce(c.relacl,
			acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
-- columns, in order: the position among the live columns is part of the
-- line (0.7.0 moves columns to the end of the state row with ALTER TABLE,
-- which leaves dropped attributes behind in an upgraded table)
UNION ALL
SELECT format('relation|%s|column|%s|%s|%s|not null=%s|default=%s|identity=%s|generated=%s|collation=%s|dropped=%s|comment=%s|acl=%s',
		c.oid::regclass, to_char(row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), 'FM000'), a.attname, format_type(a.atttypid, a.atttypmod),
		a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), '<none>'),
		a.attidentity, a.attgenerated,
		coalesce((SELECT collname FROM pg_collation WHERE oid = a.attcollation), '<none>'),
		a.attisdropped, coalesce(col_description(c.oid, a.attnum), '<null>'),
		coalesce(a.attacl::text, '<null>'))
  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
-- constraints
UNION ALL
SELECT format('relation|%s|constraint|%s|%s|%s|validated=%s|noinherit=%s|comment=%s',
		c.oid::regclass, k.conname, k.contype, pg_get_constraintdef(k.oid),
		k.convalidated, k.connoinherit, coalesce(obj_description(k.oid, 'pg_constraint'), '<null>'))
  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_constraint k ON k.conrelid = c.oid
-- indexes
UNION ALL
SELECT format('relation|%s|index|%s|primary=%s|unique=%s|clustered=%s|replident=%s|valid=%s|comment=%s',
		c.oid::regclass, pg_get_indexdef(i.indexrelid), i.indisprimary, i.indisunique,
		i.indisclustered, i.indisreplident, i.indisvalid,
		coalesce(obj_description(i.indexrelid, 'pg_class'), '<null>'))
  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_index i ON i.indrelid = c.oid
-- triggers
UNION ALL
SELECT format('relation|%s|trigger|%s|enabled=%s|comment=%s', c.oid::regclass,
		pg_get_triggerdef(t.oid), t.tgenabled, coalesce(obj_description(t.oid, 'pg_trigger'), '<null>'))
  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
UNION ALL
SELECT format('relation|%s|internal trigger|%s|type=%s|enabled=%s|constraint=%s|deferrable=%s|deferred=%s',
		c.oid::regclass, t.tgfoid::regproc, t.tgtype, t.tgenabled,
		(SELECT conname FROM pg_constraint WHERE oid = t.tgconstraint),
		t.tgdeferrable, t.tginitdeferred)
  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgisinternal
-- row security policies
UNION ALL
SELECT format('relation|%s|policy|%s|%s|roles=%s|cmd=%s|using=%s|check=%s|comment=%s',
		c.oid::regclass, p.policyname, p.permissive, p.roles, p.cmd, p.qual, p.with_check,
		coalesce(obj_description(pp.oid, 'pg_policy'), '<null>'))
  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_policies p ON p.schemaname = c.relnamespace::regnamespace::name AND p.tablename = c.relname
  JOIN pg_policy pp ON pp.polrelid = c.oid AND pp.polname = p.policyname
-- rules other than a view's, extended statistics
UNION ALL
SELECT format('relation|%s|rule|%s|%s', c.oid::regclass, r.rulename, pg_get_ruledef(r.oid))
  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_rewrite r ON r.ev_class = c.oid AND r.rulename <> '_RETURN'
UNION ALL
SELECT format('relation|%s|statistics|%s', c.oid::regclass, pg_get_statisticsobjdef(s.oid))
  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_statistic_ext s ON s.stxrelid = c.oid
-- sequences
UNION ALL
SELECT format('sequence|%s|type=%s|start=%s|increment=%s|min=%s|max=%s|cache=%s|cycle=%s',
		s.seqrelid::regclass, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
		s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
  FROM mem m JOIN pg_sequence s ON m.classid = 'pg_class'::regclass AND s.seqrelid = m.objid
-- types that are members themselves (not tables' row types)
UNION ALL
SELECT format('type|%s|typtype=%s|input=%s|output=%s|definition=%s|owner=%s|comment=%s|acl=%s',
		format_type(t.oid, NULL), t.typtype, t.typinput, t.typoutput,
		CASE t.typtype
			WHEN 'e' THEN (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid)
			WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)
			WHEN 'c' THEN (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ',' ORDER BY attnum)
							 FROM pg_attribute WHERE attrelid = t.typrelid AND attnum > 0 AND NOT attisdropped)
			ELSE '' END,
		pg_get_userbyid(t.typowner), coalesce(obj_description(t.oid, 'pg_type'), '<null>'),
		coalesce(t.typacl::text, '<null>'))
  FROM mem m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
-- the initial privileges pg_dump relies on
UNION ALL
SELECT format('init_privs|%s|%s|%s', pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
		ip.privtype, ip.initprivs)
  FROM pg_init_privs ip
 WHERE (ip.classoid, ip.objoid) IN (SELECT classid, objid FROM mem)
-- dependencies of and on the members
UNION ALL
SELECT format('depend|%s|on|%s|%s', pg_describe_object(d.classid, d.objid, d.objsubid),
		pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), d.deptype)
  FROM pg_depend d
 WHERE ((d.classid, d.objid) IN (SELECT classid, objid FROM mem)
		OR (d.refclassid, d.refobjid) IN (SELECT classid, objid FROM mem))
   AND NOT (d.classid = 'pg_trigger'::regclass
			AND (SELECT tgisinternal FROM pg_trigger WHERE oid = d.objid))
   AND NOT (d.classid = 'pg_type'::regclass
			AND (SELECT typnamespace = 'pg_toast'::regnamespace FROM pg_type WHERE oid = d.objid))
   AND NOT (d.classid = 'pg_class'::regclass
			AND (SELECT relnamespace = 'pg_toast'::regnamespace FROM pg_class WHERE oid = d.objid))
) lines
ORDER BY line COLLATE "C"
SQL
)

# ----------------------------------------------- A and B: role privileges
privileges_sql=$(cat <<'SQL'
WITH ext AS (SELECT * FROM pg_extension WHERE extname = 'roastr_state'),
mem AS (SELECT d.classid, d.objid
		  FROM pg_depend d, ext e
		 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
		   AND d.deptype = 'e'),
roles(r) AS (VALUES ('public'::name), ('anon'), ('authenticated'), ('service_role'))
SELECT line FROM (
SELECT format('function|%s|%s|EXECUTE=%s', p.oid::regprocedure, r, has_function_privilege(r, p.oid, 'EXECUTE')) AS line
  FROM roles, mem m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
UNION ALL
SELECT format('table|%s|%s|%s=%s', c.oid::regclass, r, priv, has_table_privilege(r, c.oid, priv))
  FROM roles, mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid,
       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) priv
UNION ALL
SELECT format('table|%s|%s|any column %s=%s', c.oid::regclass, r, priv, has_any_column_privilege(r, c.oid, priv))
  FROM roles, mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid,
       unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) priv
UNION ALL
SELECT format('schema|%s|%s|%s=%s', e.extnamespace::regnamespace, r, priv, has_schema_privilege(r, e.extnamespace, priv))
  FROM ext e, roles, unnest(ARRAY['USAGE', 'CREATE']) priv
) lines
ORDER BY line COLLATE "C"
SQL
)

# compare_dbs WHAT SQL: run SQL in A and B, print a diff when they differ
compare_dbs() {
	local a b
	a=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$fresh" -c "$2" 2>&1) || { echo "$1 of $fresh: $a"; fail=1; return; }
	b=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$old" -c "$2" 2>&1) || { echo "$1 of $old: $b"; fail=1; return; }
	echo "$a" >"$tmp/$1.fresh"
	echo "$b" >"$tmp/$1.upgraded"
	if [ "$a" != "$b" ]; then
		echo "$1: the upgraded database differs from the fresh one (- fresh, + upgraded):"
		diff -u "$tmp/$1.fresh" "$tmp/$1.upgraded" | tail -n +3 || true
		fail=1
	fi
}
compare_dbs catalog "$catalog_sql"
compare_dbs privileges "$privileges_sql"

# Guard against comparing two empty or broken listings: the fresh install
# must show 0.2.0, its members, and the grants the README promises.
for want in "extension|roastr_state|version=$target|" 'member|table|roastr_state.user_keys' \
	'member|function|roastr_state.consume_roasts(' '|limits_changed_at|timestamp with time zone|'; do
	grep -qF "$want" "$tmp/catalog.fresh" 2>/dev/null || { echo "catalog of $fresh lacks: $want"; fail=1; }
done
for want in 'function|roastr_state.patch(uuid,jsonb,bigint,uuid)|authenticated|EXECUTE=t' \
	'function|roastr_state.ensure_user(uuid,text,text)|service_role|EXECUTE=t' \
	'table|roastr_state.state|service_role|UPDATE=t' 'schema|roastr_state|authenticated|USAGE=t'; do
	grep -qxF "$want" "$tmp/privileges.fresh" 2>/dev/null || { echo "privileges of $fresh lack: $want"; fail=1; }
done
if grep -E '\|(public|anon)\|.*=t$' "$tmp/privileges.fresh" 2>/dev/null; then
	echo "PUBLIC or anon hold the privileges above in $fresh"; fail=1
fi

psql -X -q -d postgres -c "DROP DATABASE $fresh" -c "DROP DATABASE $old"
if [ "$fail" -eq 0 ]; then
	echo "upgrade: ok ($(grep -c '^member|' "$tmp/catalog.fresh") members: $(wc -l <"$tmp/catalog.fresh") catalog lines and $(wc -l <"$tmp/privileges.fresh") privileges identical to a fresh install; $(grep -c '"version"' "$tmp/before.json") versioned values kept; new NULL columns: ${new_columns:-none})"
fi
exit "$fail"
