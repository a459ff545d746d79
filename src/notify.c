/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  Notifications of committed state changes.
 *
 * What is announced
 *	The trigger records every change (user, new version, changed fields,
 *	their JSON values) in a backend-local list tagged with the current
 *	subtransaction.  Aborting a savepoint drops what it recorded; releasing
 *	one hands its records to the parent.  At PRE_COMMIT the list is
 *	coalesced to one payload per user and sent to "user:<uuid>" and, with
 *	"user_id" added, to "roastr_state"; persona text changes also go to
 *	"roastr_state_embeddings".  Payloads never carry persona text.
 *
 * How it is sent
 *	PostgreSQL's NOTIFY takes a cluster-wide lock at commit and holds it
 *	through the commit's WAL flush, so notifying transactions cannot share
 *	flushes.  When commits wait for that flush (synchronous_commit on, the
 *	default) and the library is preloaded, writers therefore do not NOTIFY
 *	themselves: at PRE_COMMIT they append their payloads, tagged with their
 *	top-level XID, to a per-database ring in shared memory, and once they
 *	have committed they set the latch of that database's notifier, a
 *	background worker started on demand.  The notifier takes entries in
 *	ring order, waits while an entry's XID is still running, drops entries
 *	whose transaction aborted, and sends the committed ones in one
 *	transaction of its own (synchronous_commit off), so a whole batch pays
 *	for the NOTIFY lock once.  Ring order is commit order for any one user
 *	(writers of a user serialize on its row lock), so a user's
 *	notifications arrive in version order.  When commits do not wait for a
 *	flush (synchronous_commit off) the lock is held only briefly and the
 *	hand-off would cost more than it saves, so the default mode "auto"
 *	notifies directly then (measured: BENCHMARKS.md).
 *
 *	The notifier exits after a few idle seconds (so it does not hold up
 *	DROP DATABASE, which waits five seconds for other sessions) and the next
 *	writer starts it again.  When there is no shared memory (library not
 *	preloaded), no worker can be started, the ring is full, or
 *	roastr_state.notify_mode = direct, the writer falls back to an ordinary
 *	NOTIFY inside its transaction: slower under concurrency, never lost.
 *
 *	A notification is a hint; the change log is the truth.  A crash between
 *	a commit and its notification loses the hint, never the change.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/notify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/async.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "fields.h"
#include "json_util.h"
#include "notify.h"
#include "shown.h"

/* NOTIFY payloads must stay under 8000 bytes */
#define RS_MAX_PAYLOAD	7999

/* roastr_state.notify_mode */
typedef enum RsNotifyMode
{
	RS_NOTIFY_AUTO,				/* worker when commits wait for a flush */
	RS_NOTIFY_WORKER,
	RS_NOTIFY_DIRECT
} RsNotifyMode;

static int	notify_mode = RS_NOTIFY_AUTO;

/* the notifier to wake once this transaction has committed */
static Latch *wake_after_commit = NULL;
static int	rs_notify_queue_kb = 1024;
static int	rs_notify_max_payload = RS_MAX_PAYLOAD;

#define RS_NOTIFY_SLOTS			4
#define RS_IDLE_EXIT_MS			3000
#define RS_START_RETRY_MS		1000	/* a start not confirmed by then
										 * failed */
#define RS_BATCH_BYTES			(256 * 1024)
#define RS_ENTRY_ALIGN			16
#define RS_ENTRY_PAD			1	/* flag: filler up to the ring's end */

/* ---------------------------------------------------------------------
 * Backend-local pending changes of the current transaction
 * ---------------------------------------------------------------------
 */
typedef struct RsPendingChange
{
	pg_uuid_t	user;
	SubTransactionId subid;
	int64		version;
	uint32		changed;		/* stored fields (for the embeddings channel) */
	uint32		named;			/* shown paths (shown.h) the change names */
	int			seq;			/* recording order, for a stable sort */
	char	   *values[RS_NSHOWN];	/* JSON text; NULL when withheld */
} RsPendingChange;

static RsPendingChange *pending = NULL;
static int	npending = 0;
static int	maxpending = 0;

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

