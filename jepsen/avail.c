/* Availability measured from a history's times (see avail.h). */
#include "jepsen/avail.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static const jp_op *timed_client(const jp_history *h, size_t i)
{
    const jp_op *op = &h->ops[i];
    return op->process != JP_NEMESIS && op->time >= 0 ? op : NULL;
}

/* Where a fault that started at op i ends: the next stop-<kind>, else heal-all, else t_end. */
static int64_t fault_stop(const jp_history *h, size_t i, const char *kind, int64_t t_end)
{
    for (size_t k = i + 1; k < h->n; k++) {
        const jp_op *op = &h->ops[k];
        if (op->process != JP_NEMESIS || op->time < 0)
            continue;
        if (strcmp(op->f, "heal-all") == 0 ||
            (strncmp(op->f, "stop-", 5) == 0 && strcmp(op->f + 5, kind) == 0))
            return op->time;
    }
    return t_end;
}

/* Window i overlaps [from, to) by a positive length (a fault of no length counts for the
 * window it falls in). */
static void mark_windows(const jp_avail *a, int64_t from, int64_t to, unsigned char *mark)
{
    if (to <= from)
        to = from + 1;
    for (size_t w = 0; w < a->windows; w++) {
        int64_t ws = a->t0 + (int64_t)w * JP_AVAIL_WINDOW_NS, we = ws + JP_AVAIL_WINDOW_NS;
        if (from < we && to > ws)
            mark[w] = 1;
    }
}

void jp_avail_free(jp_avail *a)
{
    if (!a)
        return;
    free(a->per_window);
    free(a->faulty);
    free(a->faults);
    free(a->kinds);
    memset(a, 0, sizeof *a);
}

const jp_avail_kind *jp_avail_kind_get(const jp_avail *a, const char *kind)
{
    for (size_t i = 0; i < a->nkinds; i++)
        if (strcmp(a->kinds[i].kind, kind) == 0)
            return &a->kinds[i];
    return NULL;
}

/* The consecutive pair of points (commits, with t0 and t_end as ends) with the longest
 * distance: among every pair (all), or among those overlapping [from, to]. */
static int64_t longest_gap(const int64_t *pts, size_t n, bool all, int64_t from, int64_t to,
                           int64_t *gfrom, int64_t *gto)
{
    int64_t best = -1;
    *gfrom = *gto = pts[0];
    if (to <= from)
        to = from + 1;
    for (size_t i = 0; i + 1 < n; i++) {
        if (!all && !(pts[i + 1] > from && pts[i] < to))
            continue;
        if (pts[i + 1] - pts[i] > best) {
            best = pts[i + 1] - pts[i];
            *gfrom = pts[i];
            *gto = pts[i + 1];
        }
    }
    return best < 0 ? 0 : best;
}

