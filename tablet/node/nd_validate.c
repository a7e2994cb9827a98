/* Checks of every client request, before the node acts on it (see nd_validate.h). */
#include "tablet/node/nd_validate.h"

#include <string.h>

#include "common/mr_util.h"
#include "coordinator/co.h"
#include "tablet/mvcc/mv.h"
#include "tablet/paxos/px.h"

_Static_assert(ND_VALUE_MAX == MV_MAX_VALUE, "the node takes the values its store takes");
_Static_assert(ND_KEY_MAX <= MV_MAX_KEY, "the store takes every client key");

static int group_field(uint64_t g, mr_err *err)
{
    if (g < 1 || g > INT64_MAX)
        return mr_errf(err, MR_EINVAL, "\"group\" is %llu, outside [1, %lld]",
                       (unsigned long long)g, (long long)INT64_MAX);
    return MR_OK;
}

/* ---- keys, values, ids, ages, timestamps ---- */

int nd_valid_key(const void *key, size_t len, mr_err *err)
{
    if (!key || len == 0)
        return mr_errf(err, MR_EINVAL, "a key must not be empty");
    if (len > ND_KEY_MAX)
        return mr_errf(err, MR_EINVAL, "key of %zu bytes is longer than the %d-byte limit", len,
                       ND_KEY_MAX);
    if (((const uint8_t *)key)[0] == 0)
        return mr_errf(err, MR_EINVAL,
                       "a key must not start with byte 0 (those are the cluster's own keys)");
    return MR_OK;
}

int nd_valid_value(size_t len, mr_err *err)
{
    if (len > ND_VALUE_MAX)
        return mr_errf(err, MR_EINVAL, "value of %zu bytes is larger than the %u-byte limit", len,
                       ND_VALUE_MAX);
    return MR_OK;
}

bool nd_txn_id_client(uint64_t id)
{
    return id >= 1 && id <= ND_TXN_CLIENT_MAX;
}

int nd_valid_prio(int64_t prio, int64_t now_ns, mr_err *err)
{
    /* |prio - now| <= window, without overflow: now is a clock reading (> window). */
    if (prio < now_ns - ND_PRIO_WINDOW || prio > now_ns + ND_PRIO_WINDOW)
        return mr_errf(err, MR_EINVAL,
                       "\"prio\" must be the transaction's start time in ns since the epoch, "
                       "within %lld s of the node's clock (%lld); got %lld",
                       (long long)(ND_PRIO_WINDOW / 1000000000LL), (long long)now_ns,
                       (long long)prio);
    return MR_OK;
}

int nd_valid_read_ts(int64_t ts, int64_t now_latest, mr_err *err)
{
    if (ts < 0)
        return mr_errf(err, MR_EINVAL, "read timestamp %lld is negative", (long long)ts);
    if (now_latest <= INT64_MAX - ND_READ_AHEAD_MAX && ts > now_latest + ND_READ_AHEAD_MAX)
        return mr_errf(err, MR_EINVAL,
                       "read timestamp %lld is %.3f s ahead of this node's clock (at most %.3f s "
                       "ahead: the read waits until then)",
                       (long long)ts, (double)(ts - now_latest) / 1e9,
                       (double)ND_READ_AHEAD_MAX / 1e9);
    return MR_OK;
}

/* ---- scans ---- */

static int limit_field(bool has, uint32_t limit, mr_err *err)
{
    if (has && (limit < 1 || limit > ND_ROW_LIMIT_MAX))
        return mr_errf(err, MR_EINVAL, "\"limit\" is %u, outside [1, %d]", limit, ND_ROW_LIMIT_MAX);
    return MR_OK;
}

/* A key a system read may name: as a client key, but it may start with byte 0. */
static int system_key(const void *key, size_t len, mr_err *err)
{
    if (len == 0 || len > ND_KEY_MAX)
        return mr_errf(err, MR_EINVAL, "a key must have 1..%d bytes", ND_KEY_MAX);
    return MR_OK;
}

/* A read's key and optional end: the key may be empty only where a scan starts at the range's
 * start; an empty end means unbounded, otherwise it must lie above the key. A system read's
 * keys may start with byte 0. */
