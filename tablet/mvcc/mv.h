/* The MVCC store of one tablet replica: every version of every key, `(key, commit timestamp) ->
 * value | tombstone`, in one SQLite file (WAL). The replica applies its chosen Paxos log here,
 * serves reads at a timestamp (Spanner OSDI'12 section 4.1.3: a replica serves a read at t iff
 * t <= t_safe, which the caller checks), garbage-collects versions below a horizon, proposes
 * split keys that do not cut a directory, and streams snapshots for Paxos catch-up.
 *
 * Keys and values are opaque byte strings; keys order as bytes (memcmp, then shorter first),
 * which is how SQLite compares BLOBs. Timestamps are int64 nanoseconds (TrueTime commit
 * timestamps). A key is 1..MV_MAX_KEY bytes (the empty key is reserved as "unbounded" in range
 * bounds); a value is 0..MV_MAX_VALUE bytes.
 *
 * Durability: the Paxos log (tablet/logstore, synchronous=FULL) is the source of truth and this
 * store is a cache of its applied prefix, so this file runs with synchronous=NORMAL; see mv.c
 * for why that is safe and what the caller must do on recovery (replay every slot after
 * mv_applied_slot(), or install the log's snapshot first when the log no longer reaches back).
 *
 * Threads: an mv_store is used by one thread at a time, and the file is held exclusively by one
 * handle (a second open fails with MR_EUNAVAIL), so the horizon and counters cached in the
 * handle are authoritative.
 *
 * Errors: every function returns 0 or an MR_E* code with a message in `err` (which may be NULL).
 * Bad arguments give MR_EINVAL and change nothing; a full disk or quota gives MR_EFULL, a damaged
 * file MR_ECORRUPT; a failed write rolls back entirely. Every version carries a CRC32C over its
 * timestamp, kind, key and value (SQLite pages have none), checked whenever a version decides a
 * read, a scan or a snapshot: a damaged version gives MR_ECORRUPT, never a wrong answer. */
#ifndef MV_H
#define MV_H

#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"

typedef struct mv_store mv_store;

/* Longest key (Cloud Spanner allows 8 KiB of key) and largest value. */
#define MV_MAX_KEY   8192
#define MV_MAX_VALUE (16u * 1024 * 1024)

/* Default retention behind the newest data; the caller turns it into a horizon for mv_gc(). */
#define MV_DEFAULT_RETENTION_NS (3600LL * 1000000000LL)

/* Commit timestamps are >= MV_MIN_TS; read timestamps are >= 0 (INT64_MAX reads the latest). */
#define MV_MIN_TS 1
#define MV_TS_MAX INT64_MAX

typedef struct mv_options {
    /* Upper bound on the file's size in bytes (0: none); past it writes fail with MR_EFULL, as
     * on a full disk. Rounded down to whole pages. */
    int64_t max_bytes;
    /* SQLite page cache of this store in bytes (0: MV_DEFAULT_CACHE). Random applies over a
     * tablet larger than the cache read pages back from the OS on every commit. */
    int64_t cache_bytes;
} mv_options;

#define MV_DEFAULT_CACHE (32LL * 1024 * 1024)

/* ---- Opening ---- */

/* Opens (creating if needed) the store at `path`. `opt` may be NULL. On success *out is owned by
 * the caller (mv_close). A file that is not a Meridian MVCC store gives MR_ECORRUPT. */
int mv_open(const char *path, const mv_options *opt, mv_store **out, mr_err *err);

/* Closes the store. NULL is a no-op. */
void mv_close(mv_store *s);

/* Makes everything applied so far durable across power loss (a WAL checkpoint with fsync).
 * Needed only before the Paxos log is truncated without a snapshot that covers this store. */
int mv_sync(mv_store *s, mr_err *err);

/* ---- Applying the Paxos log ---- */

typedef enum { MV_PUT = 1, MV_DELETE = 2 } mv_op;

/* One write of a batch. Borrowed for the call. `value` is ignored for MV_DELETE and may be NULL
 * when len is 0. */
typedef struct mv_write {
    mv_op op;
    const void *key;
    size_t key_len;
    const void *value;
    size_t len;
} mv_write;

