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

/* One reader per kind (src/data/reader_*.c), listed in src/data/dataset.c. */
typedef enum { COMINE_DATASET_FOLDER, COMINE_DATASET_LIST, COMINE_DATASET_RECORDIO } comine_dataset_kind;

typedef struct comine_sample {
    char *path;          /* file path (folder/list), or "rec:<key>" for RecordIO */
    int label;           /* identity, 0 .. num_classes-1 */
    int8_t truth;        /* COMINE_TRUTH_* */
    int64_t rec_offset;  /* RecordIO: byte offset of the record; -1 otherwise */
} comine_sample;

struct comine_dataset_reader;

typedef struct comine_dataset comine_dataset;
struct comine_dataset {
    comine_dataset_kind kind;
    const struct comine_dataset_reader *reader; /* how its samples are read (set by open) */
    char *source;        /* what was opened */
    int n;               /* samples */
    comine_sample *samples;
    int num_classes;
    char **class_names;  /* (num_classes) folder names, or NULL when the source has none */
    bool has_truth;      /* every sample carries a known truth flag */
    void *impl;          /* the reader's state (the open .rec file, the open root folder) */
    /* Things skipped at open time (non-image files and empty identity folders in a folder
     * tree), one message each naming the file; the data set is usable without them. */
    int num_problems;
    char **problems;
};

typedef enum { COMINE_ON_BAD_SKIP = 0, COMINE_ON_BAD_FAIL = 1 } comine_on_bad;

typedef struct comine_dataset_opts {
    const char *root;    /* list files: folder the paths are relative to (default: the list's folder) */
} comine_dataset_opts;

/* Auto-detects the kind: a folder holding train.rec + train.idx or a .rec/.idx path is
 * RecordIO, another folder a folder tree, anything else a list file (a name ending in .lst:
 * MXNet's `index<TAB>label...<TAB>path` or insightface's `aligned<TAB>path<TAB>label...`).  Errors name the file
 * and line or record. */
comine_status comine_dataset_open(comine_dataset **out, const char *path, const comine_dataset_opts *opts);
/* Keeps the samples i with keep[i] != 0 (in their order) and drops the others; the labels,
 * num_classes and the class names stay as they were.  Returns the samples kept. */
int comine_dataset_keep(comine_dataset *ds, const uint8_t *keep);
void comine_dataset_free(comine_dataset *ds);
/* What a kind of data set is called in messages ("folder of identity folders", "list file",
 * "RecordIO"). */
const char *comine_dataset_kind_name(comine_dataset_kind kind);
/* True when every sample is an image file of its own at samples[i].path (folder trees and
 * list files), false when samples live inside a container file (RecordIO). */
bool comine_dataset_has_files(const comine_dataset *ds);
/* The encoded bytes of sample i (malloc'd); thread-safe. */
comine_status comine_dataset_read(const comine_dataset *ds, int i, uint8_t **data, size_t *size);
/* A byte buffer its owner reuses from one read to the next (start from {0}). */
typedef struct comine_bytes {
    uint8_t *data;       /* (cap); data[size] is 0 after a read */
    size_t size, cap;
} comine_bytes;
void comine_bytes_free(comine_bytes *b);
/* comine_dataset_read into buf, grown when a sample does not fit: a reader that keeps its
 * buffer allocates nothing per sample once it has grown (the loader's hot path).  Thread-safe,
 * one buffer per thread; on failure buf->size is 0 and the message names the sample. */
comine_status comine_dataset_read_into(const comine_dataset *ds, int i, comine_bytes *buf);
/* Write the label -> class-name mapping (one "label<TAB>name" per line), atomically. */
comine_status comine_dataset_write_classes(const comine_dataset *ds, const char *path);
/* A short name of sample i for messages: its path, or "FILE.rec record KEY". */
const char *comine_dataset_sample_name(const comine_dataset *ds, int i);

/* ---- MXNet / insightface RecordIO ------------------------------------------------------
 * Write a data set as PREFIX.rec + PREFIX.idx (+ `property` in PREFIX's folder) in
 * insightface's layout: header record 0 (flag 2, labels [N+1, N+1+C]), image records
 * 1..N (IRHeader flag 0, label = identity, id = key, id2 = 1 + truth flag when the data set
 * has truth flags, else 0; payload = the encoded file bytes), identity records N+1..N+C
 * (flag 2, labels [first, end) of that identity's keys).  Records are split where the magic
 * value occurs at an aligned offset (cflag 1/2/3) exactly as dmlc-core does.  `keep` (n
 * flags, or NULL for all) selects the samples written. */
typedef struct comine_pack_stats {
    int images, identities;
    int split_records;   /* records written in parts because their data held the magic */
    int width, height;   /* written to `property` */
} comine_pack_stats;
comine_status comine_recordio_pack(const comine_dataset *ds, const bool *keep, int width, int height,
                                   const char *prefix, comine_pack_stats *stats);
