-- stats(): what an operator watches.  The counters are in shared memory
-- (the test cluster preloads the library): conflicts, quota refusals and
-- refused webhooks move by exactly one per event; the table figures are
-- the tables' own.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(15);

SELECT roastr_state.ensure_user(:u1, 'ann@example.com') IS NOT NULL;
SELECT roastr_state.ensure_user(:u2, 'bob@example.com') IS NOT NULL;
CREATE TEMP TABLE s0 AS SELECT roastr_state.stats() AS s;

SELECT is((SELECT array_agg(k ORDER BY k) FROM s0, jsonb_object_keys(s) k),
	ARRAY['conflicts', 'notification_queue_usage', 'notifier', 'quota_refusals', 'retention',
		  'users', 'users_with_shared_moves_pending', 'users_with_time_moves_pending', 'webhook_ignored',
		  'webhook_outcomes', 'webhooks_refused'],
	'stats() has the documented keys');
SELECT is((SELECT (s->>'users')::int FROM s0), (SELECT count(*)::int FROM roastr_state.state), 'users');

-- a conflict, a refusal, a refused webhook
SELECT roastr_state.patch(:u1, '{"roasting.enabled": false}') IS NOT NULL;
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.patch(%L, '{"roasting.enabled": true}', 1)$$, :u1))->>'sqlstate',
	'PT409', 'a conflict');
SELECT is((roastr_state.consume_roasts(:u2, 100000 - 1))->>'allowed', 'false', 'a refused consumption');
DO $$
BEGIN
	EXECUTE format('COPY (SELECT %L) TO PROGRAM %L', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
		'umask 077 && rm -f ' || current_setting('data_directory') || '/roastr_test_stats_whsec && cat > ' || current_setting('data_directory') || '/roastr_test_stats_whsec');
END
$$;
SELECT set_config('roastr_state.webhook_secret_file',
	current_setting('data_directory') || '/roastr_test_stats_whsec', true) IS NOT NULL;
SELECT is(pg_temp.outcome(format($$SELECT roastr_state.apply_polar_webhook('wh', %L, 'v1,AAAA', '{}')$$,
	extract(epoch FROM now())::bigint))->>'sqlstate', 'PT401', 'a refused webhook (a bad signature)');
CREATE TEMP TABLE s1 AS SELECT roastr_state.stats() AS s;
SELECT is((SELECT (s1.s->>'conflicts')::bigint - (s0.s->>'conflicts')::bigint FROM s0, s1), 1::bigint,
	'conflicts moved by one');
SELECT is((SELECT (s1.s->>'quota_refusals')::bigint - (s0.s->>'quota_refusals')::bigint FROM s0, s1), 1::bigint,
	'quota refusals moved by one');
SELECT is((SELECT (s1.s->>'webhooks_refused')::bigint - (s0.s->>'webhooks_refused')::bigint FROM s0, s1), 1::bigint,
	'refused webhooks moved by one');

-- a trial that ended without anybody reading it
UPDATE roastr_state.state SET plan = 'starter', subscription_status = 'trial',
	trial_ends_at = now() - interval '1 day' WHERE user_id = :u2;
SELECT is((roastr_state.stats()->>'users_with_time_moves_pending')::int,
	(SELECT (s->>'users_with_time_moves_pending')::int + 1 FROM s1), 'a pending time-driven move is counted');
-- a plan limit an operator changed, that no call of its users settled yet
-- (u1 is on free; u2's trial has ended: free too)
SELECT is((roastr_state.stats()->>'users_with_shared_moves_pending')::int, 0, 'no shared move pending');
UPDATE roastr_state.plans SET monthly_roasts_limit = 99 WHERE plan = 'free';
SELECT is((roastr_state.stats()->>'users_with_shared_moves_pending')::int, 2,
	'a changed limit: both users on (effectively) free have a shared move pending');
SELECT roastr_state.state_full(:u1) IS NOT NULL;
SELECT is((roastr_state.stats()->>'users_with_shared_moves_pending')::int, 1, 'one read settles its user');
SELECT is((roastr_state.stats()->'retention'->'mutations'->>'rows')::bigint,
	(SELECT count(*) FROM roastr_state.mutations), 'retention: the mutations kept');
SELECT ok((roastr_state.stats()->'notifier') ? 'sent', 'the notifier''s counters');

SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', format('{"sub": "%s"}', :u1), true) IS NOT NULL;
SELECT is(pg_temp.outcome('SELECT roastr_state.stats()')->>'sqlstate', '42501', 'users may not read it');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
