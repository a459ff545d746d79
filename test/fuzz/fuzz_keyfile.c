/*-------------------------------------------------------------------------
 *
 * fuzz_keyfile.c
 *	  libFuzzer harness for the master key file parser
 *	  (src/core/keyfile.c).
 *
 * The input is a key file.  On success the ring must hold between 1 and
 * RS_KEYRING_MAX keys with distinct ids in 1..2^31-1, current_id must be
 * the highest, and every key must be findable; each key's bytes must be
 * the hex digits that follow its id somewhere in the file.  On failure
 * the ring must be all zeros (no half-read keys left behind) and the bad
 * line number must lie inside the file.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_keyfile.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_crypto_core.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PROMISE(cond) do { if (!(cond)) abort(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static RsKeyRing ring;
	int			bad_line = -1;
	int			r;
	size_t		lines = 1;

	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n')
			lines++;

	memset(&ring, 0x77, sizeof(ring));
	r = rs_keyfile_parse((const char *) data, size, &ring, &bad_line);
	if (r != RS_OK)
	{
		const uint8_t *p = (const uint8_t *) &ring;

		for (size_t i = 0; i < sizeof(ring); i++)
			PROMISE(p[i] == 0);
		PROMISE(bad_line >= 0 && (size_t) bad_line <= lines);
		PROMISE(r == RS_ERR_KEYFILE_SYNTAX || r == RS_ERR_KEYFILE_DUPLICATE ||
				r == RS_ERR_KEYFILE_TOO_MANY || r == RS_ERR_KEYFILE_EMPTY ||
				r == RS_ERR_ARG);
		return 0;
	}

	PROMISE(bad_line == 0);
	PROMISE(ring.nkeys >= 1 && ring.nkeys <= RS_KEYRING_MAX);
	{
		uint32_t	max = 0;

		for (int i = 0; i < ring.nkeys; i++)
		{
			char		hex[2 * RS_KEY_BYTES + 1];
			bool		seen = false;

			PROMISE(ring.keys[i].id >= 1 && ring.keys[i].id <= RS_KEY_ID_MAX);
			for (int j = 0; j < i; j++)
				PROMISE(ring.keys[j].id != ring.keys[i].id);
			if (ring.keys[i].id > max)
				max = ring.keys[i].id;
			PROMISE(rs_keyring_find(&ring, ring.keys[i].id) == ring.keys[i].key);

			/* the key's digits are in the file, in either case */
			for (int b = 0; b < RS_KEY_BYTES; b++)
				snprintf(hex + 2 * b, 3, "%02x", ring.keys[i].key[b]);
			for (size_t at = 0; at + 64 <= size && !seen; at++)
			{
				size_t		k = 0;

				while (k < 64 && (data[at + k] == hex[k] ||
								  (hex[k] >= 'a' && data[at + k] == hex[k] - 32)))
					k++;
				seen = (k == 64);
			}
			PROMISE(seen);
		}
		PROMISE(ring.current_id == max);
		PROMISE(rs_keyring_find(&ring, 0) == NULL);
	}
	return 0;
}
