/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every difference between the PostgreSQL versions roastr_state builds
 *	  against (15 and later), and nothing else.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_COMPAT_H
#define RS_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "roastr_state requires PostgreSQL 15 or later"
#endif

/* DecodeDateTime takes a DateTimeErrorExtra from 16 on */
#if PG_VERSION_NUM >= 160000
#define RS_DECODE_DATETIME(field, ftype, nf, dtype, tm, fsec, tz) \
	DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tz, &rs_dterr_extra)
#define RS_DTERR_EXTRA_DECL DateTimeErrorExtra rs_dterr_extra
#else
#define RS_DECODE_DATETIME(field, ftype, nf, dtype, tm, fsec, tz) \
	DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tz)
#define RS_DTERR_EXTRA_DECL int rs_dterr_extra pg_attribute_unused()
#endif

/* JSON semantic action callbacks return a status from 16 on */
#if PG_VERSION_NUM >= 160000
#define RS_JSON_ACTION JsonParseErrorType
#define RS_JSON_RETURN return JSON_SUCCESS
#else
#define RS_JSON_ACTION void
#define RS_JSON_RETURN return
#endif

/* makeJsonLexContextCstringLen takes the context to fill from 17 on */
#if PG_VERSION_NUM >= 170000
#define RS_MAKE_JSON_LEX(json, len) \
	makeJsonLexContextCstringLen(NULL, json, len, GetDatabaseEncoding(), true)
#else
#define RS_MAKE_JSON_LEX(json, len) \
	makeJsonLexContextCstringLen(json, len, GetDatabaseEncoding(), true)
#endif

#endif							/* RS_COMPAT_H */
