/* Prometheus-style metrics of a node: counters, gauges and fixed-bucket
 * histograms, rendered in the text exposition format (version 0.0.4). Pure:
 * the node updates them from its loop thread and renders them on request. */
#ifndef ND_METRICS_H
#define ND_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define ND_HIST_BUCKETS 16

/* Buckets (seconds): 50us, 100us, 250us, 500us, 1ms, 2.5ms, 5ms, 10ms, 25ms,
 * 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 10s; +Inf is implied. */
typedef struct nd_hist {
    uint64_t counts[ND_HIST_BUCKETS + 1];
    uint64_t n;
    double sum_s;
} nd_hist;

void nd_hist_observe(nd_hist *h, int64_t ns);

/* A growing text buffer. */
typedef struct nd_text {
    char *buf;
    size_t len, cap;
} nd_text;

void nd_text_printf(nd_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nd_text_free(nd_text *t);

/* Appends a histogram in exposition format; labels is "" or `key="v"`. */
void nd_hist_render(nd_text *t, const char *name, const char *help, const char *labels,
                    const nd_hist *h);

#endif
