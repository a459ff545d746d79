/*-------------------------------------------------------------------------
 *
 * keyring.c
 *	  The master key ring: the master keys of roastr_state.master_key_file,
 *	  loaded, reloaded and checked against the data keys they wrapped.
 *
 * Keys.  The master keys come from the file named by the setting
 * roastr_state.master_key_file (format in core/keyfile.c), read by the one
 * secret file reader (secret_file.c).  They never pass through SQL.  The
 * ring lives in sodium_malloc'd memory -- guard pages
 * around it, locked against swapping where RLIMIT_MEMLOCK allows, excluded
 * from core dumps -- and is made read-only as soon as it has been parsed; it
 * is never written again, only freed (sodium_free wipes it) when a newer
 * file replaces it.
 *
 * Loading.  When the library is in shared_preload_libraries, _PG_init reads
 * the file once in the postmaster, and every backend inherits the ring
 * through fork(): the pages are shared copy-on-write and, being read-only,
 * never copied.  (mlock is not inherited by children, but the postmaster's
 * lock keeps the shared pages resident.)  A missing or bad file there must
 * not stop the server, so the postmaster only logs a WARNING and remembers
 * the problem -- paths, errno, a line number, never key bytes.  Without
 * preloading, a backend reads the file at the first call that needs a key.
 *
 * Reloading.  The first call in a transaction that needs a key stat()s the
 * file and compares it with the signature of the file the ring came from
 * (path, device, inode, size, mode, owner, mtime and ctime with
 * nanoseconds); a
 * transaction callback resets that once-per-transaction flag.  A changed
 * file is read again; if that fails, or the file has vanished, the old ring
 * stays in use and a WARNING is given once per distinct problem.  A file
 * that failed for a reason of its own (type, owner, mode, size or content)
 * is not
 * read again until its signature changes.  Emptying the setting drops the
 * ring.  Nothing ever falls back to plaintext: without a usable ring every
 * call that needs a key raises an error naming the setting.
 *
 * Checking a key against the data: before the first new wrapping under a
 * master key, the key must open the data keys already stored under it
 * (keycheck.c); a file that holds other bytes under an old id is refused.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/keyring.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include <sodium.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "core/rs_crypto_core.h"
#include "keycheck.h"
#include "keyring.h"
#include "secret_file.h"

/* A key file is a few lines per key; anything bigger is a mistake. */
#define RS_KEYFILE_MAX_BYTES	(64 * 1024)

/* Why a key file could not be used. */
typedef enum RsKeyFileProblem
{
	KFP_NONE,
	KFP_UNSET,					/* the setting is empty */
	KFP_PATH_TOO_LONG,
	KFP_OPEN,					/* open() failed: errno */
	KFP_READ,					/* fstat() or read() failed: errno */
	KFP_NOT_REGULAR,
	KFP_NOT_OWNER,				/* not owned by the server's OS user */
	KFP_PERMISSIONS,			/* group or world access */
	KFP_TOO_LARGE,
	KFP_NO_MEMORY,				/* sodium_malloc failed */
	KFP_CONTENT					/* rs_keyfile_parse failed: status, line */
} RsKeyFileProblem;

/* A problem with a key file: no key material, safe to keep and to log. */
typedef struct RsKeyFileError
{
	RsKeyFileProblem problem;
	int			save_errno;
	int			status;
	int			line;
	char		path[MAXPGPATH];
} RsKeyFileError;

/* roastr_state.master_key_file */
static char *master_key_file = NULL;

/* The ring in use (sodium_malloc'd, read-only), and where it came from. */
static RsKeyRing *keyring = NULL;
static RsFileSig keyring_sig;

/* Why there is no ring, when there is none. */
static RsKeyFileError keyring_error;

/* The last file that failed for a reason of its own, not to be reread. */
static RsFileSig failed_sig;

/* The last reload problem warned about while keeping an older ring. */
static RsKeyFileError warned_error;

/* Whether this transaction has already checked the file. */
static bool keyring_checked = false;

/* The process whose random generator has been stirred. */
static int	stirred_pid = 0;

