/*-------------------------------------------------------------------------
 *
 * rowcheck.c
 *	  The checks the state trigger makes of a written row: the columns it
 *	  maintains, the base version, the subscription lifecycle, organization
 *	  membership, and the version conflict error.
 *
 * Each raises the error a client sees, tagged with the table or column
 * (errtable, errtablecol).  The trigger (trigger.c) decides when to call
 * them.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/rowcheck.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/rel.h"

#include "errcodes.h"
#include "fields.h"
#include "json_util.h"
#include "rowcheck.h"
#include "shared.h"
#include "stats.h"
#include "spi_util.h"
#include "usage.h"

/*
 * rs_check_maintained
 *		ERROR (428C9) when an UPDATE changes column "attnum", one the trigger
 *		maintains and nobody else may set.
 */
void
rs_check_maintained(Relation rel, const RsLayout *l, AttrNumber attnum,
					Datum *oldv, bool *oldn, Datum *newv, bool *newn)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	bool		same;

	if (oldn[attnum - 1] || newn[attnum - 1])
		same = oldn[attnum - 1] == newn[attnum - 1];
	else
		same = datum_image_eq(oldv[attnum - 1], newv[attnum - 1],
							  att->attbyval, att->attlen);
	if (!same)
		ereport(ERROR,
				errcode(ERRCODE_GENERATED_ALWAYS),
				errmsg("column \"%s\" of relation \"%s\" is maintained by roastr_state and cannot be set",
					   NameStr(att->attname), RelationGetRelationName(rel)),
				errtablecol(rel, attnum));
}

/*
 * rs_check_status_move
 *		Within one paid subscription (same plan family, same Polar
 *		subscription id) the status follows the lifecycle of usage.c;
 *		anything else starts a new subscription and may set any status.
 */
void
rs_check_status_move(Relation rel, const RsLayout *l, Datum *oldv, bool *oldn,
					 Datum *newv, bool *newn)
{
	AttrNumber	ap = l->att_field[F_SUB_PLAN];
	AttrNumber	as = l->att_field[F_SUB_STATUS];
	AttrNumber	ai = l->att_field[F_SUB_POLAR_SUBSCRIPTION_ID];
	char	   *from;
	char	   *to;

	if (rs_text_equals(oldv[ap - 1], oldn[ap - 1], "free"))
		return;
	if (ai != 0 && !rs_values_equal(&rs_fields[F_SUB_POLAR_SUBSCRIPTION_ID],
									oldv[ai - 1], oldn[ai - 1],
									newv[ai - 1], newn[ai - 1]))
		return;
	from = TextDatumGetCString(oldv[as - 1]);
	to = TextDatumGetCString(newv[as - 1]);
	if (!rs_status_move_allowed(from, to))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid value for field \"subscription.status\""),
				errdetail("A subscription cannot go from \"%s\" to \"%s\".", from, to),
				errhint("A new subscription (a new polar_subscription_id, or a plan change from free) may start in any status."),
				errtablecol(rel, as));
}

/*
 * rs_check_membership
 *		A user's current organization must be one they belong to, and not a
 *		deleted one; otherwise the state would later change (when they
 *		join) without a version.  Returns the organization stamp the state
 *		records with it (shared.c).
 */
int64
rs_check_membership(Relation rel, const RsLayout *l, const pg_uuid_t *user,
					const pg_uuid_t *org)
{
	int64		stamp = rs_shared_org_stamp(org, user);

	if (stamp == RS_ORG_STAMP_GONE)
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("user %s is not a member of organization %s",
					   rs_uuid_to_cstring(user), rs_uuid_to_cstring(org)),
				errtablecol(rel, l->att_field[F_ORG_ID]));
	return stamp;
}

/*
 * conflict_json
 *		The JSON detail of a conflict (PT409): every conflicting field with
 *		the server's value and the version that changed it.  "for_log"
 *		leaves personal values out (the server log's copy).
 */
static char *
conflict_json(const RsLayout *l, int64 server_version, int64 base,
			  uint32 conflicts, const RsFieldLog *log, Datum *oldv,
			  bool *oldn, bool for_log)
{
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "{\"code\":\"E_CONFLICT\",\"server_version\":%lld"
					 ",\"client_version\":%lld,\"conflicts\":[",
					 (long long) server_version, (long long) base);
	for (int f = 0; f < RS_NFIELDS; f++)
	{
		const RsField *fd = &rs_fields[f];
		AttrNumber	a = l->att_field[f];

		if (!(conflicts & RS_FIELD_BIT(f)))
			continue;
		if (!first)
			appendStringInfoChar(&buf, ',');
		first = false;
		appendStringInfoString(&buf, "{\"field\":");
		escape_json(&buf, fd->path);
		appendStringInfoString(&buf, ",\"server_value\":");
		if (fd->type == FT_SECRET || a == 0 || (for_log && fd->private))
			appendStringInfoString(&buf, "null");
		else
			rs_value_to_json(&buf, fd, oldv[a - 1], oldn[a - 1]);
		appendStringInfo(&buf, ",\"server_version\":%lld}",
						 (long long) log->version[f]);
	}
	appendStringInfoString(&buf, "]}");
	return buf.data;
}

/*
 * rs_raise_conflict
 *		PT409 with the JSON detail of the API: every conflicting field with
 *		the server's value and the version that changed it.  The server log
 *		gets the same detail without personal values.
 */
void
rs_raise_conflict(Relation rel, const RsLayout *l, int64 server_version,
				  int64 base, uint32 conflicts, const RsFieldLog *log,
				  Datum *oldv, bool *oldn)
{
	rs_stats_count(RS_STAT_CONFLICTS);
	ereport(ERROR,
			errcode(ERRCODE_ROASTR_CONFLICT),
			errmsg("version conflict: fields were changed after version %lld",
				   (long long) base),
			errdetail_internal("%s", conflict_json(l, server_version, base,
												   conflicts, log, oldv, oldn,
												   false)),
			errdetail_log("%s", conflict_json(l, server_version, base,
											  conflicts, log, oldv, oldn,
											  true)),
			errhint("Read the changes with state_sync, then retry with base version %lld.",
					(long long) server_version),
			errtable(rel));
}

/*
 * rs_check_base_version
 *		The version the UPDATE names as its base (SET version = N; the
 *		row's own when it leaves the column alone): not null, not negative,
 *		not newer than the row's version "cur".
 */
int64
rs_check_base_version(Relation rel, const RsLayout *l, int64 cur, Datum *newv,
					  bool *newn)
{
	int64		base;

	if (newn[l->att_version - 1])
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("base version must not be null"),
				errtablecol(rel, l->att_version));
	base = DatumGetInt64(newv[l->att_version - 1]);
	if (base > cur)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("base version %lld is newer than the current version %lld",
					   (long long) base, (long long) cur),
				errhint("Use a version returned by state_full, state_sync or patch."),
				errtablecol(rel, l->att_version));
	if (base < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("base version must not be negative"),
				errtablecol(rel, l->att_version));
	return base;
}
