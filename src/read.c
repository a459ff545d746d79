/*-------------------------------------------------------------------------
 *
 * read.c
 *	  Reading a user's state in one snapshot, and settling it.
 *
 * A read is one kept SPI plan that returns the state row, the persona row,
 * the plan limits, the wrapped data key and the current organization in one
 * snapshot, so a sync's cursor and its changes always agree.  The query is
 * built from the columns the installed schema has (relation.c), so this
 * library also serves a schema one version older until ALTER EXTENSION
 * UPDATE (a missing column reads as NULL).
 *
 * The same read computes the change stamps of the shared rows the state
 * depends on (the plans, the current organization and membership; see
 * shared.c), so a state and the stamps it is compared with always come
 * from one snapshot.
 *
 * Settling: time moves some values without anybody writing, and so does an
 * operator's change of a shared row (usage.c); the first call that may
 * write and finds such a move pending writes it down through the state
 * trigger, in one UPDATE of the user's own row, so it becomes a version
 * every device's sync sees.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/read.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "access.h"
#include "errcodes.h"
#include "fields.h"
#include "fieldlog.h"
#include "json_util.h"
#include "read.h"
#include "relation.h"
#include "shared.h"
#include "spi_util.h"
#include "trigger.h"
#include "usage.h"

/* Positions in the read query's result (0-based). */
#define COL_USER_ID		0
#define COL_VERSION		1
#define COL_UPDATED_AT	2
#define COL_FV			3
#define COL_FT			4
#define COL_CREATED_AT	5
#define COL_FIELD0		6
#define COL_PLAN_LIMIT	(COL_FIELD0 + RS_NFIELDS)
#define COL_PLAN_FOUND	(COL_PLAN_LIMIT + 1)
#define COL_FREE_LIMIT	(COL_PLAN_LIMIT + 2)
#define COL_FREE_FOUND	(COL_PLAN_LIMIT + 3)
#define COL_DEK_KEYGEN	(COL_PLAN_LIMIT + 4)
#define COL_DEK_MASTER	(COL_PLAN_LIMIT + 5)
#define COL_DEK_WRAPPED	(COL_PLAN_LIMIT + 6)
#define COL_ORG_NAME	(COL_PLAN_LIMIT + 7)
#define COL_ORG_SLUG	(COL_PLAN_LIMIT + 8)
#define COL_ORG_ROLE	(COL_PLAN_LIMIT + 9)
#define COL_PLAN_STAMP	(COL_PLAN_LIMIT + 10)
#define COL_FREE_STAMP	(COL_PLAN_LIMIT + 11)
#define COL_ORG_STAMP	(COL_PLAN_LIMIT + 12)
#define READ_NCOLS		(COL_PLAN_LIMIT + 13)

/* The read plan, and the schema generation it was built for. */
static SPIPlanPtr read_plan = NULL;
static const RsLayout *read_plan_layout = NULL;
static Oid	read_plan_relid = InvalidOid;
static int	read_plan_natts = 0;

/*
 * rs_no_state
 *		ERROR (PT404): the user has no state.
 */
void
rs_no_state(const pg_uuid_t *user)
{
	ereport(ERROR,
			errcode(ERRCODE_ROASTR_NOT_FOUND),
			errmsg("user %s has no state", rs_uuid_to_cstring(user)),
			errhint("The service creates it with roastr_state.ensure_user()."));
	pg_unreachable();
}

/*
 * read_query
 *		The text of the read: the state row's columns that the schema has
 *		(NULL of the field's type for the others), the persona row, the
 *		limits of the stored plan and of the free plan, the data key and
 *		the current organization, joined where the schema has the tables;
 *		then the change stamps of the two plan rows and of the current
 *		organization (shared.h: 0 for none, -1 for one that is gone), 0
 *		before the schema has them.  A deleted organization (0.7.0) is
 *		no organization.
 */
