/* tests/sql/fake_meridian.h: a TEST DOUBLE of libmeridian, in memory.
 *
 * fake_meridian.c implements every function of include/meridian.h in-process,
 * over one sorted map of byte-string keys with all their versions, shared by
 * every connection of the process (as one cluster would be). Unit tests of the
 * SQL engine link it instead of meridian_static: no nodes, no network, no
 * clocks to wait for. It is honest about what it is:
 *  - read-write transactions buffer their writes, read them back, merge them
 *    into scans, and commit them atomically at a new, increasing timestamp;
 *    there are no locks and no conflict checks (one session at a time:
 *    serializability is not modelled, nothing is ever wounded unless a hook
 *    says so);
 *  - read-only transactions read at one timestamp, fixed by their first read
 *    (strong and bounded staleness: the latest commit; exact staleness: now -
 *    ns; at-timestamp: that one), over every version ever written (no garbage
 *    collection, so never MERIDIAN_STALE);
 *  - meridian_run retries MERIDIAN_ABORTED and MERIDIAN_UNAVAILABLE until its
 *    deadline, sleeping 1 ms between attempts;
 *  - keys: 1..MERIDIAN_KEY_MAX bytes of anything but a first byte 0x00 (the
 *    system's keys); values: up to MERIDIAN_VALUE_MAX bytes of anything. (The
 *    real library still requires UTF-8 without NUL until keys become byte
 *    strings on the wire.)
 *  - values read (and rows handed to scan callbacks) carry a NUL after their
 *    bytes, as the library's do;
 *  - meridian_set_commit_before: a commit whose new timestamp is at or past
 *    the deadline fails MERIDIAN_ABORTED ("commit deadline passed"), nothing
 *    applied (the timestamp is used up, as a leader's would be);
 *    meridian_commit_wait_ns is always 0 (no clock uncertainty to wait out);
 *  - meridian_open needs opts->addrs non-empty and connects to nothing.
 * Not thread-safe: one thread uses the fake at a time.
 *
 * The hooks below let tests make the store fail the way a cluster can, and
 * count what the engine asked of it. */
#ifndef TESTS_SQL_FAKE_MERIDIAN_H
#define TESTS_SQL_FAKE_MERIDIAN_H

#include <stdbool.h>
#include <stdint.h>

#include "meridian.h"

/* Empties the store, clears every hook and counter. Connections stay open
 * (their transactions too; a transaction begun before a reset reads the new,
 * empty store). */
void fake_meridian_reset(void);

/* The next `times` commits of read-write transactions that read or wrote
 * something (an empty one never reaches a node) fail with code:
 * MERIDIAN_ABORTED or MERIDIAN_UNAVAILABLE (nothing applied), or
 * MERIDIAN_UNKNOWN (applied when `applied`, as when the commit happened but
 * its answer was lost; else nothing applied). Other codes are taken as given,
 * nothing applied. times 0 clears the hook. */
void fake_meridian_fail_commit(int code, int times, bool applied);

/* The next `times` reads (meridian_get/_get_version, meridian_scan, in any
 * transaction) fail with code before reading anything; in a read-write
 * transaction the failure dooms it, as the library does. times 0 clears. */
void fake_meridian_fail_read(int code, int times);

typedef struct fake_meridian_stats {
    uint64_t gets;          /* meridian_get/_get_version calls that reached the store */
    uint64_t scans;         /* meridian_scan calls that reached the store */
    uint64_t rows;          /* rows returned: gets found plus rows handed to scan callbacks */
    uint64_t puts, deletes; /* buffered writes */
    uint64_t begins, begins_ro;
    uint64_t commits;         /* read-write commits that applied writes */
    uint64_t failed_commits;  /* commits failed by the hook */
    uint64_t deadline_aborts; /* commits aborted for their commit deadline */
    uint64_t rollbacks;
    uint64_t run_attempts; /* meridian_run callback invocations */
    uint64_t open_txns;    /* transactions begun and not yet committed or rolled back */
} fake_meridian_stats;

/* The counters since the last reset. */
fake_meridian_stats fake_meridian_stats_get(void);
/* Zeroes the counters (open_txns excepted), leaving store and hooks alone. */
void fake_meridian_stats_reset(void);

/* The number of keys whose latest version is live (not deleted). */
size_t fake_meridian_live_keys(void);
/* The newest commit timestamp handed out (0 before the first). */
int64_t fake_meridian_last_ts(void);

#endif
