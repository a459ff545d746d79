/* roastr_state--0.1.0.sql: versioned per-user state, field-level conflicts,
 * change log and notifications.  Released scripts never change. */

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

-- ---------------------------------------------------------------------------
-- Plans.  The operator may change limits and trial lengths; the four plan
-- names are fixed.
-- ---------------------------------------------------------------------------
CREATE TABLE roastr_state.plans (
	plan text PRIMARY KEY
		CHECK (plan OPERATOR(pg_catalog.=) ANY (ARRAY['free', 'starter', 'pro', 'plus'])),
	monthly_roasts_limit integer
		CHECK (monthly_roasts_limit IS NULL OR monthly_roasts_limit OPERATOR(pg_catalog.>=) 0),
	trial_days integer
		CHECK (trial_days IS NULL OR trial_days OPERATOR(pg_catalog.>=) 0)
);
COMMENT ON TABLE roastr_state.plans IS
	'plan limits: monthly_roasts_limit NULL means unlimited';

INSERT INTO roastr_state.plans (plan, monthly_roasts_limit, trial_days) VALUES
	('free', 100, NULL),
	('starter', 500, 30),
	('pro', 1000, 14),
	('plus', NULL, 14);

SELECT pg_catalog.pg_extension_config_dump('roastr_state.plans', '');

-- Inserting a plan that exists updates it, so that restoring a dump (whose
-- COPY brings the operator's plan rows) meets the rows this script created.
CREATE FUNCTION roastr_state.plans_upsert()
	RETURNS pg_catalog.trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $fn$
BEGIN
	UPDATE roastr_state.plans
	   SET monthly_roasts_limit = NEW.monthly_roasts_limit,
	       trial_days = NEW.trial_days
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

-- ---------------------------------------------------------------------------
-- One row per user.  Small, hot columns first (a roasting toggle or a
-- consumption should not re-log wide columns); persona ciphertext lives in
-- its own table.  field_versions[i+1] / field_times[i+1] hold the version and
-- time of the last change of field id i: this is the compacted change log
-- (one entry per user and field, superseded in place).
-- ---------------------------------------------------------------------------
CREATE TABLE roastr_state.state (
	user_id uuid PRIMARY KEY,
	version bigint NOT NULL DEFAULT 1 CHECK (version OPERATOR(pg_catalog.>) 0),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	roasting_enabled boolean NOT NULL DEFAULT true,
	roast_level smallint NOT NULL DEFAULT 3
		CHECK (roast_level OPERATOR(pg_catalog.>=) 1 AND roast_level OPERATOR(pg_catalog.<=) 5),
	monthly_roasts_used integer NOT NULL DEFAULT 0
		CHECK (monthly_roasts_used OPERATOR(pg_catalog.>=) 0),
	usage_period_start timestamptz,
	shield_level text NOT NULL DEFAULT 'balanceado'
		CHECK (shield_level OPERATOR(pg_catalog.=) ANY (ARRAY['tolerante', 'balanceado', 'estricto'])),
	plan text NOT NULL DEFAULT 'free'
		CHECK (plan OPERATOR(pg_catalog.=) ANY (ARRAY['free', 'starter', 'pro', 'plus'])),
	subscription_status text NOT NULL DEFAULT 'active'
		CHECK (subscription_status OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'trial', 'past_due', 'canceled'])),
	trial_ends_at timestamptz,
	current_period_start timestamptz,
	current_period_end timestamptz,
	organization_id uuid,
	field_versions bigint[] NOT NULL DEFAULT '{}',
	field_times timestamptz[] NOT NULL DEFAULT '{}',
	polar_subscription_id text,
	polar_customer_id text,
	embeddings_generated_at timestamptz,
	embeddings_model text,
	email text NOT NULL,
	name text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE roastr_state.state IS
	'one row per user; every change goes through the roastr_state_version trigger';

-- Persona text, encrypted.  In 0.1.0 no write path accepts persona text yet:
-- the guard trigger refuses any, so no plaintext can ever be stored.
CREATE TABLE roastr_state.persona (
	user_id uuid PRIMARY KEY
		REFERENCES roastr_state.state (user_id) ON DELETE CASCADE,
	identity bytea,
	intolerance bytea,
	tolerance bytea
);

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

SELECT pg_catalog.pg_extension_config_dump('roastr_state.state', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.deleted_users', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.persona', '');
SELECT pg_catalog.pg_extension_config_dump('roastr_state.mutations', '');

