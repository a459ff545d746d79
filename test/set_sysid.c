/*-------------------------------------------------------------------------
 *
 * set_sysid.c
 *	  Give a stopped test cluster a chosen system identifier.
 *
 * Usage: set_sysid DATADIR SYSTEM_IDENTIFIER
 *
 * Every answer that carries a version carries the history token
 * "<system identifier>.<timeline>" (src/history.c), and initdb draws the
 * identifier from the clock and its PID.  The regression and isolation
 * suites print patch answers and notification payloads verbatim, so their
 * cluster is given a fixed identifier (scripts/cluster.sh, ROASTR_SYSID)
 * after initdb and before it first starts; pg_resetwal -f then writes WAL
 * that names it (initdb's names the old one).
 *
 * The control file's CRC is checked before anything is written (a file of
 * another layout or a wrong checksum is refused) and computed again after
 * the change; the file is rewritten in place and fsync'd.  This is for
 * throwaway test clusters only: the identifier is what binds a standby and
 * archived WAL to their primary.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/set_sysid.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <fcntl.h>
#include <unistd.h>

#include "catalog/pg_control.h"

/* libpgport is not linked: the C library's printf family will do */
#undef fprintf
#undef snprintf
#undef strerror

/* CRC-32C (Castagnoli), reflected, as PostgreSQL's pg_crc32c. */
static uint32
crc32c(const unsigned char *p, size_t len)
{
	uint32		crc = 0xFFFFFFFF;

	while (len--)
	{
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78 & (0 - (crc & 1)));
	}
	return crc ^ 0xFFFFFFFF;
}

static void
fail(const char *what, const char *path)
{
	fprintf(stderr, "set_sysid: %s \"%s\": %s\n", what, path,
			errno ? strerror(errno) : "bad contents");
	exit(1);
}

int
main(int argc, char **argv)
{
	char		path[MAXPGPATH];
	unsigned char buf[PG_CONTROL_FILE_SIZE];
	ControlFileData cf;
	unsigned long long sysid;
	char	   *end;
	int			fd;

	if (argc != 3)
	{
		fprintf(stderr, "usage: set_sysid DATADIR SYSTEM_IDENTIFIER\n");
		return 2;
	}
	errno = 0;
	sysid = strtoull(argv[2], &end, 10);
	if (errno != 0 || *end != '\0' || end == argv[2] || sysid == 0)
	{
		fprintf(stderr, "set_sysid: invalid system identifier \"%s\"\n",
				argv[2]);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/global/pg_control", argv[1]);

	fd = open(path, O_RDWR | PG_BINARY, 0);
	if (fd < 0)
		fail("could not open", path);
	errno = 0;
	if (read(fd, buf, sizeof(buf)) != (ssize_t) sizeof(buf))
		fail("could not read", path);
	memcpy(&cf, buf, sizeof(cf));
	errno = 0;
	if (cf.pg_control_version != PG_CONTROL_VERSION ||
		crc32c(buf, offsetof(ControlFileData, crc)) != cf.crc)
		fail("unexpected control file (version or checksum)", path);

	cf.system_identifier = (uint64) sysid;
	memcpy(buf, &cf, sizeof(cf));
	cf.crc = crc32c(buf, offsetof(ControlFileData, crc));
	memcpy(buf, &cf, sizeof(cf));

	if (lseek(fd, 0, SEEK_SET) != 0 ||
		write(fd, buf, sizeof(buf)) != (ssize_t) sizeof(buf))
		fail("could not write", path);
	if (fsync(fd) != 0 || close(fd) != 0)
		fail("could not sync", path);
	return 0;
}
