/* libmeridian against scripted fake nodes: a thread runs a real transport
 * (plain TCP on loopback) answering each request from a test's script, and
 * records what it was sent. So the protocol paths a healthy three-node
 * cluster rarely takes are exercised on purpose: two-phase commit's request
 * shapes, an unknown or lost commit answer resolved with op "status",
 * not_leader hints, wrong_range refreshing the map, scans across groups at
 * one read timestamp. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "client/mer_int.h"
#include "common/mr_util.h"
#include "tablet/node/nd.h"
#include "launch/proc.h"
#include "tests/support/fake_node.h"
#include "tests/test.h"

static const char *op_of(const json_t *req)
{
    return json_string_value(json_object_get(req, "op")) ?: "";
}

static json_int_t group_of(const json_t *req)
{
    return json_integer_value(json_object_get(req, "group"));
}

/* A map of groups 2 ["", "m") and 3 ["m", +inf), both led by f. */
static json_t *two_group_map(fake_node *f)
{
    return json_pack("{s:b, s:[{s:s, s:s, s:i, s:[i], s:s}, {s:s, s:s, s:i, s:[i], s:s}],"
                     " s:[{s:i, s:s, s:s}]}",
                     "ok", 1, "ranges", "start", "", "end", "m", "group", 2, "replicas", 1,
                     "leader", f->addr, "start", "m", "end", "", "group", 3, "replicas", 1,
                     "leader", f->addr, "nodes", "id", 1, "addr", f->addr, "zone", "a");
}

static json_t *ok_read(const char *value)
{
    return value ? json_pack("{s:b, s:b, s:s, s:i}", "ok", 1, "found", 1, "value", value,
                             "version_ts", 1)
                 : json_pack("{s:b, s:b}", "ok", 1, "found", 0);
}

static meridian *open_at(const char *addr, int64_t timeout_ms)
{
    meridian_options o = {.addrs = addr, .insecure = 1, .timeout_ms = timeout_ms};
    meridian *db = NULL;
    if (meridian_open(&o, &db) != MERIDIAN_OK) {
        fprintf(stderr, "  open: %s\n", meridian_errmsg(db));
        meridian_close(db);
        return NULL;
    }
    return db;
}

/* ---- two-phase commit ---- */

typedef struct commit_script {
    const char *coord_answer; /* "ok", "unknown", "silent", "aborted" */
    const char *status[4];    /* answers to successive status queries */
    int nstatus;
    int busy_aborts;     /* aborts answered "busy" before one succeeds */
    bool part_too_large; /* the participant's writes are over its log's entry size */
} commit_script;

static json_t *commit_fn(fake_node *f, uint8_t type, const json_t *req)
{
    commit_script *s = f->ud;
    if (type == ND_MSG_RANGES)
        return two_group_map(f);
    const char *op = op_of(req);
    if (!strcmp(op, "read"))
        return ok_read("10");
    if (!strcmp(op, "abort") && s->busy_aborts > 0) {
        s->busy_aborts--;
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "busy", "message",
                         "the transaction has a request in flight");
    }
    if (!strcmp(op, "abort"))
        return json_pack("{s:b}", "ok", 1);
    if (!strcmp(op, "status")) {
        const char *st = s->nstatus < 4 && s->status[s->nstatus] ? s->status[s->nstatus] : "";
        s->nstatus++;
        if (!strcmp(st, "unsupported"))
            return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "invalid", "message",
                             "op must be read, commit or abort");
        if (!strcmp(st, "committed"))
            return json_pack("{s:b, s:s, s:i}", "ok", 1, "state", "committed", "ts", 888);
        return json_pack("{s:b, s:s}", "ok", 1, "state", st);
    }
    if (!strcmp(op, "commit")) {
        bool coord = json_integer_value(json_object_get(req, "coordinator")) == group_of(req);
        if (!coord && s->part_too_large)
            return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "too_large", "message",
                             "commit not proposed: proposal of 9000000 bytes");
        if (!coord)
            return json_pack("{s:b, s:b, s:i}", "ok", 1, "prepared", 1, "ts", 700);
        if (!strcmp(s->coord_answer, "ok"))
            return json_pack("{s:b, s:i, s:i}", "ok", 1, "ts", 777, "commit_wait_ns", 1234);
        if (!strcmp(s->coord_answer, "silent"))
            return NULL;
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", s->coord_answer, "message",
                         "scripted");
    }
    return json_pack("{s:b, s:s}", "ok", 0, "error", "invalid");
}

/* Reads "a" (group 2), writes "b" (group 2) and "x" (group 3). */
static int two_group_txn(meridian_txn *t, void *arg)
{
    (void)arg;
    void *v;
    size_t n;
    int rc = meridian_get(t, "a", 1, &v, &n);
    meridian_free(v);
    if (rc == MERIDIAN_OK)
        rc = meridian_put(t, "b", 1, "1", 1);
    if (rc == MERIDIAN_OK)
        rc = meridian_put(t, "x", 1, "2", 1);
    return rc;
}

