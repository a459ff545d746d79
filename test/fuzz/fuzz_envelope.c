/*-------------------------------------------------------------------------
 *
 * fuzz_envelope.c
 *	  libFuzzer harness for the persona ciphertext envelope and the wrapped
 *	  data keys (src/core/envelope.c).
 *
 * The input is used three ways:
 *	- as a stored envelope and as a wrapped data key: opening them must fail
 *	  (nobody can forge a Poly1305 tag), and never read or write out of
 *	  bounds;
 *	- as plaintext: sealing then opening gives the same bytes back, and the
 *	  envelope opened under another user, field or key, or with any one
 *	  byte changed (chosen by the input), fails;
 *	- text above the size limit is refused, not truncated.
 * A broken promise aborts; AddressSanitizer and UBSan catch the rest.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_envelope.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rs_crypto_core.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int			LLVMFuzzerInitialize(int *argc, char ***argv);

#define PROMISE(cond) do { if (!(cond)) abort(); } while (0)

static const uint8_t key[RS_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
30, 31, 32};
static const uint8_t user[RS_USER_BYTES] = {0xa1, 0x11, 0x11, 0x11, 0x11,
0x11, 0x41, 0x11, 0x81, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t env[RS_ENV_MAX_BYTES];
	static uint8_t plain[RS_PERSONA_MAX_BYTES];
	uint8_t		other_user[RS_USER_BYTES];
	uint8_t		other_key[RS_KEY_BYTES];
	uint8_t		dek[RS_KEY_BYTES];
	size_t		envlen = 0,
				plen = 0;
	uint32_t	gen = 0;
	uint8_t    *copy;
	int			r;

	/* 1. hostile stored bytes */
	r = rs_env_keygen(data, size, &gen);
	PROMISE(r == RS_OK || r == RS_ERR_FORMAT || r == RS_ERR_VERSION);
	r = rs_env_open(key, user, "persona.identity", data, size, plain,
					sizeof(plain), &plen);
	PROMISE(r != RS_OK);
	PROMISE(rs_dek_unwrap(key, 1, user, 1, data, size, dek) != RS_OK);

	/* 2. the input as plaintext */
	gen = size >= 4 ? (uint32_t) data[0] | (uint32_t) data[1] << 8 |
		(uint32_t) data[2] << 16 | (uint32_t) data[3] << 24 : 7;
	r = rs_env_seal(key, gen, user, "persona.identity", data, size, env,
					sizeof(env), &envlen);
	if (size > RS_PERSONA_MAX_BYTES)
	{
		PROMISE(r == RS_ERR_TOO_LONG);
		return 0;
	}
	PROMISE(r == RS_OK && envlen == size + RS_ENV_OVERHEAD);
	{
		uint32_t	g2 = 0;

		PROMISE(rs_env_keygen(env, envlen, &g2) == RS_OK && g2 == gen);
	}
	memset(plain, 0xee, sizeof(plain));
	r = rs_env_open(key, user, "persona.identity", env, envlen, plain,
					sizeof(plain), &plen);
	PROMISE(r == RS_OK && plen == size && memcmp(plain, data, size) == 0);

	/* another field, user or key */
	PROMISE(rs_env_open(key, user, "persona.tolerance", env, envlen, plain,
						sizeof(plain), &plen) != RS_OK);
	memcpy(other_user, user, sizeof(user));
	other_user[size % RS_USER_BYTES] ^= 1;
	PROMISE(rs_env_open(key, other_user, "persona.identity", env, envlen,
						plain, sizeof(plain), &plen) != RS_OK);
	memcpy(other_key, key, sizeof(key));
	other_key[size % RS_KEY_BYTES] ^= 0x80;
	PROMISE(rs_env_open(other_key, user, "persona.identity", env, envlen,
						plain, sizeof(plain), &plen) != RS_OK);

	/* one changed byte, one bit of it chosen by the input */
	copy = malloc(envlen);
	memcpy(copy, env, envlen);
	{
		size_t		at = size ? (data[size - 1] * 131u + size) % envlen : 0;

		copy[at] ^= (uint8_t) (1u << (size % 8));
	}
	PROMISE(rs_env_open(key, user, "persona.identity", copy, envlen, plain,
						sizeof(plain), &plen) != RS_OK);
	/* truncated by one byte, and one byte too long */
	PROMISE(rs_env_open(key, user, "persona.identity", env, envlen - 1, plain,
						sizeof(plain), &plen) != RS_OK);
	free(copy);
	copy = malloc(envlen + 1);
	memcpy(copy, env, envlen);
	copy[envlen] = 0;
	PROMISE(rs_env_open(key, user, "persona.identity", copy, envlen + 1,
						plain, sizeof(plain), &plen) != RS_OK);
	free(copy);

	/* too small an output buffer is an error, not an overflow */
	if (size > 0)
		PROMISE(rs_env_open(key, user, "persona.identity", env, envlen, plain,
							size - 1, &plen) != RS_OK);
	return 0;
}
