/*-------------------------------------------------------------------------
 *
 * webhook.c
 *	  apply_polar_webhook: verify a Polar (Standard Webhooks) delivery and
 *	  apply it exactly once, in order.
 *
 * Verification is done here, in C, by the pure core (core/webhook_core.c):
 * HMAC-SHA256 over "id.timestamp.body" with the secret read from
 * roastr_state.webhook_secret_file, compared in constant time with every
 * "v1," signature of the header, the timestamp within five minutes.  A
 * delivery that fails is PT401 and changes nothing.  A verified delivery
 * is handed to roastr_state._apply_polar_event (PL/pgSQL in the install
 * script: the mapping of Polar's JSON is clearer there, and this is not a
 * hot path), which records the webhook id first (so a repeated delivery is
 * reported as idempotent), orders events per subscription by modified_at,
 * and applies the subscription through the state trigger.
 *
 * The secret file is read by the one secret file reader (secret_file.c):
 * a regular file of the server's OS user without group or world access.
 * The decoded secret is kept in guarded memory until the file changes.  It
 * never reaches a message, a log line or SQL text.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/webhook.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "access.h"
#include "core/rs_webhook_core.h"
#include "errcodes.h"
#include "fields.h"
#include "secret_file.h"
#include "spi_util.h"
#include "stats.h"
#include "webhook.h"

/* Bodies larger than this are refused before any work. */
#define RS_WH_MAX_BODY		(1024 * 1024)

/* roastr_state.webhook_secret_file */
static char *webhook_secret_file = NULL;

/*
 * rs_webhook_init
 *		Define roastr_state.webhook_secret_file; called once, from _PG_init.
 */
