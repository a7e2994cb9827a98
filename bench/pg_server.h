/* bench/pg_server: a private PostgreSQL server for the benchmarks that compare with PostgreSQL
 * (bench-contention, bench-sql): initdb and pg_ctl on a temporary directory, listening only on
 * a unix socket there, never the system's instance; run as the `postgres` user when we are
 * root, since PostgreSQL refuses root. The server keeps PostgreSQL's defaults (fsync and
 * synchronous_commit on): every commit is durable. Clients connect with libpq to `conninfo`. */
#ifndef BENCH_PG_SERVER_H
#define BENCH_PG_SERVER_H

#include <stdbool.h>

#include "common/mr_err.h"

typedef struct pg_server {
    char dir[512], data[600], log[600], bindir[512];
    char conninfo[700]; /* "host=DIR port=5432 user=postgres dbname=postgres" */
    bool as_postgres;   /* root: server commands run as the postgres user */
    bool started;
    char who[40]; /* the benchmark's name, for messages */
} pg_server;

/* Finds the server programs (bindir given, else /usr/lib/postgresql/<newest>/bin, else pg_ctl
 * on PATH), makes a temporary directory /tmp/<prefix>.XXXXXX, initdb, starts the server with
 * max_connections as given (0: 200) and waits for it. On failure everything made is removed
 * and err says why (MR_EUNAVAIL when PostgreSQL is not installed). */
int pg_server_start(pg_server *p, const char *bindir, const char *prefix, int max_connections,
                    const char *who, mr_err *err);
/* Stops the server (pg_ctl fast, else signals to its postmaster) and removes the directory.
 * Safe on a server that never started. */
void pg_server_stop(pg_server *p);

#endif
