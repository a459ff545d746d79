-- Bad input to every function: each gets a specific SQLSTATE (never XX000),
-- and the state is exactly as before.
\set ECHO none
\i test/helpers/common.psql
BEGIN;

SELECT roastr_state.ensure_user(:u1, 'ann@example.com', 'Ann') IS NOT NULL;
SELECT roastr_state.patch(:u1, '{"roasting.roast_level": 4}') IS NOT NULL;
CREATE TEMP TABLE before AS SELECT pg_temp.snap(:u1) AS s, (SELECT count(*) FROM roastr_state.mutations) AS m;

CREATE TEMP TABLE cases (id serial, label text, sql text, code text);
INSERT INTO cases (label, sql, code) VALUES
	-- patch: arguments
	('patch: NULL user (service)', $$SELECT roastr_state.patch(NULL, '{"roasting.enabled": true}')$$, '22023'),
	('patch: NULL changes', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', NULL)$$, '22023'),
	('patch: array', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '[]')$$, '22023'),
	('patch: string', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '"x"')$$, '22023'),
	('patch: number', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '1')$$, '22023'),
	('patch: JSON null', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', 'null')$$, '22023'),
	('patch: malformed JSON', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.enabled":')$$, '22P02'),
	('patch: invalid UTF-8', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', convert_from('\x7b22617574682e6e616d65223a2022ff227d', 'UTF8')::jsonb)$$, '22021'),
	('patch: unknown user', $$SELECT roastr_state.patch('afffffff-ffff-4fff-8fff-ffffffffffff', '{"roasting.enabled": true}')$$, 'PT404'),
	('patch: unknown user with mutation', $$SELECT roastr_state.patch('afffffff-ffff-4fff-8fff-ffffffffffff', '{"roasting.enabled": true}', NULL, 'c0000000-0000-4000-8000-000000000001')$$, 'PT404'),
	('patch: negative base', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.enabled": true}', -1)$$, '22023'),
	('patch: base from the future', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.enabled": false}', 3)$$, '22023'),
	('patch: unknown field', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.speed": 1}')$$, '22023'),
	('patch: section as field', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting": {"enabled": true}}')$$, '22023'),
	('patch: empty key', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"": 1}')$$, '22023'),
	('patch: derived field', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"usage.remaining_roasts": 5}')$$, '22023'),
	('patch: derived trial days', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"subscription.trial_days_remaining": 5}')$$, '22023'),
	('patch: quota field', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"usage.monthly_roasts_used": 0}')$$, '22023'),
	('patch: organization id', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"organization.id": "a2222222-2222-4222-8222-222222222222"}')$$, '22023'),
	('patch: user id', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"auth.userId": "a2222222-2222-4222-8222-222222222222"}')$$, '22023'),
	('patch: persona text too long', format($$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"persona.identity": "%s"}')$$, repeat('p', 4001)), '22023'),
	('patch: persona text as number', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"persona.identity": 42}')$$, '22023'),
	('patch: tolerance below pro', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"persona.tolerance": "x"}')$$, 'PT402'),
	('patch: persona with a bad field', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"persona.identity": "ok", "roasting.roast_level": 0}')$$, '22023'),
	('patch: enabled as string', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.enabled": "false"}')$$, '22023'),
	('patch: enabled as number', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.enabled": 0}')$$, '22023'),
	('patch: enabled null', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.enabled": null}')$$, '22023'),
	('patch: level 0', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.roast_level": 0}')$$, '22023'),
	('patch: level 6', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.roast_level": 6}')$$, '22023'),
	('patch: level -1', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.roast_level": -1}')$$, '22023'),
	('patch: level 2.5', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.roast_level": 2.5}')$$, '22023'),
	('patch: level 1e10', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.roast_level": 1e10}')$$, '22023'),
	('patch: level 1e1000', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.roast_level": 1e1000}')$$, '22023'),
	('patch: level as string', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.roast_level": "3"}')$$, '22023'),
	('patch: level as object', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.roast_level": {"v": 3}}')$$, '22023'),
	('patch: level as array', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.roast_level": [3]}')$$, '22023'),
	('patch: unknown shield level', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.shield_level": "maximo"}')$$, '22023'),
	('patch: shield level in capitals', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"roasting.shield_level": "Estricto"}')$$, '22023'),
	('patch: name of 201 characters', format($$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"auth.name": "%s"}')$$, repeat('n', 201)), '22023'),
	('patch: name of 1 MB', format($$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"auth.name": "%s"}')$$, repeat('n', 1024 * 1024)), '22023'),
	('patch: name with a control character', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"auth.name": "a\u0007b"}')$$, '22023'),
	('patch: unknown plan', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"subscription.plan": "gold"}')$$, '22023'),
	('patch: unknown status', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"subscription.status": "paused"}')$$, '22023'),
	('patch: plan null', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"subscription.plan": null}')$$, '22023'),
	('patch: not a timestamp', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"subscription.current_period_end": "soon"}')$$, '22023'),
	('patch: infinite timestamp', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"subscription.current_period_end": "infinity"}')$$, '22023'),
	('patch: timestamp as number', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"subscription.current_period_end": 1700000000}')$$, '22023'),
	('patch: empty polar id', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"subscription.polar_customer_id": ""}')$$, '22023'),
	('patch: e-mail without @', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"auth.email": "ann"}')$$, '22023'),
	('patch: e-mail null', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"auth.email": null}')$$, '22023'),
	('patch: 10000 unknown keys', format('SELECT roastr_state.patch(%L, %L)', 'a1111111-1111-4111-8111-111111111111',
		(SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 10000) i)), '22023'),
	('patch: good field then bad one', $$SELECT roastr_state.patch('a1111111-1111-4111-8111-111111111111', '{"auth.name": "Zed", "roasting.roast_level": 9}')$$, '22023'),
	-- state_full / state_sync
	('state_full: NULL user (service)', $$SELECT roastr_state.state_full(NULL)$$, '22023'),
	('state_full: unknown user', $$SELECT roastr_state.state_full('afffffff-ffff-4fff-8fff-ffffffffffff')$$, 'PT404'),
	('state_full: not a uuid', $$SELECT roastr_state.state_full('nope')$$, '22P02'),
	('state_sync: NULL user (service)', $$SELECT roastr_state.state_sync(NULL, 0)$$, '22023'),
	('state_sync: unknown user', $$SELECT roastr_state.state_sync('afffffff-ffff-4fff-8fff-ffffffffffff', 0)$$, 'PT404'),
	('state_sync: negative cursor', $$SELECT roastr_state.state_sync('a1111111-1111-4111-8111-111111111111', -5)$$, '22023'),
	('state_sync: infinite time', $$SELECT roastr_state.state_sync('a1111111-1111-4111-8111-111111111111', 'infinity'::timestamptz)$$, '22023'),
	('state_sync: ambiguous NULL cursor', $$SELECT roastr_state.state_sync('a1111111-1111-4111-8111-111111111111', NULL)$$, '42725'),
	('state_sync: history not a token', $$SELECT roastr_state.state_sync('a1111111-1111-4111-8111-111111111111', 1, 'nope')$$, '22023'),
	('state_sync: history with a bad timeline', $$SELECT roastr_state.state_sync('a1111111-1111-4111-8111-111111111111', 1, '123.0')$$, '22023'),
	('state_sync: history with lower-case hex', $$SELECT roastr_state.state_sync('a1111111-1111-4111-8111-111111111111', 1, '123.1.ff')$$, '22023'),
	('state_sync: history too long', $$SELECT roastr_state.state_sync('a1111111-1111-4111-8111-111111111111', 1, repeat('1', 65))$$, '22023'),
	('state_sync: history overflowing', $$SELECT roastr_state.state_sync('a1111111-1111-4111-8111-111111111111', 1, '99999999999999999999999.1')$$, '22023'),
	('state_sync: history, negative cursor', $$SELECT roastr_state.state_sync('a1111111-1111-4111-8111-111111111111', -1, NULL)$$, '22023'),
	('state_sync: history, unknown user', $$SELECT roastr_state.state_sync('afffffff-ffff-4fff-8fff-ffffffffffff', 0, NULL)$$, 'PT404'),
	-- ensure_user
	('ensure_user: NULL user', $$SELECT roastr_state.ensure_user(NULL, 'x@example.com')$$, '22023'),
	('ensure_user: NULL e-mail', $$SELECT roastr_state.ensure_user('a1111111-1111-4111-8111-111111111111', NULL)$$, '22023'),
	('ensure_user: bad e-mail', $$SELECT roastr_state.ensure_user('a1111111-1111-4111-8111-111111111111', 'nope')$$, '22023'),
	('ensure_user: empty e-mail', $$SELECT roastr_state.ensure_user('a1111111-1111-4111-8111-111111111111', '')$$, '22023'),
	('ensure_user: e-mail of 321 characters', format($$SELECT roastr_state.ensure_user('a1111111-1111-4111-8111-111111111111', '%s@x')$$, repeat('e', 319)), '22023'),
	('ensure_user: name of 201 characters', format($$SELECT roastr_state.ensure_user('a1111111-1111-4111-8111-111111111111', 'ann@example.com', '%s')$$, repeat('n', 201)), '22023'),
	-- the trigger, called wrongly
	('state_trigger called directly', $$SELECT roastr_state.state_trigger()$$, '39P01');

SELECT plan((SELECT count(*)::int FROM cases) + 4);

SELECT is(pg_temp.outcome(sql)->>'sqlstate', code, label) FROM cases ORDER BY id;

SELECT is((SELECT count(*)::int FROM cases WHERE pg_temp.outcome(sql)->>'sqlstate' = 'XX000'), 0,
	'no case is an internal error');
SELECT is(pg_temp.snap(:u1), (SELECT s FROM before), 'the state is exactly as before');
SELECT is((SELECT count(*) FROM roastr_state.mutations), (SELECT m FROM before), 'no mutation was recorded');

-- boundaries that are valid
SELECT is(roastr_state.patch(:u1, format('{"auth.name": "%s", "roasting.roast_level": 1}', repeat('n', 200))::jsonb)->>'version',
	'3', 'a 200-character name and level 1 are accepted');

SELECT * FROM finish();
ROLLBACK;
