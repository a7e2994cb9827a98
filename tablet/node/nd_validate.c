/* Checks of every client request, before the node acts on it (see nd_validate.h). */
#include "tablet/node/nd_validate.h"

#include <string.h>

#include "common/mr_codec.h"
#include "common/mr_util.h"
#include "coordinator/co.h"
#include "tablet/mvcc/mv.h"

/* ---- fields of exact types ---- */

/* An integer field in [min, max]. Absent: *out = dflt, or an error when required. */
static int int_field(json_t *o, const char *name, bool required, int64_t min, int64_t max,
                     int64_t dflt, int64_t *out, mr_err *err)
{
    json_t *v = json_object_get(o, name);
    if (!v) {
        if (required)
            return mr_errf(err, MR_EINVAL, "want \"%s\"", name);
        *out = dflt;
        return MR_OK;
    }
    if (!json_is_integer(v))
        return mr_errf(err, MR_EINVAL, "\"%s\" must be an integer", name);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return mr_errf(err, MR_EINVAL, "\"%s\" is %lld, outside [%lld, %lld]", name, (long long)x,
                       (long long)min, (long long)max);
    *out = (int64_t)x;
    return MR_OK;
}

/* A string field. Absent: *s = NULL, or an error when required. */
static int str_field(json_t *o, const char *name, bool required, const char **s, size_t *len,
                     mr_err *err)
{
    json_t *v = json_object_get(o, name);
    *s = NULL;
    *len = 0;
    if (!v)
        return required ? mr_errf(err, MR_EINVAL, "want \"%s\"", name) : MR_OK;
    if (!json_is_string(v))
        return mr_errf(err, MR_EINVAL, "\"%s\" must be a string", name);
    *s = json_string_value(v);
    *len = json_string_length(v);
    return MR_OK;
}

static int group_field(json_t *o, uint64_t *group, mr_err *err)
{
    int64_t g;
    int rc = int_field(o, "group", true, 1, INT64_MAX, 0, &g, err);
    *group = (uint64_t)g;
    return rc;
}

/* ---- keys, values, ids, ages, timestamps ---- */

int nd_valid_key(const void *key, size_t len, mr_err *err)
{
    if (!key || len == 0)
        return mr_errf(err, MR_EINVAL, "a key must not be empty");
    if (len > MV_MAX_KEY)
        return mr_errf(err, MR_EINVAL, "key of %zu bytes is longer than the %d-byte limit", len,
                       MV_MAX_KEY);
    if (memchr(key, 0, len))
        return mr_errf(err, MR_EINVAL, "a key must not hold a NUL byte");
    if (!mr_utf8_valid(key, len))
        return mr_errf(err, MR_EINVAL, "a key must be UTF-8");
    return MR_OK;
}

