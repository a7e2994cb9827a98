/* Integration: a hostile client's raw requests against a three-node TLS cluster (issue 16,
 * "acknowledged means stored"). Every one is answered Error{INVALID} before it reaches a lock
 * or the log, and the cluster goes on serving everyone else. Requests are written in the
 * schema's JSON mapping (tests/support/wire.h) where they are messages with values out of
 * range, and as raw bytes where they are not messages at all:
 *
 *   oversized_key     a commit with a 9000-byte key (and other keys no replica may store) is
 *                     refused, while a good commit sent at the same moment is stored on every
 *                     replica; the refused transaction's other write is nowhere
 *   reserved_ids      status (and every other op) for the meta group's own transaction ids is
 *                     refused, and the split that uses such an id still completes
 *   future_reads      a read 1.9 s ahead is refused and a read 0.6 s ahead waits until its
 *                     time: neither pushes the next commit's commit wait up
 *   priorities        INT64_MIN (never wounded) and other ages far from the clock are refused
 *   exact_types       INT64_MIN staleness, a float or string ts, bad limits, and malformed
 *                     register, propose and split requests are refused */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_util.h"
#include "tablet/node/nd.h"
#include "tests/support/cluster.h"
#include "launch/proc.h"
#include "tests/test.h"

#define NNODES 3
#define GROUP  2
#define META   1

static bool started;

static void setup(void)
{
    if (started)
        return;
    started = true;
    CHECK_EQ(tc_setup(NNODES, "validate"), 0);
    for (int i = 0; i < NNODES; i++)
        tc_start(i);
    CHECK_EQ(tc_init(1), 0);
    CHECK(tc_wait_leader(META, -1, 20000) >= 0);
    CHECK(tc_wait_leader(GROUP, -1, 20000) >= 0);
}

static bool ok(json_t *r)
{
    return r && json_is_true(json_object_get(r, "ok"));
}

static const char *err_of(json_t *r)
{
    return r ? json_string_value(json_object_get(r, "error")) ?: "" : "no reply";
}

static const char *msg_of(json_t *r)
{
    return r ? json_string_value(json_object_get(r, "message")) ?: "" : "";
}

static bool invalid(json_t *r)
{
    return r && !ok(r) && strcmp(err_of(r), "invalid") == 0;
}

/* A request (JSON text) to the leader of gid, retried while leadership settles. */
static json_t *to_leader_text(int gid, uint8_t type, const char *text, int *at)
{
    json_t *r = NULL;
    for (int tries = 0; tries < 40; tries++) {
        int l = tc_wait_leader(gid, -1, 10000);
        if (l < 0)
            break;
        r = tc_request(l, type, text);
        const char *e = r ? err_of(r) : "none";
        if (strcmp(e, "not_leader") != 0 && strcmp(e, "none") != 0 &&
            !strstr(msg_of(r), "predecessors")) {
            if (at)
                *at = l;
            break;
        }
        json_decref(r);
        r = NULL;
        sleep_ms(200);
    }
    return r;
}

static json_t *to_leader(int gid, json_t *req)
{
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *r = text ? to_leader_text(gid, ND_MSG_TXN, text, NULL) : NULL;
    free(text);
    return r;
}

static uint64_t next_id(void)
{
    static uint64_t n;
    return 7000000 + (uint64_t)(mr_realtime_ns() & 0xfffff) * 16 + n++;
}

static json_t *commit_of(json_t *writes)
{
    return json_pack("{s:i, s:I, s:I, s:s, s:o, s:i}", "group", GROUP, "txn", (json_int_t)next_id(),
                     "prio", (json_int_t)mr_realtime_ns(), "op", "commit", "writes", writes,
                     "nreads", 0);
}

/* A snapshot read of key at ts at node i: its value (malloc'd) or NULL. */
static char *value_at(int i, const char *key, int64_t ts)
{
    json_t *req = json_pack("{s:i, s:s, s:I}", "group", GROUP, "key", key, "ts", (json_int_t)ts);
    char *text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *r = tc_request(i, ND_MSG_SNAPREAD, text);
    free(text);
    char *v = ok(r) && json_is_string(json_object_get(r, "value"))
                  ? strdup(json_string_value(json_object_get(r, "value")))
                  : NULL;
    json_decref(r);
    return v;
}

typedef struct call {
    json_t *req;
    json_t *reply;
} call;

