/*-------------------------------------------------------------------------
 *
 * fields_core.c
 *	  The field registry and the checks of patch keys and values (see
 *	  rs_fields_core.h).
 *
 * Every input is hostile: nothing here reads past the given length,
 * allocates, or trusts a terminating NUL in data.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/core/fields_core.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "rs_fields_core.h"

#define RS_INT32_MAX	2147483647

static const char *const plan_values[] = {"free", "starter", "pro", "plus", NULL};
static const char *const status_values[] = {"active", "trial", "past_due", "canceled", NULL};
static const char *const shield_values[] = {"tolerante", "balanceado", "estricto", NULL};

/*
 * The registry.  Order must match RsFieldId.
 */
const RsField rs_fields[RS_NFIELDS] = {
	{F_AUTH_EMAIL, "auth.email", "auth", "email", "email",
	FT_TEXT, W_SERVICE, K_AUTH, false, 3, 320, NULL, false, true},
	{F_AUTH_NAME, "auth.name", "auth", "name", "name",
	FT_TEXT, W_USER, K_AUTH, true, 0, 200, NULL, false, true},
	{F_SUB_PLAN, "subscription.plan", "subscription", "plan", "plan",
	FT_TEXT, W_SERVICE, K_SUBSCRIPTION, false, 0, 0, plan_values, false, false},
	{F_SUB_STATUS, "subscription.status", "subscription", "status",
		"subscription_status",
	FT_TEXT, W_SERVICE, K_SUBSCRIPTION, false, 0, 0, status_values, false, false},
	{F_SUB_TRIAL_ENDS_AT, "subscription.trial_ends_at", "subscription",
		"trial_ends_at", "trial_ends_at",
	FT_TSTZ, W_SERVICE, K_SUBSCRIPTION, true, 0, 0, NULL, false, false},
	{F_SUB_PERIOD_START, "subscription.current_period_start", "subscription",
		"current_period_start", "current_period_start",
	FT_TSTZ, W_SERVICE, K_SUBSCRIPTION, true, 0, 0, NULL, false, false},
	{F_SUB_PERIOD_END, "subscription.current_period_end", "subscription",
		"current_period_end", "current_period_end",
	FT_TSTZ, W_SERVICE, K_SUBSCRIPTION, true, 0, 0, NULL, false, false},
	{F_SUB_POLAR_SUBSCRIPTION_ID, "subscription.polar_subscription_id",
		"subscription", "polar_subscription_id", "polar_subscription_id",
	FT_TEXT, W_SERVICE, K_SUBSCRIPTION, true, 1, 200, NULL, false, true},
	{F_SUB_POLAR_CUSTOMER_ID, "subscription.polar_customer_id",
		"subscription", "polar_customer_id", "polar_customer_id",
	FT_TEXT, W_SERVICE, K_SUBSCRIPTION, true, 1, 200, NULL, false, true},
	{F_PERSONA_IDENTITY, "persona.identity", "persona", "identity", NULL,
	FT_SECRET, W_USER, K_PERSONA, true, 0, 0, NULL, false, false},
	{F_PERSONA_INTOLERANCE, "persona.intolerance", "persona", "intolerance",
		NULL,
	FT_SECRET, W_USER, K_PERSONA, true, 0, 0, NULL, false, false},
	{F_PERSONA_TOLERANCE, "persona.tolerance", "persona", "tolerance", NULL,
	FT_SECRET, W_USER, K_PERSONA, true, 0, 0, NULL, false, false},
	{F_PERSONA_EMBEDDINGS_AT, "persona.embeddings_generated_at", "persona",
		"embeddings_generated_at", "embeddings_generated_at",
	FT_TSTZ, W_SERVICE, K_PERSONA, true, 0, 0, NULL, false, false},
	{F_PERSONA_EMBEDDINGS_MODEL, "persona.embeddings_model", "persona",
		"embeddings_model", "embeddings_model",
	FT_TEXT, W_SERVICE, K_PERSONA, true, 1, 200, NULL, false, false},
	{F_ROASTING_ENABLED, "roasting.enabled", "roasting", "enabled",
		"roasting_enabled",
	FT_BOOL, W_USER, K_ROASTING_TOGGLE, false, 0, 0, NULL, false, false},
	{F_ROASTING_LEVEL, "roasting.roast_level", "roasting", "roast_level",
		"roast_level",
	FT_INT2, W_USER, K_ROASTING, false, 1, 5, NULL, false, false},
	{F_ROASTING_SHIELD, "roasting.shield_level", "roasting", "shield_level",
		"shield_level",
	FT_TEXT, W_USER, K_ROASTING, false, 0, 0, shield_values, false, false},
	{F_USAGE_USED, "usage.monthly_roasts_used", "usage",
		"monthly_roasts_used", "monthly_roasts_used",
	FT_INT4, W_SYSTEM, K_USAGE, false, 0, RS_INT32_MAX, NULL, false, false},
	{F_USAGE_PERIOD_START, "usage.period_start", "usage", "period_start",
		"usage_period_start",
	FT_TSTZ, W_SYSTEM, K_USAGE, true, 0, 0, NULL, false, false},
	{F_ORG_ID, "organization.id", "organization", "id", "organization_id",
	FT_UUID, W_SYSTEM, K_ORGANIZATION, true, 0, 0, NULL, false, false},
	{F_USAGE_PERIOD_END, "usage.period_end", "usage", "period_end",
		"usage_period_end",
	FT_TSTZ, W_SYSTEM, K_USAGE, true, 0, 0, NULL, true, false},
	{F_LIMITS_CHANGED_AT, "usage.limits_changed_at", "usage",
		"limits_changed_at", "limits_changed_at",
	FT_TSTZ, W_SYSTEM, K_USAGE, true, 0, 0, NULL, true, false},
	{F_ORG_CHANGED_AT, "organization.changed_at", "organization",
		"changed_at", "organization_changed_at",
	FT_TSTZ, W_SYSTEM, K_ORGANIZATION, true, 0, 0, NULL, true, false},
	{F_SUB_CANCEL_AT_PERIOD_END, "subscription.cancel_at_period_end",
		"subscription", "cancel_at_period_end", "cancel_at_period_end",
	FT_BOOL, W_SERVICE, K_SUBSCRIPTION, false, 0, 0, NULL, false, false},
	{F_LIMITS_SEEN, "usage.limits_seen", "usage", "limits_seen",
		"limits_seen",
	FT_INT8, W_SYSTEM, K_USAGE, false, 0, 0, NULL, true, false},
	{F_ORG_SEEN, "organization.seen", "organization", "seen",
		"organization_seen",
	FT_INT8, W_SYSTEM, K_ORGANIZATION, false, 0, 0, NULL, true, false},
};

