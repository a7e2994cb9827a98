/* Paxos messages between the replicas of one group, and their wire codec.
 * Included by px.h; the core consumes and produces decoded px_msg values, the transport
 * moves bytes made by px_msg_encode. */
#ifndef PX_MSG_H
#define PX_MSG_H

#ifndef PX_H
#error "include tablet/paxos/px.h"
#endif

typedef enum {
    PX_MSG_PREPARE = 1,   /* phase 1a: ballot, slot = first slot asked about, lease_seq */
    PX_MSG_PROMISE,       /* phase 1b: ok, promised, commit, entries >= slot, maybe snapshot */
    PX_MSG_ACCEPT,        /* phase 2a: ballot, commit, entries (pipelined slots) */
    PX_MSG_ACCEPTED,      /* phase 2b: ok, promised, slots accepted */
    PX_MSG_HEARTBEAT,     /* leader alive: ballot, commit, lease_seq (lease renewal request) */
    PX_MSG_HEARTBEAT_ACK, /* ok (= lease vote renewed), promised, lease_seq, commit */
    PX_MSG_LEARN,         /* chosen entries for a lagging replica, commit */
    PX_MSG_SNAPSHOT,      /* snapshot for a replica behind the leader's log start */
    PX_MSG_RELEASE,       /* the abdicating leader gives up its lease votes */
    PX_MSG_PROBE,         /* before a campaign: would you vote for ballot? lease_seq: probe round */
    PX_MSG_PROBE_ACK,     /* ok (would vote: no lease vote held for another), promised, lease_seq */
    PX_MSG_MAX
} px_msg_type;

const char *px_msg_type_name(int type);

/* Upper bounds enforced by the codec and by px_step (malformed input is rejected). */
#define PX_MSG_MAX_ENTRIES     4096
#define PX_MSG_MAX_ENTRY_BYTES (16u << 20)
#define PX_MSG_MAX_SNAP_BYTES  (256u << 20)

/* Wire sizes (px_msg_encode): everything but entries, slots and snapshot bytes takes at most
 * PX_MSG_FIXED_BYTES; each entry adds PX_MSG_ENTRY_BYTES plus its data, each slot 8. */
#define PX_MSG_FIXED_BYTES 512
#define PX_MSG_ENTRY_BYTES 33
/* The default cap on one encoded message (px_options.max_msg_bytes). The node bundles a
 * peer's messages into frames of at most 16 MiB (the transport's limit), so every message
 * must fit one frame with room to spare; the core sizes batches, ACCEPT retransmits, LEARN
 * catch-up and SNAPSHOT chunks to this cap. */
#define PX_MSG_DEFAULT_MAX_BYTES (12u << 20)

typedef struct px_msg {
    uint8_t type; /* px_msg_type */
    uint64_t group;
    px_node_id from;
    px_ballot ballot;   /* the leader's/candidate's ballot this message is about */
    px_ballot promised; /* replies: the replier's promised ballot (tells a stale leader) */
    bool ok;            /* replies: granted */
    uint64_t slot;      /* PREPARE: first slot asked about */
    uint64_t commit;    /* sender's commit point */
    uint64_t log_start; /* PROMISE: first slot still in the replier's log */
    uint64_t lease_seq; /* PREPARE/HEARTBEAT, echoed by PROMISE/HEARTBEAT_ACK */
    uint32_t nentries;
    const px_entry *entries; /* PROMISE, ACCEPT, LEARN */
    uint32_t nslots;
    const uint64_t *slots; /* ACCEPTED */
    px_snapshot_meta meta; /* SNAPSHOT, PROMISE (meta.slot > 0 when attached) */
    const uint8_t *snap;   /* SNAPSHOT: bytes [snap_off, snap_off + snap_len) of a snapshot of
                            * snap_total bytes (a large one travels in chunks, in order);
                            * PROMISE: the whole snapshot (snap_off 0, snap_total = snap_len) */
    uint32_t snap_len;
    uint32_t snap_off;
    uint32_t snap_total;
    void *owned_; /* decoder's allocation (px_msg_free); NULL otherwise */
} px_msg;

/* Encodes into a malloc'ed buffer the caller frees with free(). 0 or MR_EINVAL/MR_ENOMEM. */
int px_msg_encode(const px_msg *m, uint8_t **buf, size_t *len, mr_err *err);

/* Decodes `len` bytes. The message owns copies of all its arrays and bytes; release them
 * with px_msg_free. Returns 0, or MR_ECORRUPT (truncated, trailing bytes, bad type,
 * counts over the limits) with err set and nothing to free. */
int px_msg_decode(const uint8_t *buf, size_t len, px_msg *m, mr_err *err);

/* The exact size px_msg_encode gives m. */
size_t px_msg_wire_size(const px_msg *m);

/* Frees what px_msg_decode allocated; safe on a zeroed message. */
void px_msg_free(px_msg *m);

#endif
