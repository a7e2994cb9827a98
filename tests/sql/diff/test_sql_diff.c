/* The differential SQL suite: every script in tests/sql/diff/ (every .sql), and random
 * scripts from sql_gen.c, run through `sqlite3 -bail -csv -header` (the
 * reference) and through `meridian sql --format csv --header -f FILE` against
 * a real cluster, and their outputs compared exactly: stdout byte for byte,
 * the exit status, and the line of every statement that failed (the "line N"
 * of each error line on stderr; the messages themselves may differ). A
 * mismatch prints the statuses, the error lines, the candidate's stderr and a
 * unified diff of stdout.
 *
 * Directives, in a script's leading comment lines:
 *   -- diff: continue-on-error   run every statement (sqlite3 without -bail,
 *                                meridian sql --continue-on-error)
 *   -- diff: errors N N ...      the lines where the reference must fail (checked
 *                                by scripts_reference, so a typo cannot silently
 *                                end a script early); none by default
 *
 * Cases: scripts_reference, random_reference and negative run without a
 * cluster: sqlite3 on both sides, the second with PRAGMA
 * reverse_unordered_selects (so a query whose output order its ORDER BY does
 * not fix shows up as a mismatch), and mutated scripts that must be caught;
 * cluster runs both sets against `meridian sql`, and skips (77) while the
 * binary has no `sql` command. SQL_DIFF_SEED replays the random scripts,
 * SQL_DIFF_ROUNDS sets how many (default 8 against sqlite3, 12 against the
 * cluster), SQL_DIFF_ONLY=NAME runs one script. */
#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "launch/proc.h"
#include "tests/sql/diff/sql_gen.h"
#include "tests/support/cluster.h"
#include "tests/test.h"

#ifndef SQL_DIFF_DIR
#error "SQL_DIFF_DIR: the folder of the .sql scripts"
#endif

#define RUN_TIMEOUT_MS 120000

typedef struct run_out {
    int status; /* exit status, -1 when it could not run or was killed */
    char *out, *err;
    char lines[256]; /* the error lines, "4 9" */
} run_out;

typedef struct script_opts {
    bool cont;
    char errors[256]; /* the expected error lines, "" = none */
} script_opts;

/* A way to run a script: sqlite3, or meridian sql at the cluster. */
typedef int (*runner)(const char *file, bool cont, run_out *o);

static char workdir[256];
static bool keep_workdir; /* a failure's scripts and outputs are in it */

static void run_free(run_out *o)
{
    free(o->out);
    free(o->err);
    o->out = o->err = NULL;
}

/* The "line N" of every stderr line that reports an error, space-separated. */
static void error_lines(const char *err, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (const char *l = err; l && *l;) {
        const char *eol = strchr(l, '\n');
        size_t n = eol ? (size_t)(eol - l) : strlen(l);
        const char *e = memmem(l, n, "rror", 4);
        const char *p = e ? memmem(e, n - (size_t)(e - l), "line ", 5) : NULL;
        if (p && p + 5 < l + n && p[5] >= '0' && p[5] <= '9') {
            long v = strtol(p + 5, NULL, 10);
            o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%ld", o ? " " : "", v);
            if (o >= len)
                break;
        }
        l = eol ? eol + 1 : l + n;
    }
}

static int finish(int status, run_out *o)
{
    o->status = status;
    if (!o->out)
        o->out = strdup("");
    if (!o->err)
        o->err = strdup("");
    error_lines(o->err, o->lines, sizeof o->lines);
    return o->out && o->err ? 0 : -1;
}

/* sqlite3 on file; reversed: with PRAGMA reverse_unordered_selects, so a query whose
 * order is not fully determined by its ORDER BY comes out differently. */
static int run_sqlite_as(const char *file, bool cont, bool reversed, run_out *o)
{
    char read[600];
    snprintf(read, sizeof read, ".read '%s'", file);
    char *argv[10];
    int n = 0;
    argv[n++] = "sqlite3";
    if (!cont)
        argv[n++] = "-bail";
    argv[n++] = "-csv";
    argv[n++] = "-header";
    if (reversed) {
        argv[n++] = "-cmd";
        argv[n++] = "PRAGMA reverse_unordered_selects = ON";
    }
    argv[n++] = ":memory:";
    argv[n++] = read;
    argv[n] = NULL;
    memset(o, 0, sizeof *o);
    return finish(proc_run(argv, RUN_TIMEOUT_MS, &o->out, &o->err), o);
}

