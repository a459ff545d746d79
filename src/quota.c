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
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "roastr_state.h"

/* The most one call may consume; larger is a mistake, not a quota. */
#define RS_MAX_CONSUME		100000
#define RS_MAX_KEY_CHARS	200

static SPIPlanPtr consume_plan = NULL;
static SPIPlanPtr key_select_plan = NULL;
static SPIPlanPtr key_insert_plan = NULL;
static SPIPlanPtr key_prune_plan = NULL;

static void
prepare_plans(void)
{
	Oid			t4[4] = {UUIDOID, INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Oid			t2[2] = {UUIDOID, TEXTOID};
	Oid			t4k[4] = {UUIDOID, TEXTOID, INT4OID, JSONBOID};

	if (key_prune_plan != NULL)
		return;
	consume_plan = rs_prepare_kept(
								   "UPDATE roastr_state.state SET monthly_roasts_used = $2, "
								   "usage_period_start = $3, usage_period_end = $4 "
								   "WHERE user_id OPERATOR(pg_catalog.=) $1",
								   4, t4);
	key_select_plan = rs_prepare_kept(
									  "SELECT n, result FROM roastr_state.consumptions "
									  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
									  "AND idempotency_key OPERATOR(pg_catalog.=) $2",
									  2, t2);
	key_insert_plan = rs_prepare_kept(
									  "INSERT INTO roastr_state.consumptions (user_id, idempotency_key, n, result) "
									  "VALUES ($1, $2, $3, $4)",
									  4, t4k);
	key_prune_plan = rs_prepare_kept(
									 "DELETE FROM roastr_state.consumptions "
									 "WHERE user_id OPERATOR(pg_catalog.=) $1 "
									 "AND idempotency_key OPERATOR(pg_catalog.<>) $2 "
									 "AND created_at OPERATOR(pg_catalog.<) "
									 "(pg_catalog.now() OPERATOR(pg_catalog.-) interval '24 hours')",
									 2, t2);
}

static Jsonb *
build_result(bool allowed, int32 used, const RsEffective *eff)
{
	JsonbParseState *js = NULL;
	JsonbValue *res;

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	jb_key(&js, "allowed");
	jb_bool(&js, allowed);
	jb_key(&js, "monthly_roasts_used");
	jb_int64(&js, used);
	jb_key(&js, "monthly_roasts_limit");
	if (eff->limit_null)
		jb_null(&js);
	else
		jb_int64(&js, eff->limit);
	jb_key(&js, "remaining_roasts");
	if (eff->limit_null)
		jb_null(&js);
	else
		jb_int64(&js, Max(eff->limit - used, 0));
	jb_key(&js, "reset_date");
	jb_timestamptz(&js, eff->period_end);
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

PG_FUNCTION_INFO_V1(roastr_state_consume_roasts);

/*
 * roastr_state.consume_roasts(user_id uuid, n int DEFAULT 1,
 *		idempotency_key text DEFAULT NULL) -> jsonb
 *		{allowed, monthly_roasts_used, monthly_roasts_limit,
 *		remaining_roasts, reset_date}.  Running out is allowed = false,
 *		with nothing consumed.
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
	UserState	st;
	RsEffective eff;
	bool		allowed;
	int32		used;
	Jsonb	   *result = NULL;
	int			rc;

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
	prepare_plans();

	/* lock the row: from here on, nobody else changes this user */
	if (!rs_read_state(&user, &st, cxt, false, true))
		rs_no_state(&user);

	if (key != NULL)
	{
		Datum		args[2];
		bool		isnull;

		args[0] = UUIDPGetDatum(&user);
		args[1] = PointerGetDatum(key);
		rc = SPI_execute_plan(key_select_plan, args, NULL, false, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not read consumption: %s", SPI_result_code_string(rc));
		if (SPI_processed == 1)
		{
			int32		first_n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
															  SPI_tuptable->tupdesc, 1, &isnull));
			Datum		res = SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 2, &isnull);
			MemoryContext old;

			if (first_n != n)
				ereport(ERROR,
						errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("idempotency_key was already used to consume %d roasts", first_n),
						errhint("Use a new idempotency_key for every distinct consumption."));
			old = MemoryContextSwitchTo(cxt);
			result = DatumGetJsonbPCopy(res);
			MemoryContextSwitchTo(old);
		}
	}

	if (result == NULL)
	{
		rs_settle(&user, &st, cxt);
		rs_effective(&st, GetCurrentTransactionStartTimestamp(), &eff);

		allowed = eff.limit_null || (int64) eff.used + n <= (int64) eff.limit;
		used = eff.used;
		if (allowed && (int64) eff.used + n > PG_INT32_MAX)
			ereport(ERROR,
					errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					errmsg("monthly_roasts_used would exceed %d", PG_INT32_MAX));
		if (allowed)
		{
			Datum		args[4];

			used = eff.used + n;
			args[0] = UUIDPGetDatum(&user);
			args[1] = Int32GetDatum(used);
			args[2] = TimestampTzGetDatum(eff.period_start);
			args[3] = TimestampTzGetDatum(eff.period_end);
			rc = rs_trigger_execute(consume_plan, args, NULL, &user, 0, &st,
									NULL);
			if (rc != SPI_OK_UPDATE || SPI_processed != 1)
				elog(ERROR, "could not record consumption");
		}

		{
			MemoryContext old = MemoryContextSwitchTo(cxt);

			result = build_result(allowed, used, &eff);
			MemoryContextSwitchTo(old);
		}

		if (key != NULL)
		{
			Datum		args[4];

			args[0] = UUIDPGetDatum(&user);
			args[1] = PointerGetDatum(key);
			rc = SPI_execute_plan(key_prune_plan, args, NULL, false, 0);
			if (rc != SPI_OK_DELETE)
				elog(ERROR, "could not prune consumptions");
			args[2] = Int32GetDatum(n);
			args[3] = JsonbPGetDatum(result);
			rc = SPI_execute_plan(key_insert_plan, args, NULL, false, 0);
			if (rc != SPI_OK_INSERT)
				elog(ERROR, "could not record consumption key");
		}
	}

	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}
