/*-------------------------------------------------------------------------
 *
 * test_crypto.c
 *	  Unit tests of the pure-C crypto core (src/core), without a server.
 *
 * Built and run by test/extra/unit_crypto.sh, natively and under valgrind.
 * Prints one line per test and ends with "N passed, N failed"; the exit
 * status is 1 if anything failed.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/unit/test_crypto.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rs_crypto_core.h"

#include "unit_check.h"


static const uint8_t user_a[RS_USER_BYTES] = {
	0xa1, 0x11, 0x11, 0x11, 0x11, 0x11, 0x41, 0x11,
	0x81, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11
};
static const uint8_t user_b[RS_USER_BYTES] = {
	0xb2, 0x22, 0x22, 0x22, 0x22, 0x22, 0x42, 0x22,
	0x82, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22
};

/* Decode a hex string of known length; aborts on a bad test literal. */
static void
hex(uint8_t *out, size_t outlen, const char *s)
{
	size_t		binlen;

	if (sodium_hex2bin(out, outlen, s, strlen(s), NULL, &binlen, NULL) != 0 ||
		binlen != outlen)
	{
		fprintf(stderr, "bad hex literal in test\n");
		exit(2);
	}
}

/*
 * Known-answer test of libsodium's XChaCha20-Poly1305-IETF itself.
 *
 * Source: draft-irtf-cfrg-xchacha-03, "XChaCha: eXtended-nonce ChaCha and
 * AEAD_XChaCha20_Poly1305", Appendix A.3.1 (AEAD_XChaCha20_Poly1305 test
 * vector), https://datatracker.ietf.org/doc/html/draft-irtf-cfrg-xchacha-03
 * -- the same key, AAD and plaintext as libsodium's own
 * test/default/aead_xchacha20poly1305.c, which uses another nonce.
 */
static void
test_kat(void)
{
	static const char msg[] =
		"Ladies and Gentlemen of the class of '99: If I could offer you "
		"only one tip for the future, sunscreen would be it.";
	uint8_t		key[32];
	uint8_t		nonce[24];
	uint8_t		aad[12];
	uint8_t		expect[114 + 16];
	uint8_t		ct[114 + 16];
	uint8_t		pt[114];
	unsigned long long clen = 0;
	unsigned long long mlen = 0;

	hex(key, sizeof(key),
		"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
	hex(nonce, sizeof(nonce),
		"404142434445464748494a4b4c4d4e4f5051525354555657");
	hex(aad, sizeof(aad), "50515253c0c1c2c3c4c5c6c7");
	hex(expect, sizeof(expect),
		"bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
		"731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
		"2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
		"21f9664c97637da9768812f615c68b13b52e"
		"c0875924c1c7987947deafd8780acf49");

	check(sizeof(msg) - 1 == 114, "kat: plaintext is 114 bytes", NULL);
	crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen,
											   (const uint8_t *) msg, 114,
											   aad, sizeof(aad), NULL,
											   nonce, key);
	check(clen == sizeof(expect) && memcmp(ct, expect, sizeof(expect)) == 0,
		  "kat: draft-irtf-cfrg-xchacha-03 A.3.1 ciphertext and tag", NULL);
	check(crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &mlen, NULL,
													 expect, sizeof(expect),
													 aad, sizeof(aad),
													 nonce, key) == 0 &&
		  mlen == 114 && memcmp(pt, msg, 114) == 0,
		  "kat: A.3.1 decrypts to the plaintext", NULL);
}

/*
 * The envelope matches its documented byte format: header bytes, and a
 * ciphertext that plain libsodium opens with the documented associated
 * data.  This pins the format independently of rs_env_open.
 */
