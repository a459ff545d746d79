/*-------------------------------------------------------------------------
 *
 * mutation.h
 *	  Idempotent patches: a mutation id is applied once; a retry gets the
 *	  first answer.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/mutation.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_MUTATION_H
#define RS_MUTATION_H

#include "utils/jsonb.h"
#include "utils/uuid.h"

#include "crypto.h"

extern bytea *rs_mutation_hash(Jsonb *changes, bool base_null, int64 base,
							   const RsDataKey *dek);
extern Jsonb *rs_mutation_claim(const pg_uuid_t *user, const pg_uuid_t *mid,
								bytea *hash, MemoryContext cxt);
extern void rs_mutation_record(const pg_uuid_t *user, const pg_uuid_t *mid,
							   Jsonb *result);

#endif							/* RS_MUTATION_H */