static char *
read_query(const RsSchema *schema)
{
	const RsLayout *l = schema->layout;
	StringInfoData sql;

	initStringInfo(&sql);
	/* the change log: one field_log (0.7.0 on) or the two arrays */
	appendStringInfoString(&sql,
						   l->att_log != 0 ?
						   "SELECT s.user_id, s.version, s.updated_at, s.field_log, "
						   "NULL::pg_catalog.timestamptz[], s.created_at" :
						   "SELECT s.user_id, s.version, s.updated_at, s.field_versions, "
						   "s.field_times, s.created_at");
	for (int f = 0; f < RS_NFIELDS; f++)
	{
		const RsField *fd = &rs_fields[f];

		if (fd->column && l->att_field[f] != 0)
			appendStringInfo(&sql, ", s.%s", fd->column);
		else if (fd->column)
			appendStringInfo(&sql, ", NULL::%s",
							 format_type_be(rs_field_typoid(fd)));
		else
			appendStringInfo(&sql, ", p.%s", fd->key);
	}
	appendStringInfoString(&sql,
						   ", pl.monthly_roasts_limit, pl.plan IS NOT NULL"
						   ", fr.monthly_roasts_limit, fr.plan IS NOT NULL");
	if (schema->has_keys)
		appendStringInfoString(&sql,
							   ", uk.keygen, uk.master_key_id, uk.wrapped");
	else
		appendStringInfoString(&sql, ", NULL::integer, NULL::integer, NULL::bytea");
	if (schema->has_orgs)
		appendStringInfoString(&sql, ", o.name, o.slug, m.role");
	else
		appendStringInfoString(&sql, ", NULL::text, NULL::text, NULL::text");
	if (schema->stamps)
		appendStringInfoString(&sql,
							   ", COALESCE(pl.changed_stamp, 0), COALESCE(fr.changed_stamp, 0)"
							   ", CASE WHEN s.organization_id IS NULL THEN 0::pg_catalog.int8"
							   " WHEN o.id IS NULL THEN (-1)::pg_catalog.int8"
							   " ELSE o.changed_stamp OPERATOR(pg_catalog.+) m.changed_stamp END");
	else
		appendStringInfoString(&sql,
							   ", 0::pg_catalog.int8, 0::pg_catalog.int8, 0::pg_catalog.int8");
	appendStringInfoString(&sql,
						   " FROM roastr_state.state s"
						   " LEFT JOIN roastr_state.persona p"
						   " ON p.user_id OPERATOR(pg_catalog.=) s.user_id"
						   " LEFT JOIN roastr_state.plans pl"
						   " ON pl.plan OPERATOR(pg_catalog.=) s.plan"
						   " LEFT JOIN roastr_state.plans fr"
						   " ON fr.plan OPERATOR(pg_catalog.=) 'free'");
	if (schema->has_keys)
		appendStringInfoString(&sql,
							   " LEFT JOIN roastr_state.user_keys uk"
							   " ON uk.user_id OPERATOR(pg_catalog.=) s.user_id");
	if (schema->has_orgs)
		appendStringInfo(&sql,
						 " LEFT JOIN (roastr_state.organization_members m"
						 " JOIN roastr_state.organizations o"
						 " ON o.id OPERATOR(pg_catalog.=) m.org_id%s)"
						 " ON m.org_id OPERATOR(pg_catalog.=) s.organization_id"
						 " AND m.user_id OPERATOR(pg_catalog.=) s.user_id",
						 schema->stamps ? " AND o.deleted_at IS NULL" : "");
	appendStringInfoString(&sql,
						   " WHERE s.user_id OPERATOR(pg_catalog.=) $1");
	return sql.data;
}

/*
 * get_read_plan
 *		The kept read plan for the installed schema, rebuilt when the table
 *		changed (a new relcache generation: ALTER EXTENSION UPDATE).  It
 *		never locks: rs_read_state takes the row lock with a statement of
 *		its own first.  Inside SPI.
 */