static void *commit_thread(void *arg)
{
    call *c = arg;
    c->reply = to_leader(GROUP, c->req);
    return NULL;
}

TEST(oversized_key)
{
    setup();
    char *big = malloc(9001);
    CHECK(big);
    memset(big, 'x', 9000);
    big[9000] = '\0';
    /* The bad commit and a good one from another client, at the same moment. */
    call bad = {.req = commit_of(json_pack("[{s:s, s:s}, {s:s, s:s}]", "key", "good1", "value", "v",
                                           "key", big, "value", "big"))};
    call good = {.req = commit_of(json_pack("[{s:s, s:s}]", "key", "other", "value", "stored"))};
    free(big);
    pthread_t tb, tg;
    pthread_create(&tb, NULL, commit_thread, &bad);
    pthread_create(&tg, NULL, commit_thread, &good);
    pthread_join(tb, NULL);
    pthread_join(tg, NULL);
    bool refused = invalid(bad.reply) && strstr(msg_of(bad.reply), "9000 bytes");
    printf("  the commit with a 9000-byte key: %s %s\n", ok(bad.reply) ? "ok" : err_of(bad.reply),
           msg_of(bad.reply));
    bool good_ok = ok(good.reply);
    int64_t ts = json_integer_value(json_object_get(good.reply, "ts"));
    json_decref(bad.reply);
    json_decref(good.reply);
    CHECKF(good_ok, "the good commit was not acknowledged");
    /* Acknowledged means stored, on every replica; the refused transaction left nothing. */
    for (int i = 0; i < NNODES; i++) {
        char *v = value_at(i, "other", ts);
        bool stored = v && strcmp(v, "stored") == 0;
        free(v);
        CHECKF(stored, "node %d does not have the acknowledged commit", i);
        v = value_at(i, "good1", ts);
        CHECKF(!v, "node %d has a write of the refused transaction", i);
    }
    CHECKF(refused, "the commit with a 9000-byte key was not refused as invalid");
    /* Other keys no replica could store, each refused on its own. */
    json_t *r = to_leader(GROUP, commit_of(json_pack("[{s:s, s:s}]", "key", "", "value", "v")));
    CHECKF(invalid(r), "an empty key: %s", err_of(r));
    json_decref(r);
    /* Binary keys: one that is not UTF-8 is a key like any other; one that starts with a NUL
     * is a system key. */
    char raw[300];
    snprintf(raw, sizeof raw,
             "{\"group\":%d,\"txn\":%llu,\"prio\":%lld,\"op\":\"commit\",\"nreads\":0,"
             "\"writes\":[{\"key\":{\"hex\":\"fffe\"},\"value\":\"v\"}]}",
             GROUP, (unsigned long long)next_id(), (long long)mr_realtime_ns());
    r = to_leader_text(GROUP, ND_MSG_TXN, raw, NULL);
    CHECKF(ok(r), "a non-UTF-8 key (keys are any bytes): %s %s", err_of(r), msg_of(r));
    json_decref(r);
    snprintf(raw, sizeof raw,
             "{\"group\":%d,\"txn\":%llu,\"prio\":%lld,\"op\":\"commit\",\"nreads\":0,"
             "\"writes\":[{\"key\":\"\\u0000p/0000000000000001\",\"value\":\"v\"}]}",
             GROUP, (unsigned long long)next_id(), (long long)mr_realtime_ns());
    r = to_leader_text(GROUP, ND_MSG_TXN, raw, NULL);
    CHECKF(invalid(r), "a system key: %s", err_of(r));
    json_decref(r);
    /* The group still takes commits. */
    r = to_leader(GROUP, commit_of(json_pack("[{s:s, s:s}]", "key", "after", "value", "v")));
    CHECKF(ok(r), "a commit afterwards: %s %s", err_of(r), msg_of(r));
    json_decref(r);
}

