/* `meridian split KEY`: split the tablet holding KEY so that KEY starts a new
 * one, the way size-based splits happen (tablet/node/nd_split.c), and wait
 * until the range map shows it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/cmd_rpc.h"
#include "common/mr_util.h"
#include "proto/pr_json.h"
#include "proto/pr_msg.h"
#include "tablet/node/nd.h"

static void split_usage(FILE *f)
{
    fprintf(f, "usage: meridian split KEY [--wait DUR] [--host HOST:PORT]\n"
               "                      [--certs DIR [--user U] | --insecure] [--json]\n\n"
               "Splits the tablet (data group) holding KEY in two at KEY: the keys from KEY\n"
               "on move to a new group on the same replicas, numbered by the meta group,\n"
               "through the group's Paxos log, as when a tablet grows past --split-size.\n"
               "Transactions running on the tablet are drained first (new ones are told to\n"
               "retry). Waits until the range map at --host shows the new range and its\n"
               "group has a leader (--wait, default 30s), and prints it. A KEY already\n"
               "starting a range is not an error: nothing changes.\n");
}

typedef struct split_args {
    int64_t wait_ns;
} split_args;

static int set_wait(void *arg, const char *v)
{
    split_args *a = arg;
    if (mr_parse_duration(v, &a->wait_ns) != 0 || a->wait_ns <= 0)
        return cmd_usage_error("split", "--wait '%s' is not a positive duration", v);
    return CMD_EXIT_OK;
}

/* The range map at o->host, decoded into a; NULL with err set. */
static const Meridian__RangeMap *range_map(const cmd_conn_opts *o, pr_arena *a, mr_err *err)
{
    Meridian__Empty empty = MERIDIAN__EMPTY__INIT;
    const Meridian__Reply *r = NULL;
    if (cmd_rpc(o, ND_MSG_RANGES, &empty.base, a, &r, err) != MR_OK)
        return NULL;
    if (r->body_case != MERIDIAN__REPLY__BODY_RANGES) {
        mr_errf(err, MR_EUNAVAIL, "%s: %s", pr_error_name(pr_reply_code(r)),
                r->error ? pr_reply_message(r) : "no range map");
        return NULL;
    }
    return r->ranges;
}

/* The range of map that holds key (len bytes), or NULL with err set. */
static const Meridian__Range *range_of(const Meridian__RangeMap *map, const char *key, size_t len,
                                       mr_err *err)
{
    for (size_t i = 0; i < map->n_ranges; i++) {
        const Meridian__Range *v = map->ranges[i];
        if (mr_bytes_cmp(key, len, v->start.data, v->start.len) >= 0 &&
            (!v->end.len || mr_bytes_cmp(key, len, v->end.data, v->end.len) < 0))
            return v;
    }
    mr_errf(err, MR_EUNAVAIL, "no range holds the key");
    return NULL;
}

static bool starts_at(const Meridian__Range *r, const char *key, size_t len)
{
    return mr_bytes_cmp(r->start.data, r->start.len, key, len) == 0;
}

