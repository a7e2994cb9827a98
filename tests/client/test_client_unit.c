/* libmeridian's pure parts: the range map and routing order, the write
 * buffer, backoff, error mapping, argument checks, and misuse of the API
 * without a cluster (NULL arguments, finished or failed transactions). */
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <jansson.h>

#include "client/mer_int.h"
#include "common/mr_util.h"
#include "proto/pr_json.h"
#include "launch/proc.h"
#include "tests/test.h"

/* A map as a node answers it (a RangeMap), written in the schema's JSON mapping. */
static int map_from(const char *text, mer_rmap *m, mr_err *err)
{
    json_t *j = json_loads(text, 0, NULL);
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__RangeMap *r =
        j ? (const Meridian__RangeMap *)pr_from_json(&meridian__range_map__descriptor, j, &a, err)
          : NULL;
    json_decref(j);
    int rc = r ? mer_rmap_from_reply(m, r, err) : -1;
    pr_arena_free(&a);
    return rc;
}

/* Three data groups split at "g" and "p"; group 3 with leader hint. */
static const char map_text[] =
    "{\"nodes\":["
    "{\"id\":1,\"addr\":\"10.0.0.1:1\",\"zone\":\"a\"},"
    "{\"id\":2,\"addr\":\"10.0.0.2:1\",\"zone\":\"b\"},"
    "{\"id\":3,\"addr\":\"10.0.0.3:1\",\"zone\":\"c\"}],"
    "\"ranges\":["
    "{\"start\":\"\",\"end\":\"g\",\"group\":2,\"replicas\":[1,2,3],\"leader\":\"\"},"
    "{\"start\":\"g\",\"end\":\"p\",\"group\":3,\"replicas\":[2,3],\"leader\":\"10.0.0.3:1\"},"
    "{\"start\":\"p\",\"end\":\"\",\"group\":4,\"replicas\":[1,3],\"leader\":\"\"}]}";

static uint64_t gid_of(const mer_rmap *m, const char *key, size_t len)
{
    return mer_rmap_group_of(m, key, len);
}

TEST(route_lookup)
{
    mer_rmap m;
    mr_err err;
    CHECK_EQ(map_from(map_text, &m, &err), MR_OK);
    CHECK_EQ(m.nranges, 3);
    CHECK_EQ(gid_of(&m, "\x01", 1), 2);
    CHECK_EQ(gid_of(&m, "a", 1), 2);
    CHECK_EQ(gid_of(&m, "fzzz", 4), 2);
    CHECK_EQ(gid_of(&m, "f\xff\xff", 3), 2); /* binary: below "g" */
    CHECK_EQ(gid_of(&m, "g", 1), 3);         /* start is inclusive */
    CHECK_EQ(gid_of(&m, "g\0", 2), 3);       /* a key with a NUL, just above "g" */
    CHECK_EQ(gid_of(&m, "oz", 2), 3);
    CHECK_EQ(gid_of(&m, "p", 1), 4); /* end is exclusive */
    CHECK_EQ(gid_of(&m, "\xf4\x8f\xbf\xbf", 4), 4);
    CHECK_EQ(gid_of(&m, "\xff\xff", 2), 4);
    CHECK_STR(mer_rmap_group(&m, 3)->leader, "10.0.0.3:1");
    CHECK(mer_rmap_group(&m, 9) == NULL);
    mer_rmap_free(&m);
    /* Binary boundaries: a range ending at "a\0" holds "a" but not "a\0". */
    CHECK_EQ(map_from("{\"nodes\":[{\"id\":1,\"addr\":\"a:1\"}],\"ranges\":["
                      "{\"start\":\"\",\"end\":{\"hex\":\"6100\"},\"group\":2,\"replicas\":[1]},"
                      "{\"start\":{\"hex\":\"6100\"},\"end\":\"\",\"group\":3,\"replicas\":[1]}]}",
                      &m, &err),
             MR_OK);
    CHECK_EQ(gid_of(&m, "a", 1), 2);
    CHECK_EQ(gid_of(&m, "a\0", 2), 3);
    CHECK_EQ(gid_of(&m, "a\0\0", 3), 3);
    mer_rmap_free(&m);
}