static int measure_faults(const jp_history *h, jp_avail *a, const int64_t *pts, size_t npts,
                          mr_err *err)
{
    size_t nstarts = 0;
    for (size_t i = 0; i < h->n; i++)
        if (h->ops[i].process == JP_NEMESIS && h->ops[i].time >= 0 &&
            strncmp(h->ops[i].f, "start-", 6) == 0)
            nstarts++;
    if (nstarts == 0)
        return MR_OK;
    a->faults = calloc(nstarts, sizeof *a->faults);
    a->kinds = calloc(nstarts, sizeof *a->kinds);
    unsigned char *mark = calloc(a->windows ? a->windows : 1, 1);
    if (!a->faults || !a->kinds || !mark) {
        free(mark);
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = &h->ops[i];
        if (op->process != JP_NEMESIS || op->time < 0 || strncmp(op->f, "start-", 6) != 0)
            continue;
        jp_avail_fault *f = &a->faults[a->nfaults++];
        snprintf(f->kind, sizeof f->kind, "%s", op->f + 6);
        f->index = i;
        f->start = op->time;
        f->stop = fault_stop(h, i, f->kind, a->t_end);
        if (f->stop < f->start)
            f->stop = f->start;
        f->first_ok = -1;
        f->blip_group = f->untouched_group = -1;
        f->blip = f->recovered = f->untouched_gap = -1;
        f->inject = f->start;
        /* pts[1 .. npts-2] are the commits, sorted. */
        for (size_t k = 1; k + 1 < npts; k++)
            if (pts[k] >= f->start) {
                f->first_ok = pts[k] - f->start;
                break;
            }
        f->max_gap = longest_gap(pts, npts, false, f->start, f->stop, &f->gap_from, &f->gap_to);
        mark_windows(a, f->start, f->stop, a->faulty);
    }
    /* Per kind, in order of first appearance. */
    for (size_t i = 0; i < a->nfaults; i++) {
        if (jp_avail_kind_get(a, a->faults[i].kind))
            continue;
        jp_avail_kind *k = &a->kinds[a->nkinds++];
        snprintf(k->kind, sizeof k->kind, "%s", a->faults[i].kind);
        k->max_blip = k->mean_blip = k->max_recovered = k->max_untouched_gap = -1;
        memset(mark, 0, a->windows ? a->windows : 1);
        int64_t sum = 0;
        for (size_t j = i; j < a->nfaults; j++) {
            const jp_avail_fault *f = &a->faults[j];
            if (strcmp(f->kind, k->kind) != 0)
                continue;
            k->faults++;
            if (k->max_first_ok >= 0 && (f->first_ok < 0 || f->first_ok > k->max_first_ok))
                k->max_first_ok = f->first_ok;
            if (f->max_gap > k->max_gap)
                k->max_gap = f->max_gap;
            sum += f->max_gap;
            mark_windows(a, f->start, f->stop, mark);
        }
        k->mean_gap = sum / (int64_t)k->faults;
        for (size_t w = 0; w < a->windows; w++)
            if (mark[w]) {
                k->windows++;
                k->live_windows += a->per_window[w] > 0;
                k->commits += a->per_window[w];
            }
        k->commits_per_s = k->windows ? (double)k->commits / (double)k->windows : 0;
    }
    free(mark);
    return MR_OK;
}

/* The longest stretch without a commit inside [from, to): consecutive points clipped to it (at
 * `to` always, at `from` when clip_from; else a stretch that began before `from` counts from
 * its last commit). *gto gets the stretch's real end (the commit that ended it). */
static int64_t longest_inside(const int64_t *pts, size_t n, int64_t from, int64_t to,
                              bool clip_from, int64_t *gfrom, int64_t *gto)
{
    int64_t best = -1;
    *gfrom = *gto = pts[0];
    for (size_t i = 0; i + 1 < n; i++) {
        if (!(pts[i + 1] > from && pts[i] < to))
            continue;
        int64_t a = clip_from && pts[i] < from ? from : pts[i];
        int64_t b = pts[i + 1] > to ? to : pts[i + 1];
        if (b - a > best) {
            best = b - a;
            *gfrom = pts[i];
            *gto = pts[i + 1];
        }
    }
    return best < 0 ? 0 : best;
}

/* The groups a fault's start operation names under `field` ([g, ...]). */
static uint64_t groups_named(const jp_op *start, const char *field)
{
    uint64_t m = 0;
    size_t k;
    json_t *g;
    json_array_foreach(json_object_get(start->value, field), k, g)
    {
        json_int_t id = json_integer_value(g);
        if (json_is_integer(g) && id >= 0 && id < JP_AVAIL_MAX_GROUPS)
            m |= 1ull << id;
    }
    return m;
}

/* When the fault that starts at op i began: its value's "inject_ns" (at or before its time),
 * else its time. */
static int64_t injected_at(const jp_op *op)
{
    json_t *inj = json_object_get(op->value, "inject_ns");
    json_int_t t = json_integer_value(inj);
    return json_is_integer(inj) && t >= 0 && t <= op->time ? t : op->time;
}

/* Where a fault's aftermath ends: when the next fault began, else t_end. */
static int64_t aftermath_end(const jp_history *h, size_t i, int64_t t_end)
{
    for (size_t k = i + 1; k < h->n; k++) {
        const jp_op *op = &h->ops[k];
        if (op->process == JP_NEMESIS && op->time >= 0 && strncmp(op->f, "start-", 6) == 0)
            return injected_at(op);
    }
    return t_end;
}

