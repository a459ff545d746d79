/*-------------------------------------------------------------------------
 *
 * user_state.h
 *	  A user's state as read in one snapshot: the state row, the persona
 *	  ciphertext, the plan limits, the current organization and the
 *	  wrapped data key.
 *
 * read.c fills it; usage.c says what it means at a moment; shown.c shows
 * it; the write paths (patch.c, quota.c, trigger.c) decide on it.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/user_state.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_USER_STATE_H
#define RS_USER_STATE_H

#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "fields.h"

typedef struct RsUserState
{
	pg_uuid_t	user_id;
	int64		version;
	TimestampTz updated_at;
	RsFieldLog	log;
	Datum		vals[RS_NFIELDS];
	bool		nulls[RS_NFIELDS];
	bool		plan_limit_null;	/* NULL limit: unlimited */
	int32		plan_limit;
	bool		free_limit_null;
	int32		free_limit;
	int64		plan_stamp;		/* change stamps of the stored plan's row */
	int64		free_stamp;		/* ... and of the free plan's (0.7.0) */
	int64		org_stamp;		/* of the current organization and
								 * membership: 0 none, -1 gone (see
								 * shared.h) */
	bool		org_null;		/* no current organization (or not a member) */
	char	   *org_name;
	char	   *org_slug;
	char	   *org_role;
	bool		has_dek;		/* roastr_state.user_keys row */
	uint32		dek_keygen;
	uint32		dek_master_id;
	bytea	   *dek_wrapped;
} RsUserState;

#endif							/* RS_USER_STATE_H */
