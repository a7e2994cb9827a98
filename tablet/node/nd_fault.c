/* Test-only fault injection: clock offset, unhealthy clock, partitions. */
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

/* Test-only fault injection (the consistency harness's clock nemesis): a lying
 * clock offset and a declared-unhealthy clock. Off unless the operator opts in. */
void nd_fault_on_request(nd_node *n, const net_message *m)
{
    if (!n->test.faults)
        return nd_reply_error(
            n, m->reply_to, "refused",
            "fault injection is off (start the node with MERIDIAN_TEST_FAULTS=1)");
    json_error_t je;
    json_t *o = json_loadb((const char *)m->payload, m->len, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return nd_reply_error(n, m->reply_to, "invalid", "fault request is not a JSON object");
    }
    json_t *off = json_object_get(o, "clock_offset_ns");
    json_t *unh = json_object_get(o, "clock_unhealthy");
    json_t *part = json_object_get(o, "partition");
    if ((off && !json_is_integer(off)) || (unh && !json_is_boolean(unh)) ||
        (part && !json_is_array(part))) {
        json_decref(o);
        return nd_reply_error(n, m->reply_to, "invalid",
                              "clock_offset_ns must be an integer, clock_unhealthy a boolean, "
                              "partition an array of node ids");
    }
    if (part) {
        /* Cut this node off from the listed nodes (both directions, as seen from
         * here; the harness tells both sides). An empty array heals. */
        uint64_t mask = 0;
        size_t k;
        json_t *v;
        json_array_foreach(part, k, v)
        {
            json_int_t id = json_integer_value(v);
            if (id >= 1 && id <= PX_MAX_NODE_ID && id != n->self)
                mask |= 1ull << id;
        }
        n->partitioned = mask;
        MR_WARN("node", "fault hook: partitioned from mask=%#llx", (unsigned long long)mask);
    }
    if (off)
        tt_set_fault_offset(n->clock, (int64_t)json_integer_value(off));
    if (unh)
        tt_set_fault_unhealthy(n->clock, json_is_true(unh));
    json_decref(o);
    json_t *cut = json_array();
    for (int id = 1; id <= PX_MAX_NODE_ID; id++)
        if (n->partitioned & (1ull << id))
            json_array_append_new(cut, json_integer(id));
    nd_reply_json(n, m->reply_to,
                  json_pack("{s:b, s:I, s:b, s:s, s:o}", "ok", 1, "clock_offset_ns",
                            (json_int_t)tt_fault_offset(n->clock), "clock_unhealthy",
                            tt_fault_unhealthy(n->clock), "clock_status",
                            tt_status_name(tt_status_now(n->clock)), "partition", cut));
}
