-- consume_roasts: the result, never overdrawing, idempotency keys, the
-- change log, unlimited plans, period rollover and bad input.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(35);

SELECT roastr_state.ensure_user(:u1, 'ann@example.com') IS NOT NULL;
SELECT roastr_state.ensure_user(:u2, 'bob@example.com') IS NOT NULL;
UPDATE roastr_state.plans SET monthly_roasts_limit = 5 WHERE plan = 'free';

CREATE FUNCTION pg_temp.take(u uuid, n int DEFAULT 1, k text DEFAULT NULL) RETURNS jsonb
LANGUAGE sql AS $$ SELECT roastr_state.consume_roasts(u, n, k) - 'reset_date' $$;

SELECT is(pg_temp.take(:u1),
	'{"allowed": true, "monthly_roasts_used": 1, "monthly_roasts_limit": 5, "remaining_roasts": 4}',
	'one roast');
SELECT is((roastr_state.consume_roasts(:u1, 1)->>'reset_date')::timestamptz,
	date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 month',
	'reset_date is the end of the UTC month on the free plan');
SELECT is(pg_temp.take(:u1, 2),
	'{"allowed": true, "monthly_roasts_used": 4, "monthly_roasts_limit": 5, "remaining_roasts": 1}',
	'several roasts at once');
SELECT pg_temp.ver(:u1) AS v_before \gset
SELECT is(pg_temp.take(:u1, 2),
	'{"allowed": false, "monthly_roasts_used": 4, "monthly_roasts_limit": 5, "remaining_roasts": 1}',
	'more than is left is refused');
SELECT is(pg_temp.ver(:u1), :v_before::bigint, 'and nothing is written');
SELECT is(pg_temp.take(:u1),
	'{"allowed": true, "monthly_roasts_used": 5, "monthly_roasts_limit": 5, "remaining_roasts": 0}',
	'the last roast');
SELECT is(pg_temp.take(:u1),
	'{"allowed": false, "monthly_roasts_used": 5, "monthly_roasts_limit": 5, "remaining_roasts": 0}',
	'running out is allowed = false, not an error');

-- every consumption is a version in the change log
SELECT is(pg_temp.ver(:u1), :v_before::bigint + 1, 'one version per consumption');
SELECT is(jsonb_path_query_array(roastr_state.state_sync(:u1, :v_before), '$.changes[*].field'),
	'["usage.monthly_roasts_used", "usage.remaining_roasts"]', 'used and remaining are logged');
SELECT is(roastr_state.state_full(:u1)->'usage'->'remaining_roasts', '0', 'state_full agrees');

-- an operator raising the limit writes no state row; the user's next call
-- makes it a new version with the new limit (0.7.0)
SELECT pg_temp.ver(:u1) AS v_before \gset
UPDATE roastr_state.plans SET monthly_roasts_limit = 8 WHERE plan = 'free';
SELECT is(pg_temp.ver(:u1), :v_before::bigint, 'a changed plan limit writes no state row');
SELECT is(jsonb_path_query_array(roastr_state.state_sync(:u1, :v_before), '$.changes[*].field'),
	'["usage.monthly_roasts_limit", "usage.remaining_roasts"]', 'the next sync sees the new limit');
SELECT is(pg_temp.ver(:u1), :v_before::bigint + 1, 'as one new version, written by that sync');

-- idempotency keys
SELECT is(pg_temp.take(:u1, 2, 'order-1'),
	'{"allowed": true, "monthly_roasts_used": 7, "monthly_roasts_limit": 8, "remaining_roasts": 1}',
	'a consumption with a key');
SELECT is(pg_temp.take(:u1, 2, 'order-1'),
	'{"allowed": true, "monthly_roasts_used": 7, "monthly_roasts_limit": 8, "remaining_roasts": 1}',
	'its retry returns the first answer');
SELECT is((SELECT monthly_roasts_used FROM roastr_state.state WHERE user_id = :u1), 7, 'and consumes nothing');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.consume_roasts(%L, 3, %L)', :u1, 'order-1'))->>'sqlstate',
	'22023', 'the same key for another n is refused');
SELECT is(pg_temp.take(:u1, 5, 'order-2')->'allowed', 'false', 'a refused consumption with a key');
UPDATE roastr_state.plans SET monthly_roasts_limit = 100 WHERE plan = 'free';
SELECT is(pg_temp.take(:u1, 5, 'order-2')->'allowed', 'false', 'keeps its first answer when retried');
SELECT is(pg_temp.take(:u2, 2, 'order-1')->'allowed', 'true', 'keys are per user');

-- unlimited plans
SELECT roastr_state.patch(:u2, '{"subscription.plan": "plus"}') IS NOT NULL;
SELECT is(pg_temp.take(:u2, 100000),
	'{"allowed": true, "monthly_roasts_used": 100002, "monthly_roasts_limit": null, "remaining_roasts": null}',
	'plus is unlimited');

-- a plan change keeps what was used and applies the new limit
SELECT roastr_state.patch(:u2, '{"subscription.plan": "starter"}') IS NOT NULL;
SELECT is(pg_temp.take(:u2),
	'{"allowed": false, "monthly_roasts_used": 100002, "monthly_roasts_limit": 500, "remaining_roasts": 0}',
	'a downgrade keeps the count against the lower limit');

-- a period that ended: the count is 0 again, lazily, as a versioned change
UPDATE roastr_state.state SET usage_period_end = now() - interval '1 second' WHERE user_id = :u1;
SELECT pg_temp.ver(:u1) AS v_before \gset
SELECT is(roastr_state.state_full(:u1)->'usage'->'monthly_roasts_used', '0', 'a new period starts at 0');
SELECT is(pg_temp.ver(:u1), :v_before::bigint + 1, 'written down by the read');
SELECT is(jsonb_path_query_array(roastr_state.state_sync(:u1, :v_before), '$.changes[*].field'),
	'["usage.monthly_roasts_used", "usage.remaining_roasts"]', 'so syncs see the rollover');
SELECT is(pg_temp.take(:u1)->'monthly_roasts_used', '1', 'and consumption counts from 0');

-- bad input, each with its SQLSTATE, nothing consumed
SELECT is(pg_temp.outcome(format('SELECT roastr_state.consume_roasts(%L, 0)', :u1))->>'sqlstate', '22023', 'n = 0');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.consume_roasts(%L, -1)', :u1))->>'sqlstate', '22023', 'n < 0');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.consume_roasts(%L, 100001)', :u1))->>'sqlstate', '22023', 'absurd n');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.consume_roasts(%L, NULL)', :u1))->>'sqlstate', '22023', 'NULL n');
SELECT is(pg_temp.outcome('SELECT roastr_state.consume_roasts(NULL, 1)')->>'sqlstate', '22023', 'NULL user (service)');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.consume_roasts(%L, 1)', :nobody))->>'sqlstate', 'PT404', 'unknown user');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.consume_roasts(%L, 1, %L)', :u1, repeat('k', 201)))->>'sqlstate', '22023', 'a key too long');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.consume_roasts(%L, 1, %L)', :u1, E'a\nb'))->>'sqlstate', '22023', 'a key with a control character');
SELECT is((SELECT monthly_roasts_used FROM roastr_state.state WHERE user_id = :u1), 1, 'nothing was consumed by bad input');

SELECT * FROM finish();
ROLLBACK;
