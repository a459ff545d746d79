/*-------------------------------------------------------------------------
 *
 * usage.h
 *	  What a user's stored state means at a given moment: the effective
 *	  plan after trials and cancellations, the usage period, the limit and
 *	  what is left; and the subscription status lifecycle.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/usage.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_USAGE_H
#define RS_USAGE_H

#include "user_state.h"

typedef struct RsEffective
{
	bool		trial_expired;	/* status trial, trial end passed */
	bool		cancel_ended;	/* status canceled, paid period over */
	const char *plan;			/* effective plan */
	const char *status;			/* effective status */
	bool		is_free;
	bool		limit_null;		/* unlimited */
	int32		limit;
	int64		limits_stamp;	/* change stamp of the effective plan's row */
	TimestampTz period_start;	/* current usage period */
	TimestampTz period_end;
	bool		rolled_over;	/* the stored count belongs to a past period */
	int32		used;			/* in the current period */
	bool		trial_days_null;
	int32		trial_days;
} RsEffective;

extern void rs_effective(const RsUserState *st, TimestampTz now,
						 RsEffective *eff);
extern bool rs_needs_settle(const RsUserState *st, const RsEffective *eff);
extern bool rs_shared_pending(const RsUserState *st, const RsEffective *eff);
extern bool rs_status_move_allowed(const char *from, const char *to);
extern bool rs_plan_has_tolerance(const char *plan);

#endif							/* RS_USAGE_H */