static SPIPlanPtr
get_read_plan(void)
{
	const RsSchema *schema = rs_schema();
	const RsLayout *l = schema->layout;

	if (read_plan != NULL &&
		(l != read_plan_layout || l->relid != read_plan_relid ||
		 l->natts != read_plan_natts))
	{
		SPI_freeplan(read_plan);
		read_plan = NULL;
	}
	if (read_plan == NULL)
	{
		Oid			argtypes[1] = {UUIDOID};

		read_plan = rs_spi_keep(read_query(schema), 1, argtypes);
		read_plan_layout = l;
		read_plan_relid = l->relid;
		read_plan_natts = l->natts;
	}
	return read_plan;
}

/*
 * rs_lock_state
 *		Lock the row of "user" until the end of the transaction (FOR NO KEY
 *		UPDATE); false when the user has no state.  Inside SPI, as the
 *		owner.  Every write of one user is decided under this lock.
 */
bool
rs_lock_state(const pg_uuid_t *user)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {UUIDOID};
	Datum		args[1];

	args[0] = UUIDPGetDatum(user);
	return rs_spi_run(rs_spi_kept(&plan,
								  "SELECT FROM roastr_state.state "
								  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
								  "FOR NO KEY UPDATE",
								  1, types),
					  args, NULL, false, 1, SPI_OK_SELECT,
					  "lock user state") > 0;
}

/* Column c (0-based, COL_*) of the read's row. */
static Datum
col(HeapTuple tup, TupleDesc desc, int c, bool *isnull)
{
	return SPI_getbinval(tup, desc, c + 1, isnull);
}

/*
 * read_limits
 *		The plan limits of a read's row (a missing plan row means no roasts,
 *		never "unlimited"), and the change stamps of the shared rows.
 */
static void
read_limits(HeapTuple tup, TupleDesc desc, RsUserState *st)
{
	bool		isnull;
	bool		found;
	Datum		d;

	found = DatumGetBool(col(tup, desc, COL_PLAN_FOUND, &isnull));
	d = col(tup, desc, COL_PLAN_LIMIT, &isnull);
	st->plan_limit_null = found && isnull;
	st->plan_limit = (found && !isnull) ? DatumGetInt32(d) : 0;

	found = DatumGetBool(col(tup, desc, COL_FREE_FOUND, &isnull));
	d = col(tup, desc, COL_FREE_LIMIT, &isnull);
	st->free_limit_null = found && isnull;
	st->free_limit = (found && !isnull) ? DatumGetInt32(d) : 0;

	st->plan_stamp = DatumGetInt64(col(tup, desc, COL_PLAN_STAMP, &isnull));
	st->free_stamp = DatumGetInt64(col(tup, desc, COL_FREE_STAMP, &isnull));
	st->org_stamp = DatumGetInt64(col(tup, desc, COL_ORG_STAMP, &isnull));
}

/*
 * read_extras
 *		The current organization and the wrapped data key of a read's row.
 *		In the memory context the state is read into.
 */
static void
read_extras(HeapTuple tup, TupleDesc desc, RsUserState *st)
{
	bool		isnull;
	Datum		d;

	d = col(tup, desc, COL_ORG_ROLE, &isnull);
	st->org_null = isnull;
	if (!isnull)
	{
		st->org_role = TextDatumGetCString(d);
		st->org_name = TextDatumGetCString(col(tup, desc, COL_ORG_NAME, &isnull));
		st->org_slug = TextDatumGetCString(col(tup, desc, COL_ORG_SLUG, &isnull));
	}

	d = col(tup, desc, COL_DEK_WRAPPED, &isnull);
	st->has_dek = !isnull;
	if (st->has_dek)
	{
		st->dek_wrapped = DatumGetByteaPCopy(d);
		st->dek_keygen = DatumGetInt32(col(tup, desc, COL_DEK_KEYGEN, &isnull));
		st->dek_master_id = DatumGetInt32(col(tup, desc, COL_DEK_MASTER, &isnull));
	}
}

