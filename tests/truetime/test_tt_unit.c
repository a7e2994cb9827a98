/* Unit tests of truetime/: candm codec, chrony float, bound arithmetic,
 * after/before edges, the seqlock under a racing writer, the fault hook,
 * commit wait, and the chrony client against a scripted fake chronyd. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/mr_util.h"
#include "launch/proc.h"
#include "tests/test.h"
#include "truetime/tt.h"
#include "truetime/tt_candm.h"
#include "truetime/tt_sources.h"

TEST(float_known_encodings)
{
    /* Hand-computed: value = coef * 2^(exp - 25). */
    CHECK_NEAR(tt_candm_float_decode(0x04800000u), 1.0, 0.0);              /* exp 2, coef 2^23 */
    CHECK_NEAR(tt_candm_float_decode(0x02800000u), 0.5, 0.0);              /* exp 1, coef 2^23 */
    CHECK_NEAR(tt_candm_float_decode(0xFE000001u), 1.0 / 67108864.0, 0.0); /* exp -1, coef 1 */
    CHECK_NEAR(tt_candm_float_decode(0x05FFFFFFu), -1.0 / 8388608.0, 0.0); /* exp 2, coef -1 */
    CHECK_NEAR(tt_candm_float_decode(0u), 0.0, 0.0);
}

TEST(float_round_trip)
{
    const double values[] = {0.0,     1.0,       -1.0,   0.5, 1e-9,   -1e-9, 0.005,
                             123.456, -0.000123, 3.5e-6, 1e6, 0.0625, 2.0,   1.9999999};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        double v = values[i];
        double r = tt_candm_float_decode(tt_candm_float_encode(v));
        double tol = v == 0.0 ? 0.0 : (v < 0 ? -v : v) * 1.2e-7; /* 24-bit mantissa */
        CHECKF(r - v <= tol && v - r <= tol, "value %g came back as %g", v, r);
    }
    /* Out of range saturates instead of wrapping sign. */
    CHECK(tt_candm_float_decode(tt_candm_float_encode(1e300)) > 1e18);
    CHECK(tt_candm_float_decode(tt_candm_float_encode(-1e300)) < -1e18);
    CHECK_NEAR(tt_candm_float_decode(tt_candm_float_encode(1e-300)), 0.0, 1e-30);
}

TEST(request_layout)
{
    uint8_t b[TT_CANDM_TRACKING_LEN];
    memset(b, 0xAA, sizeof b);
    tt_candm_tracking_request(b, 0x01020304u);
    CHECK_EQ(b[0], 6);
    CHECK_EQ(b[1], 1);
    CHECK_EQ((b[4] << 8) | b[5], 33);
    CHECK_EQ(b[8], 1);
    CHECK_EQ(b[11], 4);
    for (int i = 12; i < TT_CANDM_TRACKING_LEN; i++)
        CHECKF(b[i] == 0, "byte %d not zero-padded", i);
}

static tt_candm_tracking sample_tracking(void)
{
    tt_candm_tracking t;
    memset(&t, 0, sizeof t);
    t.ref_id = 0x7F000001u;
    t.family = 1;
    t.addr[0] = 127;
    t.addr[3] = 1;
    t.stratum = 9;
    t.leap_status = 0;
    t.ref_time_ns = 1763890000123456789LL;
    t.correction = -0.000012;
    t.root_delay = 0.0002;
    t.root_dispersion = 0.00003;
    t.update_interval = 0.0625;
    t.freq_ppm = -1.5;
    t.skew_ppm = 0.01;
    return t;
}

