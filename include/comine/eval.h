/* eval.h: evaluation of face embedding models and of a training run's noise detection.
 *  - verification pairs (LFW pairs files `N` / `F N`, or `pathA<TAB>pathB<TAB>same` lists),
 *    flip-test embeddings of one model or an ensemble, the k-fold accuracy protocol, ROC AUC,
 *    TAR at any FAR and the ROC curve (a table and a chart);
 *  - identification as MegaFace reports it: probes against a gallery with distractors;
 *  - embeddings of a list of images, written as NumPy .npy;
 *  - the noise report of a run (noise.csv): ranked suspects, a cleaned list, detection
 *    precision / recall / F1 and average precision against ground truth;
 *  - small readers for the trainer's outputs (metrics.jsonl, cos_epoch<E>.csv), the
 *    run report (PLplot PNGs + index.html) and line charts of tab-separated tables.
 * Metrics are pure functions of score arrays (no model needed); only comine_embed_files and
 * comine_verify_models run networks. */
#ifndef COMINE_EVAL_H
#define COMINE_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comine/core.h"
#include "comine/run_files.h"
#include "comine/model.h"

/* ---- verification pairs ---------------------------------------------------------------- */
typedef struct comine_pairs {
    int n;              /* pairs */
    int folds;          /* folds of the protocol (10 for `N` files and lists; F for `F N` files) */
    int n_images;       /* unique images */
    char **images;      /* (n_images) full paths (root joined) */
    int *a, *b;         /* (n) indices into images */
    uint8_t *same;      /* (n) 1 = same identity */
    int *fold;          /* (n) fold of each pair, 0 .. folds-1 */
    bool file_folds;    /* the folds come from the file (`F N`); else a contiguous KFold split */
    char *source;       /* the pairs file */
} comine_pairs;

/* Reads an LFW pairs file (first line `N` or `F N`) or a generic `pathA<TAB>pathB<TAB>same`
 * list (same: 1/0, true/false), relative paths joined to `root` (NULL: the file's folder for
 * lists, required for LFW files).  Checks counts and that every image exists; errors name the
 * file and line. */
comine_status comine_pairs_load(comine_pairs **out, const char *file, const char *root);
void comine_pairs_free(comine_pairs *p);
/* Contiguous k-fold split of n items as sklearn's KFold(n_splits=k, shuffle=False):
 * the first n % k folds hold n / k + 1 items, the rest n / k.  fold is (n). */
void comine_kfold_assign(int *fold, int n, int k);

/* ---- verification metrics -------------------------------------------------------------- */
#define COMINE_VERIFY_MAX_FOLDS 64
typedef struct comine_verify_result {
    int pairs;
    int folds;
    double accuracy;          /* mean of the held-out fold accuracies */
    double accuracy_std;      /* population std (numpy's default) of the fold accuracies */
    double threshold;         /* mean of the chosen thresholds (cosine) */
    double auc;               /* ROC AUC (ties count one half) */
    double tar_far_1e2;       /* TAR at FAR = 1e-2; NAN when fewer than 100 mismatched pairs */
    double tar_far_1e3;       /* TAR at FAR = 1e-3; NAN when fewer than 1000 mismatched pairs */
    double fold_accuracy[COMINE_VERIFY_MAX_FOLDS];
    double embed_images_per_s;/* filled by comine_verify_models (0 otherwise) */
    double seconds;           /* filled by comine_verify_models (0 otherwise) */
} comine_verify_result;

/* The k-fold protocol on similarity scores (higher = more alike); same is (n), fold is (n)
 * with values 0 .. folds-1 (NULL: comine_kfold_assign(n, folds)).
 * For each held-out fold, the threshold is chosen on the other folds (on all pairs when
 * folds = 1): candidates are the midpoints between consecutive distinct scores plus one
 * below the lowest and one above the highest; a pair is predicted `same` when
 * score > threshold; the lowest threshold of maximal accuracy wins.
 * TAR at FAR f: k = floor(f * negatives); threshold t = the (k+1)-th largest negative score;
 * TAR = fraction of positives with score > t. */
void comine_verify_scores(comine_verify_result *res, const float *scores, const uint8_t *same, const int *fold,
                          int n, int folds);
/* Single metrics (used by the above and by tests). */
double comine_roc_auc(const float *scores, const uint8_t *positive, int n);
double comine_tar_at_far(const float *scores, const uint8_t *same, int n, double far);

