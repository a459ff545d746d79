/*-------------------------------------------------------------------------
 *
 * fields.c
 *	  The field registry: paths, types, who writes them, validation and
 *	  conversion to and from JSON.
 *
 * Every field of a user's state has a dotted path ("roasting.enabled")
 * that is used in patch keys, sync output and notification payloads, and a
 * numeric id that indexes the per-field version and time arrays kept in the
 * state row.  This file is the single place that knows them.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/fields.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/numeric.h"

#include "fields.h"
#include "json_util.h"

/*
 * rs_field_typoid
 *		The SQL type of a field's column (persona text: its ciphertext).
 */
Oid
rs_field_typoid(const RsField *f)
{
	switch (f->type)
	{
		case FT_BOOL:
			return BOOLOID;
		case FT_INT2:
			return INT2OID;
		case FT_INT4:
			return INT4OID;
		case FT_TEXT:
			return TEXTOID;
		case FT_TSTZ:
			return TIMESTAMPTZOID;
		case FT_UUID:
			return UUIDOID;
		case FT_SECRET:
			return BYTEAOID;
		case FT_INT8:
			return INT8OID;
	}
	elog(ERROR, "unrecognized field type %d", (int) f->type);
	return InvalidOid;			/* keep compiler quiet */
}

/*
 * describe_expected
 *		A sentence for errdetail: what a field accepts.
 */
static char *
describe_expected(const RsField *f)
{
	StringInfoData buf;

	initStringInfo(&buf);
	switch (f->type)
	{
		case FT_BOOL:
			appendStringInfoString(&buf, "Expected true or false");
			break;
		case FT_INT2:
		case FT_INT4:
			appendStringInfo(&buf, "Expected an integer from %d to %d",
							 f->minval, f->maxval);
			break;
		case FT_TEXT:
			if (f->allowed)
			{
				appendStringInfoString(&buf, "Expected one of ");
				for (int i = 0; f->allowed[i]; i++)
					appendStringInfo(&buf, "%s\"%s\"", i ? ", " : "",
									 f->allowed[i]);
			}
			else
				appendStringInfo(&buf,
								 "Expected a string of %d to %d characters",
								 f->minval, f->maxval);
			break;
		case FT_TSTZ:
			appendStringInfoString(&buf, "Expected a timestamp string");
			break;
		case FT_UUID:
			appendStringInfoString(&buf, "Expected a UUID string");
			break;
		case FT_SECRET:
			appendStringInfoString(&buf, "Expected a string");
			break;
		case FT_INT8:
			appendStringInfoString(&buf, "Expected an integer");
			break;
	}
	if (f->nullable)
		appendStringInfoString(&buf, " or null");
	appendStringInfoChar(&buf, '.');
	return buf.data;
}

/* ERROR 22023 naming the field, with what it accepts. */
static void
invalid_value(const RsField *f)
{
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid value for field \"%s\"", f->path),
			errdetail("%s", describe_expected(f)));
}

/*
 * server_nchars
 *		For the core's checks: -1 in a UTF-8 database (the core counts, and
 *		validates, itself), else the characters as the server counts them.
 */
static long
server_nchars(const char *s, int len)
{
	return GetDatabaseEncoding() == PG_UTF8 ? -1 : pg_mbstrlen_with_len(s, len);
}

/*
 * rs_require_label
 *		ERROR (22023) unless t is 1 to maxchars characters without control
 *		characters; what names the argument in the message.
 */
void
rs_require_label(text *t, const char *what, int maxchars)
{
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	switch (rs_check_label(s, len, server_nchars(s, len), 1, maxchars))
	{
		case RS_VAL_OK:
			return;
		case RS_VAL_CONTROL:
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("%s must not contain control characters", what));
			break;
		default:
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("%s must have 1 to %d characters", what, maxchars));
	}
}

/*
 * rs_validate_value
 *		Check a typed value against the field's rules; ERROR (22023, naming
 *		the field) when it does not fit.  Used by patch() and by the trigger
 *		for direct UPDATEs, so both paths reject the same values.
 */
void
rs_validate_value(const RsField *f, Datum value, bool isnull)
{
	RsValueCheck check = RS_VAL_OK;

	if (isnull)
		check = rs_check_null(f);
	else
	{
		switch (f->type)
		{
			case FT_INT2:
				check = rs_check_int(f, DatumGetInt16(value));
				break;
			case FT_INT4:
				check = rs_check_int(f, DatumGetInt32(value));
				break;
			case FT_TEXT:
				{
					text	   *t = DatumGetTextPP(value);
					const char *s = VARDATA_ANY(t);
					int			len = VARSIZE_ANY_EXHDR(t);

					check = rs_check_text(f, s, len, server_nchars(s, len));
					break;
				}
			case FT_TSTZ:
				if (TIMESTAMP_NOT_FINITE(DatumGetTimestampTz(value)))
					check = RS_VAL_RANGE;
				break;
			case FT_BOOL:
			case FT_UUID:
			case FT_SECRET:
			case FT_INT8:
				break;
		}
	}
	if (check != RS_VAL_OK)
		invalid_value(f);
}

