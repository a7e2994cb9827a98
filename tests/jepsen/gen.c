/* Valid-history generators and their invalid mutations (see gen.h). */
#include "tests/jepsen/gen.h"

#include <stdlib.h>
#include <string.h>

uint64_t gen_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int rnd(uint64_t *s, int n)
{
    return n > 0 ? (int)(gen_rand(s) % (uint64_t)n) : 0;
}

/* ---- the in-memory models ---- */

typedef struct model {
    gen_model kind;
    int nkeys;
    int64_t next; /* unique values */
    /* register: value per key (nil flag); lists; bank balances; set members */
    int64_t *reg;
    int *reg_nil;
    int64_t **lists;
    size_t *llen;
    int64_t *bal;
    int64_t *set;
    size_t nset;
    /* register: values written so far per key, for cas guesses */
    int64_t **written;
    size_t *nwritten;
} model;

static int push(int64_t **a, size_t *n, int64_t v)
{
    int64_t *na = realloc(*a, (*n + 1) * sizeof *na);
    if (!na)
        return -1;
    na[(*n)++] = v;
    *a = na;
    return 0;
}

static json_t *list_json(const int64_t *l, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(l[i]));
    return a;
}

/* Builds an invocation's f, key and value. */
static json_t *m_invoke(model *m, uint64_t *rs, const char **f, json_t **key)
{
    *key = NULL;
    switch (m->kind) {
    case GEN_REGISTER: {
        int k = rnd(rs, m->nkeys);
        *key = json_integer(k);
        int r = rnd(rs, 10);
        if (r < 4) {
            *f = "read";
            return json_null();
        }
        if (r < 8 || m->nwritten[k] == 0) {
            *f = "write";
            int64_t v = ++m->next;
            push(&m->written[k], &m->nwritten[k], v);
            return json_integer(v);
        }
        *f = "cas";
        int64_t v = ++m->next;
        json_t *old = m->nwritten[k] && rnd(rs, 4)
                          ? json_integer(m->written[k][m->nwritten[k] - 1 -
                                                       (size_t)rnd(rs, m->nwritten[k] > 2 ? 2 : 1)])
                          : json_null();
        push(&m->written[k], &m->nwritten[k], v);
        return json_pack("[o, I]", old, (json_int_t)v);
    }
    case GEN_LIST_APPEND: {
        *f = "txn";
        json_t *t = json_array();
        int n = 1 + rnd(rs, 4);
        for (int i = 0; i < n; i++) {
            int k = rnd(rs, m->nkeys);
            if (rnd(rs, 2))
                json_array_append_new(t,
                                      json_pack("[s, i, I]", "append", k, (json_int_t)++m->next));
            else
                json_array_append_new(t, json_pack("[s, i, n]", "r", k));
        }
        return t;
    }
    case GEN_BANK:
        if (rnd(rs, 3) == 0) {
            *f = "read";
            return json_null();
        } else {
            *f = "transfer";
            int a = rnd(rs, m->nkeys), b = (a + 1 + rnd(rs, m->nkeys - 1)) % m->nkeys;
            return json_pack("{s:i, s:i, s:i}", "from", a, "to", b, "amount", 1 + rnd(rs, 5));
        }
    default:
        if (rnd(rs, 8) == 0) {
            *f = "read";
            return json_null();
        }
        *f = "add";
        return json_integer(++m->next);
    }
}

static int64_t regkey(const json_t *k)
{
    return json_integer_value(k);
}

/* Applies an operation at this instant; returns the completion value, or sets *failed when
 * the operation cannot take effect (cas mismatch, insufficient funds). */
