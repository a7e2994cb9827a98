/* Node-to-node messages on the schema (tablet/node/nd_peer.h): every field survives a round
 * trip, a malformed payload is refused cleanly (NULL, MR_EPROTO, no crash), the senders'
 * structs reach the wire as their schema messages, a split key with a NUL or over the key
 * limit is counted as malformed, and a PxBundle cut by nd_bundle_cut encodes under the limit
 * it was cut for. */
#include <stdlib.h>
#include <string.h>

#include "proto/pr_json.h"
#include "tablet/node/nd_int.h"
#include "tablet/node/nd_peer.h"
#include "tablet/node/nd_txn_int.h"
#include "tests/test.h"

static uint8_t bin[] = {0x00, 0xff, 'k', 0x80}; /* a NUL and bytes that are not UTF-8 */

/* Encodes m, decodes it as `type` from a (reset first); NULL when either failed. */
static const ProtobufCMessage *round_trip(uint8_t type, const ProtobufCMessage *m, pr_arena *a)
{
    uint8_t *buf;
    size_t len;
    mr_err err;
    if (nd_peer_encode(m, &buf, &len, &err) != MR_OK)
        return NULL;
    pr_arena_reset(a);
    const ProtobufCMessage *d = nd_peer_decode(type, a, buf, len, &err);
    free(buf);
    return d;
}

/* Decoding buf[len] as type is refused with MR_EPROTO. */
static bool refused(uint8_t type, const void *buf, size_t len)
{
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    mr_err_clear(&err);
    const ProtobufCMessage *m = nd_peer_decode(type, &a, buf, len, &err);
    pr_arena_free(&a);
    return !m && err.code == MR_EPROTO;
}

/* m's encoding, then every shorter prefix of it that is not itself a valid message, refused. */
static void check_truncations_refused(uint8_t type, const ProtobufCMessage *m)
{
    uint8_t *buf;
    size_t len;
    mr_err err;
    CHECK_EQ(nd_peer_encode(m, &buf, &len, &err), MR_OK);
    for (size_t cut = 0; cut < len; cut++) {
        pr_arena a;
        pr_arena_init(&a);
        const ProtobufCMessage *d = nd_peer_decode(type, &a, buf, cut, &err);
        CHECK(d || err.code == MR_EPROTO); /* a prefix may be a whole message; never a crash */
        pr_arena_free(&a);
    }
    free(buf);
}

TEST(two_phase_round_trip_keeps_every_field)
{
    Meridian__TwoPhase m;
    meridian__two_phase__init(&m);
    m.txn = (1ull << 62) | 7;
    m.group = 3;
    m.has_from = m.has_coord = m.has_ok = m.has_commit = m.has_ts = m.has_ack = 1;
    m.from = UINT64_MAX;
    m.coord = 2;
    m.ok = m.commit = m.ack = 1;
    m.ts = -42;
    m.message = "could not prepare";
    pr_arena a;
    pr_arena_init(&a);
    for (int type = ND_MSG_PREPARED; type <= ND_MSG_TXN_QUERY; type += 2) {
        const Meridian__TwoPhase *d =
            (const Meridian__TwoPhase *)round_trip((uint8_t)type, &m.base, &a);
        CHECK(d != NULL);
        CHECK(d->txn == m.txn && d->group == 3 && d->from == UINT64_MAX && d->coord == 2);
        CHECK(d->has_ok && d->ok && d->has_commit && d->commit && d->has_ack && d->ack);
        CHECK(d->has_ts && d->ts == -42);
        CHECK_STR(d->message, "could not prepare");
    }
    /* Absent optionals stay absent (a vote is not an ack). */
    Meridian__TwoPhase v;
    meridian__two_phase__init(&v);
    v.txn = 1;
    v.group = 1;
    const Meridian__TwoPhase *d =
        (const Meridian__TwoPhase *)round_trip(ND_MSG_PREPARED, &v.base, &a);
    CHECK(d && !d->has_ack && !d->ack && !d->has_ok && !d->has_ts && !d->message);
    pr_arena_free(&a);
}

