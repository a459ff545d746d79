/*-------------------------------------------------------------------------
 *
 * rs_crypto_core.h
 *	  Pure-C cryptographic core of roastr_state: persona ciphertext
 *	  envelopes, data-key wrapping and the master key file parser.
 *
 * Nothing here includes a PostgreSQL header: the core needs only libc and
 * libsodium, so unit tests, fuzzers and valgrind runs can link it without
 * a server.  src/keyring.c and src/crypto.c are the PostgreSQL glue around it.
 *
 * Every function returns an RsCryptoStatus.  Statuses never carry key,
 * nonce or plaintext bytes; rs_crypto_strerror() turns one into a short,
 * fixed, non-secret English phrase meant for the server log only.
 *
 * Persona envelope (format version 1), all integers big-endian:
 *
 *	  offset  size  content
 *	  0		  1		'R' (0x52), magic
 *	  1		  1		format version, 1
 *	  2		  4		generation of the user's data key (uint32)
 *	  6		  24	random nonce (XChaCha20)
 *	  30	  n+16	XChaCha20-Poly1305-IETF ciphertext of the n plaintext
 *					bytes, followed by the 16-byte Poly1305 tag
 *
 *	  associated data = bytes 0..5 || user id (16 bytes) || field path
 *					   (e.g. "persona.identity", without a terminator)
 *
 * The header is authenticated through the associated data, so a changed
 * version or generation fails like any other flipped byte; the user id and
 * field path bind the ciphertext to its row and field.
 *
 * Wrapped data key (72 bytes):
 *
 *	  nonce (24) || XChaCha20-Poly1305-IETF ciphertext of the 32-byte data
 *	  key (32) || tag (16)
 *
 *	  associated data = "roastr_state/dek/v1" (19 bytes, no terminator)
 *					   || user id (16) || data-key generation (uint32)
 *					   || master key id (uint32)
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/core/rs_crypto_core.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_CRYPTO_CORE_H
#define RS_CRYPTO_CORE_H

#include <stddef.h>
#include <stdint.h>

/* Sizes shared by both formats. */
#define RS_KEY_BYTES			32	/* master keys and data keys */
#define RS_USER_BYTES			16	/* a user id, the raw bytes of a uuid */
#define RS_NONCE_BYTES			24	/* XChaCha20 nonce */
#define RS_TAG_BYTES			16	/* Poly1305 tag */

/* Persona envelope. */
#define RS_ENV_MAGIC			0x52	/* 'R' */
#define RS_ENV_VERSION			1
#define RS_ENV_HEADER_BYTES		6	/* magic, version, generation */
#define RS_ENV_NONCE_OFFSET		RS_ENV_HEADER_BYTES
#define RS_ENV_CT_OFFSET		(RS_ENV_HEADER_BYTES + RS_NONCE_BYTES)
#define RS_ENV_OVERHEAD			(RS_ENV_CT_OFFSET + RS_TAG_BYTES)	/* 46 */

/*
 * Longest persona text, in bytes (not characters).  A persona is a few
 * paragraphs; 4000 bytes holds that in any script (still 1000 characters of
 * 4-byte UTF-8).  The bound keeps every envelope, 4000 + 46 = 4046 bytes,
 * under 4 KB, and a state row with all three persona fields near 12 KB:
 * that row is rewritten on every change of any field, while persona text
 * never enters the change log or a NOTIFY payload, so row size is the only
 * thing it costs.  It also lets rs_env_open refuse a larger envelope before
 * it reads or copies any of it.
 */
#define RS_PERSONA_MAX_BYTES	4000
#define RS_ENV_MAX_BYTES		(RS_PERSONA_MAX_BYTES + RS_ENV_OVERHEAD)

/* Longest field path bound into an envelope ("persona.intolerance" is 19). */
#define RS_FIELD_MAX_BYTES		64