static int run_calls;
static int counting_txn(meridian_txn *t, void *arg)
{
    run_calls++;
    return two_group_txn(t, arg);
}

TEST(two_phase_commit_requests)
{
    commit_script s = {.coord_answer = "ok"};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(two_group_txn(t, NULL), MERIDIAN_OK);
    int64_t ts = 0;
    CHECK_EQ(meridian_commit(t, &ts), MERIDIAN_OK);
    CHECK_EQ(ts, 777); /* the coordinator's answer is the outcome */
    json_t *commits = fake_sent(&f, ND_MSG_TXN, "commit");
    CHECK_EQ(json_array_size(commits), 2);
    json_t *txn0 = json_object_get(json_array_get(commits, 0), "txn");
    size_t i;
    json_t *c;
    bool shapes = true;
    json_t *parts = json_pack("[i, i]", 2, 3);
    json_array_foreach(commits, i, c)
    {
        json_int_t g = group_of(c);
        json_t *w = json_object_get(c, "writes");
        shapes &= json_integer_value(json_object_get(c, "coordinator")) == 2;
        shapes &= json_equal(json_object_get(c, "participants"), parts);
        shapes &= json_equal(json_object_get(c, "txn"), txn0);
        shapes &= json_array_size(w) == 1;
        const char *key = json_string_value(json_object_get(json_array_get(w, 0), "key"));
        /* Each group gets its own writes and its own count of reads. */
        shapes &= g == 2
                      ? !strcmp(key, "b") && json_integer_value(json_object_get(c, "nreads")) == 1
                      : !strcmp(key, "x") && json_integer_value(json_object_get(c, "nreads")) == 0;
    }
    json_decref(commits);
    json_decref(parts);
    CHECKF(shapes, "two-phase commit requests have the wrong shape");
    meridian_close(db);
    fake_stop(&f);
}

/* A commit deadline goes to where the commit timestamp is decided, the coordinator; the
 * coordinator's commit wait is the connection's until the next successful commit. */
