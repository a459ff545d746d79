/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  Notifications of committed state changes: what is announced.
 *
 * The trigger records every change (user, new version, changed fields,
 * their JSON values) in a backend-local list tagged with the current
 * subtransaction.  Aborting a savepoint drops what it recorded; releasing
 * one hands its records to the parent.  At PRE_COMMIT the list is coalesced
 * to one payload per user and sent to "user:<uuid>" and, with "user_id"
 * added, to "roastr_state"; persona text changes also go to
 * "roastr_state_embeddings".  An operator's change of a shared row (a plan's
 * limit, an organization) records one broadcast payload instead, sent to
 * "roastr_state_broadcast" once for every user it moves (their own rows
 * are written later, each by the user's next call: usage.c).  Payloads
 * never carry persona text.  How they
 * are sent -- by the background notifier or an ordinary NOTIFY -- is the
 * queue's business (notify_queue.c).
 *
 * A notification is a hint; the change log is the truth.  A crash between
 * a commit and its notification loses the hint, never the change.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/notify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "fields.h"
#include "history.h"
#include "json_util.h"
#include "notify.h"
#include "notify_queue.h"
#include "shown.h"

/* NOTIFY payloads must stay under 8000 bytes */
#define RS_MAX_PAYLOAD	7999

/* roastr_state.notify_max_payload */
static int	notify_max_payload = RS_MAX_PAYLOAD;

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

/* Broadcasts of the current transaction: shared changes, in order. */
typedef struct RsPendingBroadcast
{
	SubTransactionId subid;
	char	   *payload;
} RsPendingBroadcast;

static RsPendingBroadcast *broadcasts = NULL;
static int	nbroadcasts = 0;
static int	maxbroadcasts = 0;

/* ---------------------------------------------------------------------
 * Building payloads
 * ---------------------------------------------------------------------
 */
/* qsort comparator of pending changes: by user, then recording order. */
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
 *		The JSON payload for one user: {type, version, history, fields,
 *		data} with user_id first when "with_user" (the shared channel).
 *		"history" is the token of the history "version" belongs to
 *		(history.c), without a WAL position: the commit's own position is
 *		not known before it happens.  "fields" names
 *		every shown path the transaction's changes named (shown.c: exactly
 *		what a sync from the version before reports), "data" carries the
 *		values of those that are not withheld, shaped like state_full.
 *		"type" lists the kinds of the named paths.  Over
 *		roastr_state.notify_max_payload bytes it becomes {type: "resync",
 *		version, history}.
 */
static char *
build_payload(const char *uuid, int64 version, const char *history,
			  uint32 named, char *const *values, bool with_user)
{
	StringInfoData buf;
	uint32		kinds = rs_shown_kinds(named);
	int			nkinds = 0;
	bool		first;

	for (int k = 0; k < RS_NKINDS; k++)
		if (kinds & (UINT32_C(1) << k))
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
		if (!(kinds & (UINT32_C(1) << k)))
			continue;
		appendStringInfo(&buf, "%s\"%s\"", first ? "" : ",", rs_kind_names[k]);
		first = false;
	}
	if (nkinds > 1)
		appendStringInfoChar(&buf, ']');
	appendStringInfo(&buf, ",\"version\":" INT64_FORMAT ",\"history\":\"%s\",\"fields\":[",
					 version, history);
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

	if (buf.len > notify_max_payload)
	{
		resetStringInfo(&buf);
		if (with_user)
			appendStringInfo(&buf, "{\"user_id\":\"%s\",", uuid);
		else
			appendStringInfoChar(&buf, '{');
		appendStringInfo(&buf, "\"type\":\"resync\",\"version\":" INT64_FORMAT ",\"history\":\"%s\"}",
						 version, history);
	}
	return buf.data;
}

/*
 * collect_outgoing
 *		Coalesce the pending list to the (channel, payload) pairs to send.
 */
