/* pack.c: `comine pack`'s writer: any data set (folder, list, RecordIO) written as
 * insightface's RecordIO layout, PREFIX.rec + PREFIX.idx + `property` beside them: header
 * record 0, image records 1..N grouped by identity in label order (payload = the sample's
 * encoded bytes unchanged), identity records N+1..N+C.  Reads samples through the data set
 * API and writes records with recordio.c; all three files are written atomically.  Assumes
 * the data set's labels are 0 .. num_classes-1 (comine_dataset_open guarantees it). */
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

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
        comine_recordio_put_f32(hdr + 24, (float)(N + 1));
        comine_recordio_put_f32(hdr + 28, (float)(N + 1 + C));
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
        comine_recordio_put_f32(hdr + 24, (float)(start[c] + 1));
        comine_recordio_put_f32(hdr + 28, (float)(start[c + 1] + 1));
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
