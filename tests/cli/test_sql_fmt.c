/* sql_fmt (the shell's output formats) against the sqlite3 shell itself: random tables -
 * text with every kind of byte (UTF-8 of 2 to 4 bytes, invalid bytes, control characters,
 * NUL, tabs, newlines, quotes, separators), blobs, integers at the extremes, reals from
 * subnormals to infinities, NULLs, odd column names - are printed by sql_fmt from SQLite's
 * own values and by `sqlite3` from the same script, in every format with and without a
 * header: byte for byte equal. Then the expanded (\x) layout, which sqlite3 does not have,
 * and the promises callers rely on (nothing printed for no rows, a table buffered until the
 * end). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/sql_fmt.h"
#include "launch/proc.h"
#include "tests/test.h"

static char work[256];

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int pick(int n)
{
    return (int)(next() % (uint64_t)n);
}

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = 2 * (b->len + (size_t)n + 1);
        b->s = realloc(b->s, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Random bytes as an SQL hex literal: text (CAST ... AS TEXT) or a blob. */
static void put_bytes(sbuf *b, bool text)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "7",
                                         " ",
                                         "\t",
                                         "\n",
                                         "\r",
                                         "\r\n",
                                         "\x01",
                                         "\x1f",
                                         "\"",
                                         "'",
                                         ",",
                                         "|",
                                         "\\",
                                         "\x7f",
                                         "\xc3\xa9",
                                         "\xe6\x97\xa5",
                                         "\xf0\x9f\x99\x82",
                                         "\xff",
                                         "\x80",
                                         "",
                                         "word",
                                         "two words",
                                         "-",
                                         ".",
                                         "0",
                                         "1e5",
                                         "null"};
    unsigned char raw[256];
    size_t n = 0;
    int parts = pick(8);
    for (int i = 0; i < parts; i++) {
        const char *p = pieces[pick(sizeof pieces / sizeof pieces[0])];
        size_t len = strlen(p);
        if (pick(40) == 0) { /* a NUL, rarely */
            p = "\0";
            len = 1;
        }
        memcpy(raw + n, p, len);
        n += len;
    }
    put(b, "%sX'", text ? "CAST(" : "");
    for (size_t i = 0; i < n; i++)
        put(b, "%02x", raw[i]);
    put(b, "'%s", text ? " AS TEXT)" : "");
}

static void put_value(sbuf *b)
{
    static const char *const specials[] = {"0",
                                           "-1",
                                           "9223372036854775807",
                                           "-9223372036854775807",
                                           "9007199254740993",
                                           "0.0",
                                           "-0.0",
                                           "1.0",
                                           "0.1",
                                           "1e300 * 10",
                                           "9e999",
                                           "-9e999",
                                           "4.9406564584124654e-324",
                                           "1.7976931348623157e308",
                                           "1.0 / 3",
                                           "100.0",
                                           "123456789012345678.0",
                                           "1e15",
                                           "1e16",
                                           "-2.5e-7"};
    switch (pick(6)) {
    case 0:
        put(b, "NULL");
        break;
    case 1:
        put(b, "%lld", (long long)(next() >> pick(64)) * (pick(2) ? 1 : -1));
        break;
    case 2: {
        double d;
        uint64_t bits = next();
        memcpy(&d, &bits, sizeof d);
        if (isnan(d) || isinf(d))
            d = 1.5;
        size_t at = b->len;
        put(b, "%.17g", d);
        if (!strpbrk(b->s + at, ".e")) /* keep it a real */
            put(b, ".0");
        break;
    }
    case 3:
        put(b, "%s", specials[pick(sizeof specials / sizeof specials[0])]);
        break;
    case 4:
        put_bytes(b, true);
        break;
    default:
        put_bytes(b, pick(2));
    }
}

/* A random table t and the script that makes it. */
static char *random_script(int *ncols)
{
    static const char *const names[] = {
        "a", "bb", "ccc_dddd", "x y", "q\"uote", "\xc3\xa9t\xc3\xa9", "n", "a longer column name",
        "v"};
    sbuf b = {0};
    int nc = 1 + pick(5), nrows = pick(12);
    put(&b, "CREATE TABLE t(");
    for (int c = 0; c < nc; c++) {
        put(&b, "%s\"", c ? ", " : "");
        for (const char *p = names[pick(sizeof names / sizeof names[0])]; *p; p++)
            put(&b, "%s%c", *p == '"' ? "\"" : "", *p);
        put(&b, "%d\"", c);
    }
    put(&b, ");\n");
    for (int r = 0; r < nrows; r++) {
        put(&b, "INSERT INTO t VALUES (");
        for (int c = 0; c < nc; c++) {
            if (c)
                put(&b, ", ");
            put_value(&b);
        }
        put(&b, ");\n");
    }
    *ncols = nc;
    return b.s;
}

