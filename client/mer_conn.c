/* A connection: a private libuv loop, a dial-only transport (one persistent,
 * TLS-authenticated connection per node), the range map, and the engine that
 * sends batches of routed requests in parallel and runs the loop until every
 * one has its final answer. Routing decisions (which replica next, how long
 * to wait) live in judge(); the range map itself is pure (mer_route.c). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "client/mer_int.h"
#include "common/mr_log.h"
#include "common/mr_util.h"

/* A node that failed to answer is skipped for this long. */
#define MER_DOWN_NS (1000 * MR_NS_PER_MS)
/* A node with requests out that sends nothing for this long is pinged, and its
 * connection closed after as long again (net/transport.h, answer_ms): a leader
 * that stopped (SIGSTOP, a hung host) costs its requests about a second, not
 * their whole timeout, and they move on (a commit to the status question at
 * the coordinator group's next leader). A live node answers the ping however
 * long the request takes. */
#define MER_ANSWER_MS 500
/* After a full round over a group's replicas without a leader, the next round waits 20 ms
 * doubling up to this (with jitter): a new leader is elected about a lease after the old one
 * died, and a call polling at 500 ms found it up to half a second late (issue 19: one
 * group's commits resumed a second after its election). A round is a few cheap refusals. */
#define MER_ROUND_CAP_MS 200
/* Connections silent for longer than this are replaced before use: the nodes
 * close connections idle for 10 s, and a request written into one the node
 * is closing would be lost (see net/transport.h, idle_ms). */
#define MER_RECYCLE_NS (4000 * MR_NS_PER_MS)

enum { CALL_IDLE = 0, CALL_INFLIGHT, CALL_JUDGE, CALL_DONE };

uint64_t mer_rand(meridian *db)
{
    /* xorshift64*: jitter and replica rotation, not security. */
    uint64_t x = db->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    db->rng = x;
    return x * 2685821657736338717ull;
}

/* A call starts zeroed by its maker; its arena is set up when first used. */
static void call_arena(mer_call *c)
{
    if (!c->arena.allocator.alloc)
        pr_arena_init(&c->arena);
}

void mer_call_reset(mer_call *c)
{
    c->reply = NULL;
    call_arena(c);
    pr_arena_reset(&c->arena);
    c->rc = MR_OK;
    c->addr[0] = c->why[0] = c->next[0] = '\0';
    c->state = CALL_IDLE;
    c->probing = false;
    c->attempts = c->hops = 0;
    c->cand = 0;
    c->retry_at = 0;
}

int mer_call_set_request(mer_call *c, const ProtobufCMessage *m)
{
    call_arena(c);
    free(c->req);
    c->req = NULL;
    c->req_len = 0;
    mr_err err;
    return pr_encode(m, 0, &c->req, &c->req_len, &err);
}

void mer_call_free(mer_call *c)
{
    free(c->req);
    c->req = NULL;
    c->reply = NULL;
    if (c->arena.allocator.alloc)
        pr_arena_free(&c->arena);
}

/* ---- the transport ---- */

static void on_transport_closed(void *ud)
{
    *(bool *)ud = true;
}

static void transport_close(meridian *db)
{
    if (!db->tr)
        return;
    bool closed = false;
    net_transport_close(db->tr, on_transport_closed, &closed);
    db->tr = NULL;
    while (!closed && uv_run(&db->loop, UV_RUN_ONCE)) {
    }
}

/* A one-way message from a node: a TxnNotice (mer_txn_wounded); anything else is ignored. */
static void on_notice(net_transport *tr, const net_message *m, void *ud)
{
    (void)tr;
    meridian *db = ud;
    if (m->type != MERIDIAN__MSG_TYPE__MSG_TXN_NOTICE || !m->peer_is_node)
        return;
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    const Meridian__TxnNotice *no = (const Meridian__TxnNotice *)pr_decode(
        &meridian__txn_notice__descriptor, &a, m->payload, m->len, &err);
    if (no && no->has_txn)
        mer_txn_wounded(db, no->txn, no->has_group ? no->group : 0, no->message ? no->message : "");
    pr_arena_free(&a);
}