TEST(route_rejects_bad_maps)
{
    const char *bad[] = {
        /* a gap between ranges */
        "{\"nodes\":[{\"id\":1,\"addr\":\"a:1\"}],\"ranges\":["
        "{\"start\":\"\",\"end\":\"g\",\"group\":2,\"replicas\":[1]},"
        "{\"start\":\"h\",\"end\":\"\",\"group\":3,\"replicas\":[1]}]}",
        /* not ending at +infinity */
        "{\"nodes\":[{\"id\":1,\"addr\":\"a:1\"}],\"ranges\":["
        "{\"start\":\"\",\"end\":\"g\",\"group\":2,\"replicas\":[1]}]}",
        /* an unknown replica */
        "{\"nodes\":[{\"id\":1,\"addr\":\"a:1\"}],\"ranges\":["
        "{\"start\":\"\",\"end\":\"\",\"group\":2,\"replicas\":[7]}]}",
        /* not starting at "" */
        "{\"nodes\":[{\"id\":1,\"addr\":\"a:1\"}],\"ranges\":["
        "{\"start\":\"b\",\"end\":\"\",\"group\":2,\"replicas\":[1]}]}",
        /* no nodes */
        "{\"ranges\":[{\"start\":\"\",\"end\":\"\",\"group\":2,\"replicas\":[1]}]}",
        /* no ranges */
        "{\"nodes\":[{\"id\":1,\"addr\":\"a:1\"}]}",
        /* a range that ends below its start */
        "{\"nodes\":[{\"id\":1,\"addr\":\"a:1\"}],\"ranges\":["
        "{\"start\":\"\",\"end\":\"g\",\"group\":2,\"replicas\":[1]},"
        "{\"start\":\"g\",\"end\":\"f\",\"group\":3,\"replicas\":[1]},"
        "{\"start\":\"f\",\"end\":\"\",\"group\":4,\"replicas\":[1]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mer_rmap m;
        mr_err err;
        int rc = map_from(bad[i], &m, &err);
        CHECKF(rc == MR_EPROTO, "map %zu accepted (rc %d)", i, rc);
    }
}

TEST(route_candidates_order)
{
    mer_rmap m;
    mr_err err;
    CHECK_EQ(map_from(map_text, &m, &err), MR_OK);
    const char *c[8];
    /* Leader hint first, then the other replicas. */
    CHECK_EQ(mer_rmap_candidates(&m, 3, true, 0, 0, c, 8), 2);
    CHECK_STR(c[0], "10.0.0.3:1");
    CHECK_STR(c[1], "10.0.0.2:1");
    /* Without a hint, the rotation picks where to start. */
    CHECK_EQ(mer_rmap_candidates(&m, 2, true, 1, 0, c, 8), 3);
    CHECK_STR(c[0], "10.0.0.2:1");
    CHECK_STR(c[2], "10.0.0.1:1");
    /* A node marked down is left out until its mark expires... */
    mer_rmap_mark_down(&m, "10.0.0.3:1", 1000);
    CHECK_EQ(mer_rmap_candidates(&m, 3, true, 0, 500, c, 8), 1);
    CHECK_STR(c[0], "10.0.0.2:1");
    CHECK_EQ(mer_rmap_candidates(&m, 3, true, 0, 1500, c, 8), 2);
    CHECK_STR(c[0], "10.0.0.3:1");
    /* ... unless every replica is down: then all of them, in order. */
    mer_rmap_mark_down(&m, "10.0.0.2:1", 2000);
    mer_rmap_mark_down(&m, "10.0.0.3:1", 2000);
    CHECK_EQ(mer_rmap_candidates(&m, 3, true, 0, 1800, c, 8), 2);
    CHECK_STR(c[0], "10.0.0.3:1");
    CHECK(mer_rmap_node_at(&m, "10.0.0.3:1", false)->proven == 0); /* to be probed again */
    /* A leader hint outside the map becomes a node of its own. */
    mer_rmap_set_leader(&m, 4, "10.0.0.9:1");
    CHECK_EQ(mer_rmap_candidates(&m, 4, true, 0, 2500, c, 8), 3);
    CHECK_STR(c[0], "10.0.0.9:1");
    CHECK(mer_rmap_node_at(&m, "10.0.0.9:1", false) != NULL);
    /* Snapshot reads (not leader first) ignore the hint's position. */
    CHECK_EQ(mer_rmap_candidates(&m, 3, false, 0, 2500, c, 8), 2);
    CHECK_STR(c[0], "10.0.0.2:1");
    CHECK_EQ(mer_rmap_candidates(&m, 99, true, 0, 0, c, 8), 0);
    /* A refreshed map keeps the down marks of known addresses. */
    mer_rmap_mark_down(&m, "10.0.0.1:1", 5000);
    mer_rmap m2;
    CHECK_EQ(map_from(map_text, &m2, &err), MR_OK);
    mer_rmap_replace(&m, &m2);
    CHECK_EQ(mer_rmap_node_at(&m, "10.0.0.1:1", false)->down_until, 5000);
    mer_rmap_free(&m);
}

