/*-------------------------------------------------------------------------
 *
 * test_fields.c
 *	  Unit tests of the field registry and of the checks of patch keys and
 *	  values (src/core/fields_core.c), without a server.
 *
 * Built and run by test/extra/unit_fields.sh, natively and under valgrind.
 * Prints one line per test and ends with "N passed, N failed"; the exit
 * status is 1 if anything failed.
 *
 * The UTF-8 validator is checked against the RFC 3629 table by hand-picked
 * sequences at every boundary, and against an independent decoder
 * (ref_utf8.h) over every 1- and 2-byte string,
 * every 3-byte string and a lattice of 4-byte ones.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/unit/test_fields.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_fields_core.h"

#include "ref_utf8.h"
#include "unit_check.h"


static const RsField *
field(const char *path)
{
	const RsField *f = rs_field_by_path(path, strlen(path));

	if (f == NULL)
	{
		printf("FAILED no field %s\n", path);
		exit(1);
	}
	return f;
}

/* ---------------------------------------------------------------- registry */

static void
test_registry(void)
{
	int			ok = 1;
	char		detail[200] = "";

	for (int i = 0; i < RS_NFIELDS; i++)
	{
		const RsField *f = &rs_fields[i];
		char		joined[128];

		snprintf(joined, sizeof(joined), "%s.%s", f->section, f->key);
		if ((int) f->id != i)
			snprintf(detail, sizeof(detail), "%s: id %d at index %d", f->path, (int) f->id, i), ok = 0;
		else if (strcmp(joined, f->path) != 0)
			snprintf(detail, sizeof(detail), "%s is not section.key", f->path), ok = 0;
		else if (rs_field_by_path(f->path, strlen(f->path)) != f)
			snprintf(detail, sizeof(detail), "%s not found by its path", f->path), ok = 0;
		else if (f->hidden && f->writer != W_SYSTEM)
			snprintf(detail, sizeof(detail), "%s is hidden but writable", f->path), ok = 0;
		else if (f->type == FT_TEXT && !f->allowed && f->minval > f->maxval)
			snprintf(detail, sizeof(detail), "%s: min length above max", f->path), ok = 0;
		else if (f->type == FT_TEXT && f->allowed && f->allowed[0] == NULL)
			snprintf(detail, sizeof(detail), "%s: empty enumeration", f->path), ok = 0;
		else if (f->type == FT_SECRET && f->column != NULL)
			snprintf(detail, sizeof(detail), "%s: persona text has a column", f->path), ok = 0;
		for (int j = 0; j < i; j++)
			if (strcmp(rs_fields[j].path, f->path) == 0)
				snprintf(detail, sizeof(detail), "%s twice", f->path), ok = 0;
		for (int j = 0; rs_derived_paths[j]; j++)
			if (strcmp(rs_derived_paths[j], f->path) == 0)
				snprintf(detail, sizeof(detail), "%s is also derived", f->path), ok = 0;
	}
	check(ok, "registry: ids, paths, flags consistent", ok ? NULL : detail);
	check(RS_NFIELDS <= 32, "registry: a patch mask (uint32) holds every field", NULL);
	check(RS_NFIELDS_0_1 == 20 && RS_NFIELDS >= RS_NFIELDS_0_1,
		  "registry: 0.1.0's twenty fields come first", NULL);
}

/* ------------------------------------------------------------- patch keys */

typedef struct KeyCase
{
	const char *name;
	const char *path;
	size_t		len;			/* 0: strlen(path) */
	bool		service;
	RsKeyCheck	want;
	bool		names_field;
} KeyCase;

