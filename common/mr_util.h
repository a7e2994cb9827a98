/* Small shared helpers: durations, clocks, numbers, UTF-8. */
#ifndef MR_UTIL_H
#define MR_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MR_NS_PER_US 1000LL
#define MR_NS_PER_MS 1000000LL
#define MR_NS_PER_S  1000000000LL

/* Parses a duration such as "1ms", "250us", "1.5s", "2m", "-3ms", "100ns", "1h".
 * A bare number is rejected (units are required). Returns 0 and sets *ns,
 * or -1 on malformed input or overflow. */
int mr_parse_duration(const char *s, int64_t *ns);

/* Parses a byte size: a non-negative integer with an optional unit, B, KiB, MiB, GiB (or
 * K, M, G, the same powers of 1024), e.g. "64MiB", "512K", "4096". 0 or -1. */
int mr_parse_size(const char *s, int64_t *bytes);

/* Formats ns as a short human duration ("1.250ms", "3.000s", "-12us") into buf. */
const char *mr_format_duration(int64_t ns, char *buf, int len);

/* Parses a base-10 integer in [min, max] with nothing trailing. 0 or -1. */
int mr_parse_int(const char *s, long long min, long long max, long long *out);

/* Parses HOST:PORT (IPv4, name, or [IPv6]:PORT). host gets at most hostlen-1 chars. 0 or -1. */
int mr_parse_hostport(const char *s, char *host, int hostlen, int *port);

int64_t mr_realtime_ns(void);
/* Length of the UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF; left bytes available, at least 1), or 0 if it is not valid. */
size_t mr_utf8_seq(const unsigned char *p, size_t left);
/* Are len bytes at p valid UTF-8 (a NUL counts as valid)? */
bool mr_utf8_valid(const void *p, size_t len);
int64_t mr_monotonic_ns(void);

/* The order of byte strings (keys): memcmp, then the shorter first. <0, 0, >0. */
int mr_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen);
/* Writes len bytes as 2 * len lowercase hex digits and a NUL to out (2 * len + 1 bytes). */
void mr_hex_encode(const void *p, size_t len, char *out);
/* Decodes an even number of hex digits (either case) from s (slen bytes) into out (slen / 2
 * bytes). 0, or -1 when s is not such a string. */
int mr_hex_decode(const char *s, size_t slen, uint8_t *out);

/* len bytes as text for messages and logs: printable ASCII as is, every other byte (and the
 * backslash) as \xNN; cut with "..." to fit cap bytes (NUL included). Returns out. */
char *mr_bytes_text(const void *p, size_t len, char *out, size_t cap);

#endif
