/* dedup.c: duplicate identities (see comine/dedup.h): label vectors (blocks of normalised
 * rows; mean embeddings of trusted samples, computed chunk by chunk), the blocked top-k
 * search over matrix-product tiles (the CPU backend's sgemm), candidate pairs, the robust
 * threshold, the merge map and precision / recall against known pairs.  The search never holds more than two tiles of
 * products; each row's list is updated by one thread at a time, in ascending column order, so
 * ties go to the lower index whatever the thread count. */
#include "comine/dedup.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comine/backend.h"
#include "comine/eval.h"

/* ---- label vectors ------------------------------------------------------------------------ */

void comine_dedup_put_block(float *x, int n, int stride, int offset, const float *src, int d, float len)
{
    COMINE_ASSERT(offset >= 0 && offset + d <= stride);
    for (int i = 0; i < n; i++) {
        const float *s = src + (size_t)i * d;
        float *dst = x + (size_t)i * stride + offset;
        double ss = 0;
        for (int c = 0; c < d; c++) ss += (double)s[c] * s[c];
        float scale = ss > 0 ? (float)(len / sqrt(ss)) : 0.f;
        for (int c = 0; c < d; c++) dst[c] = s[c] * scale;
    }
}

void comine_dedup_center_rows(float *src, int n, int d)
{
    double *mean = comine_calloc((size_t)d, sizeof(double));
    int counted = 0;
    for (int i = 0; i < n; i++) {
        float *r = src + (size_t)i * d;
        double ss = 0;
        for (int c = 0; c < d; c++) ss += (double)r[c] * r[c];
        if (!(ss > 0)) continue;
        double inv = 1.0 / sqrt(ss);
        for (int c = 0; c < d; c++) {
            r[c] = (float)(r[c] * inv);
            mean[c] += r[c];
        }
        counted++;
    }
    for (int c = 0; c < d && counted; c++) mean[c] /= counted;
    for (int i = 0; i < n; i++) {
        float *r = src + (size_t)i * d;
        bool zero = true;
        for (int c = 0; c < d && zero; c++) zero = r[c] == 0;
        if (zero) continue;
        for (int c = 0; c < d; c++) r[c] = (float)(r[c] - mean[c]);
    }
    free(mean);
}

/* Embed samples idx[0 .. m), one chunk at a time, and hand each chunk to visit(ctx, its sample
 * indices, its embeddings, its size, dim): a view of the data set holding copies of the chunk's
 * sample records (the readers use only a sample's record and the data set's open source). */
comine_status comine_dedup_embed_visit(comine_model *const *models, int n_models, const comine_dataset *ds,
                                       const int *idx, int m, int batch, int threads, comine_dedup_visit_fn visit,
                                       void *ctx)
{
    int dim = comine_model_arch(models[0])->emb_dim;
    int chunk = 16 * batch;
    if (chunk > m) chunk = m;
    if (chunk < 1) return COMINE_OK;
    comine_sample *part = comine_malloc(sizeof(comine_sample) * (size_t)chunk);
    float *emb = comine_alloc_floats((size_t)chunk * dim);
    comine_dataset view = *ds;
    view.samples = part;
    comine_status st = COMINE_OK;
    for (int first = 0; first < m && st == COMINE_OK; first += chunk) {
        int count = m - first < chunk ? m - first : chunk;
        for (int i = 0; i < count; i++) part[i] = ds->samples[idx[first + i]];
        view.n = count;
        st = comine_embed_dataset(emb, models, n_models, &view, batch, threads, NULL);
        if (st == COMINE_OK) visit(ctx, idx + first, emb, count, dim);
    }
    comine_free_floats(emb);
    free(part);
    return st;
}

typedef struct {
    double *sums;
    const comine_dataset *ds;
    double sign;
} sum_ctx;

static void add_to_sums(void *ctx, const int *idx, const float *emb, int count, int dim)
{
    sum_ctx *c = ctx;
    for (int i = 0; i < count; i++) {
        double *s = c->sums + (size_t)c->ds->samples[idx[i]].label * dim;
        const float *e = emb + (size_t)i * dim;
        for (int k = 0; k < dim; k++) s[k] += c->sign * e[k];
    }
}

comine_status comine_dedup_label_sums(double *sums, comine_model *const *models, int n_models,
                                      const comine_dataset *ds, const int *idx, int m, double sign, int batch,
                                      int threads)
{
    sum_ctx c = {sums, ds, sign};
    return comine_dedup_embed_visit(models, n_models, ds, idx, m, batch, threads, add_to_sums, &c);
}

