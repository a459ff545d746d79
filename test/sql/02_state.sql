-- ensure_user and state_full: creation, shape, defaults, idempotency.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(21);

SELECT lives_ok(
	format('SELECT roastr_state.ensure_user(%L, %L, %L)', :u1, 'ann@example.com', 'Ann'),
	'ensure_user creates a user');

SELECT is(
	(SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(roastr_state.state_full(:u1)) k),
	ARRAY['_meta', 'auth', 'organization', 'persona', 'roasting', 'subscription', 'usage'],
	'state_full has the sections of the API');

SELECT is(roastr_state.state_full(:u1)->'auth',
	jsonb_build_object('userId', :u1, 'email', 'ann@example.com', 'name', 'Ann'),
	'auth section');

SELECT is(roastr_state.state_full(:u1)->'roasting',
	'{"enabled": true, "roast_level": 3, "shield_level": "balanceado"}'::jsonb,
	'roasting defaults');

SELECT is((roastr_state.state_full(:u1)->'subscription') - 'current_period_end'
	- 'current_period_start' - 'trial_ends_at',
	'{"plan": "free", "status": "active", "trial_days_remaining": null,
	  "polar_customer_id": null, "polar_subscription_id": null,
	  "cancel_at_period_end": false}'::jsonb,
	'subscription defaults');

SELECT is(roastr_state.state_full(:u1)->'persona',
	'{"identity": null, "intolerance": null, "tolerance": null,
	  "embeddings_generated_at": null, "embeddings_model": null}'::jsonb,
	'persona is empty');

SELECT is((roastr_state.state_full(:u1)->'usage') - 'reset_date' - 'period_start',
	'{"monthly_roasts_used": 0, "monthly_roasts_limit": 100, "remaining_roasts": 100}'::jsonb,
	'usage of the free plan');

SELECT is((roastr_state.state_full(:u1)->'usage'->>'reset_date')::timestamptz,
	date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 month',
	'free plan resets at the start of the next UTC month');

SELECT is(roastr_state.state_full(:u1)->'organization', 'null'::jsonb,
	'no organization');

SELECT is((roastr_state.state_full(:u1)->'_meta'->>'version')::bigint, 1::bigint,
	'a new user is at version 1');

SELECT ok((roastr_state.state_full(:u1)->'_meta'->>'lastSyncedAt')::timestamptz = now(),
	'lastSyncedAt is the read time');

-- idempotent
SELECT is(roastr_state.ensure_user(:u1, 'ann@example.com', 'Ann') #- '{_meta,lastSyncedAt}' #- '{_meta,history}',
	pg_temp.snap(:u1), 'ensure_user returns state_full');
SELECT is((roastr_state.ensure_user(:u1, 'ann@example.com')->'_meta'->>'version')::bigint, 1::bigint,
	'repeating ensure_user changes nothing (a NULL name keeps the name)');

-- a new e-mail is a versioned change
SELECT is((roastr_state.ensure_user(:u1, 'ann@new.example.com')->'_meta'->>'version')::bigint, 2::bigint,
	'a changed e-mail bumps the version');
SELECT is(
	(SELECT jsonb_agg(e->>'field') FROM jsonb_array_elements(roastr_state.state_sync(:u1, 1)->'changes') e),
	'["auth.email"]'::jsonb, 'and is in the change log');

-- tables hold one row per user and no persona text
SELECT is((SELECT count(*)::int FROM roastr_state.state), 1, 'one state row');
SELECT is((SELECT count(*)::int FROM roastr_state.persona), 0, 'no persona row');

-- unknown user: a clear error, no row invented
SELECT throws_ok(format('SELECT roastr_state.state_full(%L)', :nobody), 'PT404',
	'user afffffff-ffff-4fff-8fff-ffffffffffff has no state', 'unknown user is PT404');
SELECT is((SELECT count(*)::int FROM roastr_state.state), 1, 'no row invented');

-- the service must name the user
SELECT throws_ok('SELECT roastr_state.state_full()', '22023', 'user_id must not be null',
	'service without user_id');

-- a direct INSERT by the service goes through the trigger too
INSERT INTO roastr_state.state (user_id, email, version) VALUES (:u2, 'b@example.com', 42);
SELECT is((SELECT version FROM roastr_state.state WHERE user_id = :u2), 1::bigint,
	'a direct INSERT starts at version 1 whatever it says');

SELECT * FROM finish();
ROLLBACK;
