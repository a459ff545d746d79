-- The security model, object by object: objects planted on the caller's
-- search_path are never called; the privileges of every extension object
-- for PUBLIC, anon, authenticated and service_role; row security; no
-- SECURITY DEFINER; pinned search_path; cross-tenant attempts through every
-- function and table; authorize_channel.
\set ECHO none
\i test/helpers/common.psql
\set u4 '''a4444444-4444-4444-8444-444444444444'''
\set u5 '''a5555555-5555-4555-8555-555555555555'''

BEGIN;
SELECT plan(379);

-- Supabase's roles (the test cluster has them), then reinstall so the
-- install script grants to them.
\i test/helpers/supabase_roles.psql
CREATE ROLE rs_sec_stranger NOLOGIN;		-- no grants at all
CREATE ROLE rs_sec_granted NOLOGIN;			-- EXECUTE on everything (below), not the service
CREATE ROLE rs_sec_backend NOLOGIN NOBYPASSRLS IN ROLE service_role;
DROP EXTENSION roastr_state;
CREATE EXTENSION roastr_state;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role, rs_sec_stranger, rs_sec_granted, rs_sec_backend;

-- ===========================================================================
-- 1. search_path planting
--
-- Schema evil holds functions, aggregates and operators named like those
-- the extension's SQL uses; each records that it was called (a sequence,
-- which no rollback undoes, and a row) and then behaves like the real one.
-- pg_temp holds views named like the extension's tables.  Everything below
-- runs in a fresh backend with evil first on search_path, so the C
-- functions prepare their kept plans there: as a user and as the service,
-- with pg_catalog implicit (evil, public) and explicitly after evil
-- (evil, public, pg_catalog).  No planted object may ever be called.  The
-- runner and the commands it runs qualify every operator and function they
-- use themselves, so any call of a planted object comes from the extension.
-- ===========================================================================
CREATE SCHEMA evil;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
CREATE SEQUENCE evil.hits;
GRANT USAGE, SELECT, UPDATE ON SEQUENCE evil.hits TO PUBLIC;
CREATE TABLE evil.calls (what text NOT NULL);
CREATE TABLE evil.planted (what text PRIMARY KEY, probe text NOT NULL);
CREATE FUNCTION evil.hit(what text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM nextval('evil.hits');
	INSERT INTO evil.calls (what) VALUES (what);
END
$$;

DO $plant$
DECLARE
	r record;
	k int := 0;
BEGIN
	-- functions: name, argument types, result type, the real call, a probe
	FOR r IN SELECT * FROM (VALUES
		('now', '', 'timestamptz', 'pg_catalog.now()', 'SELECT now()'),
		('clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()', 'SELECT clock_timestamp()'),
		('statement_timestamp', '', 'timestamptz', 'pg_catalog.statement_timestamp()', 'SELECT statement_timestamp()'),
		('transaction_timestamp', '', 'timestamptz', 'pg_catalog.transaction_timestamp()', 'SELECT transaction_timestamp()'),
		('gen_random_uuid', '', 'uuid', 'pg_catalog.gen_random_uuid()', 'SELECT gen_random_uuid()'),
		('random', '', 'double precision', 'pg_catalog.random()', 'SELECT random()'),
		('pg_trigger_depth', '', 'integer', 'pg_catalog.pg_trigger_depth()', 'SELECT pg_trigger_depth()'),
		('jsonb_typeof', 'jsonb', 'text', 'pg_catalog.jsonb_typeof($1)', 'SELECT jsonb_typeof(''{}''::jsonb)'),
		('jsonb_build_object', 'text, text', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2)',
			'SELECT jsonb_build_object(''a''::text, ''b''::text)'),
		('jsonb_build_object', 'text, jsonb', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2)',
			'SELECT jsonb_build_object(''a''::text, ''{}''::jsonb)'),
		('jsonb_build_object', 'text, text, text, timestamptz', 'jsonb', 'pg_catalog.jsonb_build_object($1, $2, $3, $4)',
			'SELECT jsonb_build_object(''a''::text, ''b''::text, ''c''::text, ''2026-01-01''::timestamptz)'),
		('jsonb_build_object', 'text, boolean, text, boolean, text, boolean, text, text', 'jsonb',
			'pg_catalog.jsonb_build_object($1, $2, $3, $4, $5, $6, $7, $8)',
			'SELECT jsonb_build_object(''a''::text, true, ''b''::text, true, ''c''::text, true, ''d''::text, ''e''::text)'),
		('jsonb_build_object', 'VARIADIC text[]', 'jsonb', 'pg_catalog.jsonb_build_object(VARIADIC $1)',
			'SELECT jsonb_build_object(VARIADIC ARRAY[''a'', ''b''])'),
		('to_jsonb', 'text', 'jsonb', 'pg_catalog.to_jsonb($1)', 'SELECT to_jsonb(''a''::text)'),
		('current_setting', 'text', 'text', 'pg_catalog.current_setting($1)', 'SELECT current_setting(''search_path''::text)'),
		('current_setting', 'text, boolean', 'text', 'pg_catalog.current_setting($1, $2)',
			'SELECT current_setting(''search_path''::text, true)'),
		('set_config', 'text, text, boolean', 'text', 'pg_catalog.set_config($1, $2, $3)',
			'SELECT set_config(''rs.x''::text, ''y''::text, true)'),
		('lower', 'text', 'text', 'pg_catalog.lower($1)', 'SELECT lower(''A''::text)'),
		('upper', 'text', 'text', 'pg_catalog.upper($1)', 'SELECT upper(''a''::text)'),
		('length', 'text', 'integer', 'pg_catalog.length($1)', 'SELECT length(''a''::text)'),
		('replace', 'text, text, text', 'text', 'pg_catalog.replace($1, $2, $3)',
			'SELECT replace(''a''::text, ''a''::text, ''b''::text)'),
		('format', 'text', 'text', 'pg_catalog.format($1)', 'SELECT format(''a''::text)'),
		('md5', 'text', 'text', 'pg_catalog.md5($1)', 'SELECT md5(''a''::text)'),
		('sha256', 'bytea', 'bytea', 'pg_catalog.sha256($1)', 'SELECT sha256(''\x00''::bytea)'),
		('date_trunc', 'text, timestamptz', 'timestamptz', 'pg_catalog.date_trunc($1, $2)',
			'SELECT date_trunc(''month''::text, ''2026-01-02''::timestamptz)'),
		('date_trunc', 'text, timestamptz, text', 'timestamptz', 'pg_catalog.date_trunc($1, $2, $3)',
			'SELECT date_trunc(''month''::text, ''2026-01-02''::timestamptz, ''UTC''::text)'),
		('date_part', 'text, timestamptz', 'double precision', 'pg_catalog.date_part($1, $2)',
			'SELECT date_part(''epoch''::text, ''2026-01-02''::timestamptz)'),
		('array_length', 'bigint[], integer', 'integer', 'pg_catalog.array_length($1, $2)',
			'SELECT array_length(''{1}''::bigint[], 1)'),
		('pg_notify', 'text, text', 'void', 'NULL', 'SELECT pg_notify(''rs_evil_probe''::text, ''x''::text)')
	) f(name, args, ret, body, probe) LOOP
		k := k + 1;
		EXECUTE format($f$CREATE FUNCTION evil.%I(%s) RETURNS %s LANGUAGE plpgsql
			SET search_path = pg_catalog, pg_temp AS $b$
			BEGIN PERFORM evil.hit(%L); RETURN %s; END $b$$f$,
			r.name, r.args, r.ret, format('%s(%s)', r.name, r.args),
			CASE WHEN r.ret = 'void' THEN '' ELSE r.body END);
		INSERT INTO evil.planted VALUES (format('%s(%s)', r.name, r.args), r.probe);
	END LOOP;

	-- operators: name, left and right types, result type, a probe
	FOR r IN SELECT * FROM (VALUES
		('=', 'uuid', 'uuid', 'boolean', 'SELECT gen_random_uuid() = gen_random_uuid()'),
		('=', 'text', 'text', 'boolean', 'SELECT ''a''::text = ''b''::text'),
		('=', 'bigint', 'bigint', 'boolean', 'SELECT 1::bigint = 2::bigint'),
		('=', 'integer', 'integer', 'boolean', 'SELECT 1 = 2'),
		('=', 'smallint', 'smallint', 'boolean', 'SELECT 1::smallint = 2::smallint'),
		('=', 'boolean', 'boolean', 'boolean', 'SELECT true = false'),
		('=', 'jsonb', 'jsonb', 'boolean', 'SELECT ''{}''::jsonb = ''[]''::jsonb'),
		('=', 'timestamptz', 'timestamptz', 'boolean', 'SELECT now() = now()'),
		('<>', 'text', 'text', 'boolean', 'SELECT ''a''::text <> ''b''::text'),
		('<>', 'uuid', 'uuid', 'boolean', 'SELECT gen_random_uuid() <> gen_random_uuid()'),
		('<', 'timestamptz', 'timestamptz', 'boolean', 'SELECT now() < now()'),
		('<', 'bigint', 'bigint', 'boolean', 'SELECT 1::bigint < 2::bigint'),
		('<', 'integer', 'integer', 'boolean', 'SELECT 1 < 2'),
		('>', 'integer', 'integer', 'boolean', 'SELECT 1 > 2'),
		('>', 'bigint', 'bigint', 'boolean', 'SELECT 1::bigint > 2::bigint'),
		('>=', 'integer', 'integer', 'boolean', 'SELECT 1 >= 2'),
		('<=', 'integer', 'integer', 'boolean', 'SELECT 1 <= 2'),
		('+', 'integer', 'integer', 'integer', 'SELECT 1 + 2'),
		('+', 'bigint', 'bigint', 'bigint', 'SELECT 1::bigint + 2::bigint'),
		('+', 'timestamptz', 'interval', 'timestamptz', 'SELECT now() + ''1 day''::interval'),
		('-', 'timestamptz', 'interval', 'timestamptz', 'SELECT now() - ''1 day''::interval'),
		('~', 'text', 'text', 'boolean', 'SELECT ''a''::text ~ ''b''::text'),
		('||', 'text', 'text', 'text', 'SELECT ''a''::text || ''b''::text'),
		('||', 'jsonb', 'jsonb', 'jsonb', 'SELECT ''{}''::jsonb || ''{}''::jsonb'),
		('->>', 'jsonb', 'text', 'text', 'SELECT ''{}''::jsonb ->> ''a''::text'),
		('->', 'jsonb', 'text', 'jsonb', 'SELECT ''{}''::jsonb -> ''a''::text'),
		('->', 'jsonb', 'integer', 'jsonb', 'SELECT ''[]''::jsonb -> 0'),
		('?', 'jsonb', 'text', 'boolean', 'SELECT ''{}''::jsonb ? ''a''::text'),
		('@>', 'jsonb', 'jsonb', 'boolean', 'SELECT ''{}''::jsonb @> ''{}''::jsonb')
	) o(op, l, rt, ret, probe) LOOP
		k := k + 1;
		EXECUTE format($f$CREATE FUNCTION evil.op_%s(a %s, b %s) RETURNS %s LANGUAGE plpgsql
			SET search_path = pg_catalog, pg_temp AS $b$
			BEGIN PERFORM evil.hit(%L); RETURN a OPERATOR(pg_catalog.%s) b; END $b$$f$,
			k, r.l, r.rt, r.ret, format('%s(%s,%s)', r.op, r.l, r.rt), r.op);
		EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.op_%s)',
			r.op, r.l, r.rt, k);
		INSERT INTO evil.planted VALUES (format('%s(%s,%s)', r.op, r.l, r.rt), r.probe);
	END LOOP;