int cmd_split(int argc, char **argv)
{
    cmd_conn_opts o = {0};
    bool json = false;
    char **pos = NULL;
    int npos = 0;
    split_args a = {.wait_ns = 30 * MR_NS_PER_S};
    static const cmd_extra_opt extra[] = {{"wait", set_wait}, {NULL, NULL}};
    int rc = cmd_client_opts("split", argc, argv, &o, &json, split_usage, &pos, &npos, extra, &a);
    if (rc)
        return rc < 0 ? CMD_EXIT_OK : rc;
    if (npos != 1 || !*pos[0]) {
        return cmd_usage_error("split", "want one non-empty KEY");
    }
    const char *key = pos[0];
    size_t klen = strlen(key);
    int64_t deadline = mr_monotonic_ns() + a.wait_ns;
    mr_err err;
    mr_err_clear(&err);
    /* The first map: the key's group, its leader hint, every node (to ask in turn). */
    pr_arena first;
    pr_arena_init(&first);
    const Meridian__RangeMap *map0 = range_map(&o, &first, &err);
    const Meridian__Range *range = map0 ? range_of(map0, key, klen, &err) : NULL;
    if (!range) {
        pr_arena_free(&first);
        return cmd_fail("split", "%s", mr_err_msg(&err));
    }
    uint64_t gid = range->group;
    bool already = starts_at(range, key, klen);
    /* Ask the group's leader (the map's hint, else --host, then the hints it
     * gives) until the map at --host shows the range; ask again now and then,
     * since a leader that loses its lease drops the split it began. */
    char target[160];
    snprintf(target, sizeof target, "%s", range->leader && *range->leader ? range->leader : o.host);
    pr_arena now;
    pr_arena_init(&now);
    const Meridian__Range *upper = NULL;
    int64_t asked = 0;
    size_t rotor = 0;
    char last[300] = "no answer yet";
    for (;;) {
        pr_arena_reset(&now);
        const Meridian__RangeMap *map = range_map(&o, &now, &err);
        upper = map ? range_of(map, key, klen, &err) : NULL;
        /* Done when the range shows, and its group has a leader (it elects one
         * first: until then it serves nothing) or the wait is up. */
        if (upper && starts_at(upper, key, klen) &&
            ((upper->leader && *upper->leader) || mr_monotonic_ns() > deadline))
            break;
        if (mr_monotonic_ns() > deadline) {
            pr_arena_free(&now);
            pr_arena_free(&first);
            return cmd_fail("split",
                            "the split of group %llu at '%s' did not show in the range "
                            "map in time (last answer: %s)",
                            (unsigned long long)gid, key, last);
        }
        if (!asked || mr_monotonic_ns() - asked > 3 * MR_NS_PER_S) {
            cmd_conn_opts to = o;
            to.host = target;
            Meridian__SplitAtRequest req = MERIDIAN__SPLIT_AT_REQUEST__INIT;
            req.key = (ProtobufCBinaryData){.len = klen, .data = (uint8_t *)(uintptr_t)key};
            pr_arena ra;
            pr_arena_init(&ra);
            const Meridian__Reply *r = NULL;
            rc = cmd_rpc_leader(&to, ND_MSG_SPLIT_AT, &req.base, &ra, &r, &err);
            Meridian__ErrorCode e = rc == MR_OK ? pr_reply_code(r) : 0;
            snprintf(last, sizeof last, "%s",
                     rc != MR_OK ? mr_err_msg(&err)
                     : e         ? (*pr_reply_message(r) ? pr_reply_message(r) : pr_error_name(e))
                                 : "splitting");
            pr_arena_free(&ra);
            if (rc == MR_OK &&
                (!e || e == MERIDIAN__ERROR_CODE__BUSY || e == MERIDIAN__ERROR_CODE__BOUNDARY)) {
                asked = mr_monotonic_ns(); /* begun (or done): watch the map */
            } else if (e == MERIDIAN__ERROR_CODE__INVALID) {
                pr_arena_free(&now);
                pr_arena_free(&first);
                return cmd_fail("split", "%s", last);
            } else { /* hints ran out (or no answer): the map's next node, in turn */
                size_t nn = map0->n_nodes;
                const char *next = nn ? map0->nodes[rotor++ % nn]->addr : NULL;
                snprintf(target, sizeof target, "%s", next ? next : o.host);
            }
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (json) {
        json_t *out = json_pack("{s:b, s:s, s:I, s:o}", "ok", 1, "key", key, "group",
                                (json_int_t)gid, "new", pr_to_json(&upper->base));
        char *s = out ? json_dumps(out, JSON_COMPACT) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(out);
    } else if (already) {
        printf("'%s' already starts a range (group %llu): nothing to do\n", key,
               (unsigned long long)gid);
    } else {
        char end[200];
        mr_bytes_text(upper->end.data, upper->end.len, end, sizeof end);
        printf("group %llu split at '%s': group %llu holds [%s, %s)\n", (unsigned long long)gid,
               key, (unsigned long long)upper->group, key, upper->end.len ? end : "+inf");
    }
    pr_arena_free(&now);
    pr_arena_free(&first);
    return CMD_EXIT_OK;
}
