/* Test-only fault injection: clock offset, unhealthy clock, partitions, slow PREPAREs. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "net/transport.h"
#include "tablet/logstore/ls_paxos.h"
#include "tablet/node/nd_http.h"
#include "tablet/node/nd_metrics.h"
#include "tablet/paxos/px.h"
#include "truetime/tt.h"

#include "tablet/node/nd_int.h"
#include "tablet/node/nd_validate.h"

/* Test-only fault injection (the consistency harness's clock nemesis, the tests' partitions and
 * slow PREPAREs): a lying clock offset, a declared-unhealthy clock, partitions, PREPARE held
 * back. Off unless the operator opts in. */
void nd_fault_on_request(nd_node *n, const net_message *m)
{
    if (!n->test.faults)
        return nd_reply_error(
            n, m->reply_to, MERIDIAN__ERROR_CODE__REFUSED,
            "fault injection is off (start the node with MERIDIAN_TEST_FAULTS=1)");
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    const Meridian__FaultRequest *rq =
        (const Meridian__FaultRequest *)nd_request_decode(m, &a, &err);
    if (!rq || nd_valid_fault(rq, &err) != MR_OK) {
        nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, mr_err_msg(&err));
        pr_arena_free(&a);
        return;
    }
    if (rq->has_set_partition && rq->set_partition) {
        /* Cut this node off from the listed nodes (both directions, as seen from
         * here; the harness tells both sides). An empty list heals. */
        uint64_t mask = 0;
        for (size_t k = 0; k < rq->n_partition; k++)
            if (rq->partition[k] != n->self)
                mask |= 1ull << rq->partition[k];
        n->partitioned = mask;
        MR_WARN("node", "fault hook: partitioned from mask=%#llx", (unsigned long long)mask);
    }
    if (rq->has_clock_offset_ns)
        tt_set_fault_offset(n->clock, rq->clock_offset_ns);
    if (rq->has_clock_unhealthy)
        tt_set_fault_unhealthy(n->clock, rq->clock_unhealthy);
    if (rq->has_hold_prepare_ms) {
        n->hold_prepare_ns = (int64_t)rq->hold_prepare_ms * MR_NS_PER_MS;
        MR_WARN("node", "fault hook: PREPARE records held back %u ms", rq->hold_prepare_ms);
    }
    if (rq->has_voting_grace_ms) {
        n->voting_grace_ns = (int64_t)rq->voting_grace_ms * MR_NS_PER_MS;
        MR_WARN("node", "fault hook: a pushed voting coordinator is given %u ms (0: default)",
                rq->voting_grace_ms);
    }
    pr_arena_free(&a);
    uint32_t cut[PX_MAX_NODE_ID + 1];
    size_t ncut = 0;
    for (int id = 1; id <= PX_MAX_NODE_ID; id++)
        if (n->partitioned & (1ull << id))
            cut[ncut++] = (uint32_t)id;
    Meridian__FaultReply r = MERIDIAN__FAULT_REPLY__INIT;
    r.has_clock_offset_ns = r.has_clock_unhealthy = true;
    r.clock_offset_ns = tt_fault_offset(n->clock);
    r.clock_unhealthy = tt_fault_unhealthy(n->clock);
    r.clock_status = (char *)(uintptr_t)tt_status_name(tt_status_now(n->clock));
    r.has_hold_prepare_ms = true;
    r.hold_prepare_ms = (uint32_t)(n->hold_prepare_ns / MR_NS_PER_MS);
    r.has_voting_grace_ms = true;
    r.voting_grace_ms = (uint32_t)(n->voting_grace_ns / MR_NS_PER_MS);
    r.n_partition = ncut;
    r.partition = cut;
    nd_reply_body(n, m->reply_to, MERIDIAN__REPLY__BODY_FAULT, &r.base);
}
