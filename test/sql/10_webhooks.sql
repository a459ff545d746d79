-- apply_polar_webhook: Standard Webhooks verification with both secret
-- forms, exactly once, in order, Polar's statuses, recorded ignores, and
-- nothing applied by a bad delivery.
\set ECHO none
\i test/helpers/common.psql
BEGIN;
SELECT plan(66);

CREATE EXTENSION pgcrypto;
SELECT roastr_state.ensure_user(:u1, 'ann@example.com') IS NOT NULL;
SELECT roastr_state.ensure_user(:u2, 'bob@example.com') IS NOT NULL;
SELECT roastr_state.set_product_plan('prod_pro', 'pro');
SELECT roastr_state.set_product_plan('prod_plus', 'plus');

-- the secrets, in files of mode 0600 in the data directory (plain COPY TO
-- would create them readable by others, which the extension refuses)
DO $$
BEGIN
	EXECUTE format('COPY (SELECT %L) TO PROGRAM %L', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
		'umask 077 && rm -f ' || current_setting('data_directory') || '/roastr_test_webhook_whsec && cat > ' || current_setting('data_directory') || '/roastr_test_webhook_whsec');
	EXECUTE format('COPY (SELECT %L) TO PROGRAM %L', 'polar_raw_secret_123',
		'umask 077 && rm -f ' || current_setting('data_directory') || '/roastr_test_webhook_raw && cat > ' || current_setting('data_directory') || '/roastr_test_webhook_raw');
	EXECUTE format('COPY (SELECT %L) TO %L', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
		current_setting('data_directory') || '/roastr_test_webhook_open');
END
$$;
SELECT set_config('roastr_state.webhook_secret_file',
	current_setting('data_directory') || '/roastr_test_webhook_whsec', true) IS NOT NULL;

CREATE FUNCTION pg_temp.now_s(shift int DEFAULT 0) RETURNS text LANGUAGE sql AS
$$ SELECT (extract(epoch FROM now())::bigint + shift)::text $$;
CREATE FUNCTION pg_temp.sig(id text, ts text, body text,
	key bytea DEFAULT decode('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64')) RETURNS text LANGUAGE sql AS
$$ SELECT 'v1,' || encode(hmac(convert_to(id || '.' || ts || '.' || body, 'UTF8'), key, 'sha256'), 'base64') $$;
-- deliver a body signed the way Polar signs it
CREATE FUNCTION pg_temp.deliver(id text, body text) RETURNS jsonb LANGUAGE sql AS
$$ SELECT roastr_state.apply_polar_webhook(id, pg_temp.now_s(), pg_temp.sig(id, pg_temp.now_s(), body), body) $$;
-- a Polar subscription event (snake_case, as on the wire)
CREATE FUNCTION pg_temp.ev(type text, sub text, status text, modified text,
	product text DEFAULT 'prod_pro', ext text DEFAULT 'a1111111-1111-4111-8111-111111111111',
	customer text DEFAULT 'cus_1', extra jsonb DEFAULT '{}') RETURNS text LANGUAGE sql AS
