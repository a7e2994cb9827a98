/* The durable Paxos log: one SQLite file (WAL, synchronous=FULL) holding the
 * acceptor state of one or many Paxos groups, with group commit, log
 * truncation behind snapshots and a CRC32C on every record.
 *
 * Durability contract (issue 3, "Durable state"): every write function below
 * only *stages* its change in an open SQLite transaction. Nothing is durable,
 * and nothing may be acknowledged to a peer, until ls_sync() returns 0; one
 * ls_sync() commits everything staged since the previous one (for any number
 * of groups) with a single WAL fsync. A crash loses exactly the writes staged
 * since the last successful ls_sync().
 *
 * Why synchronous=FULL: in WAL mode, synchronous=NORMAL does not fsync the WAL
 * at commit, only at checkpoints, so a commit survives a process crash but not
 * a power loss or kernel crash — an acceptor could then forget a promise it
 * already answered, which breaks Paxos. FULL fsyncs the WAL on every commit,
 * i.e. once per ls_sync(), which group commit amortizes over a batch.
 *
 * Checksums: SQLite checksums WAL frames (a torn WAL tail is ignored on
 * recovery) but not database pages, so a bit flipped at rest would be served
 * as data. Every record here carries a CRC32C over its key and all its
 * fields, checked on every read.
 *
 * An ls_store is used by one thread at a time. Reads see the handle's own
 * staged (unsynced) writes. All functions return 0 or an MR_E* code with a
 * message in `err` (which may be NULL). Corrupt records are never returned:
 * a record whose checksum fails gives MR_ECORRUPT. A full disk or quota gives
 * MR_EFULL; the failed batch is rolled back and the synced state is intact. */
#ifndef LS_H
#define LS_H

#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"

typedef struct ls_store ls_store;

/* Largest value of an entry, snapshot, config or metadata record. */
#define LS_MAX_VALUE (256u * 1024 * 1024)
/* Longest metadata key, in bytes. */
#define LS_MAX_KEYLEN 128
/* Slots, chosen points and ballot rounds are stored as SQLite integers,
 * so they must not exceed INT64_MAX. */
#define LS_MAX_SLOT ((uint64_t)INT64_MAX)

typedef struct ls_options {
    /* Upper bound on the database size in bytes (0: none). Past it, writes
     * fail with MR_EFULL as on a full disk. Rounded down to whole pages. */
    int64_t max_bytes;
} ls_options;

/* A ballot, ordered by (round, node). */
typedef struct ls_ballot {
    uint64_t round;
    uint64_t node;
} ls_ballot;

/* An accepted log entry. As input, `value` is borrowed for the call. As
 * output, who owns `value` is said by the function that filled it. */
typedef struct ls_entry {
    uint64_t slot;
    ls_ballot ballot;
    int64_t ts;    /* the timestamp the leader assigned (ns); opaque to the store */
    uint32_t kind; /* the entry's kind (no-op, data, config...); opaque to the store */
    const void *value;
    size_t len;
} ls_entry;

/* A configuration record: the membership in force from `slot` on. */
typedef struct ls_config {
    uint64_t slot;
    void *value;
    size_t len;
} ls_config;

/* A metadata record of a group's hard state, by key. */
typedef struct ls_meta {
    char *key;
    void *value;
    size_t len;
} ls_meta;

/* Everything persisted for one group, as loaded on restart. Owned by the
 * caller; release with ls_group_state_free(). */
typedef struct ls_group_state {
    uint64_t group;
    int has_promise;
    ls_ballot promised;
    uint64_t chosen; /* 0 when never set */
    int has_snapshot;
    uint64_t snap_slot; /* last slot included in the snapshot */
    void *snap_meta;    /* the snapshot's small metadata blob */
    size_t snap_meta_len;
    void *snap;
    size_t snap_len;
    ls_entry *entries; /* ascending slots (may start at or before snap_slot until a
                        * truncation); values owned by this struct */
    size_t n_entries;
    ls_config *configs; /* ascending slots */
    size_t n_configs;
    ls_meta *meta; /* ascending keys */
    size_t n_meta;
} ls_group_state;

/* ---- Opening and committing ---- */

/* Opens (creating if needed) the store at `path`. `opt` may be NULL. The
 * file is locked exclusively: a second open, by this or another process,
 * fails with MR_EUNAVAIL. On success *out is owned by the caller (ls_close). */
int ls_open(const char *path, const ls_options *opt, ls_store **out, mr_err *err);

/* Closes the store. Staged, unsynced writes are discarded (as in a crash).
 * NULL is a no-op. */
void ls_close(ls_store *s);

/* Group commit: makes every write staged since the last ls_sync() durable
 * with one fsync of the WAL. Returns 0 only when they are all on disk; a
 * no-op (no fsync) when nothing is staged. If a staged write had failed,
 * the whole batch was rolled back: ls_sync() then reports that failure
 * (e.g. MR_EFULL), and the next write starts a fresh batch. If the commit
 * itself fails for any reason but a full disk (an fsync or write error), the
 * batch's fate on disk is unknown: every later call on this handle fails with
 * MR_EIO until it is closed and reopened (WAL recovery decides). */
