/* Benchmark: replicated proposals per second and latency through a real
 * three-node cluster on loopback (separate `meridian start` processes, mutual
 * TLS or --insecure), one group or spread over both groups, with a pipelined
 * client holding `--concurrency` proposals in flight.
 *
 * Usage: bench-node --meridian PATH [--proposals N] [--concurrency C] [--insecure]
 *                   [--groups N] [--size BYTES]
 * --groups N creates N data groups (three replicas each, spread over the nodes)
 * and sends the proposals round-robin to their leaders.
 *
 * Store growth (txn and 2pc workloads): --keys K writes among K keys per group
 * (default 100000), --retention and --decision-retention go to every node, and
 * --sample N prints node 1's view of the data groups' stores every N
 * transactions (decision rows, system-key versions, all versions, SQLite pages
 * in use and in the file; the loop stops while it asks), then again after
 * --settle SECONDS without load. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mr_codec.h"
#include "common/mr_log.h"
#include "common/mr_util.h"
#include "net/transport.h"
#include "proto/pr_msg.h"
#include "tablet/node/nd.h"
#include "launch/cluster.h"

#define MAXNODES 5

static lc_cluster cl; /* the nodes, started by the launcher */
static const char *addrs[MAXNODES];
static int nnodes = 3;
static unsigned nkeys = 100000;

typedef enum { W_PROPOSE, W_TXN, W_SNAPREAD, W_2PC } workload_kind;

/* Node i's `status` (caller json_decrefs), or NULL. */
static json_t *node_status(int i)
{
    json_t *o = NULL;
    mr_err err;
    lc_rpc(cl.tls, addrs[i], ND_MSG_STATUS, "{}", 5000, &o, &err);
    return o;
}

/* ---- the load client ---- */

typedef struct load {
    uv_loop_t *loop;
    net_transport *tr;
    const char **leader; /* by group id; data groups are 2..groups+1 */
    int groups;
    long total, sent, done, failed;
    int inflight, concurrency;
    size_t size;
    int64_t *lat;
    int64_t *wait; /* txn: commit wait after apply, per commit */
    long nwait;
    uint8_t *payload;
    workload_kind kind;
    const char *replica[MAXNODES]; /* snapread: group 2's replicas */
    int nrep;
    unsigned seed;
    int64_t staleness_ns; /* snapread: bounded staleness instead of strong */
    int participants;     /* 2pc: groups per transaction */
} load;

typedef struct req {
    load *l;
    int64_t start;
    bool counts; /* 2pc: only the coordinator's answer is the transaction's */
} req;

static void issue(load *l);

static void on_resp(net_transport *t, int status, const mr_err *err, const net_message *resp,
                    void *ud)
{
    req *r = ud;
    load *l = r->l;
    if (!r->counts) {
        free(r);
        return;
    }
    bool ok = false;
    if (status == MR_OK) {
        pr_arena a;
        pr_arena_init(&a);
        mr_err derr;
        const Meridian__Reply *o = pr_reply_decode(&a, resp->payload, resp->len, &derr);
        ok = o && !o->error;
        if (ok && o->body_case == MERIDIAN__REPLY__BODY_COMMIT && o->commit->has_commit_wait_ns)
            l->wait[l->nwait++] = o->commit->commit_wait_ns;
        if (!ok && l->failed == 0)
            fprintf(stderr, "first failure: %s: %s\n",
                    o ? pr_error_name(pr_reply_code(o)) : "undecodable reply",
                    o ? pr_reply_message(o) : mr_err_msg(&derr));
        pr_arena_free(&a);
    } else if (l->failed == 0) {
        fprintf(stderr, "first failure: %s\n", mr_err_msg(err));
    }
    if (ok)
        l->lat[l->done++] = mr_monotonic_ns() - r->start;
    else
        l->failed++;
    l->inflight--;
    free(r);
    issue(l);
}

/* One transaction writing a key in each of `participants` groups (from a
 * rotating first one, its coordinator), the commit sent to every
 * participant's leader at once as a client does. One participant: a plain
 * single-group commit. 0 or -1. */