-- ---------------------------------------------------------------------------
-- Functions.  None is SECURITY DEFINER: the C code identifies the caller,
-- checks it, and only then reads or writes the tables as their owner.
-- ---------------------------------------------------------------------------
CREATE FUNCTION roastr_state.state_trigger()
	RETURNS pg_catalog.trigger
	AS 'MODULE_PATHNAME', 'roastr_state_trigger'
	LANGUAGE C
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.state_trigger() IS
	'version check, version bump, change log and notification for roastr_state.state';

CREATE FUNCTION roastr_state.persona_guard()
	RETURNS pg_catalog.trigger
	AS 'MODULE_PATHNAME', 'roastr_state_persona_guard'
	LANGUAGE C
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.persona_guard() IS
	'refuses persona text until encryption is available';

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

CREATE TRIGGER roastr_state_persona_guard
	BEFORE INSERT OR UPDATE ON roastr_state.persona
	FOR EACH ROW EXECUTE FUNCTION roastr_state.persona_guard();

CREATE FUNCTION roastr_state.ensure_user(user_id uuid, email text,
										 name text DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_ensure_user'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.ensure_user(uuid, text, text) IS
	'service: create the user''s state if missing (idempotent); returns state_full';

CREATE FUNCTION roastr_state.state_full(user_id uuid DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_state_full'
	LANGUAGE C STABLE PARALLEL RESTRICTED
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.state_full(uuid) IS
	'the whole state of a user as JSON';

CREATE FUNCTION roastr_state.state_sync(user_id uuid, since bigint DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_state_sync'
	LANGUAGE C STABLE PARALLEL RESTRICTED
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.state_sync(uuid, bigint) IS
	'fields changed after a cursor (version), with the new cursor';

CREATE FUNCTION roastr_state.state_sync(user_id uuid, since_at timestamptz)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_state_sync_at'
	LANGUAGE C STABLE PARALLEL RESTRICTED
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.state_sync(uuid, timestamptz) IS
	'fields changed after a point in time; prefer the version cursor';

CREATE FUNCTION roastr_state.patch(user_id uuid, changes jsonb,
								   base_version bigint DEFAULT NULL,
								   mutation_id uuid DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_patch'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.patch(uuid, jsonb, bigint, uuid) IS
	'apply field changes all or nothing, with field-level optimistic locking';

CREATE FUNCTION roastr_state.authorize_channel(channel text)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'roastr_state_authorize_channel'
	LANGUAGE C STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.authorize_channel(text) IS
	'whether the calling user may LISTEN on a channel';

CREATE FUNCTION roastr_state.caller_is_service()
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'roastr_state_caller_is_service'
	LANGUAGE C STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.caller_is_service() IS
	'whether the current role acts as the service (used by row security policies)';

CREATE FUNCTION roastr_state.notify_stats()
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_notify_stats'
	LANGUAGE C VOLATILE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.notify_stats() IS
	'service: counters of the background notifier';

-- ---------------------------------------------------------------------------
-- Row security: enabled and forced everywhere.  Only the service touches the
-- tables directly; users go through the functions.
-- ---------------------------------------------------------------------------
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

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC; explicit grants to Supabase's roles when
-- they exist (see README, "Privileges", for other setups).
-- ---------------------------------------------------------------------------
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
			roastr_state.patch(uuid, jsonb, bigint, uuid),
			roastr_state.authorize_channel(text)
			TO authenticated;
	END IF;
	IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'service_role') THEN
		GRANT USAGE ON SCHEMA roastr_state TO service_role;
		GRANT EXECUTE ON FUNCTION
			roastr_state.ensure_user(uuid, text, text),
			roastr_state.state_full(uuid),
			roastr_state.state_sync(uuid, bigint),
			roastr_state.state_sync(uuid, timestamptz),
			roastr_state.patch(uuid, jsonb, bigint, uuid),
			roastr_state.authorize_channel(text),
			roastr_state.caller_is_service(),
			roastr_state.notify_stats()
			TO service_role;
		GRANT SELECT, UPDATE, DELETE ON roastr_state.state TO service_role;
		GRANT SELECT, UPDATE ON roastr_state.plans TO service_role;
		GRANT SELECT ON roastr_state.mutations TO service_role;
		-- deleting a user records its last version (trigger runs as the caller)
		GRANT SELECT, INSERT, UPDATE ON roastr_state.deleted_users TO service_role;
	END IF;
END
$grants$;
