/* Elle-style list-append checking (see elle.h for the model and the anomaly names). */
#include "jepsen/elle.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Dependency edge types, one bit each; a pair of transactions may carry several. */
enum { E_WW = 1, E_WR = 2, E_RW = 4, E_PROC = 8, E_RT = 16 };
#define E_DATA (E_WW | E_WR | E_RW)
static const char *const edge_names[] = {"ww", "wr", "rw", "process", "realtime"};

typedef struct mop {
    int append;    /* 1 append, 0 read */
    int key;       /* interned key id */
    int64_t v;     /* appended value */
    int has_list;  /* a read with a known result */
    int64_t *list; /* read result; owned */
    size_t nlist;
} mop;

typedef struct txn {
    size_t inv, rep; /* invoke index, reported index */
    size_t comp;     /* completion index or JP_NONE */
    int64_t process;
    jp_type out; /* JP_OK, JP_FAIL or JP_INFO */
    mop *m;      /* owned */
    size_t nm;
} txn;

/* (key, value) -> (txn, mop) of its unique append. */
typedef struct wslot {
    int key; /* -1 empty */
    int64_t v;
    int t, mi;
    size_t stamp; /* the last read that showed this value (duplicate detection) */
    long pos;     /* index in the key's version order, -1 when no read showed it */
} wslot;

typedef struct edge {
    int from, to;
    unsigned type; /* one E_* bit while collecting, a mask after merging */
    int key[3];    /* key behind ww, wr, rw (-1 none) */
} edge;

typedef struct ctx {
    const jp_history *h;
    jp_result *r;
    size_t budget;
    size_t budget_hit; /* cycle searches cut short by the budget */
    txn *t;
    size_t nt;
    char **keys; /* key id -> display text; owned */
    int nkeys;
    json_t *keyidx; /* key text -> id */
    wslot *w;
    size_t wcap;
    /* version order per key: the longest read (borrowed from a mop), or NULL */
    const int64_t **vo;
    size_t *vlen;
    char *incompatible; /* per key */
    /* graph in CSR form */
    edge *edges;
    size_t ne, ecap;
    size_t *off; /* nt + 1 */
} ctx;

static void free_ctx(ctx *c)
{
    for (size_t i = 0; i < c->nt; i++) {
        for (size_t j = 0; j < c->t[i].nm; j++)
            free(c->t[i].m[j].list);
        free(c->t[i].m);
    }
    free(c->t);
    for (int i = 0; i < c->nkeys; i++)
        free(c->keys[i]);
    free(c->keys);
    json_decref(c->keyidx);
    free(c->w);
    free(c->vo);
    free(c->vlen);
    free(c->incompatible);
    free(c->edges);
    free(c->off);
}

/* ---- parsing ---- */

static int intern_key(ctx *c, const json_t *k)
{
    char buf[300], kt[310];
    if (!json_is_string(k) && !json_is_integer(k))
        return -2;
    jp_key_text(k, buf, sizeof buf);
    snprintf(kt, sizeof kt, "%c:%s", json_is_integer(k) ? 'i' : 's', buf);
    json_t *id = json_object_get(c->keyidx, kt);
    if (id)
        return (int)json_integer_value(id);
    char **nk = realloc(c->keys, (size_t)(c->nkeys + 1) * sizeof *nk);
    if (!nk)
        return -1;
    c->keys = nk;
    if (!(c->keys[c->nkeys] = strdup(buf)))
        return -1;
    json_object_set_new(c->keyidx, kt, json_integer(c->nkeys));
    return c->nkeys++;
}

/* Parses a txn value into mops. `with_reads`: read results are taken (ok completions). */
static int parse_txn(ctx *c, const json_t *val, int with_reads, txn *t, long line, mr_err *err)
{
    if (!json_is_array(val))
        return mr_errf(err, MR_EINVAL,
                       "line %ld: list-append: a txn value must be an array of micro-ops", line);
    size_t n = json_array_size(val);
    t->m = calloc(n ? n : 1, sizeof *t->m);
    if (!t->m)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    t->nm = n;
    for (size_t i = 0; i < n; i++) {
        json_t *mj = json_array_get(val, i);
        const char *f = json_string_value(json_array_get(mj, 0));
        if (!json_is_array(mj) || json_array_size(mj) != 3 || !f ||
            (strcmp(f, "append") != 0 && strcmp(f, "r") != 0))
            return mr_errf(err, MR_EINVAL,
                           "line %ld: list-append: micro-op %zu must be [\"append\", key, "
                           "integer] or [\"r\", key, list-or-null]",
                           line, i);
        mop *m = &t->m[i];
        m->append = f[0] == 'a';
        int k = intern_key(c, json_array_get(mj, 1));
        if (k == -2)
            return mr_errf(err, MR_EINVAL,
                           "line %ld: list-append: micro-op %zu: key must be a string or an "
                           "integer",
                           line, i);
        if (k < 0)
            return mr_errf(err, MR_ENOMEM, "out of memory");
        m->key = k;
        json_t *v = json_array_get(mj, 2);
        if (m->append) {
            if (!json_is_integer(v))
                return mr_errf(err, MR_EINVAL,
                               "line %ld: list-append: micro-op %zu: appended value must be an "
                               "integer",
                               line, i);
            m->v = json_integer_value(v);
        } else if (with_reads && !json_is_null(v)) {
            if (!json_is_array(v))
                return mr_errf(err, MR_EINVAL,
                               "line %ld: list-append: micro-op %zu: a read's result must be a "
                               "list of integers or null",
                               line, i);
            size_t nl = json_array_size(v);
            m->list = malloc((nl ? nl : 1) * sizeof *m->list);
            if (!m->list)
                return mr_errf(err, MR_ENOMEM, "out of memory");
            for (size_t j = 0; j < nl; j++) {
                json_t *e = json_array_get(v, j);
                if (!json_is_integer(e))
                    return mr_errf(err, MR_EINVAL,
                                   "line %ld: list-append: micro-op %zu: read element %zu is not "
                                   "an integer",
                                   line, i, j);
                m->list[j] = json_integer_value(e);
            }
            m->nlist = nl;
            m->has_list = 1;
        }
    }
    return MR_OK;
}

