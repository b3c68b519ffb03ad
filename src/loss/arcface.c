/* arcface.c: the ArcFace head of loss.h with per-sample losses and the re-weighted forms.
 *
 * cos th_j = <w_j/|w_j|, f/|f|> (F.normalize's eps 1e-12); the target logit is s psi(th_y)
 * with margin m (COMINE_FORM_ARCFACE and COMINE_FORM_MV) or m + dm (COMINE_FORM_MARGIN) and
 * one of two fallbacks (easy margin, insightface's); COMINE_FORM_MV multiplies the negatives
 * that beat the target (cos th_j > psi) by h_j = e^{s(t-1)(cos th_j + 1)}, the selection mask
 * being a constant for the gradient (as torch.where).  loss_i = logsumexp(z_i) - z_iy.
 *
 * The two big products (the cosines, and the two backward ones) go through
 * comine_backend_gemm; the row-wise parts run with OpenMP over samples on memory the host
 * can address (the CPU backend), in double precision per row.  Backward only multiplies
 * the rows of samples with nonzero weight, and folds both normalisations in without an
 * extra (K, D) buffer: with g_ij = d(sum_i weight_i loss_i) / d cos_ij and
 * g'_ij = g_ij / |w_j| (what dcos holds),
 *   d/d f_i = (sum_j g'_ij w_j - a_i f^_i) / |f_i|,   a_i = sum_j g_ij cos_ij
 *   d/d w_j =  sum_i g'_ij f^_i - c'_j w^_j,          c'_j = sum_i g'_ij cos_ij
 * (F.normalize's eps: below it a row is only scaled, without the projection). */
#include "comine/loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif

#define NORM_EPS 1e-12 /* F.normalize's eps */

void comine_arcface_cfg_default(comine_arcface_cfg *cfg)
{
    cfg->s = 64.0f;
    cfg->m = 0.5f;
    cfg->fallback = COMINE_FALLBACK_EASY;
    cfg->dm = 0.2f;
    cfg->t = 1.2f;
}

void comine_arcface_init(comine_arcface *h, const comine_backend *be, int D, int K, int max_N)
{
    COMINE_ASSERT(be != NULL && D > 0 && K > 0 && max_N > 0);
    memset(h, 0, sizeof *h);
    h->be = be;
    h->D = D;
    h->K = K;
    h->max_N = max_N;
    size_t nd = (size_t)max_N * D, kd = (size_t)K * D, nk = (size_t)max_N * K;
    h->emb_norm = comine_alloc_floats((size_t)max_N);
    h->emb_hat = comine_backend_alloc(be, nd);
    h->w_norm = comine_alloc_floats((size_t)K);
    h->w_inv_norm = comine_alloc_floats((size_t)K);
    h->w_hat = comine_backend_alloc(be, kd);
    h->cos = comine_backend_alloc(be, nk);
    h->dcos = comine_backend_alloc(be, nk);
    h->cos_target = comine_alloc_floats((size_t)max_N);
    h->p_target = comine_alloc_floats((size_t)max_N);
    h->correct = comine_calloc((size_t)max_N, 1);
    h->active = comine_calloc((size_t)max_N, sizeof(int));
    h->emb_hat_active = comine_backend_alloc(be, nd);
    h->demb_hat = comine_backend_alloc(be, nd);
    h->col_coef = comine_alloc_floats((size_t)K);
    h->row_coef = comine_alloc_floats((size_t)max_N);
}

void comine_arcface_free(comine_arcface *h)
{
    if (!h->be) return;
    comine_free_floats(h->emb_norm);
    comine_backend_free(h->be, h->emb_hat);
    comine_free_floats(h->w_norm);
    comine_free_floats(h->w_inv_norm);
    comine_backend_free(h->be, h->w_hat);
    comine_backend_free(h->be, h->cos);
    comine_backend_free(h->be, h->dcos);
    comine_free_floats(h->cos_target);
    comine_free_floats(h->p_target);
    free(h->correct);
    free(h->active);
    comine_backend_free(h->be, h->emb_hat_active);
    comine_backend_free(h->be, h->demb_hat);
    comine_free_floats(h->col_coef);
    comine_free_floats(h->row_coef);
    memset(h, 0, sizeof *h);
}

/* out (rows, D) = in / max(|in|, eps) row-wise; norm (rows) = |in|; inv_norm (rows, or NULL)
 * = 1 / max(|in|, eps). */
static void normalize_rows(float *out, float *norm, float *inv_norm, const float *in, int rows, int D)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int r = 0; r < rows; r++) {
        const float *x = in + (size_t)r * D;
        float *o = out + (size_t)r * D;
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)x[d] * x[d];
        double n = sqrt(ss);
        float inv = (float)(1.0 / (n > NORM_EPS ? n : NORM_EPS));
        for (int d = 0; d < D; d++) o[d] = x[d] * inv;
        norm[r] = (float)n;
        if (inv_norm) inv_norm[r] = inv;
    }
}

