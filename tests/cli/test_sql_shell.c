/* The shell (cmd/sql_shell.c) in process, over the real SQL engine and the in-memory
 * libmeridian (tests/sql/fake_meridian.h), whose store is made to fail the ways a cluster
 * can: a commit whose outcome is unknown (exit 3, the transaction named, the run stops; with
 * --continue-on-error the rest runs and 3 still wins), the cluster unavailable (exit 4), an
 * abort inside BEGIN (reported as retryable, exit 1), and how the statuses rank when several
 * happen. A real cluster cannot be made to lose a commit's answer on cue; the scripted
 * failures here can. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/sql_shell.h"
#include "launch/proc.h"
#include "tests/sql/fake_meridian.h"
#include "tests/test.h"

static meridian *db;
static msql *s;
static char work[256];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0, k;
    char *b = malloc(cap);
    while (b && (k = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (cap - len < 2) {
            char *grown = realloc(b, cap *= 2);
            if (!grown)
                free(b);
            b = grown;
        }
    }
    fclose(f);
    if (b)
        b[len] = '\0';
    return b;
}

typedef struct run {
    int status;
    char *out, *err;
} run;

static void run_free(run *r)
{
    free(r->out);
    free(r->err);
}

/* Runs the shell on the -e texts (NULL-terminated) with --format csv, stdout and stderr
 * caught in files. */
static run shell(bool cont, const char *const *es)
{
    char out_path[300], err_path[300];
    snprintf(out_path, sizeof out_path, "%s/out", work);
    snprintf(err_path, sizeof err_path, "%s/err", work);
    sqlsh_opts o = {.fmt = {.format = SF_CSV, .header = 0}, .continue_on_error = cont};
    for (; *es && o.ninputs < SQLSH_MAX_INPUTS; es++) {
        o.inputs[o.ninputs].file = false;
        o.inputs[o.ninputs++].arg = *es;
    }
    fflush(stdout);
    fflush(stderr);
    int keep_out = dup(1), keep_err = dup(2);
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fo, 1);
    dup2(fe, 2);
    run r = {.status = sqlsh_run(s, &o, NULL)};
    fflush(stdout);
    fflush(stderr);
    dup2(keep_out, 1);
    dup2(keep_err, 2);
    close(keep_out);
    close(keep_err);
    close(fo);
    close(fe);
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    if (!r.out)
        r.out = strdup("");
    if (!r.err)
        r.err = strdup("");
    return r;
}

#define SHELL(cont, ...) shell(cont, (const char *const[]){__VA_ARGS__, NULL})

static bool has(const char *t, const char *sub)
{
    return t && strstr(t, sub);
}

/* r has this status and stdout, and stderr holds want_err (NULL: is empty). */
static bool is(run r, int status, const char *out, const char *want_err)
{
    bool good = r.status == status && strcmp(r.out, out) == 0 &&
                (want_err ? has(r.err, want_err) : !*r.err);
    if (!good)
        fprintf(stderr, "  exit %d (want %d)\n  stdout [%s] (want [%s])\n  stderr [%s] (want %s)\n",
                r.status, status, r.out, out, r.err, want_err ? want_err : "nothing");
    run_free(&r);
    return good;
}

static int setup(void)
{
    fake_meridian_reset();
    meridian_options mo = {.addrs = "fake:1", .insecure = 1};
    if (tmpdir_make(work, sizeof work, "meridian-test-shell") != 0 ||
        meridian_open(&mo, &db) != MERIDIAN_OK || msql_open(db, &s) != MSQL_OK)
        return -1;
    msql_set_retry_deadline(s, 500);
    return 0;
}

static void teardown(void)
{
    msql_close(s);
    meridian_close(db);
    s = NULL;
    db = NULL;
    tmpdir_remove(work);
}

