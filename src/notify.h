/*-------------------------------------------------------------------------
 *
 * notify.h
 *	  Notifications of committed state changes.
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

#include "lib/stringinfo.h"
#include "utils/uuid.h"

/* setup, from _PG_init: settings and transaction callbacks */
extern void rs_notify_init(void);
extern void rs_notify_shmem_request(void);
extern void rs_notify_shmem_startup(void);

/* the trigger records a change for notification at commit */
extern void rs_notify_record(const pg_uuid_t *user, int64 version,
							 uint32 changed, uint32 named,
							 char *const *values);

/* counters of the notifier rings, as JSON text (notify_stats) */
extern void rs_notify_stats(StringInfo buf);

#endif							/* RS_NOTIFY_H */