static int transport_open(meridian *db, mr_err *err)
{
    net_transport_config cfg = {
        .loop = &db->loop,
        .tls = db->tls,
        .open_timeout_ms = (uint64_t)db->timeout_ms,
        .answer_ms = MER_ANSWER_MS,
        .fail_unreachable = 1, /* a node that refuses the dial: ask another at once */
        .backoff_min_ms = 20,
        .backoff_max_ms = 500, /* a restarted node is found again quickly */
        .seed = mer_rand(db),
        .on_message = on_notice,
        .ud = db,
    };
    db->tr_gen++;
    return net_transport_new(&cfg, &db->tr, err);
}

/* Replaces connections that sat idle long enough for the nodes to drop them. */
static int transport_freshen(meridian *db)
{
    int64_t now = mr_monotonic_ns();
    if (db->tr && db->last_io && now - db->last_io < MER_RECYCLE_NS)
        return MR_OK;
    transport_close(db);
    mr_err err;
    mr_err_clear(&err);
    int rc = transport_open(db, &err);
    if (rc != MR_OK)
        mer_fail(db, mer_code_of_mr(rc), "transport: %s", mr_err_msg(&err));
    return rc;
}

/* ---- one attempt ---- */

static void on_response(net_transport *t, int status, const mr_err *err, const net_message *resp,
                        void *ud)
{
    mer_call *c = ud;
    c->state = CALL_JUDGE;
    c->rc = status;
    c->reply = NULL;
    pr_arena_reset(&c->arena);
    if (status != MR_OK) {
        snprintf(c->why, sizeof c->why, "%s", err ? mr_err_msg(err) : mr_strerror(status));
        return;
    }
    mr_err derr;
    c->reply = pr_reply_decode(&c->arena, resp->payload, resp->len, &derr);
    if (!c->reply) {
        c->rc = derr.code == MR_ENOMEM ? MR_ENOMEM : MR_EPROTO;
        snprintf(c->why, sizeof c->why, "%s sent a reply that does not decode: %s", c->addr,
                 mr_err_msg(&derr));
    }
}

/* Every node the connection knows, then the seed addresses: where a request
 * that any node can answer (the range map) goes. */
static size_t anynode_candidates(meridian *db, int64_t now, const char **out, size_t cap,
                                 char *seeds)
{
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < db->map.nnodes && n < cap; i++)
            if ((db->map.nodes[i].down_until > now) == (pass == 1))
                out[n++] = db->map.nodes[i].addr;
    for (char *save = NULL, *a = strtok_r(seeds, ", ", &save); a && n < cap;
         a = strtok_r(NULL, ", ", &save)) {
        bool known = false;
        for (size_t i = 0; i < n; i++)
            known |= strcmp(out[i], a) == 0;
        if (!known)
            out[n++] = a;
    }
    return n;
}

/* The address the next attempt goes to ("" if the group is unknown). */
static void choose_addr(meridian *db, mer_call *c, int64_t now, size_t *ncand)
{
    const char *cand[64];
    char seeds[1024];
    snprintf(seeds, sizeof seeds, "%s", db->addrs);
    size_t n = c->flags & MER_CALL_ANYNODE
                   ? anynode_candidates(db, now, cand, 64, seeds)
                   : mer_rmap_candidates(&db->map, c->group, c->flags & MER_CALL_LEADER, c->rot,
                                         now, cand, 64);
    *ncand = n;
    if (c->next[0]) {
        snprintf(c->addr, sizeof c->addr, "%s", c->next);
        c->next[0] = '\0';
    } else if (n) {
        snprintf(c->addr, sizeof c->addr, "%s", cand[c->cand % n]);
    } else {
        c->addr[0] = '\0';
    }
}

