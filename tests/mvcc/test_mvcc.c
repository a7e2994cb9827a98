/* tests/mvcc: the MVCC store of a tablet replica. Reads at timestamps, scans, idempotent apply
 * and crash replay, GC against an in-memory model of every version, split keys that respect
 * directories, snapshots (round trip, corruption), malformed input, full disk, query plans. */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tablet/mvcc/mv.h"
#include "tablet/mvcc/mv_int.h"
#include "launch/proc.h"
#include "tests/test.h"

/* ---- helpers ---- */

static char g_dir[256];

static const char *path_in(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", g_dir, name);
    return buf[i];
}

static int fresh_dir(void)
{
    if (g_dir[0])
        tmpdir_remove(g_dir);
    return tmpdir_make(g_dir, sizeof g_dir, "mvcc");
}

static mv_write put(const char *k, const char *v)
{
    return (mv_write){MV_PUT, k, strlen(k), v, strlen(v)};
}

static mv_write del(const char *k)
{
    return (mv_write){MV_DELETE, k, strlen(k), NULL, 0};
}

/* Reads key at ts as a string into buf ("" for a 0-byte value); returns the code. */
static int get_str(mv_store *s, const char *k, int64_t ts, char *buf, size_t cap, int64_t *vts)
{
    mv_version v;
    mr_err e;
    int rc = mv_get(s, k, strlen(k), ts, &v, &e);
    if (vts)
        *vts = v.ts;
    buf[0] = 0;
    if (rc == 0) {
        size_t n = v.len < cap - 1 ? v.len : cap - 1;
        memcpy(buf, v.value, n);
        buf[n] = 0;
        free(v.value);
    }
    return rc;
}

/* Collects a scan as "k=v,k=v". */
typedef struct strcat_arg {
    char out[4096];
} strcat_arg;

static int cat_fn(void *arg, const mv_version *v)
{
    strcat_arg *a = arg;
    size_t n = strlen(a->out);
    snprintf(a->out + n, sizeof a->out - n, "%s%.*s=%.*s", n ? "," : "", (int)v->key_len,
             (const char *)v->key, (int)v->len, (const char *)v->value);
    return 0;
}

static int scan_str(mv_store *s, const char *start, const char *end, int64_t ts, uint64_t limit,
                    int reverse, char *out, size_t cap)
{
    strcat_arg a = {{0}};
    mv_scan_opts o = {
        start, start ? strlen(start) : 0, end, end ? strlen(end) : 0, ts, limit, reverse, NULL};
    int rc = mv_scan(s, &o, cat_fn, &a, NULL, NULL);
    size_t n = strlen(a.out) < cap - 1 ? strlen(a.out) : cap - 1;
    memcpy(out, a.out, n);
    out[n] = 0;
    return rc;
}

