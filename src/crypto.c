/*-------------------------------------------------------------------------
 *
 * crypto.c
 *	  Persona encryption: the master key ring, users' data keys and
 *	  per-field ciphertext envelopes.
 *
 * Keys.  The master keys come from the file named by the setting
 * roastr_state.master_key_file (format in core/keyfile.c).  They never pass
 * through SQL.  The ring lives in sodium_malloc'd memory -- guard pages
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
 * (path, device, inode, size, mode, mtime and ctime with nanoseconds); a
 * transaction callback resets that once-per-transaction flag.  A changed
 * file is read again; if that fails, or the file has vanished, the old ring
 * stays in use and a WARNING is given once per distinct problem.  A file
 * that failed for a reason of its own (mode, type, size or content) is not
 * read again until its signature changes.  Emptying the setting drops the
 * ring.  Nothing ever falls back to plaintext: without a usable ring every
 * call that needs a key raises an error naming the setting.
 *
 * Checking a key against the data.  A file can be valid and still wrong: a
 * regenerated or mixed-up file may hold other bytes under an id that
 * already wrapped data keys.  Before the first new wrapping under a master
 * key, and when a stored data key does not open, up to three data keys
 * stored under that id are tried with it: if none opens, the file is wrong
 * (F0000 naming it), and nothing is wrapped under the wrong key -- otherwise
 * a user's first persona text would be acknowledged under a key that the
 * right file no longer opens.  What is learnt (a data key opened, or
 * none did) is remembered per key id until the ring changes, so the check
 * costs one query per backend and key at most.
 *
 * Data keys and envelopes.  Each user has a random 32-byte data key, stored
 * only wrapped by a master key (core/envelope.c has both formats).  Data
 * keys in the clear live in palloc'd chunks wiped by a memory context reset
 * callback; plaintext is only ever the caller's input or the returned text.
 * Errors about keys and ciphertexts name the user and field, never bytes;
 * the internal reason goes to the server log only (errdetail_log).  Every
 * report in this file also keeps the statement out of the server log
 * (errhidestmt): the statement that needed a key may carry persona text
 * even when the error is about a key file.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/crypto.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "access.h"
#include "crypto.h"
#include "json_util.h"
#include "spi_util.h"

/* A key file is a few lines per key; anything bigger is a mistake. */
#define RS_KEYFILE_MAX_BYTES	(64 * 1024)

/* Identity of a key file as stat() sees it. */
typedef struct RsFileSig
{
	bool		valid;
	char		path[MAXPGPATH];
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	mode_t		mode;
	struct timespec mtime;
	struct timespec ctime;
} RsFileSig;

