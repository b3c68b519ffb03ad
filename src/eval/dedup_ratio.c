/* dedup_ratio.c: the size-corrected label vectors of `comine dedup --score ratio` (see
 * comine/dedup.h): the trim of each label's faces least like its mean, the within-label
 * spreads shrunk towards the median, and the rows scaled so that an inner product is the ratio
 * score.  Memory: the label sums (K x D doubles), one float per sample, and the embeddings
 * when they fit in the caller's bound (one pass over the images); otherwise the embeddings are
 * computed chunk by chunk, in three passes (sums, cosines, the dropped samples again). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comine/dedup.h"
#include "comine/model.h"

typedef struct {
    float cosine;
    int index;
} ranked;

static int cmp_ranked(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->cosine != b->cosine) return a->cosine < b->cosine ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

int comine_dedup_trim_select(uint8_t *drop, const float *cosine, const int *label, const uint8_t *keep, int n, int K,
                             double frac)
{
    memset(drop, 0, (size_t)n);
    if (!(frac > 0) || n < 1 || K < 1) return 0;
    /* the kept samples grouped by label (counting sort: ascending index within a label) */
    int *start = comine_calloc((size_t)K + 1, sizeof(int));
    for (int i = 0; i < n; i++)
        if (!keep || keep[i]) start[label[i] + 1]++;
    for (int c = 0; c < K; c++) start[c + 1] += start[c];
    ranked *r = comine_malloc(sizeof(ranked) * (size_t)(start[K] ? start[K] : 1));
    int *fill = comine_malloc(sizeof(int) * (size_t)K);
    memcpy(fill, start, sizeof(int) * (size_t)K);
    for (int i = 0; i < n; i++)
        if (!keep || keep[i]) r[fill[label[i]]++] = (ranked){cosine[i], i};
    int total = 0;
    for (int c = 0; c < K; c++) {
        int m = start[c + 1] - start[c];
        int k = m >= 3 ? (int)floor(frac * m) : 0;
        if (k <= 0) continue;
        qsort(r + start[c], (size_t)m, sizeof(ranked), cmp_ranked);
        for (int t = 0; t < k; t++) drop[r[start[c] + t].index] = 1;
        total += k;
    }
    free(fill);
    free(r);
    free(start);
    return total;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of the within-label cosines of the labels of at least `min_count` samples; 0 when
 * there is none. */
static int median_within(double *out, const double *w, const int *count, int K, int min_count)
{
    double *v = comine_malloc(sizeof(double) * (size_t)(K ? K : 1));
    int m = 0;
    for (int c = 0; c < K; c++)
        if (count[c] >= min_count) v[m++] = w[c];
    if (m > 0) {
        qsort(v, (size_t)m, sizeof(double), cmp_double);
        *out = m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
    }
    free(v);
    return m;
}

void comine_dedup_ratio_vectors(float *vec, const double *sums, const int *count, int K, int d, double shrink,
                                float len, double *within)
{
    double *w = comine_malloc(sizeof(double) * (size_t)(K ? K : 1));
    for (int c = 0; c < K; c++) {
        const double *s = sums + (size_t)c * d;
        double ss = 0, n = count[c];
        for (int k = 0; k < d; k++) ss += s[k] * s[k];
        /* sum over ordered pairs i != j of cos(e_i, e_j) = |sum|^2 - n (unit embeddings) */
        w[c] = n >= 2 ? (ss - n) / (n * (n - 1)) : 0.0;
    }
    double med = 1.0;
    if (!median_within(&med, w, count, K, 6) && !median_within(&med, w, count, K, 2)) med = 1.0;
    for (int c = 0; c < K; c++) {
        double n = count[c], pairs = n >= 2 ? n * (n - 1) / 2 : 0.0;
        double ws = pairs + shrink > 0 ? (pairs * w[c] + shrink * med) / (pairs + shrink) : med;
        if (!(ws >= 1e-3)) ws = 1e-3;
        if (within) within[c] = ws;
        const double *s = sums + (size_t)c * d;
        float *v = vec + (size_t)c * d;
        double scale = n > 0 ? len / (n * sqrt(ws)) : 0.0;
        for (int k = 0; k < d; k++) v[k] = (float)(s[k] * scale);
    }
    free(w);
}

typedef struct {
    const double *sums; /* label sums */
    const double *norm; /* their lengths */
    const comine_dataset *ds;
    float *cosine;      /* per sample */
} cos_ctx;

static void cosine_to_mean(void *ctx, const int *idx, const float *emb, int count, int dim)
{
    cos_ctx *c = ctx;
    for (int i = 0; i < count; i++) {
        int label = c->ds->samples[idx[i]].label;
        const double *s = c->sums + (size_t)label * dim;
        const float *e = emb + (size_t)i * dim;
        double dot = 0;
        for (int k = 0; k < dim; k++) dot += s[k] * e[k];
        c->cosine[idx[i]] = c->norm[label] > 0 ? (float)(dot / c->norm[label]) : 0.f;
    }
}

