/* Unit: the checks every client request passes before a node acts on it (nd_validate.h). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pr_json.h"
#include "tablet/mvcc/mv.h"
#include "tablet/node/nd_validate.h"
#include "tests/test.h"

#define NOW 1800000000000000000LL /* a clock reading, ns since the epoch */

/* Requests are written in the schema's JSON mapping (proto/pr_json.h). One that is not such a
 * message (a field of another type, out of its type's range, unknown, a required one missing)
 * would not decode at the node either, which answers it as invalid too. */
static pr_arena arena;
static bool arena_ready;

static void arena_free(void)
{
    pr_arena_free(&arena);
}

static const ProtobufCMessage *msg(const ProtobufCMessageDescriptor *d, const char *text)
{
    if (!arena_ready) {
        pr_arena_init(&arena);
        atexit(arena_free);
        arena_ready = true;
    }
    json_error_t je;
    json_t *o = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    pr_arena_reset(&arena);
    const ProtobufCMessage *m = o ? pr_from_json(d, o, &arena, NULL) : NULL;
    json_decref(o);
    return m;
}

/* The verdict on an ND_MSG_TXN request; *msg (optional) gets the message. r borrows from the
 * arena until the next request. */
static int txn(const char *text, nd_txn_req *r, char *out, size_t cap)
{
    const Meridian__TxnRequest *m =
        (const Meridian__TxnRequest *)msg(&meridian__txn_request__descriptor, text);
    nd_txn_req tmp;
    mr_err err;
    mr_err_clear(&err);
    int rc = m ? nd_valid_txn(m, NOW, r ? r : &tmp, &err) : MR_EINVAL;
    if (out)
        snprintf(out, cap, "%s", m ? mr_err_msg(&err) : "does not decode");
    return rc;
}

static int snap(const char *text, nd_snap_req *r)
{
    const Meridian__SnapReadRequest *m =
        (const Meridian__SnapReadRequest *)msg(&meridian__snap_read_request__descriptor, text);
    nd_snap_req tmp;
    return m ? nd_valid_snapread(m, r ? r : &tmp, NULL) : MR_EINVAL;
}

TEST(keys_are_nonempty_bytes_not_starting_with_nul_within_the_limit)
{
    CHECK_EQ(nd_valid_key("a", 1, NULL), MR_OK);
    CHECK_EQ(nd_valid_key("", 0, NULL), MR_EINVAL);
    CHECK_EQ(nd_valid_key(NULL, 3, NULL), MR_EINVAL);
    CHECK_EQ(nd_valid_key("\0p/1", 4, NULL), MR_EINVAL); /* a system key */
    CHECK_EQ(nd_valid_key("\0", 1, NULL), MR_EINVAL);
    /* Any bytes after the first: NULs, invalid UTF-8, 0xff. */
    CHECK_EQ(nd_valid_key("a\0b", 3, NULL), MR_OK);
    CHECK_EQ(nd_valid_key("\xff", 1, NULL), MR_OK);
    CHECK_EQ(nd_valid_key("\x01\0\0", 3, NULL), MR_OK);
    CHECK_EQ(nd_valid_key("\xc0\xaf", 2, NULL), MR_OK);
    CHECK_EQ(nd_valid_key("\xf0\x9f\x98\x80", 4, NULL), MR_OK);
    char *big = malloc(ND_KEY_MAX + 1);
    CHECK(big);
    memset(big, 'k', ND_KEY_MAX + 1);
    mr_err err;
    CHECK_EQ(nd_valid_key(big, ND_KEY_MAX, NULL), MR_OK);
    int rc = nd_valid_key(big, ND_KEY_MAX + 1, &err);
    free(big);
    CHECK_EQ(rc, MR_EINVAL);
    CHECKF(strstr(err.msg, "4097 bytes"), "%s", err.msg);
    CHECK_EQ(nd_valid_value(MV_MAX_VALUE, NULL), MR_OK);
    CHECK_EQ(nd_valid_value((size_t)MV_MAX_VALUE + 1, NULL), MR_EINVAL);
}

