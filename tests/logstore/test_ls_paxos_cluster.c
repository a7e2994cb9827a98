/* The real Paxos core on the real log store: three replicas under simulated
 * time, each persisting through ls_paxos to its own SQLite file under the
 * core's durability rule (sends leave only after a sync). Then every replica
 * "crashes" (all in-memory state dropped), restarts from its store alone,
 * and must replay the same chosen log and go on choosing new values. */
#include "tablet/logstore/ls_paxos.h"
#include "tests/test.h"

#include <stdlib.h>
#include <unistd.h>

#define N     3
#define GROUP 77

typedef struct wire {
    px_node_id to;
    uint8_t *buf;
    size_t len;
} wire;

typedef struct replica {
    px_node *px;
    ls_store *st;
    wire *inbox, *held;
    size_t nin, nheld;
    uint64_t seq;
    /* payloads applied, in order: "p<number>" strings */
    char applied[256][16];
    int napplied;
    uint64_t last_applied_slot;
} replica;

static replica rs[N];
static int64_t now_ns = 1000000000000000000LL;
static char dir[64];
static int failed_io;

static tt_interval sim_now(void)
{
    return (tt_interval){now_ns - 1000000, now_ns + 1000000};
}

static void db_path(int i, char *buf, size_t n)
{
    snprintf(buf, n, "%s/r%d.db", dir, i + 1);
}

static void push(wire **q, size_t *n, wire w)
{
    *q = realloc(*q, (*n + 1) * sizeof **q);
    if (!*q)
        abort();
    (*q)[(*n)++] = w;
}

static void handle(replica *r, const px_batch *b)
{
    mr_err err;
    if (ls_px_stage(r->st, GROUP, b->actions, b->n, &err)) {
        fprintf(stderr, "  stage: %s\n", err.msg);
        failed_io = 1;
    }
    for (size_t i = 0; i < b->n; i++) {
        const px_action *a = &b->actions[i];
        if (a->kind == PX_ACT_SEND) {
            wire w = {.to = a->to};
            if (px_msg_encode(&a->msg, &w.buf, &w.len, &err) == 0)
                push(&r->held, &r->nheld, w);
        } else if (a->kind == PX_ACT_APPLY) {
            r->last_applied_slot = a->entry.slot;
            if (a->entry.kind != PX_ENTRY_DATA)
                continue;
            uint32_t off = 0, plen;
            const uint8_t *p;
            while (px_batch_next(a->entry.data, a->entry.len, &off, &p, &plen) == 1)
                if (r->napplied < 256 && plen < 16) {
                    memcpy(r->applied[r->napplied], p, plen);
                    r->applied[r->napplied++][plen] = '\0';
                }
        }
    }
    if (b->persist_seq)
        r->seq = b->persist_seq;
}

static int step(replica *r, const px_event *ev)
{
    px_batch b = {0};
    mr_err err;
    int rc = px_step(r->px, sim_now(), ev, &b, &err);
    handle(r, &b);
    return rc;
}

/* First half of a round: tick, deliver, stage persists, hold sends. */
static void deliver_all(void)
{
    now_ns += 1000000; /* 1 ms */
    for (int i = 0; i < N; i++) {
        replica *r = &rs[i];
        px_event tick = {.kind = PX_EV_TICK};
        step(r, &tick);
        wire *in = r->inbox;
        size_t nin = r->nin;
        r->inbox = NULL;
        r->nin = 0;
        for (size_t k = 0; k < nin; k++) {
            px_msg m;
            mr_err err;
            if (px_msg_decode(in[k].buf, in[k].len, &m, &err) == 0) {
                px_event ev = {.kind = PX_EV_RECEIVE, .msg = &m};
                step(r, &ev);
                px_msg_free(&m);
            }
            free(in[k].buf);
        }
        free(in);
    }
}

/* Second half: sync once per replica, then release its sends. */
static void sync_release_all(void)
{
    for (int i = 0; i < N; i++) {
        replica *r = &rs[i];
        mr_err err;
        if (ls_sync(r->st, &err)) {
            fprintf(stderr, "  sync: %s\n", err.msg);
            failed_io = 1;
        }
        for (size_t k = 0; k < r->nheld; k++) {
            px_node_id to = r->held[k].to;
            if (to >= 1 && to <= N)
                push(&rs[to - 1].inbox, &rs[to - 1].nin, r->held[k]);
            else
                free(r->held[k].buf);
        }
        free(r->held);
        r->held = NULL;
        r->nheld = 0;
        if (r->seq) {
            px_event ev = {.kind = PX_EV_PERSISTED, .seq = r->seq};
            r->seq = 0;
            step(r, &ev);
        }
    }
}

