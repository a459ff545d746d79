/*-------------------------------------------------------------------------
 *
 * state.c
 *	  The SQL functions over a user's state: ensure_user, state_full,
 *	  state_sync and patch.
 *
 * Reads are one kept SPI plan that returns the state row, the persona row
 * and the plan limits in one snapshot, so a sync's cursor and its changes
 * always agree.  Writes are UPDATEs of roastr_state.state through kept
 * plans (one per set of patched fields); the row trigger (trigger.c) does
 * the version check, the bump, the change log and the notification, so a
 * patch and a backend's direct UPDATE follow exactly the same rules.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/state.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sodium.h>

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "crypto.h"
#include "roastr_state.h"
#include "shown.h"

/* Mutation outcomes are kept this long for retries. */
#define MUTATION_RETENTION	"24 hours"

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
#define READ_NCOLS		(COL_PLAN_LIMIT + 10)

/* One entry of the output: a shown path, its value and version. */
typedef struct OutItem
{
	RsShownId	id;
	Datum		value;
	bool		isnull;
	int64		version;
	TimestampTz time;
} OutItem;



static SPIPlanPtr insert_user_plan = NULL;
static SPIPlanPtr refresh_user_plan = NULL;
static SPIPlanPtr mut_lock_plan = NULL;
static SPIPlanPtr mut_prune_plan = NULL;
static SPIPlanPtr mut_insert_plan = NULL;
static SPIPlanPtr mut_select_plan = NULL;
static SPIPlanPtr mut_result_plan = NULL;
static HTAB *update_plans = NULL;

typedef struct UpdatePlanEntry
{
	uint32		mask;			/* hash key: the patched fields */
	SPIPlanPtr	plan;
} UpdatePlanEntry;

/*
 * prepare_kept
 *		Prepare and keep a plan.  Every name in the text is qualified.
 */