TEST(reserved_ids)
{
    setup();
    /* The meta group numbers the first split child 3 with transaction (1 << 62) | 3 << 1. */
    uint64_t split_id = ND_TXN_SYSTEM | (3 << 1);
    char req[300];
    snprintf(req, sizeof req, "{\"group\":%d,\"txn\":%llu,\"op\":\"status\"}", META,
             (unsigned long long)split_id);
    json_t *r = to_leader_text(META, ND_MSG_TXN, req, NULL);
    bool refused = invalid(r);
    printf("  status of the split's id: %s %s\n", ok(r) ? "ok" : err_of(r), msg_of(r));
    json_decref(r);
    /* The split that takes that id completes. */
    char *out = NULL;
    int rc = tc_meridian(&out, "split m --wait 25s --host 127.0.0.1:%d --certs %s", tc.ports[0],
                         tc.certs);
    CHECKF(rc == 0, "split: exit %d: %s", rc, out ? out : "");
    free(out);
    CHECKF(refused, "status of the split's transaction id was not refused");
    snprintf(req, sizeof req, "{\"group\":%d,\"txn\":%llu,\"op\":\"status\"}", META,
             (unsigned long long)(ND_TXN_SYSTEM | META));
    r = to_leader_text(META, ND_MSG_TXN, req, NULL);
    CHECKF(invalid(r), "status of the cluster records' id: %s", err_of(r));
    json_decref(r);
    static const char *const ops[] = {"abort", "read", "commit"};
    for (int k = 0; k < 3; k++) {
        snprintf(req, sizeof req,
                 "{\"group\":%d,\"txn\":%llu,\"prio\":%lld,\"op\":\"%s\",\"key\":\"k\","
                 "\"writes\":[],\"nreads\":0}",
                 GROUP, (unsigned long long)split_id, (long long)mr_realtime_ns(), ops[k]);
        r = to_leader_text(GROUP, ND_MSG_TXN, req, NULL);
        CHECKF(invalid(r), "%s with a reserved id: %s", ops[k], err_of(r));
        json_decref(r);
    }
    snprintf(req, sizeof req, "{\"group\":%d,\"txn\":0,\"op\":\"status\"}", GROUP);
    r = to_leader_text(GROUP, ND_MSG_TXN, req, NULL);
    CHECKF(invalid(r), "id 0: %s", err_of(r));
    json_decref(r);
}

/* A commit at the group's leader: its commit_wait_ns, or -1. */
static int64_t commit_wait_of(const char *key)
{
    json_t *r = to_leader(GROUP, commit_of(json_pack("[{s:s, s:s}]", "key", key, "value", "v")));
    int64_t w = ok(r) ? json_integer_value(json_object_get(r, "commit_wait_ns")) : -1;
    if (!ok(r))
        fprintf(stderr, "  commit of %s: %s %s\n", key, err_of(r), msg_of(r));
    json_decref(r);
    return w;
}

TEST(future_reads)
{
    setup();
    int leader = tc_wait_leader(GROUP, -1, 20000);
    CHECK(leader >= 0);
    int64_t w0 = commit_wait_of("alice");
    CHECK(w0 >= 0);
    for (int round = 0; round < 3; round++) {
        /* 1.9 s ahead: refused (before, a leader whose lease reached that far promised it, and
         * the next commit waited 1.8 s; these leases last 1 s, so the 0.6 s reads below show
         * that). */
        char req[200];
        snprintf(req, sizeof req, "{\"group\":%d,\"key\":\"alice\",\"ts\":%lld}", GROUP,
                 (long long)(mr_realtime_ns() + 1900 * MR_NS_PER_MS));
        json_t *r = tc_request(leader, ND_MSG_SNAPREAD, req);
        bool refused = invalid(r);
        json_decref(r);
        int64_t w = commit_wait_of("alice");
        printf("  round %d: commit wait after a read 1.9 s ahead (%s): %.1f ms\n", round,
               refused ? "refused" : "answered", (double)w / 1e6);
        CHECKF(w >= 0 && w < 200 * MR_NS_PER_MS, "commit wait %lld ns", (long long)w);
        /* 0.6 s ahead, at the leader and at a follower: answered once that time has come. */
        for (int at = 0; at < 2; at++) {
            int node = at == 0 ? leader : (leader + 1) % NNODES;
            int64_t ts = mr_realtime_ns() + 600 * MR_NS_PER_MS;
            snprintf(req, sizeof req, "{\"group\":%d,\"key\":\"alice\",\"ts\":%lld}", GROUP,
                     (long long)ts);
            int64_t t0 = mr_monotonic_ns();
            r = tc_request(node, ND_MSG_SNAPREAD, req);
            int64_t took = mr_monotonic_ns() - t0;
            /* (the node's TT.now().latest reached ts: its clock's bound is 1 ms) */
            bool early = mr_realtime_ns() < ts - 20 * MR_NS_PER_MS;
            bool found = ok(r) && json_is_string(json_object_get(r, "value"));
            char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
            json_decref(r);
            w = commit_wait_of("alice");
            printf("  round %d: a read 0.6 s ahead at node %d took %lld ms; the next commit "
                   "waited %.1f ms\n",
                   round, node, (long long)(took / MR_NS_PER_MS), (double)w / 1e6);
            CHECKF(found, "a read 0.6 s ahead at node %d: %s", node, text ? text : "no reply");
            free(text);
            /* (commit wait is about 2 epsilon = 2 ms here unless a promise pushed it) */
            CHECKF(w >= 0 && w < 200 * MR_NS_PER_MS, "commit wait %lld ns", (long long)w);
            CHECKF(!early, "answered before its time (after %lld ms)",
                   (long long)(took / MR_NS_PER_MS));
        }
        CHECKF(refused, "a read 1.9 s ahead was not refused");
    }
}

