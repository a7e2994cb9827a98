/* Seeded generators of valid histories for the checker tests: each drives a real in-memory
 * implementation of the model (a register map, a list store, a bank, a set) with concurrent
 * simulated clients, applying every operation atomically at one instant between its
 * invocation and its completion, so the history is linearizable / strictly serializable by
 * construction. Some operations fail without effect or end info (applied or not, and the
 * process retires); nemesis events are sprinkled in. Mutations of those histories that a correct
 * checker must reject follow. */
#ifndef JP_TEST_GEN_H
#define JP_TEST_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "jepsen/history.h"

typedef enum { GEN_REGISTER, GEN_LIST_APPEND, GEN_BANK, GEN_SET } gen_model;

typedef struct gen_opts {
    gen_model model;
    uint64_t seed;
    int nops;   /* invocations */
    int nprocs; /* concurrent processes */
    int nkeys;  /* keys (register, list-append) or accounts (bank) */
    int p_fail; /* percent of completions that fail without effect */
    int p_info; /* percent of completions that end info */
} gen_opts;

typedef struct gen_out {
    size_t *applied; /* invoke indices in the order their effects happened; owned */
    size_t napplied;
    int64_t bank_total; /* bank: the conserved total */
} gen_out;

/* Builds a history into h (freshly initialized). Returns 0 or -1. Free out with gen_out_free. */
int gen_history(const gen_opts *o, jp_history *h, gen_out *out);
void gen_out_free(gen_out *out);

/* A deep copy of src into dst (fresh) with the operation at `idx` replaced by `repl` (stolen;
 * NULL: keep). Returns 0 or -1 (the result no longer pairs up). */
int gen_clone_with(const jp_history *src, jp_history *dst, size_t idx, json_t *repl);

/* Mutations. Each writes an invalid variant of src into dst (fresh) and returns 1, or returns
 * 0 when src has no place for it (dst is then left empty), -1 on error. `pick` chooses among
 * candidate places. */
/* register: a read returns a value overwritten before the read began (a stale read) */
int mutate_register_stale(const jp_history *src, const gen_out *g, uint64_t pick, jp_history *dst);
/* list-append: a read misses the last element, whose writer finished before it began */
int mutate_append_stale(const jp_history *src, uint64_t pick, jp_history *dst);
/* list-append: an ok transaction whose append was read becomes failed (aborted read) */
int mutate_append_abort(const jp_history *src, uint64_t pick, jp_history *dst);
/* list-append: a read shows one element twice */
int mutate_append_dup(const jp_history *src, uint64_t pick, jp_history *dst);

uint64_t gen_rand(uint64_t *s);

#endif