/* Why a key file could not be used. */
typedef enum RsKeyFileProblem
{
	KFP_NONE,
	KFP_UNSET,					/* the setting is empty */
	KFP_PATH_TOO_LONG,
	KFP_OPEN,					/* open() failed: errno */
	KFP_READ,					/* fstat() or read() failed: errno */
	KFP_NOT_REGULAR,
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

/*
 * What this backend knows of the ring in use's keys against the stored data
 * keys, by id: 1 = a data key stored under it opened, -1 = none of those
 * tried did (the count in wrong_tried), 0 = not known yet.  Forgotten when
 * the ring changes.
 */
typedef struct RsMasterKeyCheck
{
	uint32		id;
	int			state;
	int			tried;
} RsMasterKeyCheck;
static RsMasterKeyCheck key_checks[RS_KEYRING_MAX];
static int	n_key_checks = 0;

/* Whether this transaction has already checked the file. */
static bool keyring_checked = false;

/* The process whose random generator has been stirred. */
static int	stirred_pid = 0;

static void keyring_xact_callback(XactEvent event, void *arg);
static void keyring_load_preload(void);

/*
 * rs_crypto_init
 *		Define roastr_state.master_key_file and, in the postmaster, read the
 *		key file once.
 *
 * Called from _PG_init, after sodium_init() (called again here, which is
 * harmless, because sodium_malloc needs it).  In the postmaster a bad or
 * missing file is only a WARNING: backends report the problem at the first
 * call that needs a key.
 */
void
rs_crypto_init(void)
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

/* Fill sig from a struct stat of the file at path. */
static void
sig_from_stat(RsFileSig *sig, const char *path, const struct stat *st)
{
	memset(sig, 0, sizeof(*sig));
	sig->valid = true;
	strlcpy(sig->path, path, MAXPGPATH);
	sig->dev = st->st_dev;
	sig->ino = st->st_ino;
	sig->size = st->st_size;
	sig->mode = st->st_mode;
	sig->mtime = st->st_mtim;	/* POSIX.1-2008 nanosecond times */
	sig->ctime = st->st_ctim;
}

/* Whether the file at path, as st describes it, is the one sig describes. */
static bool
sig_matches(const RsFileSig *sig, const char *path, const struct stat *st)
{
	return sig->valid &&
		strcmp(sig->path, path) == 0 &&
		sig->dev == st->st_dev &&
		sig->ino == st->st_ino &&
		sig->size == st->st_size &&
		sig->mode == st->st_mode &&
		sig->mtime.tv_sec == st->st_mtim.tv_sec &&
		sig->mtime.tv_nsec == st->st_mtim.tv_nsec &&
		sig->ctime.tv_sec == st->st_ctim.tv_sec &&
		sig->ctime.tv_nsec == st->st_ctim.tv_nsec;
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
 * keyfile_load
 *		Read and parse the key file at path into a new read-only ring.
 *
 * Runs in the postmaster as well as in backends, so it neither throws nor
 * pallocs: on failure it fills *err and returns false.  *sig describes the
 * file that was read -- from fstat() of the open descriptor, so it matches
 * the bytes parsed even if the path is swapped meanwhile -- and stays valid
 * on failures that are the file's own (type, mode, size, content), so the
 * caller can avoid rereading an unchanged bad file.
 *
 * The file's text holds the keys in hex, so it is read into guarded memory
 * and wiped before being freed.  O_NONBLOCK keeps a FIFO from hanging us
 * before fstat() can refuse it.  Symbolic links are followed: secret
 * managers commonly swap a symlink to rotate files.
 */
static bool
keyfile_load(const char *path, RsKeyRing **ring_out, RsFileSig *sig,
			 RsKeyFileError *err)
{
	int			fd;
	struct stat st;
	char	   *buf;
	size_t		len = 0;
	RsKeyRing  *ring;
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
	if (strlen(path) >= MAXPGPATH)
	{
		err->problem = KFP_PATH_TOO_LONG;
		return false;
	}

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
	{
		err->problem = KFP_OPEN;
		err->save_errno = errno;
		return false;
	}
	if (fstat(fd, &st) != 0)
	{
		err->problem = KFP_READ;
		err->save_errno = errno;
		close(fd);
		return false;
	}
	sig_from_stat(sig, path, &st);
	if (!S_ISREG(st.st_mode))
		err->problem = KFP_NOT_REGULAR;
	else if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		err->problem = KFP_PERMISSIONS;
	else if (st.st_size > RS_KEYFILE_MAX_BYTES)
		err->problem = KFP_TOO_LARGE;
	if (err->problem != KFP_NONE)
	{
		close(fd);
		return false;
	}

	buf = sodium_malloc(RS_KEYFILE_MAX_BYTES + 1);
	if (buf == NULL)
	{
		err->problem = KFP_NO_MEMORY;
		sig->valid = false;
		close(fd);
		return false;
	}
	while (len < RS_KEYFILE_MAX_BYTES + 1)
	{
		ssize_t		n = read(fd, buf + len, RS_KEYFILE_MAX_BYTES + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			err->problem = KFP_READ;
			err->save_errno = errno;
			sig->valid = false;
			break;
		}
		if (n == 0)
			break;
		len += (size_t) n;
	}
	close(fd);
	if (err->problem == KFP_NONE && len > RS_KEYFILE_MAX_BYTES)
		err->problem = KFP_TOO_LARGE;	/* it grew while we read it */

	ring = NULL;
	if (err->problem == KFP_NONE)
	{
		ring = sodium_malloc(sizeof(RsKeyRing));
		if (ring == NULL)
		{
			err->problem = KFP_NO_MEMORY;
			sig->valid = false;
		}
	}
	if (ring != NULL)
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
	sodium_memzero(buf, RS_KEYFILE_MAX_BYTES + 1);
	sodium_free(buf);

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
	return problem == KFP_NOT_REGULAR || problem == KFP_PERMISSIONS ||
		problem == KFP_TOO_LARGE || problem == KFP_CONTENT;
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
	n_key_checks = 0;
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
	if (keyring != NULL && have_st && sig_matches(&keyring_sig, path, &st))
		return;					/* unchanged */
	if (have_st && sig_matches(&failed_sig, path, &st))
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

static const uint8 *current_master_key(uint32 *id);

/*
 * rs_keyring_current_id
 *		Id of the current master key, the highest id in the file, once it
 *		has been checked against the data keys stored under it.
 */
uint32
rs_keyring_current_id(void)
{
	uint32		id;

	(void) current_master_key(&id);
	return id;
}

/* Reset callback of a data key: wipe it before its memory goes. */
static void
datakey_reset_callback(void *arg)
{
	sodium_memzero(arg, sizeof(RsDataKey));
}

/* A data key and the callback that wipes it, in one chunk. */
typedef struct RsDataKeyChunk
{
	RsDataKey	dek;
	MemoryContextCallback cb;
} RsDataKeyChunk;

/*
 * rs_datakey_alloc
 *		A zeroed data key in CurrentMemoryContext, wiped when that context is
 *		reset or deleted (also on error).
 *
 * Never pfree the result: its wiping callback stays registered with the
 * context.  rs_datakey_clear wipes it early.
 */
RsDataKey *
rs_datakey_alloc(uint32 keygen)
{
	RsDataKeyChunk *chunk = palloc0(sizeof(RsDataKeyChunk));

	chunk->dek.keygen = keygen;
	chunk->cb.func = datakey_reset_callback;
	chunk->cb.arg = &chunk->dek;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &chunk->cb);
	return &chunk->dek;
}

/*
 * rs_datakey_clear
 *		Wipe a data key now; its memory stays allocated until the context
 *		goes.
 */
void
rs_datakey_clear(RsDataKey *dek)
{
	if (dek != NULL)
		sodium_memzero(dek, sizeof(RsDataKey));
}

/* A new bytea for a wrapped data key. */
static bytea *
wrapped_alloc(void)
{
	bytea	   *b = palloc(VARHDRSZ + RS_DEK_WRAPPED_BYTES);

	SET_VARSIZE(b, VARHDRSZ + RS_DEK_WRAPPED_BYTES);
	return b;
}

/*
 * stored_keys_open
 *		Try master key id (mk) on up to three data keys stored under it,
 *		other than except's (NULL: any).  Returns how many opened; *tried
 *		receives how many were tried.
 */
static int
stored_keys_open(uint32 id, const uint8 *mk, const pg_uuid_t *except,
				 int *tried)
{
	static SPIPlanPtr plan = NULL;
	Oid			types[2] = {INT4OID, UUIDOID};
	Datum		args[2];
	char		nulls[2] = {' ', ' '};
	uint8		dek[RS_KEY_BYTES];
	int			opened = 0;
	uint64		n;
	RsUserSwitch sw;

	*tried = 0;
	rs_become_owner(&sw);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = Int32GetDatum((int32) id);
	args[1] = except ? UUIDPGetDatum(except) : (Datum) 0;
	nulls[1] = except ? ' ' : 'n';
	n = rs_spi_run(rs_spi_kept(&plan,
							   "SELECT user_id, keygen, wrapped FROM roastr_state.user_keys "
							   "WHERE master_key_id OPERATOR(pg_catalog.=) $1 "
							   "AND ($2 IS NULL OR user_id OPERATOR(pg_catalog.<>) $2) "
							   "LIMIT 3", 2, types),
				   args, nulls, true, 3, SPI_OK_SELECT,
				   "read the stored data keys");
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		n1,
					n2,
					n3;
		Datum		u = SPI_getbinval(tup, desc, 1, &n1);
		Datum		g = SPI_getbinval(tup, desc, 2, &n2);
		Datum		w = SPI_getbinval(tup, desc, 3, &n3);
		struct varlena *raw;

		if (n1 || n2 || n3)
			continue;
		raw = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(w));
		(*tried)++;
		if (rs_dek_unwrap(mk, id, DatumGetUUIDP(u)->data,
						  (uint32) DatumGetInt32(g),
						  (const uint8 *) VARDATA_ANY(raw),
						  VARSIZE_ANY_EXHDR(raw), dek) == RS_OK)
			opened++;
		sodium_memzero(dek, sizeof(dek));
	}
	SPI_finish();
	rs_restore_user(&sw);
	return opened;
}

