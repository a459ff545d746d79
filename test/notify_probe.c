/*-------------------------------------------------------------------------
 *
 * notify_probe.c
 *	  A LISTENing client for tests, the demo and benchmarks.
 *
 * Usage: notify_probe [-n COUNT] [-t TIMEOUT_MS] [-T] CHANNEL...
 *
 * Connects with the usual PG* environment, LISTENs on each channel, prints
 * "ready", then prints one line per notification, "<channel> <payload>"
 * (with -T, prefixed by the receive time in microseconds since the epoch),
 * until COUNT notifications arrived (exit 0) or TIMEOUT_MS passed without
 * reaching it (exit 2).  The sender's PID is not printed, so the output is
 * deterministic.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  test/notify_probe.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>
#include <unistd.h>

#include "libpq-fe.h"

static long long
now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long long) tv.tv_sec * 1000000 + tv.tv_usec;
}

int
main(int argc, char **argv)
{
	long		count = -1;
	long		timeout_ms = 10000;
	int			stamp = 0;
	int			opt;
	PGconn	   *conn;
	long		got = 0;
	long long	deadline;

	while ((opt = getopt(argc, argv, "n:t:T")) != -1)
	{
		switch (opt)
		{
			case 'n':
				count = atol(optarg);
				break;
			case 't':
				timeout_ms = atol(optarg);
				break;
			case 'T':
				stamp = 1;
				break;
			default:
				fprintf(stderr, "usage: %s [-n COUNT] [-t TIMEOUT_MS] [-T] CHANNEL...\n", argv[0]);
				return 1;
		}
	}
	if (optind >= argc)
	{
		fprintf(stderr, "%s: no channel given\n", argv[0]);
		return 1;
	}

	conn = PQconnectdb("");
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "%s: %s", argv[0], PQerrorMessage(conn));
		return 1;
	}
	for (int i = optind; i < argc; i++)
	{
		char	   *ident = PQescapeIdentifier(conn, argv[i], strlen(argv[i]));
		char		sql[256];
		PGresult   *res;

		snprintf(sql, sizeof(sql), "LISTEN %s", ident);
		PQfreemem(ident);
		res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			fprintf(stderr, "%s: %s", argv[0], PQerrorMessage(conn));
			return 1;
		}
		PQclear(res);
	}
	printf("ready\n");
	fflush(stdout);

	deadline = now_us() + (long long) timeout_ms * 1000;
	while (count < 0 || got < count)
	{
		int			sock = PQsocket(conn);
		fd_set		mask;
		struct timeval tv;
		long long	left = deadline - now_us();
		PGnotify   *n;

		if (left <= 0)
			return 2;
		FD_ZERO(&mask);
		FD_SET(sock, &mask);
		tv.tv_sec = left / 1000000;
		tv.tv_usec = left % 1000000;
		if (select(sock + 1, &mask, NULL, NULL, &tv) < 0)
		{
			perror("select");
			return 1;
		}
		if (!PQconsumeInput(conn))
		{
			fprintf(stderr, "%s: %s", argv[0], PQerrorMessage(conn));
			return 1;
		}
		while ((n = PQnotifies(conn)) != NULL)
		{
			if (stamp)
				printf("%lld ", now_us());
			printf("%s %s\n", n->relname, n->extra);
			fflush(stdout);
			PQfreemem(n);
			got++;
		}
	}
	PQfinish(conn);
	return 0;
}
