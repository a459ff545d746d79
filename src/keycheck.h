/*-------------------------------------------------------------------------
 *
 * keycheck.h
 *	  Checking a master key against the data keys it wrapped.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/keycheck.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_KEYCHECK_H
#define RS_KEYCHECK_H

#include "utils/uuid.h"

extern void rs_keycheck_forget(void);
extern void rs_keycheck_verify(uint32 id, const uint8 *mk, const char *path);
extern void rs_keycheck_opened(uint32 id);
extern void rs_keycheck_unwrap_failed(uint32 id, const uint8 *mk,
									  const pg_uuid_t *user,
									  const char *path);

#endif							/* RS_KEYCHECK_H */