const char *const rs_kind_names[RS_NKINDS] = {
	"auth_update",
	"subscription_update",
	"persona_update",
	"roasting_toggle",
	"roasting_update",
	"usage_update",
	"organization_update",
};


const char *const rs_derived_paths[] = {
	"subscription.trial_days_remaining", "usage.monthly_roasts_limit",
	"usage.remaining_roasts", "usage.reset_date", "auth.userId",
	"organization.name", "organization.slug", "organization.role", NULL
};

/*
 * rs_field_by_path
 *		The field a dotted path names; NULL when none.  Linear: there are
 *		two dozen fields.
 */
const RsField *
rs_field_by_path(const char *path, size_t len)
{
	if (path == NULL)
		return NULL;
	for (int i = 0; i < RS_NFIELDS; i++)
	{
		const char *p = rs_fields[i].path;

		if (strlen(p) == len && memcmp(p, path, len) == 0)
			return &rs_fields[i];
	}
	return NULL;
}

/*
 * rs_check_patch_key
 *		May this caller set the field a patch key names?  *field is the
 *		field when the path names one (even when the answer is no), else
 *		NULL.
 */
RsKeyCheck
rs_check_patch_key(const char *path, size_t len, bool is_service,
				   const RsField **field)
{
	const RsField *f = rs_field_by_path(path, len);

	*field = f;
	if (f == NULL)
	{
		if (path != NULL)
		{
			for (int i = 0; rs_derived_paths[i]; i++)
			{
				if (strlen(rs_derived_paths[i]) == len &&
					memcmp(rs_derived_paths[i], path, len) == 0)
					return RS_KEY_DERIVED;
			}
		}
		return RS_KEY_UNKNOWN;
	}
	if (f->writer == W_SYSTEM)
		return RS_KEY_SYSTEM;
	if (f->writer == W_SERVICE && !is_service)
		return RS_KEY_SERVICE_ONLY;
	return RS_KEY_OK;
}

RsValueCheck
rs_check_null(const RsField *f)
{
	return f->nullable ? RS_VAL_OK : RS_VAL_NULL;
}

/*
 * rs_utf8_chars
 *		The number of characters of a UTF-8 string, or -1 when it is not
 *		well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
 *		nothing above U+10FFFF, no truncated sequence).  NUL counts as a
 *		character; callers reject it as a control character.
 */
