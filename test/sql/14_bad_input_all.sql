-- Bad input to every function that 07_bad_input does not cover (07 has
-- ensure_user, patch, state_full and state_sync): NULLs one at a time,
-- empty strings, wrong types, boundaries +- 1, huge values, invalid UTF-8,
-- unknown ids, another user's ids, callers without the right.  Each case
-- runs in a subtransaction and must give one specific SQLSTATE (never
-- XX000), or, where the README documents an answer instead of an error,
-- that answer; afterwards every table of the extension is exactly as it
-- was, row for row (ctid included: not even rewritten).
\set ECHO none
\i test/helpers/common.psql
\set u4 '''a4444444-4444-4444-8444-444444444444'''
\set u5 '''a5555555-5555-4555-8555-555555555555'''
-- a string of 1 MB, and invalid UTF-8 (a lone 0xff byte) as text
\set mb 'repeat(''x'', 1024 * 1024)'
\set bad_utf8 'convert_from(''\\x61ff62'', ''UTF8'')'

BEGIN;

-- Supabase's roles (the test cluster has them), then reinstall so the
-- install script grants to them.
\i test/helpers/supabase_roles.psql
DROP EXTENSION roastr_state;
CREATE EXTENSION roastr_state;
CREATE EXTENSION pgcrypto;
GRANT USAGE ON SCHEMA public TO authenticated, service_role, anon;

-- ===========================================================================
-- Fixture: every table of the extension holds rows, so that a change to
-- any of them would show.
--   u1 ann  free plan; owns acme; persona text (data key); a mutation; a
--           consumption with key k1
--   u2 bob  pro through a Polar webhook (webhook_events,
--           polar_subscriptions); owns beta
--   u3 cy   member of acme
--   u4 dee  plus; admin of beta; a usage count near the int limit
--   u5 eve  deleted (deleted_users)
-- ===========================================================================
SELECT roastr_state.ensure_user(:u1, 'ann@example.com', 'Ann') IS NOT NULL AS a,
       roastr_state.ensure_user(:u2, 'bob@example.com') IS NOT NULL AS b,
       roastr_state.ensure_user(:u3, 'cy@example.com') IS NOT NULL AS c,
       roastr_state.ensure_user(:u4, 'dee@example.com') IS NOT NULL AS d,
       roastr_state.ensure_user(:u5, 'eve@example.com') IS NOT NULL AS e \gset
SELECT roastr_state.delete_user(:u5) AS deleted \gset
SELECT roastr_state.patch(:u1, '{"persona.identity": "I roast gently"}', NULL,
	'c1400000-0000-4000-8000-000000000001') IS NOT NULL AS p \gset
SELECT roastr_state.consume_roasts(:u1, 1, 'k1') IS NOT NULL AS k \gset
SELECT roastr_state.patch(:u4, '{"subscription.plan": "plus"}') IS NOT NULL AS p \gset
UPDATE roastr_state.state SET monthly_roasts_used = 2147483647 - 100000 + 1 WHERE user_id = :u4;
SELECT roastr_state.create_organization(:u1, 'Acme', 'acme') AS acme \gset
SELECT roastr_state.create_organization(:u2, 'Beta', 'beta') AS beta \gset
SELECT roastr_state.add_member(:'acme', :u3, 'member') AS x, roastr_state.add_member(:'beta', :u4, 'admin') AS y \gset
SELECT roastr_state.set_product_plan('prod_pro', 'pro') AS x \gset

-- The webhook secret, in a file of mode 0600 in the data directory (and
-- files that are refused: a copy readable by others, a malformed secret,
-- one too long).
DO $$
DECLARE
	dir text := current_setting('data_directory');
BEGIN
	EXECUTE format('COPY (SELECT %L) TO PROGRAM %L', 'whsec_dGVzdDE0LXNlY3JldC10ZXN0MTQtc2VjcmV0LTEyMzQ=',
		format('umask 077 && rm -f %s/roastr_test14_webhook && cat > %s/roastr_test14_webhook', dir, dir));
	EXECUTE format('COPY (SELECT %L) TO %L', 'whsec_dGVzdDE0LXNlY3JldC10ZXN0MTQtc2VjcmV0LTEyMzQ=',
		dir || '/roastr_test14_webhook_open');
	EXECUTE format('COPY (SELECT %L) TO PROGRAM %L', 'whsec_!!not base64!!',
		format('umask 077 && rm -f %s/roastr_test14_webhook_bad && cat > %s/roastr_test14_webhook_bad', dir, dir));
	EXECUTE format('COPY (SELECT %L) TO PROGRAM %L', repeat('s', 4096),
		format('umask 077 && rm -f %s/roastr_test14_webhook_big && cat > %s/roastr_test14_webhook_big', dir, dir));
END
$$;
SELECT set_config('roastr_state.webhook_secret_file',
	current_setting('data_directory') || '/roastr_test14_webhook', true) IS NOT NULL AS x \gset
-- Standard Webhooks: the timestamp now + shift, read from the clock when
-- the case runs (so that -301 s and +302 s stay outside the 5-minute
-- tolerance however long the test takes), and the signature of
-- id.timestamp.body under the secret.
CREATE FUNCTION pg_temp.ts(shift int) RETURNS text LANGUAGE sql AS
$$ SELECT (floor(extract(epoch FROM clock_timestamp()))::bigint + shift)::text $$;
CREATE FUNCTION pg_temp.sig(id text, ts text, body text) RETURNS text LANGUAGE sql AS
$$ SELECT 'v1,' || encode(public.hmac(convert_to(id || '.' || ts || '.' || body, 'UTF8'),
	decode('dGVzdDE0LXNlY3JldC10ZXN0MTQtc2VjcmV0LTEyMzQ=', 'base64'), 'sha256'), 'base64') $$;
-- a Polar subscription event for u2 on prod_pro
SELECT jsonb_build_object('type', 'subscription.created', 'data', jsonb_build_object(
	'id', 'sub_14', 'status', 'active', 'modified_at', '2026-01-01T00:00:01Z',
	'product_id', 'prod_pro', 'customer_id', 'cus_14',
	'customer', jsonb_build_object('id', 'cus_14', 'external_id', :u2)))::text AS event \gset
SELECT roastr_state.apply_polar_webhook('wh_14', pg_temp.ts(0), pg_temp.sig('wh_14', pg_temp.ts(0), :'event'), :'event')->>'outcome'
	AS outcome \gset

-- Every table of the extension (found in the catalog, so a new table is
-- covered too), row by row with its ctid, as the superuser (service_role
-- may not read persona).
CREATE FUNCTION pg_temp.snapshot() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	part jsonb;
	res jsonb := '{}';