/* ---- TAR at chosen FARs and the ROC curve ---------------------------------------------- */
#define COMINE_MAX_FARS 16
/* A comma-separated list of false accept rates ("1e-6,1e-5,1e-4"), each in (0, 1): fars is
 * (COMINE_MAX_FARS), in the order given, repeats dropped.  Errors name `what` (an option)
 * and the bad item. */
comine_status comine_far_list_parse(double *fars, int *n_fars, const char *text, const char *what);
/* The short text of a FAR in JSON keys and headers: 1e-4 -> "1e-4", 2.5e-3 -> "2.5e-3". */
void comine_far_text(char *buf, size_t size, double far);
/* TAR at each FAR, comine_tar_at_far's rule, with one sort of the negatives. */
void comine_tar_at_fars(double *tar, const double *fars, int n_fars, const float *scores, const uint8_t *same, int n);
/* The same rule when only the largest negative scores are kept (identification, where all
 * probe x gallery impostor scores would not fit): pos is (n_pos) genuine scores, top_neg is
 * (n_top) the n_top largest of the n_neg impostor scores, sorted descending.  A FAR whose
 * threshold lies beyond the kept ones (floor(far * n_neg) >= n_top, with n_top < n_neg) is NAN,
 * as is one with floor(far * n_neg) < 1. */
void comine_tar_at_fars_top(double *tar, const double *fars, int n_fars, const float *pos, int64_t n_pos,
                            const float *top_neg, int64_t n_top, int64_t n_neg);
/* How many of the largest impostor scores comine_tar_at_fars_top needs for FARs up to
 * max_far among n_neg impostors: floor(max_far * n_neg) + 1 (at most n_neg). */
int64_t comine_far_top_needed(double max_far, int64_t n_neg);

/* One point of a ROC curve: a pair is accepted when its score > threshold. */
typedef struct comine_roc_point { double threshold, far, tar; } comine_roc_point;
/* The ROC of scores (n) against same (n): thresholds at every distinct score, descending
 * (the first accepts nothing: FAR 0, TAR 0), then one below the lowest score (FAR 1, TAR 1).
 * *out is malloc'd; returns its length, 0 (and *out NULL) when positives or negatives are missing. */
int comine_roc_curve(comine_roc_point **out, const float *scores, const uint8_t *same, int n);
/* A ROC as text: the header `threshold<TAB>far<TAB>tar`, one point a line; written atomically. */
comine_status comine_roc_write(const char *path, const comine_roc_point *roc, int n);
/* Reads what comine_roc_write writes (errors name the file and line); *out malloc'd. */
comine_status comine_roc_load(comine_roc_point **out, int *n, const char *path);
/* A ROC chart (pngcairo): TAR against FAR on a log axis, one line per curve with a legend
 * (labels may be NULL with one curve).  Fails with a clear message when comine has no plots
 * (comine_report_have_plots). */
comine_status comine_plot_roc(const char *png, const comine_roc_point *const *curves, const int *n_points,
                              const char *const *labels, int n_curves, const char *title);

/* ---- embeddings ------------------------------------------------------------------------ */
/* Progress of embedding (comine_embed_* and the verifications, which embed first): with a
 * label, a line "LABEL: embedded i / n images (r/s, t s left)" every 2 s through
 * comine_progress; NULL (the default) is quiet.  Process-wide: set by a command, not a library. */
void comine_embed_set_progress(const char *label);
/* emb is (n_paths, emb_dim) of the first model: for every image, each model's embedding of
 * the image plus that of its mirror, L2-normalised; with several models (same emb_dim), the
 * sum of those, L2-normalised again (the ensemble).  Images are decoded on `threads` threads
 * and run `batch` at a time (in pieces of each model's max_batch).  A missing or bad
 * image fails with its path named.  images_per_s (may be NULL) gets the throughput. */
comine_status comine_embed_files(float *emb, comine_model *const *models, int n_models, const char *const *paths,
                                 int n_paths, int batch, int threads, double *images_per_s);
/* Same for every sample of a data set (folder, list or RecordIO), in sample order. */
typedef struct comine_dataset comine_dataset;
comine_status comine_embed_dataset(float *emb, comine_model *const *models, int n_models, const comine_dataset *ds,
                                   int batch, int threads, double *images_per_s);
/* Verification of one model or an ensemble: embeds each unique image once, scores every pair
 * by cosine, runs comine_verify_scores with the file's folds.  scores (pairs->n) may be NULL. */
comine_status comine_verify_models(comine_verify_result *res, comine_model *const *models, int n_models,
                                   const comine_pairs *pairs, int batch, float *scores);