TEST(split_round_trip_keeps_every_field)
{
    Meridian__Split m;
    meridian__split__init(&m);
    m.op = MERIDIAN__SPLIT__OP__ALLOCATED;
    m.group = 5;
    m.has_start = m.has_end = m.has_key = m.has_child = m.has_floor_ts = 1;
    m.start = (ProtobufCBinaryData){0, NULL};
    m.end = (ProtobufCBinaryData){sizeof bin, bin};
    m.key = (ProtobufCBinaryData){2, bin + 1};
    m.child = 1ull << 40;
    m.floor_ts = INT64_MAX;
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__Split *d = (const Meridian__Split *)round_trip(ND_MSG_SPLIT, &m.base, &a);
    CHECK(d != NULL);
    CHECK(d->op == MERIDIAN__SPLIT__OP__ALLOCATED && d->group == 5);
    CHECK(d->has_start && d->start.len == 0);
    CHECK(d->has_end && d->end.len == sizeof bin && memcmp(d->end.data, bin, sizeof bin) == 0);
    CHECK(d->has_key && d->key.len == 2 && memcmp(d->key.data, bin + 1, 2) == 0);
    CHECK(d->has_child && d->child == 1ull << 40 && d->has_floor_ts && d->floor_ts == INT64_MAX);
    /* The JSON form nd_split_on_message reads: op by name, the empty start as "". */
    json_t *j = pr_to_json(&d->base);
    CHECK_STR(json_string_value(json_object_get(j, "op")), "allocated");
    CHECK_STR(json_string_value(json_object_get(j, "start")), "");
    json_decref(j);
    pr_arena_free(&a);
}

TEST(safe_time_and_bootstrap_round_trips)
{
    pr_arena a;
    pr_arena_init(&a);
    Meridian__SafeRequest r;
    meridian__safe_request__init(&r);
    r.group = UINT64_MAX;
    r.node = PX_MAX_NODE_ID;
    const Meridian__SafeRequest *dr =
        (const Meridian__SafeRequest *)round_trip(ND_MSG_SAFE_REQ, &r.base, &a);
    CHECK(dr && dr->group == UINT64_MAX && dr->node == PX_MAX_NODE_ID);

    Meridian__SafeGrant g;
    meridian__safe_grant__init(&g);
    g.group = 9;
    g.ts = INT64_MIN;
    g.slot = UINT64_MAX - 1;
    const Meridian__SafeGrant *dg =
        (const Meridian__SafeGrant *)round_trip(ND_MSG_SAFE_GRANT, &g.base, &a);
    CHECK(dg && dg->group == 9 && dg->ts == INT64_MIN && dg->slot == UINT64_MAX - 1);

    Meridian__NodeInfo ni, *nip = &ni;
    meridian__node_info__init(&ni);
    ni.id = 2;
    ni.addr = "127.0.0.1:7002";
    ni.zone = "z";
    ni.region = "r";
    uint32_t reps[] = {1, 2, 3};
    Meridian__GroupInfo gi, *gip = &gi;
    meridian__group_info__init(&gi);
    gi.id = 2;
    gi.kind = MERIDIAN__GROUP_KIND__DATA;
    gi.n_replicas = 3;
    gi.replicas = reps;
    gi.has_start = gi.has_end = gi.has_floor_ts = gi.has_absent_here = 1;
    gi.start = (ProtobufCBinaryData){1, (uint8_t *)"m"};
    gi.end = (ProtobufCBinaryData){0, NULL};
    gi.floor_ts = 77;
    gi.absent_here = 1;
    Meridian__ClusterDescription c;
    meridian__cluster_description__init(&c);
    c.cluster = "abc";
    c.n_nodes = 1;
    c.nodes = &nip;
    c.n_groups = 1;
    c.groups = &gip;
    c.has_self = 1;
    c.self = 2;
    const Meridian__ClusterDescription *dc =
        (const Meridian__ClusterDescription *)round_trip(ND_MSG_BOOTSTRAP, &c.base, &a);
    CHECK(dc && strcmp(dc->cluster, "abc") == 0 && dc->has_self && dc->self == 2);
    CHECK(dc && dc->n_nodes == 1 && dc->nodes[0]->id == 2);
    CHECK(dc && strcmp(dc->nodes[0]->addr, "127.0.0.1:7002") == 0);
    CHECK(dc && strcmp(dc->nodes[0]->zone, "z") == 0 && strcmp(dc->nodes[0]->region, "r") == 0);
    CHECK(dc && dc->n_groups == 1 && dc->groups[0]->kind == MERIDIAN__GROUP_KIND__DATA);
    CHECK(dc && dc->groups[0]->n_replicas == 3 && dc->groups[0]->replicas[2] == 3);
    CHECK(dc && dc->groups[0]->start.len == 1 && dc->groups[0]->has_end &&
          dc->groups[0]->end.len == 0 && dc->groups[0]->floor_ts == 77 &&
          dc->groups[0]->absent_here);
    /* Its JSON form, what DATA/cluster.json keeps: the empty end decoded is "" too. */
    json_t *j = dc ? pr_to_json(&dc->base) : NULL;
    json_t *jg = json_array_get(json_object_get(j, "groups"), 0);
    CHECK(j && json_integer_value(json_object_get(j, "self")) == 2);
    CHECK_STR(json_string_value(json_object_get(jg, "kind")), "data");
    CHECK_STR(json_string_value(json_object_get(jg, "start")), "m");
    CHECK_STR(json_string_value(json_object_get(jg, "end")), "");
    json_decref(j);
    pr_arena_free(&a);
}

