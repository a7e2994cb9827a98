/* Test switches, read once when a node opens (nd_test.h). */
#include "tablet/node/nd_test.h"

#include <stdlib.h>
#include <string.h>

#include "net/frame.h"
#include "tablet/paxos/px.h"
#include "tablet/paxos/px_msg.h"

static const struct {
    const char *name;
    nd_break bit;
} breaks[] = {
    {"stale-reads", ND_BREAK_STALE_READS},
    {"no-safe-wait", ND_BREAK_NO_SAFE_WAIT},
    {"no-read-locks", ND_BREAK_NO_READ_LOCKS},
    {"no-commit-wait", ND_BREAK_NO_COMMIT_WAIT},
    {"no-ts-floor", ND_BREAK_NO_TS_FLOOR},
};
#define NBREAKS (sizeof breaks / sizeof breaks[0])

static int parse_breaks(const char *v, unsigned *out, mr_err *err)
{
    *out = 0;
    while (v && *v) {
        const char *comma = strchr(v, ',');
        size_t len = comma ? (size_t)(comma - v) : strlen(v), k;
        for (k = 0; k < NBREAKS; k++)
            if (strlen(breaks[k].name) == len && memcmp(breaks[k].name, v, len) == 0)
                break;
        if (len && k == NBREAKS)
            return mr_errf(err, MR_EINVAL,
                           "MERIDIAN_TEST_BREAK: unknown switch '%.*s' (stale-reads, "
                           "no-safe-wait, no-read-locks, no-commit-wait, no-ts-floor)",
                           (int)(len > 64 ? 64 : len), v);
        if (len)
            *out |= breaks[k].bit;
        v = comma ? comma + 1 : NULL;
    }
    return MR_OK;
}

/* An optional byte count from the environment in [min, max). */
static int env_bytes(const char *name, uint64_t min, uint64_t max, uint64_t *out, mr_err *err)
{
    const char *v = getenv(name);
    *out = 0;
    if (!v || !*v)
        return MR_OK;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (*end || x < min || x >= max)
        return mr_errf(err, MR_EINVAL, "%s='%.32s' is not a count in [%llu, %llu)", name, v,
                       (unsigned long long)min, (unsigned long long)max);
    *out = x;
    return MR_OK;
}

int nd_test_switches_load(nd_test_switches *s, mr_err *err)
{
    memset(s, 0, sizeof *s);
    int rc = parse_breaks(getenv("MERIDIAN_TEST_BREAK"), &s->breaks, err);
    if (rc)
        return rc;
    const char *faults = getenv("MERIDIAN_TEST_FAULTS");
    s->faults = faults && strcmp(faults, "1") == 0;
    uint64_t v;
    if ((rc = env_bytes("MERIDIAN_TEST_SNAPSHOT_EVERY", 1, 1000001, &s->snapshot_every, err)) ||
        (rc = env_bytes("MERIDIAN_TEST_REPLY_MAX", 256, NET_FRAME_DEFAULT_MAX, &v, err)))
        return rc;
    s->reply_max = (uint32_t)v;
    if ((rc = env_bytes("MERIDIAN_TEST_PX_MSG_MAX", 4096, PX_MSG_DEFAULT_MAX_BYTES, &v, err)))
        return rc;
    s->px_msg_max = (uint32_t)v;
    const char *off = getenv("MERIDIAN_CLOCK_OFFSET");
    s->clock_offset = off && *off;
    const char *unh = getenv("MERIDIAN_CLOCK_UNHEALTHY");
    s->clock_unhealthy = unh && *unh && strcmp(unh, "0") != 0;
    return MR_OK;
}

size_t nd_test_switches_names(const nd_test_switches *s, const char **names, size_t cap)
{
    size_t n = 0;
#define ADD(cond, name)                                                                            \
    do {                                                                                           \
        if (cond) {                                                                                \
            if (n < cap)                                                                           \
                names[n] = (name);                                                                 \
            n++;                                                                                   \
        }                                                                                          \
    } while (0)
    for (size_t k = 0; k < NBREAKS; k++)
        ADD(s->breaks & breaks[k].bit, breaks[k].name);
    ADD(s->faults, "faults");
    ADD(s->snapshot_every, "snapshot-every");
    ADD(s->reply_max, "reply-max");
    ADD(s->px_msg_max, "px-msg-max");
    ADD(s->clock_offset, "clock-offset");
    ADD(s->clock_unhealthy, "clock-unhealthy");
#undef ADD
    return n;
}

json_t *nd_test_switches_json(const nd_test_switches *s)
{
    const char *names[16];
    size_t n = nd_test_switches_names(s, names, 16);
    json_t *a = json_array();
    for (size_t i = 0; a && i < n && i < 16; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}
