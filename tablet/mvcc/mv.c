/* The MVCC store: schema, opening, cached statements, applying log entries, the tablet range,
 * point reads and size counters (scans, GC, split and snapshots live in their own files).
 *
 * Why synchronous=NORMAL is safe here. In WAL mode NORMAL does not fsync the WAL at each commit
 * (only at checkpoints), so a power loss or kernel crash may lose the last few commits; a process
 * crash loses nothing (the WAL is in the OS page cache). What survives is always a prefix of the
 * commits, each whole: SQLite's WAL recovery stops at the first frame whose checksum fails. The
 * applied slot is written in the same transaction as the entry's versions, so after any crash
 * the file holds exactly the effects of slots 1..mv_applied_slot() (and of the GC and range
 * changes made before the surviving point, which only ever drop versions no read at or above
 * the surviving horizon needs). The chosen entries are durable in the Paxos log
 * (synchronous=FULL), so recovery replays every slot after mv_applied_slot() and reaches the
 * same state. Two obligations fall on the caller: (1) replay before serving reads after a
 * restart, and (2) never truncate the log past mv_applied_slot() unless a durable snapshot
 * covers it (ls_install_snapshot), or call mv_sync() first. FULL would cost an fsync per applied
 * entry on top of the log's own, for no gain in what a client can observe. */
#include "tablet/mvcc/mv_int.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_sqlite.h"
#include "common/mr_log.h"

/* 'MRMV' in the SQLite header, so another program's database is refused. */
#define MV_APP_ID 0x4d524d56
/* mv_meta.format. 2: every integer big-endian (the version CRCs' headers, the node's records
 * stored as system keys); a store of another format is refused. */
#define MV_FORMAT    2
#define MV_STR(x)    #x
#define MV_STR_OF(x) MV_STR(x)

static const char *const sql_text[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT] = "INSERT OR IGNORE INTO mv_version(key, ts, val, crc) VALUES(?1, ?2, ?3, ?4)",
    [ST_OLD] = "SELECT val IS NULL, length(val) FROM mv_version WHERE key = ?1 AND ts = ?2",
    [ST_UPDATE] = "UPDATE mv_version SET val = ?3, crc = ?4 WHERE key = ?1 AND ts = ?2",
    [ST_SAVE_STATE] = "UPDATE mv_meta SET applied = ?1, horizon = ?2, versions = ?3, tombs = ?4,"
                      " bytes = ?5, gc_key = ?6, gc_ts = ?7 WHERE id = 0",
    [ST_SAVE_RANGE] = "UPDATE mv_meta SET r_start = ?1, r_end = ?2 WHERE id = 0",
    [ST_GET] = "SELECT ts, val, crc FROM mv_version WHERE key = ?1 AND ts <= ?2 ORDER BY ts DESC "
               "LIMIT 1",
    [ST_SCAN_B] = "SELECT key, ts, val, crc FROM mv_version WHERE key >= ?1 AND key < ?2 "
                  "ORDER BY key, ts DESC",
    [ST_SCAN_U] = "SELECT key, ts, val, crc FROM mv_version WHERE key >= ?1 ORDER BY key, ts DESC",
    [ST_RSCAN_B] = "SELECT key, ts, val, crc FROM mv_version WHERE key >= ?1 AND key < ?2 "
                   "ORDER BY key DESC, ts",
    [ST_RSCAN_U] = "SELECT key, ts, val, crc FROM mv_version WHERE key >= ?1 ORDER BY key DESC, ts",
    [ST_GC_REST] = "SELECT ts, val IS NULL, length(val) FROM mv_version WHERE key = ?1 "
                   "AND ts < ?2 ORDER BY ts DESC",
    [ST_GC_SCAN] = "SELECT key, ts, val IS NULL, length(val) FROM mv_version WHERE key >= ?1 "
                   "ORDER BY key, ts DESC",
    [ST_DELETE] = "DELETE FROM mv_version WHERE key = ?1 AND ts = ?2",
    [ST_DEL_BELOW] = "DELETE FROM mv_version WHERE key < ?1 AND key >= x'01'", /* not system keys */
    [ST_DEL_FROM] = "DELETE FROM mv_version WHERE key >= ?1",
    [ST_DEL_ALL] = "DELETE FROM mv_version",
    [ST_RECOUNT] = "SELECT count(*), ifnull(sum(val IS NULL), 0), ifnull(sum(length(key) + "
                   "ifnull(length(val), 0)), 0) FROM mv_version",
    [ST_SNAP_ALL] = "SELECT key, ts, val, crc FROM mv_version ORDER BY key, ts DESC",
};