static const KeyCase key_cases[] = {
	{"user field by user", "roasting.enabled", 0, false, RS_KEY_OK, true},
	{"user field by service", "roasting.roast_level", 0, true, RS_KEY_OK, true},
	{"persona by user", "persona.identity", 0, false, RS_KEY_OK, true},
	{"service field by user", "subscription.plan", 0, false, RS_KEY_SERVICE_ONLY, true},
	{"service field by service", "subscription.plan", 0, true, RS_KEY_OK, true},
	{"e-mail by user", "auth.email", 0, false, RS_KEY_SERVICE_ONLY, true},
	{"quota counter", "usage.monthly_roasts_used", 0, true, RS_KEY_SYSTEM, true},
	{"organization id", "organization.id", 0, true, RS_KEY_SYSTEM, true},
	{"hidden field", "usage.period_end", 0, true, RS_KEY_SYSTEM, true},
	{"derived path", "usage.remaining_roasts", 0, true, RS_KEY_DERIVED, false},
	{"derived user id", "auth.userId", 0, false, RS_KEY_DERIVED, false},
	{"unknown", "roasting.speed", 0, false, RS_KEY_UNKNOWN, false},
	{"section only", "roasting", 0, false, RS_KEY_UNKNOWN, false},
	{"empty", "", 0, false, RS_KEY_UNKNOWN, false},
	{"prefix of a path", "roasting.enable", 0, false, RS_KEY_UNKNOWN, false},
	{"path plus a character", "roasting.enabledx", 0, false, RS_KEY_UNKNOWN, false},
	{"capitals", "Roasting.Enabled", 0, false, RS_KEY_UNKNOWN, false},
	{"trailing space", "roasting.enabled ", 0, false, RS_KEY_UNKNOWN, false},
	{"embedded NUL", "roasting.enabled\0x", 18, false, RS_KEY_UNKNOWN, false},
	{"length shorter than the text", "roasting.enabledXYZ", 16, false, RS_KEY_OK, true},
	{"derived with NUL", "auth.userId\0", 12, false, RS_KEY_UNKNOWN, false},
};

static void
test_keys(void)
{
	char		name[160];
	char		detail[160];
	const RsField *f = (const RsField *) &key_cases;	/* must be reset */

	for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++)
	{
		const KeyCase *c = &key_cases[i];
		size_t		len = c->len ? c->len : strlen(c->path);
		RsKeyCheck	got = rs_check_patch_key(c->path, len, c->service, &f);

		snprintf(name, sizeof(name), "key: %s", c->name);
		snprintf(detail, sizeof(detail), "got %d, field %s", (int) got,
				 f ? f->path : "none");
		check(got == c->want && (f != NULL) == c->names_field &&
			  (f == NULL || (strlen(f->path) == len &&
							 memcmp(f->path, c->path, len) == 0)),
			  name, detail);
	}
	check(rs_field_by_path(NULL, 0) == NULL, "key: NULL path names nothing", NULL);
	check(rs_check_patch_key(NULL, 0, true, &f) == RS_KEY_UNKNOWN && f == NULL,
		  "key: NULL path is unknown", NULL);
}

/* ------------------------------------------------------------------ UTF-8 */

typedef struct Utf8Case
{
	const char *name;
	const char *bytes;
	size_t		len;
	long		want;
} Utf8Case;

#define U(name, lit, want) {name, lit, sizeof(lit) - 1, want}

