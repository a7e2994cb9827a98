/* `meridian start`, `meridian init`, `meridian status`: run a node, bootstrap
 * a cluster, show what a node knows. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cmd/cmd.h"
#include "cmd/cmd_rpc.h"
#include "common/mr_codec.h"
#include "common/mr_log.h"
#include "common/mr_util.h"
#include "proto/pr_json.h"
#include "proto/pr_msg.h"
#include "tablet/node/nd.h"

/* ---- start ---- */

static void start_usage(FILE *f)
{
    fprintf(f,
            "usage: meridian start --data DIR --listen HOST:PORT --zone Z [--region R]\n"
            "                      [--advertise HOST:PORT] [--join HOST:PORT,...]\n"
            "                      [--certs DIR | --insecure] [--clock SPEC] [--lease DUR]\n"
            "                      [--http HOST:PORT] [--retention DUR] [--clock-cap DUR]\n"
            "                      [--split-size BYTES] [--decision-retention DUR]\n\n"
            "Runs a node. Every node of a new cluster gets the same --join list (all\n"
            "initial nodes); then `meridian init --host ONE` bootstraps the cluster once.\n"
            "Restarting with the same --data recovers every replica from disk.\n\n"
            "  --certs DIR   ca.crt, node.crt, node.key (see `meridian cert`); mutual TLS\n"
            "  --insecure    plain TCP, no authentication (local experiments only)\n"
            "  --clock SPEC  chrony:SOCKET, kernel or fixed:DURATION (default fixed:1ms)\n"
            "  --lease DUR   Paxos leader lease (default 2s)\n"
            "  --http H:P    serve /metrics (Prometheus text) and /healthz there\n"
            "  --retention D keep old versions for reads this far in the past (default 1h)\n"
            "  --clock-cap D a TrueTime bound above this makes the clock unhealthy (default 10ms)\n"
            "  --split-size B a tablet (data group) this big splits in two, between directories\n"
            "                (default 32MiB; B, KiB, MiB, GiB; at least 4KiB)\n"
            "  --decision-retention D  keep each transaction's outcome this long for status\n"
            "                questions (and until every participant acknowledged it), then\n"
            "                collect it (default 10m, at least 1s); later questions, and\n"
            "                questions about transactions started over D/2 ago, get\n"
            "                \"forgotten\"\n"
            "SIGTERM or SIGINT stops the node cleanly (leaders hand their leases over).\n");
}

typedef struct start_ctx {
    uv_loop_t *loop;
    nd_node *node;
    uv_signal_t sigterm, sigint;
    bool stopping;
} start_ctx;

