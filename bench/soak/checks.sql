-- bench/soak/checks.sql — what scripts/soak.sh verifies after the run,
-- loaded with bench/soak/setup.sql:
--
--   soak.take_baseline()  just before pgbench: every user's version, count,
--                         flat state and field versions
--   soak.collect()        after the run: every user's final state_full,
--                         state_sync(0) and the devices' final syncs
--   soak.checks()         (section, name, value, ok) rows; every ok must be true
--   soak.figures()        (name, value) rows: what the run did
--
-- The script fills soak.pgbench_scripts and soak.pgbench_log (every
-- transaction pgbench acknowledged), soak.queue_samples (pg_notification_queue_usage() once a second)
-- and soak.notified (the newest version the LISTENing client received per
-- user) before calling soak.checks(); scripts/soak_prod.sh also
-- soak.in_doubt (requests whose COMMIT got no answer: committed or not).
SET client_min_messages = warning;

CREATE TABLE soak.baseline (
	u int PRIMARY KEY,
	version bigint NOT NULL,
	used int NOT NULL,
	flat jsonb NOT NULL,		-- soak.flat(state_full)
	fv jsonb NOT NULL			-- field -> version of its last change (state_sync(0))
);
CREATE TABLE soak.final (
	u int PRIMARY KEY,
	version bigint NOT NULL,	-- roastr_state.state.version
	full_state jsonb NOT NULL,	-- state_full
	sync0 jsonb NOT NULL,		-- state_sync(0)
	dev_sync jsonb,				-- state_sync(device cursor), for devices that synced
	flat jsonb,
	fv jsonb,
	used int,
	lim int
);
-- pgbench's scripts (number as in its per-transaction log, name, wrapper
-- calls per transaction) and that log: every transaction it acknowledged
CREATE TABLE soak.pgbench_scripts (script int PRIMARY KEY, src text NOT NULL, cmds int NOT NULL);
CREATE TABLE soak.pgbench_log (client int NOT NULL, tx int NOT NULL, script int NOT NULL);
CREATE TABLE soak.queue_samples (at double precision NOT NULL, usage double precision NOT NULL);
CREATE TABLE soak.notified (u uuid PRIMARY KEY, version bigint NOT NULL, payloads bigint NOT NULL);
-- what each device that followed the gateway held at the end
-- (bench/soak/devices.js: u, cursor, st, updates, syncs, anomalies, connects)
CREATE TABLE soak.gateway_devices (j jsonb NOT NULL);
-- transactions whose outcome the client could not know (the connection was
-- lost while their COMMIT was in flight): their calls may or may not be in
-- the ledger.  Empty for scripts/soak.sh (pgbench stops cleanly).
CREATE TABLE soak.in_doubt (client int NOT NULL, tx int NOT NULL, PRIMARY KEY (client, tx));

