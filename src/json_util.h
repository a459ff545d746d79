/*-------------------------------------------------------------------------
 *
 * json_util.h
 *	  Building jsonb values, and the text forms of uuids and timestamps
 *	  that JSON carries.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/json_util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_JSON_UTIL_H
#define RS_JSON_UTIL_H

#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* jsonb building: a key, or a value after a key */
extern void rs_jb_key(JsonbParseState **st, const char *key);
extern void rs_jb_string(JsonbParseState **st, const char *s);
extern void rs_jb_int64(JsonbParseState **st, int64 v);
extern void rs_jb_bool(JsonbParseState **st, bool v);
extern void rs_jb_null(JsonbParseState **st);
extern void rs_jb_timestamptz(JsonbParseState **st, TimestampTz ts);

/* a string element of an array */
extern void rs_jb_elem_string(JsonbParseState **st, const char *s);

/* text forms, without throwing */
extern char *rs_uuid_to_cstring(const pg_uuid_t *u);
extern pg_uuid_t *rs_parse_uuid(const char *s);
extern bool rs_parse_timestamptz(const char *str, TimestampTz *result);

#endif							/* RS_JSON_UTIL_H */