static void issue(meridian *db, mer_call *c, int64_t now, int64_t deadline)
{
    size_t ncand;
    choose_addr(db, c, now, &ncand);
    c->ncand = ncand;
    c->attempts++;
    if (!c->addr[0]) {
        c->state = CALL_JUDGE;
        c->rc = MR_EUNAVAIL;
        snprintf(c->why, sizeof c->why, "group %llu is not in the range map",
                 (unsigned long long)c->group);
        return;
    }
    /* A request that must not be sent twice never waits in the transport's
     * queue for a node that may be gone (a dial refused leaves it queued
     * until its timeout): a node not heard from on this transport is probed
     * first with a harmless request; only its answer lets the real one go. */
    const mer_node *node = mer_rmap_node_at(&db->map, c->addr, false);
    c->probing = !(c->flags & MER_CALL_RESEND) && (!node || node->proven != db->tr_gen);
    /* (a probe is a RANGES request: an Empty message, no bytes) */
    const uint8_t *payload = c->probing ? (const uint8_t *)"" : c->req;
    uint32_t plen = c->probing ? 0 : (uint32_t)c->req_len;
    uint8_t type = c->probing ? MERIDIAN__MSG_TYPE__MSG_RANGES : c->type;
    /* Requests safe to resend get a slice of the budget, so one dead node
     * does not eat all of it; the others wait as long as the call may. */
    int64_t left = (deadline - now) / MR_NS_PER_MS;
    int64_t slice = db->timeout_ms / 4 > 250 ? db->timeout_ms / 4 : 250;
    if ((c->flags & MER_CALL_RESEND || c->probing) && slice < left)
        left = slice;
    if (left < 1)
        left = 1;
    mr_err err;
    mr_err_clear(&err);
    int rc = payload ? net_transport_request(db->tr, c->addr, type, payload, plen, (uint64_t)left,
                                             on_response, c, NULL, &err)
                     : mr_errf(&err, MR_ENOMEM, "out of memory");
    MR_DEBUG("client", "request group=%llu addr=%s op=%s txn=%llu rc=%d",
             (unsigned long long)c->group, c->addr,
             c->probing ? "probe"
             : c->op    ? c->op
                        : "-",
             (unsigned long long)c->txn, rc);
    if (rc == MR_OK) {
        c->state = CALL_INFLIGHT;
    } else {
        c->state = CALL_JUDGE;
        c->rc = rc;
        snprintf(c->why, sizeof c->why, "%s: %s", c->addr, mr_err_msg(&err));
    }
}

/* ---- judging an answer ---- */

static void finish(mer_call *c)
{
    c->state = CALL_DONE;
}

/* Moves on to the next candidate; after a full round, waits a little
 * (growing) so a leader election can finish. */
static void advance(meridian *db, mer_call *c, int64_t now)
{
    c->cand++;
    c->state = CALL_IDLE;
    c->retry_at = now;
    size_t n = c->ncand ? c->ncand : 1;
    if (c->cand % n == 0) {
        unsigned round = (unsigned)(c->cand / n);
        c->retry_at =
            now + mer_backoff_ms(round - 1, 20, MER_ROUND_CAP_MS, mer_rand(db)) * MR_NS_PER_MS;
    }
}

static bool is_error(const mer_call *c, Meridian__ErrorCode code)
{
    return mer_call_error(c, code);
}

/* A probe's answer (any answer) proves the node reachable: the real request
 * goes to it next; no answer sends the real request elsewhere, unsent. */
static void judge_probe(meridian *db, mer_call *c, int64_t now)
{
    c->probing = false;
    c->reply = NULL;
    pr_arena_reset(&c->arena);
    if (c->rc == MR_OK) {
        mer_node *node = mer_rmap_node_at(&db->map, c->addr, true);
        if (node) {
            node->proven = db->tr_gen;
            node->failed = false;
        }
        snprintf(c->next, sizeof c->next, "%s", c->addr);
        c->state = CALL_IDLE;
        c->retry_at = now;
        c->attempts--; /* the probe was no attempt of the request */
        return;
    }
    mer_rmap_mark_down(&db->map, c->addr, now + MER_DOWN_NS);
    mer_group *g = mer_rmap_group(&db->map, c->group);
    if (g && strcmp(g->leader, c->addr) == 0)
        mer_rmap_set_leader(&db->map, c->group, "");
    c->rc = MR_OK;
    advance(db, c, now);
}

