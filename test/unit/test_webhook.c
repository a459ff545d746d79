/*-------------------------------------------------------------------------
 *
 * test_webhook.c
 *	  Unit tests of the Standard Webhooks verification core
 *	  (src/core/webhook_core.c), without a server.
 *
 * Built and run by test/extra/unit_webhook.sh, natively and under valgrind.
 * Prints one line per test and ends with "N passed, N failed"; the exit
 * status is 1 if anything failed.
 *
 * Signatures the tests need are made here with libsodium's one-shot
 * HMAC-SHA256 (crypto_auth_hmacsha256), not with the code under test; the
 * published test vector checks that this signer is the standard one.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/unit/test_webhook.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rs_webhook_core.h"

#include "unit_check.h"


static const char *
rname(RsWebhookResult r)
{
	switch (r)
	{
		case RS_WH_OK:
			return "RS_WH_OK";
		case RS_WH_BAD_ID:
			return "RS_WH_BAD_ID";
		case RS_WH_BAD_TIMESTAMP:
			return "RS_WH_BAD_TIMESTAMP";
		case RS_WH_TOO_OLD:
			return "RS_WH_TOO_OLD";
		case RS_WH_TOO_NEW:
			return "RS_WH_TOO_NEW";
		case RS_WH_BAD_HEADER:
			return "RS_WH_BAD_HEADER";
		case RS_WH_NO_V1:
			return "RS_WH_NO_V1";
		case RS_WH_MISMATCH:
			return "RS_WH_MISMATCH";
		case RS_WH_BAD_SECRET:
			return "RS_WH_BAD_SECRET";
	}
	return "(unknown result)";
}

/* Check that "got" is "want"; the detail names both. */
static void
expect_result(RsWebhookResult got, RsWebhookResult want, const char *name)
{
	char		detail[160];

	snprintf(detail, sizeof(detail), "got %s, want %s", rname(got), rname(want));
	check(got == want, name, detail);
}

/*
 * The Standard Webhooks test vector.
 *
 * Source: the Standard Webhooks reference libraries, repository
 * https://github.com/standard-webhooks/standard-webhooks, file
 * libraries/javascript/src/webhook.test.ts, test "sign function works"
 * (seen at commit 10d3e46d720c4e5861a792bec25792a04ad4e2b3):
 *
 *	key       = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
 *	msgId     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
 *	timestamp = new Date(1614265330 * 1000)
 *	payload   = '{"test": 2432232314}'
 *	expected  = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
 *
 * The same values are in that repository's other libraries' tests and in
 * Svix's documentation.  Cross-checked with
 *	printf '%s' 'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}' |
 *	openssl dgst -sha256 -mac HMAC -macopt hexkey:<base64-decoded key> -binary |
 *	base64
 */
#define VEC_SECRET	"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID		"msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS		"1614265330"
#define VEC_NOW		((int64_t) 1614265330)
#define VEC_BODY	"{\"test\": 2432232314}"
#define VEC_SIG		"v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/* a well-formed v1 signature that matches nothing (also from webhook.test.ts) */
#define OTHER_SIG	"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

static uint8_t vec_key[RS_WH_MAX_SECRET];
static size_t vec_keylen;

/* Verify with the vector's key; body is a C string. */
static RsWebhookResult
verify_vec(const char *id, const char *ts, const char *body,
		   const char *header, int64_t now)
{
	return rs_webhook_verify(vec_key, vec_keylen, id, ts,
							 (const uint8_t *) body, strlen(body), header,
							 now, RS_WH_TOLERANCE_S);
}

/*
 * Sign "id.ts.body" with "key" the way a sender does; writes
 * "v1,<base64>" into "out" (at least 48 bytes).
 */