TEST(commit_deadline_goes_to_the_coordinator)
{
    commit_script s = {.coord_answer = "ok"};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    CHECK_EQ(meridian_commit_wait_ns(db), 0);
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(two_group_txn(t, NULL), MERIDIAN_OK);
    CHECK_EQ(meridian_set_commit_before(t, 5000), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_EQ(meridian_commit_wait_ns(db), 1234);
    json_t *commits = fake_sent(&f, ND_MSG_TXN, "commit");
    CHECK_EQ(json_array_size(commits), 2);
    size_t i;
    json_t *c;
    bool right = true;
    json_array_foreach(commits, i, c)
    {
        json_t *b = json_object_get(c, "commit_before");
        right &= group_of(c) == 2 ? json_integer_value(b) == 5000 : b == NULL;
    }
    json_decref(commits);
    CHECKF(right, "commit_before sent to the coordinator (group 2) only");
    /* A read-only commit resets it: it waited for nothing. */
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_EQ(meridian_commit_wait_ns(db), 0);
    meridian_close(db);
    fake_stop(&f);
}

/* Every transaction id libmeridian draws is a client's (below 2^62: the ids above are the
 * cluster's own, which nodes refuse), and its age is the start time. */
TEST(transaction_ids_and_ages_are_a_clients)
{
    commit_script s = {.coord_answer = "ok"};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    int64_t t0 = mr_realtime_ns();
    for (int k = 0; k < 64; k++) {
        meridian_txn *t;
        CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
        void *v = NULL;
        size_t vl = 0;
        CHECK_EQ(meridian_get(t, "a", 1, &v, &vl), MERIDIAN_OK);
        free(v);
        meridian_rollback(t);
    }
    int64_t t1 = mr_realtime_ns();
    json_t *reads = fake_sent(&f, ND_MSG_TXN, "read");
    CHECK_EQ(json_array_size(reads), 64);
    size_t i;
    json_t *r;
    bool ids = true, ages = true;
    json_array_foreach(reads, i, r)
    {
        json_int_t id = json_integer_value(json_object_get(r, "txn"));
        json_int_t prio = json_integer_value(json_object_get(r, "prio"));
        ids &= id >= 1 && (uint64_t)id <= ND_TXN_CLIENT_MAX;
        ages &= prio >= t0 && prio <= t1;
    }
    json_decref(reads);
    CHECKF(ids, "a transaction id outside [1, ND_TXN_CLIENT_MAX]");
    CHECKF(ages, "a priority that is not the start time");
    meridian_close(db);
    fake_stop(&f);
}

/* A transaction retried by hand keeps its first attempt's age (meridian_begin_aged), as
 * meridian_run's retries do: every request of the retry carries it. */
TEST(retry_keeps_its_age)
{
    commit_script s = {.coord_answer = "ok"};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    meridian_txn *t = NULL;
    int64_t first = 0;
    bool same = true;
    for (int attempt = 0; attempt < 3; attempt++) {
        CHECK_EQ(meridian_begin_aged(db, first, &t), MERIDIAN_OK);
        if (!first)
            first = meridian_txn_age(t);
        same &= meridian_txn_age(t) == first;
        void *v = NULL;
        size_t vl = 0;
        CHECK_EQ(meridian_get(t, "a", 1, &v, &vl), MERIDIAN_OK);
        free(v);
        meridian_rollback(t);
    }
    CHECK_EQ(meridian_begin_aged(db, -5, &t), MERIDIAN_INVALID);
    CHECK(t == NULL);
    CHECK(meridian_txn_age(NULL) == 0);
    json_t *reads = fake_sent(&f, ND_MSG_TXN, "read");
    size_t i;
    json_t *r;
    bool carried = json_array_size(reads) == 3, ids_differ = true;
    json_int_t last_id = 0;
    json_array_foreach(reads, i, r)
    {
        carried &= json_integer_value(json_object_get(r, "prio")) == first;
        json_int_t id = json_integer_value(json_object_get(r, "txn"));
        ids_differ &= id != last_id;
        last_id = id;
    }
    json_decref(reads);
    meridian_close(db);
    fake_stop(&f);
    CHECK(same && first > 0);
    CHECKF(carried, "a retry's requests do not carry the first attempt's age");
    CHECKF(ids_differ, "each attempt is a new transaction (a new id)");
}

/* meridian_get_for_update asks for the exclusive lock (TxnRequest.for_update); a read-only
 * transaction takes no locks and refuses it. */
TEST(get_for_update_request)
{
    commit_script s = {.coord_answer = "ok"};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    meridian_txn *t;
    void *v = NULL;
    size_t vl = 0;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_get_for_update(t, "a", 1, &v, &vl), MERIDIAN_OK);
    free(v);
    CHECK_EQ(meridian_get(t, "b", 1, &v, &vl), MERIDIAN_OK);
    free(v);
    meridian_rollback(t);
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_get_for_update(t, "a", 1, &v, &vl), MERIDIAN_INVALID);
    meridian_rollback(t);
    CHECK_EQ(meridian_get_for_update(NULL, "a", 1, &v, &vl), MERIDIAN_INVALID);
    json_t *reads = fake_sent(&f, ND_MSG_TXN, "read");
    bool flags = json_array_size(reads) == 2 &&
                 json_is_true(json_object_get(json_array_get(reads, 0), "for_update")) &&
                 !json_is_true(json_object_get(json_array_get(reads, 1), "for_update"));
    json_decref(reads);
    meridian_close(db);
    fake_stop(&f);
    CHECKF(flags, "for_update set on the read for update only");
}

TEST(unknown_outcome_resolved_by_status)
{
    /* "unknown", then the status query says pending, then committed. */
    commit_script s = {.coord_answer = "unknown", .status = {"pending", "committed"}};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    int64_t ts = 0;
    CHECK_EQ(meridian_run(db, 10000, two_group_txn, NULL, &ts), MERIDIAN_OK);
    CHECK_EQ(ts, 888);
    json_t *st = fake_sent(&f, ND_MSG_TXN, "status");
    CHECK_EQ(json_array_size(st), 2);
    CHECK_EQ(group_of(json_array_get(st, 0)), 2); /* asked at the coordinator group */
    json_decref(st);
    meridian_close(db);
    fake_stop(&f);
}

/* MERIDIAN_TEST_LOSE_COMMIT_ANSWERS (the harness's --lose-commit-answers): the coordinator's
 * answer (ok at 777) is dropped as if lost, and the outcome is the status answer's
 * (committed at 888); a value that is no percentage is refused at open. */
TEST(dropped_commit_answer_resolved_by_status)
{
    commit_script s = {.coord_answer = "ok", .status = {"committed"}};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    setenv("MERIDIAN_TEST_LOSE_COMMIT_ANSWERS", "100", 1);
    meridian *db = open_at(f.addr, 2000);
    setenv("MERIDIAN_TEST_LOSE_COMMIT_ANSWERS", "half", 1);
    meridian_options o = {.addrs = f.addr, .insecure = 1, .timeout_ms = 2000};
    meridian *bad = NULL;
    int bad_rc = meridian_open(&o, &bad);
    char bad_msg[300];
    snprintf(bad_msg, sizeof bad_msg, "%s", meridian_errmsg(bad));
    meridian_close(bad);
    unsetenv("MERIDIAN_TEST_LOSE_COMMIT_ANSWERS");
    CHECK(db);
    CHECK_EQ(bad_rc, MERIDIAN_INVALID);
    CHECKF(strstr(bad_msg, "MERIDIAN_TEST_LOSE_COMMIT_ANSWERS"), "open said: %s", bad_msg);
    int64_t ts = 0;
    CHECK_EQ(meridian_run(db, 10000, two_group_txn, NULL, &ts), MERIDIAN_OK);
    CHECK_EQ(ts, 888);
    json_t *st = fake_sent(&f, ND_MSG_TXN, "status");
    CHECK_EQ(json_array_size(st), 1);
    CHECK_EQ(group_of(json_array_get(st, 0)), 2); /* asked at the coordinator group */
    json_decref(st);
    meridian_close(db);
    fake_stop(&f);
}

