-- bench/scale_setup.sql — a scale database of the benchmark (issue 17),
-- loaded set-based by scripts/bench_scale.sh (which reads the "mark STEP
-- EPOCH" lines it prints to time the steps):
--   psql -d DB -v users=1000000 -v members=10000 -v batch=100000 -f bench/scale_setup.sql
--
-- users + 1 users: user users + 1 is the template, made like every user of
-- bench/setup.sql (ensure_user, then 25 one-field patches over five fields,
-- so state_sync(u, 21) returns exactly five fields); users 1..users are
-- copies of its row, inserted `batch` at a time by INSERT ... SELECT through
-- the state table's BEFORE INSERT trigger.  A row that brings its change log
-- is what pg_dump's COPY brings, and the trigger checks the log against the
-- row's version instead of starting it at version 1 (README, "Dump and
-- restore"): every user ends at version 26 with the template's change log,
-- and no INSERT notifies.  The column list is read from the catalog, so the
-- script does not depend on the table's layout.  Every user is on the free
-- plan with roasting.enabled = true (the pgbench write scripts start from
-- that).
--
-- Then one organization whose members are every (users / members)-th user:
-- its owner is user `stride`, and add_member adds the others one call each
-- (each becomes the member's current organization: a version and a
-- notification).  Its id is kept in bench.scale_org.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
-- the template's patches and the organization's members are notified
-- directly: a bulk statement would overflow the notifier's ring anyway
SET roastr_state.notify_mode = direct;

CREATE EXTENSION IF NOT EXISTS roastr_state;
CREATE SCHEMA bench;

-- the same mapping as bench/setup.sql: 1 -> 00000000-0000-4000-8000-000000000001
CREATE FUNCTION bench.uid(i int) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(i), 12, '0'))::uuid $$;

-- the template: the 25 rounds of bench/setup.sql, for one user
SELECT roastr_state.ensure_user(bench.uid(:users + 1), 'template@example.com', 'Template') \g /dev/null
CREATE FUNCTION bench.round_patch(r int, i int) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE (r - 1) % 5
		WHEN 0 THEN jsonb_build_object('roasting.enabled', ((r - 1) / 5) % 2 = 1)
		WHEN 1 THEN jsonb_build_object('roasting.roast_level', ((r - 1) / 5 + 3) % 5 + 1)
		WHEN 2 THEN jsonb_build_object('roasting.shield_level',
									   (ARRAY['estricto', 'tolerante', 'balanceado'])[((r - 1) / 5) % 3 + 1])
		WHEN 3 THEN jsonb_build_object('auth.name', 'Name ' || (r - 1) / 5 || ' of ' || i)
		ELSE jsonb_build_object('persona.embeddings_model', 'model-' || (r - 1) / 5)
	END
$$;
-- one statement per patch: a statement bumps a user's version once
SELECT format('SELECT roastr_state.patch(bench.uid(%s), %L::jsonb) IS NOT NULL AS patched',
			  :users + 1, bench.round_patch(r, :users + 1))
FROM generate_series(1, 25) r
ORDER BY r \gexec
SELECT 'mark template ' || extract(epoch FROM clock_timestamp());

-- the copies, `batch` users per INSERT (one transaction each)
WITH cols AS (
	SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS names,
		   string_agg(CASE attname
						  WHEN 'user_id' THEN 'bench.uid(i)'
						  WHEN 'email' THEN $$'user' || i || '@example.com'$$
						  WHEN 'name' THEN $$'User ' || i$$
						  WHEN 'roasting_enabled' THEN 'true'
						  ELSE 't.' || quote_ident(attname)
					  END, ', ' ORDER BY attnum) AS exprs
	FROM pg_attribute
	WHERE attrelid = 'roastr_state.state'::regclass AND attnum > 0 AND NOT attisdropped
)
SELECT format('INSERT INTO roastr_state.state (%s) SELECT %s FROM roastr_state.state t, generate_series(%s, %s) i WHERE t.user_id = bench.uid(%s)',
			  names, exprs, b * :batch + 1, least((b + 1) * :batch, :users), :users + 1)
FROM cols, generate_series(0, (:users - 1) / :batch) b
ORDER BY b \gexec
SELECT 'mark copies ' || extract(epoch FROM clock_timestamp());

-- the organization
CREATE TABLE bench.scale_org (id uuid NOT NULL, members int NOT NULL, stride int NOT NULL);
SELECT :users / :members AS stride \gset
INSERT INTO bench.scale_org
SELECT roastr_state.create_organization(bench.uid(:stride), 'Bench organization', 'bench-org'), :members, :stride;
DO $$
DECLARE
	o bench.scale_org;
BEGIN
	SELECT * INTO o FROM bench.scale_org;
	PERFORM roastr_state.add_member(o.id, bench.uid(o.stride * j), 'member')
	FROM generate_series(2, o.members) j;
END
$$;

-- every user must be at version 26 (the members at 27: add_member made the
-- organization their current one)
DO $$
DECLARE
	bad bigint;
BEGIN
	SELECT count(*) INTO bad FROM roastr_state.state WHERE version NOT IN (26, 27);
	IF bad <> 0 THEN
		RAISE EXCEPTION 'scale setup: % users are not at version 26 or 27', bad;
	END IF;
END
$$;
SELECT 'mark organization ' || extract(epoch FROM clock_timestamp());

-- PostgreSQL's own floor at this size: the same rows in a table with a
-- plain primary key and no trigger (bench/pgbench/read_bare.sql,
-- write_bare_random.sql), as bench/setup.sql makes bench.bare
CREATE TABLE bench.bare (LIKE roastr_state.state INCLUDING ALL);
INSERT INTO bench.bare SELECT * FROM roastr_state.state;
SELECT 'mark bare ' || extract(epoch FROM clock_timestamp());

VACUUM ANALYZE;
CHECKPOINT;
