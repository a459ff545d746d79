/*-------------------------------------------------------------------------
 *
 * keycheck.c
 *	  Checking a master key against the data keys it wrapped.
 *
 * A key file can be valid and still wrong: a regenerated or mixed-up file
 * may hold other bytes under an id that already wrapped data keys.  Before
 * the first new wrapping under a master key, and when a stored data key
 * does not open, up to three data keys stored under that id are tried with
 * it: if none opens, the file is wrong (F0000 naming it), and nothing is
 * wrapped under the wrong key -- otherwise a user's first persona text
 * would be acknowledged under a key that the right file no longer opens.
 * What is learnt (a data key opened, or none did) is remembered per key id
 * until the ring changes (rs_keycheck_forget), so the check costs one query
 * per backend and key at most.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/keycheck.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "access.h"
#include "core/rs_crypto_core.h"
#include "keycheck.h"
#include "spi_util.h"

/*
 * What this backend knows of the ring in use's keys against the stored data
 * keys, by id: 1 = a data key stored under it opened, -1 = none of those
 * tried did (the count in wrong_tried), 0 = not known yet.  Forgotten when
 * the ring changes.
 */
typedef struct RsMasterKeyCheck
{
	uint32		id;
	int			state;
	int			tried;
} RsMasterKeyCheck;
static RsMasterKeyCheck key_checks[RS_KEYRING_MAX];
static int	n_key_checks = 0;

/*
 * stored_keys_open
 *		Try master key id (mk) on up to three data keys stored under it,
 *		other than except's (NULL: any).  Returns how many opened; *tried
 *		receives how many were tried.
 */
static int
stored_keys_open(uint32 id, const uint8 *mk, const pg_uuid_t *except,
				 int *tried)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[2] = {INT4OID, UUIDOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	uint8		dek[RS_KEY_BYTES];
	int			opened = 0;
	uint64		n;
	RsUserSwitch sw;

	*tried = 0;
	rs_become_owner(&sw);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = Int32GetDatum((int32) id);
	args[1] = except ? UUIDPGetDatum(except) : (Datum) 0;
	nulls[1] = except ? ' ' : 'n';
	n = rs_spi_run(rs_spi_kept(&plan,
							   "SELECT user_id, keygen, wrapped FROM roastr_state.user_keys "
							   "WHERE master_key_id OPERATOR(pg_catalog.=) $1 "
							   "AND ($2 IS NULL OR user_id OPERATOR(pg_catalog.<>) $2) "
							   "LIMIT 3", 2, types),
				   args, nulls, true, 3, SPI_OK_SELECT,
				   "read the stored data keys");
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		n1,
					n2,
					n3;
		Datum		u = SPI_getbinval(tup, desc, 1, &n1);
		Datum		g = SPI_getbinval(tup, desc, 2, &n2);
		Datum		w = SPI_getbinval(tup, desc, 3, &n3);
		struct varlena *raw;

		if (n1 || n2 || n3)
			continue;
		raw = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(w));
		(*tried)++;
		if (rs_dek_unwrap(mk, id, DatumGetUUIDP(u)->data,
						  (uint32) DatumGetInt32(g),
						  (const uint8 *) VARDATA_ANY(raw),
						  VARSIZE_ANY_EXHDR(raw), dek) == RS_OK)
			opened++;
		sodium_memzero(dek, sizeof(dek));
	}
	SPI_finish();
	rs_restore_user(&sw);
	return opened;
}

/* The check of key id, or NULL when none is recorded. */
static RsMasterKeyCheck *
key_check(uint32 id)
{
	for (int i = 0; i < n_key_checks; i++)
		if (key_checks[i].id == id)
			return &key_checks[i];
	return NULL;
}

/* Record what is known of key id (state 1 or -1, see RsMasterKeyCheck). */
static void
key_check_set(uint32 id, int state, int tried)
{
	RsMasterKeyCheck *k = key_check(id);

	if (k == NULL)
	{
		if (n_key_checks >= RS_KEYRING_MAX)
			return;
		k = &key_checks[n_key_checks++];
		k->id = id;
	}
	k->state = state;
	k->tried = tried;
}

/*
 * ERROR: the file holds other bytes under an id that wrapped data keys.
 * Remembered until the ring changes, so later calls fail without a query.
 */
static void
report_wrong_master_key(uint32 id, int tried, const char *path)
{
	key_check_set(id, -1, tried);
	ereport(ERROR,
			errcode(ERRCODE_CONFIG_FILE_ERROR),
			errhidestmt(true),
			errmsg("master key %u in file \"%s\" does not open the data keys wrapped with it",
				   id, path),
			errdetail("None of the %d data keys stored under master key %u opened.",
					  tried, id),
			errhint("The file named by roastr_state.master_key_file holds another key under id %u. "
					"Put the original key back; a new key needs a new id.", id));
}

/*
 * rs_keycheck_verify
 *		Before wrapping under master key id (mk, from the file at "path"):
 *		ERROR unless it opens the data keys already stored under it (or
 *		there are none).  A data key this backend opened under the id
 *		already proved it.
 */
void
rs_keycheck_verify(uint32 id, const uint8 *mk, const char *path)
{
	RsMasterKeyCheck *k = key_check(id);
	int			tried;

	if (k != NULL && k->state > 0)
		return;
	if (k != NULL && k->state < 0)
		report_wrong_master_key(id, k->tried, path);
	if (stored_keys_open(id, mk, NULL, &tried) == 0 && tried > 0)
		report_wrong_master_key(id, tried, path);
	key_check_set(id, 1, tried);
}

/*
 * rs_keycheck_forget
 *		The ring changed: forget what was known of its keys.
 */
void
rs_keycheck_forget(void)
{
	n_key_checks = 0;
}

/*
 * rs_keycheck_opened
 *		A data key stored under master key "id" opened: the key is the right
 *		one, and no later check of it is needed.
 */
void
rs_keycheck_opened(uint32 id)
{
	key_check_set(id, 1, 1);
}

/*
 * rs_keycheck_unwrap_failed
 *		A data key of "user" stored under master key "id" (mk, from the file
 *		at "path") did not open.  The row, or the key?  ERROR naming the
 *		file when it is the key: it opens none of the other data keys stored
 *		under it (and never opened one before).  Returns when it is the row.
 */
void
rs_keycheck_unwrap_failed(uint32 id, const uint8 *mk, const pg_uuid_t *user,
						  const char *path)
{
	RsMasterKeyCheck *k = key_check(id);
	int			tried;

	if (k != NULL && k->state < 0)
		report_wrong_master_key(id, k->tried, path);
	if ((k == NULL || k->state == 0) &&
		stored_keys_open(id, mk, user, &tried) == 0 && tried > 0)
		report_wrong_master_key(id, tried + 1, path);
}
