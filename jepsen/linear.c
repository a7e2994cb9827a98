/* Wing–Gong–Lowe linearizability search for registers (see linear.h). */
#include "jepsen/linear.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum { L_READ, L_WRITE, L_CAS };

/* A register value: an integer, or nil before the first write. */
typedef struct {
    int nil;
    int64_t v;
} regval;

typedef struct lop {
    int kind;
    regval a, b; /* read: a = value read; write: a; cas: a -> b */
    size_t call; /* history index of the invoke */
    size_t ret;  /* history index of the completion (unused for info ops) */
    int info;    /* may take effect or not */
    size_t rep;  /* index reported to users */
} lop;

typedef struct ent {
    int op; /* index into the key's lop array */
    int is_call;
    size_t pos; /* sort position */
    struct ent *prev, *next, *match;
} ent;

static int regval_eq(regval x, regval y)
{
    return x.nil == y.nil && (x.nil || x.v == y.v);
}

static const char *regval_text(regval x, char *buf, size_t len)
{
    if (x.nil)
        snprintf(buf, len, "nil");
    else
        snprintf(buf, len, "%" PRId64, x.v);
    return buf;
}

static int parse_regval(const json_t *j, regval *out)
{
    if (json_is_null(j)) {
        out->nil = 1;
        out->v = 0;
        return 0;
    }
    if (json_is_integer(j)) {
        out->nil = 0;
        out->v = json_integer_value(j);
        return 0;
    }
    return -1;
}

/* The register model: does `o` apply in state s, and what state follows? */
static int model_step(const lop *o, regval s, regval *out)
{
    switch (o->kind) {
    case L_READ:
        *out = s;
        return regval_eq(s, o->a);
    case L_WRITE:
        *out = o->a;
        return 1;
    default:
        if (!regval_eq(s, o->a))
            return 0;
        *out = o->b;
        return 1;
    }
}

static const char *lop_text(const lop *o, char *buf, size_t len)
{
    char x[32], y[32];
    switch (o->kind) {
    case L_READ:
        snprintf(buf, len, "read -> %s", regval_text(o->a, x, sizeof x));
        break;
    case L_WRITE:
        snprintf(buf, len, "write %s", regval_text(o->a, x, sizeof x));
        break;
    default:
        snprintf(buf, len, "cas %s -> %s", regval_text(o->a, x, sizeof x),
                 regval_text(o->b, y, sizeof y));
    }
    return buf;
}

/* ---- the (linearized set, state) cache: Lowe's memoization ---- */

/* Each configuration's linearized set is stored as a window of its bitset: the words below
 * `lo` are all ones (every op that early is linearized) and those from lo + len on are zero
 * (nothing that late is), so the window is canonical and usually a word or two long however
 * long the history: the search linearizes roughly in call order. Storing whole bitsets would
 * cost O(ops) per configuration and O(ops^2) memory for one long key. */
typedef struct cache {
    uint64_t *pool; /* the windows, concatenated */
    size_t pool_n, pool_cap;
    size_t *woff; /* entry -> its window's offset in pool */
    uint32_t *wlo, *wlen;
    regval *state;
    uint64_t *hash;
    size_t n, cap;
    size_t *table; /* open addressing: entry index + 1, 0 = empty */
    size_t tcap;
    size_t bytes, max_bytes;
} cache;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t config_hash(uint64_t set_hash, regval s)
{
    return mix64(set_hash ^ mix64((uint64_t)s.v * 2 + (uint64_t)s.nil + 0x1234567));
}

static void window(const uint64_t *bits, size_t words, size_t *lo, size_t *len)
{
    size_t a = 0, b = words;
    while (a < words && bits[a] == ~0ULL)
        a++;
    while (b > a && bits[b - 1] == 0)
        b--;
    *lo = a;
    *len = b - a;
}

