/* bench-contention's PostgreSQL: a private server (initdb and pg_ctl on a temporary directory,
 * listening only on a unix socket there, never the system's instance; run as the `postgres`
 * user when we are root, since PostgreSQL refuses root) and one libpq connection per client.
 * Each transaction is SERIALIZABLE: two SELECTs and one or two UPDATEs of the same hot rows
 * Meridian's clients touch, retried on serialization failures (40001) and detected deadlocks
 * (40P01) with the runner's backoff until the deadline. The server keeps PostgreSQL's
 * defaults (fsync and synchronous_commit on): every commit is durable, as Meridian's. */
#include <errno.h>
#include <glob.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/contention/bc.h"
#include "common/mr_util.h"
#include "launch/proc.h"

#define PG_PORT 5432 /* only names the socket file, in our own directory */

typedef struct pg_sys {
    char dir[512], data[600], log[600], bindir[512];
    char conninfo[700];
    bool as_postgres; /* root: server commands run as the postgres user */
    bool started;
} pg_sys;

struct bc_client {
    pg_sys *s;
    PGconn *conn;
    uint64_t rng;
};

/* Runs a server command (bindir/prog args...), as postgres when we are root. */
static int pg_cmd(pg_sys *s, const char *prog, const char *const *args, mr_err *err)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", s->bindir, prog);
    char *argv[24];
    int k = 0;
    if (s->as_postgres) {
        argv[k++] = "runuser";
        argv[k++] = "-u";
        argv[k++] = "postgres";
        argv[k++] = "--";
    }
    argv[k++] = path;
    for (int i = 0; args[i] && k < 23; i++)
        argv[k++] = (char *)args[i];
    argv[k] = NULL;
    char *out = NULL, *errs = NULL;
    int rc = proc_run(argv, 120000, &out, &errs);
    if (rc != 0) {
        mr_errf(err, MR_EIO, "%s exited %d: %.300s", prog, rc,
                errs && *errs ? errs
                : out         ? out
                              : "");
        rc = MR_EIO;
    }
    free(out);
    free(errs);
    return rc;
}

/* bindir given, else the directory of pg_ctl on PATH, else /usr/lib/postgresql/<newest>/bin. */
static int find_bindir(const char *given, char *buf, size_t len, mr_err *err)
{
    char probe[700];
    if (given) {
        snprintf(probe, sizeof probe, "%s/pg_ctl", given);
        if (access(probe, X_OK) != 0)
            return mr_errf(err, MR_EINVAL, "no pg_ctl in %s", given);
        snprintf(buf, len, "%s", given);
        return MR_OK;
    }
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) == 0 && g.gl_pathc > 0) {
        /* glob sorts: the last is the newest major version (same digit count here) */
        snprintf(buf, len, "%s", g.gl_pathv[g.gl_pathc - 1]);
        globfree(&g);
        *strrchr(buf, '/') = '\0';
        return MR_OK;
    }
    globfree(&g);
    const char *p = getenv("PATH");
    char paths[4096];
    snprintf(paths, sizeof paths, "%s", p ? p : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(paths, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(probe, sizeof probe, "%s/pg_ctl", d);
        if (access(probe, X_OK) == 0) {
            snprintf(buf, len, "%s", d);
            return MR_OK;
        }
    }
    return mr_errf(err, MR_EUNAVAIL,
                   "PostgreSQL's server programs (pg_ctl, initdb) were not found: install "
                   "postgresql or pass --pg-bin DIR");
}

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

/* splitmix64 */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
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
        int64_t delay = bc_backoff_ms(attempt, next_rand(&c->rng));
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
    int rc = find_bindir(bindir, s->bindir, sizeof s->bindir, err);
    if (rc != MR_OK) {
        free(s);
        return rc;
    }
    if (tmpdir_make(s->dir, sizeof s->dir, "meridian-contention-pg") != 0) {
        free(s);
        return mr_errf(err, MR_EIO, "cannot make a temporary directory: %s", strerror(errno));
    }
    snprintf(s->data, sizeof s->data, "%s/data", s->dir);
    snprintf(s->log, sizeof s->log, "%s/postgres.log", s->dir);
    s->as_postgres = geteuid() == 0;
    if (s->as_postgres) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw || chown(s->dir, pw->pw_uid, pw->pw_gid) != 0) {
            rc = mr_errf(err, MR_EUNAVAIL,
                         "running as root, PostgreSQL needs the postgres user to own %s: %s",
                         s->dir, pw ? strerror(errno) : "no such user");
            goto fail;
        }
    }
    const char *init[] = {"-D", s->data, "-A", "trust", "-U", "postgres", "-E", "UTF8", NULL};
    if ((rc = pg_cmd(s, "initdb", init, err)) != MR_OK)
        goto fail;
    char opts[800];
    snprintf(opts, sizeof opts, "-k %s -p %d -c listen_addresses='' -c max_connections=200", s->dir,
             PG_PORT);
    const char *start[] = {"-D", s->data, "-l", s->log, "-o", opts, "-w", "start", NULL};
    if ((rc = pg_cmd(s, "pg_ctl", start, err)) != MR_OK)
        goto fail;
    s->started = true;
    snprintf(s->conninfo, sizeof s->conninfo, "host=%s port=%d user=postgres dbname=postgres",
             s->dir, PG_PORT);
    *sys = (bc_system){.name = "postgres",
                       .prepare = pg_prepare_keys,
                       .open = pg_open,
                       .run = pg_run,
                       .close = pg_close,
                       .sys = s};
    return MR_OK;
fail:
    mr_err_wrap(err, "PostgreSQL in %s", s->dir);
    sys->sys = s;
    bc_pg_stop(sys);
    return rc;
}

/* pg_ctl could not stop our server: signal the postmaster of our data directory (its pid
 * file names it), fast shutdown first, then SIGKILL after 10 s. */
static void stop_by_pid(pg_sys *s)
{
    char path[700];
    snprintf(path, sizeof path, "%s/postmaster.pid", s->data);
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (!f)
        return;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 1)
        return;
    kill((pid_t)pid, SIGINT);
    for (int i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++)
        sleep_ms(100);
    if (kill((pid_t)pid, 0) == 0)
        kill((pid_t)pid, SIGKILL);
}

void bc_pg_stop(bc_system *sys)
{
    pg_sys *s = sys->sys;
    if (!s)
        return;
    if (s->started) {
        const char *stop[] = {"-D", s->data, "-m", "fast", "-w", "stop", NULL};
        mr_err err;
        if (pg_cmd(s, "pg_ctl", stop, &err) != MR_OK) {
            fprintf(stderr, "bench-contention: stopping PostgreSQL: %s\n", mr_err_msg(&err));
            stop_by_pid(s);
        }
    }
    tmpdir_remove(s->dir);
    free(s);
    sys->sys = NULL;
}