TEST(reply_decode)
{
    uint8_t b[TT_CANDM_TRACKING_LEN];
    tt_candm_tracking t = sample_tracking();
    tt_candm_tracking_encode(b, 77, 0, &t);
    tt_sample s;
    memset(&s, 0, sizeof s);
    mr_err e;
    CHECK_EQ(tt_candm_tracking_decode(b, sizeof b, 77, &s, &e), MR_OK);
    CHECK_STR(s.ref_name, "127.0.0.1");
    CHECK_EQ(s.ref_id, 0x7F000001u);
    CHECK_EQ(s.stratum, 9);
    CHECK_EQ(s.ref_time_ns, t.ref_time_ns);
    CHECK_NEAR(s.correction_s, -0.000012, 1e-12 + 0.000012 * 1.2e-7);
    CHECK_NEAR(s.root_delay_s, 0.0002, 0.0002 * 1.2e-7);
    CHECK_NEAR(s.root_dispersion_s, 0.00003, 0.00003 * 1.2e-7);
    CHECK_NEAR(s.update_interval_s, 0.0625, 0);
    /* The bound for these figures: 12us + 100us + 30us. */
    int64_t bound = tt_chrony_bound_ns(s.correction_s, s.root_delay_s, s.root_dispersion_s);
    CHECK(bound >= 142000 && bound <= 142010);

    /* A local reference with no address is named by its ASCII id. */
    t.family = 0;
    t.ref_id = 0x4C4F434Cu; /* "LOCL" */
    tt_candm_tracking_encode(b, 78, 0, &t);
    CHECK_EQ(tt_candm_tracking_decode(b, sizeof b, 78, &s, &e), MR_OK);
    CHECK_STR(s.ref_name, "LOCL");
}

TEST(reply_malformed)
{
    uint8_t b[TT_CANDM_TRACKING_LEN];
    tt_candm_tracking t = sample_tracking();
    tt_sample s;
    mr_err e;
    /* chronyd's answer to a short request: a 28-byte reply with STT_BADPKTLENGTH. */
    tt_candm_tracking_encode(b, 5, TT_CANDM_STT_BADPKTLEN, &t);
    CHECK_EQ(tt_candm_tracking_decode(b, 28, 5, &s, &e), MR_EPROTO);
    CHECK(strstr(mr_err_msg(&e), "bad packet length") != NULL);
    tt_candm_tracking_encode(b, 5, 0, &t);
    CHECK_EQ(tt_candm_tracking_decode(b, 10, 5, &s, &e), MR_EPROTO);
    CHECK(strstr(mr_err_msg(&e), "too short") != NULL);
    CHECK_EQ(tt_candm_tracking_decode(b, 60, 5, &s, &e), MR_EPROTO);
    CHECK(strstr(mr_err_msg(&e), "truncated") != NULL);
    CHECK_EQ(tt_candm_tracking_decode(b, sizeof b, 6, &s, &e), MR_EPROTO);
    CHECK(strstr(mr_err_msg(&e), "sequence") != NULL);
    b[0] = 5;
    CHECK_EQ(tt_candm_tracking_decode(b, sizeof b, 5, &s, &e), MR_EPROTO);
    CHECK(strstr(mr_err_msg(&e), "version") != NULL);
    tt_candm_tracking_encode(b, 5, 0, &t);
    b[1] = 1;
    CHECK_EQ(tt_candm_tracking_decode(b, sizeof b, 5, &s, &e), MR_EPROTO);
    tt_candm_tracking_encode(b, 5, 0, &t);
    b[7] = 6; /* another reply kind */
    CHECK_EQ(tt_candm_tracking_decode(b, sizeof b, 5, &s, &e), MR_EPROTO);
    tt_candm_tracking_encode(b, 5, 0, &t);
    b[64] = 0xFF; /* nanoseconds >= 1e9 */
    CHECK_EQ(tt_candm_tracking_decode(b, sizeof b, 5, &s, &e), MR_EPROTO);
    /* Random garbage never crashes and is rejected or decoded consistently. */
    srand(1);
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)(rand() % (TT_CANDM_TRACKING_LEN + 8));
        uint8_t g[TT_CANDM_TRACKING_LEN + 8];
        for (size_t j = 0; j < len; j++)
            g[j] = (uint8_t)rand();
        if (len > 1 && rand() % 2) {
            g[0] = 6;
            g[1] = 2;
        }
        int rc = tt_candm_tracking_decode(g, len, 0, &s, &e);
        CHECK(rc == MR_OK || rc == MR_EPROTO);
    }
}

TEST(bound_arithmetic)
{
    /* 1 ms bound, 1 s later, 200 ppm: 1.2 ms. */
    CHECK_EQ(tt_bound_grow(1000000, 1000000000, 200000), 1200000);
    /* Rounds up: 1 ns at 200 ppm adds 1 ns, never 0. */
    CHECK_EQ(tt_bound_grow(0, 1, 200000), 1);
    CHECK_EQ(tt_bound_grow(5, -100, 200000), 5);
    CHECK_EQ(tt_bound_grow(5, 100, 0), 5);
    CHECK_EQ(tt_bound_grow(0, 1500000000, 200000), 300000);
    /* Saturates rather than overflowing. */
    CHECK(tt_bound_grow(INT64_MAX / 4, 1000000000000LL, 200000) == INT64_MAX / 4);
    CHECK(tt_bound_grow(1, INT64_MAX, 1000000000) == INT64_MAX / 4);
    CHECK_EQ(tt_chrony_bound_ns(-0.001, 0.002, 0.0005), 2500000);
    CHECK_EQ(tt_chrony_bound_ns(0.001, -0.002, 0.0005), 2500000);
    CHECK(tt_chrony_bound_ns(1e300, 0, 0) == INT64_MAX / 4);
}

