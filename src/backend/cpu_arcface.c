/* cpu_arcface.c: the CPU backend's ArcFace head kernels (entries of the table in cpu.c):
 * row normalisation, per-sample losses under each sample's form, and the row-wise parts of
 * the backward around the two matrix products that loss/arcface.c runs through gemm.
 *
 * The math (loss.h, loss/arcface.c): the target logit is s psi(th_y) with margin m
 * (COMINE_FORM_ARCFACE and COMINE_FORM_MV) or m + dm (COMINE_FORM_MARGIN) and one of two
 * fallbacks; COMINE_FORM_MV multiplies the negatives that beat the target (cos th_j > psi)
 * by h_j = e^{s(t-1)(cos th_j + 1)}, the selection mask a constant for the gradient.  Every
 * row runs in double precision, OpenMP over samples (or classes); nothing depends on the
 * thread count. */
#include "backend/cpu.h"

#include <math.h>
#include <string.h>

#define NORM_EPS 1e-12 /* F.normalize's eps */

/* ---- normalisation ------------------------------------------------------------------- */

/* out (rows, D) = in / max(|in|, eps) row-wise; norm (rows) = |in|; inv_norm (rows, or NULL)
 * = 1 / max(|in|, eps). */
void comine_cpu_l2_normalize_rows(float *out, float *norm, float *inv_norm, const float *in, int rows, int D)
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

/* ---- one row's logits ------------------------------------------------------------------ */

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

/* ---- forward: per-sample losses --------------------------------------------------------- */

void comine_cpu_arcface_loss(float *loss, float *cos_target, float *p_target, uint8_t *correct, const float *cos,
                             const int *labels, const uint8_t *form, int N, int K, const comine_arcface_cfg *cfg)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int i = 0; i < N; i++) {
        int y = labels[i];
        COMINE_ASSERT(y >= 0 && y < K);
        const float *cr = cos + (size_t)i * K;
        row_logits r;
        row_setup(&r, cr[y], form ? form[i] : COMINE_FORM_ARCFACE, cfg);
        double l = row_lse(&r, cr, K, y) - r.s * r.psi;
        if (l < 0) l = 0; /* rounding when p_y = 1 */
        loss[i] = (float)l;
        cos_target[i] = cr[y];
        p_target[i] = (float)exp(-l);
        int best = 0;
        for (int j = 1; j < K; j++)
            if (cr[j] > cr[best]) best = j;
        correct[i] = best == y;
    }
}

void comine_cpu_arcface_cos_stats(double *mean_target, double *mean_negative, const float *cos, const int *labels,
                                  int N, int K)
{
    double tgt = 0, neg = 0;
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static) reduction(+ : tgt, neg)
#endif
    for (int i = 0; i < N; i++) {
        const float *cr = cos + (size_t)i * K;
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

/* ---- backward: the row-wise parts ------------------------------------------------------- */

void comine_cpu_arcface_dcos(float *dcos, float *row_coef, float *emb_hat_active, const float *cos,
                             const float *emb_hat, const float *w_inv_norm, const int *active, int na,
                             const int *labels, const uint8_t *form, const float *sample_weight, int K, int D,
                             const comine_arcface_cfg *cfg)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int p = 0; p < na; p++) {
        int i = active[p];
        int y = labels[i];
        COMINE_ASSERT(y >= 0 && y < K);
        const float *cr = cos + (size_t)i * K;
        float *g = dcos + (size_t)p * K;
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
            g[j] = (float)(gj * w_inv_norm[j]);
        }
        row_coef[p] = (float)a;
        memcpy(emb_hat_active + (size_t)p * D, emb_hat + (size_t)i * D, (size_t)D * sizeof(float));
    }
}

void comine_cpu_arcface_col_coef(float *col_coef, const float *dcos, const float *cos, const int *active, int na,
                                 int K)
{
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
            const float *g = dcos + (size_t)p * K;
            const float *cr = cos + (size_t)active[p] * K;
            for (int j = j0; j < j1; j++) acc[j - j0] += (double)g[j] * cr[j];
        }
        for (int j = j0; j < j1; j++) col_coef[j] = (float)acc[j - j0];
    }
}

