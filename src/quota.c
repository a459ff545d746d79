/*-------------------------------------------------------------------------
 *
 * quota.c
 *	  consume_roasts: take roasts from the current usage period, atomically,
 *	  never more than the plan allows.
 *
 * The user's row is locked first (FOR NO KEY UPDATE), then read; under
 * that lock nothing else can consume, change the plan or settle the
 * period, so the decision "does n fit" and the write cannot be separated
 * by another transaction, whatever the concurrency.  Pending time-driven
 * moves (a rolled-over period, an expired trial) are written down first,
 * so the consumption lands in the right period under the right plan.  The
 * write goes through the state trigger: version bump, change log
 * (usage.monthly_roasts_used, and the derived usage.remaining_roasts) and a
 * usage_update notification.
 *
 * An idempotency key makes a retried call return the first answer (also an
 * "allowed": false one) without consuming again.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/quota.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "access.h"
#include "fields.h"
#include "json_util.h"
#include "read.h"
#include "spi_util.h"
#include "stats.h"
#include "trigger.h"
#include "usage.h"
#include "user_state.h"

/* The most one call may consume; larger is a mistake, not a quota. */
#define RS_MAX_CONSUME		100000
#define RS_MAX_KEY_CHARS	200

/*
 * build_result
 *		The answer of consume_roasts: {allowed, monthly_roasts_used,
 *		monthly_roasts_limit, remaining_roasts, reset_date}.
 */
static Jsonb *
build_result(bool allowed, int32 used, const RsEffective *eff)
{
	JsonbParseState *js = NULL;
	JsonbValue *res;

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	rs_jb_key(&js, "allowed");
	rs_jb_bool(&js, allowed);
	rs_jb_key(&js, "monthly_roasts_used");
	rs_jb_int64(&js, used);
	rs_jb_key(&js, "monthly_roasts_limit");
	if (eff->limit_null)
		rs_jb_null(&js);
	else
		rs_jb_int64(&js, eff->limit);
	rs_jb_key(&js, "remaining_roasts");
	if (eff->limit_null)
		rs_jb_null(&js);
	else
		rs_jb_int64(&js, Max(eff->limit - used, 0));
	rs_jb_key(&js, "reset_date");
	rs_jb_timestamptz(&js, eff->period_end);
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * replay_consumption
 *		The stored answer of an earlier call with idempotency key "key", or
 *		NULL when there is none (ERROR when that call consumed another
 *		number).  Inside SPI, as the owner, under the user's row lock; the
 *		answer is copied into "cxt".
 */
static Jsonb *
replay_consumption(const pg_uuid_t *user, text *key, int32 n,
				   MemoryContext cxt)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[2] = {UUIDOID, TEXTOID};
	Datum		args[2];
	bool		isnull;
	int32		first_n;
	Datum		res;
	MemoryContext old;
	Jsonb	   *result;

	args[0] = UUIDPGetDatum(user);
	args[1] = PointerGetDatum(key);
	if (rs_spi_run(rs_spi_kept(&plan,
							   "SELECT n, result FROM roastr_state.consumptions "
							   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
							   "AND idempotency_key OPERATOR(pg_catalog.=) $2",
							   2, types),
				   args, NULL, false, 1, SPI_OK_SELECT,
				   "read consumption") != 1)
		return NULL;
	first_n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	res = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
						&isnull);
	if (first_n != n)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("idempotency_key was already used to consume %d roasts", first_n),
				errhint("Use a new idempotency_key for every distinct consumption."));
	old = MemoryContextSwitchTo(cxt);
	result = DatumGetJsonbPCopy(res);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * consume
 *		Settle the state, then take n roasts if they fit the current period
 *		of the effective plan, through the trigger (version bump, change log,
 *		notification).  Returns the answer, built in "cxt".  Inside SPI, as
 *		the owner, under the user's row lock (st was read under it).
 */