static void
test_format(void)
{
	uint8_t		key[32];
	uint8_t		env[RS_ENV_MAX_BYTES];
	uint8_t		ad[6 + 16 + 16];
	uint8_t		pt[64];
	size_t		envlen = 0;
	unsigned long long mlen = 0;
	uint32_t	gen = 0;
	const char *text = "I roast gently.";
	int			rc;

	randombytes_buf(key, sizeof(key));
	rc = rs_env_seal(key, 0x01020304, user_a, "persona.identity",
					 (const uint8_t *) text, strlen(text),
					 env, sizeof(env), &envlen);
	check(rc == RS_OK && envlen == strlen(text) + 46,
		  "format: seal succeeds, length is plaintext + 46", NULL);
	check(env[0] == 0x52 && env[1] == 1 && env[2] == 1 && env[3] == 2 &&
		  env[4] == 3 && env[5] == 4,
		  "format: 'R', version 1, generation big-endian", NULL);

	memcpy(ad, env, 6);
	memcpy(ad + 6, user_a, 16);
	memcpy(ad + 22, "persona.identity", 16);
	check(crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &mlen, NULL,
													 env + 30, envlen - 30,
													 ad, sizeof(ad),
													 env + 6, key) == 0 &&
		  mlen == strlen(text) && memcmp(pt, text, mlen) == 0,
		  "format: plain libsodium opens it with the documented AD", NULL);

	check(rs_env_keygen(env, envlen, &gen) == RS_OK && gen == 0x01020304,
		  "format: rs_env_keygen reads the generation", NULL);
	check(rs_env_keygen(env, 45, &gen) == RS_ERR_FORMAT && gen == 0,
		  "format: rs_env_keygen rejects a truncated envelope", NULL);
	env[1] = 2;
	check(rs_env_keygen(env, envlen, &gen) == RS_ERR_VERSION,
		  "format: rs_env_keygen rejects version 2", NULL);
	env[1] = 1;
	env[0] = 'r';
	check(rs_env_keygen(env, envlen, &gen) == RS_ERR_FORMAT,
		  "format: rs_env_keygen rejects a bad magic", NULL);
}

/* Round trips of every length from 0 to RS_PERSONA_MAX_BYTES. */
static void
test_round_trips(void)
{
	uint8_t		key[32];
	uint8_t    *plain = malloc(RS_PERSONA_MAX_BYTES);
	uint8_t    *env = malloc(RS_ENV_MAX_BYTES);
	uint8_t    *back = malloc(RS_PERSONA_MAX_BYTES);
	int			bad = 0;
	size_t		len;
	char		detail[80] = "";

	randombytes_buf(key, sizeof(key));
	randombytes_buf(plain, RS_PERSONA_MAX_BYTES);
	for (len = 0; len <= RS_PERSONA_MAX_BYTES; len++)
	{
		size_t		envlen = 0;
		size_t		plen = 99;
		int			rc;

		rc = rs_env_seal(key, 7, user_a, "persona.tolerance", plain, len,
						 env, RS_ENV_MAX_BYTES, &envlen);
		if (rc != RS_OK || envlen != len + RS_ENV_OVERHEAD)
		{
			snprintf(detail, sizeof(detail), "seal of %zu bytes: %s", len,
					 rs_crypto_strerror(rc));
			bad++;
			continue;
		}
		/* exact-size output buffer, and NULL for the empty text */
		rc = rs_env_open(key, user_a, "persona.tolerance", env, envlen,
						 len ? back : NULL, len, &plen);
		if (rc != RS_OK || plen != len || (len && memcmp(back, plain, len)))
		{
			snprintf(detail, sizeof(detail), "open of %zu bytes: %s", len,
					 rs_crypto_strerror(rc));
			bad++;
		}
	}
	check(bad == 0, "round trip: every length 0..RS_PERSONA_MAX_BYTES",
		  bad ? detail : NULL);

	{
		size_t		envlen = 99;

		check(rs_env_seal(key, 7, user_a, "persona.identity", plain,
						  RS_PERSONA_MAX_BYTES + 1, env, RS_ENV_MAX_BYTES + 1,
						  &envlen) == RS_ERR_TOO_LONG && envlen == 0,
			  "seal: RS_PERSONA_MAX_BYTES + 1 is RS_ERR_TOO_LONG", NULL);
		check(rs_env_seal(key, 7, user_a, "persona.identity", plain, 10,
						  env, 10 + RS_ENV_OVERHEAD - 1, &envlen) == RS_ERR_BUFFER,
			  "seal: output buffer one byte short is RS_ERR_BUFFER", NULL);
		check(rs_env_seal(key, 7, user_a, "", plain, 10,
						  env, RS_ENV_MAX_BYTES, &envlen) == RS_ERR_ARG &&
			  rs_env_seal(key, 7, user_a, NULL, plain, 10,
						  env, RS_ENV_MAX_BYTES, &envlen) == RS_ERR_ARG &&
			  rs_env_seal(key, 7, user_a,
						  "persona.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
						  plain, 10, env, RS_ENV_MAX_BYTES, &envlen) == RS_ERR_ARG &&
			  rs_env_seal(key, 7, user_a, "p", NULL, 10,
						  env, RS_ENV_MAX_BYTES, &envlen) == RS_ERR_ARG,
			  "seal: empty, NULL or 65-byte field path, NULL text", NULL);
	}

	{
		uint8_t		env2[100];
		size_t		l1 = 0,
					l2 = 0;

		rs_env_seal(key, 7, user_a, "persona.identity", plain, 20,
					env, RS_ENV_MAX_BYTES, &l1);
		rs_env_seal(key, 7, user_a, "persona.identity", plain, 20,
					env2, sizeof(env2), &l2);
		check(l1 == l2 && memcmp(env + 6, env2 + 6, 24) != 0 &&
			  memcmp(env + 30, env2 + 30, l1 - 30) != 0,
			  "seal: a fresh nonce each time, same text seals differently",
			  NULL);
	}

	{
		size_t		plen = 99;
		size_t		envlen = 0;

		rs_env_seal(key, 7, user_a, "persona.identity", plain, 20,
					env, RS_ENV_MAX_BYTES, &envlen);
		check(rs_env_open(key, user_a, "persona.identity", env, envlen,
						  back, 19, &plen) == RS_ERR_BUFFER && plen == 0,
			  "open: plaintext buffer one byte short is RS_ERR_BUFFER", NULL);
	}

	free(plain);
	free(env);
	free(back);
}