/*
 * rs_value_from_jsonb
 *		Convert one JSON value of a patch to the field's type; ERROR 22023
 *		naming the field for a wrong JSON type.  The result is validated.
 */
Datum
rs_value_from_jsonb(const RsField *f, JsonbValue *v, bool *isnull)
{
	Datum		result = (Datum) 0;

	*isnull = false;
	if (v->type == jbvNull)
	{
		*isnull = true;
		rs_validate_value(f, (Datum) 0, true);
		return (Datum) 0;
	}

	switch (f->type)
	{
		case FT_BOOL:
			if (v->type != jbvBool)
				invalid_value(f);
			result = BoolGetDatum(v->val.boolean);
			break;
		case FT_INT2:
		case FT_INT4:
			{
				Numeric		n;
				bool		have_error = false;
				int32		i;

				if (v->type != jbvNumeric)
					invalid_value(f);
				n = v->val.numeric;
				if (numeric_is_nan(n) || numeric_is_inf(n))
					invalid_value(f);
				/* reject 2.5, accept 2.0 */
				if (!DatumGetBool(DirectFunctionCall2(numeric_eq,
													  NumericGetDatum(n),
													  DirectFunctionCall2(numeric_round,
																		  NumericGetDatum(n),
																		  Int32GetDatum(0)))))
					invalid_value(f);
				i = numeric_int4_opt_error(n, &have_error);
				if (have_error || rs_check_int(f, i) != RS_VAL_OK)
					invalid_value(f);
				result = (f->type == FT_INT2) ? Int16GetDatum((int16) i) :
					Int32GetDatum(i);
				break;
			}
		case FT_TEXT:
			if (v->type != jbvString)
				invalid_value(f);
			result = PointerGetDatum(cstring_to_text_with_len(v->val.string.val,
															  v->val.string.len));
			break;
		case FT_SECRET:
			if (v->type != jbvString)
				invalid_value(f);
			result = PointerGetDatum(cstring_to_text_with_len(v->val.string.val,
															  v->val.string.len));
			break;
		case FT_TSTZ:
			{
				char	   *s;
				bool		ok;
				TimestampTz ts;

				if (v->type != jbvString)
					invalid_value(f);
				s = pnstrdup(v->val.string.val, v->val.string.len);
				ok = rs_parse_timestamptz(s, &ts);
				if (!ok)
					invalid_value(f);
				result = TimestampTzGetDatum(ts);
				break;
			}
		case FT_UUID:
			{
				char	   *s;
				pg_uuid_t  *u;

				if (v->type != jbvString)
					invalid_value(f);
				s = pnstrdup(v->val.string.val, v->val.string.len);
				u = rs_parse_uuid(s);
				if (u == NULL)
					invalid_value(f);
				result = UUIDPGetDatum(u);
				break;
			}
		case FT_INT8:
			/* the hidden change stamps are never patched (W_SYSTEM) */
			invalid_value(f);
			break;
	}
	rs_validate_value(f, result, false);
	return result;
}

/*
 * rs_value_to_json
 *		Append a field value as JSON text (used for notification payloads,
 *		which must be built without jsonb round trips).  Never called for
 *		FT_SECRET: persona text is never put in a payload.
 */
void
rs_value_to_json(StringInfo buf, const RsField *f, Datum value, bool isnull)
{
	Assert(f->type != FT_SECRET);
	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	switch (f->type)
	{
		case FT_BOOL:
			appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
			break;
		case FT_INT2:
			appendStringInfo(buf, "%d", (int) DatumGetInt16(value));
			break;
		case FT_INT4:
			appendStringInfo(buf, "%d", DatumGetInt32(value));
			break;
		case FT_INT8:
			appendStringInfo(buf, INT64_FORMAT, DatumGetInt64(value));
			break;
		case FT_TEXT:
			escape_json(buf, TextDatumGetCString(value));
			break;
		case FT_TSTZ:
			{
				char		tbuf[MAXDATELEN + 1];

				JsonEncodeDateTime(tbuf, value, TIMESTAMPTZOID, NULL);
				appendStringInfoChar(buf, '"');
				appendStringInfoString(buf, tbuf);
				appendStringInfoChar(buf, '"');
				break;
			}
		case FT_UUID:
			appendStringInfoChar(buf, '"');
			appendStringInfoString(buf,
								   rs_uuid_to_cstring(DatumGetUUIDP(value)));
			appendStringInfoChar(buf, '"');
			break;
		case FT_SECRET:
			appendStringInfoString(buf, "null");
			break;
	}
}