int nd_valid_value(size_t len, mr_err *err)
{
    if (len > MV_MAX_VALUE)
        return mr_errf(err, MR_EINVAL, "value of %zu bytes is larger than the %u-byte limit", len,
                       MV_MAX_VALUE);
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

/* A read's key and optional end: the key may be "" only where a scan starts at the range's
 * start; end "" means unbounded, otherwise it must lie above the key. */
static int span_fields(bool scan, const char *key, size_t klen, const char *end, size_t elen,
                       mr_err *err)
{
    if (klen || !scan) {
        int rc = nd_valid_key(key, klen, err);
        if (rc)
            return mr_err_wrap(err, "\"key\"");
    }
    if (end && elen) {
        int rc = nd_valid_key(end, elen, err);
        if (rc)
            return mr_err_wrap(err, "\"end\"");
        size_t m = klen < elen ? klen : elen;
        int c = memcmp(key, end, m);
        if (c > 0 || (c == 0 && klen >= elen))
            return mr_errf(err, MR_EINVAL, "a scan's \"end\" must lie above its \"key\"");
    }
    return MR_OK;
}

/* ---- ND_MSG_TXN ---- */

static int check_writes(json_t *writes, mr_err *err)
{
    if (!json_is_array(writes))
        return mr_errf(err, MR_EINVAL, "\"writes\" must be an array");
    size_t i;
    json_t *w;
    json_array_foreach(writes, i, w)
    {
        if (!json_is_object(w))
            return mr_errf(err, MR_EINVAL, "write %zu must be an object {key, value | delete}", i);
        const char *k, *v;
        size_t kl, vl;
        int rc = str_field(w, "key", true, &k, &kl, err);
        if (!rc)
            rc = nd_valid_key(k, kl, err);
        if (rc)
            return mr_err_wrap(err, "write %zu", i);
        json_t *del = json_object_get(w, "delete");
        if (del && !json_is_boolean(del))
            return mr_errf(err, MR_EINVAL, "write %zu: \"delete\" must be a boolean", i);
        if (json_is_true(del)) {
            if (json_object_get(w, "value"))
                return mr_errf(err, MR_EINVAL, "write %zu: a delete carries no \"value\"", i);
            continue;
        }
        rc = str_field(w, "value", true, &v, &vl, err);
        if (!rc)
            rc = nd_valid_value(vl, err);
        if (rc)
            return mr_err_wrap(err, "write %zu (%.40s)", i, k);
    }
    return MR_OK;
}

static int check_participants(json_t *o, nd_txn_req *r, mr_err *err)
{
    int64_t coord;
    int rc = int_field(o, "coordinator", false, 1, INT64_MAX, 0, &coord, err);
    if (rc)
        return rc;
    r->coordinator = (uint64_t)coord;
    json_t *parts = json_object_get(o, "participants");
    if (!parts)
        return MR_OK;
    if (!json_is_array(parts) || json_array_size(parts) > CO_MAX_PARTS)
        return mr_errf(err, MR_EINVAL, "\"participants\" must be an array of at most %d group ids",
                       CO_MAX_PARTS);
    size_t i;
    json_t *v;
    json_array_foreach(parts, i, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return mr_errf(err, MR_EINVAL, "\"participants\" must be group ids (integers >= 1)");
    }
    r->participants = parts;
    return MR_OK;
}

int nd_valid_txn(json_t *o, int64_t now_ns, nd_txn_req *r, mr_err *err)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(o))
        return mr_errf(err, MR_EINVAL, "request is not a JSON object");
    int rc = group_field(o, &r->group, err);
    if (rc)
        return rc;
    const char *op;
    size_t oplen;
    if ((rc = str_field(o, "op", true, &op, &oplen, err)) != 0)
        return rc;
    if (strcmp(op, "read") == 0)
        r->op = ND_TXN_READ;
    else if (strcmp(op, "commit") == 0)
        r->op = ND_TXN_COMMIT;
    else if (strcmp(op, "abort") == 0)
        r->op = ND_TXN_ABORT;
    else if (strcmp(op, "status") == 0)
        r->op = ND_TXN_STATUS;
    else
        return mr_errf(err, MR_EINVAL, "\"op\" must be read, commit, abort or status");
    json_t *id = json_object_get(o, "txn");
    if (!id)
        return mr_errf(err, MR_EINVAL, "want \"txn\"");
    if (!json_is_integer(id) || !nd_txn_id_client((uint64_t)json_integer_value(id)))
        return mr_errf(err, MR_EINVAL,
                       "\"txn\" must be an integer in [1, %llu] (larger ids are "
                       "the cluster's own)",
                       (unsigned long long)ND_TXN_CLIENT_MAX);
    r->txn = (uint64_t)json_integer_value(id);
    /* The age matters where the transaction takes locks (read, commit); an abort releases
     * them and a status question takes none, so there it only has to be an integer. */
    rc = int_field(o, "prio", r->op != ND_TXN_STATUS, INT64_MIN, INT64_MAX, 0, &r->prio, err);
    if (!rc && (r->op == ND_TXN_READ || r->op == ND_TXN_COMMIT))
        rc = nd_valid_prio(r->prio, now_ns, err);
    if (rc)
        return rc;
    if (r->op == ND_TXN_READ) {
        size_t elen;
        int64_t limit;
        if ((rc = str_field(o, "key", true, &r->key, &r->klen, err)) != 0 ||
            (rc = str_field(o, "end", false, &r->end, &elen, err)) != 0 ||
            (rc = int_field(o, "limit", false, 1, ND_ROW_LIMIT_MAX, ND_ROW_LIMIT_DEFAULT, &limit,
                            err)) != 0)
            return rc;
        r->limit = (uint64_t)limit;
        if (r->klen == 0 && !r->end)
            return mr_errf(err, MR_EINVAL, "read needs a key (a scan may start at \"\")");
        return span_fields(r->end != NULL, r->key, r->klen, r->end, elen, err);
    }
    if (r->op == ND_TXN_COMMIT) {
        int64_t nreads;
        r->writes = json_object_get(o, "writes");
        if (!r->writes)
            return mr_errf(err, MR_EINVAL, "commit needs \"writes\": [...]");
        if ((rc = check_writes(r->writes, err)) != 0 ||
            (rc = int_field(o, "nreads", false, 0, UINT32_MAX, 0, &nreads, err)) != 0)
            return rc;
        r->nreads = (uint32_t)nreads;
        return check_participants(o, r, err);
    }
    return MR_OK;
}

/* ---- ND_MSG_SNAPREAD ---- */