int ls_sync(ls_store *s, mr_err *err);

/* Discards every write staged since the last ls_sync(). */
void ls_rollback(ls_store *s);

/* Writes staged and not yet synced (for batching decisions and tests). */
uint64_t ls_pending(const ls_store *s);

/* ---- Staged writes (durable after the next ls_sync) ---- */

/* Hard state: the promised ballot of `group`. */
int ls_set_promise(ls_store *s, uint64_t group, ls_ballot promised, mr_err *err);

/* Hard state: a small metadata blob by key (e.g. lease vote, last timestamp).
 * `len` may be 0. */
int ls_put_meta(ls_store *s, uint64_t group, const char *key, const void *value, size_t len,
                mr_err *err);

/* Accepted entries. A slot already present is overwritten (a re-accept at a
 * higher ballot). All entries are validated before any is staged, so a
 * rejected call (MR_EINVAL) leaves the batch as it was. */
int ls_put_entry(ls_store *s, uint64_t group, const ls_entry *e, mr_err *err);
int ls_put_entries(ls_store *s, uint64_t group, const ls_entry *e, size_t n, mr_err *err);

/* The chosen point: every slot <= chosen is chosen. It never moves
 * backwards: a smaller value than the stored one is rejected (MR_EINVAL). */
int ls_set_chosen(ls_store *s, uint64_t group, uint64_t chosen, mr_err *err);

/* A configuration blob in force from `slot` on. */
int ls_put_config(ls_store *s, uint64_t group, uint64_t slot, const void *value, size_t len,
                  mr_err *err);

/* Stores a snapshot covering every slot <= last_slot, with a small metadata
 * blob (`meta`, e.g. the configuration and last timestamp) and the
 * application bytes, under one checksum. It replaces the group's snapshot;
 * one older than the stored one is rejected (MR_EINVAL), since the log
 * behind the stored one may already be truncated. Entries and the chosen
 * point are left alone: truncation is a separate, explicit step. */
int ls_install_snapshot(ls_store *s, uint64_t group, uint64_t last_slot, const void *meta,
                        size_t meta_len, const void *data, size_t len, mr_err *err);

/* Deletes entries with slot <= upto, which must be covered by the group's
 * snapshot (else MR_EINVAL: the log is the only copy of those slots).
 * Configurations superseded by one at or before `upto` are deleted too. */
int ls_truncate_prefix(ls_store *s, uint64_t group, uint64_t upto, mr_err *err);

/* Deletes everything stored for `group` (the replica left the group). */
int ls_drop_group(ls_store *s, uint64_t group, mr_err *err);

/* ---- Reads (verify checksums; see staged writes of this handle) ---- */

/* One entry. MR_ENOTFOUND when absent. On success out->value is malloc'd
 * and owned by the caller (free(out->value) via a cast). */
int ls_get_entry(ls_store *s, uint64_t group, uint64_t slot, ls_entry *out, mr_err *err);

/* Entries with from <= slot <= to, ascending, as one malloc'd array whose
 * values live in the same allocation: the caller frees *out with free().
 * *n may be 0. */
int ls_read_range(ls_store *s, uint64_t group, uint64_t from, uint64_t to, ls_entry **out,
                  size_t *n, mr_err *err);

/* Calls fn for each entry with from <= slot <= to, ascending. e->value is
 * borrowed: valid only during the call. fn returns 0 to go on, or non-zero
 * to stop; that value is then returned by ls_scan() (use a positive MR_E*
 * code or any nonzero int of yours). Do not write to the store from fn. */
typedef int (*ls_entry_fn)(void *arg, const ls_entry *e);
int ls_scan(ls_store *s, uint64_t group, uint64_t from, uint64_t to, ls_entry_fn fn, void *arg,
            mr_err *err);

/* A metadata blob. MR_ENOTFOUND when absent. *value is malloc'd (never NULL
 * on success, even for len 0) and owned by the caller. */
int ls_get_meta(ls_store *s, uint64_t group, const char *key, void **value, size_t *len,
                mr_err *err);

/* Loads everything persisted for `group` (restart recovery). A group never
 * written gives an empty state and 0. On success the caller owns *out's
 * contents (ls_group_state_free); on failure *out is left empty. */
int ls_load_group(ls_store *s, uint64_t group, ls_group_state *out, mr_err *err);
void ls_group_state_free(ls_group_state *st);

/* Every group id with anything stored, ascending as signed 64-bit integers
 * (the SQLite order). *groups is malloc'd, owned by the caller (free); it
 * may be NULL when *n is 0. */
int ls_list_groups(ls_store *s, uint64_t **groups, size_t *n, mr_err *err);

/* Runs SQLite's integrity check over the whole file and verifies every
 * record's checksum. MR_ECORRUPT with the first problem found. */
int ls_verify(ls_store *s, mr_err *err);

#endif
