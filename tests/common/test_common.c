/* Unit tests of common/: errors, durations, numbers, host:port, the integer codec. */
#include "common/mr_codec.h"
#include "common/mr_err.h"
#include "common/mr_util.h"
#include "tests/test.h"

TEST(err_wrap_grows_message)
{
    mr_err e;
    mr_err_clear(&e);
    CHECK_EQ(e.code, MR_OK);
    CHECK_EQ(mr_errf(&e, MR_EIO, "open %s", "x.db"), MR_EIO);
    CHECK_EQ(mr_err_wrap(&e, "replica %d", 3), MR_EIO);
    CHECK_STR(mr_err_msg(&e), "replica 3: open x.db");
    mr_err_clear(&e);
    mr_errf(&e, MR_ETIMEDOUT, "%s", "");
    CHECK_STR(mr_err_msg(&e), "timed out");
    CHECK_STR(mr_strerror(-1), "unknown error");
    CHECK_STR(mr_strerror(MR_ECODE_MAX), "unknown error");
}

TEST(durations_parse)
{
    int64_t ns;
    CHECK(mr_parse_duration("1ms", &ns) == 0 && ns == 1000000);
    CHECK(mr_parse_duration("250us", &ns) == 0 && ns == 250000);
    CHECK(mr_parse_duration("1.5s", &ns) == 0 && ns == 1500000000);
    CHECK(mr_parse_duration("-3ms", &ns) == 0 && ns == -3000000);
    CHECK(mr_parse_duration("2m", &ns) == 0 && ns == 120000000000LL);
    CHECK(mr_parse_duration("1h", &ns) == 0 && ns == 3600000000000LL);
    CHECK(mr_parse_duration("7ns", &ns) == 0 && ns == 7);
    CHECK(mr_parse_duration("5", &ns) != 0);
    CHECK(mr_parse_duration("ms", &ns) != 0);
    CHECK(mr_parse_duration("", &ns) != 0);
    CHECK(mr_parse_duration(" 1ms", &ns) != 0);
    CHECK(mr_parse_duration("1msx", &ns) != 0);
    CHECK(mr_parse_duration("0x10ms", &ns) != 0);
    CHECK(mr_parse_duration("1e3ms", &ns) != 0);
    CHECK(mr_parse_duration("nanms", &ns) != 0);
    CHECK(mr_parse_duration("99999999999h", &ns) != 0);
}