static void on_node_closed(void *ud)
{
    start_ctx *c = ud;
    uv_close((uv_handle_t *)&c->sigterm, NULL);
    uv_close((uv_handle_t *)&c->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int sig)
{
    start_ctx *c = h->data;
    if (c->stopping)
        return;
    c->stopping = true;
    MR_INFO("node", "signal %d: shutting down", sig);
    nd_close(c->node, on_node_closed, c);
}

int cmd_start(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"advertise", required_argument, NULL, 'a'},
        {"zone", required_argument, NULL, 'z'},
        {"region", required_argument, NULL, 'r'},
        {"join", required_argument, NULL, 'j'},
        {"certs", required_argument, NULL, 'c'},
        {"insecure", no_argument, NULL, 'i'},
        {"clock", required_argument, NULL, 'k'},
        {"lease", required_argument, NULL, 'L'},
        {"http", required_argument, NULL, 'H'},
        {"retention", required_argument, NULL, 'R'},
        {"clock-cap", required_argument, NULL, 'C'},
        {"split-size", required_argument, NULL, 'S'},
        {"decision-retention", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    nd_config cfg = {0};
    optind = 1;
    opterr = 0;
    int ch;
    char host[256];
    int port;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            cfg.data_dir = optarg;
            break;
        case 'l':
            if (mr_parse_hostport(optarg, host, sizeof host, &port) != 0)
                return cmd_usage_error("start", "--listen '%s' is not HOST:PORT", optarg);
            cfg.listen = optarg;
            break;
        case 'a':
            if (mr_parse_hostport(optarg, host, sizeof host, &port) != 0)
                return cmd_usage_error("start", "--advertise '%s' is not HOST:PORT", optarg);
            cfg.advertise = optarg;
            break;
        case 'z':
            cfg.zone = optarg;
            break;
        case 'r':
            cfg.region = optarg;
            break;
        case 'j':
            cfg.join = optarg;
            break;
        case 'c':
            cfg.certs_dir = optarg;
            break;
        case 'i':
            cfg.insecure = true;
            break;
        case 'k':
            cfg.clock_spec = optarg;
            break;
        case 'H':
            if (mr_parse_hostport(optarg, host, sizeof host, &port) != 0)
                return cmd_usage_error("start", "--http '%s' is not HOST:PORT", optarg);
            cfg.http = optarg;
            break;
        case 'C':
            if (mr_parse_duration(optarg, &cfg.clock_cap_ns) != 0 || cfg.clock_cap_ns <= 0)
                return cmd_usage_error("start", "--clock-cap '%s' is not a positive duration",
                                       optarg);
            break;
        case 'S':
            if (mr_parse_size(optarg, &cfg.split_bytes) != 0 || cfg.split_bytes < 4096)
                return cmd_usage_error("start", "--split-size '%s' is not a size of at least 4KiB",
                                       optarg);
            break;
        case 'R':
            if (mr_parse_duration(optarg, &cfg.retention_ns) != 0 || cfg.retention_ns < MR_NS_PER_S)
                return cmd_usage_error("start", "--retention '%s' is not a duration of at least 1s",
                                       optarg);
            break;
        case 'D':
            if (mr_parse_duration(optarg, &cfg.decision_retention_ns) != 0 ||
                cfg.decision_retention_ns < MR_NS_PER_S)
                return cmd_usage_error(
                    "start", "--decision-retention '%s' is not a duration of at least 1s", optarg);
            break;
        case 'L':
            if (mr_parse_duration(optarg, &cfg.lease_ns) != 0 || cfg.lease_ns < 100 * MR_NS_PER_MS)
                return cmd_usage_error("start", "--lease '%s' is not a duration of at least 100ms",
                                       optarg);
            break;
        case 'h':
            start_usage(stdout);
            return CMD_EXIT_OK;
        case ':':
            return cmd_usage_error("start", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cmd_usage_error("start", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cmd_usage_error("start", "unexpected argument '%s'", argv[optind]);
    if (!cfg.data_dir || !cfg.listen || !cfg.zone)
        return cmd_usage_error("start", "--data, --listen and --zone are required");
    if (!cfg.insecure && !cfg.certs_dir)
        return cmd_usage_error("start", "give --certs DIR, or --insecure for local experiments");
    if (cfg.insecure && cfg.certs_dir)
        return cmd_usage_error("start", "--certs and --insecure exclude each other");
    if (cfg.join) {
        char *list = strdup(cfg.join), *save = NULL;
        for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save))
            if (mr_parse_hostport(a, host, sizeof host, &port) != 0) {
                int rc = cmd_usage_error("start", "--join entry '%s' is not HOST:PORT", a);
                free(list);
                return rc;
            }
        free(list);
    }
    if (cfg.insecure)
        MR_WARN("node", "--insecure: no TLS, no authentication; for local experiments only");
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    start_ctx c = {.loop = &loop};
    mr_err err;
    mr_err_clear(&err);
    if (nd_open(&loop, &cfg, &c.node, &err) != MR_OK) {
        uv_run(&loop, UV_RUN_DEFAULT); /* a transport nd_open started closes itself */
        uv_loop_close(&loop);
        return cmd_fail("start", "%s", mr_err_msg(&err));
    }
    MR_INFO("node", "listening addr=%s port=%d zone=%s data=%s", cfg.listen, nd_port(c.node),
            cfg.zone, cfg.data_dir);
    uv_signal_init(&loop, &c.sigterm);
    uv_signal_init(&loop, &c.sigint);
    c.sigterm.data = c.sigint.data = &c;
    uv_signal_start(&c.sigterm, on_signal, SIGTERM);
    uv_signal_start(&c.sigint, on_signal, SIGINT);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!c.stopping) {
        /* uv_stop from a fatal storage error. */
        c.stopping = true;
        nd_close(c.node, on_node_closed, &c);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return cmd_fail("start", "stopped after a fatal error (see the log)");
    }
    uv_loop_close(&loop);
    return CMD_EXIT_OK;
}