static void round_once(void)
{
    deliver_all();
    sync_release_all();
}

static px_options opts(int i)
{
    px_options o;
    px_options_default(&o);
    o.group = GROUP;
    o.self = (px_node_id)(i + 1);
    o.config = (px_config){.n = N, .nodes = {1, 2, 3}};
    o.lease_ns = 100 * 1000000LL;
    o.heartbeat_ns = 20 * 1000000LL;
    o.election_ns = 100 * 1000000LL;
    o.max_batch = 4;
    o.seed = (uint64_t)i + 7;
    return o;
}

/* Creates (or, from the store, restores) every replica. */
static int boot_one(int i, int restore)
{
    replica *r = &rs[i];
    memset(r, 0, sizeof *r);
    char path[128];
    db_path(i, path, sizeof path);
    mr_err err;
    if (ls_open(path, NULL, &r->st, &err))
        return fprintf(stderr, "  open: %s\n", err.msg), -1;
    px_options o = opts(i);
    if (px_node_create(&o, &r->px, &err))
        return fprintf(stderr, "  create: %s\n", err.msg), -1;
    if (restore) {
        ls_px_state st;
        if (ls_px_load(r->st, GROUP, &st, &err))
            return fprintf(stderr, "  load: %s\n", err.msg), -1;
        int rc = px_node_restore(r->px, &st.d, &err);
        ls_px_state_free(&st);
        if (rc)
            return fprintf(stderr, "  restore: %s\n", err.msg), -1;
    }
    px_batch b = {0};
    if (px_node_start(r->px, sim_now(), &b, &err))
        return fprintf(stderr, "  start: %s\n", err.msg), -1;
    handle(r, &b); /* replays the durable log as APPLY actions */
    return 0;
}

static int boot(int restore)
{
    for (int i = 0; i < N; i++)
        if (boot_one(i, restore))
            return -1;
    return 0;
}

/* Drops everything a replica has in memory: its node, its staged (unsynced)
 * writes, its held sends and its inbox, as kill -9 would. */
static void crash_one(int i)
{
    replica *r = &rs[i];
    px_node_destroy(r->px);
    ls_close(r->st);
    for (size_t k = 0; k < r->nin; k++)
        free(r->inbox[k].buf);
    for (size_t k = 0; k < r->nheld; k++)
        free(r->held[k].buf);
    free(r->inbox);
    free(r->held);
    memset(r, 0, sizeof *r);
}

static void crash_all(void)
{
    for (int i = 0; i < N; i++)
        crash_one(i);
}

/* Runs rounds until replica 1 leads with a lease. */
static int elect(void)
{
    for (int t = 0; t < 3000; t++) {
        px_status s;
        px_node_status(rs[0].px, &s);
        if (s.state == PX_LEADER && s.lease_valid)
            return 0;
        if (s.state == PX_FOLLOWER && t % 10 == 0) {
            px_event camp = {.kind = PX_EV_CAMPAIGN};
            step(&rs[0], &camp);
        }
        round_once();
    }
    return -1;
}