/*
 * rs_value_to_jsonb
 *		Push a field value as a jsonb scalar.  FT_SECRET values arrive here
 *		already decrypted as text.
 */
void
rs_value_to_jsonb(JsonbParseState **st, const RsField *f, Datum value,
				  bool isnull)
{
	if (isnull)
	{
		rs_jb_null(st);
		return;
	}
	switch (f->type)
	{
		case FT_BOOL:
			rs_jb_bool(st, DatumGetBool(value));
			break;
		case FT_INT2:
			rs_jb_int64(st, DatumGetInt16(value));
			break;
		case FT_INT4:
			rs_jb_int64(st, DatumGetInt32(value));
			break;
		case FT_INT8:
			rs_jb_int64(st, DatumGetInt64(value));
			break;
		case FT_TEXT:
		case FT_SECRET:
			rs_jb_string(st, TextDatumGetCString(value));
			break;
		case FT_TSTZ:
			rs_jb_timestamptz(st, DatumGetTimestampTz(value));
			break;
		case FT_UUID:
			rs_jb_string(st, rs_uuid_to_cstring(DatumGetUUIDP(value)));
			break;
	}
}

/*
 * rs_values_equal
 *		Whether two values of a field are the same.  Varlena values are
 *		compared by content: the same text may have a one-byte header on
 *		disk and a four-byte one in a freshly built tuple.
 */
bool
rs_values_equal(const RsField *f, Datum a, bool anull, Datum b, bool bnull)
{
	if (anull || bnull)
		return anull == bnull;
	switch (f->type)
	{
		case FT_BOOL:
			return DatumGetBool(a) == DatumGetBool(b);
		case FT_INT2:
			return DatumGetInt16(a) == DatumGetInt16(b);
		case FT_INT4:
			return DatumGetInt32(a) == DatumGetInt32(b);
		case FT_INT8:
			return DatumGetInt64(a) == DatumGetInt64(b);
		case FT_TSTZ:
			return DatumGetTimestampTz(a) == DatumGetTimestampTz(b);
		case FT_UUID:
			return memcmp(DatumGetUUIDP(a), DatumGetUUIDP(b), UUID_LEN) == 0;
		case FT_TEXT:
		case FT_SECRET:
			return datum_image_eq(a, b, false, -1);
	}
	return false;
}

/*
 * rs_read_field_log
 *		Unpack the per-field version and time arrays of a state row.  The
 *		arrays are one-dimensional, without NULLs, and may be shorter than
 *		RS_NFIELDS (fields added by a later version read as 0).  Anything
 *		else means the row was tampered with.
 */
void
rs_read_field_log(Datum fv, bool fvnull, Datum ft, bool ftnull,
				  RsFieldLog *log)
{
	memset(log, 0, sizeof(RsFieldLog));
	if (!fvnull)
	{
		ArrayType  *a = DatumGetArrayTypeP(fv);
		int			n;

		if (ARR_NDIM(a) > 1 || ARR_HASNULL(a) || ARR_ELEMTYPE(a) != INT8OID)
			elog(ERROR, "malformed field_versions array");
		n = ARR_NDIM(a) == 0 ? 0 : Min(ARR_DIMS(a)[0], RS_NFIELDS);
		memcpy(log->version, ARR_DATA_PTR(a), n * sizeof(int64));
	}
	if (!ftnull)
	{
		ArrayType  *a = DatumGetArrayTypeP(ft);
		int			n;

		if (ARR_NDIM(a) > 1 || ARR_HASNULL(a) ||
			ARR_ELEMTYPE(a) != TIMESTAMPTZOID)
			elog(ERROR, "malformed field_times array");
		n = ARR_NDIM(a) == 0 ? 0 : Min(ARR_DIMS(a)[0], RS_NFIELDS);
		memcpy(log->time, ARR_DATA_PTR(a), n * sizeof(TimestampTz));
	}
}

/* A bigint[] of n values (a row's field_versions). */
Datum
rs_build_int8_array(const int64 *vals, int n)
{
	Datum	   *d = palloc(n * sizeof(Datum));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(vals[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/* A timestamptz[] of n values (a row's field_times). */
Datum
rs_build_tstz_array(const TimestampTz *vals, int n)
{
	Datum	   *d = palloc(n * sizeof(Datum));

	for (int i = 0; i < n; i++)
		d[i] = TimestampTzGetDatum(vals[i]);
	return PointerGetDatum(construct_array(d, n, TIMESTAMPTZOID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * rs_text_equals
 *		Whether a text value (not null) is exactly "s".
 */
bool
rs_text_equals(Datum d, bool isnull, const char *s)
{
	text	   *t;

	if (isnull)
		return false;
	t = DatumGetTextPP(d);
	return VARSIZE_ANY_EXHDR(t) == strlen(s) &&
		memcmp(VARDATA_ANY(t), s, VARSIZE_ANY_EXHDR(t)) == 0;
}