/*
 * unpack_state
 *		Copy the read's one row into "st", in the current memory context
 *		(SPI's result dies at SPI_finish).
 */
static void
unpack_state(const pg_uuid_t *user, HeapTuple tup, TupleDesc desc,
			 RsUserState *st)
{
	bool		isnull;
	bool		fvn,
				ftn;
	Datum		fv,
				ft;

	memset(st, 0, sizeof(RsUserState));
	st->user_id = *user;
	st->version = DatumGetInt64(col(tup, desc, COL_VERSION, &isnull));
	st->updated_at = DatumGetTimestampTz(SPI_getbinval(tup, desc,
													   COL_UPDATED_AT + 1,
													   &isnull));
	fv = col(tup, desc, COL_FV, &fvn);
	ft = col(tup, desc, COL_FT, &ftn);
	/* the read names the column: field_log, or field_versions */
	if (strcmp(NameStr(TupleDescAttr(desc, COL_FV)->attname), "field_log") == 0)
		rs_read_field_log_pairs(fv, fvn, &st->log);
	else
		rs_read_field_log(fv, fvn, ft, ftn, &st->log);
	for (int f = 0; f < RS_NFIELDS; f++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, COL_FIELD0 + f);
		Datum		d = col(tup, desc, COL_FIELD0 + f,
							&st->nulls[f]);

		st->vals[f] = st->nulls[f] ? (Datum) 0 :
			datumCopy(d, att->attbyval, att->attlen);
	}
	read_limits(tup, desc, st);
	read_extras(tup, desc, st);
}

/*
 * rs_read_state
 *		Read a user's state into "st", allocated in "cxt".  False when the
 *		user has no state.  Must be called inside SPI, as the owner.
 *		"read_only" reads in the caller's snapshot; a function that has
 *		just written passes false to see its write.  "for_update" also
 *		locks the row until the end of the transaction.
 *
 * To lock, the row lock is taken with a statement of its own, then the
 * state is read in a fresh snapshot.  Locking inside the joined read would
 * let READ COMMITTED's recheck pair the new state row with the plan rows of
 * the old snapshot after waiting (a consumption racing an upgrade would see
 * no limit).
 */
