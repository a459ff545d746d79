/*-------------------------------------------------------------------------
 *
 * relation.h
 *	  roastr_state.state as the C code sees it: its OID and owner, the
 *	  attribute numbers of its columns, and which version of the schema
 *	  is installed.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/relation.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_RELATION_H
#define RS_RELATION_H

#include "utils/rel.h"

#include "core/rs_fields_core.h"

#define ROASTR_SCHEMA		"roastr_state"
#define ROASTR_STATE_TABLE	"state"

/*
 * Column layout of roastr_state.state, resolved by name once per relcache
 * generation of the table.
 */
typedef struct RsLayout
{
	Oid			relid;
	Oid			owner;
	int			natts;
	AttrNumber	att_user_id;
	AttrNumber	att_version;
	AttrNumber	att_updated_at;
	AttrNumber	att_fv;			/* field_versions bigint[] (up to 0.6.0) */
	AttrNumber	att_ft;			/* field_times timestamptz[] (up to 0.6.0) */
	AttrNumber	att_log;		/* field_log bigint[] (0.7.0 on; fieldlog.c) */
	AttrNumber	att_created_at;
	AttrNumber	att_field[RS_NFIELDS];	/* 0 when not a state column */
} RsLayout;

/*
 * What the installed schema has.  The library serves the schema of the
 * previous version until ALTER EXTENSION UPDATE, so the code asks.
 */
typedef struct RsSchema
{
	const RsLayout *layout;
	bool		settles;		/* 0.2.0's usage columns */
	bool		has_keys;		/* roastr_state.user_keys (0.2.0) */
	bool		has_orgs;		/* the organization tables (0.2.0) */
	bool		stamps;			/* shared changes settled per user (0.7.0):
								 * the change stamps of plans, organizations
								 * and memberships, and the state's seen
								 * columns */
} RsSchema;

extern Oid	rs_state_relid(void);
extern Oid	rs_extension_owner(void);
extern const RsLayout *rs_layout(Relation rel);
extern const RsSchema *rs_schema(void);

#endif							/* RS_RELATION_H */