/*
 * Every single-byte change of an envelope is rejected: each position XORed
 * with every value 1..255 for a short envelope, each bit of every position
 * for a maximal one.  Also: nothing reaches the output buffer.
 */
static void
test_flips(void)
{
	uint8_t		key[32];
	uint8_t		plain[64];
	uint8_t		env[64 + RS_ENV_OVERHEAD];
	uint8_t		back[64];
	uint8_t		zero[64];
	uint8_t    *big = malloc(RS_PERSONA_MAX_BYTES);
	uint8_t    *bigenv = malloc(RS_ENV_MAX_BYTES);
	uint8_t    *bigback = malloc(RS_PERSONA_MAX_BYTES);
	size_t		envlen = 0;
	size_t		bigenvlen = 0;
	size_t		i;
	int			x;
	long		accepted = 0,
				tried = 0,
				wrote = 0;
	char		detail[80];

	randombytes_buf(key, sizeof(key));
	randombytes_buf(plain, sizeof(plain));
	memset(zero, 0, sizeof(zero));
	rs_env_seal(key, 3, user_a, "persona.identity", plain, sizeof(plain),
				env, sizeof(env), &envlen);
	for (i = 0; i < envlen; i++)
	{
		for (x = 1; x < 256; x++)
		{
			size_t		plen = 99;
			int			rc;

			memset(back, 0, sizeof(back));
			env[i] ^= (uint8_t) x;
			rc = rs_env_open(key, user_a, "persona.identity", env, envlen,
							 back, sizeof(back), &plen);
			env[i] ^= (uint8_t) x;
			tried++;
			if (rc == RS_OK || plen != 0)
				accepted++;
			if (memcmp(back, zero, sizeof(back)) != 0)
				wrote++;
		}
	}
	snprintf(detail, sizeof(detail), "%ld of %ld accepted, %ld wrote output",
			 accepted, tried, wrote);
	check(accepted == 0 && wrote == 0 && tried == 255L * 110,
		  "flip: every byte of a 110-byte envelope XOR 1..255 rejected",
		  detail);

	randombytes_buf(big, RS_PERSONA_MAX_BYTES);
	rs_env_seal(key, 3, user_a, "persona.identity", big, RS_PERSONA_MAX_BYTES,
				bigenv, RS_ENV_MAX_BYTES, &bigenvlen);
	accepted = tried = 0;
	for (i = 0; i < bigenvlen; i++)
	{
		for (x = 0; x < 8; x++)
		{
			size_t		plen = 99;

			bigenv[i] ^= (uint8_t) (1 << x);
			if (rs_env_open(key, user_a, "persona.identity", bigenv, bigenvlen,
							bigback, RS_PERSONA_MAX_BYTES, &plen) == RS_OK ||
				plen != 0)
				accepted++;
			bigenv[i] ^= (uint8_t) (1 << x);
			tried++;
		}
	}
	snprintf(detail, sizeof(detail), "%ld of %ld accepted", accepted, tried);
	check(accepted == 0 && tried == 8L * RS_ENV_MAX_BYTES,
		  "flip: every bit of a 4046-byte envelope rejected", detail);

	{
		size_t		plen = 0;

		check(rs_env_open(key, user_a, "persona.identity", env, envlen,
						  back, sizeof(back), &plen) == RS_OK &&
			  plen == sizeof(plain) && memcmp(back, plain, plen) == 0,
			  "flip: the untouched envelope still opens", NULL);
	}
	free(big);
	free(bigenv);
	free(bigback);
}

