/*-------------------------------------------------------------------------
 *
 * shown.c
 *	  What a client is shown of a user's state (see shown.h).
 *
 * Every path of state_full is a row of rs_shown[]: a stored field shown as
 * stored (roasting.enabled), a stored field shown with its effective value
 * (subscription.plan after an expired trial, usage.monthly_roasts_used
 * after a period rollover), or a value computed from others
 * (usage.remaining_roasts).  Each row lists the stored fields its value is
 * computed from, its own included.  From that one list:
 *
 *	- state_sync gives a shown path the newest version among its inputs,
 *	  so a sync from an older cursor reports it whenever one of them
 *	  changed (sometimes with an unchanged value);
 *	- a write that changed a set of stored fields names, in its
 *	  notification, exactly the shown paths with an input in that set, and
 *	  carries their values where payloads may (rs_shown_payload_values).
 *
 * So a notification of version N names exactly what state_sync(user, N - 1)
 * reports at version N.
 *
 * The documents state_full and state_sync are rendered here too, from the
 * same table, with persona text opened.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/shown.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"

#include "crypto.h"
#include "fields.h"
#include "json_util.h"
#include "persona.h"
#include "shown.h"
#include "usage.h"

#define DEP(f)				(UINT32_C(1) << (f))
#define DEPS_STATUS			(DEP(F_SUB_STATUS) | DEP(F_SUB_TRIAL_ENDS_AT))
#define DEPS_PLAN			(DEPS_STATUS | DEP(F_SUB_PLAN) | DEP(F_SUB_PERIOD_END))
#define DEPS_PERIOD			(DEPS_PLAN | DEP(F_SUB_PERIOD_START))
/* an operator's limit change: 0.2.0-0.6.0 wrote it as limits_changed_at */
#define DEPS_LIMITS_MOVED	(DEP(F_LIMITS_CHANGED_AT) | DEP(F_LIMITS_SEEN))
#define DEPS_LIMIT			(DEPS_PLAN | DEPS_LIMITS_MOVED)
#define DEPS_PERIOD_START	(DEPS_PERIOD | DEP(F_USAGE_PERIOD_START))
#define DEPS_USED			(DEPS_PERIOD_START | DEP(F_USAGE_USED) | \
							 DEP(F_USAGE_PERIOD_END))
#define DEPS_REMAINING		(DEPS_USED | DEPS_LIMITS_MOVED)
#define DEPS_ORG			(DEP(F_ORG_ID) | DEP(F_ORG_CHANGED_AT) | \
							 DEP(F_ORG_SEEN))

StaticAssertDecl(RS_NFIELDS <= 32, "field masks are 32 bits");
StaticAssertDecl(RS_NSHOWN <= 32, "shown masks are 32 bits");

const char *const rs_sections[RS_NSECTIONS] = {
	"auth", "subscription", "persona", "roasting", "usage", "organization"
};

/* One shown path of a rendered document: its value and version. */
typedef struct RsOutItem
{
	RsShownId	id;
	Datum		value;
	bool		isnull;
	int64		version;
	TimestampTz time;
} RsOutItem;

/* a stored field shown as stored */
#define STORED(s, f) \
	[s] = {NULL, NULL, NULL, f, SV_FIELD, DEP(f), 0, false}
/* a stored field shown with a value computed from several */
#define EFFECTIVE(s, f, deps) \
	[s] = {NULL, NULL, NULL, f, SV_FIELD, deps, 0, false}

/*
 * The table.  Rows of stored fields take their path, section, key, kind and
 * privacy from the field registry (rs_fields, see rs_shown_path and
 * friends); the computed ones are spelled out.
 */