/* The check of key id, or NULL when none is recorded. */
static RsMasterKeyCheck *
key_check(uint32 id)
{
	for (int i = 0; i < n_key_checks; i++)
		if (key_checks[i].id == id)
			return &key_checks[i];
	return NULL;
}

/* Record what is known of key id (state 1 or -1, see RsMasterKeyCheck). */
static void
key_check_set(uint32 id, int state, int tried)
{
	RsMasterKeyCheck   *k = key_check(id);

	if (k == NULL)
	{
		if (n_key_checks >= RS_KEYRING_MAX)
			return;
		k = &key_checks[n_key_checks++];
		k->id = id;
	}
	k->state = state;
	k->tried = tried;
}

/*
 * ERROR: the file holds other bytes under an id that wrapped data keys.
 * Remembered until the ring changes, so later calls fail without a query.
 */
static void
report_wrong_master_key(uint32 id, int tried)
{
	key_check_set(id, -1, tried);
	ereport(ERROR,
			errcode(ERRCODE_CONFIG_FILE_ERROR),
			errhidestmt(true),
			errmsg("master key %u in file \"%s\" does not open the data keys wrapped with it",
				   id, keyring_sig.path),
			errdetail("None of the %d data keys stored under master key %u opened.",
					  tried, id),
			errhint("The file named by roastr_state.master_key_file holds another key under id %u. "
					"Put the original key back; a new key needs a new id.", id));
}

