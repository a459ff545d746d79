/*-------------------------------------------------------------------------
 *
 * keyring.h
 *	  The master key ring: the master keys of roastr_state.master_key_file.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/keyring.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_KEYRING_H
#define RS_KEYRING_H

#include "utils/uuid.h"

/* setup, from _PG_init after sodium_init() */
extern void rs_keyring_init(void);

extern void rs_keyring_require(void);
extern uint32 rs_keyring_current_id(void);
extern const uint8 *rs_keyring_current(uint32 *id);
extern const uint8 *rs_keyring_key(uint32 id);
extern void rs_keyring_opened(uint32 id);
extern void rs_keyring_unwrap_failed(uint32 id, const uint8 *mk,
									 const pg_uuid_t *user);

#endif							/* RS_KEYRING_H */
