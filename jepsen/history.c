/* Histories: JSON-lines reading, pairing invokes with completions, JSON and EDN writing
 * (see history.h; the model is Jepsen's, jepsen.history). */
#include "jepsen/history.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Per-process pairing states besides "pending invoke at index i". */
#define P_IDLE    ((size_t)-1)
#define P_RETIRED ((size_t)-2)

void jp_history_init(jp_history *h)
{
    memset(h, 0, sizeof *h);
}

void jp_history_free(jp_history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        json_decref(h->ops[i].obj);
    free(h->ops);
    free(h->pkeys);
    free(h->pvals);
    memset(h, 0, sizeof *h);
}

const char *jp_type_name(jp_type t)
{
    switch (t) {
    case JP_INVOKE:
        return "invoke";
    case JP_OK:
        return "ok";
    case JP_FAIL:
        return "fail";
    default:
        return "info";
    }
}

const char *jp_key_text(const json_t *key, char *buf, size_t len)
{
    if (!key)
        snprintf(buf, len, "(none)");
    else if (json_is_string(key))
        snprintf(buf, len, "%s", json_string_value(key));
    else if (json_is_integer(key))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(key));
    else
        snprintf(buf, len, "(bad key)");
    return buf;
}

/* ---- process map (open addressing, linear probing) ---- */

static size_t phash(int64_t p, size_t cap)
{
    uint64_t x = (uint64_t)p * 0x9E3779B97F4A7C15ULL;
    return (size_t)(x >> 17) & (cap - 1);
}

static size_t *pslot(jp_history *h, int64_t p, int create)
{
    if (create && (h->pcount + 1) * 2 > h->pcap) {
        size_t ncap = h->pcap ? h->pcap * 2 : 64;
        int64_t *nk = malloc(ncap * sizeof *nk);
        size_t *nv = malloc(ncap * sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return NULL;
        }
        for (size_t i = 0; i < ncap; i++)
            nk[i] = INT64_MIN;
        for (size_t i = 0; i < h->pcap; i++) {
            if (h->pkeys[i] == INT64_MIN)
                continue;
            size_t j = phash(h->pkeys[i], ncap);
            while (nk[j] != INT64_MIN)
                j = (j + 1) & (ncap - 1);
            nk[j] = h->pkeys[i];
            nv[j] = h->pvals[i];
        }
        free(h->pkeys);
        free(h->pvals);
        h->pkeys = nk;
        h->pvals = nv;
        h->pcap = ncap;
    }
    if (!h->pcap)
        return NULL;
    size_t j = phash(p, h->pcap);
    while (h->pkeys[j] != INT64_MIN) {
        if (h->pkeys[j] == p)
            return &h->pvals[j];
        j = (j + 1) & (h->pcap - 1);
    }
    if (!create)
        return NULL;
    h->pkeys[j] = p;
    h->pvals[j] = P_IDLE;
    h->pcount++;
    return &h->pvals[j];
}

/* ---- adding operations ---- */

static int bad(mr_err *err, long line, const char *fmt, const char *what)
{
    char where[32] = "";
    if (line > 0)
        snprintf(where, sizeof where, "line %ld: ", line);
    return mr_errf(err, MR_EINVAL, "%s%s%s", where, fmt, what ? what : "");
}

static int keys_equal(const json_t *a, const json_t *b)
{
    if (!a || !b)
        return a == b;
    return json_equal((json_t *)a, (json_t *)b);
}