TEST(priorities)
{
    setup();
    static const long long bad[] = {INT64_MIN, INT64_MIN + 1, 0, 1, INT64_MAX};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char req[300];
        snprintf(req, sizeof req,
                 "{\"group\":%d,\"txn\":%llu,\"prio\":%lld,\"op\":\"read\",\"key\":\"a\","
                 "\"end\":\"\"}",
                 GROUP, (unsigned long long)next_id(), bad[k]);
        json_t *r = to_leader_text(GROUP, ND_MSG_TXN, req, NULL);
        CHECKF(invalid(r), "a range lock at priority %lld: %s", bad[k], err_of(r));
        json_decref(r);
        snprintf(req, sizeof req,
                 "{\"group\":%d,\"txn\":%llu,\"prio\":%lld,\"op\":\"commit\",\"nreads\":0,"
                 "\"writes\":[{\"key\":\"p\",\"value\":\"v\"}]}",
                 GROUP, (unsigned long long)next_id(), bad[k]);
        r = to_leader_text(GROUP, ND_MSG_TXN, req, NULL);
        CHECKF(invalid(r), "a commit at priority %lld: %s", bad[k], err_of(r));
        json_decref(r);
    }
    /* A real start time locks a range and lets it go. */
    uint64_t id = next_id();
    char req[300];
    snprintf(req, sizeof req,
             "{\"group\":%d,\"txn\":%llu,\"prio\":%lld,\"op\":\"read\",\"key\":\"a\","
             "\"end\":\"b\"}",
             GROUP, (unsigned long long)id, (long long)mr_realtime_ns());
    json_t *r = to_leader_text(GROUP, ND_MSG_TXN, req, NULL);
    CHECKF(ok(r), "a range read: %s %s", err_of(r), msg_of(r));
    json_decref(r);
    snprintf(req, sizeof req, "{\"group\":%d,\"txn\":%llu,\"prio\":%lld,\"op\":\"abort\"}", GROUP,
             (unsigned long long)id, (long long)mr_realtime_ns());
    r = to_leader_text(GROUP, ND_MSG_TXN, req, NULL);
    CHECKF(ok(r), "abort: %s", err_of(r));
    json_decref(r);
}

/* Bytes to node i as a request of type, sent as they are. */
static json_t *raw_bytes(int i, uint8_t type, const void *bytes, size_t len)
{
    return tc_request_as(i, "client.root", type, bytes, (uint32_t)len);
}

