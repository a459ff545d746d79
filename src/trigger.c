/*-------------------------------------------------------------------------
 *
 * trigger.c
 *	  The BEFORE INSERT OR UPDATE trigger of roastr_state.state: version
 *	  check, version bump, per-field change log and notification.
 *
 * Every write of a user's state, whether patch() or a backend's direct
 * UPDATE, passes through roastr_state_trigger, so there is exactly one
 * implementation of the rules:
 *
 *	- The row's "version" is the user's version.  An UPDATE that sets
 *	  version = N names N as its base version; one that leaves it alone
 *	  is last-write-wins.  A base newer than the row is an error.
 *	- A field conflicts when the UPDATE changes its value and the field was
 *	  changed after the base version (field_versions[field] > base).  Fields
 *	  the UPDATE does not change never conflict.  Conflicts raise PT409 with
 *	  a JSON detail naming every conflicting field.
 *	- Otherwise, if any field changed, the version becomes old + 1 and each
 *	  changed field's entry in field_versions/field_times is set to it.
 *	  That pair of arrays is the compacted change log: one entry per user
 *	  and field, superseded in place, so storage is bounded by
 *	  users x fields and "changes since cursor N" is one row read.
 *	- The change is recorded for notification at commit (notify.c).
 *	- Whenever a write computes a value from a shared row (the plan limits
 *	  of a plan change or a consumption, a new current organization), the
 *	  row records that shared row's change stamp (limits_seen,
 *	  organization_seen: see shared.c), logged like any field when it
 *	  moves, so an operator's change is settled exactly once per user.
 *
 * The C write paths (patch, consume_roasts, settling) run their UPDATE
 * through rs_trigger_execute, which tells the trigger what they already
 * know for that one statement: persona text they wrote to its own table,
 * values they have validated, the plan limits they read.  Nothing else
 * passes between them.
 *
 * Because the row lock is held from the version bump to commit, versions of
 * one user commit in order; a reader's snapshot therefore sees a prefix of
 * that user's history, and its row's version is a safe cursor.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/trigger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "access.h"
#include "fields.h"
#include "fieldlog.h"
#include "json_util.h"
#include "notify.h"
#include "relation.h"
#include "rowcheck.h"
#include "shared.h"
#include "shown.h"
#include "spi_util.h"
#include "trigger.h"
#include "usage.h"
#include "user_state.h"

/*
 * What the caller of an UPDATE of one user's row told the trigger, and what
 * the trigger did (rs_trigger_execute).  Valid only while that statement
 * runs, in the transaction that set it.
 */
typedef struct RsApplyContext
{
	bool		active;
	TransactionId xid;
	pg_uuid_t	user;
	uint32		persona_changed;	/* persona text patch() has written */
	uint32		validated;		/* values the caller has validated */
	bool		has_limits;		/* the caller read the plan limits */
	char	   *plan;			/* ... for this stored plan */
	bool		plan_limit_null;
	int32		plan_limit;
	bool		free_limit_null;
	int32		free_limit;
	int64		plan_stamp;		/* ... and their change stamps */
	int64		free_stamp;
} RsApplyContext;

static RsApplyContext apply_cxt;
static RsLastApply last_apply;

/*
 * rs_trigger_execute
 *		Run "plan", an UPDATE of the row of call->user, telling the trigger
 *		what the caller knows (see RsTriggerCall): the persona fields it has
 *		just written (their text lives in another table, so the row shows no
 *		change of them), the fields whose new values it has validated (the
 *		trigger does not validate them again), and the state it read under
 *		the row lock, whose plan limits the trigger may use instead of
 *		reading them again.  What it tells never outlives the statement,
 *		even when it fails.  ERROR unless SPI answers "expect" ("what"
 *		completes the internal message).  "applied" (or NULL) gets what the
 *		trigger did to the row; its "valid" is false when the trigger did
 *		not run.  Returns the number of rows processed.  Inside SPI.
 */