static void judge(meridian *db, mer_call *c, int64_t now)
{
    if (c->probing)
        return judge_probe(db, c, now);
    MR_DEBUG("client", "answer group=%llu addr=%s op=%s txn=%llu rc=%d error=%s",
             (unsigned long long)c->group, c->addr, c->op ? c->op : "-", (unsigned long long)c->txn,
             c->rc, c->reply && c->reply->error ? pr_error_name(c->reply->error->code) : "-");
    if (c->rc != MR_OK) {
        if (c->rc == MR_ETIMEDOUT || c->rc == MR_EUNAVAIL)
            mer_rmap_mark_down(&db->map, c->addr, now + MER_DOWN_NS);
        mer_group *g = mer_rmap_group(&db->map, c->group);
        if (g && strcmp(g->leader, c->addr) == 0)
            mer_rmap_set_leader(&db->map, c->group, "");
        if (c->flags & MER_CALL_RESEND)
            advance(db, c, now);
        else
            finish(c);
        return;
    }
    mer_node *answered = mer_rmap_node_at(&db->map, c->addr, true);
    if (answered) {
        answered->proven = db->tr_gen;
        answered->failed = false;
    }
    if (!c->reply->error) {
        /* Whoever answers a leader's request is the leader. */
        if (c->flags & MER_CALL_LEADER)
            mer_rmap_set_leader(&db->map, c->group, c->addr);
        return finish(c);
    }
    const char *msg = pr_reply_message(c->reply);
    snprintf(c->why, sizeof c->why, "%s: %s: %s", c->addr, pr_error_name(c->reply->error->code),
             msg);
    if (is_error(c, MERIDIAN__ERROR_CODE__NOT_LEADER)) {
        const char *hint = c->reply->error->leader;
        /* A hint naming a node that failed us and has not answered since is a
         * stale one (the replica has not noticed the leader's death yet: an
         * election takes about a lease, longer than a node stays marked down,
         * and following it sent status questions to a dead node for a quarter
         * of the timeout; issue 19): look elsewhere. */
        const mer_node *hn = hint && *hint ? mer_rmap_node_at(&db->map, hint, false) : NULL;
        bool hint_down = hn && (hn->down_until > now || hn->failed);
        if (hint && *hint && !hint_down && strcmp(hint, c->addr) != 0 &&
            c->hops < 2 * c->ncand + 2) {
            mer_rmap_set_leader(&db->map, c->group, hint);
            snprintf(c->next, sizeof c->next, "%s", hint);
            c->hops++;
            c->state = CALL_IDLE;
            c->retry_at = now;
            return;
        }
        mer_group *g = mer_rmap_group(&db->map, c->group);
        if (g && strcmp(g->leader, c->addr) == 0)
            mer_rmap_set_leader(&db->map, c->group, "");
        return advance(db, c, now);
    }
    /* A new leader that has not applied its predecessors' log yet refuses
     * before looking at the transaction: safe to ask again shortly. */
    if (is_error(c, MERIDIAN__ERROR_CODE__ABORTED) && strstr(msg, "still applying")) {
        c->state = CALL_IDLE;
        c->retry_at = now + 20 * MR_NS_PER_MS;
        return;
    }
    /* An abort (or status) behind a read the leader still holds parked (its
     * client gave up waiting): ask again once that read is through, or the
     * locks would stay until the node expires the transaction. */
    if (is_error(c, MERIDIAN__ERROR_CODE__BUSY) && (c->flags & MER_CALL_RESEND)) {
        c->state = CALL_IDLE;
        c->retry_at = now + mer_backoff_ms(c->attempts, 20, 500, mer_rand(db)) * MR_NS_PER_MS;
        return;
    }
    bool behind = is_error(c, MERIDIAN__ERROR_CODE__BEHIND) && (c->flags & MER_CALL_BEHIND);
    bool elsewhere = is_error(c, MERIDIAN__ERROR_CODE__NO_GROUP) ||
                     is_error(c, MERIDIAN__ERROR_CODE__NOT_INITIALIZED) ||
                     is_error(c, MERIDIAN__ERROR_CODE__UNAVAILABLE);
    if (behind || elsewhere) {
        /* max_rounds bounds how often every replica is asked (bounded
         * staleness asks each once, then reports the read as stale). */
        if (c->max_rounds && (c->cand + 1) >= c->max_rounds * (c->ncand ? c->ncand : 1))
            return finish(c);
        return advance(db, c, now);
    }
    finish(c);
}

/* ---- the batch ---- */

static void on_wake(uv_timer_t *t)
{
    (void)t; /* only ends uv_run(UV_RUN_ONCE) */
}