/*
 * Truncation at every length, and one byte too many, are rejected.  The
 * envelope is copied into an exact-size heap buffer each time, so valgrind
 * would see any read past the given length.
 */
static void
test_truncation(void)
{
	uint8_t		key[32];
	uint8_t		plain[200];
	uint8_t		env[200 + RS_ENV_OVERHEAD + 1];
	uint8_t		back[201];
	size_t		envlen = 0;
	size_t		len;
	int			accepted = 0;
	int			formats = 0;

	randombytes_buf(key, sizeof(key));
	randombytes_buf(plain, sizeof(plain));
	rs_env_seal(key, 3, user_a, "persona.intolerance", plain, sizeof(plain),
				env, sizeof(env), &envlen);
	for (len = 0; len < envlen; len++)
	{
		uint8_t    *copy = malloc(len ? len : 1);
		size_t		plen = 99;
		int			rc;

		memcpy(copy, env, len);
		rc = rs_env_open(key, user_a, "persona.intolerance", copy, len,
						 back, sizeof(back), &plen);
		if (rc == RS_OK || plen != 0)
			accepted++;
		if (len < RS_ENV_OVERHEAD && rc == RS_ERR_FORMAT)
			formats++;
		free(copy);
	}
	check(accepted == 0, "truncation: every length 0..n-1 rejected", NULL);
	check(formats == RS_ENV_OVERHEAD,
		  "truncation: below 46 bytes it is RS_ERR_FORMAT", NULL);

	{
		size_t		plen = 99;

		env[envlen] = 0;
		check(rs_env_open(key, user_a, "persona.intolerance", env, envlen + 1,
						  back, sizeof(back), &plen) == RS_ERR_AUTH && plen == 0,
			  "truncation: one appended byte rejected", NULL);
		check(rs_env_open(key, user_a, "persona.intolerance", env,
						  RS_ENV_MAX_BYTES + 1, back, sizeof(back), &plen)
			  == RS_ERR_FORMAT,
			  "open: a length above RS_ENV_MAX_BYTES is refused unread", NULL);
		check(rs_env_open(key, user_a, "persona.intolerance", NULL, envlen,
						  back, sizeof(back), &plen) == RS_ERR_ARG,
			  "open: NULL envelope is RS_ERR_ARG", NULL);
	}
}

/*
 * An authentic envelope longer than RS_PERSONA_MAX_BYTES (made with plain
 * libsodium, as a future or hostile writer could) is refused.
 */