/* Applies the writes of the log entry in `slot` at `commit_ts` in one SQLite transaction that
 * also records `slot` as applied, so replaying a log after a crash is idempotent. A slot <= the
 * recorded one is a no-op returning MR_EEXIST ("slot S already applied"): replay treats that as
 * done. Slots may skip (no-op entries need no apply); n may be 0 (only the slot is recorded;
 * commit_ts is then ignored). A key written twice in a batch keeps the last write. A delete
 * writes a tombstone. Every write is validated first: NULL/empty/oversized keys, oversized
 * values, keys outside the tablet's range give MR_EINVAL and apply nothing. A commit_ts below
 * the GC horizon gives MR_ESTALE (its versions could be shadowed by collected tombstones): the
 * caller must keep the horizon below every timestamp it may still apply (prepared 2PC
 * transactions included). */
int mv_apply(mv_store *s, uint64_t slot, int64_t commit_ts, const mv_write *w, size_t n,
             mr_err *err);

/* One transaction of a log entry: its writes at its own commit timestamp. Borrowed. */
typedef struct mv_txn {
    int64_t commit_ts;
    const mv_write *w;
    size_t n;
} mv_txn;

/* The same for a slot that carries several transactions (a Paxos batch of proposals, or 2PC
 * commit records each at the coordinator's timestamp): all of them and the slot in one SQLite
 * transaction, in order (a later write of the same key at the same timestamp wins). Every
 * transaction is checked before anything is written; errors name the transaction. */
int mv_apply_txns(mv_store *s, uint64_t slot, const mv_txn *t, size_t nt, mr_err *err);

/* The checks mv_apply_txns makes of one transaction's input: keys, ops, value sizes, the commit
 * timestamp's floor and the tablet's range. They depend on nothing but the transaction and the
 * range (which moves only through the log), so every replica reaches the same verdict: a caller
 * that must not lose a whole slot to one bad transaction checks each with this first and leaves
 * out the ones that fail, on every replica alike. Not checked: the GC horizon, which is this
 * replica's own (MR_ESTALE from mv_apply_txns means the caller let GC pass a timestamp it still
 * had to apply). 0 or MR_EINVAL. */
int mv_check_txn(const mv_store *s, const mv_txn *t, mr_err *err);

/* The last applied slot (0 for a new store). */
uint64_t mv_applied_slot(const mv_store *s);

/* ---- Tablet range ---- */

/* System keys: keys whose first byte is 0x00 belong to the tablet itself (its host keeps
 * transaction records there), not to its key range: they are always in range, range cuts keep
 * them, splits do not copy them, and split keys are chosen among the other keys. */

/* The tablet's key range [start, end); start_len 0 = from the first key, end_len 0 = unbounded.
 * A new store covers everything. Applied like a log entry (a split is a Paxos-logged event):
 * idempotent by slot (MR_EEXIST as mv_apply), and in the same transaction it deletes every
 * version outside the new range. Reads and writes outside the range give MR_EINVAL, so a routing
 * error never reads as "not found". */
int mv_set_range(mv_store *s, uint64_t slot, const void *start, size_t start_len, const void *end,
                 size_t end_len, mr_err *err);

/* A tablet split, at the end of the log entry in `slot` (which may be the slot just applied:
 * the split takes effect after the entry's writes). First writes a new store file at
 * `child_path` holding every version at and above `key` (with this store's horizon; range
 * [key, this store's end); applied slot 0, since the child starts a log of its own),
 * durably, replacing whatever was there; then narrows this store to [start, key), deleting
 * those versions, and makes that durable too (mv_sync), so a child that starts taking writes
 * never sees its parent forget the cut. `key` must lie strictly inside the range (MR_EINVAL).
 * Idempotent: when the range already ends at `key` (a replayed split), nothing is done and
 * MR_EEXIST is returned; a slot below the applied one gives MR_EEXIST too. A crash between
 * the two steps leaves the parent whole, and the split is simply done again. The copy is built
 * in memory: splits keep tablets small. */
int mv_split(mv_store *s, uint64_t slot, const char *child_path, const void *key, size_t key_len,
             mr_err *err);

/* The current range. *start and *end are malloc'd copies owned by the caller (free); either may
 * be NULL when its length is 0. */
int mv_get_range(mv_store *s, void **start, size_t *start_len, void **end, size_t *end_len,
                 mr_err *err);

/* ---- Reads at a timestamp ---- */

