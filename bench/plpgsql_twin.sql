-- bench/plpgsql_twin.sql — the honest twin of roastr_state, in PL/pgSQL.
--
-- The same semantics as the extension's write path, written the way a
-- competent user would write them without the extension: one row per user,
-- a BEFORE trigger that diffs OLD and NEW through jsonb, checks and bumps the
-- version, upserts one compacted change-log row per changed field, and
-- NOTIFYs; a patch() function that validates a JSON patch and runs one
-- static UPDATE; a state_sync() that reads the change log.  It is meant to
-- be neither slow nor crippled: every statement is static (plans are cached
-- by PL/pgSQL), the diff is one query, the change log is written with one
-- INSERT ... ON CONFLICT, and the log is read through its primary key.
--
-- Semantics, as in roastr_state (see README.md):
--   * twin.state.version is the user's version; an UPDATE that sets
--     version = N names N as its base version, one that leaves it alone is
--     last-write-wins; a base newer than the row, negative or NULL is 22023.
--   * A field conflicts when the UPDATE changes it and it was changed after
--     the base version: PT409 with the same JSON DETAIL
--     {code, server_version, client_version, conflicts: [{field,
--     server_value, server_version}]}.
--   * Otherwise, when anything changed, version = old + 1, updated_at = now()
--     and each changed field's row in twin.changes is superseded (one row per
--     user and field: the compacted change log).  Nothing changed: no bump.
--   * A NOTIFY on "user:<uuid>" and, with user_id added, on "twin_state",
--     payload {type, version, fields, data} (resync above 7999 bytes).
--
-- Differences, stated honestly:
--   * The twin's row has every column of roastr_state.state except
--     field_versions/field_times: twin.changes plays their part.
--   * Direct UPDATEs of twin.state are validated by CHECK constraints
--     (SQLSTATE 23514) where the extension's trigger raises 22023.
--   * It notifies from the row trigger, so a transaction that writes a user
--     twice sends two notifications (the extension coalesces them), and
--     notifying transactions serialize at commit (PostgreSQL's NOTIFY lock).
--   * state_sync returns stored fields only (no derived usage/trial fields)
--     and there is no mutation_id, persona table or row security.
--   * The caller check is "superuser or member of service_role, else the
--     JWT sub must be the user" — the same rule, written as a user would.
--
-- Load it into a database that has (or will have) the same roles as
-- roastr_state expects; it does not depend on the extension.

CREATE SCHEMA twin;

-- The field registry: dotted path, column, section/key for payloads,
-- notification kind, who writes it, and its JSON type for validation.
CREATE TABLE twin.fields (
	path text PRIMARY KEY,
	col text NOT NULL UNIQUE,
	ord int NOT NULL,
	section text NOT NULL,
	key text NOT NULL,
	kind text NOT NULL,
	writer text NOT NULL CHECK (writer IN ('user', 'service', 'system')),
	jtype text NOT NULL CHECK (jtype IN ('bool', 'int', 'text', 'timestamptz', 'uuid')),
	nullable boolean NOT NULL,
	minval int,						-- int: range; text: length
	maxval int,
	allowed text[]					-- text enumerations
);

INSERT INTO twin.fields VALUES
	('auth.email', 'email', 0, 'auth', 'email', 'auth_update', 'service', 'text', false, 3, 320, NULL),
	('auth.name', 'name', 1, 'auth', 'name', 'auth_update', 'user', 'text', true, 0, 200, NULL),
	('subscription.plan', 'plan', 2, 'subscription', 'plan', 'subscription_update', 'service', 'text', false, NULL, NULL, '{free,starter,pro,plus}'),
	('subscription.status', 'subscription_status', 3, 'subscription', 'status', 'subscription_update', 'service', 'text', false, NULL, NULL, '{active,trial,past_due,canceled}'),
	('subscription.trial_ends_at', 'trial_ends_at', 4, 'subscription', 'trial_ends_at', 'subscription_update', 'service', 'timestamptz', true, NULL, NULL, NULL),
	('subscription.current_period_start', 'current_period_start', 5, 'subscription', 'current_period_start', 'subscription_update', 'service', 'timestamptz', true, NULL, NULL, NULL),
	('subscription.current_period_end', 'current_period_end', 6, 'subscription', 'current_period_end', 'subscription_update', 'service', 'timestamptz', true, NULL, NULL, NULL),
	('subscription.polar_subscription_id', 'polar_subscription_id', 7, 'subscription', 'polar_subscription_id', 'subscription_update', 'service', 'text', true, 1, 200, NULL),
	('subscription.polar_customer_id', 'polar_customer_id', 8, 'subscription', 'polar_customer_id', 'subscription_update', 'service', 'text', true, 1, 200, NULL),
	('persona.embeddings_generated_at', 'embeddings_generated_at', 12, 'persona', 'embeddings_generated_at', 'persona_update', 'service', 'timestamptz', true, NULL, NULL, NULL),
	('persona.embeddings_model', 'embeddings_model', 13, 'persona', 'embeddings_model', 'persona_update', 'service', 'text', true, 1, 200, NULL),
	('roasting.enabled', 'roasting_enabled', 14, 'roasting', 'enabled', 'roasting_toggle', 'user', 'bool', false, NULL, NULL, NULL),
	('roasting.roast_level', 'roast_level', 15, 'roasting', 'roast_level', 'roasting_update', 'user', 'int', false, 1, 5, NULL),
	('roasting.shield_level', 'shield_level', 16, 'roasting', 'shield_level', 'roasting_update', 'user', 'text', false, NULL, NULL, '{tolerante,balanceado,estricto}'),
	('usage.monthly_roasts_used', 'monthly_roasts_used', 17, 'usage', 'monthly_roasts_used', 'usage_update', 'system', 'int', false, 0, 2147483647, NULL),
	('usage.period_start', 'usage_period_start', 18, 'usage', 'period_start', 'usage_update', 'system', 'timestamptz', true, NULL, NULL, NULL),
	('organization.id', 'organization_id', 19, 'organization', 'id', 'organization_update', 'system', 'uuid', true, NULL, NULL, NULL);

-- One row per user: the columns of roastr_state.state, in the same order,
-- without field_versions/field_times (twin.changes replaces them).
CREATE TABLE twin.state (
	user_id uuid PRIMARY KEY,
	version bigint NOT NULL DEFAULT 1 CHECK (version > 0),
	updated_at timestamptz NOT NULL DEFAULT now(),
	roasting_enabled boolean NOT NULL DEFAULT true,
	roast_level smallint NOT NULL DEFAULT 3 CHECK (roast_level BETWEEN 1 AND 5),
	monthly_roasts_used integer NOT NULL DEFAULT 0 CHECK (monthly_roasts_used >= 0),
	usage_period_start timestamptz,
	shield_level text NOT NULL DEFAULT 'balanceado'
		CHECK (shield_level IN ('tolerante', 'balanceado', 'estricto')),
	plan text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'starter', 'pro', 'plus')),
	subscription_status text NOT NULL DEFAULT 'active'
		CHECK (subscription_status IN ('active', 'trial', 'past_due', 'canceled')),
	trial_ends_at timestamptz,
	current_period_start timestamptz,
	current_period_end timestamptz,
	organization_id uuid,
	polar_subscription_id text CHECK (char_length(polar_subscription_id) BETWEEN 1 AND 200),
	polar_customer_id text CHECK (char_length(polar_customer_id) BETWEEN 1 AND 200),
	embeddings_generated_at timestamptz,
	embeddings_model text CHECK (char_length(embeddings_model) BETWEEN 1 AND 200),
	email text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 320 AND strpos(email, '@') > 0),
	name text CHECK (char_length(name) <= 200),
	created_at timestamptz NOT NULL DEFAULT now()
);

