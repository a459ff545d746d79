/*-------------------------------------------------------------------------
 *
 * envelope.c
 *	  Persona ciphertext envelopes and data-key wrapping (pure C).
 *
 * The byte formats are documented in rs_crypto_core.h.  Both use libsodium's
 * XChaCha20-Poly1305-IETF with a fresh 24-byte random nonce per call: the
 * nonce is long enough that random nonces never repeat in practice, so no
 * counter has to be kept consistent across backends, restarts or restores.
 *
 * Everything that opens (rs_env_open, rs_env_keygen, rs_dek_unwrap) treats
 * its input as hostile: every length is checked before the first byte is
 * read, nothing is copied before the Poly1305 tag has been verified (libsodium
 * checks the tag before it decrypts), and every failure is a status code,
 * never a crash.  Header checks compare public bytes only, so they need not
 * be constant-time; the tag comparison inside libsodium is.
 *
 * Randomness comes from randombytes_buf().  libsodium 1.0.18 as packaged by
 * Debian uses its "sysrandom" implementation (getrandom(2) on every call),
 * which is safe across fork(); the PostgreSQL glue stirs once per process as
 * well, in case another build selects a user-space generator.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/core/envelope.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include <sodium.h>

#include "rs_crypto_core.h"

/* Longest associated data of an envelope: header, user id, field path. */
#define RS_ENV_AD_MAX	(RS_ENV_HEADER_BYTES + RS_USER_BYTES + RS_FIELD_MAX_BYTES)

/* Associated data of a wrapped data key: prefix, user, generation, key id. */
#define RS_DEK_AD_BYTES (RS_DEK_AD_PREFIX_BYTES + RS_USER_BYTES + 4 + 4)

/* The formats are fixed; make sure libsodium agrees with our constants. */
_Static_assert(RS_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
			   "key size");
_Static_assert(RS_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
			   "nonce size");
_Static_assert(RS_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES,
			   "tag size");
_Static_assert(RS_ENV_OVERHEAD == 46, "envelope overhead");
_Static_assert(RS_ENV_MAX_BYTES < 4096, "envelopes stay under 4 KB");
_Static_assert(RS_DEK_WRAPPED_BYTES == 72, "wrapped data key size");

/*
 * rs_crypto_strerror
 *		A short, fixed description of a status, for the server log only.
 *
 * The phrases name what went wrong, never which bytes: they carry no key,
 * nonce or plaintext, and are safe in errdetail_log().
 */
const char *
rs_crypto_strerror(int status)
{
	switch (status)
	{
		case RS_OK:
			return "success";
		case RS_ERR_ARG:
			return "invalid argument";
		case RS_ERR_BUFFER:
			return "output buffer too small";
		case RS_ERR_TOO_LONG:
			return "plaintext too long";
		case RS_ERR_FORMAT:
			return "truncated, oversized or malformed";
		case RS_ERR_VERSION:
			return "unknown envelope format version";
		case RS_ERR_AUTH:
			return "authentication tag mismatch";
		case RS_ERR_UNKNOWN_KEY:
			return "key id not in the master key ring";
		case RS_ERR_KEYGEN:
			return "ciphertext made under another data key generation";
		case RS_ERR_KEYFILE_SYNTAX:
			return "line is not \"<key id> <64 hex digits>\"";
		case RS_ERR_KEYFILE_DUPLICATE:
			return "duplicate key id";
		case RS_ERR_KEYFILE_TOO_MANY:
			return "too many keys";
		case RS_ERR_KEYFILE_EMPTY:
			return "no keys";
	}
	return "unknown status";
}

/* Store v big-endian at p[0..3]. */
static void
store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

/* Read a big-endian uint32 from p[0..3]. */
static uint32_t
load_be32(const uint8_t *p)
{
	return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
		((uint32_t) p[2] << 8) | (uint32_t) p[3];
}

/*
 * env_ad
 *		Build an envelope's associated data into ad (RS_ENV_AD_MAX bytes).
 *
 * header is the envelope's first RS_ENV_HEADER_BYTES bytes.  The header and
 * user id have fixed sizes and the field path is the rest, so the
 * concatenation is unambiguous.  Fails for a NULL, empty or overlong path;
 * no more than RS_FIELD_MAX_BYTES + 1 bytes of it are ever read.
 */
static int
env_ad(uint8_t *ad, size_t *adlen, const uint8_t *header,
	   const uint8_t *user, const char *field)
{
	size_t		flen = 0;

	if (field == NULL)
		return RS_ERR_ARG;
	while (flen <= RS_FIELD_MAX_BYTES && field[flen] != '\0')
		flen++;
	if (flen == 0 || flen > RS_FIELD_MAX_BYTES)
		return RS_ERR_ARG;

	memcpy(ad, header, RS_ENV_HEADER_BYTES);
	memcpy(ad + RS_ENV_HEADER_BYTES, user, RS_USER_BYTES);
	memcpy(ad + RS_ENV_HEADER_BYTES + RS_USER_BYTES, field, flen);
	*adlen = RS_ENV_HEADER_BYTES + RS_USER_BYTES + flen;
	return RS_OK;
}

