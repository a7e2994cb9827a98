/* Wire codec for Paxos messages, plus the small value helpers of px.h (ballots, configs,
 * batches). Big-endian (common/mr_codec.h), fixed-width fields; every count and length is
 * bounds-checked so a malformed or truncated message is rejected, never half-read. */
#include "tablet/paxos/px.h"

#include <stdlib.h>
#include <string.h>

#include "common/mr_codec.h"

int px_ballot_cmp(px_ballot a, px_ballot b)
{
    if (a.round != b.round)
        return a.round < b.round ? -1 : 1;
    if (a.node != b.node)
        return a.node < b.node ? -1 : 1;
    return 0;
}

bool px_config_has(const px_config *c, px_node_id id)
{
    for (uint32_t i = 0; i < c->n && i < PX_MAX_NODES; i++)
        if (c->nodes[i] == id)
            return true;
    return false;
}

int px_config_validate(const px_config *c, mr_err *err)
{
    if (c->n < 1 || c->n > PX_MAX_NODES)
        return mr_errf(err, MR_EINVAL, "config has %u members, want 1..%d", c->n, PX_MAX_NODES);
    uint64_t seen = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        px_node_id id = c->nodes[i];
        if (id < 1 || id > PX_MAX_NODE_ID)
            return mr_errf(err, MR_EINVAL, "node id %u out of range 1..%d", id, PX_MAX_NODE_ID);
        if (seen & (1ull << id))
            return mr_errf(err, MR_EINVAL, "node id %u appears twice", id);
        seen |= 1ull << id;
    }
    return 0;
}

uint32_t px_config_encode(const px_config *c, uint8_t *buf)
{
    uint32_t n = c->n > PX_MAX_NODES ? PX_MAX_NODES : c->n;
    mr_put_u32(buf, n);
    for (uint32_t i = 0; i < n; i++)
        mr_put_u32(buf + 4 + 4 * i, c->nodes[i]);
    return 4 + 4 * n;
}

int px_config_decode(const uint8_t *buf, uint32_t len, px_config *c, mr_err *err)
{
    if (len < 4)
        return mr_errf(err, MR_ECORRUPT, "config entry of %u bytes", len);
    uint32_t n = mr_get_u32(buf);
    if (n < 1 || n > PX_MAX_NODES || len != 4 + 4 * n)
        return mr_errf(err, MR_ECORRUPT, "config entry: %u members in %u bytes", n, len);
    memset(c, 0, sizeof *c);
    c->n = n;
    for (uint32_t i = 0; i < n; i++)
        c->nodes[i] = mr_get_u32(buf + 4 + 4 * i);
    if (px_config_validate(c, err))
        return mr_err_wrap(err, "config entry"), MR_ECORRUPT;
    return 0;
}

int px_batch_next(const uint8_t *data, uint32_t len, uint32_t *off, const uint8_t **p,
                  uint32_t *plen)
{
    if (*off == len)
        return 0;
    if (*off > len || len - *off < 4)
        return -1;
    uint32_t l = mr_get_u32(data + *off);
    if (l > len - *off - 4)
        return -1;
    *p = data + *off + 4;
    *plen = l;
    *off += 4 + l;
    return 1;
}

const char *px_msg_type_name(int type)
{
    static const char *const names[PX_MSG_MAX] = {
        [PX_MSG_PREPARE] = "PREPARE",     [PX_MSG_PROMISE] = "PROMISE",
        [PX_MSG_ACCEPT] = "ACCEPT",       [PX_MSG_ACCEPTED] = "ACCEPTED",
        [PX_MSG_HEARTBEAT] = "HEARTBEAT", [PX_MSG_HEARTBEAT_ACK] = "HEARTBEAT_ACK",
        [PX_MSG_LEARN] = "LEARN",         [PX_MSG_SNAPSHOT] = "SNAPSHOT",
        [PX_MSG_RELEASE] = "RELEASE",     [PX_MSG_PROBE] = "PROBE",
        [PX_MSG_PROBE_ACK] = "PROBE_ACK",
    };
    if (type <= 0 || type >= PX_MSG_MAX)
        return "?";
    return names[type];
}

/* ---- writer / reader ---- */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} wbuf;

static void w_bytes(wbuf *w, const void *src, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *np = realloc(w->p, cap);
        if (!np) {
            w->oom = true;
            return;
        }
        w->p = np;
        w->cap = cap;
    }
    if (n)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void w_u64(wbuf *w, uint64_t v)
{
    uint8_t b[8];
    mr_put_u64(b, v);
    w_bytes(w, b, 8);
}

static void w_u32(wbuf *w, uint32_t v)
{
    uint8_t b[4];
    mr_put_u32(b, v);
    w_bytes(w, b, 4);
}

static void w_u8(wbuf *w, uint8_t v)
{
    w_bytes(w, &v, 1);
}

static void w_ballot(wbuf *w, px_ballot b)
{
    w_u64(w, b.round);
    w_u32(w, b.node);
}