$$ SELECT jsonb_build_object('type', type, 'timestamp', modified, 'data',
	jsonb_build_object('id', sub, 'status', status, 'modified_at', modified,
		'created_at', '2026-01-01T00:00:00Z',
		'current_period_start', to_char(now() - interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		'current_period_end', to_char(now() + interval '29 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		'trial_end', to_char(now() + interval '14 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		'cancel_at_period_end', false, 'product_id', product, 'customer_id', customer,
		'customer', jsonb_build_object('id', customer, 'external_id', ext),
		'metadata', '{}'::jsonb) || extra)::text $$;
CREATE FUNCTION pg_temp.sub(u uuid) RETURNS text LANGUAGE sql AS
$$ SELECT plan || '/' || subscription_status FROM roastr_state.state WHERE user_id = u $$;

-- applied once
SELECT is(pg_temp.deliver('wh_1', pg_temp.ev('subscription.created', 'sub_1', 'trialing', '2026-01-01T00:00:01Z')),
	'{"received": true, "processed": true, "idempotent": false, "outcome": "applied"}', 'a verified event is applied');
SELECT is(pg_temp.sub(:u1), 'pro/trial', 'trialing is trial on the product''s plan');
SELECT is(roastr_state.state_full(:u1)->'subscription'->'trial_days_remaining', '14', 'with the trial end');
SELECT is((SELECT polar_subscription_id || '/' || polar_customer_id FROM roastr_state.state WHERE user_id = :u1), 'sub_1/cus_1',
	'and the Polar ids');
SELECT is(pg_temp.deliver('wh_1', pg_temp.ev('subscription.created', 'sub_1', 'trialing', '2026-01-01T00:00:01Z')),
	'{"received": true, "processed": false, "idempotent": true, "outcome": "duplicate"}', 'a repeated webhook id is idempotent');

-- in order
SELECT is(pg_temp.deliver('wh_2', pg_temp.ev('subscription.active', 'sub_1', 'active', '2026-01-01T00:00:03Z'))->>'outcome',
	'applied', 'a newer event applies');
SELECT is(pg_temp.sub(:u1), 'pro/active', 'trial -> active');
SELECT is(pg_temp.deliver('wh_3', pg_temp.ev('subscription.updated', 'sub_1', 'past_due', '2026-01-01T00:00:02Z'))->>'outcome',
	'ignored: older than the stored state of the subscription', 'an older event is recorded, not applied');
SELECT is(pg_temp.sub(:u1), 'pro/active', 'the state is unchanged');
SELECT is(pg_temp.deliver('wh_4', pg_temp.ev('subscription.canceled', 'sub_1', 'canceled', '2026-01-01T00:00:03Z'))->>'outcome',
	'applied', 'same time, later in the lifecycle: applies');
SELECT is(pg_temp.sub(:u1), 'pro/canceled', 'canceled keeps the plan until the period ends');
SELECT is(pg_temp.deliver('wh_5', pg_temp.ev('subscription.updated', 'sub_1', 'active', '2026-01-01T00:00:03Z'))->>'outcome',
	'ignored: older than the stored state of the subscription', 'same time, earlier in the lifecycle: ignored');
SELECT is(pg_temp.deliver('wh_6', pg_temp.ev('subscription.uncanceled', 'sub_1', 'active', '2026-01-01T00:00:04Z'))->>'outcome',
	'applied', 'uncanceled');
SELECT is(pg_temp.sub(:u1), 'pro/active', 'canceled -> active');
SELECT is(pg_temp.deliver('wh_7', pg_temp.ev('subscription.updated', 'sub_1', 'active', '2026-01-01T00:00:05Z', 'prod_plus'))->>'outcome',
	'applied', 'a product change');
SELECT is(roastr_state.state_full(:u1)->'usage'->'monthly_roasts_limit', 'null', 'plus is unlimited');
SELECT is(pg_temp.deliver('wh_8', pg_temp.ev('subscription.updated', 'sub_1', 'unpaid', '2026-01-01T00:00:06Z', 'prod_plus'))->>'outcome',
	'applied', 'unpaid');
SELECT is(pg_temp.sub(:u1), 'plus/past_due', 'unpaid is past_due');
SELECT is(pg_temp.deliver('wh_9', pg_temp.ev('subscription.revoked', 'sub_1', 'canceled', '2026-01-01T00:00:07Z', 'prod_plus'))->>'outcome',
	'applied', 'revoked');
SELECT is(pg_temp.sub(:u1), 'free/canceled', 'revoked is the free plan at once');
SELECT is(jsonb_path_query_array(roastr_state.state_sync(:u1, 1), '$.changes[*].field') @> '["subscription.plan", "subscription.status"]',
	true, 'webhook changes are in the change log');

-- finding the user
SELECT is(pg_temp.deliver('wh_10', pg_temp.ev('subscription.created', 'sub_2', 'active', '2026-01-01T00:00:01Z',
	'prod_pro', NULL, 'cus_2', jsonb_build_object('metadata', jsonb_build_object('user_id', :u2))))->>'outcome',
	'applied', 'by metadata.user_id');
SELECT is(pg_temp.sub(:u2), 'pro/active', 'applied to that user');
SELECT is(pg_temp.deliver('wh_11', pg_temp.ev('subscription.updated', 'sub_2', 'past_due', '2026-01-01T00:00:02Z',
	'prod_pro', NULL, 'cus_2'))->>'outcome', 'applied', 'by the stored customer id');
SELECT is(pg_temp.deliver('wh_12', pg_temp.ev('subscription.created', 'sub_3', 'active', '2026-01-01T00:00:01Z',
	'prod_pro', 'afffffff-ffff-4fff-8fff-ffffffffffff', 'cus_x'))->>'outcome', 'ignored: unknown user', 'an unknown user is not guessed');
SELECT is(pg_temp.deliver('wh_13', pg_temp.ev('subscription.created', 'sub_4', 'active', '2026-01-01T00:00:01Z', 'prod_unknown'))->>'outcome',
	'ignored: unknown product', 'nor an unknown product');

-- recorded ignores
SELECT is(pg_temp.deliver('wh_14', '{"type": "order.created", "data": {"id": "ord_1"}}')->>'outcome',
	'ignored: not a subscription event', 'an unknown event type is accepted and ignored');
SELECT is(pg_temp.deliver('wh_15', 'this is not json')->>'outcome', 'ignored: the body is not JSON', 'a malformed body');
SELECT is(pg_temp.deliver('wh_16', '[1, 2]')->>'outcome', 'ignored: the body is not a JSON object', 'a JSON array');
SELECT is(pg_temp.deliver('wh_17', '{"type": "subscription.updated", "data": {"status": "active"}}')->>'outcome',
	'ignored: data.id or data.status missing', 'a missing field');
SELECT is(pg_temp.deliver('wh_18', '{"type": "subscription.updated", "data": {"id": 7, "status": "active"}}')->>'outcome',
	'ignored: data.id or data.status missing', 'a field of the wrong type');
SELECT is(pg_temp.deliver('wh_19', pg_temp.ev('subscription.updated', 'sub_2', 'active', 'yesterday-ish', 'prod_pro', NULL, 'cus_2'))->>'outcome',
	'ignored: a timestamp is malformed', 'a malformed timestamp');
SELECT is(pg_temp.deliver('wh_20', pg_temp.ev('subscription.created', 'sub_5', 'incomplete', '2026-01-01T00:00:01Z', 'prod_pro', :u2))->>'outcome',
	'ignored: the subscription is incomplete', 'an incomplete subscription grants nothing');
SELECT is(pg_temp.deliver('wh_21', pg_temp.ev('subscription.updated', 'sub_2', 'trialing', '2026-01-01T00:00:09Z', 'prod_pro', NULL, 'cus_2'))->>'outcome',
	'rejected: invalid value for field "subscription.status"', 'a move the lifecycle forbids is rejected');
SELECT is(pg_temp.sub(:u2), 'pro/past_due', 'and changes nothing');
SELECT is((SELECT count(*)::int FROM roastr_state.webhook_events WHERE NOT processed), 12, 'every ignore is recorded');

-- bad deliveries: PT401, nothing recorded, nothing applied
CREATE TEMP TABLE before AS SELECT (SELECT count(*) FROM roastr_state.webhook_events) AS n, pg_temp.sub(:u2) AS s;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.apply_polar_webhook(%L, %L, %L, %L)', 'wh_bad1', pg_temp.now_s(),
	pg_temp.sig('wh_bad1', pg_temp.now_s(), '{}'), '{"changed": 1}'))->>'sqlstate', 'PT401', 'a signature of another body');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.apply_polar_webhook(%L, %L, %L, %L)', 'wh_bad2', pg_temp.now_s(),
	'v1,' || encode(gen_random_bytes(32), 'base64'), '{}'))->>'sqlstate', 'PT401', 'a random signature');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.apply_polar_webhook(%L, %L, %L, %L)', 'wh_bad3', pg_temp.now_s(-310),
	pg_temp.sig('wh_bad3', pg_temp.now_s(-310), '{}'), '{}'))->>'message', 'webhook rejected: the webhook timestamp is too old',
	'a timestamp over 5 minutes old');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.apply_polar_webhook(%L, %L, %L, %L)', 'wh_bad4', pg_temp.now_s(310),
	pg_temp.sig('wh_bad4', pg_temp.now_s(310), '{}'), '{}'))->>'sqlstate', 'PT401', 'a timestamp over 5 minutes ahead');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.apply_polar_webhook(%L, %L, NULL, %L)', 'wh_bad5', pg_temp.now_s(), '{}'))->>'sqlstate',
	'PT401', 'no signature');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.apply_polar_webhook(%L, %L, %L, %L)', 'wh_bad6', pg_temp.now_s(),
	pg_temp.sig('wh_bad6', pg_temp.now_s(), '{}', convert_to('polar_raw_secret_123', 'UTF8')), '{}'))->>'sqlstate', 'PT401',
	'signed with another secret');