static const Utf8Case utf8_cases[] = {
	U("empty", "", 0),
	U("ASCII", "abc", 3),
	U("NUL counts", "a\0b", 3),
	U("U+007F", "\x7f", 1),
	U("U+0080", "\xc2\x80", 1),
	U("U+07FF", "\xdf\xbf", 1),
	U("U+0800", "\xe0\xa0\x80", 1),
	U("U+D7FF", "\xed\x9f\xbf", 1),
	U("U+E000", "\xee\x80\x80", 1),
	U("U+FFFF", "\xef\xbf\xbf", 1),
	U("U+10000", "\xf0\x90\x80\x80", 1),
	U("U+10FFFF", "\xf4\x8f\xbf\xbf", 1),
	U("mixed", "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 4),
	U("overlong NUL C0 80", "\xc0\x80", -1),
	U("overlong C1 BF", "\xc1\xbf", -1),
	U("overlong E0 9F BF", "\xe0\x9f\xbf", -1),
	U("overlong F0 8F BF BF", "\xf0\x8f\xbf\xbf", -1),
	U("surrogate D800", "\xed\xa0\x80", -1),
	U("surrogate DFFF", "\xed\xbf\xbf", -1),
	U("above U+10FFFF", "\xf4\x90\x80\x80", -1),
	U("F5 lead", "\xf5\x80\x80\x80", -1),
	U("FF", "\xff", -1),
	U("lone continuation", "\x80", -1),
	U("truncated 2-byte at end", "a\xc3", -1),
	U("truncated 3-byte", "\xe2\x82", -1),
	U("truncated 4-byte", "\xf0\x9f\x98", -1),
	U("bad second continuation", "\xe2\x82\x41", -1),
	U("continuation replaced by lead", "\xc3\xc3\xa9", -1),
	U("5-byte form", "\xf8\x88\x80\x80\x80", -1),
};

static void
test_utf8(void)
{
	char		name[160];
	char		detail[80];
	long		mismatches = 0,
				tried = 0;
	unsigned char b[4];
	static const unsigned char lattice[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
	0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xF0, 0xFF};

	for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++)
	{
		const Utf8Case *c = &utf8_cases[i];
		long		got = rs_utf8_chars(c->bytes, c->len);

		snprintf(name, sizeof(name), "utf8: %s", c->name);
		snprintf(detail, sizeof(detail), "got %ld, want %ld", got, c->want);
		check(got == c->want && ref_utf8_chars((const unsigned char *) c->bytes, c->len) == c->want,
			  name, detail);
	}

	/* every string of 1, 2 and 3 bytes */
	for (uint32_t v = 0; v < (1U << 24); v++)
	{
		b[0] = v >> 16;
		b[1] = (v >> 8) & 0xFF;
		b[2] = v & 0xFF;
		if (v < 256 && rs_utf8_chars((char *) b + 2, 1) != ref_utf8_chars(b + 2, 1))
			mismatches++;
		if (v < 65536 && rs_utf8_chars((char *) b + 1, 2) != ref_utf8_chars(b + 1, 2))
			mismatches++;
		if (rs_utf8_chars((char *) b, 3) != ref_utf8_chars(b, 3))
			mismatches++;
		tried++;
	}
	/* 4 bytes: every lead and second byte, a lattice for the other two */
	for (int l = 0; l < 256; l++)
		for (int s = 0; s < 256; s++)
			for (size_t t = 0; t < sizeof(lattice); t++)
				for (size_t u = 0; u < sizeof(lattice); u++)
				{
					b[0] = l;
					b[1] = s;
					b[2] = lattice[t];
					b[3] = lattice[u];
					if (rs_utf8_chars((char *) b, 4) != ref_utf8_chars(b, 4))
						mismatches++;
					tried++;
				}
	snprintf(detail, sizeof(detail), "%ld of %ld strings differ", mismatches, tried);
	check(mismatches == 0, "utf8: agrees with the reference decoder (all 1-3 byte strings, 4-byte lattice)", detail);
}

/* ----------------------------------------------------------------- values */

static char *
repeat(const char *unit, int n)
{
	size_t		ul = strlen(unit);
	char	   *s = malloc(ul * n + 1);

	for (int i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * n] = '\0';
	return s;
}

typedef struct TextCase
{
	const char *name;
	const char *path;
	const char *unit;			/* repeated n times */
	int			n;
	long		nchars;			/* -1: let the core count */
	RsValueCheck want;
} TextCase;

