/* The replica's log in memory: records, the commit point, applying, voiding stale
 * timestamps, and snapshots (taking, truncating behind, installing). */
#include "tablet/paxos/px_int.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the log */

rec *pxi_rec_at(px_node *n, uint64_t slot)
{
    if (slot < n->log_start || slot - n->log_start >= n->log_len)
        return NULL;
    return &n->log[slot - n->log_start];
}

/* The record for `slot`, growing the log; NULL below log_start or when out of memory. */
rec *pxi_rec_get(px_node *n, uint64_t slot)
{
    if (slot < n->log_start)
        return NULL;
    size_t idx = slot - n->log_start;
    if (idx >= n->log_cap) {
        size_t cap = n->log_cap ? n->log_cap : 64;
        while (cap <= idx)
            cap *= 2;
        rec *l = realloc(n->log, cap * sizeof *l);
        if (!l) {
            n->oom = true;
            return NULL;
        }
        memset(l + n->log_cap, 0, (cap - n->log_cap) * sizeof *l);
        n->log = l;
        n->log_cap = cap;
    }
    if (idx >= n->log_len)
        n->log_len = idx + 1;
    return &n->log[idx];
}

uint64_t pxi_log_last(const px_node *n)
{
    return n->log_start + n->log_len - 1; /* log_start - 1 when empty */
}

px_entry pxi_rec_entry(uint64_t slot, const rec *r)
{
    px_entry e = {.slot = slot,
                  .ballot = r->ballot,
                  .ts = r->ts,
                  .kind = r->kind,
                  .len = r->len,
                  .data = r->data};
    return e;
}

/* Stores an entry (copying its bytes) and emits its persist action. */
rec *pxi_log_store(px_node *n, uint64_t slot, px_ballot b, int64_t ts, uint8_t kind,
                   const uint8_t *data, uint32_t len, bool chosen)
{
    rec *r = pxi_rec_get(n, slot);
    if (!r)
        return NULL;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        n->oom = true;
        return NULL;
    }
    if (len)
        memcpy(copy, data, len);
    pxi_grave_push(n, r->data);
    r->present = true;
    r->chosen = chosen;
    r->ballot = b;
    r->ts = ts;
    r->kind = kind;
    r->len = len;
    r->data = copy;
    r->acks = 0;
    r->self_seq = 0;
    if (ts > n->last_ts)
        n->last_ts = ts;
    px_persist *p = pxi_persist(n, PX_PERSIST_ENTRY);
    p->entry = pxi_rec_entry(slot, r);
    return r;
}

/* Drops records below `slot` (they are covered by the snapshot). */
void pxi_log_drop_below(px_node *n, uint64_t slot)
{
    if (slot <= n->log_start)
        return;
    uint64_t k = slot - n->log_start;
    if (k > n->log_len)
        k = n->log_len;
    if (k > 0) {
        for (uint64_t i = 0; i < k; i++)
            pxi_grave_push(n, n->log[i].data);
        memmove(n->log, n->log + k, (n->log_len - k) * sizeof *n->log);
        memset(n->log + (n->log_len - k), 0, k * sizeof *n->log);
        n->log_len -= k;
    }
    n->log_start = slot;
}

/* ---------------------------------------------------------------- commit, apply, snapshots */

void pxi_apply_upto_commit(px_node *n)
{
    while (n->applied < n->commit) {
        rec *r = pxi_rec_at(n, n->applied + 1);
        if (!r || !r->present)
            break; /* cannot happen: commit only covers present records */
        px_action *a = pxi_act(n, PX_ACT_APPLY);
        a->entry = pxi_rec_entry(n->applied + 1, r);
        a->voided = r->voided;
        n->applied++;
    }
    if (n->o.snapshot_every && n->applied >= n->snap_meta.slot + n->o.snapshot_every &&
        n->snap_requested <= n->snap_meta.slot) {
        px_action *a = pxi_act(n, PX_ACT_TAKE_SNAPSHOT);
        a->slot = n->applied;
        n->snap_requested = n->applied;
    }
}

/* Timestamps must increase in slot order across leaders (Spanner §4.1.2). Leases and the
 * s_max wait make every leader's fresh stamps exceed its predecessors', but Paxos may
 * still choose, after a newer leader's slots, an older leader's value that only a minority
 * had accepted (a later leader re-proposes it, P2c). Such an entry carries a stamp not
 * above an earlier slot's; every replica sees the same chosen log, so all of them void it
 * the same way: it is applied as a no-op (its client was never answered and retries). */
void pxi_commit_one(px_node *n, rec *r)
{
    r->voided = false;
    if (r->kind == PX_ENTRY_NOOP)
        return;
    if (r->ts <= n->commit_ts) {
        r->voided = true;
        return;
    }
    n->commit_ts = r->ts;
}

