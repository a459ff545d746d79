/*-------------------------------------------------------------------------
 *
 * rowcheck.h
 *	  The checks the state trigger makes of a written row.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/rowcheck.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_ROWCHECK_H
#define RS_ROWCHECK_H

#include "utils/rel.h"
#include "utils/uuid.h"

#include "fields.h"
#include "relation.h"

extern void rs_check_maintained(Relation rel, const RsLayout *l,
								AttrNumber attnum, Datum *oldv, bool *oldn,
								Datum *newv, bool *newn);
extern int64 rs_check_base_version(Relation rel, const RsLayout *l, int64 cur,
								   Datum *newv, bool *newn);
extern void rs_check_status_move(Relation rel, const RsLayout *l,
								 Datum *oldv, bool *oldn, Datum *newv,
								 bool *newn);
extern int64 rs_check_membership(Relation rel, const RsLayout *l,
								 const pg_uuid_t *user, const pg_uuid_t *org);
extern void rs_raise_conflict(Relation rel, const RsLayout *l,
							  int64 server_version, int64 base,
							  uint32 conflicts, const RsFieldLog *log,
							  Datum *oldv, bool *oldn) pg_attribute_noreturn();

#endif							/* RS_ROWCHECK_H */
