/* data_internal.h: state shared by the data set readers (dataset.c, recordio.c, prefetch.c)
 * and the loader that is not part of the public API. */
#ifndef COMINE_DATA_INTERNAL_H
#define COMINE_DATA_INTERNAL_H

#include "comine/data.h"

#define COMINE_RECORDIO_MAGIC 0xced7230au
#define COMINE_IRHEADER_SIZE 24

/* An open .rec file: pread on one descriptor is thread-safe. */
typedef struct comine_recordio_state {
    int fd;
    int64_t file_size;
    char *rec_path;
    char *idx_path;
    bool has_header;     /* record 0 is insightface's header record */
    int num_identity_records;
} comine_recordio_state;

comine_status comine_recordio_open_dataset(comine_dataset *ds, const char *rec_path);
void comine_recordio_close(comine_recordio_state *st);
comine_status comine_recordio_read_payload(const comine_dataset *ds, int i, uint8_t **data, size_t *size);

/* IRHeader fields (little-endian <IfQQ) from the first 24 bytes of a record's data. */
typedef struct comine_irheader {
    uint32_t flag;
    float label;
    uint64_t id, id2;
} comine_irheader;
void comine_irheader_parse(comine_irheader *h, const uint8_t *p);
void comine_irheader_write(uint8_t *p, const comine_irheader *h);

/* Add an open-time problem to the data set's list. */
void comine_dataset_add_problem(comine_dataset *ds, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Check that labels 0 .. num_classes-1 all have samples; names `source` in the message. */
comine_status comine_dataset_check_gaps(const comine_dataset *ds, const char *source);
/* Where the file of sample i (folder and list data sets) is opened from: the descriptor of the
 * open root folder with *path below it, or AT_FDCWD with *path the whole path. */
int comine_dataset_sample_at(const comine_dataset *ds, int i, const char **path);

/* ---- the files of a batch read at once (prefetch.c) --------------------------------------
 * The loader's hot path: the files of up to max_files samples read with a few system calls
 * for them all.  A file it does not serve (see comine_prefetch_bytes) is read the plain way. */
typedef struct comine_prefetch comine_prefetch;
/* NULL where batch reads are unavailable (not Linux, io_uring missing or refused). */
comine_prefetch *comine_prefetch_create(int max_files);
void comine_prefetch_free(comine_prefetch *pf);
/* Read the files of samples[0 .. n) of ds (n <= max_files; nothing for a RecordIO data set). */
void comine_prefetch_read(comine_prefetch *pf, const comine_dataset *ds, const int *samples, int n);
/* The bytes of samples[k] of the last read, followed by a 0; NULL when that file is left to
 * comine_dataset_read_into (it could not be opened or read, is not a regular file, is empty
 * or large, or changed while read), which then reads it and reports what is wrong with it. */
const uint8_t *comine_prefetch_bytes(const comine_prefetch *pf, int k, size_t *size);

#endif