static void
sign(const uint8_t *key, size_t keylen, const char *id, const char *ts,
	 const uint8_t *body, size_t bodylen, char *out, size_t outlen)
{
	size_t		msglen = strlen(id) + 1 + strlen(ts) + 1 + bodylen;
	uint8_t    *msg = malloc(msglen);
	uint8_t		mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state st;
	size_t		pos = 0;

	if (msg == NULL || outlen < 48)
	{
		fprintf(stderr, "sign: out of memory or short buffer\n");
		exit(2);
	}
	memcpy(msg + pos, id, strlen(id));
	pos += strlen(id);
	msg[pos++] = '.';
	memcpy(msg + pos, ts, strlen(ts));
	pos += strlen(ts);
	msg[pos++] = '.';
	memcpy(msg + pos, body, bodylen);
	/* crypto_auth_hmacsha256() takes a 32-byte key; keys here vary */
	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, msg, msglen);
	crypto_auth_hmacsha256_final(&st, mac);
	free(msg);
	memcpy(out, "v1,", 3);
	sodium_bin2base64(out + 3, outlen - 3, mac, sizeof(mac),
					  sodium_base64_VARIANT_ORIGINAL);
}

/* "v1," + base64 of n arbitrary bytes (a signature of the wrong length). */
static void
sig_of_bytes(const uint8_t *bytes, size_t n, char *out, size_t outlen)
{
	memcpy(out, "v1,", 3);
	sodium_bin2base64(out + 3, outlen - 3, bytes, n,
					  sodium_base64_VARIANT_ORIGINAL);
}

static void
test_secret_forms(void)
{
	uint8_t		key[RS_WH_MAX_SECRET];
	uint8_t		expect[24];
	size_t		keylen = 0;
	size_t		binlen = 0;
	RsWebhookResult r;
	char		big[RS_WH_MAX_SECRET + 2];

	/* the vector's secret: base64 after "whsec_" */
	r = rs_webhook_secret_key(VEC_SECRET, strlen(VEC_SECRET), vec_key, &vec_keylen);
	if (sodium_base642bin(expect, sizeof(expect), VEC_SECRET + 6,
						  strlen(VEC_SECRET) - 6, NULL, &binlen, NULL,
						  sodium_base64_VARIANT_ORIGINAL) != 0 || binlen != 24)
	{
		fprintf(stderr, "bad base64 literal in test\n");
		exit(2);
	}
	check(r == RS_WH_OK && vec_keylen == 24 &&
		  memcmp(vec_key, expect, 24) == 0,
		  "secret: whsec_ + base64 decodes to the 24 key bytes", rname(r));

	/* a trailing newline (as a file written by echo has) is ignored */
	r = rs_webhook_secret_key(VEC_SECRET "\n", strlen(VEC_SECRET) + 1, key, &keylen);
	check(r == RS_WH_OK && keylen == 24 && memcmp(key, expect, 24) == 0,
		  "secret: whsec_ with a trailing newline gives the same key", rname(r));
	r = rs_webhook_secret_key(VEC_SECRET "\r\n", strlen(VEC_SECRET) + 2, key, &keylen);
	check(r == RS_WH_OK && keylen == 24 && memcmp(key, expect, 24) == 0,
		  "secret: whsec_ with a trailing CRLF gives the same key", rname(r));
	r = rs_webhook_secret_key("polar_whs_abc\n", 14, key, &keylen);
	check(r == RS_WH_OK && keylen == 13 && memcmp(key, "polar_whs_abc", 13) == 0,
		  "secret: raw secret with a trailing newline: the newline is not part of it",
		  rname(r));

	/* raw (Polar) secret: its bytes are the key, no base64 */
	r = rs_webhook_secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 32, key, &keylen);
	check(r == RS_WH_OK && keylen == 32 &&
		  memcmp(key, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 32) == 0,
		  "secret: raw secret is used as its bytes, not base64-decoded", rname(r));

	/* whsec_ with bad base64 */
	r = rs_webhook_secret_key("whsec_!!!!notbase64", 19, key, &keylen);
	expect_result(r, RS_WH_BAD_SECRET, "secret: whsec_ with invalid base64 characters");
	r = rs_webhook_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", 37, key, &keylen);
	expect_result(r, RS_WH_BAD_SECRET, "secret: whsec_ with truncated base64");
	r = rs_webhook_secret_key("whsec_MfKQ9r8G KYqrTwjUPD8ILPZIo2LaLaSw", 39, key, &keylen);
	expect_result(r, RS_WH_BAD_SECRET, "secret: whsec_ with a space inside the base64");
	r = rs_webhook_secret_key("whsec_AA", 8, key, &keylen);
	expect_result(r, RS_WH_BAD_SECRET, "secret: whsec_ with unpadded base64");
	/* libsodium 1.0.18 decodes bytes >= 0x80 as '/'; see test_header() */
	r = rs_webhook_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa\xffw", 38, key, &keylen);
	expect_result(r, RS_WH_BAD_SECRET, "secret: whsec_ with a non-ASCII byte in the base64");

	/*
	 * "whsec_" and nothing else: base64 of nothing, an empty key.  It must
	 * not silently become the raw 6-byte secret "whsec_".
	 */
	keylen = 0;
	r = rs_webhook_secret_key("whsec_", 6, key, &keylen);
	expect_result(r, RS_WH_BAD_SECRET, "secret: \"whsec_\" with nothing after the prefix");
	r = rs_webhook_secret_key("whsec_\n", 7, key, &keylen);
	expect_result(r, RS_WH_BAD_SECRET, "secret: \"whsec_\\n\" with nothing after the prefix");

	/* empty */
	r = rs_webhook_secret_key("", 0, key, &keylen);
	expect_result(r, RS_WH_BAD_SECRET, "secret: empty");
	r = rs_webhook_secret_key("\n \t\r\n", 5, key, &keylen);
	expect_result(r, RS_WH_BAD_SECRET, "secret: only whitespace");

	/* raw secrets up to RS_WH_MAX_SECRET bytes */
	memset(big, 'k', sizeof(big));
	r = rs_webhook_secret_key(big, RS_WH_MAX_SECRET, key, &keylen);
	check(r == RS_WH_OK && keylen == RS_WH_MAX_SECRET,
		  "secret: raw secret of RS_WH_MAX_SECRET bytes accepted", rname(r));
	r = rs_webhook_secret_key(big, RS_WH_MAX_SECRET + 1, key, &keylen);
	expect_result(r, RS_WH_BAD_SECRET, "secret: raw secret longer than RS_WH_MAX_SECRET");

	/* an empty key never verifies */
	r = rs_webhook_verify(key, 0, VEC_ID, VEC_TS, (const uint8_t *) VEC_BODY,
						  strlen(VEC_BODY), VEC_SIG, VEC_NOW, RS_WH_TOLERANCE_S);
	expect_result(r, RS_WH_BAD_SECRET, "verify: zero-length key");
}

