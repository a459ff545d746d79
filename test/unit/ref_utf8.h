/*-------------------------------------------------------------------------
 *
 * ref_utf8.h
 *	  A reference UTF-8 decoder for tests of rs_utf8_chars (the unit test
 *	  and the fuzz harness), written the other way round on purpose.
 *
 * rs_utf8_chars checks each byte against RFC 3629's table of allowed
 * ranges.  This decodes a sequence by its lead byte's length (2 to 4),
 * computes the code point, and accepts it only if it is a scalar value
 * (not a surrogate, at most U+10FFFF) that needs exactly that many bytes.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/unit/ref_utf8.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef REF_UTF8_H
#define REF_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Characters of a UTF-8 string, or -1 when it is malformed. */
static long
ref_utf8_chars(const uint8_t *p, size_t len)
{
	long		chars = 0;

	while (len > 0)
	{
		int			n;
		uint32_t	cp;

		if (p[0] < 0x80)
			n = 1, cp = p[0];
		else if ((p[0] & 0xE0) == 0xC0)
			n = 2, cp = p[0] & 0x1F;
		else if ((p[0] & 0xF0) == 0xE0)
			n = 3, cp = p[0] & 0x0F;
		else if ((p[0] & 0xF8) == 0xF0)
			n = 4, cp = p[0] & 0x07;
		else
			return -1;
		if ((size_t) n > len)
			return -1;
		for (int k = 1; k < n; k++)
		{
			if ((p[k] & 0xC0) != 0x80)
				return -1;
			cp = (cp << 6) | (p[k] & 0x3F);
		}
		if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
			(cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4) != n)
			return -1;
		p += n;
		len -= n;
		chars++;
	}
	return chars;
}

#endif							/* REF_UTF8_H */
