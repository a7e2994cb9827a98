/* Integration: tablet splits on a three-node TLS cluster started with one data
 * group and --split-size 16KiB, written through libmeridian (which follows
 * wrong_range answers to the new owners).
 *
 *   splits   about 40 KB written into 24 directories ("t/dNN", keys
 *            "t/dNN/rMMM"): the data group splits (a Paxos-logged SPLIT, its
 *            new groups numbered by the meta group); then every node serves
 *            the same range map, tiling the key space, with every boundary a
 *            directory ("t/dNN", never inside one); every key reads back its
 *            value, strongly and at a timestamp from before the last split;
 *            every replica of a group holds the same versions; the meta
 *            group records each new group's range; transactions across the
 *            new groups commit; no group is over the split size by much
 *   restart  kill -9 of every node, then restart: the same map, the same
 *            data, and writes to every group go on
 *   manual   `meridian split KEY` splits where asked (inside a directory too);
 *            asking again changes nothing; bad arguments exit 2
 *   missed_split  a node cut off during a split catches up on the parent by
 *            snapshot (logs compact every 20 slots in this test): it learns the
 *            split from the snapshot and does not serve the new group, having
 *            no copy of its data */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_util.h"
#include "meridian.h"
#include "tablet/node/nd.h"
#include "tests/support/cluster.h"
#include "launch/proc.h"
#include "tests/test.h"

#define NNODES   3
#define NDIRS    24
#define NROWS    16
#define VAL_LEN  80
#define SPLIT_SZ (16 * 1024)

static bool started;
static char addrs[256];
static int64_t last_ts; /* commit timestamp of the last load write */

static void key_of(char *k, size_t cap, int d, int r)
{
    snprintf(k, cap, "t/d%02d/r%03d", d, r);
}

static void value_of(char *v, int d, int r, int gen)
{
    memset(v, 'a' + (d + r + gen) % 26, VAL_LEN);
    snprintf(v, 16, "%d.%d.%d:", gen, d, r);
    v[strlen(v)] = '-';
    v[VAL_LEN] = '\0';
}

static meridian *connect_db(void)
{
    meridian_options o = {.addrs = addrs, .certs_dir = tc.certs, .timeout_ms = 5000};
    meridian *db = NULL;
    int rc = meridian_open(&o, &db);
    if (rc != MERIDIAN_OK) {
        fprintf(stderr, "  open: %s: %s\n", meridian_errstr(rc), meridian_errmsg(db));
        meridian_close(db);
        return NULL;
    }
    return db;
}

typedef struct put_arg {
    const char *key, *val;
    const char *key2, *val2;
} put_arg;

static int put_fn(meridian_txn *t, void *arg)
{
    put_arg *a = arg;
    int rc = meridian_put(t, a->key, strlen(a->key), a->val, strlen(a->val));
    if (rc == MERIDIAN_OK && a->key2)
        rc = meridian_put(t, a->key2, strlen(a->key2), a->val2, strlen(a->val2));
    return rc;
}

/* The range map from node i: {ranges: [...]}, or NULL. */
static json_t *ranges_of(int i)
{
    return tc_request(i, ND_MSG_RANGES, "{}");
}

/* The data groups in a map: every range but the meta group's (group 1, ["", "\x02")). */
static size_t data_groups(json_t *r)
{
    size_t n = 0, k;
    json_t *v;
    json_array_foreach(json_object_get(r, "ranges"), k, v) n +=
        json_integer_value(json_object_get(v, "group")) != 1;
    return n;
}

/* The map's groups and boundaries as text (leaders left out). */
static char *map_text(int i)
{
    json_t *r = ranges_of(i);
    json_t *rs = json_object_get(r, "ranges");
    char *s = NULL;
    if (rs) {
        size_t k;
        json_t *v;
        json_array_foreach(rs, k, v) json_object_del(v, "leader");
        s = json_dumps(rs, JSON_COMPACT | JSON_SORT_KEYS);
    }
    json_decref(r);
    return s;
}

