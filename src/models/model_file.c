/* model_file.c: the comine model file (docs/FORMATS.md, "comine model file").
 *
 * One record, little-endian, written field by field (never a struct):
 *   "COMINEMD" | u32 version | u32 header_bytes | header | u32 header_crc |
 *   params (f32 x num_params) | buffers (f32 x num_buffers) | u32 crc
 * header = the architecture (name, width, input, emb_dim, dropout) and the parameter and
 * buffer tables (names, shapes, offsets, sizes).  header_crc covers everything before it,
 * so a damaged header is reported before anything is sized from it; crc covers the whole
 * record.  A record may sit inside a longer stream (checkpoints embed it). */
#include "comine/model.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "models/model_impl.h"

#define MODEL_MAGIC "COMINEMD"
#define MODEL_VERSION 1u
#define MAX_HEADER_BYTES (64u << 20)
#define CHUNK_FLOATS ((size_t)1 << 16)

/* ---- a growable little-endian byte buffer for the header ------------------------------ */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = comine_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u32(bytes *b, uint32_t v)
{
    uint8_t x[4];
    comine_put_le32(x, v);
    put(b, x, 4);
}

static void put_u64(bytes *b, uint64_t v)
{
    uint8_t x[8];
    comine_put_le64(x, v);
    put(b, x, 8);
}

static void put_f32(bytes *b, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(b, v);
}

