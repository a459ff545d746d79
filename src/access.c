/*-------------------------------------------------------------------------
 *
 * access.c
 *	  Who is calling, whose state they may touch, and running table access
 *	  as the extension owner.
 *
 * Callers are either the *service* (a superuser, a role with BYPASSRLS, or
 * a role with the privileges of roastr_state.service_role) or a *user*,
 * identified by the "sub" claim of the JWT that PostgREST/Supabase put in
 * request.jwt.claims (or, with older PostgREST, request.jwt.claim.sub).
 *
 * None of our functions is SECURITY DEFINER: GetUserId() is the real caller
 * when a function starts.  After the checks here succeed, the function
 * switches to the owner of roastr_state.state for its table access
 * (SECURITY_LOCAL_USERID_CHANGE, as maintenance commands do); transaction
 * and subtransaction abort restore the previous user if anything fails.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/access.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "roastr_state.h"

char	   *rs_service_role_name = NULL;

/* Cache of the last claims string seen and the user it names. */
static char *cached_claims = NULL;
static bool cached_has_user = false;
static pg_uuid_t cached_user;

/* Cache of roastr_state.state's OID and owner, reset by relcache inval. */
static Oid	state_relid = InvalidOid;
static Oid	state_owner = InvalidOid;
static RsLayout layout_cache;
static bool layout_valid = false;
static bool callback_registered = false;

static void
relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == state_relid ||
		relid == layout_cache.relid)
	{
		state_relid = InvalidOid;
		state_owner = InvalidOid;
		layout_valid = false;
	}
}

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

Oid
rs_extension_owner(void)
{
	(void) rs_state_relid();
	return state_owner;
}

/*
 * rs_layout
 *		Attribute numbers of roastr_state.state's columns, found by name.
 *		Cached until the next relcache invalidation of the table.
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
			TupleDescAttr(desc, l->att_field[f] - 1)->atttypid !=
			rs_field_typoid(&rs_fields[f]))
			l->att_user_id = 0;
	}
	if ((l->att_user_id && TupleDescAttr(desc, l->att_user_id - 1)->atttypid != UUIDOID) ||
		(l->att_version && TupleDescAttr(desc, l->att_version - 1)->atttypid != INT8OID) ||
		(l->att_updated_at && TupleDescAttr(desc, l->att_updated_at - 1)->atttypid != TIMESTAMPTZOID) ||
		(l->att_fv && TupleDescAttr(desc, l->att_fv - 1)->atttypid != INT8ARRAYOID) ||
		(l->att_ft && TupleDescAttr(desc, l->att_ft - 1)->atttypid != TIMESTAMPTZARRAYOID) ||
		(l->att_created_at && TupleDescAttr(desc, l->att_created_at - 1)->atttypid != TIMESTAMPTZOID))
		l->att_user_id = 0;
	if (!l->att_user_id || !l->att_version || !l->att_updated_at ||
		!l->att_fv || !l->att_ft || !l->att_created_at)
		ereport(ERROR,
				errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				errmsg("relation \"%s\" does not have the columns of roastr_state.state",
					   RelationGetRelationName(rel)),
				errdetail("A column is missing or has another type than the extension created."),
				errtable(rel));
	layout_valid = true;
	return l;
}

/*
 * A JSON parse that keeps the top-level "sub" string and nothing else.
 * Callbacks return void before PostgreSQL 16, a status from 16 on.
 */
typedef struct ClaimsParse
{
	int			depth;
	bool		at_sub;
	bool		found;
	char	   *sub;
} ClaimsParse;

static RS_JSON_ACTION
claims_object_start(void *state)
{
	((ClaimsParse *) state)->depth++;
	RS_JSON_RETURN;
}

static RS_JSON_ACTION
claims_object_end(void *state)
{
	((ClaimsParse *) state)->depth--;
	RS_JSON_RETURN;
}