const char *mv_sql_text(int id)
{
    return id >= 0 && id < ST_COUNT ? sql_text[id] : NULL;
}

/* Versions: ordered by key bytes, then newest first, so "newest version <= t" is one seek and
 * the versions of a key are adjacent. WITHOUT ROWID: the primary key is the only b-tree, and a
 * version's value sits in its cell. A NULL val is a tombstone; crc is mv_version_crc(). The meta
 * table has one row. */
static const char schema_sql[] =
    "CREATE TABLE mv_version(key BLOB NOT NULL, ts INTEGER NOT NULL, val BLOB,"
    " crc INTEGER NOT NULL, PRIMARY KEY(key, ts DESC)) WITHOUT ROWID;"
    "CREATE TABLE mv_meta(id INTEGER PRIMARY KEY CHECK(id = 0), format INTEGER NOT NULL,"
    " applied INTEGER NOT NULL, horizon INTEGER NOT NULL, versions INTEGER NOT NULL,"
    " tombs INTEGER NOT NULL, bytes INTEGER NOT NULL, r_start BLOB, r_end BLOB,"
    " gc_key BLOB, gc_ts INTEGER);"
    "INSERT INTO mv_meta(id, format, applied, horizon, versions, tombs, bytes)"
    " VALUES(0, " MV_STR_OF(MV_FORMAT) ", 0, 0, 0, 0, 0);";

/* ---- Errors and small helpers ---- */

int mv_sqlerr(mv_store *s, int rc, mr_err *err, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int code = mr_sqlite_code(rc);
    const char *hint = "";
    if (code == MR_EFULL)
        hint = "; the disk or the store's size quota is full";
    else if (code == MR_EUNAVAIL)
        hint = "; is the store open in another process or handle?";
    else if (code == MR_ECORRUPT)
        hint = "; the file is damaged: rebuild this replica from a snapshot";
    return mr_errf(err, code, "mvcc %s: %s: %s (%s)%s", s->path, what,
                   s->db ? sqlite3_errmsg(s->db) : "", sqlite3_errstr(rc), hint);
}

int mv_wrap(mr_err *err, int code, const char *fmt, ...)
{
    if (err) {
        char ctx[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx, sizeof ctx, fmt, ap);
        va_end(ap);
        mr_err_wrap(err, "%s", ctx);
    }
    return code;
}

int mv_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    if (n == 0)
        return sqlite3_bind_zeroblob(st, i, 0);
    return sqlite3_bind_blob64(st, i, p, (sqlite3_uint64)n, SQLITE_STATIC);
}

int mv_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = m ? memcmp(a, b, m) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

int mv_check_key(const void *key, size_t len, const char *what, mr_err *err)
{
    if (!key || len == 0)
        return mr_errf(err, MR_EINVAL, "mvcc: %s is empty or NULL", what);
    if (len > MV_MAX_KEY)
        return mr_errf(err, MR_EINVAL, "mvcc: %s of %zu bytes is longer than the %d-byte limit",
                       what, len, MV_MAX_KEY);
    return 0;
}

int mv_in_range(const mv_store *s, const void *key, size_t len)
{
    if (len && *(const unsigned char *)key == 0)
        return 1; /* a system key */
    if (s->r_start_len && mv_keycmp(key, len, s->r_start, s->r_start_len) < 0)
        return 0;
    if (s->r_end_len && mv_keycmp(key, len, s->r_end, s->r_end_len) >= 0)
        return 0;
    return 1;
}

int mv_check_read_ts(const mv_store *s, int64_t ts, mr_err *err)
{
    if (ts < 0)
        return mr_errf(err, MR_EINVAL, "mvcc: read timestamp %lld is negative", (long long)ts);
    if (ts < s->horizon)
        return mr_errf(err, MR_ESTALE,
                       "mvcc %s: read at %lld is below the version horizon %lld (older versions "
                       "were garbage-collected; read at or above the horizon)",
                       s->path, (long long)ts, (long long)s->horizon);
    return 0;
}

static int buf_reserve(mv_buf *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < n)
        cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q)
        return MR_ENOMEM;
    b->p = q;
    b->cap = cap;
    return 0;
}

int mv_buf_set(mv_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n))
        return MR_ENOMEM;
    if (n)
        memmove(b->p, p, n);
    b->len = n;
    return 0;
}