void
rs_webhook_init(void)
{
	DefineCustomStringVariable("roastr_state.webhook_secret_file",
							   "Path of the file holding the Polar webhook secret.",
							   "\"whsec_\" followed by base64 (Standard Webhooks), or the raw secret (Polar). "
							   "The file must not be readable by group or others.",
							   &webhook_secret_file,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
}

/*
 * The decoded secret of the last file read, in guarded memory, and the
 * file it came from: reused while the file is unchanged (one stat() per
 * delivery instead of a read and a decode).
 */
static uint8 *cached_key = NULL;
static size_t cached_keylen = 0;
static RsFileSig cached_sig;

/*
 * secret_file_error
 *		ERROR for a webhook secret file that could not be read (problem and
 *		errno from rs_secret_file_read).  Every message names the file and
 *		the setting, never the secret.
 */
static void
secret_file_error(const char *path, RsSecretProblem problem, int save_errno)
{
	switch (problem)
	{
		case RS_SECRET_OPEN:
			errno = save_errno;
			ereport(ERROR,
					errcode_for_file_access(),
					errmsg("could not open webhook secret file \"%s\" (roastr_state.webhook_secret_file): %m",
						   path));
			break;
		case RS_SECRET_NOT_REGULAR:
			ereport(ERROR,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errmsg("webhook secret file \"%s\" (roastr_state.webhook_secret_file) is not a regular file",
						   path));
			break;
		case RS_SECRET_NOT_OWNER:
			ereport(ERROR,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errmsg("webhook secret file \"%s\" (roastr_state.webhook_secret_file) is not owned by the database server's user",
						   path),
					errhint("Change its owner to the operating system user that runs the server."));
			break;
		case RS_SECRET_PERMISSIONS:
			ereport(ERROR,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errmsg("webhook secret file \"%s\" (roastr_state.webhook_secret_file) is accessible by group or others",
						   path),
					errhint("Run chmod 600 on it."));
			break;
		case RS_SECRET_NO_MEMORY:
			ereport(ERROR,
					errcode(ERRCODE_OUT_OF_MEMORY),
					errmsg("out of memory"),
					errdetail("Could not allocate guarded memory for the webhook secret."));
			break;
		default:
			ereport(ERROR,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errmsg("could not read webhook secret file \"%s\" (roastr_state.webhook_secret_file)",
						   path));
			break;
	}
}

/*
 * forget_secret
 *		Wipe and drop the cached secret.
 */
static void
forget_secret(void)
{
	if (cached_key != NULL)
		sodium_free(cached_key);	/* wipes it */
	cached_key = NULL;
	cached_keylen = 0;
	memset(&cached_sig, 0, sizeof(cached_sig));
}

/*
 * load_secret
 *		Read the secret file at "path" (secret_file.c) and decode it into
 *		the cache.  ERROR, with the cache empty, when it cannot be read or
 *		decoded.
 */
static void
load_secret(const char *path)
{
	char	   *buf;
	size_t		len;
	RsFileSig	sig;
	int			save_errno;
	RsSecretProblem problem;
	RsWebhookResult r;

	forget_secret();
	problem = rs_secret_file_read(path, RS_WH_MAX_SECRET * 2 - 1, &buf, &len,
								  &sig, &save_errno);
	if (problem != RS_SECRET_OK)
		secret_file_error(path, problem, save_errno);
	cached_key = sodium_malloc(RS_WH_MAX_SECRET);
	if (cached_key == NULL)
	{
		rs_secret_file_free(buf, RS_WH_MAX_SECRET * 2 - 1);
		secret_file_error(path, RS_SECRET_NO_MEMORY, 0);
	}
	r = rs_webhook_secret_key(buf, len, cached_key, &cached_keylen);
	rs_secret_file_free(buf, RS_WH_MAX_SECRET * 2 - 1);
	if (r != RS_WH_OK)
	{
		forget_secret();
		ereport(ERROR,
				errcode(ERRCODE_CONFIG_FILE_ERROR),
				errmsg("invalid webhook secret in \"%s\" (roastr_state.webhook_secret_file)", path),
				errdetail("Expected \"whsec_\" followed by base64, or the raw secret."));
	}
	cached_sig = sig;
}

/*
 * read_secret_key
 *		The decoded webhook secret, copied into "key" (RS_WH_MAX_SECRET
 *		bytes, wiped by the caller): from the cache while the file is
 *		unchanged, else read again.  Errors name the setting, never the
 *		secret.
 */
static void
read_secret_key(uint8 *key, size_t *keylen)
{
	const char *path = webhook_secret_file;

	if (path == NULL || path[0] == '\0')
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("roastr_state.webhook_secret_file is not set"),
				errhint("Point it at a file holding the Polar webhook secret."));
	if (cached_key == NULL || !rs_file_unchanged(&cached_sig, path))
		load_secret(path);
	memcpy(key, cached_key, cached_keylen);
	*keylen = cached_keylen;
}

/* ERROR (PT401): the delivery is not authentic; nothing is applied. */
static void
unauthorized(RsWebhookResult r)
{
	rs_stats_count(RS_STAT_WEBHOOKS_REFUSED);
	ereport(ERROR,
			errcode(ERRCODE_ROASTR_UNAUTHORIZED),
			errmsg("webhook rejected: %s", rs_webhook_result_text(r)),
			errhidestmt(true));
}

PG_FUNCTION_INFO_V1(roastr_state_apply_polar_webhook);

/*
 * roastr_state.apply_polar_webhook(webhook_id text, webhook_timestamp text,
 *		webhook_signature text, body text) -> jsonb
 *		Service only.  {received, processed, idempotent}.
 */
