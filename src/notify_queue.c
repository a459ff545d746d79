/*-------------------------------------------------------------------------
 *
 * notify_queue.c
 *	  The notification queue: how the payloads of a committing transaction
 *	  are sent -- through a per-database ring in shared memory to the
 *	  background notifier, or by an ordinary NOTIFY.
 *
 * PostgreSQL's NOTIFY takes a cluster-wide lock at commit and holds it
 * through the commit's WAL flush, so notifying transactions cannot share
 * flushes.  When commits wait for that flush (synchronous_commit on, the
 * default) and the library is preloaded, writers therefore do not NOTIFY
 * themselves: at PRE_COMMIT they append their payloads, tagged with their
 * top-level XID, to a per-database ring in shared memory, and once they
 * have committed they set the latch of that database's notifier
 * (notifier.c), a background worker started on demand.  The notifier takes
 * entries in ring order (rs_queue_take), waits while an entry's XID is
 * still running, drops entries whose transaction aborted, and sends the
 * committed ones in one transaction of its own.  Ring order is commit order
 * for any one user (writers of a user serialize on its row lock), so a
 * user's notifications arrive in version order.  When commits do not wait
 * for a flush (synchronous_commit off) the lock is held only briefly and
 * the hand-off would cost more than it saves, so the default mode "auto"
 * notifies directly then (measured: BENCHMARKS.md).
 *
 * When there is no shared memory (library not preloaded), no worker can be
 * started, the ring is full, or roastr_state.notify_mode = direct, the
 * writer falls back to an ordinary NOTIFY inside its transaction: slower
 * under concurrency, never lost.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/notify_queue.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "notify_queue.h"

#define RS_NOTIFY_SLOTS			4
#define RS_START_RETRY_MS		1000	/* a start not confirmed by then
										 * failed */
#define RS_BATCH_BYTES			(256 * 1024)
#define RS_ENTRY_ALIGN			16
#define RS_ENTRY_PAD			1	/* flag: filler up to the ring's end */

/* roastr_state.notify_mode */
typedef enum RsNotifyMode
{
	RS_NOTIFY_AUTO,				/* worker when commits wait for a flush */
	RS_NOTIFY_WORKER,
	RS_NOTIFY_DIRECT
} RsNotifyMode;

static int	notify_mode = RS_NOTIFY_AUTO;

/* roastr_state.notify_queue_size, in kB */
static int	notify_queue_kb = 1024;

/* the notifier to wake once this transaction has committed */
static Latch *wake_after_commit = NULL;

/* ---------------------------------------------------------------------
 * Shared memory
 * ---------------------------------------------------------------------
 */
typedef struct RsRingEntry
{
	uint32		len;			/* whole entry, header included, aligned */
	uint32		flags;
	TransactionId xid;
	uint32		npairs;			/* channel\0payload\0 pairs that follow */
} RsRingEntry;

StaticAssertDecl(sizeof(RsRingEntry) == RS_ENTRY_ALIGN,
				 "ring entry header must be one alignment unit");

typedef struct RsNotifySlot
{
	Oid			dboid;			/* InvalidOid: free */
	Latch	   *worker_latch;	/* NULL: no notifier running */
	pid_t		worker_pid;
	TimestampTz start_requested;	/* 0: no start pending */
	uint64		head;			/* bytes ever written */
	uint64		tail;			/* bytes ever consumed */
	uint64		sent;			/* payload pairs sent */
	uint64		dropped;		/* entries of aborted transactions */
	char	   *ring;			/* in shared memory, after the slots */
} RsNotifySlot;

typedef struct RsNotifyShared
{
	LWLock	   *lock;
	uint32		ring_size;
	uint64		fallbacks;		/* writers that had to NOTIFY themselves */
	RsNotifySlot slots[RS_NOTIFY_SLOTS];
} RsNotifyShared;

static RsNotifyShared *shared = NULL;

/* the slot this process serves, when it is a notifier */
static int	my_slot = -1;

/* The size of one database's ring. */
static uint32
ring_size_bytes(void)
{
	return (uint32) notify_queue_kb * 1024;
}

/* The size of the shared memory: the slots, then the rings. */
static Size
shared_size(void)
{
	return add_size(MAXALIGN(sizeof(RsNotifyShared)),
					mul_size(RS_NOTIFY_SLOTS, ring_size_bytes()));
}

