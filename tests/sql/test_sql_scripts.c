/* The differential scripts (tests/sql/diff/ *.sql) through a session over the
 * fake store and through SQLite itself, in-process, statement by statement:
 * every statement's rows (or its error message) must be the same. The same
 * scripts run against a real cluster through `meridian sql` in
 * test_sql_diff_cluster; this is the fast check of the engine alone.
 *
 * A script marked "-- diff: continue-on-error" runs every statement; others
 * stop at the first error (on both sides). Scripts that need what the engine
 * does not provide yet are listed in `pending` with the reason; they still
 * run, and the test fails if one of them starts to pass (so the list shrinks
 * as the engine grows). SQL_SCRIPTS_ONLY=name runs one and prints both
 * transcripts. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/sql/diff/sql_gen.h"
#include "tests/sql/fake_meridian.h"
#include "tests/sql/sql_test_util.h"
#include "tests/test.h"

#ifndef SQL_DIFF_DIR
#error "SQL_DIFF_DIR must name tests/sql/diff"
#endif

static const struct {
    const char *script, *why;
} pending[] = {
    {NULL, NULL}, /* none at the moment */
};

typedef struct out {
    char *p;
    size_t n, cap;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->n + n + 1 > o->cap) {
        size_t cap = (o->cap ? o->cap * 2 : 4096) + n;
        char *p = realloc(o->p, cap);
        if (!p)
            return;
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = 0;
}

static void put_value(out *o, sqlite3_value *v)
{
    size_t n = 0;
    sqt_out[0] = 0;
    sqt_value(&n, v);
    put(o, sqt_out, n);
}

/* One statement's text (for the transcript), trimmed to its first line. */
static void put_stmt(out *o, const char *p, const char *tail)
{
    while (p < tail && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
        p++;
    const char *e = p;
    while (e < tail && *e != '\n')
        e++;
    put(o, "> ", 2);
    put(o, p, (size_t)(e - p));
    put(o, "\n", 1);
}

static void run_sqlite(const char *sql, int cont, out *o)
{
    sqlite3 *db = NULL;
    sqlite3_open(":memory:", &db);
    const char *p = sql;
    while (p && *p) {
        sqlite3_stmt *st = NULL;
        const char *tail = NULL;
        int rc = sqlite3_prepare_v2(db, p, -1, &st, &tail);
        if (rc) {
            put_stmt(o, p, p + strlen(p));
            put(o, "ERR ", 4);
            put(o, sqlite3_errmsg(db), strlen(sqlite3_errmsg(db)));
            put(o, "\n", 1);
            if (!cont || !tail || tail == p)
                break;
            p = tail;
            continue;
        }
        if (!st)
            break;
        put_stmt(o, p, tail);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            for (int i = 0; i < sqlite3_column_count(st); i++) {
                if (i)
                    put(o, "|", 1);
                put_value(o, sqlite3_column_value(st, i));
            }
            put(o, "\n", 1);
        }
        int bad = rc != SQLITE_DONE;
        if (bad) {
            put(o, "ERR ", 4);
            put(o, sqlite3_errmsg(db), strlen(sqlite3_errmsg(db)));
            put(o, "\n", 1);
        }
        sqlite3_finalize(st);
        if (bad && !cont)
            break;
        p = tail;
    }
    sqlite3_close(db);
}

