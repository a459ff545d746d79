/*-------------------------------------------------------------------------
 *
 * state.c
 *	  The SQL functions over a user's state and the service: ensure_user,
 *	  state_full, state_sync, patch, caller_is_service, authorize_channel
 *	  and notify_stats.
 *
 * Each one unpacks its arguments, checks the caller, calls the concern that
 * does the work (read.c, shown.c, patch.c, access.c, notify.c) and packs
 * the answer.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/state.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "access.h"
#include "errcodes.h"
#include "fields.h"
#include "history.h"
#include "json_util.h"
#include "notify_queue.h"
#include "patch.h"
#include "read.h"
#include "relation.h"
#include "shown.h"
#include "spi_util.h"
#include "stats.h"
#include "user_state.h"

/*
 * create_or_refresh_user
 *		Create the state of "user" if missing; otherwise bring the e-mail
 *		(and the name, when not null) up to date through the usual versioned
 *		path.  Then read it into "st" (caller's context).  The caller is the
 *		service and has validated the values.
 */
static void
create_or_refresh_user(const pg_uuid_t *user, Datum email, Datum name,
					   bool name_null, RsUserState *st)
{
	static SPIPlanPtr insert = NULL;
	static SPIPlanPtr refresh = NULL;
	Oid			types[3] = {UUIDOID, TEXTOID, TEXTOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	MemoryContext cxt = CurrentMemoryContext;
	RsUserSwitch sw;

	args[0] = UUIDPGetDatum(user);
	args[1] = email;
	args[2] = name_null ? (Datum) 0 : name;
	if (name_null)
		nulls[2] = 'n';

	SPI_connect();
	rs_become_owner(&sw);
	if (rs_spi_run(rs_spi_kept(&insert,
							   "INSERT INTO roastr_state.state (user_id, email, name) "
							   "VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING",
							   3, types),
				   args, nulls, false, 0, SPI_OK_INSERT,
				   "insert user state") == 0)
		rs_spi_run(rs_spi_kept(&refresh,
							   "UPDATE roastr_state.state SET email = $2, "
							   "name = COALESCE($3, name) "
							   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
							   "AND (email IS DISTINCT FROM $2 "
							   "OR ($3 IS NOT NULL AND name IS DISTINCT FROM $3))",
							   3, types),
				   args, nulls, false, 0, SPI_OK_UPDATE, "update user state");
	if (!rs_read_state(user, st, cxt, false, false))
		rs_no_state(user);		/* deleted concurrently */
	rs_restore_user(&sw);
	SPI_finish();
}

/*
 * standby_behind
 *		PT503: a standby has not replayed the client's cursor yet.
 */
static void
standby_behind(const pg_uuid_t *user, int64 since)
{
	ereport(ERROR,
			errcode(ERRCODE_ROASTR_BEHIND),
			errmsg("this standby has not replayed version %lld of user %s yet",
				   (long long) since, rs_uuid_to_cstring(user)),
			errhint("Retry shortly, or read from the primary."));
}

/*
 * sync_answer
 *		state_sync from cursor "since" of history "given" (NULL: a bare
 *		cursor).  A cursor this server's history may have reissued is a
 *		full resync flagged "reset"; on a standby, one it has not replayed
 *		yet is PT503.  A bare cursor above the user's version means the same
 *		(a primary restored or failed over, or a standby behind).
 */
static Jsonb *
sync_answer(const pg_uuid_t *user, int64 since, const RsHistory *given)
{
	RsUserState st;
	RsHistory	now;
	bool		reset = false;

	rs_read_settled(user, &st);
	rs_history_now(&now, true);
	if (given != NULL)
	{
		switch (rs_history_judge(given, &now))
		{
			case RS_HISTORY_SAME:
				break;
			case RS_HISTORY_RESET:
				reset = true;
				break;
			case RS_HISTORY_BEHIND:
				standby_behind(user, since);
				break;
		}
	}
	if (!reset && since > st.version)
	{
		if (RecoveryInProgress())
			standby_behind(user, since);
		reset = true;
	}
	return rs_render_sync(&st, since == 0 || reset, false, since, 0,
						  rs_history_format(&now), reset);
}

PG_FUNCTION_INFO_V1(roastr_state_ensure_user);

/*
 * roastr_state.ensure_user(user_id uuid, email text, name text DEFAULT NULL)
 *		-> jsonb
 *		Service only.  Creates the state if missing; otherwise brings email
 *		(and name, when given) up to date through the usual versioned path.
 *		Returns state_full.
 */
Datum
roastr_state_ensure_user(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	RsUserState st;

	rs_get_caller(&caller);
	rs_require_service(&caller, "ensure_user");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("user_id must not be null"));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid value for field \"auth.email\""),
				errdetail("Expected an e-mail address."));
	user = *PG_GETARG_UUID_P(0);
	rs_validate_value(&rs_fields[F_AUTH_EMAIL], PG_GETARG_DATUM(1), false);
	if (!PG_ARGISNULL(2))
		rs_validate_value(&rs_fields[F_AUTH_NAME], PG_GETARG_DATUM(2), false);

	create_or_refresh_user(&user, PG_GETARG_DATUM(1),
						   PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2),
						   PG_ARGISNULL(2), &st);
	PG_RETURN_JSONB_P(rs_render_full(&st, rs_history_token(true)));
}

