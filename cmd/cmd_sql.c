/* `meridian sql`: the SQL shell's command line. Options (shared with `meridian demo`), the
 * connection (libmeridian) and the session (sql/sql.h); the shell itself is sql_shell.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/cmd_rpc.h"
#include "cmd/sql_shell.h"
#include "meridian.h"

/* ---- options ---- */

static bool opt_is(const char *a, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '\0') {
        *value = NULL;
        return true;
    }
    if (a[n] == '=' && name[1] == '-') {
        *value = a + n + 1;
        return true;
    }
    if (name[1] != '-' && a[n]) { /* -eSQL */
        *value = a + n;
        return true;
    }
    return false;
}

int sqlsh_take_opts(const char *sub, int *argc, char **argv, sqlsh_opts *o)
{
    memset(o, 0, sizeof *o);
    o->fmt.format = SF_TABLE;
    o->fmt.header = -1;
    int kept = 1, i = 1;
    for (; i < *argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "--") == 0)
            break;
        bool e = opt_is(a, "-e", &v), f = !e && opt_is(a, "-f", &v);
        if (e || f || opt_is(a, "--format", &v)) {
            if (!v) {
                if (i + 1 >= *argc)
                    return cmd_usage_error(sub, "%s needs a value", a);
                v = argv[++i];
            }
            if (e || f) {
                if (o->ninputs == SQLSH_MAX_INPUTS)
                    return cmd_usage_error(sub, "at most %d -e and -f", SQLSH_MAX_INPUTS);
                if (f && strcmp(v, "-") != 0 && access(v, R_OK) != 0)
                    return cmd_usage_error(sub, "cannot read -f %s: %s", v, strerror(errno));
                o->inputs[o->ninputs].file = f;
                o->inputs[o->ninputs++].arg = v;
            } else if (sf_format_parse(v, &o->fmt.format) != 0) {
                return cmd_usage_error(sub, "--format '%s': use one of %s", v, SF_FORMAT_NAMES);
            }
        } else if (strcmp(a, "--header") == 0) {
            o->fmt.header = 1;
        } else if (strcmp(a, "--no-header") == 0) {
            o->fmt.header = 0;
        } else if (strcmp(a, "--continue-on-error") == 0) {
            o->continue_on_error = true;
        } else {
            argv[kept++] = argv[i];
        }
    }
    for (; i < *argc; i++)
        argv[kept++] = argv[i];
    argv[kept] = NULL;
    *argc = kept;
    return 0;
}

/* ---- meridian sql ---- */

static void sql_usage(FILE *f)
{
    fprintf(f,
            "usage: meridian sql --host H[,H...] (--certs DIR [--user U] | --insecure)\n"
            "                    [-e SQL] [-f FILE] [--format " SF_FORMAT_NAMES "]\n"
            "                    [--header | --no-header] [--continue-on-error] [--timeout DUR]\n\n"
            "The SQL shell. With -e or -f (or SQL on stdin) it runs the statements and\n"
            "prints their results on stdout, errors on stderr as\n"
            "'Error: near line N: message'; on a terminal it reads statements with line\n"
            "editing, history (~/.meridian_history) and Tab completion.\n\n" SQLSH_OPTIONS_HELP
            "  --host H[,H...]      nodes to reach the cluster through (default 127.0.0.1:7100)\n"
            "  --certs DIR          ca.crt and client.<user>.crt/.key; --insecure: plain TCP\n"
            "  --timeout DUR        one request's timeout (default 10s)\n\n"
            "--format csv prints like 'sqlite3 -csv': no header unless --header, NULL as an\n"
            "empty field, the empty string as \"\", reals as SQLite prints them.\n\n"
            "Exit status: 0 success; 1 an SQL or transaction error; 2 bad usage; 3 a commit\n"
            "whose outcome is unknown (the transaction, named by its id, may have\n"
            "committed); 4 the cluster could not be reached.\n");
}

int cmd_sql(int argc, char **argv)
{
    sqlsh_opts so;
    int rc = sqlsh_take_opts("sql", &argc, argv, &so);
    if (rc)
        return rc;
    cmd_conn_opts o = {.host_list = true};
    rc = cmd_client_opts("sql", argc, argv, &o, NULL, sql_usage, NULL, NULL, NULL, NULL);
    if (rc)
        return rc < 0 ? CMD_EXIT_OK : rc;
    meridian_options mo = {.addrs = o.host,
                           .certs_dir = o.insecure ? NULL : o.certs_dir,
                           .user = o.user,
                           .insecure = o.insecure,
                           .timeout_ms = (int64_t)o.timeout_ms};
    meridian *db = NULL;
    rc = meridian_open(&mo, &db);
    if (rc != MERIDIAN_OK) {
        const char *msg = db ? meridian_errmsg(db) : "out of memory";
        int st = rc == MERIDIAN_INVALID ? CMD_EXIT_USAGE
                 : rc == MERIDIAN_NOMEM ? CMD_EXIT_FAIL
                                        : CMD_EXIT_UNAVAILABLE;
        if (st == CMD_EXIT_UNAVAILABLE)
            fprintf(stderr, "meridian sql: cannot reach the cluster at %s: %s\n", o.host, msg);
        else
            fprintf(stderr, "meridian sql: %s\n", msg);
        meridian_close(db);
        return st;
    }
    msql *s = NULL;
    rc = msql_open(db, &s);
    if (rc != MSQL_OK) { /* s, when set, says why */
        fprintf(stderr, "meridian sql: cannot open a session: %s\n",
                s ? msql_errmsg(s) : "out of memory");
        msql_close(s);
        meridian_close(db);
        return rc == MSQL_UNAVAILABLE ? CMD_EXIT_UNAVAILABLE : CMD_EXIT_FAIL;
    }
    rc = sqlsh_run(s, &so, NULL);
    msql_close(s);
    meridian_close(db);
    return rc;
}
