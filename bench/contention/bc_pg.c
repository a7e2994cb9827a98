/* bench-contention's PostgreSQL: a private server (bench/pg_server.h: initdb and pg_ctl on a
 * temporary directory, unix socket only) and one libpq connection per client.
 * Each transaction is SERIALIZABLE: two SELECTs and one or two UPDATEs of the same hot rows
 * Meridian's clients touch, retried on serialization failures (40001) and detected deadlocks
 * (40P01) with the runner's backoff until the deadline. The server keeps PostgreSQL's
 * defaults (fsync and synchronous_commit on): every commit is durable, as Meridian's. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_lat.h"
#include "bench/contention/bc.h"
#include "bench/pg_server.h"
#include "common/mr_util.h"

typedef pg_server pg_sys;

struct bc_client {
    pg_sys *s;
    PGconn *conn;
    uint64_t rng;
};

static PGresult *exec_ok(PGconn *c, const char *sql, mr_err *err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        mr_errf(err, MR_EIO, "%s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* The server's notices ("relation already exists, skipping") are not results. */
static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int connect_pg(pg_sys *s, PGconn **out, mr_err *err)
{
    PGconn *c = PQconnectdb(s->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        mr_errf(err, MR_EUNAVAIL, "connecting to PostgreSQL (%s): %s", s->conninfo,
                PQerrorMessage(c));
        PQfinish(c);
        return MR_EUNAVAIL;
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    *out = c;
    return MR_OK;
}

static int pg_prepare_keys(void *sys, const char *const *keys, int nkeys, mr_err *err)
{
    pg_sys *s = sys;
    PGconn *c;
    int rc = connect_pg(s, &c, err);
    if (rc != MR_OK)
        return rc;
    PGresult *r =
        exec_ok(c, "CREATE TABLE IF NOT EXISTS hot (k text PRIMARY KEY, v text NOT NULL)", err);
    if (r) {
        PQclear(r);
        r = exec_ok(c, "TRUNCATE hot", err);
    }
    for (int i = 0; r && i < nkeys; i++) {
        PQclear(r);
        const char *params[1] = {keys[i]};
        r = PQexecParams(c, "INSERT INTO hot (k, v) VALUES ($1, '')", 1, NULL, params, NULL, NULL,
                         0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            mr_errf(err, MR_EIO, "inserting the keys: %s", PQerrorMessage(c));
            PQclear(r);
            r = NULL;
        }
    }
    rc = r ? MR_OK : MR_EIO;
    PQclear(r);
    PQfinish(c);
    return rc;
}

static int pg_open(void *sys, bc_client **out, mr_err *err)
{
    bc_client *c = calloc(1, sizeof *c);
    if (!c)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    c->s = sys;
    c->rng = (uint64_t)mr_monotonic_ns() ^ (uint64_t)(uintptr_t)c;
    int rc = connect_pg(c->s, &c->conn, err);
    PGresult *r = NULL;
    if (rc == MR_OK) {
        r = PQprepare(c->conn, "rd", "SELECT v FROM hot WHERE k = $1", 1, NULL);
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            PQclear(r);
            r = PQprepare(c->conn, "wr", "UPDATE hot SET v = $2 WHERE k = $1", 2, NULL);
        }
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = mr_errf(err, MR_EIO, "preparing statements: %s", PQerrorMessage(c->conn));
        PQclear(r);
    }
    if (rc != MR_OK) {
        if (c->conn)
            PQfinish(c->conn);
        free(c);
        return rc;
    }
    *out = c;
    return MR_OK;
}

/* Ends a failed step: the reason (NULL: not retryable) from the result's SQLSTATE. */
static bool retryable(PGresult *r, bc_reason *why)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "40001") == 0) {
        *why = BC_R_WOUND; /* serialization failure: the database's abort-and-retry */
        return true;
    }
    if (state && strcmp(state, "40P01") == 0) {
        *why = BC_R_LEADER; /* deadlock detected */
        return true;
    }
    *why = BC_R_OTHER;
    return false;
}