TEST(px_bundle_round_trip_keeps_every_message)
{
    ProtobufCBinaryData msgs[3] = {{sizeof bin, bin}, {0, NULL}, {1, bin + 2}};
    Meridian__PxBundle b;
    meridian__px_bundle__init(&b);
    b.from = 3;
    b.clock_status = 2;
    b.epsilon_ns = -1;
    b.n_msgs = 3;
    b.msgs = msgs;
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__PxBundle *d = (const Meridian__PxBundle *)round_trip(ND_MSG_PX, &b.base, &a);
    CHECK(d && d->from == 3 && d->clock_status == 2 && d->epsilon_ns == -1 && d->n_msgs == 3);
    CHECK(d && d->msgs[0].len == sizeof bin && memcmp(d->msgs[0].data, bin, sizeof bin) == 0);
    CHECK(d && d->msgs[1].len == 0 && d->msgs[2].len == 1 && d->msgs[2].data[0] == 'k');
    /* An empty bundle: the once-a-second heartbeat. */
    b.n_msgs = 0;
    d = (const Meridian__PxBundle *)round_trip(ND_MSG_PX, &b.base, &a);
    CHECK(d && d->n_msgs == 0);
    pr_arena_free(&a);
}

TEST(malformed_peer_messages_are_refused)
{
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t json[] = "{\"txn\":1,\"group\":2}"; /* what a node sent before */
    for (int type = 0; type < 256; type++) {
        CHECK(refused((uint8_t)type, junk, sizeof junk));
        CHECK(refused((uint8_t)type, json, sizeof json - 1));
    }
    /* Required fields missing: an empty payload is no TwoPhase, Split, bundle or grant. */
    CHECK(refused(ND_MSG_DECISION, "", 0));
    CHECK(refused(ND_MSG_SPLIT, "", 0));
    CHECK(refused(ND_MSG_PX, "", 0));
    CHECK(refused(ND_MSG_SAFE_GRANT, "", 0));
    CHECK(refused(ND_MSG_BOOTSTRAP, "", 0));
    /* A type that is not node-to-node, whatever the bytes. */
    CHECK(refused(ND_MSG_TXN, "", 0));

    uint8_t *buf;
    size_t len;
    mr_err err;
    /* Split: an op this version does not know; an op without the fields it needs. */
    Meridian__Split s;
    meridian__split__init(&s);
    s.group = 2;
    s.op = 9;
    CHECK_EQ(nd_peer_encode(&s.base, &buf, &len, &err), MR_OK);
    CHECK(refused(ND_MSG_SPLIT, buf, len));
    free(buf);
    s.op = MERIDIAN__SPLIT__OP__NOTICE;
    s.has_key = 1;
    s.key = (ProtobufCBinaryData){1, bin + 2};
    CHECK_EQ(nd_peer_encode(&s.base, &buf, &len, &err), MR_OK);
    CHECK(refused(ND_MSG_SPLIT, buf, len)); /* no child */
    free(buf);
    s.has_child = 1;
    s.child = 3;
    check_truncations_refused(ND_MSG_SPLIT, &s.base);

    /* PxBundle: a sender outside the node ids, a clock status outside a byte. */
    Meridian__PxBundle b;
    meridian__px_bundle__init(&b);
    b.from = 0;
    CHECK_EQ(nd_peer_encode(&b.base, &buf, &len, &err), MR_OK);
    CHECK(refused(ND_MSG_PX, buf, len));
    free(buf);
    b.from = 1;
    b.clock_status = 256;
    CHECK_EQ(nd_peer_encode(&b.base, &buf, &len, &err), MR_OK);
    CHECK(refused(ND_MSG_PX, buf, len));
    free(buf);
    ProtobufCBinaryData one = {sizeof bin, bin};
    b.clock_status = 1;
    b.n_msgs = 1;
    b.msgs = &one;
    check_truncations_refused(ND_MSG_PX, &b.base);

    Meridian__TwoPhase t;
    meridian__two_phase__init(&t);
    t.txn = 5;
    t.group = 6;
    t.has_ts = 1;
    t.ts = 1;
    check_truncations_refused(ND_MSG_PREPARED, &t.base);
}

