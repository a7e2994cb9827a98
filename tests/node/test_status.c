/* Integration: what {op: status} answers about a transaction whose commit answer the client
 * lost (libmeridian's resolve_status), on a three-node TLS cluster with two data groups split
 * at "m". The rule (docs/architecture.md, "Two-phase commit"): status answers "aborted" only
 * from an abort decision logged in the coordinator group, and the first decision logged for a
 * transaction wins on every replica, so "aborted" means nothing was or ever will be stored.
 *
 *   committed_then_leader_moves
 *                a single-group commit and a two-phase commit complete; the leader of their
 *                (coordinator) group then gives its lease up (its clock declared unhealthy)
 *                and the question goes to the new leader, which never saw either
 *                transaction: both are committed at their commit timestamps. Before dee4106
 *                a single-group commit logged no decision: the new leader found none, logged
 *                ABORT2 and answered "aborted" for a transaction whose write every reader saw
 *                (the harness's G1a finding, jepsen/harness/README.md)
 *   in_flight_commit_cut_off
 *                the leader is cut off from both followers (fault RPC partition) and takes a
 *                commit it cannot get chosen. Asked while it still holds its lease it says
 *                "pending" (a commit in flight is never presumed aborted); the majority's new
 *                leader, which knows nothing of it, aborts it for good; after the heal the old
 *                leader's record is gone: the client never hears "ok", no replica has the
 *                write, and every later answer is "aborted" */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_util.h"
#include "launch/proc.h"
#include "tablet/node/nd.h"
#include "tests/support/cluster.h"
#include "tests/test.h"

#define NNODES 3
#define G_A    2 /* ["", "m"): the coordinator */
#define G_B    3 /* ["m", +inf) */

static bool started;

static void setup(void)
{
    if (started)
        return;
    started = true;
    CHECK_EQ(tc_setup(NNODES, "status"), 0);
    tc.split_at = "m";
    for (int i = 0; i < NNODES; i++)
        tc_start(i);
    CHECK_EQ(tc_init(2), 0);
    for (int gid = G_A; gid <= G_B; gid++)
        CHECK(tc_wait_leader(gid, -1, 20000) >= 0);
}

static bool ok(json_t *r)
{
    return r && json_is_true(json_object_get(r, "ok"));
}

static const char *err_of(json_t *r)
{
    return r ? json_string_value(json_object_get(r, "error")) ?: "" : "no reply";
}

static json_t *txn_req(int gid, uint64_t id, const char *op)
{
    return json_pack("{s:i, s:I, s:I, s:s}", "group", gid, "txn", (json_int_t)id, "prio",
                     (json_int_t)mr_realtime_ns(), "op", op);
}

/* A one-write commit of txn id at gid; with parts, a two-phase commit coordinated by G_A. */
static json_t *put_req(int gid, uint64_t id, const char *key, const char *val, json_t *parts)
{
    json_t *r = txn_req(gid, id, "commit");
    json_object_set_new(r, "writes", json_pack("[{s:s, s:s}]", "key", key, "value", val));
    if (parts) {
        json_object_set_new(r, "coordinator", json_integer(G_A));
        json_object_set(r, "participants", parts);
    }
    return r;
}

/* req (consumed) at node i, or at gid's leader when i < 0 (found again on not_leader and on
 * a new leader still applying its predecessors' log). */
static json_t *ask(int i, int gid, json_t *req)
{
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *r = NULL;
    for (int tries = 0; tries < 40; tries++) {
        int at = i >= 0 ? i : tc_wait_leader(gid, -1, 10000);
        if (at < 0)
            break;
        r = tc_request(at, ND_MSG_TXN, text);
        const char *e = r ? json_string_value(json_object_get(r, "error")) : "none";
        if (i >= 0 ||
            (e && strcmp(e, "not_leader") != 0 && strcmp(e, "none") != 0 &&
             !strstr(json_string_value(json_object_get(r, "message")) ?: "", "predecessors")) ||
            !e)
            break;
        json_decref(r);
        r = NULL;
        sleep_ms(200);
    }
    free(text);
    return r;
}

/* The status answer at node i: its state ("committed", "aborted", "pending"), or "error "
 * and the error's name (a refusal, never to be read as a state). */