static uint32
ring_size_bytes(void)
{
	return (uint32) rs_notify_queue_kb * 1024;
}

static Size
shared_size(void)
{
	return add_size(MAXALIGN(sizeof(RsNotifyShared)),
					mul_size(RS_NOTIFY_SLOTS, ring_size_bytes()));
}

void
rs_notify_shmem_request(void)
{
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("roastr_state", 1);
}

void
rs_notify_shmem_startup(void)
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
 * Building payloads
 * ---------------------------------------------------------------------
 */
typedef struct RsOutgoing
{
	char	   *channel;
	char	   *payload;
} RsOutgoing;

static int
pending_cmp(const void *a, const void *b)
{
	const RsPendingChange *pa = (const RsPendingChange *) a;
	const RsPendingChange *pb = (const RsPendingChange *) b;
	int			c = memcmp(pa->user.data, pb->user.data, UUID_LEN);

	if (c != 0)
		return c;
	return pa->seq - pb->seq;
}

/*
 * build_payload
 *		The JSON payload for one user: {type, version, fields, data} with
 *		user_id first when "with_user" (the shared channel).  "fields" names
 *		every shown path the transaction's changes named (shown.c: exactly
 *		what a sync from the version before reports), "data" carries the
 *		values of those that are not withheld, shaped like state_full.
 *		"type" lists the kinds of the named paths.  Over
 *		roastr_state.notify_max_payload bytes it becomes {type: "resync",
 *		version}.
 */
static char *
build_payload(const char *uuid, int64 version, uint32 named,
			  char *const *values, bool with_user)
{
	StringInfoData buf;
	uint32		kinds = rs_shown_kinds(named);
	int			nkinds = 0;
	bool		first;

	for (int k = 0; k < RS_NKINDS; k++)
		if (kinds & (1U << k))
			nkinds++;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	if (with_user)
		appendStringInfo(&buf, "\"user_id\":\"%s\",", uuid);
	appendStringInfoString(&buf, "\"type\":");
	if (nkinds > 1)
		appendStringInfoChar(&buf, '[');
	first = true;
	for (int k = 0; k < RS_NKINDS; k++)
	{
		if (!(kinds & (1U << k)))
			continue;
		appendStringInfo(&buf, "%s\"%s\"", first ? "" : ",", rs_kind_names[k]);
		first = false;
	}
	if (nkinds > 1)
		appendStringInfoChar(&buf, ']');
	appendStringInfo(&buf, ",\"version\":" INT64_FORMAT ",\"fields\":[", version);
	first = true;
	for (int s = 0; s < RS_NSHOWN; s++)
	{
		if (!(named & RS_SHOWN_BIT(s)))
			continue;
		appendStringInfo(&buf, "%s\"%s\"", first ? "" : ",", rs_shown_path(s));
		first = false;
	}
	appendStringInfoString(&buf, "],\"data\":{");
	first = true;
	for (int sec = 0; sec < RS_NSECTIONS; sec++)
	{
		bool		opened = false;

		for (int s = 0; s < RS_NSHOWN; s++)
		{
			if (!(named & RS_SHOWN_BIT(s)) || values[s] == NULL ||
				strcmp(rs_shown_section(s), rs_sections[sec]) != 0)
				continue;
			if (!opened)
			{
				appendStringInfo(&buf, "%s\"%s\":{", first ? "" : ",",
								 rs_sections[sec]);
				first = false;
				opened = true;
			}
			else
				appendStringInfoChar(&buf, ',');
			appendStringInfo(&buf, "\"%s\":%s", rs_shown_key(s), values[s]);
		}
		if (opened)
			appendStringInfoChar(&buf, '}');
	}
	appendStringInfoString(&buf, "}}");

	if (buf.len > rs_notify_max_payload)
	{
		resetStringInfo(&buf);
		if (with_user)
			appendStringInfo(&buf, "{\"user_id\":\"%s\",", uuid);
		else
			appendStringInfoChar(&buf, '{');
		appendStringInfo(&buf, "\"type\":\"resync\",\"version\":" INT64_FORMAT "}",
						 version);
	}
	return buf.data;
}

/*
 * collect_outgoing
 *		Coalesce the pending list to the (channel, payload) pairs to send.
 */
