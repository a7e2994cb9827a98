/* Shared helpers: duration and number parsing, clock readings. */
#include "common/mr_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
    const char *suffix;
    int64_t ns;
} units[] = {
    {"ns", 1},          {"us", MR_NS_PER_US},    {"\xc2\xb5s", MR_NS_PER_US}, {"ms", MR_NS_PER_MS},
    {"s", MR_NS_PER_S}, {"m", 60 * MR_NS_PER_S}, {"h", 3600 * MR_NS_PER_S},
};

int mr_parse_duration(const char *s, int64_t *ns)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v))
        return -1;
    /* strtod accepts hex and exponents; demand plain decimal digits. */
    for (const char *p = s; p < end; p++)
        if (!isdigit((unsigned char)*p) && *p != '.' && *p != '-' && *p != '+')
            return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            double r = v * (double)units[i].ns;
            if (r > 9.2e18 || r < -9.2e18)
                return -1;
            *ns = (int64_t)llround(r);
            return 0;
        }
    }
    return -1;
}

int mr_parse_size(const char *s, int64_t *bytes)
{
    static const struct {
        const char *suffix;
        int shift;
    } su[] = {{"", 0},   {"B", 0},    {"K", 10}, {"KiB", 10},
              {"M", 20}, {"MiB", 20}, {"G", 30}, {"GiB", 30}};
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    for (size_t i = 0; i < sizeof su / sizeof su[0]; i++)
        if (strcmp(end, su[i].suffix) == 0) {
            if (v > ((unsigned long long)INT64_MAX >> su[i].shift))
                return -1;
            *bytes = (int64_t)(v << su[i].shift);
            return 0;
        }
    return -1;
}

const char *mr_format_duration(int64_t ns, char *buf, int len)
{
    double a = fabs((double)ns);
    if (a < 1e3)
        snprintf(buf, (size_t)len, "%lldns", (long long)ns);
    else if (a < 1e6)
        snprintf(buf, (size_t)len, "%.3fus", (double)ns / 1e3);
    else if (a < 1e9)
        snprintf(buf, (size_t)len, "%.3fms", (double)ns / 1e6);
    else
        snprintf(buf, (size_t)len, "%.3fs", (double)ns / 1e9);
    return buf;
}

int mr_parse_int(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int mr_parse_hostport(const char *s, char *host, int hostlen, int *port)
{
    if (!s)
        return -1;
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= (size_t)hostlen)
        return -1;
    long long p;
    if (mr_parse_int(colon + 1, 0, 65535, &p) != 0)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

int64_t mr_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * MR_NS_PER_S + ts.tv_nsec;
}

int64_t mr_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * MR_NS_PER_S + ts.tv_nsec;
}

size_t mr_utf8_seq(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (left < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

bool mr_utf8_valid(const void *p, size_t len)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < len;) {
        size_t n = mr_utf8_seq(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

int mr_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = m ? memcmp(a, b, m) : 0;
    return c ? c : (alen > blen) - (alen < blen);
}

void mr_hex_encode(const void *p, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *s = p;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[s[i] >> 4];
        out[2 * i + 1] = digits[s[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int mr_hex_decode(const char *s, size_t slen, uint8_t *out)
{
    if (slen % 2)
        return -1;
    for (size_t i = 0; i < slen; i += 2) {
        int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* The escaped length of byte c. */
static size_t text_len(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '\\' ? 1 : 4;
}

char *mr_bytes_text(const void *p, size_t len, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *s = p;
    if (!cap)
        return out;
    size_t total = 0;
    for (size_t i = 0; i < len; i++)
        total += text_len(s[i]);
    /* Everything when it fits; else as much as fits before "...". */
    size_t room = total < cap ? cap - 1 : (cap > 3 ? cap - 4 : 0);
    size_t o = 0;
    for (size_t i = 0; i < len && o + text_len(s[i]) <= room; i++) {
        if (text_len(s[i]) == 1) {
            out[o++] = (char)s[i];
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = digits[s[i] >> 4];
            out[o++] = digits[s[i] & 15];
        }
    }
    if (total >= cap && cap > 3) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}
