/* One request from the command line to a node: a loop, a dial-only transport,
 * one reply (the wire protocol's Reply, proto/meridian.proto), a timeout. */
#ifndef CMD_RPC_H
#define CMD_RPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/mr_err.h"
#include "proto/pr.h"

typedef struct cmd_conn_opts {
    const char *host;      /* "host:port" (with host_list: "host:port[,host:port...]") */
    const char *certs_dir; /* ca.crt + client.<user>.crt/.key */
    const char *user;      /* default "root" */
    bool insecure;
    uint64_t timeout_ms;
    bool host_list; /* set by the caller: --host may list several nodes (libmeridian) */
} cmd_conn_opts;

/* Sends req (the request message of `type`, proto/pr_msg.h) to o->host; on success *reply is
 * the node's answer (a body or an Error), decoded into a: it lives until a is freed. */
int cmd_rpc(const cmd_conn_opts *o, uint8_t type, const ProtobufCMessage *req, pr_arena *a,
            const Meridian__Reply **reply, mr_err *err);

/* cmd_rpc to o->host, following NOT_LEADER hints to the named leader (up to three hops);
 * *reply is the last answer, which may still be NOT_LEADER when no other node was named. */
int cmd_rpc_leader(const cmd_conn_opts *o, uint8_t type, const ProtobufCMessage *req, pr_arena *a,
                   const Meridian__Reply **reply, mr_err *err);

/* A command's own option, parsed with the common ones: "--name VALUE". `set`
 * checks and stores the value and returns CMD_EXIT_OK, or the exit status of a
 * usage error it reported (cmd_usage_error). */
typedef struct cmd_extra_opt {
    const char *name; /* without the dashes */
    int (*set)(void *arg, const char *value);
} cmd_extra_opt;

/* Parses the common client options (--host --certs --user --insecure
 * --timeout, and --json when `json` is non-NULL) and the command's own
 * (`extra`, NULL-name terminated, may be NULL; `arg` goes to their setters).
 * Positional arguments are returned through pos/npos when those are non-NULL,
 * else refused. Returns 0, -1 after printing --help, or CMD_EXIT_USAGE. */
int cmd_client_opts(const char *sub, int argc, char **argv, cmd_conn_opts *o, bool *json,
                    void (*usage)(FILE *), char ***pos, int *npos, const cmd_extra_opt *extra,
                    void *arg);

#endif