/* The first pass: label sums, and each embedding kept in cache (row j for sample idx[j]) when
 * there is one. */
typedef struct {
    double *sums;
    const comine_dataset *ds;
    float *cache;
    const int *base;
} first_ctx;

static void sum_and_keep(void *ctx, const int *idx, const float *emb, int count, int dim)
{
    first_ctx *c = ctx;
    for (int i = 0; i < count; i++) {
        double *s = c->sums + (size_t)c->ds->samples[idx[i]].label * dim;
        const float *e = emb + (size_t)i * dim;
        for (int k = 0; k < dim; k++) s[k] += e[k];
    }
    if (c->cache) memcpy(c->cache + (size_t)(idx - c->base) * dim, emb, sizeof(float) * (size_t)count * dim);
}

comine_status comine_dedup_label_ratio(float *vec, int *used, int *dropped, bool *one_pass,
                                       comine_model *const *models, int n_models, const comine_dataset *ds,
                                       const uint8_t *use, double trim, double shrink, float len, size_t cache_bytes,
                                       int batch, int threads)
{
    if (n_models < 1) return comine_fail(COMINE_ERR_ARG, "dedup: no model to embed with");
    if (ds->n < 1 || ds->num_classes < 1) return comine_fail(COMINE_ERR_ARG, "%s: no images", ds->source);
    int K = ds->num_classes, n = ds->n, dim = comine_model_arch(models[0])->emb_dim;
    double *sums = calloc((size_t)K * dim, sizeof(double));
    if (!sums) return comine_fail(COMINE_ERR_NOMEM, "dedup: no memory for %d x %d label sums", K, dim);
    int *count = comine_calloc((size_t)K, sizeof(int));
    uint8_t *keep = comine_malloc((size_t)n);
    /* the samples used: use[], or all of a label that has none */
    for (int i = 0; i < n; i++)
        if (!use || use[i]) count[ds->samples[i].label]++;
    for (int i = 0; i < n; i++) keep[i] = !use || use[i] || count[ds->samples[i].label] == 0;
    memset(count, 0, sizeof(int) * (size_t)K);
    int *idx = comine_malloc(sizeof(int) * (size_t)n);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (keep[i]) {
            idx[m++] = i;
            count[ds->samples[i].label]++;
        }
    /* the embeddings in memory when they fit: the trim then needs no second look at the images */
    size_t need = sizeof(float) * (size_t)m * dim;
    float *cache = trim > 0 && need <= cache_bytes ? malloc(need ? need : 1) : NULL;
    first_ctx fc = {sums, ds, cache, idx};
    comine_status st = comine_dedup_embed_visit(models, n_models, ds, idx, m, batch, threads, sum_and_keep, &fc);
    int n_drop = 0;
    if (st == COMINE_OK && trim > 0) {
        float *cosine = comine_alloc_floats((size_t)n);
        double *norm = comine_malloc(sizeof(double) * (size_t)K);
        for (int c = 0; c < K; c++) {
            double ss = 0;
            for (int k = 0; k < dim; k++) ss += sums[(size_t)c * dim + k] * sums[(size_t)c * dim + k];
            norm[c] = sqrt(ss);
        }
        cos_ctx cc = {sums, norm, ds, cosine};
        if (cache)
            cosine_to_mean(&cc, idx, cache, m, dim);
        else
            st = comine_dedup_embed_visit(models, n_models, ds, idx, m, batch, threads, cosine_to_mean, &cc);
        if (st == COMINE_OK) {
            int *label = comine_malloc(sizeof(int) * (size_t)n);
            uint8_t *drop = comine_malloc((size_t)n);
            for (int i = 0; i < n; i++) label[i] = ds->samples[i].label;
            n_drop = comine_dedup_trim_select(drop, cosine, label, keep, n, K, trim);
            int md = 0;
            for (int j = 0; j < m; j++) {
                int i = idx[j];
                if (!drop[i]) continue;
                count[label[i]]--;
                if (cache) { /* subtract the kept embedding */
                    double *s = sums + (size_t)label[i] * dim;
                    const float *e = cache + (size_t)j * dim;
                    for (int k = 0; k < dim; k++) s[k] -= e[k];
                } else {
                    idx[md++] = i; /* in place: md <= j */
                }
            }
            if (!cache) st = comine_dedup_label_sums(sums, models, n_models, ds, idx, md, -1.0, batch, threads);
            free(drop);
            free(label);
        }
        free(norm);
        comine_free_floats(cosine);
    }
    if (st == COMINE_OK) {
        comine_dedup_ratio_vectors(vec, sums, count, K, dim, shrink, len, NULL);
        if (used) memcpy(used, count, sizeof(int) * (size_t)K);
        if (dropped) *dropped = n_drop;
        if (one_pass) *one_pass = cache != NULL || !(trim > 0);
    }
    free(cache);
    free(idx);
    free(keep);
    free(count);
    free(sums);
    return st;
}
