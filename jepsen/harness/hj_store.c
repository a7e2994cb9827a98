/* The nodes' stores at the end of a run: see hj_store.h. */
#include "jepsen/harness/hj_store.h"

#include <unistd.h>

#include "common/mr_util.h"
#include "tablet/node/nd.h"

static long long field(json_t *g, const char *name)
{
    return (long long)json_integer_value(json_object_get(g, name));
}

json_t *hj_store_sample(hj_cluster *c, hj_store_totals *t)
{
    *t = (hj_store_totals){0};
    json_t *nodes = json_array();
    for (int i = 0; i < c->n; i++) {
        json_t *st = NULL;
        mr_err err;
        if (c->nodes[i].pid <= 0 ||
            hj_rpc(c->tls, c->nodes[i].addr, ND_MSG_STATUS, "{}", 5000, &st, &err) != MR_OK) {
            json_array_append_new(nodes, json_pack("{s:i, s:b}", "node", i + 1, "answered", 0));
            continue;
        }
        t->nodes++;
        json_t *groups = json_array();
        size_t k;
        json_t *g;
        json_array_foreach(json_object_get(st, "groups"), k, g)
        {
            long long gid = field(g, "id");
            long long used = (field(g, "pages") - field(g, "free_pages")) * field(g, "page_size");
            long long file = field(g, "pages") * field(g, "page_size");
            t->used_bytes += used;
            t->file_bytes += file;
            if (gid >= 2) { /* the data groups: the meta group commits rarely */
                if (field(g, "decisions") > t->decisions)
                    t->decisions = field(g, "decisions");
                if (field(g, "system_versions") > t->system_versions)
                    t->system_versions = field(g, "system_versions");
            }
            json_array_append_new(
                groups, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "group", gid, "decisions",
                                  field(g, "decisions"), "forgotten", field(g, "forgotten"),
                                  "system_versions", field(g, "system_versions"), "versions",
                                  field(g, "versions"), "used_bytes", used, "file_bytes", file));
        }
        json_array_append_new(
            nodes, json_pack("{s:i, s:b, s:o}", "node", i + 1, "answered", 1, "groups", groups));
        json_decref(st);
    }
    return json_pack("{s:o, s:I, s:I, s:I, s:I}", "nodes", nodes, "max_decisions", t->decisions,
                     "max_system_versions", t->system_versions, "used_bytes", t->used_bytes,
                     "file_bytes", t->file_bytes);
}

json_t *hj_store_check(hj_cluster *c, int max_wait_s, bool *bounded)
{
    hj_store_totals end, now;
    json_t *at_end = hj_store_sample(c, &end);
    json_t *last = NULL;
    int64_t t0 = mr_monotonic_ns();
    *bounded = false;
    for (;;) {
        json_decref(last);
        last = hj_store_sample(c, &now);
        if (now.nodes == c->n && now.decisions == 0 && now.system_versions == 0) {
            *bounded = true;
            break;
        }
        if (mr_monotonic_ns() - t0 > (int64_t)max_wait_s * MR_NS_PER_S)
            break;
        sleep(1);
    }
    return json_pack("{s:o, s:o, s:f, s:b}", "at_end", at_end, "settled", last, "waited_s",
                     (double)(mr_monotonic_ns() - t0) / 1e9, "bounded", *bounded);
}