static void keyring_xact_callback(XactEvent event, void *arg);
static void keyring_load_preload(void);
static void keyring_refresh(void);

/*
 * rs_keyring_init
 *		Define roastr_state.master_key_file and, in the postmaster, read the
 *		key file once.
 *
 * Called from _PG_init, after sodium_init() (called again here, which is
 * harmless, because sodium_malloc needs it).  In the postmaster a bad or
 * missing file is only a WARNING: backends report the problem at the first
 * call that needs a key.
 */
void
rs_keyring_init(void)
{
	if (sodium_init() < 0)
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errmsg("could not initialize libsodium"));

	DefineCustomStringVariable("roastr_state.master_key_file",
							   "Path of the file holding the master keys that wrap users' data keys.",
							   "Each line that is not empty or a comment is \"<key id> <64 hex digits>\"; "
							   "the highest id encrypts, every id decrypts.  The file must not be "
							   "accessible by group or others.",
							   &master_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	RegisterXactCallback(keyring_xact_callback, NULL);

	if (process_shared_preload_libraries_in_progress &&
		master_key_file != NULL && master_key_file[0] != '\0')
		keyring_load_preload();
}

/*
 * keyring_xact_callback
 *		Forget, at the end of every transaction, that the file was checked.
 */
static void
keyring_xact_callback(XactEvent event, void *arg pg_attribute_unused())
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			keyring_checked = false;
			break;
		default:
			break;
	}
}

/* Whether two problems are the same, for warning only once. */
static bool
error_equal(const RsKeyFileError *a, const RsKeyFileError *b)
{
	return a->problem == b->problem &&
		a->save_errno == b->save_errno &&
		a->status == b->status &&
		a->line == b->line &&
		strcmp(a->path, b->path) == 0;
}

/*
 * keyfile_problem
 *		The key file problem of a secret file problem.
 */
static RsKeyFileProblem
keyfile_problem(RsSecretProblem p)
{
	switch (p)
	{
		case RS_SECRET_OK:
			return KFP_NONE;
		case RS_SECRET_PATH_TOO_LONG:
			return KFP_PATH_TOO_LONG;
		case RS_SECRET_OPEN:
			return KFP_OPEN;
		case RS_SECRET_READ:
			return KFP_READ;
		case RS_SECRET_NOT_REGULAR:
			return KFP_NOT_REGULAR;
		case RS_SECRET_NOT_OWNER:
			return KFP_NOT_OWNER;
		case RS_SECRET_PERMISSIONS:
			return KFP_PERMISSIONS;
		case RS_SECRET_TOO_LARGE:
			return KFP_TOO_LARGE;
		case RS_SECRET_NO_MEMORY:
			return KFP_NO_MEMORY;
	}
	return KFP_NONE;			/* keep compiler quiet */
}

/*
 * keyfile_load
 *		Read (secret_file.c) and parse the key file at path into a new
 *		read-only ring.
 *
 * Runs in the postmaster as well as in backends, so it neither throws nor
 * pallocs: on failure it fills *err and returns false.  *sig describes the
 * file that was read, and stays valid on failures that are the file's own
 * (type, owner, mode, size, content), so the caller can avoid rereading an
 * unchanged bad file.  The file's text holds the keys in hex: it lives only
 * in guarded memory, wiped before it is freed.
 */
static bool
keyfile_load(const char *path, RsKeyRing **ring_out, RsFileSig *sig,
			 RsKeyFileError *err)
{
	char	   *buf;
	size_t		len;
	RsKeyRing  *ring = NULL;
	int			rc;
	int			line = 0;

	*ring_out = NULL;
	memset(sig, 0, sizeof(*sig));
	memset(err, 0, sizeof(*err));
	if (path == NULL || path[0] == '\0')
	{
		err->problem = KFP_UNSET;
		return false;
	}
	strlcpy(err->path, path, MAXPGPATH);
	err->problem = keyfile_problem(rs_secret_file_read(path,
													   RS_KEYFILE_MAX_BYTES,
													   &buf, &len, sig,
													   &err->save_errno));
	if (err->problem != KFP_NONE)
		return false;

	ring = sodium_malloc(sizeof(RsKeyRing));
	if (ring == NULL)
	{
		err->problem = KFP_NO_MEMORY;
		sig->valid = false;
	}
	else
	{
		rc = rs_keyfile_parse(buf, len, ring, &line);
		if (rc != RS_OK)
		{
			err->problem = KFP_CONTENT;
			err->status = rc;
			err->line = line;
			sodium_free(ring);	/* parse wiped it already */
			ring = NULL;
		}
	}
	rs_secret_file_free(buf, RS_KEYFILE_MAX_BYTES);

	if (ring == NULL)
		return false;
	if (sodium_mprotect_readonly(ring) != 0)
		ereport(WARNING,
				errcode(ERRCODE_INTERNAL_ERROR),
				errhidestmt(true),
				errmsg_internal("could not make the master key ring read-only: %m"));
	*ring_out = ring;
	return true;
}

