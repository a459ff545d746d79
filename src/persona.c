/*-------------------------------------------------------------------------
 *
 * persona.c
 *	  Persona text: stored only as ciphertext under a per-user data key;
 *	  key rotation and crypto-shredding.
 *
 * Each user has one random data key (DEK), stored only wrapped by a master
 * key from roastr_state.master_key_file (crypto.c) in roastr_state.user_keys.
 * Persona fields are sealed with XChaCha20-Poly1305 under the DEK, bound to
 * the user and the field (core/envelope.c), and kept in roastr_state.persona,
 * away from the hot state row.
 *
 * Writes come through patch(): the caller has locked and read the user's
 * row; rs_persona_apply compares the new text with the old plaintext, seals
 * what changed and writes the ciphertext row.  The versioning (conflict
 * check, version bump, change log, notification naming the fields) is the
 * trigger's, which learns which persona fields changed from patch()
 * through rs_trigger_execute (trigger.c).
 *
 * delete_user deletes the state row; the DEK goes with it (ON DELETE
 * CASCADE), so every copy of the user's ciphertext, wherever it survives,
 * can no longer be opened with the live keys.  Copies of the wrapped DEK
 * in old WAL or backups stay openable by the master key that wrapped them
 * until that key is rotated away (rotate_master_key) and removed from the
 * key file: see README, "Encryption".
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/persona.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "access.h"
#include "crypto.h"
#include "errcodes.h"
#include "fields.h"
#include "json_util.h"
#include "keyring.h"
#include "persona.h"
#include "spi_util.h"
#include "usage.h"


/*
 * rs_user_dek
 *		The user's data key: opened from st, or created (and stored) when
 *		the user has none yet.  Inside SPI, as the owner.
 */
RsDataKey *
rs_user_dek(const pg_uuid_t *user, const RsUserState *st, bool create)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[4] = {UUIDOID, INT4OID, INT4OID, BYTEAOID};
	RsDataKey  *dek = NULL;
	uint32		master_id;
	bytea	   *wrapped;
	Datum		args[4];

	if (st->has_dek)
		return rs_dek_open(user, st->dek_keygen, st->dek_master_id,
						   st->dek_wrapped);
	if (!create)
		return NULL;
	wrapped = rs_dek_create(user, 1, &master_id, &dek);
	args[0] = UUIDPGetDatum(user);
	args[1] = Int32GetDatum(1);
	args[2] = Int32GetDatum((int32) master_id);
	args[3] = PointerGetDatum(wrapped);
	rs_spi_run(rs_spi_kept(&plan,
						   "INSERT INTO roastr_state.user_keys (user_id, keygen, master_key_id, wrapped) "
						   "VALUES ($1, $2, $3, $4)",
						   4, types),
			   args, NULL, false, 0, SPI_OK_INSERT, "store the data key");
	return dek;
}

/*
 * rs_persona_plaintext
 *		The decrypted text of a persona field of st (NULL when empty).
 */
text *
rs_persona_plaintext(const pg_uuid_t *user, const RsUserState *st,
					 RsDataKey *dek, RsFieldId f)
{
	if (st->nulls[f])
		return NULL;
	if (dek == NULL)
		ereport(ERROR,
				errcode(ERRCODE_DATA_CORRUPTED),
				errmsg("could not decrypt field \"%s\" of user %s",
					   rs_fields[f].path, rs_uuid_to_cstring(user)),
				errdetail_log("The user has ciphertext but no data key."));
	return rs_persona_open(dek, user, rs_fields[f].path,
						   DatumGetByteaPP(st->vals[f]));
}