void comine_arcface_forward(comine_arcface *h, const float *emb, const float *weight, int N)
{
    COMINE_ASSERT(N >= 1 && N <= h->max_N);
    normalize_rows(h->emb_hat, h->emb_norm, NULL, emb, N, h->D);
    normalize_rows(h->w_hat, h->w_norm, h->w_inv_norm, weight, h->K, h->D);
    /* cos (N, K) = emb_hat (N, D) @ w_hat (K, D)^T */
    comine_backend_gemm(h->be, 0, 1, N, h->K, h->D, 1.0f, h->emb_hat, h->D, h->w_hat, h->D, 0.0f, h->cos, h->K);
    h->N = N;
}

/* The target's psi(th_y) for cos th_y = c and margin m, and d psi / d c.  The sine is
 * sqrt(clamp(1 - c^2, 0, 1)); where the clamp is active its derivative is 0. */
static double target_psi(double c, double m, comine_fallback fallback, double *dpsi)
{
    double sine2 = 1.0 - c * c;
    bool clamped = !(sine2 > 0.0);
    if (clamped) sine2 = 0.0;
    if (sine2 > 1.0) sine2 = 1.0;
    double sine = sqrt(sine2);
    bool use_margin = fallback == COMINE_FALLBACK_EASY ? c > 0.0 : c > cos(M_PI - m);
    if (!use_margin) {
        *dpsi = 1.0;
        return fallback == COMINE_FALLBACK_EASY ? c : c - m * sin(m);
    }
    *dpsi = cos(m) + (clamped ? 0.0 : sin(m) * c / sine);
    return c * cos(m) - sine * sin(m);
}

/* What one sample's softmax needs: target logit, its derivative, mv's parameters. */
typedef struct row_logits {
    double s, psi, dpsi, mv_extra; /* mv_extra = s (t - 1) for COMINE_FORM_MV, else 0 */
    bool mv;
} row_logits;

static void row_setup(row_logits *r, double c_target, uint8_t form, const comine_arcface_cfg *cfg)
{
    COMINE_ASSERT(form <= COMINE_FORM_MV);
    double m = form == COMINE_FORM_MARGIN ? (double)cfg->m + cfg->dm : (double)cfg->m;
    r->s = cfg->s;
    r->psi = target_psi(c_target, m, cfg->fallback, &r->dpsi);
    r->mv = form == COMINE_FORM_MV;
    r->mv_extra = r->mv ? r->s * ((double)cfg->t - 1.0) : 0.0;
}

/* Logit of a negative class of cosine c, and its derivative when asked. */
static inline double neg_logit(const row_logits *r, double c, double *dz)
{
    if (r->mv && c > r->psi) {
        if (dz) *dz = r->s + r->mv_extra;
        return r->s * c + r->mv_extra * (c + 1.0);
    }
    if (dz) *dz = r->s;
    return r->s * c;
}

/* log sum_j e^{z_j} of the row (target logit s psi at y). */
static double row_lse(const row_logits *r, const float *cos_row, int K, int y)
{
    double zy = r->s * r->psi, zmax = zy;
    for (int j = 0; j < K; j++) {
        if (j == y) continue;
        double z = neg_logit(r, cos_row[j], NULL);
        if (z > zmax) zmax = z;
    }
    double sum = 0;
    for (int j = 0; j < K; j++) sum += exp((j == y ? zy : neg_logit(r, cos_row[j], NULL)) - zmax);
    return zmax + log(sum);
}

void comine_arcface_loss(comine_arcface *h, float *loss, const int *labels, const uint8_t *form, int N,
                         const comine_arcface_cfg *cfg)
{
    COMINE_ASSERT(N >= 1 && N <= h->N);
    const int K = h->K;
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int i = 0; i < N; i++) {
        int y = labels[i];
        COMINE_ASSERT(y >= 0 && y < K);
        const float *cr = h->cos + (size_t)i * K;
        row_logits r;
        row_setup(&r, cr[y], form ? form[i] : COMINE_FORM_ARCFACE, cfg);
        double l = row_lse(&r, cr, K, y) - r.s * r.psi;
        if (l < 0) l = 0; /* rounding when p_y = 1 */
        loss[i] = (float)l;
        h->cos_target[i] = cr[y];
        h->p_target[i] = (float)exp(-l);
        int best = 0;
        for (int j = 1; j < K; j++)
            if (cr[j] > cr[best]) best = j;
        h->correct[i] = best == y;
    }
}