static void
test_oversized(void)
{
	uint8_t		key[32];
	size_t		mlen = RS_PERSONA_MAX_BYTES + 1;
	uint8_t    *env = calloc(1, mlen + RS_ENV_OVERHEAD);
	uint8_t    *plain = calloc(1, mlen);
	uint8_t    *back = calloc(1, mlen);
	uint8_t		ad[6 + 16 + 16];
	unsigned long long clen;
	size_t		plen = 99;

	randombytes_buf(key, sizeof(key));
	env[0] = 'R';
	env[1] = 1;
	randombytes_buf(env + 6, 24);
	memcpy(ad, env, 6);
	memcpy(ad + 6, user_a, 16);
	memcpy(ad + 22, "persona.identity", 16);
	crypto_aead_xchacha20poly1305_ietf_encrypt(env + 30, &clen, plain, mlen,
											   ad, sizeof(ad), NULL,
											   env + 6, key);
	check(rs_env_open(key, user_a, "persona.identity", env,
					  mlen + RS_ENV_OVERHEAD, back, mlen, &plen) == RS_ERR_FORMAT &&
		  plen == 0,
		  "open: authentic 4001-byte text refused as RS_ERR_FORMAT", NULL);
	free(env);
	free(plain);
	free(back);
}

/* Another user, another field, another key, another version: rejected. */
static void
test_binding(void)
{
	uint8_t		key[32];
	uint8_t		key2[32];
	uint8_t		env[300 + RS_ENV_OVERHEAD];
	uint8_t		back[300];
	uint8_t		plain[300];
	size_t		envlen = 0;
	size_t		plen = 99;

	randombytes_buf(key, sizeof(key));
	memcpy(key2, key, sizeof(key));
	key2[31] ^= 1;
	randombytes_buf(plain, sizeof(plain));
	rs_env_seal(key, 9, user_a, "persona.identity", plain, sizeof(plain),
				env, sizeof(env), &envlen);

	check(rs_env_open(key, user_b, "persona.identity", env, envlen,
					  back, sizeof(back), &plen) == RS_ERR_AUTH && plen == 0,
		  "binding: another user's row is rejected", NULL);
	check(rs_env_open(key, user_a, "persona.tolerance", env, envlen,
					  back, sizeof(back), &plen) == RS_ERR_AUTH &&
		  rs_env_open(key, user_a, "persona.identit", env, envlen,
					  back, sizeof(back), &plen) == RS_ERR_AUTH &&
		  rs_env_open(key, user_a, "persona.identityx", env, envlen,
					  back, sizeof(back), &plen) == RS_ERR_AUTH,
		  "binding: another field (or a prefix/extension of it) is rejected",
		  NULL);
	check(rs_env_open(key2, user_a, "persona.identity", env, envlen,
					  back, sizeof(back), &plen) == RS_ERR_AUTH,
		  "binding: a key differing in one bit is rejected", NULL);
	env[1] = 2;
	check(rs_env_open(key, user_a, "persona.identity", env, envlen,
					  back, sizeof(back), &plen) == RS_ERR_VERSION,
		  "binding: version 2 is RS_ERR_VERSION", NULL);
	env[1] = 1;
	env[5] ^= 1;
	check(rs_env_open(key, user_a, "persona.identity", env, envlen,
					  back, sizeof(back), &plen) == RS_ERR_AUTH,
		  "binding: a relabelled generation is rejected", NULL);
	env[5] ^= 1;
	check(rs_env_open(key, user_a, "", env, envlen,
					  back, sizeof(back), &plen) == RS_ERR_ARG,
		  "binding: empty field path is RS_ERR_ARG", NULL);
	check(rs_env_open(key, user_a, "persona.identity", env, envlen,
					  back, sizeof(back), &plen) == RS_OK &&
		  plen == sizeof(plain) && memcmp(back, plain, plen) == 0,
		  "binding: the right user, field and key open it", NULL);
}