static int span_fields(bool scan, bool sys, const uint8_t *key, size_t klen, const uint8_t *end,
                       size_t elen, mr_err *err)
{
    int (*check)(const void *, size_t, mr_err *) = sys ? system_key : nd_valid_key;
    if (klen || !scan) {
        int rc = check(key, klen, err);
        if (rc)
            return mr_err_wrap(err, "\"key\"");
    }
    if (scan && elen) {
        int rc = check(end, elen, err);
        if (rc)
            return mr_err_wrap(err, "\"end\"");
        if (mr_bytes_cmp(key, klen, end, elen) >= 0)
            return mr_errf(err, MR_EINVAL, "a scan's \"end\" must lie above its \"key\"");
    }
    return MR_OK;
}

/* ---- ND_MSG_TXN ---- */

static int check_writes(Meridian__Write *const *writes, size_t n, mr_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const Meridian__Write *w = writes[i];
        int rc = nd_valid_key(w->key.data, w->key.len, err);
        if (rc)
            return mr_err_wrap(err, "write %zu", i);
        if (w->has_value && (rc = nd_valid_value(w->value.len, err)) != MR_OK)
            return mr_err_wrap(err, "write %zu", i);
    }
    return MR_OK;
}

static int check_participants(const Meridian__TxnRequest *m, nd_txn_req *r, mr_err *err)
{
    if (m->has_coordinator) {
        int rc = group_field(m->coordinator, err);
        if (rc)
            return mr_err_wrap(err, "\"coordinator\"");
        r->coordinator = m->coordinator;
    }
    if (m->n_participants > CO_MAX_PARTS)
        return mr_errf(err, MR_EINVAL, "\"participants\" lists %zu groups, at most %d",
                       m->n_participants, CO_MAX_PARTS);
    for (size_t i = 0; i < m->n_participants; i++)
        if (group_field(m->participants[i], err) != MR_OK)
            return mr_err_wrap(err, "\"participants\"");
    r->participants = m->participants;
    r->nparts = m->n_participants;
    return MR_OK;
}

int nd_valid_txn(const Meridian__TxnRequest *m, int64_t now_ns, nd_txn_req *r, mr_err *err)
{
    memset(r, 0, sizeof *r);
    int rc = group_field(m->group, err);
    if (rc)
        return rc;
    r->group = m->group;
    switch (m->op) {
    case MERIDIAN__TXN_REQUEST__OP__READ:
        r->op = ND_TXN_READ;
        break;
    case MERIDIAN__TXN_REQUEST__OP__COMMIT:
        r->op = ND_TXN_COMMIT;
        break;
    case MERIDIAN__TXN_REQUEST__OP__ABORT:
        r->op = ND_TXN_ABORT;
        break;
    case MERIDIAN__TXN_REQUEST__OP__STATUS:
        r->op = ND_TXN_STATUS;
        break;
    default:
        return mr_errf(err, MR_EINVAL, "\"op\" must be read, commit, abort or status");
    }
    if (!nd_txn_id_client(m->txn))
        return mr_errf(err, MR_EINVAL,
                       "\"txn\" must be in [1, %llu] (larger ids are the cluster's own)",
                       (unsigned long long)ND_TXN_CLIENT_MAX);
    r->txn = m->txn;
    /* The age matters where the transaction takes locks (read, commit); an abort releases
     * them and a status question takes none. */
    if (!m->has_prio && r->op != ND_TXN_STATUS)
        return mr_errf(err, MR_EINVAL, "want \"prio\"");
    r->prio = m->has_prio ? m->prio : 0;
    if ((r->op == ND_TXN_READ || r->op == ND_TXN_COMMIT) &&
        (rc = nd_valid_prio(r->prio, now_ns, err)) != MR_OK)
        return rc;
    if (m->has_commit_before && r->op != ND_TXN_COMMIT)
        return mr_errf(err, MR_EINVAL, "\"commit_before\" belongs to a commit only");
    if (m->has_commit_before && m->commit_before < 0)
        return mr_errf(err, MR_EINVAL,
                       "\"commit_before\" must be a timestamp in ns (>= 0; 0 = no limit), not "
                       "%lld",
                       (long long)m->commit_before);
    if (r->op == ND_TXN_READ) {
        if (!m->has_key)
            return mr_errf(err, MR_EINVAL, "read needs a key (a scan may start at \"\")");
        if ((rc = limit_field(m->has_limit, m->limit, err)) != MR_OK)
            return rc;
        r->key = m->key.data;
        r->klen = m->key.len;
        r->scan = m->has_end || (m->has_scan && m->scan);
        r->end = m->has_end ? m->end.data : NULL;
        r->elen = m->has_end ? m->end.len : 0;
        r->limit = m->has_limit ? m->limit : ND_ROW_LIMIT_DEFAULT;
        if (m->has_wait_ms && (m->wait_ms == 0 || m->wait_ms > 3600 * 1000))
            return mr_errf(err, MR_EINVAL, "\"wait_ms\" must be in [1, 3600000]");
        r->wait_ms = m->has_wait_ms ? m->wait_ms : 0;
        r->for_update = m->has_for_update && m->for_update;
        return span_fields(r->scan, false, r->key, r->klen, r->end, r->elen, err);
    }
    if (r->op == ND_TXN_COMMIT) {
        if ((rc = check_writes(m->writes, m->n_writes, err)) != MR_OK)
            return rc;
        r->writes = m->writes;
        r->nwrites = m->n_writes;
        r->nreads = m->has_nreads ? m->nreads : 0;
        r->commit_before = m->has_commit_before ? m->commit_before : 0;
        return check_participants(m, r, err);
    }
    return MR_OK;
}