/* Waits until every node serves the same map, with at least `want` data groups (besides the
 * meta group's range), unchanged for 3 s (splits may follow each other while tablets are big). */
static bool wait_stable(size_t want, int timeout_ms)
{
    int64_t end = mr_monotonic_ns() + (int64_t)timeout_ms * MR_NS_PER_MS;
    char *last = NULL;
    int64_t since = 0;
    while (mr_monotonic_ns() < end) {
        char *m0 = map_text(0);
        bool same = m0 != NULL;
        for (int i = 1; i < NNODES && same; i++) {
            char *mi = map_text(i);
            same = mi && strcmp(mi, m0) == 0;
            free(mi);
        }
        json_error_t je;
        json_t *parsed = m0 ? json_loads(m0, 0, &je) : NULL;
        same = same && json_array_size(parsed) >= want + 1;
        json_decref(parsed);
        if (!same || !last || strcmp(last, m0) != 0) {
            free(last);
            last = same ? m0 : NULL;
            if (!same)
                free(m0);
            since = mr_monotonic_ns();
        } else {
            free(m0);
            if (mr_monotonic_ns() - since > 3 * MR_NS_PER_S) {
                free(last);
                return true;
            }
        }
        sleep_ms(200);
    }
    free(last);
    return false;
}

static void setup(void)
{
    if (started)
        return;
    started = true;
    CHECK_EQ(tc_setup(NNODES, "split"), 0);
    tc.split_size = "16KiB";
    setenv("MERIDIAN_TEST_SNAPSHOT_EVERY", "20", 1); /* logs compact: catch-up by snapshot */
    for (int i = 0; i < NNODES; i++)
        tc_start(i);
    CHECK_EQ(tc_init(1), 0);
    CHECK(tc_wait_leader(2, -1, 20000) >= 0);
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d", tc.ports[0]);
}

/* Every key, read in one strong read-only transaction (at ts when ts > 0),
 * holds generation gen's value. */
typedef struct scan_acc {
    int rows, bad;
    int gen;
} scan_acc;

static int check_row(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    scan_acc *a = arg;
    int d, r;
    char k[64], want[VAL_LEN + 1];
    snprintf(k, sizeof k, "%.*s", (int)klen, (const char *)key);
    if (sscanf(k, "t/d%d/r%d", &d, &r) != 2) {
        a->bad++;
        return 0;
    }
    value_of(want, d, r, a->gen);
    if (vlen != VAL_LEN || memcmp(val, want, VAL_LEN) != 0)
        a->bad++;
    a->rows++;
    return 0;
}

static void check_all(meridian *db, meridian_bound bound, int64_t ts, int gen)
{
    meridian_txn *t = NULL;
    CHECK_EQ(meridian_begin_ro(db, bound, ts, &t), MERIDIAN_OK);
    scan_acc a = {.gen = gen};
    int rc = meridian_scan(t, "t/", 2, "t0", 2, 0, check_row, &a);
    if (rc != MERIDIAN_OK)
        fprintf(stderr, "  scan: %s: %s\n", meridian_errstr(rc), meridian_errmsg(db));
    CHECK_EQ(rc, MERIDIAN_OK);
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_OK);
    CHECK_EQ(a.rows, NDIRS * NROWS);
    CHECK_EQ(a.bad, 0);
}

static void load(meridian *db, int gen)
{
    char k[64], v[VAL_LEN + 1];
    for (int d = 0; d < NDIRS; d++)
        for (int r = 0; r < NROWS; r++) {
            key_of(k, sizeof k, d, r);
            value_of(v, d, r, gen);
            put_arg a = {k, v, NULL, NULL};
            int rc = meridian_run(db, 60000, put_fn, &a, &last_ts);
            if (rc != MERIDIAN_OK)
                fprintf(stderr, "  put %s: %s: %s\n", k, meridian_errstr(rc), meridian_errmsg(db));
            CHECK_EQ(rc, MERIDIAN_OK);
        }
}

