/* detect.c: the noise report ranked by embeddings (see comine/detect.h): label sums of the
 * trusted samples, each sample's cosine to its label's sum without itself, and the verdict at
 * the run's drop rate.  Sums and dot products in double. */
#include "comine/detect.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "comine/eval.h"

/* use[i]: sample i counts in its label's reference (trusted, or its label has no trusted sample);
 * count (K) gets the used samples per label. */
static void reference_members(uint8_t *use, int *count, const int *labels, const uint8_t *trusted, int n, int K)
{
    int *n_trusted = comine_calloc((size_t)K, sizeof(int));
    for (int i = 0; i < n; i++) n_trusted[labels[i]] += trusted[i] != 0;
    memset(count, 0, sizeof(int) * (size_t)K);
    for (int i = 0; i < n; i++) {
        use[i] = trusted[i] || n_trusted[labels[i]] == 0;
        count[labels[i]] += use[i];
    }
    free(n_trusted);
}

static void add_rows(double *sums, const float *emb, const int *labels, const uint8_t *use, int n, int dim)
{
    for (int i = 0; i < n; i++) {
        if (!use[i]) continue;
        double *s = sums + (size_t)labels[i] * dim;
        const float *e = emb + (size_t)i * dim;
        for (int c = 0; c < dim; c++) s[c] += e[c];
    }
}

/* Scores of rows emb (n, dim) whose labels, use flags are given; sums and counts of all labels. */
static void score_rows(float *score, uint8_t *scored, const float *emb, const int *labels, const uint8_t *use, int n,
                       const double *sums, const double *sq, const int *count, int dim)
{
    for (int i = 0; i < n; i++) {
        int y = labels[i];
        const double *s = sums + (size_t)y * dim;
        const float *e = emb + (size_t)i * dim;
        double dot = 0, ee = 0;
        for (int c = 0; c < dim; c++) {
            dot += e[c] * s[c];
            ee += (double)e[c] * e[c];
        }
        /* |S - e|^2 = |S|^2 - 2 <e, S> + |e|^2 */
        double num = use[i] ? dot - ee : dot, nn = use[i] ? sq[y] - 2 * dot + ee : sq[y];
        if (count[y] - use[i] < 1 || !(nn > 1e-12)) {
            score[i] = 0;
            scored[i] = 0;
            continue;
        }
        score[i] = (float)(num / sqrt(nn));
        scored[i] = isfinite(score[i]);
    }
}

static double *squares(const double *sums, int K, int dim)
{
    double *sq = comine_malloc(sizeof(double) * (size_t)(K > 0 ? K : 1));
    for (int k = 0; k < K; k++) {
        const double *s = sums + (size_t)k * dim;
        double t = 0;
        for (int c = 0; c < dim; c++) t += s[c] * s[c];
        sq[k] = t;
    }
    return sq;
}

void comine_detect_scores(float *score, uint8_t *scored, const float *emb, const int *labels, const uint8_t *trusted,
                          int n, int K, int dim)
{
    uint8_t *use = comine_malloc((size_t)(n > 0 ? n : 1));
    int *count = comine_malloc(sizeof(int) * (size_t)(K > 0 ? K : 1));
    double *sums = comine_calloc((size_t)K * dim + 1, sizeof(double));
    reference_members(use, count, labels, trusted, n, K);
    add_rows(sums, emb, labels, use, n, dim);
    double *sq = squares(sums, K, dim);
    score_rows(score, scored, emb, labels, use, n, sums, sq, count, dim);
    free(sq);
    free(sums);
    free(count);
    free(use);
}

/* Embeddings of samples [first, first + count) of ds into emb, through a view of the data set. */
static comine_status embed_range(float *emb, comine_model *const *models, int n_models, const comine_dataset *ds,
                                 int first, int count, int batch, int threads)
{
    comine_dataset view = *ds;
    view.samples = ds->samples + first;
    view.n = count;
    return comine_embed_dataset(emb, models, n_models, &view, batch, threads, NULL);
}

/* A progress line every 2 s: images embedded of the total over both passes. */
static void report(const char *label, double *last, double t0, int done, int total)
{
    double now = comine_now();
    if (!label || now - *last < 2.0 || done >= total) return;
    double rate = done / (now - t0);
    comine_progress("%s: embedded %d / %d images (%.0f/s, %.0f s left)", label, done, total, rate,
                    (total - done) / rate);
    *last = now;
}