-- What a device holds after applying a state_sync answer to the state it
-- had: the answer's changes over it, or, when the answer is a reset (its
-- cursor was of another history), the changes alone.
CREATE FUNCTION soak.after_sync(st jsonb, sync jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN coalesce((sync->>'reset')::boolean, false) THEN '{}'::jsonb ELSE st END
		   || soak.changes(sync)
$$;

-- state_sync from a device's cursor, with its history when it has one.
CREATE FUNCTION soak.sync_from(n int, cursor bigint, history text) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT CASE WHEN history IS NULL THEN roastr_state.state_sync(soak.uid(n), cursor)
				ELSE roastr_state.state_sync(soak.uid(n), cursor, history) END
$$;

-- field -> version of a state_sync answer's changes
CREATE FUNCTION soak.field_versions(sync jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(jsonb_object_agg(c->>'field', (c->>'version')::bigint), '{}')
	  FROM jsonb_array_elements(sync->'changes') c
$$;

-- Whether a patch with these changes writes field f: the fields it names,
-- and persona.embeddings_* when it writes persona text (which clears them
-- in the same version).
CREATE FUNCTION soak.patches_field(changes jsonb, f text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT changes ? f
		OR (f IN ('persona.embeddings_generated_at', 'persona.embeddings_model')
			AND changes ?| ARRAY['persona.identity', 'persona.intolerance', 'persona.tolerance'])
$$;

CREATE FUNCTION soak.take_baseline() RETURNS bigint
LANGUAGE sql AS $$
	TRUNCATE soak.baseline;
	INSERT INTO soak.baseline
	SELECT d.u, s.version, s.monthly_roasts_used,
		   soak.flat(roastr_state.state_full(soak.uid(d.u))),
		   soak.field_versions(roastr_state.state_sync(soak.uid(d.u), 0))
	  FROM soak.devices d
	  JOIN roastr_state.state s ON s.user_id = soak.uid(d.u);
	SELECT count(*) FROM soak.baseline;
$$;

-- Functions of the harness that call state_full or state_sync over many
-- rows keep their plans serial (max_parallel_workers_per_gather = 0): those
-- functions are PARALLEL RESTRICTED but run SPI commands, and in a parallel
-- plan fail with "cannot start commands during a parallel operation" (the
-- production soak's old-primary check met it over 10k users).
CREATE FUNCTION soak.collect() RETURNS bigint
LANGUAGE sql SET max_parallel_workers_per_gather = 0 AS $$
	TRUNCATE soak.final;
	INSERT INTO soak.final (u, version, full_state, sync0, dev_sync)
	SELECT d.u, s.version, roastr_state.state_full(soak.uid(d.u)),
		   roastr_state.state_sync(soak.uid(d.u), 0),
		   CASE WHEN d.syncs > 0 THEN soak.sync_from(d.u, d.cursor, d.history) END
	  FROM soak.devices d
	  JOIN roastr_state.state s ON s.user_id = soak.uid(d.u);
	UPDATE soak.final
	   SET flat = soak.flat(full_state), fv = soak.field_versions(sync0),
		   used = (full_state->'usage'->>'monthly_roasts_used')::int,
		   lim = (full_state->'usage'->>'monthly_roasts_limit')::int;
	ANALYZE soak.final, soak.ledger, soak.baseline, soak.pgbench_log, soak.in_doubt;
	SELECT count(*) FROM soak.final;
$$;

-- The consumptions that happened: allowed calls, a keyed one once (a replay
-- returns the first answer), at the version its first call made.
CREATE VIEW soak.consumptions AS
SELECT DISTINCT ON (u, coalesce(idem_key, 'row ' || id)) u, id, version, n, used, lim, idem_key
  FROM soak.ledger
 WHERE op = 'consume' AND allowed
 ORDER BY u, coalesce(idem_key, 'row ' || id), version, id;

-- Every acknowledged write of a patchable field, grouped by (user, field,
-- version): the values written at that version (more than one = two writes
-- claimed the same version), the value before it (the previous version's,
-- or the baseline's), whether it changed the field, and its rank from the
-- newest.
CREATE VIEW soak.field_writes AS
WITH w AS (
	SELECT l.u, f.key AS field, f.value::text AS value, l.version
	  FROM soak.ledger l, jsonb_each(l.changes) f
	 WHERE l.op = 'patch'
), g AS (
	SELECT u, field, version, min(value) AS value, count(DISTINCT value) AS nvalues
	  FROM w GROUP BY u, field, version
), h AS (
	SELECT g.*, lag(value) OVER (PARTITION BY u, field ORDER BY version) AS prev,
		   row_number() OVER (PARTITION BY u, field ORDER BY version DESC) AS from_newest
	  FROM g
), c AS (
	SELECT h.u, h.field, h.version, h.value, h.nvalues, h.from_newest,
		   coalesce(h.prev, (b.flat->h.field)::text) AS before,
		   h.value IS DISTINCT FROM coalesce(h.prev, (b.flat->h.field)::text) AS changed
	  FROM h JOIN soak.baseline b USING (u)
)
-- prev_change: the newest earlier version that changed the field (one
-- ordered pass per (user, field), so the base-version check is linear)
SELECT c.*, max(version) FILTER (WHERE changed)
		   OVER (PARTITION BY u, field ORDER BY version
				 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_change
  FROM c;

-- Every check: its section, what it counts, the count, whether it passed,
-- and how long it took (ms).
CREATE FUNCTION soak.checks()
RETURNS TABLE (section text, name text, value text, ok boolean, ms numeric)
LANGUAGE plpgsql SET client_min_messages = warning SET max_parallel_workers_per_gather = 0 AS $$
DECLARE
	c soak.config;
	a bigint;
	b bigint;
	x bigint;
	t text;
	t0 timestamptz := clock_timestamp();
BEGIN
	SELECT * INTO c FROM soak.config;
	DROP TABLE IF EXISTS fw;
	CREATE TEMP TABLE fw ON COMMIT DROP AS SELECT * FROM soak.field_writes;
	ANALYZE fw;
	section := 'prepare'; name := 'field writes of the ledger (a temporary table)';
	SELECT count(*) INTO x FROM fw; value := x; ok := true;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	-- ledger -----------------------------------------------------------------
	-- every transaction pgbench acknowledged (its log) left exactly its calls
	-- in the ledger, made by that script; and the ledger holds no other call
	-- but those of each client's last transaction, cut off by the end of the
	-- run, and those of transactions in doubt (soak.in_doubt)
	SELECT count(*), count(*) FILTER (WHERE coalesce(l.n, 0) <> s.cmds OR l.srcs > 1 OR l.src <> s.src),
		   sum(s.cmds)
	  INTO a, x, b
	  FROM soak.pgbench_log g
	  JOIN soak.pgbench_scripts s USING (script)
	  LEFT JOIN (SELECT client, tx, count(*) AS n, count(DISTINCT src) AS srcs, min(src) AS src
				   FROM soak.ledger WHERE src <> 'setup' GROUP BY client, tx) l USING (client, tx);
	section := 'ledger'; name := 'acknowledged transactions whose calls are not all in the ledger';
	value := format('%s (of %s transactions, %s calls)', x, a, b); ok := x = 0 AND a > 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) FILTER (WHERE (l.tx <> m.last + 1 OR m.last IS NULL) AND i.tx IS NULL),
		   count(*) FILTER (WHERE i.tx IS NULL), count(*) FILTER (WHERE i.tx IS NOT NULL)
	  INTO x, a, b
	  FROM soak.ledger l
	  LEFT JOIN (SELECT client, max(tx) AS last FROM soak.pgbench_log GROUP BY client) m USING (client)
	  LEFT JOIN soak.in_doubt i USING (client, tx)
	 WHERE l.src <> 'setup'
	   AND NOT EXISTS (SELECT FROM soak.pgbench_log g WHERE g.client = l.client AND g.tx = l.tx);
	name := 'ledger rows of no acknowledged transaction (beyond the last, cut off)';
	value := format('%s (%s cut off, %s of transactions in doubt)', x, a - x, b); ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	-- overdraft --------------------------------------------------------------
	section := 'overdraft';
	SELECT count(*) INTO x FROM soak.final WHERE lim IS NOT NULL AND used > lim;
	name := 'users above their plan limit'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x FROM soak.ledger WHERE op = 'consume' AND u = c.hot AND NOT allowed;
	SELECT format('used %s of %s, %s refusals', f.used, f.lim, x), x = 0 OR f.used = f.lim
	  INTO value, ok FROM soak.final f WHERE f.u = c.hot;
	name := 'hot user driven past its limit ends exactly at it'; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x
	  FROM soak.final f JOIN soak.baseline b USING (u)
	  LEFT JOIN (SELECT u, sum(n) AS n FROM soak.consumptions GROUP BY u) k USING (u)
	 WHERE f.used <> b.used + coalesce(k.n, 0);
	name := 'users whose count <> baseline + acknowledged consumptions'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x FROM soak.ledger WHERE op = 'consume' AND allowed AND lim IS NOT NULL AND used > lim;
	name := 'allowed consumptions that answered used > limit'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x FROM soak.ledger
	 WHERE op = 'consume' AND NOT allowed AND result IS NOT NULL
	   AND (result->>'remaining_roasts' IS NULL OR (result->>'remaining_roasts')::int >= n);
	name := 'refusals while the roasts fitted'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x
	  FROM (SELECT k.used, b.used + sum(k.n) OVER (PARTITION BY k.u ORDER BY k.version) AS expect
			  FROM soak.consumptions k JOIN soak.baseline b USING (u)) s
	 WHERE used <> expect;
	name := 'consumptions whose answered count breaks the chain (by version)'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	-- lost updates -----------------------------------------------------------
	section := 'lost updates';
	WITH changes AS (
		SELECT u, version, 'consume ' || coalesce(idem_key, id::text) AS op FROM soak.consumptions
		UNION ALL
		SELECT u, version, 'patch ' || id FROM soak.ledger
		 WHERE op = 'patch' AND mutation_id IS NULL AND (changes ? 'auth.name' OR changes ? 'persona.identity')
		UNION ALL
		SELECT u, version, 'mutation ' || mutation_id FROM soak.ledger WHERE op = 'patch' AND mutation_id IS NOT NULL
	)
	SELECT count(*) FILTER (WHERE n > 1), sum(n) INTO x, a
	  FROM (SELECT u, version, count(DISTINCT op) AS n FROM changes GROUP BY u, version) s;
	name := 'versions claimed by two acknowledged changes'; value := format('%s (of %s changes)', x, a);
	ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	-- every answered version is at most the final one; a change's is above
	-- the baseline (a patch that changes nothing answers the current version).
	-- Not a sync answered on a history the final one does not continue
	-- (scripts/soak_prod.sh: by the old primary after the failover's switch
	-- point): its versions were handed out again.
	SELECT count(*) INTO x
	  FROM soak.ledger l JOIN soak.baseline b USING (u) JOIN soak.final f USING (u)
	 WHERE l.src <> 'setup' AND l.version IS NOT NULL
	   AND NOT coalesce((l.result->>'other_history')::boolean, false)
	   AND (l.version > f.version
			OR (l.version <= b.version
				AND ((l.op = 'consume' AND l.allowed)
					 OR (l.op = 'patch' AND l.mutation_id IS NULL
						 AND (l.changes ? 'auth.name' OR l.changes ? 'persona.identity')))));
	name := 'acknowledged versions outside (baseline, final]'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x
	  FROM fw JOIN soak.final f USING (u)
	 WHERE fw.from_newest = 1 AND (fw.nvalues > 1 OR fw.value IS DISTINCT FROM (f.flat->fw.field)::text);
	SELECT count(*) INTO a FROM fw WHERE from_newest = 1;
	name := 'fields whose final value is not the last acknowledged write'; value := format('%s (of %s)', x, a);
	ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x
	  FROM (SELECT u, field, max(version) FILTER (WHERE changed) AS last_change FROM fw GROUP BY u, field) s
	  JOIN soak.final f USING (u) JOIN soak.baseline b USING (u)
	 WHERE (f.fv->>s.field)::bigint IS DISTINCT FROM coalesce(s.last_change, (b.fv->>s.field)::bigint);
	name := 'fields whose logged version is not their last acknowledged change'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x FROM soak.final
	 WHERE version <> (full_state->'_meta'->>'version')::bigint
		OR version <> (sync0->>'cursor')::bigint
		OR version <> (SELECT max(v::bigint) FROM jsonb_each_text(fv) AS e(k, v));
	name := 'users whose row, state_full, cursor and newest field version differ'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	-- A base-version patch that changed field F at version V must not follow
	-- another acknowledged change of F in (base, V).  Only patches whose
	-- version no other acknowledged operation reports (a patch that changes
	-- nothing reports the current version, which is someone else's).
	-- (set-based: the operations reporting each version are counted in one
	-- pass, and "another change of F in (base, V)" is "F's previous change
	-- is after base")
	WITH per_version AS (
		SELECT l.*, count(*) FILTER (WHERE op IN ('patch', 'consume', 'webhook'))
						OVER (PARTITION BY u, version) AS reporters
		  FROM soak.ledger l
		 WHERE l.version IS NOT NULL
	), solo AS (
		SELECT * FROM per_version
		 WHERE op = 'patch' AND base IS NOT NULL AND reporters = 1
	)
	SELECT count(*) FILTER (WHERE mine.prev_change > p.base), (SELECT count(*) FROM solo) INTO x, a
	  FROM solo p
	  JOIN fw mine ON mine.u = p.u AND mine.version = p.version AND mine.changed AND p.changes ? mine.field;
	name := 'base-version patches that overwrote a newer change'; value := format('%s (of %s checked)', x, a);
	ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x
	  FROM soak.ledger l
	 WHERE l.op = 'conflict'
	   AND (jsonb_array_length(l.detail->'conflicts') = 0
			OR (l.detail->>'client_version')::bigint IS DISTINCT FROM l.base
			OR EXISTS (SELECT FROM jsonb_array_elements(l.detail->'conflicts') e
						WHERE NOT soak.patches_field(l.changes, e->>'field')
						   OR (e->>'server_version')::bigint <= l.base));
	name := 'PT409 conflicts not explained by a newer change of a patched field'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x
	  FROM (SELECT mutation_id FROM soak.ledger WHERE mutation_id IS NOT NULL
			 -- the history is the answering server's: a retry after a
			 -- promotion names the new one for the same outcome
			 GROUP BY mutation_id HAVING count(DISTINCT result - 'history') > 1) s;
	name := 'mutation ids whose calls answered differently'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x
	  FROM (SELECT u, idem_key FROM soak.ledger WHERE op = 'consume' AND idem_key IS NOT NULL
			 GROUP BY u, idem_key HAVING count(DISTINCT result) > 1) s;
	name := 'idempotency keys whose calls answered differently'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	-- webhooks: each id processed by exactly one delivery (the first, which
	-- committed the event to soak.outbox); every redelivery a duplicate;
	-- roastr_state.webhook_events holds each id once with that outcome
	SELECT count(*) INTO x
	  FROM (SELECT webhook_id FROM soak.ledger WHERE op = 'webhook'
			 GROUP BY webhook_id
			HAVING count(*) FILTER (WHERE NOT (result->>'idempotent')::boolean) <> 1
				OR count(*) FILTER (WHERE (result->>'processed')::boolean) > 1) s;
	SELECT count(*) INTO a
	  FROM soak.ledger l
	  LEFT JOIN roastr_state.webhook_events e USING (webhook_id)
	 WHERE l.op = 'webhook' AND NOT (l.result->>'idempotent')::boolean
	   AND (e.webhook_id IS NULL OR e.processed <> (l.result->>'processed')::boolean
			OR e.outcome <> l.result->>'outcome');
	name := 'webhook ids not applied exactly once as recorded'; value := x + a; ok := x + a = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	-- the subscription of every webhook user is its newest applied event's
	SELECT count(*) INTO x
	  FROM (SELECT DISTINCT ON (o.u) o.u, o.status, o.product, o.modified_at
			  FROM soak.ledger l JOIN soak.outbox o USING (webhook_id)
			 WHERE l.op = 'webhook' AND l.result->>'outcome' = 'applied'
			 ORDER BY o.u, o.modified_at DESC) e
	  JOIN soak.final f USING (u)
	  LEFT JOIN roastr_state.polar_subscriptions ps ON ps.subscription_id = 'sub_' || e.u
	 WHERE ps.modified_at IS DISTINCT FROM e.modified_at
		OR f.flat->>'subscription.status' IS DISTINCT FROM e.status
		OR f.flat->>'subscription.plan' IS DISTINCT FROM
		   (SELECT plan FROM roastr_state.product_plans WHERE product_id = e.product);
	name := 'webhook users whose subscription is not the newest applied event'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	-- cursor gaps ------------------------------------------------------------
	section := 'cursor gaps';
	SELECT count(*) INTO x FROM soak.final WHERE soak.changes(sync0) <> flat;
	name := 'users whose state_sync(0) replay <> state_full'; value := format('%s (of %s)', x, (SELECT count(*) FROM soak.final));
	ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*), count(*) FILTER (WHERE soak.after_sync(d.st, f.dev_sync) <> f.flat) INTO a, x
	  FROM soak.devices d JOIN soak.final f USING (u) WHERE d.syncs > 0;
	name := 'devices whose synced state + a final sync <> state_full'; value := format('%s (of %s)', x, a);
	ok := x = 0 AND a > 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*), count(*) FILTER (WHERE soak.after_sync(p.st, soak.sync_from(p.u, p.cursor, p.history)) <> f.flat)
	  INTO a, x
	  FROM soak.sync_points p JOIN soak.final f USING (u);
	name := 'sampled mid-run cursors whose state + sync <> state_full'; value := format('%s (of %s)', x, a);
	ok := x = 0 AND a > 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x FROM soak.ledger WHERE op = 'sync' AND detail IS NOT NULL;
	name := 'sync answers with a change outside (cursor, new cursor] or twice'; value := x; ok := x = 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	-- notifications ----------------------------------------------------------
	section := 'notify';
	SELECT count(*), max(usage) INTO a, t FROM soak.queue_samples;
	name := 'max pg_notification_queue_usage() (1/s samples)';
	value := format('%s%% (%s samples)', round(coalesce(t::numeric, 0) * 100, 6), a);
	ok := a > 0 AND coalesce(t::double precision, 1) < 0.01; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT coalesce(sum(payloads), 0) INTO a FROM soak.notified;
	SELECT count(*) INTO x
	  FROM soak.final f JOIN soak.baseline b USING (u)
	  LEFT JOIN soak.notified n ON n.u = soak.uid(f.u)
	 WHERE f.version > b.version AND n.version IS DISTINCT FROM f.version;
	SELECT count(*) INTO b FROM soak.final f JOIN soak.baseline bl USING (u) WHERE f.version > bl.version;
	name := 'written users whose newest version was not announced on roastr_state';
	value := format('%s (of %s; %s payloads received)', x, b, a);
	ok := x = 0 AND a > 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	-- devices following the gateway -------------------------------------------
	section := 'gateway';
	SELECT count(*), count(*) FILTER (WHERE (g.j->>'cursor')::bigint <> f.version OR g.j->'st' <> f.flat)
	  INTO a, x
	  FROM soak.gateway_devices g JOIN soak.final f ON soak.uid(f.u) = (g.j->>'u')::uuid;
	name := 'devices (gateway) not at state_full and the final version'; value := format('%s (of %s)', x, a);
	ok := x = 0 AND a > 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;

	SELECT coalesce(sum((j->>'anomalies')::int), 0), coalesce(sum((j->>'updates')::bigint), 0) INTO x, b
	  FROM soak.gateway_devices;
	name := 'state_update not continuing the cursor or missing a named value';
	value := format('%s (of %s relayed)', x, b);
	ok := x = 0 AND b > 0; ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1);
	t0 := clock_timestamp(); RETURN NEXT;
END
$$;

CREATE FUNCTION soak.figures() RETURNS TABLE (name text, value text)
LANGUAGE sql AS $$
	WITH l AS (SELECT * FROM soak.ledger WHERE src <> 'setup'), c AS (SELECT * FROM soak.config)
	SELECT * FROM (VALUES
	('patches acknowledged', (SELECT count(*) FROM l WHERE op = 'patch')::text),
	('  of them with a base version', (SELECT count(*) FROM l WHERE op = 'patch' AND base IS NOT NULL)::text),
	('  with persona text', (SELECT count(*) FROM l WHERE op = 'patch' AND changes ? 'persona.identity')::text),
	('  mutation calls / distinct ids / replays',
	 (SELECT format('%s / %s / %s', count(*), count(DISTINCT mutation_id), count(*) - count(DISTINCT mutation_id))
		FROM l WHERE mutation_id IS NOT NULL)),
	('PT409 conflicts (caught)', (SELECT count(*) FROM l WHERE op = 'conflict')::text),
	('consume calls', (SELECT count(*) FROM l WHERE op = 'consume')::text),
	('  roasts consumed', (SELECT coalesce(sum(n), 0) FROM soak.consumptions k WHERE k.id IN (SELECT id FROM l))::text),
	('  quota refusals (allowed: false)', (SELECT count(*) FROM l WHERE op = 'consume' AND NOT allowed AND result IS NOT NULL)::text),
	('  PT402 errors (caught)', (SELECT count(*) FROM l WHERE op = 'consume' AND detail IS NOT NULL)::text),
	('  keyed calls / idempotent replays',
	 (SELECT format('%s / %s', count(*), count(*) - count(DISTINCT (u, idem_key))) FROM l WHERE idem_key IS NOT NULL)),
	('  hot user: used / limit / refusals',
	 (SELECT format('%s / %s / %s', f.used, f.lim,
					(SELECT count(*) FROM l WHERE op = 'consume' AND u = c.hot AND NOT allowed))
		FROM soak.final f, c WHERE f.u = c.hot)),
	('  warm users at their limit', (SELECT format('%s of %s', count(*) FILTER (WHERE f.used = f.lim), count(*))
		FROM soak.final f, c WHERE f.u <= c.warm)),
	('webhook deliveries', (SELECT count(*) FROM l WHERE op = 'webhook')::text),
	('  events (distinct ids)', (SELECT count(DISTINCT webhook_id) FROM l WHERE op = 'webhook')::text),
	('  applied / ignored (older) / rejected (lifecycle)',
	 (SELECT format('%s / %s / %s', count(*) FILTER (WHERE result->>'outcome' = 'applied'),
					count(*) FILTER (WHERE result->>'outcome' LIKE 'ignored: older%'),
					count(*) FILTER (WHERE result->>'outcome' LIKE 'rejected%'))
		FROM l WHERE op = 'webhook')),
	('  duplicates ignored (idempotent)', (SELECT count(*) FROM l WHERE op = 'webhook' AND (result->>'idempotent')::boolean)::text),
	('syncs', (SELECT count(*) FROM l WHERE op = 'sync')::text),
	('  changes delivered', (SELECT coalesce(sum(n), 0) FROM l WHERE op = 'sync')::text),
	('  devices synced / sampled points',
	 (SELECT format('%s / %s', (SELECT count(*) FROM soak.devices WHERE syncs > 0), (SELECT count(*) FROM soak.sync_points)))),
	('gateway devices: state_update relayed / state_sync / connects',
	 (SELECT format('%s / %s / %s', sum((j->>'updates')::bigint), sum((j->>'syncs')::bigint),
					sum((j->>'connects')::bigint)) FROM soak.gateway_devices)),
	('users written during the run',
	 (SELECT count(*) FROM soak.final f JOIN soak.baseline b USING (u) WHERE f.version > b.version)::text),
	('versions added (all users)',
	 (SELECT sum(f.version - b.version) FROM soak.final f JOIN soak.baseline b USING (u))::text),
	('newest version of user 1 / of the hot user',
	 (SELECT format('%s / %s', (SELECT version FROM soak.final WHERE u = 1), (SELECT version FROM soak.final f, c WHERE f.u = c.hot))))
	) AS v(name, value)
$$;

-- Examples behind failed checks (printed by scripts/soak.sh on FAIL): the
-- differing fields of devices and sampled points, unexplained conflicts,
-- fields whose final value is not their last write.
CREATE FUNCTION soak.diagnose() RETURNS TABLE (what text, detail text)
LANGUAGE sql SET max_parallel_workers_per_gather = 0 AS $$
	(SELECT 'gateway device', format('user %s cursor %s (final version %s): %s: device %s, state_full %s; notes %s',
							 g.j->>'u', g.j->>'cursor', f.version, e.key, e.value, f.flat->e.key, g.j->'notes')
	   FROM soak.gateway_devices g JOIN soak.final f ON soak.uid(f.u) = (g.j->>'u')::uuid,
			jsonb_each(g.j->'st') e
	  WHERE e.value IS DISTINCT FROM f.flat->e.key OR (g.j->>'anomalies')::int > 0
	  LIMIT 5)
	UNION ALL
	(SELECT 'differing fields', string_agg(format('%s in %s devices', key, n), ', ' ORDER BY key)
	   FROM (SELECT e.key, count(*) AS n
			   FROM soak.devices d JOIN soak.final f USING (u),
					jsonb_each(soak.after_sync(d.st, f.dev_sync)) e
			  WHERE d.syncs > 0 AND e.value IS DISTINCT FROM f.flat->e.key
			  GROUP BY e.key) s
	 HAVING count(*) > 0)
	UNION ALL
	(SELECT 'device', format('user %s cursor %s (final version %s): %s: device+sync %s, state_full %s (logged at version %s)',
							 d.u, d.cursor, f.version, e.key, e.value, f.flat->e.key, f.fv->e.key)
	   FROM soak.devices d JOIN soak.final f USING (u),
			jsonb_each(soak.after_sync(d.st, f.dev_sync)) e
	  WHERE d.syncs > 0 AND e.value IS DISTINCT FROM f.flat->e.key
	  ORDER BY d.u LIMIT 10)
	UNION ALL
	(SELECT 'point', format('user %s cursor %s (final version %s): %s: point+sync %s, state_full %s (logged at version %s)',
							p.u, p.cursor, f.version, e.key, e.value, f.flat->e.key, f.fv->e.key)
	   FROM soak.sync_points p JOIN soak.final f USING (u),
			jsonb_each(soak.after_sync(p.st, soak.sync_from(p.u, p.cursor, p.history))) e
	  WHERE e.value IS DISTINCT FROM f.flat->e.key
	  ORDER BY p.id LIMIT 10)
	UNION ALL
	(SELECT 'conflict', format('user %s base %s changes %s: %s', l.u, l.base, l.changes, l.detail)
	   FROM soak.ledger l
	  WHERE l.op = 'conflict'
		AND (jsonb_array_length(l.detail->'conflicts') = 0
			 OR (l.detail->>'client_version')::bigint IS DISTINCT FROM l.base
			 OR EXISTS (SELECT FROM jsonb_array_elements(l.detail->'conflicts') e
						 WHERE NOT soak.patches_field(l.changes, e->>'field')
							OR (e->>'server_version')::bigint <= l.base))
	  ORDER BY l.id LIMIT 10)
	UNION ALL
	(SELECT 'last write', format('user %s %s: last write %s at version %s (%s values), final %s',
								 w.u, w.field, w.value, w.version, w.nvalues, f.flat->w.field)
	   FROM soak.field_writes w JOIN soak.final f USING (u)
	  WHERE w.from_newest = 1 AND (w.nvalues > 1 OR w.value IS DISTINCT FROM (f.flat->w.field)::text)
	  ORDER BY w.u LIMIT 10)
$$;