/* ---- ND_MSG_SNAPREAD ---- */

int nd_valid_snapread(const Meridian__SnapReadRequest *m, nd_snap_req *r, mr_err *err)
{
    memset(r, 0, sizeof *r);
    int rc = group_field(m->group, err);
    if (!rc)
        rc = limit_field(m->has_limit, m->limit, err);
    if (rc)
        return rc;
    r->group = m->group;
    r->key = m->key.data;
    r->klen = m->key.len;
    r->end = m->has_end ? m->end.data : NULL;
    r->elen = m->has_end ? m->end.len : 0;
    /* A scan has an end, the flag or a limit (to the range's end); it gets the default limit. */
    bool scan = m->has_end || (m->has_scan && m->scan) || m->has_limit;
    r->limit = scan ? (m->has_limit ? m->limit : ND_ROW_LIMIT_DEFAULT) : 0;
    r->system = m->has_system && m->system;
    if ((rc = span_fields(scan, r->system, r->key, r->klen, r->end, r->elen, err)) != 0)
        return rc;
    switch (m->bound_case) {
    case MERIDIAN__SNAP_READ_REQUEST__BOUND_TS:
        if (m->ts < 0)
            return mr_errf(err, MR_EINVAL, "\"ts\" is %lld, negative", (long long)m->ts);
        r->mode = ND_READ_AT;
        r->ts = m->ts;
        break;
    case MERIDIAN__SNAP_READ_REQUEST__BOUND_EXACT_STALENESS_NS:
    case MERIDIAN__SNAP_READ_REQUEST__BOUND_MAX_STALENESS_NS: {
        bool exact = m->bound_case == MERIDIAN__SNAP_READ_REQUEST__BOUND_EXACT_STALENESS_NS;
        int64_t v = exact ? m->exact_staleness_ns : m->max_staleness_ns;
        if (v < 0 || v > ND_STALENESS_MAX)
            return mr_errf(err, MR_EINVAL, "\"%s\" is %lld, outside [0, %lld]",
                           exact ? "exact_staleness_ns" : "max_staleness_ns", (long long)v,
                           (long long)ND_STALENESS_MAX);
        r->mode = exact ? ND_READ_EXACT : ND_READ_BOUNDED;
        r->staleness = v;
        break;
    }
    case MERIDIAN__SNAP_READ_REQUEST__BOUND__NOT_SET:
        r->mode = ND_READ_STRONG;
        break;
    default:
        return mr_errf(err, MR_EINVAL, "an unknown read bound");
    }
    return MR_OK;
}

/* ---- the other client requests ---- */