uint64
rs_trigger_execute(SPIPlanPtr plan, Datum *args, const char *nulls,
				   const RsTriggerCall *call, int expect, const char *what,
				   RsLastApply *applied)
{
	const RsUserState *st = call->st;
	uint64		processed;

	memset(&last_apply, 0, sizeof(last_apply));
	memset(&apply_cxt, 0, sizeof(apply_cxt));
	apply_cxt.xid = GetTopTransactionId();
	apply_cxt.user = *call->user;
	apply_cxt.persona_changed = call->persona_changed;
	apply_cxt.validated = call->validated;
	if (st != NULL && !st->nulls[F_SUB_PLAN])
	{
		apply_cxt.has_limits = true;
		apply_cxt.plan = TextDatumGetCString(st->vals[F_SUB_PLAN]);
		apply_cxt.plan_limit_null = st->plan_limit_null;
		apply_cxt.plan_limit = st->plan_limit;
		apply_cxt.free_limit_null = st->free_limit_null;
		apply_cxt.free_limit = st->free_limit;
		apply_cxt.plan_stamp = st->plan_stamp;
		apply_cxt.free_stamp = st->free_stamp;
	}
	apply_cxt.active = true;
	PG_TRY();
	{
		processed = rs_spi_run(plan, args, nulls, false, 0, expect, what);
	}
	PG_FINALLY();
	{
		apply_cxt.active = false;
		apply_cxt.persona_changed = 0;
		apply_cxt.validated = 0;
	}
	PG_END_TRY();
	if (applied != NULL)
		*applied = last_apply;
	return processed;
}

/* The context rs_trigger_execute set for "user", or NULL. */
static const RsApplyContext *
apply_context(const pg_uuid_t *user)
{
	if (!apply_cxt.active ||
		apply_cxt.xid != GetTopTransactionIdIfAny() ||
		memcmp(apply_cxt.user.data, user->data, UUID_LEN) != 0)
		return NULL;
	return &apply_cxt;
}

/*
 * rs_first_version
 *		The version a new row of "user" starts at: 1, or one above the last
 *		version of a deleted row of the same user (roastr_state.deleted_users,
 *		filled by an AFTER DELETE trigger), when the schema has that table.
 */
static int64
rs_first_version(const pg_uuid_t *user)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[1] = {UUIDOID};
	Datum		args[1];
	int64		first = 1;
	Oid			nsp = get_namespace_oid(ROASTR_SCHEMA, false);

	if (!OidIsValid(get_relname_relid("deleted_users", nsp)))
		return 1;
	SPI_connect();
	args[0] = UUIDPGetDatum(user);
	if (rs_spi_run(rs_spi_kept(&plan,
							   "SELECT last_version OPERATOR(pg_catalog.+) 1 "
							   "FROM roastr_state.deleted_users "
							   "WHERE user_id OPERATOR(pg_catalog.=) $1",
							   1, types),
				   args, NULL, false, 1, SPI_OK_SELECT,
				   "read the last version of a deleted user") == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			first = DatumGetInt64(d);
	}
	SPI_finish();
	return first;
}

/*
 * trigger_restore
 *		An INSERT that brings its own change log (field_versions not empty):
 *		pg_dump's COPY of a state row.  The row keeps its version, log and
 *		creation time, so versions, cursors and the change log survive a
 *		dump and restore; it is checked for consistency instead.  Only roles
 *		that may INSERT into the table directly (its owner, superusers) can
 *		get here: the service has no INSERT privilege.
 */
static HeapTuple
trigger_restore(TriggerData *td, const RsLayout *l, Datum *vals, bool *nulls)
{
	Relation	rel = td->tg_relation;
	RsFieldLog	log;
	int64		version = DatumGetInt64(vals[l->att_version - 1]);

	if (l->att_log != 0 &&
		!rs_field_log_well_formed(vals[l->att_log - 1], nulls[l->att_log - 1]))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("malformed change log in restored row of user %s",
					   rs_uuid_to_cstring(DatumGetUUIDP(vals[l->att_user_id - 1]))),
				errdetail("field_log must be a one-dimensional bigint array of (version, time) pairs without NULLs."),
				errtable(rel));
	rs_row_read_log(l, vals, nulls, &log);
	for (int f = 0; f < RS_NFIELDS; f++)
	{
		if (log.version[f] < 0 || log.version[f] > version)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("inconsistent change log in restored row of user %s",
						   rs_uuid_to_cstring(DatumGetUUIDP(vals[l->att_user_id - 1]))),
					errdetail("Field \"%s\" has version %lld, the row has version %lld.",
							  rs_fields[f].path, (long long) log.version[f],
							  (long long) version),
					errtable(rel));
	}
	last_apply.valid = true;
	last_apply.old_version = 0;
	last_apply.new_version = version;
	last_apply.changed = 0;
	return td->tg_trigtuple;
}