static uint64_t hkv(int k, int64_t v)
{
    uint64_t x = (uint64_t)v * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)k << 32 | (uint32_t)k);
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    return x ^ (x >> 32);
}

static wslot *wfind(ctx *c, int k, int64_t v)
{
    size_t j = hkv(k, v) & (c->wcap - 1);
    while (c->w[j].key != -1) {
        if (c->w[j].key == k && c->w[j].v == v)
            return &c->w[j];
        j = (j + 1) & (c->wcap - 1);
    }
    return &c->w[j];
}

/* Writer of (k, v): its txn index, or -1 when nobody appended it. */
static int writer_of(ctx *c, int k, int64_t v, int *mi)
{
    wslot *s = wfind(c, k, v);
    if (s->key == -1)
        return -1;
    if (mi)
        *mi = s->mi;
    return s->t;
}

static int load(ctx *c, mr_err *err)
{
    const jp_history *h = c->h;
    size_t cap = 0, nappends = 0;
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = &h->ops[i];
        if (op->type != JP_INVOKE || op->process == JP_NEMESIS)
            continue;
        if (strcmp(op->f, "txn") != 0)
            return mr_errf(err, MR_EINVAL, "line %ld: list-append: unknown f \"%s\" (expected txn)",
                           op->line, op->f);
        if (c->nt == cap) {
            cap = cap ? cap * 2 : 256;
            txn *nt = realloc(c->t, cap * sizeof *nt);
            if (!nt)
                return mr_errf(err, MR_ENOMEM, "out of memory");
            c->t = nt;
        }
        txn *t = &c->t[c->nt++];
        memset(t, 0, sizeof *t);
        t->inv = i;
        t->rep = jp_report_index(h, i);
        t->comp = op->pair;
        t->process = op->process;
        t->out = jp_outcome(h, i);
        int rc;
        if (t->out == JP_OK) {
            const jp_op *cp = &h->ops[op->pair];
            rc = parse_txn(c, cp->value, 1, t, cp->line, err);
            if (rc == MR_OK) {
                /* The completion must be the invocation with read results filled in. */
                txn probe = {0};
                rc = parse_txn(c, op->value, 0, &probe, op->line, err);
                if (rc == MR_OK && probe.nm != t->nm)
                    rc = mr_errf(err, MR_EINVAL,
                                 "line %ld: list-append: the completion has %zu micro-ops, its "
                                 "invoke (line %ld) %zu",
                                 cp->line, t->nm, op->line, probe.nm);
                for (size_t j = 0; rc == MR_OK && j < t->nm; j++)
                    if (probe.m[j].append != t->m[j].append || probe.m[j].key != t->m[j].key ||
                        (t->m[j].append && probe.m[j].v != t->m[j].v))
                        rc = mr_errf(err, MR_EINVAL,
                                     "line %ld: list-append: micro-op %zu differs from its invoke "
                                     "(line %ld)",
                                     cp->line, j, op->line);
                free(probe.m);
            }
        } else {
            rc = parse_txn(c, op->value, 0, t, op->line, err);
        }
        if (rc != MR_OK)
            return rc;
        for (size_t j = 0; j < t->nm; j++)
            nappends += t->m[j].append;
    }
    c->wcap = 64;
    while (c->wcap < nappends * 2 + 2)
        c->wcap *= 2;
    c->w = malloc(c->wcap * sizeof *c->w);
    if (!c->w)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    for (size_t i = 0; i < c->wcap; i++)
        c->w[i].key = -1;
    for (size_t i = 0; i < c->nt; i++) {
        for (size_t j = 0; j < c->t[i].nm; j++) {
            const mop *m = &c->t[i].m[j];
            if (!m->append)
                continue;
            wslot *s = wfind(c, m->key, m->v);
            if (s->key != -1)
                return mr_errf(err, MR_EINVAL,
                               "line %ld: list-append: value %" PRId64 " appended to key %s a "
                               "second time (first at line %ld); every append must be unique",
                               h->ops[c->t[i].inv].line, m->v, c->keys[m->key],
                               h->ops[c->t[s->t].inv].line);
            *s =
                (wslot){.key = m->key, .v = m->v, .t = (int)i, .mi = (int)j, .stamp = 0, .pos = -1};
        }
    }
    return MR_OK;
}

/* ---- non-cycle anomalies ---- */

