/* run_files.h: the files of a training run folder, their columns, and the rules that turn
 * noise votes into a verdict: written by the trainer, read by `comine clean`, `report` and
 * the experiment tables, all through this one header.
 *   noise.csv         one row per training sample: index,path,label,votes,rounds,score,flagged,truth
 *   cos_epoch<E>.csv  each sample's cos(theta_y) under both peers: index,label,truth,cos_a,cos_b
 *   metrics.jsonl     one flat JSON object per epoch, with the key "epoch" first
 * A sample's score is votes / rounds (0 when it has no rounds); it is flagged when it has
 * rounds and its score reaches the vote threshold.  Detection precision / recall / F1 compare
 * the flags with the ground truth (label flips and outliers are the noisy samples). */
#ifndef COMINE_RUN_FILES_H
#define COMINE_RUN_FILES_H

#include <stdbool.h>
#include <stdint.h>

#include "comine/core.h"
#include "comine/data.h"

#define COMINE_RUN_NOISE "noise.csv"
#define COMINE_RUN_METRICS "metrics.jsonl"
#define COMINE_RUN_COS_FORMAT "cos_epoch%d.csv"
#define COMINE_NOISE_HEADER "index,path,label,votes,rounds,score,flagged,truth"
#define COMINE_COS_HEADER "index,label,truth,cos_a,cos_b"

/* ---- the rules ---------------------------------------------------------------------- */
static inline bool comine_truth_noisy(int truth)
{
    return truth == COMINE_TRUTH_FLIP || truth == COMINE_TRUTH_OUTLIER;
}
double comine_noise_score(int votes, int rounds);
bool comine_noise_flagged(int votes, int rounds, double threshold);
/* Precision tp / (tp + fp), recall tp / (tp + fn), their harmonic mean; each 0 when its
 * denominator is 0. */
void comine_detection_figures(double tp, double fp, double fn, double *precision, double *recall, double *f1);

/* ---- writing (each file whole and atomically) ---------------------------------------- */
/* noise.csv of the data set's samples; votes and rounds are (ds->n). */
comine_status comine_noise_write(const char *path, const comine_dataset *ds, const int32_t *votes,
                                 const int32_t *rounds, double threshold);
/* cos_epoch<E>.csv; cos is (ds->n, 2): cos(theta_y) under peer A and B, NAN where unseen;
 * the cos_b column is left empty when n_peers is 1. */
comine_status comine_cos_write(const char *path, const comine_dataset *ds, const float *cos, int n_peers);
/* metrics.jsonl: drop the lines of epochs >= epoch, then append json_line (one object). */
comine_status comine_metrics_append(const char *path, int epoch, const char *json_line);
/* Keep only the lines of epochs < epoch (a resumed run); nothing when the file is absent. */
comine_status comine_metrics_trim(const char *path, int epoch);
/* Remove the temporary files (NAME.tmp.<pid>) an interrupted writer left in a run folder. */
void comine_run_remove_temporaries(const char *dir);

/* ---- reading (tables.c) ---------------------------------------------------------------------- */
typedef struct comine_noise_row {
    int index;
    char *path;
    int label;
    int votes, rounds;
    double score;       /* votes / rounds (0 when rounds = 0) */
    int flagged;
    int truth;          /* 0 clean, 1 flip, 2 outlier, -1 unknown */
} comine_noise_row;

typedef struct comine_noise_table {
    int n;
    comine_noise_row *rows;
    bool has_truth;     /* every row has a known truth */
    char *source;
} comine_noise_table;

/* Reads noise.csv (COMINE_NOISE_HEADER; RFC-4180 quoting of path); errors name the file
 * and line. */
comine_status comine_noise_load(comine_noise_table **out, const char *path);
void comine_noise_free(comine_noise_table *t);

typedef struct comine_detection {
    int tp, fp, fn, tn;
    double precision, recall, f1;  /* at the threshold (precision 0 when nothing is flagged) */
    double average_precision;      /* of the ranking by score (ties in score as one step) */
} comine_detection;
/* Detection quality of `score >= threshold` against truth != 0; truth is (n) with values
 * 0 clean, > 0 noisy, < 0 unknown (unknown rows are ignored). */
void comine_detection_eval(comine_detection *d, const double *score, const int *truth, int n, double threshold);
/* Ranking by score, descending, ties by index ascending: order is (n). */
void comine_noise_rank(int *order, const comine_noise_table *t);

/* ---- trainer outputs ------------------------------------------------------------------- */
/* JSON lines with flat objects of numbers / null (strings and booleans are accepted and read
 * as NAN / 0-1).  Every line keeps its keys; missing and null values read as NAN. */
typedef struct comine_jsonl {
    int n_rows;
    int n_keys;
    char **keys;        /* (n_keys) union of keys, in first-seen order */
    double *values;     /* (n_rows, n_keys) */
} comine_jsonl;
comine_status comine_jsonl_load(comine_jsonl **out, const char *path);
void comine_jsonl_free(comine_jsonl *j);
/* Column index of a key, -1 when absent; comine_jsonl_get returns NAN when absent. */
int comine_jsonl_key(const comine_jsonl *j, const char *key);
double comine_jsonl_get(const comine_jsonl *j, int row, const char *key);

/* cos_epoch<E>.csv: COMINE_COS_HEADER. */
typedef struct comine_cos_table {
    int n;
    int *index, *label, *truth;   /* truth -1 when unknown */
    double *cos_a, *cos_b;        /* NAN when empty: no peer B, or the sample not seen that epoch */
    bool has_b;
} comine_cos_table;
comine_status comine_cos_load(comine_cos_table **out, const char *path);
void comine_cos_free(comine_cos_table *c);

#endif
