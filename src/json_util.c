/*-------------------------------------------------------------------------
 *
 * json_util.c
 *	  Building jsonb values, and the text forms of uuids and timestamps
 *	  that JSON carries (see json_util.h).
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/json_util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/numeric.h"

#include "compat.h"
#include "core/rs_fields_core.h"
#include "json_util.h"

/* Push an object key. */
void
rs_jb_key(JsonbParseState **st, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &v);
}

/* Push a string value (after a key). */
void
rs_jb_string(JsonbParseState **st, const char *s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push a string element of an array. */
void
rs_jb_elem_string(JsonbParseState **st, const char *s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	pushJsonbValue(st, WJB_ELEM, &v);
}

/* Push an integer value (after a key). */
void
rs_jb_int64(JsonbParseState **st, int64 i)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(i);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push a boolean value (after a key). */
void
rs_jb_bool(JsonbParseState **st, bool b)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = b;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push a null value (after a key). */
void
rs_jb_null(JsonbParseState **st)
{
	JsonbValue	v;

	v.type = jbvNull;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/*
 * Push a timestamp with time zone as the string PostgreSQL's JSON functions
 * make of it (ISO 8601, in the session's time zone).
 */
void
rs_jb_timestamptz(JsonbParseState **st, TimestampTz ts)
{
	char		buf[MAXDATELEN + 1];

	JsonEncodeDateTime(buf, TimestampTzGetDatum(ts), TIMESTAMPTZOID, NULL);
	rs_jb_string(st, pstrdup(buf));
}

/*
 * rs_uuid_to_cstring
 *		The canonical lower-case text of a uuid, palloc'd.
 */
char *
rs_uuid_to_cstring(const pg_uuid_t *u)
{
	static const char hex[] = "0123456789abcdef";
	char	   *buf = palloc(37);
	int			j = 0;

	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[j++] = '-';
		buf[j++] = hex[u->data[i] >> 4];
		buf[j++] = hex[u->data[i] & 0xf];
	}
	buf[j] = '\0';
	return buf;
}

/*
 * rs_parse_uuid
 *		Parse a UUID in its canonical 8-4-4-4-12 form (either case) without
 *		throwing; NULL when the text is not one.
 */
pg_uuid_t *
rs_parse_uuid(const char *s)
{
	pg_uuid_t  *u = palloc(sizeof(pg_uuid_t));

	StaticAssertStmt(UUID_LEN == RS_UUID_BYTES, "UUID size mismatch");
	if (!rs_parse_uuid_text(s, strnlen(s, RS_UUID_CHARS + 1), u->data))
	{
		pfree(u);
		return NULL;
	}
	return u;
}

/*
 * rs_parse_timestamptz
 *		Parse a timestamp with time zone without throwing; false when the
 *		text is not a finite timestamp.  PostgreSQL 15 has no soft input
 *		errors, so we use the datetime decoder directly (as timestamptz_in
 *		does), which reports problems by return code.
 */
bool
rs_parse_timestamptz(const char *str, TimestampTz *result)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	int			dterr;
	struct pg_tm tt;
	fsec_t		fsec;

	RS_DTERR_EXTRA_DECL;

	if (strlen(str) >= MAXDATELEN)
		return false;
	dterr = ParseDateTime(str, workbuf, sizeof(workbuf), field, ftype,
						  MAXDATEFIELDS, &nf);
	if (dterr != 0)
		return false;
	dterr = RS_DECODE_DATETIME(field, ftype, nf, &dtype, &tt, &fsec, &tz);
	if (dterr != 0 || dtype != DTK_DATE)
		return false;
	if (tm2timestamp(&tt, fsec, &tz, result) != 0)
		return false;
	return IS_VALID_TIMESTAMP(*result);
}