/*
 * verify_master_key
 *		Before wrapping under master key id: ERROR unless it opens the data
 *		keys already stored under it (or there are none).  A data key this
 *		backend opened under the id already proved it.
 */
static void
verify_master_key(uint32 id, const uint8 *mk)
{
	RsMasterKeyCheck   *k = key_check(id);
	int			tried;

	if (k != NULL && k->state > 0)
		return;
	if (k != NULL && k->state < 0)
		report_wrong_master_key(id, k->tried);
	if (stored_keys_open(id, mk, NULL, &tried) == 0 && tried > 0)
		report_wrong_master_key(id, tried);
	key_check_set(id, 1, tried);
}

/*
 * current_master_key
 *		The newest master key of a usable ring, and its id.  ERROR if no ring
 *		is usable.
 */
static const uint8 *
current_master_key(uint32 *id)
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
	verify_master_key(*id, mk);
	return mk;
}

/*
 * rs_dek_create
 *		Make a new random data key for a user and wrap it under the current
 *		master key.
 *
 * Returns the wrapped key (72 bytes) to store; *master_id receives the id
 * of the master key used, and *dek_out, unless dek_out is NULL, the data
 * key in the clear (see rs_datakey_alloc).  ERROR if no ring is usable.
 */
bytea *
rs_dek_create(const pg_uuid_t *user, uint32 keygen, uint32 *master_id,
			  RsDataKey **dek_out)
{
	RsDataKey  *dek;
	bytea	   *wrapped;
	const uint8 *mk;
	uint32		id;
	int			rc;

	mk = current_master_key(&id);

	wrapped = wrapped_alloc();
	dek = rs_datakey_alloc(keygen);
	crypto_aead_xchacha20poly1305_ietf_keygen(dek->key);
	rc = rs_dek_wrap(mk, id, user->data, keygen, dek->key,
					 (uint8 *) VARDATA(wrapped), RS_DEK_WRAPPED_BYTES);
	if (rc != RS_OK)
	{
		rs_datakey_clear(dek);
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errhidestmt(true),
				errmsg_internal("could not wrap a data key: %s", rs_crypto_strerror(rc)));
	}

	if (master_id != NULL)
		*master_id = id;
	if (dek_out != NULL)
		*dek_out = dek;
	else
		rs_datakey_clear(dek);
	return wrapped;
}