static void kinds_per_group(jp_avail *a)
{
    for (size_t i = 0; i < a->nkinds; i++) {
        jp_avail_kind *k = &a->kinds[i];
        int64_t sum = 0;
        size_t hit = 0;
        for (size_t j = 0; j < a->nfaults; j++) {
            const jp_avail_fault *f = &a->faults[j];
            if (strcmp(f->kind, k->kind) != 0)
                continue;
            if (f->blip_group >= 0) {
                hit++;
                sum += f->blip;
                if (f->blip > k->max_blip)
                    k->max_blip = f->blip;
                if (k->max_recovered != INT64_MAX &&
                    (f->recovered < 0 || f->recovered > k->max_recovered))
                    k->max_recovered = f->recovered < 0 ? INT64_MAX : f->recovered;
            }
            if (f->untouched_group >= 0 && f->untouched_gap > k->max_untouched_gap)
                k->max_untouched_gap = f->untouched_gap;
        }
        k->mean_blip = hit ? sum / (int64_t)hit : -1;
    }
}

/* Per group: each group's commits (t0 and the group operations' end as ends), then every
 * fault's blip and untouched gap over its aftermath. */
static int measure_groups(const jp_history *h, jp_avail_groups_fn groups_of, void *ud, jp_avail *a,
                          mr_err *err)
{
    int rc = MR_OK;
    size_t count[JP_AVAIL_MAX_GROUPS] = {0}, n[JP_AVAIL_MAX_GROUPS] = {0};
    int64_t *pts[JP_AVAIL_MAX_GROUPS] = {0};
    uint64_t *mask = calloc(h->n ? h->n : 1, sizeof *mask);
    if (!mask)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    /* Where the group operations end: the last event of an operation that touched a group,
     * or t_end while one is still open. After it the clients do something else (the set
     * workload's final reads), which is no group's stall. */
    int64_t g_end = a->t0;
    bool any_open = false;
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = timed_client(h, i);
        if (!op)
            continue;
        const jp_op *inv = op->type == JP_INVOKE ? op
                           : op->pair != JP_NONE ? &h->ops[op->pair]
                                                 : NULL;
        if (inv && groups_of(inv, ud) != 0) {
            any_open |= op->type == JP_INVOKE && op->pair == JP_NONE;
            if (op->time > g_end)
                g_end = op->time;
        }
        if (op->type != JP_OK || op->pair == JP_NONE)
            continue;
        mask[i] = groups_of(&h->ops[op->pair], ud);
        a->groups |= mask[i];
        for (int g = 0; g < JP_AVAIL_MAX_GROUPS; g++)
            count[g] += (mask[i] >> g) & 1;
    }
    if (any_open || g_end < a->t0 + 1)
        g_end = a->t_end;
    for (int g = 0; g < JP_AVAIL_MAX_GROUPS; g++) {
        if (!((a->groups >> g) & 1))
            continue;
        if (!(pts[g] = malloc((count[g] + 2) * sizeof *pts[g]))) {
            rc = mr_errf(err, MR_ENOMEM, "out of memory");
            goto out;
        }
        pts[g][n[g]++] = a->t0;
    }
    for (size_t i = 0; i < h->n; i++)
        for (int g = 0; g < JP_AVAIL_MAX_GROUPS; g++)
            if ((mask[i] >> g) & 1)
                pts[g][n[g]++] = h->ops[i].time;
    for (int g = 0; g < JP_AVAIL_MAX_GROUPS; g++)
        if (pts[g]) {
            qsort(pts[g] + 1, n[g] - 1, sizeof *pts[g], cmp_i64);
            pts[g][n[g]++] = g_end;
        }
    for (size_t i = 0; i < a->nfaults; i++) {
        jp_avail_fault *f = &a->faults[i];
        f->affected = groups_named(&h->ops[f->index], "affected_groups");
        /* Injecting takes a moment before the start is recorded: count from its beginning. */
        int64_t from = f->inject = injected_at(&h->ops[f->index]);
        f->unavailable = groups_named(&h->ops[f->index], "unavailable_groups") & ~f->affected;
        f->until = aftermath_end(h, f->index, a->t_end);
        if (f->until <= f->start)
            f->until = f->start + 1;
        for (int g = 0; g < JP_AVAIL_MAX_GROUPS; g++) {
            if (!pts[g] || ((f->unavailable >> g) & 1))
                continue;
            bool hit = (f->affected >> g) & 1;
            int64_t gfrom, to;
            int64_t gap = longest_inside(pts[g], n[g], from, f->until, true, &gfrom, &to);
            if (hit) {
                if (gap > f->blip) {
                    f->blip = gap;
                    f->blip_group = g;
                    /* the gap ends at the group operations' end: the group never
                     * committed again */
                    f->recovered = to == g_end && to != pts[g][n[g] - 2] ? -1
                                   : to > from                           ? to - from
                                                                         : 0;
                }
            } else if (gap > f->untouched_gap) {
                f->untouched_gap = gap;
                f->untouched_group = g;
            }
        }
    }
    kinds_per_group(a);