static int run_sqlite(const char *file, bool cont, run_out *o)
{
    return run_sqlite_as(file, cont, false, o);
}

static int run_sqlite_reversed(const char *file, bool cont, run_out *o)
{
    return run_sqlite_as(file, cont, true, o);
}

static char host[64];

static int run_meridian(const char *file, bool cont, run_out *o)
{
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)proc_meridian_bin();
    argv[n++] = "sql";
    argv[n++] = "--host";
    argv[n++] = host;
    argv[n++] = "--certs";
    argv[n++] = tc.certs;
    argv[n++] = "--format";
    argv[n++] = "csv";
    argv[n++] = "--header";
    if (cont)
        argv[n++] = "--continue-on-error";
    argv[n++] = "-f";
    argv[n++] = (char *)file;
    argv[n] = NULL;
    memset(o, 0, sizeof *o);
    return finish(proc_run(argv, RUN_TIMEOUT_MS, &o->out, &o->err), o);
}

/* ---- files ---- */

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (m) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            fwrite(chunk, 1, n, m);
        fclose(m);
    }
    fclose(f);
    return buf;
}

static void parse_opts(const char *text, script_opts *so)
{
    memset(so, 0, sizeof *so);
    for (const char *l = text; l && strncmp(l, "--", 2) == 0;
         l = strchr(l, '\n'), l = l ? l + 1 : l) {
        const char *eol = strchr(l, '\n');
        size_t n = eol ? (size_t)(eol - l) : strlen(l);
        if (memmem(l, n, "diff: continue-on-error", 23))
            so->cont = true;
        const char *e = memmem(l, n, "diff: errors ", 13);
        if (e) {
            size_t m = n - (size_t)(e + 13 - l);
            snprintf(so->errors, sizeof so->errors, "%.*s", (int)m, e + 13);
        }
    }
}

static int workdir_ready(void)
{
    if (workdir[0])
        return 0;
    if (tmpdir_make(workdir, sizeof workdir, "meridian-sqldiff") != 0)
        return -1;
    return 0;
}

static void cleanup(void)
{
    if (workdir[0] && !keep_workdir)
        tmpdir_remove(workdir);
    else if (workdir[0])
        fprintf(stderr, "kept %s (scripts and outputs of the failures)\n", workdir);
}

/* ---- comparing ---- */

/* Compares two runs of one script. 0 when they agree; else 1 and a report
 * (malloc'd, into *report when non-NULL, printed otherwise). */
static int compare(const char *name, const char *ref_name, const run_out *ref,
                   const char *cand_name, const run_out *cand, char **report)
{
    bool same_out = strcmp(ref->out, cand->out) == 0;
    bool same_status = ref->status == cand->status;
    bool same_lines = strcmp(ref->lines, cand->lines) == 0;
    if (same_out && same_status && same_lines && ref->status >= 0)
        return 0;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return 1;
    fprintf(m, "MISMATCH in %s:\n", name);
    fprintf(m, "  exit status: %s %d, %s %d\n", ref_name, ref->status, cand_name, cand->status);
    fprintf(m, "  error lines: %s [%s], %s [%s]\n", ref_name, ref->lines, cand_name, cand->lines);
    fprintf(m, "  %s stderr:\n%.2000s\n", ref_name, ref->err);
    fprintf(m, "  %s stderr:\n%.2000s\n", cand_name, cand->err);
    if (!same_out) {
        char a[400], b[400];
        snprintf(a, sizeof a, "%s/%s.%s.out", workdir, name, ref_name);
        snprintf(b, sizeof b, "%s/%s.%s.out", workdir, name, cand_name);
        char *diff = NULL;
        if (write_file(a, ref->out) == 0 && write_file(b, cand->out) == 0) {
            char *argv[] = {"diff", "-u", "--label", (char *)ref_name, "--label", (char *)cand_name,
                            a,      b,    NULL};
            proc_run(argv, 30000, &diff, NULL);
        }
        fprintf(m, "  stdout differs:\n%.20000s\n", diff ? diff : "(diff failed)");
        free(diff);
    } else {
        fprintf(m, "  stdout is the same\n");
    }
    fclose(m);
    if (report)
        *report = buf;
    else {
        keep_workdir = true;
        fputs(buf, stderr);
        free(buf);
    }
    return 1;
}