comine_status comine_dedup_label_means(float *means, int *used, uint8_t *fallback, comine_model *const *models,
                                       int n_models, const comine_dataset *ds, const uint8_t *use, int batch,
                                       int threads)
{
    if (n_models < 1) return comine_fail(COMINE_ERR_ARG, "dedup: no model to embed with");
    if (ds->n < 1 || ds->num_classes < 1) return comine_fail(COMINE_ERR_ARG, "%s: no images", ds->source);
    int K = ds->num_classes, dim = comine_model_arch(models[0])->emb_dim;
    double *sums = calloc((size_t)K * dim, sizeof(double));
    if (!sums) return comine_fail(COMINE_ERR_NOMEM, "dedup: no memory for %d x %d label sums", K, dim);
    int *count = comine_calloc((size_t)K, sizeof(int));
    int *idx = comine_malloc(sizeof(int) * (size_t)ds->n);
    int m = 0;
    for (int i = 0; i < ds->n; i++)
        if (!use || use[i]) {
            idx[m++] = i;
            count[ds->samples[i].label]++;
        }
    comine_status st = comine_dedup_label_sums(sums, models, n_models, ds, idx, m, 1.0, batch, threads);
    /* labels without a used sample: all their samples */
    m = 0;
    if (st == COMINE_OK)
        for (int i = 0; i < ds->n; i++)
            if (count[ds->samples[i].label] == 0 && use && !use[i]) idx[m++] = i;
    if (st == COMINE_OK && m > 0) {
        for (int t = 0; t < m; t++) count[ds->samples[idx[t]].label]--; /* negative: fallback counts */
        st = comine_dedup_label_sums(sums, models, n_models, ds, idx, m, 1.0, batch, threads);
    }
    if (st == COMINE_OK) {
        for (int c = 0; c < K; c++) {
            const double *s = sums + (size_t)c * dim;
            double ss = 0;
            for (int k = 0; k < dim; k++) ss += s[k] * s[k];
            double inv = ss > 0 ? 1.0 / sqrt(ss) : 0.0;
            for (int k = 0; k < dim; k++) means[(size_t)c * dim + k] = (float)(s[k] * inv);
            if (used) used[c] = count[c] < 0 ? -count[c] : count[c];
            if (fallback) fallback[c] = count[c] < 0;
        }
    }
    free(idx);
    free(count);
    free(sums);
    return st;
}

/* ---- search ---------------------------------------------------------------------------------- */

/* Insert (j, v) into a list sorted descending (sc[k-1] the smallest); equal scores keep the
 * earlier (lower) index first. */
static inline void topk_insert(int *nb, float *sc, int k, int j, float v)
{
    if (!(v > sc[k - 1])) return;
    int p = k - 1;
    while (p > 0 && sc[p - 1] < v) {
        sc[p] = sc[p - 1];
        nb[p] = nb[p - 1];
        p--;
    }
    sc[p] = v;
    nb[p] = j;
}

/* dst (cols, rows) = src (rows, cols) transposed, in 32 x 32 blocks. */
static void transpose(float *dst, const float *src, int rows, int cols)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int j0 = 0; j0 < cols; j0 += 32)
        for (int i0 = 0; i0 < rows; i0 += 32) {
            int i1 = i0 + 32 < rows ? i0 + 32 : rows, j1 = j0 + 32 < cols ? j0 + 32 : cols;
            for (int j = j0; j < j1; j++)
                for (int i = i0; i < i1; i++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
        }
}

/* Rows [r0, r0 + nr) of the lists take the candidates of a tile (nr, nc) whose columns are
 * labels c0 .. c0 + nc - 1 (a label never takes itself). */
static void scan_tile(int *nbr, float *sim, int k, const float *tile, int r0, int nr, int c0, int nc)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int i = 0; i < nr; i++) {
        int row = r0 + i;
        int *nb = nbr + (size_t)row * k;
        float *sc = sim + (size_t)row * k;
        const float *t = tile + (size_t)i * nc;
        float floor_v = sc[k - 1];
        for (int j = 0; j < nc; j++) {
            float v = t[j];
            if (v > floor_v && c0 + j != row) {
                topk_insert(nb, sc, k, c0 + j, v);
                floor_v = sc[k - 1];
            }
        }
    }
}

