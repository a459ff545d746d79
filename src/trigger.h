/*-------------------------------------------------------------------------
 *
 * trigger.h
 *	  The state trigger's API for the C write paths: run an UPDATE of one
 *	  user's row, telling the trigger what the caller already knows, and
 *	  learn what the trigger did.
 *
 * The rules the trigger applies to every write (version check, bump,
 * change log, notification) are described at the top of trigger.c.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/trigger.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_TRIGGER_H
#define RS_TRIGGER_H

#include "executor/spi.h"

#include "user_state.h"

/* What the caller of an UPDATE tells the trigger. */
typedef struct RsTriggerCall
{
	const pg_uuid_t *user;		/* the user whose row the UPDATE writes */
	uint32		persona_changed;	/* persona text the caller has just
									 * written (it lives in another table) */
	uint32		validated;		/* fields whose new values the caller has
								 * validated (rs_validate_value) */
	const RsUserState *st;		/* the state read under the row lock, whose
								 * plan limits the trigger may use, or NULL */
} RsTriggerCall;

/* What the trigger did to the row. */
typedef struct RsLastApply
{
	bool		valid;			/* false: the trigger did not run */
	int64		old_version;
	int64		new_version;
	uint32		changed;		/* bitmask of field ids */
} RsLastApply;

extern uint64 rs_trigger_execute(SPIPlanPtr plan, Datum *args,
								 const char *nulls, const RsTriggerCall *call,
								 int expect, const char *what,
								 RsLastApply *applied);

#endif							/* RS_TRIGGER_H */
