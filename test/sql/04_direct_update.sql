-- A backend's direct UPDATEs and INSERTs follow the same rules as patch().
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(24);

SELECT roastr_state.ensure_user(:u1, 'ann@example.com') IS NOT NULL;

UPDATE roastr_state.state SET roasting_enabled = false WHERE user_id = :u1;
SELECT is((SELECT version FROM roastr_state.state WHERE user_id = :u1), 2::bigint,
	'a direct UPDATE bumps the version');
SELECT is(
	(SELECT jsonb_agg(e->>'field') FROM jsonb_array_elements(roastr_state.state_sync(:u1, 1)->'changes') e),
	'["roasting.enabled"]'::jsonb, 'and is logged');

UPDATE roastr_state.state SET roast_level = 4, version = 2 WHERE user_id = :u1;
SELECT is((SELECT version FROM roastr_state.state WHERE user_id = :u1), 3::bigint,
	'SET version = N names the base version');

SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET roasting_enabled = true, version = 1 WHERE user_id = %L', :u1))->>'sqlstate',
	'PT409', 'a stale base on a changed field conflicts');
SELECT is((pg_temp.outcome(format('UPDATE roastr_state.state SET roasting_enabled = true, version = 1 WHERE user_id = %L', :u1))->>'detail')::jsonb,
	'{"code": "E_CONFLICT", "server_version": 3, "client_version": 1,
	  "conflicts": [{"field": "roasting.enabled", "server_value": false, "server_version": 2}]}'::jsonb,
	'with the same detail as patch');
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET shield_level = ''estricto'', version = 1 WHERE user_id = %L', :u1))->>'sqlstate',
	'00000', 'a stale base on an untouched field applies');
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET name = ''X'', version = 99 WHERE user_id = %L', :u1))->>'sqlstate',
	'22023', 'a base from the future is refused');

UPDATE roastr_state.state SET roast_level = roast_level WHERE user_id = :u1;
SELECT is((SELECT version FROM roastr_state.state WHERE user_id = :u1), 4::bigint,
	'an UPDATE that changes nothing does not bump the version');
UPDATE roastr_state.state SET roast_level = 4, version = 2 WHERE user_id = :u1;
SELECT is((SELECT version FROM roastr_state.state WHERE user_id = :u1), 4::bigint,
	'nor leaves its base version behind');

-- validation is the same as patch's
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET roast_level = 9 WHERE user_id = %L', :u1))->>'message',
	'invalid value for field "roasting.roast_level"', 'out-of-range level names the field');
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET shield_level = ''max'' WHERE user_id = %L', :u1))->>'sqlstate',
	'22023', 'unknown shield level');
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET email = ''no-at-sign'' WHERE user_id = %L', :u1))->>'sqlstate',
	'22023', 'an e-mail without @');

-- columns the trigger maintains
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET field_log = ''{}'' WHERE user_id = %L', :u1))->>'sqlstate',
	'428C9', 'field_log cannot be set');
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET user_id = %L WHERE user_id = %L', :u2, :u1))->>'sqlstate',
	'428C9', 'user_id cannot change');
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET created_at = now() - interval ''1 day'' WHERE user_id = %L', :u1))->>'sqlstate',
	'428C9', 'created_at cannot change');

-- the persona table takes ciphertext only: plain bytes written directly are refused
SELECT is(pg_temp.outcome(format('INSERT INTO roastr_state.persona (user_id, identity) VALUES (%L, convert_to(''me'', ''UTF8''))', :u1))->>'sqlstate',
	'22023', 'plain persona bytes cannot be inserted directly');

-- several rows in one statement: one version each
SELECT roastr_state.ensure_user(:u2, 'b@example.com') IS NOT NULL;
UPDATE roastr_state.state SET roast_level = 1;
SELECT is((SELECT string_agg(version::text, ',' ORDER BY user_id) FROM roastr_state.state), '5,2',
	'a multi-row UPDATE versions each user');

-- a row that brings its change log (pg_dump's COPY) keeps it, if consistent
-- (field_log: (version, time) pairs in slot order; slot 1 is roasting.enabled,
-- slot 2 roasting.roast_level; times in microseconds since 2000-01-01 UTC)
INSERT INTO roastr_state.state (user_id, email, version, field_log)
	SELECT :u3, 'c@example.com', 7, array_agg(x ORDER BY s, k)
	FROM generate_series(0, 19) s,
	     LATERAL (VALUES (1, CASE s WHEN 1 THEN 7 WHEN 2 THEN 2 ELSE 1 END),
	                     (2, (extract(epoch FROM now()) * 1000000)::bigint - 946684800000000)) p(k, x);
SELECT is(jsonb_path_query_array(roastr_state.state_sync(:u3, 1), '$.changes[*].field'),
	'["roasting.roast_level", "roasting.enabled"]'::jsonb, 'a restored row keeps its change log');
SELECT is((roastr_state.state_full(:u3)->'_meta'->>'version')::int, 7, 'and its version');
SELECT is((roastr_state.state_sync(:u3, 1)->'changes'->0->>'updated_at')::timestamptz, now(), 'and its times');
SELECT is(pg_temp.outcome($$INSERT INTO roastr_state.state (user_id, email, version, field_log)
	VALUES ('a4444444-4444-4444-8444-444444444444', 'd@example.com', 2, '{1,0,9,0}')$$)->>'sqlstate',
	'22023', 'a restored row whose log is ahead of its version is refused');
SELECT is(pg_temp.outcome($$INSERT INTO roastr_state.state (user_id, email, version, field_log)
	VALUES ('a4444444-4444-4444-8444-444444444444', 'd@example.com', 2, '{1,0,1}')$$)->>'sqlstate',
	'22023', 'a restored row whose log is not pairs is refused');
SELECT is(pg_temp.outcome($$INSERT INTO roastr_state.state (user_id, email, version, field_log)
	VALUES ('a4444444-4444-4444-8444-444444444444', 'd@example.com', 2, '{{1,0},{1,0}}')$$)->>'sqlstate',
	'22023', 'nor one of two dimensions');

-- inserting an existing plan updates it (restoring a dump)
INSERT INTO roastr_state.plans VALUES ('pro', 1200, 7);
SELECT is((SELECT monthly_roasts_limit || '/' || trial_days FROM roastr_state.plans WHERE plan = 'pro'), '1200/7',
	'inserting an existing plan updates it');

SELECT * FROM finish();
ROLLBACK;