int mv_buf_append(mv_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, b->len + n))
        return MR_ENOMEM;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int mv_buf_succ(mv_buf *b, const void *p, size_t n)
{
    if (b->p == p) { /* growing may move the source: grow in place first */
        if (buf_reserve(b, n + 1))
            return MR_ENOMEM;
    } else if (buf_reserve(b, n + 1) || mv_buf_set(b, p, n)) {
        return MR_ENOMEM;
    }
    b->p[n] = 0;
    b->len = n + 1;
    return 0;
}

void mv_buf_free(mv_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static unsigned char *dup_bytes(const void *p, size_t n)
{
    if (n == 0)
        return NULL;
    unsigned char *q = malloc(n);
    if (q)
        memcpy(q, p, n);
    return q;
}

int mv_set_gc_cursor(mv_store *s, const void *key, size_t len, int has_ts, int64_t ts)
{
    unsigned char *k = dup_bytes(key, len);
    if (len && !k)
        return MR_ENOMEM;
    free(s->gc_key);
    s->gc_key = k;
    s->gc_key_len = len;
    s->gc_has_ts = len ? has_ts : 0;
    s->gc_ts = ts;
    s->gc_pend = 0;
    return 0;
}

int mv_set_range_mem(mv_store *s, const void *start, size_t start_len, const void *end,
                     size_t end_len)
{
    unsigned char *a = dup_bytes(start, start_len), *b = dup_bytes(end, end_len);
    if ((start_len && !a) || (end_len && !b)) {
        free(a);
        free(b);
        return MR_ENOMEM;
    }
    free(s->r_start);
    free(s->r_end);
    s->r_start = a;
    s->r_start_len = start_len;
    s->r_end = b;
    s->r_end_len = end_len;
    return 0;
}

/* ---- Transactions ---- */

static int run(mv_store *s, int id, mr_err *err, const char *what)
{
    sqlite3_stmt *st = s->st[id];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return mv_sqlerr(s, rc, err, "%s", what);
    return 0;
}

int mv_begin(mv_store *s, mr_err *err)
{
    return run(s, ST_BEGIN, err, "begin");
}

int mv_commit(mv_store *s, mr_err *err)
{
    int rc = run(s, ST_COMMIT, err, "commit");
    if (rc)
        mv_rollback(s);
    return rc;
}

void mv_rollback(mv_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(s->st[ST_ROLLBACK]);
        sqlite3_reset(s->st[ST_ROLLBACK]);
    }
}

int mv_save_state(mv_store *s, uint64_t applied, int64_t horizon, const mv_size *size,
                  const void *gc_key, size_t gc_key_len, int gc_has_ts, int64_t gc_ts, mr_err *err)
{
    sqlite3_stmt *st = s->st[ST_SAVE_STATE];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)applied);
    sqlite3_bind_int64(st, 2, horizon);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)size->versions);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)size->tombstones);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)size->bytes);
    if (gc_key_len)
        mv_bind_blob(st, 6, gc_key, gc_key_len);
    else
        sqlite3_bind_null(st, 6);
    if (gc_key_len && gc_has_ts)
        sqlite3_bind_int64(st, 7, gc_ts);
    else
        sqlite3_bind_null(st, 7);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return mv_sqlerr(s, rc, err, "saving the store's state");
    return 0;
}

int mv_recount(mv_store *s, mv_size *out, mr_err *err)
{
    sqlite3_stmt *st = s->st[ST_RECOUNT];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->versions = (uint64_t)sqlite3_column_int64(st, 0);
        out->tombstones = (uint64_t)sqlite3_column_int64(st, 1);
        out->bytes = (uint64_t)sqlite3_column_int64(st, 2) + out->versions * MV_VERSION_OVERHEAD;
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return mv_sqlerr(s, rc, err, "counting versions");
    return 0;
}

/* ---- Opening ---- */

static int exec(mv_store *s, const char *sql, mr_err *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return mv_sqlerr(s, rc, err, "%s", sql);
    return 0;
}

static int pragma_int(mv_store *s, const char *sql, int64_t *out, mr_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK && rc != SQLITE_DONE)
        return mv_sqlerr(s, rc, err, "%s", sql);
    return 0;
}

