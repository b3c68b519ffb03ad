/* data.h: face data sets (a folder of identity folders, a list file, insightface/MXNet
 * RecordIO), image decoding (JPEG via TurboJPEG, PNG via libpng, PGM/PPM), preprocessing
 * (resize, flip, normalise) and a threaded loader that fills a bounded queue of batches
 * in a seeded order that does not depend on the thread count. */
#ifndef COMINE_DATA_H
#define COMINE_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comine/core.h"

/* Ground-truth noise flags (list files' third column; written by `comine corrupt`). */
enum { COMINE_TRUTH_UNKNOWN = -1, COMINE_TRUTH_CLEAN = 0, COMINE_TRUTH_FLIP = 1, COMINE_TRUTH_OUTLIER = 2 };

typedef enum { COMINE_DATASET_FOLDER, COMINE_DATASET_LIST, COMINE_DATASET_RECORDIO } comine_dataset_kind;

typedef struct comine_sample {
    char *path;          /* file path (folder/list), or "rec:<key>" for RecordIO */
    int label;           /* identity, 0 .. num_classes-1 */
    int8_t truth;        /* COMINE_TRUTH_* */
    int64_t rec_offset;  /* RecordIO: byte offset of the record; -1 otherwise */
} comine_sample;

typedef struct comine_dataset comine_dataset;
struct comine_dataset {
    comine_dataset_kind kind;
    char *source;        /* what was opened */
    int n;               /* samples */
    comine_sample *samples;
    int num_classes;
    char **class_names;  /* (num_classes) folder names, or NULL when the source has none */
    bool has_truth;      /* every sample carries a known truth flag */
    void *impl;          /* kind-specific state (e.g. the open .rec file) */
};

typedef enum { COMINE_ON_BAD_SKIP = 0, COMINE_ON_BAD_FAIL = 1 } comine_on_bad;

typedef struct comine_dataset_opts {
    const char *root;    /* list files: folder the paths are relative to (default: the list's folder) */
} comine_dataset_opts;

/* Auto-detects the kind: a folder, a .rec file (with .idx beside it), else a list file.
 * Errors name the file and line or record. */
comine_status comine_dataset_open(comine_dataset **out, const char *path, const comine_dataset_opts *opts);
void comine_dataset_free(comine_dataset *ds);
/* The encoded bytes of sample i (malloc'd); thread-safe. */
comine_status comine_dataset_read(const comine_dataset *ds, int i, uint8_t **data, size_t *size);
/* Write the label -> class-name mapping (one "label<TAB>name" per line), atomically. */
comine_status comine_dataset_write_classes(const comine_dataset *ds, const char *path);

/* ---- images ------------------------------------------------------------------------ */
typedef struct comine_image {
    int w, h;
    uint8_t *rgb;        /* (h, w, 3) */
} comine_image;

/* JPEG, PNG, PGM/PPM by content; grey becomes 3 channels; `name` is used in messages. */
comine_status comine_image_decode(comine_image *img, const uint8_t *data, size_t size, const char *name);
comine_status comine_image_load(comine_image *img, const char *path);
void comine_image_free(comine_image *img);
/* Encoders (for synth, pack and tests): PNG and JPEG (quality 1..100), atomically. */
comine_status comine_image_save_png(const comine_image *img, const char *path);
comine_status comine_image_encode_jpeg(const comine_image *img, int quality, uint8_t **data, size_t *size);

/* The network input of one image: resize to (size x size) (area when shrinking, bilinear
 * when growing), optional horizontal flip, (x - 127.5) / 128; out is (size, size, 3). */
void comine_image_to_input(float *out, const comine_image *img, int size, bool flip);

/* ---- loader -------------------------------------------------------------------------- */
typedef struct comine_loader_opts {
    int batch;           /* samples per batch */
    int input;           /* network input size */
    int threads;         /* decode threads (>= 1) */
    int queue_depth;     /* ready batches kept ahead (default 2 when 0) */
    uint64_t seed;
    bool shuffle;        /* seeded shuffle per epoch */
    bool flip;           /* random horizontal flip */
    float jitter;        /* random crop / scale jitter, fraction of the side (0 = none) */
    bool drop_last;      /* drop the last incomplete batch */
    bool cache;          /* keep decoded images in memory after the first epoch */
    comine_on_bad on_bad;
} comine_loader_opts;

typedef struct comine_batch {
    int n;               /* samples in this batch (<= opts.batch; fewer when bad images were skipped) */
    int step;            /* index of the batch in the epoch */
    float *images;       /* (batch, input, input, 3) */
    int *labels;         /* (batch) */
    int *indices;        /* (batch) sample index in the data set */
    int8_t *truth;       /* (batch) */
} comine_batch;

typedef struct comine_loader comine_loader;

void comine_loader_opts_default(comine_loader_opts *o);
comine_status comine_loader_create(comine_loader **out, const comine_dataset *ds, const comine_loader_opts *o);
void comine_loader_free(comine_loader *l);
int comine_loader_steps_per_epoch(const comine_loader *l);
/* Start an epoch at batch `first_step` (0, or later when resuming); the order and the
 * augmentation of every sample are functions of (seed, epoch, position) only. */
void comine_loader_start_epoch(comine_loader *l, int epoch, int first_step);
/* Next batch of the epoch, or *batch = NULL at its end.  Fails (COMINE_ERR_FORMAT with the
 * file named) on a bad image under COMINE_ON_BAD_FAIL; under SKIP counts and logs it. */
comine_status comine_loader_next(comine_loader *l, comine_batch **batch);
void comine_loader_release(comine_loader *l, comine_batch *batch);
/* Bad images seen so far (each listed once, with its reason). */
int comine_loader_bad_count(const comine_loader *l);
const char *comine_loader_bad_item(const comine_loader *l, int i);

#endif
