/* Metric primitives for the node's /metrics endpoint (see nd_metrics.h). */
#include "tablet/node/nd_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const double bounds_s[ND_HIST_BUCKETS] = {50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3,
                                                 5e-3,  10e-3,  25e-3,  50e-3,  0.1,  0.25,
                                                 0.5,   1.0,    2.5,    10.0};

void nd_hist_observe(nd_hist *h, int64_t ns)
{
    double s = (double)ns / 1e9;
    int b = 0;
    while (b < ND_HIST_BUCKETS && s > bounds_s[b])
        b++;
    h->counts[b]++;
    h->n++;
    h->sum_s += s;
}

void nd_text_printf(nd_text *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            return;
        t->buf = b;
        t->cap = cap;
    }
}

void nd_text_free(nd_text *t)
{
    free(t->buf);
    t->buf = NULL;
    t->len = t->cap = 0;
}

void nd_hist_render(nd_text *t, const char *name, const char *help, const char *labels,
                    const nd_hist *h)
{
    nd_text_printf(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    const char *sep = labels[0] ? "," : "";
    uint64_t cum = 0;
    for (int b = 0; b < ND_HIST_BUCKETS; b++) {
        cum += h->counts[b];
        nd_text_printf(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds_s[b],
                       (unsigned long long)cum);
    }
    cum += h->counts[ND_HIST_BUCKETS];
    nd_text_printf(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                   (unsigned long long)cum);
    nd_text_printf(t, "%s_sum{%s} %.9f\n%s_count{%s} %llu\n", name, labels, h->sum_s, name, labels,
                   (unsigned long long)h->n);
}