/* sql_fmt's output for SELECT * FROM t after script, into a malloc'd string. */
static char *ours(const char *script, const sf_opts *o)
{
    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_exec(db, script, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "  script failed: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT * FROM t", -1, &st, NULL);
    int n = sqlite3_column_count(st);
    const char *names[16];
    for (int i = 0; i < n; i++)
        names[i] = sqlite3_column_name(st, i);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sf_result *r = sf_begin(f, o, n, names);
    while (sqlite3_step(st) == SQLITE_ROW) {
        sqlite3_value *vals[16];
        for (int i = 0; i < n; i++)
            vals[i] = sqlite3_column_value(st, i);
        sf_row(r, vals);
    }
    sf_end(r);
    fclose(f);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return text;
}

static const char *const formats[][2] = {
    {"csv", "-csv"}, {"tsv", "-tabs"}, {"json", "-json"}, {"line", "-line"}, {"table", "-table"}};

static void every_format_matches_sqlite3_on_random_tables_body(void)
{
    char path[300], read_cmd[320];
    snprintf(path, sizeof path, "%s/t.sql", work);
    snprintf(read_cmd, sizeof read_cmd, ".read %s", path);
    int compared = 0;
    for (int round = 0; round < 40; round++) {
        int ncols;
        char *script = random_script(&ncols);
        FILE *f = fopen(path, "wb");
        CHECK(f);
        fputs(script, f);
        fputs("SELECT * FROM t;\n", f);
        fclose(f);
        for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++)
            for (int header = 0; header < 2; header++) {
                sf_opts o = {.header = header ? 1 : -1};
                CHECK(sf_format_parse(formats[k][0], &o.format) == 0);
                char *want = NULL;
                char *argv[] = {"sqlite3",
                                (char *)formats[k][1],
                                header ? "-header" : "-batch",
                                ":memory:",
                                read_cmd,
                                NULL};
                int rc = proc_run(argv, 20000, &want, NULL);
                char *got = ours(script, &o);
                bool same = rc == 0 && want && got && strcmp(want, got) == 0;
                if (!same)
                    fprintf(stderr,
                            "  round %d, %s%s: exit %d\n--- script:\n%s--- sqlite3:\n%s"
                            "--- sql_fmt:\n%s---\n",
                            round, formats[k][0], header ? " --header" : "", rc, script,
                            want ? want : "", got ? got : "");
                free(want);
                free(got);
                if (!same) {
                    free(script);
                    CHECK(same);
                }
                compared++;
            }
        free(script);
    }
    CHECK_EQ(compared, 400);
}

TEST(every_format_matches_sqlite3_on_random_tables)
{
    char *probe[] = {"sqlite3", "-version", NULL};
    if (proc_run(probe, 10000, NULL, NULL) != 0)
        SKIP("no sqlite3 in PATH (scripts/install-deps.sh installs it)");

    CHECK(tmpdir_make(work, sizeof work, "meridian-test-fmt") == 0);
    every_format_matches_sqlite3_on_random_tables_body();
    tmpdir_remove(work);
}

/* Our own layout (psql's \x): one block per record, names padded, continuation lines under
 * the value; and the promises callers rely on. */
TEST(expanded_layout_and_emptiness)
{
    const char *script = "CREATE TABLE t(id, \"long name\");"
                         "INSERT INTO t VALUES (1, 'one'), (NULL, 'two' || char(10) || 'lines');";
    sf_opts o = {.format = SF_TABLE, .header = -1, .expanded = true};
    char *got = ours(script, &o);
    CHECK_STR(got, "-[ RECORD 1 ]\n"
                   "id        | 1\n"
                   "long name | one\n"
                   "-[ RECORD 2 ]\n"
                   "id        | \n"
                   "long name | two\n"
                   "          | lines\n");
    free(got);

    /* No rows: nothing at all in every format (as sqlite3), and nothing shown while a
     * table result is still being gathered. */
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        sf_opts e = {.header = 1};
        CHECK(sf_format_parse(formats[k][0], &e.format) == 0);
        got = ours("CREATE TABLE t(a);", &e);
        CHECK_STR(got, "");
        free(got);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const char *names[] = {"a"};
    sf_opts t = {.format = SF_TABLE, .header = -1};
    sf_result *r = sf_begin(f, &t, 1, names);
    sqlite3 *db;
    sqlite3_open(":memory:", &db);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT 'x'", -1, &st, NULL);
    sqlite3_step(st);
    sqlite3_value *v = sqlite3_column_value(st, 0);
    CHECK_EQ(sf_row(r, &v), 0);
    CHECK(!sf_emitted(r));
    CHECK_EQ(sf_rows(r), 1);
    sf_discard(r); /* a failed statement: its rows are dropped unseen */
    fflush(f);
    CHECK_EQ(len, 0);
    r = sf_begin(f, &(sf_opts){.format = SF_CSV, .header = 0}, 1, names);
    CHECK_EQ(sf_row(r, &v), 0);
    CHECK(sf_emitted(r)); /* streamed at once */
    sf_end(r);
    fclose(f);
    CHECK_STR(text, "x\n");
    free(text);
    sqlite3_finalize(st);
    sqlite3_close(db);
    sf_format f2;
    CHECK(sf_format_parse("JSON", &f2) == 0 && f2 == SF_JSON);
    CHECK(sf_format_parse("xml", &f2) == -1);
}

TEST_MAIN(TEST_CASE(every_format_matches_sqlite3_on_random_tables),
          TEST_CASE(expanded_layout_and_emptiness))