SPIPlanPtr
rs_prepare_kept(const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/*
 * get_read_plan
 *		The kept query that reads a user's state, the persona row and the
 *		plan limits in one snapshot.  Built from the columns the installed
 *		schema has, so this library also serves a schema one version older
 *		until ALTER EXTENSION UPDATE (a missing column reads as NULL).
 *		It never locks: rs_read_state takes the row lock with a statement of
 *		its own first.
 */
static SPIPlanPtr read_plan = NULL;
static Oid	read_plans_relid = InvalidOid;
static int	read_plans_natts = 0;
static bool schema_settles = false; /* the schema has 0.2.0's usage columns */
static bool schema_has_keys = false;	/* ... and roastr_state.user_keys */
static bool schema_has_orgs = false;	/* ... and the organization tables */

/*
 * probe_schema
 *		Which version of the schema is installed (the library serves the
 *		previous one until ALTER EXTENSION UPDATE): sets schema_settles and
 *		schema_has_keys, returns the state table's layout.
 */
static const RsLayout *
probe_schema(Oid relid, int *natts)
{
	Relation	rel = table_open(relid, AccessShareLock);
	const RsLayout *l = rs_layout(rel);

	*natts = RelationGetDescr(rel)->natts;
	schema_settles = l->att_field[F_USAGE_PERIOD_END] != 0;
	schema_has_keys = OidIsValid(get_relname_relid("user_keys",
												   RelationGetNamespace(rel)));
	schema_has_orgs = OidIsValid(get_relname_relid("organization_members",
												   RelationGetNamespace(rel)));
	table_close(rel, AccessShareLock);
	return l;
}

static SPIPlanPtr
get_read_plan(void)
{
	Oid			relid = rs_state_relid();
	const RsLayout *l;
	int			natts;

	l = probe_schema(relid, &natts);
	if (relid != read_plans_relid || natts != read_plans_natts)
	{
		if (read_plan)
			SPI_freeplan(read_plan);
		read_plan = NULL;
		read_plans_relid = relid;
		read_plans_natts = natts;
	}
	if (read_plan == NULL)
	{
		StringInfoData sql;
		Oid			argtypes[1] = {UUIDOID};

		initStringInfo(&sql);
		appendStringInfoString(&sql,
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
		if (schema_has_keys)
			appendStringInfoString(&sql,
								   ", uk.keygen, uk.master_key_id, uk.wrapped");
		else
			appendStringInfoString(&sql, ", NULL::integer, NULL::integer, NULL::bytea");
		if (schema_has_orgs)
			appendStringInfoString(&sql, ", o.name, o.slug, m.role");
		else
			appendStringInfoString(&sql, ", NULL::text, NULL::text, NULL::text");
		appendStringInfoString(&sql,
							   " FROM roastr_state.state s"
							   " LEFT JOIN roastr_state.persona p"
							   " ON p.user_id OPERATOR(pg_catalog.=) s.user_id"
							   " LEFT JOIN roastr_state.plans pl"
							   " ON pl.plan OPERATOR(pg_catalog.=) s.plan"
							   " LEFT JOIN roastr_state.plans fr"
							   " ON fr.plan OPERATOR(pg_catalog.=) 'free'");
		if (schema_has_keys)
			appendStringInfoString(&sql,
								   " LEFT JOIN roastr_state.user_keys uk"
								   " ON uk.user_id OPERATOR(pg_catalog.=) s.user_id");
		if (schema_has_orgs)
			appendStringInfoString(&sql,
								   " LEFT JOIN roastr_state.organization_members m"
								   " ON m.org_id OPERATOR(pg_catalog.=) s.organization_id"
								   " AND m.user_id OPERATOR(pg_catalog.=) s.user_id"
								   " LEFT JOIN roastr_state.organizations o"
								   " ON o.id OPERATOR(pg_catalog.=) m.org_id");
		appendStringInfoString(&sql,
							   " WHERE s.user_id OPERATOR(pg_catalog.=) $1");
		read_plan = rs_prepare_kept(sql.data, 1, argtypes);
	}
	return read_plan;
}

/*
 * read_state
 *		Read a user's state into "st", allocated in "cxt".  False when the
 *		user has no state.  Must be called inside SPI, as the owner.
 *		"read_only" reads in the caller's snapshot; a function that has
 *		just written passes false to see its write.  "for_update" also
 *		locks the row until the end of the transaction.
 */
bool
rs_read_state(const pg_uuid_t *user, UserState *st, MemoryContext cxt,
			  bool read_only, bool for_update)
{

	Datum		args[1];
	int			rc;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	MemoryContext old;

	/*
	 * To lock, take the row lock with a statement of its own, then read in a
	 * fresh snapshot.  Locking inside the joined read would let READ
	 * COMMITTED's recheck pair the new state row with the plan rows of the
	 * old snapshot after waiting (a consumption racing an upgrade would see
	 * no limit).
	 */
	if (for_update)
	{
		static SPIPlanPtr lock_plan = NULL;
		Datum		largs[1];
		int			lrc;

		if (lock_plan == NULL)
		{
			Oid			types[1] = {UUIDOID};

			lock_plan = rs_prepare_kept("SELECT FROM roastr_state.state "
										"WHERE user_id OPERATOR(pg_catalog.=) $1 "
										"FOR NO KEY UPDATE",
										1, types);
		}
		largs[0] = UUIDPGetDatum(user);
		lrc = SPI_execute_plan(lock_plan, largs, NULL, false, 1);
		if (lrc != SPI_OK_SELECT)
			elog(ERROR, "could not lock user state: %s", SPI_result_code_string(lrc));
		if (SPI_processed == 0)
			return false;
		read_only = false;
	}

	args[0] = UUIDPGetDatum(user);
	rc = SPI_execute_plan(get_read_plan(), args, NULL, read_only, 1);
	if (rc != SPI_OK_SELECT && rc != SPI_OK_SELINTO)
		elog(ERROR, "could not read roastr_state.state: %s",
			 SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (desc->natts != READ_NCOLS)
		elog(ERROR, "unexpected column count %d in state read", desc->natts);

	old = MemoryContextSwitchTo(cxt);
	memset(st, 0, sizeof(UserState));
	st->user_id = *user;
	st->version = DatumGetInt64(SPI_getbinval(tup, desc, COL_VERSION + 1, &isnull));
	st->updated_at = DatumGetTimestampTz(SPI_getbinval(tup, desc,
													   COL_UPDATED_AT + 1,
													   &isnull));
	{
		bool		fvn,
					ftn;
		Datum		fv = SPI_getbinval(tup, desc, COL_FV + 1, &fvn);
		Datum		ft = SPI_getbinval(tup, desc, COL_FT + 1, &ftn);

		rs_read_field_log(fv, fvn, ft, ftn, &st->log);
	}
	for (int f = 0; f < RS_NFIELDS; f++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, COL_FIELD0 + f);
		Datum		d = SPI_getbinval(tup, desc, COL_FIELD0 + f + 1,
									  &st->nulls[f]);

		st->vals[f] = st->nulls[f] ? (Datum) 0 :
			datumCopy(d, att->attbyval, att->attlen);
	}
	{
		bool		found;
		Datum		d;

		/* a missing plan row means no roasts, never "unlimited" */
		found = DatumGetBool(SPI_getbinval(tup, desc, COL_PLAN_FOUND + 1, &isnull));
		d = SPI_getbinval(tup, desc, COL_PLAN_LIMIT + 1, &isnull);
		st->plan_limit_null = found && isnull;
		st->plan_limit = (found && !isnull) ? DatumGetInt32(d) : 0;

		found = DatumGetBool(SPI_getbinval(tup, desc, COL_FREE_FOUND + 1, &isnull));
		d = SPI_getbinval(tup, desc, COL_FREE_LIMIT + 1, &isnull);
		st->free_limit_null = found && isnull;
		st->free_limit = (found && !isnull) ? DatumGetInt32(d) : 0;

		d = SPI_getbinval(tup, desc, COL_ORG_ROLE + 1, &isnull);
		st->org_null = isnull;
		if (!isnull)
		{
			st->org_role = TextDatumGetCString(d);
			st->org_name = TextDatumGetCString(SPI_getbinval(tup, desc, COL_ORG_NAME + 1, &isnull));
			st->org_slug = TextDatumGetCString(SPI_getbinval(tup, desc, COL_ORG_SLUG + 1, &isnull));
		}

		d = SPI_getbinval(tup, desc, COL_DEK_WRAPPED + 1, &isnull);
		st->has_dek = !isnull;
		if (st->has_dek)
		{
			st->dek_wrapped = DatumGetByteaPCopy(d);
			st->dek_keygen = DatumGetInt32(SPI_getbinval(tup, desc, COL_DEK_KEYGEN + 1, &isnull));
			st->dek_master_id = DatumGetInt32(SPI_getbinval(tup, desc, COL_DEK_MASTER + 1, &isnull));
		}
	}
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * build_items
 *		Every shown path (shown.c) with its value at this moment and its
 *		version: the newest among its inputs.  Persona text is opened here
 *		(below pro, persona.tolerance reads as null; the text is kept).
 */
static void
build_items(const UserState *st, OutItem *items)
{
	RsEffective eff;
	RsDataKey  *dek = NULL;
	bool		tolerance_allowed;

	rs_effective(st, GetCurrentTransactionStartTimestamp(), &eff);
	tolerance_allowed = strcmp(eff.plan, "pro") == 0 ||
		strcmp(eff.plan, "plus") == 0;
	if (st->has_dek && (!st->nulls[F_PERSONA_IDENTITY] ||
						!st->nulls[F_PERSONA_INTOLERANCE] ||
						!st->nulls[F_PERSONA_TOLERANCE]))
		dek = rs_user_dek(&st->user_id, st, false);

	for (int s = 0; s < RS_NSHOWN; s++)
	{
		OutItem    *it = &items[s];
		int			f = rs_shown[s].field;

		it->id = s;
		it->version = rs_shown_version(s, &st->log, &it->time);
		if (f >= 0 && rs_fields[f].type == FT_SECRET)
		{
			text	   *t = (f == F_PERSONA_TOLERANCE && !tolerance_allowed) ?
			NULL : rs_persona_plaintext(&st->user_id, st, dek, f);

			it->value = PointerGetDatum(t);
			it->isnull = (t == NULL);
		}
		else
			rs_shown_value(st, &eff, s, &it->value, &it->isnull);
	}
	if (dek != NULL)
		rs_datakey_clear(dek);
}


/* Push one section's paths as an object. */
static void
push_section(JsonbParseState **js, const UserState *st, const OutItem *items,
			 const char *section)
{
	pushJsonbValue(js, WJB_BEGIN_OBJECT, NULL);
	if (strcmp(section, "auth") == 0)
	{
		jb_key(js, "userId");
		jb_string(js, rs_uuid_to_cstring(&st->user_id));
	}
	for (int s = 0; s < RS_NSHOWN; s++)
	{
		if (strcmp(rs_shown_section(s), section) != 0)
			continue;
		jb_key(js, rs_shown_key(s));
		rs_shown_to_jsonb(js, s, items[s].value, items[s].isnull);
	}
	pushJsonbValue(js, WJB_END_OBJECT, NULL);
}

/*
 * build_full
 *		The state_full document: every section in rs_sections order (the
 *		organization is null when there is none), then _meta.
 */
static Jsonb *
build_full(const UserState *st)
{
	JsonbParseState *js = NULL;
	OutItem		items[RS_NSHOWN];
	JsonbValue *res;

	build_items(st, items);
	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	for (int sec = 0; sec < RS_NSECTIONS; sec++)
	{
		jb_key(&js, rs_sections[sec]);
		if (strcmp(rs_sections[sec], "organization") == 0 && st->org_null)
			jb_null(&js);
		else
			push_section(&js, st, items, rs_sections[sec]);
	}

	jb_key(&js, "_meta");
	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	jb_key(&js, "version");
	jb_int64(&js, st->version);
	jb_key(&js, "lastSyncedAt");
	jb_timestamptz(&js, GetCurrentTransactionStartTimestamp());
	pushJsonbValue(&js, WJB_END_OBJECT, NULL);

	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

static int
item_version_cmp(const void *a, const void *b)
{
	const OutItem *ia = (const OutItem *) a;
	const OutItem *ib = (const OutItem *) b;

	if (ia->version != ib->version)
		return ia->version < ib->version ? -1 : 1;
	return strcmp(rs_shown_path(ia->id), rs_shown_path(ib->id));
}

/*
 * build_sync
 *		{changes, cursor, lastSyncedAt}: every shown path whose version is
 *		after the cursor (by_time: whose change time is after the time), at
 *		most once, with its current value, ordered by version.
 */
static Jsonb *
build_sync(const UserState *st, bool all, bool by_time, int64 since,
		   TimestampTz since_at)
{
	JsonbParseState *js = NULL;
	OutItem		items[RS_NSHOWN];
	int			m = 0;
	JsonbValue *res;

	build_items(st, items);
	for (int i = 0; i < RS_NSHOWN; i++)
	{
		bool		keep;

		if (all)
			keep = true;
		else if (by_time)
			keep = items[i].time > since_at;
		else
			keep = items[i].version > since;
		if (keep)
			items[m++] = items[i];
	}
	qsort(items, m, sizeof(OutItem), item_version_cmp);

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	jb_key(&js, "changes");
	pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < m; i++)
	{
		pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
		jb_key(&js, "field");
		jb_string(&js, rs_shown_path(items[i].id));
		jb_key(&js, "value");
		rs_shown_to_jsonb(&js, items[i].id, items[i].value, items[i].isnull);
		jb_key(&js, "version");
		jb_int64(&js, items[i].version);
		jb_key(&js, "updated_at");
		if (items[i].time == 0)
			jb_null(&js);
		else
			jb_timestamptz(&js, items[i].time);
		pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&js, WJB_END_ARRAY, NULL);
	jb_key(&js, "cursor");
	jb_int64(&js, st->version);
	jb_key(&js, "lastSyncedAt");
	jb_timestamptz(&js, GetCurrentTransactionStartTimestamp());
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

void
rs_no_state(const pg_uuid_t *user)
{
	ereport(ERROR,
			errcode(ERRCODE_ROASTR_NOT_FOUND),
			errmsg("user %s has no state", rs_uuid_to_cstring(user)),
			errhint("The service creates it with roastr_state.ensure_user()."));
}

/*
 * settle_columns
 *		The UPDATE that writes down what time has moved (see usage.c): an
 *		expired trial, a canceled subscription past its period, a usage
 *		period that rolled over.
 */
static SPIPlanPtr settle_plan = NULL;

/*
 * rs_settle
 *		Write down pending time-driven moves of a user whose row the caller
 *		has locked and read into "st"; re-read it into "st" afterwards.
 *		Must be called inside SPI, as the owner.  The UPDATE goes through
 *		the trigger: version bump, change log, notification.
 */
void
rs_settle(const pg_uuid_t *user, UserState *st, MemoryContext cxt)
{
	RsEffective eff;
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;

	rs_effective(st, GetCurrentTransactionStartTimestamp(), &eff);
	if (!schema_settles || !rs_needs_settle(st, &eff))
		return;
	if (settle_plan == NULL)
	{
		Oid			types[6] = {UUIDOID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID,
		TIMESTAMPTZOID};

		settle_plan = rs_prepare_kept(
									  "UPDATE roastr_state.state SET plan = $2, subscription_status = $3, "
									  "monthly_roasts_used = $4, usage_period_start = $5, "
									  "usage_period_end = $6 "
									  "WHERE user_id OPERATOR(pg_catalog.=) $1",
									  6, types);
	}
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
	rc = rs_trigger_execute(settle_plan, args, nulls, user, 0, st, NULL);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not settle user state: %s", SPI_result_code_string(rc));
	if (!rs_read_state(user, st, cxt, false, false))
		rs_no_state(user);
}

/*
 * read_or_fail
 *		Connect to SPI as the owner, read the state into the caller's
 *		context, disconnect.  When time has moved the state and the
 *		transaction may write, lock the row and settle it first, so that
 *		the move is a versioned change every client's sync will see; in a
 *		read-only transaction the values are computed all the same.
 */
static void
read_or_fail(const pg_uuid_t *user, UserState *st)
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
		if (schema_settles && rs_needs_settle(st, &eff))
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

PG_FUNCTION_INFO_V1(roastr_state_state_full);

/*
 * roastr_state.state_full(user_id uuid DEFAULT NULL) -> jsonb
 */
Datum
roastr_state_state_full(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	UserState	st;

	rs_resolve_target(fcinfo, 0, &caller, &user);
	read_or_fail(&user, &st);
	PG_RETURN_JSONB_P(build_full(&st));
}

PG_FUNCTION_INFO_V1(roastr_state_state_sync);

/*
 * roastr_state.state_sync(user_id uuid, since bigint DEFAULT NULL) -> jsonb
 *		A cursor of 0 or NULL gives everything; so does a cursor newer than
 *		the server's version (a client from a restored backup), since the
 *		client cannot trust what it has.
 */
Datum
roastr_state_state_sync(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	UserState	st;
	int64		since = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);

	rs_resolve_target(fcinfo, 0, &caller, &user);
	if (since < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("cursor must not be negative"),
				errhint("Pass 0 or NULL to get everything."));
	read_or_fail(&user, &st);
	PG_RETURN_JSONB_P(build_sync(&st, since == 0 || since > st.version,
								 false, since, 0));
}

PG_FUNCTION_INFO_V1(roastr_state_state_sync_at);

/*
 * roastr_state.state_sync(user_id uuid, since_at timestamptz) -> jsonb
 *		For callers that only have a time.  Times are not commit order: a
 *		change can commit after a later-stamped one, so prefer the version
 *		cursor.
 */
Datum
roastr_state_state_sync_at(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	UserState	st;

	rs_resolve_target(fcinfo, 0, &caller, &user);
	if (!PG_ARGISNULL(1) && TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(1)))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("since_at must be a finite timestamp"));
	read_or_fail(&user, &st);
	PG_RETURN_JSONB_P(build_sync(&st, PG_ARGISNULL(1), true, 0,
								 PG_ARGISNULL(1) ? 0 : PG_GETARG_TIMESTAMPTZ(1)));
}

PG_FUNCTION_INFO_V1(roastr_state_ensure_user);

/*
 * roastr_state.ensure_user(user_id uuid, email text, name text DEFAULT NULL)
 *		-> jsonb
 *		Service only.  Creates the state if missing; otherwise brings email
 *		(and name, when given) up to date through the usual versioned path.
 *		Returns state_full.
 */
Datum
roastr_state_ensure_user(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	MemoryContext cxt = CurrentMemoryContext;
	RsUserSwitch sw;
	UserState	st;
	int			rc;

	rs_get_caller(&caller);
	rs_require_service(&caller, "ensure_user");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("user_id must not be null"));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid value for field \"auth.email\""),
				errdetail("Expected an e-mail address."));
	user = *PG_GETARG_UUID_P(0);
	rs_validate_value(&rs_fields[F_AUTH_EMAIL], PG_GETARG_DATUM(1), false);
	if (!PG_ARGISNULL(2))
		rs_validate_value(&rs_fields[F_AUTH_NAME], PG_GETARG_DATUM(2), false);

	args[0] = UUIDPGetDatum(&user);
	args[1] = PG_GETARG_DATUM(1);
	args[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	if (PG_ARGISNULL(2))
		nulls[2] = 'n';

	SPI_connect();
	rs_become_owner(&sw);
	if (refresh_user_plan == NULL)
	{
		Oid			types[3] = {UUIDOID, TEXTOID, TEXTOID};
		SPIPlanPtr	ins;

		ins = rs_prepare_kept(
							  "INSERT INTO roastr_state.state (user_id, email, name) "
							  "VALUES ($1, $2, $3) ON CONFLICT (user_id) DO NOTHING",
							  3, types);
		insert_user_plan = ins;
		refresh_user_plan = rs_prepare_kept(
											"UPDATE roastr_state.state SET email = $2, "
											"name = COALESCE($3, name) "
											"WHERE user_id OPERATOR(pg_catalog.=) $1 "
											"AND (email IS DISTINCT FROM $2 "
											"OR ($3 IS NOT NULL AND name IS DISTINCT FROM $3))",
											3, types);
	}
	rc = SPI_execute_plan(insert_user_plan, args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not insert user state: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		rc = SPI_execute_plan(refresh_user_plan, args, nulls, false, 0);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "could not update user state: %s",
				 SPI_result_code_string(rc));
	}
	if (!rs_read_state(&user, &st, cxt, false, false))
		rs_no_state(&user);		/* deleted concurrently */
	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_JSONB_P(build_full(&st));
}