TEST(lost_commit_answer_learns_abort)
{
    /* The coordinator never answers; status says aborted: retryable. */
    commit_script s = {.coord_answer = "silent", .status = {"aborted"}};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 400);
    CHECK(db);
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(two_group_txn(t, NULL), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_ABORTED);
    CHECK(strstr(meridian_errmsg(db), "coordinator"));
    json_t *aborts = fake_sent(&f, ND_MSG_TXN, "abort");
    CHECK_EQ(json_array_size(aborts), 2); /* every group touched releases its locks */
    json_decref(aborts);
    meridian_close(db);
    fake_stop(&f);
}

TEST(unknown_outcome_never_retried)
{
    /* No answer and no status op: unknown, and meridian_run must not retry. */
    commit_script s = {.coord_answer = "silent", .status = {"unsupported"}};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 400);
    CHECK(db);
    run_calls = 0;
    CHECK_EQ(meridian_run(db, 10000, counting_txn, NULL, NULL), MERIDIAN_UNKNOWN);
    CHECK_EQ(run_calls, 1);
    CHECK(strstr(meridian_errmsg(db), "unknown"));
    CHECK_EQ(s.nstatus, 1); /* "unsupported" is not asked again */
    meridian_close(db);
    fake_stop(&f);
}

TEST(coordinator_abort_is_retried)
{
    commit_script s = {.coord_answer = "aborted"};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    run_calls = 0;
    CHECK_EQ(meridian_run(db, 300, counting_txn, NULL, NULL), MERIDIAN_TIMEOUT);
    CHECKF(run_calls >= 3, "%d attempts", run_calls);
    /* One age for every attempt (wound-wait); a fresh id each time. */
    json_t *commits = fake_sent(&f, ND_MSG_TXN, "commit");
    json_t *first = json_array_get(commits, 0),
           *last = json_array_get(commits, json_array_size(commits) - 1);
    bool same_prio = json_equal(json_object_get(first, "prio"), json_object_get(last, "prio"));
    bool new_id = !json_equal(json_object_get(first, "txn"), json_object_get(last, "txn"));
    json_decref(commits);
    CHECK(same_prio);
    CHECK(new_id);
    meridian_close(db);
    fake_stop(&f);
}

/* A participant whose writes cannot be logged votes no: the coordinator's
 * abort is final, and the caller hears why instead of retrying. */
TEST(too_large_participant_is_not_retried)
{
    commit_script s = {.coord_answer = "aborted", .part_too_large = true};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    run_calls = 0;
    CHECK_EQ(meridian_run(db, 2000, counting_txn, NULL, NULL), MERIDIAN_ERROR);
    CHECK_EQ(run_calls, 1);
    CHECKF(strstr(meridian_errmsg(db), "9000000 bytes") != NULL, "message: %s",
           meridian_errmsg(db));
    meridian_close(db);
    fake_stop(&f);
}

/* ---- routing ---- */

typedef struct route_script {
    fake_node *leader; /* the real leader (for hints) */
    bool split;        /* wrong_range script: the map has been split */
    int64_t read_ts;
} route_script;

/* A follower: the map names it leader, it says who leads. */
static json_t *follower_fn(fake_node *f, uint8_t type, const json_t *req)
{
    route_script *s = f->ud;
    if (type == ND_MSG_RANGES)
        return json_pack("{s:b, s:[{s:s, s:s, s:i, s:[i, i], s:s}], s:[{s:i, s:s}, {s:i, s:s}]}",
                         "ok", 1, "ranges", "start", "", "end", "", "group", 2, "replicas", 1, 2,
                         "leader", f->addr, "nodes", "id", 1, "addr", f->addr, "id", 2, "addr",
                         s->leader->addr);
    return json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "error", "not_leader", "message", "no",
                     "leader", s->leader->addr);
}

static json_t *leader_fn(fake_node *f, uint8_t type, const json_t *req)
{
    if (type == ND_MSG_RANGES) /* a probe before a commit: any answer will do */
        return json_pack("{s:b}", "ok", 1);
    if (!strcmp(op_of(req), "read"))
        return ok_read("here");
    return json_pack("{s:b, s:i}", "ok", 1, "ts", 5);
}

