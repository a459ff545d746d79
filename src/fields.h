/*-------------------------------------------------------------------------
 *
 * fields.h
 *	  The field registry on the server side: validating field values,
 *	  converting them to and from JSON, and the per-field change log of a
 *	  state row.
 *
 * The registry itself (paths, types, who writes what) and the checks that
 * need no server are in core/rs_fields_core.h; this file turns their
 * answers into SQLSTATEs and Datums.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/fields.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_FIELDS_H
#define RS_FIELDS_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "core/rs_fields_core.h"

#define RS_FIELD_BIT(f)		(UINT32_C(1) << (f))

/* The persona fields whose text is stored encrypted. */
#define RS_PERSONA_TEXT_MASK	(RS_FIELD_BIT(F_PERSONA_IDENTITY) | \
								 RS_FIELD_BIT(F_PERSONA_INTOLERANCE) | \
								 RS_FIELD_BIT(F_PERSONA_TOLERANCE))

/* Per-field versions and times as read from a row (the change log). */
typedef struct RsFieldLog
{
	int64		version[RS_NFIELDS];
	TimestampTz time[RS_NFIELDS];
} RsFieldLog;

/* values */
extern Oid	rs_field_typoid(const RsField *f);
extern void rs_validate_value(const RsField *f, Datum value, bool isnull);
extern void rs_require_label(text *t, const char *what, int maxchars);
extern Datum rs_value_from_jsonb(const RsField *f, JsonbValue *v,
								 bool *isnull);
extern void rs_value_to_json(StringInfo buf, const RsField *f, Datum value,
							 bool isnull);
extern void rs_value_to_jsonb(JsonbParseState **st, const RsField *f,
							  Datum value, bool isnull);
extern bool rs_values_equal(const RsField *f, Datum a, bool anull,
							Datum b, bool bnull);
extern bool rs_text_equals(Datum d, bool isnull, const char *s);

/* the change log */
extern void rs_read_field_log(Datum fv, bool fvnull, Datum ft, bool ftnull,
							  RsFieldLog *log);
extern Datum rs_build_int8_array(const int64 *vals, int n);
extern Datum rs_build_tstz_array(const TimestampTz *vals, int n);

#endif							/* RS_FIELDS_H */