/* The map is the same on every node, tiles the key space and cuts only
 * between directories. *out: node 0's map (the caller frees it). */
static void check_map(json_t **out)
{
    json_t *m0 = *out = ranges_of(0);
    CHECK(m0 != NULL);
    json_t *rs = json_object_get(m0, "ranges");
    for (int i = 1; i < NNODES; i++) {
        json_t *mi = ranges_of(i);
        CHECK(mi != NULL);
        json_t *ri = json_object_get(mi, "ranges");
        CHECK_EQ(json_array_size(ri), json_array_size(rs));
        for (size_t k = 0; k < json_array_size(rs) && k < json_array_size(ri); k++) {
            json_t *a = json_array_get(rs, k), *b = json_array_get(ri, k);
            CHECK_STR(json_string_value(json_object_get(a, "start")),
                      json_string_value(json_object_get(b, "start")));
            CHECK_EQ(json_integer_value(json_object_get(a, "group")),
                     json_integer_value(json_object_get(b, "group")));
        }
        json_decref(mi);
    }
    /* The meta group holds ["", "\x02"), the data groups the rest. */
    json_t *first = json_array_get(rs, 0);
    CHECK_EQ(json_integer_value(json_object_get(first, "group")), 1);
    CHECK_STR(json_string_value(json_object_get(first, "start")), "");
    CHECK_STR(json_string_value(json_object_get(first, "end")), "\x02");
    const char *prev_end = "";
    for (size_t k = 0; k < json_array_size(rs); k++) {
        json_t *a = json_array_get(rs, k);
        const char *s = json_string_value(json_object_get(a, "start"));
        const char *e = json_string_value(json_object_get(a, "end"));
        CHECK(s && e);
        if (!s || !e)
            break;
        CHECK_STR(s, prev_end);
        prev_end = e;
        int d = -1, len = 0;
        /* A boundary is a directory: "t/dNN", nothing after it. */
        if (k > 1)
            CHECKF(sscanf(s, "t/d%2d%n", &d, &len) == 1 && len == (int)strlen(s),
                   "boundary '%s' is not a directory", s);
    }
    CHECK_STR(prev_end, "");
}

/* Every replica of every data group holds the same versions. */
static void check_replicas(json_t *map)
{
    json_t *rs = json_object_get(map, "ranges");
    for (size_t k = 1; k < json_array_size(rs); k++) { /* (0: the meta group's) */
        int gid = (int)json_integer_value(json_object_get(json_array_get(rs, k), "group"));
        json_int_t versions = -1, bytes = -1;
        for (int tries = 0; tries < 50; tries++) {
            bool same = true;
            versions = bytes = -1;
            for (int i = 0; i < NNODES && same; i++) {
                json_t *st = tc_status(i);
                json_t *g = tc_group_of(st, gid);
                json_int_t v = json_integer_value(json_object_get(g, "versions"));
                json_int_t b = json_integer_value(json_object_get(g, "bytes"));
                same = g && (versions < 0 || (v == versions && b == bytes));
                versions = v;
                bytes = b;
                json_decref(st);
            }
            if (same)
                break;
            versions = -1;
            sleep_ms(100);
        }
        CHECKF(versions > 0, "group %d: replicas differ (or hold nothing)", gid);
        /* Split near the middle: no tablet's data is far past the split size (the
         * transactions' own records, system keys, stay with the parent and do not
         * count: the rows written are). */
        const char *s = json_string_value(json_object_get(json_array_get(rs, k), "start"));
        const char *e = json_string_value(json_object_get(json_array_get(rs, k), "end"));
        long data = 0;
        char key[64];
        for (int d = 0; d < NDIRS; d++)
            for (int r = 0; r < NROWS; r++) {
                key_of(key, sizeof key, d, r);
                if (strcmp(key, s) >= 0 && (!*e || strcmp(key, e) < 0))
                    data += (long)strlen(key) + VAL_LEN + 16;
            }
        CHECKF(data < SPLIT_SZ * 3 / 2, "group %d holds %ld bytes of rows", gid, data);
    }
}

