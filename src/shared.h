/*-------------------------------------------------------------------------
 *
 * shared.h
 *	  The shared rows a user's state is computed from -- a plan's limit,
 *	  the current organization and the user's membership in it -- their
 *	  change stamps, and the broadcast of a change of one.
 *
 * The design is at the top of shared.c.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/shared.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_SHARED_H
#define RS_SHARED_H

#include "utils/uuid.h"

#include "user_state.h"

/* The organization stamp of a state without a current organization. */
#define RS_ORG_STAMP_NONE	INT64CONST(0)
/* ... of one naming an organization that is deleted, or that the user is
 * no longer a member of (the state shows none; settling clears it). */
#define RS_ORG_STAMP_GONE	INT64CONST(-1)

extern void rs_shared_limits(RsUserState *st);
extern int64 rs_shared_org_stamp(const pg_uuid_t *org, const pg_uuid_t *user);
extern void rs_shared_broadcast_org(const pg_uuid_t *org, const char *change);

#endif							/* RS_SHARED_H */
