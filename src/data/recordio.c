/* recordio.c: MXNet/dmlc-core RecordIO as insightface distributes face data sets
 * (train.rec + train.idx + property).  Reading: random access through the index with
 * pread (thread-safe), records split at aligned magic values (cflag 1/2/3) joined back,
 * every index entry checked against the .rec (magic, bounds, overlap) at open time.
 * Writing: dmlc-core's RecordIOWriter::WriteRecord byte for byte, and `pack` in
 * insightface's layout (header record, image records, identity records).
 * The layout is documented in docs/FORMATS.md. */
#include "data_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEN_MASK ((1u << 29) - 1)

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

static float f32_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t u32_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

void comine_irheader_parse(comine_irheader *h, const uint8_t *p)
{
    h->flag = rd32(p);
    h->label = f32_of(rd32(p + 4));
    h->id = rd64(p + 8);
    h->id2 = rd64(p + 16);
}

void comine_irheader_write(uint8_t *p, const comine_irheader *h)
{
    wr32(p, h->flag);
    wr32(p + 4, u32_of(h->label));
    wr64(p + 8, h->id);
    wr64(p + 16, h->id2);
}

static comine_status pread_all(int fd, void *buf, size_t n, int64_t off, const char *name)
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

comine_status comine_recordio_read_record(int fd, int64_t file_size, int64_t offset, const char *name,
                                          uint8_t **data, size_t *size, int64_t *next_offset)
{
    *data = NULL;
    *size = 0;
    uint8_t *buf = NULL;
    size_t used = 0;
    int64_t off = offset;
    for (int part = 0;; part++) {
        uint8_t head[8];
        if (off < 0 || off + 8 > file_size) {
            free(buf);
            return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: no record header there (file is %lld bytes)",
                               name, (long long)offset, (long long)file_size);
        }
        comine_status st = pread_all(fd, head, 8, off, name);
        if (st != COMINE_OK) {
            free(buf);
            return st;
        }
        uint32_t magic = rd32(head), lrec = rd32(head + 4);
        if (magic != COMINE_RECORDIO_MAGIC) {
            free(buf);
            return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: bad magic 0x%08x at offset %lld (expected 0x%08x)",
                               name, (long long)offset, magic, (long long)off, COMINE_RECORDIO_MAGIC);
        }
        uint32_t cflag = lrec >> 29, len = lrec & LEN_MASK;
        if ((part == 0 && cflag != 0 && cflag != 1) || (part > 0 && cflag != 2 && cflag != 3)) {
            free(buf);
            return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: part %d has continuation flag %u", name,
                               (long long)offset, part, cflag);
        }
        int64_t padded = ((int64_t)len + 3) / 4 * 4;
        if (off + 8 + (int64_t)len > file_size) {
            free(buf);
            return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: length %u runs past the end of the file (%lld bytes)",
                               name, (long long)offset, len, (long long)file_size);
        }
        buf = comine_realloc(buf, used + len + 4);
        if (len) {
            st = pread_all(fd, buf + used, len, off + 8, name);
            if (st != COMINE_OK) {
                free(buf);
                return st;
            }
        }
        used += len;
        off += 8 + padded;
        if (cflag == 0 || cflag == 3) break;
        wr32(buf + used, COMINE_RECORDIO_MAGIC); /* the writer cut the record at this magic value */
        used += 4;
    }
    *data = buf;
    *size = used;
    if (next_offset) *next_offset = off;
    return COMINE_OK;
}

