/*-------------------------------------------------------------------------
 *
 * roastr_state.h
 *	  Shared private declarations of the roastr_state extension.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/roastr_state.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ROASTR_STATE_H
#define ROASTR_STATE_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "executor/spi.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "core/rs_fields_core.h"

/* Version shims: only here (see STYLE.md). */
#if PG_VERSION_NUM < 150000
#error "roastr_state requires PostgreSQL 15 or later"
#endif

#if PG_VERSION_NUM >= 160000
#define RS_DECODE_DATETIME(field, ftype, nf, dtype, tm, fsec, tz) \
	DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tz, &rs_dterr_extra)
#define RS_DTERR_EXTRA_DECL DateTimeErrorExtra rs_dterr_extra
#else
#define RS_DECODE_DATETIME(field, ftype, nf, dtype, tm, fsec, tz) \
	DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tz)
#define RS_DTERR_EXTRA_DECL int rs_dterr_extra pg_attribute_unused()
#endif

#if PG_VERSION_NUM >= 160000
#define RS_JSON_ACTION JsonParseErrorType
#define RS_JSON_RETURN return JSON_SUCCESS
#else
#define RS_JSON_ACTION void
#define RS_JSON_RETURN return
#endif

#if PG_VERSION_NUM >= 170000
#define RS_MAKE_JSON_LEX(json, len) \
	makeJsonLexContextCstringLen(NULL, json, len, GetDatabaseEncoding(), true)
#else
#define RS_MAKE_JSON_LEX(json, len) \
	makeJsonLexContextCstringLen(json, len, GetDatabaseEncoding(), true)
#endif

/*
 * Our SQLSTATEs.  PostgREST turns a "PTnnn" code into HTTP status nnn.
 */
#define ERRCODE_ROASTR_CONFLICT			MAKE_SQLSTATE('P','T','4','0','9')
#define ERRCODE_ROASTR_PLAN_REQUIRED	MAKE_SQLSTATE('P','T','4','0','2')
#define ERRCODE_ROASTR_UNAUTHORIZED		MAKE_SQLSTATE('P','T','4','0','1')
#define ERRCODE_ROASTR_NOT_FOUND		MAKE_SQLSTATE('P','T','4','0','4')

#define ROASTR_SCHEMA		"roastr_state"
#define ROASTR_STATE_TABLE	"state"

/* fields.c */
extern void rs_validate_value(const RsField *f, Datum value, bool isnull);
extern void rs_require_label(text *t, const char *what, int maxchars);
extern Datum rs_value_from_jsonb(const RsField *f, JsonbValue *v, bool *isnull);
extern void rs_value_to_json(StringInfo buf, const RsField *f, Datum value,
							 bool isnull);
extern void rs_value_to_jsonb(JsonbParseState **st, const RsField *f,
							  Datum value, bool isnull);
extern bool rs_values_equal(const RsField *f, Datum a, bool anull,
							Datum b, bool bnull);
extern Oid	rs_field_typoid(const RsField *f);

/* jsonb building helpers (fields.c) */
extern void jb_key(JsonbParseState **st, const char *key);
extern void jb_string(JsonbParseState **st, const char *s);
extern void jb_elem_string(JsonbParseState **st, const char *s);
extern void jb_int64(JsonbParseState **st, int64 v);
extern void jb_bool(JsonbParseState **st, bool v);
extern void jb_null(JsonbParseState **st);
extern void jb_timestamptz(JsonbParseState **st, TimestampTz ts);

/*
 * Column layout of roastr_state.state, resolved by name once per relcache
 * generation (relation.c).
 */
typedef struct RsLayout
{
	Oid			relid;
	Oid			owner;
	int			natts;
	AttrNumber	att_user_id;
	AttrNumber	att_version;
	AttrNumber	att_updated_at;
	AttrNumber	att_fv;			/* field_versions bigint[] */
	AttrNumber	att_ft;			/* field_times timestamptz[] */
	AttrNumber	att_created_at;
	AttrNumber	att_field[RS_NFIELDS];	/* 0 when not a state column */
} RsLayout;

extern const RsLayout *rs_layout(Relation rel);
extern Oid	rs_state_relid(void);
extern Oid	rs_extension_owner(void);

/* Per-field versions and times as read from a row. */
typedef struct RsFieldLog
{
	int64		version[RS_NFIELDS];
	TimestampTz time[RS_NFIELDS];
} RsFieldLog;

extern void rs_read_field_log(Datum fv, bool fvnull, Datum ft, bool ftnull,
							  RsFieldLog *log);
extern Datum rs_build_int8_array(const int64 *vals, int n);
extern Datum rs_build_tstz_array(const TimestampTz *vals, int n);

/* access.c: who is calling */
typedef struct RsCaller
{
	bool		is_service;
	bool		has_user;
	pg_uuid_t	user_id;
} RsCaller;

extern void rs_get_caller(RsCaller *caller);
extern void rs_authorize(const RsCaller *caller, bool user_isnull,
						 Datum user_arg, pg_uuid_t *target);
extern void rs_resolve_target(FunctionCallInfo fcinfo, int argno,
							  RsCaller *caller, pg_uuid_t *target);