void mer_calls_run(meridian *db, mer_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mer_call_reset(&calls[i]);
    }
    if (transport_freshen(db) != MR_OK) {
        for (size_t i = 0; i < n; i++) {
            calls[i].rc = MR_EUNAVAIL;
            snprintf(calls[i].why, sizeof calls[i].why, "%.400s", db->errmsg);
            calls[i].state = CALL_DONE;
        }
        return;
    }
    int64_t deadline = mr_monotonic_ns() + db->timeout_ms * MR_NS_PER_MS;
    for (;;) {
        int64_t now = mr_monotonic_ns(), wake_at = INT64_MAX;
        bool pending = false, rejudge = false;
        for (size_t i = 0; i < n; i++) {
            mer_call *c = &calls[i];
            if (c->state == CALL_JUDGE)
                judge(db, c, now);
            if (c->state == CALL_IDLE && now >= deadline) {
                /* Out of time: the last answer stands (or the last failure). */
                if (!c->reply && c->rc == MR_OK)
                    c->rc = MR_EUNAVAIL;
                finish(c);
            } else if (c->state == CALL_IDLE && c->retry_at <= now) {
                issue(db, c, now, deadline);
                rejudge |= c->state == CALL_JUDGE;
            } else if (c->state == CALL_IDLE && c->retry_at < wake_at) {
                wake_at = c->retry_at;
            }
            pending |= c->state != CALL_DONE;
        }
        if (!pending)
            break;
        if (rejudge)
            continue;
        if (wake_at != INT64_MAX) {
            if (wake_at > deadline)
                wake_at = deadline;
            int64_t ms = (wake_at - now + MR_NS_PER_MS - 1) / MR_NS_PER_MS;
            uv_timer_start(&db->wake, on_wake, (uint64_t)(ms > 0 ? ms : 0), 0);
        }
        uv_run(&db->loop, UV_RUN_ONCE);
        uv_timer_stop(&db->wake);
    }
    db->last_io = mr_monotonic_ns();
}

/* ---- the range map ---- */

int mer_refresh_map(meridian *db)
{
    mer_call c = {.type = MERIDIAN__MSG_TYPE__MSG_RANGES,
                  .flags = MER_CALL_ANYNODE | MER_CALL_RESEND,
                  .op = "ranges"};
    Meridian__Empty empty = MERIDIAN__EMPTY__INIT;
    if (mer_call_set_request(&c, &empty.base) != MR_OK)
        return mer_fail(db, MERIDIAN_NOMEM, "out of memory");
    c.rot = (unsigned)mer_rand(db);
    mer_calls_run(db, &c, 1);
    int rc = MERIDIAN_OK;
    mr_err err;
    mr_err_clear(&err);
    mer_rmap m;
    if (c.rc != MR_OK) {
        rc = mer_fail(db, MERIDIAN_UNAVAILABLE, "range map: no node answered: %s", c.why);
    } else if (c.reply->body_case == MERIDIAN__REPLY__BODY_RANGES) {
        if (mer_rmap_from_reply(&m, c.reply->ranges, &err) == MR_OK)
            mer_rmap_replace(&db->map, &m);
        else
            rc = mer_fail(db, MERIDIAN_ERROR, "%s: %s", c.addr, mr_err_msg(&err));
    } else if (!c.reply->error) {
        rc = mer_fail(db, MERIDIAN_ERROR, "%s: a range map request answered without a map", c.addr);
    } else {
        rc = mer_fail(db, mer_code_of_error(c.reply->error->code), "range map: %s", c.why);
        if (rc == MERIDIAN_INVALID || rc == MERIDIAN_ERROR)
            rc = MERIDIAN_UNAVAILABLE;
    }
    mer_call_free(&c);
    return rc;
}

/* ---- open and close ---- */

static int load_tls(meridian *db, const char *dir, const char *user)
{
    /* `meridian cert create-client --user U` makes client.U.*; without a
     * user, client.root.* or else a plain client.crt/client.key pair. */
    char path[4096], named[256];
    const char *name = "client.root";
    if (user && *user) {
        if (strchr(user, '/'))
            return mer_fail(db, MERIDIAN_INVALID, "options: user '%s' contains '/'", user);
        snprintf(named, sizeof named, "client.%s", user);
        name = named;
    } else {
        snprintf(path, sizeof path, "%s/client.root.crt", dir);
        if (access(path, R_OK) != 0)
            name = "client";
    }
    mr_err err;
    mr_err_clear(&err);
    if (net_tls_ctx_load_dir(dir, name, &db->tls, &err) != MR_OK)
        return mer_fail(db, MERIDIAN_INVALID, "certificates in %s: %s", dir, mr_err_msg(&err));
    return MERIDIAN_OK;
}

