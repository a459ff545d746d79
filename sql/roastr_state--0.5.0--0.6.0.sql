/* roastr_state 0.5.0 -> 0.6.0: subscription.cancel_at_period_end.
 * Polar cancels at the period's end with subscription.canceled, status
 * active and cancel_at_period_end true: the plan runs until the period
 * ends (subscription.revoked).  The state now carries that flag, versioned
 * and synced like every field (id 23); webhooks set it, the service may
 * patch it. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION roastr_state UPDATE TO '0.6.0'" to load this file. \quit

-- a constant default: no table rewrite.  Rows keep their field_versions;
-- the field reads as version 0 (never changed) until first written.
ALTER TABLE roastr_state.state
	ADD COLUMN cancel_at_period_end boolean NOT NULL DEFAULT false;

CREATE OR REPLACE FUNCTION roastr_state._apply_polar_event(webhook_id text, body text)
	RETURNS jsonb
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $fn$
DECLARE
	wid CONSTANT text := webhook_id;
	ev jsonb;
	d jsonb;
	etype text;
	sub_id text;
	pstatus text;
	modified timestamptz;
	cps timestamptz;
	cpe timestamptz;
	trial_end timestamptz;
	rank integer;
	uid uuid;
	ext text;
	customer text;
	product text;
	new_plan text;
	new_status text;
	newer boolean;
	cape boolean;
	uuid_re CONSTANT text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
BEGIN
	INSERT INTO roastr_state.webhook_events (webhook_id) VALUES (wid)
		ON CONFLICT DO NOTHING;
	IF NOT FOUND THEN
		RETURN '{"received": true, "processed": false, "idempotent": true, "outcome": "duplicate"}';
	END IF;
	DELETE FROM roastr_state.webhook_events
	 WHERE received_at OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '30 days');

	<<apply>>
	BEGIN
		BEGIN
			ev := body::jsonb;
		EXCEPTION WHEN data_exception THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: the body is not JSON';
		END;
		IF pg_catalog.jsonb_typeof(ev) IS DISTINCT FROM 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: the body is not a JSON object';
		END IF;
		etype := ev OPERATOR(pg_catalog.->>) 'type';
		UPDATE roastr_state.webhook_events SET event_type = etype
		 WHERE webhook_events.webhook_id OPERATOR(pg_catalog.=) wid;
		IF etype IS NULL OR NOT etype OPERATOR(pg_catalog.=) ANY (ARRAY[
				'subscription.created', 'subscription.updated', 'subscription.active',
				'subscription.canceled', 'subscription.uncanceled', 'subscription.revoked',
				'subscription.past_due', 'subscription.paused', 'subscription.resumed']) THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: not a subscription event';
		END IF;

		d := ev OPERATOR(pg_catalog.->) 'data';
		IF pg_catalog.jsonb_typeof(d) IS DISTINCT FROM 'object' THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: no data object';
		END IF;
		sub_id := d OPERATOR(pg_catalog.->>) 'id';
		pstatus := d OPERATOR(pg_catalog.->>) 'status';
		IF sub_id IS NULL OR pstatus IS NULL
		   OR pg_catalog.jsonb_typeof(d OPERATOR(pg_catalog.->) 'id') IS DISTINCT FROM 'string' THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: data.id or data.status missing';
		END IF;
		UPDATE roastr_state.webhook_events SET subscription_id = sub_id
		 WHERE webhook_events.webhook_id OPERATOR(pg_catalog.=) wid;
		BEGIN
			modified := COALESCE(d OPERATOR(pg_catalog.->>) 'modified_at',
											 d OPERATOR(pg_catalog.->>) 'created_at')::timestamptz;
			cps := (d OPERATOR(pg_catalog.->>) 'current_period_start')::timestamptz;
			cpe := (d OPERATOR(pg_catalog.->>) 'current_period_end')::timestamptz;
			trial_end := (d OPERATOR(pg_catalog.->>) 'trial_end')::timestamptz;
		EXCEPTION WHEN data_exception THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: a timestamp is malformed';
		END;
		IF modified IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: data.modified_at and data.created_at missing';
		END IF;
		-- Polar's cancel-at-period-end: subscription.canceled with status
		-- active and cancel_at_period_end true (absent: false)
		IF pg_catalog.jsonb_typeof(d OPERATOR(pg_catalog.->) 'cancel_at_period_end') OPERATOR(pg_catalog.=) 'boolean' THEN
			cape := (d OPERATOR(pg_catalog.->) 'cancel_at_period_end')::boolean;
		ELSIF pg_catalog.jsonb_typeof(d OPERATOR(pg_catalog.->) 'cancel_at_period_end') IS DISTINCT FROM 'null'
		      AND d OPERATOR(pg_catalog.?) 'cancel_at_period_end' THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: data.cancel_at_period_end is not a boolean';
		ELSE
			cape := false;
		END IF;

		-- lifecycle rank: breaks ties between events modified at the same time
		rank := CASE pstatus
			WHEN 'incomplete' THEN 0 WHEN 'trialing' THEN 1 WHEN 'active' THEN 2
			WHEN 'past_due' THEN 3 WHEN 'unpaid' THEN 4 WHEN 'paused' THEN 5
			WHEN 'canceled' THEN 6 WHEN 'incomplete_expired' THEN 7 END;
		IF rank IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: unknown subscription status';
		END IF;
		IF etype OPERATOR(pg_catalog.=) 'subscription.revoked' THEN
			rank := 8;
		END IF;

		-- the user: external id, then metadata.user_id, then the stored customer id
		ext := d OPERATOR(pg_catalog.->) 'customer' OPERATOR(pg_catalog.->>) 'external_id';
		IF ext OPERATOR(pg_catalog.~) uuid_re THEN
			SELECT s.user_id INTO uid FROM roastr_state.state s
			 WHERE s.user_id OPERATOR(pg_catalog.=) ext::uuid;
		END IF;
		ext := d OPERATOR(pg_catalog.->) 'metadata' OPERATOR(pg_catalog.->>) 'user_id';
		IF uid IS NULL AND ext OPERATOR(pg_catalog.~) uuid_re THEN
			SELECT s.user_id INTO uid FROM roastr_state.state s
			 WHERE s.user_id OPERATOR(pg_catalog.=) ext::uuid;
		END IF;
		customer := COALESCE(d OPERATOR(pg_catalog.->>) 'customer_id',
										 d OPERATOR(pg_catalog.->) 'customer' OPERATOR(pg_catalog.->>) 'id');
		IF uid IS NULL AND customer IS NOT NULL THEN
			SELECT s.user_id INTO uid FROM roastr_state.state s
			 WHERE s.polar_customer_id OPERATOR(pg_catalog.=) customer;
		END IF;
		IF uid IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: unknown user';
		END IF;
		UPDATE roastr_state.webhook_events SET user_id = uid
		 WHERE webhook_events.webhook_id OPERATOR(pg_catalog.=) wid;

		-- the plan
		IF etype OPERATOR(pg_catalog.=) 'subscription.revoked'
		   OR pstatus OPERATOR(pg_catalog.=) 'incomplete_expired' THEN
			new_plan := 'free';
			new_status := 'canceled';
		ELSE
			product := COALESCE(d OPERATOR(pg_catalog.->>) 'product_id',
											d OPERATOR(pg_catalog.->) 'product' OPERATOR(pg_catalog.->>) 'id');
			SELECT pp.plan INTO new_plan FROM roastr_state.product_plans pp
			 WHERE pp.product_id OPERATOR(pg_catalog.=) product;
			IF new_plan IS NULL THEN
				RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: unknown product';
			END IF;
			new_status := CASE pstatus
				WHEN 'trialing' THEN 'trial' WHEN 'active' THEN 'active'
				WHEN 'past_due' THEN 'past_due' WHEN 'unpaid' THEN 'past_due'
				WHEN 'paused' THEN 'canceled' WHEN 'canceled' THEN 'canceled' END;
		END IF;

		-- in order: only an event newer than the stored one for this subscription
		INSERT INTO roastr_state.polar_subscriptions AS ps
			(subscription_id, user_id, modified_at, status_rank, status)
			VALUES (sub_id, uid, modified, rank, pstatus)
			ON CONFLICT (subscription_id) DO UPDATE
			   SET user_id = EXCLUDED.user_id, modified_at = EXCLUDED.modified_at,
			       status_rank = EXCLUDED.status_rank, status = EXCLUDED.status
			 WHERE (ps.modified_at, ps.status_rank) OPERATOR(pg_catalog.<)
			       (EXCLUDED.modified_at, EXCLUDED.status_rank)
			RETURNING true INTO newer;
		IF newer IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: older than the stored state of the subscription';
		END IF;
		IF new_status IS NULL THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'ignored: the subscription is incomplete';
		END IF;

		BEGIN
			UPDATE roastr_state.state
			   SET plan = new_plan,
			       subscription_status = new_status,
			       current_period_start = cps,
			       current_period_end = cpe,
			       trial_ends_at = trial_end,
			       polar_subscription_id = sub_id,
			       polar_customer_id = COALESCE(customer, polar_customer_id),
			       -- only a subscription that still runs can end at its period's end
			       cancel_at_period_end = cape AND new_status OPERATOR(pg_catalog.<>) 'canceled'
			 WHERE user_id OPERATOR(pg_catalog.=) uid;
		EXCEPTION WHEN invalid_parameter_value THEN
			RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'rejected: ' || SQLERRM;
		END;

		UPDATE roastr_state.webhook_events SET processed = true, outcome = 'applied'
		 WHERE webhook_events.webhook_id OPERATOR(pg_catalog.=) wid;
		RETURN '{"received": true, "processed": true, "idempotent": false, "outcome": "applied"}';
	EXCEPTION WHEN SQLSTATE 'P0001' THEN
		-- recorded, not applied; everything the block did is undone, except
		-- what is recorded below
		UPDATE roastr_state.webhook_events
		   SET processed = false, outcome = SQLERRM,
		       event_type = etype, subscription_id = sub_id, user_id = uid
		 WHERE webhook_events.webhook_id OPERATOR(pg_catalog.=) wid;
		RETURN pg_catalog.jsonb_build_object('received', true, 'processed', false,
											 'idempotent', false, 'outcome', SQLERRM);
	END apply;
END
$fn$;
COMMENT ON FUNCTION roastr_state._apply_polar_event(text, text) IS
	'internal: apply a verified Polar event (called by apply_polar_webhook)';