/* Runs file through both runners and compares. 0 agree, 1 mismatch, -1 could not run. */
static int diff_file(const char *name, const char *file, const script_opts *so, runner cand,
                     const char *cand_name, char **report, run_out *ref_out)
{
    run_out ref, c;
    if (run_sqlite(file, so->cont, &ref) != 0)
        return -1;
    if (cand(file, so->cont, &c) != 0) {
        run_free(&ref);
        return -1;
    }
    int rc = compare(name, "sqlite3", &ref, cand_name, &c, report);
    run_free(&c);
    if (ref_out)
        *ref_out = ref;
    else
        run_free(&ref);
    return rc;
}

/* Runs every script of the suite through the reference and cand; with
 * check_reference, also holds the reference to each script's directives.
 * Returns the number of failures; *nrun the scripts run. */
static int diff_scripts(runner cand, const char *cand_name, bool check_reference, int *nrun)
{
    struct dirent **names;
    int n = scandir(SQL_DIFF_DIR, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "cannot list %s\n", SQL_DIFF_DIR);
        return -1;
    }
    const char *only = getenv("SQL_DIFF_ONLY");
    int failures = 0;
    *nrun = 0;
    for (int i = 0; i < n; i++) {
        const char *d = names[i]->d_name;
        size_t dl = strlen(d);
        if (dl > 4 && strcmp(d + dl - 4, ".sql") == 0 && (!only || strstr(d, only))) {
            char path[600];
            snprintf(path, sizeof path, "%s/%s", SQL_DIFF_DIR, d);
            char *text = read_file(path);
            script_opts so;
            parse_opts(text, &so);
            free(text);
            run_out ref = {0};
            int rc = diff_file(d, path, &so, cand, cand_name, NULL, &ref);
            if (rc < 0) {
                fprintf(stderr, "%s: could not run\n", d);
                failures++;
            } else {
                failures += rc;
                (*nrun)++;
                /* The reference must fail exactly where the script says, and print something. */
                if (check_reference &&
                    (strcmp(ref.lines, so.errors) != 0 ||
                     (ref.status != 0) != (so.errors[0] != '\0') || ref.out[0] == '\0')) {
                    fprintf(stderr,
                            "%s: sqlite3 failed at lines [%s] (status %d), the script declares "
                            "[%s]; stderr:\n%s\n",
                            d, ref.lines, ref.status, so.errors, ref.err);
                    failures++;
                }
                printf("  %-28s %s\n", d, rc == 0 ? "same" : "MISMATCH");
            }
            run_free(&ref);
        }
        free(names[i]);
    }
    free(names);
    return failures;
}

static uint64_t seed_from_env(void)
{
    const char *e = getenv("SQL_DIFF_SEED");
    uint64_t s = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    printf("random scripts: seed %" PRIu64 " (SQL_DIFF_SEED=%" PRIu64 " replays them)\n", s, s);
    return s;
}

static int rounds_from_env(int dflt)
{
    const char *e = getenv("SQL_DIFF_ROUNDS");
    int n = e ? atoi(e) : dflt;
    return n > 0 ? n : dflt;
}

/* Random scripts through the reference and cand; failures counted. */
static int diff_random(runner cand, const char *cand_name, int rounds, int *rows)
{
    uint64_t seed = seed_from_env();
    int failures = 0;
    *rows = 0;
    for (int r = 0; r < rounds; r++) {
        char prefix[32], name[64], path[400];
        snprintf(prefix, sizeof prefix, "rnd%d", r);
        snprintf(name, sizeof name, "random-%d.sql", r);
        snprintf(path, sizeof path, "%s/%s", workdir, name);
        char *text = sqlgen_script(seed + (uint64_t)r, prefix);
        if (!text || write_file(path, text) != 0) {
            free(text);
            return failures + 1;
        }
        free(text);
        script_opts so = {0};
        run_out ref = {0};
        int rc = diff_file(name, path, &so, cand, cand_name, NULL, &ref);
        if (rc != 0 || ref.status != 0)
            keep_workdir = true;
        if (rc != 0) {
            fprintf(stderr, "  random script %d (seed %" PRIu64 "): %s, kept at %s\n", r,
                    seed + (uint64_t)r, rc < 0 ? "could not run" : "mismatch", path);
            failures++;
        } else if (ref.status != 0) {
            fprintf(stderr, "  random script %d (seed %" PRIu64 ") fails in sqlite3: %s\n", r,
                    seed + (uint64_t)r, ref.err);
            failures++;
        }
        for (const char *p = ref.out; p && *p; p++)
            *rows += *p == '\n';
        run_free(&ref);
    }
    return failures;
}