/* Whether r applied every one of "p<from>".."p<to-1>". */
static int all_applied(const replica *r, int from, int to)
{
    for (int v = from; v < to; v++) {
        char want[16];
        snprintf(want, sizeof want, "p%d", v);
        int found = 0;
        for (int k = 0; k < r->napplied && !found; k++)
            found = strcmp(r->applied[k], want) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

/* Proposes "p<from>".."p<to-1>" at replica 1 and runs until it applied them. */
static int propose_range(int from, int to)
{
    int next = from;
    for (int t = 0; t < 5000; t++) {
        while (next < to) {
            char v[16];
            int n = snprintf(v, sizeof v, "p%d", next);
            px_event ev = {.kind = PX_EV_PROPOSE, .data = (const uint8_t *)v, .len = (uint32_t)n};
            if (step(&rs[0], &ev))
                break;
            next++;
        }
        round_once();
        if (next == to && all_applied(&rs[0], from, to))
            return 0;
    }
    return -1;
}

static void remove_stores(void)
{
    for (int i = 0; i < N; i++) {
        char p[160];
        db_path(i, p, sizeof p);
        unlink(p);
        strcat(p, "-wal");
        unlink(p);
    }
    rmdir(dir);
}

TEST(cluster_survives_full_restart_from_stores)
{
    snprintf(dir, sizeof dir, "/tmp/ls-cluster-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    failed_io = 0;
    CHECK(boot(0) == 0);
    CHECK(elect() == 0);
    CHECK(propose_range(0, 40) == 0);
    /* Let followers learn the commit point too. */
    for (int t = 0; t < 100; t++)
        round_once();
    CHECK(!failed_io);
    char before[N][256][16];
    int nbefore[N];
    for (int i = 0; i < N; i++) {
        memcpy(before[i], rs[i].applied, sizeof before[i]);
        nbefore[i] = rs[i].napplied;
        CHECKF(nbefore[i] == 40, "replica %d applied %d before the crash", i + 1, nbefore[i]);
        for (int k = 0; k < 40; k++)
            CHECK_STR(rs[i].applied[k], rs[0].applied[k]); /* agreement */
    }
    crash_all();

    /* Restart from disk alone: each replica replays its chosen log. */
    now_ns += 10LL * 1000000000; /* after the old leases */
    CHECK(boot(1) == 0);
    for (int i = 0; i < N; i++) {
        CHECKF(rs[i].napplied == nbefore[i], "replica %d replayed %d of %d", i + 1, rs[i].napplied,
               nbefore[i]);
        for (int k = 0; k < rs[i].napplied; k++)
            CHECK_STR(rs[i].applied[k], before[i][k]);
    }
    /* And the restored group goes on choosing. */
    CHECK(elect() == 0);
    CHECK(propose_range(40, 50) == 0);
    for (int k = 0; k < 50; k++) {
        char want[16];
        snprintf(want, sizeof want, "p%d", k);
        CHECK_STR(rs[0].applied[k], want);
    }
    CHECK(!failed_io);
    crash_all();
    remove_stores();
}

/* Followers and then the leader crash in the middle of rounds, after
 * staging persists and before syncing them (their held sends die with them),
 * and restart from their stores; the group keeps one log. */
TEST(crash_mid_round_loses_only_unsynced)
{
    snprintf(dir, sizeof dir, "/tmp/ls-cluster-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    failed_io = 0;
    CHECK(boot(0) == 0);
    CHECK(elect() == 0);
    CHECK(propose_range(0, 10) == 0);
    int next = 10;
    for (int victim = 2; victim >= 0; victim--) {
        /* Put work in flight, then crash the victim between staging and syncing. */
        for (int k = 0; k < 6; k++, next++) {
            char v[16];
            int n = snprintf(v, sizeof v, "p%d", next);
            px_event ev = {.kind = PX_EV_PROPOSE, .data = (const uint8_t *)v, .len = (uint32_t)n};
            CHECK(step(&rs[0], &ev) == 0);
        }
        if (victim != 0) {
            round_once();  /* the leader's accepts go out... */
            deliver_all(); /* ...and are staged by the followers, not yet synced */
        }                  /* (the leader staged its own accepts when it took the proposals) */
        CHECKF(ls_pending(rs[victim].st) > 0, "replica %d has nothing staged", victim + 1);
        crash_one(victim);
        CHECK(boot_one(victim, 1) == 0);
        sync_release_all();
        CHECK(elect() == 0); /* replica 1 again (after its lease if it was the victim) */
        CHECK(propose_range(next, next + 4) == 0);
        next += 4;
    }
    for (int t = 0; t < 300; t++)
        round_once();
    CHECK(!failed_io);
    /* Every proposal that the leader reported applied is in every log, once,
     * in the same order (proposals lost with a crashed leader may be missing). */
    for (int i = 0; i < N; i++) {
        CHECKF(rs[i].napplied == rs[0].napplied, "replica %d applied %d, leader %d", i + 1,
               rs[i].napplied, rs[0].napplied);
        for (int k = 0; k < rs[0].napplied; k++)
            CHECK_STR(rs[i].applied[k], rs[0].applied[k]);
    }
    for (int k = 0; k < rs[0].napplied; k++)
        for (int j = k + 1; j < rs[0].napplied; j++)
            CHECK(strcmp(rs[0].applied[k], rs[0].applied[j]) != 0);
    crash_all();
    remove_stores();
}

TEST_MAIN(TEST_CASE(cluster_survives_full_restart_from_stores),
          TEST_CASE(crash_mid_round_loses_only_unsynced))
