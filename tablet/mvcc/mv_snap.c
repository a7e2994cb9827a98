/* Snapshots for Paxos catch-up (PX_ACT_TAKE_SNAPSHOT / PX_ACT_INSTALL_SNAPSHOT): a compact,
 * self-describing stream of the store, checked end to end by a CRC32C and loaded atomically.
 *
 * Format (integers big-endian, common/mr_codec.h):
 *   "MRMVSNAP"  u32 format (2)  u64 applied slot  i64 horizon
 *   u32 start_len, start bytes  u32 end_len, end bytes           (the tablet range; 0 = open)
 *   records, in primary-key order (key ascending, ts descending, no duplicates):
 *     'P' u32 key_len, key, i64 ts, u32 len, value               (a value)
 *     'D' u32 key_len, key, i64 ts                               (a tombstone)
 *   'E' u64 record count, u32 CRC32C of every byte before it.
 * The loader checks every length against the limits, the order, the range, the count, the CRC
 * and that nothing follows, inside one SQLite transaction that it commits only when all hold. */
#include "tablet/mvcc/mv_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/mr_codec.h"

#define SNAP_MAGIC "MRMVSNAP"
/* 2: big-endian integers. 1 was little-endian, so its format field reads 0x01000000 now. */
#define SNAP_FORMAT 2
#define SNAP_BUF    (64 * 1024)

/* ---- Writing ---- */

typedef struct writer {
    unsigned char buf[SNAP_BUF];
    size_t len;
    uint32_t crc;
    mv_sink_fn sink;
    void *arg;
    int ret; /* the sink's nonzero verdict */
} writer;

static int w_flush(writer *w, int with_crc)
{
    if (!w->len)
        return 0;
    if (with_crc)
        w->crc = mv_crc32c(w->crc, w->buf, w->len);
    w->ret = w->sink(w->arg, w->buf, w->len);
    w->len = 0;
    return w->ret;
}

static int w_put(writer *w, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n) {
        if (w->len == SNAP_BUF && w_flush(w, 1))
            return w->ret;
        size_t k = SNAP_BUF - w->len < n ? SNAP_BUF - w->len : n;
        memcpy(w->buf + w->len, b, k);
        w->len += k;
        b += k;
        n -= k;
    }
    return 0;
}

static int w_u8(writer *w, unsigned v)
{
    unsigned char b = (unsigned char)v;
    return w_put(w, &b, 1);
}

static int w_u32(writer *w, uint32_t v)
{
    unsigned char b[4];
    mr_put_u32(b, v);
    return w_put(w, b, 4);
}

static int w_u64(writer *w, uint64_t v)
{
    unsigned char b[8];
    mr_put_u64(b, v);
    return w_put(w, b, 8);
}

static int w_bytes(writer *w, const void *p, size_t n)
{
    int r = w_u32(w, (uint32_t)n);
    return r ? r : w_put(w, p, n);
}

/* The snapshot; with lo (lo_len > 0), only of the versions at and above lo, as a store whose
 * range starts there (a split's upper part). */
static int snap_write(mv_store *s, int64_t from_ts, const void *lo, size_t lo_len, mv_sink_fn sink,
                      void *arg, mr_err *err);

int mv_snapshot_write(mv_store *s, int64_t from_ts, mv_sink_fn sink, void *arg, mr_err *err)
{
    return snap_write(s, from_ts, NULL, 0, sink, arg, err);
}

int mv_snapshot_from_key(mv_store *s, const void *lo, size_t lo_len, mv_sink_fn sink, void *arg,
                         mr_err *err)
{
    if (mv_check_key(lo, lo_len, "snapshot start", err))
        return MR_EINVAL;
    return snap_write(s, MV_SNAP_ALL, lo, lo_len, sink, arg, err);
}

