/* Checker verdicts (see result.h). */
#include "jepsen/result.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void jp_result_init(jp_result *r, const char *checker)
{
    memset(r, 0, sizeof *r);
    r->valid = JP_VALID;
    snprintf(r->checker, sizeof r->checker, "%s", checker ? checker : "");
}

bool jp_anomaly_is_realtime(const char *name)
{
    static const char *const tails[] = {"-realtime", "-process"};
    size_t n = strlen(name);
    for (size_t i = 0; i < 2; i++) {
        size_t k = strlen(tails[i]);
        if (n > k && strcmp(name + n - k, tails[i]) == 0)
            return true;
    }
    return false;
}

void jp_result_free(jp_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->anomalies[i].name);
        free(r->anomalies[i].detail);
        free(r->anomalies[i].ops);
    }
    free(r->anomalies);
    free(r->unknown_reason);
    free(r->notes);
    memset(r, 0, sizeof *r);
}

int jp_result_add(jp_result *r, const char *name, const size_t *ops, size_t nops, const char *fmt,
                  ...)
{
    r->valid = JP_INVALID;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        jp_anomaly *a = realloc(r->anomalies, cap * sizeof *a);
        if (!a)
            goto oom;
        r->anomalies = a;
        r->cap = cap;
    }
    jp_anomaly *a = &r->anomalies[r->n];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&a->detail, fmt, ap);
    va_end(ap);
    if (rc < 0)
        a->detail = NULL;
    if (nops) {
        a->ops = malloc(nops * sizeof *ops);
        if (a->ops)
            memcpy(a->ops, ops, nops * sizeof *ops);
    }
    a->nops = a->ops ? nops : 0;
    if (!a->name || !a->detail || (nops && !a->ops)) {
        free(a->name);
        free(a->detail);
        free(a->ops);
        goto oom;
    }
    r->n++;
    return 0;
oom:
    free(r->unknown_reason);
    r->unknown_reason = strdup("out of memory while recording anomalies");
    return -1;
}

void jp_result_unknown(jp_result *r, const char *fmt, ...)
{
    if (r->valid != JP_INVALID)
        r->valid = JP_UNKNOWN;
    if (r->unknown_reason)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&r->unknown_reason, fmt, ap) < 0)
        r->unknown_reason = NULL;
    va_end(ap);
}

void jp_result_note(jp_result *r, const char *fmt, ...)
{
    char *line = NULL, *joined = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (rc < 0)
        return;
    if (asprintf(&joined, "%s%s%s", r->notes ? r->notes : "", r->notes ? "\n" : "", line) < 0)
        joined = NULL;
    free(line);
    if (joined) {
        free(r->notes);
        r->notes = joined;
    }
}

size_t jp_result_count(const jp_result *r, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->anomalies[i].name, name) == 0)
            c++;
    return c;
}

const char *jp_validity_name(jp_validity v)
{
    return v == JP_VALID ? "valid" : v == JP_INVALID ? "invalid" : "unknown";
}

/* Distinct anomaly names in first-seen order; returns how many (caller frees *names). */
static size_t distinct_names(const jp_result *r, const char ***names)
{
    const char **out = calloc(r->n ? r->n : 1, sizeof *out);
    size_t k = 0;
    if (!out) {
        *names = NULL;
        return 0;
    }
    for (size_t i = 0; i < r->n; i++) {
        size_t j = 0;
        while (j < k && strcmp(out[j], r->anomalies[i].name) != 0)
            j++;
        if (j == k)
            out[k++] = r->anomalies[i].name;
    }
    *names = out;
    return k;
}

void jp_result_print(const jp_result *r, FILE *f, size_t max_each)
{
    fprintf(f, "checker: %s\nops checked: %zu\nverdict: %s\n", r->checker, r->ops_checked,
            jp_validity_name(r->valid));
    if (r->unknown_reason)
        fprintf(f, "unknown because: %s\n", r->unknown_reason);
    if (r->notes) {
        fprintf(f, "notes:\n  ");
        for (const char *p = r->notes; *p; p++) {
            fputc(*p, f);
            if (*p == '\n')
                fputs("  ", f);
        }
        fputc('\n', f);
    }
    const char **names;
    size_t k = distinct_names(r, &names);
    if (k)
        fprintf(f, "anomalies: %zu\n", r->n);
    for (size_t j = 0; j < k; j++) {
        size_t shown = 0, total = jp_result_count(r, names[j]);
        fprintf(f, "  %s: %zu\n", names[j], total);
        for (size_t i = 0; i < r->n; i++) {
            const jp_anomaly *a = &r->anomalies[i];
            if (strcmp(a->name, names[j]) != 0)
                continue;
            if (shown++ >= max_each) {
                fprintf(f, "    ... %zu more\n", total - max_each);
                break;
            }
            fprintf(f, "    - ops [");
            for (size_t o = 0; o < a->nops; o++)
                fprintf(f, "%s%zu", o ? ", " : "", a->ops[o]);
            fprintf(f, "]: %s\n", a->detail);
        }
    }
    free(names);
}

json_t *jp_result_to_json(const jp_result *r)
{
    json_t *o = json_object();
    json_t *counts = json_object();
    json_t *list = json_array();
    if (!o || !counts || !list)
        goto fail;
    json_object_set_new(o, "checker", json_string(r->checker));
    json_object_set_new(o, "valid",
                        r->valid == JP_VALID     ? json_true()
                        : r->valid == JP_INVALID ? json_false()
                                                 : json_string("unknown"));
    json_object_set_new(o, "ops_checked", json_integer((json_int_t)r->ops_checked));
    if (r->unknown_reason)
        json_object_set_new(o, "unknown_reason", json_string(r->unknown_reason));
    if (r->notes)
        json_object_set_new(o, "notes", json_string(r->notes));
    for (size_t i = 0; i < r->n; i++) {
        const jp_anomaly *a = &r->anomalies[i];
        json_t *c = json_object_get(counts, a->name);
        json_object_set_new(counts, a->name, json_integer(c ? json_integer_value(c) + 1 : 1));
        json_t *ops = json_array();
        for (size_t j = 0; ops && j < a->nops; j++)
            json_array_append_new(ops, json_integer((json_int_t)a->ops[j]));
        json_t *ao = json_pack("{s:s, s:s, s:o}", "name", a->name, "detail", a->detail, "ops",
                               ops ? ops : json_array());
        if (!ao)
            goto fail;
        json_array_append_new(list, ao);
    }
    json_object_set_new(o, "anomaly_counts", counts);
    json_object_set_new(o, "anomalies", list);
    return o;
fail:
    json_decref(o);
    json_decref(counts);
    json_decref(list);
    return NULL;
}