static void
test_vector(void)
{
	char		sig[64];

	/* our signer reproduces the published signature */
	sign(vec_key, vec_keylen, VEC_ID, VEC_TS, (const uint8_t *) VEC_BODY,
		 strlen(VEC_BODY), sig, sizeof(sig));
	check(strcmp(sig, VEC_SIG) == 0,
		  "vector: test signer reproduces the published v1 signature", sig);

	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, VEC_SIG, VEC_NOW),
				  RS_WH_OK, "vector: published signature verifies at its timestamp");

	/* a raw secret of the same characters is another key */
	{
		uint8_t		key[RS_WH_MAX_SECRET];
		size_t		keylen;

		rs_webhook_secret_key(VEC_SECRET + 6, strlen(VEC_SECRET) - 6, key, &keylen);
		expect_result(rs_webhook_verify(key, keylen, VEC_ID, VEC_TS,
										(const uint8_t *) VEC_BODY,
										strlen(VEC_BODY), VEC_SIG, VEC_NOW,
										RS_WH_TOLERANCE_S),
					  RS_WH_MISMATCH,
					  "vector: the secret without whsec_ is a raw key: no match");
	}
}

static void
test_raw_secret(void)
{
	static const char secret[] = "polar_whs_4Zr9s0mEtHiNg-rAw_nOt-base64\n";
	static const char body[] = "{\"type\":\"subscription.created\",\"data\":{\"id\":\"sub_1\"}}";
	uint8_t		key[RS_WH_MAX_SECRET];
	uint8_t		rawkey[64];
	size_t		keylen = 0;
	char		sig[64];
	RsWebhookResult r;

	r = rs_webhook_secret_key(secret, strlen(secret), key, &keylen);
	check(r == RS_WH_OK && keylen == strlen(secret) - 1,
		  "raw secret: accepted", rname(r));
	memcpy(rawkey, secret, strlen(secret) - 1);
	sign(rawkey, strlen(secret) - 1, "msg_raw", "1700000000",
		 (const uint8_t *) body, strlen(body), sig, sizeof(sig));
	r = rs_webhook_verify(key, keylen, "msg_raw", "1700000000",
						  (const uint8_t *) body, strlen(body), sig,
						  1700000000, RS_WH_TOLERANCE_S);
	expect_result(r, RS_WH_OK, "raw secret: a delivery signed with the raw bytes verifies");
}