TEST(exact_types)
{
    setup();
    char req[300];
    /* Messages with values out of range. */
    static const char *const snapreads[] = {
        "{\"group\":%d,\"key\":\"alice\",\"exact_staleness_ns\":-9223372036854775808}",
        "{\"group\":%d,\"key\":\"alice\",\"max_staleness_ns\":-9223372036854775808}",
        "{\"group\":%d,\"key\":\"alice\",\"max_staleness_ns\":9223372036854775807}",
        "{\"group\":%d,\"key\":\"alice\",\"ts\":-1}",
        "{\"group\":%d,\"key\":\"a\",\"end\":\"z\",\"limit\":0}",
        "{\"group\":%d,\"key\":\"a\",\"end\":\"z\",\"limit\":1000000}",
        "{\"group\":%d,\"key\":\"b\",\"end\":\"a\"}",
        "{\"group\":%d,\"key\":\"\"}",
        "{\"group\":0,\"key\":\"alice\",\"ts\":%d}",
    };
    for (size_t k = 0; k < sizeof snapreads / sizeof snapreads[0]; k++) {
        snprintf(req, sizeof req, snapreads[k], GROUP);
        for (int i = 0; i < NNODES; i++) {
            json_t *r = tc_request(i, ND_MSG_SNAPREAD, req);
            CHECKF(invalid(r), "node %d answered %s to %s", i, ok(r) ? "ok" : err_of(r), req);
            json_decref(r);
        }
    }
    /* Bytes that are not the message of their type: a field of the wrong wire type (group as
     * bytes), truncated, a required field missing (no key), garbage, and a TXN whose op this
     * version does not know. */
    static const struct {
        uint8_t type;
        uint8_t len;
        uint8_t b[8];
    } raws[] = {
        {ND_MSG_SNAPREAD, 5, {0x0a, 0x01, 0x32, 0x12, 0x00}},
        {ND_MSG_SNAPREAD, 1, {0x08}},
        {ND_MSG_SNAPREAD, 2, {0x08, 0x02}},
        {ND_MSG_SNAPREAD, 3, {0xff, 0xff, 0xff}},
        {ND_MSG_TXN, 6, {0x08, 0x02, 0x10, 0x07, 0x20, 0x09}},
        {ND_MSG_SPLIT_AT, 2, {0x08, 0x05}},
        {ND_MSG_REGISTER, 2, {0x08, 0x02}},
        {ND_MSG_INIT, 3, {0x08, 0x80, 0x80}},
    };
    for (size_t k = 0; k < sizeof raws / sizeof raws[0]; k++) {
        json_t *r = raw_bytes(k % NNODES, raws[k].type, raws[k].b, raws[k].len);
        CHECKF(invalid(r) || (raws[k].type == ND_MSG_INIT && r && !ok(r)),
               "raw request %zu (type %u) answered %s", k, raws[k].type, ok(r) ? "ok" : err_of(r));
        json_decref(r);
    }
    /* The scan default: a scan without a limit is still bounded (and answered). */
    snprintf(req, sizeof req, "{\"group\":%d,\"key\":\"a\",\"end\":\"b\"}", GROUP);
    json_t *r = tc_request(0, ND_MSG_SNAPREAD, req);
    CHECKF(ok(r), "a scan: %s %s", err_of(r), msg_of(r));
    json_decref(r);
    /* The other client requests. */
    snprintf(req, sizeof req, "{\"group\":0,\"op\":\"write\",\"value\":\"v\"}");
    r = tc_request(0, ND_MSG_REGISTER, req);
    CHECKF(invalid(r), "register with group 0: %s", err_of(r));
    json_decref(r);
    snprintf(req, sizeof req, "{\"group\":%d,\"op\":\"cas\",\"value\":\"v\"}", GROUP);
    r = tc_request(0, ND_MSG_REGISTER, req);
    CHECKF(invalid(r), "cas without expected: %s", err_of(r));
    json_decref(r);
    uint8_t prop[4] = {2, 0, 0, 0}; /* field 0: no message has one */
    r = raw_bytes(0, ND_MSG_PROPOSE, prop, sizeof prop);
    CHECKF(invalid(r), "a propose that is not a ProposeRequest: %s", err_of(r));
    json_decref(r);
    r = tc_request(0, ND_MSG_PROPOSE, "{\"group\":0,\"data\":\"x\"}");
    CHECKF(invalid(r), "a propose to group 0: %s", err_of(r));
    json_decref(r);
    r = tc_request(0, ND_MSG_SPLIT_AT, "{\"key\":{\"hex\":\"0078\"}}");
    CHECKF(invalid(r), "split at a system key: %s", err_of(r));
    json_decref(r);
    r = tc_request(0, ND_MSG_FAULT, "{\"set_partition\":true,\"partition\":[64]}");
    CHECKF(invalid(r), "a partition from node 64: %s", err_of(r));
    json_decref(r);
}

static const test_case cases[] = {TEST_CASE(oversized_key), TEST_CASE(reserved_ids),
                                  TEST_CASE(future_reads), TEST_CASE(priorities),
                                  TEST_CASE(exact_types)};

int main(int argc, char **argv)
{
    int rc = test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
    tc_teardown(rc != 0);
    return rc;
}