void comine_cpu_arcface_demb(float *demb, const float *demb_hat, const float *emb_hat, const float *emb_norm,
                             const float *row_coef, const int *active, int na, int D)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int p = 0; p < na; p++) {
        int i = active[p];
        const float *gh = demb_hat + (size_t)p * D, *eh = emb_hat + (size_t)i * D;
        float *de = demb + (size_t)i * D;
        double n = emb_norm[i];
        if (n > NORM_EPS) {
            float inv = (float)(1.0 / n), a = row_coef[p];
            for (int d = 0; d < D; d++) de[d] += (gh[d] - a * eh[d]) * inv;
        } else {
            float inv = (float)(1.0 / NORM_EPS);
            for (int d = 0; d < D; d++) de[d] += gh[d] * inv;
        }
    }
}

void comine_cpu_arcface_dweight(float *dweight, const float *w_hat, const float *w_norm, const float *col_coef, int K,
                                int D)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int j = 0; j < K; j++) {
        if (!(w_norm[j] > NORM_EPS)) continue; /* below eps F.normalize is a plain scaling */
        float c = col_coef[j];
        if (c == 0.0f) continue;
        const float *wh = w_hat + (size_t)j * D;
        float *dw = dweight + (size_t)j * D;
        for (int d = 0; d < D; d++) dw[d] -= c * wh[d];
    }
}

/* ---- Sub-center ArcFace: the class max and its scatter back ------------------------------ */

/* cos (N, K), arg (N, K) = max and first arg-max over each class's S sub-centres of
 * cos_sub (N, K S); NaN propagates (torch.max's forward). */
void comine_cpu_subcenter_max(float *cos, int *arg, const float *cos_sub, int N, int K, int S)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int i = 0; i < N; i++) {
        const float *cs = cos_sub + (size_t)i * K * S;
        float *c = cos + (size_t)i * K;
        int *a = arg + (size_t)i * K;
        for (int k = 0; k < K; k++) {
            const float *v = cs + (size_t)k * S;
            int best = 0;
            for (int s = 0; s < S && !isnan(v[best]); s++)
                if (v[s] > v[best] || isnan(v[s])) best = s;
            c[k] = v[best];
            a[k] = best;
        }
    }
}

/* dcos_sub (na, K S) = dcos (na, K) at each class's arg-max sub-centre, / |w| of that
 * sub-centre; 0 elsewhere. */
void comine_cpu_subcenter_scatter(float *dcos_sub, const float *dcos, const int *arg, const int *active,
                                  const float *w_inv_norm, int na, int K, int S)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int p = 0; p < na; p++) {
        const float *g = dcos + (size_t)p * K;
        const int *a = arg + (size_t)active[p] * K;
        float *o = dcos_sub + (size_t)p * K * S;
        memset(o, 0, (size_t)K * S * sizeof(float));
        for (int k = 0; k < K; k++) {
            size_t j = (size_t)k * S + a[k];
            o[j] = g[k] * w_inv_norm[j];
        }
    }
}

/* ---- the class-sharded head (loss.h): one shard's part of every row ------------------------
 * A shard holds classes [c0, c0 + K) of the head; the caller combines the shards' row maxima
 * (max) and sums (sum) between the calls.  Host memory: the CPU backend only. */

static void shard_check(const comine_arcface *h)
{
    COMINE_ASSERT(h->be == comine_backend_cpu()); /* the rows are read as host memory */
    COMINE_ASSERT(h->S == 1);                     /* no sub-centres in the sharded head */
}

void comine_arcface_shard_target(const comine_arcface *h, float *target_cos, const int *labels, int c0, int N)
{
    shard_check(h);
    COMINE_ASSERT(N >= 1 && N <= h->N);
    for (int i = 0; i < N; i++) {
        int j = labels[i] - c0;
        target_cos[i] = j >= 0 && j < h->K ? h->cos[(size_t)i * h->K + j] : 0.0f;
    }
}

void comine_arcface_shard_max(const comine_arcface *h, double *zmax, float *max_cos, const float *target_cos,
                              const int *labels, const uint8_t *form, int c0, int N, const comine_arcface_cfg *cfg)
{
    shard_check(h);
    const int K = h->K;
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int i = 0; i < N; i++) {
        const float *cr = h->cos + (size_t)i * K;
        int y = labels[i] - c0;
        row_logits r;
        row_setup(&r, target_cos[i], form ? form[i] : COMINE_FORM_ARCFACE, cfg);
        double zm = r.s * r.psi;
        float cm = -INFINITY;
        for (int j = 0; j < K; j++) {
            if (cr[j] > cm) cm = cr[j];
            if (j == y) continue;
            double z = neg_logit(&r, cr[j], NULL);
            if (z > zm) zm = z;
        }
        zmax[i] = zm;
        max_cos[i] = cm;
    }
}

