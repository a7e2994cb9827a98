/* tests/sql/diff/sql_gen.c: random SQL scripts (see sql_gen.h for the rules
 * that keep their output independent of scan order). */
#include "tests/sql/diff/sql_gen.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { A_INT, A_TEXT, A_REAL, A_NUMERIC, A_NONE, A_COUNT };
static const char *const affinity_name[A_COUNT] = {"INTEGER", "TEXT", "REAL", "NUMERIC", ""};

#define MAX_COLS   6
#define MAX_TABLES 3

typedef struct gcol {
    char name[16]; /* "k0", "v12": room for any int, so no truncation is possible */
    int aff;
    bool key;
} gcol;

typedef struct gtable {
    char name[80];
    gcol c[MAX_COLS];
    int ncol, nkey; /* the first nkey columns are the primary key (0: none) */
    bool rowid;     /* k0 INTEGER PRIMARY KEY: only integers go in */
    bool desc[MAX_COLS];
} gtable;

typedef struct gen {
    uint64_t s;
    FILE *f;
    gtable t[MAX_TABLES];
    int nt;
} gen;

static uint64_t next(gen *g) /* splitmix64 */
{
    uint64_t z = (g->s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static int below(gen *g, int n)
{
    return (int)(next(g) % (uint64_t)n);
}

static bool chance(gen *g, int percent)
{
    return below(g, 100) < percent;
}

/* ---- values ---- */

static const char *const texts[] = {"''",   "'a'",   "'ab'", "'b'", "'B'",   "'it''s'", "'10'",
                                    "' 3'", "'x y'", "'é'",  "'7'", "'2.5'", "'a%b'"};
static const char *const blobs[] = {"x''", "x'00'", "x'61'", "x'ff01'", "x'0a0b'"};
static const char *const big_ints[] = {"9223372036854775807", "-9223372036854775808",
                                       "9007199254740993", "9007199254740992", "-9007199254740993"};

static void small_int(gen *g)
{
    fprintf(g->f, "%d", below(g, 16) - 3);
}

/* A real that is a small multiple of 0.25 and never integral. */
static void dyadic_real(gen *g)
{
    static const char *const frac[] = {"25", "5", "75"};
    int i = below(g, 16) - 3;
    fprintf(g->f, "%s%d.%s", i < 0 ? "-" : "", i < 0 ? -i : i, frac[below(g, 3)]);
}

static void value_of_kind(gen *g, int kind)
{
    switch (kind) {
    case 0:
        small_int(g);
        break;
    case 1:
        fputs(texts[below(g, (int)(sizeof texts / sizeof texts[0]))], g->f);
        break;
    case 2:
        dyadic_real(g);
        break;
    default:
        fputs(blobs[below(g, (int)(sizeof blobs / sizeof blobs[0]))], g->f);
        break;
    }
}

/* A value for column c: mostly the column's own kind, sometimes another
 * (affinity at work); NULL only outside the key; huge integers only in keys
 * (never summed). */
static void value_for(gen *g, const gtable *t, const gcol *c)
{
    if (c->key && t->rowid) {
        fprintf(g->f, "%d", below(g, 40) - 5);
        return;
    }
    if (!c->key && chance(g, 15)) {
        fputs("NULL", g->f);
        return;
    }
    if (c->key && chance(g, 5)) {
        fputs(big_ints[below(g, (int)(sizeof big_ints / sizeof big_ints[0]))], g->f);
        return;
    }
    int kind;
    if (chance(g, 20)) {
        kind = below(g, 4);
    } else {
        switch (c->aff) {
        case A_INT:
            kind = 0;
            break;
        case A_TEXT:
            kind = 1;
            break;
        case A_REAL:
            kind = 2;
            break;
        case A_NUMERIC:
            kind = below(g, 3) == 0 ? 2 : 0;
            break;
        default:
            kind = below(g, 4);
            break;
        }
    }
    value_of_kind(g, kind);
}

/* Any literal, for comparisons (sometimes of another type than the column's). */
static void literal(gen *g, const gtable *t, const gcol *c)
{
    if (chance(g, 25))
        value_of_kind(g, below(g, 4));
    else
        value_for(g, t, &(gcol){.aff = c->aff, .key = true});
}

/* ---- schema ---- */

static void make_table(gen *g, gtable *t, const char *prefix, int i)
{
    snprintf(t->name, sizeof t->name, "%s_t%d", prefix, i);
    int mode = below(g, 10);
    bool inline_pk = mode == 0; /* k0 INTEGER PRIMARY KEY */
    t->rowid = inline_pk;
    t->nkey = mode == 0 ? 1 : mode == 1 ? 0 : 1 + below(g, 3);
    t->ncol = (t->nkey ? t->nkey : 1) + 1 + below(g, 3);
    for (int j = 0; j < t->ncol; j++) {
        gcol *c = &t->c[j];
        c->key = j < t->nkey;
        snprintf(c->name, sizeof c->name, "%c%d", c->key ? 'k' : 'v', c->key ? j : j - t->nkey);
        c->aff = t->rowid && j == 0 ? A_INT : below(g, A_COUNT);
        t->desc[j] = c->key && chance(g, 30);
    }
    /* PRIMARY KEY(k0) on one INTEGER column makes k0 the rowid too: integers only. */
    if (t->nkey == 1 && t->c[0].aff == A_INT)
        t->rowid = true;
    fprintf(g->f, "CREATE TABLE %s(", t->name);
    for (int j = 0; j < t->ncol; j++) {
        const gcol *c = &t->c[j];
        fprintf(g->f, "%s%s%s%s", j ? ", " : "", c->name, *affinity_name[c->aff] ? " " : "",
                affinity_name[c->aff]);
        if (inline_pk && j == 0)
            fputs(" PRIMARY KEY", g->f);
    }
    if (t->nkey && !inline_pk) {
        fputs(", PRIMARY KEY(", g->f);
        for (int j = 0; j < t->nkey; j++)
            fprintf(g->f, "%s%s%s", j ? ", " : "", t->c[j].name, t->desc[j] ? " DESC" : "");
        fputs(")", g->f);
    }
    fputs(");\n", g->f);
}

static void insert_rows(gen *g, const gtable *t, int n)
{
    fprintf(g->f, "INSERT OR IGNORE INTO %s VALUES", t->name);
    for (int r = 0; r < n; r++) {
        fputs(r ? ",\n  (" : "\n  (", g->f);
        for (int j = 0; j < t->ncol; j++) {
            if (j)
                fputs(", ", g->f);
            value_for(g, t, &t->c[j]);
        }
        fputs(")", g->f);
    }
    fputs(";\n", g->f);
}

/* ---- queries ---- */

static const gcol *key_or_any(gen *g, const gtable *t, int j)
{
    return &t->c[j < t->ncol ? j : below(g, t->ncol)];
}

/* A WHERE predicate on t (columns qualified with alias when non-NULL). */
static void predicate(gen *g, const gtable *t, const char *alias)
{
    char q[8] = "";
    if (alias)
        snprintf(q, sizeof q, "%s.", alias);
    const gcol *k0 = key_or_any(g, t, 0), *k1 = key_or_any(g, t, 1);
    const gcol *any = &t->c[below(g, t->ncol)];
    switch (below(g, 12)) {
    case 0: /* a key prefix */
        fprintf(g->f, "%s%s = ", q, k0->name);
        literal(g, t, k0);
        break;
    case 1: /* prefix and range on the next column */
        fprintf(g->f, "%s%s = ", q, k0->name);
        literal(g, t, k0);
        fprintf(g->f, " AND %s%s %s ", q, k1->name, below(g, 2) ? ">" : "<=");
        literal(g, t, k1);
        break;
    case 2:
        fprintf(g->f, "%s%s BETWEEN ", q, k0->name);
        literal(g, t, k0);
        fputs(" AND ", g->f);
        literal(g, t, k0);
        break;
    case 3:
        fprintf(g->f, "%s%s IN (", q, k0->name);
        for (int i = 0, n = 1 + below(g, 4); i < n; i++) {
            if (i)
                fputs(", ", g->f);
            literal(g, t, k0);
        }
        fputs(")", g->f);
        break;
    case 4:
        fprintf(g->f, "%s%s %s ", q, k0->name, below(g, 2) ? ">=" : "<");
        literal(g, t, k0);
        break;
    case 5:
        fprintf(g->f, "%s%s IS %sNULL", q, any->name, below(g, 2) ? "NOT " : "");
        break;
    case 6:
        fprintf(g->f, "%s%s > ", q, any->name);
        literal(g, t, any);
        break;
    case 7:
        fprintf(g->f, "(%s%s = ", q, k0->name);
        literal(g, t, k0);
        fprintf(g->f, " OR %s%s = ", q, any->name);
        literal(g, t, any);
        fputs(")", g->f);
        break;
    case 8:
        fprintf(g->f, "NOT (%s%s = ", q, k0->name);
        literal(g, t, k0);
        fputs(")", g->f);
        break;
    case 9:
        fprintf(g->f, "%s%s LIKE '%s'", q, any->name, below(g, 2) ? "a%" : "%b%");
        break;
    case 10:
        fprintf(g->f, "%s%s > ", q, k0->name);
        literal(g, t, k0);
        fprintf(g->f, " AND %s%s < ", q, k0->name);
        literal(g, t, k0);
        break;
    default:
        fprintf(g->f, "%s%s = %s%s", q, k0->name, q, any->name);
        break;
    }
}

static void order_by_all(gen *g, int n)
{
    fputs(" ORDER BY ", g->f);
    for (int i = 1; i <= n; i++)
        fprintf(g->f, "%s%d%s", i > 1 ? ", " : "", i, chance(g, 20) ? " DESC" : "");
}

static void limit(gen *g)
{
    if (chance(g, 25)) {
        fprintf(g->f, " LIMIT %d", below(g, 6));
        if (chance(g, 50))
            fprintf(g->f, " OFFSET %d", below(g, 4));
    }
}

static void select_all(gen *g, const gtable *t)
{
    fprintf(g->f, "SELECT * FROM %s", t->name);
    order_by_all(g, t->ncol);
    fputs(";\n", g->f);
}

static void q_filter(gen *g, const gtable *t)
{
    int n = 0;
    fputs("SELECT ", g->f);
    for (int j = 0; j < t->ncol; j++)
        if (j == 0 || chance(g, 60))
            fprintf(g->f, "%s%s", n++ ? ", " : "", t->c[j].name);
    if (chance(g, 30)) {
        const gcol *c = &t->c[below(g, t->ncol)];
        static const char *const fns[] = {"typeof(%s)", "length(%s)", "coalesce(%s, 'none')",
                                          "%s IS NULL", "upper(%s)",  "quote(%s)"};
        fputs(", ", g->f);
        fprintf(g->f, fns[below(g, (int)(sizeof fns / sizeof fns[0]))], c->name);
        n++;
    }
    fprintf(g->f, " FROM %s", t->name);
    if (chance(g, 85)) {
        fputs(" WHERE ", g->f);
        predicate(g, t, NULL);
    }
    order_by_all(g, n);
    limit(g);
    fputs(";\n", g->f);
}

static void q_aggregate(gen *g, const gtable *t)
{
    const gcol *by = &t->c[below(g, t->ncol)];
    const gcol *v = &t->c[t->ncol - 1]; /* a value column: small numbers only */
    fprintf(g->f, "SELECT %s, count(*), count(%s), sum(%s), total(%s), min(%s), max(%s)", by->name,
            v->name, v->name, v->name, v->name, v->name);
    if (chance(g, 40))
        fprintf(g->f, ", avg(%s)", v->name);
    fprintf(g->f, " FROM %s", t->name);
    if (chance(g, 50)) {
        fputs(" WHERE ", g->f);
        predicate(g, t, NULL);
    }
    fprintf(g->f, " GROUP BY %s", by->name);
    if (chance(g, 30))
        fprintf(g->f, " HAVING count(*) %s %d", below(g, 2) ? ">=" : "<", 1 + below(g, 3));
    fputs(" ORDER BY 1", g->f);
    limit(g);
    fputs(";\n", g->f);
}

static void q_join(gen *g, const gtable *a, const gtable *b)
{
    const gcol *ca = &a->c[below(g, a->ncol)], *cb = &b->c[below(g, b->ncol)];
    const gcol *xa = &a->c[below(g, a->ncol)], *xb = &b->c[below(g, b->ncol)];
    fprintf(g->f, "SELECT a.%s, a.%s, b.%s, b.%s FROM %s a %sJOIN %s b ON a.%s = b.%s", ca->name,
            xa->name, cb->name, xb->name, a->name, chance(g, 30) ? "LEFT " : "", b->name, ca->name,
            cb->name);
    if (chance(g, 60)) {
        fputs(" WHERE ", g->f);
        predicate(g, a, "a");
    }
    order_by_all(g, 4);
    limit(g);
    fputs(";\n", g->f);
}

static void q_subquery(gen *g, const gtable *a, const gtable *b)
{
    const gcol *ca = &a->c[below(g, a->ncol)], *cb = &b->c[below(g, b->ncol)];
    int ncols = 2;
    switch (below(g, 3)) {
    case 0:
        fprintf(g->f, "SELECT %s, %s FROM %s WHERE %s %sIN (SELECT %s FROM %s b WHERE ",
                a->c[0].name, ca->name, a->name, ca->name, chance(g, 30) ? "NOT " : "", cb->name,
                b->name);
        predicate(g, b, "b");
        fputs(")", g->f);
        break;
    case 1:
        fprintf(g->f,
                "SELECT %s, %s FROM %s a WHERE %sEXISTS (SELECT 1 FROM %s b WHERE b.%s = a.%s)",
                a->c[0].name, ca->name, a->name, chance(g, 30) ? "NOT " : "", b->name, cb->name,
                ca->name);
        break;
    default:
        fprintf(g->f, "SELECT %s, %s, (SELECT count(*) FROM %s b WHERE b.%s = a.%s) FROM %s a",
                a->c[0].name, ca->name, b->name, cb->name, ca->name, a->name);
        ncols = 3;
        break;
    }
    order_by_all(g, ncols);
    fputs(";\n", g->f);
}

/* ---- writes ---- */

/* A full-key equality for one row (or a value-column filter for a table without a key). */
static void one_row(gen *g, const gtable *t)
{
    for (int j = 0; j < (t->nkey ? t->nkey : 1); j++) {
        fprintf(g->f, "%s%s = ", j ? " AND " : "", t->c[j].name);
        literal(g, t, &t->c[j]);
    }
}

static void w_update(gen *g, const gtable *t)
{
    const gcol *v = &t->c[t->nkey + below(g, t->ncol - t->nkey)];
    /* expressions that keep reals non-integral (abs('a') would make 0.0) */
    static const char *const exprs[] = {
        "%s + 1",   "%s - 2", "-%s", "coalesce(%s, 0)", "CASE WHEN %s > 3 THEN NULL ELSE %s END",
        "%s || 'x'"};
    const char *e = exprs[below(g, (int)(sizeof exprs / sizeof exprs[0]))];
    fprintf(g->f, "UPDATE %s SET %s = ", t->name, v->name);
    fprintf(g->f, e, v->name, v->name);
    fputs(" WHERE ", g->f);
    predicate(g, t, NULL);
    fputs(";\n", g->f);
}

static void w_delete(gen *g, const gtable *t)
{
    fprintf(g->f, "DELETE FROM %s WHERE ", t->name);
    predicate(g, t, NULL);
    fputs(";\n", g->f);
}

static void w_insert(gen *g, const gtable *t)
{
    fprintf(g->f, "INSERT OR %s INTO %s VALUES (", chance(g, 50) ? "REPLACE" : "IGNORE", t->name);
    for (int j = 0; j < t->ncol; j++) {
        if (j)
            fputs(", ", g->f);
        value_for(g, t, &t->c[j]);
    }
    fputs(");\n", g->f);
}

static void w_move_key(gen *g, const gtable *t)
{
    if (!t->nkey)
        return;
    fprintf(g->f, "UPDATE OR IGNORE %s SET %s = ", t->name, t->c[0].name);
    value_for(g, t, &t->c[0]);
    fputs(" WHERE ", g->f);
    one_row(g, t);
    fputs(";\n", g->f);
}

char *sqlgen_script(uint64_t seed, const char *prefix)
{
    char *buf = NULL;
    size_t len = 0;
    gen g = {.s = seed};
    if (!(g.f = open_memstream(&buf, &len)))
        return NULL;
    fprintf(g.f, "-- sql_gen seed %llu\n", (unsigned long long)seed);
    g.nt = 2 + below(&g, 2);
    for (int i = 0; i < g.nt; i++) {
        make_table(&g, &g.t[i], prefix, i);
        insert_rows(&g, &g.t[i], 10 + below(&g, 30));
        select_all(&g, &g.t[i]);
    }
    for (int q = 0, n = 25 + below(&g, 20); q < n; q++) {
        const gtable *a = &g.t[below(&g, g.nt)], *b = &g.t[below(&g, g.nt)];
        int kind = below(&g, 100);
        if (kind < 35)
            q_filter(&g, a);
        else if (kind < 50)
            q_aggregate(&g, a);
        else if (kind < 65)
            q_join(&g, a, b);
        else if (kind < 75)
            q_subquery(&g, a, b);
        else {
            switch (below(&g, 4)) {
            case 0:
                w_update(&g, a);
                break;
            case 1:
                w_delete(&g, a);
                break;
            case 2:
                w_insert(&g, a);
                break;
            default:
                w_move_key(&g, a);
                break;
            }
            select_all(&g, a);
        }
    }
    for (int i = 0; i < g.nt; i++)
        fprintf(g.f, "DROP TABLE %s;\n", g.t[i].name);
    if (fclose(g.f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
