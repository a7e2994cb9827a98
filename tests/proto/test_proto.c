/* The wire protocol module (proto/pr.h): round trips, malformed input,
 * size caps, the arena and the JSON mapping. */
#include <stdlib.h>

#include <string.h>

#include "proto/pr_json.h"
#include "proto/pr_msg.h"
#include "tests/test.h"

static Meridian__TxnRequest *commit_request(Meridian__Write *ws, Meridian__Write **wp, size_t n,
                                            Meridian__TxnRequest *r)
{
    static uint8_t key[3] = {0x01, 0x00, 0xff}; /* a binary key: a NUL and a non-UTF-8 byte */
    for (size_t i = 0; i < n; i++) {
        meridian__write__init(&ws[i]);
        ws[i].key = (ProtobufCBinaryData){sizeof key, key};
        if (i % 2 == 0) {
            ws[i].has_value = 1;
            ws[i].value = (ProtobufCBinaryData){5, (uint8_t *)"hello"};
        }
        wp[i] = &ws[i];
    }
    meridian__txn_request__init(r);
    r->group = 7;
    r->txn = (1ull << 62) - 1;
    r->has_prio = 1;
    r->prio = -5;
    r->op = MERIDIAN__TXN_REQUEST__OP__COMMIT;
    r->n_writes = n;
    r->writes = wp;
    return r;
}

TEST(round_trip_keeps_binary_keys_and_presence)
{
    Meridian__Write ws[4], *wp[4];
    Meridian__TxnRequest r;
    commit_request(ws, wp, 4, &r);
    uint8_t *buf;
    size_t len;
    mr_err err;
    CHECK_EQ(pr_encode(&r.base, 0, &buf, &len, &err), MR_OK);
    pr_arena a;
    pr_arena_init(&a);
    Meridian__TxnRequest *d =
        (Meridian__TxnRequest *)pr_decode(&meridian__txn_request__descriptor, &a, buf, len, &err);
    free(buf);
    CHECK(d != NULL);
    CHECK_EQ(d->group, 7);
    CHECK(d->txn == (1ull << 62) - 1);
    CHECK(d->has_prio && d->prio == -5);
    CHECK(!d->has_limit && !d->has_nreads && !d->key.data);
    CHECK_EQ(d->n_writes, 4);
    for (size_t i = 0; i < 4; i++) {
        CHECK_EQ(d->writes[i]->key.len, 3);
        CHECK(memcmp(d->writes[i]->key.data, "\x01\x00\xff", 3) == 0);
        CHECK_EQ(d->writes[i]->has_value, i % 2 == 0); /* absent value = delete */
    }
    CHECK(a.used > 0);
    pr_arena_free(&a);
}

TEST(malformed_and_truncated_input_is_refused)
{
    Meridian__Write ws[2], *wp[2];
    Meridian__TxnRequest r;
    commit_request(ws, wp, 2, &r);
    uint8_t *buf;
    size_t len;
    mr_err err;
    CHECK_EQ(pr_encode(&r.base, 0, &buf, &len, &err), MR_OK);
    pr_arena a;
    pr_arena_init(&a);
    /* Every proper prefix that is not itself a valid message is refused, never misread. */
    int refused = 0;
    for (size_t n = 0; n < len; n++) {
        pr_arena_reset(&a);
        if (!pr_decode(&meridian__txn_request__descriptor, &a, buf, n, &err)) {
            refused++;
            CHECK_EQ(err.code, MR_EPROTO);
        }
    }
    CHECK(refused > 0);
    /* A length prefix that points past the end. */
    uint8_t bad[] = {0x4a, 0xff, 0xff, 0xff, 0x0f, 0x01};
    CHECK(!pr_decode(&meridian__txn_request__descriptor, &a, bad, sizeof bad, &err));
    /* A required field missing: a commit without its group. */
    Meridian__TxnRequest nogroup = r;
    uint8_t *b2;
    size_t l2;
    CHECK_EQ(pr_encode(&nogroup.base, 0, &b2, &l2, &err), MR_OK);
    CHECK(pr_decode(&meridian__txn_request__descriptor, &a, b2, l2, &err) != NULL);
    CHECK(!pr_decode(&meridian__txn_request__descriptor, &a, b2 + 2, l2 - 2, &err));
    free(b2);
    free(buf);
    pr_arena_free(&a);
}

