/*-------------------------------------------------------------------------
 *
 * notify.h
 *	  Notifications of committed state changes: what is announced.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/notify.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_NOTIFY_H
#define RS_NOTIFY_H

#include "utils/uuid.h"

/*
 * The channel of an operator's change of a shared row (a plan's limit, an
 * organization): one notification for every user it moves, none per user.
 */
#define RS_BROADCAST_CHANNEL	"roastr_state_broadcast"

/* setup, from _PG_init: a setting and the transaction callbacks */
extern void rs_notify_init(void);

/* the trigger records a change for notification at commit */
extern void rs_notify_record(const pg_uuid_t *user, int64 version,
							 uint32 changed, uint32 named,
							 char *const *values);

/* a change of a shared row announces itself once, at commit */
extern void rs_notify_broadcast(const char *payload);

#endif							/* RS_NOTIFY_H */