/* Raw counters of the file, read with SQLite directly (store closed). */
static int raw_counts(const char *path, mv_size *out)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return -1;
    int ok = sqlite3_prepare_v2(db, mv_sql_text(ST_RECOUNT), -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW;
    if (ok) {
        out->versions = (uint64_t)sqlite3_column_int64(st, 0);
        out->tombstones = (uint64_t)sqlite3_column_int64(st, 1);
        out->bytes = (uint64_t)sqlite3_column_int64(st, 2) + out->versions * MV_VERSION_OVERHEAD;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok ? 0 : -1;
}

/* ---- basic ---- */

TEST(open_refuses_foreign_and_second_handle)
{
    CHECK(fresh_dir() == 0);
    mv_store *s, *s2;
    mr_err e;
    CHECK_EQ(mv_open(path_in("a.db"), NULL, &s, &e), 0);
    CHECK_EQ(mv_open(path_in("a.db"), NULL, &s2, &e), MR_EUNAVAIL);
    CHECKF(strstr(e.msg, "a.db"), "message names the file: %s", e.msg);
    mv_close(s);
    FILE *f = fopen(path_in("junk.db"), "w");
    CHECK(f);
    for (int i = 0; i < 4096; i++)
        fputc(i * 7 & 0xff, f);
    fclose(f);
    CHECK_EQ(mv_open(path_in("junk.db"), NULL, &s, &e), MR_ECORRUPT);
    /* A valid SQLite file of another program. */
    sqlite3 *db;
    CHECK(sqlite3_open(path_in("other.db"), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ(mv_open(path_in("other.db"), NULL, &s, &e), MR_ECORRUPT);
    CHECKF(strstr(e.msg, "not a Meridian MVCC store"), "%s", e.msg);
    /* A store of another format version (1: little-endian integers) is refused, with the file
     * and both versions named, never misread. */
    CHECK_EQ(mv_open(path_in("old.db"), NULL, &s, &e), 0);
    mv_close(s);
    CHECK(sqlite3_open(path_in("old.db"), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE mv_meta SET format = 1", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ(mv_open(path_in("old.db"), NULL, &s, &e), MR_ECORRUPT);
    CHECKF(strstr(e.msg, "old.db") && strstr(e.msg, "format version 1, this build reads version 2"),
           "%s", e.msg);
    CHECK_EQ(mv_open(NULL, NULL, &s, &e), MR_EINVAL);
}

TEST(reads_at_timestamps)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    CHECK_EQ(mv_open(path_in("r.db"), NULL, &s, NULL), 0);
    mv_write w1 = put("k", "v1"), w2 = put("k", "v2"), w3 = del("k"), w4 = put("k", "v3"),
             w5 = put("e", "");
    CHECK_EQ(mv_apply(s, 1, 10, &w1, 1, NULL), 0);
    CHECK_EQ(mv_apply(s, 2, 20, &w2, 1, NULL), 0);
    CHECK_EQ(mv_apply(s, 3, 30, &w3, 1, NULL), 0);
    CHECK_EQ(mv_apply(s, 5, 40, &w4, 1, NULL), 0); /* slots may skip */
    CHECK_EQ(mv_apply(s, 6, 40, &w5, 1, NULL), 0);
    char b[64];
    int64_t ts;
    mv_version v;
    CHECK_EQ(mv_get(s, "k", 1, 9, &v, NULL), MR_ENOTFOUND); /* before the first version */
    CHECK_EQ(v.ts, 0);
    CHECK_EQ(v.deleted, 0);
    CHECK_EQ(mv_get(s, "k", 1, 0, &v, NULL), MR_ENOTFOUND);
    CHECK_EQ(get_str(s, "k", 10, b, sizeof b, &ts), 0);
    CHECK_STR(b, "v1");
    CHECK_EQ(ts, 10);
    CHECK_EQ(get_str(s, "k", 19, b, sizeof b, &ts), 0); /* between versions */
    CHECK_STR(b, "v1");
    CHECK_EQ(get_str(s, "k", 20, b, sizeof b, &ts), 0);
    CHECK_STR(b, "v2");
    CHECK_EQ(get_str(s, "k", 29, b, sizeof b, &ts), 0);
    CHECK_STR(b, "v2");
    CHECK_EQ(ts, 20);
    CHECK_EQ(mv_get(s, "k", 1, 30, &v, NULL), MR_ENOTFOUND); /* after the delete */
    CHECK_EQ(v.deleted, 1);
    CHECK_EQ(v.ts, 30);
    CHECK(v.value == NULL);
    CHECK_EQ(mv_get(s, "k", 1, 39, &v, NULL), MR_ENOTFOUND);
    CHECK_EQ(get_str(s, "k", 40, b, sizeof b, &ts), 0); /* re-insert after delete */
    CHECK_STR(b, "v3");
    CHECK_EQ(get_str(s, "k", MV_TS_MAX, b, sizeof b, &ts), 0);
    CHECK_STR(b, "v3");
    CHECK_EQ(ts, 40);
    CHECK_EQ(mv_verify(s, NULL), 0);
    CHECK_EQ(mv_get(s, "e", 1, 100, &v, NULL), 0); /* an empty value is a value */
    CHECK(v.value != NULL);
    CHECK_EQ(v.len, 0);
    free(v.value);
    CHECK_EQ(mv_get(s, "nokey", 5, 100, &v, NULL), MR_ENOTFOUND);
    CHECK_EQ(mv_applied_slot(s), 6);
    /* Same key twice in one batch: the last write wins; a put then delete is a delete. */
    mv_write dup[3] = {put("d", "x"), put("d", "y"), put("z", "1")};
    CHECK_EQ(mv_apply(s, 7, 50, dup, 3, NULL), 0);
    CHECK_EQ(get_str(s, "d", 50, b, sizeof b, NULL), 0);
    CHECK_STR(b, "y");
    mv_write pd[2] = {put("d", "q"), del("d")};
    CHECK_EQ(mv_apply(s, 8, 60, pd, 2, NULL), 0);
    CHECK_EQ(mv_get(s, "d", 1, 60, &v, NULL), MR_ENOTFOUND);
    CHECK_EQ(v.deleted, 1);
    mv_size z;
    mv_size_estimate(s, &z);
    CHECK_EQ(z.versions, 8); /* k x4, e, d@50 (one of two), z, d@60 (one of two) */
    CHECK_EQ(z.tombstones, 2);
    mv_close(s);
    mv_size raw;
    CHECK_EQ(raw_counts(path_in("r.db"), &raw), 0);
    CHECK_EQ(raw.versions, z.versions);
    CHECK_EQ(raw.tombstones, z.tombstones);
    CHECK_EQ(raw.bytes, z.bytes);
}

TEST(scans_bounds_limits_tombstones)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    CHECK_EQ(mv_open(path_in("s.db"), NULL, &s, NULL), 0);
    mv_write b1[] = {put("a", "1"), put("b", "1"), put("c", "1"), put("d", "1")};
    mv_write b2[] = {del("b"), put("c", "2"), put("ab", "2")};
    mv_write b3[] = {put("b", "3"), del("d")};
    CHECK_EQ(mv_apply(s, 1, 100, b1, 4, NULL), 0);
    CHECK_EQ(mv_apply(s, 2, 200, b2, 3, NULL), 0);
    CHECK_EQ(mv_apply(s, 3, 300, b3, 2, NULL), 0);
    char out[512];
    CHECK_EQ(scan_str(s, NULL, NULL, 99, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "");
    CHECK_EQ(scan_str(s, NULL, NULL, 100, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "a=1,b=1,c=1,d=1");
    CHECK_EQ(scan_str(s, NULL, NULL, 250, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "a=1,ab=2,c=2,d=1");
    CHECK_EQ(scan_str(s, NULL, NULL, 300, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "a=1,ab=2,b=3,c=2");
    CHECK_EQ(scan_str(s, "ab", "c", 300, 0, 0, out, sizeof out), 0); /* [start, end) */
    CHECK_STR(out, "ab=2,b=3");
    CHECK_EQ(scan_str(s, "a", NULL, 300, 2, 0, out, sizeof out), 0); /* limit */
    CHECK_STR(out, "a=1,ab=2");
    CHECK_EQ(scan_str(s, NULL, NULL, 300, 0, 1, out, sizeof out), 0); /* reverse */
    CHECK_STR(out, "c=2,b=3,ab=2,a=1");
    CHECK_EQ(scan_str(s, NULL, NULL, 250, 2, 1, out, sizeof out), 0);
    CHECK_STR(out, "d=1,c=2");
    CHECK_EQ(scan_str(s, "b", "d", 250, 0, 1, out, sizeof out), 0);
    CHECK_STR(out, "c=2");
    CHECK_EQ(scan_str(s, "c", "c", 300, 0, 0, out, sizeof out), 0); /* empty range */
    CHECK_STR(out, "");
    CHECK_EQ(scan_str(s, "z", "b", 300, 0, 0, out, sizeof out), 0); /* inverted: empty */
    CHECK_STR(out, "");
    uint64_t n = 0;
    mv_scan_opts o = {.ts = 300};
    CHECK_EQ(mv_scan(s, &o, cat_fn, &(strcat_arg){{0}}, &n, NULL), 0);
    CHECK_EQ(n, 4);
    /* A hot key with a long history exercises the seek path (more than 8 skipped versions). */
    for (int i = 0; i < 40; i++) {
        char v[16];
        snprintf(v, sizeof v, "h%d", i);
        mv_write w[2] = {put("b", v), put("bb", v)};
        CHECK_EQ(mv_apply(s, (uint64_t)(10 + i), 1000 + 10 * i, w, 2, NULL), 0);
    }
    CHECK_EQ(scan_str(s, NULL, NULL, 1000 + 10 * 5 + 3, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "a=1,ab=2,b=h5,bb=h5,c=2");
    CHECK_EQ(scan_str(s, NULL, NULL, 999, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "a=1,ab=2,b=3,c=2");
    CHECK_EQ(scan_str(s, NULL, NULL, 1000 + 10 * 5 + 3, 0, 1, out, sizeof out), 0);
    CHECK_STR(out, "c=2,bb=h5,b=h5,ab=2,a=1");
    CHECK_EQ(scan_str(s, "b", "bb", 5000, 0, 0, out, sizeof out), 0); /* end bound after a seek */
    CHECK_STR(out, "b=h39");
    /* The callback's verdict stops the scan and is returned. */
    CHECK_EQ(mv_scan(s, &o, NULL, NULL, NULL, NULL), MR_EINVAL);
    mv_close(s);
}

/* mv_scan_opts.newest: the newest version that decided a key, a skipped tombstone included,
 * never a version above the read timestamp: what a snapshot scan must wait to be certainly
 * past before it answers (nd_read_at), instead of the read timestamp itself. */
static int64_t scan_newest(mv_store *s, const char *start, const char *end, int64_t ts,
                           uint64_t limit, int reverse)
{
    int64_t newest = 0;
    mv_scan_opts o = {
        start, start ? strlen(start) : 0, end, end ? strlen(end) : 0, ts, limit, reverse, &newest};
    strcat_arg a = {{0}};
    return mv_scan(s, &o, cat_fn, &a, NULL, NULL) == 0 ? newest : -1;
}

TEST(scan_reports_its_newest_deciding_version)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    CHECK_EQ(mv_open(path_in("n.db"), NULL, &s, NULL), 0);
    mv_write b1[] = {put("a", "1"), put("b", "1"), put("c", "1")};
    mv_write b2[] = {del("b")};
    mv_write b3[] = {put("c", "3")};
    CHECK_EQ(mv_apply(s, 1, 100, b1, 3, NULL), 0);
    CHECK_EQ(mv_apply(s, 2, 200, b2, 1, NULL), 0);
    CHECK_EQ(mv_apply(s, 3, 300, b3, 1, NULL), 0);
    CHECK_EQ(scan_newest(s, NULL, NULL, 50, 0, 0), 0); /* nothing decided a key */
    CHECK_EQ(scan_newest(s, NULL, NULL, 150, 0, 0), 100);
    CHECK_EQ(scan_newest(s, NULL, NULL, 250, 0, 0), 200); /* b's tombstone, not returned */
    CHECK_EQ(scan_newest(s, NULL, NULL, 250, 0, 1), 200); /* the same backwards */
    CHECK_EQ(scan_newest(s, "a", "b", 250, 0, 0), 100);   /* the tombstone is outside */
    CHECK_EQ(scan_newest(s, NULL, NULL, 1000, 0, 0), 300);
    CHECK_EQ(scan_newest(s, "c", NULL, 299, 0, 0), 100); /* c@300 is above the read */
    mv_close(s);
}

/* mv_check_txn finds, before a slot is applied, each transaction mv_apply_txns would refuse,
 * with a verdict that depends on nothing but the transaction and the range; leaving those out,
 * the rest of the slot applies (the node does exactly that, so one client's bad record cannot
 * take other clients' commits in the same slot down with it). */
TEST(bad_transactions_are_found_one_by_one_before_the_slot)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    mr_err e;
    CHECK_EQ(mv_open(path_in("t.db"), NULL, &s, NULL), 0);
    CHECK_EQ(mv_set_range(s, 1, "b", 1, "y", 1, NULL), 0);
    char *big = malloc(MV_MAX_KEY + 1);
    CHECK(big);
    memset(big, 'k', MV_MAX_KEY + 1);
    mv_write good1[] = {put("good1", "v")};
    mv_write toolong[] = {put("good2", "v"), {MV_PUT, big, MV_MAX_KEY + 1, "big", 3}};
    mv_write outside[] = {put("zebra", "v")};
    mv_write empty[] = {{MV_PUT, "", 0, "v", 1}};
    mv_write good3[] = {put("good3", "v"), del("good1")};
    mv_write sys[] = {{MV_PUT, "\0d/1", 4, "x", 1}}; /* system keys are always in range */
    mv_txn slot[] = {{10, good1, 1}, {10, toolong, 2}, {11, outside, 1}, {12, empty, 1},
                     {0, good3, 2},  {13, good3, 2},   {13, sys, 1}};
    int want[] = {MR_OK, MR_EINVAL, MR_EINVAL, MR_EINVAL, MR_EINVAL, MR_OK, MR_OK};
    mv_txn ok[8];
    size_t nok = 0;
    for (size_t j = 0; j < sizeof slot / sizeof slot[0]; j++) {
        int rc = mv_check_txn(s, &slot[j], &e);
        CHECKF(rc == want[j], "transaction %zu: %d (%s)", j, rc, e.msg);
        if (rc == MR_OK)
            ok[nok++] = slot[j];
    }
    /* The unchecked slot is refused whole; the checked one applies. */
    CHECK_EQ(mv_apply_txns(s, 2, slot, sizeof slot / sizeof slot[0], &e), MR_EINVAL);
    CHECK_EQ(mv_apply_txns(s, 2, ok, nok, &e), 0);
    free(big);
    char b[16];
    CHECK_EQ(get_str(s, "good1", 10, b, sizeof b, NULL), 0);
    CHECK_EQ(get_str(s, "good1", 13, b, sizeof b, NULL), MR_ENOTFOUND);
    CHECK_EQ(get_str(s, "good3", 13, b, sizeof b, NULL), 0);
    CHECK_EQ(get_str(s, "good2", 13, b, sizeof b, NULL), MR_ENOTFOUND); /* none of a bad one */
    CHECK_EQ(mv_applied_slot(s), 2);
    /* The horizon is this replica's own: not part of the check, mv_apply_txns reports it. */
    CHECK_EQ(mv_gc(s, 20, 0, NULL, NULL), 0);
    mv_txn late = {15, good1, 1};
    CHECK_EQ(mv_check_txn(s, &late, &e), MR_OK);
    CHECK_EQ(mv_apply_txns(s, 3, &late, 1, &e), MR_ESTALE);
    CHECK_EQ(mv_check_txn(NULL, &late, &e), MR_EINVAL);
    mv_close(s);
}

/* One slot carrying several transactions, each at its own commit timestamp. */
TEST(apply_several_transactions_in_one_slot)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    mr_err e;
    CHECK_EQ(mv_open(path_in("t.db"), NULL, &s, NULL), 0);
    mv_write t1[] = {put("a", "a1"), put("b", "b1")};
    mv_write t2[] = {del("a")};
    mv_write t3[] = {put("b", "b3"), put("c", "c3")};
    mv_txn txns[] = {{30, t1, 2}, {50, t2, 1}, {40, t3, 2}}; /* a 2PC commit may be older */
    int64_t max_ts = -1;
    CHECK_EQ(mv_max_ts(s, &max_ts, &e), 0);
    CHECK_EQ(max_ts, 0);
    CHECK_EQ(mv_apply_txns(s, 1, txns, 3, &e), 0);
    CHECK_EQ(mv_max_ts(s, &max_ts, &e), 0);
    CHECK_EQ(max_ts, 50); /* a tombstone's timestamp counts too */
    char b[16];
    CHECK_EQ(get_str(s, "a", 30, b, sizeof b, NULL), 0);
    CHECK_STR(b, "a1");
    CHECK_EQ(get_str(s, "a", 50, b, sizeof b, NULL), MR_ENOTFOUND);
    CHECK_EQ(get_str(s, "b", 39, b, sizeof b, NULL), 0);
    CHECK_STR(b, "b1");
    CHECK_EQ(get_str(s, "b", 40, b, sizeof b, NULL), 0);
    CHECK_STR(b, "b3");
    CHECK_EQ(get_str(s, "c", 35, b, sizeof b, NULL), MR_ENOTFOUND);
    CHECK_EQ(mv_apply_txns(s, 1, txns, 3, &e), MR_EEXIST);
    /* A bad transaction anywhere rejects the whole slot, and the message says which. */
    mv_write bad[] = {{MV_PUT, NULL, 1, "x", 1}};
    mv_txn mixed[] = {{60, t1, 2}, {61, t3, 2}, {62, bad, 1}};
    CHECK_EQ(mv_apply_txns(s, 2, mixed, 3, &e), MR_EINVAL);
    CHECKF(strstr(e.msg, "transaction 2"), "%s", e.msg);
    CHECK_EQ(mv_gc(s, 45, 0, NULL, NULL), 0);
    CHECK_EQ(mv_max_ts(s, &max_ts, &e), 0);
    CHECK_EQ(max_ts, 50);
    mv_txn late[] = {{60, t1, 2}, {44, t3, 2}};
    CHECK_EQ(mv_apply_txns(s, 2, late, 2, &e), MR_ESTALE);
    CHECKF(strstr(e.msg, "transaction 1"), "%s", e.msg);
    CHECK_EQ(mv_applied_slot(s), 1);
    CHECK_EQ(get_str(s, "a", 70, b, sizeof b, NULL), MR_ENOTFOUND); /* nothing of slot 2 */
    CHECK_EQ(mv_apply_txns(s, 2, NULL, 1, &e), MR_EINVAL);
    CHECK_EQ(mv_apply_txns(s, 2, NULL, 0, &e), 0); /* an empty slot */
    CHECK_EQ(mv_applied_slot(s), 2);
    mv_close(s);
}

static int stop_fn(void *arg, const mv_version *v)
{
    (*(int *)arg)++;
    return 42;
}

TEST(scan_callback_stops)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    CHECK_EQ(mv_open(path_in("c.db"), NULL, &s, NULL), 0);
    mv_write w[] = {put("a", "1"), put("b", "2")};
    CHECK_EQ(mv_apply(s, 1, 5, w, 2, NULL), 0);
    int calls = 0;
    mv_scan_opts o = {.ts = 5};
    CHECK_EQ(mv_scan(s, &o, stop_fn, &calls, NULL, NULL), 42);
    CHECK_EQ(calls, 1);
    o.reverse = 1;
    calls = 0;
    CHECK_EQ(mv_scan(s, &o, stop_fn, &calls, NULL, NULL), 42);
    CHECK_EQ(calls, 1);
    mv_close(s);
}

/* ---- apply: idempotence and crash replay ---- */

/* The "Paxos log" of these tests: slot i writes key (i % 7) = "v<i>" at ts 10*i, and every
 * fifth slot deletes a key. */
static void log_entry(uint64_t slot, mv_write *w, char *kbuf, char *vbuf)
{
    snprintf(kbuf, 16, "key%llu", (unsigned long long)(slot % 7));
    snprintf(vbuf, 16, "v%llu", (unsigned long long)slot);
    *w = slot % 5 == 0 ? del(kbuf) : put(kbuf, vbuf);
}

static int apply_log(mv_store *s, uint64_t from, uint64_t to, int *applied, int *skipped)
{
    for (uint64_t i = from; i <= to; i++) {
        char k[16], v[16];
        mv_write w;
        log_entry(i, &w, k, v);
        int rc = mv_apply(s, i, (int64_t)(10 * i), &w, 1, NULL);
        if (rc == MR_EEXIST)
            (*skipped)++;
        else if (rc == 0)
            (*applied)++;
        else
            return rc;
    }
    return 0;
}

/* Every key at every ts matches a model computed from the log prefix 1..upto. */
static int matches_log(mv_store *s, uint64_t upto)
{
    for (uint64_t t = 0; t <= upto + 2; t++)
        for (int k = 0; k < 7; k++) {
            char key[16], want[16] = "", got[16];
            int found = 0;
            for (uint64_t i = 1; i <= upto && i <= t; i++)
                if (i % 7 == (uint64_t)k) {
                    found = i % 5 != 0;
                    snprintf(want, sizeof want, "v%llu", (unsigned long long)i);
                }
            snprintf(key, sizeof key, "key%d", k);
            int rc = get_str(s, key, (int64_t)(10 * t), got, sizeof got, NULL);
            if (found ? rc != 0 || strcmp(got, want) != 0 : rc != MR_ENOTFOUND)
                return -1;
        }
    return 0;
}

TEST(apply_idempotent_across_reopen)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    mr_err e;
    int applied = 0, skipped = 0;
    CHECK_EQ(mv_open(path_in("i.db"), NULL, &s, NULL), 0);
    CHECK_EQ(apply_log(s, 1, 50, &applied, &skipped), 0);
    CHECK_EQ(applied, 50);
    mv_close(s);
    CHECK_EQ(mv_open(path_in("i.db"), NULL, &s, NULL), 0);
    CHECK_EQ(mv_applied_slot(s), 50);
    applied = skipped = 0;
    CHECK_EQ(apply_log(s, 1, 80, &applied, &skipped), 0); /* replay the whole log */
    CHECK_EQ(skipped, 50);
    CHECK_EQ(applied, 30);
    CHECK_EQ(matches_log(s, 80), 0);
    /* "Says so": the message names the slot. */
    char k[16], v[16];
    mv_write w;
    log_entry(3, &w, k, v);
    CHECK_EQ(mv_apply(s, 3, 30, &w, 1, &e), MR_EEXIST);
    CHECKF(strstr(e.msg, "slot 3 already applied"), "%s", e.msg);
    /* Replay still says EEXIST after GC moved the horizon past the old slots' timestamps. */
    CHECK_EQ(mv_gc(s, 500, 0, NULL, NULL), 0);
    CHECK_EQ(mv_apply(s, 3, 30, &w, 1, &e), MR_EEXIST);
    CHECK_EQ(mv_sync(s, NULL), 0);
    CHECK_EQ(mv_sync(NULL, &e), MR_EINVAL);
    /* n = 0 records the slot alone. */
    CHECK_EQ(mv_apply(s, 81, 0, NULL, 0, NULL), 0);
    CHECK_EQ(mv_applied_slot(s), 81);
    mv_close(s);
}

TEST(crash_replay_after_kill)
{
    CHECK(fresh_dir() == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* Child: apply 1..37, then die without closing (no checkpoint, no cleanup). */
        mv_store *c;
        int a = 0, sk = 0;
        if (mv_open(path_in("k.db"), NULL, &c, NULL) || apply_log(c, 1, 37, &a, &sk))
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    mv_store *s;
    CHECK_EQ(mv_open(path_in("k.db"), NULL, &s, NULL), 0);
    CHECK_EQ(mv_applied_slot(s), 37);
    CHECK_EQ(matches_log(s, 37), 0);
    int applied = 0, skipped = 0;
    CHECK_EQ(apply_log(s, 1, 60, &applied, &skipped), 0);
    CHECK_EQ(skipped, 37);
    CHECK_EQ(applied, 23);
    CHECK_EQ(matches_log(s, 60), 0);
    mv_close(s);
}

static int read_file(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(*buf, 1, (size_t)n, f);
    fclose(f);
    return *len == (size_t)n ? 0 : -1;
}

static int write_file(const char *path, const char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(buf, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

/* synchronous=NORMAL may lose the tail of the WAL on power loss. What survives must be a prefix
 * of the applies, each whole, with the applied slot saying exactly which: the durability
 * argument in mv.c. Simulated by cutting a crashed store's WAL at many lengths. */
TEST(power_loss_keeps_a_consistent_prefix)
{
    CHECK(fresh_dir() == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        mv_store *c;
        int a = 0, sk = 0;
        if (mv_open(path_in("w.db"), NULL, &c, NULL) || apply_log(c, 1, 60, &a, &sk))
            _exit(3);
        raise(SIGKILL); /* no checkpoint: every apply is still in the WAL */
        _exit(4);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    char *db = NULL, *wal = NULL;
    size_t dblen = 0, wallen = 0;
    CHECK_EQ(read_file(path_in("w.db"), &db, &dblen), 0);
    CHECK_EQ(read_file(path_in("w.db-wal"), &wal, &wallen), 0);
    CHECKF(wallen > 32 + 60 * 4096, "the WAL holds the applies (%zu bytes)", wallen);
    uint64_t prev = 0;
    int distinct = 0, ok = 1;
    for (int i = 0; i <= 40 && ok; i++) {
        /* Cuts at arbitrary byte offsets, not only frame boundaries, and the whole file. */
        size_t cut = i == 40 ? wallen : (size_t)((double)wallen * i / 40.0) + (size_t)(i * 977);
        if (cut > wallen)
            cut = wallen;
        CHECK_EQ(write_file(path_in("cut.db"), db, dblen), 0);
        CHECK_EQ(write_file(path_in("cut.db-wal"), wal, cut), 0);
        mv_store *s;
        mr_err e;
        CHECKF(mv_open(path_in("cut.db"), NULL, &s, &e) == 0, "cut %zu: %s", cut, e.msg);
        uint64_t got = mv_applied_slot(s);
        ok = got >= prev && matches_log(s, got) == 0;
        distinct += got != prev;
        prev = got;
        if (i == 40) {
            CHECK_EQ(got, 60);
        } else if (i == 20) { /* the log replays the lost tail */
            int a = 0, sk = 0;
            ok = ok && apply_log(s, 1, 60, &a, &sk) == 0 && sk == (int)got &&
                 matches_log(s, 60) == 0;
        }
        mv_close(s);
        remove(path_in("cut.db-wal"));
        CHECKF(ok, "cut %zu of %zu: applied %llu is not a consistent prefix", cut, wallen,
               (unsigned long long)got);
    }
    CHECK(distinct > 10);
    free(db);
    free(wal);
}

/* ---- GC against a model ---- */

typedef struct mver {
    int64_t ts;
    int tomb;
    char val[24];
} mver;

#define NKEYS 24
typedef struct mkey {
    unsigned char k[8];
    size_t klen;
    mver *v; /* every version ever written, any order */
    size_t n;
} mkey;

static mkey g_keys[NKEYS];

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void model_init(void)
{
    for (int i = 0; i < NKEYS; i++) {
        free(g_keys[i].v);
        memset(&g_keys[i], 0, sizeof g_keys[i]);
        /* Keys with shared prefixes, zero bytes and high bytes, distinct by construction. */
        g_keys[i].k[0] = (unsigned char)(i % 3 == 0 ? 0x00 : i % 3 == 1 ? 'm' : 0xff);
        g_keys[i].k[1] = (unsigned char)(i / 3);
        g_keys[i].klen = 1 + (size_t)(i % 2) + 1;
        g_keys[i].k[2] = 0;
    }
}

static void model_free(void)
{
    for (int i = 0; i < NKEYS; i++) {
        free(g_keys[i].v);
        g_keys[i].v = NULL;
        g_keys[i].n = 0;
    }
}

static void model_write(int k, int64_t ts, int tomb, const char *val)
{
    mkey *m = &g_keys[k];
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].ts == ts) {
            m->v[i].tomb = tomb;
            snprintf(m->v[i].val, sizeof m->v[i].val, "%s", val);
            return;
        }
    m->v = realloc(m->v, (m->n + 1) * sizeof *m->v);
    m->v[m->n].ts = ts;
    m->v[m->n].tomb = tomb;
    snprintf(m->v[m->n].val, sizeof m->v[m->n].val, "%s", val);
    m->n++;
}

/* The model's newest version of key k at t, or NULL. */
static const mver *model_read(int k, int64_t t)
{
    const mver *best = NULL;
    for (size_t i = 0; i < g_keys[k].n; i++)
        if (g_keys[k].v[i].ts <= t && (!best || g_keys[k].v[i].ts > best->ts))
            best = &g_keys[k].v[i];
    return best;
}

/* Versions a complete GC at h must leave. */
static uint64_t model_min_versions(int64_t h)
{
    uint64_t n = 0;
    for (int k = 0; k < NKEYS; k++) {
        const mver *at = model_read(k, h);
        for (size_t i = 0; i < g_keys[k].n; i++)
            n += g_keys[k].v[i].ts > h;
        n += at && !at->tomb;
    }
    return n;
}

static int check_get(mv_store *s, int k, int64_t t)
{
    mv_version v;
    mr_err e;
    const mver *m = model_read(k, t);
    int rc = mv_get(s, g_keys[k].k, g_keys[k].klen, t, &v, &e);
    if (!m || m->tomb) {
        /* GC may have removed the tombstone itself (then no version is found at all). */
        if (rc != MR_ENOTFOUND || (v.deleted && (!m || v.ts != m->ts)) ||
            (!v.deleted && v.ts != 0)) {
            fprintf(stderr, "get k%d at %lld: want not found, rc %d (got ts %lld, horizon %lld)\n",
                    k, (long long)t, rc, (long long)v.ts, (long long)mv_horizon(s));
            for (size_t i = 0; i < g_keys[k].n; i++)
                fprintf(stderr, "  model %lld %s\n", (long long)g_keys[k].v[i].ts,
                        g_keys[k].v[i].tomb ? "tomb" : g_keys[k].v[i].val);
            if (!rc)
                free(v.value);
            return -1;
        }
        return 0;
    }
    int bad =
        rc != 0 || v.ts != m->ts || v.len != strlen(m->val) || memcmp(v.value, m->val, v.len) != 0;
    if (bad)
        fprintf(stderr, "get k%d at %lld: rc %d (%s) want %s@%lld\n", k, (long long)t, rc,
                rc ? e.msg : "", m->val, (long long)m->ts);
    if (!rc)
        free(v.value);
    return bad ? -1 : 0;
}

/* Sorted model keys (indices), for scans. */
static int g_order[NKEYS];
static int cmp_idx(const void *a, const void *b)
{
    const mkey *x = &g_keys[*(const int *)a], *y = &g_keys[*(const int *)b];
    return mv_keycmp(x->k, x->klen, y->k, y->klen);
}

typedef struct scan_check {
    int expect[NKEYS];
    int n, pos, bad;
    int64_t t;
} scan_check;

static int scan_check_fn(void *arg, const mv_version *v)
{
    scan_check *c = arg;
    if (c->pos >= c->n) {
        c->bad = 1;
        return 1;
    }
    int k = c->expect[c->pos++];
    const mver *m = model_read(k, c->t);
    if (mv_keycmp(v->key, v->key_len, g_keys[k].k, g_keys[k].klen) != 0 || !m || m->tomb ||
        v->ts != m->ts || v->len != strlen(m->val) || memcmp(v->value, m->val, v->len) != 0)
        c->bad = 1;
    return 0;
}

static int check_scan(mv_store *s, int64_t t)
{
    int a = (int)(rnd() % NKEYS), b = (int)(rnd() % NKEYS);
    int use_start = (int)(rnd() % 2), use_end = (int)(rnd() % 2), reverse = (int)(rnd() % 3 == 0);
    uint64_t limit = rnd() % 3 == 0 ? 1 + rnd() % 5 : 0;
    const mkey *ka = &g_keys[g_order[a]], *kb = &g_keys[g_order[b]];
    scan_check c = {.t = t};
    int cand[NKEYS], nc = 0;
    for (int i = 0; i < NKEYS; i++) {
        const mkey *k = &g_keys[g_order[i]];
        if (use_start && mv_keycmp(k->k, k->klen, ka->k, ka->klen) < 0)
            continue;
        if (use_end && mv_keycmp(k->k, k->klen, kb->k, kb->klen) >= 0)
            continue;
        const mver *m = model_read(g_order[i], t);
        if (m && !m->tomb)
            cand[nc++] = g_order[i];
    }
    for (int i = 0; i < nc && (!limit || (uint64_t)c.n < limit); i++)
        c.expect[c.n++] = reverse ? cand[nc - 1 - i] : cand[i];
    mv_scan_opts o = {use_start ? ka->k : NULL,
                      use_start ? ka->klen : 0,
                      use_end ? kb->k : NULL,
                      use_end ? kb->klen : 0,
                      t,
                      limit,
                      reverse,
                      NULL};
    uint64_t n = 0;
    int rc = mv_scan(s, &o, scan_check_fn, &c, &n, NULL);
    if (rc || c.bad || c.pos != c.n || n != (uint64_t)c.n) {
        fprintf(stderr, "scan at %lld rev %d limit %llu: rc %d bad %d got %d want %d\n",
                (long long)t, reverse, (unsigned long long)limit, rc, c.bad, c.pos, c.n);
        return -1;
    }
    return 0;
}

static void gc_model_run(uint64_t seed)
{
    CHECK(fresh_dir() == 0);
    model_init();
    for (int i = 0; i < NKEYS; i++)
        g_order[i] = i;
    qsort(g_order, NKEYS, sizeof g_order[0], cmp_idx);
    rng_state = seed;
    mv_store *s;
    CHECK_EQ(mv_open(path_in("gc.db"), NULL, &s, NULL), 0);
    int64_t clock = 1000, horizon = 0;
    uint64_t slot = 0, gcs = 0, deleted = 0, stale = 0;
    int fails = 0;
    for (int op = 0; op < 6000 && !fails; op++) {
        uint64_t r = rnd() % 100;
        if (r < 40) {
            /* A batch, usually at a new timestamp, sometimes a late one (a 2PC commit at a
             * timestamp below ones already applied, but never below the horizon). */
            int64_t ts = rnd() % 8 == 0 && clock - horizon > 2
                             ? horizon + 1 + (int64_t)(rnd() % (uint64_t)(clock - horizon - 1))
                             : (clock += 1 + (int64_t)(rnd() % 10));
            mv_write w[4];
            char vals[4][24];
            int n = 1 + (int)(rnd() % 4);
            for (int i = 0; i < n; i++) {
                int k = (int)(rnd() % NKEYS), tomb = rnd() % 4 == 0;
                snprintf(vals[i], sizeof vals[i], rnd() % 10 ? "v%d.%lld" : "", op, (long long)ts);
                w[i] = (mv_write){tomb ? MV_DELETE : MV_PUT, g_keys[k].k, g_keys[k].klen, vals[i],
                                  strlen(vals[i])};
                model_write(k, ts, tomb, vals[i]);
            }
            CHECK_EQ(mv_apply(s, ++slot, ts, w, (size_t)n, NULL), 0);
        } else if (r < 70) {
            int64_t t = horizon + (int64_t)(rnd() % (uint64_t)(clock - horizon + 20));
            fails += check_get(s, (int)(rnd() % NKEYS), t) != 0;
        } else if (r < 85) {
            int64_t t = horizon + (int64_t)(rnd() % (uint64_t)(clock - horizon + 20));
            fails += check_scan(s, t) != 0;
        } else if (r < 95) {
            int64_t h = clock - (int64_t)(rnd() % 200);
            if (h > horizon)
                horizon = h;
            mv_gc_result g;
            CHECK_EQ(mv_gc(s, h, 1 + rnd() % 40, &g, NULL), 0);
            CHECK_EQ(mv_horizon(s), horizon);
            gcs++;
            deleted += g.deleted;
        } else if (r < 98) {
            if (horizon > 0) {
                mv_version v;
                mr_err e;
                int64_t t = (int64_t)(rnd() % (uint64_t)horizon);
                CHECK_EQ(mv_get(s, g_keys[0].k, g_keys[0].klen, t, &v, &e), MR_ESTALE);
                CHECKF(strstr(e.msg, "is below the version horizon"), "%s", e.msg);
                mv_scan_opts o = {.ts = t};
                CHECK_EQ(mv_scan(s, &o, cat_fn, &(strcat_arg){{0}}, NULL, NULL), MR_ESTALE);
                stale++;
            }
        } else {
            mv_close(s);
            CHECK_EQ(mv_open(path_in("gc.db"), NULL, &s, NULL), 0);
            CHECK_EQ(mv_applied_slot(s), slot);
            CHECK_EQ(mv_horizon(s), horizon);
        }
    }
    CHECK_EQ(fails, 0);
    CHECK(gcs > 100 && deleted > 100 && stale > 10);
    /* Every read at or above the horizon, every key, every timestamp up to the clock. */
    for (int k = 0; k < NKEYS; k++)
        for (int64_t t = horizon; t <= clock + 1; t += 1 + (clock - horizon) / 300)
            CHECK_EQ(check_get(s, k, t), 0);
    /* A whole pass leaves exactly the versions the rule keeps (GC is complete, not just safe). */
    mv_gc_result g;
    CHECK_EQ(mv_gc(s, horizon, 0, &g, NULL), 0);
    CHECK(g.pass_done);
    mv_size z;
    mv_size_estimate(s, &z);
    CHECK_EQ(z.versions, model_min_versions(horizon));
    for (int k = 0; k < NKEYS; k++)
        for (int64_t t = horizon; t <= clock + 1; t += 1 + (clock - horizon) / 300)
            CHECK_EQ(check_get(s, k, t), 0);
    for (int i = 0; i < 200; i++)
        CHECK_EQ(check_scan(s, horizon + (int64_t)(rnd() % (uint64_t)(clock - horizon + 5))), 0);
    mr_err ve;
    CHECKF(mv_verify(s, &ve) == 0, "%s", ve.msg);
    mv_close(s);
    mv_size raw;
    CHECK_EQ(raw_counts(path_in("gc.db"), &raw), 0);
    CHECK_EQ(raw.versions, z.versions);
    CHECK_EQ(raw.tombstones, z.tombstones);
    CHECK_EQ(raw.bytes, z.bytes);
    model_free();
}

/* Seeded: a failure names its seed, and rerunning reproduces it. */
TEST(gc_matches_model_on_random_workload)
{
    const uint64_t seeds[] = {0x9e3779b97f4a7c15ull, 42, 0xdeadbeefcafeull};
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        int before = test_failed_flag;
        gc_model_run(seeds[i]);
        CHECKF(test_failed_flag == before, "seed %#llx failed", (unsigned long long)seeds[i]);
    }
}

TEST(gc_resumes_inside_a_long_key)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    CHECK_EQ(mv_open(path_in("h.db"), NULL, &s, NULL), 0);
    for (int i = 1; i <= 300; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        mv_write w[2] = {put("hot", v), put(i % 2 ? "x" : "y", v)};
        CHECK_EQ(mv_apply(s, (uint64_t)i, i, w, 2, NULL), 0);
    }
    mv_write d = del("hot");
    CHECK_EQ(mv_apply(s, 301, 301, &d, 1, NULL), 0);
    /* Horizon 250: "hot" keeps 250..301 (52), x keeps 251..299 odd + 249 (26), y keeps 250..300
     * even (26). Steps of 7 rows must resume inside "hot" many times. */
    mv_gc_result g;
    uint64_t total = 0, steps = 0;
    do {
        CHECK_EQ(mv_gc(s, 250, 7, &g, NULL), 0);
        CHECK(g.examined <= 7);
        total += g.deleted;
        steps++;
    } while (!g.pass_done && steps < 1000);
    CHECK(g.pass_done);
    CHECK(steps > 40);
    mv_size z;
    mv_size_estimate(s, &z);
    CHECK_EQ(z.versions, 52 + 26 + 26);
    CHECK_EQ(total, 601 - 104);
    char b[16];
    CHECK_EQ(get_str(s, "hot", 250, b, sizeof b, NULL), 0);
    CHECK_STR(b, "250");
    CHECK_EQ(get_str(s, "x", 250, b, sizeof b, NULL), 0);
    CHECK_STR(b, "249");
    CHECK_EQ(get_str(s, "hot", 249, b, sizeof b, NULL), MR_ESTALE);
    /* A long key whose newest version <= H is a tombstone, collected in small steps: between
     * steps no older value may show through (the tombstone goes last, with the key's end). */
    for (int i = 1; i <= 30; i++) {
        mv_write w = put("long", "old");
        CHECK_EQ(mv_apply(s, (uint64_t)(400 + i), 260 + i, &w, 1, NULL), 0);
    }
    mv_write dl = del("long");
    CHECK_EQ(mv_apply(s, 431, 291, &dl, 1, NULL), 0);
    mv_version lv;
    steps = 0;
    do {
        CHECK_EQ(mv_gc(s, 295, 4, &g, NULL), 0);
        CHECK_EQ(mv_get(s, "long", 4, 295, &lv, NULL), MR_ENOTFOUND);
        steps++;
    } while (!g.pass_done && steps < 1000);
    CHECK_EQ(mv_get(s, "long", 4, 295, &lv, NULL), MR_ENOTFOUND);
    CHECK_EQ(lv.deleted, 0); /* no version left at all */
    /* Raising the horizon past the tombstone removes the key entirely. */
    CHECK_EQ(mv_gc(s, 400, 0, &g, NULL), 0);
    mv_size_estimate(s, &z);
    CHECK_EQ(z.versions, 2);
    CHECK_EQ(z.tombstones, 0);
    /* A lower horizon never lowers it. */
    CHECK_EQ(mv_gc(s, 10, 0, &g, NULL), 0);
    CHECK_EQ(mv_horizon(s), 400);
    /* A commit below the horizon is refused rather than shadowed wrongly. */
    mv_write w = put("hot", "late");
    mr_err e;
    CHECK_EQ(mv_apply(s, 432, 399, &w, 1, &e), MR_ESTALE);
    CHECK_EQ(mv_apply(s, 432, 400, &w, 1, &e), 0);
    mv_close(s);
}

/* ---- split ---- */

/* Directory prefix: the bytes up to and including the first '/', else the whole key. */
static size_t dir_prefix(void *arg, const void *key, size_t len)
{
    const char *p = memchr(key, '/', len);
    return p ? (size_t)(p - (const char *)key) + 1 : len;
}

typedef struct kv_list {
    char keys[2048][24];
    size_t vlen[2048];
    int n;
} kv_list;

static int list_fn(void *arg, const mv_version *v)
{
    kv_list *l = arg;
    snprintf(l->keys[l->n], sizeof l->keys[0], "%.*s", (int)v->key_len, (const char *)v->key);
    l->vlen[l->n++] = v->len;
    return 0;
}

/* System keys (first byte 0, a node's transaction records) are collected like any other: a
 * decision row deleted (a tombstone over it) goes with its tombstone once both are below the
 * horizon, a live one stays; and freed pages are reused, so writing and collecting the same
 * amount again does not grow the file. */
TEST(gc_collects_system_keys)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    CHECK_EQ(mv_open(path_in("sys.db"), NULL, &s, NULL), 0);
    uint64_t slot = 0;
    int64_t ts = 0;
    mv_page_stats first = {0};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 2000; i++) {
            char k[8] = {0, 'd', '/', (char)('a' + round), (char)(i >> 8), (char)(i & 0xff), 1};
            mv_write w = {MV_PUT, k, 7, "decision-value-01234567", 23};
            CHECK_EQ(mv_apply(s, ++slot, ++ts, &w, 1, NULL), 0);
        }
        for (int i = 0; i < 2000; i++) {
            char k[8] = {0, 'd', '/', (char)('a' + round), (char)(i >> 8), (char)(i & 0xff), 1};
            mv_write w = {MV_DELETE, k, 7, NULL, 0};
            /* the last one of the round stays live */
            if (i < 1999)
                CHECK_EQ(mv_apply(s, ++slot, ++ts, &w, 1, NULL), 0);
        }
        CHECK_EQ(mv_gc(s, ts + 1, 0, NULL, NULL), 0);
        mv_size sz;
        mv_size_estimate(s, &sz);
        CHECK_EQ(sz.versions, (uint64_t)(round + 1)); /* the live ones */
        mv_page_stats ps;
        CHECK_EQ(mv_pages(s, &ps, NULL), 0);
        CHECK(ps.page_size > 0 && ps.pages > 0 && ps.free_pages >= 0);
        if (round == 0)
            first = ps;
        else /* the file does not grow: freed pages are reused */
            CHECKF(ps.pages <= first.pages + 2, "round %d: %lld pages, %lld after the first", round,
                   (long long)ps.pages, (long long)first.pages);
    }
    CHECK_EQ(mv_verify(s, NULL), 0);
    mv_close(s);
}

TEST(split_key_never_cuts_a_directory)
{
    CHECK(fresh_dir() == 0);
    rng_state = 12345;
    for (int round = 0; round < 12; round++) {
        char name[32];
        snprintf(name, sizeof name, "sp%d.db", round);
        mv_store *s;
        CHECK_EQ(mv_open(path_in(name), NULL, &s, NULL), 0);
        int ndirs = 1 + (int)(rnd() % 30);
        uint64_t slot = 0;
        char val[600];
        memset(val, 'x', sizeof val);
        for (int d = 0; d < ndirs; d++) {
            int rows = 1 + (int)(rnd() % 20);
            for (int r = 0; r < rows; r++) {
                char k[24];
                /* Directory names of varying length, some prefixes of others ("d1/" vs "d12/"
                 * are distinct directories because the '/' ends them). */
                snprintf(k, sizeof k, "d%d/%03d", (int)(d * 7 % 41), r);
                mv_write w = {MV_PUT, k, strlen(k), val, 1 + rnd() % sizeof val};
                slot++;
                CHECK_EQ(mv_apply(s, slot, (int64_t)slot, &w, 1, NULL), 0);
                if (rnd() % 8 == 0) { /* deleted rows do not count */
                    w.op = MV_DELETE;
                    slot++;
                    CHECK_EQ(mv_apply(s, slot, (int64_t)slot, &w, 1, NULL), 0);
                }
            }
        }
        static kv_list l;
        l.n = 0;
        mv_scan_opts so = {.ts = MV_TS_MAX};
        CHECK_EQ(mv_scan(s, &so, list_fn, &l, NULL, NULL), 0);
        uint64_t total = 0;
        for (int i = 0; i < l.n; i++)
            total += strlen(l.keys[i]) + l.vlen[i];
        /* Brute force: the directory boundary nearest the middle. */
        uint64_t cum = 0, best = UINT64_MAX;
        int best_i = -1;
        for (int i = 1; i < l.n; i++) {
            cum += strlen(l.keys[i - 1]) + l.vlen[i - 1];
            size_t pa = dir_prefix(NULL, l.keys[i - 1], strlen(l.keys[i - 1]));
            size_t pb = dir_prefix(NULL, l.keys[i], strlen(l.keys[i]));
            if (pa == pb && memcmp(l.keys[i - 1], l.keys[i], pa) == 0)
                continue;
            uint64_t d = 2 * cum > total ? 2 * cum - total : total - 2 * cum;
            if (d < best) {
                best = d;
                best_i = i;
            }
        }
        mv_split_opts o = {.ts = MV_TS_MAX, .prefix = dir_prefix};
        void *key = NULL;
        size_t klen = 0;
        mr_err e;
        int rc = mv_split_key(s, &o, &key, &klen, &e);
        if (best_i < 0) {
            CHECKF(rc == MR_ENOTFOUND, "round %d: rc %d", round, rc);
        } else {
            CHECKF(rc == 0, "round %d: %s", round, e.msg);
            size_t want = dir_prefix(NULL, l.keys[best_i], strlen(l.keys[best_i]));
            CHECKF(klen == want && memcmp(key, l.keys[best_i], want) == 0,
                   "round %d: split %.*s, want %.*s", round, (int)klen, (char *)key, (int)want,
                   l.keys[best_i]);
            /* No directory on both sides. */
            for (int i = 0; i < l.n; i++) {
                size_t p = dir_prefix(NULL, l.keys[i], strlen(l.keys[i]));
                int left = mv_keycmp(l.keys[i], strlen(l.keys[i]), key, klen) < 0;
                for (int j = 0; j < l.n; j++) {
                    int left2 = mv_keycmp(l.keys[j], strlen(l.keys[j]), key, klen) < 0;
                    if (left != left2 && strlen(l.keys[j]) >= p &&
                        memcmp(l.keys[j], l.keys[i], p) == 0)
                        CHECKF(0, "round %d: directory %.*s is cut", round, (int)p, l.keys[i]);
                }
            }
        }
        free(key);
        mv_close(s);
    }
}

TEST(split_key_single_directory)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    CHECK_EQ(mv_open(path_in("one.db"), NULL, &s, NULL), 0);
    mv_split_opts o = {.ts = MV_TS_MAX, .prefix = dir_prefix, .max_dir_bytes = 1000};
    void *key = NULL;
    size_t klen;
    CHECK_EQ(mv_split_key(s, &o, &key, &klen, NULL), MR_ENOTFOUND); /* empty */
    char val[100];
    memset(val, 'v', sizeof val);
    for (int r = 0; r < 5; r++) { /* one directory of 5 x 106 bytes: small */
        char k[16];
        snprintf(k, sizeof k, "t1/%d", r);
        mv_write w = {MV_PUT, k, strlen(k), val, sizeof val};
        CHECK_EQ(mv_apply(s, (uint64_t)r + 1, r + 1, &w, 1, NULL), 0);
    }
    CHECK_EQ(mv_split_key(s, &o, &key, &klen, NULL), MR_ENOTFOUND);
    o.max_dir_bytes = 0; /* never cut */
    CHECK_EQ(mv_split_key(s, &o, &key, &klen, NULL), MR_ENOTFOUND);
    for (int r = 5; r < 20; r++) { /* now 20 x 104: over max_dir_bytes, so it may be cut */
        char k[16];
        snprintf(k, sizeof k, "t1/%02d", r);
        mv_write w = {MV_PUT, k, strlen(k), val, sizeof val};
        CHECK_EQ(mv_apply(s, (uint64_t)r + 1, r + 1, &w, 1, NULL), 0);
    }
    CHECK_EQ(mv_split_key(s, &o, &key, &klen, NULL), MR_ENOTFOUND); /* max 0: still never */
    o.max_dir_bytes = 1000;
    CHECK_EQ(mv_split_key(s, &o, &key, &klen, NULL), 0);
    /* Bytes order t1/0 (104), t1/05..09 (5 x 105), t1/1, t1/10..19, t1/2, t1/3, t1/4: 2095 in
     * all; the boundary before t1/13 has 1048 below it, the nearest to the middle. */
    CHECKF(klen == 5 && memcmp(key, "t1/13", 5) == 0, "split %.*s", (int)klen, (char *)key);
    free(key);
    /* A second directory: the directory boundary wins over cutting. */
    for (int r = 0; r < 20; r++) {
        char k[16];
        snprintf(k, sizeof k, "t2/%02d", r);
        mv_write w = {MV_PUT, k, strlen(k), val, sizeof val};
        CHECK_EQ(mv_apply(s, (uint64_t)r + 100, r + 100, &w, 1, NULL), 0);
    }
    CHECK_EQ(mv_split_key(s, &o, &key, &klen, NULL), 0);
    CHECKF(klen == 3 && memcmp(key, "t2/", 3) == 0, "split %.*s", (int)klen, (char *)key);
    free(key);
    /* At a timestamp before t2 existed, the split is inside t1 again. */
    o.ts = 20;
    CHECK_EQ(mv_split_key(s, &o, &key, &klen, NULL), 0);
    CHECKF(klen == 5 && memcmp(key, "t1/13", 5) == 0, "split %.*s", (int)klen, (char *)key);
    free(key);
    mv_close(s);
}

