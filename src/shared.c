/*-------------------------------------------------------------------------
 *
 * shared.c
 *	  Changes of shared rows that many users' states are computed from: a
 *	  plan's monthly limit, an organization's name or existence, a
 *	  membership's role.
 *
 * Design (0.7.0).  Such a change never writes the states it moves.  Its
 * transaction writes the shared row only, giving it a new change stamp
 * from the sequence roastr_state.shared_stamp, and announces itself once,
 * on the channel roastr_state_broadcast (notify.c).  It takes no lock a
 * user's writer needs: writers read the shared rows, they never lock them.
 *
 * Each state row records the stamps its change log shows: limits_seen,
 * the stamp of its effective plan's row, and organization_seen, the sum of
 * the stamps of its current organization's row and of its membership row
 * (both only grow, so the sum changes whenever either does; 0 without a
 * current organization).  A read computes the stamps the state depends on
 * now, in the same snapshot as the state (read.c); when one differs from
 * the recorded one, a shared move is pending (usage.c, rs_shared_pending),
 * and it is handled exactly like a time-driven move:
 *
 *	- on a writable primary the first call that may write locks the user's
 *	  row and settles it (read.c, rs_settle): one UPDATE of that one row,
 *	  through the state trigger, writes the new stamps; the trigger logs
 *	  the hidden fields usage.limits_seen / organization.seen at the new
 *	  version, which gives usage.monthly_roasts_limit and
 *	  usage.remaining_roasts (or organization.*) that version, so a sync
 *	  from any older cursor reports them, and the user's own notification
 *	  names them.  A deleted organization, or one the user left, is cleared
 *	  from organization_id in the same UPDATE;
 *	- in a read-only transaction, and on a standby, the values are
 *	  computed from the shared rows all the same and written by the next
 *	  writable call.
 *
 * So every change of one user's state is one transaction on that user's
 * row, and no transaction writes several users' rows.
 *
 * The trigger keeps the recorded stamps right whenever it computes a
 * shown value from a shared row anyway (a plan change, a consumption, a
 * new current organization): it records the stamp of the row it read
 * (trigger.c).  Stamps and limits are always read together, in one
 * statement, so a recorded stamp never belongs to another limit than the
 * one logged.
 *
 * An UPDATE of roastr_state.plans that sets changed_stamp itself keeps it:
 * that is a restore (pg_dump's COPY, through plans_upsert), whose state
 * rows come with the stamps they recorded.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/shared.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/rel.h"

#include "access.h"
#include "fields.h"
#include "json_util.h"
#include "notify.h"
#include "relation.h"
#include "shared.h"
#include "spi_util.h"

/*
 * rs_shared_limits
 *		Read the monthly limits of the plan stored in "st" and of the free
 *		plan, with their change stamps, into "st", in one statement (a
 *		missing plan row means no roasts, never unlimited).  Connects to
 *		SPI as the owner itself.
 */