static int issue_2pc(load *l, req *coord_req)
{
    int first = (int)(l->sent % l->groups);
    uint64_t parts[32]; /* --participants is at most 32 */
    for (int k = 0; k < l->participants; k++)
        parts[k] = (uint64_t)(2 + (first + k) % l->groups);
    int64_t prio = mr_realtime_ns();
    int rc = 0;
    for (int k = 0; k < l->participants && rc == 0; k++) {
        int g = 2 + (first + k) % l->groups;
        char key[32];
        snprintf(key, sizeof key, "g%04d/k%u", g, rand_r(&l->seed) % nkeys);
        Meridian__Write w = MERIDIAN__WRITE__INIT;
        Meridian__Write *pw = &w;
        w.key = (ProtobufCBinaryData){.len = strlen(key), .data = (uint8_t *)key};
        w.has_value = true;
        w.value =
            (ProtobufCBinaryData){.len = l->size < 200 ? l->size : 200, .data = l->payload + 8};
        Meridian__TxnRequest o = MERIDIAN__TXN_REQUEST__INIT;
        o.group = (uint64_t)g;
        o.txn = (uint64_t)l->sent + 1000;
        o.has_prio = true;
        o.prio = prio;
        o.op = MERIDIAN__TXN_REQUEST__OP__COMMIT;
        o.has_nreads = true;
        o.n_writes = 1;
        o.writes = &pw;
        if (l->participants > 1) {
            o.has_coordinator = true;
            o.coordinator = (uint64_t)(2 + first);
            o.n_participants = (size_t)l->participants;
            o.participants = parts;
        }
        uint8_t *buf;
        size_t len;
        mr_err err;
        if (pr_encode(&o.base, 0, &buf, &len, &err) != MR_OK)
            return -1;
        req *r = k == 0 ? coord_req : calloc(1, sizeof *r);
        r->l = l;
        r->start = coord_req->start;
        r->counts = k == 0;
        if (net_transport_request(l->tr, l->leader[g], ND_MSG_TXN, buf, (uint32_t)len, 30000,
                                  on_resp, r, NULL, &err) != MR_OK) {
            if (k > 0)
                free(r);
            rc = -1;
        }
        free(buf);
    }
    return rc;
}