/*
 * rs_queue_shmem_request
 *		Ask for the shared memory and the lock (shmem_request_hook).
 */
void
rs_queue_shmem_request(void)
{
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("roastr_state", 1);
}

/*
 * rs_queue_shmem_startup
 *		Attach to the shared memory, setting it up the first time
 *		(shmem_startup_hook).
 */
void
rs_queue_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("roastr_state notify", shared_size(), &found);
	if (!found)
	{
		char	   *rings = (char *) shared + MAXALIGN(sizeof(RsNotifyShared));

		memset(shared, 0, sizeof(RsNotifyShared));
		shared->lock = &(GetNamedLWLockTranche("roastr_state"))->lock;
		shared->ring_size = ring_size_bytes();
		for (int i = 0; i < RS_NOTIFY_SLOTS; i++)
			shared->slots[i].ring = rings + (Size) i * shared->ring_size;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ---------------------------------------------------------------------
 * Writer side: hand payloads to the notifier, or NOTIFY directly
 * ---------------------------------------------------------------------
 */

/* NOTIFY every payload inside the current transaction. */
static void
send_direct(RsNotification *out, int n)
{
	for (int i = 0; i < n; i++)
		Async_Notify(out[i].channel, out[i].payload);
}

/*
 * register_notifier
 *		Start the notifier of slot "slotno" (this database); false when no
 *		background worker can be registered.
 */
static bool
register_notifier(int slotno)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "roastr_state");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "roastr_state_notifier_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "roastr_state notifier for database %u",
			 MyDatabaseId);
	snprintf(bgw.bgw_type, BGW_MAXLEN, "roastr_state notifier");
	bgw.bgw_main_arg = Int32GetDatum(slotno);
	bgw.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&bgw, NULL);
}

/*
 * build_entry
 *		A ring entry of the "n" notifications of transaction "xid", built
 *		locally (it is copied into the ring under the lock); *len gets its
 *		aligned length.
 */
static char *
build_entry(RsNotification *out, int n, TransactionId xid, uint32 *len)
{
	char	   *entry;
	char	   *p;

	*len = sizeof(RsRingEntry);
	for (int i = 0; i < n; i++)
		*len += strlen(out[i].channel) + strlen(out[i].payload) + 2;
	*len = TYPEALIGN(RS_ENTRY_ALIGN, *len);

	entry = palloc0(*len);
	((RsRingEntry *) entry)->len = *len;
	((RsRingEntry *) entry)->xid = xid;
	((RsRingEntry *) entry)->npairs = n;
	p = entry + sizeof(RsRingEntry);
	for (int i = 0; i < n; i++)
	{
		size_t		cl = strlen(out[i].channel) + 1;
		size_t		pl = strlen(out[i].payload) + 1;

		memcpy(p, out[i].channel, cl);
		p += cl;
		memcpy(p, out[i].payload, pl);
		p += pl;
	}
	return entry;
}

/*
 * find_slot
 *		This database's slot, or a free or idle one claimed for it; -1 when
 *		every slot serves another database.  The caller holds the lock
 *		exclusively.
 */
static int
find_slot(TimestampTz now)
{
	for (int i = 0; i < RS_NOTIFY_SLOTS; i++)
		if (shared->slots[i].dboid == MyDatabaseId)
			return i;
	for (int i = 0; i < RS_NOTIFY_SLOTS; i++)
	{
		RsNotifySlot *s = &shared->slots[i];
		bool		idle = s->worker_latch == NULL &&
		(s->start_requested == 0 ||
		 TimestampDifferenceExceeds(s->start_requested, now,
									RS_START_RETRY_MS));

		/*
		 * A free slot, an idle empty one, or one whose database is gone (its
		 * queued hints have nobody to go to).
		 */
		if (s->dboid == InvalidOid ||
			(idle && (s->head == s->tail ||
					  !SearchSysCacheExists1(DATABASEOID,
											 ObjectIdGetDatum(s->dboid)))))
		{
			s->dboid = MyDatabaseId;
			s->start_requested = 0;
			s->tail = s->head;
			return i;
		}
	}
	return -1;
}

