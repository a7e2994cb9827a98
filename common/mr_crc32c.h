/* CRC32C (Castagnoli), the checksum on every log-store record and MVCC version: detects the
 * single flipped bits and torn or misdirected writes that SQLite (which keeps
 * no page checksums) would otherwise serve as valid data. */
#ifndef MR_CRC32C_H
#define MR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (0 for a fresh checksum) over n bytes at p. Thread-safe.
 * mr_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t mr_crc32c(uint32_t crc, const void *p, size_t n);

/* The portable table-driven path alone (tests compare it with the hardware one). */
uint32_t mr_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
