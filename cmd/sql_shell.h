/* The SQL shell behind `meridian sql` and `meridian demo`: the interactive loop (libedit)
 * and scripts over one SQL session (sql/sql.h), in sql_shell.c; its options, parsed in
 * cmd_sql.c. */
#ifndef CMD_SQL_SHELL_H
#define CMD_SQL_SHELL_H

#include <signal.h>
#include <stdbool.h>

#include "cmd/sql_fmt.h"
#include "sql/sql.h"

#define SQLSH_MAX_INPUTS 32

/* What the shell runs and how it prints: -e SQL and -f FILE in the order given (none: the
 * terminal, or SQL on stdin), --format, --header/--no-header, --continue-on-error. */
typedef struct sqlsh_opts {
    sf_opts fmt;
    bool continue_on_error;
    int ninputs;
    struct {
        bool file;       /* -f FILE; else -e SQL */
        const char *arg; /* borrowed from argv */
    } inputs[SQLSH_MAX_INPUTS];
} sqlsh_opts;

/* The usage lines of the shell's own options, for the commands' --help. */
#define SQLSH_OPTIONS_HELP                                                                         \
    "  -e SQL               run SQL (statements and \\commands); may be repeated\n"                \
    "  -f FILE              run the statements of FILE ('-': stdin); may be repeated\n"            \
    "  --format F           " SF_FORMAT_NAMES " (default table)\n"                                 \
    "  --header, --no-header  column names first (default: table yes, csv and tsv no)\n"           \
    "  --continue-on-error  run every statement, as sqlite3 does; exit 1 at the end if any\n"      \
    "                       failed (default: stop at the first error)\n"

/* (cmd_sql.c) Takes the shell's options (above) out of argv, keeping argv[0] and every other
 * argument in order (*argc shrinks), into o (initialized here). Stops at "--". 0, or CMD_EXIT_USAGE
 * after reporting the error as `meridian SUB: ...`. Every -f FILE must be readable. */
int sqlsh_take_opts(const char *sub, int *argc, char **argv, sqlsh_opts *o);

/* Runs the shell over the session s: the inputs of o in order, else an interactive session
 * when stdin is a terminal, else the SQL read from stdin. Returns the exit status: 0; 1 an
 * SQL or transaction error; 3 a commit whose outcome is unknown; 4 the cluster unavailable
 * (by precedence 3, 4, 1 when several happened under --continue-on-error); at a terminal 0,
 * every error having been shown as it happened. Ends early, between statements or rows, once
 * *stop (may be NULL) becomes non-zero (a signal the caller caught), with 1 at least. */
int sqlsh_run(msql *s, const sqlsh_opts *o, const volatile sig_atomic_t *stop);

#endif