/*
 * new_state
 *		The state "st" as the new row shows it (field values only: no
 *		limits, stamps, organization or data key).
 */
static void
new_state(const RsLayout *l, const pg_uuid_t *user, Datum *newv, bool *newn,
		  RsUserState *st)
{
	memset(st, 0, sizeof(RsUserState));
	st->user_id = *user;
	for (int f = 0; f < RS_NFIELDS; f++)
	{
		AttrNumber	a = l->att_field[f];

		st->nulls[f] = a == 0 || newn[a - 1];
		st->vals[f] = st->nulls[f] ? (Datum) 0 : newv[a - 1];
	}
	st->org_null = st->nulls[F_ORG_ID];
}

/*
 * insert_seen
 *		The change stamps a new row records (see shared.c): its effective
 *		plan's, and its organization's (a row inserted naming one it cannot
 *		show records none, so the first read clears it).  Fills two
 *		columns and values; returns 2.
 */
static int
insert_seen(const RsLayout *l, const pg_uuid_t *user, Datum *vals,
			bool *nulls, int *cols, Datum *newvals)
{
	RsUserState st;
	RsEffective eff;
	int64		org_stamp = RS_ORG_STAMP_NONE;

	new_state(l, user, vals, nulls, &st);
	rs_shared_limits(&st);
	rs_effective(&st, GetCurrentTransactionStartTimestamp(), &eff);
	if (!st.nulls[F_ORG_ID])
		org_stamp = rs_shared_org_stamp(DatumGetUUIDP(st.vals[F_ORG_ID]), user);
	cols[0] = l->att_field[F_LIMITS_SEEN];
	newvals[0] = Int64GetDatum(eff.limits_stamp);
	cols[1] = l->att_field[F_ORG_SEEN];
	newvals[1] = Int64GetDatum(org_stamp == RS_ORG_STAMP_GONE ?
							   RS_ORG_STAMP_NONE : org_stamp);
	return 2;
}

/*
 * trigger_insert
 *		A new user row (ensure_user, or a direct INSERT by the owner):
 *		version 1 (or, for a user deleted before, one above the last
 *		version it had, so that no device's cursor can skip the new
 *		state), every field logged at that version.  A row that carries a
 *		change log is a restore (see trigger_restore).
 */
static HeapTuple
trigger_insert(TriggerData *td, const RsLayout *l)
{
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tup = td->tg_trigtuple;
	Datum	   *vals = palloc(desc->natts * sizeof(Datum));
	bool	   *nulls = palloc(desc->natts * sizeof(bool));
	RsFieldLog	log;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	int64		first;
	int			cols[8];
	Datum		newvals[8];
	bool		newnulls[8] = {false, false, false, false, false, false, false, false};
	int			ncols = 0;

	heap_deform_tuple(tup, desc, vals, nulls);

	/*
	 * A restore keeps what an earlier release accepted, even if validation
	 * has become stricter since.
	 */
	if (!rs_row_log_empty(l, vals, nulls))
		return trigger_restore(td, l, vals, nulls);

	/* a user deleted before starts above every version it ever had */
	first = rs_first_version(DatumGetUUIDP(vals[l->att_user_id - 1]));
	for (int f = 0; f < RS_NFIELDS; f++)
	{
		AttrNumber	a = l->att_field[f];

		if (a != 0)
			rs_validate_value(&rs_fields[f], vals[a - 1], nulls[a - 1]);
		log.version[f] = first;
		log.time[f] = now;
	}

	cols[ncols] = l->att_version;
	newvals[ncols++] = Int64GetDatum(first);
	cols[ncols] = l->att_updated_at;
	newvals[ncols++] = TimestampTzGetDatum(now);
	cols[ncols] = l->att_created_at;
	newvals[ncols++] = TimestampTzGetDatum(now);
	rs_row_log_columns(l, &log, cols, newvals, &ncols);
	if (l->att_field[F_LIMITS_SEEN] != 0 && l->att_field[F_ORG_SEEN] != 0)
		ncols += insert_seen(l, DatumGetUUIDP(vals[l->att_user_id - 1]), vals,
							 nulls, cols + ncols, newvals + ncols);

	last_apply.valid = true;
	last_apply.old_version = 0;
	last_apply.new_version = first;
	last_apply.changed = (1U << RS_NFIELDS) - 1;

	return heap_modify_tuple_by_cols(tup, desc, ncols, cols, newvals, newnulls);
}