comine_status comine_dedup_topk(int *nbr, float *sim, const float *x, int n, int d, int k, int block)
{
    if (n < 1) return comine_fail(COMINE_ERR_ARG, "dedup: no labels to search");
    if (d < 1) return comine_fail(COMINE_ERR_ARG, "dedup: label vectors of size %d", d);
    if (k < 1) return comine_fail(COMINE_ERR_ARG, "dedup: k = %d neighbours (need >= 1)", k);
    if (block <= 0) block = 2048;
    if (block > n) block = n;
    for (size_t i = 0; i < (size_t)n * k; i++) {
        nbr[i] = -1;
        sim[i] = -INFINITY;
    }
    float *tile = malloc(sizeof(float) * (size_t)block * block);
    float *tile_t = malloc(sizeof(float) * (size_t)block * block);
    if (!tile || !tile_t) {
        free(tile);
        free(tile_t);
        return comine_fail(COMINE_ERR_NOMEM, "dedup: no memory for two %d x %d tiles", block, block);
    }
    for (int i0 = 0; i0 < n; i0 += block) {
        int bi = n - i0 < block ? n - i0 : block;
        for (int j0 = i0; j0 < n; j0 += block) {
            int bj = n - j0 < block ? n - j0 : block;
            /* tile (bi, bj) = x[i0 .. i0 + bi) x[j0 .. j0 + bj)^T */
            comine_backend_gemm(comine_backend_cpu(), 0, 1, bi, bj, d, 1.0f, x + (size_t)i0 * d, d, x + (size_t)j0 * d, d,
                                0.0f, tile, bj);
            scan_tile(nbr, sim, k, tile, i0, bi, j0, bj);
            if (j0 != i0) {
                transpose(tile_t, tile, bi, bj);
                scan_tile(nbr, sim, k, tile_t, j0, bj, i0, bi);
            }
        }
    }
    free(tile);
    free(tile_t);
    return COMINE_OK;
}

/* ---- pairs ------------------------------------------------------------------------------------ */

static int cmp_pair(const void *pa, const void *pb)
{
    const comine_dedup_pair *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->a != b->a) return a->a < b->a ? -1 : 1;
    return (a->b > b->b) - (a->b < b->b);
}

static bool in_list(const int *nbr, int k, int row, int j)
{
    for (int t = 0; t < k; t++)
        if (nbr[(size_t)row * k + t] == j) return true;
    return false;
}

