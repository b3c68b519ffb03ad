/* eval.h: evaluation of face embedding models and of a training run's noise detection.
 *  - verification pairs (LFW pairs files `N` / `F N`, or `pathA<TAB>pathB<TAB>same` lists),
 *    flip-test embeddings of one model or an ensemble, the k-fold accuracy protocol, ROC AUC
 *    and TAR at fixed FAR;
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

/* ---- embeddings ------------------------------------------------------------------------ */
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

/* NumPy .npy v1.0, float32, shape (rows, cols), written atomically. */
comine_status comine_npy_write_f32(const char *path, const float *data, int rows, int cols);

/* The run report: PNG plots (when built with PLplot) and index.html in out_dir.
 * plots_made (may be NULL) gets the number of PNGs written. */
comine_status comine_report_write(const char *run_dir, const char *out_dir, int *plots_made);
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
