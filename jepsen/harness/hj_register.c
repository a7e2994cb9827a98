/* The register workload: per-key linearizable registers, one per data group (key k = group
 * 2 + k), read / write (unique values) / compare-and-set over ND_MSG_REGISTER, routed to the
 * group's leader (following not_leader hints), judged by jepsen/linear.c.
 *
 * The node stores strings; the history model wants integers, so values travel as decimal
 * strings and are parsed back (anything else is recorded as read, and the checker rejects
 * it as a model violation rather than the harness hiding it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "jepsen/harness/hj_workload.h"
#include "jepsen/linear.h"
#include "net/transport.h"
#include "proto/pr_msg.h"
#include "tablet/node/nd.h"

enum { OP_READ, OP_WRITE, OP_CAS };
static const char *const op_f[] = {"read", "write", "cas"};

#define MAX_ATTEMPTS 5  /* per operation, following not_leader hints */
#define RETRY_MS     50 /* before retrying where no hint says where to go */
/* A register operation is one Paxos round: a healthy group answers in milliseconds, and a
 * new leader is in place about a lease (1 s) after the old one went quiet. Past this the
 * operation is info and the key's route moves on, so that clients find the majority
 * side of a partition while it lasts instead of waiting on a cut-off leader. */
#define OP_TIMEOUT_MS 2000

typedef struct reg_client reg_client;

typedef struct reg_worker {
    reg_client *rc;
    int64_t process;
    uv_timer_t timer;
    bool busy;
    bool retrying; /* an attempt was refused; the timer resends */
    int op, key, attempts;
    int target; /* node index of the attempt in flight */
    long long value, expected;
} reg_worker;

struct reg_client {
    hj_client_env env;
    net_tls_ctx *tls;
    net_transport *tr;
    reg_worker *w;
    json_t **keyj;   /* json_integer(k) per key; owned */
    int *route;      /* node index believed to lead key k's group */
    long long *last; /* last value observed per key (cas expectations), 0: none */
    long long next_value;
    hj_rng rng;
    bool stopping, closing, tr_closed;
    int inflight, handles_open;
    void (*on_done)(void *ud);
    void *ud;
};

static void schedule(reg_worker *w, bool first);
static void send_op(reg_worker *w);

static int64_t delay_ms(reg_client *rc)
{
    /* uniform in [0, 2 * C / R] seconds: C processes at about R ops/s in total */
    double mean_ms = 1000.0 * rc->env.concurrency / rc->env.rate;
    return hj_rng_range(&rc->rng, 0, (int64_t)(2 * mean_ms));
}

static void maybe_done(reg_client *rc)
{
    if (rc->handles_open == 0 && rc->tr_closed && rc->on_done) {
        void (*cb)(void *) = rc->on_done;
        rc->on_done = NULL;
        cb(rc->ud);
    }
}

static void on_tr_closed(void *ud)
{
    reg_client *rc = ud;
    rc->tr_closed = true;
    maybe_done(rc);
}

static void on_timer_closed(uv_handle_t *h)
{
    reg_worker *w = h->data;
    w->rc->handles_open--;
    maybe_done(w->rc);
}

static void close_all(reg_client *rc)
{
    if (rc->closing)
        return;
    rc->closing = true;
    for (int i = 0; i < rc->env.concurrency; i++)
        uv_close((uv_handle_t *)&rc->w[i].timer, on_timer_closed);
    net_transport_close(rc->tr, on_tr_closed, rc);
}

static void complete(reg_worker *w, jp_type type, json_t *value)
{
    reg_client *rc = w->rc;
    hj_record(rc->env.run, w->process, type, op_f[w->op], rc->keyj[w->key], value);
    if (type == JP_INFO)
        w->process += rc->env.concurrency; /* retired: a fresh id, as Jepsen does */
    w->busy = false;
    rc->inflight--;
    if (rc->stopping) {
        if (rc->inflight == 0)
            close_all(rc);
    } else {
        schedule(w, false);
    }
}

static int node_by_addr(const reg_client *rc, const char *addr)
{
    for (int i = 0; i < rc->env.cluster->n; i++)
        if (strcmp(rc->env.cluster->nodes[i].addr, addr) == 0)
            return i;
    return -1;
}