/* ---- snapshots ---- */

typedef struct membuf {
    unsigned char *p;
    size_t len, cap;
} membuf;

static int mem_sink(void *arg, const void *buf, size_t len)
{
    membuf *m = arg;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->p = realloc(m->p, m->cap);
    }
    memcpy(m->p + m->len, buf, len);
    m->len += len;
    return 0;
}

/* Fills a store with the log's first `n` slots plus a range of big values. */
static int fill(mv_store *s, uint64_t n)
{
    int a = 0, sk = 0;
    if (apply_log(s, 1, n, &a, &sk))
        return -1;
    static char big[200000];
    memset(big, 'B', sizeof big);
    mv_write w = {MV_PUT, "key1", 4, big, sizeof big};
    return mv_apply(s, n + 1, (int64_t)(10 * (n + 1)), &w, 1, NULL);
}

TEST(snapshot_round_trip)
{
    CHECK(fresh_dir() == 0);
    mv_store *a, *b;
    CHECK_EQ(mv_open(path_in("sa.db"), NULL, &a, NULL), 0);
    CHECK_EQ(mv_open(path_in("sb.db"), NULL, &b, NULL), 0);
    CHECK_EQ(fill(a, 90), 0);
    CHECK_EQ(mv_gc(a, 100, 0, NULL, NULL), 0);
    membuf m = {0};
    CHECK_EQ(mv_snapshot_write(a, MV_SNAP_ALL, mem_sink, &m, NULL), 0);
    mv_write junk = put("junk", "j");
    CHECK_EQ(mv_apply(b, 500, 5, &junk, 1, NULL), 0);
    CHECK_EQ(mv_snapshot_load(b, m.p, m.len, NULL), 0);
    CHECK_EQ(mv_applied_slot(b), 91);
    CHECK_EQ(mv_horizon(b), 100);
    mv_size za, zb;
    mv_size_estimate(a, &za);
    mv_size_estimate(b, &zb);
    CHECK(memcmp(&za, &zb, sizeof za) == 0);
    char buf[16];
    CHECK_EQ(get_str(b, "junk", 600, buf, sizeof buf, NULL), MR_ENOTFOUND); /* replaced */
    for (int64_t t = 100; t <= 920; t += 10)
        for (int k = 0; k < 7; k++) {
            char key[16];
            snprintf(key, sizeof key, "key%d", k);
            mv_version va, vb;
            int ra = mv_get(a, key, strlen(key), t, &va, NULL);
            int rb = mv_get(b, key, strlen(key), t, &vb, NULL);
            CHECK_EQ(ra, rb);
            CHECK_EQ(va.ts, vb.ts);
            if (!ra) {
                CHECK(va.len == vb.len && memcmp(va.value, vb.value, va.len) == 0);
                free(va.value);
                free(vb.value);
            }
        }
    /* The same bytes again from the copy: the format is deterministic. */
    membuf m2 = {0};
    CHECK_EQ(mv_snapshot_write(b, MV_SNAP_ALL, mem_sink, &m2, NULL), 0);
    CHECK(m2.len == m.len && memcmp(m2.p, m.p, m.len) == 0);
    /* From a timestamp: only what reads at or after it need, and its horizon moves there. */
    membuf m3 = {0};
    CHECK_EQ(mv_snapshot_write(a, 50, mem_sink, &m3, NULL), MR_ESTALE);
    CHECK_EQ(mv_snapshot_write(a, 600, mem_sink, &m3, NULL), 0);
    CHECK(m3.len < m.len);
    CHECK_EQ(mv_snapshot_load(b, m3.p, m3.len, NULL), 0);
    CHECK_EQ(mv_horizon(b), 600);
    CHECK_EQ(mv_gc(a, 600, 0, NULL, NULL), 0);
    mv_size_estimate(a, &za);
    mv_size_estimate(b, &zb);
    CHECK_EQ(za.versions, zb.versions);
    CHECK_EQ(za.bytes, zb.bytes);
    mv_version v;
    CHECK_EQ(mv_get(b, "key1", 4, 599, &v, NULL), MR_ESTALE);
    CHECK_EQ(mv_get(b, "key1", 4, 910, &v, NULL), 0);
    CHECK_EQ(v.len, 200000);
    free(v.value);
    /* Survives a reopen. */
    mv_close(b);
    CHECK_EQ(mv_open(path_in("sb.db"), NULL, &b, NULL), 0);
    CHECK_EQ(mv_applied_slot(b), 91);
    CHECK_EQ(mv_horizon(b), 600);
    free(m.p);
    free(m2.p);
    free(m3.p);
    mv_close(a);
    mv_close(b);
}