static RsOutgoing *
collect_outgoing(int *nout)
{
	RsOutgoing   *out = palloc(sizeof(RsOutgoing) * npending * 3);
	int			n = 0;

	qsort(pending, npending, sizeof(RsPendingChange), pending_cmp);
	for (int i = 0; i < npending;)
	{
		int			j = i;
		uint32		changed = 0;
		uint32		named = 0;
		int64		version = 0;
		char	   *values[RS_NSHOWN];
		char	   *uuid = rs_uuid_to_cstring(&pending[i].user);
		uint32		persona_text;

		memset(values, 0, sizeof(values));
		for (; j < npending &&
			 memcmp(pending[j].user.data, pending[i].user.data, UUID_LEN) == 0;
			 j++)
		{
			changed |= pending[j].changed;
			named |= pending[j].named;
			version = Max(version, pending[j].version);
			/* a path's value changes only with its inputs: the last wins */
			for (int s = 0; s < RS_NSHOWN; s++)
				if (pending[j].named & RS_SHOWN_BIT(s))
					values[s] = pending[j].values[s];
		}

		out[n].channel = psprintf("user:%s", uuid);
		out[n].payload = build_payload(uuid, version, named, values, false);
		n++;
		out[n].channel = "roastr_state";
		out[n].payload = build_payload(uuid, version, named, values, true);
		n++;

		persona_text = changed & RS_PERSONA_TEXT_MASK;
		if (persona_text)
		{
			StringInfoData b;
			bool		first = true;

			initStringInfo(&b);
			appendStringInfo(&b, "{\"user_id\":\"%s\",\"version\":" INT64_FORMAT ",\"fields\":[",
							 uuid, version);
			for (int f = 0; f < RS_NFIELDS; f++)
			{
				if (!(persona_text & (1U << f)))
					continue;
				appendStringInfo(&b, "%s\"%s\"", first ? "" : ",",
								 rs_fields[f].path);
				first = false;
			}
			appendStringInfoString(&b, "]}");
			out[n].channel = "roastr_state_embeddings";
			out[n].payload = b.data;
			n++;
		}
		i = j;
	}
	*nout = n;
	return out;
}

/* ---------------------------------------------------------------------
 * Writer side: hand payloads to the notifier, or NOTIFY directly
 * ---------------------------------------------------------------------
 */

static void
send_direct(RsOutgoing *out, int n)
{
	for (int i = 0; i < n; i++)
		Async_Notify(out[i].channel, out[i].payload);
}

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
 * enqueue
 *		Append one entry to this database's ring and wake its notifier,
 *		starting one if none runs or is starting.  False when that cannot
 *		be done; the caller then notifies directly.  The entry is written
 *		and the notifier looked up under one lock, so a notifier that
 *		leaves because the ring looked empty can never strand the entry.
 */
static bool
enqueue(RsOutgoing *out, int n, TransactionId xid)
{
	RsNotifySlot *slot = NULL;
	int			slotno = -1;
	uint32		len = sizeof(RsRingEntry);
	bool		need_start = false;
	Latch	   *latch;
	TimestampTz now = GetCurrentTimestamp();
	char	   *entry;
	char	   *p;
	uint64		entry_at;

	for (int i = 0; i < n; i++)
		len += strlen(out[i].channel) + strlen(out[i].payload) + 2;
	len = TYPEALIGN(RS_ENTRY_ALIGN, len);
	if (len > shared->ring_size / 4)
		return false;

	/* build the entry locally, then copy it in under the lock */
	entry = palloc0(len);
	((RsRingEntry *) entry)->len = len;
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

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);

	/* find this database's slot, or claim a free or idle one */
	for (int i = 0; i < RS_NOTIFY_SLOTS; i++)
		if (shared->slots[i].dboid == MyDatabaseId)
			slotno = i;
	for (int i = 0; slotno < 0 && i < RS_NOTIFY_SLOTS; i++)
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
			slotno = i;
		}
	}
	if (slotno < 0)
	{
		LWLockRelease(shared->lock);
		return false;
	}
	slot = &shared->slots[slotno];

	{
		uint32		size = shared->ring_size;
		uint32		pos = slot->head % size;
		uint32		pad = (size - pos < len) ? size - pos : 0;

		if ((slot->head - slot->tail) + pad + len > size)
		{
			LWLockRelease(shared->lock);
			return false;
		}
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
		entry_at = slot->head;
		memcpy(slot->ring + pos, entry, len);
		slot->head += len;
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
		wake_after_commit = latch;	/* woken by xact_callback at COMMIT */
	else if (need_start && !register_notifier(slotno))
	{
		bool		cancelled = false;

		/*
		 * No notifier can run.  Unless one already took our entry, turn it
		 * into filler and let the caller notify directly.
		 */
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
		return !cancelled;
	}
	return true;
}