PG_FUNCTION_INFO_V1(roastr_state_state_full);

/*
 * roastr_state.state_full(user_id uuid DEFAULT NULL) -> jsonb
 */
Datum
roastr_state_state_full(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	RsUserState st;

	rs_resolve_target(fcinfo, 0, &caller, &user);
	rs_read_settled(&user, &st);
	PG_RETURN_JSONB_P(rs_render_full(&st, rs_history_token(true)));
}

PG_FUNCTION_INFO_V1(roastr_state_state_sync);

/*
 * roastr_state.state_sync(user_id uuid, since bigint DEFAULT NULL) -> jsonb
 *		A cursor of 0 or NULL gives everything; a cursor newer than the
 *		server's version gives everything flagged "reset" on a primary (a
 *		client of a restored or failed-over server), PT503 on a standby.
 */
Datum
roastr_state_state_sync(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	int64		since = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);

	rs_resolve_target(fcinfo, 0, &caller, &user);
	if (since < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("cursor must not be negative"),
				errhint("Pass 0 or NULL to get everything."));
	PG_RETURN_JSONB_P(sync_answer(&user, since, NULL));
}

PG_FUNCTION_INFO_V1(roastr_state_state_sync_history);

/*
 * roastr_state.state_sync(user_id uuid, since bigint, history text) -> jsonb
 *		The cursor with the history it belongs to (from state_full's
 *		_meta.history or a previous state_sync): see history.c.  A NULL
 *		history is a bare cursor.
 */
Datum
roastr_state_state_sync_history(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	int64		since = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	RsHistory	given;

	rs_resolve_target(fcinfo, 0, &caller, &user);
	if (since < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("cursor must not be negative"),
				errhint("Pass 0 or NULL to get everything."));
	if (!PG_ARGISNULL(2) &&
		!rs_history_parse(text_to_cstring(PG_GETARG_TEXT_PP(2)), &given))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid history token"),
				errhint("Pass the history of the answer that gave the cursor, or NULL."));
	PG_RETURN_JSONB_P(sync_answer(&user, since,
								  PG_ARGISNULL(2) ? NULL : &given));
}

PG_FUNCTION_INFO_V1(roastr_state_state_sync_at);

/*
 * roastr_state.state_sync(user_id uuid, since_at timestamptz) -> jsonb
 *		For callers that only have a time.  Times are not commit order: a
 *		change can commit after a later-stamped one, so prefer the version
 *		cursor.
 */
Datum
roastr_state_state_sync_at(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	RsUserState st;

	rs_resolve_target(fcinfo, 0, &caller, &user);
	if (!PG_ARGISNULL(1) && TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(1)))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("since_at must be a finite timestamp"));
	rs_read_settled(&user, &st);
	PG_RETURN_JSONB_P(rs_render_sync(&st, PG_ARGISNULL(1), true, 0,
									 PG_ARGISNULL(1) ? 0 : PG_GETARG_TIMESTAMPTZ(1),
									 rs_history_token(true), false));
}

PG_FUNCTION_INFO_V1(roastr_state_patch);

/*
 * roastr_state.patch(user_id uuid, changes jsonb, base_version bigint
 *		DEFAULT NULL, mutation_id uuid DEFAULT NULL) -> jsonb
 *		{version, applied}.  All or nothing; see patch.c and trigger.c for
 *		the rules.
 */