static void
test_tolerance(void)
{
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, VEC_SIG, VEC_NOW + 300),
				  RS_WH_OK, "tolerance: timestamp 300 s in the past accepted");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, VEC_SIG, VEC_NOW - 300),
				  RS_WH_OK, "tolerance: timestamp 300 s in the future accepted");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, VEC_SIG, VEC_NOW + 301),
				  RS_WH_TOO_OLD, "tolerance: timestamp 301 s in the past rejected");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, VEC_SIG, VEC_NOW - 301),
				  RS_WH_TOO_NEW, "tolerance: timestamp 301 s in the future rejected");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, VEC_SIG, (int64_t) 1700000000),
				  RS_WH_TOO_OLD, "tolerance: the vector verified today is too old");
}

static void
test_header(void)
{
	char		hdr[RS_WH_MAX_HEADER + 64];
	char		sig[80];
	uint8_t		bytes[40];
	size_t		pos;

	/* several signatures, the right one last */
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 OTHER_SIG " v2," "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
							 " v1a,aGVsbG8= " VEC_SIG, VEC_NOW),
				  RS_WH_OK, "header: several signatures, the right one last");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 VEC_SIG " " OTHER_SIG " " OTHER_SIG, VEC_NOW),
				  RS_WH_OK, "header: several signatures, the right one first");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 "  " OTHER_SIG "   " VEC_SIG "  ", VEC_NOW),
				  RS_WH_OK, "header: extra spaces around and between signatures");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 OTHER_SIG " " OTHER_SIG, VEC_NOW),
				  RS_WH_MISMATCH, "header: several v1 signatures, none right");

	/* only other versions */
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", VEC_NOW),
				  RS_WH_NO_V1, "header: a v1a-only header (right bytes, wrong scheme)");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
							 "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", VEC_NOW),
				  RS_WH_NO_V1, "header: v2 and upper-case V1 are not v1");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", VEC_NOW),
				  RS_WH_NO_V1, "header: a bare signature without a version");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, "v1,", VEC_NOW),
				  RS_WH_NO_V1, "header: \"v1,\" with nothing after it");

	/* malformed base64 */
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE", VEC_NOW),
				  RS_WH_MISMATCH, "base64: the right signature without its padding");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=", VEC_NOW),
				  RS_WH_MISMATCH, "base64: the right signature in URL-safe base64");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=x", VEC_NOW),
				  RS_WH_MISMATCH, "base64: the right signature followed by garbage");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 "v1,g0hM9SsE+OTPJTGt/tmIK!SyZlE3uFJELVlNIOLJ1OE=", VEC_NOW),
				  RS_WH_MISMATCH, "base64: an invalid character inside");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 "v1,dawfeoifkpqwoekfpqoekf " VEC_SIG, VEC_NOW),
				  RS_WH_OK, "base64: a malformed signature does not hide a right one after it");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, "v1,g0hM9", VEC_NOW),
				  RS_WH_MISMATCH, "base64: a partial signature");

	/*
	 * A byte >= 0x80 where the right signature has '/'.  libsodium 1.0.18's
	 * sodium_base642bin() decodes every such byte as '/' (its constant-time
	 * character classes assume 0..255 and get a negative char), so the
	 * core must reject non-base64 bytes itself.
	 */
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY,
							 "v1,g0hM9SsE+OTPJTGt\x80tmIKtSyZlE3uFJELVlNIOLJ1OE=", VEC_NOW),
				  RS_WH_MISMATCH, "base64: a non-ASCII byte in place of '/'");

	/* wrong lengths: a prefix, the MAC plus a byte, the MAC plus two */
	{
		uint8_t		mac[32];
		size_t		maclen = 0;

		sodium_base642bin(mac, sizeof(mac), VEC_SIG + 3, strlen(VEC_SIG) - 3,
						  NULL, &maclen, NULL, sodium_base64_VARIANT_ORIGINAL);
		memcpy(bytes, mac, 32);
		bytes[32] = 0;
		bytes[33] = 0;
		sig_of_bytes(bytes, 31, sig, sizeof(sig));
		expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, sig, VEC_NOW),
					  RS_WH_MISMATCH, "length: the first 31 bytes of the right MAC");
		sig_of_bytes(bytes, 16, sig, sizeof(sig));
		expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, sig, VEC_NOW),
					  RS_WH_MISMATCH, "length: the first 16 bytes of the right MAC");
		sig_of_bytes(bytes, 33, sig, sizeof(sig));
		expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, sig, VEC_NOW),
					  RS_WH_MISMATCH, "length: the right MAC plus one byte");
		sig_of_bytes(bytes, 34, sig, sizeof(sig));
		expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, sig, VEC_NOW),
					  RS_WH_MISMATCH, "length: the right MAC plus two bytes");
		memset(bytes, 0, sizeof(bytes));
		sig_of_bytes(bytes, 40, sig, sizeof(sig));
		expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, sig, VEC_NOW),
					  RS_WH_MISMATCH, "length: 40 zero bytes");
	}

	/* empty and blank */
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, "", VEC_NOW),
				  RS_WH_BAD_HEADER, "header: empty");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, "     ", VEC_NOW),
				  RS_WH_BAD_HEADER, "header: only spaces");

	/* RS_WH_MAX_SIGNATURES (16) signatures, the right one last: ok */
	hdr[0] = '\0';
	for (int i = 0; i < RS_WH_MAX_SIGNATURES - 1; i++)
		strcat(hdr, OTHER_SIG " ");
	strcat(hdr, VEC_SIG);
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, hdr, VEC_NOW),
				  RS_WH_OK, "header: 16 signatures, the right one last");

	/* 17: refused, wherever the right one is */
	hdr[0] = '\0';
	for (int i = 0; i < RS_WH_MAX_SIGNATURES; i++)
		strcat(hdr, OTHER_SIG " ");
	strcat(hdr, VEC_SIG);
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, hdr, VEC_NOW),
				  RS_WH_BAD_HEADER, "header: 17 signatures, the right one last");
	hdr[0] = '\0';
	strcat(hdr, VEC_SIG);
	for (int i = 0; i < RS_WH_MAX_SIGNATURES; i++)
		strcat(hdr, " v1a,x");
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, hdr, VEC_NOW),
				  RS_WH_BAD_HEADER, "header: 17 signatures, the right one first");

	/* longer than RS_WH_MAX_HEADER: refused even though it matches */
	pos = 0;
	memset(hdr, ' ', RS_WH_MAX_HEADER);
	pos = RS_WH_MAX_HEADER - strlen(VEC_SIG) + 1;
	memcpy(hdr + pos, VEC_SIG, strlen(VEC_SIG));
	hdr[pos + strlen(VEC_SIG)] = '\0';
	check(strlen(hdr) == RS_WH_MAX_HEADER + 1, "header: test header length", NULL);
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, hdr, VEC_NOW),
				  RS_WH_BAD_HEADER, "header: RS_WH_MAX_HEADER + 1 bytes");
	memmove(hdr, hdr + 1, strlen(hdr));
	expect_result(verify_vec(VEC_ID, VEC_TS, VEC_BODY, hdr, VEC_NOW),
				  RS_WH_OK, "header: exactly RS_WH_MAX_HEADER bytes");
}