/*
 * rs_env_seal
 *		Encrypt plen bytes of persona text for one user and field.
 *
 * key is the user's data key, keygen its generation (written into the
 * header).  out receives the envelope, plen + RS_ENV_OVERHEAD bytes; out must
 * not overlap plain.  plain may be NULL only when plen is 0.  On failure
 * *outlen is 0 and out holds no plaintext.
 */
int
rs_env_seal(const uint8_t key[RS_KEY_BYTES], uint32_t keygen,
			const uint8_t user[RS_USER_BYTES], const char *field,
			const uint8_t *plain, size_t plen,
			uint8_t *out, size_t outcap, size_t *outlen)
{
	uint8_t		ad[RS_ENV_AD_MAX];
	size_t		adlen;
	unsigned long long clen;
	int			rc;

	if (outlen == NULL)
		return RS_ERR_ARG;
	*outlen = 0;
	if (key == NULL || user == NULL || out == NULL ||
		(plain == NULL && plen > 0))
		return RS_ERR_ARG;
	if (plen > RS_PERSONA_MAX_BYTES)
		return RS_ERR_TOO_LONG;
	if (outcap < plen + RS_ENV_OVERHEAD)
		return RS_ERR_BUFFER;

	out[0] = RS_ENV_MAGIC;
	out[1] = RS_ENV_VERSION;
	store_be32(out + 2, keygen);
	rc = env_ad(ad, &adlen, out, user, field);
	if (rc != RS_OK)
		return rc;
	randombytes_buf(out + RS_ENV_NONCE_OFFSET, RS_NONCE_BYTES);

	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + RS_ENV_CT_OFFSET,
												   &clen,
												   plain,
												   (unsigned long long) plen,
												   ad, adlen, NULL,
												   out + RS_ENV_NONCE_OFFSET,
												   key) != 0 ||
		clen != plen + RS_TAG_BYTES)
	{
		/* cannot happen for lengths this small; leave nothing behind */
		sodium_memzero(out, plen + RS_ENV_OVERHEAD);
		return RS_ERR_ARG;
	}
	*outlen = plen + RS_ENV_OVERHEAD;
	return RS_OK;
}

/*
 * rs_env_open
 *		Verify and decrypt an envelope sealed by rs_env_seal.
 *
 * env is hostile.  It must be exactly one envelope: RS_ENV_OVERHEAD to
 * RS_ENV_MAX_BYTES bytes, magic 'R', version 1, and a tag that verifies
 * under key with this user and field as associated data.  plain receives
 * envlen - RS_ENV_OVERHEAD bytes (plaincap must allow that; plain may be
 * NULL when it is 0).  On any failure *plen is 0 and nothing has been
 * written to plain; the status says why, for the server log only.
 */
int
rs_env_open(const uint8_t key[RS_KEY_BYTES],
			const uint8_t user[RS_USER_BYTES], const char *field,
			const uint8_t *env, size_t envlen,
			uint8_t *plain, size_t plaincap, size_t *plen)
{
	uint8_t		ad[RS_ENV_AD_MAX];
	uint8_t		dummy[1];
	size_t		adlen;
	size_t		mlen;
	unsigned long long got;
	int			rc;

	if (plen == NULL)
		return RS_ERR_ARG;
	*plen = 0;
	if (key == NULL || user == NULL || env == NULL)
		return RS_ERR_ARG;

	/* lengths first: nothing of env is read before they are known good */
	if (envlen < RS_ENV_OVERHEAD || envlen > RS_ENV_MAX_BYTES)
		return RS_ERR_FORMAT;
	if (env[0] != RS_ENV_MAGIC)
		return RS_ERR_FORMAT;
	if (env[1] != RS_ENV_VERSION)
		return RS_ERR_VERSION;

	mlen = envlen - RS_ENV_OVERHEAD;
	if (plaincap < mlen || (plain == NULL && mlen > 0))
		return RS_ERR_BUFFER;
	if (plain == NULL)
		plain = dummy;			/* empty text: libsodium still wants a pointer */

	rc = env_ad(ad, &adlen, env, user, field);
	if (rc != RS_OK)
		return rc;

	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &got, NULL,
												   env + RS_ENV_CT_OFFSET,
												   (unsigned long long) (envlen - RS_ENV_CT_OFFSET),
												   ad, adlen,
												   env + RS_ENV_NONCE_OFFSET,
												   key) != 0)
		return RS_ERR_AUTH;
	if (got != mlen)
	{
		/* cannot happen: the lengths are fixed by the format */
		sodium_memzero(plain, mlen);
		return RS_ERR_FORMAT;
	}
	*plen = mlen;
	return RS_OK;
}

