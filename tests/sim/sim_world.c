/* The simulated world shared by meridian-sim and meridian-sim-txn (see sim_world.h): hosts,
 * replicas of the real Paxos core, the event queue, network, disks, clocks, faults, and the
 * checks of Paxos's invariants after every step.
 *
 * World: H hosts; every host runs one replica of each of G groups (like tablet servers),
 * one FIFO disk per host (one fsync covers every group's pending writes: group commit),
 * one TrueTime clock per host whose error stays within the declared bound, so its
 * interval always contains true time. Sends wait behind the host's pending writes (the
 * durability rule of px.h); a crash loses the pending writes and sends, never what was
 * durable. Faults: message loss, duplication, reordering and delay, partitions (also
 * asymmetric), crash and restart, slow disks, abdications. After a fault phase of
 * --steps events everything heals and the workload must finish within LIVE_NS.
 *
 * Checked: agreement and apply order (every replica applies the same entry at a slot),
 * validity (only proposed batches), snapshots (an installed snapshot equals the chosen
 * prefix), durability (at every crash each chosen slot is durable on a majority), leases
 * (intervals of different leaders disjoint in true time; a new lease starts above every
 * timestamp of earlier leaders), timestamps (strictly increasing in slot order), and
 * liveness. Negative controls: --mutant NAME runs a broken protocol that must be caught. */
#include "tests/sim/sim_world.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int64_t rnd_range(int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

bool chance(double p)
{
    return (double)(rnd() >> 11) / 9007199254740992.0 < p;
}

/* ---------------------------------------------------------------- the world */
void trace(world *w, const char *fmt, ...)
{
    char *line = w->trace[w->ntrace % TRACE_LINES];
    int k = snprintf(line, 200, "t=%.6f step=%ld ", (double)(w->now - T0) / 1e9, w->step);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + k, (size_t)(200 - k), fmt, ap);
    va_end(ap);
    w->ntrace++;
    if (w->o->trace)
        printf("  %s\n", line);
}

void violate(world *w, const char *fmt, ...)
{
    if (w->violation[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->violation, sizeof w->violation, fmt, ap);
    va_end(ap);
    trace(w, "VIOLATION: %s", w->violation);
}

void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "sim: out of memory\n");
        exit(3);
    }
    return p;
}

void *xrealloc(void *p, size_t sz)
{
    p = realloc(p, sz ? sz : 1);
    if (!p) {
        fprintf(stderr, "sim: out of memory\n");
        exit(3);
    }
    return p;
}

uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *c = xcalloc(1, n);
    if (n)
        memcpy(c, p, n);
    return c;
}

/* ---------------------------------------------------------------- event queue (min-heap) */