const RsShown rs_shown[RS_NSHOWN] = {
	STORED(S_AUTH_EMAIL, F_AUTH_EMAIL),
	STORED(S_AUTH_NAME, F_AUTH_NAME),
	EFFECTIVE(S_SUB_PLAN, F_SUB_PLAN, DEPS_PLAN),
	EFFECTIVE(S_SUB_STATUS, F_SUB_STATUS, DEPS_STATUS),
	STORED(S_SUB_TRIAL_ENDS_AT, F_SUB_TRIAL_ENDS_AT),
	[S_SUB_TRIAL_DAYS] = {"subscription.trial_days_remaining", "subscription",
		"trial_days_remaining", -1, SV_INT4, DEPS_STATUS, K_SUBSCRIPTION,
	false},
	STORED(S_SUB_PERIOD_START, F_SUB_PERIOD_START),
	STORED(S_SUB_PERIOD_END, F_SUB_PERIOD_END),
	STORED(S_SUB_POLAR_SUBSCRIPTION_ID, F_SUB_POLAR_SUBSCRIPTION_ID),
	STORED(S_SUB_POLAR_CUSTOMER_ID, F_SUB_POLAR_CUSTOMER_ID),
	STORED(S_SUB_CANCEL_AT_PERIOD_END, F_SUB_CANCEL_AT_PERIOD_END),
	STORED(S_PERSONA_IDENTITY, F_PERSONA_IDENTITY),
	STORED(S_PERSONA_INTOLERANCE, F_PERSONA_INTOLERANCE),
	/* below pro the tolerance reads as null: the plan is an input */
	EFFECTIVE(S_PERSONA_TOLERANCE, F_PERSONA_TOLERANCE,
			  DEP(F_PERSONA_TOLERANCE) | DEPS_PLAN),
	STORED(S_PERSONA_EMBEDDINGS_AT, F_PERSONA_EMBEDDINGS_AT),
	STORED(S_PERSONA_EMBEDDINGS_MODEL, F_PERSONA_EMBEDDINGS_MODEL),
	STORED(S_ROASTING_ENABLED, F_ROASTING_ENABLED),
	STORED(S_ROASTING_LEVEL, F_ROASTING_LEVEL),
	STORED(S_ROASTING_SHIELD, F_ROASTING_SHIELD),
	EFFECTIVE(S_USAGE_USED, F_USAGE_USED, DEPS_USED),
	[S_USAGE_LIMIT] = {"usage.monthly_roasts_limit", "usage",
	"monthly_roasts_limit", -1, SV_INT4, DEPS_LIMIT, K_USAGE, false},
	[S_USAGE_REMAINING] = {"usage.remaining_roasts", "usage",
	"remaining_roasts", -1, SV_INT4, DEPS_REMAINING, K_USAGE, false},
	EFFECTIVE(S_USAGE_PERIOD_START, F_USAGE_PERIOD_START, DEPS_PERIOD_START),
	[S_USAGE_RESET_DATE] = {"usage.reset_date", "usage", "reset_date", -1,
	SV_TSTZ, DEPS_PERIOD, K_USAGE, false},

	/*
	 * The organization is read from its own tables: its values come from
	 * state_sync, payloads only name it.
	 */
	[S_ORG_ID] = {NULL, NULL, NULL, F_ORG_ID, SV_FIELD, DEPS_ORG, 0, true},
	[S_ORG_NAME] = {"organization.name", "organization", "name", -1, SV_TEXT,
	DEPS_ORG, K_ORGANIZATION, true},
	[S_ORG_SLUG] = {"organization.slug", "organization", "slug", -1, SV_TEXT,
	DEPS_ORG, K_ORGANIZATION, true},
	[S_ORG_ROLE] = {"organization.role", "organization", "role", -1, SV_TEXT,
	DEPS_ORG, K_ORGANIZATION, true},
};

/* The dotted path of a shown value ("usage.remaining_roasts"). */
const char *
rs_shown_path(RsShownId s)
{
	return rs_shown[s].field >= 0 ? rs_fields[rs_shown[s].field].path :
		rs_shown[s].path;
}

/* The section (top-level key of state_full) of a shown value. */
const char *
rs_shown_section(RsShownId s)
{
	return rs_shown[s].field >= 0 ? rs_fields[rs_shown[s].field].section :
		rs_shown[s].section;
}

/* The key of a shown value within its section. */
const char *
rs_shown_key(RsShownId s)
{
	return rs_shown[s].field >= 0 ? rs_fields[rs_shown[s].field].key :
		rs_shown[s].key;
}

/*
 * rs_shown_withheld
 *		Whether a notification may name the path but never carry its value:
 *		persona text, personal values (anyone who may connect can LISTEN),
 *		and the organization (not in the state row).
 */
bool
rs_shown_withheld(RsShownId s)
{
	const RsShown *r = &rs_shown[s];

	if (r->withheld)
		return true;
	return r->field >= 0 && (rs_fields[r->field].type == FT_SECRET ||
							 rs_fields[r->field].private);
}