static Jsonb *
consume(const pg_uuid_t *user, RsUserState *st, int32 n, MemoryContext cxt)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[4] = {UUIDOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	RsEffective eff;
	bool		allowed;
	int32		used;
	MemoryContext old;
	Jsonb	   *result;

	rs_settle(user, st, cxt);
	rs_effective(st, GetCurrentTransactionStartTimestamp(), &eff);

	allowed = eff.limit_null || (int64) eff.used + n <= (int64) eff.limit;
	if (!allowed)
		rs_stats_count(RS_STAT_QUOTA_REFUSALS);
	used = eff.used;
	if (allowed && (int64) eff.used + n > PG_INT32_MAX)
		ereport(ERROR,
				errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				errmsg("monthly_roasts_used would exceed %d", PG_INT32_MAX));
	if (allowed)
	{
		Datum		args[4];
		RsTriggerCall call = {0};

		used = eff.used + n;
		args[0] = UUIDPGetDatum(user);
		args[1] = Int32GetDatum(used);
		args[2] = TimestampTzGetDatum(eff.period_start);
		args[3] = TimestampTzGetDatum(eff.period_end);
		call.user = user;
		call.st = st;
		if (rs_trigger_execute(rs_spi_kept(&plan,
										   "UPDATE roastr_state.state SET monthly_roasts_used = $2, "
										   "usage_period_start = $3, usage_period_end = $4 "
										   "WHERE user_id OPERATOR(pg_catalog.=) $1",
										   4, types),
							   args, NULL, &call, SPI_OK_UPDATE,
							   "record consumption", NULL) != 1)
			elog(ERROR, "could not record consumption");
	}

	old = MemoryContextSwitchTo(cxt);
	result = build_result(allowed, used, &eff);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * record_consumption
 *		Keep the answer under its idempotency key for 24 hours (pruning the
 *		user's older keys).  Inside SPI, as the owner, under the row lock.
 */
static void
record_consumption(const pg_uuid_t *user, text *key, int32 n, Jsonb *result)
{
	static SPIPlanPtr prune = NULL;
	static SPIPlanPtr insert = NULL;
	Oid			t2[2] = {UUIDOID, TEXTOID};
	Oid			t4[4] = {UUIDOID, TEXTOID, INT4OID, JSONBOID};
	Datum		args[4];

	args[0] = UUIDPGetDatum(user);
	args[1] = PointerGetDatum(key);
	rs_spi_run(rs_spi_kept(&prune,
						   "DELETE FROM roastr_state.consumptions "
						   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
						   "AND idempotency_key OPERATOR(pg_catalog.<>) $2 "
						   "AND created_at OPERATOR(pg_catalog.<) "
						   "(pg_catalog.now() OPERATOR(pg_catalog.-) interval '24 hours')",
						   2, t2),
			   args, NULL, false, 0, SPI_OK_DELETE, "prune consumptions");
	args[2] = Int32GetDatum(n);
	args[3] = JsonbPGetDatum(result);
	rs_spi_run(rs_spi_kept(&insert,
						   "INSERT INTO roastr_state.consumptions (user_id, idempotency_key, n, result) "
						   "VALUES ($1, $2, $3, $4)",
						   4, t4),
			   args, NULL, false, 0, SPI_OK_INSERT,
			   "record consumption key");
}

PG_FUNCTION_INFO_V1(roastr_state_consume_roasts);

/*
 * roastr_state.consume_roasts(user_id uuid, n int DEFAULT 1,
 *		idempotency_key text DEFAULT NULL) -> jsonb
 *		{allowed, monthly_roasts_used, monthly_roasts_limit,
 *		remaining_roasts, reset_date}.  Running out is allowed = false,
 *		with nothing consumed.  Steps: check the arguments, lock and read
 *		the row, answer a retried key from its record, else consume and
 *		record the answer under the key.
 */
Datum
roastr_state_consume_roasts(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	int32		n;
	text	   *key = NULL;
	MemoryContext cxt = CurrentMemoryContext;
	RsUserSwitch sw;
	RsUserState st;
	Jsonb	   *result = NULL;

	rs_resolve_target(fcinfo, 0, &caller, &user);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("n must not be null"));
	n = PG_GETARG_INT32(1);
	if (n < 1 || n > RS_MAX_CONSUME)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("n must be between 1 and %d", RS_MAX_CONSUME));
	if (!PG_ARGISNULL(2))
	{
		key = PG_GETARG_TEXT_PP(2);
		rs_require_label(key, "idempotency_key", RS_MAX_KEY_CHARS);
	}

	SPI_connect();
	rs_become_owner(&sw);

	/* lock the row: from here on, nobody else changes this user */
	if (!rs_read_state(&user, &st, cxt, false, true))
		rs_no_state(&user);
	if (key != NULL)
		result = replay_consumption(&user, key, n, cxt);
	if (result == NULL)
	{
		result = consume(&user, &st, n, cxt);
		if (key != NULL)
			record_consumption(&user, key, n, result);
	}

	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}
