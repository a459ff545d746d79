/*-------------------------------------------------------------------------
 *
 * roastr_state.c
 *	  Module entry point: PG_MODULE_MAGIC and _PG_init.
 *
 * Each module defines its own roastr_state.* settings in its init
 * function, called from here; the variables stay static in their files.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/roastr_state.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "access.h"
#include "keyring.h"
#include "notify.h"
#include "notify_queue.h"
#include "stats.h"
#include "webhook.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* shmem_request_hook: ask for the notifier's shared memory. */
static void
roastr_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	rs_queue_shmem_request();
	rs_stats_shmem_request();
}

/* shmem_startup_hook: attach to (or set up) the notifier's shared memory. */
static void
roastr_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	rs_queue_shmem_startup();
	rs_stats_shmem_startup();
}

/*
 * _PG_init
 *		Initialize libsodium, define our settings, and, when loaded through
 *		shared_preload_libraries, ask for the shared memory of the notifier.
 */
void
_PG_init(void)
{
	if (sodium_init() < 0)
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errmsg("could not initialize libsodium"));

	rs_access_init();
	rs_keyring_init();
	rs_notify_init();
	rs_queue_init();
	rs_webhook_init();

	MarkGUCPrefixReserved("roastr_state");

	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = roastr_shmem_request;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = roastr_shmem_startup;
	}
}