static json_t *m_apply(model *m, const char *f, const json_t *key, const json_t *value, int *failed)
{
    *failed = 0;
    switch (m->kind) {
    case GEN_REGISTER: {
        int64_t k = regkey(key);
        if (strcmp(f, "read") == 0)
            return m->reg_nil[k] ? json_null() : json_integer(m->reg[k]);
        if (strcmp(f, "write") == 0) {
            m->reg[k] = json_integer_value(value);
            m->reg_nil[k] = 0;
            return json_incref((json_t *)value);
        }
        json_t *old = json_array_get(value, 0);
        int match = json_is_null(old) ? m->reg_nil[k]
                                      : !m->reg_nil[k] && m->reg[k] == json_integer_value(old);
        if (!match) {
            *failed = 1;
            return json_incref((json_t *)value);
        }
        m->reg[k] = json_integer_value(json_array_get(value, 1));
        m->reg_nil[k] = 0;
        return json_incref((json_t *)value);
    }
    case GEN_LIST_APPEND: {
        json_t *out = json_array();
        size_t i;
        json_t *mo;
        json_array_foreach(value, i, mo)
        {
            const char *mf = json_string_value(json_array_get(mo, 0));
            int k = (int)json_integer_value(json_array_get(mo, 1));
            if (mf[0] == 'a') {
                push(&m->lists[k], &m->llen[k], json_integer_value(json_array_get(mo, 2)));
                json_array_append(out, mo);
            } else {
                json_array_append_new(
                    out, json_pack("[s, i, o]", "r", k, list_json(m->lists[k], m->llen[k])));
            }
        }
        return out;
    }
    case GEN_BANK:
        if (strcmp(f, "read") == 0) {
            json_t *o = json_object();
            for (int a = 0; a < m->nkeys; a++) {
                char name[16];
                snprintf(name, sizeof name, "%d", a);
                json_object_set_new(o, name, json_integer(m->bal[a]));
            }
            return o;
        } else {
            int a = (int)json_integer_value(json_object_get(value, "from"));
            int b = (int)json_integer_value(json_object_get(value, "to"));
            int64_t amt = json_integer_value(json_object_get(value, "amount"));
            if (m->bal[a] < amt) {
                *failed = 1;
                return json_incref((json_t *)value);
            }
            m->bal[a] -= amt;
            m->bal[b] += amt;
            return json_incref((json_t *)value);
        }
    default:
        if (strcmp(f, "read") == 0)
            return list_json(m->set, m->nset);
        push(&m->set, &m->nset, json_integer_value(value));
        return json_incref((json_t *)value);
    }
}

static void model_free(model *m)
{
    for (int k = 0; k < m->nkeys; k++) {
        if (m->lists)
            free(m->lists[k]);
        if (m->written)
            free(m->written[k]);
    }
    free(m->reg);
    free(m->reg_nil);
    free(m->lists);
    free(m->llen);
    free(m->bal);
    free(m->set);
    free(m->written);
    free(m->nwritten);
}

/* ---- the concurrent driver ---- */

typedef struct proc {
    int64_t pid;
    int active, applied, failed;
    const char *f;
    json_t *key, *value, *result;
    size_t inv;
} proc;

static int emit(jp_history *h, proc *p, const char *type, json_t *value, int64_t *clock)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:O, s:I}", "process", (json_int_t)p->pid, "type", type,
                          "f", p->f, "value", value, "time", (json_int_t)(*clock += 1000));
    if (!o)
        return -1;
    if (p->key)
        json_object_set(o, "key", p->key);
    mr_err err;
    return jp_history_add(h, o, 0, &err) == MR_OK ? 0 : -1;
}