/* Data-key wrapping: round trip, tamper, relabelling, wrong master key. */
static void
test_dek(void)
{
	uint8_t		master[32];
	uint8_t		master2[32];
	uint8_t		dek[32];
	uint8_t		out[32];
	uint8_t		zero[32];
	uint8_t		w[RS_DEK_WRAPPED_BYTES + 1];
	uint8_t		w2[RS_DEK_WRAPPED_BYTES];
	size_t		i;
	int			x;
	int			accepted = 0;
	int			dirty = 0;
	int			rc;

	randombytes_buf(master, sizeof(master));
	randombytes_buf(master2, sizeof(master2));
	randombytes_buf(dek, sizeof(dek));
	memset(zero, 0, sizeof(zero));

	rc = rs_dek_wrap(master, 5, user_a, 2, dek, w, RS_DEK_WRAPPED_BYTES);
	check(rc == RS_OK, "dek: wrap", rs_crypto_strerror(rc));
	rc = rs_dek_unwrap(master, 5, user_a, 2, w, RS_DEK_WRAPPED_BYTES, out);
	check(rc == RS_OK && memcmp(out, dek, 32) == 0, "dek: unwrap round trip",
		  rs_crypto_strerror(rc));

	{
		uint8_t		ad[19 + 16 + 4 + 4];
		unsigned long long mlen = 0;

		memcpy(ad, "roastr_state/dek/v1", 19);
		memcpy(ad + 19, user_a, 16);
		memcpy(ad + 35, "\0\0\0\2\0\0\0\5", 8);
		check(crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL,
														 w + 24, 48,
														 ad, sizeof(ad),
														 w, master) == 0 &&
			  mlen == 32 && memcmp(out, dek, 32) == 0,
			  "dek: plain libsodium unwraps it with the documented AD", NULL);
	}

	rs_dek_wrap(master, 5, user_a, 2, dek, w2, sizeof(w2));
	check(memcmp(w, w2, RS_DEK_WRAPPED_BYTES) != 0,
		  "dek: fresh nonce, wrapping twice differs", NULL);
	check(rs_dek_wrap(master, 5, user_a, 2, dek, w2, 71) == RS_ERR_BUFFER,
		  "dek: 71-byte output buffer is RS_ERR_BUFFER", NULL);

	for (i = 0; i < RS_DEK_WRAPPED_BYTES; i++)
	{
		for (x = 1; x < 256; x++)
		{
			memset(out, 0xee, sizeof(out));
			w[i] ^= (uint8_t) x;
			if (rs_dek_unwrap(master, 5, user_a, 2, w, RS_DEK_WRAPPED_BYTES,
							  out) != RS_ERR_AUTH)
				accepted++;
			if (memcmp(out, zero, 32) != 0)
				dirty++;
			w[i] ^= (uint8_t) x;
		}
	}
	check(accepted == 0 && dirty == 0,
		  "dek: every byte XOR 1..255 rejected, output zeroed", NULL);

	for (x = 0; x <= RS_DEK_WRAPPED_BYTES + 1; x++)
	{
		if (x == RS_DEK_WRAPPED_BYTES)
			continue;
		if (rs_dek_unwrap(master, 5, user_a, 2, w, (size_t) x, out)
			!= RS_ERR_FORMAT)
			accepted++;
	}
	check(accepted == 0, "dek: every other length is RS_ERR_FORMAT", NULL);

	check(rs_dek_unwrap(master, 5, user_b, 2, w, RS_DEK_WRAPPED_BYTES, out)
		  == RS_ERR_AUTH,
		  "dek: another user is rejected", NULL);
	check(rs_dek_unwrap(master, 5, user_a, 3, w, RS_DEK_WRAPPED_BYTES, out)
		  == RS_ERR_AUTH,
		  "dek: another generation is rejected", NULL);
	check(rs_dek_unwrap(master, 6, user_a, 2, w, RS_DEK_WRAPPED_BYTES, out)
		  == RS_ERR_AUTH,
		  "dek: another master key id is rejected", NULL);
	check(rs_dek_unwrap(master2, 5, user_a, 2, w, RS_DEK_WRAPPED_BYTES, out)
		  == RS_ERR_AUTH && memcmp(out, zero, 32) == 0,
		  "dek: another master key is rejected", NULL);
	check(rs_dek_unwrap(master, 5, user_a, 2, w, RS_DEK_WRAPPED_BYTES, out)
		  == RS_OK && memcmp(out, dek, 32) == 0,
		  "dek: the untouched wrap still unwraps", NULL);
	sodium_memzero(dek, sizeof(dek));
	sodium_memzero(out, sizeof(out));
}

/* Parse text (NUL-terminated) into a fresh ring. */
static int
parse(const char *text, RsKeyRing *ring, int *line)
{
	return rs_keyfile_parse(text, strlen(text), ring, line);
}

