/*-------------------------------------------------------------------------
 *
 * org.c
 *	  Organizations: members with roles owner, admin and member; a user's
 *	  current organization.
 *
 * Rules: exactly one owner at all times (ownership moves with
 * set_member_role(..., 'owner'), never disappears); owner and admins add
 * and remove members; only the owner makes or unmakes admins; an admin
 * cannot remove another admin; anyone but the owner may leave.  The
 * service may do anything the rules allow.
 *
 * Every change locks the organization's row first, so the changes of one
 * organization happen one at a time (two admins changing the same member
 * concurrently: the second decides on the first's result) and cannot
 * deadlock with each other.
 *
 * What the members see (0.7.0, shared.c): a change that concerns one user
 * -- creating an organization for its owner, adding or removing a member,
 * choosing the current organization -- writes that user's state row in
 * the same transaction, as before.  A change of the organization's row
 * (rename, delete) or of a membership's role writes only that row, with a
 * new change stamp, and one broadcast {"type": "organization", ...}; every
 * member whose current organization it is settles it with their next
 * call, as a version of their own.  No transaction writes several users'
 * rows.  Deleting keeps the organization's row as a tombstone (deleted_at)
 * until its last membership goes.  Before ALTER EXTENSION UPDATE to 0.7.0
 * (no stamps) the older behaviour applies: the change bumps every member
 * it affects in its own transaction (the hidden field
 * organization.changed_at).
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/org.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

#include "access.h"
#include "errcodes.h"
#include "fields.h"
#include "json_util.h"
#include "read.h"
#include "relation.h"
#include "shared.h"
#include "spi_util.h"

static const char *const org_roles[] = {"owner", "admin", "member", NULL};

/*
 * lock_org
 *		Lock the organization row (PT404 when there is none, or it is
 *		deleted).  The changes of an organization take it FOR NO KEY
 *		UPDATE and serialize; a user choosing it as their current one
 *		("shared") takes FOR KEY SHARE, which waits for none of them (a
 *		membership removed meanwhile is settled by the user's next read:
 *		shared.c).
 */
static void
lock_org_mode(const pg_uuid_t *org, bool shared)
{
	static SPIPlanPtr plan = NULL;
	static SPIPlanPtr plan_live = NULL;
	static SPIPlanPtr plan_share = NULL;
	Oid			t1[1] = {UUIDOID};
	Datum		args[1] = {UUIDPGetDatum(org)};
	SPIPlanPtr	lock;

	if (rs_schema()->stamps && shared)
		lock = rs_spi_kept(&plan_share,
						   "SELECT FROM roastr_state.organizations "
						   "WHERE id OPERATOR(pg_catalog.=) $1 AND deleted_at IS NULL "
						   "FOR KEY SHARE",
						   1, t1);
	else if (rs_schema()->stamps)
		lock = rs_spi_kept(&plan_live,
						   "SELECT FROM roastr_state.organizations "
						   "WHERE id OPERATOR(pg_catalog.=) $1 AND deleted_at IS NULL "
						   "FOR NO KEY UPDATE",
						   1, t1);
	else
		lock = rs_spi_kept(&plan,
						   "SELECT FROM roastr_state.organizations "
						   "WHERE id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
						   1, t1);
	if (rs_spi_run(lock, args, NULL, false, 0, SPI_OK_SELECT,
				   "lock an organization") == 0)
		ereport(ERROR,
				errcode(ERRCODE_ROASTR_NOT_FOUND),
				errmsg("organization %s does not exist", rs_uuid_to_cstring(org)));
}

/* Lock the organization row for a change of the organization. */
static void
lock_org(const pg_uuid_t *org)
{
	lock_org_mode(org, false);
}

