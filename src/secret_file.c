/*-------------------------------------------------------------------------
 *
 * secret_file.c
 *	  Reading a small secret file: the one reader of the master key file
 *	  (crypto.c) and the webhook secret (webhook.c).
 *
 * A secret file must be a regular file owned by the server's OS user with
 * no group or world access, and small.  It is opened with O_NONBLOCK, so a
 * FIFO cannot hang us before fstat() refuses it, and checked through the
 * open descriptor, so what is checked is what is read even if the path is
 * swapped meanwhile.  Symbolic links are followed: secret managers commonly
 * swap a symlink to rotate files.  The bytes are read in a loop into
 * guarded memory (sodium_malloc), wiped before it is freed.
 *
 * Nothing here throws or pallocs: the postmaster reads the master key file
 * while loading the library, where an ERROR would stop the server.
 * Callers turn a problem into their own messages, and cache what they made
 * of the bytes until the file's signature (device, inode, size, mode,
 * owner, mtime and ctime, with nanoseconds) changes.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/secret_file.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "secret_file.h"

/* Fill "sig" from a struct stat of the file at "path". */
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
	sig->uid = st->st_uid;
	sig->mtime = st->st_mtim;	/* POSIX.1-2008 nanosecond times */
	sig->ctime = st->st_ctim;
}

/*
 * rs_file_sig_matches
 *		Whether the file at "path", as "st" describes it, is the one "sig"
 *		describes.
 */
bool
rs_file_sig_matches(const RsFileSig *sig, const char *path,
					const struct stat *st)
{
	return sig->valid &&
		strcmp(sig->path, path) == 0 &&
		sig->dev == st->st_dev &&
		sig->ino == st->st_ino &&
		sig->size == st->st_size &&
		sig->mode == st->st_mode &&
		sig->uid == st->st_uid &&
		sig->mtime.tv_sec == st->st_mtim.tv_sec &&
		sig->mtime.tv_nsec == st->st_mtim.tv_nsec &&
		sig->ctime.tv_sec == st->st_ctim.tv_sec &&
		sig->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/*
 * rs_file_unchanged
 *		Whether the file at "path" still is the one "sig" describes (one
 *		stat(); false when it is gone).
 */
bool
rs_file_unchanged(const RsFileSig *sig, const char *path)
{
	struct stat st;

	return sig->valid && stat(path, &st) == 0 &&
		rs_file_sig_matches(sig, path, &st);
}

/*
 * rs_secret_problem_is_own
 *		Whether a problem belongs to the file itself, so rereading the same,
 *		unchanged file cannot help (unlike open, read or memory failures).
 */
bool
rs_secret_problem_is_own(RsSecretProblem problem)
{
	return problem == RS_SECRET_NOT_REGULAR ||
		problem == RS_SECRET_NOT_OWNER ||
		problem == RS_SECRET_PERMISSIONS ||
		problem == RS_SECRET_TOO_LARGE;
}

/*
 * check_opened
 *		The checks of an opened secret file, from fstat() of its descriptor.
 */
static RsSecretProblem
check_opened(const struct stat *st, size_t max_bytes)
{
	if (!S_ISREG(st->st_mode))
		return RS_SECRET_NOT_REGULAR;
	if (st->st_uid != geteuid())
		return RS_SECRET_NOT_OWNER;
	if ((st->st_mode & (S_IRWXG | S_IRWXO)) != 0)
		return RS_SECRET_PERMISSIONS;
	if (st->st_size > (off_t) max_bytes)
		return RS_SECRET_TOO_LARGE;
	return RS_SECRET_OK;
}

/*
 * read_all
 *		Read up to max_bytes + 1 bytes of "fd" into "buf" (so a file that
 *		grew past the limit while we read it is noticed); *len gets how
 *		many.
 */
static RsSecretProblem
read_all(int fd, char *buf, size_t max_bytes, size_t *len, int *save_errno)
{
	*len = 0;
	while (*len < max_bytes + 1)
	{
		ssize_t		n = read(fd, buf + *len, max_bytes + 1 - *len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			*save_errno = errno;
			return RS_SECRET_READ;
		}
		if (n == 0)
			break;
		*len += (size_t) n;
	}
	return *len > max_bytes ? RS_SECRET_TOO_LARGE : RS_SECRET_OK;
}

/*
 * rs_secret_file_read
 *		Read the secret file at "path" (at most max_bytes) into *buf, a
 *		guarded buffer of max_bytes + 1 bytes that the caller wipes and
 *		frees with rs_secret_file_free; *len gets the length.
 *
 * On failure returns the problem (*buf is NULL; *save_errno is set for
 * RS_SECRET_OPEN and RS_SECRET_READ).  *sig describes the file that was
 * opened, from fstat() of the descriptor, and stays valid on the
 * failures that are the file's own (rs_secret_problem_is_own), so a caller
 * can avoid rereading an unchanged bad file.  Never throws, never pallocs.
 */
RsSecretProblem
rs_secret_file_read(const char *path, size_t max_bytes, char **buf,
					size_t *len, RsFileSig *sig, int *save_errno)
{
	int			fd;
	struct stat st;
	RsSecretProblem problem;

	*buf = NULL;
	*len = 0;
	*save_errno = 0;
	memset(sig, 0, sizeof(*sig));
	if (strlen(path) >= MAXPGPATH)
		return RS_SECRET_PATH_TOO_LONG;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
	{
		*save_errno = errno;
		return RS_SECRET_OPEN;
	}
	if (fstat(fd, &st) != 0)
	{
		*save_errno = errno;
		close(fd);
		return RS_SECRET_READ;
	}
	sig_from_stat(sig, path, &st);
	problem = check_opened(&st, max_bytes);
	if (problem == RS_SECRET_OK)
	{
		*buf = sodium_malloc(max_bytes + 1);
		if (*buf == NULL)
			problem = RS_SECRET_NO_MEMORY;
		else
			problem = read_all(fd, *buf, max_bytes, len, save_errno);
	}
	close(fd);
	if (problem != RS_SECRET_OK)
	{
		if (!rs_secret_problem_is_own(problem))
			sig->valid = false;
		rs_secret_file_free(*buf, max_bytes);
		*buf = NULL;
		*len = 0;
	}
	return problem;
}

/*
 * rs_secret_file_free
 *		Wipe and free a buffer of rs_secret_file_read (NULL is ignored).
 */
void
rs_secret_file_free(char *buf, size_t max_bytes)
{
	if (buf == NULL)
		return;
	sodium_memzero(buf, max_bytes + 1);
	sodium_free(buf);
}