TEST(seed_addresses)
{
    mr_err err;
    CHECK_EQ(mer_seeds_check("127.0.0.1:5,127.0.0.1:6, localhost:7", &err), MR_OK);
    CHECK_EQ(mer_seeds_check(" , ", &err), MR_EINVAL);
    CHECK_EQ(mer_seeds_check("127.0.0.1", &err), MR_EINVAL);
    CHECK(strstr(err.msg, "127.0.0.1"));
    CHECK_EQ(mer_seeds_check("a:1,b:notaport", &err), MR_EINVAL);
    CHECK_EQ(mer_seeds_check(NULL, &err), MR_EINVAL);
}

TEST(wbuf_sorted_last_write_wins)
{
    mer_wbuf b = {0};
    CHECK_EQ(mer_wbuf_set(&b, "m", 1, "1", 1), MR_OK);
    CHECK_EQ(mer_wbuf_set(&b, "a", 1, "2", 1), MR_OK);
    CHECK_EQ(mer_wbuf_set(&b, "z", 1, NULL, 0), MR_OK);
    CHECK_EQ(mer_wbuf_set(&b, "m", 1, "three", 5), MR_OK);
    CHECK_EQ(b.n, 3);
    CHECK(b.w[0].klen == 1 && b.w[0].key[0] == 'a');
    CHECK(b.w[1].klen == 1 && b.w[1].key[0] == 'm');
    CHECK(b.w[2].klen == 1 && b.w[2].key[0] == 'z');
    CHECK(memcmp(mer_wbuf_get(&b, "m", 1)->val, "three", 5) == 0);
    CHECK_EQ(mer_wbuf_get(&b, "m", 1)->vlen, 5);
    CHECK(mer_wbuf_get(&b, "z", 1)->val == NULL); /* a delete */
    CHECK(mer_wbuf_get(&b, "q", 1) == NULL);
    CHECK_EQ(mer_wbuf_lower_bound(&b, "b", 1), 1);
    CHECK_EQ(mer_wbuf_lower_bound(&b, "zz", 2), 3);
    CHECK_EQ(mer_wbuf_set(&b, "z", 1, "back", 4), MR_OK); /* a put after a delete */
    CHECK(memcmp(mer_wbuf_get(&b, "z", 1)->val, "back", 4) == 0);
    /* Binary keys: "m\0" sorts after "m" and before "m\x01"; a prefix is its own key. */
    CHECK_EQ(mer_wbuf_set(&b, "m\x01", 2, "p", 1), MR_OK);
    CHECK_EQ(mer_wbuf_set(&b, "m\0", 2, "n", 1), MR_OK);
    CHECK_EQ(mer_wbuf_set(&b, "m\xff", 2, "", 0), MR_OK);
    CHECK_EQ(b.n, 6);
    CHECK(b.w[1].klen == 1 && b.w[2].klen == 2 && b.w[2].key[1] == 0 && b.w[3].key[1] == 1 &&
          b.w[4].key[1] == 0xff);
    CHECK(mer_wbuf_get(&b, "m\0", 2)->val[0] == 'n');
    CHECK(mer_wbuf_get(&b, "m", 1)->vlen == 5);
    for (int i = 0; i < 100; i++) { /* growth */
        char k[8];
        snprintf(k, sizeof k, "k%03d", 99 - i);
        CHECK_EQ(mer_wbuf_set(&b, k, strlen(k), "v", 1), MR_OK);
    }
    CHECK_EQ(b.n, 106);
    for (size_t i = 1; i < b.n; i++)
        CHECK(mr_bytes_cmp(b.w[i - 1].key, b.w[i - 1].klen, b.w[i].key, b.w[i].klen) < 0);
    mer_wbuf_free(&b);
}

