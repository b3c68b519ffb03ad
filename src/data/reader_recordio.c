/* reader_recordio.c: the reader of insightface/MXNet RecordIO data sets (train.rec +
 * train.idx, as `comine pack` and insightface write them, or im2rec's files without a header
 * record).  Every index entry is checked against the .rec at open time (a whole record at
 * its offset, no two keys at one offset, the keys the header record promises); then samples
 * are read by random access with pread on one descriptor, which is thread-safe.  The record
 * format itself is recordio.c's; the layout is documented in docs/FORMATS.md. */
#include "data_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An open .rec file (ds->impl). */
typedef struct recordio_state {
    int fd;
    int64_t file_size;
    char *rec_path;
    char *idx_path;
    bool has_header;     /* record 0 is insightface's header record */
    int num_identity_records;
} recordio_state;

/* ---- the index ----------------------------------------------------------------------------- */

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

/* ---- opening a .rec/.idx pair --------------------------------------------------------------- */

/* The IRHeader (and the first label of a label vector) of the record at `off`. */
static comine_status read_irheader(const recordio_state *rs, int64_t off, comine_irheader *h, float *first_label,
                                   uint32_t *data_len)
{
    uint8_t head[8 + COMINE_IRHEADER_SIZE + 4];
    size_t want = sizeof head;
    if (off + (int64_t)want > rs->file_size) want = (size_t)(rs->file_size - off);
    if (want < 8 + COMINE_IRHEADER_SIZE || comine_recordio_pread(rs->fd, head, want, off, rs->rec_path) != COMINE_OK ||
        comine_get_le32(head) != COMINE_RECORDIO_MAGIC || (comine_get_le32(head + 4) >> 29) != 0) {
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
        *first_label = h->flag > 0 && size >= COMINE_IRHEADER_SIZE + 4 ? comine_recordio_get_f32(data + COMINE_IRHEADER_SIZE) : h->label;
        *data_len = (uint32_t)size;
        free(data);
        return COMINE_OK;
    }
    uint32_t len = comine_get_le32(head + 4) & COMINE_RECORDIO_LEN_MASK;
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
        *first_label = comine_recordio_get_f32(head + 8 + COMINE_IRHEADER_SIZE);
    }
    if ((uint64_t)h->flag * 4 + COMINE_IRHEADER_SIZE > len)
        return comine_fail(COMINE_ERR_FORMAT, "%s: record at offset %lld: %u labels do not fit in %u bytes",
                           rs->rec_path, (long long)off, h->flag, len);
    *data_len = len;
    return COMINE_OK;
}

static void recordio_close(void *impl)
{
    recordio_state *rs = impl;
    if (!rs) return;
    if (rs->fd >= 0) close(rs->fd);
    free(rs->rec_path);
    free(rs->idx_path);
    free(rs);
}

static comine_status open_rec(comine_dataset *ds, const char *rec_path)
{
    recordio_state *rs = comine_calloc(1, sizeof *rs);
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
            float a = comine_recordio_get_f32(data + COMINE_IRHEADER_SIZE), b = comine_recordio_get_f32(data + COMINE_IRHEADER_SIZE + 4);
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
            a = comine_recordio_get_f32(data + COMINE_IRHEADER_SIZE);
            b = comine_recordio_get_f32(data + COMINE_IRHEADER_SIZE + 4);
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

/* ---- the reader ------------------------------------------------------------------------------ */

/* A folder holding train.rec and train.idx, or a path that ends in .rec or .idx. */
static bool is_recordio(const char *path)
{
    if (comine_path_is_dir(path)) {
        char *rec = comine_path_join(path, "train.rec");
        char *idx = comine_path_join(path, "train.idx");
        bool both = comine_path_exists(rec) && comine_path_exists(idx);
        free(rec);
        free(idx);
        return both;
    }
    size_t n = strlen(path);
    return n >= 4 && (!strcmp(path + n - 4, ".rec") || !strcmp(path + n - 4, ".idx"));
}

static comine_status recordio_open(comine_dataset *ds, const char *path, const comine_dataset_opts *opts)
{
    (void)opts;
    char *rec;
    if (comine_path_is_dir(path)) {
        rec = comine_path_join(path, "train.rec");
    } else {
        rec = comine_strdup(path);
        memcpy(rec + strlen(rec) - 4, ".rec", 4);
    }
    comine_status st = open_rec(ds, rec);
    free(rec);
    return st;
}

static const char *recordio_sample_name(const comine_dataset *ds, int i)
{
    static _Thread_local char buf[4096];
    const recordio_state *rs = ds->impl;
    snprintf(buf, sizeof buf, "%s record %s (offset %lld)", rs->rec_path, ds->samples[i].path + 4,
             (long long)ds->samples[i].rec_offset);
    return buf;
}

/* The payload of sample i: the record without its IRHeader and label vector. */
static comine_status recordio_read_into(const comine_dataset *ds, int i, comine_bytes *buf)
{
    const recordio_state *rs = ds->impl;
    comine_status st = comine_recordio_read_record_into(rs->fd, rs->file_size, ds->samples[i].rec_offset,
                                                        recordio_sample_name(ds, i), buf, NULL);
    if (st != COMINE_OK) return st;
    size_t len = buf->size;
    buf->size = 0;
    if (len < COMINE_IRHEADER_SIZE)
        return comine_fail(COMINE_ERR_FORMAT, "%s: shorter than the IRHeader", recordio_sample_name(ds, i));
    comine_irheader h;
    comine_irheader_parse(&h, buf->data);
    size_t skip = COMINE_IRHEADER_SIZE + (size_t)h.flag * 4;
    if (skip > len)
        return comine_fail(COMINE_ERR_FORMAT, "%s: %u labels do not fit in the record", recordio_sample_name(ds, i), h.flag);
    memmove(buf->data, buf->data + skip, len - skip);
    buf->size = len - skip;
    buf->data[buf->size] = 0;
    return COMINE_OK;
}

const comine_dataset_reader comine_reader_recordio = {
    .kind = COMINE_DATASET_RECORDIO,
    .name = "RecordIO",
    .claims = is_recordio,
    .open = recordio_open,
    .read_into = recordio_read_into,
    .sample_name = recordio_sample_name,
    .file_at = NULL,
    .close = recordio_close,
};