BEGIN
	FOR r IN SELECT c.oid::regclass AS t FROM pg_class c
	          WHERE c.relnamespace = 'roastr_state'::regnamespace AND c.relkind IN ('r', 'p')
	          ORDER BY c.relname LOOP
		EXECUTE format('SELECT jsonb_build_object(''rows'', count(*), ''md5'', '
		               'md5(coalesce(string_agg(x.ctid::text || '' '' || x::text, E''\n'' ORDER BY x.ctid), '''')))'
		               ' FROM %s x', r.t)
			INTO part;
		res := res || jsonb_build_object(r.t::text, part);
	END LOOP;
	RETURN res;
END
$$;

-- Run cmd as who: 'super' (the superuser running the test), 'service'
-- (service_role, no claims), 'anon' (anon with u1's claims), 'noclaims'
-- (authenticated without claims), or a user id (authenticated with that
-- user's claims, as PostgREST sets them); with ' read-only' appended, in
-- a read-only (sub)transaction, undone afterwards.  Returns the SQLSTATE,
-- or '00000: ' and the result when it succeeds.
CREATE FUNCTION pg_temp.run(who text, cmd text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	ro constant boolean := who LIKE '% read-only';
	res text;
BEGIN
	CASE split_part(who, ' ', 1)
		WHEN 'super' THEN NULL;
		WHEN 'service' THEN SET LOCAL ROLE service_role;
		WHEN 'anon' THEN
			PERFORM set_config('request.jwt.claims',
				'{"sub": "a1111111-1111-4111-8111-111111111111", "role": "anon"}', true);
			SET LOCAL ROLE anon;
		WHEN 'noclaims' THEN SET LOCAL ROLE authenticated;
		ELSE
			PERFORM set_config('request.jwt.claims',
				jsonb_build_object('sub', split_part(who, ' ', 1)::uuid, 'role', 'authenticated')::text, true);
			SET LOCAL ROLE authenticated;
	END CASE;
	BEGIN
		IF ro THEN
			PERFORM set_config('transaction_read_only', 'on', true);
		END IF;
		EXECUTE cmd INTO res;
		res := '00000: ' || coalesce(res, 'NULL');
		IF ro THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'pg_temp.run: undo read-only';
		END IF;
	EXCEPTION WHEN OTHERS THEN
		IF SQLERRM IS DISTINCT FROM 'pg_temp.run: undo read-only' THEN
			GET STACKED DIAGNOSTICS res = RETURNED_SQLSTATE;
		END IF;
	END;
	RESET ROLE;
	PERFORM set_config('request.jwt.claims', '', true);
	RETURN res;
END
$$;

-- ===========================================================================
-- The cases.  label starts with the function's name; code is the SQLSTATE,
-- or '00000: <result>' where the README documents an answer, not an error.
-- ===========================================================================
CREATE TEMP TABLE cases (id serial, label text, who text, sql text, code text);
INSERT INTO cases (label, who, sql, code) VALUES
	-- consume_roasts(user_id uuid, n int DEFAULT 1, idempotency_key text DEFAULT NULL)
	('consume_roasts: NULL user (service)', 'service', 'SELECT roastr_state.consume_roasts(NULL, 1)', '22023'),
	('consume_roasts: NULL n', 'service', format('SELECT roastr_state.consume_roasts(%L, NULL)', :u1), '22023'),
	('consume_roasts: NULL key is no key (documented default): too many is refused', 'service',
		format('SELECT roastr_state.consume_roasts(%L, 100, NULL)->>''allowed''', :u1), '00000: false'),
	('consume_roasts: n = 0', 'service', format('SELECT roastr_state.consume_roasts(%L, 0)', :u1), '22023'),
	('consume_roasts: n = -1', 'service', format('SELECT roastr_state.consume_roasts(%L, -1)', :u1), '22023'),
	('consume_roasts: n = 100001 (max + 1)', 'service', format('SELECT roastr_state.consume_roasts(%L, 100001)', :u1), '22023'),
	('consume_roasts: n = 100000 (max) over the limit: refused, not an error', 'service',
		format('SELECT roastr_state.consume_roasts(%L, 100000)->>''allowed''', :u1), '00000: false'),
	('consume_roasts: n = remaining + 1: refused, nothing consumed', 'service',
		format('SELECT roastr_state.consume_roasts(%L, 100)->>''allowed''', :u1), '00000: false'),
	('consume_roasts: n = 2147483647', 'service', format('SELECT roastr_state.consume_roasts(%L, 2147483647)', :u1), '22023'),
	('consume_roasts: n = -2147483648', 'service', format('SELECT roastr_state.consume_roasts(%L, -2147483648)', :u1), '22023'),
	('consume_roasts: n = 2147483648 (int overflow)', 'service', format('SELECT roastr_state.consume_roasts(%L, ''2147483648'')', :u1), '22003'),
	('consume_roasts: n as a bigint', 'service', format('SELECT roastr_state.consume_roasts(%L, 2147483648)', :u1), '42883'),
	('consume_roasts: n = 1.5', 'service', format('SELECT roastr_state.consume_roasts(%L, 1.5)', :u1), '42883'),
	('consume_roasts: n not a number', 'service', format('SELECT roastr_state.consume_roasts(%L, ''x'')', :u1), '22P02'),
	('consume_roasts: n empty', 'service', format('SELECT roastr_state.consume_roasts(%L, '''')', :u1), '22P02'),
	('consume_roasts: a count that would pass the int range (plus plan)', 'service',
		format('SELECT roastr_state.consume_roasts(%L, 100000)', :u4), '22003'),
	('consume_roasts: user not a uuid', 'service', 'SELECT roastr_state.consume_roasts(''nope'', 1)', '22P02'),
	('consume_roasts: user empty', 'service', 'SELECT roastr_state.consume_roasts('''', 1)', '22P02'),
	('consume_roasts: empty key', 'service', format('SELECT roastr_state.consume_roasts(%L, 1, '''')', :u1), '22023'),
	('consume_roasts: key of 201 characters', 'service', format('SELECT roastr_state.consume_roasts(%L, 1, %L)', :u1, repeat('k', 201)), '22023'),
	('consume_roasts: key of 201 two-byte characters', 'service', format('SELECT roastr_state.consume_roasts(%L, 1, %L)', :u1, repeat('é', 201)), '22023'),
	('consume_roasts: key of 1 MB', 'service', format('SELECT roastr_state.consume_roasts(%L, 1, %s)', :u1, :'mb'), '22023'),
	('consume_roasts: key with a newline', 'service', format('SELECT roastr_state.consume_roasts(%L, 1, %L)', :u1, E'a\nb'), '22023'),
	('consume_roasts: key with DEL', 'service', format('SELECT roastr_state.consume_roasts(%L, 1, %L)', :u1, E'a\x7fb'), '22023'),
	('consume_roasts: key with invalid UTF-8', 'service', format('SELECT roastr_state.consume_roasts(%L, 1, %s)', :u1, :'bad_utf8'), '22021'),
	('consume_roasts: key as a number', 'service', format('SELECT roastr_state.consume_roasts(%L, 1, 7)', :u1), '42883'),
	('consume_roasts: a used key with another n', 'service', format('SELECT roastr_state.consume_roasts(%L, 2, ''k1'')', :u1), '22023'),
	('consume_roasts: unknown user', 'service', format('SELECT roastr_state.consume_roasts(%L, 1)', :nobody), 'PT404'),
	('consume_roasts: unknown user with a key', 'service', format('SELECT roastr_state.consume_roasts(%L, 1, ''k1'')', :nobody), 'PT404'),
	('consume_roasts: deleted user', 'service', format('SELECT roastr_state.consume_roasts(%L, 1)', :u5), 'PT404'),
	('consume_roasts: another user''s id', :u1, format('SELECT roastr_state.consume_roasts(%L, 1)', :u2), '42501'),
	('consume_roasts: another user''s key', :u1, format('SELECT roastr_state.consume_roasts(%L, 1, ''k1'')', :u2), '42501'),
	('consume_roasts: an unknown id, as a user', :u1, format('SELECT roastr_state.consume_roasts(%L, 1)', :nobody), '42501'),
	('consume_roasts: n = 0 on their own', :u1, 'SELECT roastr_state.consume_roasts(NULL, 0)', '22023'),
	('consume_roasts: n = remaining + 1 on their own', :u1, 'SELECT roastr_state.consume_roasts(NULL, 100)->>''allowed''', '00000: false'),
	('consume_roasts: no claims', 'noclaims', 'SELECT roastr_state.consume_roasts(NULL, 1)', '42501'),
	('consume_roasts: anon', 'anon', 'SELECT roastr_state.consume_roasts(NULL, 1)', '42501'),

	-- apply_polar_webhook(webhook_id text, webhook_timestamp text, webhook_signature text, body text)
	('apply_polar_webhook: NULL id', 'service', 'SELECT roastr_state.apply_polar_webhook(NULL, pg_temp.ts(0), ''v1,x'', ''{}'')', 'PT401'),
	('apply_polar_webhook: NULL timestamp', 'service', 'SELECT roastr_state.apply_polar_webhook(''w'', NULL, ''v1,x'', ''{}'')', 'PT401'),
	('apply_polar_webhook: NULL signature', 'service', 'SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), NULL, ''{}'')', 'PT401'),
	('apply_polar_webhook: NULL body', 'service', 'SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), ''v1,x'', NULL)', '22023'),
	('apply_polar_webhook: empty id, signed', 'service',
		'SELECT roastr_state.apply_polar_webhook('''', t, pg_temp.sig('''', t, ''{}''), ''{}'') FROM pg_temp.ts(0) t', 'PT401'),
	('apply_polar_webhook: empty timestamp', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', '''', pg_temp.sig(''w'', '''', ''{}''), ''{}'')', 'PT401'),
	('apply_polar_webhook: empty signature', 'service', 'SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), '''', ''{}'')', 'PT401'),
	('apply_polar_webhook: empty body, unsigned', 'service', 'SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), ''v1,x'', '''')', 'PT401'),
	('apply_polar_webhook: id of 256 characters (max + 1), signed', 'service',
		format('SELECT roastr_state.apply_polar_webhook(%1$L, t, pg_temp.sig(%1$L, t, ''{}''), ''{}'') FROM pg_temp.ts(0) t', repeat('w', 256)), 'PT401'),
	('apply_polar_webhook: id of 1 MB', 'service', format('SELECT roastr_state.apply_polar_webhook(%s, pg_temp.ts(0), ''v1,x'', ''{}'')', :'mb'), 'PT401'),
	('apply_polar_webhook: id with a control character, signed', 'service',
		format('SELECT roastr_state.apply_polar_webhook(%1$L, t, pg_temp.sig(%1$L, t, ''{}''), ''{}'') FROM pg_temp.ts(0) t', E'w\x01'), 'PT401'),
	('apply_polar_webhook: id with invalid UTF-8', 'service', format('SELECT roastr_state.apply_polar_webhook(%s, pg_temp.ts(0), ''v1,x'', ''{}'')', :'bad_utf8'), '22021'),
	('apply_polar_webhook: timestamp 301 s old (tolerance + 1), signed', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', t, pg_temp.sig(''w'', t, ''{}''), ''{}'') FROM pg_temp.ts(-301) t', 'PT401'),
	('apply_polar_webhook: timestamp 302 s ahead (tolerance + 1, + 1 for the clock), signed', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', t, pg_temp.sig(''w'', t, ''{}''), ''{}'') FROM pg_temp.ts(302) t', 'PT401'),
	('apply_polar_webhook: timestamp not a number', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', ''soon'', pg_temp.sig(''w'', ''soon'', ''{}''), ''{}'')', 'PT401'),
	('apply_polar_webhook: negative timestamp', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', ''-1'', pg_temp.sig(''w'', ''-1'', ''{}''), ''{}'')', 'PT401'),
	('apply_polar_webhook: fractional timestamp', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', t || ''.5'', pg_temp.sig(''w'', t || ''.5'', ''{}''), ''{}'') FROM pg_temp.ts(0) t', 'PT401'),
	('apply_polar_webhook: timestamp 0', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', ''0'', pg_temp.sig(''w'', ''0'', ''{}''), ''{}'')', 'PT401'),
	('apply_polar_webhook: timestamp of 18 digits', 'service',
		format('SELECT roastr_state.apply_polar_webhook(''w'', %1$L, pg_temp.sig(''w'', %1$L, ''{}''), ''{}'')', repeat('9', 18)), 'PT401'),
	('apply_polar_webhook: timestamp of 19 digits (int64 overflow)', 'service',
		format('SELECT roastr_state.apply_polar_webhook(''w'', %1$L, pg_temp.sig(''w'', %1$L, ''{}''), ''{}'')', repeat('9', 19)), 'PT401'),
	('apply_polar_webhook: timestamp of 1 MB', 'service', format('SELECT roastr_state.apply_polar_webhook(''w'', %s, ''v1,x'', ''{}'')', :'mb'), 'PT401'),
	('apply_polar_webhook: timestamp with invalid UTF-8', 'service', format('SELECT roastr_state.apply_polar_webhook(''w'', %s, ''v1,x'', ''{}'')', :'bad_utf8'), '22021'),
	('apply_polar_webhook: signature "v1," alone', 'service', 'SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), ''v1,'', ''{}'')', 'PT401'),
	('apply_polar_webhook: the right signature as v2', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', t, replace(pg_temp.sig(''w'', t, ''{}''), ''v1,'', ''v2,''), ''{}'') FROM pg_temp.ts(0) t', 'PT401'),
	('apply_polar_webhook: the signature of another body', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', t, pg_temp.sig(''w'', t, ''{}''), ''{"x": 1}'') FROM pg_temp.ts(0) t', 'PT401'),
	('apply_polar_webhook: the signature of another id', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w2'', t, pg_temp.sig(''w'', t, ''{}''), ''{}'') FROM pg_temp.ts(0) t', 'PT401'),
	('apply_polar_webhook: 17 signatures (max + 1), the last one right', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', t, repeat(''v1,AAAA '', 16) || pg_temp.sig(''w'', t, ''{}''), ''{}'') FROM pg_temp.ts(0) t', 'PT401'),
	('apply_polar_webhook: signature header of 4097 bytes (max + 1), with the right one', 'service',
		'SELECT roastr_state.apply_polar_webhook(''w'', t, rpad(pg_temp.sig(''w'', t, ''{}''), 4097, '' ''), ''{}'') FROM pg_temp.ts(0) t', 'PT401'),
	('apply_polar_webhook: signature of 1 MB', 'service', format('SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), %s, ''{}'')', :'mb'), 'PT401'),
	('apply_polar_webhook: signature with invalid UTF-8', 'service', format('SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), %s, ''{}'')', :'bad_utf8'), '22021'),
	('apply_polar_webhook: body of 1 MB + 1 byte', 'service', format('SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), ''v1,x'', %s || ''x'')', :'mb'), '54000'),
	('apply_polar_webhook: body of exactly 1 MB, unsigned', 'service', format('SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), ''v1,x'', %s)', :'mb'), 'PT401'),
	('apply_polar_webhook: body with invalid UTF-8', 'service', format('SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), ''v1,x'', %s)', :'bad_utf8'), '22021'),
	('apply_polar_webhook: body as jsonb', 'service', 'SELECT roastr_state.apply_polar_webhook(''w'', pg_temp.ts(0), ''v1,x'', ''{}''::jsonb)', '42883'),
	('apply_polar_webhook: a replayed delivery with a stale timestamp', 'service',
		format('SELECT roastr_state.apply_polar_webhook(''wh_14'', t, pg_temp.sig(''wh_14'', t, %1$L), %1$L) FROM pg_temp.ts(-400) t', :'event'), 'PT401'),
	('apply_polar_webhook: secret file readable by others', 'super',
		$$WITH s AS MATERIALIZED (SELECT set_config('roastr_state.webhook_secret_file', current_setting('data_directory') || '/roastr_test14_webhook_open', true))
		  SELECT roastr_state.apply_polar_webhook('w', '1', 'v1,x', '{}') FROM s$$, 'F0000'),
	('apply_polar_webhook: secret file missing', 'super',
		$$WITH s AS MATERIALIZED (SELECT set_config('roastr_state.webhook_secret_file', current_setting('data_directory') || '/roastr_test14_missing', true))
		  SELECT roastr_state.apply_polar_webhook('w', '1', 'v1,x', '{}') FROM s$$, '58P01'),
	('apply_polar_webhook: secret file malformed', 'super',
		$$WITH s AS MATERIALIZED (SELECT set_config('roastr_state.webhook_secret_file', current_setting('data_directory') || '/roastr_test14_webhook_bad', true))
		  SELECT roastr_state.apply_polar_webhook('w', '1', 'v1,x', '{}') FROM s$$, 'F0000'),
	('apply_polar_webhook: secret file of 4 kB', 'super',
		$$WITH s AS MATERIALIZED (SELECT set_config('roastr_state.webhook_secret_file', current_setting('data_directory') || '/roastr_test14_webhook_big', true))
		  SELECT roastr_state.apply_polar_webhook('w', '1', 'v1,x', '{}') FROM s$$, 'F0000'),
	('apply_polar_webhook: secret file is a directory', 'super',
		$$WITH s AS MATERIALIZED (SELECT set_config('roastr_state.webhook_secret_file', current_setting('data_directory'), true))
		  SELECT roastr_state.apply_polar_webhook('w', '1', 'v1,x', '{}') FROM s$$, 'F0000'),
	('apply_polar_webhook: secret file not set', 'super',
		$$WITH s AS MATERIALIZED (SELECT set_config('roastr_state.webhook_secret_file', '', true))
		  SELECT roastr_state.apply_polar_webhook('w', '1', 'v1,x', '{}') FROM s$$, '55000'),
	('apply_polar_webhook: as a user', :u1, 'SELECT roastr_state.apply_polar_webhook(''w'', t, pg_temp.sig(''w'', t, ''{}''), ''{}'') FROM pg_temp.ts(0) t', '42501'),
	('apply_polar_webhook: anon', 'anon', 'SELECT roastr_state.apply_polar_webhook(''w'', ''1'', ''v1,x'', ''{}'')', '42501'),

	-- set_product_plan(product_id text, plan text)
	('set_product_plan: NULL product', 'service', 'SELECT roastr_state.set_product_plan(NULL, ''pro'')', '22023'),
	('set_product_plan: NULL plan for an unknown product removes nothing', 'service',
		'SELECT roastr_state.set_product_plan(''prod_unknown'', NULL)', '00000: '),
	('set_product_plan: both NULL', 'service', 'SELECT roastr_state.set_product_plan(NULL, NULL)', '22023'),
	('set_product_plan: empty product', 'service', 'SELECT roastr_state.set_product_plan('''', ''pro'')', '22023'),
	('set_product_plan: product of 201 characters', 'service', format('SELECT roastr_state.set_product_plan(%L, ''pro'')', repeat('p', 201)), '22023'),
	('set_product_plan: product of 1 MB', 'service', format('SELECT roastr_state.set_product_plan(%s, ''pro'')', :'mb'), '22023'),
	('set_product_plan: product with a newline', 'service', format('SELECT roastr_state.set_product_plan(%L, ''pro'')', E'p\nq'), '22023'),
	('set_product_plan: product with DEL', 'service', format('SELECT roastr_state.set_product_plan(%L, ''pro'')', E'p\x7fq'), '22023'),
	('set_product_plan: product of 201 two-byte characters', 'service', format('SELECT roastr_state.set_product_plan(%L, ''pro'')', repeat('é', 201)), '22023'),
	('set_product_plan: product with invalid UTF-8', 'service', format('SELECT roastr_state.set_product_plan(%s, ''pro'')', :'bad_utf8'), '22021'),
	('set_product_plan: product as a number', 'service', 'SELECT roastr_state.set_product_plan(7, ''pro'')', '42883'),
	('set_product_plan: empty plan', 'service', 'SELECT roastr_state.set_product_plan(''prod_pro'', '''')', '22023'),
	('set_product_plan: plan free', 'service', 'SELECT roastr_state.set_product_plan(''prod_pro'', ''free'')', '22023'),
	('set_product_plan: unknown plan', 'service', 'SELECT roastr_state.set_product_plan(''prod_pro'', ''gold'')', '22023'),
	('set_product_plan: plan in capitals', 'service', 'SELECT roastr_state.set_product_plan(''prod_pro'', ''PRO'')', '22023'),
	('set_product_plan: plan with a space', 'service', 'SELECT roastr_state.set_product_plan(''prod_pro'', ''pro '')', '22023'),
	('set_product_plan: plan of 1 MB', 'service', format('SELECT roastr_state.set_product_plan(''prod_pro'', %s)', :'mb'), '22023'),
	('set_product_plan: plan with invalid UTF-8', 'service', format('SELECT roastr_state.set_product_plan(''prod_pro'', %s)', :'bad_utf8'), '22021'),
	('set_product_plan: as a user', :u1, 'SELECT roastr_state.set_product_plan(''prod_pro'', ''plus'')', '42501'),
	('set_product_plan: removing a mapping, as a user', :u1, 'SELECT roastr_state.set_product_plan(''prod_pro'', NULL)', '42501'),

	-- mark_embeddings(user_id uuid, model text, generated_at timestamptz)
	('mark_embeddings: NULL user (service)', 'service', 'SELECT roastr_state.mark_embeddings(NULL, ''m'', now())', '22023'),
	('mark_embeddings: NULL model', 'service', format('SELECT roastr_state.mark_embeddings(%L, NULL, now())', :u1), '22023'),
	('mark_embeddings: NULL generated_at', 'service', format('SELECT roastr_state.mark_embeddings(%L, ''m'', NULL)', :u1), '22023'),
	('mark_embeddings: NULL model and generated_at', 'service', format('SELECT roastr_state.mark_embeddings(%L, NULL, NULL)', :u1), '22023'),
	('mark_embeddings: empty model', 'service', format('SELECT roastr_state.mark_embeddings(%L, '''', now())', :u1), '22023'),
	('mark_embeddings: model of 201 characters', 'service', format('SELECT roastr_state.mark_embeddings(%L, %L, now())', :u1, repeat('m', 201)), '22023'),
	('mark_embeddings: model of 1 MB', 'service', format('SELECT roastr_state.mark_embeddings(%L, %s, now())', :u1, :'mb'), '22023'),
	('mark_embeddings: model with a newline', 'service', format('SELECT roastr_state.mark_embeddings(%L, %L, now())', :u1, E'm\n'), '22023'),
	('mark_embeddings: model with invalid UTF-8', 'service', format('SELECT roastr_state.mark_embeddings(%L, %s, now())', :u1, :'bad_utf8'), '22021'),
	('mark_embeddings: generated_at infinity', 'service', format('SELECT roastr_state.mark_embeddings(%L, ''m'', ''infinity'')', :u1), '22023'),
	('mark_embeddings: generated_at -infinity', 'service', format('SELECT roastr_state.mark_embeddings(%L, ''m'', ''-infinity'')', :u1), '22023'),
	('mark_embeddings: generated_at not a time', 'service', format('SELECT roastr_state.mark_embeddings(%L, ''m'', ''soon'')', :u1), '22007'),
	('mark_embeddings: generated_at out of range', 'service', format('SELECT roastr_state.mark_embeddings(%L, ''m'', ''300000-01-01'')', :u1), '22008'),
	('mark_embeddings: generated_at as a number', 'service', format('SELECT roastr_state.mark_embeddings(%L, ''m'', 1700000000)', :u1), '42883'),
	('mark_embeddings: user not a uuid', 'service', 'SELECT roastr_state.mark_embeddings(''nope'', ''m'', now())', '22P02'),
	('mark_embeddings: unknown user', 'service', format('SELECT roastr_state.mark_embeddings(%L, ''m'', now())', :nobody), 'PT404'),
	('mark_embeddings: deleted user', 'service', format('SELECT roastr_state.mark_embeddings(%L, ''m'', now())', :u5), 'PT404'),
	('mark_embeddings: as the user themselves', :u1, format('SELECT roastr_state.mark_embeddings(%L, ''m'', now())', :u1), '42501'),
	('mark_embeddings: another user''s id', :u1, format('SELECT roastr_state.mark_embeddings(%L, ''m'', now())', :u2), '42501'),

	-- delete_user(user_id uuid)
	('delete_user: NULL user (service)', 'service', 'SELECT roastr_state.delete_user(NULL)', '22023'),
	('delete_user: not a uuid', 'service', 'SELECT roastr_state.delete_user(''nope'')', '22P02'),
	('delete_user: empty', 'service', 'SELECT roastr_state.delete_user('''')', '22P02'),
	('delete_user: a uuid of 1 MB', 'service', format('SELECT roastr_state.delete_user((%s)::uuid)', :'mb'), '22P02'),
	('delete_user: invalid UTF-8', 'service', format('SELECT roastr_state.delete_user(%s::uuid)', :'bad_utf8'), '22021'),
	('delete_user: unknown user is false (documented)', 'service', format('SELECT roastr_state.delete_user(%L)', :nobody), '00000: false'),
	('delete_user: a deleted user again is false', 'service', format('SELECT roastr_state.delete_user(%L)', :u5), '00000: false'),
	('delete_user: the owner of an organization with members', 'service', format('SELECT roastr_state.delete_user(%L)', :u1), '23503'),
	('delete_user: another user''s id', :u1, format('SELECT roastr_state.delete_user(%L)', :u2), '42501'),
	('delete_user: an unknown id, as a user', :u1, format('SELECT roastr_state.delete_user(%L)', :nobody), '42501'),
	('delete_user: themselves, owning an organization with members', :u1, 'SELECT roastr_state.delete_user(NULL)', '23503'),
	('delete_user: no claims', 'noclaims', 'SELECT roastr_state.delete_user(NULL)', '42501'),
	('delete_user: anon', 'anon', 'SELECT roastr_state.delete_user(NULL)', '42501'),

	-- rotate_master_key(batch_size int DEFAULT 1000)
	('rotate_master_key: NULL batch', 'service', 'SELECT roastr_state.rotate_master_key(NULL)', '22023'),
	('rotate_master_key: batch 0', 'service', 'SELECT roastr_state.rotate_master_key(0)', '22023'),
	('rotate_master_key: batch -1', 'service', 'SELECT roastr_state.rotate_master_key(-1)', '22023'),
	('rotate_master_key: batch 100001 (max + 1)', 'service', 'SELECT roastr_state.rotate_master_key(100001)', '22023'),
	('rotate_master_key: batch 2147483647', 'service', 'SELECT roastr_state.rotate_master_key(2147483647)', '22023'),
	('rotate_master_key: batch -2147483648', 'service', 'SELECT roastr_state.rotate_master_key(-2147483648)', '22023'),
	('rotate_master_key: batch 2147483648 (int overflow)', 'service', 'SELECT roastr_state.rotate_master_key(''2147483648'')', '22003'),
	('rotate_master_key: batch not a number', 'service', 'SELECT roastr_state.rotate_master_key(''x'')', '22P02'),
	('rotate_master_key: batch 1.5', 'service', 'SELECT roastr_state.rotate_master_key(1.5)', '42883'),
	('rotate_master_key: as a user', :u1, 'SELECT roastr_state.rotate_master_key()', '42501'),
	('rotate_master_key: anon', 'anon', 'SELECT roastr_state.rotate_master_key()', '42501'),

	-- authorize_channel(channel text): anything malformed is false (documented)
	('authorize_channel: NULL', :u1, 'SELECT roastr_state.authorize_channel(NULL)', '00000: false'),
	('authorize_channel: NULL, as the service', 'service', 'SELECT roastr_state.authorize_channel(NULL)', '00000: false'),
	('authorize_channel: empty', :u1, 'SELECT roastr_state.authorize_channel('''')', '00000: false'),
	('authorize_channel: another user''s channel', :u1, format('SELECT roastr_state.authorize_channel(%L)', 'user:' || :u2), '00000: false'),
	('authorize_channel: an unknown user''s channel', :u1, format('SELECT roastr_state.authorize_channel(%L)', 'user:' || :nobody), '00000: false'),
	('authorize_channel: their own id with one character more', :u1, format('SELECT roastr_state.authorize_channel(%L)', 'user:' || :u1 || '0'), '00000: false'),
	('authorize_channel: their own id with one character less', :u1, format('SELECT roastr_state.authorize_channel(%L)', 'user:' || left(:u1, 35)), '00000: false'),
	('authorize_channel: 1 MB', :u1, format('SELECT roastr_state.authorize_channel(%s)', :'mb'), '00000: false'),
	('authorize_channel: their own channel then 1 MB', :u1, format('SELECT roastr_state.authorize_channel(%L || %s)', 'user:' || :u1, :'mb'), '00000: false'),
	('authorize_channel: a malformed user channel, as the service', 'service', 'SELECT roastr_state.authorize_channel(''user:nope'')', '00000: false'),
	('authorize_channel: invalid UTF-8', :u1, format('SELECT roastr_state.authorize_channel(%s)', :'bad_utf8'), '22021'),
	('authorize_channel: a number', :u1, 'SELECT roastr_state.authorize_channel(7)', '42883'),
	('authorize_channel: no claims', 'noclaims', 'SELECT roastr_state.authorize_channel(''roastr_state'')', '00000: false'),
	('authorize_channel: anon', 'anon', format('SELECT roastr_state.authorize_channel(%L)', 'user:' || :u1), '42501'),

	-- notify_stats(), caller_is_service(): no arguments to get wrong
	('notify_stats: as a user', :u1, 'SELECT roastr_state.notify_stats()', '42501'),
	('notify_stats: anon', 'anon', 'SELECT roastr_state.notify_stats()', '42501'),
	('notify_stats: with an argument', 'service', 'SELECT roastr_state.notify_stats(1)', '42883'),
	('notify_stats: with a NULL argument', 'service', 'SELECT roastr_state.notify_stats(NULL)', '42883'),
	-- stats(): no arguments to get wrong
	('stats: as a user', :u1, 'SELECT roastr_state.stats()', '42501'),
	('stats: anon', 'anon', 'SELECT roastr_state.stats()', '42501'),
	('stats: with an argument', 'service', 'SELECT roastr_state.stats(1)', '42883'),
	('caller_is_service: as a user', :u1, 'SELECT roastr_state.caller_is_service()', '42501'),
	('caller_is_service: anon', 'anon', 'SELECT roastr_state.caller_is_service()', '42501'),
	('caller_is_service: with an argument', 'service', 'SELECT roastr_state.caller_is_service(''x'')', '42883'),

	-- create_organization(owner uuid, name text, slug text)
	('create_organization: NULL owner (service)', 'service', 'SELECT roastr_state.create_organization(NULL, ''X'', ''x-org'')', '22023'),
	('create_organization: NULL name', 'service', format('SELECT roastr_state.create_organization(%L, NULL, ''x-org'')', :u3), '22023'),
	('create_organization: NULL slug', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', NULL)', :u3), '22023'),
	('create_organization: empty name', 'service', format('SELECT roastr_state.create_organization(%L, '''', ''x-org'')', :u3), '22023'),
	('create_organization: name of 201 characters', 'service', format('SELECT roastr_state.create_organization(%L, %L, ''x-org'')', :u3, repeat('n', 201)), '22023'),
	('create_organization: name of 201 two-byte characters', 'service', format('SELECT roastr_state.create_organization(%L, %L, ''x-org'')', :u3, repeat('é', 201)), '22023'),
	('create_organization: name of 1 MB', 'service', format('SELECT roastr_state.create_organization(%L, %s, ''x-org'')', :u3, :'mb'), '22023'),
	('create_organization: name with a newline', 'service', format('SELECT roastr_state.create_organization(%L, %L, ''x-org'')', :u3, E'a\nb'), '22023'),
	('create_organization: name with DEL', 'service', format('SELECT roastr_state.create_organization(%L, %L, ''x-org'')', :u3, E'a\x7fb'), '22023'),
	('create_organization: name with invalid UTF-8', 'service', format('SELECT roastr_state.create_organization(%L, %s, ''x-org'')', :u3, :'bad_utf8'), '22021'),
	('create_organization: empty slug', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', '''')', :u3), '22023'),
	('create_organization: slug of 2 characters (min - 1)', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', ''ab'')', :u3), '22023'),
	('create_organization: slug of 64 characters (max + 1)', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', %L)', :u3, repeat('s', 64)), '22023'),
	('create_organization: slug of 1 MB', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', %s)', :u3, :'mb'), '22023'),
	('create_organization: slug in capitals', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', ''X-ORG'')', :u3), '22023'),
	('create_organization: slug with a space', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', ''x org'')', :u3), '22023'),
	('create_organization: slug with an underscore', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', ''x_org'')', :u3), '22023'),
	('create_organization: slug with a non-ASCII letter', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', ''x-orgé'')', :u3), '22023'),
	('create_organization: slug with invalid UTF-8', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', %s)', :u3, :'bad_utf8'), '22021'),
	('create_organization: a taken slug', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', ''acme'')', :u3), '23505'),
	('create_organization: owner not a uuid', 'service', 'SELECT roastr_state.create_organization(''nope'', ''X'', ''x-org'')', '22P02'),
	('create_organization: unknown owner', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', ''x-org'')', :nobody), 'PT404'),
	('create_organization: deleted owner', 'service', format('SELECT roastr_state.create_organization(%L, ''X'', ''x-org'')', :u5), 'PT404'),
	('create_organization: owned by another user', :u1, format('SELECT roastr_state.create_organization(%L, ''X'', ''x-org'')', :u2), '42501'),
	('create_organization: owned by an unknown id, as a user', :u1, format('SELECT roastr_state.create_organization(%L, ''X'', ''x-org'')', :nobody), '42501'),
	('create_organization: a taken slug, as a user', :u3, 'SELECT roastr_state.create_organization(NULL, ''X'', ''beta'')', '23505'),
	('create_organization: a bad slug, as a user', :u3, 'SELECT roastr_state.create_organization(NULL, ''X'', ''B'')', '22023'),
	('create_organization: no claims', 'noclaims', 'SELECT roastr_state.create_organization(NULL, ''X'', ''x-org'')', '42501'),

	-- add_member(org uuid, user_id uuid, role text)
	('add_member: NULL org', 'service', format('SELECT roastr_state.add_member(NULL, %L, ''member'')', :u4), '22023'),
	('add_member: NULL user', 'service', format('SELECT roastr_state.add_member(%L, NULL, ''member'')', :'acme'), '22023'),
	('add_member: NULL role', 'service', format('SELECT roastr_state.add_member(%L, %L, NULL)', :'acme', :u4), '22023'),
	('add_member: empty role', 'service', format('SELECT roastr_state.add_member(%L, %L, '''')', :'acme', :u4), '22023'),
	('add_member: unknown role', 'service', format('SELECT roastr_state.add_member(%L, %L, ''boss'')', :'acme', :u4), '22023'),
	('add_member: role in capitals', 'service', format('SELECT roastr_state.add_member(%L, %L, ''Member'')', :'acme', :u4), '22023'),
	('add_member: role of 1 MB', 'service', format('SELECT roastr_state.add_member(%L, %L, %s)', :'acme', :u4, :'mb'), '22023'),
	('add_member: role with invalid UTF-8', 'service', format('SELECT roastr_state.add_member(%L, %L, %s)', :'acme', :u4, :'bad_utf8'), '22021'),
	('add_member: role owner', 'service', format('SELECT roastr_state.add_member(%L, %L, ''owner'')', :'acme', :u4), '22023'),
	('add_member: org not a uuid', 'service', format('SELECT roastr_state.add_member(''nope'', %L, ''member'')', :u4), '22P02'),
	('add_member: unknown org', 'service', format('SELECT roastr_state.add_member(%L, %L, ''member'')', :nobody, :u4), 'PT404'),
	('add_member: unknown user', 'service', format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'acme', :nobody), 'PT404'),
	('add_member: deleted user', 'service', format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'acme', :u5), 'PT404'),
	('add_member: already a member', 'service', format('SELECT roastr_state.add_member(%L, %L, ''admin'')', :'acme', :u3), '23505'),
	('add_member: the owner again', 'service', format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'acme', :u1), '23505'),
	('add_member: themselves to another user''s organization', :u1, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'beta', :u1), '42501'),
	('add_member: to another user''s organization', :u1, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'beta', :u3), '42501'),
	('add_member: a member adding someone', :u3, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'acme', :u4), '42501'),
	('add_member: an admin adding an admin', :u4, format('SELECT roastr_state.add_member(%L, %L, ''admin'')', :'beta', :u3), '42501'),
	('add_member: an unknown user, as the owner', :u1, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'acme', :nobody), 'PT404'),
	('add_member: an unknown org, as a user', :u1, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :nobody, :u4), 'PT404'),
	('add_member: no claims', 'noclaims', format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'acme', :u4), '42501'),

	-- set_member_role(org uuid, user_id uuid, role text)
	('set_member_role: NULL org', 'service', format('SELECT roastr_state.set_member_role(NULL, %L, ''admin'')', :u3), '22023'),
	('set_member_role: NULL user', 'service', format('SELECT roastr_state.set_member_role(%L, NULL, ''admin'')', :'acme'), '22023'),
	('set_member_role: NULL role', 'service', format('SELECT roastr_state.set_member_role(%L, %L, NULL)', :'acme', :u3), '22023'),
	('set_member_role: empty role', 'service', format('SELECT roastr_state.set_member_role(%L, %L, '''')', :'acme', :u3), '22023'),
	('set_member_role: unknown role', 'service', format('SELECT roastr_state.set_member_role(%L, %L, ''boss'')', :'acme', :u3), '22023'),
	('set_member_role: role of 1 MB', 'service', format('SELECT roastr_state.set_member_role(%L, %L, %s)', :'acme', :u3, :'mb'), '22023'),
	('set_member_role: role with invalid UTF-8', 'service', format('SELECT roastr_state.set_member_role(%L, %L, %s)', :'acme', :u3, :'bad_utf8'), '22021'),
	('set_member_role: the owner to admin (no owner left)', 'service', format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :'acme', :u1), '22023'),
	('set_member_role: user not a uuid', 'service', format('SELECT roastr_state.set_member_role(%L, ''nope'', ''admin'')', :'acme'), '22P02'),
	('set_member_role: unknown org', 'service', format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :nobody, :u3), 'PT404'),
	('set_member_role: unknown user', 'service', format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :'acme', :nobody), 'PT404'),
	('set_member_role: a user who is not a member', 'service', format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :'acme', :u4), 'PT404'),
	('set_member_role: in another user''s organization', :u1, format('SELECT roastr_state.set_member_role(%L, %L, ''member'')', :'beta', :u4), '42501'),
	('set_member_role: taking ownership of another user''s organization', :u1, format('SELECT roastr_state.set_member_role(%L, %L, ''owner'')', :'beta', :u1), '42501'),
	('set_member_role: a member promoting themselves', :u3, format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :'acme', :u3), '42501'),
	('set_member_role: an admin demoting the owner', :u4, format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :'beta', :u2), '42501'),
	('set_member_role: the owner demoting themselves', :u1, format('SELECT roastr_state.set_member_role(%L, %L, ''member'')', :'acme', :u1), '22023'),
	('set_member_role: no claims', 'noclaims', format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :'acme', :u3), '42501'),

	-- remove_member(org uuid, user_id uuid)
	('remove_member: NULL org', 'service', format('SELECT roastr_state.remove_member(NULL, %L)', :u3), '22023'),
	('remove_member: NULL user', 'service', format('SELECT roastr_state.remove_member(%L, NULL)', :'acme'), '22023'),
	('remove_member: org not a uuid', 'service', format('SELECT roastr_state.remove_member(''nope'', %L)', :u3), '22P02'),
	('remove_member: unknown org', 'service', format('SELECT roastr_state.remove_member(%L, %L)', :nobody, :u3), 'PT404'),
	('remove_member: unknown user', 'service', format('SELECT roastr_state.remove_member(%L, %L)', :'acme', :nobody), 'PT404'),
	('remove_member: a user who is not a member', 'service', format('SELECT roastr_state.remove_member(%L, %L)', :'acme', :u4), 'PT404'),
	('remove_member: the owner', 'service', format('SELECT roastr_state.remove_member(%L, %L)', :'acme', :u1), '22023'),
	('remove_member: from another user''s organization', :u1, format('SELECT roastr_state.remove_member(%L, %L)', :'beta', :u4), '42501'),
	('remove_member: the owner of another user''s organization', :u1, format('SELECT roastr_state.remove_member(%L, %L)', :'beta', :u2), '42501'),
	('remove_member: a member removing the owner', :u3, format('SELECT roastr_state.remove_member(%L, %L)', :'acme', :u1), '42501'),
	('remove_member: an admin removing the owner', :u4, format('SELECT roastr_state.remove_member(%L, %L)', :'beta', :u2), '42501'),
	('remove_member: the owner leaving', :u1, format('SELECT roastr_state.remove_member(%L, %L)', :'acme', :u1), '22023'),
	('remove_member: leaving an organization one is not in', :u3, format('SELECT roastr_state.remove_member(%L, %L)', :'beta', :u3), 'PT404'),
	('remove_member: no claims', 'noclaims', format('SELECT roastr_state.remove_member(%L, %L)', :'acme', :u3), '42501'),

	-- delete_organization(org uuid)
	('delete_organization: NULL org', 'service', 'SELECT roastr_state.delete_organization(NULL)', '22023'),
	('delete_organization: org not a uuid', 'service', 'SELECT roastr_state.delete_organization(''nope'')', '22P02'),
	('delete_organization: org as a number', 'service', 'SELECT roastr_state.delete_organization(7)', '42883'),
	('delete_organization: unknown org', 'service', format('SELECT roastr_state.delete_organization(%L)', :nobody), 'PT404'),
	('delete_organization: another user''s organization', :u1, format('SELECT roastr_state.delete_organization(%L)', :'beta'), '42501'),
	('delete_organization: as a member', :u3, format('SELECT roastr_state.delete_organization(%L)', :'acme'), '42501'),
	('delete_organization: as an admin', :u4, format('SELECT roastr_state.delete_organization(%L)', :'beta'), '42501'),
	('delete_organization: no claims', 'noclaims', format('SELECT roastr_state.delete_organization(%L)', :'acme'), '42501'),
	('delete_organization: read-only transaction', :u1 || ' read-only', format('SELECT roastr_state.delete_organization(%L)', :'acme'), '25006'),
	-- rename_organization(org uuid, name text)
	('rename_organization: NULL org', 'service', 'SELECT roastr_state.rename_organization(NULL, ''X'')', '22023'),
	('rename_organization: NULL name', 'service', format('SELECT roastr_state.rename_organization(%L, NULL)', :'acme'), '22023'),
	('rename_organization: empty name', 'service', format('SELECT roastr_state.rename_organization(%L, '''')', :'acme'), '22023'),
	('rename_organization: name of 201 characters', 'service', format('SELECT roastr_state.rename_organization(%L, %L)', :'acme', repeat('n', 201)), '22023'),
	('rename_organization: name of 1 MB', 'service', format('SELECT roastr_state.rename_organization(%L, %s)', :'acme', :'mb'), '22023'),
	('rename_organization: name with a tab', 'service', format('SELECT roastr_state.rename_organization(%L, %L)', :'acme', E'a\tb'), '22023'),
	('rename_organization: name with DEL', 'service', format('SELECT roastr_state.rename_organization(%L, %L)', :'acme', E'a\x7fb'), '22023'),
	('rename_organization: name with invalid UTF-8', 'service', format('SELECT roastr_state.rename_organization(%L, %s)', :'acme', :'bad_utf8'), '22021'),
	('rename_organization: name as a number', 'service', format('SELECT roastr_state.rename_organization(%L, 7)', :'acme'), '42883'),
	('rename_organization: org not a uuid', 'service', 'SELECT roastr_state.rename_organization(''nope'', ''X'')', '22P02'),
	('rename_organization: unknown org', 'service', format('SELECT roastr_state.rename_organization(%L, ''X'')', :nobody), 'PT404'),
	('rename_organization: another user''s organization', :u1, format('SELECT roastr_state.rename_organization(%L, ''X'')', :'beta'), '42501'),
	('rename_organization: as a member', :u3, format('SELECT roastr_state.rename_organization(%L, ''X'')', :'acme'), '42501'),
	('rename_organization: no claims', 'noclaims', format('SELECT roastr_state.rename_organization(%L, ''X'')', :'acme'), '42501'),

	-- set_current_organization(user_id uuid, org uuid)
	('set_current_organization: NULL user (service)', 'service', format('SELECT roastr_state.set_current_organization(NULL, %L)', :'acme'), '22023'),
	('set_current_organization: user not a uuid', 'service', format('SELECT roastr_state.set_current_organization(''nope'', %L)', :'acme'), '22P02'),
	('set_current_organization: org not a uuid', 'service', format('SELECT roastr_state.set_current_organization(%L, ''nope'')', :u3), '22P02'),
	('set_current_organization: unknown user', 'service', format('SELECT roastr_state.set_current_organization(%L, %L)', :nobody, :'acme'), 'PT404'),
	('set_current_organization: unknown user, no org', 'service', format('SELECT roastr_state.set_current_organization(%L, NULL)', :nobody), 'PT404'),
	('set_current_organization: deleted user', 'service', format('SELECT roastr_state.set_current_organization(%L, NULL)', :u5), 'PT404'),
	('set_current_organization: unknown org', 'service', format('SELECT roastr_state.set_current_organization(%L, %L)', :u3, :nobody), 'PT404'),
	('set_current_organization: an org the user is not in', 'service', format('SELECT roastr_state.set_current_organization(%L, %L)', :u3, :'beta'), '42501'),
	('set_current_organization: another user''s', :u1, format('SELECT roastr_state.set_current_organization(%L, %L)', :u2, :'beta'), '42501'),
	('set_current_organization: clearing another user''s', :u1, format('SELECT roastr_state.set_current_organization(%L, NULL)', :u2), '42501'),
	('set_current_organization: an org they are not in', :u1, format('SELECT roastr_state.set_current_organization(NULL, %L)', :'beta'), '42501'),
	('set_current_organization: an unknown org, as a user', :u1, format('SELECT roastr_state.set_current_organization(NULL, %L)', :nobody), 'PT404'),
	('set_current_organization: no claims', 'noclaims', 'SELECT roastr_state.set_current_organization(NULL, NULL)', '42501'),

	-- valid calls of the writing functions in a read-only transaction
	('consume_roasts: read-only transaction', 'service read-only', format('SELECT roastr_state.consume_roasts(%L, 1)', :u1), '25006'),
	('consume_roasts: read-only transaction, over the limit', 'service read-only', format('SELECT roastr_state.consume_roasts(%L, 100)', :u1), '25006'),
	('consume_roasts: read-only transaction, as the user', :u1 || ' read-only', 'SELECT roastr_state.consume_roasts(NULL, 1, ''k2'')', '25006'),
	('apply_polar_webhook: read-only transaction, signed', 'service read-only',
		format('SELECT roastr_state.apply_polar_webhook(''wh_ro'', t, pg_temp.sig(''wh_ro'', t, %1$L), %1$L) FROM pg_temp.ts(0) t', :'event'), '25006'),
	('set_product_plan: read-only transaction', 'service read-only', 'SELECT roastr_state.set_product_plan(''prod_x'', ''plus'')', '25006'),
	('set_product_plan: read-only transaction, removing', 'service read-only', 'SELECT roastr_state.set_product_plan(''prod_pro'', NULL)', '25006'),
	('mark_embeddings: read-only transaction', 'service read-only', format('SELECT roastr_state.mark_embeddings(%L, ''m'', now())', :u1), '25006'),
	('delete_user: read-only transaction', 'service read-only', format('SELECT roastr_state.delete_user(%L)', :u3), '25006'),
	('delete_user: read-only transaction, unknown user', 'service read-only', format('SELECT roastr_state.delete_user(%L)', :nobody), '25006'),
	('delete_user: read-only transaction, themselves', :u3 || ' read-only', 'SELECT roastr_state.delete_user(NULL)', '25006'),
	('rotate_master_key: read-only transaction', 'service read-only', 'SELECT roastr_state.rotate_master_key()', '25006'),
	('create_organization: read-only transaction', :u3 || ' read-only', 'SELECT roastr_state.create_organization(NULL, ''X'', ''x-org'')', '25006'),
	('add_member: read-only transaction', :u1 || ' read-only', format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'acme', :u4), '25006'),
	('set_member_role: read-only transaction', :u1 || ' read-only', format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :'acme', :u3), '25006'),
	('remove_member: read-only transaction', :u1 || ' read-only', format('SELECT roastr_state.remove_member(%L, %L)', :'acme', :u3), '25006'),
	('rename_organization: read-only transaction', :u1 || ' read-only', format('SELECT roastr_state.rename_organization(%L, ''X'')', :'acme'), '25006'),
	('rename_organization: read-only transaction, the same name', :u1 || ' read-only', format('SELECT roastr_state.rename_organization(%L, ''Acme'')', :'acme'), '25006'),
	('set_current_organization: read-only transaction', :u3 || ' read-only', 'SELECT roastr_state.set_current_organization(NULL, NULL)', '25006'),

	-- trigger functions and the internal webhook function: not callable
	('state_trigger: called directly', 'super', 'SELECT roastr_state.state_trigger()', '39P01'),
	('state_trigger: by the service', 'service', 'SELECT roastr_state.state_trigger()', '42501'),
	('state_trigger: by a user', :u1, 'SELECT roastr_state.state_trigger()', '42501'),
	('persona_check: called directly', 'super', 'SELECT roastr_state.persona_check()', '39P01'),
	('persona_check: by the service', 'service', 'SELECT roastr_state.persona_check()', '42501'),
	('persona_check: by a user', :u1, 'SELECT roastr_state.persona_check()', '42501'),
	('plans_upsert: called directly', 'super', 'SELECT roastr_state.plans_upsert()', '0A000'),
	('plans_upsert: by the service', 'service', 'SELECT roastr_state.plans_upsert()', '42501'),
	('plans_upsert: by a user', :u1, 'SELECT roastr_state.plans_upsert()', '42501'),
	('plans_changed: called directly', 'super', 'SELECT roastr_state.plans_changed()', '39P01'),
	('plans_changed: by the service', 'service', 'SELECT roastr_state.plans_changed()', '42501'),
	('plans_changed: by a user', :u1, 'SELECT roastr_state.plans_changed()', '42501'),
	('remember_deleted: called directly', 'super', 'SELECT roastr_state.remember_deleted()', '0A000'),
	('remember_deleted: by the service', 'service', 'SELECT roastr_state.remember_deleted()', '42501'),
	('remember_deleted: by a user', :u1, 'SELECT roastr_state.remember_deleted()', '42501'),
	('organization_member_deleted: called directly', 'super', 'SELECT roastr_state.organization_member_deleted()', '0A000'),
	('organization_member_deleted: by the service', 'service', 'SELECT roastr_state.organization_member_deleted()', '42501'),
	('organization_member_deleted: by a user', :u1, 'SELECT roastr_state.organization_member_deleted()', '42501'),
	('_apply_polar_event: by the service (unverified events)', 'service', format('SELECT roastr_state._apply_polar_event(''w'', %L)', :'event'), '42501'),
	('_apply_polar_event: by a user', :u1, format('SELECT roastr_state._apply_polar_event(''w'', %L)', :'event'), '42501');