TEST(backoff_grows_with_jitter_and_cap)
{
    for (unsigned a = 0; a < 20; a++) {
        int64_t full = 10;
        for (unsigned i = 0; i < a && full < 1000; i++)
            full *= 2;
        if (full > 1000)
            full = 1000;
        for (uint64_t r = 0; r < 50; r++) {
            int64_t d = mer_backoff_ms(a, 10, 1000, r * 7919);
            CHECKF(d >= full / 2 && d <= full, "attempt %u: %lld outside [%lld, %lld]", a,
                   (long long)d, (long long)full / 2, (long long)full);
        }
    }
    /* Different random inputs spread the delay. */
    int64_t lo = INT64_MAX, hi = 0;
    for (uint64_t r = 0; r < 100; r++) {
        int64_t d = mer_backoff_ms(5, 10, 1000, r * 2654435761u);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    CHECK(hi - lo >= 100);
    CHECK_EQ(mer_backoff_ms(0, 0, 1000, 0), 1);
}

TEST(error_mapping)
{
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__ABORTED), MERIDIAN_ABORTED);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__BUSY), MERIDIAN_ABORTED);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__WRONG_RANGE), MERIDIAN_ABORTED);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__VOIDED), MERIDIAN_ABORTED);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__UNKNOWN), MERIDIAN_UNKNOWN);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__NOT_LEADER), MERIDIAN_UNAVAILABLE);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__NO_GROUP), MERIDIAN_UNAVAILABLE);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__BEHIND), MERIDIAN_UNAVAILABLE);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__NOT_INITIALIZED), MERIDIAN_UNAVAILABLE);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__STALE), MERIDIAN_STALE);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__INVALID), MERIDIAN_INVALID);
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__TOO_LARGE), MERIDIAN_ERROR);
    CHECK_EQ(mer_code_of_error((Meridian__ErrorCode)999), MERIDIAN_ERROR); /* a newer node's */
    CHECK_EQ(mer_code_of_error(MERIDIAN__ERROR_CODE__ERROR_UNSPECIFIED), MERIDIAN_ERROR);
    CHECK_EQ(mer_code_of_mr(MR_ETIMEDOUT), MERIDIAN_UNAVAILABLE);
    CHECK_EQ(mer_code_of_mr(MR_EUNAVAIL), MERIDIAN_UNAVAILABLE);
    CHECK_EQ(mer_code_of_mr(MR_ENOMEM), MERIDIAN_NOMEM);
    CHECK_EQ(mer_code_of_mr(MR_EPROTO), MERIDIAN_ERROR);
    CHECK_STR(meridian_errstr(MERIDIAN_ABORTED), "aborted");
    CHECK_STR(meridian_errstr(MERIDIAN_UNKNOWN), "outcome unknown");
    CHECK_STR(meridian_errstr(12345), "unknown code");
    for (int c = MERIDIAN_OK; c <= MERIDIAN_TIMEOUT; c++)
        CHECK(strcmp(meridian_errstr(c), "unknown code") != 0);
}

