/*-------------------------------------------------------------------------
 *
 * mutation.c
 *	  Idempotent patches: a mutation id is applied once; a retry gets the
 *	  first answer.
 *
 * patch() with a mutation id first claims it (rs_mutation_claim) under the
 * user's row lock: a new id is recorded with a hash of the request, an id
 * seen before returns its recorded answer (or ERROR when the request
 * differs).  After applying, patch() records its answer
 * (rs_mutation_record).  Records are kept for 24 hours.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/mutation.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/jsonb.h"

#include "json_util.h"
#include "mutation.h"
#include "read.h"
#include "spi_util.h"

/* Mutation outcomes are kept this long for retries. */
#define MUTATION_RETENTION	"24 hours"

/*
 * rs_mutation_hash
 *		BLAKE2b-256 of the canonical patch (jsonb's normalized text) and
 *		the base version: a retry must be the same request.  Keyed by the
 *		user's data key "dek" when the patch carries persona text (else
 *		NULL): an unkeyed hash of a short text would let anyone who reads
 *		the row (or a backup) confirm a guess of it.  The data key goes with
 *		delete_user.
 */
bytea *
rs_mutation_hash(Jsonb *changes, bool base_null, int64 base,
				 const RsDataKey *dek)
{
	char	   *txt = JsonbToCString(NULL, &changes->root, VARSIZE(changes));
	bytea	   *h = palloc(VARHDRSZ + crypto_generichash_BYTES);
	crypto_generichash_state s;
	char		basebuf[32];

	snprintf(basebuf, sizeof(basebuf), "|%s" INT64_FORMAT,
			 base_null ? "n" : "b", base_null ? (int64) 0 : base);
	if (dek != NULL)
		crypto_generichash_init(&s, dek->key, sizeof(dek->key),
								crypto_generichash_BYTES);
	else
		crypto_generichash_init(&s, NULL, 0, crypto_generichash_BYTES);
	crypto_generichash_update(&s, (const unsigned char *) txt, strlen(txt));
	crypto_generichash_update(&s, (const unsigned char *) basebuf,
							  strlen(basebuf));
	crypto_generichash_final(&s, (unsigned char *) VARDATA(h),
							 crypto_generichash_BYTES);
	SET_VARSIZE(h, VARHDRSZ + crypto_generichash_BYTES);
	return h;
}

/*
 * stored_answer
 *		The answer recorded for mutation "mid" of "user", copied into "cxt";
 *		ERROR when the id was used for another request (hash differs).
 */
static Jsonb *
stored_answer(const pg_uuid_t *user, const pg_uuid_t *mid, bytea *hash,
			  MemoryContext cxt)
{
	static SPIPlanPtr plan = NULL;
	Oid			t2[2] = {UUIDOID, UUIDOID};
	Datum		args[2];
	bool		isnull;
	bytea	   *stored;
	Datum		res;
	MemoryContext old;
	Jsonb	   *copy;

	args[0] = UUIDPGetDatum(user);
	args[1] = UUIDPGetDatum(mid);
	if (rs_spi_run(rs_spi_kept(&plan,
							   "SELECT request_hash, result FROM roastr_state.mutations "
							   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
							   "AND mutation_id OPERATOR(pg_catalog.=) $2",
							   2, t2),
				   args, NULL, false, 1, SPI_OK_SELECT, "read mutation") != 1)
		elog(ERROR, "could not read mutation %s", rs_uuid_to_cstring(mid));
	stored = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	if (VARSIZE_ANY_EXHDR(stored) != VARSIZE_ANY_EXHDR(hash) ||
		memcmp(VARDATA_ANY(stored), VARDATA_ANY(hash), VARSIZE_ANY_EXHDR(hash)) != 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("mutation_id %s was already used for a different patch",
					   rs_uuid_to_cstring(mid)),
				errhint("Use a new mutation_id for every distinct change."));
	res = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		elog(ERROR, "mutation %s has no recorded result", rs_uuid_to_cstring(mid));
	old = MemoryContextSwitchTo(cxt);
	copy = DatumGetJsonbPCopy(res);
	MemoryContextSwitchTo(old);
	return copy;
}

/*
 * rs_mutation_claim
 *		Record mutation id "mid" of "user" before applying it.  The user's
 *		row is locked first, so every mutation of one user is decided under
 *		that lock: a concurrent duplicate waits for us, then (with a fresh
 *		snapshot) finds our outcome; and nothing else is locked while
 *		waiting, so no deadlock.  Returns the stored answer when this id was
 *		already applied (copied into "cxt"), NULL when it is ours to apply.
 *		ERROR when the id was used for another request, or when the user has
 *		no state.  Inside SPI, as the owner.
 */
Jsonb *
rs_mutation_claim(const pg_uuid_t *user, const pg_uuid_t *mid, bytea *hash,
				  MemoryContext cxt)
{
	static SPIPlanPtr prune = NULL;
	static SPIPlanPtr insert = NULL;
	Oid			t2[2] = {UUIDOID, UUIDOID};
	Oid			t3[3] = {UUIDOID, UUIDOID, BYTEAOID};
	Datum		args[3];

	if (!rs_lock_state(user))
		rs_no_state(user);
	args[0] = UUIDPGetDatum(user);
	args[1] = UUIDPGetDatum(mid);
	args[2] = PointerGetDatum(hash);
	rs_spi_run(rs_spi_kept(&prune,
						   "DELETE FROM roastr_state.mutations "
						   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
						   "AND mutation_id OPERATOR(pg_catalog.<>) $2 "
						   "AND created_at OPERATOR(pg_catalog.<) (pg_catalog.now() "
						   "OPERATOR(pg_catalog.-) interval '" MUTATION_RETENTION "')",
						   2, t2),
			   args, NULL, false, 0, SPI_OK_DELETE, "prune mutations");
	if (rs_spi_run(rs_spi_kept(&insert,
							   "INSERT INTO roastr_state.mutations (user_id, mutation_id, request_hash) "
							   "VALUES ($1, $2, $3) "
							   "ON CONFLICT (user_id, mutation_id) DO NOTHING",
							   3, t3),
				   args, NULL, false, 0, SPI_OK_INSERT,
				   "record mutation") == 1)
		return NULL;
	return stored_answer(user, mid, hash, cxt);
}

/*
 * rs_mutation_record
 *		Record the answer of mutation "mid" that the caller has claimed and
 *		applied.  Inside SPI, as the owner.
 */
void
rs_mutation_record(const pg_uuid_t *user, const pg_uuid_t *mid,
				   Jsonb *result)
{
	static SPIPlanPtr plan = NULL;
	Oid			t3[3] = {UUIDOID, UUIDOID, JSONBOID};
	Datum		args[3];

	args[0] = UUIDPGetDatum(user);
	args[1] = UUIDPGetDatum(mid);
	args[2] = JsonbPGetDatum(result);
	if (rs_spi_run(rs_spi_kept(&plan,
							   "UPDATE roastr_state.mutations SET result = $3 "
							   "WHERE user_id OPERATOR(pg_catalog.=) $1 "
							   "AND mutation_id OPERATOR(pg_catalog.=) $2",
							   3, t3),
				   args, NULL, false, 0, SPI_OK_UPDATE,
				   "record mutation result") != 1)
		elog(ERROR, "could not record mutation result");
}
