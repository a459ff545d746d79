/*-------------------------------------------------------------------------
 *
 * patch.c
 *	  patch(): apply field changes all or nothing, with field-level
 *	  optimistic locking and an optional mutation id.
 *
 * A patch goes through four steps:
 *
 *	1. parse: every key and value is checked before anything is written --
 *	   a known field, writable by this caller, the right type and range.
 *	   This is the one validation of a patched value: the trigger is told
 *	   (rs_trigger_execute) not to validate those values again;
 *	2. claim: with a mutation id, the id is recorded under the user's row
 *	   lock, or its first answer is returned (mutation.c);
 *	3. apply: persona text is sealed and written to its own table
 *	   (persona.c), then one UPDATE of the state row, through a kept plan
 *	   per set of patched fields, goes through the state trigger, which
 *	   does the version check, the bump, the change log and the
 *	   notification -- so a patch and a backend's direct UPDATE follow
 *	   exactly the same rules;
 *	4. respond: {version, applied}, recorded for the mutation id; the
 *	   history token is added to every answer (with_history).
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/patch.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "access.h"
#include "crypto.h"
#include "fields.h"
#include "history.h"
#include "json_util.h"
#include "mutation.h"
#include "patch.h"
#include "persona.h"
#include "read.h"
#include "relation.h"
#include "spi_util.h"
#include "trigger.h"
#include "user_state.h"

/* A patch being applied: what the steps pass on. */
typedef struct RsPatch
{
	const RsPatchRequest *req;
	RsCaller	caller;
	pg_uuid_t	user;
	uint32		requested;		/* the fields the patch names */
	uint32		mask;			/* the fields the UPDATE writes */
	Datum		vals[RS_NFIELDS];
	bool		nulls[RS_NFIELDS];
	uint32		persona_changed;
	RsUserState st;				/* read under the row lock (persona only) */
	RsDataKey  *dek;			/* the user's data key (persona only) */
	MemoryContext cxt;			/* where the answer is built */
} RsPatch;

/* The kept UPDATE of one set of patched fields. */
typedef struct RsUpdatePlanEntry
{
	uint32		mask;			/* hash key: the patched fields */
	SPIPlanPtr	plan;
} RsUpdatePlanEntry;

static HTAB *update_plans = NULL;

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

/*
 * check_key
 *		ERROR unless "path", a key of the patch, names a field this caller
 *		may write through patch() in the installed schema; returns it.
 */
static const RsField *
check_key(const char *path, int len, const RsCaller *caller,
		  const RsSchema *schema)
{
	bool		has_keys = schema->has_keys;
	const RsField *f = NULL;
	char	   *p = pnstrdup(path, len);

	switch (rs_check_patch_key(path, len, caller->is_service, &f))
	{
		case RS_KEY_OK:
			break;
		case RS_KEY_DERIVED:
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("field \"%s\" is derived and cannot be written", p));
			break;
		case RS_KEY_UNKNOWN:
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("unknown field \"%s\"", p),
					errhint("Field paths look like \"roasting.enabled\"; see the README for the list."));
			break;
		case RS_KEY_SYSTEM:
			ereport(ERROR,
					errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("field \"%s\" cannot be written by patch", p),
					errhint("It is maintained by a dedicated function of roastr_state."));
			break;
		case RS_KEY_SERVICE_ONLY:
			ereport(ERROR,
					errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					errmsg("permission denied to write field \"%s\"", p),
					errhint("Only the service role may change it."));
			break;
	}
	if (f->type == FT_SECRET && !has_keys)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("field \"%s\" cannot be written before ALTER EXTENSION roastr_state UPDATE", p),
				errdetail("Persona text is stored only encrypted, which needs version 0.2.0 of the extension."));
	if (f->column != NULL && schema->layout->att_field[f->id] == 0)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("field \"%s\" cannot be written before ALTER EXTENSION roastr_state UPDATE", p),
				errdetail("The installed version of the extension has no column for it."));
	return f;
}

/*
 * patch_parse
 *		Step 1: check every key and value of the patch before anything is
 *		written, and convert the values (validated, once).  Fills p->vals,
 *		p->nulls and p->requested.
 */
