/* roastr_state 0.2.0 -> 0.3.0 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION roastr_state UPDATE TO '0.3.0'" to load this file. \quit

-- mark_embeddings: a NULL model or time is bad input (22023), as for every
-- other function; 0.2.0 wrote it as null into the state.  Same signature,
-- owner, grants and search_path.
CREATE OR REPLACE FUNCTION roastr_state.mark_embeddings(user_id uuid, model text,
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
