-- The installed objects and their security properties.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(17);

SELECT has_schema('roastr_state');
SELECT has_table('roastr_state', 'state', 'state table exists');
SELECT has_table('roastr_state', 'persona', 'persona table exists');
SELECT has_table('roastr_state', 'plans', 'plans table exists');
SELECT has_table('roastr_state', 'mutations', 'mutations table exists');
SELECT has_trigger('roastr_state', 'state', 'roastr_state_version', 'version trigger on state');

SELECT is(
	(SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE n.nspname = 'roastr_state' AND c.relkind = 'r'
	    AND NOT (c.relrowsecurity AND c.relforcerowsecurity)),
	0, 'row security is enabled and forced on every table');

SELECT is(
	(SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	  WHERE n.nspname = 'roastr_state'
	    AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false)),
	0, 'every function pins search_path');

SELECT is(
	(SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	  WHERE n.nspname = 'roastr_state' AND p.prosecdef),
	0, 'no function is SECURITY DEFINER');

SELECT is(
	(SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	  WHERE n.nspname = 'roastr_state'
	    AND (p.proacl IS NULL
	         OR EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = 0))),
	0, 'PUBLIC cannot execute any function');

SELECT is(
	(SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE n.nspname = 'roastr_state' AND c.relkind IN ('r', 'S', 'v')
	    AND EXISTS (SELECT FROM aclexplode(c.relacl) a WHERE a.grantee = 0)),
	0, 'PUBLIC has no privilege on any table');

SELECT ok(NOT has_schema_privilege('public', 'roastr_state', 'USAGE'),
	'PUBLIC has no USAGE on the schema');

SELECT is(
	(SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE n.nspname = 'roastr_state' AND c.relkind = 'r'
	    AND NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid)),
	0, 'every table has a row security policy');

SELECT is(
	(SELECT string_agg(plan || '=' || coalesce(monthly_roasts_limit::text, 'unlimited')
	                   || '/' || coalesce(trial_days::text, '-'), ' ' ORDER BY monthly_roasts_limit NULLS LAST)
	   FROM roastr_state.plans),
	'free=100/- starter=500/30 pro=1000/14 plus=unlimited/14',
	'plan defaults of the API');

SELECT is(
	(SELECT extrelocatable FROM pg_extension WHERE extname = 'roastr_state'),
	false, 'the extension is not relocatable');

SELECT is(
	(SELECT extversion FROM pg_extension WHERE extname = 'roastr_state'),
	'0.8.0', 'installed version');

SELECT is(
	(SELECT string_agg(attname, ',' ORDER BY attnum) FROM (
		SELECT attname, attnum FROM pg_attribute
		 WHERE attrelid = 'roastr_state.state'::regclass AND attnum > 0 AND NOT attisdropped
		   AND attnum <= (SELECT attnum FROM pg_attribute
		                   WHERE attrelid = 'roastr_state.state'::regclass AND attname = 'field_log')
		 ORDER BY attnum DESC LIMIT 8) a),
	'shield_level,usage_period_start,version,updated_at,monthly_roasts_used,roasting_enabled,roast_level,field_log',
	'the columns a write changes sit together at the end of the state row, the change log last');

SELECT * FROM finish();
ROLLBACK;