static void issue(load *l)
{
    while (l->inflight < l->concurrency && l->sent < l->total) {
        if (l->kind == W_2PC) {
            req *r = calloc(1, sizeof *r);
            r->start = mr_monotonic_ns();
            if (issue_2pc(l, r) != 0) {
                l->failed++; /* the coordinator request (if sent) answers too late to count */
                l->sent++;
                return;
            }
            l->sent++;
            l->inflight++;
            continue;
        }
        int g = 2 + (int)(l->sent % l->groups);
        uint64_t gid = (uint64_t)g;
        const char *to = l->leader[g];
        uint8_t type = ND_MSG_PROPOSE;
        char key[32];
        Meridian__Write w = MERIDIAN__WRITE__INIT;
        Meridian__Write *pw = &w;
        Meridian__ProposeRequest p = MERIDIAN__PROPOSE_REQUEST__INIT;
        Meridian__TxnRequest t = MERIDIAN__TXN_REQUEST__INIT;
        Meridian__SnapReadRequest sr = MERIDIAN__SNAP_READ_REQUEST__INIT;
        const ProtobufCMessage *m = &p.base;
        if (l->kind == W_PROPOSE) {
            p.group = gid;
            p.data = (ProtobufCBinaryData){.len = l->size, .data = l->payload + 8};
        } else if (l->kind == W_TXN) {
            /* a blind single-key write: one lock, one commit record */
            snprintf(key, sizeof key, "g%04d/k%u", g, rand_r(&l->seed) % nkeys);
            w.key = (ProtobufCBinaryData){.len = strlen(key), .data = (uint8_t *)key};
            w.has_value = true;
            w.value =
                (ProtobufCBinaryData){.len = l->size < 200 ? l->size : 200, .data = l->payload + 8};
            t.group = gid;
            t.txn = (uint64_t)l->sent + 1000;
            t.has_prio = true;
            t.prio = mr_realtime_ns();
            t.op = MERIDIAN__TXN_REQUEST__OP__COMMIT;
            t.has_nreads = true;
            t.n_writes = 1;
            t.writes = &pw;
            type = ND_MSG_TXN;
            m = &t.base;
        } else {
            snprintf(key, sizeof key, "g0002/k%u", rand_r(&l->seed) % 100);
            sr.group = 2;
            sr.key = (ProtobufCBinaryData){.len = strlen(key), .data = (uint8_t *)key};
            if (l->staleness_ns) {
                sr.bound_case = MERIDIAN__SNAP_READ_REQUEST__BOUND_MAX_STALENESS_NS;
                sr.max_staleness_ns = l->staleness_ns;
            }
            to = l->replica[l->sent % l->nrep];
            type = ND_MSG_SNAPREAD;
            m = &sr.base;
        }
        uint8_t *body;
        size_t blen;
        mr_err perr;
        if (pr_encode(m, 0, &body, &blen, &perr) != MR_OK) {
            l->failed++;
            l->sent++;
            continue;
        }
        req *r = calloc(1, sizeof *r);
        r->l = l;
        r->start = mr_monotonic_ns();
        r->counts = true;
        mr_err err;
        int src = net_transport_request(l->tr, to, type, body, (uint32_t)blen, 30000, on_resp, r,
                                        NULL, &err);
        free(body);
        if (src != MR_OK) {
            free(r);
            l->failed++;
            l->sent++;
            continue;
        }
        l->sent++;
        l->inflight++;
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Finds each group's leader through `status`. */
static int find_leaders(const char **leader, int groups, load *l)
{
    for (int tries = 0; tries < 120; tries++) {
        int found = 0;
        for (int i = 0; i < nnodes; i++) {
            json_t *o = node_status(i);
            size_t k;
            json_t *g;
            json_array_foreach(json_object_get(o, "groups"), k, g)
            {
                int gid = (int)json_integer_value(json_object_get(g, "id"));
                if (gid >= 2 && gid <= groups + 1 &&
                    strcmp(json_string_value(json_object_get(g, "state")), "leader") == 0 &&
                    json_integer_value(json_object_get(g, "lease_left_ns")) > 0) {
                    leader[gid] = addrs[i];
                }
                if (gid == 2 && l->nrep == 0) { /* group 2's replicas, for snapshot reads */
                    size_t q;
                    json_t *id;
                    json_array_foreach(json_object_get(g, "replicas"), q, id)
                    {
                        json_int_t v = json_integer_value(id);
                        if (v >= 1 && v <= nnodes && l->nrep < MAXNODES)
                            l->replica[l->nrep++] = addrs[v - 1];
                    }
                }
            }
            json_decref(o);
        }
        for (int g = 2; g <= groups + 1; g++)
            found += leader[g] != NULL;
        if (found == groups)
            return 0;
        usleep(250000);
    }
    return -1;
}

/* Node 1's view of the data groups' stores, summed, as one line. */
static void print_sample(long commits, int groups, double elapsed_s)
{
    json_t *o = node_status(0);
    long long sum[7] = {0};
    static const char *const fields[] = {"decisions", "system_versions", "versions", "bytes",
                                         "pages",     "free_pages",      "page_size"};
    size_t k;
    json_t *g;
    json_array_foreach(json_object_get(o, "groups"), k, g)
    {
        int gid = (int)json_integer_value(json_object_get(g, "id"));
        if (gid < 2 || gid > groups + 1)
            continue;
        for (int i = 0; i < 6; i++)
            sum[i] += json_integer_value(json_object_get(g, fields[i]));
        sum[6] = json_integer_value(json_object_get(g, "page_size"));
    }
    json_decref(o);
    printf("  %8ld commits %7.1f s  decision rows %7lld  system versions %7lld  versions %8lld  "
           "in use %6.2f MiB (%lld pages)  file %6.2f MiB\n",
           commits, elapsed_s, sum[0], sum[1], sum[2],
           (double)((sum[4] - sum[5]) * sum[6]) / (1 << 20), sum[4] - sum[5],
           (double)(sum[4] * sum[6]) / (1 << 20));
    fflush(stdout);
}

static void on_closed(void *ud)
{
    *(bool *)ud = true;
}

static void stop_nodes(void)
{
    lc_destroy(&cl, false);
}

int main(int argc, char **argv)
{
    long total = 20000;
    int concurrency = 64, groups = 1;
    size_t size = 64;
    static const struct option opts[] = {{"meridian", required_argument, NULL, 'm'},
                                         {"proposals", required_argument, NULL, 'n'},
                                         {"concurrency", required_argument, NULL, 'c'},
                                         {"groups", required_argument, NULL, 'g'},
                                         {"size", required_argument, NULL, 's'},
                                         {"insecure", no_argument, NULL, 'i'},
                                         {"workload", required_argument, NULL, 'w'},
                                         {"nodes", required_argument, NULL, 'N'},
                                         {"replicas", required_argument, NULL, 'r'},
                                         {"max-staleness", required_argument, NULL, 'S'},
                                         {"participants", required_argument, NULL, 'P'},
                                         {"keys", required_argument, NULL, 'K'},
                                         {"retention", required_argument, NULL, 'R'},
                                         {"decision-retention", required_argument, NULL, 'D'},
                                         {"sample", required_argument, NULL, 'E'},
                                         {"settle", required_argument, NULL, 'T'},
                                         {NULL, 0, NULL, 0}};
    const char *retention = NULL, *decision_retention = NULL;
    long sample = 0;
    int settle = 0;
    workload_kind kind = W_PROPOSE;
    int replicas = 3;
    int64_t staleness = 0;
    int participants = 2;
    const char *meridian = NULL;
    bool insecure = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            meridian = optarg;
            break;
        case 'n':
            total = atol(optarg);
            break;
        case 'c':
            concurrency = atoi(optarg);
            break;
        case 'g':
            groups = atoi(optarg);
            break;
        case 's':
            size = (size_t)atol(optarg);
            break;
        case 'i':
            insecure = true;
            break;
        case 'w':
            kind = strcmp(optarg, "txn") == 0        ? W_TXN
                   : strcmp(optarg, "snapread") == 0 ? W_SNAPREAD
                   : strcmp(optarg, "propose") == 0  ? W_PROPOSE
                   : strcmp(optarg, "2pc") == 0      ? W_2PC
                                                     : (workload_kind)-1;
            break;
        case 'N':
            nnodes = atoi(optarg);
            break;
        case 'P':
            participants = atoi(optarg);
            break;
        case 'r':
            replicas = atoi(optarg);
            break;
        case 'K':
            nkeys = (unsigned)atol(optarg);
            break;
        case 'R':
            retention = optarg;
            break;
        case 'D':
            decision_retention = optarg;
            break;
        case 'E':
            sample = atol(optarg);
            break;
        case 'T':
            settle = atoi(optarg);
            break;
        case 'S':
            if (mr_parse_duration(optarg, &staleness) != 0 || staleness <= 0) {
                fprintf(stderr, "bench-node: --max-staleness needs a duration like 1s\n");
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: bench-node --meridian PATH [--proposals N] "
                            "[--concurrency C] [--groups N] [--size B] [--insecure]\n"
                            "       [--workload propose|txn|snapread|2pc] [--nodes 1-5] "
                            "[--replicas R] [--participants P (2pc; <= --groups)]\n"
                            "       [--keys K] [--retention D] [--decision-retention D] "
                            "[--sample N] [--settle S]\n");
            return 2;
        }
    }
    if (!meridian || total <= 0 || concurrency <= 0 || groups < 1 || groups > 10000 ||
        size > 1 << 20 || (int)kind < 0 || nnodes < 1 || nnodes > MAXNODES || replicas < 1 ||
        replicas > nnodes || participants < 1 || participants > 32 || nkeys < 1 ||
        (kind == W_2PC && participants > groups)) {
        fprintf(stderr,
                "bench-node: --meridian is required; counts must be positive, "
                "--groups in 1..10000, --nodes 1..5, --replicas <= --nodes, a known --workload\n");
        return 2;
    }
    mr_log_set_level(MR_LOG_ERROR);
    static const char *const env[] = {"MERIDIAN_LOG=error", NULL};
    lc_opts o = {.bin = meridian,
                 .prefix = "meridian-bench",
                 .nodes = nnodes,
                 .insecure = insecure,
                 .retention = retention,
                 .decision_retention = decision_retention,
                 .env = env};
    mr_err err;
    if (lc_setup(&cl, &o, &err) != MR_OK || lc_start_all(&cl, &err) != MR_OK ||
        lc_wait_up(&cl, 30000, &err) != MR_OK) {
        fprintf(stderr, "bench-node: %s\n", mr_err_msg(&err));
        stop_nodes();
        return 1;
    }
    for (int i = 0; i < nnodes; i++)
        addrs[i] = cl.nodes[i].addr;
    /* Data group g holds the keys "g<g>/..." (boundaries g0003, g0004, ...). */
    char *split = calloc((size_t)groups + 1, 6);
    for (int g = 3; split && g < 2 + groups; g++)
        sprintf(split + strlen(split), "%sg%04d", g > 3 ? "," : "", g);
    int init_rc = lc_init(&cl, groups, replicas, groups > 1 ? split : NULL, &err);
    free(split);
    if (init_rc != MR_OK) {
        fprintf(stderr, "bench-node: %s\n", mr_err_msg(&err));
        stop_nodes();
        return 1;
    }
    load l = {.groups = groups,
              .total = total,
              .concurrency = concurrency,
              .size = size,
              .kind = kind,
              .seed = 42,
              .staleness_ns = staleness,
              .participants = participants};
    l.leader = calloc((size_t)groups + 2, sizeof *l.leader);
    if (find_leaders(l.leader, groups, &l) != 0) {
        fprintf(stderr, "bench-node: no leaders\n");
        stop_nodes();
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_transport_config tc = {.loop = &loop, .tls = cl.tls};
    if (net_transport_new(&tc, &l.tr, &err) != MR_OK) {
        fprintf(stderr, "bench-node: %s\n", mr_err_msg(&err));
        stop_nodes();
        return 1;
    }
    l.lat = calloc((size_t)total, sizeof *l.lat);
    l.wait = calloc((size_t)total + 200, sizeof *l.wait);
    l.payload = calloc(1, 8 + size);
    memset(l.payload + 8, 'x', size);
    if (kind == W_SNAPREAD) {
        /* Keys to read: 100 committed values, then the measured reads. */
        load pre = l;
        pre.kind = W_TXN;
        pre.total = 100;
        pre.concurrency = 1;
        pre.groups = 1;
        pre.lat = calloc(100, sizeof *pre.lat);
        pre.wait = calloc(100, sizeof *pre.wait);
        issue(&pre);
        while (pre.done + pre.failed < pre.total && uv_run(&loop, UV_RUN_ONCE)) {
        }
        free(pre.lat);
        free(pre.wait);
        l.seed = 43;
    }
    int64_t t0 = mr_monotonic_ns();
    long next_sample = sample;
    if (sample)
        print_sample(0, groups, 0);
    issue(&l);
    while (l.done + l.failed < l.total && uv_run(&loop, UV_RUN_ONCE)) {
        if (sample && l.done + l.failed >= next_sample) {
            print_sample(l.done, groups, (double)(mr_monotonic_ns() - t0) / 1e9);
            next_sample += sample;
        }
    }
    int64_t el = mr_monotonic_ns() - t0;
    qsort(l.lat, (size_t)l.done, sizeof *l.lat, cmp64);
    static const char *const names[] = {"propose", "txn", "snapread", "2pc"};
    printf(
        "%s  transport %-5s nodes %d replicas %d groups %d  concurrency %-4d size %zu B  ops %ld "
        "(failed %ld)\n",
        names[kind], insecure ? "plain" : "TLS", nnodes, replicas, groups, concurrency, size,
        l.done, l.failed);
    if (kind == W_2PC)
        printf("  participants %d\n", participants);
    if (l.done)
        printf("  %.0f ops/s   latency p50 %.3f ms   p99 %.3f ms\n",
               (double)l.done / ((double)el / 1e9), (double)l.lat[l.done / 2] / 1e6,
               (double)l.lat[l.done * 99 / 100] / 1e6);
    bool closed = false;
    net_transport_close(l.tr, on_closed, &closed);
    while (!closed && uv_run(&loop, UV_RUN_ONCE)) {
    }
    uv_loop_close(&loop);
    if (l.nwait) {
        int64_t sum_w = 0, sum_l = 0;
        for (long k = 0; k < l.nwait; k++)
            sum_w += l.wait[k];
        for (long k = 0; k < l.done; k++)
            sum_l += l.lat[k];
        qsort(l.wait, (size_t)l.nwait, sizeof *l.wait, cmp64);
        printf("  commit wait after apply: p50 %.3f ms  p99 %.3f ms  (%.1f%% of mean latency)\n",
               (double)l.wait[l.nwait / 2] / 1e6, (double)l.wait[l.nwait * 99 / 100] / 1e6,
               100.0 * (double)sum_w / (double)(sum_l ? sum_l : 1));
    }
    for (int waited = 0; sample && waited < settle; waited += 5) {
        sleep(5);
        print_sample(l.done, groups, (double)(mr_monotonic_ns() - t0) / 1e9);
    }
    free(l.lat);
    free(l.wait);
    free(l.leader);
    free(l.payload);
    stop_nodes();
    return l.failed ? 1 : 0;
}
