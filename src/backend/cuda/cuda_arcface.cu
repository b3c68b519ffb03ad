/* cuda_arcface.cu: the CUDA backend's ArcFace head kernels.  cpu_arcface.c is the
 * specification (loss.h's forms: COMINE_FORM_ARCFACE, COMINE_FORM_MARGIN with margin m + dm,
 * COMINE_FORM_MV with the negatives that beat the target scaled by h_j; the two fallbacks):
 * the same formulas in double precision per row, one block of ROW_THREADS threads per row
 * (sample) with block reductions, so results differ from the CPU's only by the order of the
 * sums; the sub-center entries (max over each class's S sub-centres, and the scatter of
 * the gradient back to the arg-max sub-centre) element-wise, exactly as the CPU.  The
 * per-row scalars (labels, forms, weights, active indices) are device memory;
 * cfg and arcface_cos_stats's two means are host memory. */
#include "backend/cuda/cuda_impl.h"

#include <math.h>
#include <stdlib.h>

#define NORM_EPS 1e-12 /* F.normalize's eps */
#define PI_D 3.14159265358979323846

enum { ROW_THREADS = 256 };

/* ---- block reductions (every thread of the block calls them; all get the result) ------ */

static __device__ double block_sum(double v)
{
    __shared__ double sh[ROW_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    double t = 0;
    for (int w = 0; w < (int)(blockDim.x / 32); w++) t += sh[w];
    return t;
}

static __device__ double block_max(double v)
{
    __shared__ double sh[ROW_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_down_sync(0xffffffffu, v, o));
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    double t = sh[0];
    for (int w = 1; w < (int)(blockDim.x / 32); w++) t = fmax(t, sh[w]);
    return t;
}

/* the first index of the largest value (cpu_arcface.c's strict > scan) */
static __device__ int block_argmax(float v, int idx)
{
    __shared__ float shv[ROW_THREADS / 32];
    __shared__ int shi[ROW_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_down_sync(0xffffffffu, v, o);
        int oi = __shfl_down_sync(0xffffffffu, idx, o);
        if (ov > v || (ov == v && oi < idx)) {
            v = ov;
            idx = oi;
        }
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads();
    if (lane == 0) {
        shv[warp] = v;
        shi[warp] = idx;
    }
    __syncthreads();
    float bv = shv[0];
    int bi = shi[0];
    for (int w = 1; w < (int)(blockDim.x / 32); w++)
        if (shv[w] > bv || (shv[w] == bv && shi[w] < bi)) {
            bv = shv[w];
            bi = shi[w];
        }
    return bi;
}

/* ---- normalisation ------------------------------------------------------------------- */

static __global__ void l2_normalize_kernel(float *out, float *norm, float *inv_norm, const float *in, int D)
{
    int r = blockIdx.x;
    const float *x = in + (size_t)r * D;
    float *o = out + (size_t)r * D;
    double ss = 0;
    for (int d = threadIdx.x; d < D; d += blockDim.x) ss += (double)x[d] * x[d];
    ss = block_sum(ss);
    double n = sqrt(ss);
    float inv = (float)(1.0 / (n > NORM_EPS ? n : NORM_EPS));
    for (int d = threadIdx.x; d < D; d += blockDim.x) o[d] = __fmul_rn(x[d], inv);
    if (threadIdx.x == 0) {
        norm[r] = (float)n;
        if (inv_norm) inv_norm[r] = inv;
    }
}

extern "C" void comine_cuda_l2_normalize_rows(float *out, float *norm, float *inv_norm, const float *in, int rows,
                                              int D)
{
    if (rows <= 0) return;
    l2_normalize_kernel<<<rows, ROW_THREADS>>>(out, norm, inv_norm, in, D);
    CUDA_LAUNCH_CHECK("l2_normalize_kernel");
}

/* ---- one row's logits (cpu_arcface.c's target_psi, row_setup, neg_logit) -------------- */

typedef struct row_logits {
    double s, psi, dpsi, mv_extra;
    bool mv;
} row_logits;

static __device__ double target_psi(double c, double m, comine_fallback fallback, double *dpsi)
{
    double sine2 = 1.0 - c * c;
    bool clamped = !(sine2 > 0.0);
    if (clamped) sine2 = 0.0;
    if (sine2 > 1.0) sine2 = 1.0;
    double sine = sqrt(sine2);
    bool use_margin = fallback == COMINE_FALLBACK_EASY ? c > 0.0 : c > cos(PI_D - m);
    if (!use_margin) {
        *dpsi = 1.0;
        return fallback == COMINE_FALLBACK_EASY ? c : c - m * sin(m);
    }
    *dpsi = cos(m) + (clamped ? 0.0 : sin(m) * c / sine);
    return c * cos(m) - sine * sin(m);
}

static __device__ void row_setup(row_logits *r, double c_target, uint8_t form, const comine_arcface_cfg &cfg)
{
    double m = form == COMINE_FORM_MARGIN ? (double)cfg.m + cfg.dm : (double)cfg.m;
    r->s = cfg.s;
    r->psi = target_psi(c_target, m, cfg.fallback, &r->dpsi);
    r->mv = form == COMINE_FORM_MV;
    r->mv_extra = r->mv ? r->s * ((double)cfg.t - 1.0) : 0.0;
}

static __device__ double neg_logit(const row_logits *r, double c, double *dz)
{
    if (r->mv && c > r->psi) {
        if (dz) *dz = r->s + r->mv_extra;
        return r->s * c + r->mv_extra * (c + 1.0);
    }
    if (dz) *dz = r->s;
    return r->s * c;
}

/* zmax and sum_j e^{z_j - zmax} of the row (target logit s psi at y) */
static __device__ void row_softmax_sums(const row_logits *r, const float *cr, int K, int y, double *zmax_out,
                                        double *sum_out)
{
    double zy = r->s * r->psi, zm = zy;
    for (int j = threadIdx.x; j < K; j += blockDim.x)
        if (j != y) zm = fmax(zm, neg_logit(r, cr[j], NULL));
    zm = block_max(zm);
    double sum = 0;
    for (int j = threadIdx.x; j < K; j += blockDim.x) sum += exp((j == y ? zy : neg_logit(r, cr[j], NULL)) - zm);
    *sum_out = block_sum(sum);
    *zmax_out = zm;
}

/* ---- forward: per-sample losses ------------------------------------------------------ */

static __global__ void arcface_loss_kernel(float *loss, float *cos_target, float *p_target, uint8_t *correct,
                                           const float *cos, const int *labels, const uint8_t *form, int K,
                                           comine_arcface_cfg cfg)
{
    int i = blockIdx.x;
    int y = labels[i];
    if (y < 0 || y >= K) __trap(); /* cpu_arcface.c asserts the same */
    const float *cr = cos + (size_t)i * K;
    uint8_t f = form ? form[i] : (uint8_t)COMINE_FORM_ARCFACE;
    if (f > COMINE_FORM_MV) __trap();
    row_logits r;
    row_setup(&r, cr[y], f, cfg);
    double zmax, sum;
    row_softmax_sums(&r, cr, K, y, &zmax, &sum);
    float best_v = -INFINITY;
    int best = K;
    for (int j = threadIdx.x; j < K; j += blockDim.x)
        if (cr[j] > best_v || best == K) {
            best_v = cr[j];
            best = j;
        }
    best = block_argmax(best_v, best);
    if (threadIdx.x == 0) {
        double l = zmax + log(sum) - r.s * r.psi;
        if (l < 0) l = 0;
        loss[i] = (float)l;
        cos_target[i] = cr[y];
        p_target[i] = (float)exp(-l);
        correct[i] = best == y;
    }
}

extern "C" void comine_cuda_arcface_loss(float *loss, float *cos_target, float *p_target, uint8_t *correct,
                                         const float *cos, const int *labels, const uint8_t *form, int N, int K,
                                         const comine_arcface_cfg *cfg)
{
    if (N <= 0) return;
    arcface_loss_kernel<<<N, ROW_THREADS>>>(loss, cos_target, p_target, correct, cos, labels, form, K, *cfg);
    CUDA_LAUNCH_CHECK("arcface_loss_kernel");
}

/* row i: stats[2i] = cos th_y, stats[2i + 1] = the mean of the negatives' cosines */
static __global__ void cos_stats_kernel(double *stats, const float *cos, const int *labels, int K)
{
    int i = blockIdx.x;
    int y = labels[i];
    if (y < 0 || y >= K) __trap();
    const float *cr = cos + (size_t)i * K;
    double row = 0;
    for (int j = threadIdx.x; j < K; j += blockDim.x) row += cr[j];
    row = block_sum(row);
    if (threadIdx.x == 0) {
        stats[2 * (size_t)i] = cr[y];
        stats[2 * (size_t)i + 1] = K > 1 ? (row - cr[y]) / (K - 1) : 0.0;
    }
}

extern "C" void comine_cuda_arcface_cos_stats(double *mean_target, double *mean_negative, const float *cos,
                                              const int *labels, int N, int K)
{
    if (N <= 0) {
        *mean_target = *mean_negative = NAN; /* cpu_arcface.c divides by N = 0 too */
        return;
    }
    comine_cuda_ctx *c = comine_cuda_ctx_get();
    double *stats = (double *)comine_cuda_scratch(c, 0, 4 * (size_t)N);
    cos_stats_kernel<<<N, ROW_THREADS>>>(stats, cos, labels, K);
    CUDA_LAUNCH_CHECK("cos_stats_kernel");
    double *host = (double *)comine_malloc(2 * (size_t)N * sizeof(double));
    CUDA_CHECK(cudaMemcpy(host, stats, 2 * (size_t)N * sizeof(double), cudaMemcpyDeviceToHost));
    double tgt = 0, neg = 0;
    for (int i = 0; i < N; i++) {
        tgt += host[2 * i];
        neg += host[2 * i + 1];
    }
    free(host);
    *mean_target = tgt / N;
    *mean_negative = neg / N;
}

/* ---- backward: the row-wise parts ---------------------------------------------------- */

static __global__ void arcface_dcos_kernel(float *dcos, float *row_coef, float *emb_hat_active, const float *cos,
                                           const float *emb_hat, const float *w_inv_norm, const int *active,
                                           const int *labels, const uint8_t *form, const float *sample_weight, int K,
                                           int D, comine_arcface_cfg cfg)
{
    int p = blockIdx.x;
    int i = active[p];
    int y = labels[i];
    if (y < 0 || y >= K) __trap();
    const float *cr = cos + (size_t)i * K;
    float *g = dcos + (size_t)p * K;
    uint8_t f = form ? form[i] : (uint8_t)COMINE_FORM_ARCFACE;
    if (f > COMINE_FORM_MV) __trap();
    row_logits r;
    row_setup(&r, cr[y], f, cfg);
    double zmax, sum;
    row_softmax_sums(&r, cr, K, y, &zmax, &sum);
    double zy = r.s * r.psi;
    double w = sample_weight[i], w_over_sum = w / sum, a = 0;
    for (int j = threadIdx.x; j < K; j += blockDim.x) {
        double gj;
        if (j == y) {
            gj = w * (exp(zy - zmax) / sum - 1.0) * r.s * r.dpsi;
        } else {
            double dz;
            double z = neg_logit(&r, cr[j], &dz);
            float e = (float)exp(z - zmax); /* cpu_arcface.c keeps e^{z - zmax} in float here */
            gj = w_over_sum * (double)e * dz;
        }
        a += gj * cr[j];
        g[j] = (float)(gj * w_inv_norm[j]);
    }
    a = block_sum(a);
    if (threadIdx.x == 0) row_coef[p] = (float)a;
    for (int d = threadIdx.x; d < D; d += blockDim.x) emb_hat_active[(size_t)p * D + d] = emb_hat[(size_t)i * D + d];
}

extern "C" void comine_cuda_arcface_dcos(float *dcos, float *row_coef, float *emb_hat_active, const float *cos,
                                         const float *emb_hat, const float *w_inv_norm, const int *active, int na,
                                         const int *labels, const uint8_t *form, const float *sample_weight, int K,
                                         int D, const comine_arcface_cfg *cfg)
{
    if (na <= 0) return;
    arcface_dcos_kernel<<<na, ROW_THREADS>>>(dcos, row_coef, emb_hat_active, cos, emb_hat, w_inv_norm, active,
                                             labels, form, sample_weight, K, D, *cfg);
    CUDA_LAUNCH_CHECK("arcface_dcos_kernel");
}

/* col_coef[j] = sum_p dcos[p, j] cos[active[p], j] (one thread per column, rows in order) */
static __global__ void col_coef_kernel(float *col_coef, const float *dcos, const float *cos, const int *active, int na,
                                       int K)
{
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < K; j += gridDim.x * blockDim.x) {
        double acc = 0;
        for (int p = 0; p < na; p++) acc += (double)dcos[(size_t)p * K + j] * cos[(size_t)active[p] * K + j];
        col_coef[j] = (float)acc;
    }
}

extern "C" void comine_cuda_arcface_col_coef(float *col_coef, const float *dcos, const float *cos, const int *active,
                                             int na, int K)
{
    if (K <= 0) return;
    col_coef_kernel<<<comine_cuda_blocks((size_t)K, 128), 128>>>(col_coef, dcos, cos, active, na, K);
    CUDA_LAUNCH_CHECK("col_coef_kernel");
}

static __global__ void demb_kernel(float *demb, const float *demb_hat, const float *emb_hat, const float *emb_norm,
                                   const float *row_coef, const int *active, int D)
{
    int p = blockIdx.x;
    int i = active[p];
    const float *gh = demb_hat + (size_t)p * D, *eh = emb_hat + (size_t)i * D;
    float *de = demb + (size_t)i * D;
    double n = emb_norm[i];
    if (n > NORM_EPS) {
        float inv = (float)(1.0 / n), a = row_coef[p];
        for (int d = threadIdx.x; d < D; d += blockDim.x)
            de[d] = __fadd_rn(de[d], __fmul_rn(__fsub_rn(gh[d], __fmul_rn(a, eh[d])), inv));
    } else {
        float inv = (float)(1.0 / NORM_EPS);
        for (int d = threadIdx.x; d < D; d += blockDim.x) de[d] = __fadd_rn(de[d], __fmul_rn(gh[d], inv));
    }
}

extern "C" void comine_cuda_arcface_demb(float *demb, const float *demb_hat, const float *emb_hat,
                                         const float *emb_norm, const float *row_coef, const int *active, int na,
                                         int D)
{
    if (na <= 0) return;
    demb_kernel<<<na, ROW_THREADS>>>(demb, demb_hat, emb_hat, emb_norm, row_coef, active, D);
    CUDA_LAUNCH_CHECK("demb_kernel");
}

static __global__ void dweight_kernel(float *dweight, const float *w_hat, const float *w_norm, const float *col_coef,
                                      int K, int D)
{
    size_t n = (size_t)K * D;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        size_t j = e / D;
        if (!(w_norm[j] > NORM_EPS)) continue; /* below eps F.normalize is a plain scaling */
        float c = col_coef[j];
        if (c == 0.0f) continue;
        dweight[e] = __fsub_rn(dweight[e], __fmul_rn(c, w_hat[e]));
    }
}

