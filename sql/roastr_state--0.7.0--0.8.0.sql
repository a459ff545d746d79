/* roastr_state 0.7.0 -> 0.8.0: no operation proportional to the number of
 * users.  An operator's change of a shared row -- a plan's monthly limit,
 * an organization's name, a membership's role, a deleted organization --
 * writes that row only, with a new change stamp, and sends one broadcast
 * on roastr_state_broadcast.  Each state row records the stamps its change
 * log shows; the user's next call settles a pending change in the user's
 * own row, as a version (src/shared.c).  Nothing here writes a state row:
 * the new columns come with constant defaults (no table rewrite), and
 * every row recorded stamp 0, the stamp every shared row starts at. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION roastr_state UPDATE TO '0.8.0'" to load this file. \quit

-- ===========================================================================
-- Change stamps
-- ===========================================================================
CREATE SEQUENCE roastr_state.shared_stamp AS bigint;
COMMENT ON SEQUENCE roastr_state.shared_stamp IS
	'change stamps of shared rows (plans, organizations, memberships)';

ALTER TABLE roastr_state.plans
	ADD COLUMN changed_stamp bigint NOT NULL DEFAULT 0;
ALTER TABLE roastr_state.organizations
	ADD COLUMN changed_stamp bigint NOT NULL DEFAULT 0,
	ADD COLUMN deleted_at timestamptz;
ALTER TABLE roastr_state.organization_members
	ADD COLUMN changed_stamp bigint NOT NULL DEFAULT 0;
-- a membership made from now on gets a stamp of its own
ALTER TABLE roastr_state.organization_members
	ALTER COLUMN changed_stamp SET DEFAULT pg_catalog.nextval('roastr_state.shared_stamp');

-- what each state's change log shows of them (fields 24 and 25, hidden)
ALTER TABLE roastr_state.state
	ADD COLUMN limits_seen bigint NOT NULL DEFAULT 0,
	ADD COLUMN organization_seen bigint NOT NULL DEFAULT 0;

-- ===========================================================================
-- Plans: a changed limit stamps the plan's row, nothing else
-- ===========================================================================
DROP TRIGGER roastr_state_plans_changed ON roastr_state.plans;
DROP FUNCTION roastr_state.plans_changed();
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
REVOKE ALL ON FUNCTION roastr_state.plans_changed() FROM PUBLIC;

-- a restore brings the stamps its state rows recorded
CREATE OR REPLACE FUNCTION roastr_state.plans_upsert()
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

-- ===========================================================================
-- Organizations: no state row hangs on them any more
-- ===========================================================================
-- A deleted organization is cleared from each member's state by that
-- member's next call, not by the foreign key (which wrote every member's
-- row in the deleting transaction).
ALTER TABLE roastr_state.state DROP CONSTRAINT state_organization_fkey;

-- a deleted organization's slug is free again
ALTER TABLE roastr_state.organizations DROP CONSTRAINT organizations_slug_key;
CREATE UNIQUE INDEX organizations_slug_live ON roastr_state.organizations (slug)
	WHERE deleted_at IS NULL;

-- Deleting a user who owns an organization: alone, the organization goes
-- too; with other members, refused (ownership must be transferred first).
-- A deleted organization goes with its last membership.
CREATE OR REPLACE FUNCTION roastr_state.organization_member_deleted()
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

CREATE FUNCTION roastr_state.delete_organization(org uuid)
	RETURNS void
	AS 'MODULE_PATHNAME', 'roastr_state_delete_organization'
	LANGUAGE C VOLATILE PARALLEL UNSAFE
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.delete_organization(uuid) IS
	'owner: delete the organization; each member whose current organization it was settles it with their next call';
REVOKE ALL ON FUNCTION roastr_state.delete_organization(uuid) FROM PUBLIC;

COMMENT ON FUNCTION roastr_state.stats() IS
	'what an operator watches: conflicts, quota refusals and refused webhooks since start, webhook outcomes, retention, pending time-driven and shared moves, the notifier and the NOTIFY queue (service only)';

SELECT pg_catalog.pg_extension_config_dump('roastr_state.shared_stamp', '');

DO $grants$
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'authenticated') THEN
		GRANT EXECUTE ON FUNCTION roastr_state.delete_organization(uuid) TO authenticated;
	END IF;
	IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'service_role') THEN
		GRANT EXECUTE ON FUNCTION roastr_state.delete_organization(uuid) TO service_role;
	END IF;
END
$grants$;

-- ===========================================================================
-- Reads write down pending moves, and run statements of their own: in a
-- parallel query they failed ("cannot start commands during a parallel
-- operation").  Never in a parallel plan.
-- ===========================================================================
ALTER FUNCTION roastr_state.state_full(uuid) PARALLEL UNSAFE;
ALTER FUNCTION roastr_state.state_sync(uuid, bigint) PARALLEL UNSAFE;
ALTER FUNCTION roastr_state.state_sync(uuid, timestamptz) PARALLEL UNSAFE;
ALTER FUNCTION roastr_state.state_sync(uuid, bigint, text) PARALLEL UNSAFE;
ALTER FUNCTION roastr_state.stats() PARALLEL UNSAFE;