/* Returns 1 if inserted (new), 0 if already present, -1 if over budget / out of memory. */
static int cache_insert(cache *c, const uint64_t *bits, size_t words, regval s, uint64_t hv)
{
    size_t lo, len;
    window(bits, words, &lo, &len);
    if ((c->n + 1) * 2 > c->tcap) {
        size_t ncap = c->tcap ? c->tcap * 2 : 1024;
        size_t *nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return -1;
        for (size_t i = 0; i < c->n; i++) {
            size_t j = c->hash[i] & (ncap - 1);
            while (nt[j])
                j = (j + 1) & (ncap - 1);
            nt[j] = i + 1;
        }
        c->bytes += (ncap - c->tcap) * sizeof *nt;
        free(c->table);
        c->table = nt;
        c->tcap = ncap;
    }
    size_t j = hv & (c->tcap - 1);
    while (c->table[j]) {
        size_t e = c->table[j] - 1;
        if (c->hash[e] == hv && regval_eq(c->state[e], s) && c->wlo[e] == lo && c->wlen[e] == len &&
            memcmp(c->pool + c->woff[e], bits + lo, len * 8) == 0)
            return 0;
        j = (j + 1) & (c->tcap - 1);
    }
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        size_t grow = (ncap - c->cap) * (sizeof(regval) + 3 * 8 + 8);
        if (c->bytes + grow > c->max_bytes)
            return -1;
        size_t *no = realloc(c->woff, ncap * sizeof *no);
        if (no)
            c->woff = no;
        uint32_t *nl = no ? realloc(c->wlo, ncap * sizeof *nl) : NULL;
        if (nl)
            c->wlo = nl;
        uint32_t *nn = nl ? realloc(c->wlen, ncap * sizeof *nn) : NULL;
        if (nn)
            c->wlen = nn;
        regval *ns = nn ? realloc(c->state, ncap * sizeof *ns) : NULL;
        if (ns)
            c->state = ns;
        uint64_t *nh = ns ? realloc(c->hash, ncap * sizeof *nh) : NULL;
        if (!nh)
            return -1;
        c->hash = nh;
        c->cap = ncap;
        c->bytes += grow;
    }
    if (c->pool_n + len > c->pool_cap) {
        size_t ncap = c->pool_cap ? c->pool_cap * 2 : 4096;
        while (ncap < c->pool_n + len)
            ncap *= 2;
        size_t grow = (ncap - c->pool_cap) * 8;
        if (c->bytes + grow > c->max_bytes)
            return -1;
        uint64_t *np = realloc(c->pool, ncap * sizeof *np);
        if (!np)
            return -1;
        c->pool = np;
        c->pool_cap = ncap;
        c->bytes += grow;
    }
    memcpy(c->pool + c->pool_n, bits + lo, len * 8);
    c->woff[c->n] = c->pool_n;
    c->wlo[c->n] = (uint32_t)lo;
    c->wlen[c->n] = (uint32_t)len;
    c->pool_n += len;
    c->state[c->n] = s;
    c->hash[c->n] = hv;
    c->n++;
    c->table[j] = c->n;
    return 1;
}

static void cache_free(cache *c)
{
    free(c->pool);
    free(c->woff);
    free(c->wlo);
    free(c->wlen);
    free(c->state);
    free(c->hash);
    free(c->table);
}

