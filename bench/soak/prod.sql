-- bench/soak/prod.sql — what the production soak (scripts/soak_prod.sh) adds
-- to the soak's harness, loaded after bench/soak/setup.sql and
-- bench/soak/checks.sql:
--
--   psql -f bench/soak/prod.sql
--
-- There the calls come through PgBouncer in transaction mode, each in its
-- own transaction shaped as PostgREST shapes it (BEGIN; SET LOCAL ROLE;
-- set_config('request.jwt.claims', ..., true); the call; COMMIT): the
-- user's calls (patches) as role authenticated with the user's claims, the
-- service's (consume_roasts, webhooks) as service_role.  So those roles get
-- what the harness's wrappers need, and nothing of the extension's.
--
-- The client (bench/soak/app.js) keeps its own record of every request
-- (soak.requests: acknowledged, failed, or in doubt when the connection
-- went while its COMMIT was in flight), and after the run the script loads
-- what the old primary held (soak.old_ledger, started apart after the
-- promotion) and which of its commits came after the point where the
-- promoted standby's history left it (soak.old_commits, from pg_waldump).
-- soak.prepare_prod() derives from them the acknowledged transactions lost
-- in the promotion (soak.lost) and fills the tables that soak.checks() reads
-- (pgbench_scripts, pgbench_log, in_doubt, notified); soak.checks_prod()
-- checks the promotion, the histories and the devices; soak.quota_checks()
-- runs on the old primary's copy.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

GRANT USAGE ON SCHEMA soak TO authenticated, service_role;
GRANT INSERT ON soak.ledger TO authenticated, service_role;
GRANT USAGE ON SEQUENCE soak.ledger_id_seq TO authenticated, service_role;
-- the webhook signing key and the hot user's number (soak.consume)
GRANT SELECT ON soak.config TO service_role;
GRANT SELECT, INSERT ON soak.outbox TO service_role;
GRANT USAGE ON SEQUENCE soak.outbox_seq_seq TO service_role;

-- A new Polar event (soak.webhook_new), answered with the event itself, so
-- that the client can deliver it again after a failover that lost it.
CREATE FUNCTION soak.webhook_new_j(src text, cl int, tx int, u int) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	wid text := soak.webhook_new(src, cl, tx, u);
BEGIN
	RETURN (SELECT to_jsonb(o) - 'seq' FROM soak.outbox o WHERE o.webhook_id = wid);
END
$$;

-- Deliver an event the client holds (from soak.webhook_new_j) again: put it
-- back in the outbox if the outbox lost it (a failover), then deliver it,
-- signed anew.
CREATE FUNCTION soak.redeliver_event(src text, cl int, tx int, ev jsonb) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO soak.outbox (webhook_id, u, status, product, modified_at, body)
	VALUES (ev->>'webhook_id', (ev->>'u')::int, ev->>'status', ev->>'product',
			(ev->>'modified_at')::timestamptz, ev->>'body')
	ON CONFLICT (webhook_id) DO NOTHING;
	RETURN soak.deliver(src, cl, tx, (ev->>'u')::int, ev->>'webhook_id', ev->>'body');
END
$$;

-- ---------------------------------------------------------------------------
-- What the script loads after the run
-- ---------------------------------------------------------------------------

-- Every request the client made (bench/soak/app.js): client, its request
-- number, the script; outcome ack (COMMIT answered), failed (an error
-- before the COMMIT: rolled back) or unknown (the connection went while
-- the COMMIT was in flight); kind of a failure: disruption (connection
-- lost, server shutting down), pt503 (a standby behind the cursor) or
-- unexpected; times in ms since the epoch.
CREATE TABLE soak.requests (
	client int NOT NULL,
	tx int NOT NULL,
	src text NOT NULL,
	outcome text NOT NULL,
	kind text,
	code text,
	t0 bigint NOT NULL,
	t1 bigint NOT NULL,
	PRIMARY KEY (client, tx)
);