/* A hex string of text bytes as that text (in out); false if it is not one. */
static bool text_of_hex(const json_t *v, char *out, size_t cap)
{
    const char *h = json_string_value(v);
    size_t n = h ? strlen(h) : 0;
    if (!h || n % 2 || n / 2 >= cap || mr_hex_decode(h, n, (uint8_t *)out) != 0)
        return false;
    out[n / 2] = '\0';
    return true;
}

/* The meta group records every group's range as the map has it (its own ["", "\x02") too),
 * under system keys ("\0group/<id>") that only a system read reaches. */
static void check_meta(json_t *map)
{
    json_t *rs = json_object_get(map, "ranges");
    for (size_t k = 0; k < json_array_size(rs); k++) {
        json_t *a = json_array_get(rs, k);
        json_int_t gid = json_integer_value(json_object_get(a, "group"));
        char name[64];
        snprintf(name, sizeof name, "group/%lld", (long long)gid);
        json_t *r = NULL;
        for (int tries = 0; tries < 30; tries++) {
            r = tc_meta_record(0, name);
            if (r && json_is_true(json_object_get(r, "found")))
                break;
            json_decref(r);
            r = NULL;
            sleep_ms(100);
        }
        CHECKF(r != NULL, "the meta group has no record of group %lld", (long long)gid);
        json_error_t je;
        json_t *rec =
            r ? json_loads(json_string_value(json_object_get(r, "value")) ?: "", 0, &je) : NULL;
        /* (The record keeps keys in hex; these keys are text, as the map's view shows them.) */
        char start[200], end[200];
        bool same = rec && text_of_hex(json_object_get(rec, "start"), start, sizeof start) &&
                    text_of_hex(json_object_get(rec, "end"), end, sizeof end) &&
                    strcmp(start, json_string_value(json_object_get(a, "start")) ?: "?") == 0 &&
                    strcmp(end, json_string_value(json_object_get(a, "end")) ?: "?") == 0;
        json_decref(rec);
        json_decref(r);
        CHECKF(same, "the meta group's record of group %lld differs from the map", (long long)gid);
    }
    /* The old text key is outside the meta group's range; the system key is no client's, and
     * a system read is the cluster's own (a node certificate), not a client's. */
    json_t *r = tc_request(0, ND_MSG_SNAPREAD, "{\"group\":1,\"key\":\"group/2\"}");
    CHECK_STR(json_string_value(json_object_get(r, "error")), "wrong_range");
    json_decref(r);
    r = tc_request(0, ND_MSG_SNAPREAD, "{\"group\":1,\"key\":{\"hex\":\"0067726f75702f32\"}}");
    CHECK_STR(json_string_value(json_object_get(r, "error")), "invalid");
    json_decref(r);
    r = tc_request(0, ND_MSG_SNAPREAD,
                   "{\"group\":1,\"key\":{\"hex\":\"0067726f75702f32\"},\"system\":true}");
    CHECK_STR(json_string_value(json_object_get(r, "error")), "refused");
    json_decref(r);
}