static json_t *value_json(const json_t *v)
{
    if (json_is_null(v) || !v)
        return json_null();
    const char *s = json_string_value(v);
    if (s && *s) {
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (!*end && errno == 0)
            return json_integer(x);
    }
    return json_deep_copy(v); /* not ours: let the checker reject it */
}

static json_t *cas_pair(const reg_worker *w)
{
    return json_pack("[I, I]", (json_int_t)w->expected, (json_int_t)w->value);
}

/* The value a failed operation records: what it tried to do. */
static json_t *fail_value(const reg_worker *w)
{
    return w->op == OP_CAS ? cas_pair(w) : w->op == OP_WRITE ? json_integer(w->value) : NULL;
}

static void on_retry(uv_timer_t *h)
{
    reg_worker *w = h->data;
    w->retrying = false;
    if (w->rc->stopping)
        complete(w, JP_FAIL, fail_value(w));
    else
        send_op(w);
}

static void on_reply(net_transport *t, int status, const mr_err *err, const net_message *resp,
                     void *ud)
{
    reg_worker *w = ud;
    reg_client *rc = w->rc;
    if (status != MR_OK) {
        /* Timed out or lost after sending: it may still apply. */
        MR_DEBUG("jepsen", "process %lld %s key %d: %s", (long long)w->process, op_f[w->op], w->key,
                 err ? mr_err_msg(err) : "?");
        /* The routed node did not answer: try another one next (unless another worker
         * already moved the route on). */
        int n = rc->env.cluster->n;
        if (n > 1 && rc->route[w->key] == w->target)
            rc->route[w->key] = (w->target + 1 + (int)hj_rng_below(&rc->rng, (uint64_t)n - 1)) % n;
        complete(w, JP_INFO, NULL);
        return;
    }
    pr_arena a;
    pr_arena_init(&a);
    mr_err derr;
    const Meridian__Reply *r = pr_reply_decode(&a, resp->payload, resp->len, &derr);
    if (!r || (!r->error && r->body_case != MERIDIAN__REPLY__BODY_REGISTER)) {
        pr_arena_free(&a);
        complete(w, JP_INFO, NULL);
        return;
    }
    if (!r->error) {
        const Meridian__RegisterReply *reg = r->register_;
        if (w->op == OP_READ) {
            json_t *raw = reg->has_value
                              ? json_stringn((const char *)reg->value.data, reg->value.len)
                              : json_null();
            json_t *v = value_json(raw);
            json_decref(raw);
            if (json_is_integer(v))
                rc->last[w->key] = json_integer_value(v);
            complete(w, JP_OK, v);
        } else if (w->op == OP_WRITE) {
            rc->last[w->key] = w->value;
            complete(w, JP_OK, json_integer(w->value));
        } else if (reg->has_cas && reg->cas) {
            rc->last[w->key] = w->value;
            complete(w, JP_OK, cas_pair(w));
        } else {
            complete(w, JP_FAIL, cas_pair(w)); /* applied, but the expectation did not hold */
        }
        pr_arena_free(&a);
        return;
    }
    Meridian__ErrorCode e = r->error->code;
    if (e == MERIDIAN__ERROR_CODE__NOT_LEADER || e == MERIDIAN__ERROR_CODE__NO_GROUP) {
        /* Refused before proposing: certainly not applied, so the same operation may try
         * again: at the hinted leader at once, else at another node after a short wait. */
        const char *hint = r->error->leader;
        int prev = rc->route[w->key];
        int l = hint && *hint ? node_by_addr(rc, hint) : -1;
        bool hinted = l >= 0 && l != prev;
        if (l < 0 && rc->env.cluster->n > 1)
            l = (prev + 1 + (int)hj_rng_below(&rc->rng, (uint64_t)rc->env.cluster->n - 1)) %
                rc->env.cluster->n;
        rc->route[w->key] = l < 0 ? 0 : l;
        pr_arena_free(&a); /* hint pointed into it */
        if (++w->attempts >= MAX_ATTEMPTS || rc->stopping) {
            complete(w, JP_FAIL, fail_value(w));
        } else if (hinted) {
            send_op(w);
        } else {
            w->retrying = true;
            uv_timer_start(&w->timer, on_retry, RETRY_MS, 0);
        }
        return;
    }
    /* Refusals that come before any proposal (nd_chain_on_register / nd_propose_op: invalid,
     * not initialized, the proposal queue full); anything else (unavailable: timeout or
     * shutdown, no memory after queuing, voided, unknown) may have applied. */
    bool definite = e == MERIDIAN__ERROR_CODE__INVALID ||
                    e == MERIDIAN__ERROR_CODE__NOT_INITIALIZED || e == MERIDIAN__ERROR_CODE__BUSY;
    MR_DEBUG("jepsen", "process %lld %s key %d: error %s", (long long)w->process, op_f[w->op],
             w->key, pr_error_name(e));
    pr_arena_free(&a);
    if (definite)
        complete(w, JP_FAIL, fail_value(w));
    else
        complete(w, JP_INFO, NULL);
}