TEST(not_leader_hint_followed_and_remembered)
{
    fake_node leader, follower;
    route_script s = {.leader = &leader};
    fake_start(&leader, leader_fn, &s);
    fake_start(&follower, follower_fn, &s);
    meridian *db = open_at(follower.addr, 2000);
    CHECK(db);
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    void *v;
    size_t n;
    CHECK_EQ(meridian_get(t, "k", 1, &v, &n), MERIDIAN_OK);
    CHECK(n == 4 && !memcmp(v, "here", 4));
    meridian_free(v);
    CHECK_EQ(meridian_get(t, "l", 1, &v, &n), MERIDIAN_OK);
    meridian_free(v);
    CHECK_EQ(meridian_put(t, "k", 1, "x", 1), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    json_t *at_follower = fake_sent(&follower, ND_MSG_TXN, NULL);
    json_t *at_leader = fake_sent(&leader, ND_MSG_TXN, NULL);
    size_t nf = json_array_size(at_follower), nl = json_array_size(at_leader);
    json_decref(at_follower);
    json_decref(at_leader);
    CHECKF(nf == 1, "the follower was asked %zu times", nf); /* only once: the hint stays */
    CHECK_EQ(nl, 3);
    meridian_close(db);
    fake_stop(&follower);
    fake_stop(&leader);
}

/* The map names a dead address (nothing listens) as group 2's leader; this
 * node, the other replica, leads. */
static char dead_addr[32];

static json_t *dead_leader_fn(fake_node *f, uint8_t type, const json_t *req)
{
    if (type == ND_MSG_RANGES)
        return json_pack("{s:b, s:[{s:s, s:s, s:i, s:[i, i], s:s}], s:[{s:i, s:s}, {s:i, s:s}]}",
                         "ok", 1, "ranges", "start", "", "end", "", "group", 2, "replicas", 1, 2,
                         "leader", dead_addr, "nodes", "id", 1, "addr", dead_addr, "id", 2, "addr",
                         f->addr);
    if (!strcmp(op_of(req), "read"))
        return ok_read("alive");
    return json_pack("{s:b, s:i}", "ok", 1, "ts", 9);
}

TEST(dead_leader_probed_not_waited_for)
{
    snprintf(dead_addr, sizeof dead_addr, "127.0.0.1:%d", free_port(SOCK_STREAM));
    fake_node f;
    fake_start(&f, dead_leader_fn, NULL);
    meridian *db = open_at(f.addr, 4000);
    CHECK(db);
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    void *v;
    size_t n;
    int64_t t0 = mr_monotonic_ns();
    /* A transactional read is never sent twice, so it must not sit in a
     * queue for a node that refuses connections: the node is probed first
     * (a quarter of the timeout at most) and the read goes elsewhere. */
    CHECK_EQ(meridian_get(t, "k", 1, &v, &n), MERIDIAN_OK);
    int64_t ms = (mr_monotonic_ns() - t0) / MR_NS_PER_MS;
    CHECK(n == 5 && !memcmp(v, "alive", 5));
    meridian_free(v);
    CHECKF(ms < 2000, "the read took %lld ms (the timeout is 4000)", (long long)ms);
    CHECK_EQ(meridian_put(t, "k", 1, "x", 1), MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    json_t *txn = fake_sent(&f, ND_MSG_TXN, NULL);
    CHECK_EQ(json_array_size(txn), 2); /* the read and the commit, once each */
    json_decref(txn);
    meridian_close(db);
    fake_stop(&f);
}

/* One node; group 2 holds everything until `split`, then ["", "m") only. */
static json_t *split_fn(fake_node *f, uint8_t type, const json_t *req)
{
    route_script *s = f->ud;
    if (type == ND_MSG_RANGES) {
        if (s->split)
            return two_group_map(f);
        return json_pack("{s:b, s:[{s:s, s:s, s:i, s:[i], s:s}], s:[{s:i, s:s}]}", "ok", 1,
                         "ranges", "start", "", "end", "", "group", 2, "replicas", 1, "leader",
                         f->addr, "nodes", "id", 1, "addr", f->addr);
    }
    const char *key = json_string_value(json_object_get(req, "key"));
    if (group_of(req) == 2 && key && strcmp(key, "m") >= 0) {
        s->split = true; /* the split happened behind the client's back */
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "wrong_range", "message",
                         "not in this group's range");
    }
    return group_of(req) == 3 ? ok_read("three") : ok_read("two");
}

TEST(wrong_range_refreshes_the_map)
{
    route_script s = {0};
    fake_node f;
    fake_start(&f, split_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    meridian_txn *t;
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    void *v;
    size_t n;
    CHECK_EQ(meridian_get(t, "z", 1, &v, &n), MERIDIAN_OK);
    CHECK_STR(meridian_errmsg(db), ""); /* the reroute on the way is no failure */
    CHECK(n == 5 && !memcmp(v, "three", 5));
    meridian_free(v);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    json_t *maps = fake_sent(&f, ND_MSG_RANGES, NULL);
    CHECK_EQ(json_array_size(maps), 2); /* at open, and after wrong_range */
    json_decref(maps);
    meridian_close(db);
    fake_stop(&f);
}

/* Two groups of rows: [a, b] in group 2, [m, n] in group 3. */
static json_t *scan_fn(fake_node *f, uint8_t type, const json_t *req)
{
    if (!strcmp(op_of(req), "abort")) /* the transaction rolled back */
        return json_pack("{s:b}", "ok", 1);
    route_script *s = f->ud;
    if (type == ND_MSG_RANGES && !s->split)
        return json_pack("{s:b, s:[{s:s, s:s, s:i, s:[i], s:s}], s:[{s:i, s:s}]}", "ok", 1,
                         "ranges", "start", "", "end", "", "group", 2, "replicas", 1, "leader",
                         f->addr, "nodes", "id", 1, "addr", f->addr);
    if (type == ND_MSG_RANGES)
        return two_group_map(f);
    if (!s->split) { /* split behind the client's back: the whole range is not ours */
        s->split = true;
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "wrong_range", "message", "split");
    }
    json_t *rows = group_of(req) == 2
                       ? json_pack("[{s:i, s:s, s:s}, {s:i, s:s, s:s}]", "version_ts", 1, "key",
                                   "a", "value", "1", "version_ts", 1, "key", "b", "value", "2")
                       : json_pack("[{s:i, s:s, s:s}, {s:i, s:s, s:s}]", "version_ts", 1, "key",
                                   "m", "value", "3", "version_ts", 1, "key", "n", "value", "4");
    json_t *ts = json_object_get(req, "ts");
    return json_pack("{s:b, s:I, s:o}", "ok", 1, "read_ts",
                     (json_int_t)(ts ? json_integer_value(ts) : s->read_ts), "rows", rows);
}

typedef struct keys {
    char got[64];
} keys;

static int key_cat(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    keys *ks = arg;
    strncat(ks->got, k, kl);
    strncat(ks->got, v, vl);
    return 0;
}

TEST(scan_across_groups_at_one_timestamp)
{
    route_script s = {.read_ts = 5000, .split = true};
    fake_node f;
    fake_start(&f, scan_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    meridian_txn *t;
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    keys ks = {{0}};
    CHECK_EQ(meridian_scan(t, NULL, 0, NULL, 0, 0, key_cat, &ks), MERIDIAN_OK);
    CHECK_STR(ks.got, "a1b2m3n4");
    CHECK_EQ(meridian_read_ts(t), 5000);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    json_t *reads = fake_sent(&f, ND_MSG_SNAPREAD, NULL);
    CHECK_EQ(json_array_size(reads), 2);
    json_t *r0 = json_array_get(reads, 0), *r1 = json_array_get(reads, 1);
    /* The first read picks the timestamp; the other group's read carries it;
     * each group is asked only for its part of the range. */
    bool ok = !json_object_get(r0, "ts") && group_of(r0) == 2 &&
              !strcmp(json_string_value(json_object_get(r0, "end")) ?: "", "m") &&
              json_integer_value(json_object_get(r1, "ts")) == 5000 && group_of(r1) == 3 &&
              !strcmp(json_string_value(json_object_get(r1, "key")) ?: "", "m") &&
              !json_object_get(r1, "end");
    json_decref(reads);
    CHECKF(ok, "scan requests have the wrong shape");
    meridian_close(db);
    fake_stop(&f);
}

TEST(scan_rerouted_after_a_split)
{
    route_script s = {.read_ts = 6000};
    fake_node f;
    fake_start(&f, scan_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_put(t, "c", 1, "5", 1), MERIDIAN_OK);
    keys ks = {{0}};
    CHECK_EQ(meridian_scan(t, "a", 1, NULL, 0, 0, key_cat, &ks), MERIDIAN_OK);
    CHECK_STR(ks.got, "a1b2c5m3n4"); /* nothing lost or repeated, own write merged */
    meridian_rollback(t);
    json_t *maps = fake_sent(&f, ND_MSG_RANGES, NULL);
    CHECK_EQ(json_array_size(maps), 2);
    json_decref(maps);
    meridian_close(db);
    fake_stop(&f);
}

/* One group; the node answers scans in pages of two rows (as its byte budget
 * would), with more and the key to resume from. */
static json_t *paged_fn(fake_node *f, uint8_t type, const json_t *req)
{
    if (!strcmp(op_of(req), "abort")) /* the transaction rolled back */
        return json_pack("{s:b}", "ok", 1);
    (void)f;
    if (type == ND_MSG_RANGES)
        return json_pack("{s:b, s:[{s:s, s:s, s:i, s:[i], s:s}], s:[{s:i, s:s}]}", "ok", 1,
                         "ranges", "start", "", "end", "", "group", 2, "replicas", 1, "leader",
                         f->addr, "nodes", "id", 1, "addr", f->addr);
    static const char *const ks[] = {"a", "b", "d", "e", "f", "g", "h"};
    const char *from = json_string_value(json_object_get(req, "key")) ?: "";
    const char *end = json_string_value(json_object_get(req, "end"));
    if (!strcmp(from, "big"))
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "too_large", "message",
                         "the reply takes 20000000 bytes, over the 16777216-byte frame limit");
    json_t *rows = json_array();
    json_t *o =
        json_pack("{s:b, s:i, s:o, s:b}", "ok", 1, "read_ts", 4000, "rows", rows, "more", 0);
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        if (strcmp(ks[i], from) < 0 || (end && *end && strcmp(ks[i], end) >= 0))
            continue;
        if (json_array_size(rows) == 2) {
            json_object_set_new(o, "more", json_true());
            json_object_set_new(o, "resume", json_string(ks[i]));
            break;
        }
        json_array_append_new(
            rows, json_pack("{s:s, s:s, s:i}", "key", ks[i], "value", ".", "version_ts", 1));
    }
    return o;
}

