/*-------------------------------------------------------------------------
 *
 * history.c
 *	  The history a version number belongs to.
 *
 * Versions are handed out by one primary.  When an asynchronous standby is
 * promoted without the primary's last commits, or a backup is restored to
 * an earlier point, the numbers after that point are handed out again, to
 * other changes: a cursor alone cannot tell "nothing changed since 11" from
 * "your 11 was lost and another 11 replaced it".  So every answer that
 * carries a version also carries the history it belongs to, a token:
 *
 *	<system identifier>.<timeline>[.<WAL position, hex>]
 *
 * The system identifier names the cluster (a dump restored elsewhere, a new
 * initdb); the timeline changes at every promotion and at every
 * point-in-time restore; the WAL position is an upper bound of every commit
 * the answer reflected: the insert position on a primary, the replay
 * position on a standby, read after the snapshot was taken.  Answers given
 * inside the writing transaction (patch, notifications) cannot know their
 * own commit's position and carry no WAL position.
 *
 * A cursor's history is the server's when the system identifiers are equal
 * and either the timelines are equal, or the cursor's timeline is an
 * ancestor of the server's and its WAL position is at or before the point
 * where the server's history left it (read from the timeline history
 * file): then every commit the cursor saw exists here too.  Anything else
 * may have been reissued, and the client gets everything, flagged "reset".
 * On a standby, a cursor of the standby's own timeline whose WAL position
 * is beyond the replay position, or of a later timeline, has simply not
 * arrived yet: "behind" (PT503), retry or read from the primary.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/history.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/timeline.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"

#include "history.h"

/*
 * rs_history_now
 *		This server's history, with (with_lsn) the WAL position that bounds
 *		every commit visible to the caller's snapshot.  Call it after the
 *		read whose answer it goes with.
 */
void
rs_history_now(RsHistory *h, bool with_lsn)
{
	h->sysid = GetSystemIdentifier();
	h->has_lsn = with_lsn;
	if (RecoveryInProgress())
		h->lsn = GetXLogReplayRecPtr(&h->tli);
	else
	{
		h->tli = GetWALInsertionTimeLine();
		h->lsn = with_lsn ? GetXLogInsertRecPtr() : InvalidXLogRecPtr;
	}
	if (!with_lsn)
		h->lsn = InvalidXLogRecPtr;
}

/*
 * rs_history_format
 *		The token of "h", palloc'd.
 */
char *
rs_history_format(const RsHistory *h)
{
	if (h->has_lsn)
		return psprintf(UINT64_FORMAT ".%u.%llX", h->sysid, h->tli,
						(unsigned long long) h->lsn);
	return psprintf(UINT64_FORMAT ".%u", h->sysid, h->tli);
}

/*
 * rs_history_token
 *		This server's history token, palloc'd: with the WAL position that
 *		bounds what the caller's snapshot saw (a read's answer), or without
 *		one (an answer given inside the writing transaction).
 */
char *
rs_history_token(bool with_lsn)
{
	RsHistory	h;

	rs_history_now(&h, with_lsn);
	return rs_history_format(&h);
}

/* Parse a decimal or hex run of "s" into *out; the end in *end. */
static bool
parse_number(const char *s, int base, uint64 *out, const char **end)
{
	uint64		v = 0;
	const char *p = s;

	for (; *p; p++)
	{
		int			d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		if (v > (PG_UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	if (p == s || p - s > 20)
		return false;
	*out = v;
	*end = p;
	return true;
}

/*
 * rs_history_parse
 *		Read a token; false when it is not one.
 */
bool
rs_history_parse(const char *s, RsHistory *h)
{
	uint64		v;
	const char *p;

	if (strlen(s) > RS_HISTORY_MAXLEN)
		return false;
	memset(h, 0, sizeof(RsHistory));
	if (!parse_number(s, 10, &h->sysid, &p) || *p != '.')
		return false;
	if (!parse_number(p + 1, 10, &v, &p) || v == 0 || v > PG_UINT32_MAX)
		return false;
	h->tli = (TimeLineID) v;
	if (*p == '\0')
		return true;
	if (*p != '.' || !parse_number(p + 1, 16, &v, &p) || *p != '\0')
		return false;
	h->has_lsn = true;
	h->lsn = (XLogRecPtr) v;
	return true;
}

/*
 * rs_history_judge
 *		What a cursor of history "cursor" means on this server, whose
 *		history is "now" (with its WAL position).
 */
RsHistoryVerdict
rs_history_judge(const RsHistory *cursor, const RsHistory *now)
{
	bool		standby = RecoveryInProgress();
	List	   *history;
	XLogRecPtr	left;

	if (cursor->sysid != now->sysid)
		return RS_HISTORY_RESET;
	if (cursor->tli == now->tli)
	{
		if (cursor->has_lsn && cursor->lsn > now->lsn)
			return standby ? RS_HISTORY_BEHIND : RS_HISTORY_RESET;
		return RS_HISTORY_SAME;
	}
	if (cursor->tli > now->tli)
		return standby ? RS_HISTORY_BEHIND : RS_HISTORY_RESET;

	/* an older timeline: is the cursor before the point we left it? */
	if (!cursor->has_lsn)
		return RS_HISTORY_RESET;
	history = readTimeLineHistory(now->tli);
	if (!tliInHistory(cursor->tli, history))
		return RS_HISTORY_RESET;
	left = tliSwitchPoint(cursor->tli, history, NULL);
	return cursor->lsn <= left ? RS_HISTORY_SAME : RS_HISTORY_RESET;
}