-- The compacted change log: the last change of each field of each user.
CREATE TABLE twin.changes (
	user_id uuid NOT NULL REFERENCES twin.state (user_id) ON DELETE CASCADE,
	field text NOT NULL,
	version bigint NOT NULL,
	value jsonb,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (user_id, field)
);

-- The service: a superuser or a member of service_role (which has
-- BYPASSRLS in Supabase).  Otherwise the JWT "sub" must name the user.
CREATE FUNCTION twin.check_caller(p_user_id uuid) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
	sub text;
BEGIN
	IF current_setting('is_superuser')::boolean THEN
		RETURN true;
	END IF;
	IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role')
		AND pg_has_role('service_role', 'MEMBER') THEN
		RETURN true;
	END IF;
	sub := coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub',
					nullif(current_setting('request.jwt.claim.sub', true), ''));
	IF sub IS NULL OR sub IS DISTINCT FROM p_user_id::text THEN
		RAISE EXCEPTION 'permission denied to act on another user''s state'
			USING ERRCODE = '42501';
	END IF;
	RETURN false;
END
$$;

-- The trigger: version check and bump, change log, notification.
CREATE FUNCTION twin.state_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	o jsonb;
	n jsonb := to_jsonb(NEW);
	cur bigint;
	base bigint;
	paths text[];
	vals jsonb;
	kinds text[];
	data jsonb;
	conflicts jsonb;
	pj jsonb;
	p text;
	sec text;
