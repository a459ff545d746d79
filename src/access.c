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

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "access.h"
#include "compat.h"
#include "json_util.h"
#include "relation.h"

/* roastr_state.service_role */
static char *service_role_name = NULL;

/* Cache of the last claims string seen and the user it names. */
static char *cached_claims = NULL;
static bool cached_has_user = false;
static pg_uuid_t cached_user;

/*
 * A JSON parse that keeps the top-level "sub" string and nothing else.
 * Callbacks return void before PostgreSQL 16, a status from 16 on.
 */
typedef struct RsClaimsParse
{
	int			depth;
	bool		at_sub;
	bool		found;
	char	   *sub;
} RsClaimsParse;

/* JSON callback: entering an object. */
static RS_JSON_ACTION
claims_object_start(void *state)
{
	((RsClaimsParse *) state)->depth++;
	RS_JSON_RETURN;
}

/* JSON callback: leaving an object. */
static RS_JSON_ACTION
claims_object_end(void *state)
{
	((RsClaimsParse *) state)->depth--;
	RS_JSON_RETURN;
}

/* JSON callback: a key; remember whether it is the top-level "sub". */
static RS_JSON_ACTION
claims_field_start(void *state, char *fname, bool isnull)
{
	RsClaimsParse *p = (RsClaimsParse *) state;

	p->at_sub = (p->depth == 1 && strcmp(fname, "sub") == 0);
	RS_JSON_RETURN;
}

/* JSON callback: a scalar; keep it when it is the value of "sub". */
static RS_JSON_ACTION
claims_scalar(void *state, char *token, JsonTokenType tokentype)
{
	RsClaimsParse *p = (RsClaimsParse *) state;

	if (p->at_sub && p->depth == 1)
	{
		p->found = (tokentype == JSON_TOKEN_STRING);
		p->sub = p->found ? pstrdup(token) : NULL;
	}
	p->at_sub = false;
	RS_JSON_RETURN;
}

/* JSON callback: entering an array. */
static RS_JSON_ACTION
claims_array_start(void *state)
{
	RsClaimsParse *p = (RsClaimsParse *) state;

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

/* JSON callback: leaving an array. */
static RS_JSON_ACTION
claims_array_end(void *state)
{
	((RsClaimsParse *) state)->depth--;
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
	RsClaimsParse state;
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

/*
 * caller_user
 *		The user named by the JWT claims PostgREST set for this request, if
 *		any.  The last claims string and its user are cached, since every
 *		call of a request sees the same one.
 */
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

/*
 * role_is_service
 *		Whether "role" acts as the service: a superuser, a role with
 *		BYPASSRLS, or one with the privileges of roastr_state.service_role.
 */
static bool
role_is_service(Oid role)
{
	Oid			svc;

	if (superuser_arg(role) || has_bypassrls_privilege(role))
		return true;
	if (service_role_name == NULL || service_role_name[0] == '\0')
		return false;
	svc = get_role_oid(service_role_name, true);
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

/*
 * rs_require_service
 *		ERROR (42501) unless the caller is the service; "funcname" names the
 *		SQL function in the message.
 */
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

/* Back to the user and security context rs_become_owner saved. */
void
rs_restore_user(RsUserSwitch *sw)
{
	SetUserIdAndSecContext(sw->save_userid, sw->save_sec_context);
}

/*
 * rs_caller_is_service
 *		Whether the current role acts as the service (row security policies
 *		ask this through roastr_state.caller_is_service()).
 */
bool
rs_caller_is_service(void)
{
	return role_is_service(GetUserId());
}

/*
 * rs_channel_allowed
 *		Whether "caller" may LISTEN on "channel": a user on their own
 *		"user:<uuid>" channel (exactly the lower-case spelling we send
 *		to); the service on every channel of ours (the broadcast
 *		channel of shared changes included).
 */
bool
rs_channel_allowed(const RsCaller *caller, const char *channel)
{
	if (strncmp(channel, "user:", 5) == 0)
	{
		pg_uuid_t  *u = rs_parse_uuid(channel + 5);

		if (u == NULL || strcmp(rs_uuid_to_cstring(u), channel + 5) != 0)
			return false;
		if (caller->is_service)
			return true;
		return caller->has_user &&
			memcmp(u->data, caller->user_id.data, UUID_LEN) == 0;
	}
	if (strcmp(channel, "roastr_state") == 0 ||
		strcmp(channel, "roastr_state_embeddings") == 0 ||
		strcmp(channel, "roastr_state_broadcast") == 0)
		return caller->is_service;
	return false;
}

/*
 * rs_access_init
 *		Define roastr_state.service_role; called once, from _PG_init.
 */
void
rs_access_init(void)
{
	DefineCustomStringVariable("roastr_state.service_role",
							   "Role whose members act as the roastr_state service.",
							   "Superusers and roles with BYPASSRLS are the service as well.",
							   &service_role_name,
							   "service_role",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
}
