/* chronyd's command protocol (candm), just enough for the tracking report.
 * Layout from chrony's candm.h: protocol version 6, REQ_TRACKING = 33,
 * RPY_TRACKING = 5, all fields big-endian. A request must be padded to the
 * length of its reply (104 bytes) or chronyd answers STT_BADPKTLENGTH. */
#ifndef TT_CANDM_H
#define TT_CANDM_H

#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"
#include "truetime/tt.h"

#define TT_CANDM_VERSION       6
#define TT_CANDM_PKT_REQUEST   1
#define TT_CANDM_PKT_REPLY     2
#define TT_CANDM_REQ_TRACKING  33
#define TT_CANDM_RPY_TRACKING  5
#define TT_CANDM_REQ_HDR_LEN   20
#define TT_CANDM_RPY_HDR_LEN   28
#define TT_CANDM_TRACKING_LEN  104 /* 28-byte header + 76-byte tracking body */
#define TT_CANDM_STT_SUCCESS   0
#define TT_CANDM_STT_BADPKTLEN 19

/* chrony's 32-bit float: 7-bit signed exponent, 25-bit signed coefficient,
 * value = coef * 2^(exp - 25). */
double tt_candm_float_decode(uint32_t raw);
uint32_t tt_candm_float_encode(double x);

/* Writes a zero-padded tracking request of TT_CANDM_TRACKING_LEN bytes. */
void tt_candm_tracking_request(uint8_t buf[TT_CANDM_TRACKING_LEN], uint32_t sequence);

/* Decodes a reply into the chrony fields of *out (ref_id, ref_name, stratum,
 * leap_status, ref_time_ns, correction..update_interval). Checks version,
 * packet type, command, reply code, status, sequence and length. */
int tt_candm_tracking_decode(const uint8_t *buf, size_t len, uint32_t sequence, tt_sample *out,
                             mr_err *err);

/* The reply chronyd would send (for tests and fake servers). */
typedef struct tt_candm_tracking {
    uint32_t ref_id;
    uint16_t family; /* 0 unspec, 1 IPv4, 2 IPv6 */
    uint8_t addr[16];
    uint16_t stratum, leap_status;
    int64_t ref_time_ns;
    double correction, last_offset, rms_offset, freq_ppm, resid_freq_ppm, skew_ppm;
    double root_delay, root_dispersion, update_interval;
} tt_candm_tracking;

void tt_candm_tracking_encode(uint8_t buf[TT_CANDM_TRACKING_LEN], uint32_t sequence,
                              uint16_t status, const tt_candm_tracking *t);

#endif
