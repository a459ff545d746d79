/*-------------------------------------------------------------------------
 *
 * secret_file.h
 *	  Reading a small secret file (the master key file, the webhook
 *	  secret): the one reader, with the checks every secret file gets.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  src/secret_file.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef RS_SECRET_FILE_H
#define RS_SECRET_FILE_H

#include <sys/stat.h>
#include <time.h>

/* Identity of a file as stat() sees it: a changed file differs. */
typedef struct RsFileSig
{
	bool		valid;
	char		path[MAXPGPATH];
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	mode_t		mode;
	uid_t		uid;
	struct timespec mtime;
	struct timespec ctime;
} RsFileSig;

/* Why a secret file could not be read. */
typedef enum RsSecretProblem
{
	RS_SECRET_OK = 0,
	RS_SECRET_PATH_TOO_LONG,
	RS_SECRET_OPEN,				/* open() failed: errno */
	RS_SECRET_READ,				/* fstat() or read() failed: errno */
	RS_SECRET_NOT_REGULAR,
	RS_SECRET_NOT_OWNER,		/* not owned by the server's OS user */
	RS_SECRET_PERMISSIONS,		/* group or world access */
	RS_SECRET_TOO_LARGE,
	RS_SECRET_NO_MEMORY			/* sodium_malloc failed */
} RsSecretProblem;

extern RsSecretProblem rs_secret_file_read(const char *path, size_t max_bytes,
										   char **buf, size_t *len,
										   RsFileSig *sig, int *save_errno);
extern void rs_secret_file_free(char *buf, size_t max_bytes);
extern bool rs_secret_problem_is_own(RsSecretProblem problem);
extern bool rs_file_sig_matches(const RsFileSig *sig, const char *path,
								const struct stat *st);
extern bool rs_file_unchanged(const RsFileSig *sig, const char *path);

#endif							/* RS_SECRET_FILE_H */
