/* Integration: transaction decisions are collected (issue 16, item 8). A three-node TLS cluster
 * with two data groups split at "m", --decision-retention 2s and MVCC --retention 3s.
 *
 *   collected    rounds of single-group commits at group 2 and two-phase commits coordinated
 *                by group 2 with group 3: right after a round, status answers committed at
 *                the commit timestamp; the decision rows then drop back to none on every
 *                replica of both groups (and the system keys' versions too, once MVCC GC
 *                took the tombstones); a question about a collected transaction is answered
 *                "forgotten", never "aborted"; a question about an unknown recent one still
 *                aborts it; and the store's pages in use stay flat from round to round. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_util.h"
#include "tablet/node/nd.h"
#include "tests/support/cluster.h"
#include "launch/proc.h"
#include "tests/test.h"

#define NNODES 3
#define G_A    2 /* ["", "m"): every transaction's coordinator */
#define G_B    3 /* ["m", +inf) */
#define ROUNDS 3
#define SINGLE 30 /* single-group commits per round */
#define TWOPC  10 /* two-phase commits per round */

static int leader_of[G_B + 1];

static bool ok(json_t *r)
{
    return r && json_is_true(json_object_get(r, "ok"));
}

static const char *err_of(json_t *r)
{
    return r ? json_string_value(json_object_get(r, "error")) ?: "" : "no reply";
}

/* A request to the leader of gid (cached; found again on not_leader). */
static json_t *to_leader(int gid, json_t *req)
{
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *r = NULL;
    for (int tries = 0; tries < 40; tries++) {
        if (leader_of[gid] < 0)
            leader_of[gid] = tc_wait_leader(gid, -1, 10000);
        if (leader_of[gid] < 0)
            break;
        r = tc_request(leader_of[gid], ND_MSG_TXN, text);
        const char *e = r ? json_string_value(json_object_get(r, "error")) : "none";
        if (!e || (strcmp(e, "not_leader") != 0 && strcmp(e, "none") != 0 &&
                   !strstr(json_string_value(json_object_get(r, "message")) ?: "", "predecessors")))
            break;
        json_decref(r);
        r = NULL;
        leader_of[gid] = -1;
        sleep_ms(200);
    }
    free(text);
    return r;
}

static json_t *txn_req(int gid, uint64_t id, int64_t prio, const char *op)
{
    return json_pack("{s:i, s:I, s:I, s:s}", "group", gid, "txn", (json_int_t)id, "prio",
                     (json_int_t)prio, "op", op);
}

typedef struct call {
    int gid;
    json_t *req, *reply;
} call;

static void *call_thread(void *arg)
{
    call *c = arg;
    c->reply = to_leader(c->gid, c->req);
    return NULL;
}

/* One transaction: a single-group commit of key at G_A, or (with key2) a two-phase commit of
 * key at G_A (coordinator) and key2 at G_B sent to both leaders at once. The coordinator's
 * answer; *ts its commit timestamp. Retried with a new id while aborted (retryable). */
static bool commit(uint64_t *id, int64_t *prio, const char *key, const char *key2, int64_t *ts)
{
    for (int attempt = 0; attempt < 8; attempt++, (*id)++) {
        *prio = mr_realtime_ns();
        json_t *parts = json_pack("[i, i]", G_A, G_B);
        call c[2];
        for (int k = 0; k < (key2 ? 2 : 1); k++) {
            c[k].gid = k ? G_B : G_A;
            c[k].req = txn_req(c[k].gid, *id, *prio, "commit");
            json_object_set_new(c[k].req, "writes",
                                json_pack("[{s:s, s:s}]", "key", k ? key2 : key, "value", "v"));
            json_object_set_new(c[k].req, "nreads", json_integer(0));
            if (key2) {
                json_object_set_new(c[k].req, "coordinator", json_integer(G_A));
                json_object_set(c[k].req, "participants", parts);
            }
            c[k].reply = NULL;
        }
        json_decref(parts);
        if (key2) {
            pthread_t th[2];
            for (int k = 0; k < 2; k++)
                pthread_create(&th[k], NULL, call_thread, &c[k]);
            for (int k = 0; k < 2; k++)
                pthread_join(th[k], NULL);
            json_decref(c[1].reply);
        } else {
            call_thread(&c[0]);
        }
        bool done = ok(c[0].reply);
        bool retry = !done && json_is_true(json_object_get(c[0].reply, "retryable"));
        *ts = json_integer_value(json_object_get(c[0].reply, "ts"));
        if (!done && !retry)
            fprintf(stderr, "commit %llu: %s: %s\n", (unsigned long long)*id, err_of(c[0].reply),
                    json_string_value(json_object_get(c[0].reply, "message")) ?: "");
        json_decref(c[0].reply);
        if (done)
            return true;
        if (!retry)
            return false;
        sleep_ms(100);
    }
    return false;
}

