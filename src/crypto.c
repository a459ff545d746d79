/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  Persona encryption: users' data keys and per-field ciphertext
 *	  envelopes.
 *
 * Each user has a random 32-byte data key, stored only wrapped by a master
 * key of the key ring (keyring.c); core/envelope.c has both formats.  Data
 * keys in the clear live in palloc'd chunks wiped by a memory context reset
 * callback; plaintext is only ever the caller's input or the returned text.
 * Errors about keys and ciphertexts name the user and field, never bytes;
 * the internal reason goes to the server log only (errdetail_log).  Every
 * report in this file also keeps the statement out of the server log
 * (errhidestmt): the statement that needed a key may carry persona text
 * even when the error is about a key file.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/crypto.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>


#include "crypto.h"
#include "json_util.h"
#include "keyring.h"

/* Reset callback of a data key: wipe it before its memory goes. */
static void
datakey_reset_callback(void *arg)
{
	sodium_memzero(arg, sizeof(RsDataKey));
}

/* A data key and the callback that wipes it, in one chunk. */
typedef struct RsDataKeyChunk
{
	RsDataKey	dek;
	MemoryContextCallback cb;
} RsDataKeyChunk;

/*
 * rs_datakey_alloc
 *		A zeroed data key in CurrentMemoryContext, wiped when that context is
 *		reset or deleted (also on error).
 *
 * Never pfree the result: its wiping callback stays registered with the
 * context.  rs_datakey_clear wipes it early.
 */
RsDataKey *
rs_datakey_alloc(uint32 keygen)
{
	RsDataKeyChunk *chunk = palloc0(sizeof(RsDataKeyChunk));

	chunk->dek.keygen = keygen;
	chunk->cb.func = datakey_reset_callback;
	chunk->cb.arg = &chunk->dek;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &chunk->cb);
	return &chunk->dek;
}

/*
 * rs_datakey_clear
 *		Wipe a data key now; its memory stays allocated until the context
 *		goes.
 */
void
rs_datakey_clear(RsDataKey *dek)
{
	if (dek != NULL)
		sodium_memzero(dek, sizeof(RsDataKey));
}

/* A new bytea for a wrapped data key. */
static bytea *
wrapped_alloc(void)
{
	bytea	   *b = palloc(VARHDRSZ + RS_DEK_WRAPPED_BYTES);

	SET_VARSIZE(b, VARHDRSZ + RS_DEK_WRAPPED_BYTES);
	return b;
}

/*
 * rs_dek_create
 *		Make a new random data key for a user and wrap it under the current
 *		master key.
 *
 * Returns the wrapped key (72 bytes) to store; *master_id receives the id
 * of the master key used, and *dek_out, unless dek_out is NULL, the data
 * key in the clear (see rs_datakey_alloc).  ERROR if no ring is usable.
 */
bytea *
rs_dek_create(const pg_uuid_t *user, uint32 keygen, uint32 *master_id,
			  RsDataKey **dek_out)
{
	RsDataKey  *dek;
	bytea	   *wrapped;
	const uint8 *mk;
	uint32		id;
	int			rc;

	mk = rs_keyring_current(&id);

	wrapped = wrapped_alloc();
	dek = rs_datakey_alloc(keygen);
	crypto_aead_xchacha20poly1305_ietf_keygen(dek->key);
	rc = rs_dek_wrap(mk, id, user->data, keygen, dek->key,
					 (uint8 *) VARDATA(wrapped), RS_DEK_WRAPPED_BYTES);
	if (rc != RS_OK)
	{
		rs_datakey_clear(dek);
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errhidestmt(true),
				errmsg_internal("could not wrap a data key: %s", rs_crypto_strerror(rc)));
	}

	if (master_id != NULL)
		*master_id = id;
	if (dek_out != NULL)
		*dek_out = dek;
	else
		rs_datakey_clear(dek);
	return wrapped;
}