/* ---- cases without a cluster ---- */

TEST(scripts_reference)
{
    CHECK(workdir_ready() == 0);
    int n = 0;
    int failures = diff_scripts(run_sqlite_reversed, "sqlite3-reversed", true, &n);
    CHECKF(failures == 0, "%d scripts disagree with themselves or their directives", failures);
    CHECK(n >= 10);
}

TEST(random_reference)
{
    CHECK(workdir_ready() == 0);
    int rows = 0;
    int failures = diff_random(run_sqlite_reversed, "sqlite3-reversed", rounds_from_env(8), &rows);
    CHECK_EQ(failures, 0);
    CHECK(rows > 100); /* the queries return rows, not just headers */
}

/* The comparison catches what it must: a different output, an error where the
 * other side has none, an error at another line, and a crash; and it reports
 * the difference as a unified diff. */
TEST(negative)
{
    CHECK(workdir_ready() == 0);
    char ref[400], mut[400];
    snprintf(ref, sizeof ref, "%s/neg-ref.sql", workdir);
    snprintf(mut, sizeof mut, "%s/neg-mut.sql", workdir);
    const char *base = "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);\n"
                       "INSERT INTO t VALUES (1, 'one'), (2, 'two');\n"
                       "SELECT * FROM t ORDER BY a;\n"
                       "SELECT count(*) FROM t;\n";
    CHECK(write_file(ref, base) == 0);
    struct {
        const char *mutant, *want; /* a text the report must contain */
    } cases[] = {
        /* one value differs: the diff shows both lines */
        {"CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);\n"
         "INSERT INTO t VALUES (1, 'one'), (2, 'deux');\n"
         "SELECT * FROM t ORDER BY a;\n"
         "SELECT count(*) FROM t;\n",
         "+2,deux"},
        /* a row missing */
        {"CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);\n"
         "INSERT INTO t VALUES (1, 'one');\n"
         "SELECT * FROM t ORDER BY a;\n"
         "SELECT count(*) FROM t;\n",
         "-2,two"},
        /* 1 and 1.0 print differently */
        {"CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);\n"
         "INSERT INTO t VALUES (1, 'one'), (2, 'two');\n"
         "SELECT * FROM t ORDER BY a;\n"
         "SELECT count(*) * 1.0 FROM t;\n",
         "+2.0"},
        /* an error the reference does not have (stdout up to it identical) */
        {"CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);\n"
         "INSERT INTO t VALUES (1, 'one'), (2, 'two');\n"
         "SELECT * FROM t ORDER BY a;\n"
         "SELECT count(*) FROM nosuch;\n",
         "error lines: sqlite3 [], mutant [4]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(write_file(mut, cases[i].mutant) == 0);
        run_out a, b;
        CHECK(run_sqlite(ref, false, &a) == 0);
        CHECK(run_sqlite(mut, false, &b) == 0);
        char *report = NULL;
        int rc = compare("neg.sql", "sqlite3", &a, "mutant", &b, &report);
        run_free(&a);
        run_free(&b);
        bool found = report && strstr(report, cases[i].want);
        if (rc != 1 || !found)
            fprintf(stderr, "case %zu report:\n%s\n", i, report ? report : "(none)");
        free(report);
        CHECKF(rc == 1, "case %zu: the mutant was not caught", i);
        CHECKF(found, "case %zu: the report lacks \"%s\"", i, cases[i].want);
    }
    /* errors at different lines with the same stdout */
    CHECK(write_file(ref, "SELECT 1;\nSELECT * FROM nosuch;\nSELECT 2;\n") == 0);
    CHECK(write_file(mut,
                     "SELECT 1;\nSELECT 1 FROM (SELECT 1) WHERE 0;\nSELECT * FROM nosuch;\n") == 0);
    run_out a, b;
    CHECK(run_sqlite(ref, false, &a) == 0);
    CHECK(run_sqlite(mut, false, &b) == 0);
    char *report = NULL;
    int rc = compare("lines.sql", "sqlite3", &a, "mutant", &b, &report);
    bool same_out = strcmp(a.out, b.out) == 0;
    run_free(&a);
    run_free(&b);
    bool found =
        report && strstr(report, "sqlite3 [2], mutant [3]") && strstr(report, "stdout is the same");
    if (!found)
        fprintf(stderr, "report:\n%s\n", report ? report : "(none)");
    free(report);
    CHECK(same_out);
    CHECK_EQ(rc, 1);
    CHECK(found);
    /* continue-on-error: every failing line counts */
    CHECK(write_file(ref, "SELECT 1;\nSELECT x;\nSELECT 2;\nSELECT y;\n") == 0);
    CHECK(run_sqlite(ref, true, &a) == 0);
    CHECK_STR(a.lines, "2 4");
    CHECK_EQ(a.status, 1);
    CHECK(strstr(a.out, "2\n") != NULL); /* it went on */
    run_free(&a);
    /* a candidate that could not run (status -1) never matches, even itself */
    run_out dead = {.status = -1, .out = "", .err = ""};
    CHECK_EQ(compare("dead.sql", "x", &dead, "y", &dead, &report), 1);
    free(report);
    /* the generator is reproducible and varies with the seed */
    char *s1 = sqlgen_script(42, "p"), *s2 = sqlgen_script(42, "p"), *s3 = sqlgen_script(43, "p");
    bool same = s1 && s2 && strcmp(s1, s2) == 0, differ = s1 && s3 && strcmp(s1, s3) != 0;
    free(s1);
    free(s2);
    free(s3);
    CHECK(same);
    CHECK(differ);
}

/* ---- against a cluster ---- */

static bool cluster_up;

static void stop_cluster(void)
{
    if (cluster_up)
        tc_teardown(keep_workdir || getenv("MERIDIAN_TEST_KEEP") != NULL);
    cluster_up = false;
}

/* 1 when `meridian sql` exists (its --help succeeds), 0 when not, -1 when no binary. */
static int meridian_has_sql(void)
{
    const char *bin = proc_meridian_bin();
    if (!bin)
        return -1;
    char *argv[] = {(char *)bin, "sql", "--help", NULL};
    char *out = NULL, *err = NULL;
    int rc = proc_run(argv, 30000, &out, &err);
    free(out);
    free(err);
    return rc == 0;
}

TEST(cluster)
{
    int has = meridian_has_sql();
    if (has < 0)
        SKIP("MERIDIAN_BIN is not set");
    if (has == 0)
        SKIP("`meridian sql` is not available yet (its --help fails)");
    CHECK(workdir_ready() == 0);
    CHECK(tc_setup(3, "meridian-sqldiff") == 0);
    for (int i = 0; i < 3; i++)
        tc_start(i);
    cluster_up = true;
    atexit(stop_cluster);
    CHECK_EQ(tc_init(2), 0);
    snprintf(host, sizeof host, "127.0.0.1:%d,127.0.0.1:%d", tc.ports[0], tc.ports[1]);
    /* every script's schema changes wait out the schema lease: a short one */
    char lease[300];
    snprintf(lease, sizeof lease, "%s/lease.sql", workdir);
    CHECK(write_file(lease, "SET CLUSTER SETTING schema_lease = '100ms';\n") == 0);
    run_out lo;
    CHECK(run_meridian(lease, false, &lo) == 0);
    CHECKF(lo.status == 0, "SET CLUSTER SETTING: %s", lo.err);
    run_free(&lo);
    int n = 0;
    int failures = diff_scripts(run_meridian, "meridian", false, &n);
    int rows = 0;
    failures += diff_random(run_meridian, "meridian", rounds_from_env(12), &rows);
    CHECKF(failures == 0, "%d scripts differ between sqlite3 and meridian sql", failures);
    CHECK(n >= 10);
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {TEST_CASE(scripts_reference), TEST_CASE(random_reference),
                                      TEST_CASE(negative), TEST_CASE(cluster)};
    atexit(cleanup);
    return test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
