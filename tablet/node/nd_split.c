/* Tablet splits (design.md: tablets split by size, never inside a directory
 * unless the directory alone is too big; the split is a Paxos-logged event
 * and the meta group learns the new range).
 *
 * 1. The leader of a data group checks its tablet's size every second
 *    (mv_size_estimate, free). Past the node's split size it picks a split
 *    key (mv_split_key: the directory boundary nearest the middle of the live
 *    data; a directory is cut only when it alone is over the split size) and
 *    asks the meta group to number the new group (ND_MSG_SPLIT "alloc"). The
 *    meta group's leader gives it the next id above every group it records,
 *    and records the new map entries ("\0group/<child>", "\0group/<parent>" with
 *    its new end, and "\0split/<parent>/[start, end]" for a repeated ask: system
 *    keys, in the meta group's range and no client's) in one
 *    transaction through its log; until that commits it answers nothing, and
 *    afterwards a repeated ask gets the recorded answer, so an id is given
 *    once however often the question comes (or a new parent leader asks it).
 * 2. The parent leader stops taking new transactions (retryable aborts),
 *    waits for the running ones to end (aborting those still open after
 *    ND_SPLIT_DRAIN) and for no prepared transaction, then proposes SPLIT
 *    [child][key].
 * 3. Every replica applies SPLIT at the end of its slot. With a transaction
 *    prepared there the record is void on every replica (the leader tries
 *    again later). Otherwise mv_split writes the child's store (the versions
 *    from the key on, history included) and cuts its own; cluster.json and
 *    the range map learn the child: the parent's replicas, [key, old end),
 *    timestamps above the split's (px ts_floor). The child group starts on
 *    the next tick and elects a leader like any group. Records chosen after
 *    the split whose writes left the range are skipped on every replica
 *    (their transactions abort, retryable).
 * Clients learn of it from wrong_range answers naming the new owner, then the
 * range map; nodes without a replica of the parent get a one-way notice.
 *
 * The meta group, which holds ["", "\x02") (the cluster's records and the SQL
 * catalog), is never split: its leader does not check its size, and a split
 * asked at one of its keys is refused.
 *
 * Directories: until SQL's key encoding exists, the directory of a key is its
 * first two '/'-separated parts ("users/42" for "users/42/orders/7"); a key
 * without '/' is a directory of its own. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "tablet/node/nd_int.h"
#include "tablet/node/nd_peer.h"
#include "tablet/node/nd_validate.h"

#define ND_SPLIT_CHECK  (1 * MR_NS_PER_S)    /* size checks */
#define ND_SPLIT_RESEND (300 * MR_NS_PER_MS) /* asks to the meta group */
#define ND_SPLIT_DRAIN  (1 * MR_NS_PER_S)    /* running transactions get this long */
#define ND_SPLIT_GIVEUP (10 * MR_NS_PER_S)   /* a step that long: start over later */
#define ND_SPLIT_RETRY  (5 * MR_NS_PER_S)    /* after giving up, or with no split key */

static size_t dir_prefix(void *arg, const void *key, size_t len)
{
    (void)arg;
    const char *k = key;
    const char *a = memchr(k, '/', len);
    if (!a)
        return len;
    const char *b = memchr(a + 1, '/', len - (size_t)(a + 1 - k));
    return b ? (size_t)(b - k) : len;
}

void nd_split_reset(nd_group *g)
{
    nd_bytes_free(&g->split.key);
    g->split.child = 0;
    g->split.state = ND_SPLIT_IDLE;
}

static void give_up(nd_group *g, int64_t now, const char *why)
{
    MR_WARN("node", "group=%llu split: %s; trying again later", (unsigned long long)g->id, why);
    nd_split_reset(g);
    g->split.next = now + ND_SPLIT_RETRY;
}

/* key text for logs (in buf). */
static const char *ktext(const void *key, size_t len, char *buf, size_t cap)
{
    return mr_bytes_text(key, len, buf, cap);
}

/* key is strictly inside g's range, so both sides keep a part of it. */
static bool splits_range(const nd_group *g, const void *key, size_t klen)
{
    return g->has_range && nd_key_splits(&g->range_start, &g->range_end, key, klen);
}