static int load_state(mv_store *s, mr_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT format, applied, horizon, versions, tombs, bytes, r_start,"
                                " r_end, gc_key, gc_ts FROM mv_meta WHERE id = 0",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return mv_sqlerr(s, rc, err, "reading the state row");
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int code = rc == SQLITE_DONE
                       ? mr_errf(err, MR_ECORRUPT, "mvcc %s: the state row is missing", s->path)
                       : mv_sqlerr(s, rc, err, "reading the state row");
        sqlite3_finalize(st);
        return code;
    }
    int64_t format = sqlite3_column_int64(st, 0);
    int64_t applied = sqlite3_column_int64(st, 1);
    int64_t horizon = sqlite3_column_int64(st, 2);
    int64_t v = sqlite3_column_int64(st, 3), t = sqlite3_column_int64(st, 4),
            b = sqlite3_column_int64(st, 5);
    int code = 0;
    if (format != MV_FORMAT)
        code =
            mr_errf(err, MR_ECORRUPT, "mvcc %s: format version %lld, this build reads version %d",
                    s->path, (long long)format, MV_FORMAT);
    else if (applied < 0 || horizon < 0 || v < 0 || t < 0 || b < 0 || t > v)
        code = mr_errf(err, MR_ECORRUPT, "mvcc %s: the state row holds impossible values", s->path);
    if (!code) {
        s->applied = (uint64_t)applied;
        s->horizon = horizon;
        s->size.versions = (uint64_t)v;
        s->size.tombstones = (uint64_t)t;
        s->size.bytes = (uint64_t)b;
        const void *a = sqlite3_column_blob(st, 6);
        size_t alen = (size_t)sqlite3_column_bytes(st, 6);
        const void *e = sqlite3_column_blob(st, 7);
        size_t elen = (size_t)sqlite3_column_bytes(st, 7);
        if (mv_set_range_mem(s, a, alen, e, elen))
            code = mr_errf(err, MR_ENOMEM, "mvcc: out of memory");
    }
    if (!code) {
        const void *k = sqlite3_column_blob(st, 8);
        size_t klen = (size_t)sqlite3_column_bytes(st, 8);
        int has_ts = sqlite3_column_type(st, 9) != SQLITE_NULL;
        if (mv_set_gc_cursor(s, k, klen, has_ts, sqlite3_column_int64(st, 9)))
            code = mr_errf(err, MR_ENOMEM, "mvcc: out of memory");
    }
    sqlite3_finalize(st);
    return code;
}

static int setup(mv_store *s, const mv_options *opt, mr_err *err)
{
    int rc = sqlite3_open_v2(s->path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK)
        return mv_sqlerr(s, rc, err, "opening");
    sqlite3_extended_result_codes(s->db, 1);
    /* One handle owns the file: no shared-memory WAL index, and the cached state is the truth.
     * The exclusive lock is taken by the first write transaction below and kept. */
    int code = exec(s, "PRAGMA locking_mode=EXCLUSIVE", err);
    if (!code)
        code = exec(s, "PRAGMA journal_mode=WAL", err);
    if (!code)
        code = exec(s, "PRAGMA synchronous=NORMAL", err); /* why: see the top of this file */
    if (code)
        return code;
    /* Reads through a memory map skip a copy and a syscall per page; checkpoints every 16 MiB of
     * WAL rather than 4 MiB amortize their fsyncs over more applied entries, and the WAL file is
     * truncated back to that size after each. */
    char pragma[96];
    int64_t cache = opt && opt->cache_bytes > 0 ? opt->cache_bytes : MV_DEFAULT_CACHE;
    snprintf(pragma, sizeof pragma, "PRAGMA cache_size=-%lld", (long long)(cache / 1024));
    code = exec(s, pragma, err);
    if (!code)
        code = exec(s, "PRAGMA mmap_size=268435456", err);
    if (!code)
        code = exec(s, "PRAGMA wal_autocheckpoint=4096", err);
    if (!code)
        code = exec(s, "PRAGMA journal_size_limit=16777216", err);
    if (code)
        return code;
    if (opt && opt->max_bytes > 0) {
        int64_t pages = opt->max_bytes / 4096;
        if (pages < 8)
            pages = 8;
        /* Pages are SQLite's default 4096 bytes (this store never changes the page size). */
        snprintf(pragma, sizeof pragma, "PRAGMA max_page_count=%lld", (long long)pages);
        code = exec(s, pragma, err);
        if (code)
            return code;
    }
    /* BEGIN EXCLUSIVE takes the lock now, so a second handle fails here and not later. */
    code = exec(s, "BEGIN EXCLUSIVE", err);
    if (code)
        return code;
    int64_t app_id = 0, tables = 0;
    code = pragma_int(s, "PRAGMA application_id", &app_id, err);
    if (!code)
        code = pragma_int(s, "SELECT count(*) FROM sqlite_schema", &tables, err);
    if (!code && app_id == 0 && tables == 0) {
        code = exec(s, schema_sql, err);
        if (!code) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA application_id=%d", MV_APP_ID);
            code = exec(s, sql, err);
        }
        if (!code)
            MR_INFO("mvcc", "created store path=%s", s->path);
    } else if (!code && app_id != MV_APP_ID) {
        code =
            mr_errf(err, MR_ECORRUPT, "mvcc %s: not a Meridian MVCC store (application_id %#llx)",
                    s->path, (unsigned long long)app_id);
    }
    if (code) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return code;
    }
    code = exec(s, "COMMIT", err);
    if (code)
        return code;
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK)
            return mv_sqlerr(s, rc, err, "preparing statement %d", i);
    }
    return load_state(s, err);
}