bool
rs_read_state(const pg_uuid_t *user, RsUserState *st, MemoryContext cxt,
			  bool read_only, bool for_update)
{
	Datum		args[1];
	MemoryContext old;

	if (for_update)
	{
		if (!rs_lock_state(user))
			return false;
		read_only = false;
	}

	args[0] = UUIDPGetDatum(user);
	if (rs_spi_run(get_read_plan(), args, NULL, read_only, 1, SPI_OK_SELECT,
				   "read roastr_state.state") == 0)
		return false;
	if (SPI_tuptable->tupdesc->natts != READ_NCOLS)
		elog(ERROR, "unexpected column count %d in state read",
			 SPI_tuptable->tupdesc->natts);

	old = MemoryContextSwitchTo(cxt);
	unpack_state(user, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, st);
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * rs_settle
 *		Write down the pending moves of a user whose row the caller has
 *		locked and read into "st" -- what time moved (an expired trial, an
 *		ended cancellation, a new usage period) and what operators moved
 *		(a plan's limit, the current organization: the stamps of shared.c)
 *		-- in one UPDATE of that row; re-read it into "st" afterwards.  A
 *		current organization that is gone is cleared.  Must be called
 *		inside SPI, as the owner.  The UPDATE goes through the trigger:
 *		version bump, change log, notification.
 */
void
rs_settle(const pg_uuid_t *user, RsUserState *st, MemoryContext cxt)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_stamps = NULL;
	Oid			types[9] = {UUIDOID, TEXTOID, TEXTOID, INT4OID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID, UUIDOID};
	RsEffective eff;
	Datum		args[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	RsTriggerCall call = {0};
	SPIPlanPtr	update;

	rs_effective(st, GetCurrentTransactionStartTimestamp(), &eff);
	if (!rs_schema()->settles || !rs_needs_settle(st, &eff))
		return;
	args[0] = UUIDPGetDatum(user);
	args[1] = CStringGetTextDatum(eff.plan);
	args[2] = CStringGetTextDatum(eff.status);
	args[3] = Int32GetDatum(eff.used);
	if (eff.rolled_over)
	{
		/* a new period starts with nothing used */
		args[4] = TimestampTzGetDatum(eff.period_start);
		args[5] = TimestampTzGetDatum(eff.period_end);
	}
	else
	{
		args[4] = st->vals[F_USAGE_PERIOD_START];
		nulls[4] = st->nulls[F_USAGE_PERIOD_START] ? 'n' : ' ';
		args[5] = st->vals[F_USAGE_PERIOD_END];
		nulls[5] = st->nulls[F_USAGE_PERIOD_END] ? 'n' : ' ';
	}
	if (rs_schema()->stamps)
	{
		bool		gone = st->org_stamp == RS_ORG_STAMP_GONE;

		args[6] = Int64GetDatum(eff.limits_stamp);
		args[7] = Int64GetDatum(gone ? RS_ORG_STAMP_NONE : st->org_stamp);
		args[8] = gone ? (Datum) 0 : st->vals[F_ORG_ID];
		nulls[8] = (gone || st->nulls[F_ORG_ID]) ? 'n' : ' ';
		update = rs_spi_kept(&plan_stamps,
							 "UPDATE roastr_state.state SET plan = $2, subscription_status = $3, "
							 "monthly_roasts_used = $4, usage_period_start = $5, "
							 "usage_period_end = $6, limits_seen = $7, "
							 "organization_seen = $8, organization_id = $9 "
							 "WHERE user_id OPERATOR(pg_catalog.=) $1",
							 9, types);
	}
	else
		update = rs_spi_kept(&plan,
							 "UPDATE roastr_state.state SET plan = $2, subscription_status = $3, "
							 "monthly_roasts_used = $4, usage_period_start = $5, "
							 "usage_period_end = $6 "
							 "WHERE user_id OPERATOR(pg_catalog.=) $1",
							 6, types);
	call.user = user;
	call.st = st;
	rs_trigger_execute(update, args, nulls, &call, SPI_OK_UPDATE,
					   "settle user state", NULL);
	if (!rs_read_state(user, st, cxt, false, false))
		rs_no_state(user);
}

/*
 * rs_read_settled
 *		Read a user's state into "st" in the caller's memory context, or
 *		ERROR (PT404).  Connects to SPI as the owner itself; the caller has
 *		authorized the access.  When time or an operator has moved the
 *		state and the transaction may write, the row is locked and settled
 *		first, so the move is a versioned change every client's sync will
 *		see; in a read-only transaction (and on a standby) the values are
 *		computed all the same.
 */
void
rs_read_settled(const pg_uuid_t *user, RsUserState *st)
{
	MemoryContext cxt = CurrentMemoryContext;
	RsUserSwitch sw;
	bool		found;
	RsEffective eff;

	SPI_connect();
	rs_become_owner(&sw);
	found = rs_read_state(user, st, cxt, false, false);
	if (found && !XactReadOnly)
	{
		rs_effective(st, GetCurrentTransactionStartTimestamp(), &eff);
		if (rs_schema()->settles && rs_needs_settle(st, &eff))
		{
			found = rs_read_state(user, st, cxt, false, true);
			if (found)
				rs_settle(user, st, cxt);
		}
	}
	rs_restore_user(&sw);
	SPI_finish();
	if (!found)
		rs_no_state(user);
}