/* One attempt: MR_OK committed, MR_EABORTED retryable (why set), MR_EIO otherwise. */
static int pg_attempt(bc_client *c, const bc_txn *t, bc_reason *why, char *msg, size_t mlen)
{
    PGconn *conn = c->conn;
    PGresult *r = PQexec(conn, "BEGIN ISOLATION LEVEL SERIALIZABLE");
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? MR_OK : MR_EIO;
    char *vals[2] = {NULL, NULL};
    for (int i = 0; i < 2 && rc == MR_OK; i++) {
        PQclear(r);
        const char *p[1] = {t->keys[i]};
        r = PQexecPrepared(conn, "rd", 1, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
            rc = MR_EIO;
        else
            vals[i] = strdup(PQgetvalue(r, 0, 0));
    }
    for (int i = 0; i < t->nappend && rc == MR_OK; i++) {
        PQclear(r);
        r = NULL;
        char *nv = vals[i] ? bc_append(vals[i], strlen(vals[i]), t->token) : NULL;
        if (!nv) {
            rc = MR_EIO;
            snprintf(msg, mlen, "out of memory");
            break;
        }
        const char *p[2] = {t->keys[i], nv};
        r = PQexecPrepared(conn, "wr", 2, p, NULL, NULL, 0);
        free(nv);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = MR_EIO;
    }
    if (rc == MR_OK) {
        PQclear(r);
        r = PQexec(conn, "COMMIT");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = MR_EIO;
    }
    free(vals[0]);
    free(vals[1]);
    if (rc == MR_OK) {
        PQclear(r);
        return MR_OK;
    }
    if (!*msg)
        snprintf(msg, mlen, "%s", PQerrorMessage(conn));
    bool again = retryable(r, why);
    PQclear(r);
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) /* a failed COMMIT already ended it */
        PQclear(PQexec(conn, "ROLLBACK"));
    return again ? MR_EABORTED : MR_EIO;
}

static int pg_run(bc_client *c, const bc_txn *t, int64_t deadline_ms, bc_outcome *o)
{
    memset(o, 0, sizeof *o);
    int64_t end = mr_monotonic_ns() + deadline_ms * MR_NS_PER_MS;
    for (unsigned attempt = 0;; attempt++) {
        o->attempts++;
        bc_reason why = BC_R_UNKNOWN;
        char msg[200] = "";
        int rc = pg_attempt(c, t, &why, msg, sizeof msg);
        if (rc == MR_OK)
            return MR_OK;
        o->reasons[why]++;
        int64_t delay = bc_backoff_ms(attempt, bench_rand(&c->rng));
        if (rc != MR_EABORTED || mr_monotonic_ns() + delay * MR_NS_PER_MS > end) {
            snprintf(o->last_error, sizeof o->last_error, "%s%s",
                     rc == MR_EABORTED ? "gave up at the deadline: " : "", msg);
            if (PQstatus(c->conn) != CONNECTION_OK)
                PQreset(c->conn);
            return rc == MR_EABORTED ? MR_ETIMEDOUT : rc;
        }
        struct timespec d = {delay / 1000, (delay % 1000) * 1000000L};
        nanosleep(&d, NULL);
    }
}

static void pg_close(bc_client *c)
{
    if (!c)
        return;
    PQfinish(c->conn);
    free(c);
}

int bc_pg_start(const char *bindir, bc_system *sys, mr_err *err)
{
    pg_sys *s = calloc(1, sizeof *s);
    if (!s)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    int rc = pg_server_start(s, bindir, "meridian-contention-pg", 200, "bench-contention", err);
    if (rc != MR_OK) {
        free(s);
        return rc;
    }
    *sys = (bc_system){.name = "postgres",
                       .prepare = pg_prepare_keys,
                       .open = pg_open,
                       .run = pg_run,
                       .close = pg_close,
                       .sys = s};
    return MR_OK;
}

void bc_pg_stop(bc_system *sys)
{
    pg_sys *s = sys->sys;
    if (!s)
        return;
    pg_server_stop(s);
    free(s);
    sys->sys = NULL;
}