static void run_meridian(msql *s, const char *sql, int cont, out *o)
{
    const char *p = sql;
    while (p && *p) {
        msql_stmt *st = NULL;
        const char *tail = NULL;
        int rc = msql_prepare(s, p, -1, &st, &tail);
        if (rc != MSQL_OK) {
            put_stmt(o, p, p + strlen(p));
            put(o, "ERR ", 4);
            put(o, msql_errmsg(s), strlen(msql_errmsg(s)));
            put(o, "\n", 1);
            if (!cont || !tail || tail == p)
                break;
            p = tail;
            continue;
        }
        if (!st)
            break;
        put_stmt(o, p, tail);
        while ((rc = msql_step(st)) == MSQL_ROW) {
            for (int i = 0; i < msql_column_count(st); i++) {
                if (i)
                    put(o, "|", 1);
                put_value(o, msql_column_value(st, i));
            }
            put(o, "\n", 1);
        }
        int bad = rc != MSQL_DONE;
        if (bad) {
            put(o, "ERR ", 4);
            put(o, msql_errmsg(s), strlen(msql_errmsg(s)));
            put(o, "\n", 1);
        }
        msql_finalize(st);
        if (bad && !cont)
            break;
        p = tail;
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    if (p)
        p[n] = 0;
    fclose(f);
    return p;
}

/* The first line where a and b differ (1-based), 0 if equal. */
static int first_diff(const char *a, const char *b, const char **la, const char **lb)
{
    int line = 1;
    const char *x = a, *y = b;
    for (;;) {
        const char *ex = strchr(x, '\n'), *ey = strchr(y, '\n');
        size_t nx = ex ? (size_t)(ex - x) : strlen(x), ny = ey ? (size_t)(ey - y) : strlen(y);
        if (nx != ny || memcmp(x, y, nx) != 0) {
            *la = x;
            *lb = y;
            return line;
        }
        if (!ex || !ey)
            return (!ex && !ey) ? 0 : line;
        x = ex + 1;
        y = ey + 1;
        line++;
    }
}

static int is_pending(const char *name, const char **why)
{
    for (size_t i = 0; pending[i].script; i++)
        if (strcmp(pending[i].script, name) == 0) {
            *why = pending[i].why;
            return 1;
        }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

TEST(scripts)
{
    meridian_options opts = {.addrs = "fake:1", .insecure = 1};
    meridian *db = NULL;
    CHECK(meridian_open(&opts, &db) == MERIDIAN_OK);
    DIR *d = opendir(SQL_DIFF_DIR);
    CHECK(d);
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".sql") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    const char *only = getenv("SQL_SCRIPTS_ONLY");
    int failed = 0, ran = 0;
    for (int i = 0; i < n; i++) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)strlen(names[i]) - 4, names[i]);
        if (only && strcmp(only, name) != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", SQL_DIFF_DIR, names[i]);
        char *sql = slurp(path);
        if (!sql) {
            printf("  %s: cannot read\n", path);
            failed++;
            continue;
        }
        int cont = strstr(sql, "-- diff: continue-on-error") != NULL;
        fake_meridian_reset();
        msql *s = NULL;
        if (msql_open(db, &s) != MSQL_OK || sqt_short_lease(s) != MSQL_OK) {
            printf("  %s: cannot open a session: %s\n", name, msql_errmsg(s));
            msql_close(s);
            free(sql);
            failed++;
            continue;
        }
        out a = {0}, b = {0};
        run_meridian(s, sql, cont, &a);
        run_sqlite(sql, cont, &b);
        msql_close(s);
        const char *la = "", *lb = "";
        int line = first_diff(a.p ? a.p : "", b.p ? b.p : "", &la, &lb);
        const char *why = NULL;
        int pend = is_pending(name, &why);
        ran++;
        if (only)
            printf("--- meridian\n%s--- sqlite\n%s", a.p ? a.p : "", b.p ? b.p : "");
        if (line && !pend) {
            printf("  %s: transcripts differ at line %d\n    meridian: %.200s\n    sqlite:   "
                   "%.200s\n",
                   name, line, la, lb);
            failed++;
        } else if (!line && pend) {
            printf("  %s: listed as pending (%s) but now passes: take it off the list\n", name,
                   why);
            failed++;
        } else {
            printf("  %s: %s\n", name, pend ? "differs, as expected for now" : "same");
            if (pend)
                printf("    pending: %s (first difference at line %d: %.120s)\n", why, line, la);
        }
        free(a.p);
        free(b.p);
        free(sql);
    }
    for (int i = 0; i < n; i++)
        free(names[i]);
    meridian_close(db);
    CHECK(ran > 0);
    CHECK_EQ(failed, 0);
}

/* The differential suite's random scripts (sql_gen.h), the same way; the seed
 * is printed, SQL_SCRIPTS_SEED replays one, SQL_SCRIPTS_ROUNDS sets how many. */
TEST(random_scripts)
{
    meridian_options opts = {.addrs = "fake:1", .insecure = 1};
    meridian *db = NULL;
    CHECK(meridian_open(&opts, &db) == MERIDIAN_OK);
    const char *env = getenv("SQL_SCRIPTS_SEED");
    const char *rounds_env = getenv("SQL_SCRIPTS_ROUNDS");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    int rounds = env ? 1 : rounds_env ? atoi(rounds_env) : 20;
    int failed = 0;
    for (int r = 0; r < rounds && failed < 3; r++) {
        uint64_t sd = seed + (uint64_t)r;
        char *sql = sqlgen_script(sd, "g");
        CHECK(sql);
        fake_meridian_reset();
        msql *s = NULL;
        if (msql_open(db, &s) != MSQL_OK || sqt_short_lease(s) != MSQL_OK) {
            msql_close(s);
            free(sql);
            failed++;
            continue;
        }
        out a = {0}, b = {0};
        run_meridian(s, sql, 0, &a);
        run_sqlite(sql, 0, &b);
        msql_close(s);
        const char *la = "", *lb = "";
        int line = first_diff(a.p ? a.p : "", b.p ? b.p : "", &la, &lb);
        if (line) {
            printf("  seed %llu: transcripts differ at line %d (SQL_SCRIPTS_SEED=%llu replays)\n"
                   "    meridian: %.300s\n    sqlite:   %.300s\n",
                   (unsigned long long)sd, line, (unsigned long long)sd, la, lb);
            if (env)
                printf("--- meridian\n%s--- sqlite\n%s", a.p ? a.p : "", b.p ? b.p : "");
            failed++;
        }
        free(a.p);
        free(b.p);
        free(sql);
    }
    printf("  %d scripts from seed %llu\n", rounds, (unsigned long long)seed);
    meridian_close(db);
    CHECK_EQ(failed, 0);
}

TEST_MAIN(TEST_CASE(scripts), TEST_CASE(random_scripts))
