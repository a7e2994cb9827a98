/* CRC32C (Castagnoli, common/mr_crc32c.h): the snapshot stream's checksum and each stored
 * version's. SQLite pages carry no checksum, so a flipped bit inside a value would otherwise be
 * served as data; a version whose checksum fails is reported as MR_ECORRUPT instead. */
#include "tablet/mvcc/mv_int.h"

#include "common/mr_codec.h"
#include "common/mr_crc32c.h"

uint32_t mv_crc32c(uint32_t crc, const void *p, size_t n)
{
    return mr_crc32c(crc, p, n);
}

uint32_t mv_version_crc(const void *key, size_t klen, int64_t ts, int tomb, const void *v,
                        size_t vlen)
{
    /* The timestamp and the kind are covered too, so a version cannot move in time or turn
     * from a value into a tombstone unnoticed. */
    unsigned char hdr[9];
    mr_put_u64(hdr, (uint64_t)ts);
    hdr[8] = (unsigned char)(tomb ? 'D' : 'P');
    uint32_t c = mv_crc32c(0, hdr, sizeof hdr);
    if (klen)
        c = mv_crc32c(c, key, klen);
    if (vlen)
        c = mv_crc32c(c, v, vlen);
    return c;
}