TEST(after_before_edges)
{
    tt_interval iv = {10, 20};
    CHECK(tt_interval_after(iv, 9));
    CHECK(!tt_interval_after(iv, 10));
    CHECK(!tt_interval_after(iv, 15));
    CHECK(tt_interval_before(iv, 21));
    CHECK(!tt_interval_before(iv, 20));
    CHECK(!tt_interval_before(iv, 15));
    CHECK_EQ(tt_interval_epsilon(iv), 5);
}

TEST(fixed_clock_contains_system_time)
{
    tt_clock *c;
    mr_err e;
    CHECK_EQ(tt_clock_open_manual("fixed:1ms", NULL, &c, &e), MR_OK);
    CHECK_EQ(tt_status_now(c), TT_SYNCHRONIZED);
    int64_t t0 = mr_realtime_ns();
    tt_interval iv = tt_now(c);
    int64_t t1 = mr_realtime_ns();
    CHECK(iv.earliest <= t1 && iv.latest >= t0);
    CHECK(tt_interval_epsilon(iv) >= 1000000);
    CHECK(tt_interval_epsilon(iv) < 1000000 + 100000); /* drift growth only */
    CHECK(tt_after(c, t0 - 2000000));
    CHECK(!tt_after(c, t1));
    CHECK(tt_before(c, mr_realtime_ns() + 5000000));
    tt_clock_close(c);
}

TEST(bad_specs_rejected)
{
    tt_clock *c;
    mr_err e;
    CHECK_EQ(tt_clock_open_manual("fixed:abc", NULL, &c, &e), MR_EINVAL);
    CHECK(strstr(mr_err_msg(&e), "abc") != NULL);
    CHECK_EQ(tt_clock_open_manual("fixed:-1ms", NULL, &c, &e), MR_EINVAL);
    CHECK_EQ(tt_clock_open_manual("gps", NULL, &c, &e), MR_EINVAL);
    CHECK_EQ(tt_clock_open_manual("", NULL, &c, &e), MR_EINVAL);
    CHECK_EQ(tt_clock_open_manual("chrony:", NULL, &c, &e), MR_EINVAL);
    tt_config cfg;
    tt_config_default(&cfg);
    cfg.cap_ns = 0;
    CHECK_EQ(tt_clock_open_manual("fixed:1ms", &cfg, &c, &e), MR_EINVAL);
}

TEST(bound_over_cap_is_unhealthy)
{
    tt_clock *c;
    mr_err e;
    CHECK_EQ(tt_clock_open_manual("fixed:20ms", NULL, &c, &e), MR_OK);
    CHECK_EQ(tt_status_now(c), TT_UNHEALTHY);
    CHECK(!tt_healthy(c));
    tt_clock_close(c);
    /* Drift growth alone pushes a stale sample over the cap. */
    tt_config cfg;
    tt_config_default(&cfg);
    cfg.cap_ns = 2 * MR_NS_PER_MS;
    CHECK_EQ(tt_clock_open_manual("fixed:1ms", &cfg, &c, &e), MR_OK);
    CHECK_EQ(tt_status_now(c), TT_SYNCHRONIZED);
    /* Pretend the sample is 11 s old: 1 ms + 11 s * 200 ppm = 3.2 ms > cap.
     * (At exactly 10 s the check sat on its edge, 3 ms, and a reader whose
     * coarse clock had not ticked yet could land a nanosecond below it.) */
    tt_clock_publish_raw(c, MR_NS_PER_MS, mr_monotonic_ns() - 11 * MR_NS_PER_S, TT_SYNCHRONIZED,
                         mr_monotonic_ns() + MR_NS_PER_S);
    CHECK_EQ(tt_status_now(c), TT_UNHEALTHY);
    tt_interval iv = tt_now(c);
    CHECK(tt_interval_epsilon(iv) >= 3 * MR_NS_PER_MS);
    /* A sample the poller did not refresh in time degrades to free running. */
    tt_clock_publish_raw(c, MR_NS_PER_MS, mr_monotonic_ns(), TT_SYNCHRONIZED,
                         mr_monotonic_ns() - 1);
    CHECK_EQ(tt_status_now(c), TT_FREE_RUNNING);
    tt_clock_close(c);
}

