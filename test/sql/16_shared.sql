-- Shared changes (0.8.0): an operator's change of a row many states are
-- computed from -- a plan's limit, a product mapping, an organization's
-- name, a member's role, a deleted organization -- writes no state row in
-- its own transaction: every state row keeps its ctid, and the
-- transaction's counters of roastr_state.state do not move.  Each user's
-- next read shows the new values at a new version of the user's own, and
-- a sync from the cursor the user held reports the changed fields.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(40);

-- 300 users on the free plan, all members of one organization that is
-- their current one, and one user on pro.
\set n 300
SELECT count(*) AS made FROM generate_series(1, :n) i,
	LATERAL roastr_state.ensure_user(format('b0000000-0000-4000-8000-%s', lpad(i::text, 12, '0'))::uuid,
	                                 format('u%s@example.com', i)) x \gset
\set m1 '''b0000000-0000-4000-8000-000000000001'''
\set m2 '''b0000000-0000-4000-8000-000000000002'''
\set m3 '''b0000000-0000-4000-8000-000000000003'''
\set m4 '''b0000000-0000-4000-8000-000000000004'''
SELECT roastr_state.ensure_user(:u1, 'pro@example.com') IS NOT NULL AS x \gset
SELECT roastr_state.patch(:u1, '{"subscription.plan": "pro"}') IS NOT NULL AS x \gset
SELECT roastr_state.create_organization(:m1, 'Big', 'big') AS big \gset
SELECT count(*) AS added FROM generate_series(2, :n) i,
	LATERAL roastr_state.add_member(:'big', format('b0000000-0000-4000-8000-%s', lpad(i::text, 12, '0'))::uuid, 'member') x \gset
SELECT is((SELECT count(*)::int FROM roastr_state.state WHERE organization_id = :'big'), :n,
	'fixture: the organization is current for all its members');

-- Every state row's ctid and version; the transaction's writes to the state
-- table so far (inserts, updates, deletes, subtransactions included).
CREATE TEMP TABLE seen (user_id uuid PRIMARY KEY, tid tid, version bigint);
CREATE FUNCTION pg_temp.remember() RETURNS void LANGUAGE sql AS $$
	TRUNCATE seen;
	INSERT INTO seen SELECT user_id, ctid, version FROM roastr_state.state;
$$;
CREATE FUNCTION pg_temp.rows_moved() RETURNS int LANGUAGE sql AS $$
	SELECT count(*)::int FROM roastr_state.state s FULL JOIN seen USING (user_id)
	 WHERE s.ctid IS DISTINCT FROM seen.tid OR s.version IS DISTINCT FROM seen.version
$$;
CREATE FUNCTION pg_temp.writes() RETURNS bigint LANGUAGE sql AS $$
	SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables
	 WHERE relid = 'roastr_state.state'::regclass
$$;
-- the fields a sync from a cursor reports, as field=value@version (the
-- dates of the usage period, which depend on the day, left out)
CREATE FUNCTION pg_temp.changes(u uuid, since bigint) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(format('%s=%s@%s', c->>'field', c->'value', c->>'version'), ' ' ORDER BY c->>'field'), '')
	  FROM jsonb_array_elements(roastr_state.state_sync(u, since)->'changes') c
	 WHERE c->>'field' NOT IN ('usage.period_start', 'usage.reset_date')
$$;

-- ---------------------------------------------------------------------------
-- a plan's limit
-- ---------------------------------------------------------------------------
SELECT pg_temp.remember() AS x, pg_temp.writes() AS w0, pg_temp.ver(:m2) AS v2, pg_temp.ver(:m3) AS v3,
       pg_temp.ver(:u1) AS vp \gset
UPDATE roastr_state.plans SET monthly_roasts_limit = 150 WHERE plan = 'free';
SELECT is(pg_temp.writes(), :w0::bigint, 'a plan limit change: the transaction wrote no state row');
SELECT is(pg_temp.rows_moved(), 0, 'every state row keeps its ctid and version');
SELECT ok((SELECT changed_stamp > 0 FROM roastr_state.plans WHERE plan = 'free'), 'the plan''s row has a new change stamp');
SELECT is((roastr_state.stats()->>'users_with_shared_moves_pending')::int, :n,
	'every user on free has the change pending, and nobody else');