BEGIN
	IF TG_OP = 'INSERT' THEN
		-- a new user: version 1 (twin.log_insert logs every field)
		NEW.version := 1;
		NEW.updated_at := now();
		NEW.created_at := now();
		RETURN NEW;
	END IF;

	IF NEW.user_id IS DISTINCT FROM OLD.user_id
		OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
		RAISE EXCEPTION 'columns user_id and created_at of twin.state are maintained by the trigger'
			USING ERRCODE = '428C9';
	END IF;

	cur := OLD.version;
	base := NEW.version;
	IF base IS NULL THEN
		RAISE EXCEPTION 'base version must not be null' USING ERRCODE = '22023';
	ELSIF base > cur THEN
		RAISE EXCEPTION 'base version % is newer than the current version %', base, cur
			USING ERRCODE = '22023';
	ELSIF base < 0 THEN
		RAISE EXCEPTION 'base version must not be negative' USING ERRCODE = '22023';
	END IF;

	-- the diff: every registered column whose value changed
	o := to_jsonb(OLD);
	SELECT array_agg(f.path ORDER BY f.ord), jsonb_object_agg(f.path, n -> f.col),
		   array_agg(DISTINCT f.kind)
	INTO paths, vals, kinds
	FROM twin.fields f
	WHERE o -> f.col IS DISTINCT FROM n -> f.col;

	IF paths IS NULL THEN
		NEW.version := cur;			-- nothing changed: no new version
		RETURN NEW;
	END IF;

	IF base <> cur THEN
		SELECT jsonb_agg(jsonb_build_object('field', c.field,
											'server_value', o -> f.col,
											'server_version', c.version) ORDER BY f.ord)
		INTO conflicts
		FROM twin.changes c JOIN twin.fields f ON f.path = c.field
		WHERE c.user_id = OLD.user_id AND c.field = ANY (paths) AND c.version > base;
		IF conflicts IS NOT NULL THEN
			RAISE EXCEPTION 'version conflict: fields were changed after version %', base
				USING ERRCODE = 'PT409',
					  DETAIL = jsonb_build_object('code', 'E_CONFLICT',
												  'server_version', cur,
												  'client_version', base,
												  'conflicts', conflicts)::text,
					  HINT = format('Read the changes with state_sync, then retry with base version %s.', cur);
		END IF;
	END IF;

	NEW.version := cur + 1;
	NEW.updated_at := now();

	INSERT INTO twin.changes AS c (user_id, field, version, value, updated_at)
	SELECT NEW.user_id, e.key, NEW.version, e.value, now() FROM jsonb_each(vals) e
	ON CONFLICT (user_id, field) DO UPDATE
		SET version = EXCLUDED.version, value = EXCLUDED.value,
			updated_at = EXCLUDED.updated_at;

	-- "data": the changed values shaped like the whole state
	data := '{}';
	FOREACH p IN ARRAY paths LOOP
		sec := split_part(p, '.', 1);
		data := data || jsonb_build_object(sec, coalesce(data -> sec, '{}')
											|| jsonb_build_object(split_part(p, '.', 2), vals -> p));
	END LOOP;
	pj := jsonb_build_object(
		'type', CASE WHEN cardinality(kinds) = 1 THEN to_jsonb(kinds[1]) ELSE to_jsonb(kinds) END,
		'version', NEW.version,
		'fields', to_jsonb(paths),
		'data', data);
	IF octet_length(pj::text) > 7999 THEN
		pj := jsonb_build_object('type', 'resync', 'version', NEW.version);
	END IF;
	PERFORM pg_notify('user:' || NEW.user_id, pj::text),
			pg_notify('twin_state', (pj || jsonb_build_object('user_id', NEW.user_id))::text);
	RETURN NEW;