comine_status comine_recordio_write_record(FILE *fp, const void *data, size_t size, int *parts)
{
    if (size >= (1u << 29)) return comine_fail(COMINE_ERR_ARG, "RecordIO records must be under 2^29 bytes (got %zu)", size);
    const uint8_t *b = data;
    uint32_t len = (uint32_t)size, lower = len / 4 * 4, upper = (len + 3) / 4 * 4, dptr = 0;
    uint8_t head[8], magic[4];
    wr32(magic, COMINE_RECORDIO_MAGIC);
    int n = 0;
    for (uint32_t i = 0; i < lower; i += 4) {
        if (memcmp(b + i, magic, 4)) continue;
        wr32(head, COMINE_RECORDIO_MAGIC);
        wr32(head + 4, (dptr == 0 ? 1u : 2u) << 29 | (i - dptr));
        fwrite(head, 1, 8, fp);
        if (i != dptr) fwrite(b + dptr, 1, i - dptr, fp);
        dptr = i + 4;
        n++;
    }
    wr32(head, COMINE_RECORDIO_MAGIC);
    wr32(head + 4, (dptr != 0 ? 3u : 0u) << 29 | (len - dptr));
    fwrite(head, 1, 8, fp);
    if (len != dptr) fwrite(b + dptr, 1, len - dptr, fp);
    static const uint8_t zero[4] = {0, 0, 0, 0};
    if (upper != len) fwrite(zero, 1, upper - len, fp);
    if (parts) *parts = n + 1;
    if (ferror(fp)) return comine_fail(COMINE_ERR_IO, "RecordIO write failed: %s", strerror(errno));
    return COMINE_OK;
}

/* ---- reading a data set -------------------------------------------------------------------- */

typedef struct idx_entry {
    int64_t key, offset;
    int line;
} idx_entry;

static int cmp_key(const void *a, const void *b)
{
    const idx_entry *x = a, *y = b;
    return x->key < y->key ? -1 : x->key > y->key;
}

static int cmp_offset(const void *a, const void *b)
{
    const idx_entry *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static const idx_entry *find_key(const idx_entry *e, int n, int64_t key)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (e[mid].key == key) return &e[mid];
        if (e[mid].key < key) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

static comine_status read_idx(const char *idx_path, idx_entry **out, int *count)
{
    uint8_t *text;
    size_t size;
    *out = NULL;
    *count = 0;
    comine_status st = comine_read_file(idx_path, &text, &size);
    if (st != COMINE_OK) return st;
    int cap = 0, n = 0, line = 0;
    idx_entry *e = NULL;
    char *p = (char *)text, *end = p + size;
    st = COMINE_OK;
    while (p < end) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        if (le > p && le[-1] == '\r') le--;
        *le = 0;
        char *s = p;
        p = nl ? nl + 1 : end;
        if (!*s) continue;
        char *tab = strchr(s, '\t');
        long key, off;
        if (!tab) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected `key<TAB>offset`, found '%.80s'", idx_path, line, s);
            break;
        }
        *tab = 0;
        if (!comine_parse_int(s, &key) || key < 0 || !comine_parse_int(tab + 1, &off) || off < 0) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: key and offset must be non-negative integers ('%.40s', '%.40s')",
                             idx_path, line, s, tab + 1);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            e = comine_realloc(e, sizeof(idx_entry) * cap);
        }
        e[n].key = key;
        e[n].offset = off;
        e[n].line = line;
        n++;
    }
    free(text);
    if (st == COMINE_OK && n == 0) st = comine_fail(COMINE_ERR_FORMAT, "%s: empty index", idx_path);
    if (st != COMINE_OK) {
        free(e);
        return st;
    }
    *out = e;
    *count = n;
    return COMINE_OK;
}