TEST(splits)
{
    setup();
    meridian *db = connect_db();
    CHECK(db != NULL);
    if (!db)
        return;
    load(db, 1);
    CHECK(wait_stable(3, 60000));
    json_t *map = NULL;
    check_map(&map);
    if (test_failed_flag) {
        json_decref(map);
        meridian_close(db);
        return;
    }
    size_t ngroups = data_groups(map);
    fprintf(stderr, "  %zu data groups after the load\n", ngroups);
    CHECK(ngroups >= 3);
    for (size_t k = 0; k < ngroups; k++) {
        int gid = (int)json_integer_value(
            json_object_get(json_array_get(json_object_get(map, "ranges"), k), "group"));
        CHECKF(tc_wait_leader(gid, -1, 20000) >= 0, "group %d has no leader", gid);
    }
    check_all(db, MERIDIAN_STRONG, 0, 1);
    /* At a past timestamp (within the 3 s retention the tests run with). */
    int64_t ts = 0;
    meridian_txn *t = NULL;
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    void *val = NULL;
    size_t vlen = 0;
    CHECK_EQ(meridian_get(t, "t/d00/r000", 10, &val, &vlen), MERIDIAN_OK);
    meridian_free(val);
    CHECK_EQ(meridian_commit(t, &ts), MERIDIAN_OK);
    check_all(db, MERIDIAN_AT_TIMESTAMP, ts, 1);
    check_replicas(map);
    check_meta(map);
    /* One transaction over the first and the last directory (different groups). */
    char k1[64], k2[64], v1[VAL_LEN + 1], v2[VAL_LEN + 1];
    key_of(k1, sizeof k1, 0, 0);
    key_of(k2, sizeof k2, NDIRS - 1, NROWS - 1);
    value_of(v1, 0, 0, 2);
    value_of(v2, NDIRS - 1, NROWS - 1, 2);
    put_arg a = {k1, v1, k2, v2};
    CHECK_EQ(meridian_run(db, 30000, put_fn, &a, NULL), MERIDIAN_OK);
    value_of(v1, 0, 0, 1); /* back, so check_all's generation holds */
    value_of(v2, NDIRS - 1, NROWS - 1, 1);
    CHECK_EQ(meridian_run(db, 30000, put_fn, &a, NULL), MERIDIAN_OK);
    json_decref(map);
    meridian_close(db);
}

TEST(restart)
{
    setup();
    json_t *before = NULL, *after = NULL;
    check_map(&before);
    if (test_failed_flag) {
        json_decref(before);
        return;
    }
    for (int i = 0; i < NNODES; i++)
        tc_kill(i);
    for (int i = 0; i < NNODES; i++)
        tc_start(i);
    json_t *rs = json_object_get(before, "ranges");
    for (size_t k = 0; k < json_array_size(rs); k++) {
        int gid = (int)json_integer_value(json_object_get(json_array_get(rs, k), "group"));
        CHECKF(tc_wait_leader(gid, -1, 30000) >= 0, "group %d has no leader after restart", gid);
    }
    CHECK(wait_stable(data_groups(before), 60000));
    check_map(&after);
    CHECK_EQ(data_groups(after), data_groups(before));
    meridian *db = connect_db();
    CHECK(db != NULL);
    if (db) {
        check_all(db, MERIDIAN_STRONG, 0, 1);
        load(db, 3); /* every group takes writes again */
        check_all(db, MERIDIAN_STRONG, 0, 3);
        meridian_close(db);
    }
    json_decref(before);
    json_decref(after);
}

/* `meridian split KEY`, by hand: inside a directory if asked; a second time
 * changes nothing; bad arguments are refused before anything happens. */
