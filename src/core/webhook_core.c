/*-------------------------------------------------------------------------
 *
 * webhook_core.c
 *	  Standard Webhooks signature verification (see rs_webhook_core.h).
 *
 * Every input is hostile: lengths are checked before anything is copied,
 * the header is parsed without writing into it, each signature is decoded
 * into a fixed 32-byte buffer and compared with sodium_memcmp (constant
 * time).  Nothing here allocates.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/core/webhook_core.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include <sodium.h>

#include "rs_webhook_core.h"

const char *
rs_webhook_result_text(RsWebhookResult r)
{
	switch (r)
	{
		case RS_WH_OK:
			return "valid";
		case RS_WH_BAD_ID:
			return "the webhook id is empty, too long or not printable";
		case RS_WH_BAD_TIMESTAMP:
			return "the webhook timestamp is not a number of seconds";
		case RS_WH_TOO_OLD:
			return "the webhook timestamp is too old";
		case RS_WH_TOO_NEW:
			return "the webhook timestamp is in the future";
		case RS_WH_BAD_HEADER:
			return "the signature header is empty or malformed";
		case RS_WH_NO_V1:
			return "the signature header has no v1 signature";
		case RS_WH_MISMATCH:
			return "no signature matches";
		case RS_WH_BAD_SECRET:
			return "the webhook secret is empty or malformed";
	}
	return "unknown";
}

/*
 * is_base64
 *		Whether s[0..len) uses only the standard base64 alphabet and
 *		padding.  libsodium's decoder is constant-time and does not reject
 *		every byte outside the alphabet (bytes with the high bit set can
 *		decode like their low seven bits), so we check first.
 */
static int
is_base64(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
			return 0;
	}
	return 1;
}

RsWebhookResult
rs_webhook_secret_key(const char *secret, size_t len, uint8_t *key,
					  size_t *keylen)
{
	while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r' ||
					   secret[len - 1] == ' ' || secret[len - 1] == '\t'))
		len--;
	if (len == 0)
		return RS_WH_BAD_SECRET;
	if (len >= 6 && memcmp(secret, "whsec_", 6) == 0)
	{
		const char *end = NULL;

		if (!is_base64(secret + 6, len - 6) ||
			sodium_base642bin(key, RS_WH_MAX_SECRET, secret + 6, len - 6,
							  NULL, keylen, &end,
							  sodium_base64_VARIANT_ORIGINAL) != 0 ||
			end != secret + len || *keylen == 0)
			return RS_WH_BAD_SECRET;
		return RS_WH_OK;
	}
	if (len > RS_WH_MAX_SECRET)
		return RS_WH_BAD_SECRET;
	memcpy(key, secret, len);
	*keylen = len;
	return RS_WH_OK;
}

static int
parse_seconds(const char *s, int64_t *out)
{
	int64_t		v = 0;
	size_t		n = strlen(s);

	if (n == 0 || n > 18)
		return -1;
	for (size_t i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

RsWebhookResult
rs_webhook_verify(const uint8_t *key, size_t keylen, const char *id,
				  const char *timestamp, const uint8_t *body, size_t bodylen,
				  const char *header, int64_t now, int64_t tolerance)
{
	size_t		idlen = strlen(id);
	size_t		hlen = strlen(header);
	int64_t		ts;
	crypto_auth_hmacsha256_state st;
	uint8_t		mac[crypto_auth_hmacsha256_BYTES];
	int			nsigs = 0;
	int			seen_v1 = 0;
	int			matched = 0;
	size_t		pos = 0;

	if (keylen == 0)
		return RS_WH_BAD_SECRET;
	if (idlen == 0 || idlen > RS_WH_MAX_ID)
		return RS_WH_BAD_ID;
	for (size_t i = 0; i < idlen; i++)
		if ((unsigned char) id[i] < 0x20 || id[i] == 0x7f)
			return RS_WH_BAD_ID;
	if (parse_seconds(timestamp, &ts) != 0)
		return RS_WH_BAD_TIMESTAMP;
	if (ts < now - tolerance)
		return RS_WH_TOO_OLD;
	if (ts > now + tolerance)
		return RS_WH_TOO_NEW;
	if (hlen == 0 || hlen > RS_WH_MAX_HEADER)
		return RS_WH_BAD_HEADER;

	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *) id, idlen);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *) ".", 1);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *) timestamp,
								  strlen(timestamp));
	crypto_auth_hmacsha256_update(&st, (const uint8_t *) ".", 1);
	crypto_auth_hmacsha256_update(&st, body, bodylen);
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));

	/* space-separated "version,signature" tokens */
	while (pos < hlen)
	{
		size_t		start,
					end;

		while (pos < hlen && header[pos] == ' ')
			pos++;
		if (pos >= hlen)
			break;
		start = pos;
		while (pos < hlen && header[pos] != ' ')
			pos++;
		end = pos;
		if (++nsigs > RS_WH_MAX_SIGNATURES)
			return RS_WH_BAD_HEADER;
		if (end - start > 3 && memcmp(header + start, "v1,", 3) == 0)
		{
			uint8_t		sig[crypto_auth_hmacsha256_BYTES + 1];
			size_t		siglen = 0;
			const char *b64end = NULL;

			seen_v1 = 1;
			if (is_base64(header + start + 3, end - start - 3) &&
				sodium_base642bin(sig, sizeof(sig), header + start + 3,
								  end - start - 3, NULL, &siglen, &b64end,
								  sodium_base64_VARIANT_ORIGINAL) == 0 &&
				b64end == header + end &&
				siglen == crypto_auth_hmacsha256_BYTES &&
				sodium_memcmp(sig, mac, crypto_auth_hmacsha256_BYTES) == 0)
				matched = 1;	/* keep going: constant work per header */
		}
	}
	sodium_memzero(mac, sizeof(mac));
	if (nsigs == 0)
		return RS_WH_BAD_HEADER;
	if (!seen_v1)
		return RS_WH_NO_V1;
	return matched ? RS_WH_OK : RS_WH_MISMATCH;
}
