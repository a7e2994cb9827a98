/* meridian: the one binary. Dispatches to a subcommand (cmd_*.c). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

#define MERIDIAN_VERSION "0.1.0"

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("meridian %s\n", MERIDIAN_VERSION);
    return CMD_EXIT_OK;
}

/* Only subcommands that work are listed; later layers add theirs here. */
static const cmd_def commands[] = {
    {"demo", "start a local cluster with sample data and open the SQL shell", cmd_demo},
    {"sql", "the SQL shell: run statements interactively or from -e, -f, stdin", cmd_sql},
    {"start", "run a node", cmd_start},
    {"init", "bootstrap a new cluster once", cmd_init},
    {"status", "show nodes, clock and Paxos groups as a node sees them", cmd_status},
    {"kv", "key-value transactions and snapshot reads on one group's tablet", cmd_kv},
    {"split", "split the tablet holding a key at that key", cmd_split},
    {"propose", "propose a raw value to a Paxos group (debugging)", cmd_propose},
    {"clock", "show the TrueTime interval and the clock source behind it", cmd_clock},
    {"cert", "create the cluster CA, node and client certificates", cmd_cert},
    {"version", "print the version", cmd_version},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: meridian <command> [options]\n\n"
               "Meridian is a distributed transactional store with TrueTime timestamps.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'meridian <command> --help' for a command's options.\n");
}

int cmd_usage_error(const char *sub, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "meridian %s: ", sub);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'meridian %s --help'.\n", sub);
    return CMD_EXIT_USAGE;
}

int cmd_fail(const char *sub, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "meridian %s: ", sub);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CMD_EXIT_FAIL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CMD_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        usage(stdout);
        return CMD_EXIT_OK;
    }
    if (strcmp(sub, "--version") == 0)
        return cmd_version(0, NULL);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(sub, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "meridian: unknown command '%s'\nRun 'meridian --help' for the list.\n", sub);
    return CMD_EXIT_USAGE;
}
