/*-------------------------------------------------------------------------
 *
 * access.h
 *	  Who is calling, whose state they may touch, and running table access
 *	  as the extension owner.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/access.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_ACCESS_H
#define RS_ACCESS_H

#include "fmgr.h"
#include "utils/uuid.h"

/* The caller: the service, a user (the JWT subject), both or neither. */
typedef struct RsCaller
{
	bool		is_service;
	bool		has_user;
	pg_uuid_t	user_id;
} RsCaller;

/* What rs_become_owner saved, for rs_restore_user. */
typedef struct RsUserSwitch
{
	Oid			save_userid;
	int			save_sec_context;
} RsUserSwitch;

/* setup, from _PG_init: defines roastr_state.service_role */
extern void rs_access_init(void);

extern void rs_get_caller(RsCaller *caller);
extern bool rs_caller_is_service(void);
extern void rs_authorize(const RsCaller *caller, bool user_isnull,
						 Datum user_arg, pg_uuid_t *target);
extern void rs_resolve_target(FunctionCallInfo fcinfo, int argno,
							  RsCaller *caller, pg_uuid_t *target);
extern void rs_require_service(const RsCaller *caller, const char *funcname);
extern bool rs_channel_allowed(const RsCaller *caller, const char *channel);

extern void rs_become_owner(RsUserSwitch *sw);
extern void rs_restore_user(RsUserSwitch *sw);

#endif							/* RS_ACCESS_H */
