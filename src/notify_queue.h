/*-------------------------------------------------------------------------
 *
 * notify_queue.h
 *	  The notification queue: a per-database ring in shared memory, drained
 *	  by the background notifier, or an ordinary NOTIFY.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/notify_queue.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_NOTIFY_QUEUE_H
#define RS_NOTIFY_QUEUE_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

/* One notification: a channel and its payload. */
typedef struct RsNotification
{
	char	   *channel;
	char	   *payload;
} RsNotification;

/* setup, from _PG_init */
extern void rs_queue_init(void);
extern void rs_queue_shmem_request(void);
extern void rs_queue_shmem_startup(void);

/* the writer's side, at PRE_COMMIT */
extern void rs_queue_send(RsNotification *out, int n);

/* the notifier's side (notifier.c) */
extern bool rs_queue_attach(int slotno, Oid *dboid);
extern List *rs_queue_take(bool *blocked);
extern void rs_queue_sent(uint64 n);
extern bool rs_queue_is_empty(void);
extern bool rs_queue_leave_if_empty(void);

/* counters of the rings, as a JSON object (notify_stats) */
extern void rs_queue_stats(StringInfo buf);

#endif							/* RS_NOTIFY_QUEUE_H */