END
$$;

CREATE TRIGGER twin_version
	BEFORE INSERT OR UPDATE ON twin.state
	FOR EACH ROW EXECUTE FUNCTION twin.state_trigger();

-- A new user's fields are all logged at version 1.  AFTER INSERT, so the
-- change-log rows' foreign key finds their user.
CREATE FUNCTION twin.log_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	n jsonb := to_jsonb(NEW);
BEGIN
	INSERT INTO twin.changes (user_id, field, version, value, updated_at)
	SELECT NEW.user_id, f.path, 1, n -> f.col, NEW.updated_at FROM twin.fields f;
	RETURN NULL;
END
$$;

CREATE TRIGGER twin_log_insert
	AFTER INSERT ON twin.state
	FOR EACH ROW EXECUTE FUNCTION twin.log_insert();

-- patch: validate every key and value, then one static UPDATE.
CREATE FUNCTION twin.patch(p_user_id uuid, changes jsonb, base_version bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	svc boolean;
	r record;
	applied text[] := '{}';
	newver bigint;
BEGIN
	svc := twin.check_caller(p_user_id);
	IF changes IS NULL OR jsonb_typeof(changes) <> 'object' THEN
		RAISE EXCEPTION 'changes must be a JSON object' USING ERRCODE = '22023';
	END IF;
	IF base_version < 0 THEN
		RAISE EXCEPTION 'base version must not be negative' USING ERRCODE = '22023';
	END IF;

	FOR r IN
		SELECT e.key, e.value, jsonb_typeof(e.value) AS jt, f.*
		FROM jsonb_each(changes) e LEFT JOIN twin.fields f ON f.path = e.key
		ORDER BY f.ord
	LOOP
		IF r.path IS NULL THEN
			RAISE EXCEPTION 'unknown field "%"', r.key USING ERRCODE = '22023';
		ELSIF r.writer = 'system' THEN
			RAISE EXCEPTION 'field "%" cannot be written by patch', r.key USING ERRCODE = '22023';
		ELSIF r.writer = 'service' AND NOT svc THEN
			RAISE EXCEPTION 'permission denied to write field "%"', r.key USING ERRCODE = '42501';
		END IF;
		IF r.jt = 'null' THEN
			IF NOT r.nullable THEN
				RAISE EXCEPTION 'invalid value for field "%"', r.key USING ERRCODE = '22023';
			END IF;
		ELSIF r.jtype = 'bool' THEN
			IF r.jt <> 'boolean' THEN
				RAISE EXCEPTION 'invalid value for field "%"', r.key USING ERRCODE = '22023';
			END IF;
		ELSIF r.jtype = 'int' THEN
			IF r.jt <> 'number' OR (r.value)::numeric <> trunc((r.value)::numeric)
				OR (r.value)::numeric NOT BETWEEN r.minval AND r.maxval THEN
				RAISE EXCEPTION 'invalid value for field "%"', r.key USING ERRCODE = '22023';
			END IF;
		ELSIF r.jtype = 'text' THEN
			IF r.jt <> 'string'
				OR (r.allowed IS NOT NULL AND NOT (r.value ->> 0) = ANY (r.allowed))
				OR (r.allowed IS NULL AND (char_length(r.value ->> 0) NOT BETWEEN r.minval AND r.maxval
										   OR (r.value ->> 0) ~ '[\x01-\x1f\x7f]'
										   OR (r.path = 'auth.email' AND strpos(r.value ->> 0, '@') = 0))) THEN
				RAISE EXCEPTION 'invalid value for field "%"', r.key USING ERRCODE = '22023';
			END IF;
		ELSIF r.jtype = 'timestamptz' THEN
			IF r.jt <> 'string' OR NOT twin.valid_tstz(r.value ->> 0) THEN
				RAISE EXCEPTION 'invalid value for field "%"', r.key USING ERRCODE = '22023';
			END IF;
		END IF;
		applied := applied || r.path;
	END LOOP;

	UPDATE twin.state s SET
		version = coalesce(base_version, s.version),
		email = CASE WHEN changes ? 'auth.email' THEN changes ->> 'auth.email' ELSE s.email END,
		name = CASE WHEN changes ? 'auth.name' THEN changes ->> 'auth.name' ELSE s.name END,
		plan = CASE WHEN changes ? 'subscription.plan' THEN changes ->> 'subscription.plan' ELSE s.plan END,
		subscription_status = CASE WHEN changes ? 'subscription.status' THEN changes ->> 'subscription.status' ELSE s.subscription_status END,
		trial_ends_at = CASE WHEN changes ? 'subscription.trial_ends_at' THEN (changes ->> 'subscription.trial_ends_at')::timestamptz ELSE s.trial_ends_at END,
		current_period_start = CASE WHEN changes ? 'subscription.current_period_start' THEN (changes ->> 'subscription.current_period_start')::timestamptz ELSE s.current_period_start END,
		current_period_end = CASE WHEN changes ? 'subscription.current_period_end' THEN (changes ->> 'subscription.current_period_end')::timestamptz ELSE s.current_period_end END,
		polar_subscription_id = CASE WHEN changes ? 'subscription.polar_subscription_id' THEN changes ->> 'subscription.polar_subscription_id' ELSE s.polar_subscription_id END,
		polar_customer_id = CASE WHEN changes ? 'subscription.polar_customer_id' THEN changes ->> 'subscription.polar_customer_id' ELSE s.polar_customer_id END,
		embeddings_generated_at = CASE WHEN changes ? 'persona.embeddings_generated_at' THEN (changes ->> 'persona.embeddings_generated_at')::timestamptz ELSE s.embeddings_generated_at END,
		embeddings_model = CASE WHEN changes ? 'persona.embeddings_model' THEN changes ->> 'persona.embeddings_model' ELSE s.embeddings_model END,
		roasting_enabled = CASE WHEN changes ? 'roasting.enabled' THEN (changes ->> 'roasting.enabled')::boolean ELSE s.roasting_enabled END,
		roast_level = CASE WHEN changes ? 'roasting.roast_level' THEN (changes ->> 'roasting.roast_level')::numeric::smallint ELSE s.roast_level END,
		shield_level = CASE WHEN changes ? 'roasting.shield_level' THEN changes ->> 'roasting.shield_level' ELSE s.shield_level END
	WHERE s.user_id = p_user_id
	RETURNING s.version INTO newver;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user % has no state', p_user_id USING ERRCODE = 'PT404';
	END IF;
	RETURN jsonb_build_object('version', newver, 'applied', to_jsonb(applied));
END
$$;

-- A timestamp string check without an exception block (PostgreSQL 15 has
-- no pg_input_is_valid); only reached when a patch carries a timestamp.
CREATE FUNCTION twin.valid_tstz(s text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RETURN isfinite(s::timestamptz);
EXCEPTION WHEN others THEN
	RETURN false;
END
$$;

-- state_sync: the change log after a cursor, with the new cursor.  STABLE,
-- so both statements read one snapshot and the cursor matches the changes.
CREATE FUNCTION twin.state_sync(p_user_id uuid, since bigint DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	cur bigint;
	everything boolean;
BEGIN
	PERFORM twin.check_caller(p_user_id);
	IF since < 0 THEN
		RAISE EXCEPTION 'cursor must not be negative' USING ERRCODE = '22023';
	END IF;
	SELECT s.version INTO cur FROM twin.state s WHERE s.user_id = p_user_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'user % has no state', p_user_id USING ERRCODE = 'PT404';
	END IF;
	everything := coalesce(since, 0) = 0 OR since > cur;
	RETURN (
		SELECT jsonb_build_object(
			'changes', coalesce(jsonb_agg(jsonb_build_object('field', c.field, 'value', c.value,
															 'version', c.version,
															 'updated_at', c.updated_at)
										  ORDER BY c.version, c.field), '[]'::jsonb),
			'cursor', cur,
			'lastSyncedAt', now())
		FROM twin.changes c
		WHERE c.user_id = p_user_id AND (everything OR c.version > since));
END
$$;
