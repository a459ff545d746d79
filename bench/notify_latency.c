/*-------------------------------------------------------------------------
 *
 * notify_latency.c
 *	  Commit-to-receipt latency of roastr_state's notifications.
 *
 * Usage: notify_latency -u USER_UUID [-n COUNT] [-r RATE] [-m worker|direct]
 *						 [-w WAIT_MS]
 *
 * Two connections (the usual PG* environment).  A listener thread LISTENs on
 * "user:<uuid>" and stamps every notification the moment libpq hands it
 * over; the main thread, at a steady RATE per second, runs COUNT autocommit
 * patches of that user, each flipping roasting.enabled (so every one is a
 * real change and gets a new version), and stamps the moment each call
 * returned, i.e. when the COMMIT was acknowledged.  Notifications are
 * matched to commits by the payload's "version"; a payload with version V
 * also covers earlier versions not yet seen (coalesced notifications).
 *
 * Prints one line:
 *	 mode=worker n=2000 received=2000 payloads=2000 p50_ms=... p99_ms=...
 *	 max_ms=... commit_p50_ms=...
 * where p50/p99/max are of (receipt - commit acknowledged) and commit_p50
 * is the writer's own round trip.  Exit status 0 when every commit was
 * announced within WAIT_MS after the last one, 3 otherwise.
 *
 * Copyright (c) 2026, the roastr_state authors
 *
 * IDENTIFICATION
 *	  bench/notify_latency.c
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

static PGconn *listen_conn;
static long count = 2000;
static long long first_version;	/* version before the first patch */
static double *recv_ms;			/* by version - first_version - 1; <0: not yet */
static long received;			/* commits covered by a notification */
static long payloads;
static volatile int stop_listening;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
die(PGconn *conn, const char *what)
{
	fprintf(stderr, "notify_latency: %s: %s", what,
			conn ? PQerrorMessage(conn) : "\n");
	exit(1);
}

static long long
json_version(const char *json)
{
	const char *p = strstr(json, "\"version\":");

	if (p == NULL)
		p = strstr(json, "\"version\": ");
	if (p == NULL)
		return -1;
	p = strchr(p, ':') + 1;
	while (*p == ' ')
		p++;
	return atoll(p);
}