END
$plant$;

-- aggregates
CREATE FUNCTION evil.count_star_sf(s bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM evil.hit('count(*)'); RETURN s OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE evil.count(*) (SFUNC = evil.count_star_sf, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION evil.count_uuid_sf(s bigint, x uuid) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM evil.hit('count(uuid)'); RETURN s OPERATOR(pg_catalog.+) 1; END $$;
CREATE AGGREGATE evil.count(uuid) (SFUNC = evil.count_uuid_sf, STYPE = bigint, INITCOND = '0');
CREATE FUNCTION evil.max_sf(s bigint, x bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM evil.hit('max(bigint)'); RETURN pg_catalog.int8larger(s, x); END $$;
CREATE AGGREGATE evil.max(bigint) (SFUNC = evil.max_sf, STYPE = bigint);
CREATE FUNCTION evil.jsonb_agg_sf(s jsonb, x jsonb) RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN PERFORM evil.hit('jsonb_agg(jsonb)'); RETURN s OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_array(x); END $$;
CREATE AGGREGATE evil.jsonb_agg(jsonb) (SFUNC = evil.jsonb_agg_sf, STYPE = jsonb, INITCOND = '[]');
INSERT INTO evil.planted VALUES
	('count(*)', 'SELECT count(*) FROM (VALUES (1)) v(x)'),
	('count(uuid)', 'SELECT count(x) FROM (VALUES (''a1111111-1111-4111-8111-111111111111''::uuid)) v(x)'),
	('max(bigint)', 'SELECT max(x) FROM (VALUES (1::bigint)) v(x)'),
	('jsonb_agg(jsonb)', 'SELECT jsonb_agg(x) FROM (VALUES (''{}''::jsonb)) v(x)');

-- views in pg_temp named like the extension's tables
DO $plant$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['state', 'persona', 'plans', 'mutations', 'deleted_users', 'consumptions',
	                         'product_plans', 'polar_subscriptions', 'webhook_events', 'user_keys',
	                         'organizations', 'organization_members'] LOOP
		EXECUTE format('CREATE FUNCTION pg_temp.%I() RETURNS SETOF record LANGUAGE plpgsql AS $b$
			BEGIN PERFORM evil.hit(%L); END $b$', 'hit_' || t, 'pg_temp.' || t);
		EXECUTE format('CREATE TEMP VIEW %I AS SELECT * FROM pg_temp.%I() AS x(user_id uuid)', t, 'hit_' || t);
		EXECUTE format('GRANT ALL ON pg_temp.%I TO PUBLIC', t);
		INSERT INTO evil.planted VALUES ('pg_temp.' || t, format('SELECT * FROM pg_temp.%I', t));
	END LOOP;
END
$plant$;

-- The commands: $V is the variant (1: evil, public; 2: evil, public,
-- pg_catalog); each variant works on its own users and organizations.
--   users:  ann  a1111111-…-111111111111 (both variants), plus per variant
--           e00000$V1-… (user, owns organization e00000$V1-…-0000000000a1
--           with member e00000$V3), e00000$V2 (joins and leaves),
--           e00000$V4 (owns e00000$V1-…-0000000000b1 with member
--           e00000$V5), e00000$V6 (created and deleted by the service),
--           e00000$V7 (deletes themselves).
CREATE TEMP TABLE evil_calls (n serial, phase text, label text, cmd text);
CREATE TEMP TABLE evil_log (phase text, variant int, label text, sqlstate text);
GRANT SELECT ON evil_calls TO PUBLIC;
GRANT INSERT ON evil_log TO PUBLIC;
INSERT INTO evil_calls (phase, label, cmd) VALUES
	-- the superuser: fixtures, then what only it can call
	('super', 'ensure_user ann', $$SELECT roastr_state.ensure_user('a1111111-1111-4111-8111-111111111111', 'ann@example.com', 'Ann')$$),
	('super', 'ensure_user 1', $$SELECT roastr_state.ensure_user('e00000$V1-0000-4000-8000-000000000001', 'u1-$V@example.com')$$),
	('super', 'ensure_user 2', $$SELECT roastr_state.ensure_user('e00000$V2-0000-4000-8000-000000000001', 'u2-$V@example.com')$$),
	('super', 'ensure_user 3', $$SELECT roastr_state.ensure_user('e00000$V3-0000-4000-8000-000000000001', 'u3-$V@example.com')$$),
	('super', 'ensure_user 4', $$SELECT roastr_state.ensure_user('e00000$V4-0000-4000-8000-000000000001', 'u4-$V@example.com')$$),
	('super', 'ensure_user 5', $$SELECT roastr_state.ensure_user('e00000$V5-0000-4000-8000-000000000001', 'u5-$V@example.com')$$),
	('super', 'ensure_user 7', $$SELECT roastr_state.ensure_user('e00000$V7-0000-4000-8000-000000000001', 'u7-$V@example.com')$$),
	('super', 'organization a1', $$INSERT INTO roastr_state.organizations (id, name, slug) VALUES ('e00000$V1-0000-4000-8000-0000000000a1', 'A$V', 'evil-a-$V')$$),
	('super', 'organization b1', $$INSERT INTO roastr_state.organizations (id, name, slug) VALUES ('e00000$V1-0000-4000-8000-0000000000b1', 'B$V', 'evil-b-$V')$$),
	('super', 'organization c1', $$INSERT INTO roastr_state.organizations (id, name, slug) VALUES ('e00000$V1-0000-4000-8000-0000000000c1', 'C$V', 'evil-c-$V')$$),
	('super', 'members', $$INSERT INTO roastr_state.organization_members (org_id, user_id, role) VALUES
		('e00000$V1-0000-4000-8000-0000000000a1', 'e00000$V1-0000-4000-8000-000000000001', 'owner'),
		('e00000$V1-0000-4000-8000-0000000000a1', 'e00000$V3-0000-4000-8000-000000000001', 'member'),
		('e00000$V1-0000-4000-8000-0000000000b1', 'e00000$V4-0000-4000-8000-000000000001', 'owner'),
		('e00000$V1-0000-4000-8000-0000000000b1', 'e00000$V5-0000-4000-8000-000000000001', 'member'),
		('e00000$V1-0000-4000-8000-0000000000c1', 'e00000$V1-0000-4000-8000-000000000001', 'owner'),
		('e00000$V1-0000-4000-8000-0000000000c1', 'e00000$V3-0000-4000-8000-000000000001', 'member')$$),
	('super', 'plan pro', $$SELECT roastr_state.patch('e00000$V1-0000-4000-8000-000000000001', '{"subscription.plan": "pro"}')$$),
	('super', 'set_product_plan', $$SELECT roastr_state.set_product_plan('prod_evil_$V', 'plus')$$),
	('super', '_apply_polar_event', $$SELECT roastr_state._apply_polar_event('wh_evil_$V',
		'{"type": "subscription.updated", "data": {"id": "sub_evil_$V", "status": "active",
		  "modified_at": "2026-01-0$VT00:00:00Z", "product_id": "prod_evil_$V",
		  "customer": {"external_id": "e00000$V4-0000-4000-8000-000000000001"},
		  "current_period_start": "2026-01-01T00:00:00Z", "current_period_end": "2099-01-01T00:00:00Z"}}')$$),
	('super', '_apply_polar_event ignored', $$SELECT roastr_state._apply_polar_event('wh_evil_x$V', '[1, 2]')$$),
	('super', 'insert plans (upsert)', $$INSERT INTO roastr_state.plans (plan, monthly_roasts_limit, trial_days) VALUES ('starter', 500, 30)$$),
	-- a user (claims of e00000$V1)
	('user', 'state_full', $$SELECT roastr_state.state_full(NULL)$$),
	('user', 'state_sync', $$SELECT roastr_state.state_sync(NULL, 0::bigint)$$),
	('user', 'state_sync at', $$SELECT roastr_state.state_sync(NULL, '2000-01-01 00:00:00+00'::timestamptz)$$),
	('user', 'patch', $$SELECT roastr_state.patch(NULL, '{"roasting.enabled": false, "roasting.shield_level": "estricto"}')$$),
	('user', 'patch base', $$SELECT roastr_state.patch(NULL, '{"roasting.roast_level": 4}', 1)$$),
	('user', 'patch mutation', $$SELECT roastr_state.patch(NULL, '{"auth.name": "Evil $V"}', NULL, 'f00000$V1-0000-4000-8000-000000000001')$$),
	('user', 'patch mutation retry', $$SELECT roastr_state.patch(NULL, '{"auth.name": "Evil $V"}', NULL, 'f00000$V1-0000-4000-8000-000000000001')$$),
	('user', 'patch persona', $$SELECT roastr_state.patch(NULL, '{"persona.identity": "I roast $V", "persona.intolerance": "spoilers", "persona.tolerance": "puns"}')$$),
	('user', 'state_full persona', $$SELECT roastr_state.state_full(NULL)$$),
	('user', 'consume_roasts', $$SELECT roastr_state.consume_roasts(NULL)$$),
	('user', 'consume_roasts key', $$SELECT roastr_state.consume_roasts(NULL, 2, 'evil-$V')$$),
	('user', 'consume_roasts key again', $$SELECT roastr_state.consume_roasts(NULL, 2, 'evil-$V')$$),
	('user', 'authorize_channel', $$SELECT roastr_state.authorize_channel('user:e00000$V1-0000-4000-8000-000000000001')$$),
	('user', 'create_organization', $$SELECT roastr_state.create_organization(NULL, 'Mine $V', 'evil-mine-$V')$$),
	('user', 'add_member', $$SELECT roastr_state.add_member('e00000$V1-0000-4000-8000-0000000000a1', 'e00000$V2-0000-4000-8000-000000000001', 'member')$$),
	('user', 'set_member_role admin', $$SELECT roastr_state.set_member_role('e00000$V1-0000-4000-8000-0000000000a1', 'e00000$V2-0000-4000-8000-000000000001', 'admin')$$),
	('user', 'rename_organization', $$SELECT roastr_state.rename_organization('e00000$V1-0000-4000-8000-0000000000a1', 'A$V renamed')$$),
	('user', 'set_current_organization', $$SELECT roastr_state.set_current_organization(NULL, 'e00000$V1-0000-4000-8000-0000000000a1')$$),
	('user', 'set_current_organization none', $$SELECT roastr_state.set_current_organization(NULL, NULL)$$),
	('user', 'set_current_organization again', $$SELECT roastr_state.set_current_organization(NULL, 'e00000$V1-0000-4000-8000-0000000000a1')$$),
	('user', 'remove_member', $$SELECT roastr_state.remove_member('e00000$V1-0000-4000-8000-0000000000a1', 'e00000$V2-0000-4000-8000-000000000001')$$),
	('user', 'transfer ownership', $$SELECT roastr_state.set_member_role('e00000$V1-0000-4000-8000-0000000000a1', 'e00000$V3-0000-4000-8000-000000000001', 'owner')$$),
	('user', 'leave', $$SELECT roastr_state.remove_member('e00000$V1-0000-4000-8000-0000000000a1', 'e00000$V1-0000-4000-8000-000000000001')$$),
	('user', 'delete_organization', $$SELECT roastr_state.delete_organization('e00000$V1-0000-4000-8000-0000000000c1')$$),
	('user', 'state_sync after', $$SELECT roastr_state.state_sync(NULL, 1::bigint)$$),
	-- a user deleting themselves (claims of e00000$V7)
	('self', 'delete_user', $$SELECT roastr_state.delete_user(NULL)$$),
	-- the service (service_role, no claims)
	('service', 'ensure_user new', $$SELECT roastr_state.ensure_user('e00000$V6-0000-4000-8000-000000000001', 'u6-$V@example.com', 'Six')$$),
	('service', 'ensure_user refresh', $$SELECT roastr_state.ensure_user('e00000$V6-0000-4000-8000-000000000001', 'six-$V@example.com')$$),
	('service', 'state_full', $$SELECT roastr_state.state_full('e00000$V4-0000-4000-8000-000000000001')$$),
	('service', 'state_sync', $$SELECT roastr_state.state_sync('e00000$V4-0000-4000-8000-000000000001', 0::bigint)$$),
	('service', 'state_sync at', $$SELECT roastr_state.state_sync('e00000$V4-0000-4000-8000-000000000001', '2000-01-01 00:00:00+00'::timestamptz)$$),
	('service', 'patch', $$SELECT roastr_state.patch('e00000$V4-0000-4000-8000-000000000001', '{"subscription.status": "past_due"}')$$),
	('service', 'mark_embeddings', $$SELECT roastr_state.mark_embeddings('e00000$V1-0000-4000-8000-000000000001', 'model-$V', '2026-01-01 00:00:00+00')$$),
	('service', 'consume_roasts', $$SELECT roastr_state.consume_roasts('e00000$V4-0000-4000-8000-000000000001', 3, 'svc-$V')$$),
	('service', 'set_product_plan', $$SELECT roastr_state.set_product_plan('prod_svc_$V', 'pro')$$),
	('service', 'set_product_plan remove', $$SELECT roastr_state.set_product_plan('prod_svc_$V', NULL)$$),
	('service', 'rotate_master_key', $$SELECT roastr_state.rotate_master_key()$$),
	('service', 'notify_stats', $$SELECT roastr_state.notify_stats()$$),
	('service', 'stats', $$SELECT roastr_state.stats()$$),
	('service', 'state_sync with history', $$SELECT roastr_state.state_sync('e00000$V4-0000-4000-8000-000000000001', 0::bigint, NULL)$$),
	('service', 'caller_is_service', $$SELECT roastr_state.caller_is_service()$$),
	('service', 'authorize_channel', $$SELECT roastr_state.authorize_channel('roastr_state')$$),
	('service', 'create_organization', $$SELECT roastr_state.create_organization('e00000$V6-0000-4000-8000-000000000001', 'Six $V', 'evil-six-$V')$$),
	('service', 'add_member', $$SELECT roastr_state.add_member('e00000$V1-0000-4000-8000-0000000000b1', 'e00000$V2-0000-4000-8000-000000000001', 'member')$$),
	('service', 'set_member_role', $$SELECT roastr_state.set_member_role('e00000$V1-0000-4000-8000-0000000000b1', 'e00000$V2-0000-4000-8000-000000000001', 'admin')$$),
	('service', 'rename_organization', $$SELECT roastr_state.rename_organization('e00000$V1-0000-4000-8000-0000000000b1', 'B$V renamed')$$),
	('service', 'set_current_organization', $$SELECT roastr_state.set_current_organization('e00000$V2-0000-4000-8000-000000000001', 'e00000$V1-0000-4000-8000-0000000000b1')$$),
	('service', 'remove_member', $$SELECT roastr_state.remove_member('e00000$V1-0000-4000-8000-0000000000b1', 'e00000$V2-0000-4000-8000-000000000001')$$),
	('service', 'transfer ownership', $$SELECT roastr_state.set_member_role('e00000$V1-0000-4000-8000-0000000000b1', 'e00000$V5-0000-4000-8000-000000000001', 'owner')$$),
	('service', 'direct update', $$UPDATE roastr_state.state SET roast_level = 2, shield_level = 'tolerante' WHERE user_id OPERATOR(pg_catalog.=) 'e00000$V4-0000-4000-8000-000000000001'$$),
	('service', 'direct update base', $$UPDATE roastr_state.state SET version = 1, roasting_enabled = false WHERE user_id OPERATOR(pg_catalog.=) 'e00000$V4-0000-4000-8000-000000000001'$$),
	('service', 'plan limit', $$UPDATE roastr_state.plans SET monthly_roasts_limit = 10$V WHERE plan OPERATOR(pg_catalog.=) 'free'$$),
	('service', 'delete_user (sole owner)', $$SELECT roastr_state.delete_user('e00000$V6-0000-4000-8000-000000000001')$$),
	('service', 'direct delete', $$DELETE FROM roastr_state.state WHERE user_id OPERATOR(pg_catalog.=) 'e00000$V2-0000-4000-8000-000000000001'$$);

CREATE FUNCTION pg_temp.evil_run(p text, v integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	st text;
	k integer := 0;
BEGIN
	FOR r IN SELECT c.label, c.cmd FROM pg_temp.evil_calls c
	          WHERE c.phase OPERATOR(pg_catalog.=) p ORDER BY c.n LOOP
		st := '00000';
		BEGIN
			EXECUTE pg_catalog.replace(r.cmd, '$V', v::text);
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
		END;
		INSERT INTO pg_temp.evil_log (phase, variant, label, sqlstate) VALUES (p, v, r.label, st);
		k := k OPERATOR(pg_catalog.+) 1;
	END LOOP;
	RETURN k;
END
$$;

-- variant 2 first (evil before an explicit pg_catalog), then variant 1
SET LOCAL search_path = evil, public, pg_catalog;
SELECT pg_temp.evil_run('super', 2) AS n_super_2 \gset
SET LOCAL request.jwt.claims = '{"sub": "e0000021-0000-4000-8000-000000000001", "role": "authenticated"}';
SET LOCAL ROLE authenticated;
SELECT pg_temp.evil_run('user', 2) AS n_user_2 \gset
SET LOCAL request.jwt.claims = '{"sub": "e0000027-0000-4000-8000-000000000001", "role": "authenticated"}';
SELECT pg_temp.evil_run('self', 2) AS n_self_2 \gset
SET LOCAL request.jwt.claims = '';
SET LOCAL ROLE service_role;
SELECT pg_temp.evil_run('service', 2) AS n_service_2 \gset
RESET ROLE;
SET LOCAL search_path = evil, public;
SELECT pg_temp.evil_run('super', 1) AS n_super_1 \gset
SET LOCAL request.jwt.claims = '{"sub": "e0000011-0000-4000-8000-000000000001", "role": "authenticated"}';
SET LOCAL ROLE authenticated;
SELECT pg_temp.evil_run('user', 1) AS n_user_1 \gset
SET LOCAL request.jwt.claims = '{"sub": "e0000017-0000-4000-8000-000000000001", "role": "authenticated"}';
SELECT pg_temp.evil_run('self', 1) AS n_self_1 \gset
SET LOCAL request.jwt.claims = '';
SET LOCAL ROLE service_role;
SELECT pg_temp.evil_run('service', 1) AS n_service_1 \gset
RESET ROLE;
RESET search_path;

SELECT is((SELECT is_called FROM evil.hits), false,
	'no planted function, aggregate, operator or view was called, by a user or the service, in either search_path');
SELECT is((SELECT array_agg(DISTINCT what ORDER BY what) FROM evil.calls), NULL, 'and none is recorded');
SELECT is(:n_super_2 + :n_user_2 + :n_self_2 + :n_service_2 + :n_super_1 + :n_user_1 + :n_self_1 + :n_service_1,
	2 * (SELECT count(*)::int FROM evil_calls), 'every command ran in both variants');
SELECT is((SELECT jsonb_object_agg(format('%s %s v%s', phase, label, variant), sqlstate) FROM evil_log WHERE sqlstate <> '00000'),
	NULL, 'and every one succeeded');
SELECT is((SELECT version FROM roastr_state.state WHERE user_id = 'e0000021-0000-4000-8000-000000000001'),
	(SELECT version FROM roastr_state.state WHERE user_id = 'e0000011-0000-4000-8000-000000000001'),
	'both variants did the same work');

-- The trap is armed: the same objects are called when a statement of our
-- own resolves names with evil first.
SELECT setval('evil.hits', 1, false) IS NOT NULL AS reset \gset
CREATE FUNCTION pg_temp.evil_probe() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT p.probe FROM evil.planted p ORDER BY p.what LOOP
		EXECUTE r.probe;
	END LOOP;
END
$$;
SET LOCAL search_path = evil, public, pg_catalog;
SELECT pg_temp.evil_probe() AS probe \gset
RESET search_path;
SELECT is((SELECT array_agg(what ORDER BY what) FROM evil.planted WHERE what NOT IN (SELECT what FROM evil.calls)),
	NULL, 'control: with evil first, a statement of our own calls every planted object');
SELECT is((SELECT count(*)::int FROM evil.planted), 74, 'control: 74 objects were planted');
DROP SCHEMA evil CASCADE;
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['state', 'persona', 'plans', 'mutations', 'deleted_users', 'consumptions',
	                         'product_plans', 'polar_subscriptions', 'webhook_events', 'user_keys',
	                         'organizations', 'organization_members'] LOOP
		EXECUTE format('DROP VIEW pg_temp.%I', t);
		EXECUTE format('DROP FUNCTION pg_temp.%I()', 'hit_' || t);
	END LOOP;
END
$$;

-- ===========================================================================
-- 2. Privileges: the grid.  One row per extension object (and the schema)
-- with the exact privileges of PUBLIC, anon, authenticated and service_role
-- (for the roles: what they effectively have, PUBLIC's grants included).
-- Every object of the extension must have a row here: a new object without
-- one fails the completeness test.
--
-- The tables' row types and their array types are objects of the extension
-- on every major, with the same privileges; PostgreSQL 17 also records them
-- as members (pg_depend 'e', commit e5bc9454), 15 does not (they hang on
-- their table).  Both are in the grid on every major, and which major
-- records them is a test of its own.  They keep PostgreSQL's default ACL
-- for types, USAGE for PUBLIC: naming a table's row type reads no row of
-- it (that takes privileges on the table, which RLS further limits), and
-- without USAGE on the schema no one but the service can even name it.
-- ===========================================================================
CREATE TEMP TABLE grid (obj text PRIMARY KEY, public text, anon text, authenticated text, service_role text);
INSERT INTO grid VALUES
	('schema roastr_state',                                          '', '', 'USAGE',   'USAGE'),
	-- functions users call
	('roastr_state.state_full(uuid)',                                '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.state_sync(uuid,bigint)',                         '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.state_sync(uuid,bigint,text)',                    '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.state_sync(uuid,timestamp with time zone)',       '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.patch(uuid,jsonb,bigint,uuid)',                   '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.consume_roasts(uuid,integer,text)',               '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.delete_user(uuid)',                               '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.authorize_channel(text)',                         '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.create_organization(uuid,text,text)',             '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.add_member(uuid,uuid,text)',                      '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.set_member_role(uuid,uuid,text)',                 '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.remove_member(uuid,uuid)',                        '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.rename_organization(uuid,text)',                  '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.delete_organization(uuid)',                       '', '', 'EXECUTE', 'EXECUTE'),
	('roastr_state.set_current_organization(uuid,uuid)',             '', '', 'EXECUTE', 'EXECUTE'),
	-- functions of the service
	('roastr_state.ensure_user(uuid,text,text)',                     '', '', '',        'EXECUTE'),
	('roastr_state.mark_embeddings(uuid,text,timestamp with time zone)', '', '', '',    'EXECUTE'),
	('roastr_state.set_product_plan(text,text)',                     '', '', '',        'EXECUTE'),
	('roastr_state.apply_polar_webhook(text,text,text,text)',        '', '', '',        'EXECUTE'),
	('roastr_state.rotate_master_key(integer)',                      '', '', '',        'EXECUTE'),
	('roastr_state.notify_stats()',                                  '', '', '',        'EXECUTE'),
	('roastr_state.stats()',                                         '', '', '',        'EXECUTE'),
	('roastr_state.caller_is_service()',                             '', '', '',        'EXECUTE'),
	-- internal: nobody but the owner
	('roastr_state._apply_polar_event(text,text)',                   '', '', '',        ''),
	('roastr_state.state_trigger()',                                 '', '', '',        ''),
	('roastr_state.remember_deleted()',                              '', '', '',        ''),
	('roastr_state.plans_upsert()',                                  '', '', '',        ''),
	('roastr_state.plans_changed()',                                 '', '', '',        ''),
	('roastr_state.persona_check()',                                 '', '', '',        ''),
	('roastr_state.organization_member_deleted()',                   '', '', '',        ''),
	-- tables: users never touch them; the service reads, and writes a few
	('roastr_state.state',                                           '', '', '',        'SELECT,UPDATE,DELETE'),
	('roastr_state.plans',                                           '', '', '',        'SELECT,UPDATE'),
	('roastr_state.deleted_users',                                   '', '', '',        'SELECT,INSERT,UPDATE'),
	('roastr_state.mutations',                                       '', '', '',        'SELECT'),
	('roastr_state.consumptions',                                    '', '', '',        'SELECT'),
	('roastr_state.product_plans',                                   '', '', '',        'SELECT'),
	('roastr_state.polar_subscriptions',                             '', '', '',        'SELECT'),
	('roastr_state.webhook_events',                                  '', '', '',        'SELECT'),
	('roastr_state.user_keys',                                       '', '', '',        'SELECT'),
	('roastr_state.organizations',                                   '', '', '',        'SELECT'),
	('roastr_state.organization_members',                            '', '', '',        'SELECT'),
	('roastr_state.persona',                                         '', '', '',        ''),
	-- the change stamps of shared rows: only the owner takes them
	('roastr_state.shared_stamp',                                    '', '', '',        '');
-- the tables' row types and their array types: PostgreSQL's default
INSERT INTO grid
SELECT format('type roastr_state.%s%s', t, a), 'USAGE', 'USAGE', 'USAGE', 'USAGE'
  FROM unnest(ARRAY['state', 'plans', 'deleted_users', 'mutations', 'consumptions', 'product_plans',
                    'polar_subscriptions', 'webhook_events', 'user_keys', 'organizations',
                    'organization_members', 'persona']) t,
       unnest(ARRAY['', '[]']) a;

-- Every member of the extension (any catalog), as pg_depend records it.
CREATE TEMP VIEW ext_members AS
SELECT d.classid, d.objid,
	   CASE WHEN d.classid = 'pg_proc'::regclass THEN 'function'
	        WHEN d.classid = 'pg_class'::regclass THEN
	             CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
	                            WHEN 'm' THEN 'view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'table'
	                            ELSE 'relation ' || c.relkind::text END
	        WHEN d.classid = 'pg_type'::regclass THEN 'type'
	        ELSE d.classid::regclass::text END AS kind,
	   CASE WHEN d.classid = 'pg_proc'::regclass THEN d.objid::regprocedure::text
	        WHEN d.classid = 'pg_class'::regclass THEN d.objid::regclass::text
	        WHEN d.classid = 'pg_type'::regclass THEN format('type %s', d.objid::regtype)
	        ELSE pg_describe_object(d.classid, d.objid, 0) END AS obj
  FROM pg_depend d
  LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'roastr_state')
   AND d.deptype = 'e';

-- Every object of the extension: its members, the row types of its tables
-- and their array types (members themselves from PostgreSQL 17 on), and
-- the schema.
CREATE TEMP VIEW ext_objects AS
SELECT classid, objid, kind, obj FROM ext_members
UNION
SELECT 'pg_type'::regclass, t.oid, 'type', format('type %s', t.oid::regtype)
  FROM ext_members m
  JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_type r ON r.oid = c.reltype
  JOIN pg_type t ON t.oid IN (r.oid, r.typarray)
UNION
SELECT 'pg_namespace'::regclass, n.oid, 'schema', 'schema roastr_state'
  FROM pg_namespace n WHERE n.nspname = 'roastr_state';

-- The privileges each grid role has on an object, in a fixed order.
CREATE FUNCTION pg_temp.privs_of(kind text, o oid, r text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	names text[] := CASE kind
		WHEN 'function' THEN ARRAY['EXECUTE']
		WHEN 'table' THEN ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']
		WHEN 'view' THEN ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']
		WHEN 'sequence' THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
		WHEN 'schema' THEN ARRAY['USAGE', 'CREATE']
		WHEN 'type' THEN ARRAY['USAGE']
		ELSE ARRAY[]::text[] END;
	acl aclitem[];
	res text[] := '{}';
	p text;
	has boolean;
BEGIN
	IF r = 'PUBLIC' THEN
		acl := CASE kind
			WHEN 'function' THEN (SELECT coalesce(proacl, acldefault('f', proowner)) FROM pg_proc WHERE oid = o)
			WHEN 'schema' THEN (SELECT coalesce(nspacl, acldefault('n', nspowner)) FROM pg_namespace WHERE oid = o)
			WHEN 'sequence' THEN (SELECT coalesce(relacl, acldefault('s', relowner)) FROM pg_class WHERE oid = o)
			WHEN 'type' THEN (SELECT coalesce(typacl, acldefault('T', typowner)) FROM pg_type WHERE oid = o)
			ELSE (SELECT coalesce(relacl, acldefault('r', relowner)) FROM pg_class WHERE oid = o) END;
		SELECT coalesce(array_agg(x ORDER BY array_position(names, x)), '{}') INTO res
		  FROM (SELECT DISTINCT e.privilege_type AS x FROM aclexplode(acl) e WHERE e.grantee = 0) s;
		RETURN array_to_string(res, ',');
	END IF;
	FOREACH p IN ARRAY names LOOP
		has := CASE kind
			WHEN 'function' THEN has_function_privilege(r, o, p)
			WHEN 'schema' THEN has_schema_privilege(r, o, p)
			WHEN 'sequence' THEN has_sequence_privilege(r, o, p)
			WHEN 'type' THEN has_type_privilege(r, o, p)
			ELSE has_table_privilege(r, o, p) END;
		IF has THEN
			res := res || p;
		END IF;
	END LOOP;
	RETURN array_to_string(res, ',');
END
$$;

SELECT is((SELECT array_agg(kind || ' ' || obj ORDER BY obj) FROM ext_objects WHERE obj NOT IN (SELECT obj FROM grid)),
	NULL, 'every object of the extension has a row in the grid');
SELECT is((SELECT array_agg(obj ORDER BY obj) FROM grid WHERE obj NOT IN (SELECT obj FROM ext_objects)),
	NULL, 'every row of the grid is an object of the extension');
SELECT is((SELECT array_agg(obj ORDER BY obj) FROM ext_members WHERE kind = 'type'),
	CASE WHEN current_setting('server_version_num')::int >= 170000
	     THEN (SELECT array_agg(obj ORDER BY obj) FROM ext_objects WHERE kind = 'type') END,
	'the tables'' row types and their array types are members of the extension on PostgreSQL 17, not before');
SELECT is(jsonb_build_object('PUBLIC', pg_temp.privs_of(e.kind, e.objid, 'PUBLIC'),
                             'anon', pg_temp.privs_of(e.kind, e.objid, 'anon'),
                             'authenticated', pg_temp.privs_of(e.kind, e.objid, 'authenticated'),
                             'service_role', pg_temp.privs_of(e.kind, e.objid, 'service_role')),
          jsonb_build_object('PUBLIC', g.public, 'anon', g.anon,
                             'authenticated', g.authenticated, 'service_role', g.service_role),
          format('privileges on %s', CASE WHEN e.kind IN ('schema', 'type') THEN e.obj ELSE e.kind || ' ' || e.obj END))
  FROM grid g JOIN ext_objects e USING (obj)
 ORDER BY CASE e.kind WHEN 'schema' THEN 0 WHEN 'function' THEN 1 WHEN 'type' THEN 3 ELSE 2 END, e.obj;

-- Nothing else: no other grantee, no grant option, no column privileges,
-- no default privileges, nothing in the schema outside the extension.
SELECT is((SELECT array_agg(DISTINCT format('%s: %s', e.obj, a.grantee::regrole)) FROM ext_objects e,
            LATERAL aclexplode(CASE e.kind
                WHEN 'function' THEN (SELECT proacl FROM pg_proc WHERE oid = e.objid)
                WHEN 'schema' THEN (SELECT nspacl FROM pg_namespace WHERE oid = e.objid)
                WHEN 'type' THEN (SELECT typacl FROM pg_type WHERE oid = e.objid)
                ELSE (SELECT relacl FROM pg_class WHERE oid = e.objid) END) a
           WHERE a.grantee <> 0
             AND a.grantee NOT IN (SELECT oid FROM pg_roles WHERE rolname IN ('authenticated', 'service_role'))
             AND NOT (SELECT rolsuper FROM pg_roles WHERE oid = a.grantee)),
	NULL, 'no role but authenticated and service_role (and superusers) is granted anything');
SELECT is((SELECT array_agg(DISTINCT format('%s: %s', e.obj, a.grantee::regrole)) FROM ext_objects e,
            LATERAL aclexplode(CASE e.kind
                WHEN 'function' THEN (SELECT proacl FROM pg_proc WHERE oid = e.objid)
                WHEN 'schema' THEN (SELECT nspacl FROM pg_namespace WHERE oid = e.objid)
                WHEN 'type' THEN (SELECT typacl FROM pg_type WHERE oid = e.objid)
                ELSE (SELECT relacl FROM pg_class WHERE oid = e.objid) END) a
           WHERE a.is_grantable AND a.grantee <> a.grantor),
	NULL, 'nobody holds a grant option');
SELECT is((SELECT array_agg(format('%s.%s', a.attrelid::regclass, a.attname)) FROM pg_attribute a
            JOIN ext_objects e ON e.classid = 'pg_class'::regclass AND e.objid = a.attrelid
           WHERE a.attacl IS NOT NULL),
	NULL, 'no column privileges');
SELECT is((SELECT count(*)::int FROM pg_default_acl WHERE defaclnamespace = 'roastr_state'::regnamespace),
	0, 'no default privileges in the schema');
SELECT is((SELECT array_agg(x ORDER BY x) FROM (
             SELECT p.oid::regprocedure::text AS x FROM pg_proc p WHERE p.pronamespace = 'roastr_state'::regnamespace
             UNION ALL
             SELECT c.oid::regclass::text FROM pg_class c
              WHERE c.relnamespace = 'roastr_state'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             UNION ALL
             SELECT format('type %s', t.oid::regtype) FROM pg_type t
              WHERE t.typnamespace = 'roastr_state'::regnamespace
           ) s WHERE x NOT IN (SELECT obj FROM ext_objects)),
	NULL, 'the schema holds nothing that is not the extension''s');
SELECT is((SELECT array_agg(e.obj ORDER BY e.obj) FROM ext_objects e
           WHERE NOT (SELECT rolsuper FROM pg_roles WHERE oid = CASE e.kind
                  WHEN 'function' THEN (SELECT proowner FROM pg_proc WHERE oid = e.objid)
                  WHEN 'schema' THEN (SELECT nspowner FROM pg_namespace WHERE oid = e.objid)
                  WHEN 'type' THEN (SELECT typowner FROM pg_type WHERE oid = e.objid)
                  ELSE (SELECT relowner FROM pg_class WHERE oid = e.objid) END)),
	NULL, 'every object belongs to a superuser');

-- ===========================================================================
-- 3. Row security, SECURITY DEFINER, search_path
-- ===========================================================================
SELECT is((SELECT array_agg(obj ORDER BY obj) FROM ext_objects e JOIN pg_class c ON c.oid = e.objid
           WHERE e.kind = 'table' AND NOT c.relrowsecurity),
	NULL, 'row level security is enabled on every table');
SELECT is((SELECT array_agg(obj ORDER BY obj) FROM ext_objects e JOIN pg_class c ON c.oid = e.objid
           WHERE e.kind = 'table' AND NOT c.relforcerowsecurity),
	NULL, 'and forced (the owner too)');
SELECT is((SELECT array_agg(format('%s %s %s %s %s %s', p.polrelid::regclass, p.polname, p.polcmd, p.polpermissive,
                                   p.polroles, pg_get_expr(p.polqual, p.polrelid)) ORDER BY 1)
             FROM pg_policy p JOIN ext_objects e ON e.classid = 'pg_class'::regclass AND e.objid = p.polrelid
            WHERE NOT (p.polname = 'service_all' AND p.polcmd = '*' AND p.polpermissive AND p.polroles = '{0}'
                       AND pg_get_expr(p.polqual, p.polrelid) = '( SELECT roastr_state.caller_is_service() AS caller_is_service)'
                       AND pg_get_expr(p.polwithcheck, p.polrelid) = '( SELECT roastr_state.caller_is_service() AS caller_is_service)')),
	NULL, 'the only policy, on every table, admits the service and nobody else');
SELECT is((SELECT array_agg(obj ORDER BY obj) FROM ext_objects e
           WHERE e.kind = 'table'
             AND (SELECT count(*) FROM pg_policy p WHERE p.polrelid = e.objid) <> 1),
	NULL, 'every table has exactly that one policy');
SELECT is((SELECT array_agg(obj ORDER BY obj) FROM ext_objects e JOIN pg_proc p ON p.oid = e.objid
           WHERE p.prosecdef),
	NULL, 'no function is SECURITY DEFINER');
SELECT is((SELECT array_agg(format('%s %s', obj, p.proconfig) ORDER BY obj) FROM ext_objects e JOIN pg_proc p ON p.oid = e.objid
           WHERE p.proconfig IS DISTINCT FROM '{"search_path=pg_catalog, pg_temp"}'),
	NULL, 'every function pins search_path = pg_catalog, pg_temp (and sets nothing else)');
SELECT is((SELECT array_agg(format('%s %s', t.tgrelid::regclass, t.tgname) ORDER BY 1) FROM pg_trigger t
            JOIN ext_objects e ON e.classid = 'pg_class'::regclass AND e.objid = t.tgrelid
           WHERE NOT t.tgisinternal AND t.tgenabled <> 'O'),
	NULL, 'every trigger of the extension is enabled');

-- ===========================================================================
-- 4. Cross-tenant attempts through every function and every table: all
-- 42501, and nothing changes.
--
--   A  b000000a-…  owns organization org-a (member C)
--   B  b000000b-…  owns organization org-b (admin D)
--   C  b000000c-…  member of org-a
--   D  b000000d-…  admin of org-b
--   E  b000000e-…  no organization
-- ===========================================================================
\set uA '''b000000a-0000-4000-8000-000000000000'''
\set uB '''b000000b-0000-4000-8000-000000000000'''
\set uC '''b000000c-0000-4000-8000-000000000000'''
\set uD '''b000000d-0000-4000-8000-000000000000'''
\set uE '''b000000e-0000-4000-8000-000000000000'''
SELECT roastr_state.ensure_user(:uA, 'a@example.com') IS NOT NULL AS a,
       roastr_state.ensure_user(:uB, 'b@example.com') IS NOT NULL AS b,
       roastr_state.ensure_user(:uC, 'c@example.com') IS NOT NULL AS c,
       roastr_state.ensure_user(:uD, 'd@example.com') IS NOT NULL AS d,
       roastr_state.ensure_user(:uE, 'e@example.com') IS NOT NULL AS e \gset
SELECT roastr_state.create_organization(:uA, 'Org A', 'org-a') AS orga \gset
SELECT roastr_state.create_organization(:uB, 'Org B', 'org-b') AS orgb \gset
SELECT roastr_state.add_member(:'orga', :uC, 'member') AS x, roastr_state.add_member(:'orgb', :uD, 'admin') AS y \gset
SELECT roastr_state.patch(:uB, '{"persona.identity": "B''s secret", "roasting.roast_level": 5}') IS NOT NULL AS z \gset
SELECT roastr_state.consume_roasts(:uB, 3, 'b-key') IS NOT NULL AS z \gset

-- a non-service role that may EXECUTE every function: the C checks do not
-- rely on the grants
GRANT USAGE ON SCHEMA roastr_state TO rs_sec_granted;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA roastr_state TO rs_sec_granted;

-- Every table of the extension, as one JSON value, read as the superuser.
CREATE FUNCTION pg_temp.snapshot() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	part jsonb;
	res jsonb := '{}';
BEGIN
	FOR r IN SELECT objid::regclass AS t FROM ext_objects WHERE kind = 'table' ORDER BY obj LOOP
		EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY to_jsonb(x)::text), ''[]'') FROM %s x', r.t)
			INTO part;
		res := res || jsonb_build_object(r.t::text, part);
	END LOOP;
	RETURN res;
END
$$;

-- Run cmd as role r with the given claims (and request.jwt.claim.sub);
-- return its SQLSTATE (00000 when it succeeds).
CREATE FUNCTION pg_temp.attempt(r text, claims text, sub text, cmd text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text := '00000';
BEGIN
	PERFORM set_config('request.jwt.claims', coalesce(claims, ''), true);
	PERFORM set_config('request.jwt.claim.sub', coalesce(sub, ''), true);
	EXECUTE format('SET LOCAL ROLE %I', r);
	BEGIN
		EXECUTE cmd;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
	END;
	RESET ROLE;
	PERFORM set_config('request.jwt.claims', '', true);
	PERFORM set_config('request.jwt.claim.sub', '', true);
	RETURN st;
END
$$;

CREATE TEMP TABLE attempts (n serial, label text, r text, claims text, sub text, cmd text);
\set cA 'jsonb_build_object(''sub'', ' :uA ', ''role'', ''authenticated'')::text'
\set cB 'jsonb_build_object(''sub'', ' :uB ', ''role'', ''authenticated'')::text'
\set cC 'jsonb_build_object(''sub'', ' :uC ', ''role'', ''authenticated'')::text'
\set cD 'jsonb_build_object(''sub'', ' :uD ', ''role'', ''authenticated'')::text'
INSERT INTO attempts (label, r, claims, sub, cmd) VALUES
	-- user A on user B's state
	('A: state_full of B', 'authenticated', :cA, NULL, format('SELECT roastr_state.state_full(%L)', :uB)),
	('A: state_sync of B', 'authenticated', :cA, NULL, format('SELECT roastr_state.state_sync(%L, 0::bigint)', :uB)),
	('A: state_sync (time) of B', 'authenticated', :cA, NULL, format('SELECT roastr_state.state_sync(%L, ''2000-01-01+00''::timestamptz)', :uB)),
	('A: patch B', 'authenticated', :cA, NULL, format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": false}')$$, :uB)),
	('A: patch B''s persona', 'authenticated', :cA, NULL, format($$SELECT roastr_state.patch(%L, '{"persona.identity": "pwned"}')$$, :uB)),
	('A: patch B with a base version and a mutation id', 'authenticated', :cA, NULL,
		format($$SELECT roastr_state.patch(%L, '{"auth.name": "pwned"}', 1, 'b0000000-0000-4000-8000-0000000000ff')$$, :uB)),
	('A: consume B''s roasts', 'authenticated', :cA, NULL, format('SELECT roastr_state.consume_roasts(%L, 1)', :uB)),
	('A: replay B''s idempotency key', 'authenticated', :cA, NULL, format('SELECT roastr_state.consume_roasts(%L, 3, ''b-key'')', :uB)),
	('A: delete B', 'authenticated', :cA, NULL, format('SELECT roastr_state.delete_user(%L)', :uB)),
	('A: create an organization owned by B', 'authenticated', :cA, NULL, format('SELECT roastr_state.create_organization(%L, ''X'', ''x-by-a'')', :uB)),
	('A: clear B''s current organization', 'authenticated', :cA, NULL, format('SELECT roastr_state.set_current_organization(%L, NULL)', :uB)),
	('A: set B''s current organization', 'authenticated', :cA, NULL, format('SELECT roastr_state.set_current_organization(%L, %L)', :uB, :'orgb')),
	-- user A on organization B, which A is not in
	('A: make org-b current', 'authenticated', :cA, NULL, format('SELECT roastr_state.set_current_organization(NULL, %L)', :'orgb')),
	('A: join org-b', 'authenticated', :cA, NULL, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'orgb', :uA)),
	('A: add E to org-b', 'authenticated', :cA, NULL, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'orgb', :uE)),
	('A: demote D in org-b', 'authenticated', :cA, NULL, format('SELECT roastr_state.set_member_role(%L, %L, ''member'')', :'orgb', :uD)),
	('A: take ownership of org-b', 'authenticated', :cA, NULL, format('SELECT roastr_state.set_member_role(%L, %L, ''owner'')', :'orgb', :uA)),
	('A: remove D from org-b', 'authenticated', :cA, NULL, format('SELECT roastr_state.remove_member(%L, %L)', :'orgb', :uD)),
	('A: remove B from org-b', 'authenticated', :cA, NULL, format('SELECT roastr_state.remove_member(%L, %L)', :'orgb', :uB)),
	('A: rename org-b', 'authenticated', :cA, NULL, format('SELECT roastr_state.rename_organization(%L, ''pwned'')', :'orgb')),
	-- a member of one organization on another, and within their own
	('C: add E to org-b', 'authenticated', :cC, NULL, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'orgb', :uE)),
	('C: remove D from org-b', 'authenticated', :cC, NULL, format('SELECT roastr_state.remove_member(%L, %L)', :'orgb', :uD)),
	('C: rename org-b', 'authenticated', :cC, NULL, format('SELECT roastr_state.rename_organization(%L, ''pwned'')', :'orgb')),
	('C: make themselves admin of org-a', 'authenticated', :cC, NULL, format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :'orga', :uC)),
	('C: add E to org-a', 'authenticated', :cC, NULL, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'orga', :uE)),
	('C: rename org-a', 'authenticated', :cC, NULL, format('SELECT roastr_state.rename_organization(%L, ''pwned'')', :'orga')),
	('D (admin of org-b): add E to org-a', 'authenticated', :cD, NULL, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'orga', :uE)),
	('D: remove C from org-a', 'authenticated', :cD, NULL, format('SELECT roastr_state.remove_member(%L, %L)', :'orga', :uC)),
	('D: make C an admin of org-a', 'authenticated', :cD, NULL, format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :'orga', :uC)),
	('D: rename org-a', 'authenticated', :cD, NULL, format('SELECT roastr_state.rename_organization(%L, ''pwned'')', :'orga')),
	('D: make org-a current', 'authenticated', :cD, NULL, format('SELECT roastr_state.set_current_organization(NULL, %L)', :'orga')),
	('D: make another admin of org-b', 'authenticated', :cD, NULL, format('SELECT roastr_state.add_member(%L, %L, ''admin'')', :'orgb', :uE)),
	('D: take ownership of org-b', 'authenticated', :cD, NULL, format('SELECT roastr_state.set_member_role(%L, %L, ''owner'')', :'orgb', :uD)),
	('D: remove the owner of org-b', 'authenticated', :cD, NULL, format('SELECT roastr_state.remove_member(%L, %L)', :'orgb', :uB)),
	-- the service's functions and fields, as a user
	('A: ensure_user B', 'authenticated', :cA, NULL, format('SELECT roastr_state.ensure_user(%L, ''x@example.com'')', :uB)),
	('A: ensure_user themselves', 'authenticated', :cA, NULL, format('SELECT roastr_state.ensure_user(%L, ''x@example.com'')', :uA)),
	('A: mark_embeddings', 'authenticated', :cA, NULL, format('SELECT roastr_state.mark_embeddings(%L, ''m'', now())', :uA)),
	('A: set_product_plan', 'authenticated', :cA, NULL, 'SELECT roastr_state.set_product_plan(''p'', ''plus'')'),
	('A: apply_polar_webhook', 'authenticated', :cA, NULL, 'SELECT roastr_state.apply_polar_webhook(''w'', ''0'', ''v1,x'', ''{}'')'),
	('A: _apply_polar_event', 'authenticated', :cA, NULL, 'SELECT roastr_state._apply_polar_event(''w'', ''{}'')'),
	('A: rotate_master_key', 'authenticated', :cA, NULL, 'SELECT roastr_state.rotate_master_key()'),
	('A: notify_stats', 'authenticated', :cA, NULL, 'SELECT roastr_state.notify_stats()'),
	('A: stats', 'authenticated', :cA, NULL, 'SELECT roastr_state.stats()'),
	('A: caller_is_service', 'authenticated', :cA, NULL, 'SELECT roastr_state.caller_is_service()'),
	('A: state_trigger()', 'authenticated', :cA, NULL, 'SELECT roastr_state.state_trigger()'),
	('A: remember_deleted()', 'authenticated', :cA, NULL, 'SELECT roastr_state.remember_deleted()'),
	('A: plans_upsert()', 'authenticated', :cA, NULL, 'SELECT roastr_state.plans_upsert()'),
	('A: plans_changed()', 'authenticated', :cA, NULL, 'SELECT roastr_state.plans_changed()'),
	('A: persona_check()', 'authenticated', :cA, NULL, 'SELECT roastr_state.persona_check()'),
	('A: organization_member_deleted()', 'authenticated', :cA, NULL, 'SELECT roastr_state.organization_member_deleted()'),
	('A: patch their own plan', 'authenticated', :cA, NULL, $$SELECT roastr_state.patch(NULL, '{"subscription.plan": "plus"}')$$),
	('A: patch their own embeddings', 'authenticated', :cA, NULL, $$SELECT roastr_state.patch(NULL, '{"persona.embeddings_model": "x"}')$$),
	('A: patch their own e-mail', 'authenticated', :cA, NULL, $$SELECT roastr_state.patch(NULL, '{"auth.email": "x@example.com"}')$$),
	-- a role that may EXECUTE everything but is not the service
	('granted: ensure_user', 'rs_sec_granted', :cA, NULL, format('SELECT roastr_state.ensure_user(%L, ''x@example.com'')', :uA)),
	('granted: mark_embeddings', 'rs_sec_granted', :cA, NULL, format('SELECT roastr_state.mark_embeddings(%L, ''m'', now())', :uA)),
	('granted: set_product_plan', 'rs_sec_granted', :cA, NULL, 'SELECT roastr_state.set_product_plan(''p'', ''plus'')'),
	('granted: apply_polar_webhook', 'rs_sec_granted', :cA, NULL, 'SELECT roastr_state.apply_polar_webhook(''w'', ''0'', ''v1,x'', ''{}'')'),
	('granted: _apply_polar_event', 'rs_sec_granted', :cA, NULL, 'SELECT roastr_state._apply_polar_event(''w'', ''{}'')'),
	('granted: rotate_master_key', 'rs_sec_granted', :cA, NULL, 'SELECT roastr_state.rotate_master_key()'),
	('granted: notify_stats', 'rs_sec_granted', :cA, NULL, 'SELECT roastr_state.notify_stats()'),
	('granted: stats', 'rs_sec_granted', :cA, NULL, 'SELECT roastr_state.stats()'),
	('granted: state_full of B', 'rs_sec_granted', :cA, NULL, format('SELECT roastr_state.state_full(%L)', :uB)),
	('granted: patch B', 'rs_sec_granted', :cA, NULL, format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": false}')$$, :uB)),
	('granted: add themselves to org-b', 'rs_sec_granted', :cA, NULL, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'orgb', :uA)),
	-- forged claims
	('claims of A saying role service_role: state_full of B', 'authenticated',
		jsonb_build_object('sub', :uA, 'role', 'service_role')::text, NULL, format('SELECT roastr_state.state_full(%L)', :uB)),
	('claims of A saying role service_role: patch B''s plan', 'authenticated',
		jsonb_build_object('sub', :uA, 'role', 'service_role')::text, NULL, format($$SELECT roastr_state.patch(%L, '{"subscription.plan": "plus"}')$$, :uB)),
	('claims of A saying role service_role: join org-b', 'authenticated',
		jsonb_build_object('sub', :uA, 'role', 'service_role')::text, NULL, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'orgb', :uA)),
	('claims of A, request.jwt.claim.sub of B: state_full of B', 'authenticated', :cA, :uB, format('SELECT roastr_state.state_full(%L)', :uB)),
	('B''s sub nested in an object', 'authenticated', jsonb_build_object('user', jsonb_build_object('sub', :uB))::text, NULL,
		format('SELECT roastr_state.state_full(%L)', :uB)),
	('B''s sub in an array', 'authenticated', jsonb_build_object('sub', jsonb_build_array(:uB))::text, NULL,
		format('SELECT roastr_state.state_full(%L)', :uB)),
	('B''s id under "SUB"', 'authenticated', jsonb_build_object('SUB', :uB)::text, NULL, format('SELECT roastr_state.state_full(%L)', :uB)),
	('B''s claims followed by garbage', 'authenticated', :cB || ' x', NULL, format('SELECT roastr_state.state_full(%L)', :uB)),
	('anon with B''s claims', 'anon', :cB, NULL, 'SELECT roastr_state.state_full(NULL)'),
	('anon with B''s claims: patch', 'anon', :cB, NULL, $$SELECT roastr_state.patch(NULL, '{"roasting.enabled": false}')$$),
	('anon with B''s claims: rename org-b', 'anon', :cB, NULL, format('SELECT roastr_state.rename_organization(%L, ''pwned'')', :'orgb')),
	('a role without grants, with B''s claims', 'rs_sec_stranger', :cB, NULL, 'SELECT roastr_state.state_full(NULL)'),
	-- no claims: NULL names nobody, and neither does anything else
	('no claims: state_full(NULL)', 'authenticated', NULL, NULL, 'SELECT roastr_state.state_full(NULL)'),
	('no claims: state_full of A', 'authenticated', NULL, NULL, format('SELECT roastr_state.state_full(%L)', :uA)),
	('no claims: state_sync(NULL)', 'authenticated', NULL, NULL, 'SELECT roastr_state.state_sync(NULL, 0::bigint)'),
	('no claims: state_sync(NULL) by time', 'authenticated', NULL, NULL, 'SELECT roastr_state.state_sync(NULL, ''2000-01-01+00''::timestamptz)'),
	('no claims: patch(NULL)', 'authenticated', NULL, NULL, $$SELECT roastr_state.patch(NULL, '{"roasting.enabled": false}')$$),
	('no claims: consume_roasts(NULL)', 'authenticated', NULL, NULL, 'SELECT roastr_state.consume_roasts(NULL)'),
	('no claims: delete_user(NULL)', 'authenticated', NULL, NULL, 'SELECT roastr_state.delete_user(NULL)'),
	('no claims: delete_user of A', 'authenticated', NULL, NULL, format('SELECT roastr_state.delete_user(%L)', :uA)),
	('no claims: create_organization(NULL)', 'authenticated', NULL, NULL, 'SELECT roastr_state.create_organization(NULL, ''X'', ''x-nobody'')'),
	('no claims: create_organization for A', 'authenticated', NULL, NULL, format('SELECT roastr_state.create_organization(%L, ''X'', ''x-nobody'')', :uA)),
	('no claims: set_current_organization(NULL)', 'authenticated', NULL, NULL, 'SELECT roastr_state.set_current_organization(NULL, NULL)'),
	('no claims: add to org-a', 'authenticated', NULL, NULL, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :'orga', :uE)),
	('no claims: set a role in org-a', 'authenticated', NULL, NULL, format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :'orga', :uC)),
	('no claims: remove from org-a', 'authenticated', NULL, NULL, format('SELECT roastr_state.remove_member(%L, %L)', :'orga', :uC)),
	('no claims: rename org-a', 'authenticated', NULL, NULL, format('SELECT roastr_state.rename_organization(%L, ''pwned'')', :'orga')),
	-- a caller without claims learns nothing about which organizations
	-- exist: 42501 before any lookup
	('no claims: add to an unknown organization', 'authenticated', NULL, NULL, format('SELECT roastr_state.add_member(%L, %L, ''member'')', :nobody, :uE)),
	('no claims: set a role in an unknown organization', 'authenticated', NULL, NULL, format('SELECT roastr_state.set_member_role(%L, %L, ''admin'')', :nobody, :uC)),
	('no claims: remove from an unknown organization', 'authenticated', NULL, NULL, format('SELECT roastr_state.remove_member(%L, %L)', :nobody, :uC)),
	('no claims: rename an unknown organization', 'authenticated', NULL, NULL, format('SELECT roastr_state.rename_organization(%L, ''pwned'')', :nobody)),
	('request.jwt.claim.sub not a uuid', 'authenticated', NULL, 'admin', 'SELECT roastr_state.state_full(NULL)');
