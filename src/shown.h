/*-------------------------------------------------------------------------
 *
 * shown.h
 *	  What a client is shown of a user's state: every path of state_full,
 *	  what each is computed from, its value, and the documents state_full
 *	  and state_sync.
 *
 * This is the one rule that decides both which fields a sync reports after
 * a cursor and which fields a notification names: a shown path carries the
 * newest version among its inputs, and a write names every shown path one
 * of whose inputs it changed.  The two cannot drift apart because both
 * read the same table.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/shown.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_SHOWN_H
#define RS_SHOWN_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "fields.h"
#include "usage.h"
#include "user_state.h"

typedef enum RsShownId
{
	S_AUTH_EMAIL = 0,
	S_AUTH_NAME,
	S_SUB_PLAN,
	S_SUB_STATUS,
	S_SUB_TRIAL_ENDS_AT,
	S_SUB_TRIAL_DAYS,
	S_SUB_PERIOD_START,
	S_SUB_PERIOD_END,
	S_SUB_POLAR_SUBSCRIPTION_ID,
	S_SUB_POLAR_CUSTOMER_ID,
	S_SUB_CANCEL_AT_PERIOD_END,
	S_PERSONA_IDENTITY,
	S_PERSONA_INTOLERANCE,
	S_PERSONA_TOLERANCE,
	S_PERSONA_EMBEDDINGS_AT,
	S_PERSONA_EMBEDDINGS_MODEL,
	S_ROASTING_ENABLED,
	S_ROASTING_LEVEL,
	S_ROASTING_SHIELD,
	S_USAGE_USED,
	S_USAGE_LIMIT,
	S_USAGE_REMAINING,
	S_USAGE_PERIOD_START,
	S_USAGE_RESET_DATE,
	S_ORG_ID,
	S_ORG_NAME,
	S_ORG_SLUG,
	S_ORG_ROLE,
	RS_NSHOWN
} RsShownId;

/* How a computed value is typed (a stored field's value is typed by it). */
typedef enum RsShownType
{
	SV_FIELD,					/* the value of rs_fields[field] */
	SV_INT4,
	SV_TSTZ,
	SV_TEXT
} RsShownType;

/*
 * A shown path.  For a stored field (field >= 0) path, section, key, kind
 * and privacy are the field's own (use the accessors below).
 */
typedef struct RsShown
{
	const char *path;			/* "usage.remaining_roasts" */
	const char *section;		/* "usage" */
	const char *key;			/* "remaining_roasts" */
	int			field;			/* the stored field shown, or -1 */
	RsShownType type;
	uint32		deps;			/* stored fields the value is computed from */
	RsKind		kind;			/* notification kind, when not a field */
	bool		withheld;		/* named in payloads, its value never sent */
} RsShown;

#define RS_SHOWN_BIT(s)		(UINT32_C(1) << (s))

/* Shown values that need the plan limits (st->plan_limit, free_limit). */
/* Shown values computed from what the state means now (usage.c). */
#define RS_SHOWN_EFFECTIVE	(RS_SHOWN_BIT(S_SUB_PLAN) | \
							 RS_SHOWN_BIT(S_SUB_STATUS) | \
							 RS_SHOWN_BIT(S_SUB_TRIAL_DAYS) | \
							 RS_SHOWN_BIT(S_USAGE_USED) | \
							 RS_SHOWN_BIT(S_USAGE_LIMIT) | \
							 RS_SHOWN_BIT(S_USAGE_REMAINING) | \
							 RS_SHOWN_BIT(S_USAGE_PERIOD_START) | \
							 RS_SHOWN_BIT(S_USAGE_RESET_DATE))

#define RS_SHOWN_NEEDS_LIMITS	(RS_SHOWN_BIT(S_USAGE_LIMIT) | \
								 RS_SHOWN_BIT(S_USAGE_REMAINING))

#define RS_NSECTIONS	6

extern const RsShown rs_shown[RS_NSHOWN];
extern const char *const rs_sections[RS_NSECTIONS];

extern const char *rs_shown_path(RsShownId s);
extern const char *rs_shown_section(RsShownId s);
extern const char *rs_shown_key(RsShownId s);
extern bool rs_shown_withheld(RsShownId s);
extern uint32 rs_shown_named(uint32 changed);
extern uint32 rs_shown_kinds(uint32 named);
extern int64 rs_shown_version(RsShownId s, const RsFieldLog *log,
							  TimestampTz *time);
extern void rs_shown_value(const RsUserState *st, const RsEffective *eff,
						   RsShownId id, Datum *value, bool *isnull);
extern void rs_shown_to_json(StringInfo buf, RsShownId id, Datum value,
							 bool isnull);
extern void rs_shown_to_jsonb(JsonbParseState **js, RsShownId id, Datum value,
							  bool isnull);
extern void rs_shown_payload_values(const RsUserState *st, uint32 named,
									char **values);

/* the documents */
extern Jsonb *rs_render_full(const RsUserState *st, const char *history);
extern Jsonb *rs_render_sync(const RsUserState *st, bool all, bool by_time,
							 int64 since, TimestampTz since_at,
							 const char *history, bool reset);

#endif							/* RS_SHOWN_H */