TEST(snapshot_corrupt_input_rejected)
{
    CHECK(fresh_dir() == 0);
    mv_store *a, *b;
    CHECK_EQ(mv_open(path_in("ca.db"), NULL, &a, NULL), 0);
    CHECK_EQ(mv_open(path_in("cb.db"), NULL, &b, NULL), 0);
    int x = 0, y = 0;
    CHECK_EQ(apply_log(a, 1, 40, &x, &y), 0);
    CHECK_EQ(apply_log(b, 1, 13, &x, &y), 0);
    membuf m = {0}, before = {0}, after = {0};
    CHECK_EQ(mv_snapshot_write(a, MV_SNAP_ALL, mem_sink, &m, NULL), 0);
    CHECK_EQ(mv_snapshot_write(b, MV_SNAP_ALL, mem_sink, &before, NULL), 0);
    mr_err e;
    int rejected = 0;
    /* Every truncation, and a bit flip at every byte. */
    for (size_t cut = 0; cut < m.len; cut++) {
        CHECKF(mv_snapshot_load(b, m.p, cut, &e) == MR_ECORRUPT, "cut at %zu accepted", cut);
        rejected++;
    }
    for (size_t i = 0; i < m.len; i++) {
        m.p[i] ^= 0x10;
        CHECKF(mv_snapshot_load(b, m.p, m.len, &e) == MR_ECORRUPT, "flip at %zu accepted", i);
        m.p[i] ^= 0x10;
        rejected++;
    }
    CHECKF(strstr(e.msg, "store unchanged"), "%s", e.msg);
    /* Trailing garbage. */
    unsigned char *longer = malloc(m.len + 1);
    memcpy(longer, m.p, m.len);
    longer[m.len] = 0;
    CHECK_EQ(mv_snapshot_load(b, longer, m.len + 1, &e), MR_ECORRUPT);
    free(longer);
    CHECK_EQ(mv_snapshot_load(b, NULL, 5, &e), MR_EINVAL);
    /* The format version follows the magic, big-endian; a snapshot of version 1 (little-endian)
     * or of a future version is refused by name. */
    static const unsigned char v2[4] = {0, 0, 0, 2};
    CHECK(memcmp(m.p + 8, v2, 4) == 0);
    static const unsigned char other[][4] = {{1, 0, 0, 0}, {0, 0, 0, 3}};
    static const char *const said[] = {"snapshot format version 1, this build reads version 2",
                                       "snapshot format version 3, this build reads version 2"};
    for (int i = 0; i < 2; i++) {
        memcpy(m.p + 8, other[i], 4);
        CHECK_EQ(mv_snapshot_load(b, m.p, m.len, &e), MR_ECORRUPT);
        CHECKF(strstr(e.msg, said[i]) && strstr(e.msg, "cb.db"), "%s", e.msg);
    }
    memcpy(m.p + 8, v2, 4);
    /* The store is exactly as before. */
    CHECK_EQ(mv_applied_slot(b), 13);
    CHECK_EQ(mv_snapshot_write(b, MV_SNAP_ALL, mem_sink, &after, NULL), 0);
    CHECK(after.len == before.len && memcmp(after.p, before.p, after.len) == 0);
    CHECK_EQ(matches_log(b, 13), 0);
    /* And the intact snapshot still loads. */
    CHECK_EQ(mv_snapshot_load(b, m.p, m.len, NULL), 0);
    CHECK_EQ(matches_log(b, 40), 0);
    CHECK(rejected > 100);
    free(m.p);
    free(before.p);
    free(after.p);
    mv_close(a);
    mv_close(b);
}

