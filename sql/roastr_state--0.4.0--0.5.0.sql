/* roastr_state 0.4.0 -> 0.5.0: cursors that survive failover and restore.
 * state_full and state_sync carry the history their version belongs to;
 * state_sync(user, cursor, history) gives a cursor of another history
 * everything, flagged "reset", and a standby that has not replayed a
 * cursor yet answers PT503.  stats() tells an operator what to watch. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION roastr_state UPDATE TO '0.5.0'" to load this file. \quit

CREATE FUNCTION roastr_state.state_sync(user_id uuid, since bigint, history text)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_state_sync_history'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.state_sync(uuid, bigint, text) IS
	'state_sync from a cursor and the history it belongs to: a cursor of another history (a failover, a restore) gets everything flagged reset; a standby behind it answers PT503';

CREATE FUNCTION roastr_state.stats()
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'roastr_state_stats'
	LANGUAGE C VOLATILE PARALLEL RESTRICTED
	SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION roastr_state.stats() IS
	'what an operator watches: conflicts, quota refusals and refused webhooks since start, webhook outcomes, retention, pending time-driven moves, the notifier and the NOTIFY queue (service only)';

REVOKE ALL ON FUNCTION roastr_state.state_sync(uuid, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION roastr_state.stats() FROM PUBLIC;
DO $grants$
BEGIN
	IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'authenticated') THEN
		GRANT EXECUTE ON FUNCTION roastr_state.state_sync(uuid, bigint, text) TO authenticated;
	END IF;
	IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'service_role') THEN
		GRANT EXECUTE ON FUNCTION roastr_state.state_sync(uuid, bigint, text) TO service_role;
		GRANT EXECUTE ON FUNCTION roastr_state.stats() TO service_role;
	END IF;
END
$grants$;