int comine_dedup_candidates(comine_dedup_pair **pairs, const int *nbr, const float *sim, int n, int k)
{
    size_t cap = (size_t)n * k, m = 0;
    comine_dedup_pair *out = comine_malloc(sizeof(comine_dedup_pair) * (cap ? cap : 1));
    for (int i = 0; i < n; i++)
        for (int t = 0; t < k; t++) {
            int j = nbr[(size_t)i * k + t];
            if (j < 0) continue;
            /* {i, j} once: from the smaller label's list, or from the larger's when the smaller
             * does not list it */
            if (j < i && in_list(nbr, k, j, i)) continue;
            out[m].a = i < j ? i : j;
            out[m].b = i < j ? j : i;
            out[m].score = sim[(size_t)i * k + t];
            m++;
        }
    qsort(out, m, sizeof *out, cmp_pair);
    *pairs = out;
    return (int)m;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_sorted(const double *v, int n)
{
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double comine_dedup_threshold(const float *sim, int n, int k, double k_sigma, comine_dedup_rule *rule)
{
    double *v = comine_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    int m = 0;
    for (int i = 0; i < n; i++) {
        float s = sim[(size_t)i * k];
        if (isfinite(s)) v[m++] = s;
    }
    double med = NAN, sigma = NAN, threshold = INFINITY;
    if (m > 0) {
        qsort(v, (size_t)m, sizeof(double), cmp_double);
        med = median_sorted(v, m);
        for (int i = 0; i < m; i++) v[i] = fabs(v[i] - med);
        qsort(v, (size_t)m, sizeof(double), cmp_double);
        sigma = 1.4826 * median_sorted(v, m);
        threshold = med + k_sigma * sigma;
    }
    free(v);
    if (rule) {
        rule->n = m;
        rule->median = med;
        rule->sigma = sigma;
        rule->k_sigma = k_sigma;
        rule->threshold = threshold;
    }
    return threshold;
}

int comine_dedup_select(uint8_t *is_dup, const comine_dedup_pair *cand, int n_cand, const int *nbr, int k,
                        double threshold, bool mutual)
{
    int m = 0;
    for (int p = 0; p < n_cand; p++) {
        int a = cand[p].a, b = cand[p].b;
        bool yes = cand[p].score > threshold && (!mutual || (nbr[(size_t)a * k] == b && nbr[(size_t)b * k] == a));
        is_dup[p] = yes;
        m += yes;
    }
    return m;
}

comine_status comine_dedup_find(comine_dedup_pair **pairs, int *n_pairs, const float *x, int n, int d, int top_k,
                                double k_sigma, double threshold, bool mutual, int block, comine_dedup_rule *rule)
{
    *pairs = NULL;
    *n_pairs = 0;
    if (top_k < 1) return comine_fail(COMINE_ERR_ARG, "dedup: k = %d neighbours (need >= 1)", top_k);
    if (n < 1) return comine_fail(COMINE_ERR_ARG, "dedup: no labels to search");
    int *nbr = malloc(sizeof(int) * (size_t)n * top_k);
    float *sim = malloc(sizeof(float) * (size_t)n * top_k);
    if (!nbr || !sim) {
        free(nbr);
        free(sim);
        return comine_fail(COMINE_ERR_NOMEM, "dedup: no memory for %d x %d neighbour lists", n, top_k);
    }
    comine_status st = comine_dedup_topk(nbr, sim, x, n, d, top_k, block);
    if (st == COMINE_OK) {
        comine_dedup_pair *cand;
        int n_cand = comine_dedup_candidates(&cand, nbr, sim, n, top_k);
        double thr = comine_dedup_threshold(sim, n, top_k, k_sigma, rule);
        if (isfinite(threshold)) thr = threshold;
        uint8_t *is_dup = comine_malloc((size_t)(n_cand ? n_cand : 1));
        int m = comine_dedup_select(is_dup, cand, n_cand, nbr, top_k, thr, mutual);
        comine_dedup_pair *out = comine_malloc(sizeof(comine_dedup_pair) * (size_t)(m ? m : 1));
        for (int p = 0, q = 0; p < n_cand; p++)
            if (is_dup[p]) out[q++] = cand[p];
        free(is_dup);
        free(cand);
        *pairs = out;
        *n_pairs = m;
    }
    free(nbr);
    free(sim);
    return st;
}

static int find_root(int *parent, int x)
{
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

int comine_dedup_merge_map(int *new_label, int n, const comine_dedup_pair *pairs, int n_pairs)
{
    int *parent = comine_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    for (int i = 0; i < n; i++) parent[i] = i;
    for (int p = 0; p < n_pairs; p++) {
        COMINE_ASSERT(pairs[p].a >= 0 && pairs[p].a < n && pairs[p].b >= 0 && pairs[p].b < n);
        int ra = find_root(parent, pairs[p].a), rb = find_root(parent, pairs[p].b);
        if (ra == rb) continue;
        if (ra < rb) parent[rb] = ra; /* the root is the group's smallest label */
        else parent[ra] = rb;
    }
    int groups = 0;
    for (int i = 0; i < n; i++) {
        int r = find_root(parent, i);
        new_label[i] = r == i ? groups++ : new_label[r];
    }
    free(parent);
    return groups;
}

static int cmp_int2(const void *pa, const void *pb)
{
    const int *a = pa, *b = pb;
    if (a[0] != b[0]) return a[0] < b[0] ? -1 : 1;
    return (a[1] > b[1]) - (a[1] < b[1]);
}

void comine_dedup_evaluate(comine_dedup_eval *e, const comine_dedup_pair *found, int n_found, const int *true_pairs,
                           int n_true)
{
    int *t = comine_malloc(sizeof(int) * 2 * (size_t)(n_true > 0 ? n_true : 1));
    int m = 0;
    for (int i = 0; i < n_true; i++) {
        int a = true_pairs[2 * i], b = true_pairs[2 * i + 1];
        t[2 * m] = a < b ? a : b;
        t[2 * m + 1] = a < b ? b : a;
        m++;
    }
    qsort(t, (size_t)m, 2 * sizeof(int), cmp_int2);
    int u = 0; /* distinct true pairs */
    for (int i = 0; i < m; i++)
        if (u == 0 || t[2 * i] != t[2 * (u - 1)] || t[2 * i + 1] != t[2 * (u - 1) + 1]) {
            t[2 * u] = t[2 * i];
            t[2 * u + 1] = t[2 * i + 1];
            u++;
        }
    int tp = 0;
    for (int p = 0; p < n_found; p++) {
        int lo = found[p].a < found[p].b ? found[p].a : found[p].b;
        int hi = found[p].a < found[p].b ? found[p].b : found[p].a;
        int key[2] = {lo, hi};
        if (u && bsearch(key, t, (size_t)u, 2 * sizeof(int), cmp_int2)) tp++;
    }
    free(t);
    e->found = n_found;
    e->truth = u;
    e->tp = tp;
    e->precision = n_found ? (double)tp / n_found : 0.0;
    e->recall = u ? (double)tp / u : 0.0;
    e->f1 = e->precision + e->recall > 0 ? 2 * e->precision * e->recall / (e->precision + e->recall) : 0.0;
}