/*
 * rs_shown_named
 *		The shown paths (a mask of RsShownId) that a write changing the
 *		stored fields "changed" names: those with an input among them.
 */
uint32
rs_shown_named(uint32 changed)
{
	uint32		named = 0;

	for (int s = 0; s < RS_NSHOWN; s++)
		if (rs_shown[s].deps & changed)
			named |= RS_SHOWN_BIT(s);
	return named;
}

/*
 * rs_shown_kinds
 *		The notification kinds (a mask of RsKind) of a set of shown paths.
 */
uint32
rs_shown_kinds(uint32 named)
{
	uint32		kinds = 0;

	for (int s = 0; s < RS_NSHOWN; s++)
	{
		const RsShown *r = &rs_shown[s];

		if (!(named & RS_SHOWN_BIT(s)))
			continue;
		kinds |= UINT32_C(1) << (r->field >= 0 ? rs_fields[r->field].kind :
								 r->kind);
	}
	return kinds;
}

/*
 * rs_shown_version
 *		The version of a shown path: the newest among its inputs; "time"
 *		gets that change's time.
 */
int64
rs_shown_version(RsShownId s, const RsFieldLog *log, TimestampTz *time)
{
	int64		v = 0;

	*time = 0;
	for (int f = 0; f < RS_NFIELDS; f++)
	{
		if ((rs_shown[s].deps & DEP(f)) && log->version[f] > v)
		{
			v = log->version[f];
			*time = log->time[f];
		}
	}
	return v;
}

/*
 * rs_shown_value
 *		The value of a shown path for state "st" whose meaning at this
 *		moment is "eff" (usage.c).  Persona text is not computed here: its
 *		stored value is ciphertext, which the caller opens or withholds.
 */
void
rs_shown_value(const RsUserState *st, const RsEffective *eff, RsShownId s,
			   Datum *value, bool *isnull)
{
	int			f = rs_shown[s].field;

	*isnull = false;
	switch (s)
	{
		case S_SUB_PLAN:
			*value = CStringGetTextDatum(eff->plan);
			return;
		case S_SUB_STATUS:
			*value = CStringGetTextDatum(eff->status);
			return;
		case S_SUB_TRIAL_DAYS:
			*value = Int32GetDatum(eff->trial_days);
			*isnull = eff->trial_days_null;
			return;
		case S_USAGE_USED:
			*value = Int32GetDatum(eff->used);
			return;
		case S_USAGE_LIMIT:
			*value = Int32GetDatum(eff->limit);
			*isnull = eff->limit_null;
			return;
		case S_USAGE_REMAINING:
			*value = Int32GetDatum(Max(eff->limit - eff->used, 0));
			*isnull = eff->limit_null;
			return;
		case S_USAGE_PERIOD_START:
			*value = TimestampTzGetDatum(eff->period_start);
			return;
		case S_USAGE_RESET_DATE:
			*value = TimestampTzGetDatum(eff->period_end);
			return;
		case S_SUB_CANCEL_AT_PERIOD_END:
			/* false where the installed schema has no column yet (0.5.0) */
			*value = st->nulls[f] ? BoolGetDatum(false) : st->vals[f];
			return;
		case S_ORG_ID:
			*value = st->vals[F_ORG_ID];
			*isnull = st->org_null;
			return;
		case S_ORG_NAME:
		case S_ORG_SLUG:
		case S_ORG_ROLE:
			*isnull = st->org_null;
			if (!st->org_null)
				*value = CStringGetTextDatum(s == S_ORG_NAME ? st->org_name :
											 s == S_ORG_SLUG ? st->org_slug :
											 st->org_role);
			return;
		default:
			break;
	}
	Assert(f >= 0 && rs_fields[f].type != FT_SECRET);
	*value = st->vals[f];
	*isnull = st->nulls[f];
}

/*
 * rs_shown_to_json
 *		Append a shown value as JSON text (notification payloads are built
 *		without jsonb round trips).
 */