/* Moves the commit point over contiguous chosen records, registering configurations. */
void pxi_advance_commit(px_node *n)
{
    uint64_t old = n->commit;
    for (;;) {
        rec *r = pxi_rec_at(n, n->commit + 1);
        if (!r || !r->present || !r->chosen)
            break;
        n->commit++;
        pxi_commit_one(n, r);
        if (r->kind == PX_ENTRY_CONFIG && !r->voided) {
            px_config c;
            if (px_config_decode(r->data, r->len, &c, NULL) == 0)
                pxi_add_config(n, n->commit + n->o.alpha, &c);
        }
    }
    if (n->commit > old) {
        pxi_persist(n, PX_PERSIST_COMMIT)->commit = n->commit;
        if (n->proposed_upto < n->commit)
            n->proposed_upto = n->commit;
        if (n->cfg_slot && n->cfg_slot <= n->commit)
            n->cfg_slot = 0;
        pxi_apply_upto_commit(n);
    }
}

void pxi_build_meta(px_node *n, uint64_t slot, px_snapshot_meta *m)
{
    memset(m, 0, sizeof *m);
    m->slot = slot;
    m->last_ts = n->snap_meta.last_ts;
    for (uint64_t s = n->log_start; s <= slot; s++) {
        rec *r = pxi_rec_at(n, s);
        if (r && r->present && r->ts > m->last_ts)
            m->last_ts = r->ts;
    }
    uint32_t first = 0;
    for (uint32_t i = 0; i < n->ncfgs; i++)
        if (n->cfgs[i].effect_slot <= slot + 1)
            first = i;
    for (uint32_t i = first; i < n->ncfgs && m->nconfigs < PX_SNAP_CONFIGS; i++)
        m->configs[m->nconfigs++] = n->cfgs[i];
}

/* Installs a snapshot newer than our commit point (from a peer). */
void pxi_install_snapshot(px_node *n, const px_snapshot_meta *meta, const uint8_t *snap,
                          uint32_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        n->oom = true;
        return;
    }
    if (len)
        memcpy(copy, snap, len);
    pxi_grave_push(n, n->snap);
    n->snap = copy;
    n->snap_len = len;
    n->snap_meta = *meta;
    pxi_log_drop_below(n, meta->slot + 1);
    px_persist *p = pxi_persist(n, PX_PERSIST_SNAPSHOT);
    p->meta = *meta;
    p->snap = n->snap;
    p->snap_len = len;
    pxi_persist(n, PX_PERSIST_TRUNCATE)->upto = meta->slot;
    n->ncfgs = 0;
    for (uint32_t i = 0; i < meta->nconfigs; i++)
        pxi_add_config(n, meta->configs[i].effect_slot, &meta->configs[i].config);
    n->commit = meta->slot;
    n->applied = meta->slot;
    if (n->proposed_upto < n->commit)
        n->proposed_upto = n->commit;
    n->last_ts = max64(n->last_ts, meta->last_ts);
    n->commit_ts = meta->last_ts;
    pxi_persist(n, PX_PERSIST_COMMIT)->commit = n->commit;
    px_action *a = pxi_act(n, PX_ACT_INSTALL_SNAPSHOT);
    a->meta = *meta;
    a->snap = n->snap;
    a->snap_len = len;
    pxi_advance_commit(n);
}

/* The application's snapshot as of applied slot `slot`: persist it, then truncate the log
 * behind it, keeping log_keep entries for cheap catch-up of near laggards. */
int pxi_take_snapshot(px_node *n, uint64_t slot, const uint8_t *data, uint32_t len, mr_err *err)
{
    if (slot <= n->snap_meta.slot)
        return 0; /* stale: a newer snapshot was installed meanwhile */
    if (slot > n->applied || slot < n->log_start)
        return mr_errf(err, MR_EINVAL, "snapshot at slot %llu: applied %llu, log from %llu",
                       (unsigned long long)slot, (unsigned long long)n->applied,
                       (unsigned long long)n->log_start);
    px_snapshot_meta m;
    pxi_build_meta(n, slot, &m);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return mr_errf(err, MR_ENOMEM, "snapshot copy");
    if (len)
        memcpy(copy, data, len);
    pxi_grave_push(n, n->snap);
    n->snap = copy;
    n->snap_len = len;
    n->snap_meta = m;
    px_persist *p = pxi_persist(n, PX_PERSIST_SNAPSHOT);
    p->meta = m;
    p->snap = n->snap;
    p->snap_len = len;
    if (slot > n->o.log_keep) {
        uint64_t upto = slot - n->o.log_keep;
        if (upto >= n->log_start) {
            pxi_log_drop_below(n, upto + 1);
            pxi_persist(n, PX_PERSIST_TRUNCATE)->upto = upto;
        }
    }
    return 0;
}