/*
 * state_limits
 *		The plan limits and their change stamps for "st": from the
 *		caller's read when it gave one for the same stored plan (or the
 *		free plan), otherwise from the table (shared.c).  Limits and
 *		stamps always come from one read.
 */
static void
state_limits(const RsApplyContext *cxt, RsUserState *st)
{
	bool		stored_free = rs_text_equals(st->vals[F_SUB_PLAN],
											 st->nulls[F_SUB_PLAN], "free");

	if (cxt != NULL && cxt->has_limits &&
		(stored_free || rs_text_equals(st->vals[F_SUB_PLAN],
									   st->nulls[F_SUB_PLAN], cxt->plan)))
	{
		st->free_limit_null = cxt->free_limit_null;
		st->free_limit = cxt->free_limit;
		st->free_stamp = cxt->free_stamp;
		st->plan_limit_null = stored_free ? cxt->free_limit_null :
			cxt->plan_limit_null;
		st->plan_limit = stored_free ? cxt->free_limit : cxt->plan_limit;
		st->plan_stamp = stored_free ? cxt->free_stamp : cxt->plan_stamp;
	}
	else
		rs_shared_limits(st);
}

/*
 * payload_values
 *		The JSON text of the shown paths "named" that a notification
 *		carries, computed from the new row's state "st" (shown.c), NULL
 *		for the others.  "st" has its limits when "named" needs them.
 */
static void
payload_values(const RsUserState *st, uint32 named, char **values)
{
	uint32		shown = 0;

	for (int s = 0; s < RS_NSHOWN; s++)
		if ((named & RS_SHOWN_BIT(s)) && !rs_shown_withheld(s))
			shown |= RS_SHOWN_BIT(s);
	memset(values, 0, sizeof(char *) * RS_NSHOWN);
	if (shown != 0)
		rs_shown_payload_values(st, shown, values);
}

/*
 * The seen columns a write sets (shared.c): their attribute numbers and
 * values, applied to the row the trigger returns.
 */
typedef struct RsSeenCols
{
	int			n;
	int			cols[2];
	Datum		vals[2];
} RsSeenCols;

/*
 * keep_seen
 *		Make the new row record "stamp" in the seen column of field "f";
 *		returns "changed" with f's bit set when the stamp moved, cleared
 *		when it did not.
 */
static uint32
keep_seen(const RsLayout *l, int f, int64 stamp, Datum *oldv, bool *oldn,
		  Datum *newv, bool *newn, uint32 changed, RsSeenCols *seen)
{
	AttrNumber	a = l->att_field[f];

	newv[a - 1] = Int64GetDatum(stamp);
	newn[a - 1] = false;
	seen->cols[seen->n] = a;
	seen->vals[seen->n] = newv[a - 1];
	seen->n++;
	if (oldn[a - 1] || DatumGetInt64(oldv[a - 1]) != stamp)
		return changed | RS_FIELD_BIT(f);
	return changed & ~RS_FIELD_BIT(f);
}

/*
 * maintain_seen
 *		When the write computes a shown value from a shared row -- the plan
 *		limits (a plan change, a consumption), a new current organization
 *		("org_stamp", from the membership check) -- record that row's
 *		stamp (see the file header).  "st" is the new row's state; it gets
 *		the limits when they are read here, and *have_limits says so.
 *		Returns the changed fields.
 */
static uint32
maintain_seen(const RsLayout *l, const RsApplyContext *cxt, RsUserState *st,
			  bool *have_limits, int64 org_stamp, Datum *oldv, bool *oldn,
			  Datum *newv, bool *newn, uint32 changed, RsSeenCols *seen)
{
	if (rs_shown_named(changed) & RS_SHOWN_NEEDS_LIMITS)
	{
		RsEffective eff;

		state_limits(cxt, st);
		*have_limits = true;
		rs_effective(st, GetCurrentTransactionStartTimestamp(), &eff);
		changed = keep_seen(l, F_LIMITS_SEEN, eff.limits_stamp, oldv, oldn,
							newv, newn, changed, seen);
	}
	if (changed & RS_FIELD_BIT(F_ORG_ID))
		changed = keep_seen(l, F_ORG_SEEN, org_stamp, oldv, oldn, newv, newn,
							changed, seen);
	return changed;
}

