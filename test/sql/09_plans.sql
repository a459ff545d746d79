-- Plans and trials: derived trial days, the subscription lifecycle, a
-- canceled plan kept until the period ends, expired trials reading as free
-- everywhere, product mappings.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(35);

SELECT roastr_state.ensure_user(:u1, 'ann@example.com') IS NOT NULL;
SELECT roastr_state.ensure_user(:u2, 'bob@example.com') IS NOT NULL;
CREATE FUNCTION pg_temp.sub(u uuid) RETURNS text
LANGUAGE sql AS $$ SELECT s->>'plan' || '/' || (s->>'status') FROM (SELECT roastr_state.state_full(u)->'subscription' s) x $$;

-- a trial
SELECT roastr_state.patch(:u1, format('{"subscription.plan": "pro", "subscription.status": "trial", "subscription.trial_ends_at": "%s"}',
	now() + interval '13 days 12 hours')::jsonb) IS NOT NULL;
SELECT is(roastr_state.state_full(:u1)->'subscription'->'trial_days_remaining', '14', 'trial days are whole days, rounded up');
SELECT is(roastr_state.state_full(:u1)->'usage'->'monthly_roasts_limit', '1000', 'the trial has the plan''s limit');
SELECT is(pg_temp.sub(:u1), 'pro/trial', 'in trial');

-- the lifecycle
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"subscription.status": "active"}')$$, :u1))->>'sqlstate', '00000', 'trial -> active');
SELECT is(roastr_state.state_full(:u1)->'subscription'->'trial_days_remaining', 'null', 'no trial days outside a trial');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"subscription.status": "trial"}')$$, :u1))->>'detail',
	'A subscription cannot go from "active" to "trial".', 'active -> trial is refused');
SELECT is(pg_temp.sub(:u1), 'pro/active', 'and changes nothing');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"subscription.status": "past_due"}')$$, :u1))->>'sqlstate', '00000', 'active -> past_due');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"subscription.status": "trial"}')$$, :u1))->>'sqlstate', '22023', 'past_due -> trial is refused');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"subscription.status": "active"}')$$, :u1))->>'sqlstate', '00000', 'past_due -> active');
SELECT is(pg_temp.outcome(format('UPDATE roastr_state.state SET subscription_status = ''trial'' WHERE user_id = %L', :u1))->>'sqlstate',
	'22023', 'direct UPDATEs follow the lifecycle too');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"subscription.status": "trial", "subscription.polar_subscription_id": "sub_new"}')$$, :u1))->>'sqlstate',
	'00000', 'a new subscription may start in any status');

-- canceled at period end keeps the plan until current_period_end
SELECT roastr_state.patch(:u1, format('{"subscription.status": "canceled", "subscription.current_period_end": "%s"}',
	now() + interval '1 day')::jsonb) IS NOT NULL;
SELECT is(pg_temp.sub(:u1), 'pro/canceled', 'a canceled subscription keeps its plan until the period ends');
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"subscription.status": "past_due"}')$$, :u1))->>'sqlstate', '22023', 'canceled -> past_due is refused');
UPDATE roastr_state.state SET current_period_end = now() - interval '1 second' WHERE user_id = :u1;
SELECT pg_temp.ver(:u1) AS v \gset
SELECT is(pg_temp.sub(:u1), 'free/canceled', 'then it is the free plan');
SELECT is((SELECT plan FROM roastr_state.state WHERE user_id = :u1), 'free', 'written down by the read');
SELECT is(jsonb_path_query_array(roastr_state.state_sync(:u1, :v), '$.changes[*].field'),
	'["persona.tolerance", "subscription.plan", "usage.monthly_roasts_limit", "usage.monthly_roasts_used", "usage.period_start", "usage.remaining_roasts", "usage.reset_date"]',
	'and syncs see it (persona.tolerance too: below pro it reads as null)');

-- an expired trial that no webhook ended reads as free everywhere
SELECT roastr_state.ensure_user(:u3, 'cy@example.com') IS NOT NULL;
SELECT roastr_state.patch(:u3, format('{"subscription.plan": "pro", "subscription.status": "trial", "subscription.trial_ends_at": "%s"}',
	now() - interval '1 second')::jsonb) IS NOT NULL;