/*
 * rs_env_keygen
 *		Read the data-key generation from an envelope's header.
 *
 * The envelope must pass the same length, magic and version checks as in
 * rs_env_open; the generation is not authenticated until it is opened.
 */
int
rs_env_keygen(const uint8_t *env, size_t envlen, uint32_t *keygen)
{
	if (keygen == NULL)
		return RS_ERR_ARG;
	*keygen = 0;
	if (env == NULL)
		return RS_ERR_ARG;
	if (envlen < RS_ENV_OVERHEAD || envlen > RS_ENV_MAX_BYTES)
		return RS_ERR_FORMAT;
	if (env[0] != RS_ENV_MAGIC)
		return RS_ERR_FORMAT;
	if (env[1] != RS_ENV_VERSION)
		return RS_ERR_VERSION;
	*keygen = load_be32(env + 2);
	return RS_OK;
}

/* Build the associated data of a wrapped data key (RS_DEK_AD_BYTES). */
static void
dek_ad(uint8_t *ad, const uint8_t *user, uint32_t keygen, uint32_t master_id)
{
	memcpy(ad, RS_DEK_AD_PREFIX, RS_DEK_AD_PREFIX_BYTES);
	memcpy(ad + RS_DEK_AD_PREFIX_BYTES, user, RS_USER_BYTES);
	store_be32(ad + RS_DEK_AD_PREFIX_BYTES + RS_USER_BYTES, keygen);
	store_be32(ad + RS_DEK_AD_PREFIX_BYTES + RS_USER_BYTES + 4, master_id);
}

/*
 * rs_dek_wrap
 *		Wrap a user's 32-byte data key under a master key.
 *
 * out receives RS_DEK_WRAPPED_BYTES bytes.  The associated data binds the
 * wrapped key to the user, the data key's generation and the master key's
 * id, so a wrapped key copied to another user, or relabelled with another
 * generation or key id, does not unwrap.
 */
int
rs_dek_wrap(const uint8_t master[RS_KEY_BYTES], uint32_t master_id,
			const uint8_t user[RS_USER_BYTES], uint32_t keygen,
			const uint8_t dek[RS_KEY_BYTES],
			uint8_t *out, size_t outcap)
{
	uint8_t		ad[RS_DEK_AD_BYTES];
	unsigned long long clen;

	if (master == NULL || user == NULL || dek == NULL || out == NULL)
		return RS_ERR_ARG;
	if (outcap < RS_DEK_WRAPPED_BYTES)
		return RS_ERR_BUFFER;

	dek_ad(ad, user, keygen, master_id);
	randombytes_buf(out, RS_NONCE_BYTES);
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + RS_NONCE_BYTES, &clen,
												   dek, RS_KEY_BYTES,
												   ad, sizeof(ad), NULL,
												   out, master) != 0 ||
		clen != RS_KEY_BYTES + RS_TAG_BYTES)
	{
		sodium_memzero(out, RS_DEK_WRAPPED_BYTES);
		return RS_ERR_ARG;
	}
	return RS_OK;
}

/*
 * rs_dek_unwrap
 *		Verify and unwrap a data key wrapped by rs_dek_wrap.
 *
 * wrapped is hostile and must be exactly RS_DEK_WRAPPED_BYTES long.  user,
 * keygen and master_id must be the values it was wrapped with.  On failure
 * dek is all zeros.
 */
int
rs_dek_unwrap(const uint8_t master[RS_KEY_BYTES], uint32_t master_id,
			  const uint8_t user[RS_USER_BYTES], uint32_t keygen,
			  const uint8_t *wrapped, size_t wrappedlen,
			  uint8_t dek[RS_KEY_BYTES])
{
	uint8_t		ad[RS_DEK_AD_BYTES];
	unsigned long long got;

	if (dek == NULL)
		return RS_ERR_ARG;
	sodium_memzero(dek, RS_KEY_BYTES);
	if (master == NULL || user == NULL || wrapped == NULL)
		return RS_ERR_ARG;
	if (wrappedlen != RS_DEK_WRAPPED_BYTES)
		return RS_ERR_FORMAT;

	dek_ad(ad, user, keygen, master_id);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dek, &got, NULL,
												   wrapped + RS_NONCE_BYTES,
												   RS_KEY_BYTES + RS_TAG_BYTES,
												   ad, sizeof(ad),
												   wrapped, master) != 0)
		return RS_ERR_AUTH;
	if (got != RS_KEY_BYTES)
	{
		sodium_memzero(dek, RS_KEY_BYTES);
		return RS_ERR_FORMAT;
	}
	return RS_OK;
}