/* Same, with the decode thread count given (comine_verify_models uses 4). */
comine_status comine_verify_models_threads(comine_verify_result *res, comine_model *const *models, int n_models,
                                           const comine_pairs *pairs, int batch, int threads, float *scores);

/* ---- identification (as MegaFace reports it) -------------------------------------------
 * A gallery folder of identity folders (or any data set of image files) is split, per
 * identity, with the images in the data set's order (a folder's files sorted bytewise): the
 * first image is enrolled in the gallery, the next ones (up to probe_per_id; 0: all) are the
 * probes.  An identity with one image is enrolled only.  Distractors (every image file under a
 * folder, searched recursively, sorted bytewise by path; the first max_distractors of them, 0:
 * all) join the gallery as identities no probe has.  Each probe is scored by cosine against
 * the whole gallery in blocks (sgemm; the probe x gallery matrix is never held whole):
 * rank-k accuracy = the fraction of probes whose own enrolled image scores above the k-th best
 * other gallery entry (a tie counts as a miss); TAR at FAR = the verification rule of
 * comine_tar_at_far over every probe x gallery pair (genuine: the probe and its own enrolled
 * image; impostors: every other gallery entry), from the largest impostor scores kept. */
typedef void (*comine_progress_fn)(void *ctx, const char *what, int64_t done, int64_t total);

typedef struct comine_identify_result {
    int identities;            /* gallery identities enrolled (one image each) */
    int probe_identities;      /* identities with at least one probe */
    int probes;
    int distractors;
    int gallery;               /* identities + distractors */
    double rank1, rank5;       /* rank-1 and rank-5 identification accuracy */
    int n_fars;
    double fars[COMINE_MAX_FARS], tar[COMINE_MAX_FARS];  /* NAN where there are too few impostors */
    int64_t genuine_pairs, impostor_pairs;
    double embed_images_per_s; /* filled by comine_identify (0 otherwise) */
    double seconds;            /* scoring (and, in comine_identify, embedding) */
} comine_identify_result;

/* The scores part, on embeddings (L2-normalised rows): probe_emb is (n_probes, dim),
 * gallery_emb (n_gallery, dim); probe_gallery (n_probes) is each probe's own gallery row.
 * block: probes per sgemm block (0: 256).  progress may be NULL.  res's identities,
 * probe_identities and distractors are kept as the caller set them (start from a zeroed res). */
comine_status comine_identify_scores(comine_identify_result *res, const float *probe_emb, const int *probe_gallery,
                                     int n_probes, const float *gallery_emb, int n_gallery, int dim,
                                     const double *fars, int n_fars, int block, comine_progress_fn progress,
                                     void *progress_ctx);

typedef struct comine_identify_opts {
    const char *gallery;       /* folder of identity folders (or a list of image files) */
    const char *distractors;   /* folder of distractor images, or NULL */
    int probe_per_id;          /* probes per identity (0: all but the enrolled image) */
    int max_distractors;       /* the first N distractors in path order (0: all) */
    double fars[COMINE_MAX_FARS];
    int n_fars;
    int batch, threads;        /* embedding: images per forward, decode threads */
    comine_progress_fn progress;
    void *progress_ctx;
} comine_identify_opts;

/* The whole protocol: split, embed (flip test, as comine_embed_files), score. */
comine_status comine_identify(comine_identify_result *res, comine_model *const *models, int n_models,
                              const comine_identify_opts *opts);

/* ---- insightface verification sets (.bin) ---------------------------------------------
 * A Python pickle (protocol 2 to 5) of the tuple (bins, issame_list): bins holds 2 x n encoded
 * images, pair k being images 2k and 2k + 1; issame_list holds n bools.  The reader accepts
 * that structure only: images as bytes (SHORT_BINBYTES, BINBYTES, BINBYTES8), as Python 2 str
 * (SHORT_BINSTRING, BINSTRING) or as Python 3's protocol-2 form _codecs.encode(text, 'latin1');
 * issame entries as True / False (or 0 / 1); memo references (BINPUT / BINGET, MEMOIZE) and
 * protocol-4 frames as Python writes them.  Any other opcode or shape is an error naming the
 * file, the byte offset and what was expected. */
typedef struct comine_binset {
    int n;                       /* pairs */
    int protocol;                /* the pickle's protocol, 2 .. 5 */
    const uint8_t **image;       /* (2n) encoded bytes of each image (into the file, or owned) */
    size_t *image_size;          /* (2n) */
    int64_t *image_offset;       /* (2n) byte offset of the opcode that made each image */
    uint8_t *same;               /* (n) 1 = same identity */
    char *source;                /* the file (or the name given to comine_binset_parse) */
    void *impl;                  /* the mapping and decoded buffers */
} comine_binset;