Datum
roastr_state_patch(PG_FUNCTION_ARGS)
{
	RsPatchRequest req;

	memset(&req, 0, sizeof(req));
	req.user_isnull = PG_ARGISNULL(0);
	req.user_arg = req.user_isnull ? (Datum) 0 : PG_GETARG_DATUM(0);
	req.changes = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	req.base_null = PG_ARGISNULL(2);
	req.base = req.base_null ? 0 : PG_GETARG_INT64(2);
	req.has_mid = !PG_ARGISNULL(3);
	if (req.has_mid)
		req.mid = *PG_GETARG_UUID_P(3);
	PG_RETURN_JSONB_P(rs_patch(&req));
}

PG_FUNCTION_INFO_V1(roastr_state_caller_is_service);

/*
 * roastr_state.caller_is_service() -> bool, for row security policies.
 */
Datum
roastr_state_caller_is_service(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(rs_caller_is_service());
}

PG_FUNCTION_INFO_V1(roastr_state_authorize_channel);

/*
 * roastr_state.authorize_channel(channel text) -> bool
 *		Whether the caller may LISTEN on a channel: a user on their own
 *		"user:<uuid>" channel; the service on every channel of ours.
 *		Anything malformed is simply false.
 */
Datum
roastr_state_authorize_channel(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	char	   *ch;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	ch = text_to_cstring(PG_GETARG_TEXT_PP(0));
	rs_get_caller(&caller);
	PG_RETURN_BOOL(rs_channel_allowed(&caller, ch));
}

PG_FUNCTION_INFO_V1(roastr_state_notify_stats);

/*
 * roastr_state.notify_stats() -> jsonb: counters of the notifier rings,
 * for benchmarks and monitoring.  Service only.
 */