/* A library keeps quiet: the transport's notes on connections come to
 * stderr only when asked for (MERIDIAN_LOG=info or debug). And a node that
 * dies mid-write must be an error of the call, not the end of the process:
 * the transport writes with write(2), which raises SIGPIPE on a closed
 * socket, so SIGPIPE is ignored unless the application chose a handler of
 * its own (include/meridian.h says so). */
static void process_setup(void)
{
    if (!getenv("MERIDIAN_LOG"))
        mr_log_set_level(MR_LOG_WARN);
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL &&
        !(old.sa_flags & SA_SIGINFO)) {
        struct sigaction ign = {.sa_handler = SIG_IGN};
        sigemptyset(&ign.sa_mask);
        sigaction(SIGPIPE, &ign, NULL);
    }
}

int meridian_open(const meridian_options *opts, meridian **out)
{
    if (!out)
        return MERIDIAN_INVALID;
    *out = NULL;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, process_setup);
    meridian *db = calloc(1, sizeof *db);
    if (!db)
        return MERIDIAN_NOMEM;
    *out = db;
    if (getrandom(&db->rng, sizeof db->rng, 0) != (ssize_t)sizeof db->rng || db->rng == 0)
        db->rng = (uint64_t)mr_monotonic_ns() | 1;
    if (uv_loop_init(&db->loop) != 0) {
        db->errmsg[0] = '\0';
        free(db);
        *out = NULL;
        return MERIDIAN_ERROR;
    }
    uv_timer_init(&db->loop, &db->wake);
    db->loop_ready = true;
    if (!opts)
        return mer_fail(db, MERIDIAN_INVALID, "no options");
    if (!opts->addrs || !*opts->addrs)
        return mer_fail(db, MERIDIAN_INVALID, "options: addrs is empty");
    if (opts->timeout_ms < 0)
        return mer_fail(db, MERIDIAN_INVALID, "options: timeout_ms is negative");
    db->timeout_ms = opts->timeout_ms ? opts->timeout_ms : 10000;
    db->strong_any = opts->strong_any_replica != 0;
    /* Test-only (the consistency harness's --lose-commit-answers): a lost commit answer is
     * rare on a healthy cluster, and resolving one with op status must tell the truth. */
    const char *lose = getenv("MERIDIAN_TEST_LOSE_COMMIT_ANSWERS");
    if (lose && *lose) {
        long long pct;
        if (mr_parse_int(lose, 0, 100, &pct) != 0)
            return mer_fail(db, MERIDIAN_INVALID,
                            "MERIDIAN_TEST_LOSE_COMMIT_ANSWERS: '%s' is not a percentage 0-100",
                            lose);
        db->lose_commit_pct = (unsigned)pct;
        static atomic_bool warned;
        if (pct && !atomic_exchange(&warned, true))
            MR_WARN("client",
                    "TEST SWITCH ON: MERIDIAN_TEST_LOSE_COMMIT_ANSWERS=%lld: commit "
                    "answers dropped and learned from status (for tests only)",
                    pct);
    }
    if (!(db->addrs = strdup(opts->addrs)))
        return mer_fail(db, MERIDIAN_NOMEM, "out of memory");
    if (!opts->insecure) {
        if (!opts->certs_dir || !*opts->certs_dir)
            return mer_fail(db, MERIDIAN_INVALID, "options: give certs_dir, or set insecure");
        int rc = load_tls(db, opts->certs_dir, opts->user);
        if (rc != MERIDIAN_OK)
            return rc;
    }
    mr_err err;
    mr_err_clear(&err);
    if (mer_seeds_check(db->addrs, &err) != MR_OK)
        return mer_fail(db, MERIDIAN_INVALID, "options: addrs: %s", mr_err_msg(&err));
    int rc = mer_refresh_map(db);
    if (rc == MERIDIAN_OK)
        mer_clear(db);
    return rc;
}

static void on_wake_closed(uv_handle_t *h)
{
    (void)h;
}

void meridian_close(meridian *db)
{
    if (!db)
        return;
    if (db->loop_ready) {
        transport_close(db);
        uv_close((uv_handle_t *)&db->wake, on_wake_closed);
        uv_run(&db->loop, UV_RUN_DEFAULT);
        uv_loop_close(&db->loop);
    }
    net_tls_ctx_free(db->tls);
    mer_rmap_free(&db->map);
    free(db->addrs);
    free(db);
}