static int snap_write(mv_store *s, int64_t from_ts, const void *lo, size_t lo_len, mv_sink_fn sink,
                      void *arg, mr_err *err)
{
    if (!s || !sink)
        return mr_errf(err, MR_EINVAL, "mvcc: snapshot needs a store and a sink");
    if (from_ts != MV_SNAP_ALL) {
        int code = mv_check_read_ts(s, from_ts, err);
        if (code)
            return mv_wrap(err, code, "snapshot");
    }
    writer *w = calloc(1, sizeof *w);
    if (!w)
        return mr_errf(err, MR_ENOMEM, "mvcc: out of memory for a snapshot");
    w->sink = sink;
    w->arg = arg;
    int64_t horizon = from_ts != MV_SNAP_ALL && from_ts > s->horizon ? from_ts : s->horizon;
    int r = w_put(w, SNAP_MAGIC, 8);
    if (!r)
        r = w_u32(w, SNAP_FORMAT);
    if (!r)
        r = w_u64(w, s->applied);
    if (!r)
        r = w_u64(w, (uint64_t)horizon);
    if (!r)
        r = lo_len ? w_bytes(w, lo, lo_len) : w_bytes(w, s->r_start, s->r_start_len);
    if (!r)
        r = w_bytes(w, s->r_end, s->r_end_len);
    /* The store is used by one thread and held exclusively, so one statement's walk is a
     * consistent view. */
    sqlite3_stmt *st = s->st[ST_SNAP_ALL];
    mv_buf cur = {0};
    int have = 0, passed = 0, rc = SQLITE_DONE, nomem = 0, failed = 0;
    uint64_t count = 0;
    while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *k = sqlite3_column_blob(st, 0);
        size_t klen = (size_t)sqlite3_column_bytes(st, 0);
        int64_t ts = sqlite3_column_int64(st, 1);
        int tomb = sqlite3_column_type(st, 2) == SQLITE_NULL;
        if (lo_len && mv_keycmp(k, klen, lo, lo_len) < 0)
            continue; /* below the part wanted (system keys included) */
        /* A damaged version must not spread to the replica catching up from this one. */
        int bad =
            mv_check_crc(s, k, klen, ts, tomb, sqlite3_column_blob(st, 2),
                         (size_t)sqlite3_column_bytes(st, 2), sqlite3_column_int64(st, 3), err);
        if (bad) {
            failed = bad;
            break;
        }
        if (!have || mv_keycmp(k, klen, cur.p, cur.len) != 0) {
            if (mv_buf_set(&cur, k, klen)) {
                nomem = 1;
                break;
            }
            have = 1;
            passed = 0;
        }
        if (from_ts != MV_SNAP_ALL) {
            /* As GC at from_ts would leave it: nothing older than the newest version <= from_ts,
             * and not that one either when it is a tombstone. */
            if (passed)
                continue;
            if (ts <= from_ts) {
                passed = 1;
                if (tomb)
                    continue;
            }
        }
        r = w_u8(w, tomb ? 'D' : 'P');
        if (!r)
            r = w_bytes(w, k, klen);
        if (!r)
            r = w_u64(w, (uint64_t)ts);
        if (!r && !tomb)
            r = w_bytes(w, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
        count++;
    }
    sqlite3_reset(st);
    mv_buf_free(&cur);
    int code = failed;
    if (code)
        ; /* the message is set */
    else if (nomem)
        code = mr_errf(err, MR_ENOMEM, "mvcc: out of memory writing a snapshot");
    else if (!r && rc != SQLITE_DONE)
        code = mv_sqlerr(s, rc, err, "snapshot: reading versions");
    if (!code && !r) {
        r = w_u8(w, 'E');
        if (!r)
            r = w_u64(w, count);
        if (!r)
            r = w_flush(w, 1);
        if (!r) {
            uint32_t crc = w->crc;
            r = w_u32(w, crc);
        }
        if (!r)
            r = w_flush(w, 0);
    }
    free(w);
    if (code)
        return code;
    return r;
}