/*
 * unwrap_into
 *		Unwrap a stored data key into dek, or ERROR.
 *
 * An unknown master key id is a configuration problem (the key was removed
 * from the file before every user was rewrapped): F0000, with the id in the
 * detail, which is not secret.  A wrapped key that does not verify is
 * XX001 (data_corrupted) with nothing for the client; the reason goes to the
 * server log only.
 */
static void
unwrap_into(RsDataKey *dek, const pg_uuid_t *user, uint32 keygen,
			uint32 master_id, bytea *wrapped)
{
	struct varlena *raw;
	const uint8 *mk;
	int			rc;

	mk = rs_keyring_key(master_id);
	if (mk == NULL)
		ereport(ERROR,
				errcode(ERRCODE_CONFIG_FILE_ERROR),
				errhidestmt(true),
				errmsg("could not unwrap the data key of user %s",
					   rs_uuid_to_cstring(user)),
				errdetail("Master key %u is not in the file named by roastr_state.master_key_file.",
						  master_id),
				errhint("Put the key back into the file until roastr_state.rotate_master_key() has moved every user to the newest key."));

	raw = pg_detoast_datum_packed((struct varlena *) wrapped);
	rc = rs_dek_unwrap(mk, master_id, user->data, keygen,
					   (const uint8 *) VARDATA_ANY(raw),
					   VARSIZE_ANY_EXHDR(raw), dek->key);
	if (rc == RS_OK)
		rs_keyring_opened(master_id);	/* the key is the right one */
	else
	{
		rs_datakey_clear(dek);
		/* the row, or the key?  ERROR here if it is the key */
		rs_keyring_unwrap_failed(master_id, mk, user);
		ereport(ERROR,
				errcode(ERRCODE_DATA_CORRUPTED),
				errhidestmt(true),
				errmsg("could not unwrap the data key of user %s",
					   rs_uuid_to_cstring(user)),
				errdetail_log("Wrapped data key rejected: %s (master key %u, data key generation %u).",
							  rs_crypto_strerror(rc), master_id, keygen));
	}
}

/*
 * rs_dek_open
 *		Unwrap a user's stored data key.
 *
 * keygen and master_id are the values stored with the wrapped key; both are
 * authenticated.  Returns the key in the clear (see rs_datakey_alloc).
 * ERROR if no ring is usable, the master key is unknown, or the wrapped key
 * was tampered with, relabelled or moved from another user.
 */
RsDataKey *
rs_dek_open(const pg_uuid_t *user, uint32 keygen, uint32 master_id,
			bytea *wrapped)
{
	RsDataKey  *dek;

	rs_keyring_require();
	dek = rs_datakey_alloc(keygen);
	unwrap_into(dek, user, keygen, master_id, wrapped);
	return dek;
}

/*
 * rs_dek_rewrap
 *		Rewrap a user's stored data key under the current master key.
 *
 * For rotate_master_key().  Always rewraps, with a fresh nonce, even when
 * master_id already is the current key: callers skip those rows by
 * comparing with rs_keyring_current_id() first.  *new_master_id receives the
 * id now used.  The data key in the clear exists only in a wiped-on-reset
 * chunk and is wiped before returning.
 */
bytea *
rs_dek_rewrap(const pg_uuid_t *user, uint32 keygen, uint32 master_id,
			  bytea *wrapped, uint32 *new_master_id)
{
	RsDataKey  *dek;
	bytea	   *result;
	const uint8 *mk;
	uint32		id;
	int			rc;

	mk = rs_keyring_current(&id);

	result = wrapped_alloc();
	dek = rs_datakey_alloc(keygen);
	unwrap_into(dek, user, keygen, master_id, wrapped);
	rc = rs_dek_wrap(mk, id, user->data, keygen, dek->key,
					 (uint8 *) VARDATA(result), RS_DEK_WRAPPED_BYTES);
	rs_datakey_clear(dek);
	if (rc != RS_OK)
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errhidestmt(true),
				errmsg_internal("could not wrap a data key: %s", rs_crypto_strerror(rc)));

	if (new_master_id != NULL)
		*new_master_id = id;
	return result;
}

