/*-------------------------------------------------------------------------
 *
 * fieldlog.c
 *	  The per-field change log as stored in a state row.
 *
 * Up to 0.6.0 a row kept it in two arrays indexed by field id,
 * field_versions bigint[] and field_times timestamptz[], in the middle of
 * the row.  A one-field write changes the version, updated_at, the field
 * and its two entries, and PostgreSQL logs an UPDATE as the new tuple minus
 * the prefix and suffix it shares with the old one: so every write re-logged
 * everything between the version and the field's entry in the second array,
 * one whole array included (about 3.4 times the WAL of a bare UPDATE).
 *
 * From 0.7.0 the row ends with version, updated_at, the hot values and one
 * bigint[] field_log of (version, time) pairs, time in PostgreSQL's
 * microseconds since 2000-01-01 UTC, in slot order: the fields written
 * most often (consumption, the roasting settings) first.  A hot write now
 * changes one short run of bytes near the end of the row.  Slots are part
 * of the stored format: once released they never move; every field after
 * the first 24 takes the slot equal to its id (the 0.6.0 -> 0.7.0 script
 * relies on it).  A field_log shorter than the slots reads as zero
 * for the missing ones (as the arrays did for fields added later).
 *
 * The library serves both layouts (the old one until ALTER EXTENSION
 * UPDATE), chosen by the columns the table has (relation.c).
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/fieldlog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/timestamp.h"

#include "fieldlog.h"

/* slot -> field: the hottest first */
const int	rs_log_field[RS_NFIELDS] = {
	F_USAGE_USED,
	F_ROASTING_ENABLED,
	F_ROASTING_LEVEL,
	F_ROASTING_SHIELD,
	F_USAGE_PERIOD_START,
	F_USAGE_PERIOD_END,
	F_AUTH_NAME,
	F_PERSONA_IDENTITY,
	F_PERSONA_INTOLERANCE,
	F_PERSONA_TOLERANCE,
	F_PERSONA_EMBEDDINGS_AT,
	F_PERSONA_EMBEDDINGS_MODEL,
	F_SUB_STATUS,
	F_SUB_PLAN,
	F_SUB_PERIOD_START,
	F_SUB_PERIOD_END,
	F_SUB_TRIAL_ENDS_AT,
	F_SUB_CANCEL_AT_PERIOD_END,
	F_SUB_POLAR_SUBSCRIPTION_ID,
	F_SUB_POLAR_CUSTOMER_ID,
	F_LIMITS_CHANGED_AT,
	F_ORG_ID,
	F_ORG_CHANGED_AT,
	F_AUTH_EMAIL,
	/* 0.8.0 */
	F_LIMITS_SEEN,
	F_ORG_SEEN,
};

/* field -> slot (the inverse of rs_log_field) */
const int	rs_log_slot[RS_NFIELDS] = {
	[F_USAGE_USED] = 0,
	[F_ROASTING_ENABLED] = 1,
	[F_ROASTING_LEVEL] = 2,
	[F_ROASTING_SHIELD] = 3,
	[F_USAGE_PERIOD_START] = 4,
	[F_USAGE_PERIOD_END] = 5,
	[F_AUTH_NAME] = 6,
	[F_PERSONA_IDENTITY] = 7,
	[F_PERSONA_INTOLERANCE] = 8,
	[F_PERSONA_TOLERANCE] = 9,
	[F_PERSONA_EMBEDDINGS_AT] = 10,
	[F_PERSONA_EMBEDDINGS_MODEL] = 11,
	[F_SUB_STATUS] = 12,
	[F_SUB_PLAN] = 13,
	[F_SUB_PERIOD_START] = 14,
	[F_SUB_PERIOD_END] = 15,
	[F_SUB_TRIAL_ENDS_AT] = 16,
	[F_SUB_CANCEL_AT_PERIOD_END] = 17,
	[F_SUB_POLAR_SUBSCRIPTION_ID] = 18,
	[F_SUB_POLAR_CUSTOMER_ID] = 19,
	[F_LIMITS_CHANGED_AT] = 20,
	[F_ORG_ID] = 21,
	[F_ORG_CHANGED_AT] = 22,
	[F_AUTH_EMAIL] = 23,
	[F_LIMITS_SEEN] = 24,
	[F_ORG_SEEN] = 25,
};