/* ---- client commands: init, status ---- */

#define CMD_MAX_EXTRA 8

int cmd_client_opts(const char *sub, int argc, char **argv, cmd_conn_opts *o, bool *json,
                    void (*usage)(FILE *), char ***pos, int *npos, const cmd_extra_opt *extra,
                    void *arg)
{
    /* Connection chatter is for the node's log, not for a one-shot command. */
    if (!getenv("MERIDIAN_LOG"))
        mr_log_set_level(MR_LOG_WARN);
    static const struct option common[] = {
        {"host", required_argument, NULL, 'H'}, {"certs", required_argument, NULL, 'c'},
        {"user", required_argument, NULL, 'u'}, {"insecure", no_argument, NULL, 'i'},
        {"json", no_argument, NULL, 'j'},       {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
    };
    enum { NCOMMON = sizeof common / sizeof common[0] };
    struct option opts[NCOMMON + CMD_MAX_EXTRA + 1];
    memcpy(opts, common, sizeof common);
    int nopts = NCOMMON;
    for (int k = 0; extra && extra[k].name && k < CMD_MAX_EXTRA; k++)
        opts[nopts++] = (struct option){extra[k].name, required_argument, NULL, 1000 + k};
    opts[nopts] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    int ch;
    char host[256];
    int port;
    int64_t ns;
    o->host = "127.0.0.1:7100";
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'H':
            for (const char *h = optarg;; h++) {
                size_t len = strcspn(h, ",");
                char one[256];
                snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : 0), h);
                if (mr_parse_hostport(one, host, sizeof host, &port) != 0)
                    return cmd_usage_error(sub, "--host '%s' is not HOST:PORT%s", optarg,
                                           o->host_list ? "[,HOST:PORT...]" : "");
                h += len;
                if (!*h || !o->host_list)
                    break;
            }
            if (!o->host_list && strchr(optarg, ','))
                return cmd_usage_error(sub, "--host '%s' is not HOST:PORT", optarg);
            o->host = optarg;
            break;
        case 'c':
            o->certs_dir = optarg;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'i':
            o->insecure = true;
            break;
        case 'j':
            if (!json)
                return cmd_usage_error(sub, "unknown option '--json'");
            *json = true;
            break;
        case 't':
            if (mr_parse_duration(optarg, &ns) != 0 || ns < MR_NS_PER_MS)
                return cmd_usage_error(sub, "--timeout '%s' is not a duration", optarg);
            o->timeout_ms = (uint64_t)(ns / MR_NS_PER_MS);
            break;
        case 'h':
            usage(stdout);
            return -1;
        case ':':
            if (optopt >= 1000)
                return cmd_usage_error(sub, "--%s needs a value", extra[optopt - 1000].name);
            return cmd_usage_error(sub, "option '%s' needs a value", argv[optind - 1]);
        default:
            if (ch >= 1000 && ch < 1000 + CMD_MAX_EXTRA) {
                int rc = extra[ch - 1000].set(arg, optarg);
                if (rc != CMD_EXIT_OK)
                    return rc;
                break;
            }
            return cmd_usage_error(sub, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc && !pos)
        return cmd_usage_error(sub, "unexpected argument '%s'", argv[optind]);
    if (pos) {
        *pos = argv + optind;
        *npos = argc - optind;
    }
    if (!o->insecure && !o->certs_dir)
        return cmd_usage_error(sub, "give --certs DIR, or --insecure");
    return CMD_EXIT_OK;
}

