/*-------------------------------------------------------------------------
 *
 * bench_crypto.c
 *	  Cost of one encrypt+decrypt of a 300-byte persona text: libsodium's
 *	  raw XChaCha20-Poly1305-IETF against our envelope (src/core).
 *
 * Build (from the repository root):
 *	  cc -O2 -Isrc/core -o bench_crypto test/unit/bench_crypto.c \
 *		  src/core/envelope.c src/core/keyfile.c -lsodium
 * Run: ./bench_crypto [batches] -- default 7 batches of 100000 operations.
 *
 * One operation is one encrypt and one decrypt, same key throughout.  Each
 * figure is the median over the batches, in microseconds per operation:
 *
 *	  raw			crypto_aead_xchacha20poly1305_ietf_encrypt + _decrypt,
 *					fixed nonce, no associated data: libsodium alone
 *	  raw+nonce		the same with a fresh randombytes_buf() nonce, as any
 *					real use needs
 *	  envelope		rs_env_seal + rs_env_open: header, random nonce,
 *					38 bytes of associated data, every check
 *
 * The last line is the envelope's cost relative to raw and to raw+nonce;
 * the issue asks that it be dominated by libsodium itself.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/unit/bench_crypto.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "rs_crypto_core.h"

#define TEXT_BYTES	300
#define BATCH_OPS	100000
#define MAX_BATCHES 101

static uint8_t key[RS_KEY_BYTES];
static uint8_t user[RS_USER_BYTES];
static uint8_t text[TEXT_BYTES];
static uint8_t nonce[RS_NONCE_BYTES];
static uint8_t sealed[TEXT_BYTES + RS_ENV_OVERHEAD];
static uint8_t opened[TEXT_BYTES];
static volatile unsigned sink;

/* Seconds on the monotonic clock. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Stop if an operation fails: a benchmark of failures measures nothing. */
static void
must(int ok, const char *what)
{
	if (!ok)
	{
		fprintf(stderr, "bench_crypto: %s failed\n", what);
		exit(1);
	}
}

/* One batch of raw libsodium operations; fresh_nonce adds randombytes. */
static double
batch_raw(int fresh_nonce)
{
	double		t0 = now();
	int			i;

	for (i = 0; i < BATCH_OPS; i++)
	{
		unsigned long long clen,
					mlen;

		if (fresh_nonce)
			randombytes_buf(nonce, sizeof(nonce));
		crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, &clen, text,
												   TEXT_BYTES, NULL, 0, NULL,
												   nonce, key);
		must(crypto_aead_xchacha20poly1305_ietf_decrypt(opened, &mlen, NULL,
														sealed, clen, NULL, 0,
														nonce, key) == 0,
			 "raw decrypt");
		sink += opened[i % TEXT_BYTES];
	}
	return (now() - t0) / BATCH_OPS * 1e6;
}

/* One batch of rs_env_seal + rs_env_open. */
static double
batch_envelope(void)
{
	double		t0 = now();
	int			i;

	for (i = 0; i < BATCH_OPS; i++)
	{
		size_t		envlen,
					plen;

		must(rs_env_seal(key, 1, user, "persona.identity", text, TEXT_BYTES,
						 sealed, sizeof(sealed), &envlen) == RS_OK, "seal");
		must(rs_env_open(key, user, "persona.identity", sealed, envlen,
						 opened, sizeof(opened), &plen) == RS_OK, "open");
		sink += opened[i % TEXT_BYTES];
	}
	return (now() - t0) / BATCH_OPS * 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* Median of n values (sorts them). */
static double
median(double *v, int n)
{
	qsort(v, (size_t) n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
	int			batches = argc > 1 ? atoi(argv[1]) : 7;
	double		raw[MAX_BATCHES],
				rawn[MAX_BATCHES],
				env[MAX_BATCHES];
	double		m_raw,
				m_rawn,
				m_env;
	int			b;

	if (batches < 1 || batches > MAX_BATCHES)
	{
		fprintf(stderr, "usage: %s [batches 1..%d]\n", argv[0], MAX_BATCHES);
		return 2;
	}
	if (sodium_init() < 0)
	{
		fprintf(stderr, "bench_crypto: sodium_init failed\n");
		return 1;
	}
	randombytes_buf(key, sizeof(key));
	randombytes_buf(user, sizeof(user));
	randombytes_buf(nonce, sizeof(nonce));
	memset(text, 'p', sizeof(text));

	/* warm up caches and CPU frequency, then interleave the three kinds */
	batch_raw(0);
	batch_envelope();
	for (b = 0; b < batches; b++)
	{
		raw[b] = batch_raw(0);
		rawn[b] = batch_raw(1);
		env[b] = batch_envelope();
	}
	m_raw = median(raw, batches);
	m_rawn = median(rawn, batches);
	m_env = median(env, batches);

	printf("crypto, %d-byte text, median of %d batches of %d encrypt+decrypt"
		   " (libsodium %s, randombytes %s):\n",
		   TEXT_BYTES, batches, BATCH_OPS, sodium_version_string(),
		   randombytes_implementation_name());
	printf("  raw libsodium XChaCha20-Poly1305 (fixed nonce)  %7.3f us/op\n",
		   m_raw);
	printf("  raw libsodium + random nonce                    %7.3f us/op\n",
		   m_rawn);
	printf("  rs_env_seal + rs_env_open                       %7.3f us/op\n",
		   m_env);
	printf("  envelope / raw = %.2f, envelope / (raw + random nonce) = %.2f\n",
		   m_env / m_raw, m_env / m_rawn);
	return 0;
}
