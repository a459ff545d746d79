/*-------------------------------------------------------------------------
 *
 * fuzz_webhook.c
 *	  libFuzzer harness for the Standard Webhooks signature check
 *	  (src/core/webhook_core.c).
 *
 * Input: secret, webhook-id, webhook-timestamp and webhook-signature header
 * separated by newlines; the rest is the body.  The check runs twice:
 *	- with the header as given: it may say "valid" only if the header holds
 *	  the right signature, computed here with libsodium's HMAC-SHA256;
 *	- with the right signature appended: it must then say "valid" unless
 *	  the secret, id, timestamp or header length is what it rejects.
 * The clock is the input's own timestamp (so the signature is reached)
 * and, once, a fixed one (so the age checks run).  A broken promise
 * aborts; AddressSanitizer and UBSan catch the rest.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_webhook.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rs_webhook_core.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int			LLVMFuzzerInitialize(int *argc, char ***argv);

#define PROMISE(cond) do { if (!(cond)) abort(); } while (0)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

/* The next newline-terminated part, as a fresh NUL-terminated string. */
static char *
take(const uint8_t **p, size_t *left, size_t *len)
{
	const uint8_t *nl = memchr(*p, '\n', *left);
	size_t		n = nl ? (size_t) (nl - *p) : *left;
	char	   *s = malloc(n + 1);

	memcpy(s, *p, n);
	s[n] = '\0';
	*len = n;
	*p += nl ? n + 1 : n;
	*left -= nl ? n + 1 : n;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	size_t		left = size;
	size_t		slen,
				idlen,
				tslen,
				hlen;
	char	   *secret = take(&p, &left, &slen);
	char	   *id = take(&p, &left, &idlen);
	char	   *ts = take(&p, &left, &tslen);
	char	   *header = take(&p, &left, &hlen);
	static uint8_t key[RS_WH_MAX_SECRET];
	size_t		keylen = 0;
	RsWebhookResult r;
	int64_t		now = 0;
	char		sig[sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES,
											  sodium_base64_VARIANT_ORIGINAL)];
	char	   *header2;

	r = rs_webhook_secret_key(secret, slen, key, &keylen);
	PROMISE(r == RS_WH_OK || r == RS_WH_BAD_SECRET);
	if (r != RS_WH_OK)
		goto done;
	PROMISE(keylen >= 1 && keylen <= RS_WH_MAX_SECRET);

	for (size_t i = 0; i < tslen && i < 18 && ts[i] >= '0' && ts[i] <= '9'; i++)
		now = now * 10 + (ts[i] - '0');

	/* the right signature, by libsodium */
	{
		crypto_auth_hmacsha256_state st;
		uint8_t		mac[crypto_auth_hmacsha256_BYTES];

		crypto_auth_hmacsha256_init(&st, key, keylen);
		crypto_auth_hmacsha256_update(&st, (const uint8_t *) id, strlen(id));
		crypto_auth_hmacsha256_update(&st, (const uint8_t *) ".", 1);
		crypto_auth_hmacsha256_update(&st, (const uint8_t *) ts, strlen(ts));
		crypto_auth_hmacsha256_update(&st, (const uint8_t *) ".", 1);
		crypto_auth_hmacsha256_update(&st, p, left);
		crypto_auth_hmacsha256_final(&st, mac);
		sodium_bin2base64(sig, sizeof(sig), mac, sizeof(mac),
						  sodium_base64_VARIANT_ORIGINAL);
	}

	/* as given: valid only with the right signature in it */
	r = rs_webhook_verify(key, keylen, id, ts, p, left, header, now,
						  RS_WH_TOLERANCE_S);
	if (r == RS_WH_OK)
		PROMISE(strstr(header, sig) != NULL);
	r = rs_webhook_verify(key, keylen, id, ts, p, left, header, 1700000000,
						  RS_WH_TOLERANCE_S);
	if (r == RS_WH_OK)
		PROMISE(strstr(header, sig) != NULL && now >= 1700000000 - RS_WH_TOLERANCE_S &&
				now <= 1700000000 + RS_WH_TOLERANCE_S);

	/* with the right signature appended: valid unless rejected for cause */
	header2 = malloc(strlen(header) + 4 + sizeof(sig) + 1);
	strcpy(header2, header);
	strcat(header2, " v1,");
	strcat(header2, sig);
	r = rs_webhook_verify(key, keylen, id, ts, p, left, header2, now,
						  RS_WH_TOLERANCE_S);
	PROMISE(r == RS_WH_OK || r == RS_WH_BAD_ID || r == RS_WH_BAD_TIMESTAMP ||
			r == RS_WH_BAD_HEADER);
	if (r == RS_WH_OK)
	{
		/* the same message at a fixed clock: only the age may differ */
		RsWebhookResult r2 = rs_webhook_verify(key, keylen, id, ts, p, left,
											   header2, 1700000000,
											   RS_WH_TOLERANCE_S);

		if (now < 1700000000 - RS_WH_TOLERANCE_S)
			PROMISE(r2 == RS_WH_TOO_OLD);
		else if (now > 1700000000 + RS_WH_TOLERANCE_S)
			PROMISE(r2 == RS_WH_TOO_NEW);
		else
			PROMISE(r2 == RS_WH_OK);
	}
	if (r == RS_WH_BAD_HEADER)
	{
		/* too long, or too many signatures */
		int			tokens = 0;

		for (size_t i = 0; header2[i]; i++)
			if (header2[i] != ' ' && (i == 0 || header2[i - 1] == ' '))
				tokens++;
		PROMISE(strlen(header2) > RS_WH_MAX_HEADER || tokens > RS_WH_MAX_SIGNATURES);
	}
	if (r == RS_WH_BAD_ID)
		PROMISE(strlen(id) == 0 || strlen(id) > RS_WH_MAX_ID ||
				strpbrk(id, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d"
						"\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b"
						"\x1c\x1d\x1e\x1f\x7f") != NULL);
	free(header2);

done:
	free(secret);
	free(id);
	free(ts);
	free(header);
	return 0;
}
