/* roastr_state--0.8.0.sql: the whole schema of version 0.8.0, for CREATE
 * EXTENSION.  An existing installation reaches the same schema through the
 * upgrade scripts (0.1.0, then 0.1.0--0.2.0, 0.2.0--0.3.0, 0.3.0--0.4.0,
 * 0.4.0--0.5.0, 0.5.0--0.6.0, 0.6.0--0.7.0, 0.7.0--0.8.0);
 * test/extra/upgrade.sh proves both are identical, catalog and privileges.
 * Released scripts never change: a change is a new upgrade script plus a new
 * full script of the new version. */

\echo Use "CREATE EXTENSION roastr_state" to load this file. \quit

-- The schema must not belong to an ordinary role: its owner could replace
-- our tables and so capture every call (CREATE EXTENSION reuses an existing
-- schema of that name).
DO $check$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace n
	                 JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
	                WHERE n.nspname OPERATOR(pg_catalog.=) 'roastr_state'
	                  AND (r.rolsuper OR r.rolname OPERATOR(pg_catalog.=) CURRENT_USER)) THEN
		RAISE EXCEPTION 'schema "roastr_state" is owned by a role that is not a superuser'
			USING ERRCODE = '42501',
			      HINT = 'Drop the schema, or let CREATE EXTENSION create it.';
	END IF;
END
$check$;

-- ===========================================================================
-- State and change log
--
-- One row per user.  The layout keeps the WAL of a write small (src/
-- fieldlog.c): PostgreSQL logs an updated row as the new tuple minus the
-- bytes it shares with the old one at its start and at its end, so the
-- columns a write changes sit together at the end of the row: the version,
-- updated_at, the hottest values (consumption, the roasting toggle and
-- level; the shield level and the usage period just before the version)
-- and field_log, the compacted change log (one entry per user and field,
-- superseded in place): (version, time) pairs of bigint, time in
-- PostgreSQL's microseconds since 2000-01-01 UTC, in slot order, the
-- hottest fields first (rs_log_field in src/fieldlog.c maps slots to field
-- ids).  Persona ciphertext lives in its own table.  Upgraded tables have
-- the same columns in the same order (the 0.6.0 -> 0.7.0 script moves them
-- there).  Columns added later come after field_log (ALTER TABLE ADD COLUMN
-- puts them last, so they are last here too): 0.8.0's change stamps of the
-- shared rows that the row's change log shows (limits_seen: its effective
-- plan's row; organization_seen: its current organization's and
-- membership's rows; see "Shared changes" below).  organization_id has no
-- foreign key: a deleted organization is cleared by its members' own next
-- calls.
-- ===========================================================================
CREATE TABLE roastr_state.state (
	user_id uuid PRIMARY KEY,
	plan text NOT NULL DEFAULT 'free'
		CHECK (plan OPERATOR(pg_catalog.=) ANY (ARRAY['free', 'starter', 'pro', 'plus'])),
	subscription_status text NOT NULL DEFAULT 'active'
		CHECK (subscription_status OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'trial', 'past_due', 'canceled'])),
	trial_ends_at timestamptz,
	current_period_start timestamptz,
	current_period_end timestamptz,
	organization_id uuid,
	polar_subscription_id text,
	polar_customer_id text,
	embeddings_generated_at timestamptz,
	embeddings_model text,
	email text NOT NULL,
	name text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	usage_period_end timestamptz,
	limits_changed_at timestamptz,
	organization_changed_at timestamptz,
	cancel_at_period_end boolean NOT NULL DEFAULT false,
	shield_level text NOT NULL DEFAULT 'balanceado'
		CHECK (shield_level OPERATOR(pg_catalog.=) ANY (ARRAY['tolerante', 'balanceado', 'estricto'])),
	usage_period_start timestamptz,
	version bigint NOT NULL DEFAULT 1 CHECK (version OPERATOR(pg_catalog.>) 0),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	monthly_roasts_used integer NOT NULL DEFAULT 0
		CHECK (monthly_roasts_used OPERATOR(pg_catalog.>=) 0),
	roasting_enabled boolean NOT NULL DEFAULT true,
	roast_level smallint NOT NULL DEFAULT 3
		CHECK (roast_level OPERATOR(pg_catalog.>=) 1 AND roast_level OPERATOR(pg_catalog.<=) 5),
	field_log bigint[] NOT NULL DEFAULT '{}',
	limits_seen bigint NOT NULL DEFAULT 0,
	organization_seen bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE roastr_state.state IS
	'one row per user; every change goes through the roastr_state_version trigger';