/* The IRHeader (and the first label of a label vector) of the record at `off`. */
static comine_status read_irheader(const comine_recordio_state *rs, int64_t off, comine_irheader *h, float *first_label,
                                   uint32_t *data_len)
{
    uint8_t head[8 + COMINE_IRHEADER_SIZE + 4];
    size_t want = sizeof head;
    if (off + (int64_t)want > rs->file_size) want = (size_t)(rs->file_size - off);
    if (want < 8 + COMINE_IRHEADER_SIZE || pread_all(rs->fd, head, want, off, rs->rec_path) != COMINE_OK ||
        rd32(head) != COMINE_RECORDIO_MAGIC || (rd32(head + 4) >> 29) != 0) {
        /* Not a plain whole record with its header in place: read it the careful way. */
        uint8_t *data;
        size_t size;
        comine_status st = comine_recordio_read_record(rs->fd, rs->file_size, off, rs->rec_path, &data, &size, NULL);
        if (st != COMINE_OK) return st;
        if (size < COMINE_IRHEADER_SIZE) {
            free(data);
            return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: %zu bytes, shorter than the 24-byte IRHeader",
                               rs->rec_path, (long long)off, size);
        }
        comine_irheader_parse(h, data);
        *first_label = h->flag > 0 && size >= COMINE_IRHEADER_SIZE + 4 ? f32_of(rd32(data + COMINE_IRHEADER_SIZE)) : h->label;
        *data_len = (uint32_t)size;
        free(data);
        return COMINE_OK;
    }
    uint32_t len = rd32(head + 4) & LEN_MASK;
    if (off + 8 + (int64_t)len > rs->file_size)
        return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: length %u runs past the end of the file (%lld bytes)",
                           rs->rec_path, (long long)off, len, (long long)rs->file_size);
    if (len < COMINE_IRHEADER_SIZE)
        return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: %u bytes, shorter than the 24-byte IRHeader",
                           rs->rec_path, (long long)off, len);
    comine_irheader_parse(h, head + 8);
    *first_label = h->label;
    if (h->flag > 0) {
        if (len < COMINE_IRHEADER_SIZE + 4 || want < sizeof head)
            return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: flag %u labels but no room for them",
                               rs->rec_path, (long long)off, h->flag);
        *first_label = f32_of(rd32(head + 8 + COMINE_IRHEADER_SIZE));
    }
    if ((uint64_t)h->flag * 4 + COMINE_IRHEADER_SIZE > len)
        return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: %u labels do not fit in %u bytes",
                           rs->rec_path, (long long)off, h->flag, len);
    *data_len = len;
    return COMINE_OK;
}

void comine_recordio_close(comine_recordio_state *rs)
{
    if (!rs) return;
    if (rs->fd >= 0) close(rs->fd);
    free(rs->rec_path);
    free(rs->idx_path);
    free(rs);
}

