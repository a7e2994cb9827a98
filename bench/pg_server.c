/* bench/pg_server: a private PostgreSQL server (pg_server.h). Moved here from
 * bench/contention/bc_pg.c so bench-contention and bench-sql share one launcher. */
#include <errno.h>
#include <glob.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/pg_server.h"
#include "launch/proc.h"

#define PG_PORT 5432 /* only names the socket file, in our own directory */

/* Runs a server command (bindir/prog args...), as postgres when we are root. */
static int pg_cmd(pg_server *s, const char *prog, const char *const *args, mr_err *err)
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

int pg_server_start(pg_server *s, const char *bindir, const char *prefix, int max_connections,
                    const char *who, mr_err *err)
{
    memset(s, 0, sizeof *s);
    snprintf(s->who, sizeof s->who, "%s", who ? who : "bench");
    int rc = find_bindir(bindir, s->bindir, sizeof s->bindir, err);
    if (rc != MR_OK)
        return rc;
    if (tmpdir_make(s->dir, sizeof s->dir, prefix) != 0)
        return mr_errf(err, MR_EIO, "cannot make a temporary directory: %s", strerror(errno));
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
    snprintf(opts, sizeof opts, "-k %s -p %d -c listen_addresses='' -c max_connections=%d", s->dir,
             PG_PORT, max_connections > 0 ? max_connections : 200);
    const char *start[] = {"-D", s->data, "-l", s->log, "-o", opts, "-w", "start", NULL};
    if ((rc = pg_cmd(s, "pg_ctl", start, err)) != MR_OK)
        goto fail;
    s->started = true;
    snprintf(s->conninfo, sizeof s->conninfo, "host=%s port=%d user=postgres dbname=postgres",
             s->dir, PG_PORT);
    return MR_OK;
fail:
    mr_err_wrap(err, "PostgreSQL in %s", s->dir);
    pg_server_stop(s);
    return rc;
}

/* pg_ctl could not stop our server: signal the postmaster of our data directory (its pid
 * file names it), fast shutdown first, then SIGKILL after 10 s. */
static void stop_by_pid(pg_server *s)
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

void pg_server_stop(pg_server *s)
{
    if (!s->dir[0])
        return;
    if (s->started) {
        const char *stop[] = {"-D", s->data, "-m", "fast", "-w", "stop", NULL};
        mr_err err;
        if (pg_cmd(s, "pg_ctl", stop, &err) != MR_OK) {
            fprintf(stderr, "%s: stopping PostgreSQL: %s\n", s->who, mr_err_msg(&err));
            stop_by_pid(s);
        }
    }
    tmpdir_remove(s->dir);
    s->dir[0] = '\0';
    s->started = false;
}
