/* Availability of a recorded run, from the history's own times (jepsen/history.h: `time`,
 * monotonic ns): how much of the run made progress, how long it stalled, and how the faults
 * the nemesis recorded changed that. Checkers judge whether a history is correct; this says
 * whether the system was usable while it was made (issue 19: goodput under contention and
 * faults).
 *
 * Definitions (a "commit" is an ok completion of a client operation; fail and info
 * completions are not progress):
 *  - the span runs from the first client invoke (t0) to the last client event (t_end);
 *  - windows are the whole seconds [t0 + i s, t0 + (i+1) s) inside the span (a trailing part
 *    of a second is left out); a window is *live* when a commit completed in it;
 *  - a gap is the time between two consecutive commits (t0 and t_end count as commits for
 *    the ends); the longest gap is the run's worst stall;
 *  - a fault is a nemesis "start-<kind>" operation; it is active until the next
 *    "stop-<kind>", else the next "heal-all", else t_end. A window that overlaps an active
 *    fault (by any positive length) is *faulty*, every other window *quiet*;
 *  - per fault: the time from its start to the first commit at or after it, and the longest
 *    gap that overlaps its active interval (a stall it caused, or one it fell into); per kind,
 *    the worst and the mean of those, and the commit rate in the windows that kind touched.
 *
 * Per group (jp_avail_measure_groups; issue 19's "short blips"): the caller names the data
 * groups each client operation touched (a mask, bit g for group g), and a fault's start
 * operation names the groups it hit in its value ("affected_groups": [g, ...]: the harness puts
 * there the groups whose leader the fault killed, paused or cut from a majority). A group's
 * *commits* are the ok completions of operations that touched it; its gaps are measured
 * between them as above, except that its last one ends where the group operations end (the
 * last event of any operation that touched a group, or t_end while one is still open), not at
 * t_end: what the clients do after it (the set workload's final reads) is no group's stall. A
 * fault's *aftermath* runs from its injection (the start value's
 * "inject_ns": the harness records the start once the fault is in, and cutting a network takes
 * a moment; else the start) to the next fault's start (else t_end), so what its heal disturbs
 * counts too. Groups the start operation names in
 * "unavailable_groups" (left without a majority of their replicas: down until the heal, by
 * design) count in neither figure. Per fault:
 *  - blip: the longest gap of an affected group inside the aftermath (cut at both ends: a
 *    group still stalled by an earlier fault counts only from this one's injection), and
 *    *recovery*, the time from the injection to that gap's end (when the group committed
 *    again);
 *  - untouched gap: the longest gap of any other group inside the aftermath (cut at both
 *    ends; a fault that hit no group, a split or a clock offset, has only untouched
 *    groups).
 *
 * Operations without a time (time < 0) are ignored; a history whose client operations have no
 * times cannot be measured (MR_EINVAL). */
#ifndef JP_AVAIL_H
#define JP_AVAIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/mr_err.h"
#include "jepsen/history.h"

#define JP_AVAIL_WINDOW_NS  1000000000LL
#define JP_AVAIL_MAX_GROUPS 64

/* The groups (bit g: group g) the client operation whose invoke is `invoke` touched; 0 when
 * unknown (it counts for no group). */
typedef uint64_t (*jp_avail_groups_fn)(const jp_op *invoke, void *ud);

/* One fault as the nemesis recorded it. */
typedef struct jp_avail_fault {
    char kind[32];       /* "kill", "partition", ... (the f after "start-") */
    size_t index;        /* the start operation's index */
    int64_t start, stop; /* ns; stop is the matching stop-<kind>, heal-all or t_end */
    int64_t first_ok;    /* ns from start to the first commit at or after it; -1: none */
    int64_t max_gap;     /* the longest gap overlapping [start, stop] (ns) */
    int64_t gap_from;    /* that gap's ends (ns, history time) */
    int64_t gap_to;
    /* per group (jp_avail_measure_groups only; else affected 0 and the rest -1) */
    int64_t inject;        /* when injecting began: the start value's "inject_ns" (harness
                              time, at or before start), else start; the per-group figures
                              count from it */
    uint64_t affected;     /* the groups the start operation named */
    uint64_t unavailable;  /* groups it left without a majority ("unavailable_groups"): down
                              until the heal, in neither figure below */
    int64_t until;         /* the aftermath's end (ns, history time) */
    int blip_group;        /* the affected group with the longest gap; -1: none */
    int64_t blip;          /* its longest gap overlapping [start, until] (ns) */
    int64_t recovered;     /* ns from start to that gap's end; -1: never (the run ended) */
    int untouched_group;   /* the unaffected group with the longest gap; -1: none */
    int64_t untouched_gap; /* its longest gap overlapping [start, until] (ns) */
} jp_avail_fault;