TEST(encoding_over_the_cap_is_an_error)
{
    Meridian__Write ws[4], *wp[4];
    Meridian__TxnRequest r;
    commit_request(ws, wp, 4, &r);
    uint8_t *buf = NULL;
    size_t len;
    mr_err err;
    CHECK_EQ(pr_encode(&r.base, 10, &buf, &len, &err), MR_EFULL);
    CHECK(buf == NULL);
    CHECK(strstr(mr_err_msg(&err), "over the 10-byte limit") != NULL);
}

TEST(arena_grows_and_resets)
{
    pr_arena a;
    pr_arena_init(&a);
    for (int i = 0; i < 1000; i++) {
        uint8_t *p = pr_arena_alloc(&a, 100 + (size_t)i);
        CHECK(p != NULL);
        CHECK(((uintptr_t)p & 15) == 0);
        memset(p, i & 0xff, 100 + (size_t)i);
    }
    uint8_t *big = pr_arena_alloc(&a, 3 << 20);
    CHECK(big != NULL);
    big[(3 << 20) - 1] = 1;
    pr_arena_reset(&a);
    CHECK_EQ(a.used, 0);
    CHECK(pr_arena_alloc(&a, 10) != NULL);
    CHECK(pr_arena_dup(&a, "", 0) != NULL);
    pr_arena_free(&a);
    pr_arena_free(&a); /* twice is harmless */
}

TEST(json_mapping_round_trips)
{
    Meridian__Write ws[2], *wp[2];
    Meridian__TxnRequest r;
    commit_request(ws, wp, 2, &r);
    r.n_participants = 2;
    uint64_t parts[2] = {2, 3};
    r.participants = parts;
    json_t *j = pr_to_json(&r.base);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "op")), "commit");
    json_t *w0 = json_array_get(json_object_get(j, "writes"), 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(w0, "key"), "hex")), "0100ff");
    CHECK_STR(json_string_value(json_object_get(w0, "value")), "hello");
    CHECK(json_object_get(json_array_get(json_object_get(j, "writes"), 1), "value") == NULL);
    CHECK(json_object_get(j, "limit") == NULL); /* absent stays absent */
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    Meridian__TxnRequest *back =
        (Meridian__TxnRequest *)pr_from_json(&meridian__txn_request__descriptor, j, &a, &err);
    json_decref(j);
    CHECK(back != NULL);
    CHECK(back->txn == r.txn && back->prio == -5 && back->has_prio);
    CHECK_EQ(back->n_writes, 2);
    CHECK(memcmp(back->writes[0]->key.data, "\x01\x00\xff", 3) == 0);
    CHECK(back->writes[0]->has_value && !back->writes[1]->has_value);
    CHECK_EQ(back->n_participants, 2);
    CHECK_EQ(back->participants[1], 3);
    pr_arena_free(&a);
}

TEST(json_written_by_hand_is_checked)
{
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    const char *good =
        "{\"group\": 2, \"txn\": 9, \"prio\": 1, \"op\": \"read\", \"key\": \"alice\"}";
    json_t *j = json_loads(good, 0, NULL);
    Meridian__TxnRequest *r =
        (Meridian__TxnRequest *)pr_from_json(&meridian__txn_request__descriptor, j, &a, &err);
    json_decref(j);
    CHECK(r != NULL);
    CHECK_EQ(r->op, MERIDIAN__TXN_REQUEST__OP__READ);
    CHECK_EQ(r->key.len, 5);
    static const char *bad[] = {
        "{\"group\": 2, \"txn\": 9, \"op\": \"read\", \"nope\": 1}", /* unknown field */
        "{\"group\": 2, \"txn\": 9, \"op\": \"sing\"}",              /* unknown enum value */
        "{\"group\": -2, \"txn\": 9, \"op\": \"read\"}",             /* uint64 below 0 */
        "{\"group\": 2, \"txn\": 9.5, \"op\": \"read\"}",            /* a float for an integer */
        "{\"group\": 2, \"op\": \"read\"}",                          /* txn missing */
        "{\"group\": 2, \"txn\": 9, \"op\": \"read\", \"limit\": 4294967296}", /* over uint32 */
        "{\"group\": 2, \"txn\": 9, \"op\": \"read\", \"key\": {\"hex\": \"0g\"}}",
        "[1, 2]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        CHECKF(b != NULL, "test JSON %zu", i);
        ProtobufCMessage *m = pr_from_json(&meridian__txn_request__descriptor, b, &a, &err);
        json_decref(b);
        CHECKF(m == NULL && err.code == MR_EINVAL, "accepted: %s", bad[i]);
    }
    pr_arena_free(&a);
}