int gen_history(const gen_opts *o, jp_history *h, gen_out *out)
{
    memset(out, 0, sizeof *out);
    uint64_t rs = o->seed * 2654435761ULL + 1;
    model m = {.kind = o->model, .nkeys = o->nkeys > 1 ? o->nkeys : 2};
    int nk = m.nkeys;
    m.reg = calloc((size_t)nk, sizeof *m.reg);
    m.reg_nil = calloc((size_t)nk, sizeof *m.reg_nil);
    m.lists = calloc((size_t)nk, sizeof *m.lists);
    m.llen = calloc((size_t)nk, sizeof *m.llen);
    m.bal = calloc((size_t)nk, sizeof *m.bal);
    m.written = calloc((size_t)nk, sizeof *m.written);
    m.nwritten = calloc((size_t)nk, sizeof *m.nwritten);
    proc *ps = calloc((size_t)o->nprocs, sizeof *ps);
    int rc = -1;
    if (!m.reg || !m.reg_nil || !m.lists || !m.llen || !m.bal || !m.written || !m.nwritten || !ps)
        goto done;
    for (int k = 0; k < nk; k++) {
        m.reg_nil[k] = 1;
        m.bal[k] = 10;
    }
    out->bank_total = 10 * nk;
    int64_t next_pid = o->nprocs, clock = 0;
    for (int i = 0; i < o->nprocs; i++)
        ps[i].pid = i;
    int invoked = 0, active = 0;
    while (invoked < o->nops || active) {
        if (rnd(&rs, 50) == 0) { /* a nemesis event now and then: checkers must skip it */
            static const char *const faults[] = {"start-partition", "stop-partition", "kill",
                                                 "pause", "bump-clock"};
            json_t *no =
                json_pack("{s:s, s:s, s:s, s:s, s:I}", "process", "nemesis", "type", "info", "f",
                          faults[rnd(&rs, 5)], "value", "n1", "time", (json_int_t)(clock += 1000));
            mr_err nerr;
            if (!no || jp_history_add(h, no, 0, &nerr) != MR_OK)
                goto done;
        }
        int act = rnd(&rs, 3);
        proc *p = &ps[rnd(&rs, o->nprocs)];
        if (act == 0) {
            if (p->active || invoked >= o->nops)
                continue;
            p->value = m_invoke(&m, &rs, &p->f, &p->key);
            p->inv = h->n;
            if (emit(h, p, "invoke", p->value, &clock) < 0)
                goto done;
            p->active = 1;
            p->applied = p->failed = 0;
            invoked++;
            active++;
            continue;
        }
        if (!p->active)
            continue;
        if (act == 1 && p->applied)
            continue;
        if (!p->applied) {
            if (act == 2) { /* completing an op that has not taken effect */
                int roll = rnd(&rs, 100);
                if (roll < o->p_fail || roll < o->p_fail + o->p_info) {
                    int info = roll >= o->p_fail;
                    if (emit(h, p, info ? "info" : "fail", p->value, &clock) < 0)
                        goto done;
                    if (info)
                        p->pid = next_pid++;
                    goto finished;
                }
            }
            p->result = m_apply(&m, p->f, p->key, p->value, &p->failed);
            p->applied = 1;
            if (!p->failed) {
                size_t *na = realloc(out->applied, (out->napplied + 1) * sizeof *na);
                if (!na)
                    goto done;
                out->applied = na;
                na[out->napplied++] = p->inv;
            }
            if (act == 1)
                continue;
        }
        /* complete an applied op: ok, or info (it happened; the client does not know) */
        {
            int info = !p->failed && rnd(&rs, 100) < o->p_info;
            const char *type = p->failed ? "fail" : info ? "info" : "ok";
            json_t *v = p->failed || info ? p->value : p->result;
            if (emit(h, p, type, v, &clock) < 0)
                goto done;
            if (info)
                p->pid = next_pid++;
        }
    finished:
        json_decref(p->key);
        json_decref(p->value);
        json_decref(p->result);
        p->key = p->value = p->result = NULL;
        p->active = 0;
        active--;
    }
    if (o->model == GEN_SET) { /* the final read, after every add has completed */
        proc fin = {.pid = next_pid, .f = "read"};
        fin.result = m_apply(&m, "read", NULL, NULL, &fin.failed);
        int bad = emit(h, &fin, "invoke", json_null(), &clock) < 0 ||
                  emit(h, &fin, "ok", fin.result, &clock) < 0;
        json_decref(fin.result);
        if (bad)
            goto done;
    }
    rc = 0;
done:
    if (ps)
        for (int i = 0; i < o->nprocs; i++) {
            json_decref(ps[i].key);
            json_decref(ps[i].value);
            json_decref(ps[i].result);
        }
    free(ps);
    model_free(&m);
    return rc;
}

void gen_out_free(gen_out *out)
{
    free(out->applied);
    memset(out, 0, sizeof *out);
}

int gen_clone_with(const jp_history *src, jp_history *dst, size_t idx, json_t *repl)
{
    mr_err err;
    for (size_t i = 0; i < src->n; i++) {
        json_t *o = i == idx && repl ? repl : json_deep_copy(src->ops[i].obj);
        if (i == idx)
            repl = NULL;
        json_object_del(o, "index");
        if (jp_history_add(dst, o, 0, &err) != MR_OK) {
            json_decref(repl);
            return -1;
        }
    }
    json_decref(repl);
    return 0;
}

/* ---- mutations ---- */