int mv_open(const char *path, const mv_options *opt, mv_store **out, mr_err *err)
{
    if (!path || !*path || !out)
        return mr_errf(err, MR_EINVAL, "mvcc: open needs a path and an output handle");
    *out = NULL;
    mv_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return mr_errf(err, MR_ENOMEM, "mvcc: out of memory opening %s", path);
    }
    int code = setup(s, opt, err);
    if (code) {
        mv_close(s);
        return code;
    }
    *out = s;
    return 0;
}

void mv_close(mv_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db)
        sqlite3_close(s->db);
    free(s->r_start);
    free(s->r_end);
    free(s->gc_key);
    free(s->path);
    free(s);
}

int mv_sync(mv_store *s, mr_err *err)
{
    if (!s)
        return mr_errf(err, MR_EINVAL, "mvcc: sync of a NULL store");
    /* A checkpoint fsyncs the WAL before copying it into the database, then the database. */
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_FULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return mv_sqlerr(s, rc, err, "checkpoint");
    return 0;
}

/* ---- Applying ---- */

uint64_t mv_applied_slot(const mv_store *s)
{
    return s ? s->applied : 0;
}

int64_t mv_horizon(const mv_store *s)
{
    return s ? s->horizon : 0;
}

int mv_pages(mv_store *s, mv_page_stats *out, mr_err *err)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return mr_errf(err, MR_EINVAL, "mvcc: pages of a NULL store");
    int code = pragma_int(s, "PRAGMA page_count", &out->pages, err);
    if (!code)
        code = pragma_int(s, "PRAGMA freelist_count", &out->free_pages, err);
    if (!code)
        code = pragma_int(s, "PRAGMA page_size", &out->page_size, err);
    return code;
}

int mv_max_ts(mv_store *s, int64_t *out, mr_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "SELECT ifnull(max(ts), 0) FROM mv_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return mv_sqlerr(s, rc, err, "reading the largest timestamp");
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return mv_sqlerr(s, rc, err, "reading the largest timestamp");
    }
    int64_t ts = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    *out = ts > s->horizon ? ts : s->horizon;
    return 0;
}

void mv_size_estimate(const mv_store *s, mv_size *out)
{
    if (!out)
        return;
    if (!s) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = s->size;
}

static int check_slot(mv_store *s, uint64_t slot, mr_err *err)
{
    if (slot == 0 || slot > (uint64_t)INT64_MAX)
        return mr_errf(err, MR_EINVAL, "mvcc: slot %llu is out of range [1, 2^63-1]",
                       (unsigned long long)slot);
    if (slot <= s->applied)
        return mr_errf(err, MR_EEXIST, "mvcc %s: slot %llu already applied (applied through %llu)",
                       s->path, (unsigned long long)slot, (unsigned long long)s->applied);
    return 0;
}

/* Writes one version and adjusts *size. A version already at (key, ts) — the same key twice in
 * one batch — is overwritten, so the last write of a batch wins. */