/* Chooses the split key; false when the tablet has no place to split. */
static bool choose_key(nd_node *n, nd_group *g)
{
    mv_split_opts o = {.ts = g->read.safe_ts > mv_horizon(g->mv) ? g->read.safe_ts
                                                                 : mv_horizon(g->mv),
                       .prefix = dir_prefix,
                       .max_dir_bytes = (uint64_t)n->split_bytes};
    void *k = NULL;
    size_t klen = 0;
    mr_err err;
    int rc = mv_split_key(g->mv, &o, &k, &klen, &err);
    if (rc != MR_OK) {
        if (rc != MR_ENOTFOUND)
            MR_WARN("node", "group=%llu split key: %s", (unsigned long long)g->id,
                    mr_err_msg(&err));
        return false;
    }
    bool ok = splits_range(g, k, klen) && nd_bytes_set(&g->split.key, k, klen) == MR_OK;
    free(k);
    return ok;
}

static void ask_meta(nd_node *n, nd_group *g, int64_t now)
{
    g->split.sent = now;
    Meridian__Split m = MERIDIAN__SPLIT__INIT;
    m.op = MERIDIAN__SPLIT__OP__ALLOC;
    m.group = g->id;
    m.has_start = m.has_end = m.has_key = true;
    m.start = nd_bytes_bin(&g->range_start);
    m.end = nd_bytes_bin(&g->range_end);
    m.key = nd_bytes_bin(&g->split.key);
    nd_send_to_group(n, ND_META_GROUP, ND_MSG_SPLIT, &m.base);
}

/* A split at g->split.key begins: the meta group is asked to number it. */
static void begin(nd_node *n, nd_group *g, int64_t now)
{
    g->split.state = ND_SPLIT_ALLOC;
    g->split.since = now;
    ask_meta(n, g, now);
}

static void propose_split(nd_node *n, nd_group *g, int64_t now)
{
    size_t klen = g->split.key.len;
    uint8_t *b = malloc(12 + klen);
    if (!b)
        return;
    put64(b, g->split.child);
    put32(b + 8, (uint32_t)klen);
    memcpy(b + 12, g->split.key.p, klen);
    mr_err err;
    if (nd_propose_raw(n, g, 0, ND_OP_SPLIT, b, 12 + klen, &err) == MR_OK) {
        g->split.state = ND_SPLIT_PROPOSED;
        g->split.since = now;
        char kt[200];
        MR_INFO("node", "group=%llu proposing a split at '%s' into group %llu",
                (unsigned long long)g->id, ktext(g->split.key.p, klen, kt, sizeof kt),
                (unsigned long long)g->split.child);
    }
    free(b);
}

void nd_split_tick(nd_node *n, nd_group *g)
{
    if (g->id == ND_META_GROUP || !g->has_range || !nd_txn_leads(n, g))
        return; /* the meta group is not split; only a ready leader splits */
    int64_t now = mr_monotonic_ns();
    switch (g->split.state) {
    case ND_SPLIT_IDLE: {
        if (now < g->split.next)
            return;
        g->split.next = now + ND_SPLIT_CHECK;
        /* The transactions' own records (system keys) stay with the parent:
         * only the range's data counts. Counting them walks them, so they are
         * counted again only when the free estimate less their last count
         * (which only grows) says the data may be over. */
        mv_size sz, data;
        mv_size_estimate(g->mv, &sz);
        if ((int64_t)(sz.bytes - g->split.sys_bytes) < n->split_bytes || g->txn.prepared)
            return;
        mr_err err;
        if (mv_size_data(g->mv, &data, &err) != MR_OK) {
            MR_WARN("node", "group=%llu size: %s", (unsigned long long)g->id, mr_err_msg(&err));
            return;
        }
        g->split.sys_bytes = sz.bytes - data.bytes;
        if ((int64_t)data.bytes < n->split_bytes)
            return;
        if (!choose_key(n, g)) {
            g->split.next = now + ND_SPLIT_RETRY;
            MR_INFO("node", "group=%llu holds %llu bytes but no key splits it (one directory)",
                    (unsigned long long)g->id, (unsigned long long)data.bytes);
            return;
        }
        char kt[200];
        MR_INFO("node", "group=%llu holds %llu bytes (split size %lld): splitting at '%s'",
                (unsigned long long)g->id, (unsigned long long)data.bytes,
                (long long)n->split_bytes, ktext(g->split.key.p, g->split.key.len, kt, sizeof kt));
        return begin(n, g, now);
    }
    case ND_SPLIT_ALLOC:
        if (now - g->split.since > ND_SPLIT_GIVEUP)
            return give_up(g, now, "the meta group did not number the new group");
        if (now - g->split.sent >= ND_SPLIT_RESEND)
            ask_meta(n, g, now);
        return;
    case ND_SPLIT_BARRIER:
        if (now - g->split.since > ND_SPLIT_GIVEUP)
            return give_up(g, now, "transactions did not drain");
        if (!g->txn.prepared && !g->txn.txns && g->lead.inflight == 0)
            return propose_split(n, g, now);
        if (now - g->split.since > ND_SPLIT_DRAIN)
            nd_txn_abort_open(n, g, "the tablet is splitting; retry");
        return;
    case ND_SPLIT_PROPOSED:
        if (now - g->split.since > ND_SPLIT_GIVEUP)
            return give_up(g, now, "the split record was not applied");
        return;
    }
}

