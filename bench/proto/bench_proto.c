/* Codec cost on the hot path: a commit request of W writes (the request every
 * read-write transaction sends) and a scan reply of R rows, encoded and
 * decoded with jansson (the JSON messages the node spoke before proto/),
 * protobuf-c with the schema of proto/meridian.proto (with the default
 * allocator, and with proto/pr.h's arena that a request's decode borrows
 * from) and a hand-written codec over net/buf.h. Prints ns per encode+decode. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/buf.h"
#include "proto/pr.h"

#define W    10
#define KLEN 16
#define VLEN 100
#define R    100

static uint8_t keys[R][KLEN], vals[R][VLEN];
static volatile uint64_t sink;

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* ---- jansson ---- */

static size_t json_commit(char *out, size_t cap)
{
    json_t *ws = json_array();
    for (int i = 0; i < W; i++)
        json_array_append_new(ws, json_pack("{s:s%, s:s%}", "key", (char *)keys[i], (size_t)KLEN,
                                            "value", (char *)vals[i], (size_t)VLEN));
    json_t *o = json_pack("{s:I, s:I, s:I, s:s, s:o, s:i}", "group", 2, "txn", 123456789, "prio",
                          1795443278148316769LL, "op", "commit", "writes", ws, "nreads", 3);
    size_t n = json_dumpb(o, out, cap, JSON_COMPACT);
    json_decref(o);
    return n;
}

static void json_commit_decode(const char *b, size_t n)
{
    json_error_t je;
    json_t *o = json_loadb(b, n, 0, &je);
    uint64_t s = (uint64_t)json_integer_value(json_object_get(o, "txn"));
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(o, "writes"), i, w)
    {
        s += json_string_length(json_object_get(w, "key"));
        s += json_string_length(json_object_get(w, "value"));
    }
    sink += s;
    json_decref(o);
}

static size_t json_scan(char *out, size_t cap)
{
    json_t *rows = json_array();
    for (int i = 0; i < R; i++)
        json_array_append_new(rows, json_pack("{s:s%, s:s%, s:I}", "key", (char *)keys[i],
                                              (size_t)KLEN, "value", (char *)vals[i], (size_t)VLEN,
                                              "version_ts", 1795443278148316769LL));
    json_t *o =
        json_pack("{s:b, s:I, s:o}", "ok", 1, "read_ts", 1795443278148316769LL, "rows", rows);
    size_t n = json_dumpb(o, out, cap, JSON_COMPACT);
    json_decref(o);
    return n;
}

static void json_scan_decode(const char *b, size_t n)
{
    json_error_t je;
    json_t *o = json_loadb(b, n, 0, &je);
    size_t i;
    json_t *r;
    uint64_t s = 0;
    json_array_foreach(json_object_get(o, "rows"), i, r)
    {
        s += json_string_length(json_object_get(r, "value"));
        s += (uint64_t)json_integer_value(json_object_get(r, "version_ts"));
    }
    sink += s;
    json_decref(o);
}

/* ---- protobuf-c ---- */

static size_t pb_commit(uint8_t *out)
{
    Meridian__Write ws[W], *wp[W];
    for (int i = 0; i < W; i++) {
        meridian__write__init(&ws[i]);
        ws[i].key = (ProtobufCBinaryData){KLEN, keys[i]};
        ws[i].has_value = 1;
        ws[i].value = (ProtobufCBinaryData){VLEN, vals[i]};
        wp[i] = &ws[i];
    }
    Meridian__TxnRequest r;
    meridian__txn_request__init(&r);
    r.group = 2;
    r.txn = 123456789;
    r.has_prio = 1;
    r.prio = 1795443278148316769LL;
    r.op = MERIDIAN__TXN_REQUEST__OP__COMMIT;
    r.n_writes = W;
    r.writes = wp;
    r.has_nreads = 1;
    r.nreads = 3;
    return meridian__txn_request__pack(&r, out);
}

