/* Replicated proposals through the real Multi-Paxos core: 3 or 5 replicas in
 * one process, messages through an in-memory network (encoded and decoded
 * with the wire codec), each replica persisting to its own log store under
 * the core's durability rule: a replica's SENDs leave only after the
 * persists emitted before them are synced. The host group-commits: in each
 * round every replica steps all its inbound messages, stages all resulting
 * persists, syncs once, then releases its sends.
 *
 * All replicas share this process's one thread and one disk, so their
 * fsyncs run one after another: these latencies add up every replica's
 * fsync, where a real cluster overlaps the leader's and the followers'
 * fsyncs and pays network round trips instead. */
#include "bench/logstore/bench.h"
#include "common/mr_util.h"
#include "tablet/logstore/ls_paxos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GROUP    1
#define MAX_REPL 5

typedef struct wire {
    px_node_id to;
    uint8_t *buf;
    size_t len;
} wire;

typedef struct wireq {
    wire *w;
    size_t n, cap;
} wireq;

typedef struct replica {
    px_node_id id;
    px_node *px;
    ls_store *st;
    wireq inbox, held; /* held: sends waiting for this replica's next sync */
    uint64_t persisted_seq;
    long syncs;
} replica;

typedef struct cluster {
    replica r[MAX_REPL];
    int n;
    px_node_id leader;
    /* proposals: start time by id; completion counted at the leader's APPLY */
    int64_t *start;
    size_t nstart, cap;
    long completed;
    bench_lat *lat; /* where latencies go; NULL while warming up */
    long errors;
    int window;
    size_t value_size;
    char *buf;
    int64_t last_tick;
} cluster;

static tt_interval now_tt(void)
{
    /* One shared clock with a fixed, declared bound. */
    int64_t t = mr_realtime_ns();
    return (tt_interval){t - 100 * MR_NS_PER_US, t + 100 * MR_NS_PER_US};
}

static void q_push(wireq *q, wire w)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 64;
        q->w = realloc(q->w, q->cap * sizeof *q->w);
        if (!q->w)
            bench_die("queue", "out of memory");
    }
    q->w[q->n++] = w;
}

static void q_free(wireq *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->w[i].buf);
    free(q->w);
    memset(q, 0, sizeof *q);
}

static void on_apply(cluster *c, replica *r, const px_entry *e)
{
    if (r->id != c->leader || e->kind != PX_ENTRY_DATA)
        return;
    uint32_t off = 0, plen;
    const uint8_t *p;
    int64_t now = mr_monotonic_ns();
    while (px_batch_next(e->data, e->len, &off, &p, &plen) == 1) {
        uint64_t id;
        if (plen < sizeof id)
            continue;
        memcpy(&id, p, sizeof id);
        if (id < c->nstart && c->start[id]) {
            if (c->lat)
                bench_lat_add(c->lat, now - c->start[id]);
            c->start[id] = 0;
            c->completed++;
        }
    }
}

/* Performs one step's actions: persists are staged now (synced at the end of
 * the round), sends are encoded and held until that sync. */
static void handle(cluster *c, replica *r, const px_batch *b)
{
    mr_err err;
    if (ls_px_stage(r->st, GROUP, b->actions, b->n, &err))
        bench_die("ls_px_stage", mr_err_msg(&err));
    for (size_t i = 0; i < b->n; i++) {
        const px_action *a = &b->actions[i];
        if (a->kind == PX_ACT_SEND) {
            wire w = {.to = a->to};
            if (px_msg_encode(&a->msg, &w.buf, &w.len, &err))
                bench_die("px_msg_encode", mr_err_msg(&err));
            q_push(&r->held, w);
        } else if (a->kind == PX_ACT_APPLY) {
            on_apply(c, r, &a->entry);
        }
    }
    if (b->persist_seq)
        r->persisted_seq = b->persist_seq;
}