/* ---- Loading ---- */

typedef struct reader {
    unsigned char buf[SNAP_BUF];
    size_t pos, len;
    uint32_t crc;
    int track_crc;
    int eof, failed;
    mv_source_fn src;
    void *arg;
} reader;

/* Copies n bytes into dst (NULL: skip). 0, or -1 at end of input or a source error. */
static int r_get(reader *r, void *dst, size_t n)
{
    unsigned char *d = dst;
    while (n) {
        if (r->pos == r->len) {
            if (r->eof)
                return -1;
            long got = r->src(r->arg, r->buf, SNAP_BUF);
            if (got < 0 || (size_t)got > SNAP_BUF) {
                r->failed = 1;
                r->eof = 1;
                return -1;
            }
            if (got == 0) {
                r->eof = 1;
                return -1;
            }
            r->pos = 0;
            r->len = (size_t)got;
        }
        size_t k = r->len - r->pos < n ? r->len - r->pos : n;
        if (r->track_crc)
            r->crc = mv_crc32c(r->crc, r->buf + r->pos, k);
        if (d) {
            memcpy(d, r->buf + r->pos, k);
            d += k;
        }
        r->pos += k;
        n -= k;
    }
    return 0;
}

static int r_u8(reader *r, unsigned *v)
{
    unsigned char b;
    if (r_get(r, &b, 1))
        return -1;
    *v = b;
    return 0;
}

static int r_u32(reader *r, uint32_t *v)
{
    unsigned char b[4];
    if (r_get(r, b, 4))
        return -1;
    *v = mr_get_u32(b);
    return 0;
}

static int r_u64(reader *r, uint64_t *v)
{
    unsigned char b[8];
    if (r_get(r, b, 8))
        return -1;
    *v = mr_get_u64(b);
    return 0;
}

/* A length-prefixed byte string of at most `max` bytes into b. */
static int r_bytes(reader *r, mv_buf *b, size_t max, const char **why)
{
    uint32_t n;
    if (r_u32(r, &n))
        return -1;
    if (n > max) {
        *why = "a length is over the limit";
        return -1;
    }
    if (n > b->cap) {
        unsigned char *p = realloc(b->p, n);
        if (!p) {
            *why = "out of memory";
            return -1;
        }
        b->p = p;
        b->cap = n;
    }
    b->len = n;
    return r_get(r, b->p, n);
}

typedef struct loaded {
    uint64_t applied;
    int64_t horizon;
    mv_buf start, end, key, prev, val;
    mv_size size;
} loaded;

/* Parses the stream and inserts every record; returns 0, or MR_ECORRUPT/another code with a
 * message. The caller owns the transaction. */