/* Wipe the bytes of a decrypted text before its memory is reused. */
static void
wipe_text(text *t)
{
	if (t != NULL)
		sodium_memzero(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/*
 * rs_persona_apply
 *		Write the persona text of a patch.  "st" is the user's row, locked
 *		and read by the caller (inside SPI, as the owner); vals/nulls hold
 *		the new texts of the fields in "mask"; "dek" is the user's data key
 *		(rs_user_dek), wiped here.  Returns the persona fields whose text
 *		really changed; writing the same text is no change.
 *		persona.tolerance needs the pro or plus plan (PT402).
 */
uint32
rs_persona_apply(const pg_uuid_t *user, const RsUserState *st, uint32 mask,
				 Datum *vals, bool *nulls, RsDataKey *dek)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[4] = {UUIDOID, BYTEAOID, BYTEAOID, BYTEAOID};
	RsEffective eff;
	uint32		changed = 0;
	Datum		args[4];
	char		argnulls[4] = {' ', ' ', ' ', ' '};
	static const RsFieldId fields[3] = {F_PERSONA_IDENTITY,
	F_PERSONA_INTOLERANCE, F_PERSONA_TOLERANCE};

	rs_effective(st, GetCurrentTransactionStartTimestamp(), &eff);
	if ((mask & (1U << F_PERSONA_TOLERANCE)) && !nulls[F_PERSONA_TOLERANCE] &&
		!rs_plan_has_tolerance(eff.plan))
		ereport(ERROR,
				errcode(ERRCODE_ROASTR_PLAN_REQUIRED),
				errmsg("field \"persona.tolerance\" needs the pro or plus plan"),
				errdetail("The current plan is \"%s\".", eff.plan),
				errhidestmt(true));

	args[0] = UUIDPGetDatum(user);
	for (int i = 0; i < 3; i++)
	{
		RsFieldId	f = fields[i];
		bool		same;

		args[i + 1] = st->vals[f];
		argnulls[i + 1] = st->nulls[f] ? 'n' : ' ';
		if (!(mask & (1U << f)))
			continue;
		if (nulls[f] || st->nulls[f])
			same = nulls[f] && st->nulls[f];
		else
		{
			text	   *old = rs_persona_plaintext(user, st, dek, f);
			text	   *new = DatumGetTextPP(vals[f]);

			same = VARSIZE_ANY_EXHDR(old) == VARSIZE_ANY_EXHDR(new) &&
				sodium_memcmp(VARDATA_ANY(old), VARDATA_ANY(new),
							  VARSIZE_ANY_EXHDR(new)) == 0;
			wipe_text(old);
		}
		if (same)
			continue;
		changed |= 1U << f;
		if (nulls[f])
		{
			args[i + 1] = (Datum) 0;
			argnulls[i + 1] = 'n';
		}
		else
		{
			text	   *t = DatumGetTextPP(vals[f]);

			args[i + 1] = PointerGetDatum(rs_persona_seal(dek, user,
														  rs_fields[f].path,
														  VARDATA_ANY(t),
														  VARSIZE_ANY_EXHDR(t)));
			argnulls[i + 1] = ' ';
		}
	}
	rs_datakey_clear(dek);
	if (changed == 0)
		return 0;

	rs_spi_run(rs_spi_kept(&plan,
						   "INSERT INTO roastr_state.persona (user_id, identity, intolerance, tolerance) "
						   "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET "
						   "identity = EXCLUDED.identity, intolerance = EXCLUDED.intolerance, "
						   "tolerance = EXCLUDED.tolerance",
						   4, types),
			   args, argnulls, false, 0, SPI_OK_INSERT, "store persona");
	return changed;
}

/*
 * persona_trigger_row
 *		For the triggers of roastr_state.persona: check they are fired
 *		BEFORE ... FOR EACH ROW, and return the row being written.
 */
static HeapTuple
persona_trigger_row(FunctionCallInfo fcinfo, const char *name,
					TriggerData **tdp)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("function \"%s\" must be fired BEFORE ... FOR EACH ROW", name));
	*tdp = td;
	return TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple :
		td->tg_trigtuple;
}

PG_FUNCTION_INFO_V1(roastr_state_persona_guard);

/*
 * roastr_state_persona_guard
 *		BEFORE INSERT OR UPDATE on roastr_state.persona in a 0.1.0 schema,
 *		which has no persona encryption: it refuses any persona text, so
 *		nothing can store it in plain text by accident.  0.2.0 replaces it
 *		with persona_check.
 */