comine_status comine_detect_scores_models(float *score, uint8_t *scored, comine_model *const *models, int n_models,
                                          const comine_dataset *ds, const uint8_t *trusted, int batch, int threads,
                                          size_t hold_bytes, const char *progress)
{
    if (n_models < 1) return comine_fail(COMINE_ERR_ARG, "detect: no model to embed with");
    if (ds->n < 1 || ds->num_classes < 1) return comine_fail(COMINE_ERR_ARG, "%s: no images", ds->source);
    if (batch < 1) batch = 1;
    int n = ds->n, K = ds->num_classes, dim = comine_model_arch(models[0])->emb_dim;
    double *sums = calloc((size_t)K * dim, sizeof(double));
    if (!sums) return comine_fail(COMINE_ERR_NOMEM, "detect: no memory for %d x %d label sums", K, dim);
    int *labels = comine_malloc(sizeof(int) * (size_t)n), *count = comine_malloc(sizeof(int) * (size_t)K);
    uint8_t *use = comine_malloc((size_t)n);
    for (int i = 0; i < n; i++) labels[i] = ds->samples[i].label;
    reference_members(use, count, labels, trusted, n, K);
    int chunk = 16 * batch < n ? 16 * batch : n;
    bool hold = (size_t)n * dim * sizeof(float) <= hold_bytes;
    float *held = hold ? malloc((size_t)n * dim * sizeof(float)) : NULL;
    hold = held != NULL;
    float *buf = hold ? NULL : comine_alloc_floats((size_t)chunk * dim);
    comine_status st = COMINE_OK;
    double *sq = NULL, t0 = comine_now(), last = t0;
    int passes = hold ? 1 : 2, done = 0;
    for (int first = 0; first < n && !st; first += chunk) {
        int m = n - first < chunk ? n - first : chunk;
        float *e = hold ? held + (size_t)first * dim : buf;
        if ((st = embed_range(e, models, n_models, ds, first, m, batch, threads))) break;
        report(progress, &last, t0, done += m, passes * n);
        add_rows(sums, e, labels + first, use + first, m, dim);
    }
    if (!st) sq = squares(sums, K, dim);
    for (int first = 0; first < n && !st; first += chunk) {
        int m = n - first < chunk ? n - first : chunk;
        float *e = hold ? held + (size_t)first * dim : buf;
        if (!hold && (st = embed_range(e, models, n_models, ds, first, m, batch, threads))) break;
        if (!hold) report(progress, &last, t0, done += m, passes * n);
        score_rows(score + first, scored + first, e, labels + first, use + first, m, sums, sq, count, dim);
    }
    free(sq);
    free(held);
    if (buf) comine_free_floats(buf);
    free(use);
    free(count);
    free(labels);
    free(sums);
    return st;
}

/* Scored samples in verdict order: score ascending, then index. */
typedef struct scored_sample {
    float score;
    int index;
} scored_sample;

static int by_score(const void *a, const void *b)
{
    const scored_sample *x = a, *y = b;
    if (x->score < y->score) return -1;
    if (x->score > y->score) return 1;
    return (x->index > y->index) - (x->index < y->index);
}

int comine_detect_flag(uint8_t *flag, const float *score, const uint8_t *scored, const uint8_t *vote_flag, int n,
                       double rate)
{
    scored_sample *s = comine_malloc(sizeof(scored_sample) * (size_t)(n > 0 ? n : 1));
    int m = 0, flagged = 0;
    for (int i = 0; i < n; i++) {
        flag[i] = !scored[i] && vote_flag && vote_flag[i];
        flagged += flag[i];
        if (scored[i]) s[m++] = (scored_sample){score[i], i};
    }
    if (!(rate > 0)) rate = 0;
    if (rate > 1) rate = 1;
    int k = (int)floor(rate * m + 0.5);
    qsort(s, (size_t)m, sizeof(scored_sample), by_score);
    for (int r = 0; r < k; r++) flag[s[r].index] = 1;
    free(s);
    return flagged + k;
}