-- The failover: times (ms since the epoch) of the cut of the replication
-- link, the old primary's immediate stop, the promotion and PgBouncer's
-- reload; the point where the new timeline left the old one (the promoted
-- standby's timeline history file), the end of the old primary's WAL, the
-- history lines ("<system identifier>.<timeline>") of both sides, and the
-- commits the old primary made after the switch point (pg_waldump).
CREATE TABLE soak.promotion (
	cut_seconds int NOT NULL,
	cut_ms bigint,
	stop_ms bigint NOT NULL,
	promoted_ms bigint NOT NULL,
	reload_ms bigint NOT NULL,
	switchpoint pg_lsn NOT NULL,
	old_end pg_lsn NOT NULL,
	old_line text NOT NULL,
	new_line text NOT NULL,
	old_commits_after bigint NOT NULL
);

-- Disruptions (ms since the epoch): a connection failure of a request must
-- fall in one of them.
CREATE TABLE soak.disruptions (what text NOT NULL, t_from bigint NOT NULL, t_to bigint NOT NULL);

-- The old primary's ledger rows of the last part of the run, with the
-- transaction id that wrote them (read from its copy, started apart), and
-- the transactions it committed after the switch point, with the WAL
-- position of their commit records.
CREATE TABLE soak.old_ledger (LIKE soak.ledger, xid bigint NOT NULL);
CREATE INDEX ON soak.old_ledger (client, tx);
CREATE TABLE soak.old_commits (xid bigint PRIMARY KEY, lsn pg_lsn NOT NULL);

-- Every user's version and count on the promoted standby right after the
-- promotion (the last of the old history each user kept), and on the old
-- primary's copy (the last it had).
CREATE TABLE soak.at_promotion (user_id uuid PRIMARY KEY, version bigint NOT NULL, used int NOT NULL);
CREATE TABLE soak.old_state (user_id uuid PRIMARY KEY, version bigint NOT NULL, used int NOT NULL);

-- Every payload the LISTENing client received (both primaries): user,
-- version, history line.
CREATE TABLE soak.announced (u uuid NOT NULL, version bigint NOT NULL, line text);

-- The client's polling devices at the end (bench/soak/app.js: u, cursor,
-- history, st, syncs, resets, pt503, lines) and its sampled mid-run points.
CREATE TABLE soak.poll_devices (j jsonb NOT NULL);
CREATE TABLE soak.poll_points (j jsonb NOT NULL);
-- the client's sync answers, as ledger rows (JSON of soak.ledger's columns)
CREATE TABLE soak.poll_syncs (j jsonb NOT NULL);

-- The checks made on the old primary's copy (soak.quota_checks() there).
CREATE TABLE soak.old_side (name text NOT NULL, value text, ok boolean NOT NULL);

-- The acknowledged transactions lost in the promotion (soak.prepare_prod()).
CREATE TABLE soak.lost (client int, tx int, src text, xid bigint, lsn pg_lsn, t1 bigint,
						PRIMARY KEY (client, tx));

-- A WAL position of a history token ("<sysid>.<timeline>.<hex>"), or NULL.
CREATE FUNCTION soak.token_lsn(h text) RETURNS pg_lsn
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN split_part(h, '.', 3) ~ '^[0-9A-F]{1,16}$'
				THEN '0/0'::pg_lsn + ('x' || lpad(split_part(h, '.', 3), 16, '0'))::bit(64)::bigint::numeric END
$$;

