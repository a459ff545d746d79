/*-------------------------------------------------------------------------
 *
 * patch.h
 *	  patch(): apply field changes all or nothing, with field-level
 *	  optimistic locking and an optional mutation id.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/patch.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_PATCH_H
#define RS_PATCH_H

#include "utils/jsonb.h"
#include "utils/uuid.h"

/* The arguments of roastr_state.patch(), as the SQL call passed them. */
typedef struct RsPatchRequest
{
	bool		user_isnull;	/* NULL user_id: the caller */
	Datum		user_arg;
	Jsonb	   *changes;		/* NULL when SQL NULL */
	bool		base_null;
	int64		base;
	bool		has_mid;
	pg_uuid_t	mid;
} RsPatchRequest;

extern Jsonb *rs_patch(const RsPatchRequest *req);

#endif							/* RS_PATCH_H */