static char *status_at(int i, uint64_t id, int64_t *ts)
{
    json_t *r = ask(i, G_A, txn_req(G_A, id, "status"));
    const char *state = json_string_value(json_object_get(r, "state"));
    char buf[80];
    snprintf(buf, sizeof buf, "error %s", err_of(r));
    char *out = strdup(state ? state : buf);
    if (ts)
        *ts = json_integer_value(json_object_get(r, "ts"));
    json_decref(r);
    return out;
}

/* Asks node i (i < 0: gid's leader) until the answer is final, committed or aborted (a
 * pending answer, or a new leader still applying its predecessors' log, is asked again), up
 * to 5 s; the last answer. */
static char *status_final(int i, uint64_t id, int64_t *ts)
{
    char *s = NULL;
    for (int tries = 0; tries < 50; tries++) {
        free(s);
        s = status_at(i, id, ts);
        if (strcmp(s, "committed") == 0 || strcmp(s, "aborted") == 0)
            break;
        sleep_ms(100);
    }
    return s;
}

static void fault(int i, const char *json)
{
    json_t *r = tc_request(i, ND_MSG_FAULT, json);
    CHECKF(r && !json_object_get(r, "error"), "fault RPC %s at node %d: %s", json, i, err_of(r));
    json_decref(r);
}

/* A snapshot read of key at group gid, node i, at a timestamp just ahead: 1 with *val
 * (malloc'd) when found, 0 when not, -1 when the node gave no answer (retried for 2 s). */
static int read_now(int i, int gid, const char *key, char **val)
{
    *val = NULL;
    for (int tries = 0; tries < 20; tries++) {
        char req[200];
        snprintf(req, sizeof req, "{\"group\":%d,\"key\":\"%s\",\"ts\":%lld}", gid, key,
                 (long long)(mr_realtime_ns() + 5 * MR_NS_PER_MS));
        json_t *r = tc_request(i, ND_MSG_SNAPREAD, req);
        int rc = -1;
        if (ok(r) && json_is_true(json_object_get(r, "found"))) {
            *val = strdup(json_string_value(json_object_get(r, "value")) ?: "");
            rc = 1;
        } else if (ok(r)) {
            rc = 0;
        }
        json_decref(r);
        if (rc >= 0)
            return rc;
        sleep_ms(100);
    }
    return -1;
}

typedef struct call {
    int node, gid;
    json_t *req, *reply;
} call;

static void *call_thread(void *arg)
{
    call *c = arg;
    c->reply = ask(c->node, c->gid, c->req);
    return NULL;
}

TEST(committed_then_leader_moves)
{
    setup();
    uint64_t single = 8000000 + (uint64_t)(mr_realtime_ns() & 0xffff), two = single + 1;
    json_t *r = ask(-1, G_A, put_req(G_A, single, "alpha", "S", NULL));
    CHECKF(ok(r), "single-group commit: %s", err_of(r));
    int64_t s1 = json_integer_value(json_object_get(r, "ts"));
    json_decref(r);
    json_t *parts = json_pack("[i, i]", G_A, G_B);
    call c[2] = {{-1, G_A, put_req(G_A, two, "bravo", "T", parts), NULL},
                 {-1, G_B, put_req(G_B, two, "zulu", "T", parts), NULL}};
    json_decref(parts);
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        pthread_create(&th[k], NULL, call_thread, &c[k]);
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    bool committed = ok(c[0].reply) && !json_is_true(json_object_get(c[0].reply, "prepared"));
    int64_t s2 = json_integer_value(json_object_get(c[0].reply, "ts"));
    char why[200];
    snprintf(why, sizeof why, "%s: %s", err_of(c[0].reply),
             json_string_value(json_object_get(c[0].reply, "message")) ?: "");
    for (int k = 0; k < 2; k++)
        json_decref(c[k].reply);
    CHECKF(committed, "two-phase commit: %s", why);

    /* The answers are lost; the leader that gave them leaves. */
    int old = tc_wait_leader(G_A, -1, 10000);
    CHECK(old >= 0);
    fault(old, "{\"clock_unhealthy\": true}");
    int now = tc_wait_leader(G_A, old, 20000);
    CHECKF(now >= 0 && now != old, "no new leader of group %d after node %d left", G_A, old);

    /* (asked of whoever leads now: never `old`, whose clock stays unhealthy until the end) */
    int64_t ts = 0;
    char *state = status_final(-1, single, &ts);
    bool single_ok = strcmp(state, "committed") == 0 && ts == s1;
    CHECKF(single_ok,
           "the new leader says the committed single-group transaction is %s (ts %lld, "
           "committed at %lld)",
           state, (long long)ts, (long long)s1);
    free(state);
    state = status_final(-1, two, &ts);
    bool two_ok = strcmp(state, "committed") == 0 && ts == s2;
    CHECKF(two_ok,
           "the new leader says the committed two-phase transaction is %s (ts %lld, "
           "committed at %lld)",
           state, (long long)ts, (long long)s2);
    free(state);
    fault(old, "{\"clock_unhealthy\": false}");
    char *v;
    CHECK_EQ(read_now(now, G_A, "alpha", &v), 1);
    CHECKF(strcmp(v, "S") == 0, "alpha = %s", v);
    free(v);
}