/* The role of user in org, or NULL when not a member. */
static char *
role_of(const pg_uuid_t *org, const pg_uuid_t *user)
{
	static SPIPlanPtr plan = NULL;
	Oid			t2[2] = {UUIDOID, UUIDOID};
	Datum		args[2] = {UUIDPGetDatum(org), UUIDPGetDatum(user)};
	bool		isnull;

	if (rs_spi_run(rs_spi_kept(&plan,
							   "SELECT role FROM roastr_state.organization_members "
							   "WHERE org_id OPERATOR(pg_catalog.=) $1 "
							   "AND user_id OPERATOR(pg_catalog.=) $2",
							   2, t2),
				   args, NULL, false, 0, SPI_OK_SELECT,
				   "read a member's role") == 0)
		return NULL;
	return TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * touch
 *		Before 0.7.0's schema: bump a member whose current organization is
 *		org.  (With it, the member settles the change: see the file
 *		header.)
 */
static void
touch(const pg_uuid_t *org, const pg_uuid_t *user)
{
	static SPIPlanPtr plan = NULL;
	Oid			t2[2] = {UUIDOID, UUIDOID};
	Datum		args[2] = {UUIDPGetDatum(org), UUIDPGetDatum(user)};

	rs_spi_run(rs_spi_kept(&plan,
						   "UPDATE roastr_state.state "
						   "SET organization_changed_at = pg_catalog.clock_timestamp() "
						   "WHERE user_id OPERATOR(pg_catalog.=) $2 "
						   "AND organization_id OPERATOR(pg_catalog.=) $1",
						   2, t2),
			   args, NULL, false, 0, SPI_OK_UPDATE, "bump a member");
}

/* ERROR (PT404): the user is not a member of the organization. */
static void
not_member(const pg_uuid_t *org, const pg_uuid_t *user)
{
	ereport(ERROR,
			errcode(ERRCODE_ROASTR_NOT_FOUND),
			errmsg("user %s is not a member of organization %s",
				   rs_uuid_to_cstring(user), rs_uuid_to_cstring(org)));
}

/* ERROR (42501): the caller may not do "what". */
static void
denied(const char *what)
{
	ereport(ERROR,
			errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			errmsg("permission denied to %s", what));
}

/*
 * actor_role
 *		The acting user's role in org; the service acts as an owner.  A
 *		caller who is neither a member nor the service gets 42501.
 */
static const char *
actor_role(const RsCaller *caller, const pg_uuid_t *org, const char *what)
{
	char	   *r;

	if (caller->is_service)
		return "owner";
	if (!caller->has_user)
		denied(what);
	r = role_of(org, &caller->user_id);
	if (r == NULL)
		denied(what);
	return r;
}

/* a caller who is neither the service nor a user may do nothing at all */
static void
require_someone(const RsCaller *caller)
{
	if (!caller->is_service && !caller->has_user)
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied: the caller is not an authenticated user"));
}

/* Argument n, a uuid named "name" in the message; ERROR (22023) if null. */
static pg_uuid_t *
uuid_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("%s must not be null", name));
	return PG_GETARG_UUID_P(n);
}

/* Argument n, an organization role; ERROR (22023) if null or unknown. */
static char *
role_arg(FunctionCallInfo fcinfo, int n)
{
	char	   *r;

	if (PG_ARGISNULL(n))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("role must not be null"));
	r = text_to_cstring(PG_GETARG_TEXT_PP(n));
	for (int i = 0; org_roles[i]; i++)
		if (strcmp(org_roles[i], r) == 0)
			return r;
	ereport(ERROR,
			errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			errmsg("invalid organization role"),
			errdetail("Expected \"owner\", \"admin\" or \"member\"."));
	return NULL;				/* keep compiler quiet */
}

/* ERROR (22023) unless t is 3 to 63 of [a-z0-9-] (the table's check). */
static void
check_slug(text *t)
{
	const char *s = VARDATA_ANY(t);
	int			len = VARSIZE_ANY_EXHDR(t);

	if (len < 3 || len > 63)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid organization slug"),
				errdetail("A slug has 3 to 63 lower-case letters, digits and hyphens."));
	for (int i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
			  s[i] == '-'))
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid organization slug"),
					errdetail("A slug has 3 to 63 lower-case letters, digits and hyphens."));
}

/* Make org the user's current organization when they have none. */
static void
adopt_if_none(const pg_uuid_t *org, const pg_uuid_t *user)
{
	static SPIPlanPtr plan_adopt = NULL;
	Oid			t2[2] = {UUIDOID, UUIDOID};
	Datum		args[2] = {UUIDPGetDatum(org), UUIDPGetDatum(user)};

	rs_spi_run(rs_spi_kept(&plan_adopt,
						   "UPDATE roastr_state.state SET organization_id = $1 "
						   "WHERE user_id OPERATOR(pg_catalog.=) $2 AND organization_id IS NULL",
						   2, t2), args, NULL, false, 0, SPI_OK_UPDATE, "run an organization statement");
}