static void pb_commit_decode(const uint8_t *b, size_t n, ProtobufCAllocator *al)
{
    Meridian__TxnRequest *r = meridian__txn_request__unpack(al, n, b);
    uint64_t s = r->txn;
    for (size_t i = 0; i < r->n_writes; i++)
        s += r->writes[i]->key.len + r->writes[i]->value.len;
    sink += s;
    meridian__txn_request__free_unpacked(r, al);
}

static size_t pb_scan(uint8_t *out)
{
    static Meridian__Row rows[R], *rp[R];
    for (int i = 0; i < R; i++) {
        meridian__row__init(&rows[i]);
        rows[i].key = (ProtobufCBinaryData){KLEN, keys[i]};
        rows[i].value = (ProtobufCBinaryData){VLEN, vals[i]};
        rows[i].version_ts = 1795443278148316769LL;
        rp[i] = &rows[i];
    }
    Meridian__ReadReply r;
    meridian__read_reply__init(&r);
    r.has_read_ts = 1;
    r.read_ts = 1795443278148316769LL;
    r.n_rows = R;
    r.rows = rp;
    return meridian__read_reply__pack(&r, out);
}

static void pb_scan_decode(const uint8_t *b, size_t n, ProtobufCAllocator *al)
{
    Meridian__ReadReply *r = meridian__read_reply__unpack(al, n, b);
    uint64_t s = 0;
    for (size_t i = 0; i < r->n_rows; i++)
        s += r->rows[i]->value.len + (uint64_t)r->rows[i]->version_ts;
    sink += s;
    meridian__read_reply__free_unpacked(r, al);
}

/* ---- hand-written over net/buf.h ---- */

typedef struct hw_write {
    const uint8_t *key, *value;
    size_t klen, vlen;
    int del;
} hw_write;

static size_t hw_commit(net_wbuf *w)
{
    net_wbuf_reset(w);
    net_wbuf_u8(w, 1); /* version */
    net_wbuf_u8(w, 2); /* op */
    net_wbuf_uvarint(w, 2);
    net_wbuf_uvarint(w, 123456789);
    net_wbuf_svarint(w, 1795443278148316769LL);
    net_wbuf_uvarint(w, 3);
    net_wbuf_uvarint(w, W);
    for (int i = 0; i < W; i++) {
        net_wbuf_bytes(w, keys[i], KLEN);
        net_wbuf_u8(w, 1);
        net_wbuf_bytes(w, vals[i], VLEN);
    }
    return w->len;
}

static void hw_commit_decode(const uint8_t *b, size_t n)
{
    net_rbuf r;
    net_rbuf_init(&r, b, n);
    hw_write ws[64];
    (void)net_rbuf_u8(&r);
    (void)net_rbuf_u8(&r);
    (void)net_rbuf_uvarint(&r);
    uint64_t s = net_rbuf_uvarint(&r);
    (void)net_rbuf_svarint(&r);
    (void)net_rbuf_uvarint(&r);
    uint64_t cnt = net_rbuf_count(&r, 64, 3);
    for (uint64_t i = 0; i < cnt; i++) {
        ws[i].klen = net_rbuf_bytes(&r, 8192, &ws[i].key);
        ws[i].del = !net_rbuf_u8(&r);
        ws[i].vlen = ws[i].del ? 0 : net_rbuf_bytes(&r, 1 << 20, &ws[i].value);
        s += ws[i].klen + ws[i].vlen;
    }
    net_rbuf_expect_end(&r);
    sink += s + (uint64_t)net_rbuf_failed(&r);
}

static size_t hw_scan(net_wbuf *w)
{
    net_wbuf_reset(w);
    net_wbuf_u8(w, 1);
    net_wbuf_u8(w, 1);
    net_wbuf_svarint(w, 1795443278148316769LL);
    net_wbuf_uvarint(w, R);
    for (int i = 0; i < R; i++) {
        net_wbuf_bytes(w, keys[i], KLEN);
        net_wbuf_bytes(w, vals[i], VLEN);
        net_wbuf_svarint(w, 1795443278148316769LL);
    }
    return w->len;
}

