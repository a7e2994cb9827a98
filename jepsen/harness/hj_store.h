/* The nodes' stores at the end of a run: how many transaction decision rows and system-key
 * versions each replica keeps, and its SQLite pages, as `status` reports them (nd.h). With
 * --store-check DUR the nodes collect decisions and old versions after DUR, so once the
 * clients stop every replica must come back to no transaction records at all: the harness
 * measures the stores when the load ends, then waits for that (nothing grows for ever). */
#ifndef HJ_STORE_H
#define HJ_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "jepsen/harness/hj_cluster.h"

typedef struct hj_store_totals {
    long long decisions;       /* the most any replica of any data group keeps */
    long long system_versions; /* likewise: versions of system keys, tombstones included */
    long long used_bytes;      /* SQLite pages in use, summed over every store of every node */
    long long file_bytes;      /* the stores' files, summed */
    int nodes;                 /* nodes that answered */
} hj_store_totals;

/* Asks every running node for its status: per node and group {decisions, system_versions,
 * versions, pages, free_pages, page_size}. Returns the sample as JSON (owned by the caller)
 * and the totals in *t. */
json_t *hj_store_sample(hj_cluster *c, hj_store_totals *t);

/* Samples the stores now (the load's end), then every second until every replica keeps no
 * decision row and no system-key version, or max_wait_s passed. Returns {at_end, settled,
 * waited_s, bounded} (owned by the caller); *bounded tells whether the stores came back. */
json_t *hj_store_check(hj_cluster *c, int max_wait_s, bool *bounded);

#endif