TEST(fault_offset_lies_without_widening)
{
    tt_clock *c;
    mr_err e;
    CHECK_EQ(tt_clock_open_manual("fixed:1ms", NULL, &c, &e), MR_OK);
    int64_t eps0 = tt_interval_epsilon(tt_now(c));
    tt_set_fault_offset(c, 5 * MR_NS_PER_MS);
    CHECK_EQ(tt_fault_offset(c), 5 * MR_NS_PER_MS);
    int64_t t0 = mr_realtime_ns();
    tt_interval iv = tt_now(c);
    /* The interval no longer contains the real time: the clock lies. */
    CHECK(iv.earliest > t0);
    CHECK(tt_interval_epsilon(iv) - eps0 < 100000);
    tt_set_fault_offset(c, 0);
    iv = tt_now(c);
    CHECK(iv.earliest <= mr_realtime_ns());
    tt_clock_close(c);

    setenv("MERIDIAN_CLOCK_OFFSET", "-7ms", 1);
    CHECK_EQ(tt_clock_open_manual("fixed:1ms", NULL, &c, &e), MR_OK);
    CHECK_EQ(tt_fault_offset(c), -7 * MR_NS_PER_MS);
    CHECK(tt_now(c).latest < mr_realtime_ns());
    tt_clock_close(c);
    setenv("MERIDIAN_CLOCK_OFFSET", "seven", 1);
    CHECK_EQ(tt_clock_open_manual("fixed:1ms", NULL, &c, &e), MR_EINVAL);
    unsetenv("MERIDIAN_CLOCK_OFFSET");
}

TEST(fault_unhealthy_hook)
{
    tt_clock *c;
    mr_err e;
    CHECK_EQ(tt_clock_open_manual("fixed:1ms", NULL, &c, &e), MR_OK);
    CHECK(tt_healthy(c));
    int64_t eps = tt_interval_epsilon(tt_now(c));
    tt_set_fault_unhealthy(c, true);
    CHECK(tt_fault_unhealthy(c));
    CHECK_EQ(tt_status_now(c), TT_UNHEALTHY);
    CHECK(!tt_healthy(c));
    CHECK(tt_interval_epsilon(tt_now(c)) - eps < 100000); /* the interval stays honest */
    tt_set_fault_unhealthy(c, false);
    CHECK(tt_healthy(c));
    tt_clock_close(c);
    setenv("MERIDIAN_CLOCK_UNHEALTHY", "1", 1);
    CHECK_EQ(tt_clock_open_manual("fixed:1ms", NULL, &c, &e), MR_OK);
    unsetenv("MERIDIAN_CLOCK_UNHEALTHY");
    CHECK_EQ(tt_status_now(c), TT_UNHEALTHY);
    tt_clock_close(c);
}

TEST(commit_wait)
{
    tt_clock *c;
    mr_err e;
    CHECK_EQ(tt_clock_open("fixed:2ms", NULL, &c, &e), MR_OK);
    for (int i = 0; i < 5; i++) {
        int64_t s = tt_now(c).latest; /* a commit timestamp as a leader picks it */
        CHECK(!tt_after(c, s));
        CHECK(tt_wait_ns(c, s) > 0);
        tt_interval at = tt_wait_until_after(c, s);
        CHECK(tt_interval_after(at, s));
        CHECK(tt_after(c, s));
        CHECK_EQ(tt_wait_ns(c, s), 0);
        /* Overshoot is small: well under the wait itself (about 2 epsilon = 4 ms). */
        CHECKF(at.earliest - s < 50 * MR_NS_PER_MS, "overshoot %lld ns",
               (long long)(at.earliest - s));
    }
    tt_clock_close(c);
}

/* ---- the seqlock under a racing writer ---- */

static _Atomic int race_stop;
static _Atomic long race_torn;