-- "<sysid>.<timeline>" of a token.
CREATE FUNCTION soak.token_line(h text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN h IS NOT NULL THEN split_part(h, '.', 1) || '.' || split_part(h, '.', 2) END
$$;

-- What a state_sync from (cursor, history) on the new primary must answer
-- by the rule of Replicas, failover and restore (README), worked out here
-- from the switch point and not by the extension: the same history (an
-- incremental answer) for a token of the new timeline, or of the old one
-- whose WAL position is at or before the switch point; anything else is a
-- reset.
CREATE FUNCTION soak.expect_reset(history text) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT NOT (soak.token_line(history) = p.new_line
				OR (soak.token_line(history) = p.old_line
					AND soak.token_lsn(history) IS NOT NULL AND soak.token_lsn(history) <= p.switchpoint))
	  FROM soak.promotion p
$$;

-- After loading: the lost transactions, and what soak.checks() reads.
CREATE FUNCTION soak.prepare_prod() RETURNS bigint
LANGUAGE plpgsql SET max_parallel_workers_per_gather = 0 AS $$
DECLARE
	p soak.promotion;
BEGIN
	SELECT * INTO p FROM soak.promotion;
	ANALYZE soak.requests, soak.old_ledger, soak.old_commits, soak.ledger;

	-- Lost: acknowledged, written on the old primary by a transaction whose
	-- commit record lies after the switch point (so the standby never had
	-- it), and not on the new primary.
	INSERT INTO soak.lost
	SELECT r.client, r.tx, r.src, o.xid, c.lsn, r.t1
	  FROM soak.requests r
	  JOIN (SELECT DISTINCT client, tx, xid FROM soak.old_ledger) o USING (client, tx)
	  JOIN soak.old_commits c USING (xid)
	 WHERE r.outcome = 'ack'
	   AND NOT EXISTS (SELECT FROM soak.ledger l WHERE l.client = r.client AND l.tx = r.tx);

	-- the client's sync answers join the ledger (a standby cannot write it);
	-- those the old primary gave after the switch point are of a history the
	-- final one does not continue (other_history): their versions were
	-- handed out again
	INSERT INTO soak.ledger (src, client, tx, op, u, version, base, n, result, detail)
	SELECT j->>'src', (j->>'client')::int, (j->>'tx')::int, 'sync', (j->>'u')::int,
		   (j->>'version')::bigint, (j->>'base')::bigint, (j->>'n')::int,
		   j->'result' || jsonb_build_object('other_history',
				soak.token_line(j->'result'->>'history') = p.old_line
				AND coalesce(soak.token_lsn(j->'result'->>'history') > p.switchpoint, true)),
		   nullif(j->'detail', 'null'::jsonb)
	  FROM soak.poll_syncs;

	-- soak.checks()' view of the run: every request its own "script"
	-- transaction of one call; acknowledged ones but the lost are expected
	-- in the ledger, in-doubt ones may be there or not.
	INSERT INTO soak.pgbench_scripts
	SELECT row_number() OVER (ORDER BY src) - 1, src, 1 FROM (SELECT DISTINCT src FROM soak.requests) s;
	INSERT INTO soak.pgbench_log
	SELECT r.client, r.tx, s.script
	  FROM soak.requests r JOIN soak.pgbench_scripts s USING (src)
	 WHERE r.outcome = 'ack'
	   AND NOT EXISTS (SELECT FROM soak.lost x WHERE x.client = r.client AND x.tx = r.tx);
	INSERT INTO soak.in_doubt SELECT client, tx FROM soak.requests WHERE outcome = 'unknown';

	-- The polling devices and their sampled points.
	UPDATE soak.devices d
	   SET cursor = (pd.j->>'cursor')::bigint, st = pd.j->'st', syncs = (pd.j->>'syncs')::int, history = pd.j->>'history'
	  FROM soak.poll_devices pd WHERE d.u = (pd.j->>'u')::int;
	INSERT INTO soak.sync_points (u, cursor, st, history)
	SELECT (j->>'u')::int, (j->>'cursor')::bigint, j->'st', j->>'history' FROM soak.poll_points;

	-- The newest version announced per user of the history that holds its
	-- final version: versions of the old line above what the promoted standby
	-- had were lost, and so were their announcements' promises.
	INSERT INTO soak.notified
	SELECT a.u, max(a.version), count(*)
	  FROM soak.announced a LEFT JOIN soak.at_promotion t ON t.user_id = a.u
	 WHERE a.line = p.new_line OR (a.line = p.old_line AND a.version <= t.version)
	 GROUP BY a.u;
	ANALYZE soak.ledger, soak.pgbench_log, soak.devices, soak.sync_points;
	RETURN (SELECT count(*) FROM soak.lost);
END
$$;

-- Checks on the old primary's copy: no overdraft on the lost side of the
-- promotion either.  Only the consuming users and the hot one.  (Serial
-- plans: see soak.collect() in checks.sql.)
CREATE FUNCTION soak.quota_checks() RETURNS TABLE (name text, value text, ok boolean)
LANGUAGE plpgsql SET client_min_messages = warning SET max_parallel_workers_per_gather = 0 AS $$
DECLARE
	c soak.config;
	x bigint;
	a bigint;
BEGIN
	SELECT * INTO c FROM soak.config;
	DROP TABLE IF EXISTS qf;
	CREATE TEMP TABLE qf ON COMMIT DROP AS
	SELECT b.u, b.used AS base_used, (s->'usage'->>'monthly_roasts_used')::int AS used,
		   (s->'usage'->>'monthly_roasts_limit')::int AS lim
	  FROM soak.baseline b
	  CROSS JOIN LATERAL roastr_state.state_full(soak.uid(b.u)) s
	 WHERE b.u IN (SELECT u FROM soak.consumptions) OR b.u = c.hot;

	SELECT count(*) FILTER (WHERE lim IS NOT NULL AND used > lim), count(*) INTO x, a FROM qf;
	name := 'users above their plan limit'; value := format('%s (of %s consuming users)', x, a); ok := x = 0;
	RETURN NEXT;

	SELECT count(*) INTO x
	  FROM qf LEFT JOIN (SELECT u, sum(n) AS n FROM soak.consumptions GROUP BY u) k USING (u)
	 WHERE qf.used <> qf.base_used + coalesce(k.n, 0);
	name := 'users whose count <> baseline + acknowledged consumptions'; value := x; ok := x = 0;
	RETURN NEXT;

	SELECT count(*) INTO x FROM soak.ledger WHERE op = 'consume' AND allowed AND lim IS NOT NULL AND used > lim;
	name := 'allowed consumptions that answered used > limit'; value := x; ok := x = 0;
	RETURN NEXT;

	SELECT count(*) INTO x FROM soak.ledger WHERE op = 'consume' AND u = c.hot AND NOT allowed;
	SELECT format('used %s of %s, %s refusals', q.used, q.lim, x), x = 0 OR q.used = q.lim
	  INTO value, ok FROM qf q WHERE q.u = c.hot;
	name := 'hot user driven past its limit ends exactly at it';
	RETURN NEXT;
END
$$;

-- The production soak's own checks: (section, name, value, ok, ms).
CREATE FUNCTION soak.checks_prod()
RETURNS TABLE (section text, name text, value text, ok boolean, ms numeric)
LANGUAGE plpgsql SET client_min_messages = warning SET max_parallel_workers_per_gather = 0 AS $$
DECLARE
	p soak.promotion;
	a bigint;
	b bigint;
	x bigint;
	y bigint;
	d text;
	t0 timestamptz := clock_timestamp();
BEGIN
	SELECT * INTO p FROM soak.promotion;

	-- promotion --------------------------------------------------------------
	section := 'promotion';
	SELECT count(*), (SELECT count(*) FROM soak.old_ledger o JOIN soak.lost USING (client, tx)) INTO x, a FROM soak.lost;
	name := 'acknowledged transactions lost in the promotion (expected with the link cut)';
	value := format('%s (%s calls; the old primary committed %s transactions, %s of WAL, after the switch point %s)',
					x, a, p.old_commits_after, pg_size_pretty(pg_wal_lsn_diff(p.old_end, p.switchpoint)),
					p.switchpoint);
	ok := x > 0 OR p.cut_seconds = 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	-- acknowledged, not on the new primary, and not a commit after the
	-- switch point: a loss the promotion does not explain
	SELECT count(*) INTO x
	  FROM soak.requests r
	 WHERE r.outcome = 'ack'
	   AND NOT EXISTS (SELECT FROM soak.ledger l WHERE l.client = r.client AND l.tx = r.tx)
	   AND NOT EXISTS (SELECT FROM soak.lost x WHERE x.client = r.client AND x.tx = r.tx);
	name := 'acknowledged transactions missing on the new primary that the standby had received';
	value := x; ok := x = 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	-- the old primary's crash recovery kept all it acknowledged (the lost
	-- ones are found there, so the others missing would be)
	SELECT count(*) INTO x
	  FROM soak.requests r
	 WHERE r.outcome = 'ack' AND r.t1 <= p.stop_ms AND r.t0 >= coalesce(p.cut_ms, p.stop_ms) - 10000
	   AND NOT EXISTS (SELECT FROM soak.ledger l WHERE l.client = r.client AND l.tx = r.tx)
	   AND NOT EXISTS (SELECT FROM soak.old_ledger o WHERE o.client = r.client AND o.tx = r.tx);
	name := 'acknowledged by the old primary, missing there after its crash recovery';
	value := x; ok := x = 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) INTO x
	  FROM soak.old_ledger o JOIN soak.old_commits c USING (xid)
	 WHERE EXISTS (SELECT FROM soak.ledger l WHERE l.client = o.client AND l.tx = o.tx AND l.src <> 'setup');
	name := 'transactions committed after the switch point found on the new primary';
	value := x; ok := x = 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	-- webhooks: an event whose first processing was lost is processed again,
	-- exactly once, by a delivery answered after the promotion.  Answered,
	-- not sent: a delivery sent while the primary was down waits in
	-- PgBouncer and runs on the new primary.  (A processing of a lost event
	-- found in the new primary's ledger cannot predate the switch point: the
	-- lost one would then have found the event processed.)  A failure names
	-- the events: how often processed, and when sent and answered, in ms
	-- from the promotion.
	WITH lost_events AS (
		SELECT DISTINCT o.webhook_id
		  FROM soak.old_ledger o JOIN soak.lost USING (client, tx)
		 WHERE o.op = 'webhook' AND NOT (o.result->>'idempotent')::boolean
	), now_applied AS (
		SELECT l.webhook_id, count(*) AS n, bool_and(r.t1 >= p.promoted_ms) AS after,
			   min(r.t0 - p.promoted_ms) AS sent, max(r.t1 - p.promoted_ms) AS answered
		  FROM soak.ledger l JOIN soak.requests r USING (client, tx)
		 WHERE l.op = 'webhook' AND NOT (l.result->>'idempotent')::boolean
		 GROUP BY l.webhook_id
	), judged AS (
		SELECT e.webhook_id, n.n, n.sent, n.answered,
			   n.n IS DISTINCT FROM 1 OR NOT n.after AS bad
		  FROM lost_events e LEFT JOIN now_applied n USING (webhook_id)
	)
	SELECT count(*), count(*) FILTER (WHERE bad),
		   string_agg(format('%s: %s times, sent %s, answered %s', webhook_id, coalesce(n, 0), sent, answered), '; ')
			 FILTER (WHERE bad)
	  INTO a, x, d FROM judged;
	name := 'webhook events lost in the promotion not processed again exactly once after it';
	value := format('%s (of %s lost events)%s', x, a, CASE WHEN x > 0 THEN ': ' || left(d, 400) ELSE '' END); ok := x = 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	-- histories --------------------------------------------------------------
	section := 'histories';
	-- every sampled mid-run point, synced now from its cursor and history:
	-- reset exactly when the rule says so
	SELECT count(*), count(*) FILTER (WHERE ((s->>'reset')::boolean) IS DISTINCT FROM soak.expect_reset(q.history)),
		   count(*) FILTER (WHERE soak.token_line(q.history) = p.old_line AND NOT (s->>'reset')::boolean),
		   count(*) FILTER (WHERE (s->>'reset')::boolean)
	  INTO a, x, y, b
	  FROM soak.sync_points q CROSS JOIN LATERAL soak.sync_from(q.u, q.cursor, q.history) s;
	name := 'sampled cursors whose sync now is (not) a reset against the rule';
	value := format('%s (of %s; %s of the old history kept their cursor, %s reset)', x, a, y, b);
	ok := x = 0 AND a > 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	-- devices that held a version of the old history beyond what the
	-- promoted standby had (a lost version) must have been reset since
	WITH dev AS (
		SELECT 'gateway' AS kind, (j->>'u')::uuid AS user_id, j FROM soak.gateway_devices
		UNION ALL
		SELECT 'polling', soak.uid((j->>'u')::int), j FROM soak.poll_devices
	)
	SELECT count(*), count(*) FILTER (WHERE coalesce((d.j->>'resets')::int, 0) = 0) INTO a, x
	  FROM dev d JOIN soak.at_promotion t USING (user_id)
	 WHERE (d.j->'lines'->>p.old_line)::bigint > t.version;
	name := 'devices that held a lost version and were not reset';
	value := format('%s (of %s that held one)', x, a);
	ok := x = 0 AND (a > 0 OR NOT EXISTS (SELECT FROM soak.lost));
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	-- no device ends with a value that only the lost history had
	WITH lost_values AS (
		SELECT DISTINCT soak.uid(o.u) AS user_id, f.key AS field, f.value
		  FROM soak.old_ledger o JOIN soak.lost USING (client, tx), jsonb_each(o.changes) f
		 WHERE o.op = 'patch'
	), dev AS (
		SELECT (j->>'u')::uuid AS user_id, j->'st' AS st FROM soak.gateway_devices
		UNION ALL
		SELECT soak.uid((j->>'u')::int), j->'st' FROM soak.poll_devices
	)
	SELECT count(*) FILTER (WHERE d.st->v.field = v.value AND fin.flat->v.field IS DISTINCT FROM v.value),
		   (SELECT count(*) FROM lost_values)
	  INTO x, a
	  FROM lost_values v
	  JOIN dev d USING (user_id)
	  JOIN soak.final fin ON soak.uid(fin.u) = v.user_id;
	name := 'device fields holding a value written only on the lost history';
	value := format('%s (%s values lost)', x, a); ok := x = 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	-- devices -----------------------------------------------------------------
	section := 'devices';
	SELECT count(*), count(*) FILTER (WHERE soak.token_line(g.j->>'history') IS DISTINCT FROM p.new_line)
	  INTO a, x
	  FROM soak.gateway_devices g;
	name := 'devices (gateway) not on the final history';
	value := format('%s (of %s)', x, a); ok := x = 0 AND a > 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*), count(*) FILTER (WHERE (d.j->'st') <> f.flat OR (d.j->>'cursor')::bigint <> f.version
										  OR soak.token_line(d.j->>'history') IS DISTINCT FROM p.new_line)
	  INTO a, x
	  FROM soak.poll_devices d JOIN soak.final f ON f.u = (d.j->>'u')::int;
	name := 'devices (polling) not at state_full, the final version and history';
	value := format('%s (of %s)', x, a); ok := x = 0 AND a > 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	-- gateway B (gw 1) was killed and restarted: each of its devices connected again
	SELECT count(*), count(*) FILTER (WHERE (j->>'connects')::int < 2) INTO a, x
	  FROM soak.gateway_devices WHERE j->>'gw' = '1';
	name := 'devices of the killed gateway that did not connect again';
	value := format('%s (of %s)', x, a); ok := x = 0 AND a > 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	-- requests ----------------------------------------------------------------
	section := 'requests';
	SELECT count(*) INTO x FROM soak.requests WHERE kind = 'unexpected';
	name := 'requests that failed with an unexpected error';
	value := x; ok := x = 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;

	SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT FROM soak.disruptions d
											 WHERE r.t1 BETWEEN d.t_from - 1000 AND d.t_to + 15000)),
		   count(*)
	  INTO x, a
	  FROM soak.requests r WHERE r.kind = 'disruption';
	name := 'connection failures outside the disruptions (-1 s, +15 s)';
	value := format('%s (of %s)', x, a); ok := x = 0;
	ms := round(extract(epoch FROM clock_timestamp() - t0)::numeric * 1000, 1); t0 := clock_timestamp(); RETURN NEXT;
