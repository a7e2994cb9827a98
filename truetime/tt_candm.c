/* Encoding and defensive decoding of chronyd's tracking request and reply. */
#include "truetime/tt_candm.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/mr_codec.h"

#define FLOAT_EXP_BITS  7
#define FLOAT_COEF_BITS 25

double tt_candm_float_decode(uint32_t x)
{
    int32_t exp = (int32_t)(x >> FLOAT_COEF_BITS);
    if (exp >= 1 << (FLOAT_EXP_BITS - 1))
        exp -= 1 << FLOAT_EXP_BITS;
    exp -= FLOAT_COEF_BITS;
    int32_t coef = (int32_t)(x % (1U << FLOAT_COEF_BITS));
    if (coef >= 1 << (FLOAT_COEF_BITS - 1))
        coef -= 1 << FLOAT_COEF_BITS;
    return ldexp((double)coef, exp);
}

uint32_t tt_candm_float_encode(double x)
{
    /* Find exp, coef with |coef| < 2^24 and x ~= coef * 2^(exp - 25). With
     * x = m * 2^e (0.5 <= m < 1), exp = e + 1 gives coef = m * 2^24. */
    const int32_t exp_max = (1 << (FLOAT_EXP_BITS - 1)) - 1;
    const int32_t exp_min = -(1 << (FLOAT_EXP_BITS - 1));
    const int32_t coef_max = (1 << (FLOAT_COEF_BITS - 1)) - 1;
    int32_t exp = 0, coef = 0;
    if (isfinite(x) && x != 0.0) {
        int e;
        frexp(x, &e);
        exp = e + 1;
        if (exp < exp_min)
            exp = exp_min;
        double c = nearbyint(ldexp(x, FLOAT_COEF_BITS - exp));
        if (fabs(c) > coef_max) {
            exp++;
            c = nearbyint(ldexp(x, FLOAT_COEF_BITS - exp));
        }
        if (exp > exp_max) {
            exp = exp_max;
            c = x < 0 ? -coef_max : coef_max;
        }
        coef = (int32_t)c;
    } else if (isinf(x)) {
        exp = exp_max;
        coef = x < 0 ? -coef_max : coef_max;
    }
    uint32_t ue = (uint32_t)exp & ((1U << FLOAT_EXP_BITS) - 1);
    uint32_t uc = (uint32_t)coef & ((1U << FLOAT_COEF_BITS) - 1);
    return (ue << FLOAT_COEF_BITS) | uc;
}

void tt_candm_tracking_request(uint8_t buf[TT_CANDM_TRACKING_LEN], uint32_t sequence)
{
    memset(buf, 0, TT_CANDM_TRACKING_LEN);
    buf[0] = TT_CANDM_VERSION;
    buf[1] = TT_CANDM_PKT_REQUEST;
    mr_put_u16(buf + 4, TT_CANDM_REQ_TRACKING);
    mr_put_u16(buf + 6, 0); /* attempt */
    mr_put_u32(buf + 8, sequence);
}

/* Offsets inside the reply (header 28 bytes, then RPY_Tracking). */
enum {
    O_REFID = 28,
    O_ADDR = 32, /* 16 bytes of address, then family, pad */
    O_FAMILY = 48,
    O_STRATUM = 52,
    O_LEAP = 54,
    O_REFTIME = 56, /* sec_high, sec_low, nsec */
    O_FLOATS = 68,  /* nine chrony floats */
};

static const char *status_text(uint16_t s)
{
    switch (s) {
    case 1:
        return "failed";
    case 2:
        return "unauthorised";
    case 3:
        return "invalid";
    case 18:
        return "bad packet version";
    case 19:
        return "bad packet length";
    default:
        return "error";
    }
}