static int put_version(mv_store *s, const mv_write *w, int64_t ts, mv_size *size, mr_err *err)
{
    int tomb = w->op == MV_DELETE;
    uint32_t crc = mv_version_crc(w->key, w->key_len, ts, tomb, w->value, tomb ? 0 : w->len);
    sqlite3_stmt *st = s->st[ST_INSERT];
    mv_bind_blob(st, 1, w->key, w->key_len);
    sqlite3_bind_int64(st, 2, ts);
    if (tomb)
        sqlite3_bind_null(st, 3);
    else
        mv_bind_blob(st, 3, w->value, w->len);
    sqlite3_bind_int64(st, 4, crc);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return mv_sqlerr(s, rc, err, "writing a version at %lld", (long long)ts);
    uint64_t bytes = w->key_len + (tomb ? 0 : w->len) + MV_VERSION_OVERHEAD;
    if (sqlite3_changes(s->db) == 1) {
        size->versions++;
        size->tombstones += (uint64_t)tomb;
        size->bytes += bytes;
        return 0;
    }
    st = s->st[ST_OLD];
    mv_bind_blob(st, 1, w->key, w->key_len);
    sqlite3_bind_int64(st, 2, ts);
    rc = sqlite3_step(st);
    int old_tomb = 0;
    uint64_t old_len = 0;
    if (rc == SQLITE_ROW) {
        old_tomb = sqlite3_column_int(st, 0);
        old_len = (uint64_t)sqlite3_column_int64(st, 1);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return mv_sqlerr(s, rc, err, "reading a version at %lld", (long long)ts);
    st = s->st[ST_UPDATE];
    mv_bind_blob(st, 1, w->key, w->key_len);
    sqlite3_bind_int64(st, 2, ts);
    if (tomb)
        sqlite3_bind_null(st, 3);
    else
        mv_bind_blob(st, 3, w->value, w->len);
    sqlite3_bind_int64(st, 4, crc);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return mv_sqlerr(s, rc, err, "overwriting a version at %lld", (long long)ts);
    size->tombstones = size->tombstones - (uint64_t)old_tomb + (uint64_t)tomb;
    size->bytes = size->bytes - (w->key_len + old_len + MV_VERSION_OVERHEAD) + bytes;
    return 0;
}

static int check_writes(const mv_write *w, size_t n, mr_err *err)
{
    if (n && !w)
        return mr_errf(err, MR_EINVAL, "mvcc: apply of %zu writes from NULL", n);
    for (size_t i = 0; i < n; i++) {
        if (mv_check_key(w[i].key, w[i].key_len, "key", err))
            return mv_wrap(err, MR_EINVAL, "write %zu", i);
        if (w[i].op != MV_PUT && w[i].op != MV_DELETE)
            return mr_errf(err, MR_EINVAL, "mvcc: write %zu has unknown op %d", i, (int)w[i].op);
        if (w[i].op == MV_PUT && w[i].len > MV_MAX_VALUE)
            return mr_errf(err, MR_EINVAL,
                           "mvcc: value of write %zu has %zu bytes, over the %u-byte limit", i,
                           w[i].len, MV_MAX_VALUE);
        if (w[i].op == MV_PUT && w[i].len && !w[i].value)
            return mr_errf(err, MR_EINVAL, "mvcc: value of write %zu is NULL with length %zu", i,
                           w[i].len);
    }
    return 0;
}

int mv_check_txn(const mv_store *s, const mv_txn *t, mr_err *err)
{
    if (!s || !t)
        return mr_errf(err, MR_EINVAL, "mvcc: check of a NULL store or transaction");
    int code = check_writes(t->w, t->n, err);
    if (code || !t->n)
        return code;
    if (t->commit_ts < MV_MIN_TS)
        return mr_errf(err, MR_EINVAL, "mvcc: commit timestamp %lld is below %d",
                       (long long)t->commit_ts, MV_MIN_TS);
    for (size_t i = 0; i < t->n; i++)
        if (!mv_in_range(s, t->w[i].key, t->w[i].key_len))
            return mr_errf(err, MR_EINVAL, "mvcc %s: write %zu is outside the tablet's range",
                           s->path, i);
    return 0;
}

/* The input checks, then the horizon, once the slot is known to be new. */
static int check_txn(mv_store *s, const mv_txn *t, mr_err *err)
{
    int code = mv_check_txn(s, t, err);
    if (code || !t->n)
        return code;
    if (t->commit_ts < s->horizon)
        return mr_errf(err, MR_ESTALE,
                       "mvcc %s: commit at %lld is below the version horizon %lld (GC may have "
                       "removed versions it would need)",
                       s->path, (long long)t->commit_ts, (long long)s->horizon);
    return 0;
}

int mv_apply_txns(mv_store *s, uint64_t slot, const mv_txn *t, size_t nt, mr_err *err)
{
    if (!s)
        return mr_errf(err, MR_EINVAL, "mvcc: apply to a NULL store");
    if (nt && !t)
        return mr_errf(err, MR_EINVAL, "mvcc: apply of %zu transactions from NULL", nt);
    for (size_t j = 0; j < nt; j++)
        if (check_writes(t[j].w, t[j].n, err))
            return nt > 1 ? mv_wrap(err, MR_EINVAL, "transaction %zu", j) : MR_EINVAL;
    /* Replay of an old slot must succeed as a no-op even if the range or horizon moved since,
     * so the slot is checked before them. */
    int code = check_slot(s, slot, err);
    for (size_t j = 0; j < nt && !code; j++)
        if ((code = check_txn(s, &t[j], err)) != 0 && nt > 1)
            mv_wrap(err, code, "transaction %zu", j);
    if (code)
        return code;
    code = mv_begin(s, err);
    if (code)
        return code;
    mv_size size = s->size;
    for (size_t j = 0; j < nt && !code; j++)
        for (size_t i = 0; i < t[j].n && !code; i++)
            code = put_version(s, &t[j].w[i], t[j].commit_ts, &size, err);
    if (!code)
        code = mv_save_state(s, slot, s->horizon, &size, s->gc_key, s->gc_key_len, s->gc_has_ts,
                             s->gc_ts, err);
    if (!code)
        code = mv_commit(s, err);
    if (code) {
        mv_rollback(s);
        return mv_wrap(err, code, "applying slot %llu", (unsigned long long)slot);
    }
    s->applied = slot;
    s->size = size;
    return 0;
}

int mv_apply(mv_store *s, uint64_t slot, int64_t commit_ts, const mv_write *w, size_t n,
             mr_err *err)
{
    mv_txn t = {commit_ts, w, n};
    return mv_apply_txns(s, slot, &t, 1, err);
}

/* ---- Range ---- */

int mv_set_range(mv_store *s, uint64_t slot, const void *start, size_t start_len, const void *end,
                 size_t end_len, mr_err *err)
{
    if (!s)
        return mr_errf(err, MR_EINVAL, "mvcc: set_range on a NULL store");
    if ((start_len && mv_check_key(start, start_len, "range start", err)) ||
        (end_len && mv_check_key(end, end_len, "range end", err)))
        return MR_EINVAL;
    if (start_len && end_len && mv_keycmp(start, start_len, end, end_len) >= 0)
        return mr_errf(err, MR_EINVAL, "mvcc: range start is not below its end");
    int code = check_slot(s, slot, err);
    if (code)
        return code;
    return mv_range_txn(s, slot, start, start_len, end, end_len, err);
}

int mv_range_txn(mv_store *s, uint64_t slot, const void *start, size_t start_len, const void *end,
                 size_t end_len, mr_err *err)
{
    int code = mv_begin(s, err);
    if (code)
        return code;
    sqlite3_stmt *st;
    int rc = SQLITE_DONE;
    if (start_len) {
        st = s->st[ST_DEL_BELOW];
        mv_bind_blob(st, 1, start, start_len);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
    }
    if (rc == SQLITE_DONE && end_len) {
        st = s->st[ST_DEL_FROM];
        mv_bind_blob(st, 1, end, end_len);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
    }
    if (rc != SQLITE_DONE)
        code = mv_sqlerr(s, rc, err, "deleting versions outside the new range");
    if (!code) {
        st = s->st[ST_SAVE_RANGE];
        if (start_len)
            mv_bind_blob(st, 1, start, start_len);
        else
            sqlite3_bind_null(st, 1);
        if (end_len)
            mv_bind_blob(st, 2, end, end_len);
        else
            sqlite3_bind_null(st, 2);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != SQLITE_DONE)
            code = mv_sqlerr(s, rc, err, "saving the range");
    }
    mv_size size;
    if (!code)
        code = mv_recount(s, &size, err);
    /* The GC cursor may now point outside the range; start the next pass over. */
    if (!code)
        code = mv_save_state(s, slot, s->horizon, &size, NULL, 0, 0, 0, err);
    if (!code)
        code = mv_commit(s, err);
    if (code) {
        mv_rollback(s);
        return mv_wrap(err, code, "setting the range at slot %llu", (unsigned long long)slot);
    }
    s->applied = slot;
    s->size = size;
    mv_set_gc_cursor(s, NULL, 0, 0, 0);
    if (mv_set_range_mem(s, start, start_len, end, end_len))
        return mr_errf(err, MR_ENOMEM, "mvcc: out of memory (the range is saved; reopen)");
    return 0;
}

