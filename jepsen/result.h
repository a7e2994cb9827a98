/* The verdict of a consistency checker: valid true/false/unknown and the anomalies
 * found, each named (Adya's G0, G1c, ...; Elle's list-append names; bank and set
 * names) with the history operations involved. Printable as text and JSON. */
#ifndef JP_RESULT_H
#define JP_RESULT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum { JP_VALID = 0, JP_INVALID = 1, JP_UNKNOWN = 2 } jp_validity;

typedef struct jp_anomaly {
    char *name;   /* e.g. "G-single-realtime"; owned */
    char *detail; /* one human sentence (or a few) explaining it; owned */
    size_t *ops;  /* indices into the history; owned */
    size_t nops;
} jp_anomaly;

typedef struct jp_result {
    jp_validity valid;
    char checker[32];     /* "register", "list-append", ... */
    size_t ops_checked;   /* operations the checker examined */
    char *unknown_reason; /* why the verdict is unknown; owned, NULL otherwise */
    jp_anomaly *anomalies;
    size_t n, cap;
    char *notes; /* informational lines (e.g. "total inferred as 100"); owned, may be NULL */
} jp_result;

/* Starts an empty, valid result. Free with jp_result_free. */
void jp_result_init(jp_result *r, const char *checker);
void jp_result_free(jp_result *r);

/* Records an anomaly and makes the result invalid. `ops` is copied. Returns 0 or -1
 * (out of memory; the result is then marked unknown). */
int jp_result_add(jp_result *r, const char *name, const size_t *ops, size_t nops, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));

/* Marks the result unknown (unless it is already invalid: one proven anomaly is
 * enough) and keeps the first reason given. */
void jp_result_unknown(jp_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends an informational line. */
void jp_result_note(jp_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Number of anomalies named `name` (exact match). */
size_t jp_result_count(const jp_result *r, const char *name);

/* Does an anomaly of this name need real-time order, i.e. is it a cycle named "-realtime" or
 * "-process" (process order is real-time order within one client)? Serializability without
 * real time forbids every other anomaly; only these depend on the clocks keeping their bound. */
bool jp_anomaly_is_realtime(const char *name);

/* "valid", "invalid" or "unknown". */
const char *jp_validity_name(jp_validity v);

/* Human summary: verdict, counts per anomaly name, then up to `max_each` anomalies
 * of each name with their operations. */
void jp_result_print(const jp_result *r, FILE *f, size_t max_each);

/* {"checker":..., "valid": true|false|"unknown", "ops_checked": n, "anomaly_counts":
 *  {name: n}, "anomalies": [{"name","detail","ops":[...]}], "unknown_reason", "notes"}.
 * The caller owns the returned reference (json_decref). NULL on out of memory. */
json_t *jp_result_to_json(const jp_result *r);

#endif