END
$$;

-- What the production run did beyond soak.figures().
CREATE FUNCTION soak.figures_prod() RETURNS TABLE (name text, value text)
LANGUAGE sql AS $$
	WITH p AS (SELECT * FROM soak.promotion), r AS (SELECT * FROM soak.requests)
	SELECT * FROM (VALUES
	('requests: acknowledged / failed (disruptions) / in doubt / PT503',
	 (SELECT format('%s / %s / %s / %s', count(*) FILTER (WHERE outcome = 'ack'),
					count(*) FILTER (WHERE outcome = 'failed' AND kind = 'disruption'),
					count(*) FILTER (WHERE outcome = 'unknown'), count(*) FILTER (WHERE kind = 'pt503')) FROM r)),
	('  in doubt that committed (found on either side)',
	 (SELECT format('%s of %s', count(*) FILTER (WHERE EXISTS (SELECT FROM soak.ledger l WHERE l.client = i.client AND l.tx = i.tx)
												 OR EXISTS (SELECT FROM soak.old_ledger o WHERE o.client = i.client AND o.tx = i.tx)),
					count(*)) FROM soak.in_doubt i)),
	('switch point / old primary''s end of WAL',
	 (SELECT format('%s / %s (%s not received)', switchpoint, old_end,
					pg_size_pretty(pg_wal_lsn_diff(old_end, switchpoint))) FROM p)),
	('after the link was cut (s): old primary stopped / standby promoted / PgBouncer reloaded',
	 (SELECT format('%s / %s / %s', round((stop_ms - coalesce(cut_ms, stop_ms)) / 1000.0, 1),
					round((promoted_ms - coalesce(cut_ms, stop_ms)) / 1000.0, 1),
					round((reload_ms - coalesce(cut_ms, stop_ms)) / 1000.0, 1)) FROM p)),
	('lost in the promotion: transactions (patches / consumptions / webhook deliveries)',
	 (SELECT format('%s (%s / %s / %s)', (SELECT count(*) FROM soak.lost),
					count(*) FILTER (WHERE o.op = 'patch'), count(*) FILTER (WHERE o.op = 'consume'),
					count(*) FILTER (WHERE o.op = 'webhook'))
		FROM soak.old_ledger o JOIN soak.lost USING (client, tx))),
	('  acknowledged from ... to ... (s after the cut)',
	 (SELECT format('%s to %s', round((min(t1) - min(coalesce(p.cut_ms, p.stop_ms))) / 1000.0, 2),
					round((max(t1) - min(coalesce(p.cut_ms, p.stop_ms))) / 1000.0, 2))
		FROM soak.lost, p)),
	('  versions lost (users) / roasts consumed then lost (the new primary may grant them again)',
	 (SELECT format('%s (%s) / %s', coalesce(sum(o.version - t.version), 0), count(*) FILTER (WHERE o.version > t.version),
					coalesce(sum(greatest(o.used - t.used, 0)), 0))
		FROM soak.old_state o JOIN soak.at_promotion t USING (user_id))),
	('  webhook events processed then lost / processed again after the promotion',
	 (SELECT format('%s / %s', count(DISTINCT o.webhook_id),
					(SELECT count(DISTINCT l.webhook_id) FROM soak.ledger l JOIN soak.requests q USING (client, tx), p
					  WHERE l.op = 'webhook' AND NOT (l.result->>'idempotent')::boolean AND q.t1 >= p.promoted_ms
						AND l.webhook_id IN (SELECT o2.webhook_id FROM soak.old_ledger o2 JOIN soak.lost USING (client, tx))))
		FROM soak.old_ledger o JOIN soak.lost USING (client, tx)
	   WHERE o.op = 'webhook' AND NOT (o.result->>'idempotent')::boolean)),
	('  announcements of lost versions (sent by the old primary)',
	 (SELECT count(*)::text FROM soak.announced a JOIN soak.at_promotion t ON t.user_id = a.u, p
	   WHERE a.line = p.old_line AND a.version > t.version)),
	('polling devices: synced / resets / PT503 retried on the primary',
	 (SELECT format('%s / %s / %s', count(*), sum((j->>'resets')::int), sum((j->>'pt503')::int)) FROM soak.poll_devices)),
	('  syncs answered by the standby / by the primary / of them on the lost history',
	 (SELECT format('%s / %s / %s', count(*) FILTER (WHERE result->>'server' = 'ro'),
					count(*) FILTER (WHERE result->>'server' = 'rw'),
					count(*) FILTER (WHERE (result->>'other_history')::boolean))
		FROM soak.ledger WHERE op = 'sync')),
	('gateway devices: state_update whose payload named no history',
	 (SELECT format('%s of %s', sum((j->>'updatesNoHistory')::bigint), sum((j->>'updates')::bigint)) FROM soak.gateway_devices)),
	('gateway devices: resets / connects (by gateway)',
	 (SELECT string_agg(format('gw%s: %s / %s', gw, resets, connects), ', ' ORDER BY gw)
		FROM (SELECT j->>'gw' AS gw, sum((j->>'resets')::int) AS resets, sum((j->>'connects')::int) AS connects
				FROM soak.gateway_devices GROUP BY 1) g))
	) AS v(name, value)
$$;