/*
 * unwrap_into
 *		Unwrap a stored data key into dek, or ERROR.
 *
 * An unknown master key id is a configuration problem (the key was removed
 * from the file before every user was rewrapped): F0000, with the id in the
 * detail, which is not secret.  A wrapped key that does not verify is
 * XX001 (data_corrupted) with nothing for the client; the reason goes to the
 * server log only.
 */
static void
unwrap_into(RsDataKey *dek, const pg_uuid_t *user, uint32 keygen,
			uint32 master_id, bytea *wrapped)
{
	struct varlena *raw;
	const uint8 *mk;
	int			rc;

	mk = rs_keyring_find(keyring, master_id);
	if (mk == NULL)
		ereport(ERROR,
				errcode(ERRCODE_CONFIG_FILE_ERROR),
				errhidestmt(true),
				errmsg("could not unwrap the data key of user %s",
					   rs_uuid_to_cstring(user)),
				errdetail("Master key %u is not in the file named by roastr_state.master_key_file.",
						  master_id),
				errhint("Put the key back into the file until roastr_state.rotate_master_key() has moved every user to the newest key."));

	raw = pg_detoast_datum_packed((struct varlena *) wrapped);
	rc = rs_dek_unwrap(mk, master_id, user->data, keygen,
					   (const uint8 *) VARDATA_ANY(raw),
					   VARSIZE_ANY_EXHDR(raw), dek->key);
	if (rc == RS_OK)
		key_check_set(master_id, 1, 1);	/* the key is the right one */
	else
	{
		RsMasterKeyCheck   *k = key_check(master_id);
		int			tried;

		rs_datakey_clear(dek);

		/*
		 * The row, or the key?  The key, if it opens none of the others;
		 * not if it opened one before.
		 */
		if (k != NULL && k->state < 0)
			report_wrong_master_key(master_id, k->tried);
		if ((k == NULL || k->state == 0) &&
			stored_keys_open(master_id, mk, user, &tried) == 0 && tried > 0)
			report_wrong_master_key(master_id, tried + 1);
		ereport(ERROR,
				errcode(ERRCODE_DATA_CORRUPTED),
				errhidestmt(true),
				errmsg("could not unwrap the data key of user %s",
					   rs_uuid_to_cstring(user)),
				errdetail_log("Wrapped data key rejected: %s (master key %u, data key generation %u).",
							  rs_crypto_strerror(rc), master_id, keygen));
	}
}

/*
 * rs_dek_open
 *		Unwrap a user's stored data key.
 *
 * keygen and master_id are the values stored with the wrapped key; both are
 * authenticated.  Returns the key in the clear (see rs_datakey_alloc).
 * ERROR if no ring is usable, the master key is unknown, or the wrapped key
 * was tampered with, relabelled or moved from another user.
 */
RsDataKey *
rs_dek_open(const pg_uuid_t *user, uint32 keygen, uint32 master_id,
			bytea *wrapped)
{
	RsDataKey  *dek;

	rs_keyring_require();
	dek = rs_datakey_alloc(keygen);
	unwrap_into(dek, user, keygen, master_id, wrapped);
	return dek;
}

/*
 * rs_dek_rewrap
 *		Rewrap a user's stored data key under the current master key.
 *
 * For rotate_master_key().  Always rewraps, with a fresh nonce, even when
 * master_id already is the current key: callers skip those rows by
 * comparing with rs_keyring_current_id() first.  *new_master_id receives the
 * id now used.  The data key in the clear exists only in a wiped-on-reset
 * chunk and is wiped before returning.
 */
bytea *
rs_dek_rewrap(const pg_uuid_t *user, uint32 keygen, uint32 master_id,
			  bytea *wrapped, uint32 *new_master_id)
{
	RsDataKey  *dek;
	bytea	   *result;
	const uint8 *mk;
	uint32		id;
	int			rc;

	mk = current_master_key(&id);

	result = wrapped_alloc();
	dek = rs_datakey_alloc(keygen);
	unwrap_into(dek, user, keygen, master_id, wrapped);
	rc = rs_dek_wrap(mk, id, user->data, keygen, dek->key,
					 (uint8 *) VARDATA(result), RS_DEK_WRAPPED_BYTES);
	rs_datakey_clear(dek);
	if (rc != RS_OK)
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errhidestmt(true),
				errmsg_internal("could not wrap a data key: %s", rs_crypto_strerror(rc)));

	if (new_master_id != NULL)
		*new_master_id = id;
	return result;
}