SELECT is((SELECT n FROM before), (SELECT count(*) FROM roastr_state.webhook_events), 'no bad delivery was recorded');
SELECT is((SELECT s FROM before), pg_temp.sub(:u2), 'nor applied');

-- Polar's cancel at the period's end: subscription.canceled, status active,
-- cancel_at_period_end true.  Shown, versioned and synced like any field.
SELECT roastr_state.ensure_user(:u3, 'cy@example.com') IS NOT NULL;
CREATE FUNCTION pg_temp.cape(u uuid) RETURNS text LANGUAGE sql AS
$$ SELECT f->'subscription'->>'plan' || '/' || (f->'subscription'->>'status') || '/' ||
	(f->'subscription'->>'cancel_at_period_end') FROM roastr_state.state_full(u) f $$;
SELECT is(pg_temp.cape(:u3), 'free/active/false', 'a new user: cancel_at_period_end false');
SELECT is(pg_temp.deliver('wh_c1', pg_temp.ev('subscription.active', 'sub_c', 'active', '2026-01-02T00:00:01Z',
	ext => 'a3333333-3333-4333-8333-333333333333', customer => 'cus_c'))->>'outcome', 'applied', 'an active subscription');
SELECT (roastr_state.state_full(:u3)->'_meta'->>'version')::bigint AS v_active \gset
SELECT is(pg_temp.deliver('wh_c2', pg_temp.ev('subscription.canceled', 'sub_c', 'active', '2026-01-02T00:00:02Z',
	ext => 'a3333333-3333-4333-8333-333333333333', customer => 'cus_c',
	extra => '{"cancel_at_period_end": true}'))->>'outcome', 'applied', 'canceled at the period''s end');