/* A node (self = 1) that hosts group 1 (meta) and group 3 alone: what
 * nd_send_to_group sends there goes to its local queue. */
static nd_node *local_node(void)
{
    nd_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->self = 1;
    n->meta_replicas = (px_config){.n = 1, .nodes = {1}};
    n->ranges = calloc(1, sizeof *n->ranges);
    if (!n->ranges) {
        free(n);
        return NULL;
    }
    n->ranges[0] = (nd_range){.group = 3, .replicas = {.n = 1, .nodes = {1}}};
    n->nranges = 1;
    return n;
}

static void local_node_free(nd_node *n)
{
    nd_txn_free_local(n);
    free(n->ranges);
    free(n);
}

/* The next message in n's local queue, decoded from a as `type` (which it
 * must carry); NULL when there is none or it does not decode. */
static const ProtobufCMessage *next_local(nd_node *n, uint8_t type, pr_arena *a)
{
    nd_local *l = n->local;
    if (!l || l->type != type)
        return NULL;
    n->local = l->next;
    if (!n->local)
        n->local_tail = NULL;
    mr_err err;
    pr_arena_reset(a);
    const ProtobufCMessage *m = nd_peer_decode(type, a, l->buf, l->len, &err);
    free(l->buf);
    free(l);
    return m;
}

TEST(struct_senders_send_the_schema_message)
{
    nd_node *n = local_node();
    nd_group g = {.id = 3};
    CHECK(n);
    if (!n)
        return;
    pr_arena a;
    pr_arena_init(&a);

    nd_send_vote(n, &g, 11, 3, true, 77);
    const Meridian__TwoPhase *t = (const Meridian__TwoPhase *)next_local(n, ND_MSG_PREPARED, &a);
    CHECK(t && t->txn == 11 && t->group == 3 && t->has_from && t->from == 3);
    CHECK(t && t->has_ok && t->ok && t->has_ts && t->ts == 77 && !t->has_coord && !t->has_ack);

    nd_send_decision(n, 12, 3, 1, true, -5);
    t = (const Meridian__TwoPhase *)next_local(n, ND_MSG_DECISION, &a);
    CHECK(t && t->txn == 12 && t->group == 3 && t->has_coord && t->coord == 1);
    CHECK(t && t->has_commit && t->commit && t->ts == -5 && !t->has_from && !t->has_ack);

    nd_send_ack(n, 13, 1, 3);
    t = (const Meridian__TwoPhase *)next_local(n, ND_MSG_DECISION, &a);
    CHECK(t && t->txn == 13 && t->group == 1 && t->has_from && t->from == 3);
    CHECK(t && t->has_ack && t->ack && !t->has_commit);

    Meridian__Split s = MERIDIAN__SPLIT__INIT;
    s.op = MERIDIAN__SPLIT__OP__NOTICE;
    s.group = 3;
    s.has_key = s.has_child = s.has_floor_ts = true;
    s.key = (ProtobufCBinaryData){1, (uint8_t *)"m"};
    s.child = 4;
    s.floor_ts = 99;
    nd_send_to_group(n, ND_META_GROUP, ND_MSG_SPLIT, &s.base);
    const Meridian__Split *d = (const Meridian__Split *)next_local(n, ND_MSG_SPLIT, &a);
    CHECK(d && d->op == MERIDIAN__SPLIT__OP__NOTICE && d->group == 3 && d->child == 4);
    CHECK(d && d->floor_ts == 99 && d->key.len == 1 && d->key.data[0] == 'm');

    /* A message that is not its type's schema message is a sender's bug:
     * caught before the wire, nothing sent. */
    nd_send_to_group(n, 3, ND_MSG_DECISION, &s.base);
    nd_send_to_group(n, 3, ND_MSG_TXN, &s.base);
    CHECK(!n->local);
    /* No replica known for the group: nothing sent. */
    nd_send_decision(n, 14, 9, 1, false, 0);
    CHECK(!n->local);

    pr_arena_free(&a);
    local_node_free(n);
}