int mutate_register_stale(const jp_history *src, const gen_out *g, uint64_t pick, jp_history *dst)
{
    /* Walk the effects in order per key: value u written by X (ok, or nil initially) was
     * replaced by W (ok) where X completed before W began. An ok read R of that key that began
     * after W completed cannot return u: values are unique, so u never comes back. */
    size_t cands = 0, chosen_r = JP_NONE;
    json_t *chosen_v = NULL;
    for (int pass = 0; pass < 2; pass++) {
        size_t target = pass ? (size_t)(pick % (cands ? cands : 1)) : 0, seen = 0;
        for (size_t a = 0; a < g->napplied && (pass == 0 || chosen_r == JP_NONE); a++) {
            const jp_op *w = &src->ops[g->applied[a]];
            if (strcmp(w->f, "read") == 0 || jp_outcome(src, g->applied[a]) != JP_OK)
                continue;
            /* the previous effect on this key (X) */
            const jp_op *x = NULL;
            for (size_t b = a; b-- > 0;) {
                const jp_op *c = &src->ops[g->applied[b]];
                if (strcmp(c->f, "read") != 0 && json_equal(c->key, w->key)) {
                    x = c;
                    break;
                }
            }
            json_t *u;
            if (x) {
                if (jp_outcome(src, x->index) != JP_OK || x->pair > w->index)
                    continue;
                u = strcmp(x->f, "cas") == 0 ? json_array_get(x->value, 1) : x->value;
            } else {
                u = json_null();
            }
            for (size_t r = w->pair + 1; r < src->n; r++) {
                const jp_op *rd = &src->ops[r];
                if (rd->type != JP_INVOKE || strcmp(rd->f, "read") != 0 ||
                    !json_equal(rd->key, w->key) || jp_outcome(src, r) != JP_OK)
                    continue;
                if (pass == 1 && seen++ == target) {
                    chosen_r = rd->pair;
                    chosen_v = u;
                    break;
                }
                if (pass == 0)
                    cands++;
            }
        }
        if (!cands)
            return 0;
    }
    if (chosen_r == JP_NONE)
        return 0;
    json_t *o = json_deep_copy(src->ops[chosen_r].obj);
    json_object_set(o, "value", chosen_v);
    return gen_clone_with(src, dst, chosen_r, o) == 0 ? 1 : -1;
}

/* Indexes of a list-append history for the mutations: "key/value" -> the invoke index of its
 * writer, and "key/value" -> how many ok reads show it. Both owned by the caller. */
static void la_name(char *buf, size_t len, const json_t *key, const json_t *v)
{
    char kb[64];
    snprintf(buf, len, "%s/%lld", jp_key_text(key, kb, sizeof kb),
             (long long)json_integer_value(v));
}

static void la_index(const jp_history *h, json_t **writers, json_t **seen)
{
    *writers = json_object();
    *seen = json_object();
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = &h->ops[i];
        if (op->type != JP_INVOKE && op->type != JP_OK)
            continue;
        size_t j, x;
        json_t *mo, *e;
        json_array_foreach(op->value, j, mo)
        {
            char name[64];
            int app = json_string_value(json_array_get(mo, 0))[0] == 'a';
            if (op->type == JP_INVOKE && app) {
                la_name(name, sizeof name, json_array_get(mo, 1), json_array_get(mo, 2));
                json_object_set_new(*writers, name, json_integer((json_int_t)i));
            }
            if (op->type != JP_OK || app)
                continue;
            json_array_foreach(json_array_get(mo, 2), x, e)
            {
                la_name(name, sizeof name, json_array_get(mo, 1), e);
                json_t *c = json_object_get(*seen, name);
                json_object_set_new(*seen, name, json_integer(c ? json_integer_value(c) + 1 : 1));
            }
        }
    }
}

static long long la_lookup(json_t *idx, const json_t *key, const json_t *v)
{
    char name[64];
    la_name(name, sizeof name, key, v);
    json_t *x = json_object_get(idx, name);
    return x ? json_integer_value(x) : -1;
}