out:
    for (int g = 0; g < JP_AVAIL_MAX_GROUPS; g++)
        free(pts[g]);
    free(mask);
    return rc;
}

int jp_avail_measure(const jp_history *h, jp_avail *a, mr_err *err)
{
    return jp_avail_measure_groups(h, NULL, NULL, a, err);
}

int jp_avail_measure_groups(const jp_history *h, jp_avail_groups_fn groups_of, void *ud,
                            jp_avail *a, mr_err *err)
{
    memset(a, 0, sizeof *a);
    bool any = false;
    size_t nok = 0;
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = timed_client(h, i);
        if (!op)
            continue;
        if (!any || op->time < a->t0)
            a->t0 = op->time;
        if (!any || op->time > a->t_end)
            a->t_end = op->time;
        any = true;
        nok += op->type == JP_OK;
    }
    if (!any)
        return mr_errf(err, MR_EINVAL,
                       "availability: no client operation has a time (\"time\" is needed)");
    /* The points between which gaps are measured: t0, every commit, t_end. */
    int64_t *pts = malloc((nok + 2) * sizeof *pts);
    if (!pts)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    size_t npts = 0;
    pts[npts++] = a->t0;
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = timed_client(h, i);
        if (op && op->type == JP_OK)
            pts[npts++] = op->time;
    }
    qsort(pts + 1, npts - 1, sizeof *pts, cmp_i64);
    pts[npts++] = a->t_end;
    a->commits = nok;

    a->windows = (size_t)((a->t_end - a->t0) / JP_AVAIL_WINDOW_NS);
    a->per_window = calloc(a->windows ? a->windows : 1, sizeof *a->per_window);
    a->faulty = calloc(a->windows ? a->windows : 1, 1);
    if (!a->per_window || !a->faulty) {
        free(pts);
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    for (size_t k = 1; k + 1 < npts; k++) {
        size_t w = (size_t)((pts[k] - a->t0) / JP_AVAIL_WINDOW_NS);
        if (w < a->windows)
            a->per_window[w]++;
    }
    a->longest_gap = longest_gap(pts, npts, true, 0, 0, &a->gap_from, &a->gap_to);
    int rc = measure_faults(h, a, pts, npts, err);
    free(pts);
    if (rc == MR_OK && groups_of)
        rc = measure_groups(h, groups_of, ud, a, err);
    if (rc != MR_OK)
        return rc;
    for (size_t w = 0; w < a->windows; w++) {
        a->live_windows += a->per_window[w] > 0;
        if (a->faulty[w]) {
            a->faulty_windows++;
            a->faulty_commits += a->per_window[w];
        } else {
            a->quiet_windows++;
            a->quiet_commits += a->per_window[w];
        }
    }
    a->faulty_per_s = a->faulty_windows ? (double)a->faulty_commits / (double)a->faulty_windows : 0;
    a->quiet_per_s = a->quiet_windows ? (double)a->quiet_commits / (double)a->quiet_windows : 0;
    return MR_OK;
}

static double sec(int64_t ns)
{
    return (double)ns / 1e9;
}

/* Seconds, or null for a figure not measured (< 0) or never reached (INT64_MAX). */
static json_t *sec_or_null(int64_t ns)
{
    return ns < 0 || ns == INT64_MAX ? json_null() : json_real(sec(ns));
}

static json_t *groups_json(uint64_t m)
{
    json_t *arr = json_array();
    for (int g = 0; arr && g < JP_AVAIL_MAX_GROUPS; g++)
        if ((m >> g) & 1 && json_array_append_new(arr, json_integer(g))) {
            json_decref(arr);
            return NULL;
        }
    return arr;
}