void nd_split_voided(nd_node *n, nd_group *g)
{
    (void)n;
    if (g->split.state == ND_SPLIT_PROPOSED)
        give_up(g, mr_monotonic_ns(), "the split record was voided");
}

/* Tells the other nodes about g's split (one-way, best effort): those
 * without a replica of g learn the map from it (replicas of g learn through
 * the log; a node that missed earlier splits of the child's ancestors does
 * not host them and learns here too). */
static void notify_others(nd_node *n, nd_group *g, const void *key, size_t klen, uint64_t child,
                          int64_t ts)
{
    Meridian__Split m = MERIDIAN__SPLIT__INIT;
    m.op = MERIDIAN__SPLIT__OP__NOTICE;
    m.group = g->id;
    m.has_key = m.has_child = m.has_floor_ts = true;
    m.key = (ProtobufCBinaryData){.len = klen, .data = (uint8_t *)(uintptr_t)key};
    m.child = child;
    m.floor_ts = ts;
    uint8_t *buf;
    size_t len;
    mr_err err;
    if (nd_peer_encode(&m.base, &buf, &len, &err) != MR_OK) {
        MR_WARN("node", "split notice for group %llu: %s", (unsigned long long)g->id,
                mr_err_msg(&err));
        return;
    }
    for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++) {
        if (!n->peers[id].addr[0] || id == n->self)
            continue;
        net_transport_send(n->tr, n->peers[id].addr, ND_MSG_SPLIT, buf, (uint32_t)len, &err);
    }
    free(buf);
}

/* A replica that cannot follow its log must not go on diverging. */
static void stop_node(nd_node *n, nd_group *g, const char *what, const mr_err *err)
{
    char w[160];
    snprintf(w, sizeof w, "group %llu: %s", (unsigned long long)g->id, what);
    nd_fatal(n, w, err);
}