static void *
listener(void *arg)
{
	int			sock = PQsocket(listen_conn);

	(void) arg;
	while (!stop_listening)
	{
		fd_set		mask;
		struct timeval tv = {0, 20000};
		PGnotify   *n;

		FD_ZERO(&mask);
		FD_SET(sock, &mask);
		if (select(sock + 1, &mask, NULL, NULL, &tv) < 0)
		{
			if (errno == EINTR)
				continue;
			perror("select");
			exit(1);
		}
		if (!PQconsumeInput(listen_conn))
			die(listen_conn, "listener");
		while ((n = PQnotifies(listen_conn)) != NULL)
		{
			double		t = now_ms();
			long long	v = json_version(n->extra);

			pthread_mutex_lock(&mu);
			payloads++;
			for (long long i = v - first_version - 1; i >= 0; i--)
			{
				if (i >= count)
					continue;
				if (recv_ms[i] >= 0)
					break;		/* earlier ones were covered before */
				recv_ms[i] = t;
				received++;
			}
			pthread_mutex_unlock(&mu);
			PQfreemem(n);
		}
	}
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

static double
pct(const double *sorted, long n, double p)
{
	long		i;

	if (n == 0)
		return -1;
	i = (long) (p * n + 0.999999) - 1;	/* nearest rank */
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return sorted[i];
}

static PGresult *
must(PGconn *conn, PGresult *res, ExecStatusType want, const char *what)
{
	if (PQresultStatus(res) != want)
		die(conn, what);
	return res;
}

int
main(int argc, char **argv)
{
	const char *user = NULL;
	const char *mode = "worker";
	double		rate = 200;
	long		wait_ms = 5000;
	int			opt;
	PGconn	   *conn;
	PGresult   *res;
	char		sql[256];
	char	   *ident;
	int			enabled;
	double	   *commit_ms;
	double	   *rtt_ms;
	double	   *lat;
	long		nlat = 0;
	pthread_t	th;
	double		t0;
	double		deadline;

	while ((opt = getopt(argc, argv, "u:n:r:m:w:")) != -1)
	{
		switch (opt)
		{
			case 'u':
				user = optarg;
				break;
			case 'n':
				count = atol(optarg);
				break;
			case 'r':
				rate = atof(optarg);
				break;
			case 'm':
				mode = optarg;
				break;
			case 'w':
				wait_ms = atol(optarg);
				break;
			default:
				fprintf(stderr, "usage: %s -u USER_UUID [-n COUNT] [-r RATE] [-m worker|direct] [-w WAIT_MS]\n",
						argv[0]);
				return 1;
		}
	}
	if (user == NULL || count <= 0 || rate <= 0)
	{
		fprintf(stderr, "%s: -u USER_UUID is required; COUNT and RATE must be positive\n", argv[0]);
		return 1;
	}

	conn = PQconnectdb("");
	if (PQstatus(conn) != CONNECTION_OK)
		die(conn, "connect");
	listen_conn = PQconnectdb("");
	if (PQstatus(listen_conn) != CONNECTION_OK)
		die(listen_conn, "connect");

	snprintf(sql, sizeof(sql), "user:%s", user);
	ident = PQescapeIdentifier(listen_conn, sql, strlen(sql));
	snprintf(sql, sizeof(sql), "LISTEN %s", ident);
	PQfreemem(ident);
	PQclear(must(listen_conn, PQexec(listen_conn, sql), PGRES_COMMAND_OK, "LISTEN"));

	snprintf(sql, sizeof(sql), "SET roastr_state.notify_mode = %s", mode);
	PQclear(must(conn, PQexec(conn, sql), PGRES_COMMAND_OK, "SET notify_mode"));

	{
		const char *params[1] = {user};

		res = must(conn, PQexecParams(conn,
									  "SELECT roasting_enabled, version FROM roastr_state.state WHERE user_id = $1::uuid",
									  1, NULL, params, NULL, NULL, 0),
				   PGRES_TUPLES_OK, "read state");
		if (PQntuples(res) != 1)
		{
			fprintf(stderr, "notify_latency: user %s has no state\n", user);
			return 1;
		}
		enabled = PQgetvalue(res, 0, 0)[0] == 't';
		first_version = atoll(PQgetvalue(res, 0, 1));
		PQclear(res);
	}
	PQclear(must(conn, PQprepare(conn, "patch",
								 "SELECT roastr_state.patch($1::uuid, jsonb_build_object('roasting.enabled', $2::boolean))",
								 2, NULL),
				 PGRES_COMMAND_OK, "prepare"));

	recv_ms = malloc(sizeof(double) * count);
	commit_ms = malloc(sizeof(double) * count);
	rtt_ms = malloc(sizeof(double) * count);
	lat = malloc(sizeof(double) * count);
	for (long i = 0; i < count; i++)
		recv_ms[i] = commit_ms[i] = -1;

	if (pthread_create(&th, NULL, listener, NULL) != 0)
	{
		perror("pthread_create");
		return 1;
	}

	t0 = now_ms();
	for (long i = 0; i < count; i++)
	{
		double		due = t0 + i * 1000.0 / rate;
		double		start;
		const char *params[2];
		long long	v;

		while ((start = now_ms()) < due)
		{
			struct timespec ts;
			double		left = due - start;

			ts.tv_sec = (time_t) (left / 1000);
			ts.tv_nsec = (long) ((left - ts.tv_sec * 1000.0) * 1e6);
			nanosleep(&ts, NULL);
		}
		enabled = !enabled;
		params[0] = user;
		params[1] = enabled ? "true" : "false";
		res = must(conn, PQexecPrepared(conn, "patch", 2, params, NULL, NULL, 0),
				   PGRES_TUPLES_OK, "patch");
		commit_ms[i] = now_ms();
		rtt_ms[i] = commit_ms[i] - start;
		v = json_version(PQgetvalue(res, 0, 0));
		if (v != first_version + 1 + i)
		{
			fprintf(stderr, "notify_latency: patch %ld returned version %lld, expected %lld (is another writer touching the user?)\n",
					i, v, first_version + 1 + i);
			return 1;
		}
		PQclear(res);
	}

	deadline = now_ms() + wait_ms;
	for (;;)
	{
		long		got;

		pthread_mutex_lock(&mu);
		got = received;
		pthread_mutex_unlock(&mu);
		if (got >= count || now_ms() > deadline)
			break;
		usleep(5000);
	}
	stop_listening = 1;
	pthread_join(th, NULL);

	for (long i = 0; i < count; i++)
		if (recv_ms[i] >= 0)
			lat[nlat++] = recv_ms[i] - commit_ms[i];
	qsort(lat, nlat, sizeof(double), cmp_double);
	qsort(rtt_ms, count, sizeof(double), cmp_double);
	printf("mode=%s n=%ld received=%ld payloads=%ld p50_ms=%.3f p99_ms=%.3f max_ms=%.3f commit_p50_ms=%.3f\n",
		   mode, count, nlat, payloads, pct(lat, nlat, 0.50), pct(lat, nlat, 0.99),
		   nlat ? lat[nlat - 1] : -1.0, pct(rtt_ms, count, 0.50));

	PQfinish(conn);
	PQfinish(listen_conn);
	return nlat == count ? 0 : 3;
}