int jp_history_add(jp_history *h, json_t *obj, long line, mr_err *err)
{
    int rc = MR_EINVAL;
    if (line <= 0) /* built in memory: its line in the file jp_history_write_jsonl writes */
        line = (long)h->n + 1;
    if (!json_is_object(obj)) {
        rc = bad(err, line, "an operation must be a JSON object", NULL);
        goto out;
    }
    jp_op op;
    memset(&op, 0, sizeof op);
    op.index = h->n;
    op.line = line;
    op.obj = obj;
    op.pair = JP_NONE;

    json_t *t = json_object_get(obj, "type");
    const char *ts = json_string_value(t);
    if (!ts) {
        rc = bad(err, line, "missing \"type\" (a string: invoke, ok, fail or info)", NULL);
        goto out;
    }
    if (strcmp(ts, "invoke") == 0)
        op.type = JP_INVOKE;
    else if (strcmp(ts, "ok") == 0)
        op.type = JP_OK;
    else if (strcmp(ts, "fail") == 0)
        op.type = JP_FAIL;
    else if (strcmp(ts, "info") == 0)
        op.type = JP_INFO;
    else {
        rc = bad(err, line, "\"type\" must be invoke, ok, fail or info, not ", ts);
        goto out;
    }

    json_t *p = json_object_get(obj, "process");
    if (json_is_integer(p) && json_integer_value(p) >= 0)
        op.process = json_integer_value(p);
    else if (json_is_string(p) && strcmp(json_string_value(p), "nemesis") == 0)
        op.process = JP_NEMESIS;
    else {
        rc = bad(err, line, "\"process\" must be an integer >= 0 or \"nemesis\"", NULL);
        goto out;
    }

    op.f = json_string_value(json_object_get(obj, "f"));
    if (!op.f || !op.f[0]) {
        rc = bad(err, line, "missing \"f\" (the operation's function, a non-empty string)", NULL);
        goto out;
    }

    json_t *tm = json_object_get(obj, "time");
    if (tm && !json_is_integer(tm)) {
        rc = bad(err, line, "\"time\" must be an integer (nanoseconds)", NULL);
        goto out;
    }
    op.time = tm ? json_integer_value(tm) : -1;

    json_t *ix = json_object_get(obj, "index");
    if (ix && (!json_is_integer(ix) || json_integer_value(ix) != (json_int_t)h->n)) {
        char msg[96];
        snprintf(msg, sizeof msg, "\"index\" must be the operation's position %zu", h->n);
        rc = bad(err, line, msg, NULL);
        goto out;
    }

    op.key = json_object_get(obj, "key");
    if (op.key && !json_is_string(op.key) && !json_is_integer(op.key)) {
        rc = bad(err, line, "\"key\" must be a string or an integer", NULL);
        goto out;
    }
    op.value = json_object_get(obj, "value");
    if (!op.value)
        op.value = json_null();

    if (op.process != JP_NEMESIS) {
        size_t *st = pslot(h, op.process, 1);
        if (!st) {
            rc = mr_errf(err, MR_ENOMEM, "out of memory");
            goto out;
        }
        char msg[160];
        if (op.type == JP_INVOKE) {
            if (*st == P_RETIRED) {
                snprintf(msg, sizeof msg,
                         "process %" PRId64 " invokes after an info completion; an indeterminate "
                         "operation retires its process (use a new process id)",
                         op.process);
                rc = bad(err, line, msg, NULL);
                goto out;
            }
            if (*st != P_IDLE) {
                snprintf(msg, sizeof msg,
                         "process %" PRId64 " invokes while its operation at line %ld (index "
                         "%zu) is still pending",
                         op.process, h->ops[*st].line, *st);
                rc = bad(err, line, msg, NULL);
                goto out;
            }
            *st = h->n;
        } else {
            if (*st == P_IDLE || *st == P_RETIRED) {
                snprintf(msg, sizeof msg,
                         "process %" PRId64 " completes (%s) with no pending invoke", op.process,
                         ts);
                rc = bad(err, line, msg, NULL);
                goto out;
            }
            jp_op *inv = &h->ops[*st];
            if (strcmp(inv->f, op.f) != 0) {
                snprintf(msg, sizeof msg,
                         "completion f \"%.40s\" differs from its invoke's \"%.40s\" (line %ld)",
                         op.f, inv->f, inv->line);
                rc = bad(err, line, msg, NULL);
                goto out;
            }
            if (!keys_equal(inv->key, op.key)) {
                snprintf(msg, sizeof msg, "completion key differs from its invoke's (line %ld)",
                         inv->line);
                rc = bad(err, line, msg, NULL);
                goto out;
            }
            op.pair = *st;
            inv->pair = h->n;
            *st = op.type == JP_INFO ? P_RETIRED : P_IDLE;
        }
    }

    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 256;
        jp_op *ops = realloc(h->ops, cap * sizeof *ops);
        if (!ops) {
            rc = mr_errf(err, MR_ENOMEM, "out of memory");
            goto out;
        }
        h->ops = ops;
        h->cap = cap;
    }
    h->ops[h->n++] = op;
    return MR_OK;
