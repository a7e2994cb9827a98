/* px persist actions -> log store, and log store -> px_durable (see ls_paxos.h). */
#include "tablet/logstore/ls_paxos.h"

#include <stdlib.h>
#include <string.h>

#include "common/mr_codec.h"

/* 2: big-endian integers (1 was little-endian). */
#define META_VERSION 2

static unsigned char *put64(unsigned char *p, uint64_t v)
{
    mr_put_u64(p, v);
    return p + 8;
}

static unsigned char *put32(unsigned char *p, uint32_t v)
{
    mr_put_u32(p, v);
    return p + 4;
}

size_t ls_px_meta_encode(const px_snapshot_meta *m, unsigned char *buf)
{
    unsigned char *p = buf;
    uint32_t nc = m->nconfigs <= PX_SNAP_CONFIGS ? m->nconfigs : PX_SNAP_CONFIGS;
    *p++ = META_VERSION;
    p = put64(p, m->slot);
    p = put64(p, (uint64_t)m->last_ts);
    p = put32(p, nc);
    for (uint32_t i = 0; i < nc; i++) {
        const px_config *c = &m->configs[i].config;
        uint32_t n = c->n <= PX_MAX_NODES ? c->n : PX_MAX_NODES;
        p = put64(p, m->configs[i].effect_slot);
        p = put32(p, n);
        for (uint32_t k = 0; k < n; k++)
            p = put32(p, c->nodes[k]);
    }
    return (size_t)(p - buf);
}

int ls_px_meta_decode(const void *buf, size_t len, px_snapshot_meta *m, mr_err *err)
{
    const unsigned char *p = buf, *end = p + len;
    memset(m, 0, sizeof *m);
    if (len >= 1 && p[0] != META_VERSION)
        return mr_errf(err, MR_ECORRUPT,
                       "snapshot metadata: format version %u, this build reads version %d", p[0],
                       META_VERSION);
    if (len < 21)
        return mr_errf(err, MR_ECORRUPT, "snapshot metadata: bad header (%zu bytes)", len);
    m->slot = mr_get_u64(p + 1);
    m->last_ts = (int64_t)mr_get_u64(p + 9);
    m->nconfigs = mr_get_u32(p + 17);
    p += 21;
    if (m->nconfigs > PX_SNAP_CONFIGS)
        return mr_errf(err, MR_ECORRUPT, "snapshot metadata: %u configurations (max %d)",
                       m->nconfigs, PX_SNAP_CONFIGS);
    for (uint32_t i = 0; i < m->nconfigs; i++) {
        if (end - p < 12)
            return mr_errf(err, MR_ECORRUPT, "snapshot metadata: truncated configuration");
        m->configs[i].effect_slot = mr_get_u64(p);
        uint32_t n = mr_get_u32(p + 8);
        p += 12;
        if (n > PX_MAX_NODES || (size_t)(end - p) < 4 * (size_t)n)
            return mr_errf(err, MR_ECORRUPT, "snapshot metadata: bad configuration size %u", n);
        m->configs[i].config.n = n;
        for (uint32_t k = 0; k < n; k++, p += 4)
            m->configs[i].config.nodes[k] = mr_get_u32(p);
    }
    if (p != end)
        return mr_errf(err, MR_ECORRUPT, "snapshot metadata: %zu trailing bytes",
                       (size_t)(end - p));
    return 0;
}

static ls_ballot to_ls(px_ballot b)
{
    return (ls_ballot){b.round, b.node};
}

static int stage_one(ls_store *s, uint64_t group, const px_persist *p, mr_err *err)
{
    switch (p->kind) {
    case PX_PERSIST_PROMISE:
        return ls_set_promise(s, group, to_ls(p->promise), err);
    case PX_PERSIST_ENTRY: {
        const px_entry *pe = &p->entry;
        ls_entry e = {.slot = pe->slot,
                      .ballot = to_ls(pe->ballot),
                      .ts = pe->ts,
                      .kind = pe->kind,
                      .value = pe->data,
                      .len = pe->len};
        return ls_put_entry(s, group, &e, err);
    }
    case PX_PERSIST_COMMIT:
        return ls_set_chosen(s, group, p->commit, err);
    case PX_PERSIST_SNAPSHOT: {
        unsigned char meta[LS_PX_META_MAX];
        size_t mlen = ls_px_meta_encode(&p->meta, meta);
        return ls_install_snapshot(s, group, p->meta.slot, meta, mlen, p->snap, p->snap_len, err);
    }
    case PX_PERSIST_TRUNCATE:
        return ls_truncate_prefix(s, group, p->upto, err);
    }
    return mr_errf(err, MR_EINVAL, "unknown persist kind %d", (int)p->kind);
}