SELECT is(pg_temp.cape(:u3), 'pro/active/true', 'the plan runs on, and the state says it ends');
SELECT is((SELECT jsonb_agg(c->'value') FROM jsonb_array_elements(roastr_state.state_sync(:u3, :v_active)->'changes') c
	WHERE c->>'field' = 'subscription.cancel_at_period_end'), '[true]', 'a sync from before reports it');
SELECT is(pg_temp.deliver('wh_c3', pg_temp.ev('subscription.uncanceled', 'sub_c', 'active', '2026-01-02T00:00:03Z',
	ext => 'a3333333-3333-4333-8333-333333333333', customer => 'cus_c'))->>'outcome', 'applied', 'uncanceled');
SELECT is(pg_temp.cape(:u3), 'pro/active/false', 'uncanceled clears it');
SELECT is(pg_temp.deliver('wh_c4', pg_temp.ev('subscription.canceled', 'sub_c', 'active', '2026-01-02T00:00:04Z',
	ext => 'a3333333-3333-4333-8333-333333333333', customer => 'cus_c',
	extra => '{"cancel_at_period_end": "yes"}'))->>'outcome', 'ignored: data.cancel_at_period_end is not a boolean',
	'a cancel_at_period_end that is not a boolean is recorded, not applied');
SELECT is(pg_temp.cape(:u3), 'pro/active/false', 'nothing of it applied');
SELECT is(pg_temp.deliver('wh_c5', pg_temp.ev('subscription.canceled', 'sub_c', 'active', '2026-01-02T00:00:05Z',
	ext => 'a3333333-3333-4333-8333-333333333333', customer => 'cus_c',
	extra => '{"cancel_at_period_end": true}'))->>'outcome', 'applied', 'canceled at the period''s end again');
