/*-------------------------------------------------------------------------
 *
 * keyfile.c
 *	  Parser of the master key file (pure C).
 *
 * Format (design/API.md, "Server configuration"): lines end with LF or
 * CRLF.  A line that is empty, only spaces and tabs, or whose first
 * character after optional leading spaces and tabs is '#' is ignored.  Every
 * other line is
 *
 *	  [spaces/tabs] <key id> <spaces/tabs> <64 hex digits> [spaces/tabs]
 *
 * where the key id is a decimal integer from 1 to 2^31 - 1 (digits only, no
 * sign) and the hex digits are the 32 key bytes, in either case.  Anything
 * else on a line -- a short or long key, a non-hex digit, a trailing
 * comment, a NUL byte, a bare CR -- makes the whole file invalid.  Ids must
 * be unique; the highest one is the current key, the one new data keys are
 * wrapped with.
 *
 * The key bytes are decoded straight into the caller's ring (which the
 * PostgreSQL glue keeps in sodium_malloc'd memory); the parser makes no
 * other copy of them.  On failure the ring is wiped, so a half-read file
 * never leaves keys behind, and the status and line number are all the
 * caller learns: neither says anything about key bytes.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/core/keyfile.c
 *
 *-------------------------------------------------------------------------
 */
#include <limits.h>
#include <string.h>

#include <sodium.h>

#include "rs_crypto_core.h"

#define RS_KEY_HEX_DIGITS	(2 * RS_KEY_BYTES)

/* Space or tab: the only blanks the format knows. */
static int
is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* ASCII hex digit, independent of the locale. */
static int
is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		(c >= 'A' && c <= 'F');
}

/*
 * parse_line
 *		Parse one line (without its line end) into the ring.
 *
 * Returns RS_OK for a key, a comment or a blank line, else the reason the
 * line is invalid.
 */
static int
parse_line(const char *s, size_t len, RsKeyRing *ring)
{
	size_t		i = 0;
	size_t		hexstart;
	size_t		binlen;
	uint64_t	id = 0;
	RsMasterKey *k;
	int			n;

	while (i < len && is_blank(s[i]))
		i++;
	if (i == len || s[i] == '#')
		return RS_OK;

	/* key id: decimal digits, 1 .. 2^31 - 1, checked while accumulating */
	if (s[i] < '0' || s[i] > '9')
		return RS_ERR_KEYFILE_SYNTAX;
	while (i < len && s[i] >= '0' && s[i] <= '9')
	{
		id = id * 10 + (uint64_t) (s[i] - '0');
		if (id > RS_KEY_ID_MAX)
			return RS_ERR_KEYFILE_SYNTAX;
		i++;
	}
	if (id == 0)
		return RS_ERR_KEYFILE_SYNTAX;

	/* at least one blank, then exactly 64 hex digits */
	if (i == len || !is_blank(s[i]))
		return RS_ERR_KEYFILE_SYNTAX;
	while (i < len && is_blank(s[i]))
		i++;
	hexstart = i;
	while (i < len && is_hex(s[i]))
		i++;
	if (i - hexstart != RS_KEY_HEX_DIGITS)
		return RS_ERR_KEYFILE_SYNTAX;

	/* only blanks may follow */
	while (i < len && is_blank(s[i]))
		i++;
	if (i != len)
		return RS_ERR_KEYFILE_SYNTAX;

	for (n = 0; n < ring->nkeys; n++)
		if (ring->keys[n].id == (uint32_t) id)
			return RS_ERR_KEYFILE_DUPLICATE;
	if (ring->nkeys >= RS_KEYRING_MAX)
		return RS_ERR_KEYFILE_TOO_MANY;

	k = &ring->keys[ring->nkeys];
	if (sodium_hex2bin(k->key, RS_KEY_BYTES, s + hexstart, RS_KEY_HEX_DIGITS,
					   NULL, &binlen, NULL) != 0 ||
		binlen != RS_KEY_BYTES)
	{
		/* cannot happen: the digits were checked above */
		sodium_memzero(k->key, RS_KEY_BYTES);
		return RS_ERR_KEYFILE_SYNTAX;
	}
	k->id = (uint32_t) id;
	ring->nkeys++;
	if ((uint32_t) id > ring->current_id)
		ring->current_id = (uint32_t) id;
	return RS_OK;
}

/*
 * rs_keyfile_parse
 *		Parse the text of a master key file into ring.
 *
 * text need not be NUL-terminated; len is its length.  On success the ring
 * holds every key and current_id is the highest id.  On failure the ring is
 * all zeros and *bad_line is the 1-based number of the offending line (0
 * when the file as a whole is at fault, i.e. it holds no key).  The caller
 * owns text and should wipe it afterwards: it holds the keys in hex.
 */
int
rs_keyfile_parse(const char *text, size_t len, RsKeyRing *ring, int *bad_line)
{
	size_t		pos = 0;
	int			lineno = 0;
	int			rc;

	if (bad_line != NULL)
		*bad_line = 0;
	if (ring == NULL || bad_line == NULL || (text == NULL && len > 0))
		return RS_ERR_ARG;
	sodium_memzero(ring, sizeof(*ring));

	while (pos < len)
	{
		const char *start = text +pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t		linelen = nl ? (size_t) (nl - start) : len - pos;

		pos += linelen + (nl ? 1 : 0);
		if (lineno < INT_MAX)
			lineno++;
		if (linelen > 0 && start[linelen - 1] == '\r')
			linelen--;

		rc = parse_line(start, linelen, ring);
		if (rc != RS_OK)
		{
			sodium_memzero(ring, sizeof(*ring));
			*bad_line = lineno;
			return rc;
		}
	}

	if (ring->nkeys == 0)
		return RS_ERR_KEYFILE_EMPTY;
	return RS_OK;
}

/*
 * rs_keyring_find
 *		The key with this id, or NULL.
 *
 * A linear search: a ring holds at most RS_KEYRING_MAX keys.
 */
const uint8_t *
rs_keyring_find(const RsKeyRing *ring, uint32_t id)
{
	int			n;

	if (ring == NULL || id == 0)
		return NULL;
	for (n = 0; n < ring->nkeys && n < RS_KEYRING_MAX; n++)
		if (ring->keys[n].id == id)
			return ring->keys[n].key;
	return NULL;
}