void comine_arcface_backward(comine_arcface *h, float *demb, float *dweight, const float *emb,
                             const float *weight, const int *labels, const uint8_t *form,
                             const float *sample_weight, int N, const comine_arcface_cfg *cfg)
{
    COMINE_ASSERT(N >= 1 && N <= h->N);
    COMINE_ASSERT(demb != NULL && dweight != NULL && weight != NULL && labels != NULL && sample_weight != NULL);
    const int K = h->K, D = h->D;
    int na = 0;
    for (int i = 0; i < N; i++)
        if (sample_weight[i] != 0.0f) h->active[na++] = i;
    if (na == 0) return;

    /* dcos row p (compact) = g'_j = g_j / max(|w_j|, eps) of sample active[p], one exp per
     * class; row_coef[p] = a_{active[p]} = sum_j g_j cos_j */
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int p = 0; p < na; p++) {
        int i = h->active[p];
        int y = labels[i];
        COMINE_ASSERT(y >= 0 && y < K);
        const float *cr = h->cos + (size_t)i * K;
        float *g = h->dcos + (size_t)p * K;
        row_logits r;
        row_setup(&r, cr[y], form ? form[i] : COMINE_FORM_ARCFACE, cfg);
        double zy = r.s * r.psi, zmax = zy;
        for (int j = 0; j < K; j++) {
            if (j == y) continue;
            double z = neg_logit(&r, cr[j], NULL);
            if (z > zmax) zmax = z;
        }
        double sum = 0;
        for (int j = 0; j < K; j++) {
            double e = exp((j == y ? zy : neg_logit(&r, cr[j], NULL)) - zmax);
            g[j] = (float)e;
            sum += e;
        }
        double w_over_sum = sample_weight[i] / sum, a = 0;
        for (int j = 0; j < K; j++) {
            double gj;
            if (j == y) {
                gj = sample_weight[i] * (exp(zy - zmax) / sum - 1.0) * r.s * r.dpsi;
            } else {
                double dz;
                neg_logit(&r, cr[j], &dz);
                gj = w_over_sum * g[j] * dz;
            }
            a += gj * cr[j];
            g[j] = (float)(gj * h->w_inv_norm[j]);
        }
        h->row_coef[p] = (float)a;
        memcpy(h->emb_hat_active + (size_t)p * D, h->emb_hat + (size_t)i * D, (size_t)D * sizeof(float));
    }

    /* c'_j = sum_p g'_pj cos_{active[p], j} = c_j / |w_j|, over blocks of columns */
    enum { COLS = 256 };
    int nblocks = (K + COLS - 1) / COLS;
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int b = 0; b < nblocks; b++) {
        int j0 = b * COLS, j1 = j0 + COLS < K ? j0 + COLS : K;
        double acc[COLS];
        for (int j = j0; j < j1; j++) acc[j - j0] = 0;
        for (int p = 0; p < na; p++) {
            const float *g = h->dcos + (size_t)p * K;
            const float *cr = h->cos + (size_t)h->active[p] * K;
            for (int j = j0; j < j1; j++) acc[j - j0] += (double)g[j] * cr[j];
        }
        for (int j = j0; j < j1; j++) h->col_coef[j] = (float)acc[j - j0];
    }

    /* sum_j g_j w^_j = sum_j g'_j w_j: demb_hat (na, D) = dcos (na, K) @ weight (K, D);
     * demb_i += (demb_hat - a f^) / |f| */
    comine_backend_gemm(h->be, 0, 0, na, D, K, 1.0f, h->dcos, K, weight, D, 0.0f, h->demb_hat, D);
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int p = 0; p < na; p++) {
        int i = h->active[p];
        const float *gh = h->demb_hat + (size_t)p * D, *eh = h->emb_hat + (size_t)i * D;
        float *de = demb + (size_t)i * D;
        double n = h->emb_norm[i];
        if (n > NORM_EPS) {
            float inv = (float)(1.0 / n), a = h->row_coef[p];
            for (int d = 0; d < D; d++) de[d] += (gh[d] - a * eh[d]) * inv;
        } else {
            float inv = (float)(1.0 / NORM_EPS);
            for (int d = 0; d < D; d++) de[d] += gh[d] * inv;
        }
    }

    /* dweight (K, D) += dcos^T (K, na) @ emb_hat_active (na, D), then - c'_j w^_j */
    comine_backend_gemm(h->be, 1, 0, K, D, na, 1.0f, h->dcos, K, h->emb_hat_active, D, 1.0f, dweight, D);
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int j = 0; j < K; j++) {
        if (!(h->w_norm[j] > NORM_EPS)) continue; /* below eps F.normalize is a plain scaling */
        float c = h->col_coef[j];
        if (c == 0.0f) continue;
        const float *wh = h->w_hat + (size_t)j * D;
        float *dw = dweight + (size_t)j * D;
        for (int d = 0; d < D; d++) dw[d] -= c * wh[d];
    }
}

void comine_arcface_cos_stats(const comine_arcface *h, const int *labels, int N, double *mean_target,
                              double *mean_negative)
{
    COMINE_ASSERT(N >= 1 && N <= h->N);
    const int K = h->K;
    double tgt = 0, neg = 0;
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static) reduction(+ : tgt, neg)
#endif
    for (int i = 0; i < N; i++) {
        const float *cr = h->cos + (size_t)i * K;
        double row = 0;
        for (int j = 0; j < K; j++) row += cr[j];
        int y = labels[i];
        COMINE_ASSERT(y >= 0 && y < K);
        tgt += cr[y];
        if (K > 1) neg += (row - cr[y]) / (K - 1);
    }
    *mean_target = tgt / N;
    *mean_negative = neg / N;
}