void nd_split_apply(nd_node *n, nd_group *g, uint64_t slot, int64_t ts, const uint8_t *p,
                    uint32_t len)
{
    bool mine = get32(p) == n->self;
    const uint8_t *b = p + ND_PROP_HDR;
    uint32_t bl = len - ND_PROP_HDR;
    if (!g->has_range || g->id == ND_META_GROUP)
        return; /* (no meta leader proposes one) */
    if (bl < 12 || get32(b + 8) != bl - 12 || get32(b + 8) == 0 || b[12] == 0) {
        MR_ERROR("node", "group=%llu slot=%llu: malformed split record skipped",
                 (unsigned long long)g->id, (unsigned long long)slot);
        return;
    }
    uint64_t child = get64(b);
    const uint8_t *key = b + 12;
    size_t klen = bl - 12;
    char kt[200];
    ktext(key, klen, kt, sizeof kt);
    mr_err err;
    if (mr_bytes_cmp(g->range_end.p, g->range_end.len, key, klen) == 0) {
        /* Replayed after a restart: the store is cut; make sure the map is too. */
        if (nd_cluster_record_split(n, g->id, key, klen, child, ts, false, &err) != MR_OK)
            stop_node(n, g, "recording a split", &err);
        return;
    }
    const char *why = !splits_range(g, key, klen) ? "its key is outside the range"
                      : g->txn.prepared           ? "a transaction is prepared here"
                      : child <= g->id            ? "the new group's id is not above the parent's"
                                                  : NULL;
    if (why) {
        MR_INFO("node", "group=%llu slot=%llu: split at '%s' void: %s", (unsigned long long)g->id,
                (unsigned long long)slot, kt, why);
        if (mine && g->split.state == ND_SPLIT_PROPOSED)
            give_up(g, mr_monotonic_ns(), why);
        return;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/g%llu.mv", n->data_dir, (unsigned long long)child);
    int rc = mv_split(g->mv, slot, path, key, klen, &err);
    if (rc != MR_OK && rc != MR_EEXIST)
        return stop_node(n, g, "splitting the tablet", &err);
    if (nd_cluster_record_split(n, g->id, key, klen, child, ts, false, &err) != MR_OK)
        return stop_node(n, g, "recording a split", &err);
    px_status st;
    px_node_status(g->px, &st);
    if (st.state == PX_LEADER) {
        /* None should be left (the barrier); a read-only lock on a moved key
         * would no longer protect anything. */
        nd_txn_abort_open(n, g, "the tablet split; retry");
        notify_others(n, g, key, klen, child, ts);
    }
    nd_split_reset(g);
    g->split.next = mr_monotonic_ns() + ND_SPLIT_CHECK;
}

/* ---- messages ---- */

/* The meta group's "\0group/<id>" records (nd_meta_key), as a scan's bounds. */
static const char group_lo[7] = {0, 'g', 'r', 'o', 'u', 'p', '/'};
static const char group_hi[7] = {0, 'g', 'r', 'o', 'u', 'p', '0'};

/* Scan callback: the largest id among the meta group's group records. */
static int max_group_id(void *arg, const mv_version *v)
{
    uint64_t *max = arg;
    char buf[32];
    size_t l = v->key_len - sizeof group_lo;
    if (v->key_len <= sizeof group_lo || l >= sizeof buf)
        return 0;
    memcpy(buf, (const char *)v->key + sizeof group_lo, l);
    buf[l] = '\0';
    char *end;
    unsigned long long id = strtoull(buf, &end, 10);
    if (*end == '\0' && id > *max)
        *max = id;
    return 0;
}

/* The meta group's leader numbers a new group for a split, once. Its records keep keys in hex
 * (nd_key_json), as DATA/cluster.json does. */
static void on_alloc(nd_node *n, const Meridian__Split *o)
{
    nd_group *mg = nd_find_group(n, ND_META_GROUP);
    if (!mg || !nd_txn_leads(n, mg) || o->group <= ND_META_GROUP || o->group > INT64_MAX)
        return;
    long long parent = (long long)o->group;
    const nd_bytes start = {o->start.data, o->start.len}, end = {o->end.data, o->end.len};
    const uint8_t *key = o->key.data;
    size_t klen = o->key.len;
    char kt[200];
    ktext(key, klen, kt, sizeof kt);
    /* "\0split/<parent>/<start in hex>-<end in hex>": answers a repeated ask. */
    char akey[64 + 4 * ND_KEY_MAX + 8];
    int off = 1 + snprintf(akey + 1, sizeof akey - 1, "split/%lld/", parent);
    akey[0] = '\0';
    mr_hex_encode(start.p, start.len, akey + off);
    off += (int)(2 * start.len);
    akey[off++] = '-';
    mr_hex_encode(end.p, end.len, akey + off);
    size_t alen = (size_t)off + 2 * end.len;
    mv_version v;
    mr_err err;
    if (mv_get(mg->mv, akey, alen, MV_TS_MAX, &v, &err) == MR_OK) {
        /* Numbered before: the same answer. */
        json_error_t je;
        json_t *rec = json_loadb(v.value, v.len, 0, &je);
        free(v.value);
        nd_bytes rkey = {0};
        json_t *rchild = json_object_get(rec, "child");
        if (nd_key_from_json(json_object_get(rec, "key"), &rkey) == MR_OK &&
            json_is_integer(rchild) && json_integer_value(rchild) >= 0) {
            Meridian__Split ans = MERIDIAN__SPLIT__INIT;
            ans.op = MERIDIAN__SPLIT__OP__ALLOCATED;
            ans.group = (uint64_t)parent;
            ans.has_start = ans.has_end = ans.has_key = ans.has_child = true;
            ans.start = o->start;
            ans.end = o->end;
            ans.key = nd_bytes_bin(&rkey);
            ans.child = (uint64_t)json_integer_value(rchild);
            nd_send_to_group(n, (uint64_t)parent, ND_MSG_SPLIT, &ans.base);
        }
        nd_bytes_free(&rkey);
        json_decref(rec);
        return;
    }
    if (mg->split.alloc_txn && nd_txn_known(mg, mg->split.alloc_txn))
        return; /* one numbering at a time: the parent asks again */
    /* The parent's record must show the range it splits. */
    char pkey[64];
    size_t plen = nd_meta_key(pkey, sizeof pkey, "group", (unsigned long long)parent);
    if (mv_get(mg->mv, pkey, plen, MV_TS_MAX, &v, &err) != MR_OK)
        return;
    json_error_t je;
    json_t *prec = json_loadb(v.value, v.len, 0, &je);
    free(v.value);
    nd_bytes ps = {0}, pe = {0};
    bool match = prec && nd_key_from_json(json_object_get(prec, "start"), &ps) == MR_OK &&
                 nd_key_from_json(json_object_get(prec, "end"), &pe) == MR_OK &&
                 mr_bytes_cmp(ps.p, ps.len, start.p, start.len) == 0 &&
                 mr_bytes_cmp(pe.p, pe.len, end.p, end.len) == 0 &&
                 nd_key_splits(&start, &end, key, klen);
    nd_bytes_free(&ps);
    nd_bytes_free(&pe);
    if (!match) {
        MR_WARN("node", "meta group: split of group %lld at '%s' does not match its record", parent,
                kt);
        json_decref(prec);
        return;
    }
    /* The next id above every group recorded. */
    uint64_t max = 0;
    mv_scan_opts so = {.start = group_lo,
                       .start_len = sizeof group_lo,
                       .end = group_hi,
                       .end_len = sizeof group_hi,
                       .ts = MV_TS_MAX};
    if (mv_scan(mg->mv, &so, max_group_id, &max, NULL, &err) != MR_OK || max < (uint64_t)parent) {
        json_decref(prec);
        return;
    }
    uint64_t child = max + 1;
    json_t *crec =
        json_pack("{s:I, s:s, s:O, s:o, s:O, s:I}", "id", (json_int_t)child, "kind", "data",
                  "replicas", json_object_get(prec, "replicas"), "start", nd_key_json(key, klen),
                  "end", json_object_get(prec, "end"), "parent", (json_int_t)parent);
    json_object_set_new(prec, "end", nd_key_json(key, klen));
    json_t *arec =
        json_pack("{s:I, s:o}", "child", (json_int_t)child, "key", nd_key_json(key, klen));
    char *cv = crec ? json_dumps(crec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char *pv = json_dumps(prec, JSON_COMPACT | JSON_SORT_KEYS);
    char *av = arec ? json_dumps(arec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char ckey[64];
    size_t clen = nd_meta_key(ckey, sizeof ckey, "group", (unsigned long long)child);
    mv_write writes[3] = {
        {.op = MV_PUT, .key = akey, .key_len = alen, .value = av, .len = av ? strlen(av) : 0},
        {.op = MV_PUT, .key = ckey, .key_len = clen, .value = cv, .len = cv ? strlen(cv) : 0},
        {.op = MV_PUT, .key = pkey, .key_len = plen, .value = pv, .len = pv ? strlen(pv) : 0},
    };
    uint64_t id = ND_TXN_SYSTEM | (child << 1); /* the cluster's own (nd_validate.h) */
    if (cv && pv && av && nd_txn_system_write(n, mg, id, writes, 3) == MR_OK) {
        mg->split.alloc_txn = id;
        MR_INFO("node",
                "meta group: group %llu splits at '%s': the keys from there go to new "
                "group %llu",
                (unsigned long long)parent, kt, (unsigned long long)child);
    }
    free(cv);
    free(pv);
    free(av);
    json_decref(crec);
    json_decref(arec);
    json_decref(prec);
}

void nd_split_on_request(nd_node *n, const net_message *m)
{
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    const Meridian__SplitAtRequest *rq =
        (const Meridian__SplitAtRequest *)nd_request_decode(m, &a, &err);
    if (!rq || nd_valid_split_at(rq, &err) != MR_OK) {
        nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, mr_err_msg(&err));
        pr_arena_free(&a);
        return;
    }
    nd_bytes key = {0};
    int krc = nd_bytes_set(&key, rq->key.data, rq->key.len);
    pr_arena_free(&a);
    if (krc != MR_OK)
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_MEMORY, "out of memory");
    uint64_t gid = nd_group_of_key(n, key.p, key.len);
    nd_group *g = gid ? nd_find_group(n, gid) : NULL;
    px_status st;
    if (g)
        px_node_status(g->px, &st);
    if (gid == ND_META_GROUP) {
        char kt[200], msg[400];
        snprintf(msg, sizeof msg,
                 "'%s' lies in the meta group (1), which holds the keys below \"\\x02\" (the "
                 "cluster's records and the SQL catalog) and is never split; data groups hold "
                 "the keys from \"\\x02\" on",
                 ktext(key.p, key.len, kt, sizeof kt));
        nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, msg);
    } else if (!g || !nd_txn_leads(n, g)) {
        /* (itself is no hint: a leader whose lease lapsed, or not ready yet) */
        const char *leader = g && st.leader && st.leader != n->self && st.leader <= PX_MAX_NODE_ID
                                 ? n->peers[st.leader].addr
                                 : "";
        nd_send_reply(n, m->reply_to,
                      nd_enc_error(MERIDIAN__ERROR_CODE__NOT_LEADER,
                                   "not the ready leader of the key's group", false, leader, gid));
    } else if (!splits_range(g, key.p, key.len)) {
        nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__BOUNDARY,
                       "the key already starts a range");
    } else if (g->split.state != ND_SPLIT_IDLE) {
        nd_send_reply(n, m->reply_to,
                      nd_enc_error(MERIDIAN__ERROR_CODE__BUSY,
                                   "the group is splitting already; try again", true, NULL, 0));
    } else {
        char kt[200];
        MR_INFO("node", "group=%llu splitting at '%s' as asked", (unsigned long long)g->id,
                ktext(key.p, key.len, kt, sizeof kt));
        nd_bytes_free(&g->split.key);
        g->split.key = key;
        key = (nd_bytes){0};
        begin(n, g, mr_monotonic_ns());
        Meridian__SplitAtReply r = MERIDIAN__SPLIT_AT_REPLY__INIT;
        r.group = g->id;
        r.key = nd_bytes_bin(&g->split.key);
        nd_reply_body(n, m->reply_to, MERIDIAN__REPLY__BODY_SPLIT_AT, &r.base);
    }
    nd_bytes_free(&key);
}