long
rs_utf8_chars(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;
	long		n = 0;

	while (i < len)
	{
		unsigned char c = p[i];
		unsigned char lo = 0x80,
					hi = 0xBF;
		size_t		need;

		if (c < 0x80)
			need = 0;
		else if (c >= 0xC2 && c <= 0xDF)
			need = 1;
		else if (c >= 0xE0 && c <= 0xEF)
		{
			need = 2;
			if (c == 0xE0)
				lo = 0xA0;		/* overlong below U+0800 */
			else if (c == 0xED)
				hi = 0x9F;		/* surrogates U+D800..U+DFFF */
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			need = 3;
			if (c == 0xF0)
				lo = 0x90;		/* overlong below U+10000 */
			else if (c == 0xF4)
				hi = 0x8F;		/* above U+10FFFF */
		}
		else
			return -1;			/* continuation byte, C0, C1, F5..FF */

		if (need > len - i - 1)
			return -1;			/* truncated */
		for (size_t k = 1; k <= need; k++)
		{
			unsigned char cc = p[i + k];

			if (k == 1 ? (cc < lo || cc > hi) : (cc < 0x80 || cc > 0xBF))
				return -1;
		}
		i += need + 1;
		n++;
	}
	return n;
}

/*
 * rs_check_text
 *		Check a text value for a FT_TEXT field.  nchars is its length in
 *		characters when the caller knows it (a server encoding other than
 *		UTF-8); pass -1 to have the text validated as UTF-8 and counted.
 */
RsValueCheck
rs_check_text(const RsField *f, const char *s, size_t len, long nchars)
{
	if (f->type != FT_TEXT || (s == NULL && len > 0))
		return RS_VAL_TYPE;

	if (f->allowed)
	{
		for (int i = 0; f->allowed[i]; i++)
		{
			if (strlen(f->allowed[i]) == len &&
				memcmp(f->allowed[i], s, len) == 0)
				return RS_VAL_OK;
		}
		return RS_VAL_NOT_ALLOWED;
	}

	{
		RsValueCheck r = rs_check_label(s, len, nchars, f->minval, f->maxval);

		if (r != RS_VAL_OK)
			return r;
	}
	if (f->id == F_AUTH_EMAIL && memchr(s, '@', len) == NULL)
		return RS_VAL_NOT_EMAIL;
	return RS_VAL_OK;
}

/*
 * rs_check_label
 *		The rule for every short free text (names, ids, e-mail addresses,
 *		keys): minchars to maxchars characters, no control characters.
 *		nchars as for rs_check_text.
 */
RsValueCheck
rs_check_label(const char *s, size_t len, long nchars, long minchars,
			   long maxchars)
{
	if (s == NULL && len > 0)
		return RS_VAL_TYPE;
	if (nchars < 0)
	{
		nchars = rs_utf8_chars(s, len);
		if (nchars < 0)
			return RS_VAL_ENCODING;
	}
	if (nchars < minchars || nchars > maxchars)
		return RS_VAL_LENGTH;
	for (size_t i = 0; i < len; i++)
	{
		if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
			return RS_VAL_CONTROL;
	}
	return RS_VAL_OK;
}

/*
 * rs_check_int
 *		Check an integer for a FT_INT2 or FT_INT4 field.
 */
RsValueCheck
rs_check_int(const RsField *f, int64_t v)
{
	if (f->type != FT_INT2 && f->type != FT_INT4)
		return RS_VAL_TYPE;
	if (v < f->minval || v > f->maxval)
		return RS_VAL_RANGE;
	return RS_VAL_OK;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * rs_parse_uuid_text
 *		Parse a UUID in its canonical 8-4-4-4-12 form (either case); false
 *		when the text is anything else.  out is written only on success.
 */
bool
rs_parse_uuid_text(const char *s, size_t len, uint8_t out[RS_UUID_BYTES])
{
	uint8_t		buf[RS_UUID_BYTES];
	int			j = 0;

	if (s == NULL || len != RS_UUID_CHARS)
		return false;
	for (size_t i = 0; i < RS_UUID_CHARS; i++)
	{
		int			hi,
					lo;

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (s[i] != '-')
				return false;
			continue;
		}
		hi = hexval(s[i]);
		lo = hexval(s[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		buf[j++] = (uint8_t) (hi << 4 | lo);
		i++;
	}
	memcpy(out, buf, RS_UUID_BYTES);
	return true;
}

const char *
rs_value_check_text(RsValueCheck c)
{
	switch (c)
	{
		case RS_VAL_OK:
			return "valid";
		case RS_VAL_NULL:
			return "null is not allowed";
		case RS_VAL_ENCODING:
			return "not valid UTF-8";
		case RS_VAL_LENGTH:
			return "too short or too long";
		case RS_VAL_CONTROL:
			return "contains a control character";
		case RS_VAL_NOT_ALLOWED:
			return "not one of the allowed values";
		case RS_VAL_NOT_EMAIL:
			return "not an e-mail address";
		case RS_VAL_RANGE:
			return "out of range";
		case RS_VAL_TYPE:
			return "the wrong type for the field";
	}
	return "unknown";
}