/*
 * keyfile_problem_is_own
 *		Whether a problem belongs to the file itself, so rereading the same,
 *		unchanged file cannot help (unlike open, read or memory failures).
 */
static bool
keyfile_problem_is_own(RsKeyFileProblem problem)
{
	return problem == KFP_NOT_REGULAR || problem == KFP_NOT_OWNER ||
		problem == KFP_PERMISSIONS || problem == KFP_TOO_LARGE ||
		problem == KFP_CONTENT;
}

/*
 * remember_failed_file
 *		Remember the file that just failed, when the fault is its own, so that
 *		it is not read again until it changes; otherwise forget any such file.
 */
static void
remember_failed_file(const RsKeyFileError *err, const RsFileSig *sig)
{
	if (keyfile_problem_is_own(err->problem) && sig->valid)
		failed_sig = *sig;
	else
		memset(&failed_sig, 0, sizeof(failed_sig));
}

/*
 * report_keyfile_content
 *		ereport at elevel a key file whose text did not parse: which line,
 *		and what a line must be.  No byte of the file appears.
 */
static void
report_keyfile_content(int elevel, const RsKeyFileError *err)
{
	switch (err->status)
	{
		case RS_ERR_KEYFILE_DUPLICATE:
			ereport(elevel,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errhidestmt(true),
					errmsg("invalid master key file \"%s\"", err->path),
					errdetail("Line %d repeats a key id.", err->line),
					errhint("Fix the file named by roastr_state.master_key_file."));
			break;
		case RS_ERR_KEYFILE_TOO_MANY:
			ereport(elevel,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errhidestmt(true),
					errmsg("invalid master key file \"%s\"", err->path),
					errdetail("Line %d holds key number %d, but a master key file may hold at most %d keys.",
							  err->line, RS_KEYRING_MAX + 1,
							  RS_KEYRING_MAX),
					errhint("Fix the file named by roastr_state.master_key_file."));
			break;
		case RS_ERR_KEYFILE_EMPTY:
			ereport(elevel,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errhidestmt(true),
					errmsg("invalid master key file \"%s\"", err->path),
					errdetail("The file holds no key."),
					errhint("Fix the file named by roastr_state.master_key_file."));
			break;
		default:
			ereport(elevel,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errhidestmt(true),
					errmsg("invalid master key file \"%s\"", err->path),
					errdetail("Line %d is not \"<key id> <64 hex digits>\".",
							  err->line),
					errhint("Fix the file named by roastr_state.master_key_file; key ids are 1 to 2147483647, and lines starting with # are comments."));
			break;
	}
}

/*
 * report_keyfile_problem
 *		ereport a key file problem at elevel.
 *
 * Every message names the file or the setting; none carries key material,
 * and the path is the only thing of the file's that appears.  All are
 * F0000 (config_file_error) except the unset setting, which is 55000
 * (object_not_in_prerequisite_state): no file is involved yet.
 */
