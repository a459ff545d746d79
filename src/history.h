/*-------------------------------------------------------------------------
 *
 * history.h
 *	  The history a version number belongs to, so that a cursor survives a
 *	  failover or a point-in-time restore (see history.c).
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/history.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_HISTORY_H
#define RS_HISTORY_H

#include "access/xlogdefs.h"

/* A history token: "<system identifier>.<timeline>[.<WAL position hex>]". */
typedef struct RsHistory
{
	uint64		sysid;
	TimeLineID	tli;
	bool		has_lsn;
	XLogRecPtr	lsn;			/* every commit a read saw precedes it */
} RsHistory;

#define RS_HISTORY_MAXLEN	64

/* What a cursor of some history means on this server. */
typedef enum RsHistoryVerdict
{
	RS_HISTORY_SAME,			/* its versions are this server's */
	RS_HISTORY_RESET,			/* they may have been reissued: resync all */
	RS_HISTORY_BEHIND			/* a standby that has not replayed it yet */
} RsHistoryVerdict;

extern void rs_history_now(RsHistory *h, bool with_lsn);
extern char *rs_history_format(const RsHistory *h);
extern char *rs_history_token(bool with_lsn);
extern bool rs_history_parse(const char *s, RsHistory *h);
extern RsHistoryVerdict rs_history_judge(const RsHistory *cursor,
										 const RsHistory *now);

#endif							/* RS_HISTORY_H */
