/* roastr_state 0.3.0 -> 0.4.0: notifications name every shown field whose
 * value a sync from the version before reports, derived values included. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION roastr_state UPDATE TO '0.4.0'" to load this file. \quit

-- The notification contract changes (README, "Notifications"): a payload's
-- "fields" now names every shown path whose value state_sync(user,
-- version - 1) reports at that version -- usage.remaining_roasts after a
-- consumption, usage.monthly_roasts_limit and .remaining_roasts after a plan
-- limit change, subscription.trial_days_remaining and the usage values after
-- a subscription change, persona.tolerance after a plan change -- with their
-- values in "data" unless withheld; "type" lists the kinds of those paths.
-- One table in the library decides both (src/shown.c), so the schema is
-- unchanged; what the functions promise is said here.
COMMENT ON FUNCTION roastr_state.state_trigger() IS
	'version check, version bump, change log and notification for roastr_state.state; a notification names every shown field whose value state_sync(user, version - 1) reports';
COMMENT ON FUNCTION roastr_state.state_sync(uuid, bigint) IS
	'shown fields whose value may have changed after a cursor (version): each carries the newest version of what it is computed from; with the new cursor';
