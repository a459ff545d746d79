/*-------------------------------------------------------------------------
 *
 * crypto.h
 *	  Persona encryption for roastr_state: users' data keys and per-field
 *	  ciphertext envelopes (PostgreSQL side).
 *
 * The byte formats and the pure-C primitives are in core/rs_crypto_core.h;
 * the master keys in keyring.h; src/crypto.c adds memory hygiene and
 * PostgreSQL errors.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/crypto.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_CRYPTO_H
#define RS_CRYPTO_H

#include "utils/uuid.h"

#include "core/rs_crypto_core.h"

/*
 * A user's data key, in the clear.  Only rs_datakey_alloc makes one (the
 * rs_dek_* functions call it): it lives in CurrentMemoryContext and a reset
 * callback of that context wipes it.  Never pfree one -- the callback would
 * then write to freed memory; call rs_datakey_clear to wipe it early.
 */
typedef struct RsDataKey
{
	uint32		keygen;			/* generation, written into envelopes */
	uint8		key[RS_KEY_BYTES];
} RsDataKey;

/* data keys */
extern RsDataKey *rs_datakey_alloc(uint32 keygen);
extern void rs_datakey_clear(RsDataKey *dek);
extern bytea *rs_dek_create(const pg_uuid_t *user, uint32 keygen,
							uint32 *master_id, RsDataKey **dek_out);
extern RsDataKey *rs_dek_open(const pg_uuid_t *user, uint32 keygen,
							  uint32 master_id, bytea *wrapped);
extern bytea *rs_dek_rewrap(const pg_uuid_t *user, uint32 keygen,
							uint32 master_id, bytea *wrapped,
							uint32 *new_master_id);

/* persona fields */
extern bytea *rs_persona_seal(const RsDataKey *dek, const pg_uuid_t *user,
							  const char *field, const char *plain, int len);
extern text *rs_persona_open(const RsDataKey *dek, const pg_uuid_t *user,
							 const char *field, bytea *env);

#endif							/* RS_CRYPTO_H */