static void send_op(reg_worker *w)
{
    reg_client *rc = w->rc;
    int target = rc->route[w->key];
    if (w->op == OP_READ && rc->env.reads_anywhere)
        target = (int)hj_rng_below(&rc->rng, (uint64_t)rc->env.cluster->n);
    w->target = target;
    Meridian__RegisterRequest req = MERIDIAN__REGISTER_REQUEST__INIT;
    req.group = (uint64_t)(2 + w->key);
    char value[24], expected[24];
    snprintf(value, sizeof value, "%lld", w->value);
    snprintf(expected, sizeof expected, "%lld", w->expected);
    req.op = w->op == OP_READ    ? MERIDIAN__REGISTER_REQUEST__OP__READ
             : w->op == OP_WRITE ? MERIDIAN__REGISTER_REQUEST__OP__WRITE
                                 : MERIDIAN__REGISTER_REQUEST__OP__CAS;
    if (w->op != OP_READ) {
        req.has_value = true;
        req.value = (ProtobufCBinaryData){.len = strlen(value), .data = (uint8_t *)value};
    }
    if (w->op == OP_CAS) {
        req.has_expected = true;
        req.expected = (ProtobufCBinaryData){.len = strlen(expected), .data = (uint8_t *)expected};
    }
    mr_err err;
    uint8_t *buf;
    size_t len;
    if (pr_encode(&req.base, 0, &buf, &len, &err) != MR_OK) {
        complete(w, JP_FAIL, fail_value(w));
        return;
    }
    int src = net_transport_request(
        rc->tr, rc->env.cluster->nodes[target].addr, ND_MSG_REGISTER, buf, (uint32_t)len,
        rc->env.op_timeout_ms < OP_TIMEOUT_MS ? rc->env.op_timeout_ms : OP_TIMEOUT_MS, on_reply, w,
        NULL, &err);
    free(buf);
    if (src != MR_OK) {
        /* Refused by our own transport (queue full): never sent. */
        MR_DEBUG("jepsen", "request not sent: %s", mr_err_msg(&err));
        complete(w, JP_FAIL, fail_value(w));
    }
}

static void on_timer(uv_timer_t *h)
{
    reg_worker *w = h->data;
    reg_client *rc = w->rc;
    if (rc->stopping || w->busy)
        return;
    w->busy = true;
    rc->inflight++;
    w->attempts = 0;
    w->key = (int)hj_rng_below(&rc->rng, (uint64_t)rc->env.keys);
    w->op = (int)hj_rng_below(&rc->rng, 3);
    json_t *v = NULL;
    if (w->op == OP_WRITE) {
        w->value = rc->next_value++;
        v = json_integer(w->value);
    } else if (w->op == OP_CAS) {
        w->value = rc->next_value++;
        /* Mostly the last value seen, so that some succeed; else any earlier value. */
        long long last = rc->last[w->key];
        w->expected = last && hj_rng_below(&rc->rng, 4) != 0
                          ? last
                          : 1 + (long long)hj_rng_below(&rc->rng, (uint64_t)w->value);
        v = cas_pair(w);
    }
    hj_record(rc->env.run, w->process, JP_INVOKE, op_f[w->op], rc->keyj[w->key], v);
    send_op(w);
}