static void check_reads(ctx *c)
{
    size_t read_id = 0;
    for (size_t i = 0; i < c->nt; i++) {
        txn *t = &c->t[i];
        if (t->out != JP_OK)
            continue;
        for (size_t j = 0; j < t->nm; j++) {
            const mop *m = &t->m[j];
            if (m->append || !m->has_list)
                continue;
            const char *k = c->keys[m->key];
            /* Each element must come from a committed (or unknown) append (G1a, garbage),
             * and, every value being appended once, appear once (duplicates). */
            int dup = 0, g1a = 0, garbage = 0, future = 0;
            size_t stamp = ++read_id;
            for (size_t x = 0; x < m->nlist; x++) {
                wslot *ws = wfind(c, m->key, m->list[x]);
                if (ws->key == -1) {
                    if (!garbage++)
                        jp_result_add(c->r, "garbage-read", &t->rep, 1,
                                      "op %zu read value %" PRId64
                                      " in key %s, which no operation appended",
                                      t->rep, m->list[x], k);
                    continue;
                }
                if (ws->stamp == stamp && !dup++)
                    jp_result_add(c->r, "duplicate-elements", &t->rep, 1,
                                  "op %zu read key %s with value %" PRId64 " more than once",
                                  t->rep, k, m->list[x]);
                ws->stamp = stamp;
                if (ws->t == (int)i && ws->mi > (int)j && !future++)
                    jp_result_add(c->r, "future-read", &t->rep, 1,
                                  "op %zu read value %" PRId64
                                  " in key %s before its own later micro-op %d appended it",
                                  t->rep, m->list[x], k, ws->mi);
                int w = ws->t;
                if (c->t[w].out == JP_FAIL && !g1a++) {
                    size_t ops[2] = {c->t[w].rep, t->rep};
                    jp_result_add(c->r, "G1a", ops, 2,
                                  "aborted read: op %zu read value %" PRId64
                                  " in key %s, appended by op %zu, which failed",
                                  t->rep, m->list[x], k, c->t[w].rep);
                }
            }
            /* G1b: the last element read (ignoring the reader's own appends at the end) is
             * not its writer's final append to the key (Adya: an intermediate version). */
            size_t last = m->nlist;
            int w = -1, mi = 0;
            while (last > 0 && (w = writer_of(c, m->key, m->list[last - 1], &mi)) == (int)i)
                last--;
            if (last > 0) {
                if (w >= 0 && c->t[w].out != JP_FAIL) {
                    const txn *wt = &c->t[w];
                    for (size_t y = (size_t)mi + 1; y < wt->nm; y++)
                        if (wt->m[y].append && wt->m[y].key == m->key) {
                            size_t ops[2] = {wt->rep, t->rep};
                            jp_result_add(c->r, "G1b", ops, 2,
                                          "intermediate read: op %zu read key %s ending at %" PRId64
                                          ", but op %zu appended %" PRId64
                                          " after it in the same transaction",
                                          t->rep, k, m->list[last - 1], wt->rep, wt->m[y].v);
                            break;
                        }
                }
            }
        }
        /* internal: a read must show the transaction's own earlier reads and appends */
        for (size_t j = 0; j < t->nm; j++) {
            const mop *m = &t->m[j];
            if (m->append || !m->has_list)
                continue;
            long prev = -1;
            for (size_t p = 0; p < j; p++)
                if (!t->m[p].append && t->m[p].key == m->key && t->m[p].has_list)
                    prev = (long)p;
            size_t nap = 0;
            for (size_t p = prev < 0 ? 0 : (size_t)prev + 1; p < j; p++)
                nap += t->m[p].append && t->m[p].key == m->key;
            int bad = 0;
            size_t base;
            if (prev >= 0) {
                base = t->m[prev].nlist;
                bad = m->nlist != base + nap ||
                      memcmp(m->list, t->m[prev].list, base * sizeof *m->list) != 0;
            } else {
                bad = m->nlist < nap;
                base = bad ? 0 : m->nlist - nap;
            }
            for (size_t p = prev < 0 ? 0 : (size_t)prev + 1, q = base; !bad && p < j; p++)
                if (t->m[p].append && t->m[p].key == m->key)
                    bad = m->list[q++] != t->m[p].v;
            if (bad)
                jp_result_add(c->r, "internal", &t->rep, 1,
                              "op %zu: micro-op %zu read key %s inconsistently with the "
                              "transaction's own earlier %s",
                              t->rep, j, c->keys[m->key],
                              prev >= 0 ? "read and appends" : "appends");
        }
    }
}

/* Version orders (longest read per key) and incompatible orders. */
static int version_orders(ctx *c)
{
    int nk = c->nkeys;
    c->vo = calloc(nk ? (size_t)nk : 1, sizeof *c->vo);
    c->vlen = calloc(nk ? (size_t)nk : 1, sizeof *c->vlen);
    c->incompatible = calloc(nk ? (size_t)nk : 1, 1);
    size_t *who = calloc(nk ? (size_t)nk : 1, sizeof *who);
    if (!c->vo || !c->vlen || !c->incompatible || !who) {
        free(who);
        return -1;
    }
    for (size_t i = 0; i < c->nt; i++) {
        if (c->t[i].out != JP_OK)
            continue;
        for (size_t j = 0; j < c->t[i].nm; j++) {
            const mop *m = &c->t[i].m[j];
            if (!m->append && m->has_list && (!c->vo[m->key] || m->nlist > c->vlen[m->key])) {
                c->vo[m->key] = m->list;
                c->vlen[m->key] = m->nlist;
                who[m->key] = c->t[i].rep;
            }
        }
    }
    for (size_t i = 0; i < c->nt; i++) {
        if (c->t[i].out != JP_OK)
            continue;
        for (size_t j = 0; j < c->t[i].nm; j++) {
            const mop *m = &c->t[i].m[j];
            if (m->append || !m->has_list || c->incompatible[m->key])
                continue;
            if (memcmp(m->list, c->vo[m->key], m->nlist * sizeof *m->list) != 0) {
                c->incompatible[m->key] = 1;
                size_t ops[2] = {who[m->key], c->t[i].rep};
                jp_result_add(c->r, "incompatible-order", ops, 2,
                              "key %s: op %zu's read is not a prefix of op %zu's longer read, so "
                              "no single version order explains both",
                              c->keys[m->key], c->t[i].rep, who[m->key]);
            }
        }
    }
    free(who);
    for (int k = 0; k < nk; k++) {
        if (c->incompatible[k] || !c->vo[k])
            continue;
        for (size_t x = 0; x < c->vlen[k]; x++) {
            wslot *ws = wfind(c, k, c->vo[k][x]);
            if (ws->key != -1 && ws->pos < 0)
                ws->pos = (long)x;
        }
    }
    /* dirty update: a committed append ordered after an aborted one */
    for (int k = 0; k < nk; k++) {
        if (c->incompatible[k] || !c->vo[k])
            continue;
        int aborted = -1;
        for (size_t x = 0; x < c->vlen[k]; x++) {
            int w = writer_of(c, k, c->vo[k][x], NULL);
            if (w < 0)
                continue;
            if (c->t[w].out == JP_FAIL) {
                if (aborted < 0)
                    aborted = w;
            } else if (aborted >= 0) {
                size_t ops[2] = {c->t[aborted].rep, c->t[w].rep};
                jp_result_add(c->r, "dirty-update", ops, 2,
                              "key %s: op %zu appended %" PRId64
                              " on top of a version written by op %zu, which failed",
                              c->keys[k], c->t[w].rep, c->vo[k][x], c->t[aborted].rep);
                break;
            }
        }
    }
    return 0;
}

/* Lost update: two committed transactions read the same version of k (before appending to
 * it themselves) and both append to k; one of the appends was made without seeing the other.
 */
typedef struct lu {
    int key;
    size_t len; /* version read = prefix of this length */
    size_t t;
} lu;

static int lu_cmp(const void *a, const void *b)
{
    const lu *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->t < y->t ? -1 : x->t > y->t;
}