static int load_records(mv_store *s, reader *r, loaded *L, mr_err *err)
{
    const char *why = NULL;
    char magic[8];
    uint32_t format = 0;
    uint64_t u = 0;
    if (r_get(r, magic, 8) || memcmp(magic, SNAP_MAGIC, 8) != 0)
        return mr_errf(err, MR_ECORRUPT, "mvcc: not a snapshot (bad magic)");
    if (r_u32(r, &format))
        return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot truncated in its format version");
    if (format == 0x01000000u)
        format = 1; /* version 1 wrote it little-endian */
    if (format != SNAP_FORMAT)
        return mr_errf(err, MR_ECORRUPT,
                       "mvcc: snapshot format version %u, this build reads version %d", format,
                       SNAP_FORMAT);
    if (r_u64(r, &L->applied) || L->applied > (uint64_t)INT64_MAX || r_u64(r, &u) ||
        u > (uint64_t)INT64_MAX)
        return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot header is truncated or out of range");
    L->horizon = (int64_t)u;
    if (r_bytes(r, &L->start, MV_MAX_KEY, &why) || r_bytes(r, &L->end, MV_MAX_KEY, &why))
        return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot range: %s", why ? why : "truncated");
    if (L->start.len && L->end.len &&
        mv_keycmp(L->start.p, L->start.len, L->end.p, L->end.len) >= 0)
        return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot range is empty or inverted");
    sqlite3_stmt *ins = s->st[ST_INSERT];
    uint64_t count = 0;
    int64_t prev_ts = 0;
    for (;;) {
        unsigned tag;
        if (r_u8(r, &tag))
            return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot truncated after %llu records",
                           (unsigned long long)count);
        if (tag == 'E')
            break;
        if (tag != 'P' && tag != 'D')
            return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot record %llu has bad tag %#x",
                           (unsigned long long)count, tag);
        uint64_t ts;
        why = NULL;
        if (r_bytes(r, &L->key, MV_MAX_KEY, &why) || L->key.len == 0 || r_u64(r, &ts) ||
            (tag == 'P' && r_bytes(r, &L->val, MV_MAX_VALUE, &why)))
            return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot record %llu: %s",
                           (unsigned long long)count,
                           why          ? why
                           : L->key.len ? "truncated"
                                        : "empty key");
        if (ts < MV_MIN_TS || ts > (uint64_t)INT64_MAX)
            return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot record %llu: bad timestamp",
                           (unsigned long long)count);
        int c = count ? mv_keycmp(L->prev.p, L->prev.len, L->key.p, L->key.len) : -1;
        if (c > 0 || (c == 0 && prev_ts <= (int64_t)ts))
            return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot record %llu is out of order",
                           (unsigned long long)count);
        int sys = L->key.len && L->key.p[0] == 0; /* system keys are always in range */
        if ((!sys && L->start.len &&
             mv_keycmp(L->key.p, L->key.len, L->start.p, L->start.len) < 0) ||
            (L->end.len && mv_keycmp(L->key.p, L->key.len, L->end.p, L->end.len) >= 0))
            return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot record %llu is outside its range",
                           (unsigned long long)count);
        mv_bind_blob(ins, 1, L->key.p, L->key.len);
        sqlite3_bind_int64(ins, 2, (int64_t)ts);
        if (tag == 'D')
            sqlite3_bind_null(ins, 3);
        else
            mv_bind_blob(ins, 3, L->val.p, L->val.len);
        sqlite3_bind_int64(ins, 4,
                           mv_version_crc(L->key.p, L->key.len, (int64_t)ts, tag == 'D', L->val.p,
                                          tag == 'D' ? 0 : L->val.len));
        int rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        if (rc != SQLITE_DONE)
            return mv_sqlerr(s, rc, err, "snapshot: inserting record %llu",
                             (unsigned long long)count);
        L->size.versions++;
        L->size.tombstones += tag == 'D';
        L->size.bytes += L->key.len + (tag == 'P' ? L->val.len : 0) + MV_VERSION_OVERHEAD;
        if (mv_buf_set(&L->prev, L->key.p, L->key.len))
            return mr_errf(err, MR_ENOMEM, "mvcc: out of memory loading a snapshot");
        prev_ts = (int64_t)ts;
        count++;
    }
    uint64_t n;
    if (r_u64(r, &n))
        return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot truncated in its trailer");
    uint32_t want = r->crc, got;
    r->track_crc = 0;
    if (r_u32(r, &got))
        return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot truncated in its checksum");
    if (n != count)
        return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot says %llu records, holds %llu",
                       (unsigned long long)n, (unsigned long long)count);
    if (got != want)
        return mr_errf(err, MR_ECORRUPT, "mvcc: snapshot checksum %#x, computed %#x", got, want);
    if (r_get(r, NULL, 1) == 0)
        return mr_errf(err, MR_ECORRUPT, "mvcc: bytes follow the snapshot's end");
    if (r->failed)
        return mr_errf(err, MR_EIO, "mvcc: the snapshot source failed");
    return 0;
}

