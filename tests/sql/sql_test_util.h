/* tests/sql/sql_test_util.h: running SQL through a session in tests.
 *
 * q() runs every statement of a script and returns what it printed: each row
 * as its values joined by '|' (NULL as "NULL", blobs as x'..'), one row per
 * line; on the first failure "ERR <code>: <message>" ends the text. The
 * result is in a static buffer, valid until the next call. */
#ifndef TESTS_SQL_TEST_UTIL_H
#define TESTS_SQL_TEST_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sql/sql.h"

/* The tests' one connection, to the in-memory fake (tests/sql/fake_meridian.h); opened by the
 * first sqt_session, closed by the test's teardown (meridian_close(sqt_db), sqt_db = NULL). */
__attribute__((unused)) static meridian *sqt_db;

/* A new session over sqt_db (retry_ms >= 0: msql_set_retry_deadline; < 0: the default), or
 * NULL. */
__attribute__((unused)) static msql *sqt_session(int64_t retry_ms)
{
    if (!sqt_db) {
        meridian_options o = {.addrs = "fake:1", .insecure = 1};
        if (meridian_open(&o, &sqt_db) != MERIDIAN_OK)
            return NULL;
    }
    msql *s = NULL;
    if (msql_open(sqt_db, &s) != MSQL_OK) {
        msql_close(s);
        return NULL;
    }
    if (retry_ms >= 0)
        msql_set_retry_deadline(s, retry_ms);
    return s;
}

/* Tests that change the schema often start with a short schema lease (every
 * schema change waits one out), so the lease path is what they exercise
 * without waiting the default second per change. MSQL_OK or the failure. */
__attribute__((unused)) static int sqt_short_lease(msql *s)
{
    return s ? msql_exec(s, "SET CLUSTER SETTING schema_lease = '20ms'") : MSQL_ERROR;
}

__attribute__((unused)) static void sqt_sleep_ms(int ms)
{
    struct timespec d = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

static char sqt_out[65536];

static void sqt_append(size_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sqt_append(size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (*n < sizeof sqt_out) {
        int w = vsnprintf(sqt_out + *n, sizeof sqt_out - *n, fmt, ap);
        if (w > 0)
            *n += (size_t)w;
        if (*n >= sizeof sqt_out)
            *n = sizeof sqt_out - 1;
    }
    va_end(ap);
}

static void sqt_value(size_t *n, sqlite3_value *v)
{
    switch (sqlite3_value_type(v)) {
    case SQLITE_NULL:
        sqt_append(n, "NULL");
        break;
    case SQLITE_INTEGER:
        sqt_append(n, "%lld", (long long)sqlite3_value_int64(v));
        break;
    case SQLITE_FLOAT: {
        /* as SQLite prints a real ("1.0", not "1") */
        char *t = sqlite3_mprintf("%!.15g", sqlite3_value_double(v));
        sqt_append(n, "%s", t ? t : "?");
        sqlite3_free(t);
        break;
    }
    case SQLITE_TEXT:
        sqt_append(n, "%s", (const char *)sqlite3_value_text(v));
        break;
    default: {
        const unsigned char *b = sqlite3_value_blob(v);
        sqt_append(n, "x'");
        for (int i = 0; i < sqlite3_value_bytes(v); i++)
            sqt_append(n, "%02x", b[i]);
        sqt_append(n, "'");
    }
    }
}

/* The last code q() saw (MSQL_OK when every statement ran). */
static int sqt_code;

/* Steps st to its end, appending its rows to sqt_out at *n (columns '|'-separated, a line
 * each); the last msql_step code. */
static int sqt_rows(msql_stmt *st, size_t *n)
{
    int rc;
    while ((rc = msql_step(st)) == MSQL_ROW) {
        for (int i = 0; i < msql_column_count(st); i++) {
            if (i)
                sqt_append(n, "|");
            sqt_value(n, msql_column_value(st, i));
        }
        sqt_append(n, "\n");
    }
    return rc;
}

__attribute__((unused)) static const char *q(msql *s, const char *sql)
{
    size_t n = 0;
    sqt_out[0] = 0;
    sqt_code = MSQL_OK;
    const char *p = sql;
    while (p && *p) {
        msql_stmt *st = NULL;
        const char *tail = NULL;
        int rc = msql_prepare(s, p, -1, &st, &tail);
        if (rc != MSQL_OK) {
            sqt_code = rc;
            sqt_append(&n, "ERR %d: %s", rc, msql_errmsg(s));
            return sqt_out;
        }
        if (!st)
            break;
        rc = sqt_rows(st, &n);
        msql_finalize(st);
        if (rc != MSQL_DONE) {
            sqt_code = rc;
            sqt_append(&n, "ERR %d: %s", rc, msql_errmsg(s));
            return sqt_out;
        }
        p = tail;
    }
    return sqt_out;
}

/* q()'s output of sql must be want (CHECKF with both when not). */
#define SQT_EXPECT(s, sql, want)                                                                   \
    do {                                                                                           \
        const char *got_ = q((s), (sql));                                                          \
        CHECKF(strcmp(got_, (want)) == 0, "%s\n  got:  [%s]\n  want: [%s]", (sql), got_, (want));  \
    } while (0)

#ifdef TESTS_SQL_FAKE_MERIDIAN_H
/* An empty fake store and a session over it (retry_ms as sqt_session) under a short schema
 * lease (sqt_short_lease), or NULL. */
__attribute__((unused)) static msql *sqt_fresh(int64_t retry_ms)
{
    fake_meridian_reset();
    msql *s = sqt_session(retry_ms);
    if (s && sqt_short_lease(s) != MSQL_OK) {
        msql_close(s);
        return NULL;
    }
    return s;
}
#endif

#endif