static void step(cluster *c, replica *r, const px_event *ev)
{
    px_batch b = {0};
    mr_err err;
    mr_err_clear(&err);
    int rc = px_step(r->px, now_tt(), ev, &b, &err);
    /* Refused proposals (no lease yet, queue full) and campaigns (a fresh
     * node keeps its lease vote for one lease) are expected; retried. */
    if (rc && ev->kind != PX_EV_PROPOSE && ev->kind != PX_EV_CAMPAIGN) {
        if (!c->errors++ || getenv("BENCH_VERBOSE"))
            fprintf(stderr, "  step error (event %d, node %u): %s\n", (int)ev->kind, r->id,
                    mr_err_msg(&err));
    }
    handle(c, r, &b);
}

static replica *find(cluster *c, px_node_id id)
{
    for (int i = 0; i < c->n; i++)
        if (c->r[i].id == id)
            return &c->r[i];
    return NULL;
}

/* One round: deliver, sync once per replica, release sends, report persisted. */
static void round_once(cluster *c, int tick)
{
    for (int i = 0; i < c->n; i++) {
        replica *r = &c->r[i];
        wireq in = r->inbox;
        memset(&r->inbox, 0, sizeof r->inbox);
        if (tick) {
            px_event ev = {.kind = PX_EV_TICK};
            step(c, r, &ev);
        }
        for (size_t k = 0; k < in.n; k++) {
            px_msg m;
            mr_err err;
            if (px_msg_decode(in.w[k].buf, in.w[k].len, &m, &err) == 0) {
                px_event ev = {.kind = PX_EV_RECEIVE, .msg = &m};
                step(c, r, &ev);
                px_msg_free(&m);
            } else {
                c->errors++;
            }
        }
        q_free(&in);
    }
    for (int i = 0; i < c->n; i++) {
        replica *r = &c->r[i];
        mr_err err;
        if (ls_pending(r->st)) {
            if (ls_sync(r->st, &err))
                bench_die("ls_sync", mr_err_msg(&err));
            r->syncs++;
        }
        for (size_t k = 0; k < r->held.n; k++) {
            replica *to = find(c, r->held.w[k].to);
            if (to)
                q_push(&to->inbox, r->held.w[k]);
            else
                free(r->held.w[k].buf);
        }
        r->held.n = 0;
        if (r->persisted_seq) {
            px_event ev = {.kind = PX_EV_PERSISTED, .seq = r->persisted_seq};
            r->persisted_seq = 0;
            step(c, r, &ev);
        }
    }
}

/* Proposes one value at the leader; 0, or nonzero when refused (no lease, queue full). */
static int propose(cluster *c, replica *leader, size_t value_size, char *buf)
{
    uint64_t id = c->nstart;
    if (c->nstart == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 4096;
        c->start = realloc(c->start, c->cap * sizeof *c->start);
        if (!c->start)
            bench_die("proposals", "out of memory");
    }
    memcpy(buf, &id, sizeof id);
    px_event ev = {
        .kind = PX_EV_PROPOSE, .data = (const uint8_t *)buf, .len = (uint32_t)value_size};
    px_batch b = {0};
    mr_err err;
    int64_t t = mr_monotonic_ns();
    int rc = px_step(leader->px, now_tt(), &ev, &b, &err);
    if (rc == 0)
        c->start[c->nstart++] = t;
    handle(c, leader, &b);
    return rc;
}

static long total_syncs(const cluster *c)
{
    long n = 0;
    for (int i = 0; i < c->n; i++)
        n += c->r[i].syncs;
    return n;
}

static void tick_round(cluster *c)
{
    int64_t t = mr_monotonic_ns();
    int tick = t - c->last_tick > MR_NS_PER_MS;
    if (tick)
        c->last_tick = t;
    round_once(c, tick);
}

/* One round with the proposal window topped up. */
static long cluster_step(void *arg, bench_lat *lat, long *commits)
{
    cluster *c = arg;
    long done0 = c->completed, syncs0 = total_syncs(c);
    c->lat = lat;
    for (long inflight = (long)c->nstart - c->completed; inflight < c->window; inflight++)
        if (propose(c, &c->r[0], c->value_size, c->buf))
            break;
    tick_round(c);
    *commits += total_syncs(c) - syncs0;
    return c->completed - done0;
}

/* Rounds without new proposals until none is in flight (before a pause). */
static long cluster_drain(void *arg, bench_lat *lat, long *commits)
{
    cluster *c = arg;
    long done0 = c->completed, syncs0 = total_syncs(c);
    c->lat = lat;
    int64_t give_up = mr_monotonic_ns() + 5 * MR_NS_PER_S;
    while ((long)c->nstart > c->completed && mr_monotonic_ns() < give_up)
        tick_round(c);
    *commits += total_syncs(c) - syncs0;
    return c->completed - done0;
}

