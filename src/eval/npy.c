/* npy.c: NumPy .npy version 1.0 writer for float32 matrices (what `comine embed` writes):
 * magic, version 1.0, u16 header length, the header dict padded with spaces to a 64-byte
 * boundary and ending in '\n', then the little-endian float32 data, row-major. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "comine/eval.h"

comine_status comine_npy_write_f32(const char *path, const float *data, int rows, int cols)
{
    COMINE_ASSERT(rows >= 0 && cols >= 0);
    char dict[128];
    int dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
    size_t total = 10 + (size_t)dl + 1;
    size_t padded = (total + 63) / 64 * 64;
    uint8_t head[256];
    memcpy(head, "\x93NUMPY", 6);
    head[6] = 1;
    head[7] = 0;
    uint16_t hl = (uint16_t)(padded - 10);
    head[8] = (uint8_t)(hl & 0xff);
    head[9] = (uint8_t)(hl >> 8);
    memcpy(head + 10, dict, (size_t)dl);
    memset(head + 10 + dl, ' ', padded - 10 - (size_t)dl);
    head[padded - 1] = '\n';

    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st) return st;
    size_t n = (size_t)rows * cols;
    bool ok = fwrite(head, 1, padded, af.fp) == padded;
    /* float32 little-endian: the host order on every machine comine builds for */
    const uint16_t probe = 1;
    COMINE_ASSERT(*(const uint8_t *)&probe == 1);
    if (ok && n) ok = fwrite(data, sizeof(float), n, af.fp) == n;
    if (!ok) {
        int err = errno;
        comine_atomic_abort(&af);
        return comine_fail(COMINE_ERR_IO, "%s: write failed: %s", path, strerror(err ? err : EIO));
    }
    return comine_atomic_commit(&af);
}
