/* The bridge between the Multi-Paxos core (tablet/paxos/px.h) and the log
 * store (ls.h): stages a px batch's persist actions in the store, and loads
 * a group's durable state back as the px_durable the core restores from.
 *
 * The core's durability rule says a node's persists must be durable, in
 * order, before any SEND emitted after them. ls_px_persist() keeps it for
 * one batch with one ls_sync(); a host driving many groups calls
 * ls_px_stage() for every group's batch and then one ls_sync() for all of
 * them (group commit), and only then performs the SENDs and reports
 * PX_EV_PERSISTED(persist_seq) to each node.
 *
 * Only px types are used (no px functions), so this links without the core. */
#ifndef LS_PAXOS_H
#define LS_PAXOS_H

#include "tablet/logstore/ls.h"
#include "tablet/paxos/px.h"

/* Stages, in order, every PX_ACT_PERSIST action among `actions` for `group`;
 * other actions are ignored. Nothing is durable before ls_sync(). On error
 * some of the batch may be staged: a persist that cannot be stored is fatal
 * for the replica (the order of its persists is broken), so the caller must
 * ls_rollback() the whole open batch, perform none of the SENDs, and treat
 * every node in that batch as crashed (restart it from ls_px_load). */
int ls_px_stage(ls_store *s, uint64_t group, const px_action *actions, size_t n, mr_err *err);

/* One node, one batch: stages its persists and syncs once. On 0 every persist
 * of the batch is durable and its SENDs may go out. On error the open batch
 * is rolled back (see ls_px_stage). A batch without persists costs nothing. */
int ls_px_persist(ls_store *s, uint64_t group, const px_batch *b, mr_err *err);

/* A group's durable state for px_node_restore. `d` points into the other
 * members; keep the struct alive (and unmoved) while the core reads `d`.
 * Release with ls_px_state_free. */
typedef struct ls_px_state {
    px_durable d;
    ls_group_state st;
    px_entry *entries;
} ls_px_state;

/* Loads `group` (an empty state when it was never written). 0, or MR_ECORRUPT
 * when a record fails its checksum or does not decode into px types. */
int ls_px_load(ls_store *s, uint64_t group, ls_px_state *out, mr_err *err);
void ls_px_state_free(ls_px_state *st);

/* The snapshot metadata codec used in the store (exposed for tests):
 * version byte 2, then big-endian slot u64, last_ts i64, nconfigs u32,
 * and per config effect_slot u64, n u32, n node ids u32. */
#define LS_PX_META_MAX (1 + 8 + 8 + 4 + PX_SNAP_CONFIGS * (8 + 4 + 4 * PX_MAX_NODES))
size_t ls_px_meta_encode(const px_snapshot_meta *m, unsigned char *buf /* LS_PX_META_MAX */);
int ls_px_meta_decode(const void *buf, size_t len, px_snapshot_meta *m, mr_err *err);

#endif