extern void rs_require_service(const RsCaller *caller, const char *funcname);
extern char *rs_service_role_name;

/* Switch to the extension owner for table access, and back. */
typedef struct RsUserSwitch
{
	Oid			save_userid;
	int			save_sec_context;
} RsUserSwitch;

extern void rs_become_owner(RsUserSwitch *sw);
extern void rs_restore_user(RsUserSwitch *sw);

/* trigger.c: what the last row update through the trigger did */
typedef struct RsLastApply
{
	bool		valid;
	int64		old_version;
	int64		new_version;
	uint32		changed;		/* bitmask of field ids */
} RsLastApply;


struct TriggerData;
extern HeapTuple rs_persona_trigger_row(FunctionCallInfo fcinfo,
										const char *name,
										struct TriggerData **tdp);

/* notify.c */
typedef enum RsNotifyMode
{
	RS_NOTIFY_AUTO,				/* worker when commits wait for a flush */
	RS_NOTIFY_WORKER,
	RS_NOTIFY_DIRECT
} RsNotifyMode;

extern int	rs_notify_mode;
extern void rs_notify_init(void);
extern void rs_notify_record(const pg_uuid_t *user, int64 version,
							 uint32 changed, uint32 named,
							 char *const *values);
extern void rs_notify_shmem_request(void);
extern void rs_notify_shmem_startup(void);

/*
 * A user's state as read (state.c), and what it means at a given moment
 * (usage.c): the effective plan after trials and cancellations, the usage
 * period, the limit and what is left.
 */
typedef struct UserState
{
	pg_uuid_t	user_id;
	int64		version;
	TimestampTz updated_at;
	RsFieldLog	log;
	Datum		vals[RS_NFIELDS];
	bool		nulls[RS_NFIELDS];
	bool		plan_limit_null;	/* NULL limit: unlimited */
	int32		plan_limit;
	bool		free_limit_null;
	int32		free_limit;
	bool		org_null;		/* no current organization (or not a member) */
	char	   *org_name;
	char	   *org_slug;
	char	   *org_role;
	bool		has_dek;		/* roastr_state.user_keys row */
	uint32		dek_keygen;
	uint32		dek_master_id;
	bytea	   *dek_wrapped;
} UserState;

typedef struct RsEffective
{
	bool		trial_expired;	/* status trial, trial end passed */
	bool		cancel_ended;	/* status canceled, paid period over */
	const char *plan;			/* effective plan */
	const char *status;			/* effective status */
	bool		is_free;
	bool		limit_null;		/* unlimited */
	int32		limit;
	TimestampTz period_start;	/* current usage period */
	TimestampTz period_end;
	bool		rolled_over;	/* the stored count belongs to a past period */
	int32		used;			/* in the current period */
	bool		trial_days_null;
	int32		trial_days;
} RsEffective;

/* usage.c */
extern void rs_effective(const UserState *st, TimestampTz now, RsEffective *eff);
extern bool rs_needs_settle(const UserState *st, const RsEffective *eff);
extern bool rs_status_move_allowed(const char *from, const char *to);
extern bool rs_text_equals(Datum d, bool isnull, const char *s);

/* state.c, shared with quota.c and webhook.c */
extern SPIPlanPtr rs_prepare_kept(const char *sql, int nargs, Oid *argtypes);
extern bool rs_read_state(const pg_uuid_t *user, UserState *st,
						  MemoryContext cxt, bool read_only, bool for_update);
extern void rs_settle(const pg_uuid_t *user, UserState *st, MemoryContext cxt);
extern void rs_no_state(const pg_uuid_t *user);

/* trigger.c: run an UPDATE of a user's row, telling the trigger context */
extern int	rs_trigger_execute(SPIPlanPtr plan, Datum *args, const char *nulls,
							   const pg_uuid_t *user, uint32 persona_changed,
							   const UserState *st, RsLastApply *applied);

/* persona.c */
struct RsDataKey;
extern struct RsDataKey *rs_user_dek(const pg_uuid_t *user, const UserState *st,
									 bool create);
extern text *rs_persona_plaintext(const pg_uuid_t *user, const UserState *st,
								  struct RsDataKey *dek, RsFieldId f);
extern uint32 rs_persona_apply(const pg_uuid_t *user, const UserState *st,
							   uint32 mask, Datum *vals, bool *nulls,
							   struct RsDataKey *dek);

#define RS_PERSONA_TEXT_MASK	((1U << F_PERSONA_IDENTITY) | \
								 (1U << F_PERSONA_INTOLERANCE) | \
								 (1U << F_PERSONA_TOLERANCE))

/* webhook.c */
extern void rs_webhook_init(void);
extern char *rs_webhook_secret_file;

/* misc helpers (fields.c) */
extern char *rs_uuid_to_cstring(const pg_uuid_t *u);
extern pg_uuid_t *rs_parse_uuid(const char *s);
extern bool rs_parse_timestamptz(const char *str, TimestampTz *result);

#define RS_MAX_PAYLOAD	7999	/* NOTIFY payloads must stay under 8000 bytes */

#endif							/* ROASTR_STATE_H */