int mv_get_range(mv_store *s, void **start, size_t *start_len, void **end, size_t *end_len,
                 mr_err *err)
{
    if (!s || !start || !start_len || !end || !end_len)
        return mr_errf(err, MR_EINVAL, "mvcc: get_range needs a store and four outputs");
    *start = dup_bytes(s->r_start, s->r_start_len);
    *end = dup_bytes(s->r_end, s->r_end_len);
    if ((s->r_start_len && !*start) || (s->r_end_len && !*end)) {
        free(*start);
        free(*end);
        *start = *end = NULL;
        return mr_errf(err, MR_ENOMEM, "mvcc: out of memory");
    }
    *start_len = s->r_start_len;
    *end_len = s->r_end_len;
    return 0;
}

/* ---- Verification ---- */

int mv_check_crc(mv_store *s, const void *key, size_t klen, int64_t ts, int tomb, const void *v,
                 size_t vlen, int64_t crc, mr_err *err)
{
    if ((int64_t)mv_version_crc(key, klen, ts, tomb, v, vlen) == crc)
        return 0;
    MR_ERROR("mvcc", "version fails its checksum path=%s ts=%lld key_len=%zu", s->path,
             (long long)ts, klen);
    return mr_errf(err, MR_ECORRUPT,
                   "mvcc %s: the version at %lld of a %zu-byte key fails its checksum; refusing "
                   "to serve it (rebuild this replica from a snapshot)",
                   s->path, (long long)ts, klen);
}