TEST(argument_checks)
{
    char why[96];
    CHECK_EQ(mer_check_bytes("k", 1, true, why, sizeof why), MERIDIAN_OK);
    CHECK_EQ(mer_check_bytes("", 0, true, why, sizeof why), MERIDIAN_INVALID);
    CHECK_STR(why, "key empty");
    CHECK_EQ(mer_check_bytes("", 0, false, why, sizeof why), MERIDIAN_OK); /* empty value */
    CHECK_EQ(mer_check_bytes(NULL, 3, false, why, sizeof why), MERIDIAN_INVALID);
    /* Keys and values are any bytes; only a key's first byte may not be 0 (the cluster's). */
    CHECK_EQ(mer_check_bytes("a\0b", 3, true, why, sizeof why), MERIDIAN_OK);
    CHECK_EQ(mer_check_bytes("\xff\xfe", 2, true, why, sizeof why), MERIDIAN_OK);
    CHECK_EQ(mer_check_bytes("\xc0\x80", 2, true, why, sizeof why), MERIDIAN_OK);
    CHECK_EQ(mer_check_bytes("\0p/1", 4, true, why, sizeof why), MERIDIAN_INVALID);
    CHECK(strstr(why, "byte 0") != NULL);
    CHECK_EQ(mer_check_bytes("\0", 1, false, why, sizeof why), MERIDIAN_OK); /* a value */
    CHECK_EQ(mer_check_bytes("\x01", 1, true, why, sizeof why), MERIDIAN_OK);
    char *big = malloc(MER_VALUE_MAX + 1);
    CHECK(big);
    memset(big, 'x', MER_VALUE_MAX + 1);
    int key_ok = mer_check_bytes(big, MER_KEY_MAX, true, why, sizeof why);
    int key_long = mer_check_bytes(big, MER_KEY_MAX + 1, true, why, sizeof why);
    int val_ok = mer_check_bytes(big, MER_VALUE_MAX, false, why, sizeof why);
    int val_long = mer_check_bytes(big, MER_VALUE_MAX + 1, false, why, sizeof why);
    free(big);
    CHECK_EQ(key_ok, MERIDIAN_OK);
    CHECK_EQ(key_long, MERIDIAN_INVALID);
    CHECK_EQ(val_ok, MERIDIAN_OK);
    CHECK_EQ(val_long, MERIDIAN_INVALID);
}

/* The public checks are the internal ones, with the public limits: what
 * `meridian kv` refuses before connecting is what the library refuses. */
