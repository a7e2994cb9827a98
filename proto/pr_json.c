/* The JSON mapping of the wire messages, driven by protobuf-c's descriptors
 * (pr.h): for `--json` output and for tests that write requests by hand. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mr_util.h"
#include "proto/pr_json.h"
#include "proto/pr_msg.h"

/* ---- bytes ---- */

static json_t *bytes_json(const ProtobufCBinaryData *b)
{
    if (!b->len) /* protobuf-c decodes empty bytes as data NULL, which json_stringn refuses */
        return json_string("");
    if (mr_utf8_valid(b->data, b->len))
        return json_stringn((const char *)b->data, b->len);
    static const char hexd[] = "0123456789abcdef";
    char *h = malloc(2 * b->len + 1);
    if (!h)
        return NULL;
    for (size_t i = 0; i < b->len; i++) {
        h[2 * i] = hexd[b->data[i] >> 4];
        h[2 * i + 1] = hexd[b->data[i] & 15];
    }
    h[2 * b->len] = 0;
    json_t *o = json_pack("{s:s}", "hex", h);
    free(h);
    return o;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int bytes_from(const json_t *v, pr_arena *a, ProtobufCBinaryData *out)
{
    if (json_is_string(v)) {
        size_t n = json_string_length(v);
        out->data = pr_arena_dup(a, json_string_value(v), n);
        out->len = n;
        return out->data ? 0 : -1;
    }
    const char *h = json_string_value(json_object_get(v, "hex"));
    if (!json_is_object(v) || json_object_size(v) != 1 || !h)
        return -1;
    size_t n = strlen(h);
    if (n % 2)
        return -1;
    uint8_t *d = pr_arena_alloc(a, n / 2 ? n / 2 : 1);
    if (!d)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval((unsigned char)h[2 * i]), lo = hexval((unsigned char)h[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        d[i] = (uint8_t)(hi << 4 | lo);
    }
    out->data = d;
    out->len = n / 2;
    return 0;
}

/* ---- enums ---- */

static json_t *enum_json(const ProtobufCEnumDescriptor *d, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    if (!ev)
        return json_integer(v);
    char buf[64];
    size_t k = 0;
    for (; ev->name[k] && k + 1 < sizeof buf; k++)
        buf[k] = (char)tolower((unsigned char)ev->name[k]);
    buf[k] = 0;
    return json_string(buf);
}

static int enum_from(const ProtobufCEnumDescriptor *d, const json_t *v, int *out)
{
    if (json_is_integer(v)) {
        if (!protobuf_c_enum_descriptor_get_value(d, (int)json_integer_value(v)))
            return -1;
        *out = (int)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    for (unsigned i = 0; s && i < d->n_values; i++)
        if (strcasecmp(d->values[i].name, s) == 0) {
            *out = d->values[i].value;
            return 0;
        }
    return -1;
}

/* ---- to JSON ---- */

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        if (v <= INT64_MAX)
            return json_integer((json_int_t)v);
        char buf[24];
        snprintf(buf, sizeof buf, "%" PRIu64, v);
        return json_string(buf);
    }
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM:
        return enum_json(f->descriptor, *(const int *)p);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s && mr_utf8_valid((const uint8_t *)s, strlen(s)) ? json_string(s) : json_string("");
    }
    case PROTOBUF_C_TYPE_BYTES:
        return bytes_json(p);
    case PROTOBUF_C_TYPE_MESSAGE:
        return pr_to_json(*(ProtobufCMessage *const *)p);
    }
    return NULL;
}

/* Is optional field f present in message m? */
static bool present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const void *ptr = *(void *const *)(base + f->offset);
        if (!ptr)
            return false;
        /* an optional string with a default points at it: absent unless changed */
        return f->type != PROTOBUF_C_TYPE_STRING || ptr != f->default_value;
    }
    return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
}

json_t *pr_to_json(const ProtobufCMessage *m)
{
    if (!m)
        return json_null();
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    json_t *o = json_object();
    for (unsigned i = 0; o && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        json_t *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)(base + f->offset);
            if (!n)
                continue;
            v = json_array();
            for (size_t k = 0; v && k < n; k++)
                if (json_array_append_new(v, value_json(f, arr + k * scalar_size(f->type))) != 0) {
                    json_decref(v);
                    v = NULL;
                }
        } else {
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && !present(m, f))
                continue;
            v = value_json(f, base + f->offset);
        }
        if (!v || json_object_set_new(o, f->name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* ---- from JSON ---- */

static int int_from(const json_t *v, long long lo, long long hi, long long *out)
{
    if (!json_is_integer(v))
        return -1;
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return -1;
    *out = x;
    return 0;
}

static int u64_from(const json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return -1;
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = x;
    return 0;
}

static ProtobufCMessage *message_from(const ProtobufCMessageDescriptor *d, const json_t *j,
                                      pr_arena *a, mr_err *err, int depth);

/* One value of field f from v into p. */
static int value_from(const ProtobufCFieldDescriptor *f, const json_t *v, void *p, pr_arena *a,
                      mr_err *err, int depth)
{
    long long x;
    uint64_t u;
    int e;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (int_from(v, INT32_MIN, INT32_MAX, &x))
            break;
        *(int32_t *)p = (int32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (int_from(v, 0, UINT32_MAX, &x))
            break;
        *(uint32_t *)p = (uint32_t)x;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (int_from(v, INT64_MIN, INT64_MAX, &x))
            break;
        *(int64_t *)p = (int64_t)x;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (u64_from(v, &u))
            break;
        *(uint64_t *)p = u;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!json_is_number(v))
            break;
        *(float *)p = (float)json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(v))
            break;
        *(double *)p = json_number_value(v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            break;
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        if (enum_from(f->descriptor, v, &e))
            break;
        *(int *)p = e;
        return 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = json_string_value(v);
        if (!s || strlen(s) != json_string_length(v))
            break; /* not a string, or one with a NUL */
        char *c = pr_arena_dup(a, s, strlen(s) + 1);
        if (!c)
            return mr_errf(err, MR_ENOMEM, "out of memory");
        *(char **)p = c;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        if (bytes_from(v, a, p))
            break;
        return 0;
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *m = message_from(f->descriptor, v, a, err, depth + 1);
        if (!m)
            return mr_err_wrap(err, "%s", f->name);
        *(ProtobufCMessage **)p = m;
        return 0;
    }
    }
    return mr_errf(err, MR_EINVAL, "%s: not a valid value for this field", f->name);
}