Datum
roastr_state_persona_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	HeapTuple	tup = persona_trigger_row(fcinfo, "persona_guard", &td);
	TupleDesc	desc = RelationGetDescr(td->tg_relation);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		isnull;

		if (att->attisdropped || strcmp(NameStr(att->attname), "user_id") == 0)
			continue;
		(void) heap_getattr(tup, i + 1, desc, &isnull);
		if (!isnull)
			ereport(ERROR,
					errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					errmsg("persona text cannot be stored before ALTER EXTENSION roastr_state UPDATE"),
					errdetail("Persona fields are stored only encrypted, which needs version 0.2.0 of the extension."),
					errtable(td->tg_relation));
	}
	return PointerGetDatum(tup);
}

PG_FUNCTION_INFO_V1(roastr_state_persona_check);

/*
 * roastr_state_persona_check
 *		BEFORE INSERT OR UPDATE on roastr_state.persona: every value must be
 *		one of our ciphertext envelopes.  patch() writes them; a restore
 *		copies them.  Anything else (say, plain text written directly) is
 *		refused, so no plaintext can be stored by mistake.
 */
Datum
roastr_state_persona_check(PG_FUNCTION_ARGS)
{
	TriggerData *td;
	HeapTuple	tup = persona_trigger_row(fcinfo, "persona_check", &td);
	TupleDesc	desc = RelationGetDescr(td->tg_relation);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		isnull;
		Datum		d;
		bytea	   *b;
		uint32		keygen;

		if (att->attisdropped || att->atttypid != BYTEAOID)
			continue;
		d = heap_getattr(tup, i + 1, desc, &isnull);
		if (isnull)
			continue;
		b = DatumGetByteaPP(d);
		if (rs_env_keygen((const uint8_t *) VARDATA_ANY(b),
						  VARSIZE_ANY_EXHDR(b), &keygen) != RS_OK)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("column \"%s\" of relation \"%s\" must hold roastr_state ciphertext",
						   NameStr(att->attname),
						   RelationGetRelationName(td->tg_relation)),
					errhint("Write persona text with roastr_state.patch()."),
					errtablecol(td->tg_relation, i + 1),
					errhidestmt(true));
	}
	return PointerGetDatum(tup);
}

PG_FUNCTION_INFO_V1(roastr_state_delete_user);

/*
 * roastr_state.delete_user(user_id uuid) -> boolean
 *		The service, or the user themselves, erases the user: state, persona
 *		ciphertext, data key, mutation and consumption records.  True when
 *		there was such a user.
 */
Datum
roastr_state_delete_user(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	RsUserSwitch sw;
	Datum		args[1];
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {UUIDOID};
	bool		deleted;

	rs_resolve_target(fcinfo, 0, &caller, &user);
	SPI_connect();
	rs_become_owner(&sw);
	args[0] = UUIDPGetDatum(&user);
	deleted = rs_spi_run(rs_spi_kept(&plan,
									 "DELETE FROM roastr_state.state "
									 "WHERE user_id OPERATOR(pg_catalog.=) $1",
									 1, types),
						 args, NULL, false, 0, SPI_OK_DELETE,
						 "delete user") > 0;
	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_BOOL(deleted);
}

/*
 * rewrap_batch
 *		Rewrap up to "batch" data keys that are not under master key
 *		"current", skipping rows a concurrent writer holds; returns how many.
 *		Inside SPI, as the owner.
 */