int mutate_append_stale(const jp_history *src, uint64_t pick, jp_history *dst)
{
    size_t cands = 0;
    json_t *writers, *shown;
    int ret = 0;
    la_index(src, &writers, &shown);
    for (int pass = 0; pass < 2; pass++) {
        size_t target = pass ? (size_t)(pick % cands) : 0, seen = 0;
        for (size_t i = 0; i < src->n; i++) {
            const jp_op *c = &src->ops[i];
            if (c->type != JP_OK)
                continue;
            size_t j;
            json_t *mo;
            json_array_foreach(c->value, j, mo)
            {
                json_t *l = json_array_get(mo, 2);
                if (json_string_value(json_array_get(mo, 0))[0] != 'r' || !json_array_size(l))
                    continue;
                json_t *key = json_array_get(mo, 1),
                       *last = json_array_get(l, json_array_size(l) - 1);
                long long wl = la_lookup(writers, key, last);
                size_t w = wl < 0 ? JP_NONE : (size_t)wl;
                if (w == JP_NONE || w == c->pair || jp_outcome(src, w) != JP_OK ||
                    src->ops[w].pair > c->pair || la_lookup(shown, key, last) < 2)
                    continue;
                if (pass == 0) {
                    cands++;
                    continue;
                }
                if (seen++ != target)
                    continue;
                json_t *o = json_deep_copy(c->obj);
                json_t *nl = json_array_get(json_array_get(json_object_get(o, "value"), j), 2);
                json_array_remove(nl, json_array_size(nl) - 1);
                ret = gen_clone_with(src, dst, i, o) == 0 ? 1 : -1;
                goto out;
            }
        }
        if (!cands)
            break;
    }
out:
    json_decref(writers);
    json_decref(shown);
    return ret;
}

/* How many reads inside one transaction value show (key, v). */
static long long own_reads(const json_t *txn, const json_t *key, const json_t *v)
{
    long long n = 0;
    size_t j, x;
    json_t *mo, *e;
    json_array_foreach(txn, j, mo)
    {
        if (json_string_value(json_array_get(mo, 0))[0] != 'r' ||
            !json_equal(json_array_get(mo, 1), (json_t *)key))
            continue;
        json_array_foreach(json_array_get(mo, 2), x, e) n += json_equal(e, (json_t *)v);
    }
    return n;
}

int mutate_append_abort(const jp_history *src, uint64_t pick, jp_history *dst)
{
    size_t cands = 0;
    json_t *writers, *shown;
    int ret = 0;
    la_index(src, &writers, &shown);
    for (int pass = 0; pass < 2; pass++) {
        size_t target = pass ? (size_t)(pick % cands) : 0, seen = 0;
        for (size_t i = 0; i < src->n; i++) {
            const jp_op *c = &src->ops[i];
            if (c->type != JP_OK)
                continue;
            int observed = 0;
            size_t j;
            json_t *mo;
            json_array_foreach(c->value, j,
                               mo) if (json_string_value(json_array_get(mo, 0))[0] == 'a')
                observed |= la_lookup(shown, json_array_get(mo, 1), json_array_get(mo, 2)) >
                            own_reads(c->value, json_array_get(mo, 1), json_array_get(mo, 2));
            if (!observed)
                continue;
            if (pass == 0) {
                cands++;
                continue;
            }
            if (seen++ != target)
                continue;
            json_t *o = json_deep_copy(c->obj);
            json_object_set_new(o, "type", json_string("fail"));
            json_object_set(o, "value", src->ops[c->pair].value);
            ret = gen_clone_with(src, dst, i, o) == 0 ? 1 : -1;
            goto out;
        }
        if (!cands)
            break;
    }
out:
    json_decref(writers);
    json_decref(shown);
    return ret;
}

int mutate_append_dup(const jp_history *src, uint64_t pick, jp_history *dst)
{
    size_t cands = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t target = pass ? (size_t)(pick % cands) : 0, seen = 0;
        for (size_t i = 0; i < src->n; i++) {
            const jp_op *c = &src->ops[i];
            if (c->type != JP_OK)
                continue;
            size_t j;
            json_t *mo;
            json_array_foreach(c->value, j, mo)
            {
                json_t *l = json_array_get(mo, 2);
                if (json_string_value(json_array_get(mo, 0))[0] != 'r' || !json_array_size(l))
                    continue;
                if (pass == 0) {
                    cands++;
                    continue;
                }
                if (seen++ != target)
                    continue;
                json_t *o = json_deep_copy(c->obj);
                json_t *nl = json_array_get(json_array_get(json_object_get(o, "value"), j), 2);
                json_array_append(nl, json_array_get(nl, 0));
                return gen_clone_with(src, dst, i, o) == 0 ? 1 : -1;
            }
        }
        if (!cands)
            return 0;
    }
    return 0;
}