-- malformed claims, each through a read, a write and an organization function
INSERT INTO attempts (label, r, claims, sub, cmd)
SELECT format('claims %s: %s', c.d, f.d), 'authenticated', c.claims, NULL, f.cmd
  FROM (VALUES (1, 'cut short', '{"sub": '), (2, 'not JSON', 'not json'), (3, 'with a numeric sub', '{"sub": 123}'),
               (4, 'with a null sub', '{"sub": null}'), (5, 'with an empty sub', '{"sub": ""}'),
               (6, 'with a sub that is not a uuid', '{"sub": "admin"}'), (7, 'an array', '[]'),
               (8, 'a bare string', to_json(:uB::text)::text),
               (9, 'with a sub of 35 characters', jsonb_build_object('sub', left(:uB, 35))::text),
               (10, 'with a sub of 37 characters', jsonb_build_object('sub', :uB || '0')::text),
               (11, 'with a braced sub', jsonb_build_object('sub', '{' || :uB || '}')::text)) c(n, d, claims),
       (VALUES (1, 'state_full', format('SELECT roastr_state.state_full(%L)', :uB)),
               (2, 'patch', format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": false}')$$, :uB)),
               (3, 'rename', format('SELECT roastr_state.rename_organization(%L, ''pwned'')', :'orgb'))) f(n, d, cmd)
 ORDER BY c.n, f.n;
-- direct access to every table, as a user and as anon
INSERT INTO attempts (label, r, claims, sub, cmd)
SELECT format('%s: %s on %s', r.r, x.d, e.obj), r.r, r.claims, NULL,
       format(x.cmd, e.obj, (SELECT attname FROM pg_attribute WHERE attrelid = e.objid AND attnum = 1))
  FROM ext_objects e,
       (VALUES (1, 'authenticated', :cB), (2, 'anon', :cB)) r(n, r, claims),
       (VALUES (1, 'SELECT', 'SELECT * FROM %s'), (2, 'INSERT', 'INSERT INTO %s DEFAULT VALUES'),
               (3, 'UPDATE', 'UPDATE %s SET %I = %2$I'), (4, 'DELETE', 'DELETE FROM %s'),
               (5, 'TRUNCATE', 'TRUNCATE %s')) x(n, d, cmd)
 WHERE e.kind = 'table'
 ORDER BY r.n, e.obj, x.n;

SELECT pg_temp.snapshot() AS before \gset
SELECT is(pg_temp.attempt(r, claims, sub, cmd), '42501', label) FROM attempts ORDER BY n;
SELECT is(pg_temp.snapshot(), :'before'::jsonb, 'after all these attempts, every table is exactly as it was');
SELECT is((SELECT count(*)::int FROM roastr_state.state WHERE user_id IN (:uA, :uB, :uC, :uD, :uE)), 5, 'all five users are there');

-- ===========================================================================
-- 5. authorize_channel: a user's own user:<uuid> (as the server spells it,
-- lower case) and nothing else; the service also every user channel and
-- roastr_state / roastr_state_embeddings.
-- ===========================================================================
CREATE FUNCTION pg_temp.may_listen(r text, claims text, channel text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	res text;
BEGIN
	PERFORM set_config('request.jwt.claims', coalesce(claims, ''), true);
	EXECUTE format('SET LOCAL ROLE %I', r);
	BEGIN
		-- dynamic: a cached plan would keep the first caller's EXECUTE check
		EXECUTE 'SELECT roastr_state.authorize_channel($1)::text' INTO res USING channel;
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS res = RETURNED_SQLSTATE;
	END;
	RESET ROLE;
	PERFORM set_config('request.jwt.claims', '', true);
	RETURN res;
END
$$;
SELECT is(pg_temp.may_listen(r, claims, channel), want, label)
  FROM (VALUES
	(1, 'authenticated', :cA, 'user:' || :uA, 'true', 'a user may listen on their own channel'),
	(2, 'authenticated', jsonb_build_object('sub', upper(:uA))::text, 'user:' || :uA, 'true',
		'also when the sub claim spells their id in upper case'),
	(3, 'authenticated', :cA, 'user:' || :uB, 'false', 'not on another user''s channel'),
	(4, 'authenticated', :cA, 'user:' || upper(:uA), 'false', 'not on an upper-case spelling of their own'),
	(5, 'authenticated', :cA, 'USER:' || :uA, 'false', 'not with the prefix in upper case'),
	(6, 'authenticated', :cA, ' user:' || :uA, 'false', 'not with a leading space'),
	(7, 'authenticated', :cA, 'user:' || :uA || ' ', 'false', 'not with a trailing space'),
	(8, 'authenticated', :cA, 'user:' || :uA || E'\n', 'false', 'not with a trailing newline'),
	(9, 'authenticated', :cA, 'user: ' || :uA, 'false', 'not with a space after the colon'),
	(10, 'authenticated', :cA, 'user:{' || :uA || '}', 'false', 'not in braces'),
	(11, 'authenticated', :cA, 'user:' || replace(:uA, '-', ''), 'false', 'not without hyphens'),
	(12, 'authenticated', :cA, 'user:' || :uA || ':x', 'false', 'not with a suffix'),
	(13, 'authenticated', :cA, 'user:' || :uA || :uB, 'false', 'not with another id appended'),
	(14, 'authenticated', :cA, 'user:' || left(:uA, 35), 'false', 'not cut short'),
	(15, 'authenticated', :cA, 'user:*', 'false', 'not a wildcard'),
	(16, 'authenticated', :cA, 'user:', 'false', 'not the bare prefix'),
	(17, 'authenticated', :cA, 'user', 'false', 'not "user"'),
	(18, 'authenticated', :cA, '', 'false', 'not the empty name'),
	(19, 'authenticated', :cA, NULL, 'false', 'not NULL'),
	(20, 'authenticated', :cA, 'roastr_state', 'false', 'not the shared channel'),
	(21, 'authenticated', :cA, 'roastr_state_embeddings', 'false', 'not the embeddings channel'),
	(22, 'authenticated', :cA, 'ROASTR_STATE', 'false', 'nor its upper-case spelling'),
	(23, 'authenticated', NULL, 'user:' || :uA, 'false', 'without claims, no user channel'),
	(24, 'authenticated', NULL, 'roastr_state', 'false', 'and not the shared channel'),
	(25, 'authenticated', '{"sub": ', 'user:' || :uA, 'false', 'malformed claims: nothing'),
	(26, 'authenticated', jsonb_build_object('sub', :uA, 'role', 'service_role')::text, 'roastr_state', 'false',
		'claims saying role service_role do not make a user the service'),
	(27, 'anon', :cA, 'user:' || :uA, '42501', 'anon may not even ask'),
	(28, 'service_role', NULL, 'roastr_state', 'true', 'the service may listen on the shared channel'),
	(29, 'service_role', NULL, 'roastr_state_embeddings', 'true', 'and on the embeddings channel'),
	(30, 'service_role', NULL, 'user:' || :uB, 'true', 'and on every user channel'),
	(31, 'service_role', NULL, 'user:' || upper(:uB), 'false', 'spelled as the server spells it'),
	(32, 'service_role', NULL, 'roastr_state ', 'false', 'not with a trailing space'),
	(33, 'service_role', NULL, 'roastr_state_embeddings_x', 'false', 'not with a suffix'),
	(34, 'service_role', NULL, 'pg_notify', 'false', 'not a channel that is not ours'),
	(35, 'service_role', NULL, NULL, 'false', 'not NULL'),
	(36, 'rs_sec_backend', NULL, 'roastr_state', 'true', 'a member of service_role is the service'),
	(37, 'rs_sec_granted', NULL, 'roastr_state', 'false', 'a role that may merely EXECUTE it is not')
  ) v(n, r, claims, channel, want, label)
 ORDER BY n;

SELECT * FROM finish();
ROLLBACK;
