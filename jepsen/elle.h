/* Elle-style checker for list-append histories (Kingsbury & Alvaro, "Elle: Inferring
 * Isolation Anomalies from Experimental Observations", VLDB 2020), judged against strict
 * serializability.
 *
 * Transactions are lists of micro-ops on keys whose values are lists: ["append", K, V] adds V
 * to the end of K's list, ["r", K, L] reads it (L is null at invocation, the list at ok).
 * Every (K, V) is appended at most once, so a read reveals which writes precede which: the
 * longest read of K gives K's version order, and every other read must be a prefix of it.
 * From version orders the checker infers Adya's dependencies (Adya, "Weak Consistency",
 * MIT PhD thesis, 1999): ww (writer of a version -> writer of the next), wr (writer of the
 * last element read -> reader), rw (reader -> writer of the next version it did not see; an
 * append no read shows comes after every observed element, as in Elle); it
 * adds process order and real-time order (a transaction that completed before another was
 * invoked precedes it), and searches the strongly connected components for the shortest
 * cycle of each class:
 *   G0             ww edges only (dirty write)
 *   G1c            ww and wr edges, at least one wr (circular information flow)
 *   G-single       exactly one rw edge (read skew, single anti-dependency cycle)
 *   G-nonadjacent  two or more rw edges, no two adjacent
 *   G2-item        two or more rw edges, some adjacent (write skew and the like)
 * A cycle that needs process-order edges is named with "-process", one that needs real-time
 * edges with "-realtime" (e.g. "G-single-realtime" is the classic stale read). Non-cycle
 * anomalies: G1a (aborted read), G1b (intermediate read), internal (a transaction's read
 * disagrees with its own earlier reads and appends), dirty-update (a committed append lands on
 * top of an aborted one), lost-update (two committed transactions read the same version of a
 * key and both append to it), duplicate-elements, incompatible-order (two reads of a key
 * neither of which is a prefix of the other), garbage-read (a read of a value nobody
 * appended), future-read (a transaction reads a value it appends only later). Strict
 * serializability forbids all of them. */
#ifndef JP_ELLE_H
#define JP_ELLE_H

#include "common/mr_err.h"
#include "jepsen/history.h"
#include "jepsen/result.h"

typedef struct jp_elle_opts {
    /* Edge relaxations allowed per cycle-class search in one component; 0: 2,000,000. A
     * component always yields at least one named cycle regardless. */
    size_t search_budget;
} jp_elle_opts;

/* Checks a list-append history (every client op has f "txn"). Fills r (initialized here;
 * the caller frees it with jp_result_free). Returns 0, or MR_EINVAL with a line-numbered
 * message for a malformed transaction or a value appended twice. */
int jp_check_list_append(const jp_history *h, const jp_elle_opts *opts, jp_result *r, mr_err *err);

#endif