TEST(replies_carry_an_error_or_a_body)
{
    Meridian__Error e;
    meridian__error__init(&e);
    e.code = MERIDIAN__ERROR_CODE__NOT_LEADER;
    e.leader = "127.0.0.1:7000";
    Meridian__Reply r;
    meridian__reply__init(&r);
    r.error = &e;
    json_t *j = pr_to_json(&r.base);
    CHECK_STR(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
              "not_leader");
    json_decref(j);
    CHECK_STR(pr_error_name(MERIDIAN__ERROR_CODE__WRONG_RANGE), "wrong_range");
    CHECK_STR(pr_error_name((Meridian__ErrorCode)999), "error");

    Meridian__CommitReply c;
    meridian__commit_reply__init(&c);
    c.ts = 42;
    meridian__reply__init(&r);
    r.body_case = MERIDIAN__REPLY__BODY_COMMIT;
    r.commit = &c;
    uint8_t *buf;
    size_t len;
    mr_err err;
    CHECK_EQ(pr_encode(&r.base, 0, &buf, &len, &err), MR_OK);
    pr_arena a;
    pr_arena_init(&a);
    Meridian__Reply *d =
        (Meridian__Reply *)pr_decode(&meridian__reply__descriptor, &a, buf, len, &err);
    free(buf);
    CHECK(d && !d->error && d->body_case == MERIDIAN__REPLY__BODY_COMMIT && d->commit->ts == 42);
    pr_arena_free(&a);
}

/* A Reply encoded from its parts. */
static void encode_reply(const Meridian__Reply *r, uint8_t **buf, size_t *len)
{
    mr_err err;
    if (pr_encode(&r->base, 0, buf, len, &err) != MR_OK)
        *buf = NULL;
}

TEST(reply_decode_insists_on_one_of_error_and_body)
{
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    uint8_t *buf;
    size_t len;
    /* neither */
    Meridian__Reply r = MERIDIAN__REPLY__INIT;
    encode_reply(&r, &buf, &len);
    CHECK(buf);
    CHECK(pr_reply_decode(&a, buf, len, &err) == NULL);
    CHECK_EQ(err.code, MR_EPROTO);
    free(buf);
    /* both */
    Meridian__Error e = MERIDIAN__ERROR__INIT;
    e.code = MERIDIAN__ERROR_CODE__ABORTED;
    Meridian__Ack ack = MERIDIAN__ACK__INIT;
    r.error = &e;
    r.body_case = MERIDIAN__REPLY__BODY_ACK;
    r.ack = &ack;
    encode_reply(&r, &buf, &len);
    CHECK(pr_reply_decode(&a, buf, len, &err) == NULL);
    free(buf);
    /* an error of code 0 */
    r.body_case = MERIDIAN__REPLY__BODY__NOT_SET;
    e.code = MERIDIAN__ERROR_CODE__ERROR_UNSPECIFIED;
    encode_reply(&r, &buf, &len);
    CHECK(pr_reply_decode(&a, buf, len, &err) == NULL);
    free(buf);
    /* an error: its code and message */
    e.code = MERIDIAN__ERROR_CODE__NOT_LEADER;
    e.message = "not the leader";
    e.leader = "10.0.0.1:7000";
    encode_reply(&r, &buf, &len);
    const Meridian__Reply *d = pr_reply_decode(&a, buf, len, &err);
    free(buf);
    CHECK(d != NULL);
    CHECK_EQ(pr_reply_code(d), MERIDIAN__ERROR_CODE__NOT_LEADER);
    CHECK_STR(pr_reply_message(d), "not the leader");
    /* garbage */
    CHECK(pr_reply_decode(&a, "\xff\xff\xff", 3, &err) == NULL);
    pr_arena_free(&a);
}

TEST(every_request_type_has_its_message)
{
    CHECK(pr_request_descriptor(MERIDIAN__MSG_TYPE__MSG_TXN) == &meridian__txn_request__descriptor);
    CHECK(pr_request_descriptor(MERIDIAN__MSG_TYPE__MSG_SNAPREAD) ==
          &meridian__snap_read_request__descriptor);
    CHECK(pr_request_descriptor(MERIDIAN__MSG_TYPE__MSG_STATUS) == &meridian__empty__descriptor);
    CHECK(pr_request_descriptor(MERIDIAN__MSG_TYPE__MSG_RANGES) == &meridian__empty__descriptor);
    CHECK(pr_request_descriptor(MERIDIAN__MSG_TYPE__MSG_SPLIT_AT) ==
          &meridian__split_at_request__descriptor);
    CHECK(pr_request_descriptor(MERIDIAN__MSG_TYPE__MSG_REPLY) == NULL);
    CHECK(pr_request_descriptor(99) == NULL);
    /* Every type of the schema but REPLY carries a request or one-way message. */
    const ProtobufCEnumDescriptor *d = &meridian__msg_type__descriptor;
    for (unsigned i = 0; i < d->n_values; i++) {
        int v = d->values[i].value;
        if (v != MERIDIAN__MSG_TYPE__MSG_UNSPECIFIED && v != MERIDIAN__MSG_TYPE__MSG_REPLY)
            CHECK(pr_request_descriptor((uint8_t)v) != NULL);
    }
}

