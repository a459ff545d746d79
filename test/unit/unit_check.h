/*-------------------------------------------------------------------------
 *
 * unit_check.h
 *	  The one-line-per-test reporting of the C unit tests (test/unit).
 *
 * Each test program prints "ok     NAME" or "FAILED NAME: DETAIL" per
 * check and ends with "N passed, N failed"; its exit status is 1 if
 * anything failed.  Included once per program (static functions).
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/unit/unit_check.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef UNIT_CHECK_H
#define UNIT_CHECK_H

#include <stdio.h>

static int	n_passed;
static int	n_failed;

/* Record one test result; detail says what was wrong. */
static void
check(int ok, const char *name, const char *detail)
{
	if (ok)
	{
		n_passed++;
		printf("ok     %s\n", name);
	}
	else
	{
		n_failed++;
		printf("FAILED %s%s%s\n", name, detail ? ": " : "", detail ? detail : "");
	}
}

/* Print the summary line; the program's exit status. */
static int
unit_summary(void)
{
	printf("%d passed, %d failed\n", n_passed, n_failed);
	return n_failed ? 1 : 0;
}

#endif							/* UNIT_CHECK_H */