TEST(manual)
{
    setup();
    CHECK(wait_stable(1, 60000)); /* the last test's writes may still split tablets */
    json_t *before = NULL;
    check_map(&before);
    size_t n0 = data_groups(before);
    json_decref(before);
    char *out = NULL;
    int rc =
        tc_meridian(&out, "split t/d05/r008 --host 127.0.0.1:%d --certs %s", tc.ports[1], tc.certs);
    CHECKF(rc == 0 && out && strstr(out, "split at 't/d05/r008'"), "split: exit %d: %s", rc,
           out ? out : "");
    free(out);
    out = NULL;
    json_t *m = ranges_of(1);
    CHECK(data_groups(m) >= n0 + 1);
    bool found = false;
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(m, "ranges"), k, v) found |=
        strcmp(json_string_value(json_object_get(v, "start")), "t/d05/r008") == 0;
    json_decref(m);
    CHECK(found);
    rc =
        tc_meridian(&out, "split t/d05/r008 --host 127.0.0.1:%d --certs %s", tc.ports[2], tc.certs);
    CHECKF(rc == 0 && out && strstr(out, "already starts a range"), "again: exit %d", rc);
    free(out);
    /* A key below "\x02" lies in the meta group, which is never split: refused, saying so. */
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%d", tc.ports[0]);
    char *argv[] = {(char *)proc_meridian_bin(),
                    "split",
                    "\x01x",
                    "--wait",
                    "5s",
                    "--host",
                    host,
                    "--certs",
                    tc.certs,
                    NULL};
    char *err = NULL;
    out = NULL;
    rc = proc_run(argv, 30000, &out, &err);
    CHECKF(rc != 0 && err && strstr(err, "meta group") && strstr(err, "never split"),
           "split in the meta group: exit %d: %s", rc, err ? err : "");
    free(out);
    free(err);
    out = NULL;
    m = ranges_of(1);
    CHECK_STR(
        json_string_value(json_object_get(json_array_get(json_object_get(m, "ranges"), 0), "end")),
        "\x02");
    CHECK(data_groups(m) >= n0 + 1);
    json_decref(m);
    CHECK_EQ(tc_meridian(NULL, "split --host 127.0.0.1:%d --certs %s", tc.ports[0], tc.certs), 2);
    CHECK_EQ(tc_meridian(NULL, "split a b --host 127.0.0.1:%d --certs %s", tc.ports[0], tc.certs),
             2);
    CHECK_EQ(tc_meridian(NULL, "split a --wait never --host 127.0.0.1:%d --certs %s", tc.ports[0],
                         tc.certs),
             2);
    meridian *db = connect_db();
    CHECK(db != NULL);
    if (db) {
        check_all(db, MERIDIAN_STRONG, 0, 3);
        meridian_close(db);
    }
}

/* The group holding key in node i's map (0: none). */
static int group_of(int i, const char *key, char *start, size_t cap)
{
    json_t *r = ranges_of(i);
    int gid = 0;
    size_t k;
    json_t *v;
    json_array_foreach(json_object_get(r, "ranges"), k, v)
    {
        const char *s = json_string_value(json_object_get(v, "start"));
        const char *e = json_string_value(json_object_get(v, "end"));
        if (s && e && strcmp(key, s) >= 0 && (!*e || strcmp(key, e) < 0)) {
            gid = (int)json_integer_value(json_object_get(v, "group"));
            snprintf(start, cap, "%s", s);
        }
    }
    json_decref(r);
    return gid;
}

/* A node cut off during a split, back after its parent's log was compacted
 * (the nodes snapshot every 20 slots here): it catches up by snapshot, learns
 * the split from it (the same map as everyone), and does not serve the new
 * group, having no copy of its data; the other two do. */