static ProtobufCMessage *message_from(const ProtobufCMessageDescriptor *d, const json_t *j,
                                      pr_arena *a, mr_err *err, int depth)
{
    if (depth > 32) {
        mr_errf(err, MR_EINVAL, "nested too deeply");
        return NULL;
    }
    if (!json_is_object(j)) {
        mr_errf(err, MR_EINVAL, "a %s must be a JSON object", d->short_name);
        return NULL;
    }
    ProtobufCMessage *m = pr_arena_alloc(a, d->sizeof_message);
    if (!m) {
        mr_errf(err, MR_ENOMEM, "out of memory");
        return NULL;
    }
    d->message_init(m);
    char *base = (char *)m;
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)j, name, v)
    {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(d, name);
        if (!f) {
            mr_errf(err, MR_EINVAL, "%s has no field \"%.64s\"", d->short_name, name);
            return NULL;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!json_is_array(v)) {
                mr_errf(err, MR_EINVAL, "%s: want an array", f->name);
                return NULL;
            }
            size_t n = json_array_size(v), sz = scalar_size(f->type);
            char *arr = pr_arena_alloc(a, n > 0 ? n * sz : 1);
            if (!arr) {
                mr_errf(err, MR_ENOMEM, "out of memory");
                return NULL;
            }
            for (size_t k = 0; k < n; k++)
                if (value_from(f, json_array_get(v, k), arr + k * sz, a, err, depth) != MR_OK)
                    return NULL;
            *(size_t *)(base + f->quantifier_offset) = n;
            *(char **)(base + f->offset) = arr;
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(uint32_t *)(base + f->quantifier_offset) != 0) {
            mr_errf(err, MR_EINVAL, "%s: \"%s\" is one of a set of which at most one is given",
                    d->short_name, f->name);
            return NULL;
        }
        if (value_from(f, v, base + f->offset, a, err, depth) != MR_OK)
            return NULL;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *(uint32_t *)(base + f->quantifier_offset) = f->id;
        else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
                 f->type != PROTOBUF_C_TYPE_MESSAGE)
            *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    }
    /* protobuf-c cannot tell a required scalar from its zero: ask the JSON. */
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED &&
            !json_object_get(j, d->fields[i].name)) {
            mr_errf(err, MR_EINVAL, "%s: the required field \"%s\" is missing", d->short_name,
                    d->fields[i].name);
            return NULL;
        }
    return m;
}

ProtobufCMessage *pr_from_json(const ProtobufCMessageDescriptor *d, const json_t *j, pr_arena *a,
                               mr_err *err)
{
    return message_from(d, j, a, err, 0);
}

/* ---- replies and requests for tools and tests ---- */

json_t *pr_reply_view(const Meridian__Reply *r)
{
    if (r->error) {
        const Meridian__Error *e = r->error;
        json_t *o = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", pr_error_name(e->code),
                              "message", e->message ? e->message : "");
        if (o && e->has_retryable)
            json_object_set_new(o, "retryable", json_boolean(e->retryable));
        if (o && e->leader)
            json_object_set_new(o, "leader", json_string(e->leader));
        if (o && e->has_owner)
            json_object_set_new(o, "owner", json_integer((json_int_t)e->owner));
        return o;
    }
    if (r->body_case == MERIDIAN__REPLY__BODY_STATUS) {
        const Meridian__StatusReply *s = r->status;
        json_error_t je;
        json_t *o = s->document ? json_loads(s->document, 0, &je) : json_object();
        if (!json_is_object(o)) {
            json_decref(o);
            o = json_pack("{s:s}", "document", s->document);
        }
        if (o) {
            json_object_set_new(o, "ok", json_true());
            json_object_set_new(o, "initialized", json_boolean(s->initialized));
        }
        return o;
    }
    /* The body is the oneof's one member: a message field. */
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&meridian__reply__descriptor, r->body_case);
    json_t *o =
        f ? pr_to_json(*(ProtobufCMessage *const *)((const char *)r + f->offset)) : json_object();
    if (o)
        json_object_set_new(o, "ok", json_true());
    return o;
}

int pr_request_from_text(uint8_t type, const char *text, uint8_t **out, size_t *len, mr_err *err)
{
    const ProtobufCMessageDescriptor *d = pr_request_descriptor(type);
    if (!d)
        return mr_errf(err, MR_EPROTO, "message type %u carries no request", type);
    json_error_t je;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &je);
    if (!j)
        return mr_errf(err, MR_EINVAL, "not JSON: %s", je.text);
    pr_arena a;
    pr_arena_init(&a);
    const ProtobufCMessage *m = pr_from_json(d, j, &a, err);
    json_decref(j);
    int rc = m ? pr_encode(m, 0, out, len, err) : MR_EINVAL;
    pr_arena_free(&a);
    return rc;
}