/* a user must exist to join */
static void
require_user(const pg_uuid_t *user)
{
	static SPIPlanPtr plan = NULL;
	Oid			t1[1] = {UUIDOID};
	Datum		args[1] = {UUIDPGetDatum(user)};

	rs_spi_run(rs_spi_kept(&plan, "SELECT FROM roastr_state.state WHERE user_id OPERATOR(pg_catalog.=) $1",
						   1, t1), args, NULL, false, 0, SPI_OK_SELECT, "run an organization statement");
	if (SPI_processed == 0)
		rs_no_state(user);
}

PG_FUNCTION_INFO_V1(roastr_state_create_organization);

/*
 * roastr_state.create_organization(owner uuid, name text, slug text) -> uuid
 *		The owner (or the service for them) creates an organization; it
 *		becomes the owner's current organization if they have none.
 */
Datum
roastr_state_create_organization(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	owner;
	RsUserSwitch sw;
	static SPIPlanPtr ins_org = NULL;
	static SPIPlanPtr ins_member = NULL;
	Oid			t3[3] = {TEXTOID, TEXTOID, UUIDOID};
	Datum		args[3];
	bool		isnull;
	pg_uuid_t	org;

	rs_resolve_target(fcinfo, 0, &caller, &owner);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("name and slug must not be null"));
	rs_require_label(PG_GETARG_TEXT_PP(1), "organization name", 200);
	check_slug(PG_GETARG_TEXT_PP(2));

	SPI_connect();
	rs_become_owner(&sw);
	require_user(&owner);
	args[0] = PG_GETARG_DATUM(1);
	args[1] = PG_GETARG_DATUM(2);
	rs_spi_run(rs_spi_kept(&ins_org, "INSERT INTO roastr_state.organizations (name, slug) "
						   "VALUES ($1, $2) RETURNING id", 2, t3), args, NULL, false, 0, SPI_OK_INSERT_RETURNING, "run an organization statement");
	org = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
	args[0] = UUIDPGetDatum(&org);
	args[1] = UUIDPGetDatum(&owner);
	{
		Oid			t2[2] = {UUIDOID, UUIDOID};

		rs_spi_run(rs_spi_kept(&ins_member, "INSERT INTO roastr_state.organization_members "
							   "(org_id, user_id, role) VALUES ($1, $2, 'owner')", 2, t2), args, NULL, false, 0, SPI_OK_INSERT, "run an organization statement");
	}
	adopt_if_none(&org, &owner);
	rs_restore_user(&sw);
	SPI_finish();
	{
		pg_uuid_t  *res = palloc(sizeof(pg_uuid_t));

		*res = org;
		PG_RETURN_UUID_P(res);
	}
}

PG_FUNCTION_INFO_V1(roastr_state_add_member);

/*
 * roastr_state.add_member(org uuid, user_id uuid, role text) -> void
 *		Owner or admin; only the owner adds admins.  Ownership is never
 *		added, only transferred (set_member_role).
 */