/* nd_split_on_message refuses s (counted as malformed). */
static bool split_refused(nd_node *n, const Meridian__Split *s)
{
    uint8_t *buf;
    size_t len;
    mr_err err;
    if (nd_peer_encode(&s->base, &buf, &len, &err) != MR_OK)
        return false;
    uint64_t before = n->stats.malformed;
    net_message m = {.type = ND_MSG_SPLIT,
                     .len = (uint32_t)len,
                     .payload = buf,
                     .peer = "test",
                     .peer_name = "",
                     .peer_is_node = 1};
    nd_split_on_message(n, &m);
    free(buf);
    return n->stats.malformed == before + 1;
}

TEST(split_keys_that_are_no_client_keys_are_malformed)
{
    nd_node *n = local_node();
    CHECK(n);
    if (!n)
        return;
    static uint8_t big[MV_MAX_KEY + 1];
    memset(big, 'k', sizeof big);
    Meridian__Split s = MERIDIAN__SPLIT__INIT;
    s.op = MERIDIAN__SPLIT__OP__NOTICE;
    s.group = 3;
    s.has_key = s.has_child = true;
    s.child = 4;
    s.key = (ProtobufCBinaryData){3, (uint8_t *)"\0ab"}; /* a system key */
    CHECK(split_refused(n, &s));
    s.key = (ProtobufCBinaryData){0, NULL};
    CHECK(split_refused(n, &s));
    s.key = (ProtobufCBinaryData){sizeof big, big};
    CHECK(split_refused(n, &s));
    s.op = MERIDIAN__SPLIT__OP__ALLOC;
    s.has_child = false;
    s.has_start = s.has_end = true;
    s.key = (ProtobufCBinaryData){1, (uint8_t *)"m"};
    s.start = (ProtobufCBinaryData){2, (uint8_t *)"\0a"};
    s.end = (ProtobufCBinaryData){0, NULL};
    CHECK(split_refused(n, &s));
    s.op = MERIDIAN__SPLIT__OP__ALLOCATED;
    s.has_child = true;
    s.start = (ProtobufCBinaryData){0, NULL};
    s.end = (ProtobufCBinaryData){sizeof big, big};
    CHECK(split_refused(n, &s));
    /* A well-formed one for a group not led here is not malformed: ignored. */
    s.end = (ProtobufCBinaryData){1, (uint8_t *)"z"};
    CHECK(!split_refused(n, &s));
    local_node_free(n);
}

TEST(cut_bundles_encode_under_the_limit)
{
    enum { MAX = 1000, N = 40 };
    static uint8_t q[N * 400];
    size_t qlen = 0;
    for (int i = 0; i < N; i++) { /* lengths around the one- and two-byte varint edge */
        uint32_t z = (uint32_t)(i % 2 ? 127 + i : 100 + i * 7);
        put32(q + qlen, z);
        memset(q + qlen + 4, i, z);
        qlen += 4 + z;
    }
    size_t off = 0;
    while (off < qlen) {
        uint32_t count;
        size_t end = nd_bundle_cut(q, qlen, off, MAX, &count);
        CHECK(end > off && count >= 1);
        ProtobufCBinaryData msgs[N];
        Meridian__PxBundle b;
        meridian__px_bundle__init(&b);
        b.from = UINT32_MAX; /* the widest header */
        b.clock_status = UINT32_MAX;
        b.epsilon_ns = -1;
        b.n_msgs = count;
        b.msgs = msgs;
        size_t at = off;
        for (uint32_t i = 0; i < count; i++) {
            msgs[i] = (ProtobufCBinaryData){get32(q + at), q + at + 4};
            at += 4 + msgs[i].len;
        }
        CHECK_EQ(at, end);
        size_t size = protobuf_c_message_get_packed_size(&b.base);
        CHECKF(size <= MAX, "a bundle of %u takes %zu bytes", count, size);
        /* The header here is the widest (ND_PX_HDR): the next item would not have fit. */
        if (end < qlen)
            CHECK(size + nd_px_item_bytes(get32(q + end)) > MAX);
        off = end;
    }
}

TEST_MAIN(TEST_CASE(two_phase_round_trip_keeps_every_field),
          TEST_CASE(split_round_trip_keeps_every_field),
          TEST_CASE(safe_time_and_bootstrap_round_trips),
          TEST_CASE(px_bundle_round_trip_keeps_every_message),
          TEST_CASE(malformed_peer_messages_are_refused),
          TEST_CASE(struct_senders_send_the_schema_message),
          TEST_CASE(split_keys_that_are_no_client_keys_are_malformed),
          TEST_CASE(cut_bundles_encode_under_the_limit))