TEST(public_argument_checks)
{
    CHECK_EQ(MER_KEY_MAX, MERIDIAN_KEY_MAX);
    CHECK_EQ(MER_VALUE_MAX, MERIDIAN_VALUE_MAX);
    char why[128] = "stale";
    CHECK_EQ(meridian_check_key("k", 1, why, sizeof why), MERIDIAN_OK);
    CHECK_STR(why, "");
    CHECK_EQ(meridian_check_key("", 0, why, sizeof why), MERIDIAN_INVALID);
    CHECK_STR(why, "key empty");
    CHECK_EQ(meridian_check_key("b\xff\0", 3, why, sizeof why), MERIDIAN_OK);
    CHECK_EQ(meridian_check_key("\0b", 2, why, sizeof why), MERIDIAN_INVALID);
    CHECK_STR(why, "key starts with byte 0 (reserved for the cluster's own keys)");
    CHECK_EQ(meridian_check_value("", 0, NULL, 0), MERIDIAN_OK);
    CHECK_EQ(meridian_check_value("a\0b", 3, why, sizeof why), MERIDIAN_OK);
    char *big = malloc(MERIDIAN_VALUE_MAX + 1);
    CHECK(big);
    memset(big, 'k', MERIDIAN_VALUE_MAX + 1);
    CHECK_EQ(meridian_check_key(big, MERIDIAN_KEY_MAX, why, sizeof why), MERIDIAN_OK);
    CHECK_EQ(meridian_check_key(big, 9000, why, sizeof why), MERIDIAN_INVALID);
    CHECK_STR(why, "key of 9000 bytes, over the 4096-byte limit");
    CHECK_EQ(meridian_check_value(big, MERIDIAN_VALUE_MAX, why, sizeof why), MERIDIAN_OK);
    int rc = meridian_check_value(big, MERIDIAN_VALUE_MAX + 1, why, 12); /* cut, terminated */
    free(big);
    CHECK_EQ(rc, MERIDIAN_INVALID);
    CHECK_STR(why, "value of 10");
}

/* A "cluster" that never answers: the address of a closed port. */
static int dead_port(void)
{
    return free_port(SOCK_STREAM);
}