/*
 * rs_field_log_well_formed
 *		Whether a field_log is one-dimensional, without NULLs, of an even
 *		length (a restored row is checked before it is read).
 */
bool
rs_field_log_well_formed(Datum log, bool isnull)
{
	ArrayType  *a;

	if (isnull)
		return false;
	a = DatumGetArrayTypeP(log);
	return ARR_NDIM(a) <= 1 && !ARR_HASNULL(a) && ARR_ELEMTYPE(a) == INT8OID &&
		(ARR_NDIM(a) == 0 || ARR_DIMS(a)[0] % 2 == 0);
}

/*
 * rs_read_field_log_pairs
 *		Unpack a field_log.  It must be one-dimensional, without NULLs, of
 *		an even length; anything else means the row was tampered with.
 */
void
rs_read_field_log_pairs(Datum log, bool isnull, RsFieldLog *out)
{
	ArrayType  *a;
	const int64 *d;
	int			n;

	memset(out, 0, sizeof(RsFieldLog));
	if (isnull)
		return;
	if (!rs_field_log_well_formed(log, isnull))
		elog(ERROR, "malformed field_log array");
	a = DatumGetArrayTypeP(log);
	n = ARR_NDIM(a) == 0 ? 0 : Min(ARR_DIMS(a)[0] / 2, RS_NFIELDS);
	d = (const int64 *) ARR_DATA_PTR(a);
	for (int s = 0; s < n; s++)
	{
		int			f = rs_log_field[s];

		out->version[f] = d[2 * s];
		out->time[f] = (TimestampTz) d[2 * s + 1];
	}
}

/* A field_log of every field, in slot order. */
Datum
rs_build_field_log_pairs(const RsFieldLog *log)
{
	Datum		d[2 * RS_NFIELDS];

	for (int s = 0; s < RS_NFIELDS; s++)
	{
		int			f = rs_log_field[s];

		d[2 * s] = Int64GetDatum(log->version[f]);
		d[2 * s + 1] = Int64GetDatum((int64) log->time[f]);
	}
	return PointerGetDatum(construct_array(d, 2 * RS_NFIELDS, INT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

void
rs_row_read_log(const RsLayout *l, const Datum *vals, const bool *nulls,
				RsFieldLog *out)
{
	if (l->att_log != 0)
		rs_read_field_log_pairs(vals[l->att_log - 1], nulls[l->att_log - 1],
								out);
	else
		rs_read_field_log(vals[l->att_fv - 1], nulls[l->att_fv - 1],
						  vals[l->att_ft - 1], nulls[l->att_ft - 1], out);
}

/* Whether a row comes without a change log (a new user, not a restore). */
bool
rs_row_log_empty(const RsLayout *l, const Datum *vals, const bool *nulls)
{
	AttrNumber	a = l->att_log != 0 ? l->att_log : l->att_fv;
	ArrayType  *arr;

	if (nulls[a - 1])
		return true;
	arr = DatumGetArrayTypeP(vals[a - 1]);
	return ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) == 0;
}

void
rs_row_log_columns(const RsLayout *l, const RsFieldLog *log,
				   int *cols, Datum *vals, int *n)
{
	if (l->att_log != 0)
	{
		cols[*n] = l->att_log;
		vals[(*n)++] = rs_build_field_log_pairs(log);
	}
	else
	{
		cols[*n] = l->att_fv;
		vals[(*n)++] = rs_build_int8_array(log->version, RS_NFIELDS);
		cols[*n] = l->att_ft;
		vals[(*n)++] = rs_build_tstz_array(log->time, RS_NFIELDS);
	}
}

int
rs_row_log_attnums(const RsLayout *l, AttrNumber *attnums)
{
	if (l->att_log != 0)
	{
		attnums[0] = l->att_log;
		return 1;
	}
	attnums[0] = l->att_fv;
	attnums[1] = l->att_ft;
	return 2;
}