static void
patch_parse(RsPatch *p)
{
	Jsonb	   *changes = p->req->changes;
	const RsSchema *schema = rs_schema();
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
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
			f = check_key(v.val.string.val, v.val.string.len, &p->caller,
						  schema);
		else if (tok == WJB_VALUE)
		{
			Assert(f != NULL);
			p->vals[f->id] = rs_value_from_jsonb(f, &v, &p->nulls[f->id]);
			p->requested |= RS_FIELD_BIT(f->id);
		}
	}
	p->mask = p->requested;
}

/*
 * answer_empty
 *		An empty patch without a mutation id changes nothing: answer
 *		{version, applied: []} from a plain read (which settles, as every
 *		read that may write does).
 */
static Jsonb *
answer_empty(RsPatch *p)
{
	RsUserState st;
	JsonbParseState *js = NULL;
	JsonbValue *res;

	rs_read_settled(&p->user, &st);
	if (!p->req->base_null && p->req->base > st.version)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("base version %lld is newer than the current version %lld",
					   (long long) p->req->base, (long long) st.version),
				errhint("Use a version returned by state_full, state_sync or patch."));
	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	rs_jb_key(&js, "version");
	rs_jb_int64(&js, st.version);
	rs_jb_key(&js, "applied");
	pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
	pushJsonbValue(&js, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * get_update_plan
 *		The kept UPDATE for one set of patched fields:
 *		UPDATE state SET version = coalesce($2, version), <col> = $3, ...
 *		Fields are bound in field-id order.  Inside SPI.
 */
static SPIPlanPtr
get_update_plan(uint32 mask)
{
	RsUpdatePlanEntry *e;
	bool		found;

	if (update_plans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(RsUpdatePlanEntry);
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
			if (!(mask & RS_FIELD_BIT(f)) || rs_fields[f].column == NULL)
				continue;
			types[n] = rs_field_typoid(&rs_fields[f]);
			n++;
			appendStringInfo(&sql, ", %s = $%d", rs_fields[f].column, n);
		}
		appendStringInfoString(&sql, " WHERE user_id OPERATOR(pg_catalog.=) $1");
		PG_TRY();
		{
			e->plan = rs_spi_keep(sql.data, n, types);
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
 * patch_apply
 *		Step 3: seal and write what changed of the persona text (changed
 *		text makes the embeddings stale), then run the UPDATE of the state
 *		row through the trigger.  Returns the new version.  Inside SPI, as
 *		the owner; with persona text, p->st holds the row read under lock.
 */
static int64
patch_apply(RsPatch *p)
{
	Datum		args[RS_NFIELDS + 2];
	char		argnulls[RS_NFIELDS + 2];
	int			nargs = 2;
	RsTriggerCall call = {0};
	RsLastApply applied;

	if (p->mask & RS_PERSONA_TEXT_MASK)
	{
		p->persona_changed = rs_persona_apply(&p->user, &p->st, p->mask,
											  p->vals, p->nulls, p->dek);
		p->dek = NULL;			/* wiped by rs_persona_apply */
		if (p->persona_changed)
		{
			p->mask |= RS_FIELD_BIT(F_PERSONA_EMBEDDINGS_AT) |
				RS_FIELD_BIT(F_PERSONA_EMBEDDINGS_MODEL);
			p->nulls[F_PERSONA_EMBEDDINGS_AT] = true;
			p->nulls[F_PERSONA_EMBEDDINGS_MODEL] = true;
		}
	}

	args[0] = UUIDPGetDatum(&p->user);
	argnulls[0] = ' ';
	args[1] = Int64GetDatum(p->req->base);
	argnulls[1] = p->req->base_null ? 'n' : ' ';
	for (int f = 0; f < RS_NFIELDS; f++)
	{
		if (!(p->mask & RS_FIELD_BIT(f)) || rs_fields[f].column == NULL)
			continue;
		args[nargs] = p->vals[f];
		argnulls[nargs] = p->nulls[f] ? 'n' : ' ';
		nargs++;
	}

	call.user = &p->user;
	call.persona_changed = p->persona_changed;
	call.validated = p->requested;
	if (rs_trigger_execute(get_update_plan(p->mask), args, argnulls, &call,
						   SPI_OK_UPDATE, "update user state", &applied) == 0)
		rs_no_state(&p->user);
	if (!applied.valid)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("trigger \"roastr_state_version\" did not run"),
				errdetail("State cannot change without its version check."),
				errhint("Check that the trigger is enabled and session_replication_role is not \"replica\"."));
	return applied.new_version;
}

/*
 * patch_respond
 *		Step 4: {version, applied}, built in p->cxt.  "applied" lists the
 *		fields the patch named, in field-id order.
 */
static Jsonb *
patch_respond(RsPatch *p, int64 version)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);
	JsonbParseState *js = NULL;
	JsonbValue *res;
	Jsonb	   *result;

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	rs_jb_key(&js, "version");
	rs_jb_int64(&js, version);
	rs_jb_key(&js, "applied");
	pushJsonbValue(&js, WJB_BEGIN_ARRAY, NULL);
	for (int f = 0; f < RS_NFIELDS; f++)
		if (p->requested & RS_FIELD_BIT(f))
			rs_jb_elem_string(&js, rs_fields[f].path);
	pushJsonbValue(&js, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	result = JsonbValueToJsonb(res);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * patch_write
 *		Steps 2 to 4, inside SPI as the owner.  With persona text the row is
 *		locked and read and the user's data key opened first (a mutation
 *		id's request hash is keyed by it).
 */
static Jsonb *
patch_write(RsPatch *p)
{
	const RsPatchRequest *req = p->req;
	RsUserSwitch sw;
	bytea	   *hash = NULL;
	Jsonb	   *result = NULL;

	SPI_connect();
	rs_become_owner(&sw);

	if (p->mask & RS_PERSONA_TEXT_MASK)
	{
		if (!rs_read_state(&p->user, &p->st, p->cxt, false, true))
			rs_no_state(&p->user);
		p->dek = rs_user_dek(&p->user, &p->st, true);
	}

	if (req->has_mid)
	{
		hash = rs_mutation_hash(req->changes, req->base_null, req->base,
								p->dek);
		result = rs_mutation_claim(&p->user, &req->mid, hash, p->cxt);
	}
	if (result == NULL)
	{
		result = patch_respond(p, patch_apply(p));
		if (req->has_mid)
			rs_mutation_record(&p->user, &req->mid, result);
	}

	if (p->dek != NULL)
		rs_datakey_clear(p->dek);
	rs_restore_user(&sw);
	SPI_finish();
	return result;
}

/*
 * with_history
 *		The answer with "history", the token of the history its version
 *		belongs to (history.c): this server's, without a WAL position (the
 *		commit's is not known yet).  It is added when answering, not stored
 *		with a mutation id: a first answer found here was committed here,
 *		so its version is of this server's history too.
 */
static Jsonb *
with_history(Jsonb *answer)
{
	JsonbParseState *js = NULL;
	JsonbValue *res;

	pushJsonbValue(&js, WJB_BEGIN_OBJECT, NULL);
	rs_jb_key(&js, "history");
	rs_jb_string(&js, rs_history_token(false));
	res = pushJsonbValue(&js, WJB_END_OBJECT, NULL);
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
											  JsonbPGetDatum(answer),
											  JsonbPGetDatum(JsonbValueToJsonb(res))));
}

/*
 * rs_patch
 *		roastr_state.patch(): authorize, parse and validate, then write (or
 *		answer an empty patch from a read).  Returns {version, applied,
 *		history}.
 *		Before anything that could fail, it decides whether the patch
 *		carries persona text, so that no error can log the statement.
 */
Jsonb *
rs_patch(const RsPatchRequest *req)
{
	RsPatch		p;
	bool		carries_persona = false;
	ErrorContextCallback errcb;
	Jsonb	   *result;

	memset(&p, 0, sizeof(p));
	p.req = req;
	p.cxt = CurrentMemoryContext;

	errcb.callback = hide_statement_callback;
	errcb.arg = &carries_persona;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	if (req->changes != NULL)
		carries_persona = mentions_persona(req->changes);

	rs_get_caller(&p.caller);
	rs_authorize(&p.caller, req->user_isnull, req->user_arg, &p.user);
	if (req->changes == NULL)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("changes must not be null"));
	if (!req->base_null && req->base < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("base version must not be negative"));

	patch_parse(&p);
	if (p.requested == 0 && !req->has_mid)
		result = answer_empty(&p);
	else
		result = patch_write(&p);

	error_context_stack = errcb.previous;
	return with_history(result);
}