/*
 * ring_append
 *		Copy "entry" (len bytes) to the head of "slot"'s ring, after a filler
 *		up to the ring's end when it would not fit there; false when the
 *		ring is full.  *entry_at gets the entry's position.  The caller holds
 *		the lock exclusively.
 */
static bool
ring_append(RsNotifySlot *slot, const char *entry, uint32 len,
			uint64 *entry_at)
{
	uint32		size = shared->ring_size;
	uint32		pos = slot->head % size;
	uint32		pad = (size - pos < len) ? size - pos : 0;

	if ((slot->head - slot->tail) + pad + len > size)
		return false;
	if (pad)
	{
		RsRingEntry *pe = (RsRingEntry *) (slot->ring + pos);

		pe->len = pad;
		pe->flags = RS_ENTRY_PAD;
		pe->xid = InvalidTransactionId;
		pe->npairs = 0;
		slot->head += pad;
		pos = 0;
	}
	*entry_at = slot->head;
	memcpy(slot->ring + pos, entry, len);
	slot->head += len;
	return true;
}

/*
 * cancel_entry
 *		No notifier can run: unless one already took the entry at
 *		"entry_at", turn it into filler.  True when cancelled (the caller
 *		then notifies directly).
 */
static bool
cancel_entry(RsNotifySlot *slot, uint64 entry_at)
{
	bool		cancelled = false;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	slot->start_requested = 0;
	if (slot->tail <= entry_at)
	{
		RsRingEntry *e = (RsRingEntry *) (slot->ring +
										  entry_at % shared->ring_size);

		e->flags = RS_ENTRY_PAD;
		cancelled = true;
	}
	LWLockRelease(shared->lock);
	return cancelled;
}

/*
 * enqueue
 *		Append one entry to this database's ring and wake its notifier,
 *		starting one if none runs or is starting.  False when that cannot
 *		be done; the caller then notifies directly.  The entry is written
 *		and the notifier looked up under one lock, so a notifier that
 *		leaves because the ring looked empty can never strand the entry.
 */
static bool
enqueue(RsNotification *out, int n, TransactionId xid)
{
	RsNotifySlot *slot;
	int			slotno;
	uint32		len;
	bool		need_start = false;
	Latch	   *latch;
	TimestampTz now = GetCurrentTimestamp();
	char	   *entry = build_entry(out, n, xid, &len);
	uint64		entry_at;

	if (len > shared->ring_size / 4)
		return false;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	slotno = find_slot(now);
	if (slotno < 0)
	{
		LWLockRelease(shared->lock);
		return false;
	}
	slot = &shared->slots[slotno];
	if (!ring_append(slot, entry, len, &entry_at))
	{
		LWLockRelease(shared->lock);
		return false;
	}
	latch = slot->worker_latch;
	if (latch == NULL &&
		(slot->start_requested == 0 ||
		 TimestampDifferenceExceeds(slot->start_requested, now,
									RS_START_RETRY_MS)))
	{
		slot->start_requested = now;
		need_start = true;
	}
	LWLockRelease(shared->lock);

	if (latch)
		wake_after_commit = latch;	/* woken by queue_xact_callback */
	else if (need_start && !register_notifier(slotno))
		return !cancel_entry(slot, entry_at);
	return true;
}

/*
 * rs_queue_send
 *		Send the "n" notifications of the committing transaction (called at
 *		PRE_COMMIT): through the ring to this database's notifier, or by
 *		NOTIFY in this transaction (see the top of the file for when).
 */
void
rs_queue_send(RsNotification *out, int n)
{
	TransactionId xid = GetTopTransactionIdIfAny();
	bool		use_worker;

	if (n == 0)
		return;

	/*
	 * NOTIFY serializes commits only while it holds its lock through a WAL
	 * flush.  A commit that does not wait for the flush (synchronous_commit
	 * off) pays little for that, and less than handing the payload to the
	 * notifier, so "auto" notifies directly then.
	 */
	if (notify_mode == RS_NOTIFY_AUTO)
		use_worker = synchronous_commit > SYNCHRONOUS_COMMIT_OFF;
	else
		use_worker = notify_mode == RS_NOTIFY_WORKER;

	if (use_worker && shared != NULL &&
		TransactionIdIsValid(xid) && enqueue(out, n, xid))
		return;
	if (use_worker && shared != NULL)
	{
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		shared->fallbacks++;
		LWLockRelease(shared->lock);
	}
	send_direct(out, n);
}