/* One whole record (the parts joined back) at byte `offset` of an open .rec file descriptor;
 * `name` is used in messages.  *next_offset is the offset after the record (and its padding). */
comine_status comine_recordio_read_record(int fd, int64_t file_size, int64_t offset, const char *name,
                                          uint8_t **data, size_t *size, int64_t *next_offset);
/* Append one record (split at aligned magic values) to `fp`; returns the parts written in *parts. */
comine_status comine_recordio_write_record(FILE *fp, const void *data, size_t size, int *parts);

/* ---- LFW people files ("count" then "Name<TAB>n" per line) ---------------------------- */
typedef struct comine_people {
    int n;
    char **names;
    int *counts;
} comine_people;
comine_status comine_people_load(comine_people *out, const char *path);
void comine_people_free(comine_people *p);

/* ---- images ------------------------------------------------------------------------ */
typedef struct comine_image {
    int w, h;
    uint8_t *rgb;        /* (h, w, 3) */
} comine_image;

/* JPEG, PNG, PGM/PPM by content; grey becomes 3 channels; `name` is used in messages. */
comine_status comine_image_decode(comine_image *img, const uint8_t *data, size_t size, const char *name);
comine_status comine_image_load(comine_image *img, const char *path);
void comine_image_free(comine_image *img);
/* Read and decode sample i (messages name the sample); thread-safe. */
comine_status comine_dataset_decode(const comine_dataset *ds, int i, comine_image *img);
/* Encoders (for synth, pack and tests): PNG and JPEG (quality 1..100) to *data (malloc'd,
 * *size bytes), and a PNG file written atomically. */
comine_status comine_image_encode_png(const comine_image *img, uint8_t **data, size_t *size);
comine_status comine_image_encode_jpeg(const comine_image *img, int quality, uint8_t **data, size_t *size);
comine_status comine_image_save_png(const comine_image *img, const char *path);

/* The network input of one image: resize to (size x size) (area when shrinking, bilinear
 * when growing), optional horizontal flip, (x - 127.5) / 128; out is (size, size, 3). */
void comine_image_to_input(float *out, const comine_image *img, int size, bool flip);
/* The same from a source box (x0, y0, bw, bh in source pixels, may be fractional): the
 * crop/scale jitter of the loader.  The box is clamped to the image. */
void comine_image_box_to_input(float *out, const comine_image *img, float x0, float y0, float bw, float bh,
                               int size, bool flip);
/* The augmentation the loader applies to one sample: flip and jitter drawn from `rng`
 * (a fixed number of draws whatever the options, so the stream does not depend on them). */
void comine_image_augment_to_input(float *out, const comine_image *img, int size, bool flip, float jitter,
                                   comine_rng *rng);
/* The loader's fast path: when `data` is a YCbCr (4:4:4, 4:2:2, 4:2:0) or grayscale JPEG of
 * exactly size x size, decode it straight to the network input, the same floats as
 * comine_image_decode + comine_image_to_input, and set *done; otherwise *done is false and out
 * is untouched (use the general path).  A bad JPEG fails as comine_image_decode fails. */
comine_status comine_image_jpeg_to_input(float *out, bool *done, const uint8_t *data, size_t bytes,
                                         const char *name, int size, bool flip);
/* True when the bytes start like an image comine decodes (JPEG, PNG, PGM/PPM). */
bool comine_image_sniff(const uint8_t *data, size_t size);
/* True when the file name has an image extension (.jpg .jpeg .png .pgm .ppm .pnm, any case). */
bool comine_image_path_has_ext(const char *path);

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
    int part, parts;     /* read only part `part` of `parts` of every batch: its positions
                          * [part m / parts, (part + 1) m / parts) of m (default 0 of 1: all) */
} comine_loader_opts;

typedef struct comine_batch {
    int n;               /* samples in this batch (<= opts.batch; fewer when bad images were skipped,
                          * 0 when all of them were) */
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
 * file named) on a bad image under COMINE_ON_BAD_FAIL; under SKIP counts and logs it.
 * A batch stays valid until released; up to queue_depth + threads may be held at once
 * (asking for another then is COMINE_ERR_ARG, never a hang). */
comine_status comine_loader_next(comine_loader *l, comine_batch **batch);
void comine_loader_release(comine_loader *l, comine_batch *batch);
/* Every sample's augmentation RNG: a function of (seed, epoch, position in the epoch). */
void comine_loader_sample_rng(comine_rng *rng, uint64_t seed, int epoch, int64_t position);
/* Bad images seen so far (each listed once, with its reason). */
int comine_loader_bad_count(const comine_loader *l);
const char *comine_loader_bad_item(const comine_loader *l, int i);

#endif
