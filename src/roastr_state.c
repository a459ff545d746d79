/*-------------------------------------------------------------------------
 *
 * roastr_state.c
 *	  Module entry point: PG_MODULE_MAGIC, _PG_init and the general GUCs.
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

#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "crypto.h"
#include "roastr_state.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
roastr_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	rs_notify_shmem_request();
}

static void
roastr_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	rs_notify_shmem_startup();
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

	DefineCustomStringVariable("roastr_state.service_role",
							   "Role whose members act as the roastr_state service.",
							   "Superusers and roles with BYPASSRLS are the service as well.",
							   &rs_service_role_name,
							   "service_role",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	rs_crypto_init();
	rs_notify_init();
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
