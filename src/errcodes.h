/*-------------------------------------------------------------------------
 *
 * errcodes.h
 *	  The SQLSTATEs of roastr_state (README, "Reference").
 *
 * PostgREST turns a "PTnnn" code into HTTP status nnn.  Class 40 is not
 * used on purpose: PostgREST makes it HTTP 500 and clients retry it blindly.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/errcodes.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_ERRCODES_H
#define RS_ERRCODES_H

#define ERRCODE_ROASTR_CONFLICT			MAKE_SQLSTATE('P','T','4','0','9')
#define ERRCODE_ROASTR_PLAN_REQUIRED	MAKE_SQLSTATE('P','T','4','0','2')
#define ERRCODE_ROASTR_UNAUTHORIZED		MAKE_SQLSTATE('P','T','4','0','1')
#define ERRCODE_ROASTR_NOT_FOUND		MAKE_SQLSTATE('P','T','4','0','4')
/* a standby has not replayed the client's cursor yet: retry, or the primary */
#define ERRCODE_ROASTR_BEHIND		MAKE_SQLSTATE('P','T','5','0','3')

#endif							/* RS_ERRCODES_H */