static void unknown_outcome_body(void)
{
    CHECK(setup() == 0);
    CHECK(is(SHELL(false, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT);"), 0, "", NULL));

    /* The commit happened but its answer was lost: exit 3, the transaction named, and the
     * statements after it do not run. */
    fake_meridian_fail_commit(MERIDIAN_UNKNOWN, 1, true);
    run r = SHELL(false, "INSERT INTO t VALUES (1, 'x');", "SELECT count(*) FROM t;");
    char named[96];
    snprintf(named, sizeof named, "Error: near line 1: commit outcome unknown for transaction %llu",
             (unsigned long long)msql_last_txn_id(s));
    CHECK(is(r, 3, "", named));
    CHECK(is(SHELL(false, "SELECT count(*) FROM t;"), 0, "1\n", NULL)); /* it had committed */

    /* --continue-on-error: the rest runs; 3 is still the status. */
    fake_meridian_fail_commit(MERIDIAN_UNKNOWN, 1, false);
    CHECK(is(SHELL(true, "INSERT INTO t VALUES (2, 'y');\nSELECT count(*) FROM t;"), 3, "1\n",
             "it may have committed"));
}

TEST(unknown_outcome_exits_3_naming_the_transaction)
{
    unknown_outcome_body();
    teardown();
}

static void unavailable_and_retry_body(void)
{
    CHECK(setup() == 0);
    CHECK(is(SHELL(false, "CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT);"
                          "INSERT INTO t VALUES (1, 'x');"),
             0, "", NULL));

    /* No leader reachable: exit 4. An autocommit read retries unavailability while it has
     * returned no row (one failure is invisible), until the session's deadline. */
    fake_meridian_fail_read(MERIDIAN_UNAVAILABLE, 1);
    CHECK(is(SHELL(false, "SELECT b FROM t;"), 0, "x\n", NULL));
    fake_meridian_fail_read(MERIDIAN_UNAVAILABLE, 1000);
    CHECK(is(SHELL(false, "SELECT b FROM t;"), 4, "", "Error: near line 1: cluster unavailable"));
    fake_meridian_fail_read(0, 0);
    /* Writes keep retrying unavailability until the session's deadline, then give up. */
    fake_meridian_fail_commit(MERIDIAN_UNAVAILABLE, 1000, false);
    CHECK(is(SHELL(false, "INSERT INTO t VALUES (2, 'y');"), 4, "", "cluster unavailable"));
    fake_meridian_fail_commit(0, 0, false);

    /* An abort at COMMIT: the transaction was rolled back, the user may run it again; the
     * error names the line where the COMMIT starts. */
    fake_meridian_fail_commit(MERIDIAN_ABORTED, 1, false);
    CHECK(is(SHELL(false, "BEGIN;\nINSERT INTO t VALUES (3, 'z');\nCOMMIT;\nSELECT 'after';"), 1,
             "", "Error: near line 3: "));
    fake_meridian_fail_commit(MERIDIAN_ABORTED, 1, false);
    CHECK(is(SHELL(false, "BEGIN;\nINSERT INTO t VALUES (3, 'z');\nCOMMIT;"), 1, "",
             "the transaction was rolled back: running it again may succeed"));
    CHECK(is(SHELL(false, "SELECT group_concat(b, '+') FROM t;"), 0, "x\n", NULL));

    /* Several failures under --continue-on-error: an SQL error (1), then the cluster
     * unavailable (4): 4; then an unknown outcome (3) too: 3. Every statement ran. */
    /* (Inside BEGIN a read is not retried: one injected failure is the statement's.) */
    fake_meridian_fail_read(MERIDIAN_UNAVAILABLE, 1);
    CHECK(is(SHELL(true, "SELECT nosuch FROM t;", "BEGIN;", "SELECT b FROM t;", "ROLLBACK;",
                   "SELECT 'end';"),
             4, "end\n", "Error: near line 1: no such column: nosuch"));
    fake_meridian_fail_read(MERIDIAN_UNAVAILABLE, 1);
    fake_meridian_fail_commit(MERIDIAN_UNKNOWN, 1, false);
    CHECK(is(SHELL(true, "SELECT nosuch FROM t;", "BEGIN;", "SELECT b FROM t;", "ROLLBACK;",
                   "INSERT INTO t VALUES (4, 'w');", "SELECT 'end';"),
             3, "end\n", "commit outcome unknown"));
}

TEST(unavailable_exits_4_aborts_are_retryable_and_statuses_rank)
{
    unavailable_and_retry_body();
    teardown();
}

TEST_MAIN(TEST_CASE(unknown_outcome_exits_3_naming_the_transaction),
          TEST_CASE(unavailable_exits_4_aborts_are_retryable_and_statuses_rank))