static void
send_pending(void)
{
	RsOutgoing   *out;
	int			n;
	TransactionId xid = GetTopTransactionIdIfAny();

	bool		use_worker;

	out = collect_outgoing(&n);
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

/* ---------------------------------------------------------------------
 * Transaction hooks
 * ---------------------------------------------------------------------
 */

/*
 * rs_notify_record
 *		Remember a change for notification at commit: the stored fields it
 *		changed, the shown paths that names (rs_shown_named) and the JSON
 *		text of those a payload carries ("values", indexed by RsShownId,
 *		NULL when withheld); it is copied.
 */
void
rs_notify_record(const pg_uuid_t *user, int64 version, uint32 changed,
				 uint32 named, char *const *values)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	RsPendingChange *p;

	if (pending == NULL)
	{
		maxpending = 16;
		pending = palloc(maxpending * sizeof(RsPendingChange));
		npending = 0;
	}
	else if (npending == maxpending)
	{
		maxpending *= 2;
		pending = repalloc(pending, maxpending * sizeof(RsPendingChange));
	}
	p = &pending[npending];
	p->user = *user;
	p->subid = GetCurrentSubTransactionId();
	p->version = version;
	p->changed = changed;
	p->named = named;
	p->seq = npending;
	for (int s = 0; s < RS_NSHOWN; s++)
		p->values[s] = (named & RS_SHOWN_BIT(s)) && values[s] ?
			pstrdup(values[s]) : NULL;
	npending++;
	MemoryContextSwitchTo(old);
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (npending > 0)
				send_pending();
			break;
		case XACT_EVENT_PRE_PREPARE:
			/* as PostgreSQL refuses to PREPARE after NOTIFY */
			if (npending > 0)
				ereport(ERROR,
						errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("cannot PREPARE a transaction that changed roastr_state state"),
						errdetail("Its changes could not be announced."));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
			/* our entry is final now: the notifier will not wait for it */
			if (wake_after_commit != NULL)
				SetLatch(wake_after_commit);
			wake_after_commit = NULL;
			/* FALLTHROUGH */
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* the list lived in TopTransactionContext, which is going away */
			pending = NULL;
			npending = 0;
			maxpending = 0;
			break;
		default:
			break;
	}
}

/*
 * subxact_callback
 *		A rolled-back savepoint takes back what it (and its children)
 *		recorded; a released one hands it to its parent.  Subtransaction ids
 *		only grow, and every subtransaction started after "mySubid" while it
 *		was open is its descendant.
 */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	if (npending == 0)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		int			j = 0;

		for (int i = 0; i < npending; i++)
			if (pending[i].subid < mySubid)
				pending[j++] = pending[i];
		npending = j;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = 0; i < npending; i++)
			if (pending[i].subid >= mySubid)
				pending[i].subid = parentSubid;
	}
}

void
rs_notify_init(void)
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
	/* only the postmaster can size shared memory */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("roastr_state.notify_queue_size",
								"Size of each database's notification ring in shared memory.",
								NULL,
								&rs_notify_queue_kb,
								1024, 64, 1024 * 1024,
								PGC_POSTMASTER,
								GUC_UNIT_KB,
								NULL, NULL, NULL);
	DefineCustomIntVariable("roastr_state.notify_max_payload",
							"Largest notification payload; a larger one becomes a resync hint.",
							"NOTIFY payloads must stay under 8000 bytes; gateways may want less.",
							&rs_notify_max_payload,
							RS_MAX_PAYLOAD, 64, RS_MAX_PAYLOAD,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}

