/* Test support: a scripted fake node. A thread runs a real transport (plain
 * TCP on loopback) answering each request from a test's script, and records
 * what it was sent. Links libmeridian's static library (its transport). */
#ifndef TEST_FAKE_NODE_H
#define TEST_FAKE_NODE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "net/transport.h"

typedef struct fake_node fake_node;
/* Returns the reply (the fake takes it) as its JSON view (tests/support/wire.h: {"ok": true,
 * ...body} or {"ok": false, "error": "<code>", ...}), or NULL to never answer. req is the
 * request's JSON mapping (NULL when it did not decode). Called on the fake's thread with its
 * mutex held. */
typedef json_t *(*fake_fn)(fake_node *f, uint8_t type, const json_t *req);

struct fake_node {
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t stop;
    net_transport *tr;
    char addr[32]; /* "127.0.0.1:port" once started */
    fake_fn fn;
    void *ud;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;
    json_t *log; /* [{type, req}] in arrival order */
};

/* Starts f (answering with fn; ud is the script's state) and waits until it listens. */
void fake_start(fake_node *f, fake_fn fn, void *ud);
/* Stops f and frees what it holds. */
void fake_stop(fake_node *f);
/* The requests of one type (and op, when given) the fake received: a new
 * reference to an array of request objects (their JSON mapping). */
json_t *fake_sent(fake_node *f, uint8_t type, const char *op);

#endif
