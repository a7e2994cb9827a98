/* bench-paxos: proposals per second and per-proposal latency through the Paxos core with
 * an in-memory backend (persists complete at once, messages go through the wire codec and
 * a FIFO queue, one thread). 3 and 5 replicas, with and without batching, closed loop with
 * a fixed number of proposals outstanding. Measures the core's CPU cost, not a network or
 * a disk: see tablet/logstore for the durable path. */
#include "tablet/paxos/px.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_util.h"

#define MAXN 5

typedef struct qmsg {
    int to;
    uint8_t *buf;
    size_t len;
} qmsg;

typedef struct bench {
    px_node *n[MAXN + 1];
    int nn;
    qmsg *q;
    size_t qhead, qlen, qcap;
    int64_t *submit; /* submit time per proposal id */
    int64_t *lat;
    size_t nlat;
    uint64_t done;
    int64_t eps;
} bench;

static tt_interval now_tt(const bench *b)
{
    int64_t t = mr_realtime_ns();
    tt_interval i = {t - b->eps, t + b->eps};
    return i;
}

static void qpush(bench *b, int to, uint8_t *buf, size_t len)
{
    if (b->qlen == b->qcap) {
        size_t cap = b->qcap ? 2 * b->qcap : 1024;
        qmsg *nq = malloc(cap * sizeof *nq);
        if (!nq) {
            fprintf(stderr, "bench-paxos: out of memory\n");
            exit(1);
        }
        for (size_t i = 0; i < b->qlen; i++)
            nq[i] = b->q[(b->qhead + i) % b->qcap];
        free(b->q);
        b->q = nq;
        b->qcap = cap;
        b->qhead = 0;
    }
    b->q[(b->qhead + b->qlen++) % b->qcap] = (qmsg){to, buf, len};
}

static void step(bench *b, int id, const px_event *ev);

static void run(bench *b, int id, px_batch bt)
{
    for (size_t i = 0; i < bt.n; i++) {
        const px_action *a = &bt.actions[i];
        if (a->kind == PX_ACT_SEND) {
            uint8_t *buf;
            size_t len;
            if (px_msg_encode(&a->msg, &buf, &len, NULL) == 0)
                qpush(b, (int)a->to, buf, len);
        } else if (a->kind == PX_ACT_APPLY && id == 1 && a->entry.kind == PX_ENTRY_DATA &&
                   !a->voided) {
            uint32_t off = 0, l;
            const uint8_t *p;
            int64_t t = mr_monotonic_ns();
            while (px_batch_next(a->entry.data, a->entry.len, &off, &p, &l) == 1) {
                uint64_t pid;
                memcpy(&pid, p, sizeof pid);
                b->lat[b->nlat++] = t - b->submit[pid];
                b->done++;
            }
        }
    }
    if (bt.persist_seq) { /* in-memory "disk": durable at once */
        px_event ev = {.kind = PX_EV_PERSISTED, .seq = bt.persist_seq};
        step(b, id, &ev);
    }
}

static void step(bench *b, int id, const px_event *ev)
{
    px_batch bt;
    px_step(b->n[id], now_tt(b), ev, &bt, NULL);
    run(b, id, bt);
}