TEST(api_misuse_without_cluster)
{
    /* NULL everywhere: codes, no crash. */
    CHECK_EQ(meridian_open(NULL, NULL), MERIDIAN_INVALID);
    meridian_close(NULL);
    CHECK_STR(meridian_errmsg(NULL), "no connection");
    CHECK_EQ(meridian_begin(NULL, NULL), MERIDIAN_INVALID);
    CHECK_EQ(meridian_get(NULL, "k", 1, NULL, NULL), MERIDIAN_INVALID);
    CHECK_EQ(meridian_put(NULL, "k", 1, "v", 1), MERIDIAN_INVALID);
    CHECK_EQ(meridian_delete(NULL, "k", 1), MERIDIAN_INVALID);
    CHECK_EQ(meridian_scan(NULL, NULL, 0, NULL, 0, 0, NULL, NULL), MERIDIAN_INVALID);
    CHECK_EQ(meridian_commit(NULL, NULL), MERIDIAN_INVALID);
    meridian_rollback(NULL);
    CHECK_EQ(meridian_read_ts(NULL), 0);
    CHECK_EQ(meridian_run(NULL, 0, NULL, NULL, NULL), MERIDIAN_INVALID);
    meridian_free(NULL);

    /* Bad options still give a handle that says why. */
    meridian *db = NULL;
    meridian_options o = {.addrs = "", .insecure = 1};
    CHECK_EQ(meridian_open(&o, &db), MERIDIAN_INVALID);
    CHECK(db && strstr(meridian_errmsg(db), "addrs"));
    meridian_close(db);
    o = (meridian_options){.addrs = "127.0.0.1:1"};
    CHECK_EQ(meridian_open(&o, &db), MERIDIAN_INVALID);
    CHECK(db && strstr(meridian_errmsg(db), "certs_dir"));
    meridian_close(db);
    o = (meridian_options){.addrs = "127.0.0.1", .insecure = 1};
    CHECK_EQ(meridian_open(&o, &db), MERIDIAN_INVALID);
    CHECK(db && strstr(meridian_errmsg(db), "host:port"));
    meridian_close(db);
    o = (meridian_options){.addrs = "127.0.0.1:1", .certs_dir = "/nonexistent"};
    CHECK_EQ(meridian_open(&o, &db), MERIDIAN_INVALID);
    CHECK(db && strstr(meridian_errmsg(db), "/nonexistent"));
    meridian_close(db);
    o = (meridian_options){.addrs = "127.0.0.1:1", .certs_dir = "/tmp", .user = "../x"};
    CHECK_EQ(meridian_open(&o, &db), MERIDIAN_INVALID);
    CHECK(db && strstr(meridian_errmsg(db), "user"));
    meridian_close(db);

    /* Nobody listening: UNAVAILABLE within the timeout, with the reason. */
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", dead_port());
    o = (meridian_options){.addrs = addr, .insecure = 1, .timeout_ms = 300};
    int64_t t0 = mr_monotonic_ns();
    CHECK_EQ(meridian_open(&o, &db), MERIDIAN_UNAVAILABLE);
    int64_t took = (mr_monotonic_ns() - t0) / MR_NS_PER_MS;
    CHECKF(took < 3000, "open took %lld ms", (long long)took);
    CHECK(strstr(meridian_errmsg(db), "range map"));

    /* Transactions on that handle: argument checks come before any I/O. */
    meridian_txn *t = NULL;
    CHECK_EQ(meridian_begin(db, NULL), MERIDIAN_INVALID);
    CHECK_EQ(meridian_begin_ro(db, (meridian_bound)9, 0, &t), MERIDIAN_INVALID);
    CHECK(t == NULL);
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, 0, &t), MERIDIAN_INVALID);
    CHECK_EQ(meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, 42, &t), MERIDIAN_OK);
    CHECK_EQ(meridian_read_ts(t), 42);
    CHECK_EQ(meridian_put(t, "k", 1, "v", 1), MERIDIAN_INVALID); /* read-only */
    CHECK(strstr(meridian_errmsg(db), "read-only"));
    int64_t ts = -1;
    CHECK_EQ(meridian_commit(t, &ts), MERIDIAN_OK);
    CHECK_EQ(ts, 42);

    CHECK_EQ(meridian_txn_id(NULL), 0u);
    CHECK_EQ(meridian_begin(db, &t), MERIDIAN_OK);
    uint64_t id = meridian_txn_id(t);
    CHECK(id != 0 && id <= (uint64_t)INT64_MAX); /* what the nodes' logs show */
    void *v;
    size_t vl;
    CHECK_EQ(meridian_get(t, "k", 1, NULL, &vl), MERIDIAN_INVALID);
    CHECK_EQ(meridian_get(t, "", 0, &v, &vl), MERIDIAN_INVALID);
    CHECK_EQ(meridian_put(t, "\0k", 2, "v", 1), MERIDIAN_INVALID);
    CHECK(strstr(meridian_errmsg(db), "byte 0"));
    CHECK_EQ(meridian_put(t, "k", 1, NULL, 5), MERIDIAN_INVALID);
    CHECK_EQ(meridian_scan(t, "a", 1, "b", 1, 0, NULL, NULL), MERIDIAN_INVALID);
    /* Reads of own writes need no cluster. */
    CHECK_EQ(meridian_put(t, "k", 1, "val", 3), MERIDIAN_OK);
    CHECK_EQ(meridian_get(t, "k", 1, &v, &vl), MERIDIAN_OK);
    CHECK(vl == 3 && memcmp(v, "val", 3) == 0);
    meridian_free(v);
    int64_t version = -1;
    CHECK_EQ(meridian_get_version(t, "k", 1, &v, &vl, &version), MERIDIAN_OK);
    CHECK_EQ(version, 0); /* its own write: not committed anywhere yet */
    meridian_free(v);
    CHECK_EQ(meridian_put(t, "e", 1, "", 0), MERIDIAN_OK); /* an empty value */
    CHECK_EQ(meridian_get(t, "e", 1, &v, &vl), MERIDIAN_OK);
    CHECK(vl == 0 && v == NULL);
    CHECK_EQ(meridian_delete(t, "k", 1), MERIDIAN_OK);
    CHECK_EQ(meridian_get(t, "k", 1, &v, &vl), MERIDIAN_NOTFOUND);
    /* A read the cluster must answer fails, and the transaction with it. */
    CHECK_EQ(meridian_get(t, "other", 5, &v, &vl), MERIDIAN_UNAVAILABLE);
    CHECK_EQ(meridian_put(t, "x", 1, "1", 1), MERIDIAN_UNAVAILABLE);
    CHECK(strstr(meridian_errmsg(db), "failed earlier"));
    CHECK_EQ(meridian_txn_id(t), id); /* a failed transaction keeps its name */
    CHECK_EQ(meridian_commit(t, NULL), MERIDIAN_UNAVAILABLE);
    meridian_close(db);
}

