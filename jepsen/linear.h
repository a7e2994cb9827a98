/* Linearizability of a key-value map of registers (read, write, compare-and-set), checked
 * per key: linearizability is local (Herlihy & Wing 1990, "P-compositionality" in Lowe's
 * terms), so each key's sub-history is searched on its own.
 *
 * The search is Wing & Gong's ("Testing and Verifying Concurrent Objects", 1993) with
 * Lowe's state cache ("Testing for linearizability", 2017): walk the call/return entries
 * in real-time order, tentatively linearize a call when the model allows it, backtrack when
 * a return is reached whose call was not linearized, and skip any (linearized set, model
 * state) configuration seen before. `info` operations may take effect at any point after
 * their call, or never; `fail` operations never happened and are dropped.
 *
 * History values (per op, see jepsen/README.md): f "write" value V; f "cas" value [OLD, NEW];
 * f "read" completion value V (the value read). V is an integer or null (never written). An
 * op without "key" belongs to a single anonymous register. */
#ifndef JP_LINEAR_H
#define JP_LINEAR_H

#include "common/mr_err.h"
#include "jepsen/history.h"
#include "jepsen/result.h"

typedef struct jp_linear_opts {
    size_t max_cache_bytes; /* per key; past it the verdict is unknown. 0: 512 MiB */
} jp_linear_opts;

/* Checks h against the register model and fills r (initialized here; the caller frees it
 * with jp_result_free). Returns 0, or MR_EINVAL with a line-numbered message when an
 * operation's value does not fit the model (r is then left empty and valid-unknown). */
int jp_check_register(const jp_history *h, const jp_linear_opts *opts, jp_result *r, mr_err *err);

#endif
