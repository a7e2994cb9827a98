/* Shared pieces of the `meridian` command-line tool: one function per subcommand. */
#ifndef MR_CMD_H
#define MR_CMD_H

/* Exit statuses: 0 success, 1 failure at run time, 2 usage error, 3 a
 * transaction whose outcome is unknown (it may have committed), 4 the cluster
 * could not be reached (meridian sql). */
#define CMD_EXIT_OK          0
#define CMD_EXIT_FAIL        1
#define CMD_EXIT_USAGE       2
#define CMD_EXIT_UNKNOWN     3
#define CMD_EXIT_UNAVAILABLE 4

typedef struct cmd_def {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cmd_def;

int cmd_clock(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_propose(int argc, char **argv);
int cmd_kv(int argc, char **argv);
int cmd_split(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_sql(int argc, char **argv);
int cmd_demo(int argc, char **argv);

/* Prints "meridian SUB: message" and a hint to use --help; returns CMD_EXIT_USAGE. */
int cmd_usage_error(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "meridian SUB: message"; returns CMD_EXIT_FAIL. */
int cmd_fail(const char *sub, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
