/*-------------------------------------------------------------------------
 *
 * rs_fields_core.h
 *	  The field registry and the checks of patch keys and values, in plain
 *	  C: no PostgreSQL header, no allocation, so they build and run outside
 *	  the server (unit tests under valgrind, libFuzzer harnesses).
 *
 * A patch is a JSON object mapping field paths to values.  PostgreSQL's
 * jsonb parser reads the JSON; everything after that is decided here: which
 * keys name a field, which caller may write it, and whether a value is
 * acceptable (UTF-8, length in characters, control characters, enumerations,
 * integer ranges, UUID syntax).  The server code (fields.c, patch.c) turns
 * the results into SQLSTATEs.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/core/rs_fields_core.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_FIELDS_CORE_H
#define RS_FIELDS_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Fields.  A field id is its index in state.field_versions and
 * state.field_times; ids are never reused or renumbered, new fields are
 * appended.  Arrays shorter than RS_NFIELDS (rows written by an older
 * version) read as zero for the missing ids.
 */
typedef enum RsFieldId
{
	F_AUTH_EMAIL = 0,
	F_AUTH_NAME,
	F_SUB_PLAN,
	F_SUB_STATUS,
	F_SUB_TRIAL_ENDS_AT,
	F_SUB_PERIOD_START,
	F_SUB_PERIOD_END,
	F_SUB_POLAR_SUBSCRIPTION_ID,
	F_SUB_POLAR_CUSTOMER_ID,
	F_PERSONA_IDENTITY,
	F_PERSONA_INTOLERANCE,
	F_PERSONA_TOLERANCE,
	F_PERSONA_EMBEDDINGS_AT,
	F_PERSONA_EMBEDDINGS_MODEL,
	F_ROASTING_ENABLED,
	F_ROASTING_LEVEL,
	F_ROASTING_SHIELD,
	F_USAGE_USED,
	F_USAGE_PERIOD_START,
	F_ORG_ID,
	/* 0.2.0 */
	F_USAGE_PERIOD_END,			/* hidden: end of the period "used" counts */
	F_LIMITS_CHANGED_AT,		/* hidden: an operator changed plan limits */
	F_ORG_CHANGED_AT,			/* hidden: the current organization changed */
	/* 0.6.0 */
	F_SUB_CANCEL_AT_PERIOD_END,
	/* 0.7.0 */
	F_LIMITS_SEEN,				/* hidden: the plan-limit stamp the log shows */
	F_ORG_SEEN,					/* hidden: the organization stamp the log
								 * shows */
	RS_NFIELDS
} RsFieldId;

/* Fields that exist in 0.1.0 rows (their arrays have this many entries). */
#define RS_NFIELDS_0_1	20

typedef enum RsFieldType
{
	FT_BOOL,
	FT_INT2,
	FT_INT4,
	FT_TEXT,
	FT_TSTZ,
	FT_UUID,
	FT_SECRET,					/* persona text: stored encrypted elsewhere */
	FT_INT8						/* hidden change stamps (0.7.0) */
} RsFieldType;

/* Who may write a field through patch(). */
typedef enum RsWriter
{
	W_USER,						/* the user or the service */
	W_SERVICE,					/* the service only */
	W_SYSTEM					/* only a dedicated function */
} RsWriter;

/* Notification kinds; a payload's "type" lists the kinds it carries. */
typedef enum RsKind
{
	K_AUTH = 0,
	K_SUBSCRIPTION,
	K_PERSONA,
	K_ROASTING_TOGGLE,
	K_ROASTING,
	K_USAGE,
	K_ORGANIZATION,
	RS_NKINDS
} RsKind;

typedef struct RsField
{
	RsFieldId	id;
	const char *path;			/* "roasting.enabled" */
	const char *section;		/* "roasting" */
	const char *key;			/* "enabled" */
	const char *column;			/* column of roastr_state.state, or NULL */
	RsFieldType type;
	RsWriter	writer;
	RsKind		kind;
	bool		nullable;
	int32_t		minval;			/* FT_INT*: range; FT_TEXT: min length */
	int32_t		maxval;			/* FT_INT*: range; FT_TEXT: max length */
	const char *const *allowed; /* FT_TEXT enumerations, NULL-terminated */
	bool		hidden;			/* versioned, but never shown to clients */
	bool		private;		/* personal: never in a notification payload */
} RsField;

extern const RsField rs_fields[RS_NFIELDS];
extern const char *const rs_kind_names[RS_NKINDS];

/* Read-only paths clients see in state_full, which a patch cannot set. */
extern const char *const rs_derived_paths[];

/* What a patch key names, for the caller at hand. */
typedef enum RsKeyCheck
{
	RS_KEY_OK = 0,				/* a field this caller may write */
	RS_KEY_UNKNOWN,				/* no such field */
	RS_KEY_DERIVED,				/* a computed, read-only path */
	RS_KEY_SYSTEM,				/* maintained by a dedicated function */
	RS_KEY_SERVICE_ONLY			/* only the service may write it */
} RsKeyCheck;

/* Why a value does not fit its field. */
typedef enum RsValueCheck
{
	RS_VAL_OK = 0,
	RS_VAL_NULL,				/* null for a field that is not nullable */
	RS_VAL_ENCODING,			/* not valid UTF-8 */
	RS_VAL_LENGTH,				/* too few or too many characters */
	RS_VAL_CONTROL,				/* a control character */
	RS_VAL_NOT_ALLOWED,			/* not one of the enumeration */
	RS_VAL_NOT_EMAIL,			/* an e-mail address without '@' */
	RS_VAL_RANGE,				/* an integer out of range */
	RS_VAL_TYPE					/* the check does not apply to this field */
} RsValueCheck;

#define RS_UUID_BYTES	16
#define RS_UUID_CHARS	36

/*
 * Whether a change of the field shows its value in a notification payload:
 * not persona text, hidden or personal fields, nor the organization (sent
 * as its own object).
 */
static inline bool
rs_field_in_payload(const RsField *f)
{
	return f->type != FT_SECRET && !f->hidden && !f->private &&
		f->kind != K_ORGANIZATION;
}

extern const RsField *rs_field_by_path(const char *path, size_t len);
extern RsKeyCheck rs_check_patch_key(const char *path, size_t len,
									 bool is_service, const RsField **field);
extern RsValueCheck rs_check_null(const RsField *f);
extern RsValueCheck rs_check_text(const RsField *f, const char *s, size_t len,
								  long nchars);
extern RsValueCheck rs_check_label(const char *s, size_t len, long nchars,
								   long minchars, long maxchars);
extern RsValueCheck rs_check_int(const RsField *f, int64_t v);
extern long rs_utf8_chars(const char *s, size_t len);
extern bool rs_parse_uuid_text(const char *s, size_t len,
							   uint8_t out[RS_UUID_BYTES]);
extern const char *rs_value_check_text(RsValueCheck c);

#endif							/* RS_FIELDS_CORE_H */
