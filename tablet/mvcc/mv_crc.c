/* CRC32C (Castagnoli), table-driven: the snapshot stream's checksum and each stored version's.
 * SQLite pages carry no checksum, so a flipped bit inside a value would otherwise be served as
 * data; a version whose checksum fails is reported as MR_ECORRUPT instead. */
#include "tablet/mvcc/mv_int.h"

#include <pthread.h>

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t mv_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *b = p;
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t mv_version_crc(const void *key, size_t klen, int64_t ts, int tomb, const void *v,
                        size_t vlen)
{
    /* The timestamp and the kind are covered too, so a version cannot move in time or turn
     * from a value into a tombstone unnoticed. */
    unsigned char hdr[9];
    for (int i = 0; i < 8; i++)
        hdr[i] = (unsigned char)((uint64_t)ts >> (8 * i));
    hdr[8] = (unsigned char)(tomb ? 'D' : 'P');
    uint32_t c = mv_crc32c(0, hdr, sizeof hdr);
    if (klen)
        c = mv_crc32c(c, key, klen);
    if (vlen)
        c = mv_crc32c(c, v, vlen);
    return c;
}