typedef struct run_probe {
    int calls;
    int ret;
    bool misuse;
} run_probe;

static int probe_fn(meridian_txn *t, void *arg)
{
    run_probe *p = arg;
    p->calls++;
    if (p->misuse) {
        int64_t ts;
        /* meridian_run owns its transaction: these are refused, not obeyed. */
        if (meridian_commit(t, &ts) != MERIDIAN_INVALID)
            return MERIDIAN_ERROR;
        meridian_rollback(t);
        if (meridian_put(t, "still", 5, "usable", 6) != MERIDIAN_OK)
            return MERIDIAN_ERROR;
    }
    return p->ret;
}

TEST(run_retries_only_retryable)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", dead_port());
    meridian_options o = {.addrs = addr, .insecure = 1, .timeout_ms = 200};
    meridian *db;
    CHECK_EQ(meridian_open(&o, &db), MERIDIAN_UNAVAILABLE);
    /* Aborted again and again: retried with backoff until the deadline. */
    run_probe p = {.ret = MERIDIAN_ABORTED};
    int64_t t0 = mr_monotonic_ns();
    CHECK_EQ(meridian_run(db, 300, probe_fn, &p, NULL), MERIDIAN_TIMEOUT);
    int64_t took = (mr_monotonic_ns() - t0) / MR_NS_PER_MS;
    CHECKF(p.calls >= 4, "only %d attempts", p.calls);
    CHECKF(took >= 150 && took < 1500, "took %lld ms", (long long)took);
    CHECK(strstr(meridian_errmsg(db), "aborted"));
    /* Never retried: an unknown outcome, a user's own code, not found. */
    int once[] = {MERIDIAN_UNKNOWN, MERIDIAN_NOTFOUND, MERIDIAN_ERROR, 77};
    for (size_t i = 0; i < sizeof once / sizeof once[0]; i++) {
        p = (run_probe){.ret = once[i]};
        CHECK_EQ(meridian_run(db, 5000, probe_fn, &p, NULL), once[i]);
        CHECK_EQ(p.calls, 1);
    }
    /* A callback that commits or rolls back itself is refused (no double free). */
    p = (run_probe){.ret = MERIDIAN_NOTFOUND, .misuse = true};
    CHECK_EQ(meridian_run(db, 5000, probe_fn, &p, NULL), MERIDIAN_NOTFOUND);
    /* Nothing read or written: commits without the cluster. */
    p = (run_probe){.ret = MERIDIAN_OK};
    int64_t ts = -1;
    CHECK_EQ(meridian_run(db, 5000, probe_fn, &p, &ts), MERIDIAN_OK);
    CHECK_EQ(ts, 0);
    /* Writes need the cluster: unavailable is retryable, so it times out. */
    CHECK_EQ(meridian_run(db, -1, probe_fn, &p, NULL), MERIDIAN_INVALID);
    CHECK_EQ(meridian_run(db, 100, NULL, &p, NULL), MERIDIAN_INVALID);
    meridian_close(db);
}

TEST_MAIN(TEST_CASE(route_lookup), TEST_CASE(route_rejects_bad_maps),
          TEST_CASE(route_candidates_order), TEST_CASE(seed_addresses),
          TEST_CASE(wbuf_sorted_last_write_wins), TEST_CASE(backoff_grows_with_jitter_and_cap),
          TEST_CASE(error_mapping), TEST_CASE(argument_checks), TEST_CASE(public_argument_checks),
          TEST_CASE(api_misuse_without_cluster), TEST_CASE(run_retries_only_retryable))