/*
 * diff_fields
 *		The fields whose value the UPDATE changes (validated, unless the
 *		caller said it validated them for this statement), plus the persona
 *		fields the caller wrote; and among them, in *conflicts, those
 *		changed after the base version.
 */
static uint32
diff_fields(const RsLayout *l, const RsApplyContext *cxt,
			const RsFieldLog *log, int64 cur, int64 base, Datum *oldv,
			bool *oldn, Datum *newv, bool *newn, uint32 *conflicts)
{
	uint32		changed = 0;
	uint32		validated = cxt != NULL ? cxt->validated : 0;

	for (int f = 0; f < RS_NFIELDS; f++)
	{
		const RsField *fd = &rs_fields[f];
		AttrNumber	a = l->att_field[f];

		if (a == 0)
			continue;
		if (rs_values_equal(fd, oldv[a - 1], oldn[a - 1],
							newv[a - 1], newn[a - 1]))
			continue;
		if (!(validated & RS_FIELD_BIT(f)))
			rs_validate_value(fd, newv[a - 1], newn[a - 1]);
		changed |= RS_FIELD_BIT(f);
	}

	/* persona text that patch() has just written for this user */
	if (cxt != NULL)
		changed |= cxt->persona_changed;

	*conflicts = 0;
	if (base != cur)
	{
		for (int f = 0; f < RS_NFIELDS; f++)
			if ((changed & RS_FIELD_BIT(f)) && log->version[f] > base)
				*conflicts |= RS_FIELD_BIT(f);
	}
	return changed;
}

/*
 * unchanged_row
 *		The row of an UPDATE that changed no field: no new version, and
 *		neither the base version nor a new time left behind.
 */
static HeapTuple
unchanged_row(TriggerData *td, const RsLayout *l, int64 cur, Datum *oldv,
			  const RsSeenCols *seen)
{
	int			cols[4];
	Datum		modvals[4];
	bool		modnulls[4] = {false, false, false, false};
	int			n = 2;

	last_apply.new_version = cur;
	cols[0] = l->att_version;
	modvals[0] = Int64GetDatum(cur);
	cols[1] = l->att_updated_at;
	modvals[1] = oldv[l->att_updated_at - 1];
	for (int i = 0; i < seen->n; i++, n++)
	{
		cols[n] = seen->cols[i];
		modvals[n] = seen->vals[i];
	}
	return heap_modify_tuple_by_cols(td->tg_newtuple,
									 RelationGetDescr(td->tg_relation),
									 n, cols, modvals, modnulls);
}

/*
 * versioned_row
 *		The row of an UPDATE that changed fields: version old + 1, those
 *		fields logged at it, and the change recorded for notification at
 *		commit (named by every shown path it moves).
 */
static HeapTuple
versioned_row(TriggerData *td, const RsLayout *l, const pg_uuid_t *user,
			  const RsApplyContext *cxt, int64 cur, uint32 changed,
			  RsFieldLog *log, RsUserState *st, bool have_limits,
			  const RsSeenCols *seen)
{
	int64		newver = cur + 1;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	uint32		named;
	char	   *values[RS_NSHOWN];
	int			cols[7];
	Datum		modvals[7];
	bool		modnulls[7] = {false, false, false, false, false, false, false};
	int			ncols = 0;

	for (int f = 0; f < RS_NFIELDS; f++)
	{
		if (changed & RS_FIELD_BIT(f))
		{
			log->version[f] = newver;
			log->time[f] = now;
		}
	}
	named = rs_shown_named(changed);
	Assert(named != 0);			/* every stored field is shown somewhere */
	if (!have_limits && (named & RS_SHOWN_NEEDS_LIMITS))
		state_limits(cxt, st);
	payload_values(st, named, values);

	cols[ncols] = l->att_version;
	modvals[ncols++] = Int64GetDatum(newver);
	cols[ncols] = l->att_updated_at;
	modvals[ncols++] = TimestampTzGetDatum(now);
	rs_row_log_columns(l, log, cols, modvals, &ncols);
	for (int i = 0; i < seen->n; i++)
	{
		cols[ncols] = seen->cols[i];
		modvals[ncols++] = seen->vals[i];
	}

	rs_notify_record(user, newver, changed, named, values);
	last_apply.new_version = newver;

	return heap_modify_tuple_by_cols(td->tg_newtuple,
									 RelationGetDescr(td->tg_relation),
									 ncols, cols, modvals, modnulls);
}