TEST(scans_follow_pages_to_the_end)
{
    fake_node f;
    fake_start(&f, paged_fn, NULL);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    meridian_txn *t;
    /* Read-only: every page, at the first page's timestamp. */
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    keys ks = {{0}};
    CHECK_EQ(meridian_scan(t, NULL, 0, NULL, 0, 0, key_cat, &ks), MERIDIAN_OK);
    CHECK_STR(ks.got, "a.b.d.e.f.g.h.");
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    json_t *reads = fake_sent(&f, ND_MSG_SNAPREAD, NULL);
    CHECK_EQ(json_array_size(reads), 4);
    json_t *r3 = json_array_get(reads, 3);
    CHECK_EQ(json_integer_value(json_object_get(r3, "ts")), 4000);
    CHECK_STR(json_string_value(json_object_get(r3, "key")) ?: "", "h");
    json_decref(reads);
    /* Read-write, with its own write merged: each page asks for the rest of
     * the range (so the range lock taken by the first covers them all). */
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_put(t, "c", 1, "+", 1), MERIDIAN_OK);
    memset(&ks, 0, sizeof ks);
    CHECK_EQ(meridian_scan(t, "b", 1, "g", 1, 0, key_cat, &ks), MERIDIAN_OK);
    CHECK_STR(ks.got, "b.c+d.e.f.");
    json_t *locked = fake_sent(&f, ND_MSG_TXN, NULL);
    bool ok = json_array_size(locked) == 2; /* [b, g): b d | e f */
    for (size_t i = 0; i < json_array_size(locked); i++)
        ok &= !strcmp(json_string_value(json_object_get(json_array_get(locked, i), "end")) ?: "",
                      "g");
    json_decref(locked);
    CHECKF(ok, "locking scan pages have the wrong shape");
    /* With a limit, the scan stops there. */
    memset(&ks, 0, sizeof ks);
    CHECK_EQ(meridian_scan(t, "a", 1, NULL, 0, 3, key_cat, &ks), MERIDIAN_OK);
    CHECK_STR(ks.got, "a.b.c+");
    /* A reply too large for a frame is an error with the node's reason. */
    CHECK_EQ(meridian_scan(t, "big", 3, NULL, 0, 0, key_cat, &ks), MERIDIAN_ERROR);
    CHECKF(strstr(meridian_errmsg(db), "frame limit") != NULL, "message: %s", meridian_errmsg(db));
    meridian_rollback(t);
    meridian_close(db);
    fake_stop(&f);
}