comine_status comine_recordio_open_dataset(comine_dataset *ds, const char *rec_path)
{
    comine_recordio_state *rs = comine_calloc(1, sizeof *rs);
    rs->fd = -1;
    rs->rec_path = comine_strdup(rec_path);
    rs->idx_path = comine_strdup(rec_path);
    memcpy(rs->idx_path + strlen(rs->idx_path) - 4, ".idx", 4);
    ds->impl = rs;
    rs->fd = open(rec_path, O_RDONLY);
    if (rs->fd < 0) return comine_fail(COMINE_ERR_IO, "%s: cannot open: %s", rec_path, strerror(errno));
    struct stat sb;
    if (fstat(rs->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) return comine_fail(COMINE_ERR_IO, "%s: not a regular file", rec_path);
    rs->file_size = sb.st_size;
    if (!comine_path_exists(rs->idx_path))
        return comine_fail(COMINE_ERR_IO, "%s: no index file %s beside it", rec_path, rs->idx_path);
    idx_entry *e;
    int n;
    comine_status st = read_idx(rs->idx_path, &e, &n);
    if (st != COMINE_OK) return st;

    /* Every entry must point at a record inside the file, and records must not overlap. */
    qsort(e, n, sizeof *e, cmp_offset);
    for (int i = 0; i < n && st == COMINE_OK; i++) {
        if (i > 0 && e[i].offset == e[i - 1].offset)
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: keys %lld and %lld point at the same offset %lld", rs->idx_path,
                             e[i].line, (long long)e[i - 1].key, (long long)e[i].key, (long long)e[i].offset);
    }
    qsort(e, n, sizeof *e, cmp_key);
    for (int i = 1; i < n && st == COMINE_OK; i++)
        if (e[i].key == e[i - 1].key)
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: key %lld appears twice (also line %d)", rs->idx_path, e[i].line,
                             (long long)e[i].key, e[i - 1].line);
    if (st != COMINE_OK) {
        free(e);
        return st;
    }
    /* Header record? */
    int64_t first_img = 0, end_img = INT64_MAX;
    const idx_entry *k0 = find_key(e, n, 0);
    if (k0) {
        comine_irheader h;
        float l0;
        uint32_t dl;
        st = read_irheader(rs, k0->offset, &h, &l0, &dl);
        if (st != COMINE_OK) {
            char why[1024];
            snprintf(why, sizeof why, "%s", comine_last_error());
            int line = k0->line;
            free(e);
            return comine_fail(st, "%s (index %s line %d, key 0)", why, rs->idx_path, line);
        }
        if (h.flag >= 2) {
            uint8_t *data;
            size_t size;
            st = comine_recordio_read_record(rs->fd, rs->file_size, k0->offset, rec_path, &data, &size, NULL);
            if (st != COMINE_OK) {
                free(e);
                return st;
            }
            float a = f32_of(rd32(data + COMINE_IRHEADER_SIZE)), b = f32_of(rd32(data + COMINE_IRHEADER_SIZE + 4));
            free(data);
            if (!(a >= 1 && b >= a && a == floorf(a) && b == floorf(b) && b < 2147483647.0f)) {
                free(e);
                return comine_fail(COMINE_ERR_FORMAT, "%s: header record 0 has labels [%g, %g], expected [N+1, N+1+identities]",
                                   rec_path, a, b);
            }
            rs->has_header = true;
            first_img = 1;
            end_img = (int64_t)a;
            rs->num_identity_records = (int)(b - a);
            for (int64_t k = 1; k < (int64_t)b; k++)
                if (!find_key(e, n, k)) {
                    free(e);
                    return comine_fail(COMINE_ERR_FORMAT,
                                       "%s has no key %lld, which the header record of %s says exists (keys 1..%lld)",
                                       rs->idx_path, (long long)k, rec_path, (long long)b - 1);
                }
        }
    }
    /* Identity records: each must be there, whole, with a key range inside the images. */
    for (int i = 0; rs->has_header && i < n && st == COMINE_OK; i++) {
        if (e[i].key < end_img || e[i].key >= end_img + rs->num_identity_records) continue;
        uint8_t *data;
        size_t size;
        st = comine_recordio_read_record(rs->fd, rs->file_size, e[i].offset, rec_path, &data, &size, NULL);
        if (st != COMINE_OK) {
            char why[1024];
            snprintf(why, sizeof why, "%s", comine_last_error());
            st = comine_fail(st, "%s; the index %s line %d (identity key %lld) disagrees with the .rec", why,
                             rs->idx_path, e[i].line, (long long)e[i].key);
            break;
        }
        comine_irheader h;
        float a = -1, b = -1;
        if (size >= COMINE_IRHEADER_SIZE + 8) {
            comine_irheader_parse(&h, data);
            a = f32_of(rd32(data + COMINE_IRHEADER_SIZE));
            b = f32_of(rd32(data + COMINE_IRHEADER_SIZE + 4));
            if (h.flag < 2) a = b = -1;
        }
        free(data);
        if (!(a >= 1 && b >= a && b <= (float)end_img))
            st = comine_fail(COMINE_ERR_FORMAT, "%s: identity record %lld has image range [%g, %g), outside keys 1..%lld",
                             rec_path, (long long)e[i].key, a, b, (long long)end_img - 1);
    }
    if (st != COMINE_OK) {
        free(e);
        return st;
    }
    int cap = 0;
    int64_t max_label = -1;
    for (int i = 0; i < n; i++) {
        if (e[i].key < first_img || e[i].key >= end_img) continue;
        comine_irheader h;
        float label;
        uint32_t dl;
        st = read_irheader(rs, e[i].offset, &h, &label, &dl);
        if (st != COMINE_OK) {
            char why[1024];
            snprintf(why, sizeof why, "%s", comine_last_error());
            st = comine_fail(st, "%s; the index %s line %d (key %lld) disagrees with the .rec", why, rs->idx_path,
                             e[i].line, (long long)e[i].key);
            break;
        }
        if (!(label >= 0 && label == floorf(label) && label < 16777216.0f)) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s: record %lld (offset %lld): label %g is not a non-negative integer",
                             rec_path, (long long)e[i].key, (long long)e[i].offset, label);
            break;
        }
        if (ds->n == cap) {
            cap = cap ? cap * 2 : 4096;
            ds->samples = comine_realloc(ds->samples, sizeof(comine_sample) * cap);
        }
        comine_sample *s = &ds->samples[ds->n++];
        char buf[32];
        snprintf(buf, sizeof buf, "rec:%lld", (long long)e[i].key);
        s->path = comine_strdup(buf);
        s->label = (int)label;
        s->rec_offset = e[i].offset;
        /* comine's own packs keep the truth flag in id2 (1 + flag); anything else is unknown. */
        s->truth = (h.id2 >= 1 && h.id2 <= 3) ? (int8_t)(h.id2 - 1) : COMINE_TRUTH_UNKNOWN;
        if (s->label > max_label) max_label = s->label;
    }
    free(e);
    if (st != COMINE_OK) return st;
    if (ds->n == 0) return comine_fail(COMINE_ERR_FORMAT, "%s: no image records", rec_path);
    bool all_truth = true;
    for (int i = 0; i < ds->n; i++) all_truth &= ds->samples[i].truth != COMINE_TRUTH_UNKNOWN;
    ds->has_truth = all_truth;
    if (rs->has_header) {
        /* insightface: one identity record per class; a class may have lost all its images. */
        ds->num_classes = rs->num_identity_records;
        if (max_label >= ds->num_classes)
            return comine_fail(COMINE_ERR_FORMAT, "%s: label %lld but the header record declares %d identities", rec_path,
                               (long long)max_label, ds->num_classes);
        return COMINE_OK;
    }
    ds->num_classes = (int)max_label + 1;
    return comine_dataset_check_gaps(ds, rec_path);
}