int mv_snapshot_load_stream(mv_store *s, mv_source_fn src, void *arg, mr_err *err)
{
    if (!s || !src)
        return mr_errf(err, MR_EINVAL, "mvcc: snapshot load needs a store and a source");
    reader *r = calloc(1, sizeof *r);
    loaded L = {0};
    if (!r)
        return mr_errf(err, MR_ENOMEM, "mvcc: out of memory loading a snapshot");
    r->src = src;
    r->arg = arg;
    r->track_crc = 1;
    int code = mv_begin(s, err);
    if (!code) {
        int rc = sqlite3_step(s->st[ST_DEL_ALL]);
        sqlite3_reset(s->st[ST_DEL_ALL]);
        if (rc != SQLITE_DONE)
            code = mv_sqlerr(s, rc, err, "snapshot: clearing the store");
    }
    if (!code)
        code = load_records(s, r, &L, err);
    if (code == MR_ECORRUPT && r->failed)
        code = mr_errf(err, MR_EIO, "mvcc: the snapshot source failed");
    if (!code) {
        sqlite3_stmt *st = s->st[ST_SAVE_RANGE];
        if (L.start.len)
            mv_bind_blob(st, 1, L.start.p, L.start.len);
        else
            sqlite3_bind_null(st, 1);
        if (L.end.len)
            mv_bind_blob(st, 2, L.end.p, L.end.len);
        else
            sqlite3_bind_null(st, 2);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != SQLITE_DONE)
            code = mv_sqlerr(s, rc, err, "snapshot: saving the range");
    }
    if (!code)
        code = mv_save_state(s, L.applied, L.horizon, &L.size, NULL, 0, 0, 0, err);
    if (!code)
        code = mv_commit(s, err);
    if (code) {
        mv_rollback(s);
        mv_wrap(err, code, "loading a snapshot into %s (store unchanged)", s->path);
    } else {
        s->applied = L.applied;
        s->horizon = L.horizon;
        s->size = L.size;
        mv_set_gc_cursor(s, NULL, 0, 0, 0);
        if (mv_set_range_mem(s, L.start.p, L.start.len, L.end.p, L.end.len))
            code = mr_errf(err, MR_ENOMEM, "mvcc: out of memory (snapshot loaded; reopen)");
    }
    mv_buf_free(&L.start);
    mv_buf_free(&L.end);
    mv_buf_free(&L.key);
    mv_buf_free(&L.prev);
    mv_buf_free(&L.val);
    free(r);
    return code;
}

typedef struct mem_src {
    const unsigned char *p;
    size_t left;
} mem_src;

static long mem_read(void *arg, void *buf, size_t cap)
{
    mem_src *m = arg;
    size_t k = m->left < cap ? m->left : cap;
    if (k)
        memcpy(buf, m->p, k);
    m->p += k;
    m->left -= k;
    return (long)k;
}

static int grow_sink(void *arg, const void *buf, size_t len)
{
    return mv_buf_append(arg, buf, len);
}

int mv_snapshot_mem(mv_store *s, int64_t from_ts, const void *lo, size_t lo_len, void **out,
                    size_t *len, mr_err *err)
{
    mv_buf b = {0};
    int code = lo_len ? mv_snapshot_from_key(s, lo, lo_len, grow_sink, &b, err)
                      : mv_snapshot_write(s, from_ts, grow_sink, &b, err);
    if (code) {
        free(b.p);
        if (code == MR_ENOMEM)
            mr_errf(err, MR_ENOMEM, "mvcc: out of memory for a snapshot");
        return code;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int mv_snapshot_load(mv_store *s, const void *buf, size_t len, mr_err *err)
{
    if (!buf && len)
        return mr_errf(err, MR_EINVAL, "mvcc: snapshot of %zu bytes from NULL", len);
    mem_src m = {buf, len};
    return mv_snapshot_load_stream(s, mem_read, &m, err);
}
