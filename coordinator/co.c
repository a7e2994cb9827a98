/* Two-phase commit bookkeeping: see co.h. */
#include "coordinator/co.h"

#include <string.h>

#include "common/mr_codec.h"

int co_init(co_votes *v, uint64_t self, const uint64_t *parts, size_t nparts, mr_err *err)
{
    memset(v, 0, sizeof *v);
    if (nparts < 2 || nparts > CO_MAX_PARTS)
        return mr_errf(err, MR_EINVAL, "a two-phase commit needs 2..%d participant groups, not %zu",
                       CO_MAX_PARTS, nparts);
    bool has_self = false;
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i] == 0)
            return mr_errf(err, MR_EINVAL, "participant group 0 does not exist");
        for (size_t j = 0; j < i; j++)
            if (parts[j] == parts[i])
                return mr_errf(err, MR_EINVAL, "participant group %llu listed twice",
                               (unsigned long long)parts[i]);
        has_self = has_self || parts[i] == self;
        v->parts[i] = parts[i];
        if (parts[i] == self)
            v->voted |= 1ull << i;
    }
    if (!has_self)
        return mr_errf(err, MR_EINVAL, "the coordinator group %llu is not a participant",
                       (unsigned long long)self);
    v->self = self;
    v->nparts = (uint32_t)nparts;
    return MR_OK;
}

co_verdict co_verdict_of(const co_votes *v)
{
    if (v->refused)
        return CO_ABORT;
    uint64_t all = v->nparts == 64 ? ~0ull : (1ull << v->nparts) - 1;
    return v->voted == all ? CO_COMMIT : CO_WAITING;
}

co_verdict co_vote(co_votes *v, uint64_t from, bool ok, int64_t prepare_ts)
{
    for (uint32_t i = 0; i < v->nparts; i++) {
        if (v->parts[i] != from || from == v->self || (v->voted & (1ull << i)))
            continue;
        if (!ok) {
            v->refused = true;
        } else {
            v->voted |= 1ull << i;
            if (prepare_ts > v->max_prepare_ts)
                v->max_prepare_ts = prepare_ts;
        }
    }
    return co_verdict_of(v);
}

size_t co_decision_encode(const co_decision *d, uint8_t *buf)
{
    uint32_t n = d->nparts > CO_MAX_PARTS ? CO_MAX_PARTS : d->nparts;
    buf[0] = d->commit ? 1 : 0;
    mr_put_u64(buf + 1, (uint64_t)d->ts);
    mr_put_u32(buf + 9, n);
    for (uint32_t i = 0; i < n; i++)
        mr_put_u64(buf + 13 + 8 * i, d->parts[i]);
    return 13 + 8 * (size_t)n;
}

int co_decision_decode(const uint8_t *buf, size_t len, co_decision *d, mr_err *err)
{
    memset(d, 0, sizeof *d);
    if (len < 13 || buf[0] > 1)
        return mr_errf(err, MR_ECORRUPT, "decision record: bad header (%zu bytes)", len);
    uint64_t n = mr_get_u32(buf + 9);
    if (n > CO_MAX_PARTS || len != 13 + 8 * n)
        return mr_errf(err, MR_ECORRUPT, "decision record: %llu participants in %zu bytes",
                       (unsigned long long)n, len);
    d->commit = buf[0] == 1;
    d->ts = (int64_t)mr_get_u64(buf + 1);
    d->nparts = (uint32_t)n;
    for (uint64_t i = 0; i < n; i++)
        d->parts[i] = mr_get_u64(buf + 13 + 8 * i);
    return MR_OK;
}