comine_status comine_recordio_read_payload(const comine_dataset *ds, int i, uint8_t **data, size_t *size)
{
    const comine_recordio_state *rs = ds->impl;
    uint8_t *rec;
    size_t len;
    comine_status st = comine_recordio_read_record(rs->fd, rs->file_size, ds->samples[i].rec_offset,
                                                   comine_dataset_sample_name(ds, i), &rec, &len, NULL);
    if (st != COMINE_OK) return st;
    comine_irheader h;
    if (len < COMINE_IRHEADER_SIZE) {
        free(rec);
        return comine_fail(COMINE_ERR_FORMAT, "%s: shorter than the IRHeader", comine_dataset_sample_name(ds, i));
    }
    comine_irheader_parse(&h, rec);
    size_t skip = COMINE_IRHEADER_SIZE + (size_t)h.flag * 4;
    if (skip > len) {
        free(rec);
        return comine_fail(COMINE_ERR_FORMAT, "%s: %u labels do not fit in the record", comine_dataset_sample_name(ds, i), h.flag);
    }
    memmove(rec, rec + skip, len - skip);
    *data = rec;
    *size = len - skip;
    return COMINE_OK;
}

/* ---- pack ---------------------------------------------------------------------------------- */

comine_status comine_recordio_pack(const comine_dataset *ds, const bool *keep, int width, int height,
                                   const char *prefix, comine_pack_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    size_t pl = strlen(prefix);
    char *rec_path = comine_malloc(pl + 8), *idx_path = comine_malloc(pl + 8);
    snprintf(rec_path, pl + 8, "%s.rec", prefix);
    snprintf(idx_path, pl + 8, "%s.idx", prefix);
    char *dir = comine_path_dirname(prefix);
    char *prop_path = comine_path_join(dir, "property");
    comine_status st = comine_mkdirs(dir);
    free(dir);
    comine_atomic_file rec = {0}, idx = {0};
    if (st == COMINE_OK) st = comine_atomic_open(&rec, rec_path);
    if (st == COMINE_OK) st = comine_atomic_open(&idx, idx_path);
    /* Image keys grouped by identity, in label order, then by sample order. */
    int C = ds->num_classes, N = 0;
    int *order = comine_malloc(sizeof(int) * (ds->n ? ds->n : 1));
    int *start = comine_calloc((size_t)C + 1, sizeof(int));
    for (int i = 0; i < ds->n; i++)
        if (!keep || keep[i]) start[ds->samples[i].label + 1]++, N++;
    for (int c = 0; c < C; c++) start[c + 1] += start[c];
    int *fill = comine_malloc(sizeof(int) * ((size_t)C + 1));
    memcpy(fill, start, sizeof(int) * ((size_t)C + 1));
    for (int i = 0; i < ds->n; i++)
        if (!keep || keep[i]) order[fill[ds->samples[i].label]++] = i;
    free(fill);
    int64_t pos = 0;
    uint8_t hdr[COMINE_IRHEADER_SIZE + 8];
    int parts;
    /* Header record 0: flag 2, labels [N+1, N+1+C]. */
    if (st == COMINE_OK) {
        comine_irheader h = {2, 0.0f, 0, 0};
        comine_irheader_write(hdr, &h);
        wr32(hdr + 24, u32_of((float)(N + 1)));
        wr32(hdr + 28, u32_of((float)(N + 1 + C)));
        fprintf(idx.fp, "0\t%lld\n", (long long)pos);
        st = comine_recordio_write_record(rec.fp, hdr, sizeof hdr, &parts);
        pos = ftello(rec.fp);
    }
    uint8_t *buf = NULL;
    size_t buf_cap = 0;
    for (int k = 0; k < N && st == COMINE_OK; k++) {
        int i = order[k];
        uint8_t *data;
        size_t size;
        st = comine_dataset_read(ds, i, &data, &size);
        if (st != COMINE_OK) break;
        if (COMINE_IRHEADER_SIZE + size > buf_cap) {
            buf_cap = COMINE_IRHEADER_SIZE + size;
            buf = comine_realloc(buf, buf_cap);
        }
        int8_t truth = ds->samples[i].truth;
        comine_irheader h = {0, (float)ds->samples[i].label, (uint64_t)(k + 1),
                             ds->has_truth && truth >= 0 ? (uint64_t)truth + 1 : 0};
        comine_irheader_write(buf, &h);
        memcpy(buf + COMINE_IRHEADER_SIZE, data, size);
        free(data);
        fprintf(idx.fp, "%d\t%lld\n", k + 1, (long long)pos);
        st = comine_recordio_write_record(rec.fp, buf, COMINE_IRHEADER_SIZE + size, &parts);
        if (parts > 1) stats->split_records++;
        pos = ftello(rec.fp);
    }
    free(buf);
    /* Identity records N+1 .. N+C: labels [first key, end key) of the identity. */
    for (int c = 0; c < C && st == COMINE_OK; c++) {
        comine_irheader h = {2, 0.0f, (uint64_t)(N + 1 + c), 0};
        comine_irheader_write(hdr, &h);
        wr32(hdr + 24, u32_of((float)(start[c] + 1)));
        wr32(hdr + 28, u32_of((float)(start[c + 1] + 1)));
        fprintf(idx.fp, "%d\t%lld\n", N + 1 + c, (long long)pos);
        st = comine_recordio_write_record(rec.fp, hdr, sizeof hdr, &parts);
        if (parts > 1) stats->split_records++;
        pos = ftello(rec.fp);
    }
    free(order);
    free(start);
    if (st == COMINE_OK) st = comine_atomic_commit(&rec);
    else if (rec.fp) comine_atomic_abort(&rec);
    if (st == COMINE_OK) st = comine_atomic_commit(&idx);
    else if (idx.fp) comine_atomic_abort(&idx);
    if (st == COMINE_OK) {
        char text[64];
        int len = snprintf(text, sizeof text, "%d,%d,%d\n", C, height, width);
        st = comine_write_file_atomic(prop_path, text, (size_t)len);
    }
    stats->images = N;
    stats->identities = C;
    stats->width = width;
    stats->height = height;
    free(rec_path);
    free(idx_path);
    free(prop_path);
    return st;
}