static void run(const char *dir, int replicas, double seconds, size_t value_size, int window,
                uint32_t max_batch)
{
    cluster c;
    memset(&c, 0, sizeof c);
    c.n = replicas;
    c.window = window;
    c.value_size = value_size < 8 ? 8 : value_size;
    c.buf = calloc(1, c.value_size);
    px_config cfg = {.n = (uint32_t)replicas};
    for (int i = 0; i < replicas; i++)
        cfg.nodes[i] = (px_node_id)(i + 1);
    for (int i = 0; i < replicas; i++) {
        replica *r = &c.r[i];
        r->id = (px_node_id)(i + 1);
        char path[512];
        snprintf(path, sizeof path, "%s/replica-%d-of-%d-w%d.db", dir, i + 1, replicas, window);
        mr_err err;
        if (ls_open(path, NULL, &r->st, &err))
            bench_die("ls_open", mr_err_msg(&err));
        px_options o;
        px_options_default(&o);
        o.group = GROUP;
        o.self = r->id;
        o.config = cfg;
        /* Long enough to ride out the pauses for the interleaved floor slices. */
        o.lease_ns = 1 * MR_NS_PER_S;
        o.heartbeat_ns = 100 * MR_NS_PER_MS;
        o.election_ns = 1 * MR_NS_PER_S;
        o.max_batch = max_batch;
        o.seed = (uint64_t)i + 1;
        if (px_node_create(&o, &r->px, &err))
            bench_die("px_node_create", mr_err_msg(&err));
        px_batch b = {0};
        if (px_node_start(r->px, now_tt(), &b, &err))
            bench_die("px_node_start", mr_err_msg(&err));
        handle(&c, r, &b);
    }
    /* Elect replica 1 and wait for its lease. */
    replica *leader = &c.r[0];
    px_event camp = {.kind = PX_EV_CAMPAIGN};
    int64_t give_up = mr_monotonic_ns() + 10 * MR_NS_PER_S;
    px_status ps;
    for (;;) {
        int64_t t = mr_monotonic_ns();
        px_node_status(leader->px, &ps);
        if (ps.state == PX_LEADER && ps.lease_valid)
            break;
        if (ps.state == PX_FOLLOWER && t - c.last_tick > MR_NS_PER_MS)
            step(&c, leader, &camp);
        tick_round(&c);
        if (t > give_up) {
            printf("%d replicas: no leader with a lease within 10 s; skipped\n", replicas);
            goto out;
        }
        usleep(200);
    }
    c.leader = leader->id;
    /* A short warm-up, then the measurement. */
    {
        long ignored = 0;
        int64_t warm_end = mr_monotonic_ns() + 300 * MR_NS_PER_MS;
        while (mr_monotonic_ns() < warm_end)
            cluster_step(&c, NULL, &ignored);
        cluster_drain(&c, NULL, &ignored);
    }
    char name[64];
    snprintf(name, sizeof name, "paxos %d replicas, window %d, batch<=%u", replicas, window,
             max_batch);
    bench_runner br = {name, &c, cluster_step, cluster_drain};
    bench_measure(&br, seconds);
    if (c.errors)
        printf("  (%ld step errors while running)\n", c.errors);
out:
    free(c.buf);
    free(c.start);
    for (int i = 0; i < c.n; i++) {
        replica *r = &c.r[i];
        px_node_destroy(r->px);
        ls_close(r->st);
        q_free(&r->inbox);
        q_free(&r->held);
        char path[512], p2[520];
        snprintf(path, sizeof path, "%s/replica-%d-of-%d-w%d.db", dir, i + 1, replicas, window);
        snprintf(p2, sizeof p2, "%s-wal", path);
        unlink(path);
        unlink(p2);
    }
}

void bench_replicated(const char *dir, int replicas, double seconds, size_t value_size)
{
    run(dir, replicas, seconds, value_size, 1, 1);
    run(dir, replicas, seconds, value_size, 256, 64);
}