int mv_verify(mv_store *s, mr_err *err)
{
    if (!s)
        return mr_errf(err, MR_EINVAL, "mvcc: verify of a NULL store");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA integrity_check(1)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return mv_sqlerr(s, rc, err, "integrity check");
    rc = sqlite3_step(st);
    int code = 0;
    if (rc != SQLITE_ROW)
        code = mv_sqlerr(s, rc, err, "integrity check");
    else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
        code = mr_errf(err, MR_ECORRUPT, "mvcc %s: integrity check: %s", s->path,
                       (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    if (code)
        return code;
    st = s->st[ST_SNAP_ALL];
    while (!code && (rc = sqlite3_step(st)) == SQLITE_ROW)
        code = mv_check_crc(s, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                            sqlite3_column_int64(st, 1), sqlite3_column_type(st, 2) == SQLITE_NULL,
                            sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2),
                            sqlite3_column_int64(st, 3), err);
    sqlite3_reset(st);
    if (code)
        return code;
    if (rc != SQLITE_DONE)
        return mv_sqlerr(s, rc, err, "verify: reading versions");
    mv_size z = {0};
    code = mv_recount(s, &z, err);
    if (code)
        return code;
    if (z.versions != s->size.versions || z.tombstones != s->size.tombstones ||
        z.bytes != s->size.bytes)
        return mr_errf(err, MR_ECORRUPT,
                       "mvcc %s: counters say %llu versions (%llu tombstones, %llu bytes), the "
                       "table holds %llu (%llu, %llu)",
                       s->path, (unsigned long long)s->size.versions,
                       (unsigned long long)s->size.tombstones, (unsigned long long)s->size.bytes,
                       (unsigned long long)z.versions, (unsigned long long)z.tombstones,
                       (unsigned long long)z.bytes);
    return 0;
}

/* ---- Point reads ---- */

int mv_get(mv_store *s, const void *key, size_t key_len, int64_t ts, mv_version *out, mr_err *err)
{
    if (!s || !out)
        return mr_errf(err, MR_EINVAL, "mvcc: get needs a store and an output");
    memset(out, 0, sizeof *out);
    int code = mv_check_key(key, key_len, "key", err);
    if (!code)
        code = mv_check_read_ts(s, ts, err);
    if (code)
        return code;
    if (!mv_in_range(s, key, key_len))
        return mr_errf(err, MR_EINVAL, "mvcc %s: key is outside the tablet's range", s->path);
    sqlite3_stmt *st = s->st[ST_GET];
    mv_bind_blob(st, 1, key, key_len);
    sqlite3_bind_int64(st, 2, ts);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return mr_errf(err, MR_ENOTFOUND, "mvcc: no version at or before %lld", (long long)ts);
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return mv_sqlerr(s, rc, err, "reading a key at %lld", (long long)ts);
    }
    out->ts = sqlite3_column_int64(st, 0);
    int tomb = sqlite3_column_type(st, 1) == SQLITE_NULL;
    const void *v = sqlite3_column_blob(st, 1);
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    code = mv_check_crc(s, key, key_len, out->ts, tomb, v, len, sqlite3_column_int64(st, 2), err);
    if (code) {
        sqlite3_reset(st);
        out->ts = 0;
        return code;
    }
    if (tomb) {
        out->deleted = 1;
        sqlite3_reset(st);
        return mr_errf(err, MR_ENOTFOUND, "mvcc: deleted at %lld", (long long)out->ts);
    }
    out->value = malloc(len ? len : 1);
    if (!out->value) {
        sqlite3_reset(st);
        return mr_errf(err, MR_ENOMEM, "mvcc: out of memory for a %zu-byte value", len);
    }
    if (len)
        memcpy(out->value, v, len);
    out->len = len;
    sqlite3_reset(st);
    return 0;
}