out:
    json_decref(obj);
    return rc;
}

int jp_history_record(jp_history *h, int64_t process, jp_type type, const char *f,
                      const json_t *key, json_t *value, int64_t time, mr_err *err)
{
    json_t *o = json_object();
    if (!o || !f) {
        json_decref(value);
        json_decref(o);
        return o ? mr_errf(err, MR_EINVAL, "an operation needs an f")
                 : mr_errf(err, MR_ENOMEM, "out of memory");
    }
    json_object_set_new(o, "process",
                        process == JP_NEMESIS ? json_string("nemesis")
                                              : json_integer((json_int_t)process));
    json_object_set_new(o, "type", json_string(jp_type_name(type)));
    json_object_set_new(o, "f", json_string(f));
    if (key)
        json_object_set_new(o, "key", json_deep_copy(key));
    json_object_set_new(o, "value", value ? value : json_null());
    if (time >= 0)
        json_object_set_new(o, "time", json_integer((json_int_t)time));
    return jp_history_add(h, o, 0, err);
}

int jp_history_add_line(jp_history *h, const char *text, long line, mr_err *err)
{
    json_error_t je;
    json_t *obj = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!obj) {
        char where[32] = "";
        if (line > 0)
            snprintf(where, sizeof where, "line %ld: ", line);
        return mr_errf(err, MR_EINVAL, "%sinvalid JSON at column %d: %s", where, je.column,
                       je.text);
    }
    return jp_history_add(h, obj, line, err);
}

static int blank(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

int jp_history_read(jp_history *h, FILE *in, mr_err *err)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    long line = 0;
    int rc = MR_OK;
    while ((len = getline(&buf, &cap, in)) >= 0) {
        line++;
        if ((size_t)len != strlen(buf)) {
            rc = mr_errf(err, MR_EINVAL, "line %ld: contains a NUL byte", line);
            break;
        }
        if (blank(buf))
            continue;
        if ((rc = jp_history_add_line(h, buf, line, err)) != MR_OK)
            break;
    }
    if (rc == MR_OK && ferror(in))
        rc = mr_errf(err, MR_EIO, "read error after line %ld", line);
    free(buf);
    return rc;
}

int jp_history_parse_string(jp_history *h, const char *text, mr_err *err)
{
    long line = 0;
    int rc = MR_OK;
    while (*text && rc == MR_OK) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        char *one = strndup(text, len);
        if (!one)
            return mr_errf(err, MR_ENOMEM, "out of memory");
        line++;
        if (!blank(one))
            rc = jp_history_add_line(h, one, line, err);
        free(one);
        text += len + (nl ? 1 : 0);
    }
    return rc;
}

int jp_history_load(jp_history *h, const char *path, mr_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return mr_errf(err, MR_EIO, "cannot open %s: %s", path, strerror(errno));
    int rc = jp_history_read(h, f, err);
    fclose(f);
    if (rc != MR_OK)
        mr_err_wrap(err, "%s", path);
    return rc;
}

jp_type jp_outcome(const jp_history *h, size_t i)
{
    const jp_op *op = &h->ops[i];
    if (op->type != JP_INVOKE)
        return op->type;
    return op->pair == JP_NONE ? JP_INFO : h->ops[op->pair].type;
}