Datum
roastr_state_add_member(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	org = *uuid_arg(fcinfo, 0, "org");
	pg_uuid_t	user = *uuid_arg(fcinfo, 1, "user_id");
	char	   *role = role_arg(fcinfo, 2);
	const char *actor;
	RsUserSwitch sw;
	static SPIPlanPtr ins = NULL;
	Oid			t3[3] = {UUIDOID, UUIDOID, TEXTOID};
	Datum		args[3];

	rs_get_caller(&caller);
	require_someone(&caller);
	if (strcmp(role, "owner") == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("an organization has exactly one owner"),
				errhint("Add the member, then transfer ownership with set_member_role."));
	SPI_connect();
	rs_become_owner(&sw);
	lock_org(&org);
	actor = actor_role(&caller, &org, "add members to this organization");
	if (strcmp(actor, "member") == 0 ||
		(strcmp(role, "admin") == 0 && strcmp(actor, "owner") != 0))
		denied(strcmp(actor, "member") == 0 ?
			   "add members to this organization" : "make admins");
	require_user(&user);
	if (role_of(&org, &user) != NULL)
		ereport(ERROR,
				errcode(ERRCODE_UNIQUE_VIOLATION),
				errmsg("user %s is already a member of organization %s",
					   rs_uuid_to_cstring(&user), rs_uuid_to_cstring(&org)));
	args[0] = UUIDPGetDatum(&org);
	args[1] = UUIDPGetDatum(&user);
	args[2] = CStringGetTextDatum(role);
	rs_spi_run(rs_spi_kept(&ins, "INSERT INTO roastr_state.organization_members (org_id, user_id, role) "
						   "VALUES ($1, $2, $3)", 3, t3), args, NULL, false, 0, SPI_OK_INSERT, "run an organization statement");
	adopt_if_none(&org, &user);
	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(roastr_state_set_member_role);

/*
 * roastr_state.set_member_role(org uuid, user_id uuid, role text) -> void
 *		Only the owner makes or unmakes admins.  Role "owner" transfers
 *		ownership: the new owner is set and the old one becomes an admin.
 */
Datum
roastr_state_set_member_role(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	org = *uuid_arg(fcinfo, 0, "org");
	pg_uuid_t	user = *uuid_arg(fcinfo, 1, "user_id");
	char	   *role = role_arg(fcinfo, 2);
	const char *actor;
	char	   *current;
	RsUserSwitch sw;
	static SPIPlanPtr set = NULL;
	static SPIPlanPtr set_stamped = NULL;
	static SPIPlanPtr demote_owner = NULL;
	static SPIPlanPtr demote_owner_stamped = NULL;
	Oid			t3[3] = {UUIDOID, UUIDOID, TEXTOID};
	Oid			t1[1] = {UUIDOID};
	Datum		args[3];
	bool		stamps;

	rs_get_caller(&caller);
	require_someone(&caller);
	SPI_connect();
	rs_become_owner(&sw);
	stamps = rs_schema()->stamps;
	lock_org(&org);
	actor = actor_role(&caller, &org, "change roles in this organization");
	current = role_of(&org, &user);
	if (current == NULL)
		not_member(&org, &user);
	if (strcmp(current, role) != 0)
	{
		if (strcmp(actor, "owner") != 0)
			denied("change roles in this organization");
		if (strcmp(current, "owner") == 0)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("an organization has exactly one owner"),
					errhint("Transfer ownership by making another member the owner."));
		args[0] = UUIDPGetDatum(&org);
		args[1] = UUIDPGetDatum(&user);
		args[2] = CStringGetTextDatum(role);
		if (strcmp(role, "owner") == 0)
		{
			static SPIPlanPtr old_owner = NULL;
			bool		isnull;
			pg_uuid_t	prev;

			/* the previous owner, to bump; then demote, then promote */
			rs_spi_run(rs_spi_kept(&old_owner, "SELECT user_id FROM roastr_state.organization_members "
								   "WHERE org_id OPERATOR(pg_catalog.=) $1 AND role OPERATOR(pg_catalog.=) 'owner'",
								   1, t1), args, NULL, false, 0, SPI_OK_SELECT, "run an organization statement");
			if (SPI_processed != 1)
				elog(ERROR, "organization %s has no owner", rs_uuid_to_cstring(&org));
			prev = *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0],
												SPI_tuptable->tupdesc, 1, &isnull));
			rs_spi_run(stamps ?
					   rs_spi_kept(&demote_owner_stamped, "UPDATE roastr_state.organization_members SET role = 'admin', "
								   "changed_stamp = pg_catalog.nextval('roastr_state.shared_stamp') "
								   "WHERE org_id OPERATOR(pg_catalog.=) $1 AND role OPERATOR(pg_catalog.=) 'owner'",
								   1, t1) :
					   rs_spi_kept(&demote_owner, "UPDATE roastr_state.organization_members SET role = 'admin' "
								   "WHERE org_id OPERATOR(pg_catalog.=) $1 AND role OPERATOR(pg_catalog.=) 'owner'",
								   1, t1), args, NULL, false, 0, SPI_OK_UPDATE, "run an organization statement");
			if (!stamps)
				touch(&org, &prev);
		}
		rs_spi_run(stamps ?
				   rs_spi_kept(&set_stamped, "UPDATE roastr_state.organization_members SET role = $3, "
							   "changed_stamp = pg_catalog.nextval('roastr_state.shared_stamp') "
							   "WHERE org_id OPERATOR(pg_catalog.=) $1 AND user_id OPERATOR(pg_catalog.=) $2",
							   3, t3) :
				   rs_spi_kept(&set, "UPDATE roastr_state.organization_members SET role = $3 "
							   "WHERE org_id OPERATOR(pg_catalog.=) $1 AND user_id OPERATOR(pg_catalog.=) $2",
							   3, t3), args, NULL, false, 0, SPI_OK_UPDATE, "run an organization statement");
		/* the member may have gone while we waited (delete_user) */
		if (SPI_processed != 1)
			ereport(ERROR,
					errcode(ERRCODE_ROASTR_NOT_FOUND),
					errmsg("user %s is not a member of organization %s",
						   rs_uuid_to_cstring(&user), rs_uuid_to_cstring(&org)));
		if (stamps)
			rs_shared_broadcast_org(&org, "role");
		else
			touch(&org, &user);
	}
	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(roastr_state_remove_member);