/* ---- range ---- */

TEST(range_set_and_enforced)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    mr_err e;
    CHECK_EQ(mv_open(path_in("rg.db"), NULL, &s, NULL), 0);
    mv_write w[] = {put("a", "1"), put("f", "2"), put("m", "3"), put("z", "4")};
    CHECK_EQ(mv_apply(s, 1, 10, w, 4, NULL), 0);
    CHECK_EQ(mv_set_range(s, 2, "c", 1, "n", 1, NULL), 0);
    CHECK_EQ(mv_set_range(s, 2, "c", 1, "n", 1, &e), MR_EEXIST);
    CHECK_EQ(mv_set_range(s, 3, "n", 1, "c", 1, &e), MR_EINVAL);
    char out[256], b[8];
    CHECK_EQ(scan_str(s, NULL, NULL, 10, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "f=2,m=3");
    CHECK_EQ(get_str(s, "a", 10, b, sizeof b, NULL), MR_EINVAL);
    CHECK_EQ(get_str(s, "z", 10, b, sizeof b, NULL), MR_EINVAL);
    CHECK_EQ(get_str(s, "n", 10, b, sizeof b, NULL), MR_EINVAL); /* end is exclusive */
    CHECK_EQ(get_str(s, "c", 10, b, sizeof b, NULL), MR_ENOTFOUND);
    CHECK_EQ(scan_str(s, "a", NULL, 10, 0, 0, out, sizeof out), MR_EINVAL);
    CHECK_EQ(scan_str(s, "d", "zz", 10, 0, 0, out, sizeof out), MR_EINVAL);
    mv_write out_of_range = put("zz", "x");
    CHECK_EQ(mv_apply(s, 4, 20, &out_of_range, 1, &e), MR_EINVAL);
    CHECK_EQ(mv_applied_slot(s), 2);
    mv_size z;
    mv_size_estimate(s, &z);
    CHECK_EQ(z.versions, 2);
    mv_close(s);
    CHECK_EQ(mv_open(path_in("rg.db"), NULL, &s, NULL), 0);
    void *st, *en;
    size_t sl, el;
    CHECK_EQ(mv_get_range(s, &st, &sl, &en, &el, NULL), 0);
    CHECK(sl == 1 && el == 1 && *(char *)st == 'c' && *(char *)en == 'n');
    free(st);
    free(en);
    mv_close(s);
}