/*
 * rs_persona_seal
 *		Encrypt len bytes of persona text for one user and field.
 *
 * field is the path, e.g. "persona.identity"; it is bound into the
 * ciphertext, as are the user and the data key's generation.  Text longer
 * than RS_PERSONA_MAX_BYTES bytes is 22023 naming the field.  Returns the
 * envelope (len + 46 bytes); the caller's plaintext is not copied anywhere.
 */
bytea *
rs_persona_seal(const RsDataKey *dek, const pg_uuid_t *user,
				const char *field, const char *plain, int len)
{
	bytea	   *result;
	size_t		envlen = 0;
	int			rc;

	if (len < 0)
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errhidestmt(true),
				errmsg_internal("negative persona text length %d", len));
	if (len > RS_PERSONA_MAX_BYTES)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errhidestmt(true),
				errmsg("value of field \"%s\" is too long", field),
				errdetail("Persona text may have at most %d bytes, this one has %d.",
						  RS_PERSONA_MAX_BYTES, len));

	result = palloc(VARHDRSZ + len + RS_ENV_OVERHEAD);
	rc = rs_env_seal(dek->key, dek->keygen, user->data, field,
					 (const uint8 *) plain, (size_t) len,
					 (uint8 *) VARDATA(result), (size_t) len + RS_ENV_OVERHEAD,
					 &envlen);
	if (rc != RS_OK)
		ereport(ERROR,
				errcode(ERRCODE_INTERNAL_ERROR),
				errhidestmt(true),
				errmsg("could not encrypt field \"%s\"", field),
				errdetail_log("Sealing failed: %s.", rs_crypto_strerror(rc)));
	SET_VARSIZE(result, VARHDRSZ + envlen);
	return result;
}

/*
 * rs_persona_open
 *		Verify and decrypt a stored persona envelope.
 *
 * env is hostile input (it may have been edited, truncated, or copied from
 * another row or field); it may be toasted.  Any failure is the same error,
 * XX001 "could not decrypt field ... of user ...", with nothing for the
 * client that would help an attacker; the reason goes to the server log.
 * The envelope's length is checked before anything is allocated for it.
 * Returns the text, which is the caller's to use and drop.
 */
text *
rs_persona_open(const RsDataKey *dek, const pg_uuid_t *user,
				const char *field, bytea *env)
{
	struct varlena *raw = pg_detoast_datum_packed((struct varlena *) env);
	const uint8 *data = (const uint8 *) VARDATA_ANY(raw);
	size_t		envlen = VARSIZE_ANY_EXHDR(raw);
	uint32		gen = 0;
	int			rc;

	rc = rs_env_keygen(data, envlen, &gen);
	if (rc == RS_OK && gen != dek->keygen)
		rc = RS_ERR_KEYGEN;
	if (rc == RS_OK)
	{
		/* rs_env_keygen bounded envlen to RS_ENV_MAX_BYTES */
		size_t		cap = envlen - RS_ENV_OVERHEAD;
		size_t		plen = 0;
		text	   *result = palloc(VARHDRSZ + cap);

		rc = rs_env_open(dek->key, user->data, field, data, envlen,
						 (uint8 *) VARDATA(result), cap, &plen);
		if (rc == RS_OK)
		{
			SET_VARSIZE(result, VARHDRSZ + plen);
			return result;
		}
		pfree(result);			/* nothing was decrypted into it */
	}

	ereport(ERROR,
			errcode(ERRCODE_DATA_CORRUPTED),
			errhidestmt(true),
			errmsg("could not decrypt field \"%s\" of user %s",
				   field, rs_uuid_to_cstring(user)),
			errdetail_log("Envelope rejected: %s.", rs_crypto_strerror(rc)));
	pg_unreachable();
}
