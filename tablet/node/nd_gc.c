/* Collecting: decision rows through the log (FORGET), MVCC versions, and the store's counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "coordinator/co.h"
#include "tablet/node/nd_int.h"
#include "tablet/node/nd_txn_int.h"
#include "tablet/node/nd_validate.h"
#include "tablet/txn/tx.h"

/* Collecting decisions.
 *
 * A decision row ("\0d/<txn>": a single-group commit, a coordinator's COMMIT2 or ABORT2) is
 * what answers {op: status} and a prepared participant's question. It cannot be kept for ever
 * (one row per transaction), so it is collected once nobody may still ask:
 *
 * - a participant asks only while prepared, so an abort, or a single-group commit (no
 *   participants), may go once the retention R (--decision-retention) has passed since it was
 *   made; a two-phase commit only after every participant acknowledged it after that (its
 *   leader asks again: nd_forget_step confirms it like a first delivery), so none is prepared;
 * - a client asks after it lost a commit's answer: libmeridian for at most its timeout, the
 *   CLI for a few seconds. R (default 10 min) is far longer.
 *
 * The leader proposes FORGET [cutoff = TT.now().earliest - R][txn ids]; every replica deletes
 * (writes a tombstone over) each listed decision still there and made at or before the cutoff,
 * so every replica forgets the same rows at the same slot. MVCC GC removes the tombstone and
 * the row after --retention. Until then the tombstone says "decided, then forgotten": no second
 * decision is logged for it (stage_record), a status question gets "forgotten", a prepared
 * participant's question gets "aborted" (only an abort can leave one prepared). Afterwards the
 * transaction is unknown again; a status question then aborts it only when its prio (start
 * time) is less than R/2 old, so its decision, made after it started, cannot have been
 * collected yet (R/2 is left for a client clock running ahead); an older or prio-less
 * question gets "forgotten". A participant partitioned away for longer than R plus
 * --retention asks about an abort (commits wait for it): logging ABORT2 again is the truth. */
#define ND_FORGET_EVERY (250 * MR_NS_PER_MS) /* a collection step */

#define ND_FORGET_SCAN 1024 /* decision rows looked at per step, at least */

#define ND_FORGET_MAX 4096 /* decisions per FORGET record */

#define ND_CONFIRM_MAX 1024 /* commit decisions being confirmed at once */

static int count_row(void *arg, const mv_version *v)
{
    (void)arg;
    (void)v;
    return 0;
}