static void hw_scan_decode(const uint8_t *b, size_t n)
{
    net_rbuf r;
    net_rbuf_init(&r, b, n);
    (void)net_rbuf_u8(&r);
    (void)net_rbuf_u8(&r);
    (void)net_rbuf_svarint(&r);
    uint64_t cnt = net_rbuf_count(&r, 100000, 3), s = 0;
    for (uint64_t i = 0; i < cnt; i++) {
        const uint8_t *k, *v;
        s += net_rbuf_bytes(&r, 8192, &k);
        s += net_rbuf_bytes(&r, 1 << 20, &v);
        s += (uint64_t)net_rbuf_svarint(&r);
    }
    net_rbuf_expect_end(&r);
    sink += s;
}

/* ---- runner ---- */

typedef enum { C_JSON, C_PB, C_PB_ARENA, C_HW } codec;
static const char *names[] = {"jansson (JSON)", "protobuf-c, malloc", "protobuf-c, arena",
                              "hand-written (net/buf.h)"};

static double run(codec c, int scan, int iters, size_t *bytes)
{
    static uint8_t buf[1 << 20];
    pr_arena ar;
    pr_arena_init(&ar);
    ProtobufCAllocator *al = &ar.allocator;
    net_wbuf w;
    net_wbuf_init(&w, 0);
    double t0 = now_ns();
    for (int i = 0; i < iters; i++) {
        size_t n;
        switch (c) {
        case C_JSON:
            n = scan ? json_scan((char *)buf, sizeof buf) : json_commit((char *)buf, sizeof buf);
            scan ? json_scan_decode((char *)buf, n) : json_commit_decode((char *)buf, n);
            break;
        case C_PB:
        case C_PB_ARENA:
            n = scan ? pb_scan(buf) : pb_commit(buf);
            pr_arena_reset(&ar);
            scan ? pb_scan_decode(buf, n, c == C_PB_ARENA ? al : NULL)
                 : pb_commit_decode(buf, n, c == C_PB_ARENA ? al : NULL);
            break;
        default:
            n = scan ? hw_scan(&w) : hw_commit(&w);
            scan ? hw_scan_decode(w.data, n) : hw_commit_decode(w.data, n);
            break;
        }
        *bytes = n;
    }
    double t = (now_ns() - t0) / iters;
    net_wbuf_free(&w);
    pr_arena_free(&ar);
    return t;
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 100000;
    if (iters <= 0) {
        fprintf(stderr, "usage: bench-proto [ITERATIONS]\n");
        return 2;
    }
    for (int i = 0; i < R; i++) {
        for (int k = 0; k < KLEN; k++)
            keys[i][k] = (uint8_t)('a' + (i * 7 + k) % 26);
        for (int k = 0; k < VLEN; k++)
            vals[i][k] = (uint8_t)('A' + (i + k) % 26);
    }
    printf("encode + decode, ns per message (best of 3 rounds of %d)\n", iters);
    printf("%-26s %14s %8s %14s %8s\n", "codec", "commit (10 w)", "bytes", "scan (100 r)", "bytes");
    double base[2] = {0, 0};
    for (codec c = C_JSON; c <= C_HW; c++) {
        double best[2] = {1e18, 1e18};
        size_t bytes[2] = {0, 0};
        for (int round = 0; round < 3; round++)
            for (int s = 0; s < 2; s++) {
                double t = run(c, s, s ? iters / 10 : iters, &bytes[s]);
                if (t < best[s])
                    best[s] = t;
            }
        if (c == C_JSON) {
            base[0] = best[0];
            base[1] = best[1];
        }
        printf("%-26s %9.0f (%3.1fx) %6zu %9.0f (%3.1fx) %6zu\n", names[c], best[0],
               base[0] / best[0], bytes[0], best[1], base[1] / best[1], bytes[1]);
    }
    return sink == 42; /* keeps the decoders' work observable */
}