static void init_usage(FILE *f)
{
    fprintf(f, "usage: meridian init [--host HOST:PORT] [--certs DIR [--user U] | --insecure]\n"
               "                     [--data-groups N] [--replicas R] [--split-at K1,K2,...]\n\n"
               "Bootstraps a new cluster once, through the node at --host (default\n"
               "127.0.0.1:7100): every node in its --join list becomes a member. Refused\n"
               "when any of them already belongs to a cluster. --data-groups N (default 1)\n"
               "creates N data groups of R replicas (default 3) spread over the nodes, besides\n"
               "the meta group, which holds the keys below \"\\x02\" (the cluster's records\n"
               "and the SQL catalog). Data group i holds the keys from the (i-1)th split key\n"
               "(the first from \"\\x02\") up to the ith: --split-at gives the N-1 boundaries\n"
               "(increasing, above \"\\x02\"); by default they spread evenly over the first\n"
               "character '0'..'z'.\n");
}

typedef struct init_args {
    long long groups, replicas;
    const char *split;
} init_args;

static int init_set_groups(void *arg, const char *v)
{
    if (mr_parse_int(v, 1, 5000, &((init_args *)arg)->groups) != 0)
        return cmd_usage_error("init", "--data-groups needs an integer in 1..5000");
    return CMD_EXIT_OK;
}

static int init_set_replicas(void *arg, const char *v)
{
    if (mr_parse_int(v, 1, 9, &((init_args *)arg)->replicas) != 0)
        return cmd_usage_error("init", "--replicas needs an integer in 1..9");
    return CMD_EXIT_OK;
}

static int init_set_split(void *arg, const char *v)
{
    if (!*v)
        return cmd_usage_error("init", "--split-at needs a comma-separated key list");
    ((init_args *)arg)->split = v;
    return CMD_EXIT_OK;
}