int tt_candm_tracking_decode(const uint8_t *buf, size_t len, uint32_t sequence, tt_sample *out,
                             mr_err *err)
{
    if (len < TT_CANDM_RPY_HDR_LEN)
        return mr_errf(err, MR_EPROTO, "chronyd reply too short: %zu bytes (header is %d)", len,
                       TT_CANDM_RPY_HDR_LEN);
    if (buf[0] != TT_CANDM_VERSION)
        return mr_errf(err, MR_EPROTO, "chronyd reply has protocol version %u, want %u", buf[0],
                       TT_CANDM_VERSION);
    if (buf[1] != TT_CANDM_PKT_REPLY)
        return mr_errf(err, MR_EPROTO, "chronyd sent packet type %u, want a reply (%u)", buf[1],
                       TT_CANDM_PKT_REPLY);
    if (mr_get_u32(buf + 16) != sequence)
        return mr_errf(err, MR_EPROTO, "chronyd reply for sequence %u, want %u",
                       mr_get_u32(buf + 16), sequence);
    uint16_t status = mr_get_u16(buf + 8);
    if (status != TT_CANDM_STT_SUCCESS)
        return mr_errf(err, MR_EPROTO, "chronyd refused the tracking request: status %u (%s)",
                       status, status_text(status));
    if (mr_get_u16(buf + 4) != TT_CANDM_REQ_TRACKING ||
        mr_get_u16(buf + 6) != TT_CANDM_RPY_TRACKING)
        return mr_errf(err, MR_EPROTO, "chronyd answered command %u with reply %u, want %u/%u",
                       mr_get_u16(buf + 4), mr_get_u16(buf + 6), TT_CANDM_REQ_TRACKING,
                       TT_CANDM_RPY_TRACKING);
    if (len < TT_CANDM_TRACKING_LEN)
        return mr_errf(err, MR_EPROTO, "chronyd tracking reply truncated: %zu of %d bytes", len,
                       TT_CANDM_TRACKING_LEN);

    out->ref_id = mr_get_u32(buf + O_REFID);
    uint16_t family = mr_get_u16(buf + O_FAMILY);
    if (family == 1) {
        inet_ntop(AF_INET, buf + O_ADDR, out->ref_name, sizeof out->ref_name);
    } else if (family == 2) {
        inet_ntop(AF_INET6, buf + O_ADDR, out->ref_name, sizeof out->ref_name);
    } else {
        /* No address: the reference id is often four ASCII letters (e.g. a local reference). */
        char s[5];
        int printable = 1;
        for (int i = 0; i < 4; i++) {
            s[i] = (char)((out->ref_id >> (24 - 8 * i)) & 0xff);
            if (s[i] < 0x20 || s[i] > 0x7e)
                printable = 0;
        }
        s[4] = '\0';
        if (printable)
            snprintf(out->ref_name, sizeof out->ref_name, "%s", s);
        else
            snprintf(out->ref_name, sizeof out->ref_name, "%08X", out->ref_id);
    }
    out->stratum = mr_get_u16(buf + O_STRATUM);
    out->leap_status = mr_get_u16(buf + O_LEAP);
    uint32_t hi = mr_get_u32(buf + O_REFTIME), lo = mr_get_u32(buf + O_REFTIME + 4);
    uint32_t nsec = mr_get_u32(buf + O_REFTIME + 8);
    if (nsec >= 1000000000u)
        return mr_errf(err, MR_EPROTO, "chronyd reference time has %u nanoseconds", nsec);
    /* chrony sends 0x7fffffff in the high word when it has no high bits. */
    int64_t sec = (hi == 0x7fffffffu) ? (int64_t)lo : (int64_t)(((uint64_t)hi << 32) | lo);
    if (sec < 0 || sec > INT64_MAX / 1000000000 - 1)
        return mr_errf(err, MR_EPROTO, "chronyd reference time out of range");
    out->ref_time_ns = sec * 1000000000 + nsec;
    double *fields[9] = {&out->correction_s, &out->last_offset_s,     &out->rms_offset_s,
                         &out->freq_ppm,     &out->resid_freq_ppm,    &out->skew_ppm,
                         &out->root_delay_s, &out->root_dispersion_s, &out->update_interval_s};
    for (int i = 0; i < 9; i++)
        *fields[i] = tt_candm_float_decode(mr_get_u32(buf + O_FLOATS + 4 * i));
    return MR_OK;
}

void tt_candm_tracking_encode(uint8_t buf[TT_CANDM_TRACKING_LEN], uint32_t sequence,
                              uint16_t status, const tt_candm_tracking *t)
{
    memset(buf, 0, TT_CANDM_TRACKING_LEN);
    buf[0] = TT_CANDM_VERSION;
    buf[1] = TT_CANDM_PKT_REPLY;
    mr_put_u16(buf + 4, TT_CANDM_REQ_TRACKING);
    mr_put_u16(buf + 6, TT_CANDM_RPY_TRACKING);
    mr_put_u16(buf + 8, status);
    mr_put_u32(buf + 16, sequence);
    mr_put_u32(buf + O_REFID, t->ref_id);
    memcpy(buf + O_ADDR, t->addr, 16);
    mr_put_u16(buf + O_FAMILY, t->family);
    mr_put_u16(buf + O_STRATUM, t->stratum);
    mr_put_u16(buf + O_LEAP, t->leap_status);
    int64_t sec = t->ref_time_ns / 1000000000;
    mr_put_u32(buf + O_REFTIME, (uint32_t)((uint64_t)sec >> 32));
    mr_put_u32(buf + O_REFTIME + 4, (uint32_t)sec);
    mr_put_u32(buf + O_REFTIME + 8, (uint32_t)(t->ref_time_ns % 1000000000));
    const double v[9] = {t->correction, t->last_offset,     t->rms_offset,
                         t->freq_ppm,   t->resid_freq_ppm,  t->skew_ppm,
                         t->root_delay, t->root_dispersion, t->update_interval};
    for (int i = 0; i < 9; i++)
        mr_put_u32(buf + O_FLOATS + 4 * i, tt_candm_float_encode(v[i]));
}