SELECT is(roastr_state.state_full(:m2)->'usage'->>'monthly_roasts_limit', '150', 'a user''s next read shows the new limit');
SELECT is(pg_temp.ver(:m2), :v2::bigint + 1, 'at a new version, written by that read');
SELECT is(pg_temp.changes(:m2, :v2),
	format('usage.monthly_roasts_limit=150@%s usage.remaining_roasts=150@%s', :v2 + 1, :v2 + 1),
	'a sync from the old cursor reports the limit and what remains');
SELECT is(pg_temp.changes(:m2, :v2 + 1), '', 'once');
SELECT is(roastr_state.consume_roasts(:m3, 149)->>'remaining_roasts', '1',
	'consume_roasts settles the change first, then consumes under the new limit');
SELECT is(pg_temp.changes(:m3, :v3),
	format('usage.monthly_roasts_limit=150@%s usage.monthly_roasts_used=149@%s usage.remaining_roasts=1@%s',
	       :v3 + 1, :v3 + 2, :v3 + 2),
	'two versions: the settled limit, then the consumption');
SELECT is(roastr_state.state_full(:u1)->'usage'->>'monthly_roasts_limit', '1000', 'a user on pro');
SELECT is(pg_temp.ver(:u1), :vp::bigint, 'is not moved');
SELECT is((roastr_state.stats()->>'users_with_shared_moves_pending')::int, :n - 2, 'two users settled it');
-- an unchanged limit, and a trial length, are no change
SELECT pg_temp.remember() AS x \gset
UPDATE roastr_state.plans SET monthly_roasts_limit = 1000, trial_days = 21 WHERE plan = 'pro';
SELECT is((SELECT count(*)::int FROM roastr_state.plans WHERE plan = 'pro' AND changed_stamp <> 0), 0,
	'the same limit with another trial length: no new stamp');
SELECT is(roastr_state.state_full(:u1)->'_meta'->>'version', :vp::text, 'and no new version');

-- ---------------------------------------------------------------------------
-- a product mapping: it decides how later webhook events map, no state
-- ---------------------------------------------------------------------------
SELECT pg_temp.remember() AS x, pg_temp.writes() AS w0 \gset
SELECT roastr_state.set_product_plan('prod_big', 'pro') IS NULL AS x \gset
SELECT roastr_state.set_product_plan('prod_big', 'plus') IS NULL AS x \gset
SELECT roastr_state.set_product_plan('prod_big', NULL) IS NULL AS x \gset
SELECT is(pg_temp.writes(), :w0::bigint, 'product mappings: the transaction wrote no state row');
SELECT is(pg_temp.rows_moved(), 0, 'every state row keeps its ctid and version');

-- ---------------------------------------------------------------------------
-- an organization's name, a member's role, the organization deleted
-- ---------------------------------------------------------------------------
SELECT count(roastr_state.state_full(user_id)) AS settled FROM roastr_state.state \gset
SELECT pg_temp.remember() AS x, pg_temp.writes() AS w0, pg_temp.ver(:m2) AS v2, pg_temp.ver(:m4) AS v4 \gset
SELECT roastr_state.rename_organization(:'big', 'Bigger') IS NULL AS x \gset
SELECT is(pg_temp.writes(), :w0::bigint, 'a rename of an organization of 300: the transaction wrote no state row');
SELECT is(pg_temp.rows_moved(), 0, 'every state row keeps its ctid and version');
SELECT is(roastr_state.state_full(:m2)->'organization'->>'name', 'Bigger', 'a member''s next read shows the new name');
SELECT is(pg_temp.changes(:m2, :v2),
	format('organization.id="%s"@%s organization.name="Bigger"@%s organization.role="member"@%s organization.slug="big"@%s',
	       :'big', :v2 + 1, :v2 + 1, :v2 + 1, :v2 + 1),
	'a sync from the old cursor reports the organization at a new version of the member''s own');