void
rs_shown_to_json(StringInfo buf, RsShownId s, Datum value, bool isnull)
{
	const RsShown *r = &rs_shown[s];

	if (r->type == SV_FIELD)
	{
		rs_value_to_json(buf, &rs_fields[r->field], value, isnull);
		return;
	}
	if (isnull)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	switch (r->type)
	{
		case SV_INT4:
			appendStringInfo(buf, "%d", DatumGetInt32(value));
			break;
		case SV_TSTZ:
			{
				char		tbuf[MAXDATELEN + 1];

				JsonEncodeDateTime(tbuf, value, TIMESTAMPTZOID, NULL);
				appendStringInfo(buf, "\"%s\"", tbuf);
				break;
			}
		case SV_TEXT:
			escape_json(buf, TextDatumGetCString(value));
			break;
		case SV_FIELD:
			break;
	}
}

/*
 * rs_shown_to_jsonb
 *		Push a shown value as a jsonb scalar (persona text arrives opened).
 */
void
rs_shown_to_jsonb(JsonbParseState **js, RsShownId s, Datum value,
				  bool isnull)
{
	const RsShown *r = &rs_shown[s];

	if (r->type == SV_FIELD)
	{
		rs_value_to_jsonb(js, &rs_fields[r->field], value, isnull);
		return;
	}
	if (isnull)
	{
		rs_jb_null(js);
		return;
	}
	switch (r->type)
	{
		case SV_INT4:
			rs_jb_int64(js, DatumGetInt32(value));
			break;
		case SV_TSTZ:
			rs_jb_timestamptz(js, DatumGetTimestampTz(value));
			break;
		case SV_TEXT:
			rs_jb_string(js, TextDatumGetCString(value));
			break;
		case SV_FIELD:
			break;
	}
}

/*
 * rs_shown_payload_values
 *		The JSON text of every shown path in "named" that a payload may
 *		carry, computed from "st" at the transaction's start time, as a
 *		sync in this transaction would show it; NULL for the others.
 *		"st" needs the plan limits only when "named" has a path of
 *		RS_SHOWN_NEEDS_LIMITS.
 */
void
rs_shown_payload_values(const RsUserState *st, uint32 named, char **values)
{
	RsEffective eff;

	/* the write path: compute what time and the plan mean only if needed */
	if (named & RS_SHOWN_EFFECTIVE)
		rs_effective(st, GetCurrentTransactionStartTimestamp(), &eff);
	else
		memset(&eff, 0, sizeof(eff));
	for (int s = 0; s < RS_NSHOWN; s++)
	{
		Datum		value;
		bool		isnull;
		StringInfoData buf;

		values[s] = NULL;
		if (!(named & RS_SHOWN_BIT(s)) || rs_shown_withheld(s))
			continue;
		rs_shown_value(st, &eff, s, &value, &isnull);
		initStringInfo(&buf);
		rs_shown_to_json(&buf, s, value, isnull);
		values[s] = buf.data;
	}
}

/*
 * build_items
 *		Every shown path with its value at this moment and its
 *		version: the newest among its inputs.  Persona text is opened here
 *		(below pro, persona.tolerance reads as null; the text is kept).
 */
static void
build_items(const RsUserState *st, RsOutItem *items)
{
	RsEffective eff;
	RsDataKey  *dek = NULL;
	bool		tolerance_allowed;

	rs_effective(st, GetCurrentTransactionStartTimestamp(), &eff);
	tolerance_allowed = rs_plan_has_tolerance(eff.plan);
	if (st->has_dek && (!st->nulls[F_PERSONA_IDENTITY] ||
						!st->nulls[F_PERSONA_INTOLERANCE] ||
						!st->nulls[F_PERSONA_TOLERANCE]))
		dek = rs_user_dek(&st->user_id, st, false);

	for (int s = 0; s < RS_NSHOWN; s++)
	{
		RsOutItem  *it = &items[s];
		int			f = rs_shown[s].field;

		it->id = s;
		it->version = rs_shown_version(s, &st->log, &it->time);
		if (f >= 0 && rs_fields[f].type == FT_SECRET)
		{
			text	   *t = (f == F_PERSONA_TOLERANCE && !tolerance_allowed) ?
			NULL : rs_persona_plaintext(&st->user_id, st, dek, f);

			it->value = PointerGetDatum(t);
			it->isnull = (t == NULL);
		}
		else
			rs_shown_value(st, &eff, s, &it->value, &it->isnull);
	}
	if (dek != NULL)
		rs_datakey_clear(dek);
}


/*
 * push_section
 *		Push one section of state_full as an object: its shown paths in
 *		table order ("auth" also carries the user id).
 */