void nd_split_on_message(nd_node *n, const net_message *m)
{
    /* A Split message, decoded and checked (nd_peer.h: the op is known and
     * has the fields it needs). */
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__Split *o = (const Meridian__Split *)nd_peer_receive(n, m, &a);
    if (!o) {
        pr_arena_free(&a);
        return;
    }
    bool notice = o->op == MERIDIAN__SPLIT__OP__NOTICE;
    /* The key and the bounds are client keys (a bound may be empty: the first key, or
     * +infinity). */
    bool bad_bounds =
        !notice && (o->start.len > ND_KEY_MAX || o->end.len > ND_KEY_MAX ||
                    (o->start.len && o->start.data[0] == 0) || (o->end.len && o->end.data[0] == 0));
    if (o->key.len == 0 || o->key.len > ND_KEY_MAX || o->key.data[0] == 0 || bad_bounds) {
        mr_err why;
        mr_errf(&why, MR_EPROTO, "a split key or bound that is no client key");
        nd_peer_malformed(n, m, &why);
        pr_arena_free(&a);
        return;
    }
    if (o->op == MERIDIAN__SPLIT__OP__ALLOC) {
        on_alloc(n, o);
    } else if (o->op == MERIDIAN__SPLIT__OP__ALLOCATED) {
        nd_group *g = nd_find_group(n, o->group);
        uint64_t child = o->child;
        if (g && g->split.state == ND_SPLIT_ALLOC && nd_txn_leads(n, g) &&
            mr_bytes_cmp(o->start.data, o->start.len, g->range_start.p, g->range_start.len) == 0 &&
            mr_bytes_cmp(o->end.data, o->end.len, g->range_end.p, g->range_end.len) == 0 &&
            splits_range(g, o->key.data, o->key.len) && child > g->id && child <= INT64_MAX &&
            nd_bytes_set(&g->split.key, o->key.data, o->key.len) == MR_OK) {
            g->split.child = child;
            g->split.state = ND_SPLIT_BARRIER;
            g->split.since = mr_monotonic_ns();
        }
    } else { /* MERIDIAN__SPLIT__OP__NOTICE (nd_peer_decode checked the op) */
        uint64_t parent = o->group;
        mr_err err;
        if (o->child > 0 && o->child <= INT64_MAX && !nd_find_group(n, parent) &&
            nd_cluster_record_split(n, parent, o->key.data, o->key.len, o->child, o->floor_ts,
                                    false, &err) != MR_OK)
            MR_WARN("node", "split notice for group %llu: %s", (unsigned long long)parent,
                    mr_err_msg(&err));
    }
    pr_arena_free(&a);
}