size_t jp_report_index(const jp_history *h, size_t i)
{
    const jp_op *op = &h->ops[i];
    return op->type == JP_INVOKE && op->pair != JP_NONE ? op->pair : i;
}

/* ---- writing ---- */

int jp_history_write_jsonl(const jp_history *h, FILE *out, mr_err *err)
{
    for (size_t i = 0; i < h->n; i++) {
        json_t *o = json_copy(h->ops[i].obj);
        if (!o)
            return mr_errf(err, MR_ENOMEM, "out of memory");
        json_object_set_new(o, "index", json_integer((json_int_t)i));
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s)
            return mr_errf(err, MR_ENOMEM, "out of memory");
        int bad_write = fprintf(out, "%s\n", s) < 0;
        free(s);
        if (bad_write)
            return mr_errf(err, MR_EIO, "write failed: %s", strerror(errno));
    }
    return MR_OK;
}

/* A string usable as an EDN keyword without escaping. */
static int keywordable(const char *s)
{
    if (!s[0] || isdigit((unsigned char)s[0]))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-_?!*+<>=.", *s))
            return 0;
    return 1;
}

static void edn_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        switch (*s) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        default:
            fputc(*s, out);
        }
    }
    fputc('"', out);
}

/* depth 0: the op's value; arrays nested one level inside it (micro-ops) get their
 * first string element written as a keyword, as in Elle's [:append k v] / [:r k nil]. */
static void edn_value(FILE *out, const json_t *v, int depth, int kw_first)
{
    size_t i;
    const char *k;
    json_t *x;
    switch (json_typeof(v)) {
    case JSON_NULL:
        fputs("nil", out);
        break;
    case JSON_TRUE:
        fputs("true", out);
        break;
    case JSON_FALSE:
        fputs("false", out);
        break;
    case JSON_INTEGER:
        fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        fprintf(out, "%.17g", json_real_value(v));
        break;
    case JSON_STRING:
        edn_string(out, json_string_value(v));
        break;
    case JSON_ARRAY:
        fputc('[', out);
        json_array_foreach(v, i, x)
        {
            if (i)
                fputc(' ', out);
            if (i == 0 && kw_first && json_is_string(x) && keywordable(json_string_value(x)))
                fprintf(out, ":%s", json_string_value(x));
            else
                edn_value(out, x, depth + 1, depth == 0);
        }
        fputc(']', out);
        break;
    case JSON_OBJECT:
        fputc('{', out);
        i = 0;
        json_object_foreach((json_t *)v, k, x)
        {
            if (i++)
                fputs(", ", out);
            edn_string(out, k);
            fputc(' ', out);
            edn_value(out, x, depth + 1, 0);
        }
        fputc('}', out);
        break;
    }
}

int jp_history_write_edn(const jp_history *h, FILE *out, mr_err *err)
{
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = &h->ops[i];
        fprintf(out, "{:index %zu, :type :%s, :process ", i, jp_type_name(op->type));
        if (op->process == JP_NEMESIS)
            fputs(":nemesis", out);
        else
            fprintf(out, "%" PRId64, op->process);
        if (keywordable(op->f))
            fprintf(out, ", :f :%s", op->f);
        else {
            fputs(", :f ", out);
            edn_string(out, op->f);
        }
        fputs(", :value ", out);
        /* Jepsen's independent checker expects [key value] tuples for keyed ops. */
        if (op->key) {
            fputc('[', out);
            edn_value(out, op->key, 1, 0);
            fputc(' ', out);
            edn_value(out, op->value, 1, 0);
            fputc(']', out);
        } else {
            edn_value(out, op->value, 0, 0);
        }
        if (op->time >= 0)
            fprintf(out, ", :time %" PRId64, op->time);
        fputs("}\n", out);
        if (ferror(out))
            return mr_errf(err, MR_EIO, "write failed: %s", strerror(errno));
    }
    return MR_OK;
}