/*
 * queue_xact_callback
 *		At the end of a transaction whose entry is in a ring, wake the
 *		notifier: the entry is final now, so it will not wait for it.
 */
static void
queue_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
			if (wake_after_commit != NULL)
				SetLatch(wake_after_commit);
			wake_after_commit = NULL;
			break;
		default:
			break;
	}
}

/*
 * rs_queue_init
 *		Define roastr_state.notify_mode and (in the postmaster, which alone
 *		sizes shared memory) roastr_state.notify_queue_size; register the
 *		transaction callback.  Called once, from _PG_init.
 */
void
rs_queue_init(void)
{
	static const struct config_enum_entry mode_options[] = {
		{"auto", RS_NOTIFY_AUTO, false},
		{"worker", RS_NOTIFY_WORKER, false},
		{"direct", RS_NOTIFY_DIRECT, false},
		{NULL, 0, false}
	};

	DefineCustomEnumVariable("roastr_state.notify_mode",
							 "How committed changes are announced.",
							 "auto: the background notifier when commits wait for a WAL flush, else direct; "
							 "worker: a background notifier sends them in batches (needs shared_preload_libraries); "
							 "direct: each writing transaction sends its own NOTIFY.",
							 &notify_mode,
							 RS_NOTIFY_AUTO,
							 mode_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("roastr_state.notify_queue_size",
								"Size of each database's notification ring in shared memory.",
								NULL,
								&notify_queue_kb,
								1024, 64, 1024 * 1024,
								PGC_POSTMASTER,
								GUC_UNIT_KB,
								NULL, NULL, NULL);
	RegisterXactCallback(queue_xact_callback, NULL);
}

/* ---------------------------------------------------------------------
 * Notifier side (notifier.c)
 * ---------------------------------------------------------------------
 */

/* before_shmem_exit callback of a notifier: leave its slot. */
static void
notifier_detach(int code, Datum arg)
{
	RsNotifySlot *slot = &shared->slots[my_slot];

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (slot->worker_latch == MyLatch)
	{
		slot->worker_latch = NULL;
		slot->worker_pid = 0;
	}
	LWLockRelease(shared->lock);
}

/*
 * rs_queue_attach
 *		Make this process the notifier of slot "slotno"; *dboid gets the
 *		slot's database.  False when there is nothing to serve (no shared
 *		memory, a bad slot, a free slot, or another notifier already serves
 *		it): the caller exits.  The slot is left again at process exit.
 */
bool
rs_queue_attach(int slotno, Oid *dboid)
{
	RsNotifySlot *slot;

	if (shared == NULL || slotno < 0 || slotno >= RS_NOTIFY_SLOTS)
		return false;
	slot = &shared->slots[slotno];
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	*dboid = slot->dboid;
	if (slot->worker_latch != NULL || !OidIsValid(*dboid))
	{
		LWLockRelease(shared->lock);
		return false;
	}
	slot->worker_latch = MyLatch;
	slot->worker_pid = MyProcPid;
	slot->start_requested = 0;
	LWLockRelease(shared->lock);
	my_slot = slotno;
	before_shmem_exit(notifier_detach, (Datum) 0);
	return true;
}

/*
 * add_pairs
 *		Append the (channel, payload) pairs of a copied ring entry to
 *		"ready", as RsNotifications pointing into the copy.
 */
static List *
add_pairs(List *ready, RsRingEntry *e)
{
	char	   *p = (char *) e + sizeof(RsRingEntry);

	for (uint32 i = 0; i < e->npairs; i++)
	{
		RsNotification *nt = palloc(sizeof(RsNotification));

		nt->channel = p;
		nt->payload = p + strlen(p) + 1;
		p = nt->payload + strlen(nt->payload) + 1;
		ready = lappend(ready, nt);
	}
	return ready;
}

/*
 * rs_queue_take
 *		The notifications of the committed entries at the tail of this
 *		notifier's ring, up to about RS_BATCH_BYTES (always at least one
 *		entry), consumed, in ring order; copied into the current memory
 *		context.  Stops at the first entry whose transaction is still
 *		running (*blocked = true).  Entries of aborted transactions are
 *		consumed and dropped.  Entries below the head never move and only
 *		this process consumes, so they are read in place.
 */
List *
rs_queue_take(bool *blocked)
{
	RsNotifySlot *slot = &shared->slots[my_slot];
	uint32		size = shared->ring_size;
	uint64		head;
	uint64		tail;
	uint64		pos;
	uint32		copied = 0;
	List	   *ready = NIL;
	uint32		dropped = 0;

	*blocked = false;
	LWLockAcquire(shared->lock, LW_SHARED);
	head = slot->head;
	tail = slot->tail;
	LWLockRelease(shared->lock);

	for (pos = tail; pos < head;)
	{
		RsRingEntry *e = (RsRingEntry *) (slot->ring + pos % size);

		if (e->len < sizeof(RsRingEntry) || e->len > head - pos)
		{
			/* cannot happen; drop the hints rather than loop on them */
			elog(WARNING, "roastr_state notification ring is corrupt; %llu bytes of hints dropped",
				 (unsigned long long) (head - pos));
			pos = head;
			break;
		}
		if (!(e->flags & RS_ENTRY_PAD))
		{
			if (copied > 0 && copied + e->len > RS_BATCH_BYTES)
				break;
			if (TransactionIdIsInProgress(e->xid))
			{
				*blocked = true;
				break;
			}
			if (TransactionIdDidCommit(e->xid))
			{
				char	   *copy = palloc(e->len);

				memcpy(copy, e, e->len);
				ready = add_pairs(ready, (RsRingEntry *) copy);
				copied += e->len;
			}
			else
				dropped++;
		}
		pos += e->len;
	}

	if (pos > tail)
	{
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		slot->tail = pos;
		slot->dropped += dropped;
		LWLockRelease(shared->lock);
	}
	return ready;
}

/*
 * rs_queue_sent
 *		Count "n" notifications this notifier has sent (notify_stats).
 */
void
rs_queue_sent(uint64 n)
{
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->slots[my_slot].sent += n;
	LWLockRelease(shared->lock);
}

/*
 * rs_queue_is_empty
 *		Whether this notifier's ring holds no entry.
 */
bool
rs_queue_is_empty(void)
{
	RsNotifySlot *slot = &shared->slots[my_slot];
	bool		empty;

	LWLockAcquire(shared->lock, LW_SHARED);
	empty = (slot->head == slot->tail);
	LWLockRelease(shared->lock);
	return empty;
}

/*
 * rs_queue_leave_if_empty
 *		Leave the slot when the ring is empty, decided under the lock, so a
 *		writer that appends afterwards sees no notifier and starts one; true
 *		when left (the caller exits).
 */
bool
rs_queue_leave_if_empty(void)
{
	RsNotifySlot *slot = &shared->slots[my_slot];
	bool		empty;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	empty = (slot->head == slot->tail);
	if (empty)
	{
		slot->worker_latch = NULL;
		slot->worker_pid = 0;
	}
	LWLockRelease(shared->lock);
	return empty;
}

/*
 * rs_queue_stats
 *		Append the counters of the notifier rings to "buf" as a JSON object
 *		(for benchmarks and monitoring; the caller checks who may see them).
 */
void
rs_queue_stats(StringInfo buf)
{
	uint64		sent = 0,
				dropped = 0,
				queued = 0;
	int			running = 0;

	if (shared == NULL)
	{
		appendStringInfoString(buf, "{\"preloaded\":false}");
		return;
	}
	LWLockAcquire(shared->lock, LW_SHARED);
	for (int i = 0; i < RS_NOTIFY_SLOTS; i++)
	{
		sent += shared->slots[i].sent;
		dropped += shared->slots[i].dropped;
		queued += shared->slots[i].head - shared->slots[i].tail;
		if (shared->slots[i].worker_latch)
			running++;
	}
	appendStringInfo(buf,
					 "{\"preloaded\":true,\"sent\":" UINT64_FORMAT
					 ",\"dropped_aborted\":" UINT64_FORMAT
					 ",\"queued_bytes\":" UINT64_FORMAT
					 ",\"direct_fallbacks\":" UINT64_FORMAT
					 ",\"notifiers_running\":%d}",
					 sent, dropped, queued, shared->fallbacks, running);
	LWLockRelease(shared->lock);
}