static void lost_updates(ctx *c)
{
    lu *v = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < c->nt; i++) {
        const txn *t = &c->t[i];
        if (t->out != JP_OK)
            continue;
        for (size_t j = 0; j < t->nm; j++) {
            const mop *m = &t->m[j];
            if (m->append || !m->has_list || c->incompatible[m->key])
                continue;
            int earlier = 0, later = 0, first_read = 1;
            for (size_t p = 0; p < t->nm; p++)
                if (t->m[p].key == m->key) {
                    if (t->m[p].append && p < j)
                        earlier = 1;
                    else if (t->m[p].append)
                        later = 1;
                    else if (p < j && t->m[p].has_list)
                        first_read = 0;
                }
            if (earlier || !later || !first_read)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                lu *nv = realloc(v, cap * sizeof *nv);
                if (!nv)
                    break;
                v = nv;
            }
            v[n++] = (lu){m->key, m->nlist, i};
        }
    }
    if (n)
        qsort(v, n, sizeof *v, lu_cmp);
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && v[b].key == v[a].key && v[b].len == v[a].len)
            b++;
        if (b - a > 1) {
            size_t *ops = malloc((b - a) * sizeof *ops);
            if (ops) {
                for (size_t x = a; x < b; x++)
                    ops[x - a] = c->t[v[x].t].rep;
                jp_result_add(c->r, "lost-update", ops, b - a,
                              "key %s: %zu committed transactions read the same version (%zu "
                              "element(s)) and each appended to it",
                              c->keys[v[a].key], b - a, v[a].len);
                free(ops);
            }
        }
        a = b;
    }
    free(v);
}

/* ---- the dependency graph ---- */

static int add_edge(ctx *c, int from, int to, unsigned type, int key)
{
    if (from == to || from < 0 || to < 0)
        return 0;
    if (c->ne == c->ecap) {
        size_t cap = c->ecap ? c->ecap * 2 : 1024;
        edge *ne = realloc(c->edges, cap * sizeof *ne);
        if (!ne)
            return -1;
        c->edges = ne;
        c->ecap = cap;
    }
    edge *e = &c->edges[c->ne++];
    *e = (edge){.from = from, .to = to, .type = type, .key = {-1, -1, -1}};
    if (type & E_DATA)
        e->key[type == E_WW ? 0 : type == E_WR ? 1 : 2] = key;
    return 0;
}

static int edge_cmp(const void *a, const void *b)
{
    const edge *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return x->to < y->to ? -1 : x->to > y->to;
}

/* A committed or indeterminate transaction is a node; an aborted one is not. */
static int node_ok(const ctx *c, int t)
{
    return t >= 0 && c->t[t].out != JP_FAIL;
}