TEST(transaction_ids_stay_out_of_the_clusters_own)
{
    CHECK(nd_txn_id_client(1));
    CHECK(nd_txn_id_client(ND_TXN_CLIENT_MAX));
    CHECK(!nd_txn_id_client(0));
    CHECK(!nd_txn_id_client(ND_TXN_SYSTEM | 1));        /* the meta group's cluster records */
    CHECK(!nd_txn_id_client(ND_TXN_SYSTEM | (5 << 1))); /* a split's numbering */
    CHECK(!nd_txn_id_client(UINT64_MAX));
    char msg[600];
    CHECK_EQ(
        txn("{\"group\":1,\"txn\":4611686018427387905,\"op\":\"status\"}", NULL, msg, sizeof msg),
        MR_EINVAL);
    CHECKF(strstr(msg, "\"txn\""), "%s", msg);
    CHECK_EQ(txn("{\"group\":2,\"txn\":-5,\"op\":\"status\"}", NULL, NULL, 0), MR_EINVAL);
    CHECK_EQ(txn("{\"group\":2,\"txn\":0,\"op\":\"status\"}", NULL, NULL, 0), MR_EINVAL);
    CHECK_EQ(txn("{\"group\":2,\"txn\":7.0,\"op\":\"status\"}", NULL, NULL, 0), MR_EINVAL);
    CHECK_EQ(txn("{\"group\":2,\"txn\":7,\"op\":\"status\"}", NULL, NULL, 0), MR_OK);
}

TEST(priorities_are_start_times_near_the_nodes_clock)
{
    CHECK_EQ(nd_valid_prio(NOW, NOW, NULL), MR_OK);
    CHECK_EQ(nd_valid_prio(NOW - ND_PRIO_WINDOW, NOW, NULL), MR_OK);
    CHECK_EQ(nd_valid_prio(NOW + ND_PRIO_WINDOW, NOW, NULL), MR_OK);
    CHECK_EQ(nd_valid_prio(NOW - ND_PRIO_WINDOW - 1, NOW, NULL), MR_EINVAL);
    CHECK_EQ(nd_valid_prio(INT64_MIN, NOW, NULL), MR_EINVAL);
    CHECK_EQ(nd_valid_prio(INT64_MIN + 1, NOW, NULL), MR_EINVAL); /* the node's own */
    CHECK_EQ(nd_valid_prio(0, NOW, NULL), MR_EINVAL);
    CHECK_EQ(nd_valid_prio(INT64_MAX, NOW, NULL), MR_EINVAL);
    char req[300];
    snprintf(req, sizeof req, "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"k\"}",
             (long long)INT64_MIN);
    CHECK_EQ(txn(req, NULL, NULL, 0), MR_EINVAL);
    snprintf(req, sizeof req, "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"abort\"}",
             (long long)NOW);
    CHECK_EQ(txn(req, NULL, NULL, 0), MR_OK);
    snprintf(req, sizeof req, "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"abort\"}",
             (long long)INT64_MIN); /* an abort takes no lock: any age releases */
    CHECK_EQ(txn(req, NULL, NULL, 0), MR_OK);
    snprintf(req, sizeof req,
             "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[]}",
             (long long)(NOW + ND_PRIO_WINDOW + 1));
    CHECK_EQ(txn(req, NULL, NULL, 0), MR_EINVAL);
    CHECK_EQ(txn("{\"group\":2,\"txn\":9,\"op\":\"abort\"}", NULL, NULL, 0), MR_EINVAL);
    CHECK_EQ(txn("{\"group\":2,\"txn\":9,\"prio\":\"1\",\"op\":\"abort\"}", NULL, NULL, 0),
             MR_EINVAL);
}