static void deliver_one(bench *b)
{
    qmsg m = b->q[b->qhead];
    b->qhead = (b->qhead + 1) % b->qcap;
    b->qlen--;
    px_msg pm;
    if (px_msg_decode(m.buf, m.len, &pm, NULL) == 0) {
        px_event ev = {.kind = PX_EV_RECEIVE, .msg = &pm};
        step(b, m.to, &ev);
        px_msg_free(&pm);
    }
    free(m.buf);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* One configuration; prints one result line. */
static int run_case(int replicas, uint32_t max_batch, int outstanding, uint64_t count)
{
    bench b = {0};
    b.nn = replicas;
    b.eps = MR_NS_PER_MS;
    b.submit = calloc(count, sizeof *b.submit);
    b.lat = calloc(count, sizeof *b.lat);
    if (!b.submit || !b.lat)
        return 1;
    px_options o = {.group = 1, .config = {.n = (uint32_t)replicas}};
    for (int i = 0; i < replicas; i++)
        o.config.nodes[i] = (px_node_id)i + 1;
    px_options_default(&o);
    o.lease_ns = 200 * MR_NS_PER_MS;
    o.heartbeat_ns = 50 * MR_NS_PER_MS;
    o.election_ns = 1000 * MR_NS_PER_MS;
    o.alpha = 64;
    o.log_keep = 128;
    o.max_batch = max_batch;
    o.max_queue = (uint32_t)outstanding + 16;
    o.snapshot_every = 0;
    for (int i = 1; i <= replicas; i++) {
        o.self = (px_node_id)i;
        mr_err err = {0};
        px_batch bt;
        if (px_node_create(&o, &b.n[i], &err) || px_node_start(b.n[i], now_tt(&b), &bt, &err)) {
            fprintf(stderr, "bench-paxos: %s\n", mr_err_msg(&err));
            return 1;
        }
        run(&b, i, bt);
    }
    /* Node 1 campaigns once the post-start grace (one lease, 200 ms here) has passed. */
    px_event camp = {.kind = PX_EV_CAMPAIGN};
    for (;;) {
        step(&b, 1, &camp);
        while (b.qlen)
            deliver_one(&b);
        px_status st;
        px_node_status(b.n[1], &st);
        if (st.lease_valid)
            break;
        px_event tick = {.kind = PX_EV_TICK};
        for (int i = 1; i <= replicas; i++)
            step(&b, i, &tick);
    }
    uint64_t next = 0;
    int64_t t0 = mr_monotonic_ns(), last_tick = t0;
    uint64_t records = 0;
    uint8_t payload[64] = {0};
    while (b.done < count) {
        while (next < count && next - b.done < (uint64_t)outstanding) {
            memcpy(payload, &next, sizeof next);
            b.submit[next] = mr_monotonic_ns();
            px_event ev = {.kind = PX_EV_PROPOSE, .data = payload, .len = sizeof payload};
            px_batch bt;
            if (px_step(b.n[1], now_tt(&b), &ev, &bt, NULL) != 0) {
                run(&b, 1, bt);
                break;
            }
            run(&b, 1, bt);
            next++;
        }
        if (b.qlen)
            deliver_one(&b);
        if (++records % 1024 == 0 || !b.qlen) {
            int64_t t = mr_monotonic_ns();
            if (t - last_tick > MR_NS_PER_MS) {
                last_tick = t;
                px_event tick = {.kind = PX_EV_TICK};
                for (int i = 1; i <= replicas; i++)
                    step(&b, i, &tick);
            }
        }
    }
    double secs = (double)(mr_monotonic_ns() - t0) / 1e9;
    qsort(b.lat, b.nlat, sizeof *b.lat, cmp64);
    double p50 = (double)b.lat[b.nlat / 2] / 1e3, p99 = (double)b.lat[b.nlat * 99 / 100] / 1e3;
    px_status st;
    px_node_status(b.n[1], &st);
    printf("| %d | %s | %d | %llu | %.0f | %.1f | %.1f | %.1f |\n", replicas,
           max_batch > 1 ? "on (64)" : "off", outstanding, (unsigned long long)count,
           (double)count / secs, p50, p99, (double)count / (double)st.commit);
    for (int i = 1; i <= replicas; i++)
        px_node_destroy(b.n[i]);
    while (b.qlen)
        free(b.q[(b.qhead + --b.qlen) % b.qcap].buf);
    free(b.q);
    free(b.submit);
    free(b.lat);
    return 0;
}

int main(int argc, char **argv)
{
    long long count = 200000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: bench-paxos [--count N]\n"
                   "Proposals/s and latency through the Paxos core, in-memory backend.\n");
            return 0;
        }
        if (!strcmp(argv[i], "--count") && i + 1 < argc &&
            mr_parse_int(argv[i + 1], 100, 100000000, &count) == 0) {
            i++;
            continue;
        }
        fprintf(stderr, "bench-paxos: bad argument '%s' (try --help)\n", argv[i]);
        return 2;
    }
    printf("| replicas | batching | outstanding | proposals | proposals/s | p50 us | p99 us | "
           "proposals/slot |\n|---|---|---|---|---|---|---|---|\n");
    int rc = 0;
    int reps[2] = {3, 5};
    for (int r = 0; r < 2; r++) {
        rc |= run_case(reps[r], 1, 1, (uint64_t)count / 4);
        rc |= run_case(reps[r], 1, 64, (uint64_t)count);
        rc |= run_case(reps[r], 64, 1024, (uint64_t)count);
    }
    return rc;
}