static int build_graph(ctx *c)
{
    /* ww, wr, rw from version orders (Adya's direct dependencies) */
    for (int k = 0; k < c->nkeys; k++) {
        if (c->incompatible[k] || !c->vo[k])
            continue;
        for (size_t x = 0; x + 1 < c->vlen[k]; x++) {
            int a = writer_of(c, k, c->vo[k][x], NULL), b = writer_of(c, k, c->vo[k][x + 1], NULL);
            if (node_ok(c, a) && node_ok(c, b) && add_edge(c, a, b, E_WW, k) < 0)
                return -1;
        }
    }
    /* An append no read shows, by a transaction that may have committed, came after every
     * observed element (a read would otherwise show it): the writer of the last observed
     * element precedes it (ww), and so does every reader of that last state (rw). As in
     * Elle, this is what turns a stale read of a key nobody read since into a cycle. Such a
     * transaction gets no outgoing data edge, so one that never happened closes no cycle. */
    int **full = calloc(c->nkeys ? (size_t)c->nkeys : 1, sizeof *full); /* readers of vo */
    size_t *nfull = calloc(c->nkeys ? (size_t)c->nkeys : 1, sizeof *nfull);
    int rc = full && nfull ? 0 : -1;
    for (size_t i = 0; i < c->nt && rc == 0; i++) {
        const txn *t = &c->t[i];
        if (t->out != JP_OK)
            continue;
        for (size_t j = 0; j < t->nm && rc == 0; j++) {
            const mop *m = &t->m[j];
            if (m->append || !m->has_list || c->incompatible[m->key] || m->nlist != c->vlen[m->key])
                continue;
            int *nf = realloc(full[m->key], (nfull[m->key] + 1) * sizeof *nf);
            if (!nf) {
                rc = -1;
                break;
            }
            full[m->key] = nf;
            nf[nfull[m->key]++] = (int)i;
        }
    }
    for (size_t i = 0; i < c->nt && rc == 0; i++) {
        const txn *t = &c->t[i];
        if (t->out == JP_FAIL)
            continue;
        for (size_t j = 0; j < t->nm && rc == 0; j++) {
            const mop *m = &t->m[j];
            if (!m->append || c->incompatible[m->key] || wfind(c, m->key, m->v)->pos >= 0)
                continue;
            int k = m->key;
            if (c->vlen[k]) {
                int w = writer_of(c, k, c->vo[k][c->vlen[k] - 1], NULL);
                if (node_ok(c, w))
                    rc = add_edge(c, w, (int)i, E_WW, k);
            }
            for (size_t r = 0; r < nfull[k] && rc == 0; r++)
                rc = add_edge(c, full[k][r], (int)i, E_RW, k);
        }
    }
    for (int k = 0; full && k < c->nkeys; k++)
        free(full[k]);
    free(full);
    free(nfull);
    if (rc < 0)
        return -1;
    for (size_t i = 0; i < c->nt; i++) {
        const txn *t = &c->t[i];
        if (t->out != JP_OK)
            continue;
        for (size_t j = 0; j < t->nm; j++) {
            const mop *m = &t->m[j];
            if (m->append || !m->has_list)
                continue;
            /* wr comes from the last element the reader did not append itself: a read
             * that ends with the transaction's own appends still shows whose state it
             * started from (Elle's external reads). */
            for (size_t x = m->nlist; x-- > 0;) {
                int w = writer_of(c, m->key, m->list[x], NULL);
                if (w == (int)i)
                    continue;
                if (node_ok(c, w) && add_edge(c, w, (int)i, E_WR, m->key) < 0)
                    return -1;
                break;
            }
            if (!c->incompatible[m->key] && m->nlist < c->vlen[m->key]) {
                int w = writer_of(c, m->key, c->vo[m->key][m->nlist], NULL);
                if (node_ok(c, w) && add_edge(c, (int)i, w, E_RW, m->key) < 0)
                    return -1;
            }
        }
    }
    /* process order: consecutive non-aborted transactions of one process */
    {
        int *last = NULL;
        int64_t *lp = NULL;
        size_t np = 0;
        for (size_t i = 0; i < c->nt; i++) {
            if (c->t[i].out == JP_FAIL)
                continue;
            size_t p = 0;
            while (p < np && lp[p] != c->t[i].process)
                p++;
            if (p == np) {
                int *nl = realloc(last, (np + 1) * sizeof *nl);
                int64_t *nlp = nl ? realloc(lp, (np + 1) * sizeof *nlp) : NULL;
                if (nl)
                    last = nl;
                if (!nlp) {
                    free(last);
                    free(lp);
                    return -1;
                }
                lp = nlp;
                lp[np] = c->t[i].process;
                last[np++] = -1;
            }
            if (last[p] >= 0 && add_edge(c, last[p], (int)i, E_PROC, -1) < 0) {
                free(last);
                free(lp);
                return -1;
            }
            last[p] = (int)i;
        }
        free(last);
        free(lp);
    }
    /* real time, as a transitive reduction: the frontier holds completed transactions no
     * other completed transaction follows; a new invocation follows exactly the frontier,
     * and a completion removes its own predecessors from it. */
    {
        size_t n = c->nt;
        int *fr = malloc((n ? n : 1) * sizeof *fr), *pos = malloc((n ? n : 1) * sizeof *pos);
        size_t *first = malloc((n ? n : 1) * sizeof *first);
        int *by_inv = malloc((c->h->n ? c->h->n : 1) * sizeof *by_inv);
        if (!fr || !pos || !first || !by_inv) {
            free(fr);
            free(pos);
            free(first);
            free(by_inv);
            return -1;
        }
        size_t nf = 0;
        for (size_t i = 0; i < c->h->n; i++)
            by_inv[i] = -1;
        for (size_t i = 0; i < n; i++) {
            pos[i] = -1;
            by_inv[c->t[i].inv] = (int)i;
            if (c->t[i].comp != JP_NONE)
                by_inv[c->t[i].comp] = (int)i;
        }
        rc = 0;
        for (size_t x = 0; x < c->h->n && rc == 0; x++) {
            int t = by_inv[x];
            if (t < 0 || c->t[t].out == JP_FAIL)
                continue;
            if (x == c->t[t].inv) {
                first[t] = c->ne;
                for (size_t f = 0; f < nf && rc == 0; f++)
                    rc = add_edge(c, fr[f], t, E_RT, -1);
            } else if (c->t[t].out == JP_OK) {
                for (size_t e = first[t]; e < c->ne; e++) {
                    if (c->edges[e].to != t || c->edges[e].type != E_RT)
                        continue;
                    int p = c->edges[e].from;
                    if (pos[p] >= 0) {
                        int last = fr[--nf];
                        fr[pos[p]] = last;
                        pos[last] = pos[p];
                        pos[p] = -1;
                    }
                }
                pos[t] = (int)nf;
                fr[nf++] = t;
            }
        }
        free(fr);
        free(pos);
        free(first);
        free(by_inv);
        if (rc < 0)
            return -1;
    }
    /* merge parallel edges into one masked edge, then index by source (CSR) */
    if (c->ne)
        qsort(c->edges, c->ne, sizeof *c->edges, edge_cmp);
    size_t w = 0;
    for (size_t i = 0; i < c->ne; i++) {
        if (w && c->edges[w - 1].from == c->edges[i].from && c->edges[w - 1].to == c->edges[i].to) {
            edge *d = &c->edges[w - 1];
            d->type |= c->edges[i].type;
            for (int k = 0; k < 3; k++)
                if (d->key[k] < 0)
                    d->key[k] = c->edges[i].key[k];
        } else {
            c->edges[w++] = c->edges[i];
        }
    }
    c->ne = w;
    c->off = calloc(c->nt + 1, sizeof *c->off);
    if (!c->off)
        return -1;
    for (size_t i = 0; i < c->ne; i++)
        c->off[c->edges[i].from + 1]++;
    for (size_t i = 0; i < c->nt; i++)
        c->off[i + 1] += c->off[i];
    return 0;
}

/* ---- strongly connected components (Tarjan 1972, iterative) ---- */

/* Fills comp[v] with a component id per node, over the edges whose type meets `mask`;
 * returns the number of components or -1. With `members` (nmem nodes, local[v] >= 0 exactly
 * for them), only that subgraph is explored and only members' comp entries are set. */
static int tarjan(const ctx *c, int *comp, unsigned mask, const int *members, int nmem,
                  const int *local)
{
    size_t n = c->nt;
    int *idx = malloc((n ? n : 1) * sizeof *idx), *low = malloc((n ? n : 1) * sizeof *low);
    int *stk = malloc((n ? n : 1) * sizeof *stk), *cs = malloc((n ? n : 1) * sizeof *cs);
    size_t *it = malloc((n ? n : 1) * sizeof *it);
    char *on = malloc(n ? n : 1);
    int ncomp = -1;
    if (!idx || !low || !stk || !cs || !it || !on)
        goto out;
    size_t nroots = members ? (size_t)nmem : n;
    for (size_t r = 0; r < nroots; r++) {
        int v = members ? members[r] : (int)r;
        idx[v] = -1;
        on[v] = 0;
    }
    int counter = 0, sp = 0;
    ncomp = 0;
    for (size_t r = 0; r < nroots; r++) {
        int root = members ? members[r] : (int)r;
        if (idx[root] >= 0)
            continue;
        int csp = 0;
        cs[csp++] = root;
        idx[root] = low[root] = counter++;
        stk[sp++] = root;
        on[root] = 1;
        it[root] = c->off[root];
        while (csp) {
            int v = cs[csp - 1];
            if (it[v] < c->off[v + 1]) {
                const edge *e = &c->edges[it[v]++];
                int w = e->to;
                if (!(e->type & mask) || (local && local[w] < 0))
                    continue;
                if (idx[w] < 0) {
                    idx[w] = low[w] = counter++;
                    stk[sp++] = w;
                    on[w] = 1;
                    it[w] = c->off[w];
                    cs[csp++] = w;
                } else if (on[w] && idx[w] < low[v]) {
                    low[v] = idx[w];
                }
                continue;
            }
            csp--;
            if (csp && low[v] < low[cs[csp - 1]])
                low[cs[csp - 1]] = low[v];
            if (low[v] == idx[v]) {
                int w;
                do {
                    w = stk[--sp];
                    on[w] = 0;
                    comp[w] = ncomp;
                } while (w != v);
                ncomp++;
            }
        }
    }
out:
    free(idx);
    free(low);
    free(stk);
    free(cs);
    free(it);
    free(on);
    return ncomp;
}