static void
push_section(JsonbParseState **js, const RsUserState *st,
			 const RsOutItem *items, const char *section)
{
	pushJsonbValue(js, WJB_BEGIN_OBJECT, NULL);
	if (strcmp(section, "auth") == 0)
	{
		rs_jb_key(js, "userId");
		rs_jb_string(js, rs_uuid_to_cstring(&st->user_id));
	}
	for (int s = 0; s < RS_NSHOWN; s++)
	{
		if (strcmp(rs_shown_section(s), section) != 0)
			continue;
		rs_jb_key(js, rs_shown_key(s));
		rs_shown_to_jsonb(js, s, items[s].value, items[s].isnull);
	}
	pushJsonbValue(js, WJB_END_OBJECT, NULL);
}

/*
 * rs_render_full
 *		The state_full document: every section in rs_sections order (the
 *		organization is null when there is none), then _meta with the
 *		version, the history token it belongs to (history.c) and the time.
 */
Jsonb *
rs_render_full(const RsUserState *st, const char *history)
{
	JsonbParseState *js = NULL;
	RsOutItem	items[RS_NSHOWN];
	JsonbValue *res;

	build_items(st, items);
	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	for (int sec = 0; sec < RS_NSECTIONS; sec++)
	{
		rs_jb_key(&js, rs_sections[sec]);
		if (strcmp(rs_sections[sec], "organization") == 0 && st->org_null)
			rs_jb_null(&js);
		else
			push_section(&js, st, items, rs_sections[sec]);
	}

	rs_jb_key(&js, "_meta");
	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	rs_jb_key(&js, "version");
	rs_jb_int64(&js, st->version);
	rs_jb_key(&js, "history");
	rs_jb_string(&js, history);
	rs_jb_key(&js, "lastSyncedAt");
	rs_jb_timestamptz(&js, GetCurrentTransactionStartTimestamp());
	pushJsonbValue(&js, WJB_END_OBJECT, NULL);

	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/* qsort comparator of sync items: by version, then by path. */
static int
item_version_cmp(const void *a, const void *b)
{
	const RsOutItem *ia = (const RsOutItem *) a;
	const RsOutItem *ib = (const RsOutItem *) b;

	if (ia->version != ib->version)
		return ia->version < ib->version ? -1 : 1;
	return strcmp(rs_shown_path(ia->id), rs_shown_path(ib->id));
}

/*
 * rs_render_sync
 *		{changes, cursor, history, reset, lastSyncedAt}: every shown path
 *		whose version is after the cursor (by_time: whose change time is
 *		after the time; all: every path), at most once, with its current
 *		value, ordered by version.  "reset" says the client must replace
 *		what it holds (its cursor belonged to another history).
 */
Jsonb *
rs_render_sync(const RsUserState *st, bool all, bool by_time, int64 since,
			   TimestampTz since_at, const char *history, bool reset)
{
	JsonbParseState *js = NULL;
	RsOutItem	items[RS_NSHOWN];
	int			m = 0;
	JsonbValue *res;

	build_items(st, items);
	for (int i = 0; i < RS_NSHOWN; i++)
	{
		bool		keep;

		if (all)
			keep = true;
		else if (by_time)
			keep = items[i].time > since_at;
		else
			keep = items[i].version > since;
		if (keep)
			items[m++] = items[i];
	}
	qsort(items, m, sizeof(RsOutItem), item_version_cmp);

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	rs_jb_key(&js, "changes");
	pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < m; i++)
	{
		pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
		rs_jb_key(&js, "field");
		rs_jb_string(&js, rs_shown_path(items[i].id));
		rs_jb_key(&js, "value");
		rs_shown_to_jsonb(&js, items[i].id, items[i].value, items[i].isnull);
		rs_jb_key(&js, "version");
		rs_jb_int64(&js, items[i].version);
		rs_jb_key(&js, "updated_at");
		if (items[i].time == 0)
			rs_jb_null(&js);
		else
			rs_jb_timestamptz(&js, items[i].time);
		pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&js, WJB_END_ARRAY, NULL);
	rs_jb_key(&js, "cursor");
	rs_jb_int64(&js, st->version);
	rs_jb_key(&js, "history");
	rs_jb_string(&js, history);
	rs_jb_key(&js, "reset");
	rs_jb_bool(&js, reset);
	rs_jb_key(&js, "lastSyncedAt");
	rs_jb_timestamptz(&js, GetCurrentTransactionStartTimestamp());
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}