static int ent_cmp(const void *a, const void *b)
{
    const ent *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Searches one key's operations. Returns 1 linearizable, 0 not (anomaly added), -1 unknown. */
static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Drops info writes and info cas whose new value no read returns and no cas expects. Sound
 * both ways: an info op may never have happened, so an invalid verdict without it stands; and
 * in any linearization that uses such an op, deleting it leaves a linearization (until the
 * next state change no read or cas can follow it, since each would observe or expect its
 * value). Without this, every unobserved timed-out write doubles the configurations that an
 * invalid key's search must exhaust. Returns the new count (ops compacted in place). */
static int drop_unobserved_info(lop *ops, int m)
{
    int64_t *seen = malloc((size_t)(m ? m : 1) * sizeof *seen);
    int nseen = 0, nil_seen = 0;
    if (!seen)
        return m;
    for (int i = 0; i < m; i++) {
        const regval *v = ops[i].kind == L_READ || ops[i].kind == L_CAS ? &ops[i].a : NULL;
        if (!v)
            continue;
        if (v->nil)
            nil_seen = 1;
        else
            seen[nseen++] = v->v;
    }
    if (nseen)
        qsort(seen, (size_t)nseen, sizeof *seen, cmp_i64);
    int w = 0;
    for (int i = 0; i < m; i++) {
        const lop *o = &ops[i];
        if (o->info && o->kind != L_READ) {
            regval nv = o->kind == L_WRITE ? o->a : o->b;
            int observed = nv.nil ? nil_seen
                                  : nseen && bsearch(&nv.v, seen, (size_t)nseen, sizeof *seen,
                                                     cmp_i64) != NULL;
            if (!observed)
                continue;
        }
        ops[w++] = *o;
    }
    free(seen);
    return w;
}

static int check_key(const char *keytext, lop *ops, int m, size_t max_bytes, jp_result *r)
{
    m = drop_unobserved_info(ops, m);
    int n_ok = 0;
    for (int i = 0; i < m; i++)
        n_ok += !ops[i].info;
    if (n_ok == 0)
        return 1;

    int result = -1;
    ent *ents = calloc((size_t)2 * m + 1, sizeof *ents);
    size_t words = ((size_t)m + 63) / 64;
    uint64_t *bits = calloc(words, sizeof *bits);
    uint64_t *zob = malloc((size_t)m * sizeof *zob);
    struct frame {
        ent *e;
        regval s;
        uint64_t sh;
    } *stack = malloc((size_t)m * sizeof *stack);
    int best[8]; /* the last (up to 8) ops of the deepest partial linearization */
    cache c = {.max_bytes = max_bytes};
    if (!ents || !bits || !zob || !stack)
        goto done;

    /* Entries in real-time order: calls at their invoke, returns at their completion,
     * info returns after everything (they may linearize at any later point). */
    for (int i = 0; i < m; i++) {
        ents[2 * i] = (ent){.op = i, .is_call = 1, .pos = ops[i].call * 2};
        ents[2 * i + 1] =
            (ent){.op = i,
                  .is_call = 0,
                  .pos = ops[i].info ? SIZE_MAX - (size_t)m + (size_t)i : ops[i].ret * 2 + 1};
        zob[i] = mix64((uint64_t)i + 0x9E3779B97F4A7C15ULL);
    }
    qsort(ents, (size_t)2 * m, sizeof *ents, ent_cmp);
    int *call_at = malloc((size_t)m * sizeof *call_at),
        *ret_at = malloc((size_t)m * sizeof *ret_at);
    if (!call_at || !ret_at) {
        free(call_at);
        free(ret_at);
        goto done;
    }
    for (int i = 0; i < 2 * m; i++)
        (ents[i].is_call ? call_at : ret_at)[ents[i].op] = i;
    for (int i = 0; i < m; i++) {
        ents[call_at[i]].match = &ents[ret_at[i]];
        ents[ret_at[i]].match = &ents[call_at[i]];
    }
    free(call_at);
    free(ret_at);
    ent *head = &ents[2 * m]; /* sentinel */
    head->prev = NULL;
    head->next = &ents[0];
    ents[0].prev = head;
    for (int i = 0; i < 2 * m; i++) {
        if (i > 0)
            ents[i].prev = &ents[i - 1];
        ents[i].next = i + 1 < 2 * m ? &ents[i + 1] : NULL;
    }

    regval state = {.nil = 1};
    uint64_t sh = 0;
    int depth = 0, linearized_ok = 0;
    int best_depth = -1, best_block = -1;
    regval best_state = state;
    ent *e = head->next;
    for (;;) {
        if (linearized_ok == n_ok) {
            result = 1;
            break;
        }
        if (!e) { /* only info returns remain; cannot happen while ok ops are pending */
            result = 1;
            break;
        }
        if (e->is_call) {
            const lop *o = &ops[e->op];
            regval next;
            if (model_step(o, state, &next)) {
                bits[e->op / 64] |= 1ULL << (e->op % 64);
                uint64_t nsh = sh ^ zob[e->op];
                int ins = cache_insert(&c, bits, words, next, config_hash(nsh, next));
                if (ins < 0) {
                    jp_result_unknown(r,
                                      "key %s: the linearizability search outgrew its %zu MiB "
                                      "cache after %zu configurations",
                                      keytext, max_bytes >> 20, c.n);
                    result = -1;
                    break;
                }
                if (ins == 1) {
                    stack[depth++] = (struct frame){e, state, sh};
                    state = next;
                    sh = nsh;
                    linearized_ok += !o->info;
                    /* lift the call and its return out of the list */
                    e->prev->next = e->next;
                    if (e->next)
                        e->next->prev = e->prev;
                    ent *rt = e->match;
                    rt->prev->next = rt->next;
                    if (rt->next)
                        rt->next->prev = rt->prev;
                    e = head->next;
                    continue;
                }
                bits[e->op / 64] &= ~(1ULL << (e->op % 64));
            }
            e = e->next;
            continue;
        }
        /* A return whose call is not linearized: this branch is dead. */
        if (depth > best_depth) {
            best_depth = depth;
            best_block = e->op;
            best_state = state;
            for (int i = depth < 8 ? 0 : depth - 8, j = 0; i < depth; i++)
                best[j++] = stack[i].e->op;
        }
        if (depth == 0) {
            result = 0;
            break;
        }
        struct frame f = stack[--depth];
        ent *ce = f.e;
        linearized_ok -= !ops[ce->op].info;
        state = f.s;
        sh = f.sh;
        bits[ce->op / 64] &= ~(1ULL << (ce->op % 64));
        /* unlift: put the return then the call back where they were */
        ent *rt = ce->match;
        rt->prev->next = rt;
        if (rt->next)
            rt->next->prev = rt;
        ce->prev->next = ce;
        if (ce->next)
            ce->next->prev = ce;
        e = ce->next;
    }

    if (result == 0) {
        size_t nshow = best_depth < 8 ? (size_t)best_depth : 8;
        size_t *rep = malloc((nshow + 1) * sizeof *rep);
        char t1[96], t2[96], sv[32];
        const lop *blk = &ops[best_block];
        if (rep) {
            rep[0] = blk->rep;
            for (size_t i = 0; i < nshow; i++)
                rep[1 + i] = ops[best[i]].rep;
        }
        if (best_depth > 0) {
            const lop *last = &ops[best[nshow - 1]];
            jp_result_add(r, "nonlinearizable", rep, rep ? nshow + 1 : 0,
                          "key %s: no linearization exists. The deepest partial linearization "
                          "orders %d op(s), ending with op %zu (%s) and the register at %s; "
                          "none extends past op %zu (%s), which had returned. Listed: that op, "
                          "then the last %zu linearized ops.",
                          keytext, best_depth, last->rep, lop_text(last, t1, sizeof t1),
                          regval_text(best_state, sv, sizeof sv), blk->rep,
                          lop_text(blk, t2, sizeof t2), nshow);
        } else {
            jp_result_add(r, "nonlinearizable", rep, rep ? 1 : 0,
                          "key %s: no linearization exists: op %zu (%s) can take effect "
                          "neither first (register nil) nor after any op concurrent with it",
                          keytext, blk->rep, lop_text(blk, t2, sizeof t2));
        }
        free(rep);
    }
done:
    if (result == -1 && r->valid == JP_VALID)
        jp_result_unknown(r, "key %s: out of memory or cache budget in the search", keytext);
    cache_free(&c);
    free(ents);
    free(bits);
    free(zob);
    free(stack);
    return result;
}

typedef struct keygroup {
    json_t *key; /* borrowed */
    lop *ops;
    int n, cap;
} keygroup;

int jp_check_register(const jp_history *h, const jp_linear_opts *opts, jp_result *r, mr_err *err)
{
    jp_result_init(r, "register");
    size_t max_bytes = opts && opts->max_cache_bytes ? opts->max_cache_bytes : (size_t)512 << 20;
    json_t *index = json_object(); /* key text -> group number */
    keygroup *groups = NULL;
    size_t ng = 0, gcap = 0;
    int rc = MR_OK;
    if (!index)
        return mr_errf(err, MR_ENOMEM, "out of memory");

    for (size_t i = 0; i < h->n && rc == MR_OK; i++) {
        const jp_op *op = &h->ops[i];
        if (op->type != JP_INVOKE || op->process == JP_NEMESIS)
            continue;
        r->ops_checked++;
        jp_type out = jp_outcome(h, i);
        lop o = {.call = i, .ret = op->pair, .info = out == JP_INFO, .rep = jp_report_index(h, i)};
        long line = op->line;
        if (strcmp(op->f, "read") == 0) {
            o.kind = L_READ;
            if (out != JP_OK)
                continue; /* an unknown or failed read constrains nothing */
            if (parse_regval(h->ops[op->pair].value, &o.a) < 0) {
                rc = mr_errf(err, MR_EINVAL,
                             "line %ld: register read: the ok value must be an integer or null",
                             h->ops[op->pair].line);
                break;
            }
        } else if (strcmp(op->f, "write") == 0) {
            o.kind = L_WRITE;
            if (parse_regval(op->value, &o.a) < 0) {
                rc = mr_errf(err, MR_EINVAL,
                             "line %ld: register write: value must be an integer or null", line);
                break;
            }
        } else if (strcmp(op->f, "cas") == 0) {
            o.kind = L_CAS;
            if (!json_is_array(op->value) || json_array_size(op->value) != 2 ||
                parse_regval(json_array_get(op->value, 0), &o.a) < 0 ||
                parse_regval(json_array_get(op->value, 1), &o.b) < 0) {
                rc = mr_errf(err, MR_EINVAL,
                             "line %ld: register cas: value must be [old, new] (integers or "
                             "null)",
                             line);
                break;
            }
        } else {
            rc = mr_errf(err, MR_EINVAL,
                         "line %ld: register model: unknown f \"%s\" (expected read, write or "
                         "cas)",
                         line, op->f);
            break;
        }
        if (out == JP_FAIL)
            continue; /* it did not happen */
        char kb[300];
        char kt[320];
        snprintf(kt, sizeof kt, "%c:%s", op->key && json_is_integer(op->key) ? 'i' : 's',
                 op->key ? jp_key_text(op->key, kb, sizeof kb) : "");
        json_t *g = json_object_get(index, kt);
        size_t gi;
        if (g) {
            gi = (size_t)json_integer_value(g);
        } else {
            if (ng == gcap) {
                size_t ncap = gcap ? gcap * 2 : 16;
                keygroup *ngs = realloc(groups, ncap * sizeof *ngs);
                if (!ngs) {
                    rc = mr_errf(err, MR_ENOMEM, "out of memory");
                    break;
                }
                groups = ngs;
                gcap = ncap;
            }
            gi = ng++;
            groups[gi] = (keygroup){.key = op->key};
            json_object_set_new(index, kt, json_integer((json_int_t)gi));
        }
        keygroup *kg = &groups[gi];
        if (kg->n == kg->cap) {
            int ncap = kg->cap ? kg->cap * 2 : 16;
            lop *nops = realloc(kg->ops, (size_t)ncap * sizeof *nops);
            if (!nops) {
                rc = mr_errf(err, MR_ENOMEM, "out of memory");
                break;
            }
            kg->ops = nops;
            kg->cap = ncap;
        }
        kg->ops[kg->n++] = o;
    }

    if (rc == MR_OK) {
        size_t ok_ops = 0;
        for (size_t g = 0; g < ng; g++)
            for (int i = 0; i < groups[g].n; i++)
                ok_ops += !groups[g].ops[i].info;
        for (size_t g = 0; g < ng; g++) {
            char kb[300];
            check_key(groups[g].key ? jp_key_text(groups[g].key, kb, sizeof kb) : "(single)",
                      groups[g].ops, groups[g].n, max_bytes, r);
        }
        if (ok_ops == 0 && r->valid == JP_VALID)
            jp_result_unknown(r, "no operation completed ok: nothing to check");
    } else {
        r->valid = JP_UNKNOWN;
    }
    for (size_t g = 0; g < ng; g++)
        free(groups[g].ops);
    free(groups);
    json_decref(index);
    return rc;
}