/* Per fault kind, in order of first appearance. */
typedef struct jp_avail_kind {
    char kind[32];
    size_t faults;
    int64_t max_first_ok; /* worst time to the first commit after a start (-1: one never
                             saw a commit) */
    int64_t max_gap;      /* worst gap overlapping one of its faults */
    int64_t mean_gap;     /* mean over its faults of their max_gap */
    size_t windows;       /* windows it overlapped */
    size_t live_windows;  /* of those, with a commit */
    size_t commits;       /* commits in those windows */
    double commits_per_s; /* commits / windows (0 when no window) */
    /* per group (-1 when not measured or no fault of the kind hit / spared a group) */
    int64_t max_blip, mean_blip, max_recovered; /* over its faults that hit a group;
                                                   max_recovered INT64_MAX: a group it hit
                                                   never committed again */
    int64_t max_untouched_gap;                  /* over its faults */
} jp_avail_kind;

typedef struct jp_avail {
    int64_t t0, t_end; /* ns, history time */
    size_t commits;    /* ok completions in the whole span */
    size_t windows, live_windows;
    size_t *per_window;                    /* commits in each window (windows entries); owned */
    unsigned char *faulty;                 /* 1 when window i overlaps an active fault; owned */
    int64_t longest_gap, gap_from, gap_to; /* ns */
    size_t faulty_windows, quiet_windows;
    size_t faulty_commits, quiet_commits; /* commits inside faulty / quiet windows */
    double faulty_per_s, quiet_per_s;     /* commits per second in them (0 when none) */
    jp_avail_fault *faults;
    size_t nfaults;
    jp_avail_kind *kinds;
    size_t nkinds;
    uint64_t groups; /* groups some operation touched (jp_avail_measure_groups), else 0 */
} jp_avail;

/* Measures h into a (which the caller frees with jp_avail_free, also after an error).
 * MR_EINVAL when no client operation has a time; MR_ENOMEM. */
int jp_avail_measure(const jp_history *h, jp_avail *a, mr_err *err);
/* The same, plus the per-group figures (groups_of names each operation's groups). */
int jp_avail_measure_groups(const jp_history *h, jp_avail_groups_fn groups_of, void *ud,
                            jp_avail *a, mr_err *err);
void jp_avail_free(jp_avail *a);

/* The kind's entry, or NULL. */
const jp_avail_kind *jp_avail_kind_get(const jp_avail *a, const char *kind);

/* {"windows", "live_windows", "live_fraction", "commits", "longest_gap_s", "longest_gap_at_s":
 *  [from, to], "faulty": {"windows", "commits", "commits_per_s"}, "quiet": {...},
 *  "per_kind": {kind: {"faults", "max_first_commit_s", "max_gap_s", "mean_gap_s", "windows",
 *  "live_windows", "commits_per_s"}}, "faults": [{"kind", "index", "start_s", "stop_s",
 *  "first_commit_s", "max_gap_s", "gap_at_s"}], "per_window": [n, ...]}; times in seconds
 * since t0 except "*_at_s" and "start_s"/"stop_s", which are history seconds (the history's
 * own time axis, as latency.dat uses). With per-group figures also "groups": [g, ...], per
 * kind "max_blip_s", "mean_blip_s", "max_recovery_s", "max_untouched_gap_s" (null when no
 * fault of the kind hit, or spared, a group), and per fault "affected_groups",
 * "unavailable_groups", "until_s",
 * "blip_group", "blip_s", "recovery_s", "untouched_group", "untouched_gap_s" (null when none).
 * Caller owns the reference; NULL on out of memory. */
json_t *jp_avail_to_json(const jp_avail *a);

/* The summary's lines: two starting "availability:" (live windows and the longest gap; commit
 * rates in faulty and quiet windows), then one "  fault <kind>:" line per kind, and with
 * per-group figures one "  blips <kind>:" line per kind. long-suite.sh reads them: keep their
 * shape. */
void jp_avail_print(const jp_avail *a, FILE *f);

#endif