int ls_px_stage(ls_store *s, uint64_t group, const px_action *actions, size_t n, mr_err *err)
{
    if (n && !actions)
        return mr_errf(err, MR_EINVAL, "ls_px_stage: NULL actions");
    for (size_t i = 0; i < n; i++) {
        if (actions[i].kind != PX_ACT_PERSIST)
            continue;
        int rc = stage_one(s, group, &actions[i].persist, err);
        if (rc) {
            if (err)
                mr_err_wrap(err, "group %llu: persist action %zu", (unsigned long long)group, i);
            return rc;
        }
    }
    return 0;
}

int ls_px_persist(ls_store *s, uint64_t group, const px_batch *b, mr_err *err)
{
    if (!b)
        return mr_errf(err, MR_EINVAL, "ls_px_persist: NULL batch");
    int rc = ls_px_stage(s, group, b->actions, b->n, err);
    if (rc) {
        ls_rollback(s);
        return rc;
    }
    return ls_sync(s, err);
}

void ls_px_state_free(ls_px_state *st)
{
    if (!st)
        return;
    ls_group_state_free(&st->st);
    free(st->entries);
    memset(st, 0, sizeof *st);
}

int ls_px_load(ls_store *s, uint64_t group, ls_px_state *out, mr_err *err)
{
    if (!out)
        return mr_errf(err, MR_EINVAL, "ls_px_load: NULL output");
    memset(out, 0, sizeof *out);
    int rc = ls_load_group(s, group, &out->st, err);
    if (rc)
        return rc;
    const ls_group_state *g = &out->st;
    px_durable *d = &out->d;
    if (g->has_promise) {
        if (g->promised.node > UINT32_MAX) {
            rc = mr_errf(err, MR_ECORRUPT, "promise node %llu does not fit a px node id",
                         (unsigned long long)g->promised.node);
            goto fail;
        }
        d->promise = (px_ballot){g->promised.round, (px_node_id)g->promised.node};
    }
    /* A snapshot holds applied, hence chosen, slots: the commit point is at
     * least its slot even if the COMMIT persist of the same batch was lost. */
    d->commit = g->chosen;
    if (g->has_snapshot) {
        if ((rc = ls_px_meta_decode(g->snap_meta, g->snap_meta_len, &d->meta, err)))
            goto fail;
        if (d->meta.slot != g->snap_slot || g->snap_len > UINT32_MAX) {
            rc = mr_errf(err, MR_ECORRUPT, "snapshot at slot %llu: metadata says slot %llu",
                         (unsigned long long)g->snap_slot, (unsigned long long)d->meta.slot);
            goto fail;
        }
        d->snap = g->snap;
        d->snap_len = (uint32_t)g->snap_len;
        if (d->commit < d->meta.slot)
            d->commit = d->meta.slot;
    }
    if (g->n_entries) {
        out->entries = calloc(g->n_entries, sizeof *out->entries);
        if (!out->entries) {
            rc = mr_errf(err, MR_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < g->n_entries; i++) {
            const ls_entry *e = &g->entries[i];
            if (e->ballot.node > UINT32_MAX || e->len > UINT32_MAX || e->kind > UINT8_MAX) {
                rc = mr_errf(err, MR_ECORRUPT, "entry at slot %llu does not fit a px entry",
                             (unsigned long long)e->slot);
                goto fail;
            }
            out->entries[i] = (px_entry){.slot = e->slot,
                                         .ballot = {e->ballot.round, (px_node_id)e->ballot.node},
                                         .ts = e->ts,
                                         .kind = (uint8_t)e->kind,
                                         .len = (uint32_t)e->len,
                                         .data = e->value};
        }
    }
    d->entries = out->entries;
    d->nentries = g->n_entries;
    return 0;
fail:
    ls_px_state_free(out);
    if (err)
        mr_err_wrap(err, "load group %llu for paxos", (unsigned long long)group);
    return rc;
}
