-- bench/setup.sql — the benchmark's data, loaded by scripts/bench.sh:
--   psql -v users=10000 -v rounds=25 -f bench/setup.sql
--
-- users + 1 users (the last one is kept for the notification-latency run,
-- which no pgbench script touches) in roastr_state, in the PL/pgSQL twin
-- and in bench.bare (same shape as roastr_state.state, plain primary key,
-- no trigger).  Every user of roastr_state and of the twin gets `rounds`
-- one-field patches spread over five fields; the last five rounds change
-- five different fields, so syncing from version (1 + rounds - 5) returns
-- exactly five fields.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
-- one bulk transaction announces 10k users: send NOTIFYs directly
SET roastr_state.notify_mode = direct;

CREATE EXTENSION IF NOT EXISTS roastr_state;
\ir plpgsql_twin.sql

CREATE SCHEMA bench;

-- User number -> uuid: 1 -> 00000000-0000-4000-8000-000000000001.  An
-- inlinable SQL function, the same cost in every scenario.
CREATE FUNCTION bench.uid(i int) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid $$;

SELECT count(roastr_state.ensure_user(bench.uid(i), 'user' || i || '@example.com', 'User ' || i))
	AS roastr_users
FROM generate_series(1, :users + 1) i;

INSERT INTO twin.state (user_id, email, name)
SELECT bench.uid(i), 'user' || i || '@example.com', 'User ' || i
FROM generate_series(1, :users + 1) i;

-- Round r (1-based) changes field (r - 1) % 5 of every user, always to a
-- value different from the stored one: one transaction per round and
-- system, each followed by a VACUUM as autovacuum would do (without it the
-- 25 bulk rounds leave the tables 10x bloated).
CREATE FUNCTION bench.round_patch(r int) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE (r - 1) % 5
		WHEN 0 THEN format('jsonb_build_object(%L, %s)', 'roasting.enabled',
						   CASE WHEN ((r - 1) / 5) % 2 = 1 THEN 'true' ELSE 'false' END)
		WHEN 1 THEN format('jsonb_build_object(%L, %s)', 'roasting.roast_level', ((r - 1) / 5 + 3) % 5 + 1)
		WHEN 2 THEN format('jsonb_build_object(%L, %L)', 'roasting.shield_level',
						   (ARRAY['estricto', 'tolerante', 'balanceado'])[((r - 1) / 5) % 3 + 1])
		WHEN 3 THEN format('jsonb_build_object(%L, %L || i)', 'auth.name', 'Name ' || (r - 1) / 5 || ' of ')
		ELSE format('jsonb_build_object(%L, %L)', 'persona.embeddings_model', 'model-' || (r - 1) / 5)
	END
$$;

SELECT stmt
FROM generate_series(1, :rounds) r,
	 LATERAL (VALUES
		(1, format('SELECT count(roastr_state.patch(bench.uid(i), %s)) FROM generate_series(1, %s) i',
				   bench.round_patch(r), :users)),
		(2, format('SELECT count(twin.patch(bench.uid(i), %s)) FROM generate_series(1, %s) i',
				   bench.round_patch(r), :users)),
		(3, 'VACUUM roastr_state.state, twin.state, twin.changes')) AS s(k, stmt)
ORDER BY r, k \gexec

-- the bare table: same columns, constraints, defaults and primary key as
-- roastr_state.state, same rows; no trigger, no row security
CREATE TABLE bench.bare (LIKE roastr_state.state INCLUDING ALL);
INSERT INTO bench.bare SELECT * FROM roastr_state.state;

-- every pgbench user must now be at version 1 + rounds in both systems
SELECT set_config('bench.users', :'users', false), set_config('bench.rounds', :'rounds', false) \g /dev/null
DO $$
DECLARE
	users int := current_setting('bench.users');
	v bigint := 1 + current_setting('bench.rounds')::int;
	bad bigint;
BEGIN
	SELECT (SELECT count(*) FROM roastr_state.state s
			WHERE s.version <> v AND s.user_id <> bench.uid(users + 1))
		 + (SELECT count(*) FROM twin.state s
			WHERE s.version <> v AND s.user_id <> bench.uid(users + 1))
	INTO bad;
	IF bad <> 0 THEN
		RAISE EXCEPTION 'setup: % users are not at version %', bad, v;
	END IF;
END
$$;

VACUUM ANALYZE;
CHECKPOINT;
