/*-------------------------------------------------------------------------
 *
 * usage.c
 *	  What a user's stored state means at a given moment: the effective plan
 *	  after trials and cancellations, the current usage period, the limit
 *	  and what is left; and the subscription status lifecycle.
 *
 * Time moves some of these without anybody writing: a trial ends, a
 * canceled subscription reaches the end of its paid period, a usage period
 * rolls over.  Reads compute the effective values from the stored ones, so
 * they are right without any job.  Because clients sync by version, such a
 * move must also become a versioned change: the first writable call that
 * finds one pending (rs_needs_settle) writes it down through the usual
 * trigger (read.c, rs_settle), which bumps the version, logs the derived
 * fields and notifies.
 *
 * Operators move values too, for many users at once: a plan's monthly limit,
 * an organization's name, a membership's role, a deleted organization.
 * Their transaction writes only the shared row, with a new change stamp
 * (shared.c); each state row records the stamps its change log shows
 * (usage.limits_seen, organization.seen).  A state whose stamp differs from
 * the shared row's has a shared move pending (rs_shared_pending), which is
 * computed and settled exactly like a time-driven one.
 *
 * Rules (README, "Plans and usage"):
 *	- status trial whose trial_ends_at has passed: plan free, status
 *	  canceled;
 *	- status canceled on a paid plan once current_period_end has passed (or
 *	  when there is none): plan free;
 *	- the usage period is the billing period [current_period_start,
 *	  current_period_end) of a paid plan when now is inside it, otherwise
 *	  the calendar month in UTC;
 *	- the stored count belongs to the period ending at usage_period_end; it
 *	  is 0 once that moment has passed.  A plan change inside a period keeps
 *	  the count and applies the new limit.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/usage.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/datetime.h"

#include "fields.h"
#include "usage.h"

/*
 * month_bounds
 *		The calendar month (UTC) that contains "now".
 */
static void
month_bounds(TimestampTz now, TimestampTz *start, TimestampTz *end)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(now, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				errmsg("timestamp out of range"));
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (tm2timestamp(&tm, 0, NULL, start) != 0)
		ereport(ERROR,
				errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				errmsg("timestamp out of range"));
	if (++tm.tm_mon > MONTHS_PER_YEAR)
	{
		tm.tm_mon = 1;
		tm.tm_year++;
	}
	if (tm2timestamp(&tm, 0, NULL, end) != 0)
		ereport(ERROR,
				errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				errmsg("timestamp out of range"));
}

/* A timestamp field of "st", or "dflt" when it is null. */
static TimestampTz
ts_or(const RsUserState *st, RsFieldId f, TimestampTz dflt)
{
	return st->nulls[f] ? dflt : DatumGetTimestampTz(st->vals[f]);
}

/*
 * rs_effective
 *		Compute the meaning of "st" at "now".  Pure: reads nothing else.
 */
