/* The set workload's checker (Jepsen's set test): clients add unique integers, and a final
 * read (the last ok read in the history) must hold every add that was acknowledged before it
 * began, nothing that was never added or whose add failed, and nothing twice. Adds that ended
 * info (or were concurrent with the final read) may be present or not.
 *
 * History values: f "add" value V (an integer); f "read" ok value [V, ...]. Every ok read is
 * checked for unexpected and duplicated elements; only the final one for lost ones. */
#ifndef JP_SET_H
#define JP_SET_H

#include "common/mr_err.h"
#include "jepsen/history.h"
#include "jepsen/result.h"

/* Fills r (initialized here; the caller frees it). Returns 0 or MR_EINVAL (line-numbered). */
int jp_check_set(const jp_history *h, jp_result *r, mr_err *err);

#endif