/* ---- shortest cycle per class ----
 *
 * A breadth-first search over (node, state) pairs, where the state records what the path
 * has used so far: how many rw edges (0, 1, 2+), whether the last and the first edge were
 * rw, whether a wr edge and the required process/real-time edge were used. A search starts
 * with one edge of the type the class needs (a cycle can be rotated to begin with any of its
 * edges) and looks for the shortest way back. As in Elle, G-single allows one rw edge and
 * G-nonadjacent forbids consecutive ones. */

enum { C_G0, C_G1C, C_GSINGLE, C_GNONADJ, C_G2, C_COUNT, C_ANY = C_COUNT };
enum { X_NONE, X_PROC, X_RT };
#define NSTATE 48

typedef struct st {
    int rw, last_rw, first_rw, wr, ext;
} st;

static int st_pack(st s)
{
    return s.rw + 3 * (s.last_rw + 2 * (s.first_rw + 2 * (s.wr + 2 * s.ext)));
}

static st st_unpack(int x)
{
    st s;
    s.rw = x % 3;
    x /= 3;
    s.last_rw = x % 2;
    x /= 2;
    s.first_rw = x % 2;
    x /= 2;
    s.wr = x % 2;
    s.ext = x / 2;
    return s;
}

static unsigned allowed_types(int cls, int x)
{
    if (cls == C_ANY)
        return E_DATA | E_PROC | E_RT;
    unsigned m = cls == C_G0 ? E_WW : cls == C_G1C ? (E_WW | E_WR) : E_DATA;
    if (x == X_PROC)
        m |= E_PROC;
    if (x == X_RT)
        m |= E_PROC | E_RT;
    return m;
}

/* Takes an edge of type `t` from state s; returns 0 if the class forbids it. */
static int st_step(int cls, int x, st s, unsigned t, int first, st *out)
{
    st n = s;
    if (t == E_RW) {
        if (cls == C_GSINGLE && s.rw >= 1)
            return 0;
        if (cls == C_GNONADJ && !first && s.last_rw)
            return 0;
        n.rw = s.rw < 2 ? s.rw + 1 : 2;
    }
    n.last_rw = t == E_RW;
    if (first)
        n.first_rw = t == E_RW;
    if (t == E_WR)
        n.wr = 1;
    if ((x == X_PROC && t == E_PROC) || (x == X_RT && t == E_RT))
        n.ext = 1;
    *out = n;
    return 1;
}

static int st_accept(int cls, int x, st s)
{
    if (cls == C_ANY)
        return 1;
    if (x != X_NONE && !s.ext)
        return 0;
    switch (cls) {
    case C_G0:
        return s.rw == 0 && !s.wr;
    case C_G1C:
        return s.rw == 0 && s.wr;
    case C_GSINGLE:
        return s.rw == 1;
    case C_GNONADJ:
        return s.rw == 2 && !(s.last_rw && s.first_rw);
    default:
        return s.rw == 2;
    }
}

typedef struct search {
    int *local;   /* node -> index in the component, -1 outside */
    int *members; /* the component's nodes */
    int nmem;
    unsigned *stamp; /* per (local, state) */
    int *parent;     /* per (local, state): previous (local * NSTATE + state), -1 start */
    unsigned char *ptype;
    int *queue;
    unsigned gen;
} search;

/* A found cycle: nodes[i] -> nodes[i+1 mod n] by types[i]. */
typedef struct cycle {
    int *nodes;
    unsigned *types;
    int n;
} cycle;

/* BFS from the head of edge (u -> v, type t) back to u. Returns the path length or -1; on
 * success fills cy. `work` is charged per relaxation. */
static int bfs_back(const ctx *c, search *s, int cls, int x, int u, int v, unsigned t, size_t *work,
                    size_t budget, int maxlen, cycle *cy)
{
    st s0 = {0};
    st s1;
    if (!st_step(cls, x, s0, t, 1, &s1))
        return -1;
    unsigned allowed = allowed_types(cls, x);
    s->gen++;
    int head = 0, tail = 0;
    int lv = s->local[v];
    int start = lv * NSTATE + st_pack(s1);
    s->stamp[start] = s->gen;
    s->parent[start] = -1;
    s->ptype[start] = 0;
    s->queue[tail++] = start;
    int found = -1;
    /* distance tracking: BFS layers */
    int layer_end = tail, dist = 1;
    while (head < tail && found < 0) {
        if (head == layer_end) {
            layer_end = tail;
            if (++dist >= maxlen)
                break;
        }
        int cur = s->queue[head++];
        int ln = cur / NSTATE;
        st cs = st_unpack(cur % NSTATE);
        int node = s->members[ln];
        for (size_t e = c->off[node]; e < c->off[node + 1] && found < 0; e++) {
            const edge *ed = &c->edges[e];
            int lw = s->local[ed->to];
            if (lw < 0)
                continue;
            for (unsigned b = 1; b <= E_RT && found < 0; b <<= 1) {
                if (!(ed->type & b & allowed))
                    continue;
                if (++*work > budget)
                    return -1;
                st ns;
                if (!st_step(cls, x, cs, b, 0, &ns))
                    continue;
                int nx = lw * NSTATE + st_pack(ns);
                if (ed->to == u) {
                    if (!st_accept(cls, x, ns))
                        continue;
                    found = nx; /* closing: record its parent for the walk back */
                    s->parent[nx] = cur;
                    s->ptype[nx] = (unsigned char)b;
                    break;
                }
                if (s->stamp[nx] == s->gen)
                    continue;
                s->stamp[nx] = s->gen;
                s->parent[nx] = cur;
                s->ptype[nx] = (unsigned char)b;
                s->queue[tail++] = nx;
            }
        }
    }
    if (found < 0)
        return -1;
    int len = 1;
    for (int p = found; s->parent[p] >= 0; p = s->parent[p])
        len++;
    cy->nodes = malloc((size_t)len * sizeof *cy->nodes);
    cy->types = malloc((size_t)len * sizeof *cy->types);
    if (!cy->nodes || !cy->types) {
        free(cy->nodes);
        free(cy->types);
        cy->nodes = NULL;
        cy->types = NULL;
        return -1;
    }
    cy->n = len;
    /* walk back: found (= u) <- ... <- start (= v) ; cycle is u -t-> v -> ... -> u */
    int i = len - 1;
    for (int p = found; s->parent[p] >= 0; p = s->parent[p]) {
        cy->types[i] = s->ptype[p];
        cy->nodes[i] = s->members[s->parent[p] / NSTATE];
        i--;
    }
    cy->nodes[0] = u;
    cy->types[0] = t;
    return len;
}

