/*-------------------------------------------------------------------------
 *
 * stats.c
 *	  Operator counters kept in shared memory: conflicts, quota refusals and
 *	  refused webhooks since the server started, read by
 *	  roastr_state.stats() (state.c).
 *
 * They count refusals that leave nothing in any table (a PT409 or PT401
 * rolls its transaction back, a refused consumption writes nothing), so
 * they cannot be counted by a query.  Without shared_preload_libraries
 * there is no shared memory and stats() reports them as null.  Atomic
 * increments: no lock on any write path.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "stats.h"

typedef struct RsStatsShared
{
	pg_atomic_uint64 counters[RS_NSTATS];
} RsStatsShared;

static RsStatsShared *shared = NULL;

/* shmem_request_hook: the counters' shared memory. */
void
rs_stats_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(RsStatsShared)));
}

/* shmem_startup_hook: attach to (or set up) the counters. */
void
rs_stats_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("roastr_state stats", sizeof(RsStatsShared),
							 &found);
	if (!found)
		for (int i = 0; i < RS_NSTATS; i++)
			pg_atomic_init_u64(&shared->counters[i], 0);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * rs_stats_count
 *		Count one event.  Safe anywhere, also right before an ereport(ERROR):
 *		an atomic add, no allocation.
 */
void
rs_stats_count(RsStat s)
{
	if (shared != NULL)
		pg_atomic_fetch_add_u64(&shared->counters[s], 1);
}

/*
 * rs_stats_read
 *		Copy the counters into values[RS_NSTATS]; false without shared
 *		memory (the library was not preloaded).
 */
bool
rs_stats_read(uint64 *values)
{
	if (shared == NULL)
		return false;
	for (int i = 0; i < RS_NSTATS; i++)
		values[i] = pg_atomic_read_u64(&shared->counters[i]);
	return true;
}