int cmd_init(int argc, char **argv)
{
    init_args ia = {.groups = 1, .replicas = 3};
    static const cmd_extra_opt extra[] = {{"data-groups", init_set_groups},
                                          {"replicas", init_set_replicas},
                                          {"split-at", init_set_split},
                                          {NULL, NULL}};
    cmd_conn_opts o = {0};
    int rc = cmd_client_opts("init", argc, argv, &o, NULL, init_usage, NULL, NULL, extra, &ia);
    long long groups = ia.groups, replicas = ia.replicas;
    const char *split = ia.split;
    if (rc)
        return rc < 0 ? CMD_EXIT_OK : rc;
    if (!o.timeout_ms)
        o.timeout_ms = 30000;
    mr_err err;
    mr_err_clear(&err);
    Meridian__InitRequest req = MERIDIAN__INIT_REQUEST__INIT;
    req.has_data_groups = req.has_replicas = true;
    req.data_groups = (uint32_t)groups;
    req.replicas = (uint32_t)replicas;
    char *copy = split ? strdup(split) : NULL;
    ProtobufCBinaryData keys[5000];
    if (copy) {
        char *save = NULL;
        for (char *k = strtok_r(copy, ",", &save); k && req.n_split_at < 5000;
             k = strtok_r(NULL, ",", &save))
            keys[req.n_split_at++] = (ProtobufCBinaryData){.len = strlen(k), .data = (uint8_t *)k};
        req.split_at = keys;
    }
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__Reply *reply = NULL;
    int rrc = cmd_rpc(&o, ND_MSG_INIT, &req.base, &a, &reply, &err);
    free(copy);
    if (rrc != MR_OK) {
        pr_arena_free(&a);
        return cmd_fail("init", "%s", mr_err_msg(&err));
    }
    bool ok = reply->body_case == MERIDIAN__REPLY__BODY_INIT;
    if (ok)
        printf("cluster %s initialized with %zu node(s)\n", reply->init->cluster,
               reply->init->n_nodes);
    else
        fprintf(stderr, "meridian init: %s: %s\n", pr_error_name(pr_reply_code(reply)),
                pr_reply_message(reply));
    pr_arena_free(&a);
    return ok ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

static void status_usage(FILE *f)
{
    fprintf(f, "usage: meridian status [--host HOST:PORT] [--certs DIR [--user U] | --insecure] "
               "[--json]\n\n"
               "Shows the nodes (address, zone, region, up/down), the node's clock and the\n"
               "groups it replicates (replicas, leader, lease left, last applied slot).\n");
}

int cmd_status(int argc, char **argv)
{
    cmd_conn_opts o = {0};
    bool json = false;
    int rc = cmd_client_opts("status", argc, argv, &o, &json, status_usage, NULL, NULL, NULL, NULL);
    if (rc)
        return rc < 0 ? CMD_EXIT_OK : rc;
    mr_err err;
    mr_err_clear(&err);
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__Reply *reply = NULL;
    Meridian__Empty empty = MERIDIAN__EMPTY__INIT;
    if (cmd_rpc(&o, ND_MSG_STATUS, &empty.base, &a, &reply, &err) != MR_OK) {
        pr_arena_free(&a);
        return cmd_fail("status", "%s", mr_err_msg(&err));
    }
    if (reply->body_case != MERIDIAN__REPLY__BODY_STATUS || !reply->status->document) {
        int code = cmd_fail("status", "%s: %s", pr_error_name(pr_reply_code(reply)),
                            reply->error ? pr_reply_message(reply) : "no status document");
        pr_arena_free(&a);
        return code;
    }
    /* The status document: JSON for a person (the node's, see nd_status.c). */
    json_error_t je;
    json_t *r = json_loads(reply->status->document, 0, &je);
    if (!r) {
        int code = cmd_fail("status", "the status document is not JSON: %s", je.text);
        pr_arena_free(&a);
        return code;
    }
    if (json) {
        puts(reply->status->document);
        pr_arena_free(&a);
        json_decref(r);
        return CMD_EXIT_OK;
    }
    pr_arena_free(&a);
    if (!json_is_true(json_object_get(r, "initialized"))) {
        printf("node %s is not part of a cluster yet (run meridian init)\n",
               json_string_value(json_object_get(r, "addr")));
        json_decref(r);
        return CMD_EXIT_OK;
    }
    json_t *sw = json_object_get(r, "test_switches");
    if (json_array_size(sw) > 0) {
        fputs("WARNING: this node runs with test switches on (unsafe, for tests only):", stdout);
        size_t k;
        json_t *name;
        json_array_foreach(sw, k, name)
            printf(" %s", json_string_value(name) ? json_string_value(name) : "?");
        fputs("\n\n", stdout);
    }
    json_t *clk = json_object_get(r, "clock");
    char eps[32];
    printf("cluster %s, node %lld at %s, clock %s (epsilon %s)\n\n",
           json_string_value(json_object_get(r, "cluster")),
           json_integer_value(json_object_get(r, "self")),
           json_string_value(json_object_get(r, "addr")),
           json_string_value(json_object_get(clk, "status")),
           mr_format_duration(json_integer_value(json_object_get(clk, "epsilon_ns")), eps,
                              sizeof eps));
    printf("%-4s %-22s %-12s %-10s %-5s %-13s %s\n", "node", "address", "zone", "region", "up",
           "clock", "epsilon");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "nodes"), i, v)
    {
        char eps2[32];
        printf("%-4lld %-22s %-12s %-10s %-5s %-13s %s\n",
               json_integer_value(json_object_get(v, "id")),
               json_string_value(json_object_get(v, "addr")),
               json_string_value(json_object_get(v, "zone")),
               json_string_value(json_object_get(v, "region")),
               json_is_true(json_object_get(v, "up")) ? "up" : "DOWN",
               json_string_value(json_object_get(v, "clock")),
               mr_format_duration(json_integer_value(json_object_get(v, "epsilon_ns")), eps2,
                                  sizeof eps2));
    }
    printf("\n%-6s %-12s %-8s %-12s %-10s %-9s %s\n", "group", "state", "leader", "lease left",
           "applied", "prepared", "range");
    json_array_foreach(json_object_get(r, "groups"), i, v)
    {
        char lease[32], range[300];
        const char *start = json_string_value(json_object_get(v, "start"));
        const char *end = json_string_value(json_object_get(v, "end"));
        bool meta = json_integer_value(json_object_get(v, "id")) == 1;
        if (start && end)
            snprintf(range, sizeof range, "%s[\"%.120s\", %s%.120s%s)", meta ? "meta " : "", start,
                     *end ? "\"" : "", *end ? end : "+inf", *end ? "\"" : "");
        else
            snprintf(range, sizeof range, "%s", meta ? "meta" : "-");
        printf("%-6lld %-12s %-8lld %-12s %-10lld %-9lld %s\n",
               json_integer_value(json_object_get(v, "id")),
               json_string_value(json_object_get(v, "state")),
               json_integer_value(json_object_get(v, "leader")),
               mr_format_duration(json_integer_value(json_object_get(v, "lease_left_ns")), lease,
                                  sizeof lease),
               json_integer_value(json_object_get(v, "applied")),
               json_integer_value(json_object_get(v, "prepared")), range);
    }
    json_decref(r);
    return CMD_EXIT_OK;
}