/* Maps the file (one read when it cannot be mapped) and parses it. */
comine_status comine_binset_load(comine_binset **out, const char *path);
/* Parses bytes in memory; `data` must outlive the set, `name` is used in messages. */
comine_status comine_binset_parse(comine_binset **out, const uint8_t *data, size_t size, const char *name);
void comine_binset_free(comine_binset *set);

/* Writing, one image at a time: images as Python 2 str (protocol 2: what the distributed
 * files hold; Python 3 reads it with pickle.load(f, encoding='bytes')) or bytes (protocol 3,
 * plain pickle.load), lists in batches of 1000 as Python's pickler, written atomically. */
typedef struct comine_binset_writer comine_binset_writer;
comine_status comine_binset_writer_open(comine_binset_writer **out, const char *path, int protocol);
/* Append image i (of 2n, pairs adjacent). */
comine_status comine_binset_writer_add(comine_binset_writer *w, const uint8_t *data, size_t size);
/* Write issame (n, where 2n images were added), commit and free the writer (also on failure). */
comine_status comine_binset_writer_finish(comine_binset_writer *w, const uint8_t *same, int n);
void comine_binset_writer_abort(comine_binset_writer *w);
/* A whole set: the writer above over set's images. */
comine_status comine_binset_write(const char *path, const comine_binset *set, int protocol);

/* Flip-test embeddings of the 2n images (in order) of a set, as comine_embed_files. */
comine_status comine_embed_binset(float *emb, comine_model *const *models, int n_models, const comine_binset *set,
                                  int batch, int threads, double *images_per_s);
/* Verification on a set: every image embedded, score of pair k = cosine of images 2k and
 * 2k + 1, fold of pair k = comine_kfold_assign(n, folds) (contiguous, in file order, as
 * insightface's KFold without shuffling).  Needs 1 <= folds <= n and both kinds of pairs.
 * scores (set->n) may be NULL. */
comine_status comine_verify_binset(comine_verify_result *res, comine_model *const *models, int n_models,
                                   const comine_binset *set, int folds, int batch, int threads, float *scores);

/* NumPy .npy v1.0, float32, shape (rows, cols), written atomically. */
comine_status comine_npy_write_f32(const char *path, const float *data, int rows, int cols);

/* The run report: PNG plots (when built with PLplot) and index.html in out_dir.
 * plots_made (may be NULL) gets the number of PNGs written. */
comine_status comine_report_write(const char *run_dir, const char *out_dir, int *plots_made);
/* The same with a ROC panel (roc.png and a table of TAR at FAR 1e-6 .. 1e-1 read off the
 * curves) of the ROC tables (comine_roc_write's format) RUN/roc*.tsv and roc_files (n_roc_files
 * of them, may be NULL); at most COMINE_PLOT_MAX_SERIES in all.  A folder with only ROC tables
 * is a report too. */
comine_status comine_report_write_rocs(const char *run_dir, const char *out_dir, const char *const *roc_files,
                                       int n_roc_files, int *plots_made);
/* Built with PLplot and its pngcairo driver is installed: PNG charts can be drawn. */
bool comine_report_have_plots(void);

/* ---- line charts of a table ------------------------------------------------------------ */
#define COMINE_PLOT_MAX_SERIES 8
typedef struct comine_plot_spec {
    const char *table;            /* tab-separated; the first line names the columns; blank and '#' lines ignored */
    const char *x, *y;            /* numeric columns */
    const char *err;              /* numeric column (>= 0): bars from y - err to y + err; NULL: none */
    const char *group;            /* column whose distinct values (first-seen order) are the series, each with a
                                     legend entry; NULL: one series, no legend */
    const char *out;              /* the PNG (its folder is made; written through a temp file) */
    const char *title;            /* NULL: none */
    const char *xlabel, *ylabel;  /* NULL: the column names */
    double ymin, ymax;            /* the y range when both are finite (ymin < ymax); NAN: from the data */
} comine_plot_spec;
/* A line chart (pngcairo) of y against x: the points of each series sorted by x, joined by a
 * line, with error bars when spec->err.  Errors name the table and, where it applies, the line
 * and column: a missing or empty file, an unknown column (the available ones listed), a value
 * that is not a finite number, a row with another field count than the header, more than
 * COMINE_PLOT_MAX_SERIES series, no data rows; the table is checked before plots are known to
 * be available (comine_report_have_plots), so a bad table is reported either way. */
comine_status comine_plot_table(const comine_plot_spec *spec);

#endif