TEST(transaction_requests_have_exact_types)
{
    char req[400];
#define REQ(fmt, ...) (snprintf(req, sizeof req, fmt, __VA_ARGS__), req)
    nd_txn_req r;
    CHECK_EQ(txn(REQ("{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"k\"}",
                     (long long)NOW),
                 &r, NULL, 0),
             MR_OK);
    CHECK_EQ(r.op, ND_TXN_READ);
    CHECK(!r.scan);
    CHECK_EQ(r.group, 2);
    /* A scan: "" starts at the range's start; default and bounded limits. */
    CHECK_EQ(txn(REQ("{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"\","
                     "\"end\":\"\"}",
                     (long long)NOW),
                 &r, NULL, 0),
             MR_OK);
    CHECK(r.scan && r.elen == 0);
    CHECK_EQ(r.limit, ND_ROW_LIMIT_DEFAULT);
    const char *bad[] = {
        "{\"group\":-2,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"k\"}",
        "{\"group\":\"x\",\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"k\"}",
        "{\"group\":9223372036854775808,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"k\"}",
        "{\"group\":0,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"k\"}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"write\",\"key\":\"k\"}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"\"}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":5}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"b\",\"end\":\"a\"}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"a\",\"end\":\"b\","
        "\"limit\":0}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"a\",\"end\":\"b\","
        "\"limit\":-1}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"read\",\"key\":\"a\",\"end\":\"b\","
        "\"limit\":1.5}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":{}}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[\"k\"]}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[{\"value\":\"v\"}]}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[{\"key\":\"\"}]}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[{\"key\":\"k\","
        "\"value\":1}]}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[{\"key\":\"k\","
        "\"delete\":1}]}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[{\"key\":\"k\","
        "\"delete\":true,\"value\":\"v\"}]}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[],\"nreads\":-1}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[],\"nreads\":"
        "4294967296}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[],\"coordinator\":"
        "0}",
        "{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[],\"participants\":"
        "[2,0]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = txn(REQ(bad[i], (long long)NOW), NULL, NULL, 0);
        CHECKF(rc == MR_EINVAL, "accepted: %s", req);
    }
    /* A write without a value deletes; a commit may carry no writes (its reads are checked). */
    int rc = txn(REQ("{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[{"
                     "\"key\":\"k\",\"value\":\"v\"},{\"key\":\"j\"},{"
                     "\"key\":\"i\",\"value\":\"\"}],\"nreads\":2,"
                     "\"coordinator\":2,\"participants\":[2,3]}",
                     (long long)NOW),
                 &r, NULL, 0);
    CHECK_EQ(rc, MR_OK);
    CHECK_EQ(r.nreads, 2);
    CHECK_EQ(r.coordinator, 2);
    CHECK_EQ(r.nparts, 2);
    CHECK_EQ(r.nwrites, 3);
    CHECK(r.writes[0]->has_value && !r.writes[1]->has_value && r.writes[2]->has_value);
    CHECK_EQ(txn(REQ("{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"nreads\":1}",
                     (long long)NOW),
                 &r, NULL, 0),
             MR_OK);
    CHECK_EQ(r.nwrites, 0);
#undef REQ
}

TEST(a_commit_with_an_oversized_key_is_refused_with_its_size)
{
    size_t kl = 9000;
    char *key = malloc(kl + 1);
    CHECK(key);
    memset(key, 'x', kl);
    key[kl] = 0;
    json_t *o = json_pack("{s:i, s:i, s:I, s:s, s:[{s:s, s:s}, {s:s, s:s}]}", "group", 2, "txn", 9,
                          "prio", (json_int_t)NOW, "op", "commit", "writes", "key", "good1",
                          "value", "v", "key", key, "value", "big");
    free(key);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char why[600];
    int rc = txn(text, NULL, why, sizeof why);
    free(text);
    CHECK_EQ(rc, MR_EINVAL);
    CHECKF(strstr(why, "write 1") && strstr(why, "9000 bytes"), "%s", why);
}