static json_t *group_or_null(int g)
{
    return g < 0 ? json_null() : json_integer(g);
}

/* The per-group fields of a fault or a kind (a->groups != 0). 0, or -1 on out of memory. */
static int fault_groups_json(const jp_avail_fault *f, json_t *o)
{
    json_t *ag = groups_json(f->affected);
    if (!ag)
        return -1;
    json_t *more = json_pack(
        "{s:o, s:f, s:o, s:o, s:o, s:o, s:o}", "affected_groups", ag, "until_s", sec(f->until),
        "blip_group", group_or_null(f->blip_group), "blip_s", sec_or_null(f->blip), "recovery_s",
        sec_or_null(f->recovered), "untouched_group", group_or_null(f->untouched_group),
        "untouched_gap_s", sec_or_null(f->untouched_gap));
    int rc = more ? json_object_update(o, more) : -1;
    json_decref(more);
    return rc;
}

static int kind_groups_json(const jp_avail_kind *k, json_t *o)
{
    json_t *more =
        json_pack("{s:o, s:o, s:o, s:o}", "max_blip_s", sec_or_null(k->max_blip), "mean_blip_s",
                  sec_or_null(k->mean_blip), "max_recovery_s", sec_or_null(k->max_recovered),
                  "max_untouched_gap_s", sec_or_null(k->max_untouched_gap));
    int rc = more ? json_object_update(o, more) : -1;
    json_decref(more);
    return rc;
}