static const TextCase text_cases[] = {
	{"name: empty", "auth.name", "", 1, -1, RS_VAL_OK},
	{"name: 200 characters", "auth.name", "n", 200, -1, RS_VAL_OK},
	{"name: 201 characters", "auth.name", "n", 201, -1, RS_VAL_LENGTH},
	{"name: 200 two-byte characters", "auth.name", "\xc3\xa9", 200, -1, RS_VAL_OK},
	{"name: 201 two-byte characters", "auth.name", "\xc3\xa9", 201, -1, RS_VAL_LENGTH},
	{"name: 200 four-byte characters", "auth.name", "\xf0\x9f\x98\x80", 200, -1, RS_VAL_OK},
	{"name: 1 MB", "auth.name", "n", 1024 * 1024, -1, RS_VAL_LENGTH},
	{"name: invalid UTF-8", "auth.name", "a\xff", 1, -1, RS_VAL_ENCODING},
	{"name: surrogate", "auth.name", "\xed\xa0\x80", 1, -1, RS_VAL_ENCODING},
	{"name: BEL", "auth.name", "a\x07" "b", 1, -1, RS_VAL_CONTROL},
	{"name: DEL", "auth.name", "a\x7f", 1, -1, RS_VAL_CONTROL},
	{"name: newline", "auth.name", "a\nb", 1, -1, RS_VAL_CONTROL},
	{"name: server-counted 150 of 300 bytes", "auth.name", "ab", 150, 150, RS_VAL_OK},
	{"name: server-counted 201", "auth.name", "n", 201, 201, RS_VAL_LENGTH},
	{"email: 2 characters", "auth.email", "@", 2, -1, RS_VAL_LENGTH},
	{"email: 3 characters", "auth.email", "a@b", 1, -1, RS_VAL_OK},
	{"email: no @", "auth.email", "abc", 1, -1, RS_VAL_NOT_EMAIL},
	{"email: 320 characters", "auth.email", "@", 320, -1, RS_VAL_OK},
	{"email: 321 characters", "auth.email", "@", 321, -1, RS_VAL_LENGTH},
	{"polar id: empty", "subscription.polar_customer_id", "", 1, -1, RS_VAL_LENGTH},
	{"polar id: 1 character", "subscription.polar_customer_id", "c", 1, -1, RS_VAL_OK},
	{"plan: pro", "subscription.plan", "pro", 1, -1, RS_VAL_OK},
	{"plan: free", "subscription.plan", "free", 1, -1, RS_VAL_OK},
	{"plan: Pro", "subscription.plan", "Pro", 1, -1, RS_VAL_NOT_ALLOWED},
	{"plan: pr", "subscription.plan", "pr", 1, -1, RS_VAL_NOT_ALLOWED},
	{"plan: pros", "subscription.plan", "pros", 1, -1, RS_VAL_NOT_ALLOWED},
	{"plan: empty", "subscription.plan", "", 1, -1, RS_VAL_NOT_ALLOWED},
	{"plan: invalid UTF-8", "subscription.plan", "\xff", 1, -1, RS_VAL_NOT_ALLOWED},
	{"status: past_due", "subscription.status", "past_due", 1, -1, RS_VAL_OK},
	{"shield: estricto", "roasting.shield_level", "estricto", 1, -1, RS_VAL_OK},
	{"shield: maximo", "roasting.shield_level", "maximo", 1, -1, RS_VAL_NOT_ALLOWED},
	{"text check on an integer field", "roasting.roast_level", "3", 1, -1, RS_VAL_TYPE},
	{"text check on persona", "persona.identity", "x", 1, -1, RS_VAL_TYPE},
};

static void
test_text(void)
{
	char		name[160];
	char		detail[160];

	for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++)
	{
		const TextCase *c = &text_cases[i];
		char	   *s = repeat(c->unit, c->n);
		RsValueCheck got = rs_check_text(field(c->path), s, strlen(s), c->nchars);

		snprintf(name, sizeof(name), "text: %s", c->name);
		snprintf(detail, sizeof(detail), "got %s", rs_value_check_text(got));
		check(got == c->want, name, detail);
		free(s);
	}
	/* NUL inside the given length is data, never a terminator */
	check(rs_check_text(field("subscription.plan"), "pro\0", 4, -1) == RS_VAL_NOT_ALLOWED,
		  "text: plan \"pro\\0\" (length 4) is not \"pro\"", NULL);
	check(rs_check_text(field("auth.name"), "a\0b", 3, -1) == RS_VAL_CONTROL,
		  "text: name with NUL inside the length", NULL);
	check(rs_check_text(field("auth.name"), NULL, 0, -1) == RS_VAL_OK,
		  "text: NULL pointer with length 0 is the empty string", NULL);
	check(rs_check_text(field("auth.name"), NULL, 5, -1) == RS_VAL_TYPE,
		  "text: NULL pointer with a length is refused", NULL);
	/* the label rule the SQL functions' free-text arguments use */
	check(rs_check_label("", 0, -1, 1, 200) == RS_VAL_LENGTH, "label: empty is too short", NULL);
	check(rs_check_label("k", 1, -1, 1, 200) == RS_VAL_OK, "label: one character", NULL);
	check(rs_check_label("a\x7f", 2, -1, 1, 200) == RS_VAL_CONTROL, "label: DEL", NULL);
	check(rs_check_label("\xc3\xa9\xc3\xa9", 4, -1, 1, 2) == RS_VAL_OK, "label: counts characters, not bytes", NULL);
	check(rs_check_label("\xff", 1, -1, 1, 2) == RS_VAL_ENCODING, "label: invalid UTF-8", NULL);
}

typedef struct IntCase
{
	const char *path;
	int64_t		v;
	RsValueCheck want;
} IntCase;