TEST(rollback_releases_every_group)
{
    commit_script s = {.coord_answer = "ok"};
    fake_node f;
    fake_start(&f, commit_fn, &s);
    meridian *db = open_at(f.addr, 2000);
    CHECK(db);
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    void *v;
    size_t n;
    CHECK_EQ(meridian_get(t, "a", 1, &v, &n), MERIDIAN_OK);
    meridian_free(v);
    CHECK_EQ(meridian_get(t, "z", 1, &v, &n), MERIDIAN_OK);
    meridian_free(v);
    s.busy_aborts = 2; /* a parked read still there: asked again until it goes */
    meridian_rollback(t);
    json_t *aborts = fake_sent(&f, ND_MSG_TXN, "abort");
    CHECK_EQ(s.busy_aborts, 0);
    CHECK_EQ(json_array_size(aborts), 4);
    json_decref(aborts);
    aborts = fake_sent(&f, ND_MSG_TXN, "abort");
    bool both = json_array_size(aborts) == 4 &&
                group_of(json_array_get(aborts, 2)) + group_of(json_array_get(aborts, 3)) == 5;
    json_decref(aborts);
    CHECK(both);
    /* A transaction that only read, over two groups, still commits at both
     * (its read locks must have held): empty writes, its count of reads. */
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    int64_t version = -1;
    CHECK_EQ(meridian_get_version(t, "a", 1, &v, &n, &version), MERIDIAN_OK);
    CHECK_EQ(version, 1); /* the reply's version_ts */
    meridian_free(v);
    CHECK_EQ(meridian_get(t, "z", 1, &v, &n), MERIDIAN_OK);
    meridian_free(v);
    int64_t ts;
    CHECK_EQ(meridian_commit(t, &ts), MERIDIAN_OK);
    json_t *commits = fake_sent(&f, ND_MSG_TXN, "commit");
    size_t nc = json_array_size(commits);
    bool reads_only = nc == 2;
    for (size_t i = 0; i < nc; i++) {
        json_t *c = json_array_get(commits, i);
        reads_only &= json_array_size(json_object_get(c, "writes")) == 0 &&
                      json_integer_value(json_object_get(c, "nreads")) == 1;
    }
    json_decref(commits);
    CHECK(reads_only);
    meridian_close(db);
    fake_stop(&f);
}