#define K1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define K2 "A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF"

/* Whether a ring is all zeros (what a failed parse must leave). */
static int
ring_is_zero(const RsKeyRing *ring)
{
	const uint8_t *p = (const uint8_t *) ring;
	size_t		i;

	for (i = 0; i < sizeof(*ring); i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* Key file parser cases. */
static void
test_keyfile(void)
{
	/* heap, as the glue does: valgrind then sees any overrun */
	RsKeyRing  *ring = malloc(sizeof(RsKeyRing));
	int			line = -1;
	int			rc;
	const uint8_t *k;
	static const struct
	{
		const char *name;
		const char *text;
		int			status;
		int			line;
	}			bad[] = {
		{"empty file", "", RS_ERR_KEYFILE_EMPTY, 0},
		{"only comments", "# nothing\n\n   # here\n", RS_ERR_KEYFILE_EMPTY, 0},
		{"duplicate id", "1 " K1 "\n2 " K2 "\n1 " K2 "\n", RS_ERR_KEYFILE_DUPLICATE, 3},
		{"duplicate id written 01", "1 " K1 "\n01 " K2 "\n", RS_ERR_KEYFILE_DUPLICATE, 2},
		{"short key (63 digits)", "# c\n1 " K1 "\n2 " "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2\n", RS_ERR_KEYFILE_SYNTAX, 3},
		{"long key (66 digits)", "1 " K1 "aa\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"65 digits", "1 " K1 "a\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"non-hex digit", "1 " "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"missing key", "1\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"missing key after blank", "1   \n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"missing id", K1 "\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"id 0", "0 " K1 "\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"negative id", "-1 " K1 "\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"plus sign", "+1 " K1 "\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"id 2^31", "2147483648 " K1 "\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"huge id", "99999999999999999999999 " K1 "\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"hex id", "0x1 " K1 "\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"no blank between", "1" K1 "\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"trailing garbage", "1 " K1 " x\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"trailing comment", "1 " K1 " # old\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"third column", "1 " K1 " " K2 "\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"garbage line", "1 " K1 "\nhello\n", RS_ERR_KEYFILE_SYNTAX, 2},
		{"bare CR inside", "1 " K1 "\r \n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"key with colons", "1 00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14:15:16:17:18:19:1a:1b:1c:1d:1e:1f\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"base64 key", "1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", RS_ERR_KEYFILE_SYNTAX, 1},
		{"error after a good line on line 5", "# keys\n\n1 " K1 "\n\t\n3 zz\n", RS_ERR_KEYFILE_SYNTAX, 5},
	};
	size_t		i;

	rc = parse("# roastr_state master keys\n"
			   "\n"
			   "   # indented comment\n"
			   "1 " K1 "\n"
			   "  \t\n"
			   "\t7\t" K2 "  \n"
			   "3    " K1, ring, &line);
	check(rc == RS_OK && line == 0 && ring->nkeys == 3 &&
		  ring->current_id == 7,
		  "keyfile: comments, blank lines, tabs, no final newline; highest id current",
		  rs_crypto_strerror(rc));
	k = rs_keyring_find(ring, 7);
	check(k != NULL && k[0] == 0xa0 && k[31] == 0xbf &&
		  rs_keyring_find(ring, 1) != NULL && rs_keyring_find(ring, 1)[1] == 1 &&
		  rs_keyring_find(ring, 3) != NULL &&
		  rs_keyring_find(ring, 2) == NULL && rs_keyring_find(ring, 0) == NULL,
		  "keyfile: keys decoded (either case), lookup by id", NULL);

	rc = parse("2 " K2 "\r\n# c\r\n\r\n1 " K1 "\r\n", ring, &line);
	check(rc == RS_OK && ring->nkeys == 2 && ring->current_id == 2,
		  "keyfile: CRLF line ends", rs_crypto_strerror(rc));

	rc = parse("2147483647 " K1 "\n", ring, &line);
	check(rc == RS_OK && ring->current_id == 2147483647U,
		  "keyfile: id 2^31-1 accepted", rs_crypto_strerror(rc));

	{
		char		text[(RS_KEYRING_MAX + 1) * 80];
		size_t		pos = 0;
		int			n;

		for (n = 1; n <= RS_KEYRING_MAX; n++)
			pos += (size_t) snprintf(text + pos, sizeof(text) - pos,
									 "%d %s\n", n, K1);
		rc = parse(text, ring, &line);
		check(rc == RS_OK && ring->nkeys == RS_KEYRING_MAX &&
			  ring->current_id == RS_KEYRING_MAX,
			  "keyfile: RS_KEYRING_MAX keys accepted", rs_crypto_strerror(rc));
		snprintf(text + pos, sizeof(text) - pos, "%d %s\n", n, K1);
		rc = parse(text, ring, &line);
		check(rc == RS_ERR_KEYFILE_TOO_MANY && line == RS_KEYRING_MAX + 1 &&
			  ring_is_zero(ring),
			  "keyfile: one key more is RS_ERR_KEYFILE_TOO_MANY", NULL);
	}

	{
		/* not NUL-terminated: exact-size heap copy, valgrind watches */
		const char *src = "1 " K1 "\n";
		size_t		n = strlen(src);
		char	   *copy = malloc(n);
		char	   *nul = malloc(n + 3);

		memcpy(copy, src, n);
		rc = rs_keyfile_parse(copy, n, ring, &line);
		check(rc == RS_OK && ring->nkeys == 1,
			  "keyfile: text without a terminator", rs_crypto_strerror(rc));
		rc = rs_keyfile_parse(copy, n - 2, ring, &line);
		check(rc == RS_ERR_KEYFILE_SYNTAX && line == 1,
			  "keyfile: cut inside the key is RS_ERR_KEYFILE_SYNTAX", NULL);
		memcpy(nul, src, n);
		memcpy(nul + n, "\0\n", 3);
		rc = rs_keyfile_parse(nul, n + 2, ring, &line);
		check(rc == RS_ERR_KEYFILE_SYNTAX && line == 2,
			  "keyfile: a NUL byte is RS_ERR_KEYFILE_SYNTAX", NULL);
		free(copy);
		free(nul);
	}

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		char		name[120];
		char		detail[120];

		/* start from a full ring: a failure must wipe it */
		parse("1 " K1 "\n2 " K2 "\n", ring, &line);
		line = -1;
		rc = parse(bad[i].text, ring, &line);
		snprintf(name, sizeof(name), "keyfile: %s", bad[i].name);
		snprintf(detail, sizeof(detail), "got \"%s\" at line %d",
				 rs_crypto_strerror(rc), line);
		check(rc == bad[i].status && line == bad[i].line && ring_is_zero(ring),
			  name, detail);
	}

	check(rs_keyfile_parse(NULL, 5, ring, &line) == RS_ERR_ARG &&
		  rs_keyfile_parse("1", 1, NULL, &line) == RS_ERR_ARG &&
		  rs_keyfile_parse("1", 1, ring, NULL) == RS_ERR_ARG,
		  "keyfile: NULL arguments are RS_ERR_ARG", NULL);

	sodium_memzero(ring, sizeof(*ring));
	free(ring);
}

/* Every status has a message, none empty. */
static void
test_strerror(void)
{
	int			s;
	int			ok = 1;

	for (s = RS_OK; s <= RS_ERR_KEYFILE_EMPTY; s++)
	{
		const char *m = rs_crypto_strerror(s);

		if (m == NULL || m[0] == '\0' || strcmp(m, "unknown status") == 0)
			ok = 0;
	}
	check(ok && strcmp(rs_crypto_strerror(-1), "unknown status") == 0,
		  "strerror: every status has a phrase", NULL);
}

int
main(void)
{
	if (sodium_init() < 0)
	{
		fprintf(stderr, "sodium_init failed\n");
		return 2;
	}
	printf("libsodium %s, randombytes %s\n", sodium_version_string(),
		   randombytes_implementation_name());

	test_kat();
	test_format();
	test_round_trips();
	test_flips();
	test_truncation();
	test_oversized();
	test_binding();
	test_dek();
	test_keyfile();
	test_strerror();

	return unit_summary();
}
