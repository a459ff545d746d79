/*-------------------------------------------------------------------------
 *
 * relation.c
 *	  roastr_state.state as the C code sees it (see relation.h).
 *
 * Everything here is cached per backend and forgotten at a relcache
 * invalidation of the table (ALTER EXTENSION UPDATE adds columns to it, so
 * an upgrade always invalidates; a dropped and recreated extension has a
 * new OID).  The code reads columns by attribute number and type, so a
 * table whose columns differ from what the scripts create is refused.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/relation.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "storage/lmgr.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "fields.h"
#include "fieldlog.h"
#include "relation.h"

/* roastr_state.state's OID and owner */
static Oid	state_relid = InvalidOid;
static Oid	state_owner = InvalidOid;

/* its layout, and what the schema has */
static RsLayout layout_cache;
static bool layout_valid = false;
static RsSchema schema_cache;
static bool schema_valid = false;
static bool callback_registered = false;

/*
 * relcache_callback
 *		Forget everything at an invalidation of the table (or of all
 *		relations).
 */
static void
relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == state_relid ||
		relid == layout_cache.relid)
	{
		state_relid = InvalidOid;
		state_owner = InvalidOid;
		layout_valid = false;
		schema_valid = false;
	}
}

/* Register relcache_callback once per backend. */
static void
ensure_callback(void)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
		callback_registered = true;
	}
}

/*
 * rs_state_relid
 *		OID of roastr_state.state; ERROR when the extension is not installed
 *		in this database.
 */
Oid
rs_state_relid(void)
{
	ensure_callback();
	if (!OidIsValid(state_relid))
	{
		Oid			nsp = get_namespace_oid(ROASTR_SCHEMA, true);
		Oid			relid = InvalidOid;
		HeapTuple	tp;

		if (OidIsValid(nsp))
			relid = get_relname_relid(ROASTR_STATE_TABLE, nsp);

		if (!OidIsValid(relid))
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("extension \"roastr_state\" is not installed in this database"));
		tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
		if (!HeapTupleIsValid(tp))
			elog(ERROR, "cache lookup failed for relation %u", relid);
		state_owner = ((Form_pg_class) GETSTRUCT(tp))->relowner;
		ReleaseSysCache(tp);
		state_relid = relid;
	}
	return state_relid;
}

/*
 * rs_extension_owner
 *		The owner of roastr_state.state, as whom the functions access the
 *		tables once they have checked the caller (access.c).
 */
Oid
rs_extension_owner(void)
{
	(void) rs_state_relid();
	return state_owner;
}

/*
 * layout_refuse
 *		ERROR: "rel" does not have the columns the code reads.
 */
static void
layout_refuse(Relation rel)
{
	ereport(ERROR,
			errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
			errmsg("relation \"%s\" does not have the columns of roastr_state.state",
				   RelationGetRelationName(rel)),
			errdetail("A column is missing or has another type than the extension created."),
			errtable(rel));
}

/* Whether attribute "attnum" (0: missing) of "desc" has type "typid". */
static bool
att_has_type(TupleDesc desc, AttrNumber attnum, Oid typid)
{
	return attnum != 0 && TupleDescAttr(desc, attnum - 1)->atttypid == typid;
}

/*
 * rs_layout
 *		Attribute numbers of roastr_state.state's columns, found by name.
 *		The caller has "rel" open.  Cached until the next relcache
 *		invalidation of the table.
 */
const RsLayout *
rs_layout(Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	RsLayout   *l = &layout_cache;

	ensure_callback();
	if (layout_valid && l->relid == RelationGetRelid(rel) &&
		l->natts == desc->natts)
		return l;

	memset(l, 0, sizeof(RsLayout));
	l->relid = RelationGetRelid(rel);
	l->owner = rel->rd_rel->relowner;
	l->natts = desc->natts;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);
		AttrNumber	attnum = i + 1;

		if (att->attisdropped)
			continue;
		if (strcmp(name, "user_id") == 0)
			l->att_user_id = attnum;
		else if (strcmp(name, "version") == 0)
			l->att_version = attnum;
		else if (strcmp(name, "updated_at") == 0)
			l->att_updated_at = attnum;
		else if (strcmp(name, "field_versions") == 0)
			l->att_fv = attnum;
		else if (strcmp(name, "field_times") == 0)
			l->att_ft = attnum;
		else if (strcmp(name, "field_log") == 0)
			l->att_log = attnum;
		else if (strcmp(name, "created_at") == 0)
			l->att_created_at = attnum;
		else
		{
			for (int f = 0; f < RS_NFIELDS; f++)
			{
				if (rs_fields[f].column &&
					strcmp(rs_fields[f].column, name) == 0)
					l->att_field[f] = attnum;
			}
		}
	}

	/* the C code reads the columns by type: refuse a table that differs */
	for (int f = 0; f < RS_NFIELDS; f++)
	{
		if (l->att_field[f] != 0 &&
			!att_has_type(desc, l->att_field[f],
						  rs_field_typoid(&rs_fields[f])))
			layout_refuse(rel);
	}
	if (!att_has_type(desc, l->att_user_id, UUIDOID) ||
		!att_has_type(desc, l->att_version, INT8OID) ||
		!att_has_type(desc, l->att_updated_at, TIMESTAMPTZOID) ||
		!att_has_type(desc, l->att_created_at, TIMESTAMPTZOID))
		layout_refuse(rel);
	/* the change log: field_log, or (up to 0.6.0) the two arrays */
	if (l->att_log != 0)
	{
		if (!att_has_type(desc, l->att_log, INT8ARRAYOID) ||
			l->att_fv != 0 || l->att_ft != 0)
			layout_refuse(rel);
	}
	else if (!att_has_type(desc, l->att_fv, INT8ARRAYOID) ||
			 !att_has_type(desc, l->att_ft, TIMESTAMPTZARRAYOID))
		layout_refuse(rel);
	for (int s = 0; s < RS_NFIELDS; s++)
	{
		if (rs_log_slot[rs_log_field[s]] != s || (s >= 24 && rs_log_field[s] != s))
			elog(ERROR, "field_log slot %d is not the inverse of its field", s);
	}
	layout_valid = true;
	return l;
}

/*
 * rs_schema
 *		The layout of roastr_state.state and which version of the schema is
 *		installed.  Takes (or keeps) AccessShareLock on the table, which
 *		also takes in any invalidation a concurrent ALTER EXTENSION UPDATE
 *		committed, then answers from the cache when it is still valid: one
 *		lookup per relcache generation, not per statement.
 */
const RsSchema *
rs_schema(void)
{
	Oid			relid = rs_state_relid();
	Relation	rel;

	LockRelationOid(relid, AccessShareLock);
	if (schema_valid && layout_valid && layout_cache.relid == relid)
		return &schema_cache;

	relid = rs_state_relid();	/* the lock may have invalidated it */
	rel = table_open(relid, AccessShareLock);
	schema_cache.layout = rs_layout(rel);
	schema_cache.settles =
		schema_cache.layout->att_field[F_USAGE_PERIOD_END] != 0;
	schema_cache.has_keys =
		OidIsValid(get_relname_relid("user_keys", RelationGetNamespace(rel)));
	schema_cache.has_orgs =
		OidIsValid(get_relname_relid("organization_members",
									 RelationGetNamespace(rel)));
	schema_cache.stamps =
		schema_cache.layout->att_field[F_LIMITS_SEEN] != 0 &&
		schema_cache.layout->att_field[F_ORG_SEEN] != 0;
	table_close(rel, AccessShareLock);
	schema_valid = true;
	return &schema_cache;
}