/* ---------------------------------------------------------------------
 * patch
 * ---------------------------------------------------------------------
 */

/*
 * get_update_plan
 *		The kept UPDATE for one set of patched fields:
 *		UPDATE state SET version = coalesce($2, version), <col> = $3, ...
 *		Fields are bound in field-id order.
 */
static SPIPlanPtr
get_update_plan(uint32 mask)
{
	UpdatePlanEntry *e;
	bool		found;

	if (update_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(UpdatePlanEntry);
		ctl.hcxt = TopMemoryContext;
		update_plans = hash_create("roastr_state update plans", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(update_plans, &mask, HASH_ENTER, &found);
	if (!found)
	{
		StringInfoData sql;
		Oid			types[RS_NFIELDS + 2];
		int			n = 2;

		e->plan = NULL;
		types[0] = UUIDOID;
		types[1] = INT8OID;
		initStringInfo(&sql);
		appendStringInfoString(&sql,
							   "UPDATE roastr_state.state SET version = COALESCE($2, version)");
		for (int f = 0; f < RS_NFIELDS; f++)
		{
			if (!(mask & (1U << f)) || rs_fields[f].column == NULL)
				continue;
			types[n] = rs_field_typoid(&rs_fields[f]);
			n++;
			appendStringInfo(&sql, ", %s = $%d", rs_fields[f].column, n);
		}
		appendStringInfoString(&sql, " WHERE user_id OPERATOR(pg_catalog.=) $1");
		PG_TRY();
		{
			e->plan = rs_prepare_kept(sql.data, n, types);
		}
		PG_CATCH();
		{
			hash_search(update_plans, &mask, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return e->plan;
}

/*
 * request_hash
 *		BLAKE2b-256 of the canonical patch (jsonb's normalized text) and
 *		the base version: a retry must be the same request.  Keyed by the
 *		user's data key when the patch carries persona text.
 */
static bytea *
request_hash(Jsonb *changes, bool base_null, int64 base, const RsDataKey *dek)
{
	char	   *txt = JsonbToCString(NULL, &changes->root, VARSIZE(changes));
	bytea	   *h = palloc(VARHDRSZ + crypto_generichash_BYTES);
	crypto_generichash_state s;
	char		basebuf[32];

	snprintf(basebuf, sizeof(basebuf), "|%s" INT64_FORMAT,
			 base_null ? "n" : "b", base_null ? (int64) 0 : base);

	/*
	 * A patch with persona text is hashed under the user's data key: an
	 * unkeyed hash of a short text would let anyone who reads the row (or a
	 * backup) confirm a guess of it.  The data key goes with delete_user.
	 */
	if (dek != NULL)
		crypto_generichash_init(&s, dek->key, sizeof(dek->key),
								crypto_generichash_BYTES);
	else
		crypto_generichash_init(&s, NULL, 0, crypto_generichash_BYTES);
	crypto_generichash_update(&s, (const unsigned char *) txt, strlen(txt));
	crypto_generichash_update(&s, (const unsigned char *) basebuf,
							  strlen(basebuf));
	crypto_generichash_final(&s, (unsigned char *) VARDATA(h),
							 crypto_generichash_BYTES);
	SET_VARSIZE(h, VARHDRSZ + crypto_generichash_BYTES);
	return h;
}

static void
prepare_mutation_plans(void)
{
	Oid			t1[1] = {UUIDOID};
	Oid			t2[2] = {UUIDOID, UUIDOID};
	Oid			t3[3] = {UUIDOID, UUIDOID, BYTEAOID};
	Oid			t3j[3] = {UUIDOID, UUIDOID, JSONBOID};

	if (mut_result_plan != NULL)
		return;
	mut_lock_plan = rs_prepare_kept(
									"SELECT FROM roastr_state.state "
									"WHERE user_id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
									1, t1);
	mut_prune_plan = rs_prepare_kept(
									 "DELETE FROM roastr_state.mutations "
									 "WHERE user_id OPERATOR(pg_catalog.=) $1 "
									 "AND mutation_id OPERATOR(pg_catalog.<>) $2 "
									 "AND created_at OPERATOR(pg_catalog.<) (pg_catalog.now() "
									 "OPERATOR(pg_catalog.-) interval '" MUTATION_RETENTION "')",
									 2, t2);
	mut_insert_plan = rs_prepare_kept(
									  "INSERT INTO roastr_state.mutations (user_id, mutation_id, request_hash) "
									  "VALUES ($1, $2, $3) "
									  "ON CONFLICT (user_id, mutation_id) DO NOTHING",
									  3, t3);
	mut_select_plan = rs_prepare_kept(
									  "SELECT request_hash, result FROM roastr_state.mutations "
									  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
									  "AND mutation_id OPERATOR(pg_catalog.=) $2",
									  2, t2);
	mut_result_plan = rs_prepare_kept(
									  "UPDATE roastr_state.mutations SET result = $3 "
									  "WHERE user_id OPERATOR(pg_catalog.=) $1 "
									  "AND mutation_id OPERATOR(pg_catalog.=) $2",
									  3, t3j);
}

/*
 * claim_mutation
 *		Record a mutation id before applying it.  The user's row is locked
 *		first, so every mutation of one user is decided under that lock: a
 *		concurrent duplicate waits for us, then (with a fresh snapshot) finds
 *		our outcome; and nothing else is locked while waiting, so no
 *		deadlock.  Returns the stored result when this id was already
 *		applied (NULL when it is ours to apply).  ERROR when the id was used
 *		for another request, or when the user has no state.
 */
static Jsonb *
claim_mutation(const pg_uuid_t *user, const pg_uuid_t *mid, bytea *hash,
			   MemoryContext cxt)
{
	Datum		args[3];
	int			rc;
	bool		isnull;
	bytea	   *stored;
	Datum		res;

	prepare_mutation_plans();
	args[0] = UUIDPGetDatum(user);
	args[1] = UUIDPGetDatum(mid);
	args[2] = PointerGetDatum(hash);

	rc = SPI_execute_plan(mut_lock_plan, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not lock user state: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		rs_no_state(user);
	rc = SPI_execute_plan(mut_prune_plan, args, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "could not prune mutations: %s", SPI_result_code_string(rc));
	rc = SPI_execute_plan(mut_insert_plan, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not record mutation: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
		return NULL;

	rc = SPI_execute_plan(mut_select_plan, args, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read mutation %s", rs_uuid_to_cstring(mid));
	stored = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 1, &isnull));
	if (VARSIZE_ANY_EXHDR(stored) != VARSIZE_ANY_EXHDR(hash) ||
		memcmp(VARDATA_ANY(stored), VARDATA_ANY(hash), VARSIZE_ANY_EXHDR(hash)) != 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("mutation_id %s was already used for a different patch",
					   rs_uuid_to_cstring(mid)),
				errhint("Use a new mutation_id for every distinct change."));
	res = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		elog(ERROR, "mutation %s has no recorded result", rs_uuid_to_cstring(mid));
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		Jsonb	   *copy = DatumGetJsonbPCopy(res);

		MemoryContextSwitchTo(old);
		return copy;
	}
}

/*
 * parse_changes
 *		Check every key and value of a patch before anything is written:
 *		known field, writable by this caller, right type and range.
 */
static uint32
parse_changes(Jsonb *changes, const RsCaller *caller, Datum *vals, bool *nulls)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	uint32		mask = 0;
	const RsField *f = NULL;

	if (!JB_ROOT_IS_OBJECT(changes) || JB_ROOT_IS_SCALAR(changes))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("changes must be a JSON object"),
				errdetail("Expected an object mapping field paths to new values, e.g. {\"roasting.enabled\": false}."));

	it = JsonbIteratorInit(&changes->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *path = pnstrdup(v.val.string.val, v.val.string.len);
			RsKeyCheck check = rs_check_patch_key(v.val.string.val,
												  v.val.string.len,
												  caller->is_service, &f);

			switch (check)
			{
				case RS_KEY_OK:
					break;
				case RS_KEY_DERIVED:
					ereport(ERROR,
							errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("field \"%s\" is derived and cannot be written", path));
					break;
				case RS_KEY_UNKNOWN:
					ereport(ERROR,
							errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("unknown field \"%s\"", path),
							errhint("Field paths look like \"roasting.enabled\"; see the README for the list."));
					break;
				case RS_KEY_SYSTEM:
					ereport(ERROR,
							errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("field \"%s\" cannot be written by patch", path),
							errhint("It is maintained by a dedicated function of roastr_state."));
					break;
				case RS_KEY_SERVICE_ONLY:
					ereport(ERROR,
							errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							errmsg("permission denied to write field \"%s\"", path),
							errhint("Only the service role may change it."));
					break;
			}
			if (f->type == FT_SECRET && !schema_has_keys)
				ereport(ERROR,
						errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("field \"%s\" cannot be written before ALTER EXTENSION roastr_state UPDATE", path),
						errdetail("Persona text is stored only encrypted, which needs version 0.2.0 of the extension."));
		}
		else if (tok == WJB_VALUE)
		{
			Assert(f != NULL);
			vals[f->id] = rs_value_from_jsonb(f, &v, &nulls[f->id]);
			mask |= 1U << f->id;
		}
	}
	return mask;
}

/*
 * mentions_persona
 *		Whether a patch names a persona field at its top level (jsonb sorts
 *		keys, so other keys may fail validation first).
 */
static bool
mentions_persona(Jsonb *changes)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(changes) || JB_ROOT_IS_SCALAR(changes))
		return false;
	it = JsonbIteratorInit(&changes->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY && v.val.string.len >= 8 &&
			memcmp(v.val.string.val, "persona.", 8) == 0)
			return true;
	}
	return false;
}