/*
 * roastr_state.remove_member(org uuid, user_id uuid) -> void
 *		Owner or admin removes a member (only the owner removes an admin);
 *		a member may remove themselves (leave).  The owner cannot be removed:
 *		ownership must be transferred first.  A removed member whose current
 *		organization it was has none afterwards.
 */
Datum
roastr_state_remove_member(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	org = *uuid_arg(fcinfo, 0, "org");
	pg_uuid_t	user = *uuid_arg(fcinfo, 1, "user_id");
	char	   *target;
	RsUserSwitch sw;
	static SPIPlanPtr del = NULL;
	static SPIPlanPtr unset = NULL;
	Oid			t2[2] = {UUIDOID, UUIDOID};
	Datum		args[2];
	bool		self;

	rs_get_caller(&caller);
	require_someone(&caller);
	self = caller.has_user &&
		memcmp(caller.user_id.data, user.data, UUID_LEN) == 0;
	SPI_connect();
	rs_become_owner(&sw);
	lock_org(&org);
	target = role_of(&org, &user);
	if (!self || caller.is_service)
	{
		const char *actor = actor_role(&caller, &org, "remove members from this organization");

		if (target != NULL &&
			!(strcmp(actor, "owner") == 0 ||
			  (strcmp(actor, "admin") == 0 && strcmp(target, "member") == 0)))
			denied("remove this member");
	}
	if (target == NULL)
		not_member(&org, &user);
	if (strcmp(target, "owner") == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("an organization has exactly one owner"),
				errhint("Transfer ownership before the owner leaves."));
	args[0] = UUIDPGetDatum(&org);
	args[1] = UUIDPGetDatum(&user);
	rs_spi_run(rs_spi_kept(&del, "DELETE FROM roastr_state.organization_members "
						   "WHERE org_id OPERATOR(pg_catalog.=) $1 AND user_id OPERATOR(pg_catalog.=) $2",
						   2, t2), args, NULL, false, 0, SPI_OK_DELETE, "run an organization statement");
	rs_spi_run(rs_spi_kept(&unset, "UPDATE roastr_state.state SET organization_id = NULL "
						   "WHERE user_id OPERATOR(pg_catalog.=) $2 AND organization_id OPERATOR(pg_catalog.=) $1",
						   2, t2), args, NULL, false, 0, SPI_OK_UPDATE, "run an organization statement");
	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(roastr_state_rename_organization);

/*
 * roastr_state.rename_organization(org uuid, name text) -> void
 *		Owner or admin.  Every member whose current organization it is gets
 *		a new version: with their next call (0.7.0), else in this
 *		transaction.
 */
Datum
roastr_state_rename_organization(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	org = *uuid_arg(fcinfo, 0, "org");
	const char *actor;
	RsUserSwitch sw;
	static SPIPlanPtr ren = NULL;
	static SPIPlanPtr ren_stamped = NULL;
	static SPIPlanPtr touch_all = NULL;
	Oid			t2[2] = {UUIDOID, TEXTOID};
	Datum		args[2];

	rs_get_caller(&caller);
	require_someone(&caller);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("name must not be null"));
	rs_require_label(PG_GETARG_TEXT_PP(1), "organization name", 200);
	SPI_connect();
	rs_become_owner(&sw);
	lock_org(&org);
	actor = actor_role(&caller, &org, "rename this organization");
	if (strcmp(actor, "member") == 0)
		denied("rename this organization");
	args[0] = UUIDPGetDatum(&org);
	args[1] = PG_GETARG_DATUM(1);
	if (rs_schema()->stamps)
	{
		/* the organization's row only: its members settle it (file header) */
		rs_spi_run(rs_spi_kept(&ren_stamped, "UPDATE roastr_state.organizations SET name = $2, "
							   "changed_stamp = pg_catalog.nextval('roastr_state.shared_stamp') "
							   "WHERE id OPERATOR(pg_catalog.=) $1 AND name IS DISTINCT FROM $2",
							   2, t2), args, NULL, false, 0, SPI_OK_UPDATE, "run an organization statement");
		if (SPI_processed > 0)
			rs_shared_broadcast_org(&org, "rename");
	}
	else
	{
		rs_spi_run(rs_spi_kept(&ren, "UPDATE roastr_state.organizations SET name = $2 "
							   "WHERE id OPERATOR(pg_catalog.=) $1 AND name IS DISTINCT FROM $2",
							   2, t2), args, NULL, false, 0, SPI_OK_UPDATE, "run an organization statement");
		if (SPI_processed > 0)
			rs_spi_run(rs_spi_kept(&touch_all, "UPDATE roastr_state.state "
								   "SET organization_changed_at = pg_catalog.clock_timestamp() "
								   "WHERE organization_id OPERATOR(pg_catalog.=) $1",
								   1, t2), args, NULL, false, 0, SPI_OK_UPDATE, "run an organization statement");
	}
	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(roastr_state_delete_organization);

/*
 * roastr_state.delete_organization(org uuid) -> void
 *		The owner (or the service) deletes an organization, whatever its
 *		number of members: its row becomes a tombstone with a new change
 *		stamp, and one broadcast announces it; no member's state is written
 *		here.  Every member whose current organization it was has none from
 *		their next call on, as a version of their own (shared.c).  The
 *		slug is free again at once; the memberships stay, invisible, until
 *		their users go (the last one takes the tombstone along).
 */
Datum
roastr_state_delete_organization(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	org = *uuid_arg(fcinfo, 0, "org");
	const char *actor;
	RsUserSwitch sw;
	static SPIPlanPtr del = NULL;
	Oid			t1[1] = {UUIDOID};
	Datum		args[1];

	rs_get_caller(&caller);
	require_someone(&caller);
	SPI_connect();
	rs_become_owner(&sw);
	if (!rs_schema()->stamps)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("organizations cannot be deleted before ALTER EXTENSION roastr_state UPDATE"),
				errdetail("Deleting an organization needs version 0.7.0 of the extension."));
	lock_org(&org);
	actor = actor_role(&caller, &org, "delete this organization");
	if (strcmp(actor, "owner") != 0)
		denied("delete this organization");
	args[0] = UUIDPGetDatum(&org);
	rs_spi_run(rs_spi_kept(&del, "UPDATE roastr_state.organizations "
						   "SET deleted_at = pg_catalog.now(), "
						   "changed_stamp = pg_catalog.nextval('roastr_state.shared_stamp') "
						   "WHERE id OPERATOR(pg_catalog.=) $1",
						   1, t1), args, NULL, false, 0, SPI_OK_UPDATE, "run an organization statement");
	rs_shared_broadcast_org(&org, "delete");
	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(roastr_state_set_current_organization);

/*
 * roastr_state.set_current_organization(user_id uuid, org uuid) -> void
 *		The organization state.organization shows; NULL for none.  The user
 *		must be a member (42501 otherwise).
 */
Datum
roastr_state_set_current_organization(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	pg_uuid_t	user;
	RsUserSwitch sw;
	static SPIPlanPtr set = NULL;
	Oid			t2[2] = {UUIDOID, UUIDOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};

	rs_resolve_target(fcinfo, 0, &caller, &user);
	SPI_connect();
	rs_become_owner(&sw);
	require_user(&user);
	if (!PG_ARGISNULL(1))
	{
		pg_uuid_t	org = *PG_GETARG_UUID_P(1);

		lock_org_mode(&org, true);
		if (role_of(&org, &user) == NULL)
			denied("make an organization current that the user is not a member of");
		args[1] = UUIDPGetDatum(PG_GETARG_UUID_P(1));
	}
	else
	{
		args[1] = (Datum) 0;
		nulls[1] = 'n';
	}
	args[0] = UUIDPGetDatum(&user);
	rs_spi_run(rs_spi_kept(&set, "UPDATE roastr_state.state SET organization_id = $2 "
						   "WHERE user_id OPERATOR(pg_catalog.=) $1", 2, t2), args, nulls, false, 0, SPI_OK_UPDATE, "run an organization statement");
	rs_restore_user(&sw);
	SPI_finish();
	PG_RETURN_VOID();
}
