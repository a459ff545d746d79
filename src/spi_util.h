/*-------------------------------------------------------------------------
 *
 * spi_util.h
 *	  Kept SPI plans: the one way roastr_state prepares, keeps and runs
 *	  its statements.
 *
 * Every statement text names its objects schema-qualified and its
 * operators as OPERATOR(pg_catalog.x), so no search_path can redirect it.
 * A plan is prepared at its first use in a backend and kept for the
 * backend's life (SPI_keepplan); the plan cache replans it after DDL.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/spi_util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_SPI_UTIL_H
#define RS_SPI_UTIL_H

#include "executor/spi.h"

extern SPIPlanPtr rs_spi_keep(const char *sql, int nargs, Oid *argtypes);
extern SPIPlanPtr rs_spi_kept(SPIPlanPtr *plan, const char *sql, int nargs,
							  Oid *argtypes);
extern uint64 rs_spi_run(SPIPlanPtr plan, Datum *args, const char *nulls,
						 bool read_only, long count, int expect,
						 const char *what);

#endif							/* RS_SPI_UTIL_H */