int nd_valid_register(const Meridian__RegisterRequest *m, mr_err *err)
{
    int rc = group_field(m->group, err);
    if (rc)
        return rc;
    bool write = m->op == MERIDIAN__REGISTER_REQUEST__OP__WRITE;
    bool cas = m->op == MERIDIAN__REGISTER_REQUEST__OP__CAS;
    if (!write && !cas && m->op != MERIDIAN__REGISTER_REQUEST__OP__READ)
        return mr_errf(err, MR_EINVAL, "op must be read, write (value) or cas (expected, value)");
    if ((write || cas) && !m->has_value)
        return mr_errf(err, MR_EINVAL, "want \"value\"");
    if (cas && !m->has_expected)
        return mr_errf(err, MR_EINVAL, "want \"expected\"");
    if (m->has_value && (rc = nd_valid_value(m->value.len, err)) != MR_OK)
        return rc;
    if (m->has_expected && (rc = nd_valid_value(m->expected.len, err)) != MR_OK)
        return rc;
    return MR_OK;
}

int nd_valid_propose(const Meridian__ProposeRequest *m, mr_err *err)
{
    int rc = group_field(m->group, err);
    if (rc)
        return rc;
    if (m->data.len > ND_VALUE_MAX)
        return mr_errf(err, MR_EINVAL, "a proposal of %zu bytes is larger than the %u-byte limit",
                       m->data.len, ND_VALUE_MAX);
    return MR_OK;
}

int nd_valid_split_at(const Meridian__SplitAtRequest *m, mr_err *err)
{
    int rc = nd_valid_key(m->key.data, m->key.len, err);
    return rc ? mr_err_wrap(err, "want {key}: a client key") : MR_OK;
}

int nd_valid_init(const Meridian__InitRequest *m, int max_groups, int max_replicas, nd_init_req *r,
                  mr_err *err)
{
    memset(r, 0, sizeof *r);
    uint32_t groups = m->has_data_groups ? m->data_groups : 1;
    uint32_t replicas = m->has_replicas ? m->replicas : 3;
    if (groups < 1 || groups > (uint32_t)max_groups)
        return mr_errf(err, MR_EINVAL, "\"data_groups\" is %u, outside [1, %d]", groups,
                       max_groups);
    if (replicas < 1 || replicas > (uint32_t)max_replicas)
        return mr_errf(err, MR_EINVAL, "\"replicas\" is %u, outside [1, %d]", replicas,
                       max_replicas);
    r->data_groups = (int)groups;
    r->replicas = (int)replicas;
    if (!m->n_split_at)
        return MR_OK;
    if (m->n_split_at != (size_t)groups - 1)
        return mr_errf(err, MR_EINVAL, "split_at needs data_groups - 1 = %u keys", groups - 1);
    for (size_t i = 0; i < m->n_split_at; i++) {
        const ProtobufCBinaryData *k = &m->split_at[i];
        if (nd_valid_key(k->data, k->len, err) != MR_OK)
            return mr_err_wrap(err, "split key %zu", i + 1);
        if (mr_bytes_cmp(k->data, k->len, ND_META_END, ND_META_END_LEN) <= 0)
            return mr_errf(err, MR_EINVAL,
                           "split key %zu is not above \"\\x02\": the keys below belong to the "
                           "meta group, and the first data group starts at \"\\x02\"",
                           i + 1);
        if (i &&
            mr_bytes_cmp(m->split_at[i - 1].data, m->split_at[i - 1].len, k->data, k->len) >= 0)
            return mr_errf(err, MR_EINVAL, "split keys must increase strictly (key %zu)", i + 1);
    }
    r->split_at = m->split_at;
    r->nsplit = m->n_split_at;
    return MR_OK;
}

int nd_valid_fault(const Meridian__FaultRequest *m, mr_err *err)
{
    for (size_t i = 0; i < m->n_partition; i++)
        if (m->partition[i] < 1 || m->partition[i] > PX_MAX_NODE_ID)
            return mr_errf(err, MR_EINVAL, "partition: node id %u outside [1, %d]", m->partition[i],
                           PX_MAX_NODE_ID);
    if (m->has_hold_prepare_ms && m->hold_prepare_ms > 60000)
        return mr_errf(err, MR_EINVAL, "hold_prepare_ms: %u is over 60000", m->hold_prepare_ms);
    if (m->has_voting_grace_ms && m->voting_grace_ms > 60000)
        return mr_errf(err, MR_EINVAL, "voting_grace_ms: %u is over 60000", m->voting_grace_ms);
    return MR_OK;
}
