/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  Kept SPI plans (see spi_util.h).
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/spi_util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "spi_util.h"

/*
 * rs_spi_keep
 *		Prepare "sql" and keep the plan for the backend's life.  The caller
 *		is connected to SPI.  Every name in the text must be qualified.
 *		For plans that a caller rebuilds itself (see rs_spi_kept for the
 *		usual case of one fixed statement).
 */
SPIPlanPtr
rs_spi_keep(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/*
 * rs_spi_kept
 *		The kept plan of one fixed statement: "*plan" (a static of the
 *		caller, NULL at first), prepared and kept at its first use.  The
 *		caller is connected to SPI.  A failed prepare leaves "*plan" NULL,
 *		so the next call tries again.
 */
SPIPlanPtr
rs_spi_kept(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
		*plan = rs_spi_keep(sql, nargs, argtypes);
	return *plan;
}

/*
 * rs_spi_run
 *		Execute a kept plan and return the number of rows processed; ERROR
 *		unless SPI answers "expect" (SPI_OK_SELECT, SPI_OK_UPDATE, ...).
 *		"what" completes the internal message "could not %s" -- a failure
 *		here is a bug or a broken schema, not something a caller can cause.
 */
uint64
rs_spi_run(SPIPlanPtr plan, Datum *args, const char *nulls, bool read_only,
		   long count, int expect, const char *what)
{
	int			rc = SPI_execute_plan(plan, args, nulls, read_only, count);

	if (rc != expect)
		elog(ERROR, "could not %s: %s", what, SPI_result_code_string(rc));
	return SPI_processed;
}