static void
test_id(void)
{
	char		id[RS_WH_MAX_ID + 2];
	char		sig[64];

	expect_result(verify_vec("msg_p5jXN8AQM9LWM0\x01" "D4loKWxJek", VEC_TS, VEC_BODY,
							 VEC_SIG, VEC_NOW),
				  RS_WH_BAD_ID, "id: with a control character (0x01)");
	expect_result(verify_vec("msg_p5jXN8AQM9LWM0D4loKWxJek\n", VEC_TS, VEC_BODY,
							 VEC_SIG, VEC_NOW),
				  RS_WH_BAD_ID, "id: with a trailing newline");
	expect_result(verify_vec("msg_\t1", VEC_TS, VEC_BODY, VEC_SIG, VEC_NOW),
				  RS_WH_BAD_ID, "id: with a tab");
	expect_result(verify_vec("msg_\x7f" "1", VEC_TS, VEC_BODY, VEC_SIG, VEC_NOW),
				  RS_WH_BAD_ID, "id: with DEL (0x7f)");
	expect_result(verify_vec("", VEC_TS, VEC_BODY, VEC_SIG, VEC_NOW),
				  RS_WH_BAD_ID, "id: empty");

	/* RS_WH_MAX_ID characters: accepted; one more: refused */
	memset(id, 'i', RS_WH_MAX_ID);
	id[RS_WH_MAX_ID] = '\0';
	sign(vec_key, vec_keylen, id, VEC_TS, (const uint8_t *) VEC_BODY,
		 strlen(VEC_BODY), sig, sizeof(sig));
	expect_result(verify_vec(id, VEC_TS, VEC_BODY, sig, VEC_NOW),
				  RS_WH_OK, "id: RS_WH_MAX_ID (255) characters");
	id[RS_WH_MAX_ID] = 'i';
	id[RS_WH_MAX_ID + 1] = '\0';
	sign(vec_key, vec_keylen, id, VEC_TS, (const uint8_t *) VEC_BODY,
		 strlen(VEC_BODY), sig, sizeof(sig));
	expect_result(verify_vec(id, VEC_TS, VEC_BODY, sig, VEC_NOW),
				  RS_WH_BAD_ID, "id: 256 characters, correctly signed");

	/* UTF-8 in the id is not a control character */
	sign(vec_key, vec_keylen, "msg_\xc3\xa9t\xc3\xa9", VEC_TS,
		 (const uint8_t *) VEC_BODY, strlen(VEC_BODY), sig, sizeof(sig));
	expect_result(verify_vec("msg_\xc3\xa9t\xc3\xa9", VEC_TS, VEC_BODY, sig, VEC_NOW),
				  RS_WH_OK, "id: non-ASCII UTF-8 bytes, correctly signed");
}