void comine_arcface_shard_sum(const comine_arcface *h, double *sum, double *neg_cos_sum, const double *zmax,
                              const float *target_cos, const int *labels, const uint8_t *form, int c0, int N,
                              const comine_arcface_cfg *cfg)
{
    shard_check(h);
    const int K = h->K;
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int i = 0; i < N; i++) {
        const float *cr = h->cos + (size_t)i * K;
        int y = labels[i] - c0;
        row_logits r;
        row_setup(&r, target_cos[i], form ? form[i] : COMINE_FORM_ARCFACE, cfg);
        double s = 0, c = 0;
        for (int j = 0; j < K; j++) {
            if (j == y) continue;
            s += exp(neg_logit(&r, cr[j], NULL) - zmax[i]);
            c += cr[j];
        }
        sum[i] = s;
        neg_cos_sum[i] = c;
    }
}

void comine_arcface_shard_loss(comine_arcface *h, float *loss, const float *target_cos, const double *zmax,
                               const double *neg_sum, const float *max_cos, const uint8_t *form, int N,
                               const comine_arcface_cfg *cfg)
{
    for (int i = 0; i < N; i++) {
        row_logits r;
        row_setup(&r, target_cos[i], form ? form[i] : COMINE_FORM_ARCFACE, cfg);
        double zy = r.s * r.psi;
        double l = zmax[i] + log(neg_sum[i] + exp(zy - zmax[i])) - zy;
        if (l < 0) l = 0;
        loss[i] = (float)l;
        h->cos_target[i] = target_cos[i];
        h->p_target[i] = (float)exp(-l);
        h->correct[i] = target_cos[i] >= max_cos[i];
    }
}

void comine_arcface_shard_backward(comine_arcface *h, float *demb, float *dweight, const float *weight,
                                   const int *labels, const uint8_t *form, const float *sample_weight,
                                   const float *target_cos, const double *zmax, const double *neg_sum, int c0, int N,
                                   const comine_arcface_cfg *cfg)
{
    shard_check(h);
    COMINE_ASSERT(N >= 1 && N <= h->N);
    const int K = h->K, D = h->D;
    int na = 0;
    for (int i = 0; i < N; i++)
        if (sample_weight[i] != 0.0f) h->active[na++] = i;
    if (na == 0 || K == 0) return; /* K = 0: a Partial FC shard with no sampled class */
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int p = 0; p < na; p++) {
        int i = h->active[p];
        int y = labels[i] - c0;
        const float *cr = h->cos + (size_t)i * K;
        float *g = h->dcos + (size_t)p * K;
        row_logits r;
        row_setup(&r, target_cos[i], form ? form[i] : COMINE_FORM_ARCFACE, cfg);
        double zy = r.s * r.psi, sum = neg_sum[i] + exp(zy - zmax[i]);
        double w_over_sum = sample_weight[i] / sum, a = 0;
        for (int j = 0; j < K; j++) {
            double gj;
            if (j == y) {
                gj = sample_weight[i] * (exp(zy - zmax[i]) / sum - 1.0) * r.s * r.dpsi;
            } else {
                double dz;
                double z = neg_logit(&r, cr[j], &dz);
                gj = w_over_sum * exp(z - zmax[i]) * dz;
            }
            a += gj * cr[j];
            g[j] = (float)(gj * h->w_inv_norm[j]);
        }
        h->row_coef[p] = (float)a;
        memcpy(h->emb_hat_active + (size_t)p * D, h->emb_hat + (size_t)i * D, (size_t)D * sizeof(float));
    }
    comine_cpu_arcface_col_coef(h->col_coef, h->dcos, h->cos, h->active, na, K);
    comine_backend_gemm(h->be, 0, 0, na, D, K, 1.0f, h->dcos, K, weight, D, 0.0f, h->demb_hat, D);
    comine_cpu_arcface_demb(demb, h->demb_hat, h->emb_hat, h->emb_norm, h->row_coef, h->active, na, D);
    comine_backend_gemm(h->be, 1, 0, K, D, na, 1.0f, h->dcos, K, h->emb_hat_active, D, 1.0f, dweight, D);
    comine_cpu_arcface_dweight(dweight, h->w_hat, h->w_norm, h->col_coef, K, D);
}
