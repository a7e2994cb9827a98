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

/* The range of the map at o->host that holds key (a new reference), or NULL
 * with err set. The nodes' addresses go to *nodes when it is non-NULL (a new
 * reference). */
static json_t *range_of(const cmd_conn_opts *o, const char *key, json_t **nodes, mr_err *err)
{
    json_t *r = NULL;
    if (cmd_rpc(o, ND_MSG_RANGES, "{}", 2, &r, err) != MR_OK)
        return NULL;
    if (nodes) {
        json_decref(*nodes);
        *nodes = json_incref(json_object_get(r, "nodes"));
    }
    json_t *found = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "ranges"), i, v)
    {
        const char *s = json_string_value(json_object_get(v, "start"));
        const char *e = json_string_value(json_object_get(v, "end"));
        if (s && e && strcmp(key, s) >= 0 && (!*e || strcmp(key, e) < 0))
            found = json_incref(v);
    }
    if (!found)
        mr_errf(err, MR_EUNAVAIL, "%s",
                json_string_value(json_object_get(r, "message")) ?: "no range holds the key");
    json_decref(r);
    return found;
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
    int64_t deadline = mr_monotonic_ns() + a.wait_ns;
    mr_err err;
    mr_err_clear(&err);
    json_t *nodes = NULL;
    json_t *range = range_of(&o, key, &nodes, &err);
    if (!range) {
        json_decref(nodes);
        return cmd_fail("split", "%s", mr_err_msg(&err));
    }
    json_int_t gid = json_integer_value(json_object_get(range, "group"));
    bool already = strcmp(json_string_value(json_object_get(range, "start")), key) == 0;
    /* Ask the group's leader (the map's hint, else --host, then the hints it
     * gives) until the map at --host shows the range; ask again now and then,
     * since a leader that loses its lease drops the split it began. */
    char target[160];
    const char *hint = json_string_value(json_object_get(range, "leader"));
    snprintf(target, sizeof target, "%s", hint && *hint ? hint : o.host);
    json_decref(range);
    json_t *upper = NULL;
    int64_t asked = 0;
    size_t rotor = 0;
    char last[300] = "no answer yet";
    for (;;) {
        json_decref(upper);
        upper = range_of(&o, key, NULL, &err);
        const char *ul = json_string_value(json_object_get(upper, "leader"));
        /* Done when the range shows, and its group has a leader (it elects one
         * first: until then it serves nothing) or the wait is up. */
        if (upper && strcmp(json_string_value(json_object_get(upper, "start")), key) == 0 &&
            ((ul && *ul) || mr_monotonic_ns() > deadline))
            break;
        if (mr_monotonic_ns() > deadline) {
            json_decref(upper);
            json_decref(nodes);
            return cmd_fail("split",
                            "the split of group %lld at '%s' did not show in the range "
                            "map in time (last answer: %s)",
                            (long long)gid, key, last);
        }
        if (!asked || mr_monotonic_ns() - asked > 3 * MR_NS_PER_S) {
            cmd_conn_opts to = o;
            to.host = target;
            json_t *req = json_pack("{s:s}", "key", key);
            json_t *r = NULL;
            rc = req ? cmd_rpc_leader(&to, ND_MSG_SPLIT_AT, req, &r, &err)
                     : mr_errf(&err, MR_ENOMEM, "out of memory");
            json_decref(req);
            const char *e = r ? json_string_value(json_object_get(r, "error")) : NULL;
            snprintf(last, sizeof last, "%s",
                     rc != MR_OK ? mr_err_msg(&err)
                     : e         ? json_string_value(json_object_get(r, "message")) ?: e
                                 : "splitting");
            if (rc == MR_OK && (!e || strcmp(e, "busy") == 0 || strcmp(e, "boundary") == 0)) {
                asked = mr_monotonic_ns(); /* begun (or done): watch the map */
            } else if (e && strcmp(e, "invalid") == 0) {
                json_decref(r);
                json_decref(upper);
                json_decref(nodes);
                return cmd_fail("split", "%s", last);
            } else { /* hints ran out (or no answer): the map's next node, in turn */
                size_t nn = json_array_size(nodes);
                const char *next = nn ? json_string_value(json_object_get(
                                            json_array_get(nodes, rotor++ % nn), "addr"))
                                      : NULL;
                snprintf(target, sizeof target, "%s", next ? next : o.host);
            }
            json_decref(r);
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (json) {
        json_t *out =
            json_pack("{s:b, s:s, s:I, s:O}", "ok", 1, "key", key, "group", gid, "new", upper);
        char *s = out ? json_dumps(out, JSON_COMPACT) : NULL;
        if (s)
            puts(s);
        free(s);
        json_decref(out);
    } else if (already) {
        printf("'%s' already starts a range (group %lld): nothing to do\n", key, (long long)gid);
    } else {
        const char *end = json_string_value(json_object_get(upper, "end"));
        printf("group %lld split at '%s': group %lld holds [%s, %s)\n", (long long)gid, key,
               (long long)json_integer_value(json_object_get(upper, "group")), key,
               end && *end ? end : "+inf");
    }
    json_decref(upper);
    json_decref(nodes);
    return CMD_EXIT_OK;
}
