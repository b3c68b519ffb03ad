/* data_internal.h: what the parts of src/data share that is not public API: the reader
 * interface (one table of functions per kind of data set, dataset.c holds the list), the
 * helpers readers fill a data set with (reader.c), the RecordIO record format's internals
 * (recordio.c) and the loader's batch file reads (prefetch.c).
 * Layering, each using only what is above it: core; recordio.c and reader.c; the readers
 * (reader_*.c); dataset.c, which reaches the readers through their tables only; pack.c, the
 * loader and prefetch.c (the last through a reader's file_at). */
#ifndef COMINE_DATA_INTERNAL_H
#define COMINE_DATA_INTERNAL_H

#include <string.h>

#include "comine/data.h"

/* ---- the reader of one kind of data set --------------------------------------------------
 * dataset.c asks the readers of its table, in order, whether they take a path (`claims`);
 * the first that does opens it and is kept in ds->reader.  Adding a kind of data set is one
 * file with one of these tables and one entry in dataset.c's list. */
typedef struct comine_dataset_reader {
    comine_dataset_kind kind;
    const char *name;    /* what `comine inspect` calls it: "list file", ... */
    /* True when `path` (which exists) is a data set of this kind. */
    bool (*claims)(const char *path);
    /* Fill ds (samples, num_classes, class_names, has_truth, problems, impl) from `path`.
     * ds->reader is set before; on failure the caller frees ds (close gets ds->impl).
     * Errors name the file and line or record. */
    comine_status (*open)(comine_dataset *ds, const char *path, const comine_dataset_opts *opts);
    /* The encoded bytes of sample i (comine_dataset_read_into's contract); thread-safe. */
    comine_status (*read_into)(const comine_dataset *ds, int i, comine_bytes *buf);
    /* The name of sample i in messages (comine_dataset_sample_name's contract). */
    const char *(*sample_name)(const comine_dataset *ds, int i);
    /* Where the file of sample i is opened from: a folder descriptor with *path below it,
     * or AT_FDCWD with *path the whole path.  NULL for readers whose samples are not files
     * of their own (batch reads then do not apply). */
    int (*file_at)(const comine_dataset *ds, int i, const char **path);
    /* Release ds->impl (which may be NULL). */
    void (*close)(void *impl);
} comine_dataset_reader;

extern const comine_dataset_reader comine_reader_folder;    /* reader_files.c */
extern const comine_dataset_reader comine_reader_list;      /* reader_files.c */
extern const comine_dataset_reader comine_reader_recordio;  /* reader_recordio.c */

/* ---- helpers for readers (reader.c) ------------------------------------------------------ */
/* Open-time problems logged one by one before a summary line. */
#define COMINE_DATASET_MAX_LOGGED 20
/* Add an open-time problem to the data set's list. */
void comine_dataset_add_problem(comine_dataset *ds, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Check that labels 0 .. num_classes-1 all have samples; names `source` in the message. */
comine_status comine_dataset_check_gaps(const comine_dataset *ds, const char *source);

/* ---- the RecordIO record format (recordio.c) --------------------------------------------- */
#define COMINE_RECORDIO_MAGIC 0xced7230au
#define COMINE_RECORDIO_LEN_MASK ((1u << 29) - 1)
#define COMINE_IRHEADER_SIZE 24

/* IRHeader fields (little-endian <IfQQ) from the first 24 bytes of a record's data. */
typedef struct comine_irheader {
    uint32_t flag;
    float label;
    uint64_t id, id2;
} comine_irheader;
void comine_irheader_parse(comine_irheader *h, const uint8_t *p);
void comine_irheader_write(uint8_t *p, const comine_irheader *h);

/* A little-endian float32 (the labels after an IRHeader). */
static inline float comine_recordio_get_f32(const uint8_t *p)
{
    uint32_t u = comine_get_le32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline void comine_recordio_put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    comine_put_le32(p, u);
}

/* n bytes at `off` of fd (pread, thread-safe); a short file is COMINE_ERR_FORMAT naming `name`. */
comine_status comine_recordio_pread(int fd, void *buf, size_t n, int64_t off, const char *name);
/* comine_recordio_read_record into buf, grown when the record does not fit (buf->data[size]
 * is 0 after it); on failure buf->size is 0. */
comine_status comine_recordio_read_record_into(int fd, int64_t file_size, int64_t offset, const char *name,
                                               comine_bytes *buf, int64_t *next_offset);

/* ---- the files of a batch read at once (prefetch.c) --------------------------------------
 * The loader's hot path: the files of up to max_files samples read with a few system calls
 * for them all.  A file it does not serve (see comine_prefetch_bytes) is read the plain way. */
typedef struct comine_prefetch comine_prefetch;
/* NULL where batch reads are unavailable (not Linux, io_uring missing or refused). */
comine_prefetch *comine_prefetch_create(int max_files);
void comine_prefetch_free(comine_prefetch *pf);
/* Read the files of samples[0 .. n) of ds (n <= max_files; nothing unless comine_dataset_has_files). */
void comine_prefetch_read(comine_prefetch *pf, const comine_dataset *ds, const int *samples, int n);
/* The bytes of samples[k] of the last read, followed by a 0; NULL when that file is left to
 * comine_dataset_read_into (it could not be opened or read, is not a regular file, is empty
 * or large, or changed while read), which then reads it and reports what is wrong with it. */
const uint8_t *comine_prefetch_bytes(const comine_prefetch *pf, int k, size_t *size);

#endif