SELECT is(pg_temp.deliver('wh_c6', pg_temp.ev('subscription.revoked', 'sub_c', 'canceled', '2026-01-02T00:00:06Z',
	ext => 'a3333333-3333-4333-8333-333333333333', customer => 'cus_c',
	extra => '{"cancel_at_period_end": true}'))->>'outcome', 'applied', 'revoked at the period''s end');
SELECT is(pg_temp.cape(:u3), 'free/canceled/false', 'ended: free, and nothing pending');
-- the service may set it; a user may not; only booleans
SELECT is(pg_temp.outcome(format('SELECT roastr_state.patch(%L, %L)', :u3,
	'{"subscription.cancel_at_period_end": 1}'))->>'sqlstate', '22023', 'not a boolean: 22023');
SELECT is(roastr_state.patch(:u3, '{"subscription.cancel_at_period_end": true}')->'applied',
	'["subscription.cancel_at_period_end"]', 'the service patches it');
SELECT is(pg_temp.cape(:u3), 'free/canceled/true', 'as written');
SET LOCAL ROLE authenticated;
SELECT set_config('request.jwt.claims', format('{"sub": "%s", "role": "authenticated"}', :u3), true) IS NOT NULL;
SELECT is(pg_temp.outcome(format('SELECT roastr_state.patch(%L, %L)', :u3,
	'{"subscription.cancel_at_period_end": false}'))->>'sqlstate', '42501', 'the user may not');
RESET ROLE;

-- several signatures, one of them right
SELECT is((roastr_state.apply_polar_webhook('wh_22', pg_temp.now_s(),
	'v1,' || encode(gen_random_bytes(32), 'base64') || ' v1a,xyz ' || pg_temp.sig('wh_22', pg_temp.now_s(), '{"type": "ping"}'),
	'{"type": "ping"}'))->>'received', 'true', 'several signatures: any valid one will do');

-- Polar's raw secret form
SELECT set_config('roastr_state.webhook_secret_file',
	current_setting('data_directory') || '/roastr_test_webhook_raw', true) IS NOT NULL;
SELECT is((roastr_state.apply_polar_webhook('wh_23', pg_temp.now_s(),
	pg_temp.sig('wh_23', pg_temp.now_s(), '{"type": "ping"}', convert_to('polar_raw_secret_123', 'UTF8')),
	'{"type": "ping"}'))->>'received', 'true', 'a raw secret is used as its bytes');

-- configuration errors name the setting
SELECT set_config('roastr_state.webhook_secret_file', '', true) IS NOT NULL;
SELECT is(pg_temp.outcome($$SELECT roastr_state.apply_polar_webhook('x', '1', 'v1,x', '{}')$$)->>'message',
	'roastr_state.webhook_secret_file is not set', 'an unset secret file');
SELECT set_config('roastr_state.webhook_secret_file',
	current_setting('data_directory') || '/roastr_test_webhook_open', true) IS NOT NULL;
SELECT is(pg_temp.outcome($$SELECT roastr_state.apply_polar_webhook('x', '1', 'v1,x', '{}')$$)->>'sqlstate',
	'F0000', 'a secret file readable by others is refused');
SELECT set_config('roastr_state.webhook_secret_file', '/nonexistent/roastr_secret', true) IS NOT NULL;
SELECT is(pg_temp.outcome($$SELECT roastr_state.apply_polar_webhook('x', '1', 'v1,x', '{}')$$)->>'sqlstate',
	'58P01', 'a missing secret file');
SELECT is(pg_temp.outcome(format('SELECT roastr_state.apply_polar_webhook(%L, %L, %L, %L)', 'big', '1', 'v1,x',
	repeat('x', 1024 * 1024 + 1)))->>'sqlstate', '54000', 'a body over 1 MB is refused before any work');

SELECT * FROM finish();
ROLLBACK;