SELECT pg_temp.remember() AS x, pg_temp.writes() AS w0, pg_temp.ver(:m2) AS v2 \gset
SELECT roastr_state.set_member_role(:'big', :m4, 'admin') IS NULL AS x \gset
SELECT roastr_state.set_member_role(:'big', :m2, 'owner') IS NULL AS x \gset
SELECT is(pg_temp.writes(), :w0::bigint, 'a role change and a transfer: the transaction wrote no state row');
SELECT is(pg_temp.rows_moved(), 0, 'every state row keeps its ctid and version');
SELECT is(pg_temp.changes(:m4, :v4), format('organization.id="%s"@%s organization.name="Bigger"@%s organization.role="admin"@%s organization.slug="big"@%s',
	       :'big', :v4 + 1, :v4 + 1, :v4 + 1, :v4 + 1),
	'the member''s next sync reports the new role, the rename with it: one version for both');
SELECT is(ARRAY[roastr_state.state_full(:m1)->'organization'->>'role', roastr_state.state_full(:m2)->'organization'->>'role'],
	ARRAY['admin', 'owner'], 'the old and the new owner each see their role');
SELECT is(pg_temp.ver(:m2), :v2::bigint + 1, 'the new owner at a new version');

SELECT pg_temp.remember() AS x, pg_temp.writes() AS w0, pg_temp.ver(:m3) AS v3 \gset
SELECT roastr_state.delete_organization(:'big') IS NULL AS x \gset
SELECT is(pg_temp.writes(), :w0::bigint, 'deleting an organization of 300: the transaction wrote no state row');
SELECT is(pg_temp.rows_moved(), 0, 'every state row keeps its ctid and version');
SELECT is((SELECT count(*)::int FROM roastr_state.organization_members WHERE org_id = :'big'), :n,
	'nor did it delete the memberships');
SELECT is(pg_temp.changes(:m3, :v3),
	format('organization.id=null@%s organization.name=null@%s organization.role=null@%s organization.slug=null@%s',
	       :v3 + 1, :v3 + 1, :v3 + 1, :v3 + 1),
	'a member''s next sync reports the organization gone');
SELECT is((SELECT organization_id FROM roastr_state.state WHERE user_id = :m3), NULL, 'and clears it from the row');
SELECT is((roastr_state.stats()->>'users_with_shared_moves_pending')::int, :n - 1,
	'the other members have it pending');
SELECT is(roastr_state.create_organization(:m3, 'Big again', 'big') IS NOT NULL, true, 'the slug is free');

-- ---------------------------------------------------------------------------
-- the transaction that changes a shared row may write its own user's row
-- before and after: only that row moves
-- ---------------------------------------------------------------------------
SELECT pg_temp.remember() AS x, pg_temp.writes() AS w0 \gset
SELECT roastr_state.patch(:u1, '{"roasting.enabled": false}') IS NOT NULL AS x \gset
UPDATE roastr_state.plans SET monthly_roasts_limit = 1200 WHERE plan = 'pro';
SELECT is(pg_temp.writes(), :w0::bigint + 1, 'a patch and a plan limit change: one state row written, the patch''s');
SELECT is(pg_temp.rows_moved(), 1, 'one row moved');

-- ---------------------------------------------------------------------------
-- last, as it makes the transaction read-only: a read that cannot write
-- computes the pending change and writes nothing (as on a standby); the
-- version and a sync from it wait for a writable call
-- ---------------------------------------------------------------------------
SELECT pg_temp.ver(:u1) AS vp, pg_temp.ver(:m4) AS v4 \gset
SET TRANSACTION READ ONLY;
SELECT is(roastr_state.state_full(:u1)->'usage'->>'monthly_roasts_limit', '1200', 'a read-only read computes the new limit');
SELECT is(pg_temp.ver(:u1), :vp::bigint, 'without writing');
SELECT is(roastr_state.state_full(:m4)->'organization', 'null'::jsonb, 'and a deleted organization as none');
SELECT is(pg_temp.changes(:m4, :v4), '', 'a sync from the current version has nothing yet: it is not a version');

SELECT * FROM finish();
ROLLBACK;