/* The live decision rows, counted at open and after a snapshot (then kept by applies). */
void nd_count_decisions(nd_group *g)
{
    char start[3] = {0, 'd', '/'}, end[3] = {0, 'd', '0'};
    mv_scan_opts so = {.start = start, .start_len = 3, .end = end, .end_len = 3, .ts = MV_TS_MAX};
    uint64_t count = 0;
    mr_err err;
    if (mv_scan(g->mv, &so, count_row, NULL, &count, &err) != MR_OK)
        MR_ERROR("node", "group=%llu: cannot count decisions: %s", (unsigned long long)g->id,
                 mr_err_msg(&err));
    g->gc.decisions = count;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Does an earlier FORGET record of the slot delete txn's decision? */
static bool forgot_in(const rec_effect *fx, size_t n, uint64_t txn)
{
    for (size_t i = 0; i < n; i++)
        if (fx[i].kind == ND_OP_FORGET && !fx[i].skipped &&
            bsearch(&txn, fx[i].forgot, fx[i].nforgot, sizeof txn, cmp_u64))
            return true;
    return false;
}

/* FORGET [u64 0][i64 cutoff][u32 n][n x u64 txn] into the slot's batch: a tombstone at ts for
 * every listed decision still live and made at or before cutoff. False: nothing to do. */
bool nd_stage_forget(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                     const uint8_t *b, size_t bl)
{
    if (bl < 20)
        return false;
    int64_t cutoff = (int64_t)get64(b + 8);
    uint32_t cnt = get32(b + 16);
    if (cnt == 0 || cnt > ND_FORGET_MAX || bl != 20 + 8 * (size_t)cnt || cutoff >= ts)
        return false;
    uint64_t *ids = malloc(cnt * sizeof *ids);
    mv_write *w = calloc(cnt, sizeof *w);
    char *keys = malloc((size_t)cnt * SYS_KEY_LEN);
    size_t m = 0;
    if (ids && w && keys) {
        for (uint32_t k = 0; k < cnt; k++)
            ids[k] = get64(b + 20 + 8 * (size_t)k);
        qsort(ids, cnt, sizeof *ids, cmp_u64);
        for (uint32_t k = 0; k < cnt; k++) {
            uint64_t txn = ids[k];
            co_decision d;
            if ((m && ids[m - 1] == txn) || !nd_decision_lookup(g, txn, &d) || d.ts > cutoff ||
                forgot_in(fx, i, txn))
                continue;
            ids[m] = txn;
            nd_sys_key(keys + m * SYS_KEY_LEN, 'd', txn);
            w[m] =
                (mv_write){.op = MV_DELETE, .key = keys + m * SYS_KEY_LEN, .key_len = SYS_KEY_LEN};
            m++;
        }
    }
    if (m == 0) {
        free(ids);
        free(w);
        free(keys);
        return false;
    }
    a->owned[a->nowned++] = w;
    a->bufs[i] = (uint8_t *)keys;
    a->txns[a->nt++] = (mv_txn){.commit_ts = ts, .w = w, .n = m};
    fx[i].forgot = ids;
    fx[i].nforgot = m;
    return true;
}

/* The slot's records are in the store (not a replay): the decision rows they added or removed. */
void nd_decisions_applied(nd_group *g, const rec_effect *fx, size_t nrec)
{
    for (size_t i = 0; i < nrec; i++) {
        if (fx[i].skipped)
            continue;
        if (fx[i].kind == ND_OP_TXN || fx[i].kind == ND_OP_COMMIT2 || fx[i].kind == ND_OP_ABORT2)
            g->gc.decisions++;
        else if (fx[i].kind == ND_OP_FORGET) {
            g->gc.decisions -= fx[i].nforgot < g->gc.decisions ? fx[i].nforgot : g->gc.decisions;
            g->gc.forgotten += fx[i].nforgot;
        }
    }
}

/* Coordinator leader: every participant acknowledged txn's commit again (a confirmation). */
void nd_forget_ready_add(nd_group *g, uint64_t txn)
{
    if (g->gc.nforget_ready == g->gc.cap_forget_ready) {
        size_t cap = g->gc.cap_forget_ready ? 2 * g->gc.cap_forget_ready : 256;
        uint64_t *p =
            cap <= 4 * ND_CONFIRM_MAX ? realloc(g->gc.forget_ready, cap * sizeof *p) : NULL;
        if (!p)
            return; /* confirmed again on a later pass */
        g->gc.forget_ready = p;
        g->gc.cap_forget_ready = cap;
    }
    g->gc.forget_ready[g->gc.nforget_ready++] = txn;
}

/* A status question about a transaction this leader does not know: was its decision (if any)
 * possibly collected? See the top of this section. */
bool nd_status_forgotten(nd_node *n, nd_group *g, uint64_t txn, int64_t prio)
{
    if (nd_decision_forgotten(g, txn))
        return true;
    if (prio == 0)
        return true; /* no start time: it cannot be told from a collected one */
    return prio < tt_now(n->clock).earliest - n->decision_retention_ns / 2;
}

/* Coordinator leader: asks every other participant to acknowledge txn's commit again (as a
 * first delivery does: resent until acknowledged, or given up and asked on a later pass). */
static bool confirm_decision(nd_node *n, nd_group *g, uint64_t txn, const co_decision *d,
                             int64_t now)
{
    for (nd_delivery *x = g->txn.delivering; x; x = x->next)
        if (x->txn == txn)
            return false; /* being delivered, or confirmed already */
    nd_delivery *x = calloc(1, sizeof *x);
    if (!x)
        return false;
    x->txn = txn;
    x->d = *d;
    x->confirm = true;
    for (uint32_t i = 0; i < d->nparts; i++) {
        if (d->parts[i] == g->id)
            x->acked |= 1ull << i;
        else
            nd_send_decision(n, txn, d->parts[i], g->id, true, d->ts);
    }
    x->next_send = now + ND_DELIVER_EVERY;
    x->next = g->txn.delivering;
    g->txn.delivering = x;
    return true;
}

typedef struct forget_scan {
    nd_node *n;
    nd_group *g;
    int64_t cutoff, now;
    uint64_t *ids; /* decisions to collect now */
    size_t nids, cap;
    size_t confirming; /* confirmations in flight */
    uint64_t last;     /* the last txn looked at */
} forget_scan;

static int forget_row(void *arg, const mv_version *v)
{
    forget_scan *f = arg;
    if (v->key_len != SYS_KEY_LEN)
        return 0;
    char hex[17];
    memcpy(hex, (const char *)v->key + 3, 16);
    hex[16] = 0;
    uint64_t txn = strtoull(hex, NULL, 16);
    f->last = txn;
    co_decision d;
    mr_err err;
    if (co_decision_decode(v->value, v->len, &d, &err) != MR_OK || d.ts > f->cutoff)
        return 0;
    if (!d.commit || d.nparts == 0) {
        if (f->nids < f->cap) /* the step's budget: never more rows than that */
            f->ids[f->nids++] = txn;
    } else if (f->confirming < ND_CONFIRM_MAX && confirm_decision(f->n, f->g, txn, &d, f->now)) {
        f->confirming++;
    }
    return 0;
}

/* Coordinator leader, every ND_FORGET_EVERY: looks at the next decision rows (a cursor over the
 * txn ids, so a pass over them all takes at most 16 steps, 4 s: a decision goes at most that
 * long after its retention), and proposes FORGET for those past the retention that nobody can
 * ask about any more. */
void nd_forget_step(nd_node *n, nd_group *g, int64_t now)
{
    if (now - g->gc.last_forget < ND_FORGET_EVERY || g->split.state != ND_SPLIT_IDLE)
        return;
    g->gc.last_forget = now;
    if (!g->gc.decisions && !g->gc.nforget_ready)
        return;
    uint64_t budget = g->gc.decisions / 16 > ND_FORGET_SCAN ? g->gc.decisions / 16 : ND_FORGET_SCAN;
    forget_scan f = {.n = n,
                     .g = g,
                     .cutoff = tt_now(n->clock).earliest - n->decision_retention_ns,
                     .now = now,
                     .cap = budget};
    for (nd_delivery *x = g->txn.delivering; x; x = x->next)
        f.confirming += x->confirm;
    f.ids = malloc((budget + g->gc.nforget_ready) * sizeof *f.ids);
    if (!f.ids)
        return;
    char start[SYS_KEY_LEN], end[3] = {0, 'd', '0'};
    nd_sys_key(start, 'd', g->gc.forget_cursor);
    mv_scan_opts so = {.start = start,
                       .start_len = SYS_KEY_LEN,
                       .end = end,
                       .end_len = 3,
                       .ts = MV_TS_MAX,
                       .limit = budget};
    uint64_t seen = 0;
    mr_err err;
    if (mv_scan(g->mv, &so, forget_row, &f, &seen, &err) != MR_OK) {
        MR_WARN("node", "group=%llu: collecting decisions: %s", (unsigned long long)g->id,
                mr_err_msg(&err));
        seen = 0;
    }
    /* Start over after the last row (or the largest id). */
    g->gc.forget_cursor = seen < budget || f.last == UINT64_MAX ? 0 : f.last + 1;
    if (g->gc.nforget_ready)
        memcpy(f.ids + f.nids, g->gc.forget_ready, g->gc.nforget_ready * sizeof *f.ids);
    f.nids += g->gc.nforget_ready;
    g->gc.nforget_ready = 0;
    for (size_t off = 0; off < f.nids; off += ND_FORGET_MAX) {
        size_t cnt = f.nids - off < ND_FORGET_MAX ? f.nids - off : ND_FORGET_MAX;
        uint8_t *body = malloc(20 + 8 * cnt);
        if (!body)
            break;
        put64(body, 0);
        put64(body + 8, (uint64_t)f.cutoff);
        put32(body + 16, (uint32_t)cnt);
        for (size_t k = 0; k < cnt; k++)
            put64(body + 20 + 8 * k, f.ids[off + k]);
        (void)nd_propose_raw(n, g, 0, ND_OP_FORGET, body, 20 + 8 * cnt, &err); /* next pass */
        free(body);
    }
    free(f.ids);
}

void nd_txn_store_json(nd_group *g, json_t *ge)
{
    json_object_set_new(ge, "decisions", json_integer((json_int_t)g->gc.decisions));
    json_object_set_new(ge, "forgotten", json_integer((json_int_t)g->gc.forgotten));
    mv_size all, data;
    mv_page_stats ps;
    mr_err err;
    mv_size_estimate(g->mv, &all);
    if (mv_size_data(g->mv, &data, &err) == MR_OK) {
        json_object_set_new(ge, "system_versions",
                            json_integer((json_int_t)(all.versions - data.versions)));
        json_object_set_new(ge, "system_bytes", json_integer((json_int_t)(all.bytes - data.bytes)));
    }
    if (mv_pages(g->mv, &ps, &err) == MR_OK) {
        json_object_set_new(ge, "pages", json_integer((json_int_t)ps.pages));
        json_object_set_new(ge, "free_pages", json_integer((json_int_t)ps.free_pages));
        json_object_set_new(ge, "page_size", json_integer((json_int_t)ps.page_size));
    }
}

void nd_txn_store_metrics(nd_node *n, nd_text *t)
{
    nd_text_printf(t, "# HELP meridian_group_decision_rows Transaction decisions kept (status "
                      "answers), per group.\n# TYPE meridian_group_decision_rows gauge\n");
    for (size_t i = 0; i < n->ngroups; i++)
        nd_text_printf(t, "meridian_group_decision_rows{group=\"%llu\"} %llu\n",
                       (unsigned long long)n->groups[i]->id,
                       (unsigned long long)n->groups[i]->gc.decisions);
    nd_text_printf(t, "# HELP meridian_group_decisions_forgotten_total Decisions collected past "
                      "--decision-retention.\n"
                      "# TYPE meridian_group_decisions_forgotten_total counter\n");
    for (size_t i = 0; i < n->ngroups; i++)
        nd_text_printf(t, "meridian_group_decisions_forgotten_total{group=\"%llu\"} %llu\n",
                       (unsigned long long)n->groups[i]->id,
                       (unsigned long long)n->groups[i]->gc.forgotten);
    nd_text_printf(t, "# HELP meridian_group_store_bytes Bytes of the tablet's SQLite file in "
                      "use (pages less free pages).\n# TYPE meridian_group_store_bytes gauge\n");
    for (size_t i = 0; i < n->ngroups; i++) {
        mv_page_stats ps;
        mr_err err;
        if (mv_pages(n->groups[i]->mv, &ps, &err) == MR_OK)
            nd_text_printf(t, "meridian_group_store_bytes{group=\"%llu\"} %lld\n",
                           (unsigned long long)n->groups[i]->id,
                           (long long)((ps.pages - ps.free_pages) * ps.page_size));
    }
}

/* Old versions go once no read may need them: every replica collects, a
 * bounded step every ND_GC_EVERY, below TT.now().earliest - retention (reads
 * below that horizon fail with MR_ESTALE, never a wrong answer). A step that
 * did not finish its pass is followed by the next one after ND_GC_AGAIN, so
 * collection keeps up with writes (ND_GC_STEP versions per ND_GC_AGAIN, 100k/s)
 * instead of falling behind at 4k/s, while never holding the loop long. */
#define ND_GC_EVERY (5 * MR_NS_PER_S)

#define ND_GC_AGAIN (100 * MR_NS_PER_MS)

#define ND_GC_STEP 10000

void nd_gc_step(nd_node *n, nd_group *g, int64_t now)
{
    if (now - g->gc.last_mvcc < (g->gc.mvcc_busy ? ND_GC_AGAIN : ND_GC_EVERY))
        return;
    g->gc.last_mvcc = now;
    /* Never above what this replica applied: a lagging replica must still
     * apply the entries it has not seen, whose timestamps are above it. */
    int64_t horizon = tx_gc_horizon(tt_now(n->clock), n->retention_ns, nd_safe_time(g));
    if (horizon <= mv_horizon(g->mv))
        return;
    mv_gc_result res;
    mr_err err;
    g->gc.mvcc_busy = false;
    if (mv_gc(g->mv, horizon, ND_GC_STEP, &res, &err) != MR_OK)
        MR_WARN("node", "group=%llu gc: %s", (unsigned long long)g->id, mr_err_msg(&err));
    else
        g->gc.mvcc_busy = !res.pass_done;
}