TEST(in_flight_commit_cut_off)
{
    setup();
    uint64_t id = 9000000 + (uint64_t)(mr_realtime_ns() & 0xffff);
    bool tested = false;
    for (int attempt = 0; attempt < 3 && !tested; attempt++, id += 10) {
        int l = tc_wait_leader(G_A, -1, 20000);
        CHECK(l >= 0);
        /* Node ids are indices + 1: cut l off from the other two, both ways. */
        char cut_l[64], cut_others[64];
        snprintf(cut_l, sizeof cut_l, "{\"set_partition\":true,\"partition\":[%d,%d]}",
                 (l + 1) % NNODES + 1, (l + 2) % NNODES + 1);
        snprintf(cut_others, sizeof cut_others, "{\"set_partition\":true,\"partition\":[%d]}",
                 l + 1);
        for (int i = 0; i < NNODES; i++)
            fault(i, i == l ? cut_l : cut_others);
        call c = {l, G_A, put_req(G_A, id, "charlie", "IN-FLIGHT", NULL), NULL};
        pthread_t th;
        pthread_create(&th, NULL, call_thread, &c);
        sleep_ms(100);
        /* The commit is in flight at l: while l holds its lease, the question is pending. */
        char *first = status_at(l, id, NULL);
        bool in_flight = strcmp(first, "pending") == 0;
        CHECKF(in_flight || strcmp(first, "error not_leader") == 0,
               "asked while its commit was in flight, the leader said %s", first);
        free(first);
        /* The majority elects another leader, which knows nothing of id: aborted for good
         * (asked of whoever leads: never l, whose lease ran out). */
        int other = tc_wait_leader(G_A, l, 20000);
        char *state = other >= 0 ? status_final(-1, id, NULL) : strdup("no leader");
        bool aborted = strcmp(state, "aborted") == 0;
        for (int i = 0; i < NNODES; i++)
            fault(i, "{\"set_partition\":true}");
        pthread_join(th, NULL);
        bool refused = !ok(c.reply) && strcmp(err_of(c.reply), "not_leader") == 0;
        CHECKF(!ok(c.reply), "the cut-off leader committed: %s",
               json_string_value(json_object_get(c.reply, "message")) ?: "");
        char *cerr = strdup(err_of(c.reply));
        json_decref(c.reply);
        CHECKF(aborted, "the new leader says %s", state);
        free(state);
        if (refused) { /* l's lease ran out before the commit came: nothing was in flight */
            printf("  attempt %d: the commit came after the leader's lease ended; again\n",
                   attempt);
            free(cerr);
            continue;
        }
        printf("  commit answered %s; status at the cut-off leader: %s\n", cerr,
               in_flight ? "pending" : "not_leader");
        free(cerr);
        tested = true;
        /* Healed: the old leader's record lost to ABORT2; nobody has the write. */
        CHECK(tc_wait_leader(G_A, -1, 20000) >= 0);
        state = status_final(-1, id, NULL);
        CHECKF(strcmp(state, "aborted") == 0, "after the heal the transaction is %s", state);
        free(state);
        for (int i = 0; i < NNODES; i++) {
            char *v;
            int found = read_now(i, G_A, "charlie", &v);
            CHECKF(found == 0, "node %d: charlie %s%s", i, found > 0 ? "= " : "unreadable",
                   found > 0 ? v : "");
        }
    }
    CHECKF(tested, "the leader never took the commit while cut off (3 attempts)");
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {TEST_CASE(committed_then_leader_moves),
                                      TEST_CASE(in_flight_commit_cut_off)};
    int rc = test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
    tc_teardown(rc != 0);
    return rc;
}