static RS_JSON_ACTION
claims_field_start(void *state, char *fname, bool isnull)
{
	ClaimsParse *p = (ClaimsParse *) state;

	p->at_sub = (p->depth == 1 && strcmp(fname, "sub") == 0);
	RS_JSON_RETURN;
}

static RS_JSON_ACTION
claims_scalar(void *state, char *token, JsonTokenType tokentype)
{
	ClaimsParse *p = (ClaimsParse *) state;

	if (p->at_sub && p->depth == 1)
	{
		p->found = (tokentype == JSON_TOKEN_STRING);
		p->sub = p->found ? pstrdup(token) : NULL;
	}
	p->at_sub = false;
	RS_JSON_RETURN;
}

static RS_JSON_ACTION
claims_array_start(void *state)
{
	ClaimsParse *p = (ClaimsParse *) state;

	/* "sub": [...] is not a subject */
	if (p->at_sub && p->depth == 1)
	{
		p->found = false;
		p->sub = NULL;
	}
	p->at_sub = false;
	p->depth++;
	RS_JSON_RETURN;
}

static RS_JSON_ACTION
claims_array_end(void *state)
{
	((ClaimsParse *) state)->depth--;
	RS_JSON_RETURN;
}

/*
 * parse_claims_sub
 *		The "sub" of a JSON claims object, when it is a UUID.  Malformed JSON
 *		or a missing or non-UUID sub names no user: the caller then gets
 *		42501, never a parse error.  The parse builds nothing but that one
 *		string.
 */
static bool
parse_claims_sub(const char *claims, pg_uuid_t *out)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	ClaimsParse state;
	pg_uuid_t  *u;

	memset(&state, 0, sizeof(state));
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &state;
	sem.object_start = claims_object_start;
	sem.object_end = claims_object_end;
	sem.array_start = claims_array_start;
	sem.array_end = claims_array_end;
	sem.object_field_start = claims_field_start;
	sem.scalar = claims_scalar;

	lex = RS_MAKE_JSON_LEX((char *) claims, strlen(claims));
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS || !state.found ||
		state.sub == NULL)
		return false;
	u = rs_parse_uuid(state.sub);
	if (u == NULL)
		return false;
	*out = *u;
	return true;
}

static bool
caller_user(pg_uuid_t *out)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);

	if (claims != NULL && claims[0] != '\0')
	{
		if (cached_claims == NULL || strcmp(cached_claims, claims) != 0)
		{
			MemoryContext old;

			if (cached_claims)
				pfree(cached_claims);
			cached_claims = NULL;
			cached_has_user = parse_claims_sub(claims, &cached_user);
			old = MemoryContextSwitchTo(TopMemoryContext);
			cached_claims = pstrdup(claims);
			MemoryContextSwitchTo(old);
		}
		if (cached_has_user)
			*out = cached_user;
		return cached_has_user;
	}
	else
	{
		const char *sub = GetConfigOption("request.jwt.claim.sub", true, false);
		pg_uuid_t  *u;

		if (sub == NULL || sub[0] == '\0')
			return false;
		u = rs_parse_uuid(sub);
		if (u == NULL)
			return false;
		*out = *u;
		return true;
	}
}

static bool
role_is_service(Oid role)
{
	Oid			svc;

	if (superuser_arg(role) || has_bypassrls_privilege(role))
		return true;
	if (rs_service_role_name == NULL || rs_service_role_name[0] == '\0')
		return false;
	svc = get_role_oid(rs_service_role_name, true);
	return OidIsValid(svc) && has_privs_of_role(role, svc);
}

/*
 * rs_get_caller
 *		Classify the current role and read its JWT subject, if any.
 */
void
rs_get_caller(RsCaller *caller)
{
	memset(caller, 0, sizeof(RsCaller));
	caller->is_service = role_is_service(GetUserId());
	caller->has_user = caller_user(&caller->user_id);
}