Datum
roastr_state_notify_stats(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	RsCaller	caller;

	rs_get_caller(&caller);
	rs_require_service(&caller, "notify_stats");
	initStringInfo(&buf);
	rs_queue_stats(&buf);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/*
 * The figures of stats() that tables give: webhook outcomes, the retained
 * rows and bytes of the idempotency tables, and the users with a
 * time-driven move not yet written.  One query, as the extension owner.
 */
#define STATS_QUERY \
	"SELECT pg_catalog.jsonb_build_object(" \
	"'webhook_outcomes', (SELECT COALESCE(pg_catalog.jsonb_object_agg(o, n), '{}'::jsonb) " \
	"  FROM (SELECT pg_catalog.split_part(outcome, ':', 1) AS o, pg_catalog.count(*) AS n " \
	"          FROM roastr_state.webhook_events GROUP BY 1) w), " \
	"'webhook_ignored', (SELECT COALESCE(pg_catalog.jsonb_object_agg(o, n), '{}'::jsonb) " \
	"  FROM (SELECT outcome AS o, pg_catalog.count(*) AS n FROM roastr_state.webhook_events " \
	"         WHERE NOT processed GROUP BY 1) w), " \
	"'retention', pg_catalog.jsonb_build_object(" \
	"  'mutations', pg_catalog.jsonb_build_object('rows', (SELECT pg_catalog.count(*) FROM roastr_state.mutations), " \
	"     'bytes', pg_catalog.pg_total_relation_size('roastr_state.mutations')), " \
	"  'consumptions', pg_catalog.jsonb_build_object('rows', (SELECT pg_catalog.count(*) FROM roastr_state.consumptions), " \
	"     'bytes', pg_catalog.pg_total_relation_size('roastr_state.consumptions')), " \
	"  'webhook_events', pg_catalog.jsonb_build_object('rows', (SELECT pg_catalog.count(*) FROM roastr_state.webhook_events), " \
	"     'bytes', pg_catalog.pg_total_relation_size('roastr_state.webhook_events'))), " \
	"'users', (SELECT pg_catalog.count(*) FROM roastr_state.state), " \
	"'users_with_time_moves_pending', (SELECT pg_catalog.count(*) FROM roastr_state.state s " \
	"  WHERE (s.subscription_status OPERATOR(pg_catalog.=) 'trial' " \
	"         AND s.trial_ends_at OPERATOR(pg_catalog.<=) pg_catalog.now()) " \
	"     OR (s.subscription_status OPERATOR(pg_catalog.=) 'canceled' AND s.plan OPERATOR(pg_catalog.<>) 'free' " \
	"         AND (s.current_period_end IS NULL OR s.current_period_end OPERATOR(pg_catalog.<=) pg_catalog.now())) " \
	"     OR (s.monthly_roasts_used OPERATOR(pg_catalog.>) 0 " \
	"         AND s.usage_period_end OPERATOR(pg_catalog.<=) pg_catalog.now())), " \
	"'users_with_shared_moves_pending', %s, " \
	"'notifier', roastr_state.notify_stats(), " \
	"'notification_queue_usage', pg_catalog.pg_notification_queue_usage())"

/*
 * The users whose state an operator's change of a shared row has moved
 * and no call of theirs has settled yet (shared.c): their effective plan's
 * change stamp, or their current organization's, differs from the one
 * their row records.  The same rule as usage.c's rs_shared_pending.
 */
#define STATS_SHARED_PENDING \
	"(SELECT pg_catalog.count(*) FROM roastr_state.state s " \
	"  LEFT JOIN roastr_state.plans pl ON pl.plan OPERATOR(pg_catalog.=) " \
	"    CASE WHEN (s.subscription_status OPERATOR(pg_catalog.=) 'trial' " \
	"               AND s.trial_ends_at OPERATOR(pg_catalog.<=) pg_catalog.now()) " \
	"           OR (s.subscription_status OPERATOR(pg_catalog.=) 'canceled' AND s.plan OPERATOR(pg_catalog.<>) 'free' " \
	"               AND (s.current_period_end IS NULL OR s.current_period_end OPERATOR(pg_catalog.<=) pg_catalog.now())) " \
	"         THEN 'free' ELSE s.plan END " \
	"  LEFT JOIN (roastr_state.organization_members m JOIN roastr_state.organizations o " \
	"             ON o.id OPERATOR(pg_catalog.=) m.org_id AND o.deleted_at IS NULL) " \
	"    ON m.org_id OPERATOR(pg_catalog.=) s.organization_id AND m.user_id OPERATOR(pg_catalog.=) s.user_id " \
	" WHERE s.limits_seen OPERATOR(pg_catalog.<>) COALESCE(pl.changed_stamp, 0) " \
	"    OR s.organization_seen OPERATOR(pg_catalog.<>) " \
	"       CASE WHEN s.organization_id IS NULL THEN 0 WHEN o.id IS NULL THEN -1 " \
	"            ELSE o.changed_stamp OPERATOR(pg_catalog.+) m.changed_stamp END)"

PG_FUNCTION_INFO_V1(roastr_state_stats);

/*
 * roastr_state.stats() -> jsonb
 *		Service only.  What an operator watches: refusals that leave no row
 *		(conflicts, quota refusals, refused webhooks; counted in shared
 *		memory since the server started, null when not preloaded), webhook
 *		outcomes, retention of the idempotency tables, users with a
 *		time-driven move pending and with an operator's shared change
 *		pending, the notifier and the NOTIFY queue.  Reads every state row
 *		twice: not for a tight loop.
 */
Datum
roastr_state_stats(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	RsUserSwitch sw;
	uint64		counters[RS_NSTATS];
	bool		have = rs_stats_read(counters);
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_stamps = NULL;
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *tables;
	bool		isnull;
	StringInfoData buf;

	rs_get_caller(&caller);
	rs_require_service(&caller, "stats");

	SPI_connect();
	rs_become_owner(&sw);
	if (rs_schema()->stamps)
		rs_spi_run(rs_spi_kept(&plan_stamps,
							   psprintf(STATS_QUERY, STATS_SHARED_PENDING),
							   0, NULL),
				   NULL, NULL, true, 1, SPI_OK_SELECT, "read the statistics");
	else
		rs_spi_run(rs_spi_kept(&plan, psprintf(STATS_QUERY, "NULL::pg_catalog.int8"),
							   0, NULL),
				   NULL, NULL, true, 1, SPI_OK_SELECT, "read the statistics");
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		tables = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1,
												  &isnull));
		MemoryContextSwitchTo(old);
	}
	rs_restore_user(&sw);
	SPI_finish();

	initStringInfo(&buf);
	if (have)
		appendStringInfo(&buf, "{\"conflicts\": " UINT64_FORMAT
						 ", \"quota_refusals\": " UINT64_FORMAT
						 ", \"webhooks_refused\": " UINT64_FORMAT "}",
						 counters[RS_STAT_CONFLICTS],
						 counters[RS_STAT_QUOTA_REFUSALS],
						 counters[RS_STAT_WEBHOOKS_REFUSED]);
	else
		appendStringInfoString(&buf, "{\"conflicts\": null, \"quota_refusals\": null, \"webhooks_refused\": null}");
	PG_RETURN_DATUM(DirectFunctionCall2(jsonb_concat,
										JsonbPGetDatum(tables),
										DirectFunctionCall1(jsonb_in,
															CStringGetDatum(buf.data))));
}