/* A split: the child file gets every version at and above the key (old ones too, with the
 * parent's horizon) and starts at slot 0; the parent keeps the rest; replaying it does
 * nothing; bad keys change nothing. */
TEST(split_in_two)
{
    CHECK(fresh_dir() == 0);
    mv_store *s, *c;
    mr_err e;
    CHECK_EQ(mv_open(path_in("sp.db"), NULL, &s, NULL), 0);
    mv_write w1[] = {put("a", "1"),
                     put("f", "2"),
                     put("m", "3"),
                     put("z", "4"),
                     {MV_PUT, "\0sys", 4, "r", 1}}; /* a system key: the parent's own */
    CHECK_EQ(mv_apply(s, 1, 10, w1, 5, NULL), 0);
    mv_write w2[] = {put("m", "5"), del("z")};
    CHECK_EQ(mv_apply(s, 2, 20, w2, 2, NULL), 0);
    CHECK_EQ(mv_gc(s, 5, 0, NULL, NULL), 0);
    mv_size all, data;
    mv_size_estimate(s, &all);
    CHECK_EQ(mv_size_data(s, &data, NULL), 0);
    CHECK_EQ(all.versions - data.versions, 1);
    CHECK_EQ(all.bytes - data.bytes, 4 + 1 + MV_VERSION_OVERHEAD); /* "\0sys" = "r" */
    CHECK_EQ(mv_set_range(s, 3, "a", 1, NULL, 0, NULL), 0);
    mv_version v;
    CHECK_EQ(mv_get(s, "\0sys", 4, 30, &v, NULL), 0); /* kept by the cut */
    free(v.value);
    CHECK_EQ(mv_split(s, 3, path_in("child.db"), "a", 1, &e), MR_EINVAL); /* the start */
    CHECK_EQ(mv_split(s, 3, path_in("child.db"), "", 0, &e), MR_EINVAL);
    CHECK_EQ(mv_split(s, 2, path_in("child.db"), "g", 1, &e), MR_EEXIST); /* behind */
    CHECK_EQ(mv_applied_slot(s), 3);
    /* A stale WAL beside the child's path must not leak into the new file. */
    FILE *junk = fopen(path_in("child.db-wal"), "w");
    CHECK(junk != NULL);
    if (junk) {
        fputs("not a wal", junk);
        fclose(junk);
    }
    int src = mv_split(s, 3, path_in("child.db"), "g", 1, &e);
    if (src)
        fprintf(stderr, "split: %s\n", mr_err_msg(&e));
    CHECK_EQ(src, 0);
    CHECK_EQ(mv_split(s, 3, path_in("child.db"), "g", 1, &e), MR_EEXIST); /* replayed */
    CHECK_EQ(mv_split(s, 4, path_in("child.db"), "z", 1, &e), MR_EINVAL); /* outside now */
    char out[256], b[8];
    CHECK_EQ(scan_str(s, NULL, NULL, 30, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "a=1,f=2");
    CHECK_EQ(get_str(s, "m", 30, b, sizeof b, NULL), MR_EINVAL);
    CHECK_EQ(mv_applied_slot(s), 3);
    CHECK_EQ(mv_open(path_in("child.db"), NULL, &c, NULL), 0);
    CHECK_EQ(mv_applied_slot(c), 0);
    CHECK_EQ(mv_horizon(c), 5);
    CHECK_EQ(scan_str(c, NULL, NULL, 30, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "m=5");
    CHECK_EQ(scan_str(c, NULL, NULL, 15, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "m=3,z=4"); /* history below the split came along */
    CHECK_EQ(get_str(c, "f", 30, b, sizeof b, NULL), MR_EINVAL);
    CHECK_EQ(get_str(c, "m", 1, b, sizeof b, NULL), MR_ESTALE);
    CHECK_EQ(mv_get(c, "\0sys", 4, 30, &v, NULL), MR_ENOTFOUND); /* not copied */
    CHECK_EQ(mv_get(s, "\0sys", 4, 30, &v, NULL), 0);
    free(v.value);
    /* The child takes its own log from slot 1. */
    mv_write w3 = put("q", "6");
    CHECK_EQ(mv_apply(c, 1, 40, &w3, 1, NULL), 0);
    CHECK_EQ(mv_verify(c, NULL), 0);
    CHECK_EQ(mv_verify(s, NULL), 0);
    void *st, *en;
    size_t sl, el;
    CHECK_EQ(mv_get_range(c, &st, &sl, &en, &el, NULL), 0);
    CHECK(sl == 1 && el == 0 && *(char *)st == 'g');
    free(st);
    free(en);
    mv_close(c);
    mv_close(s);
    /* Both survive a reopen. */
    CHECK_EQ(mv_open(path_in("sp.db"), NULL, &s, NULL), 0);
    CHECK_EQ(scan_str(s, NULL, NULL, 30, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "a=1,f=2");
    mv_close(s);
    CHECK_EQ(mv_open(path_in("child.db"), NULL, &c, NULL), 0);
    CHECK_EQ(scan_str(c, NULL, NULL, 50, 0, 0, out, sizeof out), 0);
    CHECK_STR(out, "m=5,q=6");
    mv_close(c);
}

/* ---- malformed input ---- */

TEST(malformed_input_rejected)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    mr_err e;
    CHECK_EQ(mv_open(path_in("m.db"), NULL, &s, NULL), 0);
    static char bigkey[MV_MAX_KEY + 1];
    memset(bigkey, 'k', sizeof bigkey);
    mv_write ok = put("k", "v");
    mv_write bad[] = {
        {MV_PUT, NULL, 3, "v", 1},
        {MV_PUT, "k", 0, "v", 1},
        {MV_PUT, bigkey, MV_MAX_KEY + 1, "v", 1},
        {MV_PUT, "k", 1, "v", (size_t)MV_MAX_VALUE + 1},
        {MV_PUT, "k", 1, NULL, 5},
        {(mv_op)7, "k", 1, "v", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mv_write two[2] = {ok, bad[i]}; /* the good write must not be applied either */
        CHECKF(mv_apply(s, 1, 10, two, 2, &e) == MR_EINVAL, "bad write %zu accepted", i);
    }
    mv_write maxkey = {MV_PUT, bigkey, MV_MAX_KEY, "v", 1}; /* the limit itself is fine */
    CHECK_EQ(mv_apply(s, 1, 10, &maxkey, 1, NULL), 0);
    CHECK_EQ(mv_apply(NULL, 2, 10, &ok, 1, &e), MR_EINVAL);
    CHECK_EQ(mv_apply(s, 0, 10, &ok, 1, &e), MR_EINVAL);
    CHECK_EQ(mv_apply(s, (uint64_t)INT64_MAX + 1, 10, &ok, 1, &e), MR_EINVAL);
    CHECK_EQ(mv_apply(s, 2, 0, &ok, 1, &e), MR_EINVAL);
    CHECK_EQ(mv_apply(s, 2, -5, &ok, 1, &e), MR_EINVAL);
    CHECK_EQ(mv_apply(s, 2, 10, NULL, 1, &e), MR_EINVAL);
    CHECK_EQ(mv_applied_slot(s), 1);
    mv_version v;
    CHECK_EQ(mv_get(s, NULL, 1, 10, &v, &e), MR_EINVAL);
    CHECK_EQ(mv_get(s, "k", 0, 10, &v, &e), MR_EINVAL);
    CHECK_EQ(mv_get(s, bigkey, MV_MAX_KEY + 1, 10, &v, &e), MR_EINVAL);
    CHECK_EQ(mv_get(s, "k", 1, -1, &v, &e), MR_EINVAL);
    CHECK_EQ(mv_get(s, "k", 1, 10, NULL, &e), MR_EINVAL);
    CHECK_EQ(mv_get(NULL, "k", 1, 10, &v, &e), MR_EINVAL);
    CHECK_EQ(mv_get(s, bigkey, MV_MAX_KEY, 10, &v, &e), 0);
    free(v.value);
    mv_scan_opts o = {.start = bigkey, .start_len = MV_MAX_KEY + 1, .ts = 10};
    CHECK_EQ(mv_scan(s, &o, cat_fn, &(strcat_arg){{0}}, NULL, &e), MR_EINVAL);
    o = (mv_scan_opts){.ts = -3};
    CHECK_EQ(mv_scan(s, &o, cat_fn, &(strcat_arg){{0}}, NULL, &e), MR_EINVAL);
    CHECK_EQ(mv_scan(s, NULL, cat_fn, NULL, NULL, &e), MR_EINVAL);
    CHECK_EQ(mv_gc(s, -1, 0, NULL, &e), MR_EINVAL);
    CHECK_EQ(mv_gc(NULL, 1, 0, NULL, &e), MR_EINVAL);
    CHECK_EQ(mv_set_range(s, 5, "", 0, bigkey, MV_MAX_KEY + 1, &e), MR_EINVAL);
    CHECK_EQ(mv_snapshot_write(s, MV_SNAP_ALL, NULL, NULL, &e), MR_EINVAL);
    mv_split_opts so = {.ts = 10};
    void *k;
    size_t kl;
    CHECK_EQ(mv_split_key(s, &so, NULL, &kl, &e), MR_EINVAL);
    so.ts = -1; /* the scan's own error, not mistaken for the walk's early stop */
    CHECK_EQ(mv_split_key(s, &so, &k, &kl, &e), MR_EINVAL);
    CHECK_EQ(mv_gc(s, 5, 0, NULL, NULL), 0);
    so.ts = 4;
    CHECK_EQ(mv_split_key(s, &so, &k, &kl, &e), MR_ESTALE);
    CHECK_EQ(mv_split_key(NULL, &so, &k, &kl, &e), MR_EINVAL);
    mv_close(s);
}

/* ---- full disk ---- */

TEST(full_disk_gives_efull_and_rolls_back)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    mr_err e;
    mv_options opt = {.max_bytes = 512 * 1024};
    CHECK_EQ(mv_open(path_in("f.db"), &opt, &s, NULL), 0);
    static char val[8000];
    memset(val, 'f', sizeof val);
    uint64_t slot = 0;
    int rc = 0;
    while (slot < 1000) {
        char k[16];
        snprintf(k, sizeof k, "k%04llu", (unsigned long long)slot);
        mv_write w[4];
        for (int i = 0; i < 4; i++)
            w[i] = (mv_write){MV_PUT, k, strlen(k), val, sizeof val - (size_t)i};
        w[1].key = "other";
        w[1].key_len = 5;
        rc = mv_apply(s, slot + 1, (int64_t)(slot + 1), w, 4, &e);
        if (rc)
            break;
        slot++;
    }
    CHECKF(rc == MR_EFULL, "rc %d: %s", rc, e.msg);
    CHECKF(strstr(e.msg, "full"), "%s", e.msg);
    CHECK(slot > 10);
    CHECK_EQ(mv_applied_slot(s), slot); /* the failed batch left no trace */
    mv_size z;
    mv_size_estimate(s, &z);
    CHECK_EQ(z.versions, slot * 2 + (slot ? 0 : 0));
    mv_version v;
    CHECK_EQ(mv_get(s, "k0000", 5, MV_TS_MAX, &v, NULL), 0);
    free(v.value);
    /* GC still works on a full disk, and frees room for a new apply. */
    CHECK_EQ(mv_gc(s, (int64_t)slot, 0, NULL, NULL), 0);
    mv_close(s);
    mv_size raw;
    CHECK_EQ(raw_counts(path_in("f.db"), &raw), 0);
    CHECK_EQ(mv_open(path_in("f.db"), NULL, &s, NULL), 0); /* no quota */
    mv_size_estimate(s, &z);
    CHECK_EQ(raw.versions, z.versions);
    mv_write w = put("after", "x");
    CHECK_EQ(mv_apply(s, slot + 1, (int64_t)slot + 1, &w, 1, NULL), 0);
    mv_close(s);
}

/* ---- a damaged file ---- */

TEST(damaged_file_gives_ecorrupt)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    mr_err e;
    CHECK_EQ(mv_open(path_in("d.db"), NULL, &s, NULL), 0);
    int a = 0, sk = 0;
    CHECK_EQ(apply_log(s, 1, 300, &a, &sk), 0);
    mv_close(s); /* checkpoints: everything is in the database file now */
    FILE *f = fopen(path_in("d.db"), "r+b");
    CHECK(f);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long size = ftell(f);
    CHECK(size >= 3 * 4096);
    /* Garbage over the b-tree header of every page but the first (which holds the schema). */
    for (long off = 4096; off < size; off += 4096) {
        CHECK(fseek(f, off, SEEK_SET) == 0);
        for (int i = 0; i < 12; i++)
            fputc(0xee, f);
    }
    fclose(f);
    int rc = mv_open(path_in("d.db"), NULL, &s, &e);
    if (rc == 0) { /* the damage may surface on first use instead */
        mv_version v;
        rc = mv_get(s, "key1", 4, MV_TS_MAX, &v, &e);
        if (rc == 0)
            free(v.value);
        CHECK_EQ(mv_verify(s, &e), MR_ECORRUPT);
        mv_close(s);
    }
    CHECKF(rc == MR_ECORRUPT, "rc %d: %s", rc, mr_err_msg(&e));
    CHECKF(strstr(e.msg, "d.db"), "message names the file: %s", e.msg);
}

/* A flipped bit inside a stored value: SQLite's pages have no checksum, the versions do. */
TEST(flipped_value_byte_is_caught)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    mr_err e;
    CHECK_EQ(mv_open(path_in("v.db"), NULL, &s, NULL), 0);
    const char *marker = "MARKER-0123456789-abcdefghij";
    mv_write w[] = {put("a", "1"), put("victim", marker), put("z", "2")};
    CHECK_EQ(mv_apply(s, 1, 10, w, 3, NULL), 0);
    mv_close(s);
    FILE *f = fopen(path_in("v.db"), "r+b");
    CHECK(f);
    static char file[1 << 20];
    size_t n = fread(file, 1, sizeof file, f);
    char *hit = memmem(file, n, marker, strlen(marker));
    CHECKF(hit, "marker not found in %zu bytes", n);
    CHECK(fseek(f, (long)(hit - file) + 7, SEEK_SET) == 0);
    fputc('1', f); /* "0" becomes "1": still a well-formed page */
    fclose(f);
    CHECK_EQ(mv_open(path_in("v.db"), NULL, &s, &e), 0);
    mv_version v;
    CHECK_EQ(mv_get(s, "victim", 6, 10, &v, &e), MR_ECORRUPT);
    CHECKF(strstr(e.msg, "fails its checksum"), "%s", e.msg);
    CHECK_EQ(mv_get(s, "a", 1, 10, &v, &e), 0); /* the others still read */
    free(v.value);
    char out[128];
    CHECK_EQ(scan_str(s, NULL, NULL, 10, 0, 0, out, sizeof out), MR_ECORRUPT);
    CHECK_STR(out, "a=1"); /* delivered up to the damage, never past it */
    CHECK_EQ(scan_str(s, NULL, NULL, 10, 0, 1, out, sizeof out), MR_ECORRUPT);
    membuf m = {0};
    CHECK_EQ(mv_snapshot_write(s, MV_SNAP_ALL, mem_sink, &m, &e), MR_ECORRUPT);
    free(m.p);
    CHECK_EQ(mv_verify(s, &e), MR_ECORRUPT);
    mv_close(s);
}

/* ---- query plans ---- */

TEST(query_plans_use_the_primary_key)
{
    CHECK(fresh_dir() == 0);
    mv_store *s;
    CHECK_EQ(mv_open(path_in("p.db"), NULL, &s, NULL), 0);
    mv_close(s);
    sqlite3 *db;
    CHECK(sqlite3_open(path_in("p.db"), &db) == SQLITE_OK);
    const int ids[] = {ST_GET,      ST_SCAN_B,    ST_SCAN_U,  ST_RSCAN_B, ST_RSCAN_U,
                       ST_GC_REST,  ST_GC_SCAN,   ST_DELETE,  ST_OLD,     ST_UPDATE,
                       ST_SNAP_ALL, ST_DEL_BELOW, ST_DEL_FROM};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char sql[600], plan[1024] = "";
        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", mv_sql_text(ids[i]));
        sqlite3_stmt *st;
        CHECKF(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(db));
        while (sqlite3_step(st) == SQLITE_ROW) {
            size_t n = strlen(plan);
            if (getenv("MVCC_SHOW_PLANS"))
                printf("plan %d: %s\n", ids[i], (const char *)sqlite3_column_text(st, 3));
            snprintf(plan + n, sizeof plan - n, "%s; ", (const char *)sqlite3_column_text(st, 3));
        }
        sqlite3_finalize(st);
        /* Order comes from the primary key itself: never a sort. */
        CHECKF(!strstr(plan, "TEMP B-TREE"), "statement %d plan: %s", ids[i], plan);
        /* Everything but the whole-table snapshot walk seeks in the primary key. */
        if (ids[i] != ST_SNAP_ALL)
            CHECKF(strstr(plan, "SEARCH") && strstr(plan, "PRIMARY KEY"), "statement %d plan: %s",
                   ids[i], plan);
    }
    sqlite3_close(db);
}