static void *race_reader(void *arg)
{
    tt_clock *c = arg;
    while (!atomic_load(&race_stop)) {
        int64_t b, m, f;
        tt_status st;
        tt_clock_read_raw(c, &b, &m, &st, &f);
        /* The writer keeps m = 7b, f = 13b, status = b % 3 + 1. */
        if (m != 7 * b || f != 13 * b || (int)st != (int)(b % 3) + 1)
            atomic_fetch_add(&race_torn, 1);
        tt_interval iv = tt_now(c);
        if (iv.earliest > iv.latest)
            atomic_fetch_add(&race_torn, 1);
    }
    return NULL;
}

TEST(seqlock_readers_race_writer)
{
    tt_clock *c;
    mr_err e;
    CHECK_EQ(tt_clock_open_manual("fixed:1ms", NULL, &c, &e), MR_OK);
    tt_clock_publish_raw(c, 1, 7, (tt_status)2, 13);
    atomic_store(&race_stop, 0);
    atomic_store(&race_torn, 0);
    pthread_t r[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&r[i], NULL, race_reader, c);
    for (int64_t k = 1; k <= 300000; k++)
        tt_clock_publish_raw(c, k, 7 * k, (tt_status)(k % 3 + 1), 13 * k);
    atomic_store(&race_stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(r[i], NULL);
    CHECK_EQ(atomic_load(&race_torn), 0);
    tt_clock_close(c);
}

/* ---- the chrony client against a scripted fake chronyd ---- */

typedef enum {
    FAKE_OK,
    FAKE_UNSYNC,
    FAKE_STALE,
    FAKE_WIDE,
    FAKE_BADLEN,
    FAKE_SILENT,
    FAKE_WRONG_SEQ_FIRST,
    FAKE_NOREF
} fake_mode;

typedef struct {
    int fd;
    fake_mode mode;
    int requests, bad_requests;
} fake_chronyd;

static void *fake_serve(void *arg)
{
    fake_chronyd *f = arg;
    uint8_t req[512];
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(f->fd, req, sizeof req, 0, (struct sockaddr *)&from, &fl);
    if (n <= 0)
        return NULL;
    f->requests++;
    if (n != TT_CANDM_TRACKING_LEN || req[0] != 6 || req[1] != 1 || req[5] != 33)
        f->bad_requests++;
    uint32_t seq =
        ((uint32_t)req[8] << 24) | ((uint32_t)req[9] << 16) | ((uint32_t)req[10] << 8) | req[11];
    tt_candm_tracking t = sample_tracking();
    t.ref_time_ns = mr_realtime_ns() - 100 * MR_NS_PER_MS;
    uint8_t b[TT_CANDM_TRACKING_LEN];
    uint16_t status = 0;
    size_t len = sizeof b;
    switch (f->mode) {
    case FAKE_UNSYNC:
        t.leap_status = 3;
        break;
    case FAKE_STALE:
        t.ref_time_ns = mr_realtime_ns() - 60 * MR_NS_PER_S;
        break;
    case FAKE_WIDE:
        t.root_dispersion = 0.050;
        break;
    case FAKE_NOREF:
        t.ref_id = 0;
        break;
    case FAKE_BADLEN:
        status = TT_CANDM_STT_BADPKTLEN;
        len = 28;
        break;
    case FAKE_SILENT:
        return NULL;
    case FAKE_WRONG_SEQ_FIRST:
        tt_candm_tracking_encode(b, seq - 1, 0, &t);
        sendto(f->fd, b, sizeof b, 0, (struct sockaddr *)&from, fl);
        break;
    case FAKE_OK:
        break;
    }
    tt_candm_tracking_encode(b, seq, status, &t);
    sendto(f->fd, b, len, 0, (struct sockaddr *)&from, fl);
    return NULL;
}

static tt_status fake_round(fake_mode mode, tt_sample *s, int *bad_requests)
{
    char dir[200], path[300], spec[320];
    if (tmpdir_make(dir, sizeof dir, "meridian-fakechrony") != 0)
        return TT_UNKNOWN;
    snprintf(path, sizeof path, "%s/chronyd.sock", dir);
    fake_chronyd f = {.mode = mode};
    f.fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return TT_UNKNOWN;
    memcpy(a.sun_path, path, strlen(path) + 1);
    bind(f.fd, (struct sockaddr *)&a, sizeof a);
    pthread_t th;
    pthread_create(&th, NULL, fake_serve, &f);
    snprintf(spec, sizeof spec, "chrony:%s", path);
    tt_config cfg;
    tt_config_default(&cfg);
    cfg.timeout_ns = 200 * MR_NS_PER_MS;
    tt_clock *c;
    mr_err e;
    tt_status st = TT_UNKNOWN;
    if (tt_clock_open_manual(spec, &cfg, &c, &e) == MR_OK) {
        st = tt_status_now(c);
        tt_last_sample(c, s);
        tt_clock_close(c);
    }
    shutdown(f.fd, SHUT_RDWR);
    pthread_join(th, NULL);
    close(f.fd);
    *bad_requests = f.bad_requests;
    tmpdir_remove(dir);
    return st;
}

TEST(chrony_client_verdicts)
{
    tt_sample s;
    int bad;
    CHECK_EQ(fake_round(FAKE_OK, &s, &bad), TT_SYNCHRONIZED);
    CHECK_EQ(bad, 0);
    CHECK(s.valid);
    CHECK_STR(s.ref_name, "127.0.0.1");
    CHECK(s.bound_ns >= 142000 && s.bound_ns < 143000);
    CHECK_EQ(fake_round(FAKE_WRONG_SEQ_FIRST, &s, &bad), TT_SYNCHRONIZED);
    CHECK_EQ(fake_round(FAKE_UNSYNC, &s, &bad), TT_UNHEALTHY);
    CHECK(strstr(s.reason, "unsynchronized") != NULL);
    CHECK_EQ(fake_round(FAKE_NOREF, &s, &bad), TT_UNHEALTHY);
    CHECK(strstr(s.reason, "reference id 0") != NULL);
    CHECK_EQ(fake_round(FAKE_STALE, &s, &bad), TT_FREE_RUNNING);
    CHECK(strstr(s.reason, "ago") != NULL);
    CHECK_EQ(fake_round(FAKE_WIDE, &s, &bad), TT_UNHEALTHY);
    CHECK(strstr(s.reason, "over the cap") != NULL);
    CHECK_EQ(fake_round(FAKE_BADLEN, &s, &bad), TT_UNHEALTHY);
    CHECK(strstr(s.reason, "bad packet length") != NULL);
    CHECK_EQ(fake_round(FAKE_SILENT, &s, &bad), TT_UNHEALTHY);
    CHECK(strstr(s.reason, "no reply") != NULL);
}

TEST(chrony_missing_socket)
{
    tt_clock *c;
    mr_err e;
    CHECK_EQ(tt_clock_open_manual("chrony:/nonexistent/chronyd.sock", NULL, &c, &e), MR_OK);
    CHECK_EQ(tt_status_now(c), TT_UNHEALTHY);
    tt_sample s;
    tt_last_sample(c, &s);
    CHECK(strstr(s.reason, "cannot reach chronyd") != NULL);
    /* No usable sample: the interval is unbounded, never a guess. */
    tt_interval iv = tt_now(c);
    CHECK(iv.latest - iv.earliest > 1000000LL * MR_NS_PER_S);
    tt_clock_close(c);
}

TEST(kernel_source_samples)
{
    tt_clock *c;
    mr_err e;
    CHECK_EQ(tt_clock_open_manual("kernel", NULL, &c, &e), MR_OK);
    tt_sample s;
    tt_last_sample(c, &s);
    CHECK(s.valid);
    CHECK(s.maxerror_ns >= 0);
    if (s.status != TT_SYNCHRONIZED)
        CHECK(strstr(s.reason, "STA_UNSYNC") != NULL || strstr(s.reason, "cap") != NULL);
    tt_clock_close(c);
}

TEST_MAIN(TEST_CASE(float_known_encodings), TEST_CASE(float_round_trip), TEST_CASE(request_layout),
          TEST_CASE(reply_decode), TEST_CASE(reply_malformed), TEST_CASE(bound_arithmetic),
          TEST_CASE(after_before_edges), TEST_CASE(fixed_clock_contains_system_time),
          TEST_CASE(bad_specs_rejected), TEST_CASE(bound_over_cap_is_unhealthy),
          TEST_CASE(fault_offset_lies_without_widening), TEST_CASE(fault_unhealthy_hook),
          TEST_CASE(commit_wait), TEST_CASE(seqlock_readers_race_writer),
          TEST_CASE(chrony_client_verdicts), TEST_CASE(chrony_missing_socket),
          TEST_CASE(kernel_source_samples))
