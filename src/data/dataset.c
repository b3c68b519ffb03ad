/* dataset.c: the face data set API over the readers of data_internal.h.  `readers` below is
 * the one list of the kinds of data set comine reads; opening asks them in order which one
 * takes the path, and every later call goes through the table of the one that did, so
 * nothing here knows how a kind is stored.  The readers: reader_files.c (folder trees and
 * list files, MXNet / insightface .lst lists among them), reader_recordio.c (insightface/MXNet RecordIO).  Also: the per-sample
 * helpers built on them (read into a fresh buffer, decode) and the class-name file. */
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

/* In the order they are asked: the first that claims a path opens it. */
static const comine_dataset_reader *const readers[] = {
    &comine_reader_recordio, /* a folder holding train.rec + train.idx, or a .rec/.idx path */
    &comine_reader_folder,   /* any other folder */
    &comine_reader_list,     /* anything else */
};
#define NUM_READERS ((int)(sizeof readers / sizeof readers[0]))

const char *comine_dataset_kind_name(comine_dataset_kind kind)
{
    for (int r = 0; r < NUM_READERS; r++)
        if (readers[r]->kind == kind) return readers[r]->name;
    return "unknown kind";
}

void comine_dataset_free(comine_dataset *ds)
{
    if (!ds) return;
    for (int i = 0; i < ds->n; i++) free(ds->samples[i].path);
    free(ds->samples);
    if (ds->class_names)
        for (int c = 0; c < ds->num_classes; c++) free(ds->class_names[c]);
    free(ds->class_names);
    for (int i = 0; i < ds->num_problems; i++) free(ds->problems[i]);
    free(ds->problems);
    if (ds->reader) ds->reader->close(ds->impl);
    free(ds->source);
    free(ds);
}

int comine_dataset_keep(comine_dataset *ds, const uint8_t *keep)
{
    int m = 0;
    for (int i = 0; i < ds->n; i++) {
        if (keep[i]) ds->samples[m++] = ds->samples[i];
        else free(ds->samples[i].path);
    }
    ds->n = m;
    return m;
}

comine_status comine_dataset_open(comine_dataset **out, const char *path, const comine_dataset_opts *opts)
{
    *out = NULL;
    if (!path || !path[0]) return comine_fail(COMINE_ERR_ARG, "no data set path given");
    if (!comine_path_exists(path)) return comine_fail(COMINE_ERR_IO, "%s: does not exist", path);
    const comine_dataset_reader *reader = NULL;
    for (int r = 0; r < NUM_READERS && !reader; r++)
        if (readers[r]->claims(path)) reader = readers[r];
    if (!reader) return comine_fail(COMINE_ERR_FORMAT, "%s: not a data set comine reads", path);
    comine_dataset *ds = comine_calloc(1, sizeof *ds);
    ds->source = comine_strdup(path);
    ds->kind = reader->kind;
    ds->reader = reader;
    comine_status st = reader->open(ds, path, opts);
    if (st != COMINE_OK) {
        comine_dataset_free(ds);
        return st;
    }
    for (int i = 0; i < ds->num_problems && i < COMINE_DATASET_MAX_LOGGED; i++) comine_warn("%s", ds->problems[i]);
    if (ds->num_problems > COMINE_DATASET_MAX_LOGGED)
        comine_warn("... %d more skipped files", ds->num_problems - COMINE_DATASET_MAX_LOGGED);
    *out = ds;
    return COMINE_OK;
}

bool comine_dataset_has_files(const comine_dataset *ds)
{
    return ds->reader && ds->reader->file_at;
}

const char *comine_dataset_sample_name(const comine_dataset *ds, int i)
{
    /* A data set put together in memory (no reader) names samples by their paths. */
    return ds->reader ? ds->reader->sample_name(ds, i) : ds->samples[i].path;
}

void comine_bytes_free(comine_bytes *b)
{
    if (!b) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

comine_status comine_dataset_read_into(const comine_dataset *ds, int i, comine_bytes *buf)
{
    COMINE_ASSERT(i >= 0 && i < ds->n);
    COMINE_ASSERT(ds->reader);
    return ds->reader->read_into(ds, i, buf);
}

comine_status comine_dataset_read(const comine_dataset *ds, int i, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    /* Into an empty buffer, which the readers size to the sample (a file: its fstat). */
    comine_bytes buf = {0};
    comine_status st = comine_dataset_read_into(ds, i, &buf);
    if (st != COMINE_OK) {
        comine_bytes_free(&buf);
        return st;
    }
    *data = buf.data;
    *size = buf.size;
    return COMINE_OK;
}

comine_status comine_dataset_decode(const comine_dataset *ds, int i, comine_image *img)
{
    uint8_t *data;
    size_t size;
    comine_status st = comine_dataset_read(ds, i, &data, &size);
    if (st != COMINE_OK) return st;
    st = comine_image_decode(img, data, size, comine_dataset_sample_name(ds, i));
    free(data);
    return st;
}

comine_status comine_dataset_write_classes(const comine_dataset *ds, const char *path)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    for (int c = 0; c < ds->num_classes; c++) {
        if (ds->class_names)
            fprintf(af.fp, "%d\t%s\n", c, ds->class_names[c]);
        else
            fprintf(af.fp, "%d\t%d\n", c, c);
    }
    return comine_atomic_commit(&af);
}