static void cleanup(void)
{
    if (g_dir[0])
        tmpdir_remove(g_dir);
}

static int run_main(int argc, char **argv);

int main(int argc, char **argv)
{
    int rc = run_main(argc, argv);
    cleanup();
    return rc;
}

static int run_main(int argc, char **argv)
{
    static const test_case cases[] = {
        TEST_CASE(open_refuses_foreign_and_second_handle),
        TEST_CASE(reads_at_timestamps),
        TEST_CASE(scans_bounds_limits_tombstones),
        TEST_CASE(scan_reports_its_newest_deciding_version),
        TEST_CASE(scan_callback_stops),
        TEST_CASE(apply_several_transactions_in_one_slot),
        TEST_CASE(bad_transactions_are_found_one_by_one_before_the_slot),
        TEST_CASE(apply_idempotent_across_reopen),
        TEST_CASE(crash_replay_after_kill),
        TEST_CASE(power_loss_keeps_a_consistent_prefix),
        TEST_CASE(gc_matches_model_on_random_workload),
        TEST_CASE(gc_resumes_inside_a_long_key),
        TEST_CASE(gc_collects_system_keys),
        TEST_CASE(split_key_never_cuts_a_directory),
        TEST_CASE(split_key_single_directory),
        TEST_CASE(snapshot_round_trip),
        TEST_CASE(snapshot_corrupt_input_rejected),
        TEST_CASE(range_set_and_enforced),
        TEST_CASE(split_in_two),
        TEST_CASE(malformed_input_rejected),
        TEST_CASE(full_disk_gives_efull_and_rolls_back),
        TEST_CASE(damaged_file_gives_ecorrupt),
        TEST_CASE(flipped_value_byte_is_caught),
        TEST_CASE(query_plans_use_the_primary_key),
    };
    return test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}