/* Reads of group 3 are never answered (a leader that parked the read and will grant it after
 * the client gave up); everything else as commit_fn. */
static json_t *silent_read_fn(fake_node *f, uint8_t type, const json_t *req)
{
    if (type == ND_MSG_TXN && !strcmp(op_of(req), "read") && group_of(req) == 3)
        return NULL;
    return commit_fn(f, type, req);
}

/* docs/goodput.md 2.3: a locking read whose answer never came must still be aborted at its
 * group (the rollback used to tell only the groups whose reads had answered, so a parked read
 * was granted later to nobody and held its lock until the idle timeout); and every locking
 * read tells the leader how long the client waits. */
TEST(timed_out_read_is_aborted_at_its_group)
{
    commit_script s = {.coord_answer = "ok"};
    fake_node f;
    fake_start(&f, silent_read_fn, &s);
    meridian *db = open_at(f.addr, 600);
    CHECK(db);
    meridian_txn *t;
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    void *v;
    size_t n;
    CHECK_EQ(meridian_get(t, "a", 1, &v, &n), MERIDIAN_OK);
    meridian_free(v);
    CHECK_EQ(meridian_get(t, "z", 1, &v, &n), MERIDIAN_UNAVAILABLE);
    meridian_rollback(t);
    json_t *reads = fake_sent(&f, ND_MSG_TXN, "read");
    bool waits = json_array_size(reads) == 2;
    for (size_t i = 0; i < json_array_size(reads); i++)
        waits &= json_integer_value(json_object_get(json_array_get(reads, i), "wait_ms")) == 600;
    json_decref(reads);
    json_t *aborts = fake_sent(&f, ND_MSG_TXN, "abort");
    json_int_t sum = 0;
    size_t naborts = json_array_size(aborts);
    for (size_t i = 0; i < naborts; i++)
        sum += group_of(json_array_get(aborts, i));
    json_decref(aborts);
    meridian_close(db);
    fake_stop(&f);
    CHECKF(waits, "every locking read says how long its client waits (600 ms)");
    CHECKF(naborts == 2 && sum == 5, "aborts sent: %zu (groups summing to %lld; want 2 and 3)",
           naborts, (long long)sum);
}

TEST_MAIN(TEST_CASE(two_phase_commit_requests), TEST_CASE(commit_deadline_goes_to_the_coordinator),
          TEST_CASE(transaction_ids_and_ages_are_a_clients),
          TEST_CASE(unknown_outcome_resolved_by_status),
          TEST_CASE(dropped_commit_answer_resolved_by_status),
          TEST_CASE(lost_commit_answer_learns_abort), TEST_CASE(unknown_outcome_never_retried),
          TEST_CASE(coordinator_abort_is_retried),
          TEST_CASE(not_leader_hint_followed_and_remembered),
          TEST_CASE(dead_leader_probed_not_waited_for), TEST_CASE(wrong_range_refreshes_the_map),
          TEST_CASE(scan_across_groups_at_one_timestamp), TEST_CASE(scan_rerouted_after_a_split),
          TEST_CASE(scans_follow_pages_to_the_end), TEST_CASE(too_large_participant_is_not_retried),
          TEST_CASE(rollback_releases_every_group),
          TEST_CASE(timed_out_read_is_aborted_at_its_group), TEST_CASE(retry_keeps_its_age),
          TEST_CASE(get_for_update_request))