/*
 * hide_statement_callback
 *		Error context callback of patch(): once the patch is known to carry
 *		persona text, no error it raises may copy the statement (and so the
 *		text) into the server log's STATEMENT line.
 */
static void
hide_statement_callback(void *arg)
{
	if (*(bool *) arg)
		errhidestmt(true);
}

PG_FUNCTION_INFO_V1(roastr_state_patch);

/*
 * roastr_state.patch(user_id uuid, changes jsonb, base_version bigint
 *		DEFAULT NULL, mutation_id uuid DEFAULT NULL) -> jsonb
 *		{version, applied}.  All or nothing; see trigger.c for the rules.
 */
Datum
roastr_state_patch(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	Jsonb	   *changes;
	bool		base_null = PG_ARGISNULL(2);
	int64		base = base_null ? 0 : PG_GETARG_INT64(2);
	Datum		vals[RS_NFIELDS];
	bool		nulls[RS_NFIELDS];
	uint32		mask;
	Datum		args[RS_NFIELDS + 2];
	char		argnulls[RS_NFIELDS + 2];
	int			nargs = 2;
	MemoryContext cxt = CurrentMemoryContext;
	RsUserSwitch sw;
	Jsonb	   *result = NULL;
	int			rc;
	bytea	   *hash = NULL;
	pg_uuid_t	mid;
	bool		carries_persona = false;
	ErrorContextCallback errcb;
	uint32		requested;
	uint32		persona_changed = 0;
	UserState	pst;
	RsDataKey  *dek = NULL;
	RsLastApply applied;

	errcb.callback = hide_statement_callback;
	errcb.arg = &carries_persona;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	/* before any check that could fail: does the patch carry persona text? */
	changes = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);
	if (changes != NULL)
		carries_persona = mentions_persona(changes);

	rs_resolve_target(fcinfo, 0, &caller, &user);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("changes must not be null"));
	if (!base_null && base < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("base version must not be negative"));

	memset(nulls, 0, sizeof(nulls));
	{
		int			natts;

		(void) probe_schema(rs_state_relid(), &natts);
	}
	mask = parse_changes(changes, &caller, vals, nulls);
	requested = mask;

	/* an empty patch changes nothing: answer from a plain read */
	if (mask == 0 && PG_ARGISNULL(3))
	{
		UserState	st;
		JsonbParseState *js = NULL;
		JsonbValue *res;

		read_or_fail(&user, &st);
		if (!base_null && base > st.version)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("base version %lld is newer than the current version %lld",
						   (long long) base, (long long) st.version),
					errhint("Use a version returned by state_full, state_sync or patch."));
		pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
		jb_key(&js, "version");
		jb_int64(&js, st.version);
		jb_key(&js, "applied");
		pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
		pushJsonbValue(&js, WJB_END_ARRAY, NULL);
		res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
		error_context_stack = errcb.previous;
		PG_RETURN_JSONB_P(JsonbValueToJsonb(res));
	}

	SPI_connect();
	rs_become_owner(&sw);

	/*
	 * Persona text: lock and read the row and get the user's data key first
	 * (a mutation id's request hash is keyed by it).
	 */
	if (mask & RS_PERSONA_TEXT_MASK)
	{
		if (!rs_read_state(&user, &pst, cxt, false, true))
			rs_no_state(&user);
		dek = rs_user_dek(&user, &pst, true);
	}

	if (!PG_ARGISNULL(3))
	{
		mid = *PG_GETARG_UUID_P(3);
		hash = request_hash(changes, base_null, base, dek);
		result = claim_mutation(&user, &mid, hash, cxt);
	}

	if (result == NULL)
	{
		JsonbParseState *js = NULL;
		JsonbValue *res;
		MemoryContext old;

		/*
		 * Seal what changed and write the ciphertext; the trigger versions
		 * those fields.  Changed text makes the embeddings stale.
		 */
		if (mask & RS_PERSONA_TEXT_MASK)
		{
			persona_changed = rs_persona_apply(&user, &pst, mask, vals, nulls,
											   dek);
			dek = NULL;
			if (persona_changed)
			{
				mask |= (1U << F_PERSONA_EMBEDDINGS_AT) |
					(1U << F_PERSONA_EMBEDDINGS_MODEL);
				nulls[F_PERSONA_EMBEDDINGS_AT] = true;
				nulls[F_PERSONA_EMBEDDINGS_MODEL] = true;
			}
		}

		args[0] = UUIDPGetDatum(&user);
		argnulls[0] = ' ';
		args[1] = Int64GetDatum(base);
		argnulls[1] = base_null ? 'n' : ' ';
		for (int f = 0; f < RS_NFIELDS; f++)
		{
			if (!(mask & (1U << f)) || rs_fields[f].column == NULL)
				continue;
			args[nargs] = vals[f];
			argnulls[nargs] = nulls[f] ? 'n' : ' ';
			nargs++;
		}

		rc = rs_trigger_execute(get_update_plan(mask), args, argnulls, &user,
								persona_changed, NULL, &applied);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "could not update user state: %s",
				 SPI_result_code_string(rc));
		if (SPI_processed == 0)
			rs_no_state(&user);
		if (!applied.valid)
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("trigger \"roastr_state_version\" did not run"),
					errdetail("State cannot change without its version check."),
					errhint("Check that the trigger is enabled and session_replication_role is not \"replica\"."));

		old = MemoryContextSwitchTo(cxt);
		pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
		jb_key(&js, "version");
		jb_int64(&js, applied.new_version);
		jb_key(&js, "applied");
		pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
		for (int f = 0; f < RS_NFIELDS; f++)
			if (requested & (1U << f))
				jb_elem_string(&js, rs_fields[f].path);
		pushJsonbValue(&js, WJB_END_ARRAY, NULL);
		res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
		result = JsonbValueToJsonb(res);
		MemoryContextSwitchTo(old);

		if (hash != NULL)
		{
			Datum		margs[3];

			margs[0] = UUIDPGetDatum(&user);
			margs[1] = UUIDPGetDatum(&mid);
			margs[2] = JsonbPGetDatum(result);
			rc = SPI_execute_plan(mut_result_plan, margs, NULL, false, 0);
			if (rc != SPI_OK_UPDATE || SPI_processed != 1)
				elog(ERROR, "could not record mutation result");
		}
	}

	if (dek != NULL)
		rs_datakey_clear(dek);
	rs_restore_user(&sw);
	SPI_finish();
	error_context_stack = errcb.previous;
	PG_RETURN_JSONB_P(result);
}