typedef struct rbuf {
    const uint8_t *p;
    size_t len, off;
    bool bad;
} rbuf;

static const uint8_t *r_take(rbuf *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t r_u64(rbuf *r)
{
    const uint8_t *p = r_take(r, 8);
    return p ? mr_get_u64(p) : 0;
}

static uint32_t r_u32(rbuf *r)
{
    const uint8_t *p = r_take(r, 4);
    return p ? mr_get_u32(p) : 0;
}

static uint8_t r_u8(rbuf *r)
{
    const uint8_t *p = r_take(r, 1);
    return p ? *p : 0;
}

static px_ballot r_ballot(rbuf *r)
{
    px_ballot b;
    b.round = r_u64(r);
    b.node = r_u32(r);
    return b;
}

/* 2: SNAPSHOT chunks (snap_off, snap_total after the snapshot bytes). 3: big-endian integers. */
#define PX_WIRE_VERSION 3

size_t px_msg_wire_size(const px_msg *m)
{
    size_t z = 75 + 4 + (size_t)m->nslots * 8 + 20 + 4 + m->snap_len + 8;
    for (uint32_t i = 0; i < m->nentries; i++)
        z += PX_MSG_ENTRY_BYTES + m->entries[i].len;
    for (uint32_t i = 0; i < m->meta.nconfigs && i < PX_SNAP_CONFIGS; i++)
        z += 12 + 4 + 4 * (size_t)m->meta.configs[i].config.n;
    return z;
}

int px_msg_encode(const px_msg *m, uint8_t **buf, size_t *len, mr_err *err)
{
    if (m->type <= 0 || m->type >= PX_MSG_MAX)
        return mr_errf(err, MR_EINVAL, "encode: bad message type %d", m->type);
    if (m->nentries > PX_MSG_MAX_ENTRIES || m->snap_len > PX_MSG_MAX_SNAP_BYTES ||
        m->nslots > PX_MSG_MAX_ENTRIES || m->meta.nconfigs > PX_SNAP_CONFIGS)
        return mr_errf(err, MR_EINVAL, "encode: %s over the size limits",
                       px_msg_type_name(m->type));
    wbuf w = {0};
    w_u8(&w, PX_WIRE_VERSION);
    w_u8(&w, m->type);
    w_u64(&w, m->group);
    w_u32(&w, m->from);
    w_ballot(&w, m->ballot);
    w_ballot(&w, m->promised);
    w_u8(&w, m->ok ? 1 : 0);
    w_u64(&w, m->slot);
    w_u64(&w, m->commit);
    w_u64(&w, m->log_start);
    w_u64(&w, m->lease_seq);
    w_u32(&w, m->nentries);
    for (uint32_t i = 0; i < m->nentries; i++) {
        const px_entry *e = &m->entries[i];
        if (e->len > PX_MSG_MAX_ENTRY_BYTES) {
            free(w.p);
            return mr_errf(err, MR_EINVAL, "encode: entry of %u bytes", e->len);
        }
        w_u64(&w, e->slot);
        w_ballot(&w, e->ballot);
        w_u64(&w, (uint64_t)e->ts);
        w_u8(&w, e->kind);
        w_u32(&w, e->len);
        w_bytes(&w, e->data, e->len);
    }
    w_u32(&w, m->nslots);
    for (uint32_t i = 0; i < m->nslots; i++)
        w_u64(&w, m->slots[i]);
    w_u64(&w, m->meta.slot);
    w_u64(&w, (uint64_t)m->meta.last_ts);
    w_u32(&w, m->meta.nconfigs);
    for (uint32_t i = 0; i < m->meta.nconfigs; i++) {
        uint8_t cb[PX_CONFIG_WIRE_MAX];
        uint32_t cl = px_config_encode(&m->meta.configs[i].config, cb);
        w_u64(&w, m->meta.configs[i].effect_slot);
        w_u32(&w, cl);
        w_bytes(&w, cb, cl);
    }
    w_u32(&w, m->snap_len);
    w_bytes(&w, m->snap, m->snap_len);
    w_u32(&w, m->snap_off);
    w_u32(&w, m->snap_total);
    if (w.oom) {
        free(w.p);
        return mr_errf(err, MR_ENOMEM, "encode: out of memory");
    }
    *buf = w.p;
    *len = w.len;
    return 0;
}

void px_msg_free(px_msg *m)
{
    free(m->owned_);
    m->owned_ = NULL;
}

int px_msg_decode(const uint8_t *buf, size_t len, px_msg *m, mr_err *err)
{
    memset(m, 0, sizeof *m);
    rbuf r = {.p = buf, .len = len};
    uint8_t ver = r_u8(&r);
    if (!r.bad && ver != PX_WIRE_VERSION)
        return mr_errf(err, MR_ECORRUPT, "decode: wire version %u, want %u", ver, PX_WIRE_VERSION);
    m->type = r_u8(&r);
    if (!r.bad && (m->type == 0 || m->type >= PX_MSG_MAX))
        return mr_errf(err, MR_ECORRUPT, "decode: bad message type %u", m->type);
    m->group = r_u64(&r);
    m->from = r_u32(&r);
    m->ballot = r_ballot(&r);
    m->promised = r_ballot(&r);
    uint8_t ok = r_u8(&r);
    if (!r.bad && ok > 1)
        return mr_errf(err, MR_ECORRUPT, "decode: bad ok flag %u", ok);
    m->ok = ok == 1;
    m->slot = r_u64(&r);
    m->commit = r_u64(&r);
    m->log_start = r_u64(&r);
    m->lease_seq = r_u64(&r);
    uint32_t ne = r_u32(&r);
    if (r.bad)
        return mr_errf(err, MR_ECORRUPT, "decode: truncated header (%zu bytes)", len);
    if (ne > PX_MSG_MAX_ENTRIES)
        return mr_errf(err, MR_ECORRUPT, "decode: %u entries, limit %d", ne, PX_MSG_MAX_ENTRIES);
    /* One allocation holds the entry array, the slot array and every byte string; its
     * size is bounded by the input length, so a lying count cannot make us allocate. */
    if ((size_t)ne * 29 > len)
        return mr_errf(err, MR_ECORRUPT, "decode: %u entries cannot fit in %zu bytes", ne, len);
    size_t need = (size_t)ne * sizeof(px_entry) + len + 64;
    uint8_t *blk = malloc(need);
    if (!blk)
        return mr_errf(err, MR_ENOMEM, "decode: out of memory");
    px_entry *ents = (px_entry *)blk;
    uint8_t *bytes = blk + (size_t)ne * sizeof(px_entry);
    size_t used = 0;
    for (uint32_t i = 0; i < ne && !r.bad; i++) {
        px_entry *e = &ents[i];
        e->slot = r_u64(&r);
        e->ballot = r_ballot(&r);
        e->ts = (int64_t)r_u64(&r);
        e->kind = r_u8(&r);
        e->len = r_u32(&r);
        if (r.bad)
            break;
        if (e->kind > PX_ENTRY_CONFIG || e->len > PX_MSG_MAX_ENTRY_BYTES) {
            free(blk);
            return mr_errf(err, MR_ECORRUPT, "decode: entry %u: kind %u, %u bytes", i, e->kind,
                           e->len);
        }
        const uint8_t *d = r_take(&r, e->len);
        if (!d)
            break;
        memcpy(bytes + used, d, e->len);
        e->data = bytes + used;
        used += e->len;
    }
    uint32_t ns = r_u32(&r);
    if (!r.bad && (ns > PX_MSG_MAX_ENTRIES || (size_t)ns * 8 > len - r.off)) {
        free(blk);
        return mr_errf(err, MR_ECORRUPT, "decode: %u slots", ns);
    }
    uint64_t *slots = NULL;
    if (!r.bad && ns) {
        used = (used + 7) & ~(size_t)7;
        slots = (uint64_t *)(void *)(bytes + used);
        used += (size_t)ns * 8;
        for (uint32_t i = 0; i < ns; i++)
            slots[i] = r_u64(&r);
    }
    m->meta.slot = r_u64(&r);
    m->meta.last_ts = (int64_t)r_u64(&r);
    m->meta.nconfigs = r_u32(&r);
    if (!r.bad && m->meta.nconfigs > PX_SNAP_CONFIGS) {
        free(blk);
        return mr_errf(err, MR_ECORRUPT, "decode: %u snapshot configs", m->meta.nconfigs);
    }
    for (uint32_t i = 0; i < m->meta.nconfigs && !r.bad; i++) {
        m->meta.configs[i].effect_slot = r_u64(&r);
        uint32_t cl = r_u32(&r);
        const uint8_t *cb = r_take(&r, cl);
        if (cb && px_config_decode(cb, cl, &m->meta.configs[i].config, err)) {
            free(blk);
            return mr_err_wrap(err, "decode: snapshot config %u", i), MR_ECORRUPT;
        }
    }
    uint32_t sl = r_u32(&r);
    const uint8_t *sd = r.bad ? NULL : r_take(&r, sl);
    m->snap_off = r_u32(&r);
    m->snap_total = r_u32(&r);
    if (r.bad || !sd) {
        free(blk);
        return mr_errf(err, MR_ECORRUPT, "decode: %s truncated (%zu bytes)",
                       px_msg_type_name(m->type), len);
    }
    if (r.off != len) {
        free(blk);
        return mr_errf(err, MR_ECORRUPT, "decode: %zu trailing bytes", len - r.off);
    }
    memcpy(bytes + used, sd, sl);
    m->snap = sl ? bytes + used : NULL;
    m->snap_len = sl;
    m->nentries = ne;
    m->entries = ne ? ents : NULL;
    m->nslots = ns;
    m->slots = slots;
    m->owned_ = blk;
    return 0;
}