Datum
roastr_state_apply_polar_webhook(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	char	   *id;
	char	   *ts;
	char	   *sig;
	text	   *body;
	uint8		key[RS_WH_MAX_SECRET];
	size_t		keylen = 0;
	RsWebhookResult r;
	MemoryContext cxt = CurrentMemoryContext;
	RsUserSwitch sw;
	static SPIPlanPtr apply_plan = NULL;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	bool		isnull;
	Jsonb	   *result;

	rs_get_caller(&caller);
	rs_require_service(&caller, "apply_polar_webhook");

	if (PG_ARGISNULL(0))
		unauthorized(RS_WH_BAD_ID);
	if (PG_ARGISNULL(1))
		unauthorized(RS_WH_BAD_TIMESTAMP);
	if (PG_ARGISNULL(2))
		unauthorized(RS_WH_BAD_HEADER);
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("webhook body must not be null"));
	body = PG_GETARG_TEXT_PP(3);
	if (VARSIZE_ANY_EXHDR(body) > RS_WH_MAX_BODY)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("webhook body is larger than %d bytes", RS_WH_MAX_BODY),
				errhidestmt(true));
	id = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ts = text_to_cstring(PG_GETARG_TEXT_PP(1));
	sig = text_to_cstring(PG_GETARG_TEXT_PP(2));

	read_secret_key(key, &keylen);
	r = rs_webhook_verify(key, keylen, id, ts,
						  (const uint8 *) VARDATA_ANY(body),
						  VARSIZE_ANY_EXHDR(body), sig,
						  (int64) (GetCurrentTimestamp() / USECS_PER_SEC +
								   (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY),
						  RS_WH_TOLERANCE_S);
	sodium_memzero(key, sizeof(key));
	if (r != RS_WH_OK)
		unauthorized(r);

	SPI_connect();
	rs_become_owner(&sw);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PointerGetDatum(body);
	if (rs_spi_run(rs_spi_kept(&apply_plan,
							   "SELECT roastr_state._apply_polar_event($1, $2)",
							   2, types),
				   args, NULL, false, 1, SPI_OK_SELECT, "apply webhook") != 1)
		elog(ERROR, "could not apply webhook");
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									  1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		result = DatumGetJsonbPCopy(d);
		MemoryContextSwitchTo(old);
	}
	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_JSONB_P(result);
}

PG_FUNCTION_INFO_V1(roastr_state_set_product_plan);

/*
 * roastr_state.set_product_plan(product_id text, plan text) -> void
 *		Service only.  Maps a Polar product to a plan; a NULL plan removes
 *		the mapping.
 */
Datum
roastr_state_set_product_plan(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	RsUserSwitch sw;
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	static SPIPlanPtr set_plan = NULL;
	static SPIPlanPtr del_plan = NULL;
	Oid			types[2] = {TEXTOID, TEXTOID};

	rs_get_caller(&caller);
	rs_require_service(&caller, "set_product_plan");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("product_id must not be null"));
	args[0] = PG_GETARG_DATUM(0);
	rs_require_label(PG_GETARG_TEXT_PP(0), "product_id", 200);
	if (!PG_ARGISNULL(1))
	{
		rs_validate_value(&rs_fields[F_SUB_PLAN], PG_GETARG_DATUM(1), false);
		if (rs_text_equals(PG_GETARG_DATUM(1), false, "free"))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("a Polar product cannot map to the free plan"));
		args[1] = PG_GETARG_DATUM(1);
	}
	else
		nulls[1] = 'n';

	SPI_connect();
	rs_become_owner(&sw);
	if (PG_ARGISNULL(1))
		rs_spi_run(rs_spi_kept(&del_plan,
							   "DELETE FROM roastr_state.product_plans "
							   "WHERE product_id OPERATOR(pg_catalog.=) $1",
							   1, types),
				   args, nulls, false, 0, SPI_OK_DELETE, "set product plan");
	else
		rs_spi_run(rs_spi_kept(&set_plan,
							   "INSERT INTO roastr_state.product_plans (product_id, plan) VALUES ($1, $2) "
							   "ON CONFLICT (product_id) DO UPDATE SET plan = EXCLUDED.plan",
							   2, types),
				   args, nulls, false, 0, SPI_OK_INSERT, "set product plan");
	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_VOID();
}