void
rs_shared_limits(RsUserState *st)
{
	static SPIPlanPtr plan_stamps = NULL;
	static SPIPlanPtr plan_old = NULL;
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	RsUserSwitch sw;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	bool		found;
	Datum		d;
	SPIPlanPtr	plan;

	SPI_connect();
	rs_become_owner(&sw);
	if (rs_schema()->stamps)
		plan = rs_spi_kept(&plan_stamps,
						   "SELECT pl.monthly_roasts_limit, pl.plan IS NOT NULL, "
						   "fr.monthly_roasts_limit, fr.plan IS NOT NULL, "
						   "COALESCE(pl.changed_stamp, 0), COALESCE(fr.changed_stamp, 0) "
						   "FROM (SELECT) AS one "
						   "LEFT JOIN roastr_state.plans pl "
						   "ON pl.plan OPERATOR(pg_catalog.=) $1 "
						   "LEFT JOIN roastr_state.plans fr "
						   "ON fr.plan OPERATOR(pg_catalog.=) 'free'",
						   1, types);
	else
		plan = rs_spi_kept(&plan_old,
						   "SELECT pl.monthly_roasts_limit, pl.plan IS NOT NULL, "
						   "fr.monthly_roasts_limit, fr.plan IS NOT NULL, "
						   "0::pg_catalog.int8, 0::pg_catalog.int8 "
						   "FROM (SELECT) AS one "
						   "LEFT JOIN roastr_state.plans pl "
						   "ON pl.plan OPERATOR(pg_catalog.=) $1 "
						   "LEFT JOIN roastr_state.plans fr "
						   "ON fr.plan OPERATOR(pg_catalog.=) 'free'",
						   1, types);
	args[0] = st->vals[F_SUB_PLAN];
	if (rs_spi_run(plan, args, NULL, false, 1, SPI_OK_SELECT,
				   "read the plan limits") != 1)
		elog(ERROR, "could not read the plan limits");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	found = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
	d = SPI_getbinval(tup, desc, 1, &isnull);
	st->plan_limit_null = found && isnull;
	st->plan_limit = (found && !isnull) ? DatumGetInt32(d) : 0;
	found = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
	d = SPI_getbinval(tup, desc, 3, &isnull);
	st->free_limit_null = found && isnull;
	st->free_limit = (found && !isnull) ? DatumGetInt32(d) : 0;
	st->plan_stamp = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
	st->free_stamp = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
	rs_restore_user(&sw);
	SPI_finish();
}

/*
 * rs_shared_org_stamp
 *		The organization stamp of a state of "user" whose current
 *		organization is "org" (NULL: none): RS_ORG_STAMP_NONE without one,
 *		RS_ORG_STAMP_GONE when the user is not a member of it or it is
 *		deleted, else the sum of the organization's and the membership's
 *		change stamps.  Before 0.7.0's schema, 0 for every membership.
 *		Connects to SPI as the owner itself.
 */
int64
rs_shared_org_stamp(const pg_uuid_t *org, const pg_uuid_t *user)
{
	static SPIPlanPtr plan_stamps = NULL;
	static SPIPlanPtr plan_old = NULL;
	Oid			types[2] = {UUIDOID, UUIDOID};
	Datum		args[2];
	RsUserSwitch sw;
	SPIPlanPtr	plan;
	int64		stamp = RS_ORG_STAMP_GONE;
	bool		isnull;

	if (org == NULL)
		return RS_ORG_STAMP_NONE;
	SPI_connect();
	rs_become_owner(&sw);
	if (rs_schema()->stamps)
		plan = rs_spi_kept(&plan_stamps,
						   "SELECT o.changed_stamp OPERATOR(pg_catalog.+) m.changed_stamp "
						   "FROM roastr_state.organization_members m "
						   "JOIN roastr_state.organizations o "
						   "ON o.id OPERATOR(pg_catalog.=) m.org_id AND o.deleted_at IS NULL "
						   "WHERE m.org_id OPERATOR(pg_catalog.=) $1 "
						   "AND m.user_id OPERATOR(pg_catalog.=) $2",
						   2, types);
	else
		plan = rs_spi_kept(&plan_old,
						   "SELECT 0::pg_catalog.int8 "
						   "FROM roastr_state.organization_members m "
						   "WHERE m.org_id OPERATOR(pg_catalog.=) $1 "
						   "AND m.user_id OPERATOR(pg_catalog.=) $2",
						   2, types);
	args[0] = UUIDPGetDatum(org);
	args[1] = UUIDPGetDatum(user);
	if (rs_spi_run(plan, args, NULL, false, 1, SPI_OK_SELECT,
				   "read the organization stamp") == 1)
		stamp = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1,
											&isnull));
	rs_restore_user(&sw);
	SPI_finish();
	return stamp;
}

/*
 * rs_shared_broadcast_org
 *		Announce, at commit, a change of organization "org" that moves its
 *		members' states: {"type": "organization", "id": …, "change": …}
 *		on roastr_state_broadcast.  Its name and the members are not in
 *		the payload (anyone who may connect can LISTEN).
 */
void
rs_shared_broadcast_org(const pg_uuid_t *org, const char *change)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"type\":\"organization\",\"id\":\"%s\",\"change\":",
					 rs_uuid_to_cstring(org));
	escape_json(&buf, change);
	appendStringInfoChar(&buf, '}');
	rs_notify_broadcast(buf.data);
}

