/* bench-sql's SQLite: a file database in a temporary directory, journal_mode=WAL,
 * synchronous=FULL (every commit durable, as Meridian's and PostgreSQL's), one connection per
 * client with a 30 s busy timeout: SQLite lets one writer at a time in, the others wait. Each
 * client prepares the five statements once and binds their argument. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/sql/bs.h"
#include "launch/proc.h"

typedef struct lite_sys {
    char dir[512], path[600];
    sqlite3 *db; /* the driver's: load and checks */
} lite_sys;

typedef struct lite_client {
    sqlite3 *db;
    sqlite3_stmt *st[BS_CASES];
} lite_client;

static int lite_conn(lite_sys *s, sqlite3 **db, mr_err *err)
{
    int rc = sqlite3_open_v2(s->path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(*db, 30000);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
                          NULL);
    if (rc != SQLITE_OK) {
        mr_errf(err, MR_EIO, "opening %s: %s", s->path, *db ? sqlite3_errmsg(*db) : "no memory");
        sqlite3_close(*db);
        *db = NULL;
        return MR_EIO;
    }
    return MR_OK;
}

static int lite_exec(sqlite3 *db, const char *sql, mr_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        mr_errf(err, MR_EIO, "%.80s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return MR_EIO;
    }
    return MR_OK;
}

static int lite_load(void *sys, const bs_data *d, mr_err *err)
{
    lite_sys *s = sys;
    int rc = lite_exec(s->db,
                       "CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT);"
                       "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner INTEGER, "
                       "balance INTEGER, name TEXT);"
                       "CREATE TABLE ins (id INTEGER PRIMARY KEY, owner INTEGER, "
                       "balance INTEGER, name TEXT);"
                       "BEGIN",
                       err);
    sqlite3_stmt *o = NULL, *a = NULL;
    if (rc == MR_OK &&
        (sqlite3_prepare_v2(s->db, "INSERT INTO owners VALUES (?1, 'owner-' || ?1)", -1, &o,
                            NULL) != SQLITE_OK ||
         sqlite3_prepare_v2(s->db, "INSERT INTO accounts VALUES (?1, ?2, 1000, 'account-' || ?1)",
                            -1, &a, NULL) != SQLITE_OK))
        rc = mr_errf(err, MR_EIO, "preparing the load: %s", sqlite3_errmsg(s->db));
    for (int64_t i = 0; rc == MR_OK && i < d->nowners; i++) {
        sqlite3_bind_int64(o, 1, i);
        if (sqlite3_step(o) != SQLITE_DONE)
            rc = mr_errf(err, MR_EIO, "loading owners: %s", sqlite3_errmsg(s->db));
        sqlite3_reset(o);
    }
    for (int64_t i = 0; rc == MR_OK && i < d->naccounts; i++) {
        sqlite3_bind_int64(a, 1, i);
        sqlite3_bind_int64(a, 2, i % d->nowners);
        if (sqlite3_step(a) != SQLITE_DONE)
            rc = mr_errf(err, MR_EIO, "loading accounts: %s", sqlite3_errmsg(s->db));
        sqlite3_reset(a);
    }
    sqlite3_finalize(o);
    sqlite3_finalize(a);
    if (rc == MR_OK)
        rc = lite_exec(s->db, "COMMIT", err);
    return rc;
}

static void lite_close(void *client)
{
    lite_client *c = client;
    if (!c)
        return;
    for (int k = 0; k < BS_CASES; k++)
        sqlite3_finalize(c->st[k]);
    sqlite3_close(c->db);
    free(c);
}

static int lite_open(void *sys, void **out, mr_err *err)
{
    lite_client *c = calloc(1, sizeof *c);
    if (!c)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    int rc = lite_conn(sys, &c->db, err);
    for (int k = 0; rc == MR_OK && k < BS_CASES; k++)
        if (sqlite3_prepare_v2(c->db, bs_case_sql[k], -1, &c->st[k], NULL) != SQLITE_OK)
            rc = mr_errf(err, MR_EIO, "preparing %s: %s", bs_case_sql[k], sqlite3_errmsg(c->db));
    if (rc != MR_OK) {
        lite_close(c);
        return rc;
    }
    *out = c;
    return MR_OK;
}

static int lite_op(void *client, bs_case k, int64_t a, bs_result *r)
{
    lite_client *c = client;
    sqlite3_stmt *st = c->st[k];
    sqlite3_bind_int64(st, 1, a);
    int rc;
    r->rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        r->rows++;
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return MR_OK;
    snprintf(r->msg, sizeof r->msg, "%s", sqlite3_errmsg(c->db));
    return MR_EIO;
}

static int lite_int(lite_sys *s, const char *sql, int64_t lo, int64_t hi, int64_t *out, mr_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) == 2) {
        sqlite3_bind_int64(st, 1, lo);
        sqlite3_bind_int64(st, 2, hi);
    }
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        mr_errf(err, MR_EIO, "%s: %s", sql, sqlite3_errmsg(s->db));
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? MR_OK : MR_EIO;
}

static int lite_count_ins(void *sys, int64_t lo, int64_t hi, int64_t *n, mr_err *err)
{
    return lite_int(sys, "SELECT count(*) FROM ins WHERE id >= ?1 AND id < ?2", lo, hi, n, err);
}

static int lite_sum(void *sys, int64_t *sum, mr_err *err)
{
    return lite_int(sys, "SELECT sum(balance) FROM accounts", 0, 0, sum, err);
}

int bs_sqlite_start(bs_system *sys, mr_err *err)
{
    lite_sys *s = calloc(1, sizeof *s);
    if (!s)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    if (tmpdir_make(s->dir, sizeof s->dir, "meridian-sqlbench-sqlite") != 0) {
        free(s);
        return mr_errf(err, MR_EIO, "cannot make a temporary directory: %s", strerror(errno));
    }
    snprintf(s->path, sizeof s->path, "%s/bench.db", s->dir);
    int rc = lite_conn(s, &s->db, err);
    if (rc != MR_OK) {
        tmpdir_remove(s->dir);
        free(s);
        return rc;
    }
    *sys = (bs_system){.name = "sqlite",
                       .cases = {true, true, true, true, true},
                       .load = lite_load,
                       .open = lite_open,
                       .op = lite_op,
                       .count_ins = lite_count_ins,
                       .sum_balance = lite_sum,
                       .close = lite_close,
                       .sys = s};
    return MR_OK;
}

void bs_sqlite_stop(bs_system *sys)
{
    lite_sys *s = sys->sys;
    if (!s)
        return;
    sqlite3_close(s->db);
    tmpdir_remove(s->dir);
    free(s);
    sys->sys = NULL;
}
