/*-------------------------------------------------------------------------
 *
 * rs_webhook_core.h
 *	  Standard Webhooks signature verification, in plain C (libc and
 *	  libsodium only), so that it can be unit-tested, fuzzed and run under
 *	  valgrind without a server.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/core/rs_webhook_core.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_WEBHOOK_CORE_H
#define RS_WEBHOOK_CORE_H

#include <stddef.h>
#include <stdint.h>

#define RS_WH_TOLERANCE_S		300 /* Standard Webhooks: 5 minutes */
#define RS_WH_MAX_ID			255
#define RS_WH_MAX_HEADER		4096
#define RS_WH_MAX_SIGNATURES	16
#define RS_WH_MAX_SECRET		1024

typedef enum RsWebhookResult
{
	RS_WH_OK = 0,
	RS_WH_BAD_ID,				/* empty, too long or with control characters */
	RS_WH_BAD_TIMESTAMP,		/* not a decimal number of seconds */
	RS_WH_TOO_OLD,				/* more than the tolerance in the past */
	RS_WH_TOO_NEW,				/* more than the tolerance in the future */
	RS_WH_BAD_HEADER,			/* empty, too long, too many signatures */
	RS_WH_NO_V1,				/* no "v1," signature in the header */
	RS_WH_MISMATCH,				/* no v1 signature matches */
	RS_WH_BAD_SECRET			/* empty or undecodable secret */
} RsWebhookResult;

/*
 * Turn the secret as Polar shows it into HMAC key bytes: "whsec_" followed
 * by base64 (Standard Webhooks), or else the raw bytes (Polar).  Trailing
 * whitespace (a newline at the end of a file) is not part of the secret.
 * Returns RS_WH_OK or RS_WH_BAD_SECRET; "key" must hold RS_WH_MAX_SECRET.
 */
extern RsWebhookResult rs_webhook_secret_key(const char *secret, size_t len,
											 uint8_t *key, size_t *keylen);

/*
 * Verify one delivery: HMAC-SHA256 over "id.timestamp.body", compared in
 * constant time with every "v1,<base64>" in the space-separated header;
 * the timestamp must be within "tolerance" seconds of "now".
 */
extern RsWebhookResult rs_webhook_verify(const uint8_t *key, size_t keylen,
										 const char *id, const char *timestamp,
										 const uint8_t *body, size_t bodylen,
										 const char *header, int64_t now,
										 int64_t tolerance);

extern const char *rs_webhook_result_text(RsWebhookResult r);

#endif							/* RS_WEBHOOK_CORE_H */
