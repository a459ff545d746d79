/*-------------------------------------------------------------------------
 *
 * fuzz_patch.c
 *	  libFuzzer harness for the checks of patch keys and values
 *	  (src/core/fields_core.c).
 *
 * Input: a patch key, a NUL byte, then a value (the raw bytes a JSON
 * string would carry).  Every field's checks run on it, and each answer is
 * checked against what it promises:
 *	- a key is OK only when it is, byte for byte, the path of a field that
 *	  caller may write; DERIVED only for a derived path;
 *	- a text value is OK only when it is one of the enumeration, or valid
 *	  UTF-8 (by an independent decoder) of the allowed number of characters
 *	  without control characters;
 *	- a UUID parses only from 36 characters, and prints back to the same
 *	  text (ignoring case);
 *	- an integer is OK only inside the field's range.
 * A broken promise aborts; AddressSanitizer and UBSan catch the rest.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_patch.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rs_fields_core.h"

#include "ref_utf8.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PROMISE(cond) do { if (!(cond)) abort(); } while (0)

static void
check_key(const char *key, size_t klen, bool service)
{
	const RsField *f = NULL;
	RsKeyCheck	r = rs_check_patch_key(key, klen, service, &f);
	bool		derived = false;

	for (int i = 0; rs_derived_paths[i]; i++)
		if (strlen(rs_derived_paths[i]) == klen &&
			memcmp(rs_derived_paths[i], key, klen) == 0)
			derived = true;

	if (f != NULL)
		PROMISE(strlen(f->path) == klen && memcmp(f->path, key, klen) == 0);
	switch (r)
	{
		case RS_KEY_OK:
			PROMISE(f != NULL && f->writer != W_SYSTEM &&
					(service || f->writer == W_USER) && !f->hidden);
			break;
		case RS_KEY_SERVICE_ONLY:
			PROMISE(f != NULL && !service && f->writer == W_SERVICE);
			break;
		case RS_KEY_SYSTEM:
			PROMISE(f != NULL && f->writer == W_SYSTEM);
			break;
		case RS_KEY_DERIVED:
			PROMISE(f == NULL && derived);
			break;
		case RS_KEY_UNKNOWN:
			PROMISE(f == NULL && !derived);
			break;
		default:
			abort();
	}
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

static void
check_value(const uint8_t *v, size_t vlen)
{
	long		ref = ref_utf8_chars(v, vlen);
	long		got = rs_utf8_chars((const char *) v, vlen);
	uint8_t		uuid[RS_UUID_BYTES];

	PROMISE(got == ref);

	for (int i = 0; i < RS_NFIELDS; i++)
	{
		const RsField *f = &rs_fields[i];
		RsValueCheck r = rs_check_text(f, (const char *) v, vlen, -1);

		if (f->type != FT_TEXT)
		{
			PROMISE(r == RS_VAL_TYPE);
			continue;
		}
		if (f->allowed)
		{
			bool		member = false;

			for (int k = 0; f->allowed[k]; k++)
				if (strlen(f->allowed[k]) == vlen &&
					memcmp(f->allowed[k], v, vlen) == 0)
					member = true;
			PROMISE((r == RS_VAL_OK) == member);
			PROMISE(r == RS_VAL_OK || r == RS_VAL_NOT_ALLOWED);
			continue;
		}
		if (r == RS_VAL_OK)
		{
			PROMISE(ref >= f->minval && ref <= f->maxval);
			for (size_t k = 0; k < vlen; k++)
				PROMISE(v[k] >= 0x20 && v[k] != 0x7f);
			if (f->id == F_AUTH_EMAIL)
				PROMISE(memchr(v, '@', vlen) != NULL);
		}
		else if (r == RS_VAL_ENCODING)
			PROMISE(ref < 0);
		else if (r == RS_VAL_LENGTH)
			PROMISE(ref >= 0 && (ref < f->minval || ref > f->maxval));
		else
			PROMISE(ref >= 0 && (r == RS_VAL_CONTROL || r == RS_VAL_NOT_EMAIL));
		/* a server-supplied count is used as given */
		r = rs_check_text(f, (const char *) v, vlen, (long) vlen);
		PROMISE(r != RS_VAL_ENCODING);
	}

	if (rs_parse_uuid_text((const char *) v, vlen, uuid))
	{
		size_t		j = 0;

		PROMISE(vlen == RS_UUID_CHARS);
		for (int b = 0; b < RS_UUID_BYTES; b++)
		{
			if (b == 4 || b == 6 || b == 8 || b == 10)
				PROMISE(v[j++] == '-');
			PROMISE(hexval((char) v[j]) == uuid[b] >> 4);
			PROMISE(hexval((char) v[j + 1]) == (uuid[b] & 0xf));
			j += 2;
		}
	}

	if (vlen >= 8)
	{
		int64_t		n;

		memcpy(&n, v, sizeof(n));
		for (int i = 0; i < RS_NFIELDS; i++)
		{
			const RsField *f = &rs_fields[i];
			RsValueCheck r = rs_check_int(f, n);

			if (f->type != FT_INT2 && f->type != FT_INT4)
				PROMISE(r == RS_VAL_TYPE);
			else
				PROMISE((r == RS_VAL_OK) == (n >= f->minval && n <= f->maxval));
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t		klen = nul ? (size_t) (nul - data) : size;
	const uint8_t *v = nul ? nul + 1 : data + size;
	size_t		vlen = nul ? size - klen - 1 : 0;

	check_key((const char *) data, klen, false);
	check_key((const char *) data, klen, true);
	check_value(v, vlen);
	return 0;
}
