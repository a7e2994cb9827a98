/* Set checker (see set.h). */
#include "jepsen/set.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* What the history says about one element. */
typedef struct elem {
    int64_t v;
    size_t add;     /* the add's invoke index */
    jp_type out;    /* outcome of the add */
    int seen_final; /* in the final read */
} elem;

static int elem_cmp(const void *a, const void *b)
{
    int64_t x = ((const elem *)a)->v, y = ((const elem *)b)->v;
    return x < y ? -1 : x > y;
}

static elem *find(elem *e, size_t n, int64_t v)
{
    elem key = {.v = v};
    if (!n)
        return NULL;
    return bsearch(&key, e, n, sizeof *e, elem_cmp);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int jp_check_set(const jp_history *h, jp_result *r, mr_err *err)
{
    jp_result_init(r, "set");
    elem *e = NULL;
    size_t n = 0, cap = 0, final = JP_NONE;
    int rc = MR_OK;
    for (size_t i = 0; i < h->n && rc == MR_OK; i++) {
        const jp_op *op = &h->ops[i];
        if (op->type != JP_INVOKE || op->process == JP_NEMESIS)
            continue;
        r->ops_checked++;
        if (strcmp(op->f, "add") == 0) {
            if (!json_is_integer(op->value)) {
                rc = mr_errf(err, MR_EINVAL, "line %ld: set add: value must be an integer",
                             op->line);
                break;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                elem *ne = realloc(e, cap * sizeof *ne);
                if (!ne) {
                    rc = mr_errf(err, MR_ENOMEM, "out of memory");
                    break;
                }
                e = ne;
            }
            e[n++] = (elem){json_integer_value(op->value), i, jp_outcome(h, i), 0};
        } else if (strcmp(op->f, "read") == 0) {
            if (jp_outcome(h, i) != JP_OK)
                continue;
            const json_t *v = h->ops[op->pair].value;
            size_t j;
            json_t *x;
            if (!json_is_array(v)) {
                rc = mr_errf(err, MR_EINVAL,
                             "line %ld: set read: the ok value must be a list of integers",
                             h->ops[op->pair].line);
                break;
            }
            json_array_foreach(v, j, x) if (!json_is_integer(x))
            {
                rc = mr_errf(err, MR_EINVAL, "line %ld: set read: element %zu is not an integer",
                             h->ops[op->pair].line, j);
                break;
            }
            final = i;
        } else {
            rc = mr_errf(err, MR_EINVAL,
                         "line %ld: set model: unknown f \"%s\" (expected add or read)", op->line,
                         op->f);
        }
    }
    if (rc == MR_OK) {
        if (n)
            qsort(e, n, sizeof *e, elem_cmp);
        for (size_t i = 1; i < n; i++)
            if (e[i].v == e[i - 1].v) {
                rc = mr_errf(err, MR_EINVAL,
                             "line %ld: set add: value %" PRId64 " added twice (also line %ld); "
                             "adds must be unique",
                             h->ops[e[i].add].line, e[i].v, h->ops[e[i - 1].add].line);
                break;
            }
    }
    if (rc != MR_OK) {
        free(e);
        r->valid = JP_UNKNOWN;
        return rc;
    }

    size_t recovered = 0;
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = &h->ops[i];
        if (op->type != JP_INVOKE || op->process == JP_NEMESIS || strcmp(op->f, "read") != 0 ||
            jp_outcome(h, i) != JP_OK)
            continue;
        size_t rep = op->pair;
        const json_t *v = h->ops[op->pair].value;
        size_t m = json_array_size(v);
        int64_t *s = malloc((m ? m : 1) * sizeof *s);
        if (!s)
            continue;
        for (size_t j = 0; j < m; j++)
            s[j] = json_integer_value(json_array_get(v, j));
        if (m)
            qsort(s, m, sizeof *s, cmp_i64);
        for (size_t j = 0; j < m; j++) {
            if (j && s[j] == s[j - 1]) {
                jp_result_add(r, "duplicated", &rep, 1,
                              "op %zu read element %" PRId64 " more than once", rep, s[j]);
                continue;
            }
            elem *x = find(e, n, s[j]);
            if (!x) {
                jp_result_add(r, "unexpected", &rep, 1,
                              "op %zu read element %" PRId64 ", which was never added", rep, s[j]);
            } else if (x->out == JP_FAIL) {
                size_t ops[2] = {jp_report_index(h, x->add), rep};
                jp_result_add(r, "unexpected", ops, 2,
                              "op %zu read element %" PRId64 ", whose add (op %zu) failed", rep,
                              s[j], ops[0]);
            } else if (i == final) {
                x->seen_final = 1;
                recovered += x->out == JP_INFO;
            }
        }
        free(s);
    }
    if (final == JP_NONE) {
        jp_result_unknown(r, "no read completed ok: nothing to check");
    } else {
        for (size_t i = 0; i < n; i++) {
            const jp_op *add = &h->ops[e[i].add];
            /* lost: acknowledged before the final read began, yet absent from it */
            if (e[i].out == JP_OK && !e[i].seen_final && add->pair < final) {
                size_t ops[2] = {add->pair, h->ops[final].pair};
                jp_result_add(r, "lost", ops, 2,
                              "element %" PRId64 " was added (op %zu) before the final read "
                              "(op %zu) began, but the final read lacks it",
                              e[i].v, ops[0], ops[1]);
            }
        }
        jp_result_note(r, "%zu adds; final read at op %zu; %zu indeterminate adds recovered", n,
                       h->ops[final].pair, recovered);
    }
    free(e);
    return MR_OK;
}