/* A version as read. From mv_get: `value` is malloc'd and owned by the caller (free; never NULL
 * on success, even for a 0-byte value). From a scan callback: key and value (never NULL) are
 * borrowed for the call only. */
typedef struct mv_version {
    const void *key;
    size_t key_len;
    void *value;
    size_t len;
    int64_t ts;  /* the version's commit timestamp */
    int deleted; /* mv_get only: MR_ENOTFOUND because of a tombstone at `ts` */
} mv_version;

/* The newest version of `key` with commit ts <= `ts`. 0 with out->value set; MR_ENOTFOUND when
 * there is none or it is a tombstone (then out->deleted = 1 and out->ts is the tombstone's
 * timestamp; otherwise out->ts = 0); MR_ESTALE when ts is below the GC horizon ("read at T is
 * below the version horizon H"). out->key is left NULL. */
int mv_get(mv_store *s, const void *key, size_t key_len, int64_t ts, mv_version *out, mr_err *err);

/* Called once per visible key, in key order. Return 0 to go on, nonzero to stop: that value is
 * then returned by mv_scan (use an MR_E* code or any int of yours). Do not call into the store
 * from the callback. */
typedef int (*mv_scan_fn)(void *arg, const mv_version *v);

typedef struct mv_scan_opts {
    const void *start; /* inclusive; NULL/0 = from the range's start */
    size_t start_len;
    const void *end; /* exclusive; NULL/0 = unbounded (up to the range's end) */
    size_t end_len;
    int64_t ts;      /* read timestamp (>= the horizon) */
    uint64_t limit;  /* at most this many keys (0 = no limit) */
    int reverse;     /* descending key order (the limit then keeps the largest keys) */
    int64_t *newest; /* optional out, raised (never lowered) to the largest ts of the versions
                      * that decided a key, values and tombstones alike: the newest write the
                      * answer depends on, so a reader knows which commit it must not outrun */
} mv_scan_opts;

/* For each key in [start, end) its newest version with ts <= opts->ts, skipping keys whose
 * newest such version is a tombstone. One SQL statement walks the primary key in order; in a
 * forward scan, keys with many versions are skipped past with a primary-key seek instead of
 * stepping every version (a reverse scan steps them all). *count (may be NULL) gets the number
 * of keys delivered. Bounds outside the tablet's range give MR_EINVAL. */
int mv_scan(mv_store *s, const mv_scan_opts *opts, mv_scan_fn fn, void *arg, uint64_t *count,
            mr_err *err);

/* ---- Garbage collection ---- */

typedef struct mv_gc_result {
    uint64_t examined; /* versions looked at */
    uint64_t deleted;  /* versions removed */
    uint64_t bytes;    /* their size, as counted by mv_size_estimate */
    int pass_done;     /* this call reached the end of the keys (the next call starts over) */
} mv_gc_result;

/* Raises the version horizon to `horizon` (never lowers it: a smaller value keeps the stored
 * one) and removes versions no read at or above it can need: per key, every version older than
 * the newest one <= horizon, and that one too when it is a tombstone. Looks at no more than
 * `max_rows` versions per call (0 = no bound) and resumes where the previous call stopped, so a
 * tablet can collect a little between requests. Afterwards reads below the horizon fail with
 * MR_ESTALE. `res` may be NULL. */
int mv_gc(mv_store *s, int64_t horizon, uint64_t max_rows, mv_gc_result *res, mr_err *err);

/* The current horizon (0 when never collected). */
int64_t mv_horizon(const mv_store *s);

/* The largest commit timestamp the store holds, or its horizon if that is larger (0 for an
 * empty store): a restarted or reloaded replica raises its group's timestamp floor to it
 * (px_node_raise_ts_floor), since a participant's writes carry the coordinator's timestamp,
 * not their slot's. Walks every version (no index on ts): for start-up and snapshot loads. */
int mv_max_ts(mv_store *s, int64_t *out, mr_err *err);

/* ---- Size and split ---- */

typedef struct mv_size {
    uint64_t versions;   /* stored versions, tombstones included */
    uint64_t tombstones; /* of which tombstones */
    uint64_t bytes;      /* sum over versions of key + value + MV_VERSION_OVERHEAD */
} mv_size;

/* Bytes charged per version for its timestamp and b-tree cell. */
#define MV_VERSION_OVERHEAD 16