int nd_valid_snapread(json_t *o, nd_snap_req *r, mr_err *err)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(o))
        return mr_errf(err, MR_EINVAL, "request is not a JSON object");
    size_t elen;
    int64_t limit;
    int rc = group_field(o, &r->group, err);
    if (!rc)
        rc = str_field(o, "key", true, &r->key, &r->klen, err);
    if (!rc)
        rc = str_field(o, "end", false, &r->end, &elen, err);
    if (!rc)
        rc = int_field(o, "limit", false, 1, ND_ROW_LIMIT_MAX, 0, &limit, err);
    if (rc)
        return rc;
    /* A scan has an end or a limit (to the range's end); it gets the default limit. */
    bool scan = r->end || limit;
    r->limit = scan ? (limit ? (uint64_t)limit : ND_ROW_LIMIT_DEFAULT) : 0;
    if ((rc = span_fields(scan, r->key, r->klen, r->end, elen, err)) != 0)
        return rc;
    static const char *const modes[] = {"ts", "exact_staleness_ns", "max_staleness_ns"};
    int given = 0;
    for (int k = 0; k < 3; k++) {
        if (!json_object_get(o, modes[k]))
            continue;
        if (given++)
            return mr_errf(err, MR_EINVAL,
                           "at most one of \"ts\", \"exact_staleness_ns\", \"max_staleness_ns\"");
        int64_t v;
        rc = int_field(o, modes[k], true, 0, k == 0 ? INT64_MAX : ND_STALENESS_MAX, 0, &v, err);
        if (rc)
            return rc;
        r->mode = k == 0 ? ND_READ_AT : k == 1 ? ND_READ_EXACT : ND_READ_BOUNDED;
        if (k == 0)
            r->ts = v;
        else
            r->staleness = v;
    }
    return MR_OK;
}

/* ---- the other client requests ---- */

int nd_valid_register(json_t *o, nd_reg_req *r, mr_err *err)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(o))
        return mr_errf(err, MR_EINVAL, "request is not a JSON object");
    size_t len;
    int rc = group_field(o, &r->group, err);
    if (!rc)
        rc = str_field(o, "op", true, &r->op, &len, err);
    if (rc)
        return rc;
    bool write = strcmp(r->op, "write") == 0, cas = strcmp(r->op, "cas") == 0;
    if (!write && !cas && strcmp(r->op, "read") != 0)
        return mr_errf(err, MR_EINVAL, "op must be read, write (value) or cas (expected, value)");
    const char *s;
    if (write || cas) {
        if ((rc = str_field(o, "value", true, &s, &len, err)) != 0 ||
            (rc = nd_valid_value(len, err)) != 0)
            return rc;
        r->value = json_object_get(o, "value");
    }
    if (cas) {
        if ((rc = str_field(o, "expected", true, &s, &len, err)) != 0 ||
            (rc = nd_valid_value(len, err)) != 0)
            return rc;
        r->expected = json_object_get(o, "expected");
    }
    return MR_OK;
}

int nd_valid_propose(const uint8_t *p, size_t len, uint64_t *group, mr_err *err)
{
    if (len < 8)
        return mr_errf(err, MR_EINVAL, "propose needs a group id");
    uint64_t g = mr_get_u64(p);
    if (g < 1 || g > INT64_MAX)
        return mr_errf(err, MR_EINVAL, "group id %llu is out of range", (unsigned long long)g);
    if (len - 8 > MV_MAX_VALUE)
        return mr_errf(err, MR_EINVAL, "a proposal of %zu bytes is larger than the %u-byte limit",
                       len - 8, MV_MAX_VALUE);
    *group = g;
    return MR_OK;
}

int nd_valid_split_at(json_t *o, const char **key, mr_err *err)
{
    if (!json_is_object(o))
        return mr_errf(err, MR_EINVAL, "request is not a JSON object");
    size_t len;
    int rc = str_field(o, "key", true, key, &len, err);
    if (!rc)
        rc = nd_valid_key(*key, len, err);
    return rc ? mr_err_wrap(err, "want {key}: a non-empty key") : MR_OK;
}

int nd_valid_init(json_t *o, int max_groups, int max_replicas, nd_init_req *r, mr_err *err)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(o))
        return mr_errf(err, MR_EINVAL, "request is not a JSON object");
    int64_t groups, replicas;
    int rc = int_field(o, "data_groups", false, 1, max_groups, 1, &groups, err);
    if (!rc)
        rc = int_field(o, "replicas", false, 1, max_replicas, 3, &replicas, err);
    if (rc)
        return rc;
    r->data_groups = (int)groups;
    r->replicas = (int)replicas;
    json_t *split = json_object_get(o, "split_at");
    if (!split)
        return MR_OK;
    if (!json_is_array(split) || json_array_size(split) != (size_t)groups - 1)
        return mr_errf(err, MR_EINVAL, "split_at needs data_groups - 1 = %d keys", (int)groups - 1);
    size_t i;
    json_t *v;
    const char *prev = NULL;
    json_array_foreach(split, i, v)
    {
        if (!json_is_string(v))
            return mr_errf(err, MR_EINVAL, "split key %zu must be a string", i + 1);
        const char *k = json_string_value(v);
        if (nd_valid_key(k, json_string_length(v), err) != MR_OK)
            return mr_err_wrap(err, "split key %zu", i + 1);
        if (prev && strcmp(prev, k) >= 0)
            return mr_errf(err, MR_EINVAL,
                           "split keys must increase strictly ('%.100s' then "
                           "'%.100s')",
                           prev, k);
        prev = k;
    }
    r->split_at = split;
    return MR_OK;
}