static void put_str(bytes *b, const char *s)
{
    put_u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

static void put_table(bytes *b, const model_table *t, uint64_t total)
{
    put_u32(b, (uint32_t)t->n);
    for (int i = 0; i < t->n; i++) {
        const comine_tensor_info *ti = &t->info[i];
        put_str(b, ti->name);
        put_u32(b, (uint32_t)ti->ndim);
        for (int d = 0; d < ti->ndim; d++) put_u32(b, (uint32_t)ti->shape[d]);
        put_u64(b, ti->offset);
        put_u64(b, ti->size);
    }
    put_u64(b, total);
}

/* ---- writing ------------------------------------------------------------------------------ */

static bool write_crc(FILE *fp, uint32_t *crc, const void *data, size_t n)
{
    *crc = comine_crc32(*crc, data, n);
    return fwrite(data, 1, n, fp) == n;
}

/* Device floats -> little-endian bytes, in chunks. */
static bool write_floats(FILE *fp, uint32_t *crc, const comine_backend *be, const float *dev, size_t n)
{
    float *host = comine_malloc(CHUNK_FLOATS * sizeof(float));
    uint8_t *le = comine_malloc(CHUNK_FLOATS * 4);
    bool ok = true;
    for (size_t k = 0; k < n && ok; k += CHUNK_FLOATS) {
        size_t c = n - k < CHUNK_FLOATS ? n - k : CHUNK_FLOATS;
        comine_backend_download(be, host, dev + k, c);
        for (size_t i = 0; i < c; i++) {
            uint32_t v;
            memcpy(&v, &host[i], 4);
            comine_put_le32(le + 4 * i, v);
        }
        ok = write_crc(fp, crc, le, 4 * c);
    }
    free(host);
    free(le);
    return ok;
}

comine_status comine_model_write(const comine_model *m, FILE *fp)
{
    bytes pre = {0}, hdr = {0};
    put(&pre, MODEL_MAGIC, 8);
    put_u32(&pre, MODEL_VERSION);
    put_str(&hdr, m->arch.name);
    put_f32(&hdr, m->arch.width);
    put_u32(&hdr, (uint32_t)m->arch.input);
    put_u32(&hdr, (uint32_t)m->arch.emb_dim);
    put_f32(&hdr, m->arch.dropout);
    put_table(&hdr, &m->params_table, m->params_table.total);
    put_table(&hdr, &m->bufs, m->bufs.total);
    put_u32(&pre, (uint32_t)hdr.n);
    put(&pre, hdr.p, hdr.n);
    uint32_t crc = 0;
    bool ok = write_crc(fp, &crc, pre.p, pre.n);
    bytes hc = {0};
    put_u32(&hc, crc);
    ok = ok && write_crc(fp, &crc, hc.p, 4);
    ok = ok && write_floats(fp, &crc, m->be, m->params, m->params_table.total);
    ok = ok && write_floats(fp, &crc, m->be, m->buffers, m->bufs.total);
    hc.n = 0;
    put_u32(&hc, crc);
    ok = ok && fwrite(hc.p, 1, 4, fp) == 4;
    free(pre.p);
    free(hdr.p);
    free(hc.p);
    if (!ok || ferror(fp)) return comine_fail(COMINE_ERR_IO, "model record: write error: %s", strerror(errno));
    return COMINE_OK;
}

comine_status comine_model_save(const comine_model *m, const char *path)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    st = comine_model_write(m, af.fp);
    if (st != COMINE_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", comine_last_error());
        comine_atomic_abort(&af);
        return comine_fail(st, "%s: %s", path, why);
    }
    return comine_atomic_commit(&af);
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct reader {
    FILE *fp;
    const char *name;
    uint32_t crc;
    uint64_t pos; /* bytes of the record read so far */
} reader;

static comine_status read_crc(reader *r, void *dst, size_t n, const char *what)
{
    size_t got = fread(dst, 1, n, r->fp);
    if (got != n) {
        if (ferror(r->fp))
            return comine_fail(COMINE_ERR_IO, "%s: read error in %s at byte %llu", r->name, what,
                               (unsigned long long)(r->pos + got));
        return comine_fail(COMINE_ERR_FORMAT, "%s: truncated model file: %s cut short at byte %llu (%zu of %zu bytes)",
                           r->name, what, (unsigned long long)(r->pos + got), got, n);
    }
    r->crc = comine_crc32(r->crc, dst, n);
    r->pos += n;
    return COMINE_OK;
}

/* A cursor over the (checksummed) header bytes. */
typedef struct cursor {
    const uint8_t *p;
    size_t n, at;
    bool bad;
} cursor;

static const uint8_t *take(cursor *c, size_t n)
{
    if (c->bad || n > c->n - c->at) {
        c->bad = true;
        return NULL;
    }
    const uint8_t *p = c->p + c->at;
    c->at += n;
    return p;
}

static uint32_t take_u32(cursor *c)
{
    const uint8_t *p = take(c, 4);
    return p ? comine_get_le32(p) : 0;
}

static uint64_t take_u64(cursor *c)
{
    const uint8_t *p = take(c, 8);
    return p ? comine_get_le64(p) : 0;
}

static float take_f32(cursor *c)
{
    uint32_t v = take_u32(c);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

/* Compares the file's table (at the cursor) with the model's; names the first difference. */
static comine_status check_table(cursor *c, const model_table *t, const char *file, const char *which)
{
    uint32_t n = take_u32(c);
    if (c->bad) return comine_fail(COMINE_ERR_FORMAT, "%s: %s table is cut short", file, which);
    if (n != (uint32_t)t->n)
        return comine_fail(COMINE_ERR_FORMAT, "%s: %s table mismatch: the file has %u tensors, the architecture %d",
                           file, which, n, t->n);
    for (int i = 0; i < t->n; i++) {
        const comine_tensor_info *ti = &t->info[i];
        uint32_t len = take_u32(c);
        const uint8_t *name = take(c, len);
        uint32_t ndim = take_u32(c);
        if (c->bad || ndim > 4) return comine_fail(COMINE_ERR_FORMAT, "%s: %s table entry %d is malformed", file, which, i);
        if (len != strlen(ti->name) || memcmp(name, ti->name, len))
            return comine_fail(COMINE_ERR_FORMAT, "%s: %s table mismatch at entry %d: the file has '%.*s', expected '%s'",
                               file, which, i, (int)(len > 120 ? 120 : len), (const char *)name, ti->name);
        bool same = (int)ndim == ti->ndim;
        for (uint32_t d = 0; d < ndim; d++) {
            uint32_t v = take_u32(c);
            if (same && (int)v != ti->shape[d]) same = false;
        }
        uint64_t off = take_u64(c), size = take_u64(c);
        if (c->bad) return comine_fail(COMINE_ERR_FORMAT, "%s: %s table entry %d is malformed", file, which, i);
        if (!same || off != ti->offset || size != ti->size)
            return comine_fail(COMINE_ERR_FORMAT, "%s: %s table mismatch: tensor '%s' has another shape or place in the file",
                               file, which, ti->name);
    }
    uint64_t total = take_u64(c);
    if (c->bad || total != t->total)
        return comine_fail(COMINE_ERR_FORMAT, "%s: %s table mismatch: %llu floats in the file, %zu expected", file,
                           which, (unsigned long long)total, t->total);
    return COMINE_OK;
}

static comine_status read_floats(reader *r, const comine_backend *be, float *dev, size_t n, const char *what)
{
    uint8_t *le = comine_malloc(CHUNK_FLOATS * 4);
    float *host = comine_malloc(CHUNK_FLOATS * sizeof(float));
    comine_status st = COMINE_OK;
    for (size_t k = 0; k < n && st == COMINE_OK; k += CHUNK_FLOATS) {
        size_t c = n - k < CHUNK_FLOATS ? n - k : CHUNK_FLOATS;
        st = read_crc(r, le, 4 * c, what);
        if (st != COMINE_OK) break;
        for (size_t i = 0; i < c; i++) {
            uint32_t v = comine_get_le32(le + 4 * i);
            memcpy(&host[i], &v, 4);
        }
        comine_backend_upload(be, dev + k, host, c);
    }
    free(le);
    free(host);
    return st;
}

comine_status comine_model_read(comine_model **out, FILE *fp, const char *name, const comine_backend *be,
                                int max_batch)
{
    *out = NULL;
    reader r = {fp, name ? name : "(stream)", 0, 0};
    uint8_t pre[16];
    comine_status st = read_crc(&r, pre, 16, "the file header");
    if (st != COMINE_OK) return st;
    if (memcmp(pre, MODEL_MAGIC, 8))
        return comine_fail(COMINE_ERR_FORMAT, "%s: not a comine model file (wrong magic)", r.name);
    uint32_t version = comine_get_le32(pre + 8);
    if (version != MODEL_VERSION)
        return comine_fail(COMINE_ERR_FORMAT, "%s: unsupported model file version %u (this build reads %u)", r.name,
                           version, MODEL_VERSION);
    uint32_t hbytes = comine_get_le32(pre + 12);
    if (hbytes > MAX_HEADER_BYTES)
        return comine_fail(COMINE_ERR_FORMAT, "%s: corrupted model file: header size %u is implausible", r.name, hbytes);
    uint8_t *hdr = comine_malloc(hbytes ? hbytes : 1);
    uint8_t hcrc_bytes[4];
    st = read_crc(&r, hdr, hbytes, "the architecture and tensor table");
    uint32_t expect = r.crc;
    if (st == COMINE_OK) st = read_crc(&r, hcrc_bytes, 4, "the header checksum");
    if (st == COMINE_OK && comine_get_le32(hcrc_bytes) != expect)
        st = comine_fail(COMINE_ERR_FORMAT, "%s: corrupted model file: header checksum mismatch", r.name);
    if (st != COMINE_OK) {
        free(hdr);
        return st;
    }

    cursor c = {hdr, hbytes, 0, false};
    comine_arch arch;
    memset(&arch, 0, sizeof arch);
    uint32_t len = take_u32(&c);
    const uint8_t *an = take(&c, len);
    arch.width = take_f32(&c);
    arch.input = (int)take_u32(&c);
    arch.emb_dim = (int)take_u32(&c);
    arch.dropout = take_f32(&c);
    if (c.bad) {
        free(hdr);
        return comine_fail(COMINE_ERR_FORMAT, "%s: malformed architecture record", r.name);
    }
    if (len >= sizeof arch.name) {
        free(hdr);
        return comine_fail(COMINE_ERR_FORMAT, "%s: unknown architecture (a %u-byte name)", r.name, len);
    }
    memcpy(arch.name, an, len);
    st = comine_arch_check(&arch);
    if (st != COMINE_OK) {
        free(hdr);
        char why[512];
        snprintf(why, sizeof why, "%s", comine_last_error());
        return comine_fail(COMINE_ERR_FORMAT, "%s: %s", r.name, why);
    }
    /* The tables are checked on the plan of the architecture, and a seekable stream must hold
     * its numbers, before the model is allocated: a few-byte header cannot make comine
     * reserve gigabytes. */
    comine_model *plan = comine_model_plan(&arch);
    st = check_table(&c, &plan->params_table, r.name, "parameter");
    if (st == COMINE_OK) st = check_table(&c, &plan->bufs, r.name, "buffer");
    if (st == COMINE_OK && c.at != c.n)
        st = comine_fail(COMINE_ERR_FORMAT, "%s: %zu unexpected bytes after the tensor tables", r.name, c.n - c.at);
    uint64_t need = ((uint64_t)plan->params_table.total + plan->bufs.total) * 4 + 4;
    comine_model_plan_free(plan);
    free(hdr);
    long here = st == COMINE_OK ? ftell(fp) : -1;
    if (here >= 0 && fseek(fp, 0, SEEK_END) == 0) {
        long end = ftell(fp);
        if (fseek(fp, here, SEEK_SET) != 0)
            return comine_fail(COMINE_ERR_IO, "%s: cannot seek back: %s", r.name, strerror(errno));
        uint64_t left = end > here ? (uint64_t)(end - here) : 0;
        if (need > left)
            return comine_fail(COMINE_ERR_FORMAT,
                               "%s: truncated model file: the parameters and buffers need %llu bytes, %llu are left",
                               r.name, (unsigned long long)need, (unsigned long long)left);
    }
    if (st != COMINE_OK) return st;
    comine_model *m = NULL;
    st = comine_model_create_uninit(&m, &arch, be, max_batch);
    if (st == COMINE_OK) st = read_floats(&r, be, m->params, m->params_table.total, "the parameters");
    if (st == COMINE_OK) st = read_floats(&r, be, m->buffers, m->bufs.total, "the buffers");
    uint32_t whole = r.crc;
    uint8_t crc_bytes[4];
    if (st == COMINE_OK) st = read_crc(&r, crc_bytes, 4, "the checksum");
    if (st == COMINE_OK && comine_get_le32(crc_bytes) != whole)
        st = comine_fail(COMINE_ERR_FORMAT, "%s: corrupted model file: checksum mismatch (stored %08x, computed %08x)",
                         r.name, comine_get_le32(crc_bytes), whole);
    if (st != COMINE_OK) {
        comine_model_free(m);
        return st;
    }
    *out = m;
    return COMINE_OK;
}

comine_status comine_model_load(comine_model **out, const char *path, const comine_backend *be, int max_batch)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return comine_fail(COMINE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    comine_status st = comine_model_read(out, fp, path, be, max_batch);
    if (st == COMINE_OK) {
        int extra = fgetc(fp);
        if (extra != EOF) {
            comine_model_free(*out);
            *out = NULL;
            st = comine_fail(COMINE_ERR_FORMAT, "%s: unexpected bytes after the model record", path);
        }
    }
    fclose(fp);
    return st;
}