/* ---------------------------------------------------------------------
 * The notifier
 * ---------------------------------------------------------------------
 */
static int	my_slot = -1;

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
 * take_batch
 *		Copy out the committed entries at the ring's tail, up to about
 *		RS_BATCH_BYTES (always at least one), and consume them.  Stops at
 *		the first entry whose transaction is still running (returning
 *		*blocked = true).  Entries of aborted transactions are consumed and
 *		dropped.  Entries below the head never move and only this process
 *		consumes, so they are read in place; only what is sent is copied.
 */
static List *
take_batch(RsNotifySlot *slot, bool *blocked)
{
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
				ready = lappend(ready, copy);
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

static void
send_batch(RsNotifySlot *slot, List *ready)
{
	ListCell   *lc;
	uint64		n = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	foreach(lc, ready)
	{
		RsRingEntry *e = (RsRingEntry *) lfirst(lc);
		char	   *p = (char *) e + sizeof(RsRingEntry);

		for (uint32 i = 0; i < e->npairs; i++)
		{
			char	   *channel = p;
			char	   *payload = p + strlen(p) + 1;

			Async_Notify(channel, payload);
			p = payload + strlen(payload) + 1;
			n++;
		}
	}
	CommitTransactionCommand();

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	slot->sent += n;
	LWLockRelease(shared->lock);
}

PGDLLEXPORT void roastr_state_notifier_main(Datum main_arg);

void
roastr_state_notifier_main(Datum main_arg)
{
	RsNotifySlot *slot;
	Oid			dboid;
	TimestampTz idle_since;
	MemoryContext batch_cxt;

	my_slot = DatumGetInt32(main_arg);
	if (shared == NULL || my_slot < 0 || my_slot >= RS_NOTIFY_SLOTS)
		proc_exit(0);
	slot = &shared->slots[my_slot];

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* claim the slot, unless another notifier already serves it */
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	dboid = slot->dboid;
	if (slot->worker_latch != NULL || !OidIsValid(dboid))
	{
		LWLockRelease(shared->lock);
		proc_exit(0);
	}
	slot->worker_latch = MyLatch;
	slot->worker_pid = MyProcPid;
	slot->start_requested = 0;
	LWLockRelease(shared->lock);
	before_shmem_exit(notifier_detach, (Datum) 0);

	/* deliver even while the database refuses new connections */
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid,
											  BGWORKER_BYPASS_ALLOWCONN);
	pgstat_report_appname("roastr_state notifier");
	/* our commits only publish hints: never wait for a WAL flush */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

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
		ready = take_batch(slot, &blocked);
		MemoryContextSwitchTo(old);
		if (ready != NIL)
		{
			send_batch(slot, ready);
			idle_since = GetCurrentTimestamp();
		}
		MemoryContextReset(batch_cxt);
		if (ready != NIL)
			continue;

		if (blocked)
			timeout = 1;		/* a writer is committing: look again soon */
		else
		{
			bool		empty;

			if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(),
										   RS_IDLE_EXIT_MS))
			{
				/* leave only with an empty ring, decided under the lock */
				LWLockAcquire(shared->lock, LW_EXCLUSIVE);
				empty = (slot->head == slot->tail);
				if (empty)
				{
					slot->worker_latch = NULL;
					slot->worker_pid = 0;
				}
				LWLockRelease(shared->lock);
				if (empty)
					break;
			}
			timeout = 500;
		}
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		/* absorb ProcSignalBarriers (DROP DATABASE waits for them) */
		CHECK_FOR_INTERRUPTS();
		if (!blocked)
		{
			LWLockAcquire(shared->lock, LW_SHARED);
			if (slot->head != slot->tail)
				idle_since = GetCurrentTimestamp();
			LWLockRelease(shared->lock);
		}
	}
	proc_exit(0);
}

/*
 * rs_notify_stats
 *		Append the counters of the notifier rings to "buf" as a JSON object
 *		(for benchmarks and monitoring; the caller checks who may see them).
 */
void
rs_notify_stats(StringInfo buf)
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
