/*-------------------------------------------------------------------------
 *
 * notifier.c
 *	  The background notifier: one per database, started on demand by the
 *	  first writer that queues a notification (notify_queue.c).
 *
 * It takes the committed entries of its database's ring in ring order and
 * sends them in one transaction of its own (synchronous_commit off: its
 * commits only publish hints), so a whole batch pays for NOTIFY's lock
 * once.  It exits after a few idle seconds, so it does not hold up DROP
 * DATABASE (which waits five seconds for other sessions), and the next
 * writer starts it again.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/notifier.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "notify_queue.h"

#define RS_IDLE_EXIT_MS			3000

PGDLLEXPORT void roastr_state_notifier_main(Datum main_arg);

/*
 * send_batch
 *		NOTIFY every notification of "ready" in one transaction.
 */
static void
send_batch(List *ready)
{
	ListCell   *lc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	foreach(lc, ready)
	{
		RsNotification *nt = (RsNotification *) lfirst(lc);

		Async_Notify(nt->channel, nt->payload);
	}
	CommitTransactionCommand();
	rs_queue_sent(list_length(ready));
}

/*
 * notifier_connect
 *		Connect to the slot's database and set the session up: deliver even
 *		while the database refuses new connections, never wait for a WAL
 *		flush.
 */
static void
notifier_connect(Oid dboid)
{
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid,
											  BGWORKER_BYPASS_ALLOWCONN);
	pgstat_report_appname("roastr_state notifier");
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * idle_timeout
 *		How long to sleep when there was nothing to send: briefly while a
 *		writer is committing ("blocked"), else half a second.  -1 when the
 *		notifier has been idle long enough and left its slot (the ring was
 *		empty, decided under the queue's lock).
 */
static long
idle_timeout(bool blocked, TimestampTz idle_since)
{
	if (blocked)
		return 1;				/* a writer is committing: look again soon */
	if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(),
								   RS_IDLE_EXIT_MS) &&
		rs_queue_leave_if_empty())
		return -1;
	return 500;
}

/*
 * roastr_state_notifier_main
 *		The background worker's entry point; main_arg is its slot.  Loops:
 *		send what the ring holds, else sleep on the latch writers set after
 *		committing, until idle or asked to shut down.
 */
void
roastr_state_notifier_main(Datum main_arg)
{
	Oid			dboid;
	TimestampTz idle_since;
	MemoryContext batch_cxt;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* claim the slot, unless another notifier already serves it */
	if (!rs_queue_attach(DatumGetInt32(main_arg), &dboid))
		proc_exit(0);
	notifier_connect(dboid);

	batch_cxt = AllocSetContextCreate(TopMemoryContext, "roastr_state notifier",
									  ALLOCSET_DEFAULT_SIZES);
	idle_since = GetCurrentTimestamp();

	while (!ShutdownRequestPending)
	{
		bool		blocked;
		List	   *ready;
		MemoryContext old;
		long		timeout;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(batch_cxt);
		ready = rs_queue_take(&blocked);
		MemoryContextSwitchTo(old);
		if (ready != NIL)
		{
			send_batch(ready);
			idle_since = GetCurrentTimestamp();
		}
		MemoryContextReset(batch_cxt);
		if (ready != NIL)
			continue;

		timeout = idle_timeout(blocked, idle_since);
		if (timeout < 0)
			break;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		/* absorb ProcSignalBarriers (DROP DATABASE waits for them) */
		CHECK_FOR_INTERRUPTS();
		if (!blocked && !rs_queue_is_empty())
			idle_since = GetCurrentTimestamp();
	}
	proc_exit(0);
}