static const char *cycle_name(const cycle *cy, char *buf, size_t len)
{
    int rw = 0, wr = 0, adjacent = 0, rt = 0, proc = 0;
    for (int i = 0; i < cy->n; i++) {
        unsigned t = cy->types[i];
        rw += t == E_RW;
        wr += t == E_WR;
        rt |= t == E_RT;
        proc |= t == E_PROC;
        if (t == E_RW && cy->types[(i + 1) % cy->n] == E_RW)
            adjacent = 1;
    }
    const char *base = rw == 0    ? (wr ? "G1c" : "G0")
                       : rw == 1  ? "G-single"
                       : adjacent ? "G2-item"
                                  : "G-nonadjacent";
    snprintf(buf, len, "%s%s", base, rt ? "-realtime" : proc ? "-process" : "");
    return buf;
}

static int edge_key(const ctx *c, int from, int to, unsigned t)
{
    if (!(t & E_DATA))
        return -1;
    for (size_t e = c->off[from]; e < c->off[from + 1]; e++)
        if (c->edges[e].to == to)
            return c->edges[e].key[t == E_WW ? 0 : t == E_WR ? 1 : 2];
    return -1;
}

static int tidx(unsigned t)
{
    int i = 0;
    while (t > 1) {
        t >>= 1;
        i++;
    }
    return i;
}

/* Explains each step of a found cycle by the most basic dependency the pair carries that
 * keeps the cycle's claim: a ww or wr edge is preferred to whatever the search walked (it adds
 * no anti-dependency and no timing), and process order to real time. A search may have walked
 * a pair as rw (or real time) to satisfy its class while the pair is also ww (or process
 * order); the cycle is then named by the stronger claim it supports (G-single rather than
 * G2-item, -process rather than -realtime), and duplicates of another class fold away. An rw
 * step is never swapped for real time or the reverse: both claims are reported when found. */
static void normalize_cycle(const ctx *c, cycle *cy)
{
    for (int i = 0; i < cy->n; i++) {
        int a = cy->nodes[i], b = cy->nodes[(i + 1) % cy->n];
        for (size_t e = c->off[a]; e < c->off[a + 1]; e++) {
            if (c->edges[e].to != b)
                continue;
            unsigned m = c->edges[e].type;
            if (m & E_WW)
                cy->types[i] = E_WW;
            else if (m & E_WR)
                cy->types[i] = E_WR;
            else if (cy->types[i] == E_RT && (m & E_PROC))
                cy->types[i] = E_PROC;
            break;
        }
    }
}

static void report_cycle(ctx *c, const cycle *cy, const char *name)
{
    char *text = NULL;
    size_t tl = 0;
    FILE *m = open_memstream(&text, &tl);
    size_t *ops = malloc((size_t)cy->n * sizeof *ops);
    if (!m || !ops) {
        if (m)
            fclose(m);
        free(text);
        free(ops);
        return;
    }
    fprintf(m, "cycle: ");
    for (int i = 0; i < cy->n; i++) {
        int a = cy->nodes[i], b = cy->nodes[(i + 1) % cy->n];
        ops[i] = c->t[a].rep;
        int k = edge_key(c, a, b, cy->types[i]);
        fprintf(m, "op %zu -%s%s%s-> ", c->t[a].rep, edge_names[tidx(cy->types[i])],
                k >= 0 ? " " : "", k >= 0 ? c->keys[k] : "");
    }
    fprintf(m, "op %zu", c->t[cy->nodes[0]].rep);
    fclose(m);
    jp_result_add(c->r, name, ops, (size_t)cy->n, "%s", text ? text : "cycle");
    free(text);
    free(ops);
}

/* Components this large get a cheap necessary-condition filter before each class search: a
 * first edge can only lie on a cycle of the class if both its ends share a component of the
 * subgraph of the class's edge types. Without it, a class absent from a big component burns
 * the whole search budget. */
#define FILTER_MIN 64

static int search_component(ctx *c, search *s, const int *comp, int cid)
{
    char names[C_COUNT * 3][40];
    int nnames = 0, reported = 0;
    int *sub = s->nmem >= FILTER_MIN ? malloc(c->nt * sizeof *sub) : NULL;
    for (int x = X_NONE; x <= X_RT; x++) {
        for (int cls = 0; cls < C_COUNT; cls++) {
            unsigned first = x == X_PROC    ? E_PROC
                             : x == X_RT    ? E_RT
                             : cls == C_G0  ? E_WW
                             : cls == C_G1C ? E_WR
                                            : E_RW;
            if (sub && tarjan(c, sub, allowed_types(cls, x), s->members, s->nmem, s->local) < 0) {
                free(sub);
                sub = NULL;
            }
            size_t work = 0;
            cycle best = {0};
            for (int mi = 0; mi < s->nmem; mi++) {
                int u = s->members[mi];
                for (size_t e = c->off[u]; e < c->off[u + 1]; e++) {
                    const edge *ed = &c->edges[e];
                    if (!(ed->type & first) || comp[ed->to] != cid ||
                        (sub && sub[ed->to] != sub[u]))
                        continue;
                    cycle cy = {0};
                    int maxlen = best.n ? best.n : INT32_MAX;
                    int len =
                        bfs_back(c, s, cls, x, u, ed->to, first, &work, c->budget, maxlen, &cy);
                    if (len > 0 && (!best.n || len < best.n)) {
                        free(best.nodes);
                        free(best.types);
                        best = cy;
                    } else {
                        free(cy.nodes);
                        free(cy.types);
                    }
                    if (work > c->budget) {
                        c->budget_hit++;
                        goto done;
                    }
                    if (best.n == 2)
                        goto done;
                }
            }
        done:
            if (best.n) {
                char name[40];
                normalize_cycle(c, &best);
                cycle_name(&best, name, sizeof name);
                int dup = 0;
                for (int i = 0; i < nnames; i++)
                    dup |= strcmp(names[i], name) == 0;
                if (!dup && nnames < C_COUNT * 3) {
                    snprintf(names[nnames++], 40, "%s", name);
                    report_cycle(c, &best, name);
                    reported++;
                }
                free(best.nodes);
                free(best.types);
            }
        }
    }
    free(sub);
    return reported;
}

