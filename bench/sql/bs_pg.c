/* bench-sql's PostgreSQL: a private server (bench/pg_server.h: initdb and pg_ctl on a temporary
 * directory, unix socket only, PostgreSQL's durable defaults), one libpq connection per client
 * with default_transaction_isolation = serializable, the five statements prepared once per
 * connection (PQprepare) and run as autocommit statements. A serialization failure (40001) or
 * a detected deadlock (40P01) is retried after a short growing pause (1 ms doubling to 64 ms)
 * for up to PG_RETRIES attempts, as Meridian's autocommit writes are retried inside the engine
 * (the latency counts every attempt). */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/pg_server.h"
#include "bench/sql/bs.h"

#define PG_RETRIES 100

typedef struct pg_client {
    PGconn *conn;
} pg_client;

static const char *const pg_sql[BS_CASES] = {
    [BS_SELECT] = "SELECT balance, name FROM accounts WHERE id = $1",
    [BS_INSERT] = "INSERT INTO ins VALUES ($1::bigint, 0, 1000, 'ins-' || $1::bigint::text)",
    [BS_UPDATE] = "UPDATE accounts SET balance = balance + 1 WHERE id = $1",
    [BS_SCAN] = "SELECT id, balance FROM accounts WHERE id >= $1 AND id < $1 + 100",
    [BS_JOIN] = "SELECT a.id, o.name FROM accounts a JOIN owners o ON o.id = a.owner "
                "WHERE a.id >= $1 AND a.id < $1 + 10",
};

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int pg_connect(pg_server *s, PGconn **out, mr_err *err)
{
    PGconn *c = PQconnectdb(s->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        mr_errf(err, MR_EUNAVAIL, "connecting to PostgreSQL (%s): %s", s->conninfo,
                PQerrorMessage(c));
        PQfinish(c);
        return MR_EUNAVAIL;
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    PGresult *r = PQexec(c, "SET default_transaction_isolation = 'serializable'");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        mr_errf(err, MR_EIO, "setting SERIALIZABLE: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return MR_EIO;
    }
    PQclear(r);
    *out = c;
    return MR_OK;
}

static int pg_exec(PGconn *c, const char *sql, mr_err *err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return mr_errf(err, MR_EIO, "%.80s: %s", sql, PQerrorMessage(c));
    return MR_OK;
}

static int pg_load(void *sys, const bs_data *d, mr_err *err)
{
    PGconn *c;
    int rc = pg_connect(sys, &c, err);
    if (rc != MR_OK)
        return rc;
    char sql[1024];
    snprintf(sql, sizeof sql,
             "CREATE TABLE owners (id bigint PRIMARY KEY, name text);"
             "CREATE TABLE accounts (id bigint PRIMARY KEY, owner bigint, balance bigint, "
             "name text);"
             "CREATE TABLE ins (id bigint PRIMARY KEY, owner bigint, balance bigint, name text);"
             "INSERT INTO owners SELECT g, 'owner-' || g FROM generate_series(0, %d) g;"
             "INSERT INTO accounts SELECT g, g %% %d, 1000, 'account-' || g "
             "FROM generate_series(0, %" PRId64 ") g",
             d->nowners - 1, d->nowners, d->naccounts - 1);
    rc = pg_exec(c, sql, err);
    if (rc == MR_OK)
        rc = pg_exec(c, "VACUUM ANALYZE", err); /* not inside the multi-statement transaction */
    PQfinish(c);
    return rc;
}

static void pg_close(void *client)
{
    pg_client *c = client;
    if (!c)
        return;
    PQfinish(c->conn);
    free(c);
}

static int pg_open(void *sys, void **out, mr_err *err)
{
    pg_client *c = calloc(1, sizeof *c);
    if (!c)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    int rc = pg_connect(sys, &c->conn, err);
    for (int k = 0; rc == MR_OK && k < BS_CASES; k++) {
        char name[8];
        snprintf(name, sizeof name, "s%d", k);
        PGresult *r = PQprepare(c->conn, name, pg_sql[k], 1, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = mr_errf(err, MR_EIO, "preparing %s: %s", pg_sql[k], PQerrorMessage(c->conn));
        PQclear(r);
    }
    if (rc != MR_OK) {
        pg_close(c);
        return rc;
    }
    *out = c;
    return MR_OK;
}

static int pg_op(void *client, bs_case k, int64_t a, bs_result *r)
{
    pg_client *c = client;
    char name[8], arg[24];
    snprintf(name, sizeof name, "s%d", (int)k);
    snprintf(arg, sizeof arg, "%" PRId64, a);
    const char *p[1] = {arg};
    for (int attempt = 0;; attempt++) {
        PGresult *res = PQexecPrepared(c->conn, name, 1, p, NULL, NULL, 0);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            r->rows = st == PGRES_TUPLES_OK ? PQntuples(res) : 0;
            PQclear(res);
            return MR_OK;
        }
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        bool again = state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0);
        snprintf(r->msg, sizeof r->msg, "%s", PQerrorMessage(c->conn));
        PQclear(res);
        if (!again || attempt >= PG_RETRIES)
            return again ? MR_EABORTED : MR_EIO;
        long ms = 1L << (attempt < 6 ? attempt : 6);
        struct timespec d = {0, ms * 1000000L};
        nanosleep(&d, NULL);
    }
}

static int pg_int(pg_server *s, const char *sql, int64_t *out, mr_err *err)
{
    PGconn *c;
    int rc = pg_connect(s, &c, err);
    if (rc != MR_OK)
        return rc;
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        *out = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        rc = mr_errf(err, MR_EIO, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return rc;
}

static int pg_count_ins(void *sys, int64_t lo, int64_t hi, int64_t *n, mr_err *err)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM ins WHERE id >= %" PRId64 " AND id < %" PRId64,
             lo, hi);
    return pg_int(sys, sql, n, err);
}

static int pg_sum(void *sys, int64_t *sum, mr_err *err)
{
    return pg_int(sys, "SELECT sum(balance) FROM accounts", sum, err);
}

int bs_pg_start(const char *bindir, int max_connections, bs_system *sys, mr_err *err)
{
    pg_server *s = calloc(1, sizeof *s);
    if (!s)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    int rc = pg_server_start(s, bindir, "meridian-sqlbench-pg", max_connections, "bench-sql", err);
    if (rc != MR_OK) {
        free(s);
        return rc;
    }
    *sys = (bs_system){.name = "postgres",
                       .cases = {true, true, true, true, true},
                       .load = pg_load,
                       .open = pg_open,
                       .op = pg_op,
                       .count_ins = pg_count_ins,
                       .sum_balance = pg_sum,
                       .close = pg_close,
                       .sys = s};
    return MR_OK;
}

void bs_pg_stop(bs_system *sys)
{
    pg_server *s = sys->sys;
    if (!s)
        return;
    pg_server_stop(s);
    free(s);
    sys->sys = NULL;
}