/*
 * rs_persona_seal
 *		Encrypt len bytes of persona text for one user and field.
 *
 * field is the path, e.g. "persona.identity"; it is bound into the
 * ciphertext, as are the user and the data key's generation.  Text longer
 * than RS_PERSONA_MAX_BYTES bytes is 22023 naming the field.  Returns the
 * envelope (len + 46 bytes); the caller's plaintext is not copied anywhere.
 */
bytea *
rs_persona_seal(const RsDataKey *dek, const pg_uuid_t *user,
				const char *field, const char *plain, int len)
{
	bytea	   *result;
	size_t		envlen = 0;
	int			rc;

	if (len < 0)
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errhidestmt(true),
				errmsg_internal("negative persona text length %d", len));
	if (len > RS_PERSONA_MAX_BYTES)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errhidestmt(true),
				errmsg("value of field \"%s\" is too long", field),
				errdetail("Persona text may have at most %d bytes, this one has %d.",
						  RS_PERSONA_MAX_BYTES, len));

	result = palloc(VARHDRSZ + len + RS_ENV_OVERHEAD);
	rc = rs_env_seal(dek->key, dek->keygen, user->data, field,
					 (const uint8 *) plain, (size_t) len,
					 (uint8 *) VARDATA(result), (size_t) len + RS_ENV_OVERHEAD,
					 &envlen);
	if (rc != RS_OK)
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errhidestmt(true),
				errmsg("could not encrypt field \"%s\"", field),
				errdetail_log("Sealing failed: %s.", rs_crypto_strerror(rc)));
	SET_VARSIZE(result, VARHDRSZ + envlen);
	return result;
}

/*
 * rs_persona_open
 *		Verify and decrypt a stored persona envelope.
 *
 * env is hostile input (it may have been edited, truncated, or copied from
 * another row or field); it may be toasted.  Any failure is the same error,
 * XX001 "could not decrypt field ... of user ...", with nothing for the
 * client that would help an attacker; the reason goes to the server log.
 * The envelope's length is checked before anything is allocated for it.
 * Returns the text, which is the caller's to use and drop.
 */
text *
rs_persona_open(const RsDataKey *dek, const pg_uuid_t *user,
				const char *field, bytea *env)
{
	struct varlena *raw = pg_detoast_datum_packed((struct varlena *) env);
	const uint8 *data = (const uint8 *) VARDATA_ANY(raw);
	size_t		envlen = VARSIZE_ANY_EXHDR(raw);
	uint32		gen = 0;
	int			rc;

	rc = rs_env_keygen(data, envlen, &gen);
	if (rc == RS_OK && gen != dek->keygen)
		rc = RS_ERR_KEYGEN;
	if (rc == RS_OK)
	{
		/* rs_env_keygen bounded envlen to RS_ENV_MAX_BYTES */
		size_t		cap = envlen - RS_ENV_OVERHEAD;
		size_t		plen = 0;
		text	   *result = palloc(VARHDRSZ + cap);

		rc = rs_env_open(dek->key, user->data, field, data, envlen,
						 (uint8 *) VARDATA(result), cap, &plen);
		if (rc == RS_OK)
		{
			SET_VARSIZE(result, VARHDRSZ + plen);
			return result;
		}
		pfree(result);			/* nothing was decrypted into it */
	}

	ereport(ERROR,
			errcode(ERRCODE_DATA_CORRUPTED),
			errhidestmt(true),
			errmsg("could not decrypt field \"%s\" of user %s",
				   field, rs_uuid_to_cstring(user)),
			errdetail_log("Envelope rejected: %s.", rs_crypto_strerror(rc)));
	pg_unreachable();
}
