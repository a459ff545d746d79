/*-------------------------------------------------------------------------
 *
 * read.h
 *	  Reading a user's state in one snapshot, and settling it: writing down
 *	  what time has moved as a versioned change.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/read.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_READ_H
#define RS_READ_H

#include "utils/palloc.h"

#include "user_state.h"

extern bool rs_lock_state(const pg_uuid_t *user);
extern bool rs_read_state(const pg_uuid_t *user, RsUserState *st,
						  MemoryContext cxt, bool read_only, bool for_update);
extern void rs_settle(const pg_uuid_t *user, RsUserState *st,
					  MemoryContext cxt);
extern void rs_read_settled(const pg_uuid_t *user, RsUserState *st);
extern void rs_no_state(const pg_uuid_t *user) pg_attribute_noreturn();

#endif							/* RS_READ_H */
