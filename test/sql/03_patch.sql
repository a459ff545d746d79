-- patch: versions, field-level conflicts, last write wins, all or nothing,
-- mutation ids.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(31);

SELECT roastr_state.ensure_user(:u1, 'ann@example.com', 'Ann') IS NOT NULL;

SELECT is(roastr_state.patch(:u1, '{"roasting.enabled": false}'),
	'{"version": 2, "applied": ["roasting.enabled"]}'::jsonb || :'hist', 'a patch bumps the version by one');
SELECT is(roastr_state.state_full(:u1)->'roasting'->'enabled', 'false'::jsonb, 'and is applied');

SELECT is(roastr_state.patch(:u1, '{"roasting.roast_level": 5, "roasting.shield_level": "estricto", "auth.name": "Annie"}'),
	'{"version": 3, "applied": ["auth.name", "roasting.roast_level", "roasting.shield_level"]}'::jsonb || :'hist',
	'several fields: one version');

SELECT is(roastr_state.patch(:u1, '{"roasting.roast_level": 5}'),
	'{"version": 3, "applied": ["roasting.roast_level"]}'::jsonb || :'hist',
	'writing the current value is not a change');

SELECT is(roastr_state.patch(:u1, '{}'), '{"version": 3, "applied": []}'::jsonb || :'hist', 'an empty patch');

-- field-level optimistic locking
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": true}', 1)$$, :u1))->>'sqlstate',
	'PT409', 'a field changed after the base version conflicts');
SELECT is((pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": true}', 1)$$, :u1))->>'detail')::jsonb,
	'{"code": "E_CONFLICT", "server_version": 3, "client_version": 1,
	  "conflicts": [{"field": "roasting.enabled", "server_value": false, "server_version": 2}]}'::jsonb,
	'the conflict detail is the JSON of the API');
SELECT is((pg_temp.outcome(format($$SELECT roastr_state.patch(%L,
		'{"roasting.enabled": true, "roasting.roast_level": 1, "subscription.plan": "pro"}', 1)$$, :u1))->>'detail')::jsonb->'conflicts',
	'[{"field": "roasting.enabled", "server_value": false, "server_version": 2},
	  {"field": "roasting.roast_level", "server_value": 5, "server_version": 3}]'::jsonb,
	'every conflicting field is listed, and only those');
SELECT is(roastr_state.state_full(:u1)->'subscription'->>'plan', 'free', 'a conflict applies nothing');
SELECT is(roastr_state.patch(:u1, '{"roasting.enabled": false}', 1),
	'{"version": 3, "applied": ["roasting.enabled"]}'::jsonb || :'hist',
	'a stale base is fine when the value is what the server has');
SELECT is(roastr_state.patch(:u1, '{"subscription.plan": "pro"}', 1),
	'{"version": 4, "applied": ["subscription.plan"]}'::jsonb || :'hist',
	'a field nobody changed since the base does not conflict');
SELECT is(roastr_state.patch(:u1, '{"roasting.enabled": true}', 4),
	'{"version": 5, "applied": ["roasting.enabled"]}'::jsonb || :'hist',
	'the current version as base always applies');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"auth.name": "X"}', 0)$$, :u1))->>'sqlstate',
	'PT409', 'base 0 conflicts with every field changed since creation');
SELECT is(roastr_state.patch(:u1, '{"roasting.roast_level": 2}'),
	'{"version": 6, "applied": ["roasting.roast_level"]}'::jsonb || :'hist',
	'without a base version the last write wins');

-- all or nothing
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": false, "roasting.roast_level": 9}')$$, :u1))->>'sqlstate',
	'22023', 'one bad field fails the patch');
SELECT is(roastr_state.state_full(:u1)->'roasting'->'enabled', 'true'::jsonb, 'and nothing of it is applied');
SELECT is((roastr_state.state_full(:u1)->'_meta'->>'version')::int, 6, 'version unchanged');

-- mutation ids
SELECT is(roastr_state.patch(:u1, '{"auth.name": "Ann B"}', NULL, 'b0000000-0000-4000-8000-000000000001'),
	'{"version": 7, "applied": ["auth.name"]}'::jsonb || :'hist', 'a patch with a mutation id');
SELECT roastr_state.patch(:u1, '{"auth.name": "Somebody else"}') IS NOT NULL;
SELECT is(roastr_state.patch(:u1, '{"auth.name": "Ann B"}', NULL, 'b0000000-0000-4000-8000-000000000001'),
	'{"version": 7, "applied": ["auth.name"]}'::jsonb || :'hist', 'a retry returns the first result');
SELECT is(roastr_state.state_full(:u1)->'auth'->>'name', 'Somebody else', 'and changes nothing');
SELECT is((roastr_state.state_full(:u1)->'_meta'->>'version')::int, 8, 'not even the version');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"auth.name": "Other"}', NULL, 'b0000000-0000-4000-8000-000000000001')$$, :u1))->>'sqlstate',
	'22023', 'a mutation id reused for another patch is refused');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"auth.name": "Ann B"}', 3, 'b0000000-0000-4000-8000-000000000001')$$, :u1))->>'sqlstate',
	'22023', 'the base version is part of the request');
-- a failed call records nothing; its retry fails the same way
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": false}', 2, 'b0000000-0000-4000-8000-000000000002')$$, :u1))->>'sqlstate',
	'PT409', 'a conflicting mutation');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": false}', 2, 'b0000000-0000-4000-8000-000000000002')$$, :u1))->>'sqlstate',
	'PT409', 'its retry returns the same error');
SELECT is((SELECT count(*)::int FROM roastr_state.mutations WHERE mutation_id = 'b0000000-0000-4000-8000-000000000002'),
	0, 'a failed mutation leaves no record');
SELECT is((SELECT count(*)::int FROM roastr_state.mutations), 1, 'one recorded mutation');
SELECT is((SELECT result FROM roastr_state.mutations WHERE mutation_id = 'b0000000-0000-4000-8000-000000000001'),
	'{"version": 7, "applied": ["auth.name"]}'::jsonb,
	'the recorded answer has no history: a retry gets the server''s when it is answered');

-- the history of a patch's version is the line of the one state_full reports
SELECT is(roastr_state.patch(:u1, '{}')->>'history',
	substring(roastr_state.state_full(:u1)->'_meta'->>'history' from '^[0-9]+\.[0-9]+'),
	'a patch answer''s history is the server''s history line, without a WAL position');

-- the service may change service fields; the change log has them
SELECT is(roastr_state.patch(:u1, '{"subscription.status": "past_due", "subscription.current_period_end": "2999-01-01T00:00:00Z"}')->>'version',
	'9', 'the service writes subscription fields');
SELECT is(roastr_state.state_full(:u1)->'subscription'->>'status', 'past_due', 'status stored');

SELECT * FROM finish();
ROLLBACK;