/* {op: status} at G_A: the reply. */
static json_t *status_q(uint64_t id, int64_t prio, bool with_prio)
{
    json_t *q = txn_req(G_A, id, prio, "status");
    if (!with_prio)
        json_object_del(q, "prio");
    return to_leader(G_A, q);
}

/* Node i's view of group gid: field (decisions, system_versions, ...), or -1. */
static long long group_field(int i, int gid, const char *field)
{
    json_t *st = tc_request(i, ND_MSG_STATUS, "{}");
    json_t *v = json_object_get(tc_group_of(st, gid), field);
    long long x = json_is_integer(v) ? (long long)json_integer_value(v) : -1;
    json_decref(st);
    return x;
}

/* The sum of field over every replica of both groups; -1 if one does not say. */
static long long total(const char *field)
{
    long long sum = 0;
    for (int i = 0; i < NNODES; i++)
        for (int gid = G_A; gid <= G_B; gid++) {
            long long x = group_field(i, gid, field);
            if (x < 0)
                return -1;
            sum += x;
        }
    return sum;
}

TEST(collected)
{
    CHECK_EQ(tc_setup(NNODES, "decisions"), 0);
    tc.split_at = "m";
    tc.decision_retention = "2s";
    for (int i = 0; i < NNODES; i++)
        tc_start(i);
    CHECK_EQ(tc_init(2), 0);
    leader_of[G_A] = leader_of[G_B] = -1;
    for (int gid = G_A; gid <= G_B; gid++)
        CHECK(tc_wait_leader(gid, -1, 20000) >= 0);

    uint64_t id = 5000000 + (uint64_t)(mr_realtime_ns() & 0xffff) * 16;
    long long used[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t last_single = 0, last_2pc = 0;
        int64_t prio_single = 0, prio_2pc = 0, ts_single = 0, ts_2pc = 0, prio;
        int64_t single_done[SINGLE + TWOPC];
        int nsingle = 0;
        for (int k = 0; k < SINGLE + TWOPC; k++) {
            char key[16], key2[16];
            snprintf(key, sizeof key, "a%d", k % 5);
            snprintf(key2, sizeof key2, "n%d", k % 5);
            int64_t ts;
            bool two = k % 4 == 3; /* the last one too */
            CHECKF(commit(&id, &prio, key, two ? key2 : NULL, &ts), "round %d commit %d", round, k);
            if (two) {
                last_2pc = id;
                prio_2pc = prio;
                ts_2pc = ts;
            } else {
                single_done[nsingle++] = mr_monotonic_ns();
                last_single = id;
                prio_single = prio;
                ts_single = ts;
            }
            id++;
        }
        /* Every single-group commit of G_A younger than the retention (less a margin for
         * the status round trip) must still have its decision row; on a loaded machine
         * the round can outlast the 2 s retention, and the older ones may be gone. */
        int64_t now = mr_monotonic_ns();
        long long recent = 0;
        for (int k = 0; k < nsingle; k++)
            recent += now - single_done[k] < 1500 * 1000000LL;
        long long kept = group_field(leader_of[G_A], G_A, "decisions");
        CHECKF(kept >= (recent < 10 ? recent : 10),
               "round %d: only %lld decision rows right after %d commits (%lld of them in the "
               "last 1.5 s)",
               round, kept, SINGLE + TWOPC, recent);

        /* Recent transactions: the truth. */
        json_t *r = status_q(last_single, prio_single, true);
        CHECKF(ok(r) && !strcmp(json_string_value(json_object_get(r, "state")) ?: "", "committed"),
               "status of a recent single-group commit: %s", err_of(r));
        CHECK_EQ(json_integer_value(json_object_get(r, "ts")), ts_single);
        json_decref(r);
        r = status_q(last_2pc, prio_2pc, true);
        CHECKF(ok(r) && !strcmp(json_string_value(json_object_get(r, "state")) ?: "", "committed"),
               "status of a recent two-phase commit: %s", err_of(r));
        CHECK_EQ(json_integer_value(json_object_get(r, "ts")), ts_2pc);
        json_decref(r);

        /* Collected after the retention. The last one collected (the last commit, a
         * two-phase one: it waits for its participant's second acknowledgement) is still a
         * tombstone for --retention: even a question with a fresh start time is answered
         * "forgotten". Then every replica has none left. */
        long long d = -1;
        for (int waited = 0; waited < 30000; waited += 50) {
            d = group_field(leader_of[G_A], G_A, "decisions");
            if (d == 0)
                break;
            sleep_ms(50);
        }
        CHECKF(d == 0, "round %d: %lld decision rows left after 30 s", round, d);
        r = status_q(last_2pc, mr_realtime_ns(), true);
        CHECKF(!ok(r) && !strcmp(err_of(r), "forgotten"),
               "status of a collected two-phase commit: %s %s", err_of(r),
               json_string_value(json_object_get(r, "state")) ?: "");
        json_decref(r);
        for (int waited = 0; waited < 30000; waited += 100) {
            d = total("decisions");
            if (d == 0)
                break;
            sleep_ms(100);
        }
        CHECKF(d == 0, "round %d: %lld decision rows left on some replica", round, d);
        CHECK(group_field(0, G_A, "forgotten") >= SINGLE + TWOPC);

        /* MVCC GC then takes the tombstones: no system key left at all (the participant's
         * prepared records went the same way). */
        long long sys = -1;
        for (int waited = 0; waited < 30000; waited += 200) {
            sys = total("system_versions");
            if (sys == 0)
                break;
            sleep_ms(200);
        }
        CHECKF(sys == 0, "round %d: %lld system versions left after 30 s", round, sys);
        /* Without its tombstone, a question with the transaction's own (old) start time, or
         * none, is still "forgotten", never "aborted". */
        r = status_q(last_single, prio_single, true);
        CHECKF(!ok(r) && !strcmp(err_of(r), "forgotten"), "old single-group commit: %s %s",
               err_of(r), json_string_value(json_object_get(r, "state")) ?: "");
        json_decref(r);
        r = status_q(last_2pc, 0, false);
        CHECKF(!ok(r) && !strcmp(err_of(r), "forgotten"), "question without prio: %s", err_of(r));
        json_decref(r);
        used[round] = 0;
        for (int gid = G_A; gid <= G_B; gid++)
            used[round] += group_field(0, gid, "pages") - group_field(0, gid, "free_pages");
        fprintf(stderr, "round %d: %d commits, pages in use %lld\n", round, SINGLE + TWOPC,
                used[round]);
    }
    /* The store's pages are reused: flat from round to round. */
    CHECKF(used[ROUNDS - 1] <= used[0] + 8, "pages in use grew: %lld -> %lld", used[0],
           used[ROUNDS - 1]);

    /* An unknown transaction asked about with a recent start time is still aborted for good. */
    uint64_t unknown = id + 1000;
    int64_t now = mr_realtime_ns();
    const char *state = "";
    json_t *r = NULL;
    for (int tries = 0; tries < 50; tries++) {
        json_decref(r);
        r = status_q(unknown, now, true);
        state = json_string_value(json_object_get(r, "state")) ?: err_of(r);
        if (strcmp(state, "pending") != 0)
            break;
        sleep_ms(100);
    }
    CHECKF(!strcmp(state, "aborted"), "an unknown recent transaction: %s", state);
    json_decref(r);
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {TEST_CASE(collected)};
    int rc = test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
    tc_teardown(rc != 0);
    return rc;
}