void
rs_effective(const RsUserState *st, TimestampTz now, RsEffective *eff)
{
	bool		in_trial = rs_text_equals(st->vals[F_SUB_STATUS],
										  st->nulls[F_SUB_STATUS], "trial");
	bool		canceled = rs_text_equals(st->vals[F_SUB_STATUS],
										  st->nulls[F_SUB_STATUS], "canceled");
	bool		stored_free = rs_text_equals(st->vals[F_SUB_PLAN],
											 st->nulls[F_SUB_PLAN], "free");
	TimestampTz pend = ts_or(st, F_SUB_PERIOD_END, DT_NOBEGIN);

	memset(eff, 0, sizeof(RsEffective));
	eff->trial_expired = in_trial && !st->nulls[F_SUB_TRIAL_ENDS_AT] &&
		DatumGetTimestampTz(st->vals[F_SUB_TRIAL_ENDS_AT]) <= now;
	eff->cancel_ended = canceled && !stored_free &&
		(st->nulls[F_SUB_PERIOD_END] || pend <= now);

	if (eff->trial_expired)
	{
		eff->plan = "free";
		eff->status = "canceled";
	}
	else
	{
		eff->plan = eff->cancel_ended ? "free" :
			TextDatumGetCString(st->vals[F_SUB_PLAN]);
		eff->status = TextDatumGetCString(st->vals[F_SUB_STATUS]);
	}
	eff->is_free = strcmp(eff->plan, "free") == 0;

	if (eff->is_free)
	{
		eff->limit_null = st->free_limit_null;
		eff->limit = st->free_limit;
		eff->limits_stamp = st->free_stamp;
	}
	else
	{
		eff->limit_null = st->plan_limit_null;
		eff->limit = st->plan_limit;
		eff->limits_stamp = st->plan_stamp;
	}

	/* the usage period */
	if (!eff->is_free && !st->nulls[F_SUB_PERIOD_START] &&
		!st->nulls[F_SUB_PERIOD_END] &&
		DatumGetTimestampTz(st->vals[F_SUB_PERIOD_START]) <= now && now < pend)
	{
		eff->period_start = DatumGetTimestampTz(st->vals[F_SUB_PERIOD_START]);
		eff->period_end = pend;
	}
	else
		month_bounds(now, &eff->period_start, &eff->period_end);

	/* the count is for the period ending at usage_period_end */
	eff->used = DatumGetInt32(st->vals[F_USAGE_USED]);
	eff->rolled_over = st->nulls[F_USAGE_PERIOD_END] ?
		(eff->used > 0 && !st->nulls[F_USAGE_PERIOD_START] &&
		 DatumGetTimestampTz(st->vals[F_USAGE_PERIOD_START]) < eff->period_start) :
		DatumGetTimestampTz(st->vals[F_USAGE_PERIOD_END]) <= now;
	if (eff->rolled_over)
		eff->used = 0;

	eff->trial_days_null = true;
	if (in_trial && !eff->trial_expired && !st->nulls[F_SUB_TRIAL_ENDS_AT])
	{
		int64		left = DatumGetTimestampTz(st->vals[F_SUB_TRIAL_ENDS_AT]) - now;

		eff->trial_days_null = false;
		eff->trial_days = (int32) ((left + USECS_PER_DAY - 1) / USECS_PER_DAY);
	}
}

/*
 * rs_needs_settle
 *		Whether time, or an operator's change of a shared row, has moved
 *		the state in a way that is not yet a versioned change.
 */
bool
rs_needs_settle(const RsUserState *st, const RsEffective *eff)
{
	return eff->trial_expired || eff->cancel_ended ||
		(eff->rolled_over && DatumGetInt32(st->vals[F_USAGE_USED]) != 0) ||
		rs_shared_pending(st, eff);
}

/*
 * rs_shared_pending
 *		Whether an operator's change of a shared row is not yet a versioned
 *		change of this state: the effective plan's limit stamp, or the
 *		current organization's, differs from the one the state's change log
 *		shows.  Never before the schema has the seen columns (0.7.0): the
 *		older schema's changes write every state row themselves.
 */
bool
rs_shared_pending(const RsUserState *st, const RsEffective *eff)
{
	if (st->nulls[F_LIMITS_SEEN] || st->nulls[F_ORG_SEEN])
		return false;
	return DatumGetInt64(st->vals[F_LIMITS_SEEN]) != eff->limits_stamp ||
		DatumGetInt64(st->vals[F_ORG_SEEN]) != st->org_stamp;
}

/*
 * rs_status_move_allowed
 *		The subscription lifecycle: trial -> active, past_due or canceled;
 *		active -> past_due or canceled; past_due -> active or canceled;
 *		canceled -> active or trial (a new subscription).  Staying put is
 *		always allowed.  Callers apply it only within one paid
 *		subscription: a change of plan from free, or of the Polar
 *		subscription id, starts a new lifecycle.
 */
bool
rs_status_move_allowed(const char *from, const char *to)
{
	static const char *const moves[][2] = {
		{"trial", "active"}, {"trial", "past_due"}, {"trial", "canceled"},
		{"active", "past_due"}, {"active", "canceled"},
		{"past_due", "active"}, {"past_due", "canceled"},
		{"canceled", "active"}, {"canceled", "trial"},
	};

	if (strcmp(from, to) == 0)
		return true;
	for (int i = 0; i < (int) lengthof(moves); i++)
		if (strcmp(moves[i][0], from) == 0 && strcmp(moves[i][1], to) == 0)
			return true;
	return false;
}

/*
 * rs_plan_has_tolerance
 *		Whether an effective plan may hold persona.tolerance (pro and plus);
 *		below them the field reads as null and cannot be written (PT402).
 */
bool
rs_plan_has_tolerance(const char *plan)
{
	return strcmp(plan, "pro") == 0 || strcmp(plan, "plus") == 0;
}