TEST(a_commit_deadline_is_a_commit_s_and_not_negative)
{
    char req[400], why[300];
#define REQ(fmt, ...) (snprintf(req, sizeof req, fmt, __VA_ARGS__), req)
    nd_txn_req r;
    CHECK_EQ(txn(REQ("{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[],"
                     "\"commit_before\":%lld}",
                     (long long)NOW, (long long)NOW + 5),
                 &r, NULL, 0),
             MR_OK);
    CHECK_EQ(r.commit_before, NOW + 5);
    /* 0 and absent: no limit */
    CHECK_EQ(txn(REQ("{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[],"
                     "\"commit_before\":0}",
                     (long long)NOW),
                 &r, NULL, 0),
             MR_OK);
    CHECK_EQ(r.commit_before, 0);
    CHECK_EQ(txn(REQ("{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\"}", (long long)NOW), &r,
                 NULL, 0),
             MR_OK);
    CHECK_EQ(r.commit_before, 0);
    /* negative */
    CHECK_EQ(txn(REQ("{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"commit\",\"writes\":[],"
                     "\"commit_before\":-1}",
                     (long long)NOW),
                 NULL, why, sizeof why),
             MR_EINVAL);
    CHECKF(strstr(why, "commit_before") && strstr(why, "-1"), "%s", why);
    /* on another op */
    const char *ops[] = {"read", "abort", "status"};
    for (size_t i = 0; i < 3; i++) {
        CHECK_EQ(txn(REQ("{\"group\":2,\"txn\":9,\"prio\":%lld,\"op\":\"%s\",\"key\":\"k\","
                         "\"commit_before\":%lld}",
                         (long long)NOW, ops[i], (long long)NOW + 5),
                     NULL, why, sizeof why),
                 MR_EINVAL);
        CHECKF(strstr(why, "commit_before"), "%s: %s", ops[i], why);
    }
#undef REQ
}