SELECT plan((SELECT count(*)::int FROM cases) + 19);

-- the fixture: every table holds rows
SELECT is((SELECT array_agg(t ORDER BY t) FROM jsonb_each(pg_temp.snapshot()) s(t, v) WHERE (v->>'rows')::int = 0),
	NULL, 'before: every table of the extension holds rows');
SELECT is(:'outcome'::text, 'applied', 'before: the fixture''s webhook was applied');

SELECT pg_temp.snapshot() AS before \gset
CREATE TEMP TABLE results AS SELECT c.id, pg_temp.run(c.who, c.sql) AS got FROM cases c ORDER BY c.id;

SELECT is(r.got, c.code, c.label) FROM cases c JOIN results r USING (id) ORDER BY c.id;

SELECT is(pg_temp.snapshot(), :'before'::jsonb, 'every table of the extension is exactly as before, row for row');
SELECT is((SELECT array_agg(c.label ORDER BY c.id) FROM cases c JOIN results r USING (id)
            WHERE r.got IS NULL OR r.got LIKE 'XX%'),
	NULL, 'no case is an internal error (class XX) or lost');
-- the table cannot silently test nothing
SELECT cmp_ok((SELECT count(*)::int FROM cases), '>=', 250, 'there are cases');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'roastr_state'::regnamespace
              AND p.proname NOT IN ('ensure_user', 'patch', 'state_full', 'state_sync')   -- 07_bad_input
              AND NOT EXISTS (SELECT FROM cases c WHERE split_part(c.label, ':', 1) = p.proname)),
	NULL, 'every function of the extension (but 07''s) has cases');