TEST(reply_views_flatten_errors_and_bodies)
{
    Meridian__Reply r = MERIDIAN__REPLY__INIT;
    Meridian__Error e = MERIDIAN__ERROR__INIT;
    e.code = MERIDIAN__ERROR_CODE__WRONG_RANGE;
    e.message = "elsewhere";
    e.has_owner = 1;
    e.owner = 5;
    r.error = &e;
    json_t *v = pr_reply_view(&r);
    CHECK(v && json_is_false(json_object_get(v, "ok")));
    CHECK_STR(json_string_value(json_object_get(v, "error")), "wrong_range");
    CHECK_EQ(json_integer_value(json_object_get(v, "owner")), 5);
    json_decref(v);
    Meridian__ReadReply rr = MERIDIAN__READ_REPLY__INIT;
    rr.has_found = rr.found = 1;
    rr.has_value = 1;
    rr.value = (ProtobufCBinaryData){3, (uint8_t *)"\x00\x01\xff"};
    r.error = NULL;
    r.body_case = MERIDIAN__REPLY__BODY_READ;
    r.read = &rr;
    v = pr_reply_view(&r);
    CHECK(v && json_is_true(json_object_get(v, "ok")) && json_is_true(json_object_get(v, "found")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(v, "value"), "hex")), "0001ff");
    json_decref(v);
    Meridian__StatusReply st = MERIDIAN__STATUS_REPLY__INIT;
    st.initialized = 1;
    st.document = "{\"self\": 3}";
    r.body_case = MERIDIAN__REPLY__BODY_STATUS;
    r.status = &st;
    v = pr_reply_view(&r);
    CHECK(v && json_integer_value(json_object_get(v, "self")) == 3);
    CHECK(json_is_true(json_object_get(v, "initialized")) &&
          json_is_true(json_object_get(v, "ok")));
    json_decref(v);
}

TEST(requests_from_text_are_checked)
{
    uint8_t *buf = NULL;
    size_t len;
    mr_err err;
    CHECK_EQ(pr_request_from_text(MERIDIAN__MSG_TYPE__MSG_SPLIT_AT, "{\"key\": \"m\"}", &buf, &len,
                                  &err),
             MR_OK);
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__SplitAtRequest *d = (const Meridian__SplitAtRequest *)pr_decode(
        &meridian__split_at_request__descriptor, &a, buf, len, &err);
    CHECK(d && d->key.len == 1 && d->key.data[0] == 'm');
    free(buf);
    pr_arena_free(&a);
    CHECK_EQ(pr_request_from_text(MERIDIAN__MSG_TYPE__MSG_SPLIT_AT, "{\"kee\": \"m\"}", &buf, &len,
                                  &err),
             MR_EINVAL);
    CHECK_EQ(pr_request_from_text(MERIDIAN__MSG_TYPE__MSG_SPLIT_AT, "not json", &buf, &len, &err),
             MR_EINVAL);
    CHECK_EQ(pr_request_from_text(MERIDIAN__MSG_TYPE__MSG_REPLY, "{}", &buf, &len, &err),
             MR_EPROTO);
}

TEST_MAIN(TEST_CASE(round_trip_keeps_binary_keys_and_presence),
          TEST_CASE(malformed_and_truncated_input_is_refused),
          TEST_CASE(encoding_over_the_cap_is_an_error), TEST_CASE(arena_grows_and_resets),
          TEST_CASE(json_mapping_round_trips), TEST_CASE(json_written_by_hand_is_checked),
          TEST_CASE(replies_carry_an_error_or_a_body),
          TEST_CASE(reply_decode_insists_on_one_of_error_and_body),
          TEST_CASE(every_request_type_has_its_message),
          TEST_CASE(reply_views_flatten_errors_and_bodies),
          TEST_CASE(requests_from_text_are_checked))
