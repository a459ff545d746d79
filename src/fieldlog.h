/*-------------------------------------------------------------------------
 *
 * fieldlog.h
 *	  Where a state row keeps its per-field change log: the two arrays of
 *	  0.1.0-0.6.0 (field_versions bigint[], field_times timestamptz[]) or,
 *	  from 0.7.0, one bigint[] field_log of (version, time) pairs in slot
 *	  order, the hottest fields first (see fieldlog.c).
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/fieldlog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_FIELDLOG_H
#define RS_FIELDLOG_H

#include "fields.h"
#include "relation.h"

/* the slot of each field in field_log, and the field of each slot */
extern const int rs_log_slot[RS_NFIELDS];
extern const int rs_log_field[RS_NFIELDS];

extern bool rs_field_log_well_formed(Datum log, bool isnull);
extern void rs_read_field_log_pairs(Datum log, bool isnull, RsFieldLog *out);
extern Datum rs_build_field_log_pairs(const RsFieldLog *log);

/* the change log of a deformed row of the table whose layout is "l" */
extern void rs_row_read_log(const RsLayout *l, const Datum *vals,
							const bool *nulls, RsFieldLog *out);
extern bool rs_row_log_empty(const RsLayout *l, const Datum *vals,
							 const bool *nulls);

/*
 * The columns that hold "log" (1 or 2) with their new values, appended to
 * cols/vals at *n.
 */
extern void rs_row_log_columns(const RsLayout *l, const RsFieldLog *log,
							   int *cols, Datum *vals, int *n);

/* the maintained change-log columns, for rs_check_maintained */
extern int	rs_row_log_attnums(const RsLayout *l, AttrNumber *attnums);

#endif							/* RS_FIELDLOG_H */