SELECT is(roastr_state.consume_roasts(:u3, 101)->'allowed', 'false', 'consume_roasts: the free limit applies');
SELECT is((SELECT plan || '/' || subscription_status FROM roastr_state.state WHERE user_id = :u3), 'free/canceled',
	'and it wrote the expiry down');

-- product mappings
SELECT is(pg_temp.outcome($$SELECT roastr_state.set_product_plan('prod_1', 'pro')$$)->>'sqlstate', '00000', 'map a product');
SELECT is((SELECT plan FROM roastr_state.product_plans WHERE product_id = 'prod_1'), 'pro', 'mapped');
SELECT is(pg_temp.outcome($$SELECT roastr_state.set_product_plan('prod_1', 'plus')$$)->>'sqlstate', '00000', 'remap it');
SELECT is(pg_temp.outcome($$SELECT roastr_state.set_product_plan('prod_1', 'free')$$)->>'sqlstate', '22023', 'not to free');
SELECT is(pg_temp.outcome($$SELECT roastr_state.set_product_plan('prod_1', 'gold')$$)->>'sqlstate', '22023', 'not to an unknown plan');
SELECT is(pg_temp.outcome($$SELECT roastr_state.set_product_plan('', 'pro')$$)->>'sqlstate', '22023', 'not an empty product');
SELECT is(pg_temp.outcome($$SELECT roastr_state.set_product_plan('prod_1', NULL)$$)->>'sqlstate', '00000', 'NULL removes it');
SELECT is((SELECT count(*)::int FROM roastr_state.product_plans), 0, 'removed');

-- A value shown as computed (usage.period_start, usage.monthly_roasts_used,
-- subscription.plan/status) carries the newest version of what it is
-- computed from, so a device syncing from its cursor gets every change
-- (found by make soak: period_start kept its column's version).
\set ud '\'a9999999-9999-4999-8999-999999999999\''
SELECT roastr_state.ensure_user(:ud, 'dv@example.com') IS NOT NULL;
SELECT is(roastr_state.consume_roasts(:ud, 3)->'allowed', 'true', 'derived versions: three roasts on the free plan');
SELECT pg_temp.ver(:ud) AS v0 \gset
SELECT roastr_state.patch(:ud, jsonb_build_object('subscription.plan', 'pro', 'subscription.status', 'active',
	'subscription.current_period_start', now() - interval '1 day',
	'subscription.current_period_end', now() + interval '29 days')) IS NOT NULL;
CREATE TEMP TABLE dv AS
	SELECT c->>'field' AS field, c->>'value' AS value, (c->>'version')::bigint AS version
	  FROM jsonb_array_elements(roastr_state.state_sync(:ud, :v0) -> 'changes') c;
SELECT is((SELECT value::timestamptz FROM dv WHERE field = 'usage.period_start'), now() - interval '1 day',
	'derived versions: the new billing period start is synced from the old cursor');
SELECT is((SELECT version FROM dv WHERE field = 'usage.period_start'), pg_temp.ver(:ud),
	'at the version that changed it');
SELECT is((SELECT count(*)::int FROM dv
			WHERE value IS DISTINCT FROM roastr_state.state_full(:ud) -> split_part(field, '.', 1) ->> split_part(field, '.', 2)),
	0, 'and every synced value is the one state_full shows');
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(roastr_state.state_sync(:ud, 0) -> 'changes') c
			WHERE (c->>'version')::bigint > :v0 AND NOT EXISTS (SELECT FROM dv WHERE dv.field = c->>'field')),
	0, 'derived versions: no field newer than the cursor is missing from the sync');

-- last, as it makes this transaction read-only: the expiry of u2's trial is
-- computed by reads that cannot write, and written by none
SELECT roastr_state.patch(:u2, format('{"subscription.plan": "pro", "subscription.status": "trial", "subscription.trial_ends_at": "%s"}',
	now() - interval '1 second')::jsonb) IS NOT NULL;
SELECT pg_temp.ver(:u2) AS v \gset
SET TRANSACTION READ ONLY;
SELECT is(pg_temp.sub(:u2), 'free/canceled', 'a read-only read computes the expired trial');
SELECT is(pg_temp.ver(:u2), :v::bigint, 'without writing');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.consume_roasts(%L, 1)', :u2))->>'sqlstate', '25006',
	'consume_roasts cannot run read-only');

SELECT * FROM finish();
ROLLBACK;