/* Counters maintained by every write, so this costs nothing. */
void mv_size_estimate(const mv_store *s, mv_size *out);

/* The file's pages as SQLite sees them (WAL included): freed pages stay in the file on its
 * free list and are reused by later writes, so pages - free_pages is the space in use. */
typedef struct mv_page_stats {
    int64_t pages, free_pages, page_size;
} mv_page_stats;

int mv_pages(mv_store *s, mv_page_stats *out, mr_err *err);

/* The same without the system keys (the range's own data, what a split divides): the
 * estimate less a count over the system keys, which walks them (one indexed range). */
int mv_size_data(mv_store *s, mv_size *out, mr_err *err);

/* The length of the directory prefix of `key` (0 < result <= key_len), e.g. the encoded table
 * id and root-row primary key. Keys sharing it form one directory. */
typedef size_t (*mv_prefix_len_fn)(void *arg, const void *key, size_t key_len);

typedef struct mv_split_opts {
    int64_t ts;              /* data visible at this timestamp is balanced (>= the horizon) */
    mv_prefix_len_fn prefix; /* NULL: every key is its own directory */
    void *prefix_arg;        /* passed to prefix */
    uint64_t max_dir_bytes;  /* a directory with more live bytes may be cut (0: never cut) */
} mv_split_opts;

/* Proposes a split key near the middle of the live data at opts->ts (key + value bytes of each
 * visible version): the start of a directory, so no directory has keys on both sides, chosen as
 * the directory boundary nearest the middle. Only when the directory holding the middle has more
 * than max_dir_bytes may the split fall between two of its keys. MR_ENOTFOUND when no split
 * leaves data on both sides (e.g. one small directory). *key is malloc'd, owned by the caller.
 * Two ordered passes over the visible keys: run it rarely (when the size estimate says so). */
int mv_split_key(mv_store *s, const mv_split_opts *opts, void **key, size_t *key_len, mr_err *err);

/* Checks the whole file: SQLite's integrity check, then the size counters against a recount.
 * MR_ECORRUPT with the first problem found (rebuild the replica from a snapshot). Reads every
 * page: for tools and tests, not the request path. */
int mv_verify(mv_store *s, mr_err *err);

/* ---- Snapshots for Paxos catch-up ---- */

/* Receives the snapshot in pieces, in order; `buf` is borrowed for the call. Nonzero stops the
 * snapshot and is returned by mv_snapshot_write. Do not call into the store from the sink. */
typedef int (*mv_sink_fn)(void *arg, const void *buf, size_t len);

/* Snapshot every stored version. */
#define MV_SNAP_ALL INT64_MIN

/* Streams the store as of now: its applied slot, range, horizon and versions, in a compact
 * self-describing format ending in a CRC32C (format in mv_snap.c). With `from_ts` =
 * MV_SNAP_ALL, every stored version; otherwise (from_ts >= the horizon) only versions a read at
 * or after from_ts can need, and the snapshot's horizon is from_ts. */
int mv_snapshot_write(mv_store *s, int64_t from_ts, mv_sink_fn sink, void *arg, mr_err *err);

/* Every version at and above `lo` (system keys left out), as a store whose range is [lo,
 * this store's end): what a split moves (mv_split). */
int mv_snapshot_from_key(mv_store *s, const void *lo, size_t lo_len, mv_sink_fn sink, void *arg,
                         mr_err *err);

/* Either of them into one malloc'd buffer (*out, owned by the caller; *len bytes): from a
 * key when lo_len > 0, else as mv_snapshot_write at from_ts. */
int mv_snapshot_mem(mv_store *s, int64_t from_ts, const void *lo, size_t lo_len, void **out,
                    size_t *len, mr_err *err);

/* Supplies up to `cap` bytes into buf; returns the count (0 = end of input) or -1 on error. */
typedef long (*mv_source_fn)(void *arg, void *buf, size_t cap);

/* Replaces the store's whole content (versions, applied slot, range, horizon) with a snapshot,
 * atomically: truncated, corrupt or malformed input gives MR_ECORRUPT and leaves the store as
 * it was. */
int mv_snapshot_load(mv_store *s, const void *buf, size_t len, mr_err *err);
int mv_snapshot_load_stream(mv_store *s, mv_source_fn src, void *arg, mr_err *err);

#endif