SELECT is((SELECT array_agg(label ORDER BY id) FROM cases
            WHERE sql !~ ('roastr_state\.' || split_part(label, ':', 1) || '\(')),
	NULL, 'and every case calls the function its label names');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'roastr_state'::regnamespace
              AND p.proname NOT IN ('ensure_user', 'patch', 'state_full', 'state_sync')
              AND NOT EXISTS (SELECT FROM cases c WHERE split_part(c.label, ':', 1) = p.proname
                                                      AND split_part(c.who, ' ', 1) NOT IN ('super', 'service'))),
	NULL, 'every function is also called by someone who is not the service');

-- boundaries that are valid (these write)
SELECT is(roastr_state.consume_roasts(:u1, 99)->>'allowed', 'true', 'consume_roasts: n = remaining is allowed');
SELECT is(roastr_state.consume_roasts(:u4, 99999)->>'monthly_roasts_used', '2147483647',
	'consume_roasts: up to the int limit (plus plan)');
SELECT is(roastr_state.consume_roasts(:u2, 100000, repeat('é', 200))->>'allowed', 'false',
	'consume_roasts: n = 100000 and a key of 200 characters are accepted');
SELECT is(roastr_state.apply_polar_webhook(repeat('w', 255), t, repeat('v1,AAAA ', 15) || pg_temp.sig(repeat('w', 255), t, '{"type": "ping"}'),
	'{"type": "ping"}')->>'received', 'true', 'apply_polar_webhook: an id of 255 characters and 16 signatures are accepted')
  FROM pg_temp.ts(-299) t;
SELECT is(roastr_state.rotate_master_key(100000)->>'remaining', '0', 'rotate_master_key: batch 100000');
SELECT is(roastr_state.rotate_master_key(1)->>'remaining', '0', 'rotate_master_key: batch 1');
SELECT isnt(roastr_state.create_organization(:u3, repeat('é', 200), repeat('s', 63)), NULL,
	'create_organization: a name of 200 characters and a slug of 63');
SELECT isnt(roastr_state.create_organization(:u3, 'C', 'abc'), NULL, 'create_organization: a slug of 3');
SELECT lives_ok(format('SELECT roastr_state.set_product_plan(%L, ''plus'')', repeat('p', 200)),
	'set_product_plan: a product id of 200 characters');
SELECT lives_ok(format('SELECT roastr_state.set_product_plan(%L, ''plus'')', repeat('é', 200)),
	'set_product_plan: a product id of 200 two-byte characters');
SELECT is(roastr_state.mark_embeddings(:u1, repeat('m', 200), now())->'applied',
	'["persona.embeddings_generated_at", "persona.embeddings_model"]', 'mark_embeddings: a model of 200 characters');

SELECT * FROM finish();
ROLLBACK;