extern "C" void comine_cuda_arcface_dweight(float *dweight, const float *w_hat, const float *w_norm,
                                            const float *col_coef, int K, int D)
{
    size_t n = (size_t)K * D;
    if (n == 0) return;
    dweight_kernel<<<comine_cuda_blocks(n, 256), 256>>>(dweight, w_hat, w_norm, col_coef, K, D);
    CUDA_LAUNCH_CHECK("dweight_kernel");
}

/* ---- Sub-center ArcFace (cpu_arcface.c's subcenter_max and subcenter_scatter) ---------- */

/* cos (N, K), arg (N, K) = max and first arg-max over each class's S sub-centres of cos_sub
 * (N, K S); a NaN stops the scan and is the result (torch.max's forward) */
static __global__ void subcenter_max_kernel(float *cos, int *arg, const float *cos_sub, size_t NK, int S)
{
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < NK; e += (size_t)gridDim.x * blockDim.x) {
        const float *v = cos_sub + e * S;
        int best = 0;
        for (int s = 0; s < S && !isnan(v[best]); s++)
            if (v[s] > v[best] || isnan(v[s])) best = s;
        cos[e] = v[best];
        arg[e] = best;
    }
}

extern "C" void comine_cuda_subcenter_max(float *cos, int *arg, const float *cos_sub, int N, int K, int S)
{
    size_t nk = (size_t)N * K;
    if (nk == 0) return;
    subcenter_max_kernel<<<comine_cuda_blocks(nk, 256), 256>>>(cos, arg, cos_sub, nk, S);
    CUDA_LAUNCH_CHECK("subcenter_max_kernel");
}

/* dcos_sub (na, K S): dcos[p, c] * w_inv_norm[c S + s] at s = arg[active[p], c], else 0 */
static __global__ void subcenter_scatter_kernel(float *dcos_sub, const float *dcos, const int *arg, const int *active,
                                                const float *w_inv_norm, int na, int K, int S)
{
    size_t KS = (size_t)K * S, n = (size_t)na * KS;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        size_t p = e / KS, j = e % KS;
        int c = (int)(j / S), s = (int)(j % S);
        bool hit = arg[(size_t)active[p] * K + c] == s;
        dcos_sub[e] = hit ? __fmul_rn(dcos[p * K + c], w_inv_norm[j]) : 0.0f;
    }
}

extern "C" void comine_cuda_subcenter_scatter(float *dcos_sub, const float *dcos, const int *arg, const int *active,
                                              const float *w_inv_norm, int na, int K, int S)
{
    size_t n = (size_t)na * K * S;
    if (n == 0) return;
    subcenter_scatter_kernel<<<comine_cuda_blocks(n, 256), 256>>>(dcos_sub, dcos, arg, active, w_inv_norm, na, K, S);
    CUDA_LAUNCH_CHECK("subcenter_scatter_kernel");
}
