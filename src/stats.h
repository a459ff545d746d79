/*-------------------------------------------------------------------------
 *
 * stats.h
 *	  Operator counters kept in shared memory (see stats.c).
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/stats.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_STATS_H
#define RS_STATS_H

typedef enum RsStat
{
	RS_STAT_CONFLICTS = 0,		/* PT409 raised */
	RS_STAT_QUOTA_REFUSALS,		/* consume_roasts answered allowed: false */
	RS_STAT_WEBHOOKS_REFUSED,	/* PT401: signature, timestamp, headers */
	RS_NSTATS
} RsStat;

extern void rs_stats_shmem_request(void);
extern void rs_stats_shmem_startup(void);
extern void rs_stats_count(RsStat s);
extern bool rs_stats_read(uint64 *values);

#endif							/* RS_STATS_H */