/* ---- propose (debugging) ---- */

static void propose_usage(FILE *f)
{
    fprintf(f, "usage: meridian propose [--host HOST:PORT] [--certs DIR | --insecure]\n"
               "                        [--group N] VALUE\n\n"
               "Proposes VALUE to a Paxos group through the node at --host (which must lead\n"
               "it; the answer names the leader otherwise) and prints the slot and timestamp\n"
               "once the value is chosen and applied there. A debugging tool for the\n"
               "replication layer; transactions arrive with `meridian kv`.\n");
}

static int propose_set_group(void *arg, const char *v)
{
    if (mr_parse_int(v, 1, INT64_MAX, (long long *)arg) != 0)
        return cmd_usage_error("propose", "--group needs a positive integer");
    return CMD_EXIT_OK;
}

int cmd_propose(int argc, char **argv)
{
    long long group = 2;
    static const cmd_extra_opt extra[] = {{"group", propose_set_group}, {NULL, NULL}};
    cmd_conn_opts o = {0};
    bool json = false;
    char **pos = NULL;
    int npos = 0;
    int rc = cmd_client_opts("propose", argc, argv, &o, &json, propose_usage, &pos, &npos, extra,
                             &group);
    if (rc)
        return rc < 0 ? CMD_EXIT_OK : rc;
    if (npos != 1)
        return cmd_usage_error("propose",
                               npos ? "give one VALUE to propose" : "give a VALUE to propose");
    const char *value = pos[0];
    Meridian__ProposeRequest req = MERIDIAN__PROPOSE_REQUEST__INIT;
    req.group = (uint64_t)group;
    req.data = (ProtobufCBinaryData){.len = strlen(value), .data = (uint8_t *)(uintptr_t)value};
    mr_err err;
    mr_err_clear(&err);
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__Reply *r = NULL;
    rc = cmd_rpc(&o, ND_MSG_PROPOSE, &req.base, &a, &r, &err);
    if (rc != MR_OK) {
        pr_arena_free(&a);
        return cmd_fail("propose", "%s", mr_err_msg(&err));
    }
    bool ok = r->body_case == MERIDIAN__REPLY__BODY_PROPOSE;
    if (json) {
        json_t *v = pr_reply_view(r);
        char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(v);
    } else if (ok) {
        printf("group %lld slot %llu ts %lld\n", group, (unsigned long long)r->propose->slot,
               (long long)r->propose->ts);
    } else {
        const char *leader = r->error ? r->error->leader : NULL;
        fprintf(stderr, "meridian propose: %s: %s%s%s\n", pr_error_name(pr_reply_code(r)),
                pr_reply_message(r), leader && *leader ? "; leader is " : "", leader ? leader : "");
    }
    pr_arena_free(&a);
    return ok ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}