static bool ev_less(const sim_ev *a, const sim_ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

void push_ev(world *w, sim_ev ev)
{
    ev.seq = w->evseq++;
    if (w->nheap == w->heapcap) {
        w->heapcap = w->heapcap ? 2 * w->heapcap : 256;
        w->heap = xrealloc(w->heap, w->heapcap * sizeof *w->heap);
    }
    size_t i = w->nheap++;
    w->heap[i] = ev;
    while (i > 0 && ev_less(&w->heap[i], &w->heap[(i - 1) / 2])) {
        sim_ev t = w->heap[i];
        w->heap[i] = w->heap[(i - 1) / 2];
        w->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static sim_ev pop_ev(world *w)
{
    sim_ev top = w->heap[0];
    w->heap[0] = w->heap[--w->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < w->nheap && ev_less(&w->heap[l], &w->heap[m]))
            m = l;
        if (r < w->nheap && ev_less(&w->heap[r], &w->heap[m]))
            m = r;
        if (m == i)
            break;
        sim_ev t = w->heap[i];
        w->heap[i] = w->heap[m];
        w->heap[m] = t;
        i = m;
    }
    return top;
}

/* ---------------------------------------------------------------- clocks */

tt_interval host_tt(const world *w, int h)
{
    int64_t c = w->now + w->hosts[h].clock_err;
    tt_interval t = {c - w->bound, c + w->bound};
    return t;
}

/* ---------------------------------------------------------------- checks */

uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

static uint64_t entry_hash(const px_entry *e)
{
    uint64_t h = 0xCBF29CE484222325ull;
    h = fnv(h, &e->kind, 1);
    h = fnv(h, &e->ts, sizeof e->ts);
    return fnv(h, e->data, e->len);
}

static uint64_t mix(uint64_t h, uint64_t slot, uint64_t vh)
{
    return (h ^ vh) * 0x9E3779B97F4A7C15ull + slot;
}

static uint32_t prop_check(const world *w, int g, uint64_t id)
{
    uint64_t h = fnv(0xCBF29CE484222325ull, &w->seed, 8);
    h = fnv(h, &g, sizeof g);
    return (uint32_t)fnv(h, &id, 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Validity: a DATA entry holds only proposals the clients made; marks them chosen
 * unless the entry is void (applied as a no-op; its clients retry). */
static void check_valid(world *w, int g, const px_entry *e, bool voided)
{
    group_state *gs = &w->g[g];
    if (e->kind == PX_ENTRY_NOOP) {
        if (e->len)
            violate(w, "g%d slot %" PRIu64 ": no-op with %u bytes", g, e->slot, e->len);
        return;
    }
    if (e->kind == PX_ENTRY_CONFIG) {
        px_config c;
        if (px_config_decode(e->data, e->len, &c, NULL)) {
            violate(w, "validity: g%d slot %" PRIu64 ": undecodable configuration", g, e->slot);
            return;
        }
        for (int i = 0; i < gs->nproposed_cfgs; i++)
            if (gs->proposed_cfgs[i].n == c.n &&
                !memcmp(gs->proposed_cfgs[i].nodes, c.nodes, c.n * sizeof c.nodes[0])) {
                if (!voided && gs->ncfgs < 64) {
                    gs->cfgs[gs->ncfgs].effect_slot = e->slot + w->popts.alpha;
                    gs->cfgs[gs->ncfgs++].config = c;
                    w->stat_configs++;
                    trace(w,
                          "g%d configuration of %u members chosen at slot %" PRIu64
                          ", in effect at %" PRIu64,
                          g, c.n, e->slot, e->slot + w->popts.alpha);
                }
                return;
            }
        violate(w, "validity: g%d slot %" PRIu64 ": a configuration nobody proposed", g, e->slot);
        return;
    }
    if (e->kind != PX_ENTRY_DATA) {
        violate(w, "g%d slot %" PRIu64 ": unexpected entry kind %u", g, e->slot, e->kind);
        return;
    }
    uint32_t off = 0, plen;
    const uint8_t *p;
    int rc, count = 0;
    while ((rc = px_batch_next(e->data, e->len, &off, &p, &plen)) == 1) {
        count++;
        uint64_t id = 0;
        if (plen >= PROP_BYTES)
            for (int i = 7; i >= 0; i--)
                id = id << 8 | p[4 + i];
        if (plen < PROP_BYTES || get_u32(p) != (uint32_t)g || id >= gs->nprops ||
            get_u32(p + 12) != prop_check(w, g, id) ||
            fnv(0xCBF29CE484222325ull, p + PROP_BYTES, plen - PROP_BYTES) != gs->props[id].phash) {
            violate(w, "validity: g%d slot %" PRIu64 " holds a value nobody proposed", g, e->slot);
            return;
        }
        if (!voided)
            gs->props[id].chosen = true;
    }
    if (rc < 0 || count == 0)
        violate(w, "validity: g%d slot %" PRIu64 ": malformed batch", g, e->slot);
}

uint64_t sim_new_proposal(world *w, int g, const uint8_t *payload, size_t len)
{
    group_state *gs = &w->g[g];
    if (gs->nprops == gs->propcap) {
        gs->propcap = gs->propcap ? 2 * gs->propcap : 256;
        gs->props = xrealloc(gs->props, gs->propcap * sizeof *gs->props);
    }
    uint64_t id = gs->nprops++;
    gs->props[id] = (proposal){.phash = fnv(0xCBF29CE484222325ull, payload, len)};
    return id;
}

int sim_submit_at(world *w, int g, uint64_t id, int h, const uint8_t *payload, size_t len)
{
    proposal *p = &w->g[g].props[id];
    p->last_submit = w->now;
    p->queued = false;
    p->tries++;
    px_status st;
    px_node_status(w->hosts[h].r[g].node, &st);
    uint8_t *b = xcalloc(1, PROP_BYTES + len);
    put_u32(b, (uint32_t)g);
    for (int i = 0; i < 8; i++)
        b[4 + i] = (uint8_t)(id >> (8 * i));
    put_u32(b + 12, prop_check(w, g, id));
    if (len)
        memcpy(b + PROP_BYTES, payload, len);
    px_event ev = {.kind = PX_EV_PROPOSE, .data = b, .len = (uint32_t)(PROP_BYTES + len)};
    int rc = step_node(w, h, g, &ev);
    free(b);
    p->queued = rc == 0;
    p->host = h;
    p->ballot = st.ballot;
    return rc;
}

static chosen_rec *chosen_at(group_state *gs, uint64_t slot)
{
    if (slot == 0)
        return NULL;
    if (slot > gs->nchosen) {
        size_t n = gs->nchosen ? gs->nchosen : 64;
        while (n < slot)
            n *= 2;
        gs->chosen = xrealloc(gs->chosen, n * sizeof *gs->chosen);
        memset(gs->chosen + gs->nchosen, 0, (n - gs->nchosen) * sizeof *gs->chosen);
        gs->nchosen = n;
    }
    return &gs->chosen[slot - 1];
}

/* Timestamps strictly increase in slot order across all leaders (Spanner §4.1.2). */
static void check_ts(world *w, int g, uint64_t slot)
{
    group_state *gs = &w->g[g];
    chosen_rec *c = chosen_at(gs, slot);
    if (c->kind == PX_ENTRY_NOOP || c->voided)
        return;
    if (c->ts <= 0) {
        violate(w, "g%d slot %" PRIu64 ": no timestamp", g, slot);
        return;
    }
    for (uint64_t s = slot - 1; s >= 1; s--) {
        chosen_rec *b = chosen_at(gs, s);
        if (b->present && b->kind != PX_ENTRY_NOOP && !b->voided) {
            if (b->ts >= c->ts)
                violate(w,
                        "timestamps: g%d slot %" PRIu64 " ts %" PRId64 " <= slot %" PRIu64
                        " ts %" PRId64,
                        g, slot, c->ts, s, b->ts);
            break;
        }
    }
    for (uint64_t s = slot + 1; s <= gs->nchosen; s++) {
        chosen_rec *a = &gs->chosen[s - 1];
        if (a->present && a->kind != PX_ENTRY_NOOP && !a->voided) {
            if (a->ts <= c->ts)
                violate(w,
                        "timestamps: g%d slot %" PRIu64 " ts %" PRId64 " >= slot %" PRIu64
                        " ts %" PRId64,
                        g, slot, c->ts, s, a->ts);
            break;
        }
    }
}

/* Agreement: the first replica to apply a slot defines it; every other must match. */
static void on_apply(world *w, int h, int g, const px_entry *e, bool voided)
{
    replica *r = &w->hosts[h].r[g];
    if (e->slot != r->app.applied + 1) {
        violate(w, "h%d g%d applied slot %" PRIu64 " after %" PRIu64, h + 1, g, e->slot,
                r->app.applied);
        return;
    }
    uint64_t vh = entry_hash(e);
    chosen_rec *c = chosen_at(&w->g[g], e->slot);
    if (!c->present) {
        c->present = true;
        c->kind = e->kind;
        c->ts = e->ts;
        c->vhash = vh;
        c->voided = voided;
        w->stat_chosen++;
        w->stat_voided += voided;
        if (voided)
            trace(w,
                  "g%d slot %" PRIu64 " chosen but void: its timestamp %" PRId64
                  " is not above an earlier slot's",
                  g, e->slot, e->ts);
        check_valid(w, g, e, voided);
        check_ts(w, g, e->slot);
    } else if (c->vhash != vh || c->voided != voided) {
        violate(w,
                "agreement: g%d slot %" PRIu64 " applied with two values (h%d: kind %u ts %" PRId64
                ")",
                g, e->slot, h + 1, e->kind, e->ts);
    }
    r->app.applied = e->slot;
    r->app.hash = mix(r->app.hash, e->slot, vh);
    if (w->app->apply && !w->violation[0])
        w->app->apply(w, h, g, e, voided);
}

static uint64_t prefix_hash(world *w, int g, uint64_t slot, bool *ok)
{
    group_state *gs = &w->g[g];
    if (!gs->prefix) {
        gs->prefix = xcalloc(1, sizeof *gs->prefix);
        gs->nprefix = 1;
    }
    while (gs->nprefix <= slot) {
        uint64_t s = gs->nprefix;
        if (s > gs->nchosen || !gs->chosen[s - 1].present)
            break;
        gs->prefix = xrealloc(gs->prefix, (s + 1) * sizeof *gs->prefix);
        gs->prefix[s] = mix(gs->prefix[s - 1], s, gs->chosen[s - 1].vhash);
        gs->nprefix++;
    }
    *ok = slot < gs->nprefix;
    return *ok ? gs->prefix[slot] : 0;
}

static void on_install(world *w, int h, int g, const px_snapshot_meta *m, const uint8_t *b,
                       uint32_t len)
{
    replica *r = &w->hosts[h].r[g];
    if (len < 16) {
        violate(w, "h%d g%d: snapshot of %u bytes", h + 1, g, len);
        return;
    }
    uint64_t slot = 0, hash = 0;
    for (int i = 7; i >= 0; i--) {
        slot = slot << 8 | b[i];
        hash = hash << 8 | b[8 + i];
    }
    bool ok;
    uint64_t want = prefix_hash(w, g, slot, &ok);
    if (slot != m->slot || !ok || want != hash)
        violate(w,
                "snapshot: h%d g%d installs slot %" PRIu64 " (meta %" PRIu64
                ") that differs from the chosen prefix",
                h + 1, g, slot, m->slot);
    r->app.applied = slot;
    r->app.hash = hash;
    if (w->app->install && !w->violation[0])
        w->app->install(w, h, g, m, b + 16, len - 16);
}

/* Leases: different leaders' lease intervals are disjoint in true time, and a new lease
 * starts after every timestamp an earlier leader assigned (Spanner §4.1.1, §4.1.2). */
static void check_leases(world *w, int g, int h)
{
    replica *r = &w->hosts[h].r[g];
    if (!r->node)
        return;
    px_status st;
    px_node_status(r->node, &st);
    group_state *gs = &w->g[g];
    lease_rec *me = NULL;
    for (size_t i = 0; i < gs->nleases; i++)
        if (gs->leases[i].host == h && px_ballot_cmp(gs->leases[i].ballot, st.ballot) == 0)
            me = &gs->leases[i];
    if (me && st.s_max > me->smax)
        me->smax = st.s_max;
    if (!px_node_lease_valid(r->node, host_tt(w, h)))
        return;
    /* The lease holds while the host's TT.now().latest < lease_end. With a clock inside the
     * bound lease_end is itself a true time past that; a lying clock's (pinned beyond the
     * bound) ends, in true time, at lease_end - error - bound. */
    int64_t end = st.lease_end;
    int64_t err = w->hosts[h].clock_err;
    if (err > w->bound || err < -w->bound)
        end -= err + w->bound;
    if (end <= w->now) {
        violate(w, "lease: h%d g%d claims a lease ending at %" PRId64 " at true time %" PRId64,
                h + 1, g, (int64_t)(end - T0), (int64_t)(w->now - T0));
        return;
    }
    if (!me) {
        if (gs->nleases == gs->leasecap) {
            gs->leasecap = gs->leasecap ? 2 * gs->leasecap : 16;
            gs->leases = xrealloc(gs->leases, gs->leasecap * sizeof *gs->leases);
        }
        me = &gs->leases[gs->nleases++];
        me->ballot = st.ballot;
        me->host = h;
        me->start = w->now;
        me->end = end;
        me->smax = st.s_max;
        w->stat_leases++;
        trace(w, "h%d g%d lease starts, ballot (%" PRIu64 ",%u), until +%.6f", h + 1, g,
              st.ballot.round, st.ballot.node, (double)(st.lease_end - w->now) / 1e9);
    } else if (end > me->end) {
        me->end = end;
    }
    for (size_t i = 0; i < gs->nleases; i++) {
        lease_rec *o = &gs->leases[i];
        if (o == me || o->host == h)
            continue;
        if (o->start < me->end && me->start < o->end)
            violate(w,
                    "leases overlap: g%d h%d ballot (%" PRIu64 ",%u) [%.6f, %.6f) and h%d "
                    "ballot (%" PRIu64 ",%u) [%.6f, %.6f)",
                    g, o->host + 1, o->ballot.round, o->ballot.node, (double)(o->start - T0) / 1e9,
                    (double)(o->end - T0) / 1e9, h + 1, me->ballot.round, me->ballot.node,
                    (double)(me->start - T0) / 1e9, (double)(me->end - T0) / 1e9);
        if (o->start < me->start && o->smax >= me->start && !w->clocks_lie)
            violate(w,
                    "lease/timestamps: g%d h%d's lease starts at %.6f below h%d's timestamp "
                    "%.6f",
                    g, h + 1, (double)(me->start - T0) / 1e9, o->host + 1,
                    (double)(o->smax - T0) / 1e9);
    }
}

static const px_config *sim_cfg_at(const group_state *gs, uint64_t slot)
{
    const px_config *c = &gs->cfgs[0].config;
    for (int i = 0; i < gs->ncfgs; i++)
        if (gs->cfgs[i].effect_slot <= slot)
            c = &gs->cfgs[i].config;
    return c;
}

/* Durability: every slot someone applied is durable on a majority (entry with the same
 * value, or a snapshot covering it). Checked whenever a host crashes. */
static void check_durable(world *w)
{
    for (int g = 0; g < w->ngroups; g++) {
        group_state *gs = &w->g[g];
        for (uint64_t s = 1; s <= gs->nchosen; s++) {
            chosen_rec *c = &gs->chosen[s - 1];
            if (!c->present)
                continue;
            const px_config *cfg = sim_cfg_at(gs, s);
            int need = (int)cfg->n / 2 + 1;
            int have = 0;
            for (int h = 0; h < w->nhosts; h++) {
                if (!px_config_has(cfg, (px_node_id)h + 1))
                    continue;
                sim_durable *d = &w->hosts[h].r[g].d;
                if (d->meta.slot >= s) {
                    have++;
                    continue;
                }
                if (s <= d->nents && d->ents[s - 1].present &&
                    entry_hash(&d->ents[s - 1].e) == c->vhash)
                    have++;
            }
            if (have < need) {
                violate(w, "durability: g%d slot %" PRIu64 " durable on %d hosts, need %d", g, s,
                        have, need);
                return;
            }
        }
    }
}

/* ---------------------------------------------------------------- durable storage */

static void durable_apply(sim_durable *d, const witem *it)
{
    const px_persist *p = &it->p;
    switch (p->kind) {
    case PX_PERSIST_PROMISE:
        d->promise = p->promise;
        break;
    case PX_PERSIST_ENTRY: {
        uint64_t s = p->entry.slot;
        if (s > d->nents) {
            size_t n = d->nents ? d->nents : 64;
            while (n < s)
                n *= 2;
            d->ents = xrealloc(d->ents, n * sizeof *d->ents);
            memset(d->ents + d->nents, 0, (n - d->nents) * sizeof *d->ents);
            d->nents = n;
        }
        dent *de = &d->ents[s - 1];
        free(de->data);
        de->present = true;
        de->e = p->entry;
        de->data = dup_bytes(it->buf, it->len);
        de->e.data = de->data;
        break;
    }
    case PX_PERSIST_COMMIT:
        if (p->commit > d->commit)
            d->commit = p->commit;
        break;
    case PX_PERSIST_SNAPSHOT:
        free(d->snap);
        d->meta = p->meta;
        d->snap = dup_bytes(it->buf, it->len);
        d->snap_len = (uint32_t)it->len;
        break;
    case PX_PERSIST_TRUNCATE:
        for (uint64_t s = 1; s <= p->upto && s <= d->nents; s++) {
            free(d->ents[s - 1].data);
            memset(&d->ents[s - 1], 0, sizeof d->ents[s - 1]);
        }
        break;
    }
}

static void durable_free(sim_durable *d)
{
    for (size_t i = 0; i < d->nents; i++)
        free(d->ents[i].data);
    free(d->ents);
    free(d->snap);
    memset(d, 0, sizeof *d);
}

/* Durability of replies (Paxos Made Simple §2.2: an acceptor must remember its promises
 * and acceptances through failures): when a PROMISE or ACCEPTED leaves a host, what it
 * reveals is already durable there. */
static void check_reply_durable(world *w, int h, int g, const px_msg *m)
{
    const sim_durable *d = &w->hosts[h].r[g].d;
    if (!m->ok || (m->type != PX_MSG_PROMISE && m->type != PX_MSG_ACCEPTED))
        return;
    if (px_ballot_cmp(d->promise, m->ballot) < 0) {
        violate(w,
                "durability: h%d g%d sends %s for ballot (%" PRIu64 ",%u) but its durable "
                "promise is (%" PRIu64 ",%u)",
                h + 1, g, px_msg_type_name(m->type), m->ballot.round, m->ballot.node,
                d->promise.round, d->promise.node);
        return;
    }
    for (uint32_t i = 0; i < m->nslots && m->type == PX_MSG_ACCEPTED; i++) {
        uint64_t s = m->slots[i];
        if (s <= d->meta.slot || (s <= d->nents && d->ents[s - 1].present))
            continue;
        violate(w, "durability: h%d g%d acknowledges slot %" PRIu64 " it has not persisted", h + 1,
                g, s);
        return;
    }
}

static void check_queued_reply(world *w, int h, int g, const uint8_t *buf, size_t len)
{
    if (len < 2 || (buf[1] != PX_MSG_PROMISE && buf[1] != PX_MSG_ACCEPTED))
        return;
    px_msg m;
    if (px_msg_decode(buf, len, &m, NULL) == 0) {
        check_reply_durable(w, h, g, &m);
        px_msg_free(&m);
    }
}

/* ---------------------------------------------------------------- network and disk */

static void net_send(world *w, int from, int to, int g, uint8_t *buf, size_t len)
{
    if (to < 0 || to >= w->nhosts || w->blocked[from][to] || chance(w->loss)) {
        free(buf);
        return;
    }
    int copies = chance(w->dup) ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        int64_t d = rnd_range(MS / 2, 15 * MS);
        if (!w->healed && chance(0.05))
            d += rnd_range(20 * MS, 200 * MS); /* reordering by long delays */
        sim_ev ev = {.t = w->now + d, .kind = EV_DELIVER, .host = to, .from = from, .group = g};
        ev.bytes = i == 0 ? buf : dup_bytes(buf, len);
        ev.len = len;
        push_ev(w, ev);
    }
}

static void disk_schedule(world *w, int h)
{
    host *hs = &w->hosts[h];
    if (hs->disk_scheduled || hs->nq == 0)
        return;
    hs->disk_scheduled = true;
    int64_t lat = hs->slow_disk ? rnd_range(20 * MS, 150 * MS) : rnd_range(MS / 5, 3 * MS);
    sim_ev ev = {.t = w->now + lat, .kind = EV_DISK, .host = h, .gen = hs->gen};
    push_ev(w, ev);
}

static witem *q_push(host *hs)
{
    if (hs->nq == hs->qcap) {
        hs->qcap = hs->qcap ? 2 * hs->qcap : 64;
        hs->q = xrealloc(hs->q, hs->qcap * sizeof *hs->q);
    }
    witem *it = &hs->q[hs->nq++];
    memset(it, 0, sizeof *it);
    return it;
}

static void q_free(host *hs)
{
    for (size_t i = 0; i < hs->nq; i++)
        free(hs->q[i].buf);
    hs->nq = 0;
}

/* ---------------------------------------------------------------- executing actions */

static void run_batch(world *w, int h, int g, px_batch b);

static const char *ballot_str(px_ballot b, char *buf)
{
    snprintf(buf, 32, "(%" PRIu64 ",%u)", b.round, b.node);
    return buf;
}

int step_node(world *w, int h, int g, const px_event *ev)
{
    replica *r = &w->hosts[h].r[g];
    px_batch b;
    mr_err err = {0};
    int rc = px_step(r->node, host_tt(w, h), ev, &b, &err);
    if (rc == MR_EINVAL && ev->kind != PX_EV_PROPOSE && ev->kind != PX_EV_CONFIG)
        violate(w, "h%d g%d rejected its peers' input: %s", h + 1, g, mr_err_msg(&err));
    if (rc == MR_ENOMEM)
        violate(w, "h%d g%d: %s", h + 1, g, mr_err_msg(&err));
    run_batch(w, h, g, b);
    /* Workload hooks never call into a core (its batch would be invalidated): they schedule
     * EV_APP events instead. */
    if (w->app->stepped && r->node)
        w->app->stepped(w, h, g);
    return rc;
}

static void run_batch(world *w, int h, int g, px_batch b)
{
    host *hs = &w->hosts[h];
    replica *r = &hs->r[g];
    uint64_t snap_slot = 0;
    for (size_t i = 0; i < b.n; i++) {
        const px_action *a = &b.actions[i];
        switch (a->kind) {
        case PX_ACT_PERSIST: {
            witem *it = q_push(hs);
            it->kind = W_PERSIST;
            it->group = g;
            it->p = a->persist;
            if (a->persist.kind == PX_PERSIST_ENTRY) {
                it->buf = dup_bytes(a->persist.entry.data, a->persist.entry.len);
                it->len = a->persist.entry.len;
                it->p.entry.data = NULL;
            } else if (a->persist.kind == PX_PERSIST_SNAPSHOT) {
                it->buf = dup_bytes(a->persist.snap, a->persist.snap_len);
                it->len = a->persist.snap_len;
                it->p.snap = NULL;
            }
            break;
        }
        case PX_ACT_SEND: {
            uint8_t *buf;
            size_t len;
            mr_err err = {0};
            if (px_msg_encode(&a->msg, &buf, &len, &err)) {
                violate(w, "h%d g%d: cannot encode: %s", h + 1, g, mr_err_msg(&err));
                break;
            }
            if (w->o->trace) {
                char b1[32];
                trace(w, "h%d g%d send %s to h%u ballot %s ok=%d n=%u commit=%" PRIu64, h + 1, g,
                      px_msg_type_name(a->msg.type), a->to, ballot_str(a->msg.ballot, b1),
                      a->msg.ok, a->msg.nentries + a->msg.nslots, a->msg.commit);
            }
            if (a->msg.type == PX_MSG_PROMISE && a->msg.ok && hs->crash_armed) {
                /* Targeted fault: crash right after promising, the moment a lost promise
                 * would matter. */
                hs->crash_armed = false;
                sim_ev ev = {.t = w->now + rnd_range(0, 3 * MS),
                             .kind = EV_CRASH,
                             .host = h,
                             .gen = hs->gen};
                push_ev(w, ev);
            }
            if (hs->nq) { /* durability rule: behind every pending write */
                witem *it = q_push(hs);
                it->kind = W_SEND;
                it->group = g;
                it->to = (int)a->to - 1;
                it->buf = buf;
                it->len = len;
            } else {
                check_reply_durable(w, h, g, &a->msg);
                net_send(w, h, (int)a->to - 1, g, buf, len);
            }
            break;
        }
        case PX_ACT_APPLY:
            on_apply(w, h, g, &a->entry, a->voided);
            break;
        case PX_ACT_TAKE_SNAPSHOT:
            snap_slot = a->slot;
            break;
        case PX_ACT_INSTALL_SNAPSHOT:
            trace(w, "h%d g%d installs snapshot at slot %" PRIu64, h + 1, g, a->meta.slot);
            on_install(w, h, g, &a->meta, a->snap, a->snap_len);
            break;
        }
    }
    if (b.persist_seq) {
        witem *it = q_push(hs);
        it->kind = W_NOTIFY;
        it->group = g;
        it->seq = b.persist_seq;
    }
    disk_schedule(w, h);
    if (snap_slot && snap_slot == r->app.applied) {
        uint8_t *extra = NULL;
        size_t nextra = 0;
        if (w->app->snapshot)
            w->app->snapshot(w, h, g, &extra, &nextra);
        uint8_t *s = xcalloc(1, 16 + nextra);
        for (int i = 0; i < 8; i++) {
            s[i] = (uint8_t)(r->app.applied >> (8 * i));
            s[8 + i] = (uint8_t)(r->app.hash >> (8 * i));
        }
        if (nextra)
            memcpy(s + 16, extra, nextra);
        free(extra);
        px_event ev = {
            .kind = PX_EV_SNAPSHOT, .slot = snap_slot, .data = s, .len = (uint32_t)(16 + nextra)};
        step_node(w, h, g, &ev);
        free(s);
    }
}

/* ---------------------------------------------------------------- hosts */

static void node_options(world *w, int h, int g, px_options *o)
{
    *o = w->popts;
    o->group = (uint64_t)g + 1;
    o->self = (px_node_id)h + 1;
    o->seed = w->seed * 131 + (uint64_t)(h * 17 + g) + w->hosts[h].gen * 7919;
}

static void host_start(world *w, int h)
{
    host *hs = &w->hosts[h];
    hs->up = true;
    hs->gen++;
    for (int g = 0; g < w->ngroups; g++) {
        replica *r = &hs->r[g];
        px_options o;
        node_options(w, h, g, &o);
        mr_err err = {0};
        if (px_node_create(&o, &r->node, &err)) {
            violate(w, "h%d g%d create: %s", h + 1, g, mr_err_msg(&err));
            return;
        }
        /* Hand the durable state back, as a restarting node would read it from disk. */
        size_t n = 0;
        for (size_t i = 0; i < r->d.nents; i++)
            n += r->d.ents[i].present;
        px_entry *es = xcalloc(n, sizeof *es);
        size_t k = 0;
        for (size_t i = 0; i < r->d.nents; i++)
            if (r->d.ents[i].present)
                es[k++] = r->d.ents[i].e;
        px_durable d = {.promise = r->d.promise,
                        .commit = r->d.commit,
                        .meta = r->d.meta,
                        .snap = r->d.snap,
                        .snap_len = r->d.snap_len,
                        .entries = es,
                        .nentries = k};
        int rc = px_node_restore(r->node, &d, &err);
        free(es);
        if (rc) {
            violate(w, "h%d g%d restore: %s", h + 1, g, mr_err_msg(&err));
            return;
        }
        r->app.applied = 0;
        r->app.hash = 0;
        if (w->app->replica_start)
            w->app->replica_start(w, h, g);
        px_batch b;
        if (px_node_start(r->node, host_tt(w, h), &b, &err)) {
            violate(w, "h%d g%d start: %s", h + 1, g, mr_err_msg(&err));
            return;
        }
        run_batch(w, h, g, b);
    }
    sim_ev ev = {.t = w->now + rnd_range(1, 10 * MS), .kind = EV_TICK, .host = h, .gen = hs->gen};
    push_ev(w, ev);
}

static void host_crash(world *w, int h)
{
    host *hs = &w->hosts[h];
    trace(w, "h%d CRASH (%zu pending writes/sends lost)", h + 1, hs->nq);
    w->stat_crashes++;
    hs->up = false;
    hs->gen++;
    hs->disk_scheduled = false;
    q_free(hs);
    for (int g = 0; g < w->ngroups; g++) {
        px_node_destroy(hs->r[g].node);
        hs->r[g].node = NULL;
        if (w->app->replica_stop)
            w->app->replica_stop(w, h, g);
    }
    check_durable(w);
}

/* ---------------------------------------------------------------- events */

static void crash_and_schedule_restart(world *w, int h)
{
    host_crash(w, h);
    int64_t d = chance(0.5) ? rnd_range(5 * MS, 60 * MS) : rnd_range(50 * MS, 1500 * MS);
    sim_ev ev = {.t = w->now + d, .kind = EV_RESTART, .host = h, .gen = w->hosts[h].gen};
    push_ev(w, ev);
}

int leader_of(world *w, int g)
{
    int best = -1;
    px_ballot bb = {0, 0};
    for (int h = 0; h < w->nhosts; h++) {
        if (!w->hosts[h].up)
            continue;
        px_status st;
        px_node_status(w->hosts[h].r[g].node, &st);
        if (st.state == PX_LEADER && px_ballot_cmp(st.ballot, bb) > 0) {
            bb = st.ballot;
            best = h;
        }
    }
    return best;
}

static void reconfigure(world *w, int g)
{
    group_state *gs = &w->g[g];
    int l = leader_of(w, g);
    if (l < 0 || gs->nproposed_cfgs >= 64)
        return;
    px_config cur = gs->cfgs[gs->ncfgs - 1].config, next = cur;
    if ((int)cur.n <= w->replicas) {
        int cand[MAX_HOSTS], k = 0;
        for (int h = 0; h < w->nhosts; h++)
            if (!px_config_has(&cur, (px_node_id)h + 1))
                cand[k++] = h;
        if (!k)
            return;
        next.nodes[next.n++] = (px_node_id)cand[rnd() % (uint64_t)k] + 1;
    } else {
        uint32_t i;
        do
            i = (uint32_t)(rnd() % cur.n);
        while (cur.nodes[i] == (px_node_id)l + 1);
        next.nodes[i] = next.nodes[--next.n];
        next.nodes[next.n] = 0;
    }
    px_event ev = {.kind = PX_EV_CONFIG, .config = next};
    gs->proposed_cfgs[gs->nproposed_cfgs++] = next; /* before the step: it may apply at once */
    replica *r = &w->hosts[l].r[g];
    px_batch b;
    mr_err err = {0};
    int rc = px_step(r->node, host_tt(w, l), &ev, &b, &err);
    trace(w, "h%d g%d reconfigure to %u members: %s", l + 1, g, next.n,
          rc ? mr_err_msg(&err) : "proposed");
    run_batch(w, l, g, b);
}

static void heal_partitions(world *w)
{
    memset(w->blocked, 0, sizeof w->blocked);
}

static void on_fault(world *w)
{
    int n = w->nhosts;
    int h = (int)rnd_range(0, n - 1);
    switch (rnd() % 13) {
    case 12:
        reconfigure(w, (int)rnd_range(0, w->ngroups - 1));
        break;
    case 0:
    case 1:
        if (w->hosts[h].up)
            crash_and_schedule_restart(w, h);
        break;
    case 9:
    case 10:
    case 11:
        w->hosts[h].crash_armed = true;
        trace(w, "h%d will crash after its next promise", h + 1);
        break;
    case 2: /* isolate one host */
        heal_partitions(w);
        for (int j = 0; j < n; j++)
            if (j != h)
                w->blocked[h][j] = w->blocked[j][h] = true;
        trace(w, "partition: h%d isolated", h + 1);
        break;
    case 3: { /* asymmetric: h cannot reach j, j still reaches h */
        int j = (int)rnd_range(0, n - 1);
        if (j != h) {
            w->blocked[h][j] = true;
            trace(w, "partition: h%d -> h%d blocked (one way)", h + 1, j + 1);
        }
        break;
    }
    case 4: { /* random split */
        heal_partitions(w);
        uint32_t side = (uint32_t)rnd();
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++)
                if (((side >> a) & 1) != ((side >> b) & 1))
                    w->blocked[a][b] = true;
        trace(w, "partition: split by mask %x", side & ((1u << n) - 1));
        break;
    }
    case 5:
        heal_partitions(w);
        trace(w, "partitions healed");
        break;
    case 6:
        w->hosts[h].slow_disk = !w->hosts[h].slow_disk;
        trace(w, "h%d disk %s", h + 1, w->hosts[h].slow_disk ? "slow" : "fast");
        break;
    case 7:
        w->loss = chance(0.5) ? 0 : (double)rnd_range(1, 30) / 100;
        w->dup = chance(0.5) ? 0 : (double)rnd_range(1, 10) / 100;
        trace(w, "network: loss %.2f dup %.2f", w->loss, w->dup);
        break;
    case 8: {
        int g = (int)rnd_range(0, w->ngroups - 1);
        int l = leader_of(w, g);
        if (l >= 0) {
            trace(w, "h%d g%d told to abdicate", l + 1, g);
            px_event ev = {.kind = PX_EV_ABDICATE};
            step_node(w, l, g, &ev);
            /* The leader stops acting now, in its current ballot and any earlier one whose
             * votes it carried over (same node): its lease intervals end here, and the
             * RELEASE it sends after TT.after(s_max) frees those votes. */
            group_state *gs = &w->g[g];
            for (size_t i = 0; i < gs->nleases; i++)
                if (gs->leases[i].host == l && gs->leases[i].end > w->now)
                    gs->leases[i].end = w->now;
        }
        break;
    }
    }
    sim_ev ev = {.t = w->now + rnd_range(30 * MS, 400 * MS), .kind = EV_FAULT};
    push_ev(w, ev);
}

static void heal(world *w)
{
    w->healed = true;
    w->heal_time = w->now;
    heal_partitions(w);
    w->loss = w->dup = 0;
    for (int h = 0; h < w->nhosts; h++) {
        w->hosts[h].slow_disk = false;
        if (!w->hosts[h].up)
            host_start(w, h);
    }
    trace(w, "HEAL: faults stop; every proposal must be chosen within %.0f s",
          (double)LIVE_NS / 1e9);
}

static void on_deliver(world *w, sim_ev *ev)
{
    host *hs = &w->hosts[ev->host];
    if (!hs->up) {
        free(ev->bytes);
        return;
    }
    px_msg m;
    mr_err err = {0};
    if (px_msg_decode(ev->bytes, ev->len, &m, &err)) {
        violate(w, "h%d cannot decode a message: %s", ev->host + 1, mr_err_msg(&err));
        free(ev->bytes);
        return;
    }
    free(ev->bytes);
    {
        char b1[32], b2[32];
        trace(w, "h%d g%d recv %s from h%u ballot %s promised %s ok=%d n=%u commit=%" PRIu64,
              ev->host + 1, ev->group, px_msg_type_name(m.type), m.from, ballot_str(m.ballot, b1),
              ballot_str(m.promised, b2), m.ok, m.nentries + m.nslots, m.commit);
    }
    px_event pe = {.kind = PX_EV_RECEIVE, .msg = &m};
    step_node(w, ev->host, ev->group, &pe);
    px_msg_free(&m);
}

static void on_disk(world *w, int h)
{
    host *hs = &w->hosts[h];
    hs->disk_scheduled = false;
    /* Everything queued is durable now (one fsync). Take the queue: notifications below
     * may queue new writes, which wait for the next fsync. */
    witem *q = hs->q;
    size_t nq = hs->nq;
    hs->q = NULL;
    hs->nq = hs->qcap = 0;
    for (size_t i = 0; i < nq; i++) {
        witem *it = &q[i];
        if (it->kind == W_PERSIST) {
            durable_apply(&hs->r[it->group].d, it);
            free(it->buf);
        } else if (it->kind == W_SEND) {
            if (hs->nq) { /* keep order behind writes queued meanwhile */
                witem *n2 = q_push(hs);
                *n2 = *it;
            } else {
                check_queued_reply(w, h, it->group, it->buf, it->len);
                net_send(w, h, it->to, it->group, it->buf, it->len);
            }
        } else if (hs->up && hs->r[it->group].node) {
            px_event ev = {.kind = PX_EV_PERSISTED, .seq = it->seq};
            step_node(w, h, it->group, &ev);
        }
        it->buf = NULL;
    }
    free(q);
    disk_schedule(w, h);
}

static void on_tick(world *w, int h)
{
    host *hs = &w->hosts[h];
    /* Clock error wanders inside the declared bound (unless the workload pinned it). */
    if (!hs->pinned) {
        hs->clock_err += rnd_range(-w->bound / 4, w->bound / 4);
        if (hs->clock_err > w->bound)
            hs->clock_err = w->bound;
        if (hs->clock_err < -w->bound)
            hs->clock_err = -w->bound;
    }
    for (int g = 0; g < w->ngroups; g++) {
        px_event ev = {.kind = PX_EV_TICK};
        step_node(w, h, g, &ev);
    }
    sim_ev ev = {.t = w->now + 10 * MS, .kind = EV_TICK, .host = h, .gen = hs->gen};
    push_ev(w, ev);
}

static bool all_done(world *w)
{
    if (w->app->done && !w->app->done(w))
        return false;
    for (int g = 0; g < w->ngroups; g++) {
        for (size_t i = 0; i < w->g[g].nprops && !w->app->done; i++)
            if (!w->g[g].props[i].chosen)
                return false;
        int l = leader_of(w, g);
        px_status st;
        if (l < 0)
            return false;
        px_node_status(w->hosts[l].r[g].node, &st);
        if (!st.lease_valid)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- one seed */

static void world_free(world *w)
{
    for (int h = 0; h < w->nhosts; h++)
        for (int g = 0; g < w->ngroups && w->app->replica_stop; g++)
            if (w->hosts[h].r[g].node)
                w->app->replica_stop(w, h, g);
    if (w->app->free)
        w->app->free(w);
    for (size_t i = 0; i < w->nheap; i++)
        free(w->heap[i].bytes);
    free(w->heap);
    for (int h = 0; h < w->nhosts; h++) {
        q_free(&w->hosts[h]);
        free(w->hosts[h].q);
        for (int g = 0; g < w->ngroups; g++) {
            px_node_destroy(w->hosts[h].r[g].node);
            durable_free(&w->hosts[h].r[g].d);
        }
    }
    for (int g = 0; g < w->ngroups; g++) {
        free(w->g[g].chosen);
        free(w->g[g].prefix);
        free(w->g[g].props);
        free(w->g[g].leases);
    }
}

static long tot_chosen, tot_voided, tot_leases, tot_crashes, tot_configs, tot_steps;
static double tot_simtime;

/* Returns 0 ok, 1 violation, 2 liveness failure. */
static int run_seed(const sim_app *app, const sim_opts *o, uint64_t seed, bool print_trace)
{
    world *w = xcalloc(1, sizeof *w);
    w->app = app;
    w->o = o;
    w->seed = seed;
    rng_state = seed * 0xD1B54A32D192ED03ull + 1;
    w->now = T0;
    w->nhosts = o->replicas + 1;
    w->replicas = o->replicas;
    w->ngroups = o->groups;
    w->bound = rnd_range(MS / 2, 8 * MS);
    if (o->bound)
        w->bound = o->bound;
    px_config cfg = {.n = (uint32_t)o->replicas};
    for (int h = 0; h < o->replicas; h++)
        cfg.nodes[h] = (px_node_id)h + 1;
    w->popts.config = cfg;
    px_options_default(&w->popts);
    w->popts.lease_ns = 400 * MS;
    w->popts.heartbeat_ns = 80 * MS;
    w->popts.election_ns = 300 * MS;
    /* Protocol parameters vary per seed, to reach the edges (no pipelining, no batching,
     * snapshots every few slots with the shortest log allowed). */
    static const uint32_t alphas[] = {1, 2, 4, 8, 8, 16};
    static const uint32_t batches[] = {1, 4, 8, 8};
    static const uint64_t snaps[] = {0, 10, 40, 40};
    w->popts.alpha = alphas[rnd() % 6];
    w->popts.max_batch = batches[rnd() % 4];
    /* One slot in flight holding one proposal commits one proposal per round trip (~100/s
     * here), less than the clients' rate plus retries: the backlog would outlast any fixed
     * liveness bound. Batch when not pipelining. */
    if (w->popts.alpha == 1 && w->popts.max_batch == 1)
        w->popts.max_batch = 4;
    w->popts.snapshot_every = snaps[rnd() % 4];
    w->popts.log_keep = w->popts.alpha * (chance(0.5) ? 1 : 2);
    w->popts.mutant = o->mutant;
    for (int g = 0; g < w->ngroups; g++) {
        w->g[g].cfgs[0].effect_slot = 1;
        w->g[g].cfgs[0].config = cfg;
        w->g[g].ncfgs = 1;
    }
    if (app->init)
        app->init(w);
    for (int h = 0; h < w->nhosts; h++) {
        int64_t err = rnd_range(-w->bound, w->bound);
        if (!w->hosts[h].pinned)
            w->hosts[h].clock_err = err;
        host_start(w, h);
    }
    for (int g = 0; g < w->ngroups; g++) {
        sim_ev ev = {.t = w->now + rnd_range(MS, 50 * MS), .kind = EV_CLIENT, .group = g};
        push_ev(w, ev);
    }
    sim_ev fe = {.t = w->now + rnd_range(100 * MS, 600 * MS), .kind = EV_FAULT};
    push_ev(w, fe);
    trace(w,
          "seed %" PRIu64 ": %d replicas (+1 spare host), %d groups, TrueTime bound %.3f ms, "
          "alpha %u, batch %u, snapshot every %" PRIu64 ", log keep %" PRIu64 "%s%s",
          seed, w->replicas, w->ngroups, (double)w->bound / 1e6, w->popts.alpha, w->popts.max_batch,
          w->popts.snapshot_every, w->popts.log_keep, o->mutant ? ", mutant " : "",
          o->mutant ? o->mutant_name : "");
    int result = 0;
    while (w->nheap > 0) {
        sim_ev ev = pop_ev(w);
        w->now = ev.t;
        w->step++;
        if (!w->healed && w->step > o->steps)
            heal(w);
        switch (ev.kind) {
        case EV_DELIVER:
            on_deliver(w, &ev);
            break;
        case EV_TICK:
            if (w->hosts[ev.host].up && ev.gen == w->hosts[ev.host].gen)
                on_tick(w, ev.host);
            break;
        case EV_DISK:
            if (w->hosts[ev.host].up && ev.gen == w->hosts[ev.host].gen)
                on_disk(w, ev.host);
            break;
        case EV_CLIENT:
            if (app->client)
                app->client(w, ev.group);
            break;
        case EV_APP:
            if (app->event)
                app->event(w, &ev);
            break;
        case EV_FAULT:
            if (!w->healed)
                on_fault(w);
            break;
        case EV_CRASH:
            if (!w->healed && w->hosts[ev.host].up && ev.gen == w->hosts[ev.host].gen)
                crash_and_schedule_restart(w, ev.host);
            break;
        case EV_RESTART:
            if (!w->healed && !w->hosts[ev.host].up && ev.gen == w->hosts[ev.host].gen) {
                trace(w, "h%d RESTART", ev.host + 1);
                host_start(w, ev.host);
            }
            break;
        }
        for (int g = 0; g < w->ngroups && !w->violation[0]; g++)
            for (int h = 0; h < w->nhosts; h++)
                if (w->hosts[h].up)
                    check_leases(w, g, h);
        if (w->violation[0]) {
            result = 1;
            break;
        }
        if (w->healed && all_done(w))
            break;
        if (w->healed && w->now - w->heal_time > LIVE_NS) {
            size_t pending = 0;
            for (int g = 0; g < w->ngroups; g++)
                for (size_t i = 0; i < w->g[g].nprops; i++)
                    pending += !w->g[g].props[i].chosen;
            trace(w,
                  "LIVENESS: %zu proposals not chosen, or the workload not done, %.0f s after "
                  "the faults stopped",
                  pending, (double)LIVE_NS / 1e9);
            result = 2;
            break;
        }
    }
    if (app->finish) {
        app->finish(w, result == 0);
        if (!result && w->violation[0])
            result = 1;
    }
    if (result && print_trace) {
        printf("FAIL seed %" PRIu64 ": %s\n", seed,
               result == 1 ? w->violation : "liveness failure");
        long first = w->ntrace > TRACE_LINES ? w->ntrace - TRACE_LINES : 0;
        if (!o->trace) {
            printf("  last %ld events:\n", w->ntrace - first);
            for (long i = first; i < w->ntrace; i++)
                printf("  %s\n", w->trace[i % TRACE_LINES]);
        }
        printf("  replay: %s --seed %" PRIu64 " --replicas %d --groups %d --steps %ld%s%s%s"
               " --trace\n",
               app->prog, seed, o->replicas, o->groups, o->steps, o->mutant ? " --mutant " : "",
               o->mutant ? o->mutant_name : "", o->replay);
    }
    tot_chosen += w->stat_chosen;
    tot_voided += w->stat_voided;
    tot_leases += w->stat_leases;
    tot_crashes += w->stat_crashes;
    tot_configs += w->stat_configs;
    tot_steps += w->step;
    tot_simtime += (double)(w->now - T0) / 1e9;
    world_free(w);
    free(w);
    return result;
}

/* ---------------------------------------------------------------- command line */

static const struct {
    const char *name;
    px_mutant m;
} mutants[] = {
    {"short-quorum", PX_MUTANT_SHORT_QUORUM},
    {"no-persist-promise", PX_MUTANT_NO_PERSIST_PROMISE},
    {"no-lease-wait", PX_MUTANT_NO_LEASE_WAIT},
    {"no-repropose", PX_MUTANT_NO_REPROPOSE},
};

static int bad(const char *prog, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(try --help)\n");
    return 2;
}

/* One option with its value; 0 taken, 1 unknown, 2 bad value (reported). */
static int parse_common(const sim_app *app, sim_opts *o, const char *a, const char *val)
{
    long long v;
    if (!strcmp(a, "--seeds")) {
        if (mr_parse_int(val, 1, 100000000, &v))
            return bad(app->prog, "--seeds: want a count >= 1, got '%s'", val);
        o->seeds = (int)v;
    } else if (!strcmp(a, "--seed")) {
        if (mr_parse_int(val, 0, INT64_MAX, &v))
            return bad(app->prog, "--seed: want an integer >= 0, got '%s'", val);
        o->seed = (uint64_t)v;
        o->one_seed = true;
    } else if (!strcmp(a, "--replicas")) {
        if (mr_parse_int(val, 3, 5, &v) || v == 4)
            return bad(app->prog, "--replicas: want 3 or 5, got '%s'", val);
        o->replicas = (int)v;
    } else if (!strcmp(a, "--groups")) {
        if (mr_parse_int(val, 1, MAX_GROUPS, &v))
            return bad(app->prog, "--groups: want 1..8, got '%s'", val);
        o->groups = (int)v;
    } else if (!strcmp(a, "--steps")) {
        if (mr_parse_int(val, 1, 100000000, &v))
            return bad(app->prog, "--steps: want a count >= 1, got '%s'", val);
        o->steps = (long)v;
    } else if (!strcmp(a, "--bound")) {
        int64_t ns;
        if (mr_parse_duration(val, &ns) || ns < 1000 || ns > 1000 * MS)
            return bad(app->prog, "--bound: want a duration in 1us..1s, got '%s'", val);
        o->bound = ns;
        size_t k = strlen(o->replay);
        snprintf(o->replay + k, sizeof o->replay - k, " --bound %s", val);
    } else if (!strcmp(a, "--mutant")) {
        for (size_t k = 0; k < sizeof mutants / sizeof mutants[0]; k++)
            if (!strcmp(val, mutants[k].name)) {
                o->mutant = mutants[k].m;
                o->mutant_name = mutants[k].name;
                return 0;
            }
        return bad(app->prog,
                   "--mutant: unknown '%s' (short-quorum, no-persist-promise, no-lease-wait, "
                   "no-repropose)",
                   val);
    } else {
        return 1;
    }
    return 0;
}

int sim_main(int argc, char **argv, const sim_app *app, sim_opts *o,
             int (*extra)(sim_opts *o, const char *arg, const char *val), void (*usage)(FILE *f))
{
    bool have_seeds = false;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--trace")) {
            o->trace = true;
            continue;
        }
        if (i + 1 >= argc)
            return bad(app->prog, "%s needs a value", a);
        const char *val = argv[++i];
        int rc = parse_common(app, o, a, val);
        if (rc == 1 && extra)
            rc = extra(o, a, val);
        if (rc == 1)
            return bad(app->prog, "unknown argument '%s'", a);
        if (rc)
            return 2;
        have_seeds |= !strcmp(a, "--seeds");
    }
    if (!have_seeds) {
        if (!o->one_seed)
            return bad(app->prog, "%s", "--seeds N or --seed S is required");
        o->seeds = 1;
    }
    long violations = 0, live = 0;
    for (int i = 0; i < o->seeds; i++) {
        uint64_t seed = o->seed + (uint64_t)i;
        int r = run_seed(app, o, seed, true);
        violations += r == 1;
        live += r == 2;
        if (o->trace || o->seeds == 1)
            printf("seed %" PRIu64 ": %s\n", seed,
                   r == 0   ? "ok"
                   : r == 1 ? "violation"
                            : "liveness failure");
    }
    printf("stats: %ld steps, %.1f s simulated, %ld slots chosen (%ld void), %ld leader leases, "
           "%ld crashes, %ld membership changes\n",
           tot_steps, tot_simtime, tot_chosen, tot_voided, tot_leases, tot_crashes, tot_configs);
    if (app->report)
        app->report();
    printf("seeds: %d, violations: %ld, liveness failures: %ld\n", o->seeds, violations, live);
    return violations || live ? 1 : 0;
}