static void
test_timestamp(void)
{
	static const char *const bad[] = {
		"hello", "", " 1614265330", "1614265330 ", "+1614265330",
		"-1614265330", "1614265330.0", "1.6e9", "0x6037a6f2",
		"1614265330\n", "99999999999999999999", "9223372036854775808",
		"1000000000000000000",
	};
	char		sig[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		char		name[96];

		snprintf(name, sizeof(name), "timestamp: \"%s\" is not a number of seconds",
				 bad[i][0] && bad[i][strlen(bad[i]) - 1] == '\n' ? "1614265330\\n" : bad[i]);
		/* signed over the bad timestamp, so only its form can reject it */
		sign(vec_key, vec_keylen, VEC_ID, bad[i], (const uint8_t *) VEC_BODY,
			 strlen(VEC_BODY), sig, sizeof(sig));
		expect_result(verify_vec(VEC_ID, bad[i], VEC_BODY, sig, VEC_NOW),
					  RS_WH_BAD_TIMESTAMP, name);
	}

	/* huge but well-formed: far in the future */
	sign(vec_key, vec_keylen, VEC_ID, "999999999999999999", (const uint8_t *) VEC_BODY,
		 strlen(VEC_BODY), sig, sizeof(sig));
	expect_result(verify_vec(VEC_ID, "999999999999999999", VEC_BODY, sig, VEC_NOW),
				  RS_WH_TOO_NEW, "timestamp: 18 nines is in the future");
	sign(vec_key, vec_keylen, VEC_ID, "0", (const uint8_t *) VEC_BODY,
		 strlen(VEC_BODY), sig, sizeof(sig));
	expect_result(verify_vec(VEC_ID, "0", VEC_BODY, sig, VEC_NOW),
				  RS_WH_TOO_OLD, "timestamp: 0 is too old");

	/* the same instant written differently is another message */
	expect_result(verify_vec(VEC_ID, "01614265330", VEC_BODY, VEC_SIG, VEC_NOW),
				  RS_WH_MISMATCH, "timestamp: a leading zero changes the signed text");
}