/*
 * next_stamp
 *		A new change stamp, from roastr_state.shared_stamp, taken as the
 *		owner (the caller may update the plans without any right on the
 *		sequence).
 */
static int64
next_stamp(void)
{
	static SPIPlanPtr plan = NULL;
	RsUserSwitch sw;
	bool		isnull;
	int64		stamp;

	SPI_connect();
	rs_become_owner(&sw);
	rs_spi_run(rs_spi_kept(&plan,
						   "SELECT pg_catalog.nextval('roastr_state.shared_stamp')",
						   0, NULL),
			   NULL, NULL, false, 1, SPI_OK_SELECT, "take a change stamp");
	stamp = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	rs_restore_user(&sw);
	SPI_finish();
	return stamp;
}

/* Attribute "name" of the plans table, or a trigger error. */
static int
plans_att(Relation rel, const char *name, Oid typid)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			att = SPI_fnumber(desc, name);

	if (att <= 0 || TupleDescAttr(desc, att - 1)->atttypid != typid)
		ereport(ERROR,
				errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				errmsg("relation \"%s\" does not have the columns of roastr_state.plans",
					   RelationGetRelationName(rel)),
				errtable(rel));
	return att;
}

PG_FUNCTION_INFO_V1(roastr_state_plans_changed);

/*
 * roastr_state_plans_changed
 *		BEFORE UPDATE ... FOR EACH ROW on roastr_state.plans.  A changed
 *		monthly limit gets a new change stamp and one broadcast
 *		{"type": "plan_limits", "plan": …, "monthly_roasts_limit": …};
 *		the states it moves are settled by their users' own calls (see the
 *		top of this file).  An UPDATE that sets the stamp itself keeps it
 *		(a restore).  Nothing else is written: no lock a writer of a user
 *		needs is taken.
 */
Datum
roastr_state_plans_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	int			att_plan,
				att_limit,
				att_stamp;
	Datum		old_limit,
				new_limit;
	bool		old_null,
				new_null,
				isnull;
	int64		stamp;
	StringInfoData buf;
	int			cols[1];
	Datum		vals[1];
	bool		nulls[1] = {false};

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("function \"plans_changed\" was not called by trigger manager"));
	if (!TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("function \"plans_changed\" must be fired BEFORE UPDATE ... FOR EACH ROW"));

	rel = td->tg_relation;
	desc = RelationGetDescr(rel);
	att_plan = plans_att(rel, "plan", TEXTOID);
	att_limit = plans_att(rel, "monthly_roasts_limit", INT4OID);
	att_stamp = plans_att(rel, "changed_stamp", INT8OID);

	/* an explicit stamp: a restore brings the one its states recorded */
	if (DatumGetInt64(heap_getattr(td->tg_trigtuple, att_stamp, desc, &isnull)) !=
		DatumGetInt64(heap_getattr(td->tg_newtuple, att_stamp, desc, &isnull)))
		return PointerGetDatum(td->tg_newtuple);

	old_limit = heap_getattr(td->tg_trigtuple, att_limit, desc, &old_null);
	new_limit = heap_getattr(td->tg_newtuple, att_limit, desc, &new_null);
	if (old_null == new_null &&
		(new_null || DatumGetInt32(old_limit) == DatumGetInt32(new_limit)))
		return PointerGetDatum(td->tg_newtuple);

	stamp = next_stamp();
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"type\":\"plan_limits\",\"plan\":");
	escape_json(&buf, TextDatumGetCString(heap_getattr(td->tg_newtuple, att_plan,
													   desc, &isnull)));
	if (new_null)
		appendStringInfoString(&buf, ",\"monthly_roasts_limit\":null}");
	else
		appendStringInfo(&buf, ",\"monthly_roasts_limit\":%d}",
						 DatumGetInt32(new_limit));
	rs_notify_broadcast(buf.data);

	cols[0] = att_stamp;
	vals[0] = Int64GetDatum(stamp);
	return PointerGetDatum(heap_modify_tuple_by_cols(td->tg_newtuple, desc, 1,
													 cols, vals, nulls));
}
