/* Small helpers for hand-made histories in the checker tests (header-only, static). */
#ifndef JP_TEST_HIST_UTIL_H
#define JP_TEST_HIST_UTIL_H

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jepsen/history.h"
#include "jepsen/result.h"

/* Appends {"process": p, "type": type, "f": f, ["key": key,] "value": <value_json>}; the
 * key is a JSON text too (NULL: none). Returns 0 or -1 (and prints why). */
static inline int ev(jp_history *h, int p, const char *type, const char *f, const char *key,
                     const char *value_json)
{
    json_error_t je;
    json_t *v = json_loads(value_json, JSON_DECODE_ANY, &je);
    if (!v) {
        fprintf(stderr, "bad test value %s: %s\n", value_json, je.text);
        return -1;
    }
    json_t *o = json_pack("{s:i, s:s, s:s, s:o}", "process", p, "type", type, "f", f, "value", v);
    if (key)
        json_object_set_new(o, "key", json_loads(key, JSON_DECODE_ANY, &je));
    mr_err err;
    if (jp_history_add(h, o, 0, &err) != MR_OK) {
        fprintf(stderr, "test history rejected: %s\n", mr_err_msg(&err));
        return -1;
    }
    return 0;
}

/* Does r hold exactly the given distinct anomaly names (NULL-terminated list)? On mismatch
 * prints the result. */
static inline int names_are(const jp_result *r, ...)
{
    va_list ap;
    va_start(ap, r);
    const char *want[32];
    int nw = 0;
    const char *s;
    while ((s = va_arg(ap, const char *)) && nw < 32)
        want[nw++] = s;
    va_end(ap);
    int ok = 1;
    for (int i = 0; i < nw; i++)
        ok &= jp_result_count(r, want[i]) > 0;
    for (size_t i = 0; i < r->n; i++) {
        int found = 0;
        for (int j = 0; j < nw; j++)
            found |= strcmp(r->anomalies[i].name, want[j]) == 0;
        ok &= found;
    }
    ok &= (nw == 0) == (r->valid == JP_VALID);
    if (!ok)
        jp_result_print(r, stderr, 10);
    return ok;
}

/* Does anomaly `name` list exactly the ops given (in any order)? */
static inline int anomaly_ops(const jp_result *r, const char *name, size_t n, const size_t *ops)
{
    for (size_t i = 0; i < r->n; i++) {
        const jp_anomaly *a = &r->anomalies[i];
        if (strcmp(a->name, name) != 0 || a->nops != n)
            continue;
        int all = 1;
        for (size_t j = 0; j < n; j++) {
            int in = 0;
            for (size_t k = 0; k < n; k++)
                in |= a->ops[k] == ops[j];
            all &= in;
        }
        if (all)
            return 1;
    }
    jp_result_print(r, stderr, 10);
    return 0;
}

#endif
