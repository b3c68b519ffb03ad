/* recordio.c: the MXNet/dmlc-core RecordIO record format, as insightface's face data sets
 * use it.  A record is a u32 magic, a u32 with the continuation flag (3 bits) and the
 * length (29 bits), the bytes, zero padding to 4; the writer splits a record where the magic
 * value occurs at an aligned offset (cflag 1/2/3) and the reader joins the parts back.
 * Writing is dmlc-core's RecordIOWriter::WriteRecord byte for byte; the IRHeader (<IfQQ)
 * that starts a record's data is parsed and written field by field, little-endian.
 * Assumes nothing about data sets: the reader of .rec/.idx data sets is reader_recordio.c,
 * `pack` is pack.c.  The layout is documented in docs/FORMATS.md. */
#include "data_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void comine_irheader_parse(comine_irheader *h, const uint8_t *p)
{
    h->flag = comine_get_le32(p);
    h->label = comine_recordio_get_f32(p + 4);
    h->id = comine_get_le64(p + 8);
    h->id2 = comine_get_le64(p + 16);
}

void comine_irheader_write(uint8_t *p, const comine_irheader *h)
{
    comine_put_le32(p, h->flag);
    comine_recordio_put_f32(p + 4, h->label);
    comine_put_le64(p + 8, h->id);
    comine_put_le64(p + 16, h->id2);
}

comine_status comine_recordio_pread(int fd, void *buf, size_t n, int64_t off, const char *name)
{
    uint8_t *b = buf;
    while (n) {
        ssize_t r = pread(fd, b, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return comine_fail(COMINE_ERR_IO, "%s: read error at offset %lld: %s", name, (long long)off, strerror(errno));
        if (r == 0) return comine_fail(COMINE_ERR_FORMAT, "%s: unexpected end of file at offset %lld", name, (long long)off);
        b += r;
        n -= (size_t)r;
        off += r;
    }
    return COMINE_OK;
}

/* Room for `need` bytes in buf, keeping what is there. */
static void reserve(comine_bytes *buf, size_t need)
{
    if (need <= buf->cap) return;
    size_t cap = need > 2 * buf->cap ? need : 2 * buf->cap;
    buf->data = comine_realloc(buf->data, cap);
    buf->cap = cap;
}

static comine_status read_parts(int fd, int64_t file_size, int64_t offset, const char *name, comine_bytes *buf,
                                int64_t *next_offset)
{
    size_t used = 0;
    int64_t off = offset;
    for (int part = 0;; part++) {
        uint8_t head[8];
        if (off < 0 || off + 8 > file_size)
            return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: no record header there (file is %lld bytes)",
                               name, (long long)offset, (long long)file_size);
        comine_status st = comine_recordio_pread(fd, head, 8, off, name);
        if (st != COMINE_OK) return st;
        uint32_t magic = comine_get_le32(head), lrec = comine_get_le32(head + 4);
        if (magic != COMINE_RECORDIO_MAGIC)
            return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: bad magic 0x%08x at offset %lld (expected 0x%08x)",
                               name, (long long)offset, magic, (long long)off, COMINE_RECORDIO_MAGIC);
        uint32_t cflag = lrec >> 29, len = lrec & COMINE_RECORDIO_LEN_MASK;
        if ((part == 0 && cflag != 0 && cflag != 1) || (part > 0 && cflag != 2 && cflag != 3))
            return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: part %d has continuation flag %u", name,
                               (long long)offset, part, cflag);
        int64_t padded = ((int64_t)len + 3) / 4 * 4;
        if (off + 8 + (int64_t)len > file_size)
            return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: length %u runs past the end of the file (%lld bytes)",
                               name, (long long)offset, len, (long long)file_size);
        /* Room for this part, and for the magic that follows it or the 0 after the record. */
        reserve(buf, used + len + 4);
        if (len) {
            st = comine_recordio_pread(fd, buf->data + used, len, off + 8, name);
            if (st != COMINE_OK) return st;
        }
        used += len;
        off += 8 + padded;
        if (cflag == 0 || cflag == 3) break;
        comine_put_le32(buf->data + used, COMINE_RECORDIO_MAGIC); /* the writer cut the record at this magic value */
        used += 4;
    }
    buf->data[used] = 0;
    buf->size = used;
    if (next_offset) *next_offset = off;
    return COMINE_OK;
}

comine_status comine_recordio_read_record_into(int fd, int64_t file_size, int64_t offset, const char *name,
                                               comine_bytes *buf, int64_t *next_offset)
{
    buf->size = 0;
    comine_status st = read_parts(fd, file_size, offset, name, buf, next_offset);
    if (st != COMINE_OK) buf->size = 0;
    return st;
}

comine_status comine_recordio_read_record(int fd, int64_t file_size, int64_t offset, const char *name,
                                          uint8_t **data, size_t *size, int64_t *next_offset)
{
    comine_bytes buf = {0};
    *data = NULL;
    *size = 0;
    comine_status st = read_parts(fd, file_size, offset, name, &buf, next_offset);
    if (st != COMINE_OK) {
        free(buf.data);
        return st;
    }
    *data = buf.data;
    *size = buf.size;
    return COMINE_OK;
}

comine_status comine_recordio_write_record(FILE *fp, const void *data, size_t size, int *parts)
{
    if (size >= (1u << 29)) return comine_fail(COMINE_ERR_ARG, "RecordIO records must be under 2^29 bytes (got %zu)", size);
    const uint8_t *b = data;
    uint32_t len = (uint32_t)size, lower = len / 4 * 4, upper = (len + 3) / 4 * 4, dptr = 0;
    uint8_t head[8], magic[4];
    comine_put_le32(magic, COMINE_RECORDIO_MAGIC);
    int n = 0;
    for (uint32_t i = 0; i < lower; i += 4) {
        if (memcmp(b + i, magic, 4)) continue;
        comine_put_le32(head, COMINE_RECORDIO_MAGIC);
        comine_put_le32(head + 4, (dptr == 0 ? 1u : 2u) << 29 | (i - dptr));
        fwrite(head, 1, 8, fp);
        if (i != dptr) fwrite(b + dptr, 1, i - dptr, fp);
        dptr = i + 4;
        n++;
    }
    comine_put_le32(head, COMINE_RECORDIO_MAGIC);
    comine_put_le32(head + 4, (dptr != 0 ? 3u : 0u) << 29 | (len - dptr));
    fwrite(head, 1, 8, fp);
    if (len != dptr) fwrite(b + dptr, 1, len - dptr, fp);
    static const uint8_t zero[4] = {0, 0, 0, 0};
    if (upper != len) fwrite(zero, 1, upper - len, fp);
    if (parts) *parts = n + 1;
    if (ferror(fp)) return comine_fail(COMINE_ERR_IO, "RecordIO write failed: %s", strerror(errno));
    return COMINE_OK;
}