/*
 * rs_authorize
 *		Decide whose state a call acts on.  A NULL user_id means the caller;
 *		users may act on their own state only, the service on anyone's.
 */
void
rs_authorize(const RsCaller *caller, bool user_isnull, Datum user_arg,
			 pg_uuid_t *target)
{
	if (user_isnull)
	{
		if (caller->has_user)
		{
			*target = caller->user_id;
			return;
		}
		if (caller->is_service)
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("user_id must not be null"),
					errhint("The service must name the user it acts for."));
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied: the caller is not an authenticated user"),
				errhint("Set request.jwt.claims with a \"sub\" claim, as PostgREST does."));
	}

	*target = *DatumGetUUIDP(user_arg);
	if (caller->is_service)
		return;
	if (caller->has_user &&
		memcmp(caller->user_id.data, target->data, UUID_LEN) == 0)
		return;
	ereport(ERROR,
			errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			errmsg("permission denied to act on another user's state"));
}

/*
 * rs_resolve_target
 *		The caller, and whose state a SQL function acts on: argument
 *		"argno" (a uuid, NULL for the caller), authorized as above.
 */
void
rs_resolve_target(FunctionCallInfo fcinfo, int argno, RsCaller *caller,
				  pg_uuid_t *target)
{
	rs_get_caller(caller);
	rs_authorize(caller, PG_ARGISNULL(argno),
				 PG_ARGISNULL(argno) ? (Datum) 0 : PG_GETARG_DATUM(argno),
				 target);
}

void
rs_require_service(const RsCaller *caller, const char *funcname)
{
	if (!caller->is_service)
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied for function %s", funcname),
				errhint("Only the service role (roastr_state.service_role) may call it."));
}

/*
 * rs_become_owner / rs_restore_user
 *		Run table access as the owner of roastr_state.state.  The caller has
 *		been checked already.  An error in between needs no cleanup:
 *		(sub)transaction abort restores the user and security context.
 */
void
rs_become_owner(RsUserSwitch *sw)
{
	Oid			owner = rs_extension_owner();

	GetUserIdAndSecContext(&sw->save_userid, &sw->save_sec_context);
	SetUserIdAndSecContext(owner, sw->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

void
rs_restore_user(RsUserSwitch *sw)
{
	SetUserIdAndSecContext(sw->save_userid, sw->save_sec_context);
}

PG_FUNCTION_INFO_V1(roastr_state_caller_is_service);

/*
 * roastr_state.caller_is_service() -> bool, for row security policies.
 */
Datum
roastr_state_caller_is_service(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(role_is_service(GetUserId()));
}

PG_FUNCTION_INFO_V1(roastr_state_authorize_channel);

/*
 * roastr_state.authorize_channel(channel text) -> bool
 *		Whether the caller may LISTEN on a channel: a user on their own
 *		"user:<uuid>" channel; the service on every channel of ours.
 *		Anything malformed is simply false.
 */
Datum
roastr_state_authorize_channel(PG_FUNCTION_ARGS)
{
	RsCaller	caller;
	char	   *ch;
	pg_uuid_t  *u;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	ch = text_to_cstring(PG_GETARG_TEXT_PP(0));
	rs_get_caller(&caller);

	if (strncmp(ch, "user:", 5) == 0)
	{
		/* channel names are exact: only the lower-case spelling we use */
		u = rs_parse_uuid(ch + 5);
		if (u == NULL || strcmp(rs_uuid_to_cstring(u), ch + 5) != 0)
			PG_RETURN_BOOL(false);
		if (caller.is_service)
			PG_RETURN_BOOL(true);
		PG_RETURN_BOOL(caller.has_user &&
					   memcmp(u->data, caller.user_id.data, UUID_LEN) == 0);
	}
	if (strcmp(ch, "roastr_state") == 0 ||
		strcmp(ch, "roastr_state_embeddings") == 0)
		PG_RETURN_BOOL(caller.is_service);
	PG_RETURN_BOOL(false);
}