static uint64
rewrap_batch(uint32 current, int32 batch)
{
	static SPIPlanPtr pick = NULL;
	static SPIPlanPtr store = NULL;
	Oid			t2[2] = {INT4OID, INT4OID};
	Oid			t3[3] = {UUIDOID, INT4OID, BYTEAOID};
	Datum		args[2];
	SPITupleTable *tt;
	uint64		n;

	rs_spi_kept(&store,
				"UPDATE roastr_state.user_keys SET master_key_id = $2, wrapped = $3, "
				"rewrapped_at = pg_catalog.now() "
				"WHERE user_id OPERATOR(pg_catalog.=) $1",
				3, t3);
	args[0] = Int32GetDatum((int32) current);
	args[1] = Int32GetDatum(batch);
	n = rs_spi_run(rs_spi_kept(&pick,
							   "SELECT user_id, keygen, master_key_id, wrapped FROM roastr_state.user_keys "
							   "WHERE master_key_id OPERATOR(pg_catalog.<>) $1 "
							   "LIMIT $2 FOR UPDATE SKIP LOCKED",
							   2, t2),
				   args, NULL, false, 0, SPI_OK_SELECT, "read data keys");
	tt = SPI_tuptable;
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = tt->vals[i];
		bool		isnull;
		TupleDesc	desc = tt->tupdesc;
		pg_uuid_t	user = *DatumGetUUIDP(SPI_getbinval(tup, desc, 1, &isnull));
		uint32		keygen = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		uint32		mid = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		bytea	   *wrapped = DatumGetByteaPP(SPI_getbinval(tup, desc, 4,
															&isnull));
		uint32		newid;
		bytea	   *rewrapped;
		Datum		sargs[3];

		rewrapped = rs_dek_rewrap(&user, keygen, mid, wrapped, &newid);
		sargs[0] = UUIDPGetDatum(&user);
		sargs[1] = Int32GetDatum((int32) newid);
		sargs[2] = PointerGetDatum(rewrapped);
		rs_spi_run(store, sargs, NULL, false, 0, SPI_OK_UPDATE,
				   "store a rewrapped data key");
	}
	return n;
}

/*
 * count_not_current
 *		How many data keys are not under master key "current".  Inside SPI,
 *		as the owner.
 */
static int64
count_not_current(uint32 current)
{
	static SPIPlanPtr count = NULL;
	Oid			t1[1] = {INT4OID};
	Datum		args[1];
	bool		isnull;

	args[0] = Int32GetDatum((int32) current);
	rs_spi_run(rs_spi_kept(&count,
						   "SELECT pg_catalog.count(*) FROM roastr_state.user_keys "
						   "WHERE master_key_id OPERATOR(pg_catalog.<>) $1",
						   1, t1),
			   args, NULL, false, 1, SPI_OK_SELECT, "count data keys");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

PG_FUNCTION_INFO_V1(roastr_state_rotate_master_key);

/*
 * roastr_state.rotate_master_key(batch_size integer DEFAULT 1000) -> jsonb
 *		Service only.  Rewraps up to batch_size data keys that are not under
 *		the newest master key, skipping keys that a concurrent writer holds
 *		(they are taken by a later call), and returns {key_id, rewrapped,
 *		remaining}.  Each call is one short transaction: call it until
 *		remaining is 0; writers are never blocked for longer than one batch.
 *		Persona ciphertext does not change: only the wrapping of the keys.
 */
Datum
roastr_state_rotate_master_key(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	RsUserSwitch sw;
	int32		batch;
	uint32		current;
	uint64		n;
	int64		remaining;
	JsonbParseState *js = NULL;
	JsonbValue *res;

	rs_get_caller(&caller);
	rs_require_service(&caller, "rotate_master_key");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("batch_size must not be null"));
	batch = PG_GETARG_INT32(0);
	if (batch < 1 || batch > 100000)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("batch_size must be between 1 and 100000"));
	current = rs_keyring_current_id();	/* requires a ring, checks the key */

	SPI_connect();
	rs_become_owner(&sw);
	n = rewrap_batch(current, batch);
	remaining = count_not_current(current);
	rs_restore_user(&sw);
	SPI_finish();

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	rs_jb_key(&js, "key_id");
	rs_jb_int64(&js, current);
	rs_jb_key(&js, "rewrapped");
	rs_jb_int64(&js, (int64) n);
	rs_jb_key(&js, "remaining");
	rs_jb_int64(&js, remaining);
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
}