-- Outcomes of patch() calls that carried a mutation_id.
CREATE TABLE roastr_state.mutations (
	user_id uuid NOT NULL
		REFERENCES roastr_state.state (user_id) ON DELETE CASCADE,
	mutation_id uuid NOT NULL,
	request_hash bytea NOT NULL,
	result jsonb,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (user_id, mutation_id)
);

-- The last version of every deleted user: a user created again starts
-- above it, so no device's cursor can skip the new state.  Holds nothing
-- but the id.
CREATE TABLE roastr_state.deleted_users (
	user_id uuid PRIMARY KEY,
	last_version bigint NOT NULL,
	deleted_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- None of the C functions is SECURITY DEFINER: the C code identifies the
-- caller, checks it, and only then reads or writes the tables as their owner.
CREATE FUNCTION roastr_state.state_trigger()
	RETURNS pg_catalog.trigger
	AS 'MODULE_PATHNAME', 'roastr_state_trigger'
	LANGUAGE C
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.state_trigger() IS
	'version check, version bump, change log and notification for roastr_state.state; a notification names every shown field whose value state_sync(user, version - 1) reports';

CREATE TRIGGER roastr_state_version
	BEFORE INSERT OR UPDATE ON roastr_state.state
	FOR EACH ROW EXECUTE FUNCTION roastr_state.state_trigger();

CREATE FUNCTION roastr_state.remember_deleted()
	RETURNS pg_catalog.trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $fn$
BEGIN
	INSERT INTO roastr_state.deleted_users (user_id, last_version)
		VALUES (OLD.user_id, OLD.version)
		ON CONFLICT (user_id) DO UPDATE
		   SET last_version = GREATEST(deleted_users.last_version, EXCLUDED.last_version),
		       deleted_at = pg_catalog.now();
	RETURN NULL;
END
$fn$;
COMMENT ON FUNCTION roastr_state.remember_deleted() IS
	'records the last version of a deleted user';

CREATE TRIGGER roastr_state_remember_deleted
	AFTER DELETE ON roastr_state.state
	FOR EACH ROW EXECUTE FUNCTION roastr_state.remember_deleted();

CREATE FUNCTION roastr_state.ensure_user(user_id uuid, email text,
										 name text DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_ensure_user'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.ensure_user(uuid, text, text) IS
	'service: create the user''s state if missing (idempotent); returns state_full';

-- Reads may write down what time has moved (an expired trial, a new usage
-- period) and what an operator changed (a shared change), so that syncs see
-- it as a versioned change: VOLATILE, and PARALLEL UNSAFE (a read run in a
-- parallel query may not start its own statements).
CREATE FUNCTION roastr_state.state_full(user_id uuid DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_state_full'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.state_full(uuid) IS
	'the whole state of a user as JSON';

CREATE FUNCTION roastr_state.state_sync(user_id uuid, since bigint DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_state_sync'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.state_sync(uuid, bigint) IS
	'shown fields whose value may have changed after a cursor (version): each carries the newest version of what it is computed from; with the new cursor';

CREATE FUNCTION roastr_state.state_sync(user_id uuid, since_at timestamptz)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_state_sync_at'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.state_sync(uuid, timestamptz) IS
	'fields changed after a point in time; prefer the version cursor';

CREATE FUNCTION roastr_state.state_sync(user_id uuid, since bigint, history text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_state_sync_history'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.state_sync(uuid, bigint, text) IS
	'state_sync from a cursor and the history it belongs to: a cursor of another history (a failover, a restore) gets everything flagged reset; a standby behind it answers PT503';

CREATE FUNCTION roastr_state.patch(user_id uuid, changes jsonb,
								   base_version bigint DEFAULT NULL,
								   mutation_id uuid DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_patch'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.patch(uuid, jsonb, bigint, uuid) IS
	'apply field changes all or nothing, with field-level optimistic locking';

CREATE FUNCTION roastr_state.notify_stats()
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_notify_stats'
	LANGUAGE C VOLATILE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.notify_stats() IS
	'service: counters of the background notifier';

CREATE FUNCTION roastr_state.stats()
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_stats'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.stats() IS
	'what an operator watches: conflicts, quota refusals and refused webhooks since start, webhook outcomes, retention, pending time-driven and shared moves, the notifier and the NOTIFY queue (service only)';

-- ===========================================================================
-- Shared changes
--
-- A change of a row that many users' states are computed from (a plan's
-- limit, an organization, a membership's role) writes that row only, with
-- a new change stamp from this sequence, and sends one broadcast on
-- roastr_state_broadcast.  Each state row records the stamps its change
-- log shows; the user's next call settles a pending change in the user's
-- own row, as a version (src/shared.c).
-- ===========================================================================
CREATE SEQUENCE roastr_state.shared_stamp AS bigint;
COMMENT ON SEQUENCE roastr_state.shared_stamp IS
	'change stamps of shared rows (plans, organizations, memberships)';

-- ===========================================================================
-- Plans and usage
--
-- Plans: the operator may change limits and trial lengths; the four plan
-- names are fixed.  A changed limit is a new version for every user it
-- applies to, written by each user's next call.  Consumptions: the answers
-- of consume_roasts calls that carried an idempotency key.
-- ===========================================================================
CREATE TABLE roastr_state.plans (
	plan text PRIMARY KEY
		CHECK (plan OPERATOR(pg_catalog.=) ANY (ARRAY['free', 'starter', 'pro', 'plus'])),
	monthly_roasts_limit integer
		CHECK (monthly_roasts_limit IS NULL OR monthly_roasts_limit OPERATOR(pg_catalog.>=) 0),
	trial_days integer
		CHECK (trial_days IS NULL OR trial_days OPERATOR(pg_catalog.>=) 0),
	changed_stamp bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE roastr_state.plans IS
	'plan limits: monthly_roasts_limit NULL means unlimited';

INSERT INTO roastr_state.plans (plan, monthly_roasts_limit, trial_days) VALUES
	('free', 100, NULL),
	('starter', 500, 30),
	('pro', 1000, 14),
	('plus', NULL, 14);

-- Inserting a plan that exists updates it, so that restoring a dump (whose
-- COPY brings the operator's plan rows) meets the rows this script created;
-- a restore brings the stamps its state rows recorded.
CREATE FUNCTION roastr_state.plans_upsert()
	RETURNS pg_catalog.trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $fn$
BEGIN
	UPDATE roastr_state.plans
	   SET monthly_roasts_limit = NEW.monthly_roasts_limit,
	       trial_days = NEW.trial_days,
	       changed_stamp = NEW.changed_stamp
	 WHERE plan OPERATOR(pg_catalog.=) NEW.plan;
	IF FOUND THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END
$fn$;
COMMENT ON FUNCTION roastr_state.plans_upsert() IS
	'makes an INSERT of an existing plan an UPDATE (dump and restore)';

CREATE TRIGGER roastr_state_plans_upsert
	BEFORE INSERT ON roastr_state.plans
	FOR EACH ROW EXECUTE FUNCTION roastr_state.plans_upsert();

CREATE FUNCTION roastr_state.plans_changed()
	RETURNS pg_catalog.trigger
	AS 'MODULE_PATHNAME', 'roastr_state_plans_changed'
	LANGUAGE C
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.plans_changed() IS
	'a changed plan limit gets a new change stamp and one broadcast; each user settles it with their next call, as a version of their own';

CREATE TRIGGER roastr_state_plans_changed
	BEFORE UPDATE ON roastr_state.plans
	FOR EACH ROW EXECUTE FUNCTION roastr_state.plans_changed();

CREATE TABLE roastr_state.consumptions (
	user_id uuid NOT NULL
		REFERENCES roastr_state.state (user_id) ON DELETE CASCADE,
	idempotency_key text NOT NULL,
	n integer NOT NULL,
	result jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (user_id, idempotency_key)
);

CREATE FUNCTION roastr_state.consume_roasts(user_id uuid, n integer DEFAULT 1,
											idempotency_key text DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_consume_roasts'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.consume_roasts(uuid, integer, text) IS
	'take n roasts from the current usage period if they fit; never overdraws';

-- ===========================================================================
-- Polar webhooks
--
-- Products map to plans; the newest event applied per subscription orders
-- the events; every verified delivery is kept for 30 days.
-- ===========================================================================
CREATE TABLE roastr_state.product_plans (
	product_id text PRIMARY KEY,
	plan text NOT NULL
		CHECK (plan OPERATOR(pg_catalog.=) ANY (ARRAY['starter', 'pro', 'plus']))
);

-- The newest event applied per Polar subscription, for ordering.
CREATE TABLE roastr_state.polar_subscriptions (
	subscription_id text PRIMARY KEY,
	user_id uuid REFERENCES roastr_state.state (user_id) ON DELETE CASCADE,
	modified_at timestamptz NOT NULL,
	status_rank integer NOT NULL,
	status text NOT NULL
);
-- Every verified delivery, applied or not, for 30 days.
CREATE TABLE roastr_state.webhook_events (
	webhook_id text PRIMARY KEY,
	received_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	event_type text,
	subscription_id text,
	user_id uuid,
	processed boolean NOT NULL DEFAULT false,
	outcome text NOT NULL DEFAULT 'received'
);
CREATE INDEX webhook_events_received_at ON roastr_state.webhook_events (received_at);

CREATE FUNCTION roastr_state.set_product_plan(product_id text, plan text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'roastr_state_set_product_plan'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.set_product_plan(text, text) IS
	'service: map a Polar product to a plan (NULL removes the mapping)';

CREATE FUNCTION roastr_state.apply_polar_webhook(webhook_id text,
												 webhook_timestamp text,
												 webhook_signature text,
												 body text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_apply_polar_webhook'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.apply_polar_webhook(text, text, text, text) IS
	'service: verify a Polar webhook (Standard Webhooks) and apply it exactly once, in order';

-- Called by apply_polar_webhook after the signature is verified; never
-- granted to anyone.  Returns {received, processed, idempotent, outcome}.
CREATE FUNCTION roastr_state._apply_polar_event(webhook_id text, body text)
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

-- ===========================================================================
-- Persona encryption
--
-- Persona text is stored only as ciphertext envelopes (the check trigger
-- refuses anything else), under one random data key per user, stored only
-- wrapped by a master key from roastr_state.master_key_file.  Deleting the
-- user deletes the key (crypto-shredding).
-- ===========================================================================
CREATE TABLE roastr_state.persona (
	user_id uuid PRIMARY KEY
		REFERENCES roastr_state.state (user_id) ON DELETE CASCADE,
	identity bytea,
	intolerance bytea,
	tolerance bytea
);

CREATE TABLE roastr_state.user_keys (
	user_id uuid PRIMARY KEY
		REFERENCES roastr_state.state (user_id) ON DELETE CASCADE,
	keygen integer NOT NULL CHECK (keygen OPERATOR(pg_catalog.>) 0),
	master_key_id integer NOT NULL CHECK (master_key_id OPERATOR(pg_catalog.>) 0),
	wrapped bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	rewrapped_at timestamptz
);
COMMENT ON TABLE roastr_state.user_keys IS
	'per-user data keys, wrapped by a master key (never stored in the clear)';

CREATE FUNCTION roastr_state.persona_check()
	RETURNS pg_catalog.trigger
	AS 'MODULE_PATHNAME', 'roastr_state_persona_check'
	LANGUAGE C
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.persona_check() IS
	'accepts only roastr_state ciphertext in roastr_state.persona';
CREATE TRIGGER roastr_state_persona_check
	BEFORE INSERT OR UPDATE ON roastr_state.persona
	FOR EACH ROW EXECUTE FUNCTION roastr_state.persona_check();

CREATE FUNCTION roastr_state.delete_user(user_id uuid)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'roastr_state_delete_user'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.delete_user(uuid) IS
	'erase a user; their data key goes too, so their persona ciphertext can no longer be opened';

CREATE FUNCTION roastr_state.rotate_master_key(batch_size integer DEFAULT 1000)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_rotate_master_key'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.rotate_master_key(integer) IS
	'service: rewrap up to batch_size data keys under the newest master key; call until remaining is 0';

-- a NULL model or time is bad input (22023), as for every other function
CREATE FUNCTION roastr_state.mark_embeddings(user_id uuid, model text,
											 generated_at timestamptz)
	RETURNS jsonb
	LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp
	AS $fn$
BEGIN
	IF model IS NULL OR generated_at IS NULL THEN
		RAISE EXCEPTION USING
			ERRCODE = 'invalid_parameter_value',
			MESSAGE = 'model and generated_at must not be null',
			HINT = 'mark_embeddings records a finished embedding: its model and when it was made.';
	END IF;
	RETURN roastr_state.patch(user_id,
		pg_catalog.jsonb_build_object('persona.embeddings_model', model,
									  'persona.embeddings_generated_at', generated_at));
END
$fn$;
COMMENT ON FUNCTION roastr_state.mark_embeddings(uuid, text, timestamptz) IS
	'service: record a finished embedding of the persona';

-- ===========================================================================
-- Organizations
--
-- Members with roles owner, admin and member; at most one owner (the
-- functions keep it exactly one); a user's current organization.  A rename,
-- a role change or a deletion stamps the organization's or the membership's
-- row (see "Shared changes"); a deleted organization stays as a tombstone
-- (deleted_at) until its last membership goes, and its slug is free again.
-- ===========================================================================
CREATE TABLE roastr_state.organizations (
	id uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	name text NOT NULL,
	slug text NOT NULL
		CHECK (slug OPERATOR(pg_catalog.~) '^[a-z0-9-]{3,63}$'),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	changed_stamp bigint NOT NULL DEFAULT 0,
	deleted_at timestamptz
);
CREATE UNIQUE INDEX organizations_slug_live ON roastr_state.organizations (slug)
	WHERE deleted_at IS NULL;
CREATE TABLE roastr_state.organization_members (
	org_id uuid NOT NULL
		REFERENCES roastr_state.organizations (id) ON DELETE CASCADE,
	user_id uuid NOT NULL
		REFERENCES roastr_state.state (user_id) ON DELETE CASCADE,
	role text NOT NULL
		CHECK (role OPERATOR(pg_catalog.=) ANY (ARRAY['owner', 'admin', 'member'])),
	changed_stamp bigint NOT NULL DEFAULT pg_catalog.nextval('roastr_state.shared_stamp'),
	PRIMARY KEY (org_id, user_id)
);
-- at most one owner per organization; the functions keep it exactly one
CREATE UNIQUE INDEX organization_members_one_owner
	ON roastr_state.organization_members (org_id)
	WHERE role OPERATOR(pg_catalog.=) 'owner';
CREATE INDEX organization_members_user ON roastr_state.organization_members (user_id);

-- Deleting a user who owns an organization: alone, the organization goes
-- too; with other members, refused (ownership must be transferred first).
-- A deleted organization goes with its last membership.
CREATE FUNCTION roastr_state.organization_member_deleted()
	RETURNS pg_catalog.trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $fn$
BEGIN
	IF OLD.role OPERATOR(pg_catalog.<>) 'owner'
	   OR NOT EXISTS (SELECT FROM roastr_state.organizations o
	                   WHERE o.id OPERATOR(pg_catalog.=) OLD.org_id
	                     AND o.deleted_at IS NULL)
	   OR EXISTS (SELECT FROM roastr_state.organization_members m
	               WHERE m.org_id OPERATOR(pg_catalog.=) OLD.org_id
	                 AND m.role OPERATOR(pg_catalog.=) 'owner') THEN
		IF NOT EXISTS (SELECT FROM roastr_state.organization_members m
		                WHERE m.org_id OPERATOR(pg_catalog.=) OLD.org_id) THEN
			DELETE FROM roastr_state.organizations o
			 WHERE o.id OPERATOR(pg_catalog.=) OLD.org_id
			   AND o.deleted_at IS NOT NULL;
		END IF;
		RETURN NULL;
	END IF;
	IF EXISTS (SELECT FROM roastr_state.organization_members m
	            WHERE m.org_id OPERATOR(pg_catalog.=) OLD.org_id) THEN
		RAISE EXCEPTION 'cannot remove the owner of organization %', OLD.org_id
			USING ERRCODE = '23503',
			      HINT = 'Transfer ownership with set_member_role first.';
	END IF;
	DELETE FROM roastr_state.organizations o WHERE o.id OPERATOR(pg_catalog.=) OLD.org_id;
	RETURN NULL;
END
$fn$;
CREATE TRIGGER roastr_state_organization_member_deleted
	AFTER DELETE ON roastr_state.organization_members
	FOR EACH ROW EXECUTE FUNCTION roastr_state.organization_member_deleted();

CREATE FUNCTION roastr_state.create_organization(owner uuid, name text, slug text)
	RETURNS uuid
	AS 'MODULE_PATHNAME', 'roastr_state_create_organization'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.create_organization(uuid, text, text) IS
	'create an organization owned by owner';
CREATE FUNCTION roastr_state.add_member(org uuid, user_id uuid, role text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'roastr_state_add_member'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.add_member(uuid, uuid, text) IS
	'owner or admin: add a member or (owner only) an admin';
CREATE FUNCTION roastr_state.set_member_role(org uuid, user_id uuid, role text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'roastr_state_set_member_role'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.set_member_role(uuid, uuid, text) IS
	'owner: make or unmake admins, or transfer ownership';
CREATE FUNCTION roastr_state.remove_member(org uuid, user_id uuid)
	RETURNS void
	AS 'MODULE_PATHNAME', 'roastr_state_remove_member'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.remove_member(uuid, uuid) IS
	'owner or admin removes a member; a member may leave';
CREATE FUNCTION roastr_state.rename_organization(org uuid, name text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'roastr_state_rename_organization'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.rename_organization(uuid, text) IS
	'owner or admin: rename the organization';
CREATE FUNCTION roastr_state.delete_organization(org uuid)
	RETURNS void
	AS 'MODULE_PATHNAME', 'roastr_state_delete_organization'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.delete_organization(uuid) IS
	'owner: delete the organization; each member whose current organization it was settles it with their next call';
CREATE FUNCTION roastr_state.set_current_organization(user_id uuid, org uuid)
	RETURNS void
	AS 'MODULE_PATHNAME', 'roastr_state_set_current_organization'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.set_current_organization(uuid, uuid) IS
	'the organization a user''s state shows (NULL: none)';

-- ===========================================================================
-- Tables whose rows pg_dump saves, in the order the upgrade scripts
-- registered them (the catalog keeps the order)
-- ===========================================================================
SELECT pg_catalog.pg_extension_config_dump('roastr_state.plans', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.state', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.deleted_users', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.persona', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.mutations', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.consumptions', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.product_plans', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.polar_subscriptions', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.webhook_events', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.user_keys', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.organizations', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.organization_members', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.shared_stamp', '');

-- ===========================================================================
-- Access
--
-- Row security: enabled and forced everywhere.  Only the service touches the
-- tables directly; users go through the functions.  Nothing for PUBLIC;
-- explicit grants to Supabase's roles when they exist (see README,
-- "Privileges", for other setups).
-- ===========================================================================
CREATE FUNCTION roastr_state.caller_is_service()
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'roastr_state_caller_is_service'
	LANGUAGE C STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.caller_is_service() IS
	'whether the current role acts as the service (used by row security policies)';

CREATE FUNCTION roastr_state.authorize_channel(channel text)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'roastr_state_authorize_channel'
	LANGUAGE C STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.authorize_channel(text) IS
	'whether the calling user may LISTEN on a channel';

ALTER TABLE roastr_state.plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.plans FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.state ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.state FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.persona ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.persona FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.mutations ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.mutations FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.deleted_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.deleted_users FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.consumptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.consumptions FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.product_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.product_plans FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.polar_subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.polar_subscriptions FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.webhook_events FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.user_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.user_keys FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.organizations ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.organizations FORCE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.organization_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE roastr_state.organization_members FORCE ROW LEVEL SECURITY;

CREATE POLICY service_all ON roastr_state.plans
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.state
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.persona
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.mutations
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.deleted_users
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.consumptions
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.product_plans
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.polar_subscriptions
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.webhook_events
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.user_keys
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.organizations
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));
CREATE POLICY service_all ON roastr_state.organization_members
	USING ((SELECT roastr_state.caller_is_service()))
	WITH CHECK ((SELECT roastr_state.caller_is_service()));

REVOKE ALL ON SCHEMA roastr_state FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA roastr_state FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA roastr_state FROM PUBLIC;

DO $grants$
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'authenticated') THEN
		GRANT USAGE ON SCHEMA roastr_state TO authenticated;
		GRANT EXECUTE ON FUNCTION
			roastr_state.state_full(uuid),
			roastr_state.state_sync(uuid, bigint),
			roastr_state.state_sync(uuid, timestamptz),
			roastr_state.state_sync(uuid, bigint, text),
			roastr_state.patch(uuid, jsonb, bigint, uuid),
			roastr_state.authorize_channel(text),
			roastr_state.consume_roasts(uuid, integer, text),
			roastr_state.delete_user(uuid),
			roastr_state.create_organization(uuid, text, text),
			roastr_state.add_member(uuid, uuid, text),
			roastr_state.set_member_role(uuid, uuid, text),
			roastr_state.remove_member(uuid, uuid),
			roastr_state.rename_organization(uuid, text),
			roastr_state.delete_organization(uuid),
			roastr_state.set_current_organization(uuid, uuid)
			TO authenticated;
	END IF;
	IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'service_role') THEN
		GRANT USAGE ON SCHEMA roastr_state TO service_role;
		GRANT EXECUTE ON FUNCTION
			roastr_state.ensure_user(uuid, text, text),
			roastr_state.state_full(uuid),
			roastr_state.state_sync(uuid, bigint),
			roastr_state.state_sync(uuid, timestamptz),
			roastr_state.state_sync(uuid, bigint, text),
			roastr_state.patch(uuid, jsonb, bigint, uuid),
			roastr_state.authorize_channel(text),
			roastr_state.caller_is_service(),
			roastr_state.notify_stats(),
			roastr_state.stats(),
			roastr_state.consume_roasts(uuid, integer, text),
			roastr_state.set_product_plan(text, text),
			roastr_state.apply_polar_webhook(text, text, text, text),
			roastr_state.delete_user(uuid),
			roastr_state.rotate_master_key(integer),
			roastr_state.mark_embeddings(uuid, text, timestamptz),
			roastr_state.create_organization(uuid, text, text),
			roastr_state.add_member(uuid, uuid, text),
			roastr_state.set_member_role(uuid, uuid, text),
			roastr_state.remove_member(uuid, uuid),
			roastr_state.rename_organization(uuid, text),
			roastr_state.delete_organization(uuid),
			roastr_state.set_current_organization(uuid, uuid)
			TO service_role;
		GRANT SELECT, UPDATE, DELETE ON roastr_state.state TO service_role;
		GRANT SELECT, UPDATE ON roastr_state.plans TO service_role;
		GRANT SELECT ON roastr_state.mutations, roastr_state.consumptions,
			roastr_state.product_plans, roastr_state.polar_subscriptions,
			roastr_state.webhook_events, roastr_state.user_keys,
			roastr_state.organizations, roastr_state.organization_members
			TO service_role;
		-- deleting a user records its last version (trigger runs as the caller)
		GRANT SELECT, INSERT, UPDATE ON roastr_state.deleted_users TO service_role;
	END IF;
END
$grants$;