static int find_cycles(ctx *c)
{
    size_t n = c->nt;
    int *comp = malloc((n ? n : 1) * sizeof *comp);
    int *size = NULL, *by_comp = NULL;
    size_t *start = NULL;
    search s = {0};
    int rc = -1;
    if (!comp)
        return -1;
    int ncomp = tarjan(c, comp, E_DATA | E_PROC | E_RT, NULL, 0, NULL);
    if (ncomp < 0)
        goto out;
    size = calloc((size_t)ncomp + 1, sizeof *size);
    s.local = malloc((n ? n : 1) * sizeof *s.local);
    s.members = malloc((n ? n : 1) * sizeof *s.members);
    if (!size || !s.local || !s.members)
        goto out;
    for (size_t i = 0; i < n; i++) {
        size[comp[i]]++;
        s.local[i] = -1;
    }
    int biggest = 0;
    for (int k = 0; k < ncomp; k++)
        biggest = size[k] > biggest ? size[k] : biggest;
    if (biggest < 2) {
        rc = 0;
        goto out;
    }
    size_t cells = (size_t)biggest * NSTATE;
    s.stamp = calloc(cells, sizeof *s.stamp);
    s.parent = malloc(cells * sizeof *s.parent);
    s.ptype = malloc(cells);
    s.queue = malloc(cells * sizeof *s.queue);
    if (!s.stamp || !s.parent || !s.ptype || !s.queue)
        goto out;
    /* nodes bucketed by component (a counting sort), so each component's members are a slice */
    by_comp = malloc(n * sizeof *by_comp);
    start = calloc((size_t)ncomp + 1, sizeof *start);
    if (!by_comp || !start)
        goto out;
    for (int k = 0; k < ncomp; k++)
        start[k + 1] = start[k] + (size_t)size[k];
    for (size_t i = 0; i < n; i++)
        by_comp[start[comp[i]] + (size_t)(--size[comp[i]])] = (int)i;
    for (int k = 0; k < ncomp; k++) {
        if (start[k + 1] - start[k] < 2)
            continue;
        s.nmem = 0;
        for (size_t x = start[k]; x < start[k + 1]; x++) {
            int i = by_comp[x];
            s.local[i] = s.nmem;
            s.members[s.nmem++] = i;
        }
        int got = search_component(c, &s, comp, k);
        if (!got) {
            /* Every component of two or more nodes holds a cycle; if the bounded searches
             * missed it, find any one with all edge types and name it by its edges. */
            int u = s.members[0];
            for (size_t e = c->off[u]; e < c->off[u + 1] && !got; e++) {
                unsigned b = c->edges[e].type & (unsigned)-(int)c->edges[e].type;
                if (comp[c->edges[e].to] != k)
                    continue;
                cycle cy = {0};
                size_t work = 0;
                if (bfs_back(c, &s, C_ANY, X_NONE, u, c->edges[e].to, b, &work, SIZE_MAX, INT32_MAX,
                             &cy) > 0) {
                    char name[40];
                    normalize_cycle(c, &cy);
                    report_cycle(c, &cy, cycle_name(&cy, name, sizeof name));
                    got = 1;
                }
                free(cy.nodes);
                free(cy.types);
            }
            if (!got)
                jp_result_add(c->r, "cycle", NULL, 0,
                              "a strongly connected component of %d transactions (no cycle "
                              "could be named within the search budget)",
                              s.nmem);
        }
        for (int i = 0; i < s.nmem; i++)
            s.local[s.members[i]] = -1;
    }
    rc = 0;
out:
    free(comp);
    free(size);
    free(by_comp);
    free(start);
    free(s.local);
    free(s.members);
    free(s.stamp);
    free(s.parent);
    free(s.ptype);
    free(s.queue);
    return rc;
}

int jp_check_list_append(const jp_history *h, const jp_elle_opts *opts, jp_result *r, mr_err *err)
{
    jp_result_init(r, "list-append");
    ctx c = {.h = h, .r = r};
    c.budget = opts && opts->search_budget ? opts->search_budget : 2000000;
    c.keyidx = json_object();
    if (!c.keyidx)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    int rc = load(&c, err);
    if (rc != MR_OK) {
        r->valid = JP_UNKNOWN;
        free_ctx(&c);
        return rc;
    }
    size_t ok = 0;
    for (size_t i = 0; i < c.nt; i++)
        ok += c.t[i].out == JP_OK;
    r->ops_checked = c.nt;
    check_reads(&c);
    if (version_orders(&c) < 0 || (lost_updates(&c), build_graph(&c) < 0) || find_cycles(&c) < 0) {
        free_ctx(&c);
        r->valid = JP_UNKNOWN;
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    if (ok == 0 && r->valid == JP_VALID)
        jp_result_unknown(r, "no transaction completed ok: nothing to check");
    jp_result_note(r, "%zu transactions (%zu ok), %d keys, %zu dependency edges", c.nt, ok, c.nkeys,
                   c.ne);
    if (c.budget_hit)
        jp_result_note(r,
                       "%zu cycle searches stopped at the search budget: some cycle classes "
                       "may be unreported (raise jp_elle_opts.search_budget)",
                       c.budget_hit);
    free_ctx(&c);
    return MR_OK;
}
