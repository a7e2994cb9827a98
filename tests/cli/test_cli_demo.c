/* `meridian demo`, the README's main job: with -e it starts a three-node cluster (chronyd
 * clock when installed), loads the sample, prints only the query's rows on stdout and exits
 * with the shell's status; afterwards every process it reported (nodes, chronyd) and its
 * directory are gone, also after an SQL error, SIGINT while the shell waits for input, or
 * SIGTERM during startup; --keep keeps the directory (only). Usage errors exit 2. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mr_util.h"
#include "launch/proc.h"
#include "tests/test.h"

static char work[256];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0, k;
    char *s = malloc(cap);
    while (s && (k = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += k;
        if (cap - len < 2) {
            char *grown = realloc(s, cap *= 2);
            if (!grown)
                free(s);
            s = grown;
        }
    }
    fclose(f);
    if (s)
        s[len] = '\0';
    return s;
}

static bool has(const char *s, const char *sub)
{
    return s && strstr(s, sub);
}

/* Starts `meridian demo ARGS...` with stdout and stderr in files of the work directory and
 * stdin from /dev/null, or from a pipe kept open (*keep_open gets its write end). */
static pid_t demo_start(const char *const *args, int *keep_open)
{
    char out_path[300], err_path[300];
    snprintf(out_path, sizeof out_path, "%s/stdout", work);
    snprintf(err_path, sizeof err_path, "%s/stderr", work);
    int pfd[2] = {-1, -1};
    if (keep_open && pipe(pfd) != 0)
        return -1;
    /* Empty now, not in the child: a wait for its stderr must not read the last run's. */
    for (const char *p = out_path; p; p = p == out_path ? err_path : NULL) {
        FILE *f = fopen(p, "w");
        if (!f)
            return -1;
        fclose(f);
    }
    pid_t pid = fork();
    if (pid == 0) {
        int i = keep_open ? pfd[0] : open("/dev/null", O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (i < 0 || o < 0 || e < 0)
            _exit(126);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        if (keep_open)
            close(pfd[1]);
        char *argv[32];
        int n = 0;
        argv[n++] = (char *)proc_meridian_bin();
        argv[n++] = "demo";
        for (int k = 0; args[k] && n < 31; k++)
            argv[n++] = (char *)args[k];
        argv[n] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    if (keep_open) {
        close(pfd[0]);
        *keep_open = pfd[1];
    }
    return pid;
}

/* Waits up to timeout_ms for pid; its exit status, 128+signal, or -1 (then killed). */
static int demo_wait(pid_t pid, int timeout_ms)
{
    int st;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static char *demo_file(const char *name)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s", work, name);
    return slurp(path);
}

/* Waits until the demo's stderr shows `what`; false after timeout_ms. */
static bool wait_stderr(const char *what, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        char *err = demo_file("stderr");
        bool seen = has(err, what);
        free(err);
        if (seen)
            return true;
        sleep_ms(100);
    }
    return false;
}

/* A process is gone when it does not exist or is a zombie nobody reaped yet. */
static bool gone(pid_t pid)
{
    if (kill(pid, 0) != 0)
        return errno == ESRCH;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *st = slurp(path);
    const char *paren = st ? strrchr(st, ')') : NULL;
    bool zombie = paren && paren[1] == ' ' && paren[2] == 'Z';
    free(st);
    return zombie;
}

/* Every "pid N" on the demo's stderr and its directory: all gone (or the directory kept);
 * at least `want_pids` of them. */
static bool cleaned_up(const char *err, int want_pids, bool dir_kept)
{
    int n = 0;
    bool ok = true;
    for (const char *p = err; p && (p = strstr(p, "pid ")); p += 4) {
        pid_t pid = (pid_t)strtol(p + 4, NULL, 10);
        if (pid <= 1)
            continue;
        n++;
        if (!gone(pid)) {
            fprintf(stderr, "  pid %d is still running\n", (int)pid);
            ok = false;
        }
    }
    if (n < want_pids) {
        fprintf(stderr, "  %d pids reported, want at least %d\n", n, want_pids);
        ok = false;
    }
    const char *d = err ? strstr(err, "demo: directory ") : NULL;
    char dir[512] = "";
    if (d)
        sscanf(d + strlen("demo: directory "), "%511s", dir);
    struct stat sb;
    if (!dir[0]) {
        fprintf(stderr, "  no directory reported\n");
        ok = false;
    } else if ((stat(dir, &sb) == 0) != dir_kept) {
        fprintf(stderr, "  directory %s %s\n", dir, dir_kept ? "is gone" : "is still there");
        ok = false;
    }
    if (dir_kept && dir[0]) {
        char log[600];
        snprintf(log, sizeof log, "%s/n0.log", dir);
        if (access(log, R_OK) != 0) {
            fprintf(stderr, "  the kept directory has no %s\n", log);
            ok = false;
        }
        tmpdir_remove(dir);
    }
    return ok;
}

static int demo_run(const char *const *args, int timeout_ms)
{
    pid_t pid = demo_start(args, NULL);
    return pid < 0 ? -1 : demo_wait(pid, timeout_ms);
}

static void demo_usage_errors_body(void)
{
    static const char *const bad[][4] = {{"--nodes", "0", NULL},    {"--nodes", "x", NULL},
                                         {"--zones", "a,,b", NULL}, {"--zones", "has space", NULL},
                                         {"--format", "xml", NULL}, {"--frob", NULL},
                                         {"extra", NULL},           {"-e", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = demo_run(bad[i], 10000);
        char *err = demo_file("stderr");
        bool good = rc == 2 && has(err, "meridian demo --help");
        if (!good)
            fprintf(stderr, "  demo %s %s: exit %d: %s\n", bad[i][0], bad[i][1] ? bad[i][1] : "",
                    rc, err ? err : "");
        free(err);
        CHECK(good);
    }
    CHECK_EQ(demo_run((const char *const[]){"--help", NULL}, 10000), 0);
    char *out = demo_file("stdout");
    bool good = has(out, "usage: meridian demo") && has(out, "--keep");
    free(out);
    CHECK(good);
}

TEST(demo_usage_errors)
{
    CHECK(tmpdir_make(work, sizeof work, "meridian-test-demo") == 0);
    demo_usage_errors_body();
    tmpdir_remove(work);
}

static void demo_runs_sql_and_removes_everything_body(void)
{
    /* The sample's rows, and an error after them: exit 1, still cleaned up. */
    int rc = demo_run((const char *const[]){"--format", "csv", "--header", "-e",
                                            "SELECT s.last_name, a.title, count(*) AS songs, "
                                            "sum(g.seconds) AS seconds FROM singers s "
                                            "JOIN albums a USING (singer_id) JOIN songs g "
                                            "USING (singer_id, album_id) GROUP BY 1, 2 "
                                            "ORDER BY 1, 2;",
                                            "-e", "SELECT * FROM nosuch;", NULL},
                      240000);
    char *out = demo_file("stdout"), *err = demo_file("stderr");
    static const char want[] = "last_name,title,songs,seconds\n"
                               "Ferreira,\"Rio Slow\",1,251\n"
                               "Ilves,\"Northern Light\",2,401\n"
                               "Ilves,\"Salt and Pine\",1,242\n"
                               "Morrow,\"Glass Orchard\",2,467\n"
                               "Morrow,\"Quiet Machines\",1,305\n"
                               "Wren,\"Paper Harbours\",3,610\n";
    bool good = rc == 1 && out && strcmp(out, want) == 0 &&
                has(err, "Error: near line 1: no such table: nosuch") &&
                has(err, "sql --host 127.0.0.1:") && has(err, "--certs ");
    if (!good)
        fprintf(stderr, "  exit %d\n--- stdout:\n%s--- stderr:\n%s\n", rc, out ? out : "",
                err ? err : "");
    /* Three nodes, and chronyd's two daemons when it is installed. */
    bool cleaned = cleaned_up(err, has(err, "chronyd pid") ? 5 : 3, false);
    free(out);
    free(err);
    CHECK(good);
    CHECK(cleaned);

    /* --keep: one node in a zone of our naming; the directory stays, the process does not. */
    rc = demo_run((const char *const[]){"--nodes", "1", "--zones", "east-1", "--keep", "--format",
                                        "csv", "-e", "SELECT count(*) FROM songs", NULL},
                  240000);
    out = demo_file("stdout");
    err = demo_file("stderr");
    good = rc == 0 && out && strcmp(out, "10\n") == 0 && has(err, "node 0 (east-1)") &&
           has(err, "kept ");
    if (!good)
        fprintf(stderr, "  --keep: exit %d\n--- stdout:\n%s--- stderr:\n%s\n", rc, out ? out : "",
                err ? err : "");
    cleaned = cleaned_up(err, 1, true);
    free(out);
    free(err);
    CHECK(good);
    CHECK(cleaned);
}

TEST(demo_runs_sql_and_removes_everything)
{
    CHECK(tmpdir_make(work, sizeof work, "meridian-test-demo") == 0);
    demo_runs_sql_and_removes_everything_body();
    tmpdir_remove(work);
}

static void demo_signals_remove_everything_body(void)
{
    /* SIGINT while the shell waits for SQL on its (open, idle) stdin. */
    int in = -1;
    pid_t pid = demo_start((const char *const[]){NULL}, &in);
    CHECK(pid > 0);
    bool ready = wait_stderr("connect from another terminal", 240000);
    kill(pid, SIGINT);
    int rc = demo_wait(pid, 60000);
    close(in);
    char *err = demo_file("stderr");
    bool good = ready && rc == 130 && has(err, "interrupted");
    if (!good)
        fprintf(stderr, "  SIGINT: ready %d, exit %d\n--- stderr:\n%s\n", ready, rc,
                err ? err : "");
    bool cleaned = cleaned_up(err, 3, false);
    free(err);
    CHECK(good);
    CHECK(cleaned);

    /* SIGTERM during startup, once the nodes run. */
    pid = demo_start((const char *const[]){"-e", "SELECT 1", NULL}, NULL);
    CHECK(pid > 0);
    ready = wait_stderr("demo: node 2 ", 240000);
    kill(pid, SIGTERM);
    rc = demo_wait(pid, 60000);
    err = demo_file("stderr");
    good = ready && rc == 143;
    if (!good)
        fprintf(stderr, "  SIGTERM: ready %d, exit %d\n--- stderr:\n%s\n", ready, rc,
                err ? err : "");
    cleaned = cleaned_up(err, 3, false);
    free(err);
    CHECK(good);
    CHECK(cleaned);
}

TEST(demo_signals_remove_everything)
{
    CHECK(tmpdir_make(work, sizeof work, "meridian-test-demo") == 0);
    demo_signals_remove_everything_body();
    tmpdir_remove(work);
}

TEST_MAIN(TEST_CASE(demo_usage_errors), TEST_CASE(demo_runs_sql_and_removes_everything),
          TEST_CASE(demo_signals_remove_everything))