/*
 * trigger_update
 *		See the file header: check the maintained columns and the base
 *		version, find the changed fields and the conflicts, check the
 *		subscription lifecycle and the organization, then version and log
 *		the row.  Runs in the per-tuple memory context.
 */
static HeapTuple
trigger_update(TriggerData *td, const RsLayout *l)
{
	Relation	rel = td->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *oldv = palloc(desc->natts * sizeof(Datum));
	bool	   *oldn = palloc(desc->natts * sizeof(bool));
	Datum	   *newv = palloc(desc->natts * sizeof(Datum));
	bool	   *newn = palloc(desc->natts * sizeof(bool));
	int64		cur;
	int64		base;
	uint32		changed;
	uint32		conflicts;
	RsFieldLog	log;
	const pg_uuid_t *user;
	const RsApplyContext *cxt;
	int64		org_stamp = RS_ORG_STAMP_NONE;
	RsUserState st;
	bool		have_limits = false;
	RsSeenCols	seen = {0};
	AttrNumber	logatts[2];
	int			nlog;

	heap_deform_tuple(td->tg_trigtuple, desc, oldv, oldn);
	heap_deform_tuple(td->tg_newtuple, desc, newv, newn);

	rs_check_maintained(rel, l, l->att_user_id, oldv, oldn, newv, newn);
	nlog = rs_row_log_attnums(l, logatts);
	for (int i = 0; i < nlog; i++)
		rs_check_maintained(rel, l, logatts[i], oldv, oldn, newv, newn);
	rs_check_maintained(rel, l, l->att_created_at, oldv, oldn, newv, newn);

	cur = DatumGetInt64(oldv[l->att_version - 1]);
	base = rs_check_base_version(rel, l, cur, newv, newn);

	rs_row_read_log(l, oldv, oldn, &log);
	user = DatumGetUUIDP(oldv[l->att_user_id - 1]);
	cxt = apply_context(user);

	changed = diff_fields(l, cxt, &log, cur, base, oldv, oldn, newv, newn,
						  &conflicts);
	if (cxt != NULL)
		apply_cxt.persona_changed = 0;	/* told once, for one row */

	if (conflicts)
		rs_raise_conflict(rel, l, cur, base, conflicts, &log, oldv, oldn);

	if (changed & RS_FIELD_BIT(F_SUB_STATUS))
		rs_check_status_move(rel, l, oldv, oldn, newv, newn);
	if ((changed & RS_FIELD_BIT(F_ORG_ID)) &&
		!newn[l->att_field[F_ORG_ID] - 1])
		org_stamp = rs_check_membership(rel, l, user,
										DatumGetUUIDP(newv[l->att_field[F_ORG_ID] - 1]));

	new_state(l, user, newv, newn, &st);
	if (changed != 0 && l->att_field[F_LIMITS_SEEN] != 0 &&
		l->att_field[F_ORG_SEEN] != 0)
		changed = maintain_seen(l, cxt, &st, &have_limits, org_stamp,
								oldv, oldn, newv, newn, changed, &seen);

	last_apply.valid = true;
	last_apply.old_version = cur;
	last_apply.changed = changed;

	if (changed == 0)
		return unchanged_row(td, l, cur, oldv, &seen);
	return versioned_row(td, l, user, cxt, cur, changed, &log, &st,
						 have_limits, &seen);
}

PG_FUNCTION_INFO_V1(roastr_state_trigger);

/*
 * roastr_state_trigger
 *		BEFORE INSERT OR UPDATE ... FOR EACH ROW on roastr_state.state.
 */
Datum
roastr_state_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const RsLayout *l;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("function \"state_trigger\" was not called by trigger manager"));
	if (!TRIGGER_FIRED_BEFORE(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("function \"state_trigger\" must be fired BEFORE ... FOR EACH ROW"));

	l = rs_layout(td->tg_relation);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		return PointerGetDatum(trigger_insert(td, l));
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		return PointerGetDatum(trigger_update(td, l));

	ereport(ERROR,
			errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			errmsg("function \"state_trigger\" must be fired for INSERT or UPDATE"));
	return (Datum) 0;			/* keep compiler quiet */
}