static const IntCase int_cases[] = {
	{"roasting.roast_level", 0, RS_VAL_RANGE},
	{"roasting.roast_level", 1, RS_VAL_OK},
	{"roasting.roast_level", 5, RS_VAL_OK},
	{"roasting.roast_level", 6, RS_VAL_RANGE},
	{"roasting.roast_level", -1, RS_VAL_RANGE},
	{"roasting.roast_level", INT64_MIN, RS_VAL_RANGE},
	{"roasting.roast_level", INT64_MAX, RS_VAL_RANGE},
	{"roasting.roast_level", 4294967297LL, RS_VAL_RANGE},	/* 1 mod 2^32 */
	{"usage.monthly_roasts_used", 0, RS_VAL_OK},
	{"usage.monthly_roasts_used", -1, RS_VAL_RANGE},
	{"usage.monthly_roasts_used", 2147483647, RS_VAL_OK},
	{"usage.monthly_roasts_used", 2147483648LL, RS_VAL_RANGE},
	{"roasting.enabled", 1, RS_VAL_TYPE},
	{"auth.name", 1, RS_VAL_TYPE},
};

static void
test_int(void)
{
	char		name[160];
	char		detail[80];

	for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++)
	{
		const IntCase *c = &int_cases[i];
		RsValueCheck got = rs_check_int(field(c->path), c->v);

		snprintf(name, sizeof(name), "int: %s = %lld", c->path, (long long) c->v);
		snprintf(detail, sizeof(detail), "got %s", rs_value_check_text(got));
		check(got == c->want, name, detail);
	}
	check(rs_check_null(field("auth.name")) == RS_VAL_OK, "null: auth.name may be null", NULL);
	check(rs_check_null(field("roasting.enabled")) == RS_VAL_NULL, "null: roasting.enabled may not", NULL);
	check(rs_check_null(field("subscription.plan")) == RS_VAL_NULL, "null: subscription.plan may not", NULL);
}

/* ------------------------------------------------------------------ UUIDs */

static void
test_uuid(void)
{
	static const uint8_t want[RS_UUID_BYTES] = {0xa1, 0xb2, 0xc3, 0xd4, 0xe5,
	0xf6, 0x47, 0x08, 0x89, 0x9a, 0xab, 0xbc, 0xcd, 0xde, 0xef, 0xf0};
	static const char *const bad[] = {
		"a1b2c3d4-e5f6-4708-899a-abbccddeeff",	/* 35 */
		"a1b2c3d4-e5f6-4708-899a-abbccddeeff00",	/* 37 */
		"a1b2c3d4e-5f6-4708-899a-abbccddeeff0",	/* hyphen moved */
		"a1b2c3d4-e5f6-4708-899a-abbccddeeffg",	/* g */
		"{1b2c3d4-e5f6-4708-899a-abbccddeeff}",	/* braces */
		"a1b2c3d4 e5f6 4708 899a abbccddeeff0",	/* spaces */
		"a1b2c3d4-e5f6-4708-899a-abbccddeeff\xc3",	/* high byte */
		"a1b2c3d4-e5f6-4708-899a-abbccddeef\0f",	/* NUL inside */
		"",
	};
	uint8_t		out[RS_UUID_BYTES];
	int			ok;

	ok = rs_parse_uuid_text("a1b2c3d4-e5f6-4708-899a-abbccddeeff0", 36, out) &&
		memcmp(out, want, sizeof(want)) == 0;
	check(ok, "uuid: canonical lower case", NULL);
	ok = rs_parse_uuid_text("A1B2C3D4-E5F6-4708-899A-ABBCCDDEEFF0", 36, out) &&
		memcmp(out, want, sizeof(want)) == 0;
	check(ok, "uuid: upper case", NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		char		name[120];
		size_t		len = i == 7 ? 36 : strlen(bad[i]);

		memset(out, 0x5a, sizeof(out));
		ok = !rs_parse_uuid_text(bad[i], len, out);
		for (size_t k = 0; k < sizeof(out); k++)
			ok = ok && out[k] == 0x5a;
		snprintf(name, sizeof(name), "uuid: refused and output untouched: \"%.40s\"", bad[i]);
		check(ok, name, NULL);
	}
	check(!rs_parse_uuid_text(NULL, 36, out), "uuid: NULL refused", NULL);
	check(!rs_parse_uuid_text("a1b2c3d4-e5f6-4708-899a-abbccddeeff0", 35, out),
		  "uuid: the length given is the length used", NULL);
}

int
main(void)
{
	test_registry();
	test_keys();
	test_utf8();
	test_text();
	test_int();
	test_uuid();
	return unit_summary();
}
