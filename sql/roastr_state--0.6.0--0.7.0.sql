/* roastr_state 0.6.0 -> 0.7.0: a row layout that keeps the WAL of a write
 * near a bare UPDATE's.  PostgreSQL logs an updated row as the new tuple
 * minus the bytes it shares with the old one at its start and at its end;
 * with the version and the field's value at the start of the row and its
 * change-log entries in two wide arrays in the middle, every one-field
 * write re-logged a whole array.  From 0.7.0 the row ends with the version,
 * updated_at, the hot values (consumption and the roasting settings) and
 * one bigint[] field_log of (version, time) pairs, hottest fields first
 * (src/fieldlog.c has the slots): a hot write changes a few dozen adjacent
 * bytes.  The table is rewritten twice (once to fill the new columns, once
 * to drop the old ones' bytes); nothing else changes, and no version,
 * cursor or time moves. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION roastr_state UPDATE TO '0.7.0'" to load this file. \quit

-- The change log as pairs, in slot order; the slot -> field id map is
-- rs_log_field in src/fieldlog.c.  Times are PostgreSQL's microseconds
-- since 2000-01-01 UTC.  A field an old row has no entry for reads (0, 0),
-- as it did from a short array.  Entries of fields a later library added
-- (ids 24 on, written into a 0.6.0 table by a newer library) are kept, at
-- slot = id, the rule for every field after the first 24.  Dropped again
-- below.
CREATE FUNCTION roastr_state._field_log_0_7(fv bigint[], ft timestamptz[])
	RETURNS bigint[]
	LANGUAGE sql IMMUTABLE STRICT
	SET search_path = pg_catalog, pg_temp
	AS $fn$
	SELECT pg_catalog.array_agg(x ORDER BY s, k)
	FROM pg_catalog.unnest(ARRAY[17, 14, 15, 16, 18, 20, 1, 9, 10, 11, 12, 13,
	                             3, 2, 5, 6, 4, 23, 7, 8, 21, 19, 22, 0]
	                       OPERATOR(pg_catalog.||)
	                       ARRAY(SELECT pg_catalog.generate_series(24,
	                                 pg_catalog.cardinality(fv) OPERATOR(pg_catalog.-) 1)))
	         WITH ORDINALITY AS m(f, s),
	     LATERAL (VALUES
	         (1, COALESCE(fv[m.f OPERATOR(pg_catalog.+) 1], 0)),
	         (2, COALESCE((EXTRACT(epoch FROM ft[m.f OPERATOR(pg_catalog.+) 1])
	                       OPERATOR(pg_catalog.*) 1000000)::bigint
	                      OPERATOR(pg_catalog.-) 946684800000000, 0))) AS p(k, x)
$fn$;

-- the columns that move to the end of the row: their CHECK constraints
-- are dropped with their old names, the columns renamed out of the way
ALTER TABLE roastr_state.state
	DROP CONSTRAINT state_version_check,
	DROP CONSTRAINT state_roast_level_check,
	DROP CONSTRAINT state_monthly_roasts_used_check,
	DROP CONSTRAINT state_shield_level_check;
ALTER TABLE roastr_state.state RENAME COLUMN version TO _old_version;
ALTER TABLE roastr_state.state RENAME COLUMN updated_at TO _old_updated_at;
ALTER TABLE roastr_state.state RENAME COLUMN monthly_roasts_used TO _old_monthly_roasts_used;
ALTER TABLE roastr_state.state RENAME COLUMN roasting_enabled TO _old_roasting_enabled;
ALTER TABLE roastr_state.state RENAME COLUMN roast_level TO _old_roast_level;
ALTER TABLE roastr_state.state RENAME COLUMN shield_level TO _old_shield_level;
ALTER TABLE roastr_state.state RENAME COLUMN usage_period_start TO _old_usage_period_start;

-- the new columns, as in the full script, then filled from the old ones
-- by a rewrite (no trigger fires, no version moves)
ALTER TABLE roastr_state.state
	ADD COLUMN shield_level text NOT NULL DEFAULT 'balanceado'
		CHECK (shield_level OPERATOR(pg_catalog.=) ANY (ARRAY['tolerante', 'balanceado', 'estricto'])),
	ADD COLUMN usage_period_start timestamptz,
	ADD COLUMN version bigint NOT NULL DEFAULT 1 CHECK (version OPERATOR(pg_catalog.>) 0),
	ADD COLUMN updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	ADD COLUMN monthly_roasts_used integer NOT NULL DEFAULT 0
		CHECK (monthly_roasts_used OPERATOR(pg_catalog.>=) 0),
	ADD COLUMN roasting_enabled boolean NOT NULL DEFAULT true,
	ADD COLUMN roast_level smallint NOT NULL DEFAULT 3
		CHECK (roast_level OPERATOR(pg_catalog.>=) 1 AND roast_level OPERATOR(pg_catalog.<=) 5),
	ADD COLUMN field_log bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE roastr_state.state
	ALTER COLUMN version TYPE bigint USING _old_version,
	ALTER COLUMN updated_at TYPE timestamptz USING _old_updated_at,
	ALTER COLUMN monthly_roasts_used TYPE integer USING _old_monthly_roasts_used,
	ALTER COLUMN roasting_enabled TYPE boolean USING _old_roasting_enabled,
	ALTER COLUMN roast_level TYPE smallint USING _old_roast_level,
	ALTER COLUMN shield_level TYPE text USING _old_shield_level,
	ALTER COLUMN usage_period_start TYPE timestamptz USING _old_usage_period_start,
	ALTER COLUMN field_log TYPE bigint[] USING roastr_state._field_log_0_7(field_versions, field_times);
ALTER TABLE roastr_state.state
	DROP COLUMN _old_version,
	DROP COLUMN _old_updated_at,
	DROP COLUMN _old_monthly_roasts_used,
	DROP COLUMN _old_roasting_enabled,
	DROP COLUMN _old_roast_level,
	DROP COLUMN _old_shield_level,
	DROP COLUMN _old_usage_period_start,
	DROP COLUMN field_versions,
	DROP COLUMN field_times;
-- a second rewrite, so that no row keeps the dropped columns' bytes
ALTER TABLE roastr_state.state
	ALTER COLUMN field_log TYPE bigint[] USING field_log OPERATOR(pg_catalog.||) '{}'::bigint[];
DROP FUNCTION roastr_state._field_log_0_7(bigint[], timestamptz[]);