/*
 * Every single-byte change of the body, the id or the timestamp (each
 * position, each of the 255 other byte values) is rejected; so is every
 * single-byte change of the signature's base64 text, and removing or
 * adding a byte of the body.
 */
static void
test_single_byte_changes(void)
{
	char		body[sizeof(VEC_BODY)];
	char		id[sizeof(VEC_ID)];
	char		ts[sizeof(VEC_TS)];
	char		sig[sizeof(VEC_SIG)];
	char		detail[160];
	int			tried;
	int			accepted;

	/* body: bytes may be anything, including NUL, so pass its length */
	tried = accepted = 0;
	detail[0] = '\0';
	for (size_t i = 0; i < strlen(VEC_BODY); i++)
		for (int v = 0; v < 256; v++)
		{
			RsWebhookResult r;

			memcpy(body, VEC_BODY, sizeof(VEC_BODY));
			if ((unsigned char) body[i] == v)
				continue;
			body[i] = (char) v;
			r = rs_webhook_verify(vec_key, vec_keylen, VEC_ID, VEC_TS,
								  (const uint8_t *) body, strlen(VEC_BODY),
								  VEC_SIG, VEC_NOW, RS_WH_TOLERANCE_S);
			tried++;
			if (r == RS_WH_OK)
			{
				if (accepted++ == 0)
					snprintf(detail, sizeof(detail), "byte %zu = 0x%02x accepted", i, v);
			}
		}
	check(accepted == 0 && tried == 255 * (int) strlen(VEC_BODY),
		  "changes: every single-byte change of the body rejected", detail);

	tried = accepted = 0;
	for (size_t i = 0; i <= strlen(VEC_BODY); i++)
	{
		/* drop byte i (i < len), or append a byte (i == len) */
		size_t		n = 0;

		for (size_t j = 0; j < strlen(VEC_BODY); j++)
			if (j != i)
				body[n++] = VEC_BODY[j];
		if (i == strlen(VEC_BODY))
			body[n++] = ' ';
		tried++;
		if (rs_webhook_verify(vec_key, vec_keylen, VEC_ID, VEC_TS,
							  (const uint8_t *) body, n, VEC_SIG, VEC_NOW,
							  RS_WH_TOLERANCE_S) == RS_WH_OK)
			accepted++;
	}
	check(accepted == 0, "changes: a body one byte shorter or longer rejected", NULL);

	/* id: a NUL makes it shorter, which must not verify either */
	tried = accepted = 0;
	detail[0] = '\0';
	for (size_t i = 0; i < strlen(VEC_ID); i++)
		for (int v = 0; v < 256; v++)
		{
			memcpy(id, VEC_ID, sizeof(VEC_ID));
			if ((unsigned char) id[i] == v)
				continue;
			id[i] = (char) v;
			tried++;
			if (verify_vec(id, VEC_TS, VEC_BODY, VEC_SIG, VEC_NOW) == RS_WH_OK &&
				accepted++ == 0)
				snprintf(detail, sizeof(detail), "byte %zu = 0x%02x accepted", i, v);
		}
	check(accepted == 0 && tried == 255 * (int) strlen(VEC_ID),
		  "changes: every single-byte change of the id rejected", detail);

	/* timestamp: "now" is the vector's, so in-tolerance digits reach the MAC */
	tried = accepted = 0;
	detail[0] = '\0';
	for (size_t i = 0; i < strlen(VEC_TS); i++)
		for (int v = 0; v < 256; v++)
		{
			memcpy(ts, VEC_TS, sizeof(VEC_TS));
			if ((unsigned char) ts[i] == v)
				continue;
			ts[i] = (char) v;
			tried++;
			if (verify_vec(VEC_ID, ts, VEC_BODY, VEC_SIG, VEC_NOW) == RS_WH_OK &&
				accepted++ == 0)
				snprintf(detail, sizeof(detail), "byte %zu = 0x%02x accepted", i, v);
		}
	check(accepted == 0 && tried == 255 * (int) strlen(VEC_TS),
		  "changes: every single-byte change of the timestamp rejected", detail);

	/* and with a generous "now", so that the last digits reach the MAC */
	tried = accepted = 0;
	detail[0] = '\0';
	for (size_t i = strlen(VEC_TS) - 3; i < strlen(VEC_TS); i++)
		for (char v = '0'; v <= '9'; v++)
		{
			memcpy(ts, VEC_TS, sizeof(VEC_TS));
			if (ts[i] == v)
				continue;
			ts[i] = v;
			tried++;
			if (rs_webhook_verify(vec_key, vec_keylen, VEC_ID, ts,
								  (const uint8_t *) VEC_BODY, strlen(VEC_BODY),
								  VEC_SIG, VEC_NOW, 10000) != RS_WH_MISMATCH &&
				accepted++ == 0)
				snprintf(detail, sizeof(detail), "timestamp %s not a mismatch", ts);
		}
	check(accepted == 0 && tried == 27,
		  "changes: a changed digit within the tolerance is a signature mismatch", detail);

	/*
	 * The signature text itself (after "v1,"), with ASCII bytes: a byte
	 * >= 0x80 in the base64 is its own case in test_header().
	 */
	tried = accepted = 0;
	detail[0] = '\0';
	for (size_t i = 3; i < strlen(VEC_SIG); i++)
		for (int v = 1; v < 128; v++)
		{
			memcpy(sig, VEC_SIG, sizeof(VEC_SIG));
			if ((unsigned char) sig[i] == v)
				continue;
			sig[i] = (char) v;
			tried++;
			if (verify_vec(VEC_ID, VEC_TS, VEC_BODY, sig, VEC_NOW) == RS_WH_OK &&
				accepted++ == 0)
				snprintf(detail, sizeof(detail), "byte %zu = 0x%02x accepted", i, v);
		}
	check(accepted == 0 && tried == 126 * (int) (strlen(VEC_SIG) - 3),
		  "changes: every single-byte ASCII change of the signature rejected", detail);
}

/* The result texts exist and never are the empty string. */
static void
test_result_text(void)
{
	int			ok = 1;

	for (int r = RS_WH_OK; r <= RS_WH_BAD_SECRET; r++)
	{
		const char *t = rs_webhook_result_text((RsWebhookResult) r);

		if (t == NULL || t[0] == '\0' || strcmp(t, "unknown") == 0)
			ok = 0;
	}
	check(ok, "result texts: every result has a message", NULL);
}

int
main(void)
{
	if (sodium_init() < 0)
	{
		fprintf(stderr, "sodium_init failed\n");
		return 2;
	}
	test_secret_forms();
	test_vector();
	test_raw_secret();
	test_tolerance();
	test_header();
	test_id();
	test_timestamp();
	test_single_byte_changes();
	test_result_text();
	return unit_summary();
}