TEST(missed_split)
{
    setup();
    const char *key = "t/d20/r004";
    meridian *db = connect_db();
    CHECK(db != NULL);
    if (!db)
        return;
    char k[64], v[VAL_LEN + 1];
    for (int r = 0; r < NROWS; r++) {
        key_of(k, sizeof k, 20, r);
        value_of(v, 20, r, 7);
        put_arg a = {k, v, NULL, NULL};
        CHECK_EQ(meridian_run(db, 30000, put_fn, &a, NULL), MERIDIAN_OK);
    }
    char start[64];
    int parent = group_of(0, key, start, sizeof start);
    CHECK(parent > 0 && strcmp(start, key) != 0);
    /* Node 2 cut off (its Paxos frames dropped both ways: a killed node would
     * get the frames its peers queued for it on reconnecting). */
    json_decref(tc_request(0, ND_MSG_FAULT, "{\"set_partition\":true,\"partition\":[3]}"));
    json_decref(tc_request(1, ND_MSG_FAULT, "{\"set_partition\":true,\"partition\":[3]}"));
    json_decref(tc_request(2, ND_MSG_FAULT, "{\"set_partition\":true,\"partition\":[1,2]}"));
    char *out = NULL;
    int rc = tc_meridian(&out, "split %s --wait 25s --host 127.0.0.1:%d --certs %s", key,
                         tc.ports[0], tc.certs);
    CHECKF(rc == 0, "split: exit %d: %s", rc, out ? out : "");
    free(out);
    int child = group_of(0, key, start, sizeof start);
    CHECK(child > parent && strcmp(start, key) == 0);
    /* Slots go by in the parent's log (register writes through it), so that its
     * replicas snapshot and drop the split's slot. */
    for (int w = 0; w < 80; w++) {
        int l = tc_wait_leader(parent, 2, 10000);
        CHECK(l >= 0);
        char req[96];
        snprintf(req, sizeof req, "{\"group\":%d,\"op\":\"write\",\"value\":\"%d\"}", parent, w);
        json_t *r = tc_request(l, ND_MSG_REGISTER, req);
        if (w == 0 || !json_is_true(json_object_get(r, "ok"))) {
            char *t = r ? json_dumps(r, JSON_COMPACT) : NULL;
            fprintf(stderr, "  register write %d at node %d: %s\n", w, l, t ? t : "no answer");
            free(t);
        }
        json_decref(r);
    }
    for (int i = 0; i < NNODES; i++)
        json_decref(tc_request(i, ND_MSG_FAULT, "{\"set_partition\":true}"));
    CHECK(wait_stable(2, 60000)); /* node 2's map is everyone's */
    int64_t end = mr_monotonic_ns() + 20 * MR_NS_PER_S;
    bool caught_up = false;
    while (!caught_up && mr_monotonic_ns() < end) {
        json_t *st = tc_status(2);
        json_t *pg = tc_group_of(st, parent);
        const char *pe = json_string_value(json_object_get(pg, "end"));
        caught_up = pe && strcmp(pe, key) == 0;
        CHECKF(!tc_group_of(st, child), "node 2 serves group %d without its data", child);
        json_decref(st);
        if (!caught_up)
            sleep_ms(200);
    }
    CHECKF(caught_up, "node 2's replica of group %d did not learn its new end", parent);
    /* ... and it did so from a snapshot, not by replaying the split. */
    char path[300];
    snprintf(path, sizeof path, "%s/n2.log", tc.dir);
    char *log = NULL;
    FILE *f = fopen(path, "r");
    if (f) {
        log = calloc(1, 1 << 22);
        if (log)
            fread(log, 1, (1 << 22) - 1, f);
        fclose(f);
    }
    CHECKF(log && strstr(log, "caught up past its split"), "node 2 did not catch up by snapshot");
    free(log);
    CHECK(tc_wait_leader(child, -1, 20000) >= 0);
    /* Both halves read back, through node 2 as the client's seed. */
    meridian_close(db);
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d", tc.ports[2]);
    db = connect_db();
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d", tc.ports[0]);
    CHECK(db != NULL);
    meridian_txn *t = NULL;
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t), MERIDIAN_OK);
    for (int r = 0; r < NROWS && !test_failed_flag; r++) {
        key_of(k, sizeof k, 20, r);
        value_of(v, 20, r, 7);
        void *got = NULL;
        size_t glen = 0;
        int grc = meridian_get(t, k, strlen(k), &got, &glen);
        bool same = grc == MERIDIAN_OK && glen == VAL_LEN && memcmp(got, v, VAL_LEN) == 0;
        meridian_free(got);
        CHECKF(same, "%s: %s", k, meridian_errstr(grc));
    }
    meridian_commit(t, NULL);
    meridian_close(db);
}

int main(int argc, char **argv)
{
    static const test_case cases[] = {TEST_CASE(splits), TEST_CASE(restart), TEST_CASE(manual),
                                      TEST_CASE(missed_split)};
    int rc = test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
    tc_teardown(rc != 0 || getenv("MERIDIAN_KEEP_TMP"));
    return rc;
}