/* Wrapped data key. */
#define RS_DEK_AD_PREFIX		"roastr_state/dek/v1"
#define RS_DEK_AD_PREFIX_BYTES	(sizeof(RS_DEK_AD_PREFIX) - 1)	/* 19 */
#define RS_DEK_WRAPPED_BYTES	(RS_NONCE_BYTES + RS_KEY_BYTES + RS_TAG_BYTES)	/* 72 */

/* Master key ring. */
#define RS_KEYRING_MAX			64	/* keys one file may hold */
#define RS_KEY_ID_MAX			0x7FFFFFFFU /* 2^31 - 1 */

typedef enum RsCryptoStatus
{
	RS_OK = 0,
	RS_ERR_ARG,					/* NULL pointer, empty or overlong field path */
	RS_ERR_BUFFER,				/* output buffer too small */
	RS_ERR_TOO_LONG,			/* plaintext above RS_PERSONA_MAX_BYTES */
	RS_ERR_FORMAT,				/* truncated, oversized or bad magic */
	RS_ERR_VERSION,				/* unknown envelope format version */
	RS_ERR_AUTH,				/* tag mismatch: tampered, moved or wrong key */
	RS_ERR_UNKNOWN_KEY,			/* master key id not in the ring */
	RS_ERR_KEYGEN,				/* envelope made under another data key */
	RS_ERR_KEYFILE_SYNTAX,		/* line is not "<key id> <64 hex digits>" */
	RS_ERR_KEYFILE_DUPLICATE,	/* a key id appears twice */
	RS_ERR_KEYFILE_TOO_MANY,	/* more than RS_KEYRING_MAX keys */
	RS_ERR_KEYFILE_EMPTY		/* no key at all */
} RsCryptoStatus;

/* One master key.  Lives only in memory the caller provides. */
typedef struct RsMasterKey
{
	uint32_t	id;
	uint8_t		key[RS_KEY_BYTES];
} RsMasterKey;

/*
 * The master key ring: every key of the file; current_id is the highest id,
 * the one that wraps new data keys.  A plain struct without pointers, so the
 * caller can place it in guarded memory (sodium_malloc) as a whole.
 */
typedef struct RsKeyRing
{
	int			nkeys;
	uint32_t	current_id;
	RsMasterKey keys[RS_KEYRING_MAX];
} RsKeyRing;

extern const char *rs_crypto_strerror(int status);

/* envelope.c */
extern int	rs_env_seal(const uint8_t key[RS_KEY_BYTES], uint32_t keygen,
						const uint8_t user[RS_USER_BYTES], const char *field,
						const uint8_t *plain, size_t plen,
						uint8_t *out, size_t outcap, size_t *outlen);
extern int	rs_env_open(const uint8_t key[RS_KEY_BYTES],
						const uint8_t user[RS_USER_BYTES], const char *field,
						const uint8_t *env, size_t envlen,
						uint8_t *plain, size_t plaincap, size_t *plen);
extern int	rs_env_keygen(const uint8_t *env, size_t envlen, uint32_t *keygen);

extern int	rs_dek_wrap(const uint8_t master[RS_KEY_BYTES], uint32_t master_id,
						const uint8_t user[RS_USER_BYTES], uint32_t keygen,
						const uint8_t dek[RS_KEY_BYTES],
						uint8_t *out, size_t outcap);
extern int	rs_dek_unwrap(const uint8_t master[RS_KEY_BYTES], uint32_t master_id,
						  const uint8_t user[RS_USER_BYTES], uint32_t keygen,
						  const uint8_t *wrapped, size_t wrappedlen,
						  uint8_t dek[RS_KEY_BYTES]);

/* keyfile.c */
extern int	rs_keyfile_parse(const char *text, size_t len, RsKeyRing *ring,
							 int *bad_line);
extern const uint8_t *rs_keyring_find(const RsKeyRing *ring, uint32_t id);

#endif							/* RS_CRYPTO_CORE_H */
