/* A scripted fake node (see fake_node.h). */
#include "tests/support/fake_node.h"

#include <stdlib.h>
#include <string.h>

#include "common/mr_err.h"
#include "proto/pr.h"
#include "tests/support/wire.h"

static void fake_on_message(net_transport *t, const net_message *m, void *ud)
{
    fake_node *f = ud;
    /* A request that does not decode is logged as null (and the script sees NULL). */
    json_t *req = tw_request_view(m->type, m->payload, m->len);
    pthread_mutex_lock(&f->mu);
    json_array_append_new(f->log, json_pack("{s:i, s:O?}", "type", m->type, "req", req));
    json_t *reply = f->fn(f, m->type, req);
    pthread_mutex_unlock(&f->mu);
    uint8_t *buf;
    size_t len;
    if (reply && m->reply_to.req_id && tw_reply(m->type, req, reply, &buf, &len) == 0) {
        mr_err err;
        net_transport_reply(t, m->reply_to, MERIDIAN__MSG_TYPE__MSG_REPLY, buf, (uint32_t)len,
                            &err);
        free(buf);
    }
    json_decref(reply);
    json_decref(req);
}

static void fake_closed(void *ud)
{
    (void)ud;
}

static void fake_on_stop(uv_async_t *a)
{
    fake_node *f = a->data;
    net_transport_close(f->tr, fake_closed, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void *fake_main(void *arg)
{
    fake_node *f = arg;
    uv_loop_init(&f->loop);
    uv_async_init(&f->loop, &f->stop, fake_on_stop);
    f->stop.data = f;
    net_transport_config cfg = {
        .loop = &f->loop, .listen = "127.0.0.1:0", .on_message = fake_on_message, .ud = f};
    mr_err err;
    int rc = net_transport_new(&cfg, &f->tr, &err);
    pthread_mutex_lock(&f->mu);
    if (rc == MR_OK)
        snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", net_transport_port(f->tr));
    f->ready = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    return NULL;
}

void fake_start(fake_node *f, fake_fn fn, void *ud)
{
    memset(f, 0, sizeof *f);
    f->fn = fn;
    f->ud = ud;
    f->log = json_array();
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    pthread_create(&f->thread, NULL, fake_main, f);
    pthread_mutex_lock(&f->mu);
    while (!f->ready)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

void fake_stop(fake_node *f)
{
    uv_async_send(&f->stop);
    pthread_join(f->thread, NULL);
    json_decref(f->log);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
}

json_t *fake_sent(fake_node *f, uint8_t type, const char *op)
{
    json_t *out = json_array();
    pthread_mutex_lock(&f->mu);
    size_t i;
    json_t *e;
    json_array_foreach(f->log, i, e)
    {
        json_t *req = json_object_get(e, "req");
        const char *o = json_string_value(json_object_get(req, "op"));
        if (json_integer_value(json_object_get(e, "type")) == type &&
            (!op || (o && strcmp(o, op) == 0)))
            json_array_append(out, req);
    }
    pthread_mutex_unlock(&f->mu);
    return out;
}