static void
report_keyfile_problem(int elevel, const RsKeyFileError *err)
{
	switch (err->problem)
	{
		case KFP_NONE:
			ereport(elevel,
					errcode(ERRCODE_INTERNAL_ERROR),
					errhidestmt(true),
					errmsg_internal("master key ring unavailable for no recorded reason"));
			break;
		case KFP_UNSET:
			ereport(elevel,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errhidestmt(true),
					errmsg("roastr_state.master_key_file is not set"),
					errhint("Set roastr_state.master_key_file to the path of the master key file and reload the server configuration."));
			break;
		case KFP_PATH_TOO_LONG:
			ereport(elevel,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errhidestmt(true),
					errmsg("path in roastr_state.master_key_file is too long"),
					errdetail("A path may have at most %d bytes.",
							  MAXPGPATH - 1));
			break;
		case KFP_OPEN:
		case KFP_READ:
			errno = err->save_errno;
			ereport(elevel,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errhidestmt(true),
					errmsg("could not read master key file \"%s\": %m",
						   err->path),
					errhint("Check the setting roastr_state.master_key_file."));
			break;
		case KFP_NOT_REGULAR:
			ereport(elevel,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errhidestmt(true),
					errmsg("master key file \"%s\" is not a regular file",
						   err->path),
					errhint("Set roastr_state.master_key_file to the path of a regular file."));
			break;
		case KFP_NOT_OWNER:
			ereport(elevel,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errhidestmt(true),
					errmsg("master key file \"%s\" is not owned by the database server's user",
						   err->path),
					errdetail("The file named by roastr_state.master_key_file must belong to the operating system user that runs the server."),
					errhint("Change its owner, for example with \"chown\"."));
			break;
		case KFP_PERMISSIONS:
			ereport(elevel,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errhidestmt(true),
					errmsg("master key file \"%s\" has group or world access",
						   err->path),
					errdetail("The file named by roastr_state.master_key_file must have permissions u=rw (0600) or less."),
					errhint("Remove the access, for example with \"chmod 600\"."));
			break;
		case KFP_TOO_LARGE:
			ereport(elevel,
					errcode(ERRCODE_CONFIG_FILE_ERROR),
					errhidestmt(true),
					errmsg("master key file \"%s\" is too large", err->path),
					errdetail("The file named by roastr_state.master_key_file may have at most %d bytes.",
							  RS_KEYFILE_MAX_BYTES));
			break;
		case KFP_NO_MEMORY:
			ereport(elevel,
					errcode(ERRCODE_OUT_OF_MEMORY),
					errhidestmt(true),
					errmsg("out of memory"),
					errdetail("Could not allocate guarded memory for the master keys of roastr_state.master_key_file."));
			break;
		case KFP_CONTENT:
			report_keyfile_content(elevel, err);
			break;
	}
}

/* Free the ring in use, if any; sodium_free wipes it. */
static void
keyring_drop(void)
{
	if (keyring != NULL)
		sodium_free(keyring);
	keyring = NULL;
	memset(&keyring_sig, 0, sizeof(keyring_sig));
	rs_keycheck_forget();
}

/*
 * keyring_load_preload
 *		Read the key file in the postmaster (shared_preload_libraries).
 *
 * Must not fail: a problem is remembered for the backends and logged as a
 * WARNING.
 */
static void
keyring_load_preload(void)
{
	RsKeyRing  *fresh;
	RsFileSig	sig;
	RsKeyFileError err;

	if (keyfile_load(master_key_file, &fresh, &sig, &err))
	{
		keyring_drop();
		keyring = fresh;
		keyring_sig = sig;
		return;
	}
	keyring_error = err;
	remember_failed_file(&err, &sig);
	report_keyfile_problem(WARNING, &err);
}

/* Error context of a reload WARNING: the old keys stay in use. */
static void
keeping_old_keys_context(void *arg pg_attribute_unused())
{
	errcontext("roastr_state keeps using the master keys it read before");
}

/*
 * keyring_refresh
 *		Bring the ring up to date with the setting and the file, at most
 *		once per transaction.
 *
 * Never throws an ERROR: afterwards either keyring is usable, or it is NULL
 * and keyring_error says why.  See the top of the file for the rules.
 */
