-- state_sync: the cursor, at most one entry per field, derived fields,
-- and a change log bounded by users x fields.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(21);

SELECT roastr_state.ensure_user(:u1, 'ann@example.com') IS NOT NULL;

CREATE FUNCTION pg_temp.fields(j jsonb) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(e->>'field', ',' ORDER BY ord), '')
	  FROM jsonb_array_elements(j->'changes') WITH ORDINALITY AS x(e, ord)
$$;

SELECT is(jsonb_array_length(roastr_state.state_sync(:u1, 0)->'changes'), 28,
	'cursor 0 gives every field');
SELECT is(roastr_state.state_sync(:u1, 0), roastr_state.state_sync(:u1, NULL::bigint),
	'so does NULL');
SELECT is(pg_temp.fields(roastr_state.state_sync(:u1, 1)), '', 'nothing after the current version');
SELECT is((roastr_state.state_sync(:u1, 1)->>'cursor')::int, 1, 'the cursor is the version');
SELECT is(
	(SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(roastr_state.state_sync(:u1, 1)) k),
	ARRAY['changes', 'cursor', 'history', 'lastSyncedAt', 'reset'], 'the sync answer has the keys of the API');

SELECT roastr_state.patch(:u1, '{"roasting.enabled": false}') IS NOT NULL;
SELECT roastr_state.patch(:u1, '{"roasting.roast_level": 1}') IS NOT NULL;
SELECT roastr_state.patch(:u1, '{"roasting.enabled": true}') IS NOT NULL;

SELECT is(pg_temp.fields(roastr_state.state_sync(:u1, 1)), 'roasting.roast_level,roasting.enabled',
	'each changed field once, ordered by version');
SELECT is(
	(SELECT jsonb_agg(e - 'updated_at') FROM jsonb_array_elements(roastr_state.state_sync(:u1, 1)->'changes') e),
	'[{"field": "roasting.roast_level", "value": 1, "version": 3},
	  {"field": "roasting.enabled", "value": true, "version": 4}]'::jsonb,
	'with its latest value and version');
SELECT ok((SELECT bool_and((e->>'updated_at')::timestamptz = now())
	FROM jsonb_array_elements(roastr_state.state_sync(:u1, 1)->'changes') e),
	'and the time of the change');
SELECT is(pg_temp.fields(roastr_state.state_sync(:u1, 3)), 'roasting.enabled', 'from a later cursor');
SELECT is(pg_temp.fields(roastr_state.state_sync(:u1, 4)), '', 'from the newest cursor');
SELECT is(pg_temp.fields(roastr_state.state_sync(:u1, 1000)), pg_temp.fields(roastr_state.state_sync(:u1, 0)),
	'a cursor from the future (a restored server) gives everything');

-- derived fields move with what they derive from
SELECT roastr_state.patch(:u1, '{"subscription.plan": "pro"}') IS NOT NULL;
SELECT is(pg_temp.fields(roastr_state.state_sync(:u1, 4)),
	'persona.tolerance,subscription.plan,usage.monthly_roasts_limit,usage.monthly_roasts_used,usage.period_start,usage.remaining_roasts,usage.reset_date',
	'a plan change brings the derived usage fields (and persona.tolerance, shown from pro on)');
SELECT is(
	(SELECT jsonb_object_agg(e->>'field', e->'value') FROM jsonb_array_elements(roastr_state.state_sync(:u1, 4)->'changes') e
	  WHERE e->>'field' IN ('usage.monthly_roasts_limit', 'usage.remaining_roasts')),
	'{"usage.monthly_roasts_limit": 1000, "usage.remaining_roasts": 1000}'::jsonb,
	'with their new values');
SELECT is(roastr_state.state_full(:u1)->'_meta'->'version', roastr_state.state_sync(:u1, 0)->'cursor',
	'state_full and state_sync agree on the version');

-- the time-based variant
SELECT is(pg_temp.fields(roastr_state.state_sync(:u1, now() - interval '1 second')),
	pg_temp.fields(roastr_state.state_sync(:u1, 0)), 'since a time before the changes');
SELECT is(pg_temp.fields(roastr_state.state_sync(:u1, now())), '', 'since the time of the last change');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.state_sync(%L, -1)', :u1))->>'sqlstate', '22023',
	'a negative cursor is refused');

-- the change log is bounded by users x fields, whatever the number of updates
DO $$
BEGIN
	FOR i IN 1..500 LOOP
		PERFORM roastr_state.patch('a1111111-1111-4111-8111-111111111111', jsonb_build_object('roasting.roast_level', 1 + i % 5));
	END LOOP;
END
$$;
SELECT is((SELECT version FROM roastr_state.state WHERE user_id = :u1), 505::bigint, '500 more versions');
SELECT is((SELECT array_length(field_log, 1) FROM roastr_state.state WHERE user_id = :u1),
	52, 'still one log entry per field (26 fields, a version and a time each)');

-- reads in a query the planner runs in parallel (they may write down a
-- pending move, and run statements of their own: never in a parallel plan)
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
-- (CREATE TABLE AS runs its query in a parallel plan; 0.7.0's PARALLEL
-- RESTRICTED failed there with 'cannot start commands during a parallel
-- operation')
CREATE TEMP TABLE par_full AS SELECT roastr_state.state_full(user_id) AS f FROM roastr_state.state;
SELECT is((SELECT count(*) FROM par_full WHERE f ? '_meta'), (SELECT count(*) FROM roastr_state.state),
	'state_full over every user in a query that could run in parallel');
CREATE TEMP TABLE par_sync AS SELECT roastr_state.state_sync(user_id, 0) AS s FROM roastr_state.state;
SELECT is((SELECT count(*) FROM par_sync WHERE s ? 'cursor'), (SELECT count(*) FROM roastr_state.state),
	'state_sync too');

SELECT * FROM finish();
ROLLBACK;