TEST(snapshot_reads_have_one_mode_in_range)
{
    nd_snap_req r;
    CHECK_EQ(snap("{\"group\":2,\"key\":\"k\"}", &r), MR_OK);
    CHECK_EQ(r.mode, ND_READ_STRONG);
    CHECK_EQ(r.limit, 0); /* a point read */
    CHECK_EQ(snap("{\"group\":2,\"key\":\"a\",\"end\":\"z\"}", &r), MR_OK);
    CHECK_EQ(r.limit, ND_ROW_LIMIT_DEFAULT); /* a scan gets a default limit */
    CHECK_EQ(snap("{\"group\":2,\"key\":\"\",\"limit\":10}", &r), MR_OK);
    CHECK_EQ(r.limit, 10);
    CHECK_EQ(snap("{\"group\":2,\"key\":\"k\",\"ts\":12}", &r), MR_OK);
    CHECK_EQ(r.mode, ND_READ_AT);
    CHECK_EQ(r.ts, 12);
    CHECK_EQ(snap("{\"group\":2,\"key\":\"k\",\"exact_staleness_ns\":5}", &r), MR_OK);
    CHECK_EQ(r.mode, ND_READ_EXACT);
    CHECK_EQ(r.staleness, 5);
    CHECK_EQ(snap("{\"group\":2,\"key\":\"k\",\"max_staleness_ns\":0}", &r), MR_OK);
    CHECK_EQ(r.mode, ND_READ_BOUNDED);
    const char *bad[] = {
        "{\"group\":2,\"key\":\"k\",\"ts\":1.5}", /* silently strong, before */
        "{\"group\":2,\"key\":\"k\",\"ts\":\"5\"}",
        "{\"group\":2,\"key\":\"k\",\"ts\":-1}",
        "{\"group\":2,\"key\":\"k\",\"exact_staleness_ns\":-9223372036854775808}",
        "{\"group\":2,\"key\":\"k\",\"max_staleness_ns\":-9223372036854775808}",
        "{\"group\":2,\"key\":\"k\",\"max_staleness_ns\":9223372036854775807}",
        "{\"group\":2,\"key\":\"k\",\"exact_staleness_ns\":1e3}",
        "{\"group\":2,\"key\":\"k\",\"ts\":5,\"max_staleness_ns\":5}",
        "{\"group\":2,\"key\":\"\"}",
        "{\"group\":2}",
        "{\"key\":\"k\"}",
        "{\"group\":2,\"key\":\"k\",\"end\":\"a\"}",
        "{\"group\":2,\"key\":\"a\",\"end\":\"z\",\"limit\":1000000}",
        "{\"group\":2,\"key\":\"a\",\"end\":7}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(snap(bad[i], NULL) == MR_EINVAL, "accepted: %s", bad[i]);
    /* The cluster's own records (keys starting with 0) only through a system read (whether
     * its sender may make one is the node's to check: a node certificate, the meta group). */
    CHECK_EQ(snap("{\"group\":1,\"key\":{\"hex\":\"006e6f64652f32\"}}", NULL), MR_EINVAL);
    CHECK_EQ(snap("{\"group\":1,\"key\":{\"hex\":\"006e6f64652f32\"},\"system\":true}", &r), MR_OK);
    CHECK(r.system);
    CHECK_EQ(r.klen, 7);
    CHECK_EQ(snap("{\"group\":1,\"key\":{\"hex\":\"006e6f64652f32\"},\"system\":false}", NULL),
             MR_EINVAL);
    CHECK_EQ(snap("{\"group\":1,\"key\":\"\",\"system\":true}", NULL), MR_EINVAL);
    CHECK_EQ(snap("{\"group\":2,\"key\":\"k\"}", &r), MR_OK);
    CHECK(!r.system);
}

TEST(read_timestamps_may_run_ahead_a_little_only)
{
    mr_err err;
    CHECK_EQ(nd_valid_read_ts(NOW, NOW, NULL), MR_OK);
    CHECK_EQ(nd_valid_read_ts(0, NOW, NULL), MR_OK);
    CHECK_EQ(nd_valid_read_ts(NOW + ND_READ_AHEAD_MAX, NOW, NULL), MR_OK);
    CHECK_EQ(nd_valid_read_ts(NOW + ND_READ_AHEAD_MAX + 1, NOW, &err), MR_EINVAL);
    CHECKF(strstr(err.msg, "ahead"), "%s", err.msg);
    CHECK_EQ(nd_valid_read_ts(INT64_MAX, NOW, NULL), MR_EINVAL);
    CHECK_EQ(nd_valid_read_ts(-1, NOW, NULL), MR_EINVAL);
}

TEST(register_propose_and_split_requests)
{
    const ProtobufCMessageDescriptor *reg = &meridian__register_request__descriptor;
    const Meridian__RegisterRequest *rr = (const Meridian__RegisterRequest *)msg(
        reg, "{\"group\":2,\"op\":\"cas\",\"expected\":\"a\",\"value\":\"b\"}");
    CHECK(rr && nd_valid_register(rr, NULL) == MR_OK);
    const char *bad[] = {"{\"group\":2,\"op\":\"cas\",\"value\":\"b\"}",
                         "{\"group\":2,\"op\":\"write\"}",
                         "{\"group\":0,\"op\":\"read\"}",
                         "{\"group\":2,\"op\":\"delete\"}",
                         "{\"group\":2.0,\"op\":\"read\"}",
                         "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rr = (const Meridian__RegisterRequest *)msg(reg, bad[i]);
        CHECKF(!rr || nd_valid_register(rr, NULL) == MR_EINVAL, "accepted: %s", bad[i]);
    }
    Meridian__ProposeRequest p = MERIDIAN__PROPOSE_REQUEST__INIT;
    p.group = 2;
    p.data = (ProtobufCBinaryData){3, (uint8_t *)"abc"};
    CHECK_EQ(nd_valid_propose(&p, NULL), MR_OK);
    p.group = 0;
    CHECK_EQ(nd_valid_propose(&p, NULL), MR_EINVAL);
    p.group = 2;
    p.data.len = (size_t)ND_VALUE_MAX + 1;
    CHECK_EQ(nd_valid_propose(&p, NULL), MR_EINVAL);
    const ProtobufCMessageDescriptor *sa = &meridian__split_at_request__descriptor;
    const Meridian__SplitAtRequest *s1 =
        (const Meridian__SplitAtRequest *)msg(sa, "{\"key\":\"m\"}");
    CHECK(s1 && nd_valid_split_at(s1, NULL) == MR_OK);
    s1 = (const Meridian__SplitAtRequest *)msg(sa, "{\"key\":\"\"}");
    CHECK(s1 && nd_valid_split_at(s1, NULL) == MR_EINVAL);
    CHECK(msg(sa, "{\"key\":[]}") == NULL);
}

TEST(init_requests)
{
    const ProtobufCMessageDescriptor *d = &meridian__init_request__descriptor;
    nd_init_req r;
    const Meridian__InitRequest *m = (const Meridian__InitRequest *)msg(d, "{}");
    CHECK(m && nd_valid_init(m, 5000, 9, &r, NULL) == MR_OK);
    CHECK_EQ(r.data_groups, 1);
    CHECK_EQ(r.replicas, 3);
    CHECK_EQ(r.nsplit, 0);
    m = (const Meridian__InitRequest *)msg(
        d, "{\"data_groups\":3,\"replicas\":5,\"split_at\":[\"h\",\"p\"]}");
    CHECK(m && nd_valid_init(m, 5000, 9, &r, NULL) == MR_OK);
    CHECK_EQ(r.nsplit, 2);
    CHECK_EQ(r.data_groups, 3);
    m = (const Meridian__InitRequest *)msg(d,
                                           "{\"data_groups\":2,\"split_at\":[\"\\u0002\\u0000\"]}");
    CHECK(m && nd_valid_init(m, 5000, 9, &r, NULL) == MR_OK); /* just above "\x02" */
    const char *bad[] = {
        "{\"data_groups\":4294967297}", "{\"data_groups\":0}", "{\"data_groups\":5001}",
        "{\"replicas\":10}", "{\"replicas\":\"3\"}", "{\"data_groups\":2.0}",
        "{\"data_groups\":3,\"split_at\":[\"p\",\"h\"]}", "{\"data_groups\":2,\"split_at\":[\"\"]}",
        "{\"data_groups\":2,\"split_at\":[5]}", "{\"data_groups\":2,\"split_at\":[\"a\",\"b\"]}",
        /* at or below "\x02": the meta group's keys */
        "{\"data_groups\":2,\"split_at\":[\"\\u0002\"]}",
        "{\"data_groups\":2,\"split_at\":[\"\\u0001z\"]}", "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = (const Meridian__InitRequest *)msg(d, bad[i]);
        CHECKF(!m || nd_valid_init(m, 5000, 9, &r, NULL) == MR_EINVAL, "accepted: %s", bad[i]);
    }
}

TEST_MAIN(TEST_CASE(keys_are_nonempty_bytes_not_starting_with_nul_within_the_limit),
          TEST_CASE(transaction_ids_stay_out_of_the_clusters_own),
          TEST_CASE(priorities_are_start_times_near_the_nodes_clock),
          TEST_CASE(transaction_requests_have_exact_types),
          TEST_CASE(a_commit_with_an_oversized_key_is_refused_with_its_size),
          TEST_CASE(a_commit_deadline_is_a_commit_s_and_not_negative),
          TEST_CASE(snapshot_reads_have_one_mode_in_range),
          TEST_CASE(read_timestamps_may_run_ahead_a_little_only),
          TEST_CASE(register_propose_and_split_requests), TEST_CASE(init_requests))