static void
keyring_refresh(void)
{
	const char *path = master_key_file;
	struct stat st;
	bool		have_st;
	RsKeyRing  *fresh;
	RsFileSig	sig;
	RsKeyFileError err;

	if (keyring_checked)
		return;
	/* outside a transaction nothing would reset the flag: always check */
	if (IsTransactionState())
		keyring_checked = true;

	/* never share a user-space generator's state with a forked parent */
	if (stirred_pid != MyProcPid)
	{
		randombytes_stir();
		stirred_pid = MyProcPid;
	}

	if (path == NULL || path[0] == '\0')
	{
		keyring_drop();
		memset(&keyring_error, 0, sizeof(keyring_error));
		keyring_error.problem = KFP_UNSET;
		memset(&failed_sig, 0, sizeof(failed_sig));
		return;
	}

	have_st = (stat(path, &st) == 0);
	if (keyring != NULL && have_st &&
		rs_file_sig_matches(&keyring_sig, path, &st))
		return;					/* unchanged */
	if (have_st && rs_file_sig_matches(&failed_sig, path, &st))
		return;					/* the same bad file: keep ring or error */

	if (keyfile_load(path, &fresh, &sig, &err))
	{
		keyring_drop();
		keyring = fresh;
		keyring_sig = sig;
		memset(&keyring_error, 0, sizeof(keyring_error));
		memset(&failed_sig, 0, sizeof(failed_sig));
		memset(&warned_error, 0, sizeof(warned_error));
		return;
	}

	remember_failed_file(&err, &sig);
	if (keyring != NULL)
	{
		/* keep the keys we have; say so once per distinct problem */
		if (!error_equal(&err, &warned_error))
		{
			ErrorContextCallback errcallback;

			warned_error = err;
			errcallback.callback = keeping_old_keys_context;
			errcallback.arg = NULL;
			errcallback.previous = error_context_stack;
			error_context_stack = &errcallback;
			report_keyfile_problem(WARNING, &err);
			error_context_stack = errcallback.previous;
		}
		return;
	}
	keyring_error = err;
}

/*
 * rs_keyring_require
 *		Make sure a usable master key ring is loaded; ERROR if not.
 *
 * Call before anything that needs a master key.  The error names the
 * setting or the file and says what is wrong with it.
 */
void
rs_keyring_require(void)
{
	keyring_refresh();
	if (keyring == NULL)
	{
		report_keyfile_problem(ERROR, &keyring_error);
		pg_unreachable();
	}
}

/*
 * rs_keyring_current_id
 *		Id of the current master key, the highest id in the file, once it
 *		has been checked against the data keys stored under it.
 */
uint32
rs_keyring_current_id(void)
{
	uint32		id;

	(void) rs_keyring_current(&id);
	return id;
}

/*
 * rs_keyring_current
 *		The newest master key of a usable ring, and its id, once checked
 *		against the data keys stored under it.  ERROR if no ring is usable
 *		or the key is not the one that wrapped them.
 */
const uint8 *
rs_keyring_current(uint32 *id)
{
	const uint8 *mk;

	rs_keyring_require();
	*id = keyring->current_id;
	mk = rs_keyring_find(keyring, *id);
	if (mk == NULL)
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errhidestmt(true),
				errmsg_internal("current master key %u is missing from the key ring", *id));
	rs_keycheck_verify(*id, mk, keyring_sig.path);
	return mk;
}


/*
 * rs_keyring_find
 *		Master key "id" of the usable ring (the caller has called
 *		rs_keyring_require in this transaction), or NULL when the file has
 *		no such key.
 */
const uint8 *
rs_keyring_key(uint32 id)
{
	Assert(keyring != NULL);
	return rs_keyring_find(keyring, id);
}

/*
 * rs_keyring_opened
 *		A data key stored under master key "id" opened: the key is the right
 *		one (see keycheck.c).
 */
void
rs_keyring_opened(uint32 id)
{
	rs_keycheck_opened(id);
}

/*
 * rs_keyring_unwrap_failed
 *		A data key of "user" stored under master key "id" (mk) did not open.
 *		ERROR naming the key file when the key is wrong (keycheck.c);
 *		returns when it is the row, which the caller reports.
 */
void
rs_keyring_unwrap_failed(uint32 id, const uint8 *mk, const pg_uuid_t *user)
{
	rs_keycheck_unwrap_failed(id, mk, user, keyring_sig.path);
}