TEST(sizes_parse)
{
    int64_t b = -1;
    CHECK(mr_parse_size("4096", &b) == 0 && b == 4096);
    CHECK(mr_parse_size("64MiB", &b) == 0 && b == 64LL << 20);
    CHECK(mr_parse_size("512K", &b) == 0 && b == 512LL << 10);
    CHECK(mr_parse_size("2GiB", &b) == 0 && b == 2LL << 30);
    CHECK(mr_parse_size("0B", &b) == 0 && b == 0);
    static const char *const bad[] = {
        "", "-1", "1.5M", "12 MiB", "1TB", "MiB", "99999999999999999999", "9000000000G", " 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(mr_parse_size(bad[i], &b) == -1, "'%s' accepted", bad[i]);
}

TEST(format_duration)
{
    char b[32];
    CHECK_STR(mr_format_duration(1250000, b, sizeof b), "1.250ms");
    CHECK_STR(mr_format_duration(999, b, sizeof b), "999ns");
    CHECK_STR(mr_format_duration(-12000, b, sizeof b), "-12.000us");
    CHECK_STR(mr_format_duration(3000000000LL, b, sizeof b), "3.000s");
}

TEST(ints_and_hostports)
{
    long long v;
    CHECK(mr_parse_int("42", 0, 100, &v) == 0 && v == 42);
    CHECK(mr_parse_int("101", 0, 100, &v) != 0);
    CHECK(mr_parse_int("4x", 0, 100, &v) != 0);
    CHECK(mr_parse_int("", 0, 100, &v) != 0);
    char h[64];
    int port;
    CHECK(mr_parse_hostport("127.0.0.1:7000", h, sizeof h, &port) == 0);
    CHECK_STR(h, "127.0.0.1");
    CHECK_EQ(port, 7000);
    CHECK(mr_parse_hostport("[::1]:80", h, sizeof h, &port) == 0);
    CHECK_STR(h, "::1");
    CHECK(mr_parse_hostport("host", h, sizeof h, &port) != 0);
    CHECK(mr_parse_hostport(":80", h, sizeof h, &port) != 0);
    CHECK(mr_parse_hostport("a:99999", h, sizeof h, &port) != 0);
    CHECK(mr_parse_hostport("[::1]80", h, sizeof h, &port) != 0);
}

/* The wire and disk byte order is big-endian, whatever the host's. */
TEST(codec_byte_order_is_big_endian)
{
    uint8_t b[8];
    mr_put_u64(b, 0x0102030405060708ull);
    for (int i = 0; i < 8; i++)
        CHECKF(b[i] == i + 1, "byte %d is %#x", i, b[i]);
    mr_put_u32(b, 0x0a0b0c0du);
    CHECK(b[0] == 0x0a && b[1] == 0x0b && b[2] == 0x0c && b[3] == 0x0d);
    mr_put_u16(b, 0x1234);
    CHECK(b[0] == 0x12 && b[1] == 0x34);
    static const uint8_t in[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    CHECK_EQ(mr_get_u64(in), 0x0102030405060708ull);
    CHECK_EQ(mr_get_u32(in + 4), 0x05060708u);
    CHECK_EQ(mr_get_u16(in + 6), 0x0708);
}

TEST(codec_round_trips)
{
    static const uint64_t v64[] = {
        0, 1, 0xff, 0x100, 0x7fffffffffffffffull, 0x8000000000000000ull, UINT64_MAX, 0xdeadbeefull};
    uint8_t b[9];
    for (size_t i = 0; i < sizeof v64 / sizeof v64[0]; i++) {
        b[8] = 0xa5; /* never written past the width */
        mr_put_u64(b, v64[i]);
        CHECK_EQ(mr_get_u64(b), v64[i]);
        CHECK_EQ(b[8], 0xa5);
        mr_put_u32(b, (uint32_t)v64[i]);
        CHECK_EQ(mr_get_u32(b), (uint32_t)v64[i]);
        mr_put_u16(b, (uint16_t)v64[i]);
        CHECK_EQ(mr_get_u16(b), (uint16_t)v64[i]);
    }
    /* A negative int64 survives its round trip through u64. */
    mr_put_u64(b, (uint64_t)INT64_MIN);
    CHECK_EQ((int64_t)mr_get_u64(b), INT64_MIN);
    mr_put_u64(b, (uint64_t)(int64_t)-2);
    CHECK(b[0] == 0xff && b[7] == 0xfe);
    CHECK_EQ((int64_t)mr_get_u64(b), -2);
}

TEST(utf8_is_strict)
{
    CHECK_EQ(mr_utf8_seq((const unsigned char *)"a", 1), 1);
    CHECK_EQ(mr_utf8_seq((const unsigned char *)"\xc3\xa9", 2), 2);
    CHECK_EQ(mr_utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
    CHECK_EQ(mr_utf8_seq((const unsigned char *)"\xf0\x9f\x98\x80", 3), 0); /* truncated */
    CHECK(mr_utf8_valid("caf\xc3\xa9", 5));
    CHECK(mr_utf8_valid("", 0));
    CHECK(!mr_utf8_valid("\xff", 1));
    CHECK(!mr_utf8_valid("\xc0\xaf", 2));         /* overlong */
    CHECK(!mr_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!mr_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
}

/* Keys are byte strings: memcmp order, a prefix first; NULs and 0xff are bytes like others. */
TEST(bytes_order_hex_and_text)
{
    CHECK(mr_bytes_cmp("a", 1, "a", 1) == 0);
    CHECK(mr_bytes_cmp("a", 1, "a\0", 2) < 0); /* a prefix sorts first */
    CHECK(mr_bytes_cmp("a\0", 2, "a\x01", 2) < 0);
    CHECK(mr_bytes_cmp("a\xff", 2, "b", 1) < 0);
    CHECK(mr_bytes_cmp("\xff", 1, "\x7f", 1) > 0); /* unsigned */
    CHECK(mr_bytes_cmp("", 0, "\0", 1) < 0);
    CHECK(mr_bytes_cmp(NULL, 0, NULL, 0) == 0);
    char hex[16];
    mr_hex_encode("\0a\xff", 3, hex);
    CHECK_STR(hex, "0061ff");
    uint8_t b[8];
    CHECK_EQ(mr_hex_decode("0061FF", 6, b), 0);
    CHECK(memcmp(b, "\0a\xff", 3) == 0);
    CHECK_EQ(mr_hex_decode("0", 1, b), -1);
    CHECK_EQ(mr_hex_decode("0g", 2, b), -1);
    char t[32];
    CHECK_STR(mr_bytes_text("a\0\\\xff", 4, t, sizeof t), "a\\x00\\x5c\\xff");
    CHECK_STR(mr_bytes_text("abcdefghij", 10, t, 8), "abcd...");
    CHECK_STR(mr_bytes_text("abc", 3, t, 4), "abc");
    CHECK_STR(mr_bytes_text("\x01\x02", 2, t, 6), "..."); /* no room for one escape and the cut */
}

TEST_MAIN(TEST_CASE(err_wrap_grows_message), TEST_CASE(durations_parse), TEST_CASE(sizes_parse),
          TEST_CASE(format_duration), TEST_CASE(ints_and_hostports),
          TEST_CASE(codec_byte_order_is_big_endian), TEST_CASE(codec_round_trips),
          TEST_CASE(utf8_is_strict), TEST_CASE(bytes_order_hex_and_text))