json_t *jp_avail_to_json(const jp_avail *a)
{
    json_t *per_window = json_array(), *faults = json_array(), *kinds = json_object();
    if (!per_window || !faults || !kinds)
        goto oom;
    for (size_t w = 0; w < a->windows; w++)
        if (json_array_append_new(per_window, json_integer((json_int_t)a->per_window[w])))
            goto oom;
    for (size_t i = 0; i < a->nfaults; i++) {
        const jp_avail_fault *f = &a->faults[i];
        json_t *o =
            json_pack("{s:s, s:I, s:f, s:f, s:o, s:f, s:[f, f]}", "kind", f->kind, "index",
                      (json_int_t)f->index, "start_s", sec(f->start), "stop_s", sec(f->stop),
                      "first_commit_s", f->first_ok < 0 ? json_null() : json_real(sec(f->first_ok)),
                      "max_gap_s", sec(f->max_gap), "gap_at_s", sec(f->gap_from), sec(f->gap_to));
        if (o && a->groups && fault_groups_json(f, o) != 0) {
            json_decref(o);
            o = NULL;
        }
        if (!o || json_array_append_new(faults, o))
            goto oom;
    }
    for (size_t i = 0; i < a->nkinds; i++) {
        const jp_avail_kind *k = &a->kinds[i];
        json_t *o =
            json_pack("{s:I, s:o, s:f, s:f, s:I, s:I, s:I, s:f}", "faults", (json_int_t)k->faults,
                      "max_first_commit_s",
                      k->max_first_ok < 0 ? json_null() : json_real(sec(k->max_first_ok)),
                      "max_gap_s", sec(k->max_gap), "mean_gap_s", sec(k->mean_gap), "windows",
                      (json_int_t)k->windows, "live_windows", (json_int_t)k->live_windows,
                      "commits", (json_int_t)k->commits, "commits_per_s", k->commits_per_s);
        if (o && a->groups && kind_groups_json(k, o) != 0) {
            json_decref(o);
            o = NULL;
        }
        if (!o || json_object_set_new(kinds, k->kind, o))
            goto oom;
    }
    json_t *out = json_pack(
        "{s:I, s:I, s:f, s:I, s:f, s:[f, f], s:{s:I, s:I, s:f}, s:{s:I, s:I, s:f}, s:o, s:o, "
        "s:o}",
        "windows", (json_int_t)a->windows, "live_windows", (json_int_t)a->live_windows,
        "live_fraction", a->windows ? (double)a->live_windows / (double)a->windows : 0.0, "commits",
        (json_int_t)a->commits, "longest_gap_s", sec(a->longest_gap), "longest_gap_at_s",
        sec(a->gap_from), sec(a->gap_to), "faulty", "windows", (json_int_t)a->faulty_windows,
        "commits", (json_int_t)a->faulty_commits, "commits_per_s", a->faulty_per_s, "quiet",
        "windows", (json_int_t)a->quiet_windows, "commits", (json_int_t)a->quiet_commits,
        "commits_per_s", a->quiet_per_s, "per_kind", kinds, "faults", faults, "per_window",
        per_window);
    /* json_pack's "o" took the three references, also on failure */
    if (out && a->groups) {
        json_t *g = groups_json(a->groups);
        if (!g || json_object_set_new(out, "groups", g)) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
oom:
    json_decref(per_window);
    json_decref(faults);
    json_decref(kinds);
    return NULL;
}

void jp_avail_print(const jp_avail *a, FILE *f)
{
    fprintf(f,
            "availability: %zu/%zu one-second windows with a commit (%.0f%%), longest gap %.2f s "
            "(%.2f-%.2f s), %zu commits\n",
            a->live_windows, a->windows,
            a->windows ? 100.0 * (double)a->live_windows / (double)a->windows : 0.0,
            sec(a->longest_gap), sec(a->gap_from), sec(a->gap_to), a->commits);
    fprintf(f, "availability: committed/s %.2f in %zu faulty windows, %.2f in %zu quiet windows\n",
            a->faulty_per_s, a->faulty_windows, a->quiet_per_s, a->quiet_windows);
    for (size_t i = 0; i < a->nkinds; i++) {
        const jp_avail_kind *k = &a->kinds[i];
        char first[32];
        if (k->max_first_ok < 0)
            snprintf(first, sizeof first, "never");
        else
            snprintf(first, sizeof first, "%.2f s", sec(k->max_first_ok));
        fprintf(f,
                "  fault %-13s %zux: longest gap %.2f s (mean %.2f s), first commit after a "
                "start within %s; %.2f committed/s in its %zu windows (%zu with a commit)\n",
                k->kind, k->faults, sec(k->max_gap), sec(k->mean_gap), first, k->commits_per_s,
                k->windows, k->live_windows);
    }
    if (!a->groups)
        return;
    for (size_t i = 0; i < a->nkinds; i++) {
        const jp_avail_kind *k = &a->kinds[i];
        char hit[160], back[32], other[32];
        if (k->max_recovered == INT64_MAX)
            snprintf(back, sizeof back, "never");
        else
            snprintf(back, sizeof back, "%.2f s", sec(k->max_recovered));
        if (k->max_blip < 0)
            snprintf(hit, sizeof hit, "no group hit");
        else
            snprintf(hit, sizeof hit,
                     "hit groups' longest gap %.2f s (mean %.2f s), committing "
                     "again within %s of a start",
                     sec(k->max_blip), sec(k->mean_blip), back);
        if (k->max_untouched_gap < 0)
            snprintf(other, sizeof other, "-");
        else
            snprintf(other, sizeof other, "%.2f s", sec(k->max_untouched_gap));
        fprintf(f, "  blips %-13s %zux: %s; other groups' longest gap %s\n", k->kind, k->faults,
                hit, other);
    }
    for (size_t i = 0; i < a->nfaults; i++) {
        const jp_avail_fault *x = &a->faults[i];
        fprintf(f, "    %-13s at %8.2f s:", x->kind, sec(x->start));
        if (x->blip_group >= 0) {
            fprintf(f, " hit group");
            for (int g = 0; g < JP_AVAIL_MAX_GROUPS; g++)
                if ((x->affected & a->groups) >> g & 1)
                    fprintf(f, " %d", g);
            fprintf(f, ": gap %.2f s (group %d), ", sec(x->blip), x->blip_group);
            if (x->recovered < 0)
                fprintf(f, "never committed again;");
            else
                fprintf(f, "committing again %.2f s after the start;", sec(x->recovered));
        }
        if (x->untouched_group >= 0)
            fprintf(f, " others' longest gap %.2f s (group %d)", sec(x->untouched_gap),
                    x->untouched_group);
        if (x->unavailable & a->groups) {
            fprintf(f, "; without a majority until the heal:");
            for (int g = 0; g < JP_AVAIL_MAX_GROUPS; g++)
                if ((x->unavailable & a->groups) >> g & 1)
                    fprintf(f, " %d", g);
        }
        fprintf(f, "\n");
    }
}
