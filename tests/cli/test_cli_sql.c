/* `meridian sql` as a user runs it, against a real one-node cluster: usage errors (exit 2) and
 * an unreachable cluster (exit 4) before anything runs; several statements in one -e; a
 * script whose line N fails (the message names line N, the run stops, exit 1; with
 * --continue-on-error the rest runs and the exit is still 1); SQL on stdin; rows that
 * outlive the process (they are in the cluster); every output format byte for byte what
 * `sqlite3` prints for the same rows; transactions with \timing's commit timestamp; and the
 * interactive shell on a pseudo-terminal (prompts, a statement over two lines, Ctrl-C
 * clearing the input, Tab completing a table name, history saved, \q); and a session whose
 * node is killed between two statements (exit 4). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/mr_util.h"
#include "launch/proc.h"
#include "tests/support/cluster.h"
#include "tests/test.h"

static char host[64];
static char work[256]; /* this test's own scratch directory */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    size_t k;
    while (s && (k = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (cap - len < 2) {
            char *grown = realloc(s, cap *= 2);
            if (!grown) {
                free(s);
                s = NULL;
            }
            s = grown;
        }
    }
    fclose(f);
    if (s)
        s[len] = '\0';
    return s;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Runs argv (searched in PATH) with stdin from the text `input` (NULL: /dev/null), stdout
 * and stderr into *out and *err when non-NULL (malloc'd). The exit status; 127 when it
 * could not run; -1 when killed (after 90 s) or by a signal. */
static int run_argv(const char *input, char **out, char **err, char *const *argv)
{
    char in_path[300], out_path[300], err_path[300];
    snprintf(in_path, sizeof in_path, "%s/stdin", work);
    snprintf(out_path, sizeof out_path, "%s/stdout", work);
    snprintf(err_path, sizeof err_path, "%s/stderr", work);
    spit(in_path, input ? input : "");
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int i = open(input ? in_path : "/dev/null", O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (i < 0 || o < 0 || e < 0)
            _exit(126);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    for (int waited = 0;; waited += 20) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (waited > 90000) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ms(20);
    }
    if (out)
        *out = slurp(out_path);
    if (err)
        *err = slurp(err_path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* meridian sql ARGS... (NULL-terminated) --host node0 --certs DIR, stdin from input. */
static int sql_in(const char *input, char **out, char **err, const char *const *args)
{
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)proc_meridian_bin();
    argv[n++] = "sql";
    for (int i = 0; args[i] && n < 42; i++)
        argv[n++] = (char *)args[i];
    argv[n++] = "--host";
    argv[n++] = host;
    argv[n++] = "--certs";
    argv[n++] = tc.certs;
    argv[n] = NULL;
    return run_argv(input, out, err, argv);
}

#define SQL(out, err, ...) sql_in(NULL, out, err, (const char *const[]){__VA_ARGS__, NULL})

static bool has(const char *s, const char *sub)
{
    return s && strstr(s, sub);
}

/* Runs `meridian sql -e SQL --format csv` and checks stdout is exactly want (exit 0). */
static bool csv_is(const char *sql, const char *want)
{
    char *out = NULL, *err = NULL;
    int rc = SQL(&out, &err, "--format", "csv", "-e", sql);
    bool same = rc == 0 && out && strcmp(out, want) == 0;
    if (!same)
        fprintf(stderr, "  %s: exit %d, stdout [%s], want [%s], stderr %s\n", sql, rc,
                out ? out : "", want, err ? err : "");
    free(out);
    free(err);
    return same;
}

/* ---- without a cluster ---- */

static int plain(char **out, char **err, const char *const *args)
{
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)proc_meridian_bin();
    for (int i = 0; args[i] && n < 23; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return run_argv(NULL, out, err, argv);
}

#define PLAIN(out, err, ...) plain(out, err, (const char *const[]){__VA_ARGS__, NULL})

static bool usage_error(const char *why, const char *want_msg, const char *const *args)
{
    char *err = NULL;
    int rc = plain(NULL, &err, args);
    bool good = rc == 2 && has(err, want_msg) && has(err, "meridian sql --help");
    if (!good)
        fprintf(stderr, "  %s: exit %d, stderr: %s\n", why, rc, err ? err : "");
    free(err);
    return good;
}

static void usage_errors_exit_2_and_an_unreachable_cluster_4_body(void)
{
    char *out = NULL, *err = NULL;
    int rc = PLAIN(&out, &err, "sql", "--help");
    bool good = rc == 0 && has(out, "usage: meridian sql") && has(out, "--continue-on-error") &&
                has(out, "Exit status");
    if (!good)
        fprintf(stderr, "  --help: exit %d: %s\n", rc, out ? out : "");
    free(out);
    free(err);
    CHECK(good);
    CHECK(usage_error("unknown option", "unknown option '--frob'",
                      (const char *const[]){"sql", "--insecure", "--frob", NULL}));
    CHECK(usage_error("bad format", "--format 'xml'",
                      (const char *const[]){"sql", "--insecure", "--format", "xml", NULL}));
    CHECK(usage_error("-e without SQL", "-e needs a value",
                      (const char *const[]){"sql", "--insecure", "-e", NULL}));
    CHECK(
        usage_error("missing -f file", "cannot read -f /nonexistent/x.sql",
                    (const char *const[]){"sql", "--insecure", "-f", "/nonexistent/x.sql", NULL}));
    CHECK(usage_error("no certificates", "give --certs DIR, or --insecure",
                      (const char *const[]){"sql", "-e", "SELECT 1", NULL}));
    CHECK(usage_error("bad host", "--host 'nohost'",
                      (const char *const[]){"sql", "--insecure", "--host", "nohost", NULL}));
    CHECK(usage_error("positional argument", "unexpected argument 'SELECT 1'",
                      (const char *const[]){"sql", "--insecure", "SELECT 1", NULL}));

    /* Nobody listens on the port: exit 4, said so, nothing on stdout. */
    char dead[64];
    snprintf(dead, sizeof dead, "127.0.0.1:%d", free_port(SOCK_STREAM));
    out = err = NULL;
    rc =
        PLAIN(&out, &err, "sql", "--insecure", "--timeout", "2s", "--host", dead, "-e", "SELECT 1");
    good = rc == 4 && has(err, "cannot reach the cluster") && has(err, dead) && out && !*out;
    if (!good)
        fprintf(stderr, "  unreachable: exit %d: %s\n", rc, err ? err : "");
    free(out);
    free(err);
    CHECK(good);
}

TEST(usage_errors_exit_2_and_an_unreachable_cluster_4)
{
    CHECK(tmpdir_make(work, sizeof work, "meridian-test-sql") == 0);
    usage_errors_exit_2_and_an_unreachable_cluster_4_body();
    tmpdir_remove(work);
}

/* ---- against the cluster ---- */

/* Every format against sqlite3 itself: the same table and query, byte for byte. */
static const char fmt_table[] =
    "CREATE TABLE fmt (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n);\n"
    "INSERT INTO fmt VALUES (1, 42, 0.1, 'plain', x'41', NULL);\n"
    "INSERT INTO fmt VALUES (2, -7, 1e300, 'with, comma \"quoted\"', x'', 'x');\n"
    "INSERT INTO fmt VALUES (3, 0, -0.0, '', NULL, 3.5);\n"
    "INSERT INTO fmt VALUES (4, 9007199254740993, 1.0/3, 'two\nlines', x'e282ac', "
    "'tab\tin');\n"
    "INSERT INTO fmt VALUES (5, NULL, 100.0, 'h\xc3\xa9llo w\xc3\xb6rld', NULL, 2);\n";
static const char *const fmt_queries[] = {
    "SELECT * FROM fmt ORDER BY id;",
    "SELECT id, r * 3 AS r3, upper(t) AS ut, length(t) AS len, n IS NULL AS nul FROM fmt "
    "ORDER BY id DESC;",
    "SELECT count(*) AS rows, sum(i), avg(r), group_concat(t, '|') FROM fmt;",
    "SELECT * FROM fmt WHERE id > 100;",
};

static bool formats_match_sqlite3(void)
{
    static const char *const formats[][2] = {{"csv", "-csv"},
                                             {"tsv", "-tabs"},
                                             {"json", "-json"},
                                             {"line", "-line"},
                                             {"table", "-table"}};
    for (size_t q = 0; q < sizeof fmt_queries / sizeof fmt_queries[0]; q++)
        for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++)
            for (int header = 0; header < 2; header++) {
                char script[2048];
                snprintf(script, sizeof script, "%s%s", fmt_table, fmt_queries[q]);
                char *want = NULL, *got = NULL, *err = NULL;
                char *ref[] = {"sqlite3",
                               (char *)formats[f][1],
                               header ? "-header" : "-batch",
                               ":memory:",
                               script,
                               NULL};
                int rc = run_argv(NULL, &want, NULL, ref);
                if (rc != 0) {
                    fprintf(stderr, "  sqlite3 %s: exit %d\n", formats[f][1], rc);
                    free(want);
                    return false;
                }
                rc = header ? SQL(&got, &err, "--format", formats[f][0], "--header", "-e",
                                  fmt_queries[q])
                            : SQL(&got, &err, "--format", formats[f][0], "-e", fmt_queries[q]);
                bool same = rc == 0 && got && strcmp(got, want) == 0;
                if (!same)
                    fprintf(stderr,
                            "  --format %s%s, %s: exit %d\n--- sqlite3:\n%s--- meridian sql:\n%s"
                            "--- stderr: %s\n",
                            formats[f][0], header ? " --header" : "", fmt_queries[q], rc, want,
                            got ? got : "", err ? err : "");
                free(want);
                free(got);
                free(err);
                if (!same)
                    return false;
            }
    return true;
}

/* The interactive shell on a pseudo-terminal. */
typedef struct term {
    int fd;
    pid_t pid;
    char buf[65536];
    size_t len;
} term;

/* Reads until pat appears (consuming through it) or 30 s pass. */
static bool expect(term *t, const char *pat)
{
    for (int64_t end = mr_monotonic_ns() + 30 * MR_NS_PER_S;;) {
        t->buf[t->len] = '\0';
        char *at = strstr(t->buf, pat);
        if (at) {
            size_t used = (size_t)(at - t->buf) + strlen(pat);
            memmove(t->buf, t->buf + used, t->len - used);
            t->len -= used;
            return true;
        }
        int left = (int)((end - mr_monotonic_ns()) / MR_NS_PER_MS);
        struct pollfd p = {.fd = t->fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t n = read(t->fd, t->buf + t->len, sizeof t->buf - 1 - t->len);
        if (n <= 0)
            break;
        t->len += (size_t)n;
        if (t->len == sizeof t->buf - 1) { /* keep the newest half */
            memmove(t->buf, t->buf + t->len / 2, t->len - t->len / 2);
            t->len -= t->len / 2;
        }
    }
    t->buf[t->len] = '\0';
    fprintf(stderr, "  the terminal never showed [%s]; it shows [%s]\n", pat, t->buf);
    return false;
}

static void type(term *t, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t k = write(t->fd, s, n);
        if (k <= 0)
            return;
        s += k;
        n -= (size_t)k;
    }
}

static bool interactive_session(void)
{
    char home[300];
    snprintf(home, sizeof home, "%s/home", work);
    mkdir(home, 0700);
    term t = {0};
    struct winsize ws = {.ws_row = 40, .ws_col = 120};
    t.pid = forkpty(&t.fd, NULL, NULL, &ws);
    if (t.pid < 0)
        return false;
    if (t.pid == 0) {
        setenv("HOME", home, 1);
        setenv("TERM", "xterm", 1);
        execl(proc_meridian_bin(), proc_meridian_bin(), "sql", "--host", host, "--certs", tc.certs,
              (char *)NULL);
        _exit(127);
    }
    bool ok = expect(&t, "meridian> ");
    /* A statement over two lines: the continuation prompt, then the rows. */
    if (ok) {
        type(&t, "SELECT v FROM kv\r");
        ok = expect(&t, "     ...> ");
    }
    if (ok) {
        type(&t, "WHERE k = 2;\r");
        ok = expect(&t, "| two |") && expect(&t, "(1 row)") && expect(&t, "meridian> ");
    }
    /* Ctrl-C drops the half-typed statement: the next one runs alone. */
    if (ok) {
        type(&t, "SELECT 'never");
        sleep_ms(300);
        type(&t, "\x03");
        ok = expect(&t, "meridian> ");
    }
    if (ok) {
        type(&t, "SELECT 7 * 6 AS answer;\r");
        ok = expect(&t, "| 42     |") && expect(&t, "meridian> ");
    }
    /* Tab completes the table name after FROM. */
    if (ok) {
        type(&t, "SELECT count(*) AS n FROM k");
        sleep_ms(200);
        type(&t, "\t");
        sleep_ms(1000);
        type(&t, ";\r");
        ok = expect(&t, "| n |") && expect(&t, "meridian> ");
    }
    /* An error is reported and the shell goes on. */
    if (ok) {
        type(&t, "SELECT * FROM nosuch;\r");
        ok = expect(&t, "Error: ") && expect(&t, "nosuch") && expect(&t, "meridian> ");
    }
    if (ok)
        type(&t, "\\q\r");
    int st = -1;
    for (int waited = 0; waited < 20000; waited += 50) {
        char sink[4096];
        while (read(t.fd, sink, sizeof sink) > 0) {
        }
        if (waitpid(t.pid, &st, WNOHANG) == t.pid)
            break;
        st = -1;
        sleep_ms(50);
    }
    if (st == -1) {
        kill(t.pid, SIGKILL);
        waitpid(t.pid, NULL, 0);
    }
    close(t.fd);
    if (ok && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        fprintf(stderr, "  the shell did not exit 0 after \\q (status %d)\n", st);
        ok = false;
    }
    char path[400];
    snprintf(path, sizeof path, "%s/.meridian_history", home);
    char *hist = slurp(path);
    /* libedit's history file escapes blanks as \040. */
    if (ok && !(has(hist, "SELECT\\040v\\040FROM\\040kv\\040WHERE\\040k\\040=\\0402;") &&
                has(hist, "SELECT\\040count(*)\\040AS\\040n\\040FROM\\040kv\\040;") &&
                !has(hist, "never"))) {
        fprintf(stderr, "  history: %s\n", hist ? hist : "(none)");
        ok = false;
    }
    free(hist);
    return ok;
}

/* A session whose cluster goes away: statements on stdin, the node killed between two of
 * them; the shell reports the cluster unavailable and exits 4. */
static bool unavailable_mid_session(void)
{
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        return false;
    char err_path[300];
    snprintf(err_path, sizeof err_path, "%s/stderr", work);
    pid_t pid = fork();
    if (pid == 0) {
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(e, 2);
        close(in[1]);
        close(out[0]);
        execl(proc_meridian_bin(), proc_meridian_bin(), "sql", "--host", host, "--certs", tc.certs,
              "--timeout", "2s", "--format", "csv", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    static const char first[] = "SELECT count(*) FROM kv;\n";
    bool ok = write(in[1], first, strlen(first)) == (ssize_t)strlen(first);
    char got[256] = "";
    size_t len = 0;
    while (ok && !strchr(got, '\n')) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        ssize_t n = poll(&p, 1, 30000) == 1 ? read(out[0], got + len, sizeof got - 1 - len) : 0;
        if (n <= 0)
            ok = false;
        else
            got[len += (size_t)n] = '\0';
    }
    if (ok && strcmp(got, "6\n") != 0) {
        fprintf(stderr, "  before the kill: [%s]\n", got);
        ok = false;
    }
    tc_kill(0);
    static const char second[] = "SELECT count(*) FROM kv;\n";
    if (ok)
        ok = write(in[1], second, strlen(second)) == (ssize_t)strlen(second);
    close(in[1]);
    int st = -1;
    for (int waited = 0; waited < 60000; waited += 50) {
        char sink[256];
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 0) == 1 && read(out[0], sink, sizeof sink) <= 0)
            p.fd = -1;
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
        st = -1;
        sleep_ms(50);
    }
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    close(out[0]);
    char *err = slurp(err_path);
    if (ok && !(WIFEXITED(st) && WEXITSTATUS(st) == 4 &&
                has(err, "Error: near line 2: cluster unavailable"))) {
        fprintf(stderr, "  after the kill: status %d, stderr [%s]\n", st, err ? err : "");
        ok = false;
    }
    free(err);
    return ok;
}

static void body(void)
{
    CHECK(tmpdir_make(work, sizeof work, "meridian-test-sql") == 0);
    CHECK(tc_setup(1, "meridian-cli-sql") == 0);
    snprintf(host, sizeof host, "127.0.0.1:%d", tc.ports[0]);
    tc_start(0);
    CHECK_EQ(tc_init(1), 0);
    CHECK(tc_wait_leader(2, -1, 30000) >= 0);
    char *out = NULL, *err = NULL;

    /* Several statements in one -e; the rows are in the cluster, so another process (a new
     * session) reads them. */
    CHECK(csv_is("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT);"
                 "INSERT INTO kv VALUES (1, 'one'), (2, 'two');"
                 "SELECT * FROM kv ORDER BY k;",
                 "1,one\n2,two\n"));
    CHECK(csv_is("SELECT count(*) FROM kv", "2\n"));

    /* A script failing at line 5 (a statement that starts there): its message names the
     * line, nothing after it runs, exit 1. */
    char script[300];
    snprintf(script, sizeof script, "%s/fail.sql", work);
    spit(script, "INSERT INTO kv VALUES (3, 'three');\n"
                 "\n"
                 "-- a comment line\n"
                 "SELECT v FROM kv WHERE k = 3;\n"
                 "INSERT INTO kv\n"
                 "  VALUES (1, 'again');\n"
                 "INSERT INTO kv VALUES (4, 'four');\n"
                 "SELECT v FROM kv WHERE k = 4;\n");
    int rc = SQL(&out, &err, "--format", "csv", "-f", script);
    bool good = rc == 1 && out && strcmp(out, "three\n") == 0 && has(err, "Error: near line 5: ") &&
                has(err, "UNIQUE constraint failed: kv.k");
    if (!good)
        fprintf(stderr, "  -f fail.sql: exit %d, stdout [%s], stderr [%s]\n", rc, out ? out : "",
                err ? err : "");
    free(out);
    free(err);
    CHECK(good);
    CHECK(csv_is("SELECT count(*) FROM kv WHERE k = 4", "0\n")); /* never ran */

    /* --continue-on-error: every statement runs, each failure is reported with its line,
     * the exit is still 1. */
    snprintf(script, sizeof script, "%s/cont.sql", work);
    spit(script, "SELECT 'a';\n"
                 "SELECT nosuchcolumn FROM kv;\n"
                 "INSERT INTO kv VALUES (2, 'dup'); SELECT 'same line';\n"
                 "selec 'typo';\n"
                 "INSERT INTO kv VALUES (7, 'seven');\n"
                 "SELECT v FROM kv WHERE k = 7;\n");
    out = err = NULL;
    rc = SQL(&out, &err, "--format", "csv", "--continue-on-error", "-f", script);
    good = rc == 1 && out && strcmp(out, "a\n\"same line\"\nseven\n") == 0 &&
           has(err, "Error: near line 2: no such column: nosuchcolumn") &&
           has(err, "Error: near line 3: UNIQUE constraint failed: kv.k") &&
           has(err, "Error: near line 4: near \"selec\": syntax error");
    if (!good)
        fprintf(stderr, "  --continue-on-error: exit %d, stdout [%s], stderr [%s]\n", rc,
                out ? out : "", err ? err : "");
    free(out);
    free(err);
    CHECK(good);

    /* SQL on stdin, a last statement without its ';' included. */
    out = err = NULL;
    rc = sql_in("SELECT v FROM kv WHERE k = 1;\nSELECT v\n  FROM kv WHERE k = 2", &out, &err,
                (const char *const[]){"--format", "csv", NULL});
    good = rc == 0 && out && strcmp(out, "one\ntwo\n") == 0;
    if (!good)
        fprintf(stderr, "  stdin: exit %d, stdout [%s], stderr [%s]\n", rc, out ? out : "",
                err ? err : "");
    free(out);
    free(err);
    CHECK(good);

    /* A transaction: \timing reports the commit timestamp, which meridian_commit_ts() of
     * the same session returns, and its commit wait. */
    out = err = NULL;
    rc = SQL(&out, &err, "--format", "csv", "-e", "\\timing on", "-e",
             "BEGIN; INSERT INTO kv VALUES (10, 'ten'); INSERT INTO kv VALUES (11, 'eleven');"
             " COMMIT;",
             "-e", "SELECT meridian_commit_ts();");
    const char *at = err ? strstr(err, "committed at ") : NULL;
    long long ts = at ? strtoll(at + strlen("committed at "), NULL, 10) : 0;
    /* and the commit wait the leader spent: positive, since the cluster's clock bound is */
    const char *cw = err ? strstr(err, "commit wait ") : NULL;
    double wait_ms = cw ? strtod(cw + strlen("commit wait "), NULL) : 0;
    good = rc == 0 && ts > 0 && out && strtoll(out, NULL, 10) == ts && has(err, "Time: ") &&
           wait_ms > 0 && wait_ms < 1000;
    if (!good)
        fprintf(stderr, "  transaction: exit %d, stdout [%s], stderr [%s]\n", rc, out ? out : "",
                err ? err : "");
    free(out);
    free(err);
    CHECK(good);
    CHECK(csv_is("SELECT group_concat(v, '+') FROM kv WHERE k >= 10", "ten+eleven\n"));

    /* \dt and \d T. */
    out = err = NULL;
    rc = SQL(&out, &err, "-e", "\\dt", "-e", "\\d kv");
    good = rc == 0 && has(out, "| kv ") && has(out, "CREATE TABLE kv");
    if (!good)
        fprintf(stderr, "  \\dt, \\d kv: exit %d, stdout [%s], stderr [%s]\n", rc, out ? out : "",
                err ? err : "");
    free(out);
    free(err);
    CHECK(good);

    /* Formats: the table, then each query in each format, against sqlite3. */
    out = err = NULL;
    rc = SQL(&out, &err, "-e", fmt_table);
    CHECKF(rc == 0, "loading fmt: exit %d: %s", rc, err ? err : "");
    free(out);
    free(err);
    char *ref[] = {"sqlite3", "-version", NULL};
    if (run_argv(NULL, NULL, NULL, ref) != 0)
        fprintf(stderr, "  (no sqlite3 in PATH: the format comparison is skipped; "
                        "scripts/install-deps.sh installs it)\n");
    else
        CHECK(formats_match_sqlite3());

    CHECK(interactive_session());
    CHECK(unavailable_mid_session()); /* kills the node: last */
}

TEST(sql_scripts_formats_and_terminal_on_a_cluster)
{
    body();
    tc_teardown(test_failed_flag);
    tmpdir_remove(work);
}

TEST_MAIN(TEST_CASE(usage_errors_exit_2_and_an_unreachable_cluster_4),
          TEST_CASE(sql_scripts_formats_and_terminal_on_a_cluster))