static RsNotification *
collect_outgoing(int *nout)
{
	RsNotification *out = palloc(sizeof(RsNotification) *
								 (npending * 3 + nbroadcasts));
	int			n = 0;

	/* the history every version of this transaction belongs to */
	char	   *history = rs_history_token(false);

	/* identical broadcasts of one transaction are sent once, as NOTIFY does */
	for (int i = 0; i < nbroadcasts; i++)
	{
		bool		seen = false;

		for (int k = 0; k < i && !seen; k++)
			seen = strcmp(broadcasts[k].payload, broadcasts[i].payload) == 0;
		if (seen)
			continue;
		out[n].channel = RS_BROADCAST_CHANNEL;
		out[n].payload = broadcasts[i].payload;
		n++;
	}
	if (npending > 0)
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
		out[n].payload = build_payload(uuid, version, history, named, values,
									   false);
		n++;
		out[n].channel = "roastr_state";
		out[n].payload = build_payload(uuid, version, history, named, values,
									   true);
		n++;

		persona_text = changed & RS_PERSONA_TEXT_MASK;
		if (persona_text)
		{
			StringInfoData b;
			bool		first = true;

			initStringInfo(&b);
			appendStringInfo(&b, "{\"user_id\":\"%s\",\"version\":" INT64_FORMAT ",\"history\":\"%s\",\"fields\":[",
							 uuid, version, history);
			for (int f = 0; f < RS_NFIELDS; f++)
			{
				if (!(persona_text & RS_FIELD_BIT(f)))
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

/*
 * rs_notify_broadcast
 *		Remember a broadcast payload (a JSON object naming a shared change)
 *		for the roastr_state_broadcast channel at commit; it is copied.
 */
void
rs_notify_broadcast(const char *payload)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

	if (broadcasts == NULL)
	{
		maxbroadcasts = 4;
		broadcasts = palloc(maxbroadcasts * sizeof(RsPendingBroadcast));
		nbroadcasts = 0;
	}
	else if (nbroadcasts == maxbroadcasts)
	{
		maxbroadcasts *= 2;
		broadcasts = repalloc(broadcasts,
							  maxbroadcasts * sizeof(RsPendingBroadcast));
	}
	broadcasts[nbroadcasts].subid = GetCurrentSubTransactionId();
	broadcasts[nbroadcasts].payload = pstrdup(payload);
	nbroadcasts++;
	MemoryContextSwitchTo(old);
}

/*
 * xact_callback
 *		At PRE_COMMIT, hand the transaction's payloads to the queue; refuse
 *		to PREPARE a transaction that has some; at the end, forget them.
 */
static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (npending > 0 || nbroadcasts > 0)
			{
				int			n;
				RsNotification *out = collect_outgoing(&n);

				rs_queue_send(out, n);
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			/* as PostgreSQL refuses to PREPARE after NOTIFY */
			if (npending > 0 || nbroadcasts > 0)
				ereport(ERROR,
						errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("cannot PREPARE a transaction that changed roastr_state state"),
						errdetail("Its changes could not be announced."));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			/* the list lived in TopTransactionContext, which is going away */
			pending = NULL;
			npending = 0;
			maxpending = 0;
			broadcasts = NULL;
			nbroadcasts = 0;
			maxbroadcasts = 0;
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
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		int			j = 0;

		for (int i = 0; i < npending; i++)
			if (pending[i].subid < mySubid)
				pending[j++] = pending[i];
		npending = j;
		j = 0;
		for (int i = 0; i < nbroadcasts; i++)
			if (broadcasts[i].subid < mySubid)
				broadcasts[j++] = broadcasts[i];
		nbroadcasts = j;
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (int i = 0; i < npending; i++)
			if (pending[i].subid >= mySubid)
				pending[i].subid = parentSubid;
		for (int i = 0; i < nbroadcasts; i++)
			if (broadcasts[i].subid >= mySubid)
				broadcasts[i].subid = parentSubid;
	}
}

/*
 * rs_notify_init
 *		Define roastr_state.notify_max_payload and register the transaction
 *		callbacks.  Called once, from _PG_init.
 */
void
rs_notify_init(void)
{
	DefineCustomIntVariable("roastr_state.notify_max_payload",
							"Largest notification payload; a larger one becomes a resync hint.",
							"NOTIFY payloads must stay under 8000 bytes; gateways may want less.",
							&notify_max_payload,
							RS_MAX_PAYLOAD, 64, RS_MAX_PAYLOAD,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}