static void schedule(reg_worker *w, bool first)
{
    reg_client *rc = w->rc;
    uv_timer_start(&w->timer, on_timer, (uint64_t)delay_ms(rc) / (first ? 2 : 1), 0);
}

static void reg_free(void *state)
{
    reg_client *rc = state;
    if (!rc)
        return;
    if (rc->keyj)
        for (int k = 0; k < rc->env.keys; k++)
            json_decref(rc->keyj[k]);
    free(rc->keyj);
    free(rc->route);
    free(rc->last);
    free(rc->w);
    if (rc->tls)
        net_tls_ctx_free(rc->tls);
    free(rc);
}

static int reg_start(const hj_client_env *env, void **state, mr_err *err)
{
    reg_client *rc = calloc(1, sizeof *rc);
    if (!rc)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    rc->env = *env;
    rc->rng.s = env->seed;
    rc->next_value = 1;
    rc->w = calloc((size_t)env->concurrency, sizeof *rc->w);
    rc->keyj = calloc((size_t)env->keys, sizeof *rc->keyj);
    rc->route = calloc((size_t)env->keys, sizeof *rc->route);
    rc->last = calloc((size_t)env->keys, sizeof *rc->last);
    if (!rc->w || !rc->keyj || !rc->route || !rc->last) {
        reg_free(rc);
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    for (int k = 0; k < env->keys; k++) {
        rc->keyj[k] = json_integer(k);
        int l = env->leader[2 + k];
        rc->route[k] = l >= 0 ? l : 0;
    }
    int rc2 = net_tls_ctx_load_dir(env->cluster->certs, "client.root", &rc->tls, err);
    if (rc2 == MR_OK) {
        net_transport_config tc = {.loop = env->loop, .tls = rc->tls};
        rc2 = net_transport_new(&tc, &rc->tr, err);
    }
    if (rc2 != MR_OK) {
        reg_free(rc);
        return rc2;
    }
    for (int i = 0; i < env->concurrency; i++) {
        reg_worker *w = &rc->w[i];
        w->rc = rc;
        w->process = i;
        uv_timer_init(env->loop, &w->timer);
        w->timer.data = w;
        rc->handles_open++;
        schedule(w, true);
    }
    *state = rc;
    return MR_OK;
}

static void reg_stop(void *state, void (*on_done)(void *ud), void *ud)
{
    reg_client *rc = state;
    if (rc->stopping)
        return;
    rc->stopping = true;
    rc->on_done = on_done;
    rc->ud = ud;
    for (int i = 0; i < rc->env.concurrency; i++) {
        reg_worker *w = &rc->w[i];
        uv_timer_stop(&w->timer);
        if (w->retrying) { /* its last attempt was refused: it did not happen */
            w->retrying = false;
            complete(w, JP_FAIL, fail_value(w));
        }
    }
    if (rc->inflight == 0)
        close_all(rc);
}

static int reg_check(const jp_history *h, jp_result *r, mr_err *err)
{
    return jp_check_register(h, NULL, r, err);
}

/* Register k lives in group 2 + k. */
static uint64_t reg_op_groups(const jp_op *invoke, int ranges)
{
    json_int_t k = json_integer_value(invoke->key);
    return json_is_integer(invoke->key) && k >= 0 && k < ranges ? hj_key_group(k, ranges) : 0;
}

const hj_workload hj_register_workload = {
    .name = "register",
    .model = "register",
    .start = reg_start,
    .stop = reg_stop,
    .free_state = reg_free,
    .check = reg_check,
    .op_groups = reg_op_groups,
};

uint64_t hj_key_group(long long id, int ranges)
{
    if (ranges < 1)
        ranges = 1;
    long long g = 2 + (id % ranges + ranges) % ranges;
    return g < 64 ? 1ull << g : 0;
}

const hj_workload *hj_workload_find(const char *name)
{
    static const hj_workload *const all[] = {
        &hj_register_workload,
#ifdef HJ_HAVE_LIBMERIDIAN
        &hj_bank_workload,     &hj_append_workload,
        &hj_set_workload,
#endif
#ifdef HJ_HAVE_SQL
        &hj_sqlbank_workload,  &hj_sqlbank_autocommit_workload,
#endif
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, all[i]->name) == 0)
            return all[i];
    return NULL;
}
