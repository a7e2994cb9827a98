/* Internals shared by the files of the MVCC store (mv.c: open/apply/get, mv_scan.c, mv_gc.c,
 * mv_split.c, mv_snap.c). Not part of the interface: include mv.h instead. */
#ifndef MV_INT_H
#define MV_INT_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "tablet/mvcc/mv.h"

/* Cached prepared statements, by id (texts in mv.c). */
enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INSERT,     /* ?1 key, ?2 ts, ?3 val (NULL = tombstone); OR IGNORE */
    ST_OLD,        /* the version at (?1 key, ?2 ts): val IS NULL, length(val) */
    ST_UPDATE,     /* set val = ?3 at (?1, ?2) */
    ST_SAVE_STATE, /* applied, horizon, counters, GC cursor */
    ST_SAVE_RANGE, /* r_start, r_end */
    ST_GET,        /* newest (ts, val) of ?1 with ts <= ?2 */
    ST_SCAN_B,     /* key, ts, val for ?1 <= key < ?2, by key then ts descending */
    ST_SCAN_U,     /* the same with no upper bound */
    ST_RSCAN_B,    /* key descending, ts ascending (the primary key walked backwards) */
    ST_RSCAN_U,    /*   "  */
    ST_GC_REST,    /* the rest of one key: ts < ?2, ts descending */
    ST_GC_SCAN,    /* key, ts, tombstone?, size from ?1 on, in primary-key order */
    ST_DELETE,     /* one version by primary key */
    ST_DEL_BELOW,  /* versions with key < ?1 */
    ST_DEL_FROM,   /* versions with key >= ?1 */
    ST_DEL_ALL,    /* every version */
    ST_RECOUNT,    /* counters recomputed from the table */
    ST_SNAP_ALL,   /* every version, primary-key order */
    ST_COUNT
};

struct mv_store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[ST_COUNT];
    /* Mirror of the mv_meta row, authoritative because the file is held exclusively. Updated only
     * after the transaction that writes it has committed. */
    uint64_t applied;
    int64_t horizon;
    mv_size size;
    unsigned char *r_start, *r_end; /* tablet range; NULL when the length is 0 */
    size_t r_start_len, r_end_len;
    unsigned char *gc_key; /* GC resumes here (NULL: at the first key) */
    size_t gc_key_len;
    int gc_has_ts; /* 1: gc_key is half done; its versions with ts < gc_ts remain */
    int64_t gc_ts;
    /* gc_key's newest version <= the horizon is a tombstone at gc_pend_ts, to delete once the
     * rest of the key is gone. Not persisted: after a restart it simply waits for a later pass. */
    int gc_pend;
    int64_t gc_pend_ts;
};

/* The SQL text of statement `id` (tests check its query plan). */
const char *mv_sql_text(int id);

/* Maps a SQLite result to an MR_E* code and wraps SQLite's message with what we were doing. */
int mv_sqlerr(mv_store *s, int rc, mr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prefixes err's message with context (when err is not NULL) and returns `code`. */
int mv_wrap(mr_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Transaction helpers. mv_rollback() is safe when SQLite already rolled back. */
int mv_begin(mv_store *s, mr_err *err);
int mv_commit(mv_store *s, mr_err *err);
void mv_rollback(mv_store *s);

/* Binds a byte string as a BLOB (never NULL, even when empty). Borrowed until the reset. */
int mv_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n);

/* Byte order of keys: memcmp, then the shorter first (SQLite's BLOB order). */
int mv_keycmp(const void *a, size_t alen, const void *b, size_t blen);

/* MR_EINVAL unless key is a valid key (non-NULL, 1..MV_MAX_KEY bytes). `what` names it. */
int mv_check_key(const void *key, size_t len, const char *what, mr_err *err);

/* 1 when key lies in the tablet's range. */
int mv_in_range(const mv_store *s, const void *key, size_t len);

/* MR_ESTALE when a read at ts is below the horizon; MR_EINVAL for ts < 0. */
int mv_check_read_ts(const mv_store *s, int64_t ts, mr_err *err);

/* Writes the state row (applied, horizon, counters, GC cursor) inside an open transaction. */
int mv_save_state(mv_store *s, uint64_t applied, int64_t horizon, const mv_size *size,
                  const void *gc_key, size_t gc_key_len, int gc_has_ts, int64_t gc_ts, mr_err *err);

/* Recomputes the counters from the table (after bulk deletes and loads). */
int mv_recount(mv_store *s, mv_size *out, mr_err *err);

/* Sets the in-memory GC cursor (copies key). 0 or MR_ENOMEM. */
int mv_set_gc_cursor(mv_store *s, const void *key, size_t len, int has_ts, int64_t ts);

/* In one transaction: deletes the versions outside [start, end), saves that range and records
 * `slot` as the applied slot (no slot check: mv_set_range and mv_split do theirs). */
int mv_range_txn(mv_store *s, uint64_t slot, const void *start, size_t start_len, const void *end,
                 size_t end_len, mr_err *err);

/* Replaces the in-memory range (copies). 0 or MR_ENOMEM. */
int mv_set_range_mem(mv_store *s, const void *start, size_t start_len, const void *end,
                     size_t end_len);

/* CRC32C: start with 0, feed pieces in order (mv_crc.c). */
uint32_t mv_crc32c(uint32_t crc, const void *p, size_t n);

/* The checksum stored with each version: over its timestamp, kind, key and value. */
uint32_t mv_version_crc(const void *key, size_t klen, int64_t ts, int tomb, const void *v,
                        size_t vlen);

/* MR_ECORRUPT unless the version read matches its stored checksum. */
int mv_check_crc(mv_store *s, const void *key, size_t klen, int64_t ts, int tomb, const void *v,
                 size_t vlen, int64_t crc, mr_err *err);

/* A growable byte buffer for keys copied out of statements. */
typedef struct mv_buf {
    unsigned char *p;
    size_t len, cap;
} mv_buf;
int mv_buf_set(mv_buf *b, const void *p, size_t n);
/* b = b || p. 0 or MR_ENOMEM. */
int mv_buf_append(mv_buf *b, const void *p, size_t n);
/* b = p || 0x00: the smallest key greater than p. 0 or MR_ENOMEM. */
int mv_buf_succ(mv_buf *b, const void *p, size_t n);
void mv_buf_free(mv_buf *b);

#endif
