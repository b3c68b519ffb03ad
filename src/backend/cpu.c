/* cpu.c: the CPU backend's table: host memory (device memory is host memory, so uploads
 * and downloads are plain copies) and the OpenMP kernels (batch norm, PReLU, ReLU, dropout,
 * element-wise, the finiteness check, SGD).  Matrix products are in cpu_gemm.c (OpenBLAS),
 * convolutions in cpu_conv.c (oneDNN), the ArcFace head's kernels in cpu_arcface.c.
 *
 * Assumes NHWC activations viewed as (rows, C), channels innermost: every kernel runs
 * OpenMP over rows with a channel-inner loop the compiler vectorises.  Reductions over
 * rows (batch statistics, per-channel gradients) sum fixed blocks of rows, then the
 * blocks in order, in double: the result does not depend on the number of threads.
 * The kernels marked COMINE_CPU_CLONES have a version per x86-64 level, picked at load
 * time (cpu_dispatch.h); selects load both operands (no load under a condition), so
 * that every version vectorises. */
#include "backend/cpu.h"
#include "core/cpu_dispatch.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif

#ifdef COMINE_HAVE_OPENMP
#define OMP_PARALLEL_FOR _Pragma("omp parallel for schedule(static) if (omp_work > 32768)")
#else
#define OMP_PARALLEL_FOR
#endif

/* Loops over fewer than 32768 elements (omp_work) run on one thread; reductions sum
 * blocks of BLOCK_ROWS rows. */
enum { BLOCK_ROWS = 256 };

/* ---- threads and memory -------------------------------------------------------------- */

static void cpu_set_threads(int n)
{
    if (n <= 0) return;
    comine_set_num_threads(n);
#ifndef COMINE_HAVE_OPENMP
    openblas_set_num_threads(n); /* with OpenMP, OpenBLAS stays on one thread: cpu_gemm.c */
#endif
}

static float *cpu_alloc(size_t n) { return comine_alloc_floats(n ? n : 1); }
static void cpu_free(float *p) { comine_free_floats(p); }
static void cpu_zero(float *p, size_t n) { memset(p, 0, n * sizeof(float)); }
static void cpu_copy(float *dst, const float *src, size_t n)
{
    if (dst != src) memcpy(dst, src, n * sizeof(float));
}
static const float *cpu_stage_input(float *scratch, const float *src, size_t n)
{
    (void)scratch;
    (void)n;
    return src;
}
static void *cpu_alloc_bytes(size_t bytes) { return comine_alloc_floats(bytes ? (bytes + 3) / 4 : 1); }
static void cpu_free_bytes(void *p) { comine_free_floats(p); }
static void cpu_copy_bytes(void *dst, const void *src, size_t bytes)
{
    if (dst != src) memcpy(dst, src, bytes);
}

/* NaN or Inf anywhere makes the sum NaN. */
COMINE_CPU_CLONES
static bool cpu_all_finite(const float *x, size_t n)
{
    float s = 0.0f;
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for reduction(+ : s) schedule(static)
#endif
    for (size_t i = 0; i < n; i++) s += x[i] * 0.0f;
    return s == 0.0f;
}

/* ---- row blocks for deterministic reductions ------------------------------------------ */

static size_t num_blocks(size_t rows) { return (rows + BLOCK_ROWS - 1) / BLOCK_ROWS; }

/* dst[c] = sum over blocks b of part[b * C + c], in block order */
static void sum_blocks(double *dst, const double *part, size_t nb, int C)
{
    for (int c = 0; c < C; c++) dst[c] = 0.0;
    for (size_t b = 0; b < nb; b++)
        for (int c = 0; c < C; c++) dst[c] += part[b * (size_t)C + c];
}

/* ---- batch norm ---------------------------------------------------------------------- */

/* out[r, c] = in[r, c] * scale[c] + shift[c] */
COMINE_CPU_CLONES
static void scale_shift(float *out, const float *in, const float *scale, const float *shift, size_t rows, int C)
{
    size_t omp_work = rows * (size_t)C;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * C;
        float *y = out + r * C;
        for (int c = 0; c < C; c++) y[c] = x[c] * scale[c] + shift[c];
    }
}

/* The training forward's per-channel scale and shift, from the batch statistics as saved
 * (in float): batchnorm_apply recomputes the same output, bit for bit, from them. */
static void train_scale_shift(float *scale, float *shift, const float *mean, const float *rstd, const float *gamma,
                              const float *beta, int C)
{
    for (int c = 0; c < C; c++) {
        double s = (gamma ? gamma[c] : 1.0) * (double)rstd[c];
        scale[c] = (float)s;
        shift[c] = (float)((beta ? beta[c] : 0.0) - (double)mean[c] * s);
    }
}

COMINE_CPU_CLONES
static void cpu_batchnorm_forward(float *out, float *save_mean, float *save_rstd, float *running_mean,
                                  float *running_var, const float *in, const float *gamma, const float *beta,
                                  size_t rows, int C, bool training, float momentum, float eps)
{
    if (C == 0) return;
    float *scale = comine_malloc(4 * (size_t)C * sizeof(float));
    float *shift = scale + C, *mean_f = shift + C, *rstd_f = mean_f + C;
    if (!training) {
        for (int c = 0; c < C; c++) {
            double s = (gamma ? gamma[c] : 1.0) / sqrt((double)running_var[c] + eps);
            scale[c] = (float)s;
            shift[c] = (float)((beta ? beta[c] : 0.0) - running_mean[c] * s);
        }
        scale_shift(out, in, scale, shift, rows, C);
        free(scale);
        return;
    }
    if (rows == 0) {
        free(scale);
        return;
    }
    size_t nb = num_blocks(rows);
    double *part = comine_malloc((2 * nb + 2) * (size_t)C * sizeof(double));
    double *part_sq = part + nb * (size_t)C;
    double *mean = part_sq + nb * (size_t)C, *var = mean + C;
    size_t omp_work = rows * (size_t)C;
    (void)omp_work;
    /* one pass: sums of d and d^2 with d = x - x[0] (shifting by the first row keeps
     * E[d^2] - E[d]^2 free of cancellation when |mean| >> std) */
    const float *shift0 = in;
    OMP_PARALLEL_FOR
    for (size_t b = 0; b < nb; b++) {
        double *acc = part + b * (size_t)C, *acc_sq = part_sq + b * (size_t)C;
        for (int c = 0; c < C; c++) acc[c] = acc_sq[c] = 0.0;
        size_t r1 = (b + 1) * BLOCK_ROWS < rows ? (b + 1) * BLOCK_ROWS : rows;
        for (size_t r = b * BLOCK_ROWS; r < r1; r++) {
            const float *x = in + r * C;
            for (int c = 0; c < C; c++) {
                double d = (double)x[c] - shift0[c];
                acc[c] += d;
                acc_sq[c] += d * d;
            }
        }
    }
    sum_blocks(mean, part, nb, C);
    sum_blocks(var, part_sq, nb, C);
    for (int c = 0; c < C; c++) {
        double md = mean[c] / (double)rows;
        double v = var[c] / (double)rows - md * md;
        v = v > 0.0 ? v : 0.0;
        mean[c] = md + shift0[c];
        mean_f[c] = (float)mean[c];
        rstd_f[c] = (float)(1.0 / sqrt(v + eps));
        if (save_mean) save_mean[c] = mean_f[c];
        if (save_rstd) save_rstd[c] = rstd_f[c];
        double unbiased = rows > 1 ? v * (double)rows / (double)(rows - 1) : v;
        if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean[c]);
        if (running_var) running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
    }
    train_scale_shift(scale, shift, mean_f, rstd_f, gamma, beta, C);
    scale_shift(out, in, scale, shift, rows, C);
    free(part);
    free(scale);
}

static void cpu_batchnorm_apply(float *out, const float *in, const float *save_mean, const float *save_rstd,
                                const float *gamma, const float *beta, size_t rows, int C)
{
    if (C == 0 || rows == 0) return;
    float *scale = comine_malloc(2 * (size_t)C * sizeof(float));
    train_scale_shift(scale, scale + C, save_mean, save_rstd, gamma, beta, C);
    scale_shift(out, in, scale, scale + C, rows, C);
    free(scale);
}

/* overwrite: dinp = the input gradient, instead of dinp += (the first writer of a gradient) */
COMINE_CPU_CLONES
static void batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in,
                               const float *save_mean, const float *save_rstd, const float *gamma, size_t rows, int C,
                               bool overwrite)
{
    if (rows == 0 || C == 0) return;
    size_t nb = num_blocks(rows);
    double *part = comine_malloc((2 * nb + 2) * (size_t)C * sizeof(double));
    double *part_xmu = part + nb * (size_t)C;
    double *sum_dy = part_xmu + nb * (size_t)C, *sum_dy_xmu = sum_dy + C;
    size_t omp_work = rows * (size_t)C;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t b = 0; b < nb; b++) {
        double *a1 = part + b * (size_t)C, *a2 = part_xmu + b * (size_t)C;
        for (int c = 0; c < C; c++) a1[c] = a2[c] = 0.0;
        size_t r1 = (b + 1) * BLOCK_ROWS < rows ? (b + 1) * BLOCK_ROWS : rows;
        for (size_t r = b * BLOCK_ROWS; r < r1; r++) {
            const float *x = in + r * C, *dy = dout + r * C;
            for (int c = 0; c < C; c++) {
                a1[c] += dy[c];
                a2[c] += (double)dy[c] * (x[c] - save_mean[c]);
            }
        }
    }
    sum_blocks(sum_dy, part, nb, C);
    sum_blocks(sum_dy_xmu, part_xmu, nb, C);
    float *k = comine_malloc(3 * (size_t)C * sizeof(float));
    float *ka = k, *kb = k + C, *kc = k + 2 * C;
    for (int c = 0; c < C; c++) {
        double rstd = save_rstd[c];
        if (dgamma) dgamma[c] += (float)(sum_dy_xmu[c] * rstd);
        if (dbeta) dbeta[c] += (float)sum_dy[c];
        /* dinp = g*rstd * (dy - mean(dy) - (x - mu) * rstd^2 * mean(dy * (x - mu))) */
        double a = (gamma ? gamma[c] : 1.0) * rstd;
        double k3 = rstd * rstd * sum_dy_xmu[c] / (double)rows;
        ka[c] = (float)a;
        kb[c] = (float)(a * k3);
        kc[c] = (float)(a * (k3 * save_mean[c] - sum_dy[c] / (double)rows));
    }
    if (dinp && overwrite) {
        OMP_PARALLEL_FOR
        for (size_t r = 0; r < rows; r++) {
            const float *x = in + r * C, *dy = dout + r * C;
            float *dx = dinp + r * C;
            for (int c = 0; c < C; c++) dx[c] = ka[c] * dy[c] - kb[c] * x[c] + kc[c];
        }
    } else if (dinp) {
        OMP_PARALLEL_FOR
        for (size_t r = 0; r < rows; r++) {
            const float *x = in + r * C, *dy = dout + r * C;
            float *dx = dinp + r * C;
            for (int c = 0; c < C; c++) dx[c] += ka[c] * dy[c] - kb[c] * x[c] + kc[c];
        }
    }
    free(k);
    free(part);
}

static void cpu_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in,
                                   const float *save_mean, const float *save_rstd, const float *gamma, size_t rows,
                                   int C)
{
    batchnorm_backward(dinp, dgamma, dbeta, dout, in, save_mean, save_rstd, gamma, rows, C, false);
}

static void cpu_batchnorm_backward_write(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in,
                                         const float *save_mean, const float *save_rstd, const float *gamma,
                                         size_t rows, int C)
{
    batchnorm_backward(dinp, dgamma, dbeta, dout, in, save_mean, save_rstd, gamma, rows, C, true);
}

/* ---- activations --------------------------------------------------------------------- */

COMINE_CPU_CLONES
static void cpu_prelu_forward(float *out, const float *in, const float *alpha, size_t rows, int C)
{
    size_t omp_work = rows * (size_t)C;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * C;
        float *y = out + r * C;
        for (int c = 0; c < C; c++) {
            /* branch-free selects (no trapping op under a condition): the loop vectorises */
            float pos = x[c] > 0.0f ? x[c] : 0.0f, neg = x[c] > 0.0f ? 0.0f : x[c];
            y[c] = pos + alpha[c] * neg;
        }
    }
}

/* overwrite: dinp = the input gradient, instead of dinp += */
COMINE_CPU_CLONES
static void prelu_backward(float *dinp, float *dalpha, const float *dout, const float *in, const float *alpha,
                           size_t rows, int C, bool overwrite)
{
    if (rows == 0 || C == 0) return;
    size_t omp_work = rows * (size_t)C;
    (void)omp_work;
    if (!dalpha) {
        if (!dinp) return;
        OMP_PARALLEL_FOR
        for (size_t r = 0; r < rows; r++) {
            const float *x = in + r * C, *dy = dout + r * C;
            float *dx = dinp + r * C;
            if (overwrite)
                for (int c = 0; c < C; c++) {
                    float a = alpha[c];
                    dx[c] = (x[c] > 0.0f ? 1.0f : a) * dy[c];
                }
            else
                for (int c = 0; c < C; c++) {
                    float a = alpha[c];
                    dx[c] += (x[c] > 0.0f ? 1.0f : a) * dy[c];
                }
        }
        return;
    }
    size_t nb = num_blocks(rows);
    double *part = comine_malloc((nb + 1) * (size_t)C * sizeof(double));
    double *total = part + nb * (size_t)C;
    OMP_PARALLEL_FOR
    for (size_t b = 0; b < nb; b++) {
        /* float partials over 16 rows at most, double across them */
        float acc[64];
        double *pa = part + b * (size_t)C;
        for (int c = 0; c < C; c++) pa[c] = 0.0;
        size_t r0 = b * BLOCK_ROWS, r1 = (b + 1) * BLOCK_ROWS < rows ? (b + 1) * BLOCK_ROWS : rows;
        for (int c0 = 0; c0 < C; c0 += 64) {
            int cn = C - c0 < 64 ? C - c0 : 64;
            for (size_t rs = r0; rs < r1; rs += 16) {
                size_t re = rs + 16 < r1 ? rs + 16 : r1;
                for (int c = 0; c < cn; c++) acc[c] = 0.0f;
                for (size_t r = rs; r < re; r++) {
                    const float *x = in + r * C + c0, *dy = dout + r * C + c0;
                    float *dx = dinp ? dinp + r * C + c0 : NULL;
                    const float *al = alpha + c0;
                    if (dx && overwrite)
                        for (int c = 0; c < cn; c++) {
                            float xc = x[c], a = al[c];
                            bool pos = xc > 0.0f;
                            float slope = pos ? 1.0f : a, xneg = pos ? 0.0f : xc;
                            dx[c] = slope * dy[c];
                            acc[c] += xneg * dy[c];
                        }
                    else if (dx)
                        for (int c = 0; c < cn; c++) {
                            float xc = x[c], a = al[c];
                            bool pos = xc > 0.0f;
                            float slope = pos ? 1.0f : a, xneg = pos ? 0.0f : xc;
                            dx[c] += slope * dy[c];
                            acc[c] += xneg * dy[c];
                        }
                    else
                        for (int c = 0; c < cn; c++) {
                            float xneg = x[c] > 0.0f ? 0.0f : x[c];
                            acc[c] += xneg * dy[c];
                        }
                }
                for (int c = 0; c < cn; c++) pa[c0 + c] += acc[c];
            }
        }
    }
    sum_blocks(total, part, nb, C);
    for (int c = 0; c < C; c++) dalpha[c] += (float)total[c];
    free(part);
}

static void cpu_prelu_backward(float *dinp, float *dalpha, const float *dout, const float *in, const float *alpha,
                               size_t rows, int C)
{
    prelu_backward(dinp, dalpha, dout, in, alpha, rows, C, false);
}

static void cpu_prelu_backward_write(float *dinp, float *dalpha, const float *dout, const float *in,
                                     const float *alpha, size_t rows, int C)
{
    prelu_backward(dinp, dalpha, dout, in, alpha, rows, C, true);
}

COMINE_CPU_CLONES
static void cpu_relu_forward(float *out, const float *in, size_t n)
{
    size_t omp_work = n;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

COMINE_CPU_CLONES
static void cpu_relu_backward(float *dinp, const float *dout, const float *in, size_t n)
{
    size_t omp_work = n;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t i = 0; i < n; i++) {
        float d = dout[i];
        dinp[i] += in[i] > 0.0f ? d : 0.0f;
    }
}

/* ---- per-channel vectors ------------------------------------------------------------- */

COMINE_CPU_CLONES
static void cpu_add_bias(float *out, const float *bias, size_t rows, int C)
{
    size_t omp_work = rows * (size_t)C;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t r = 0; r < rows; r++) {
        float *y = out + r * C;
        for (int c = 0; c < C; c++) y[c] += bias[c];
    }
}

COMINE_CPU_CLONES
static void cpu_accumulate_colsum(float *dst, const float *src, size_t rows, int C)
{
    if (rows == 0 || C == 0) return;
    size_t nb = num_blocks(rows);
    double *part = comine_malloc((nb + 1) * (size_t)C * sizeof(double));
    double *total = part + nb * (size_t)C;
    size_t omp_work = rows * (size_t)C;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t b = 0; b < nb; b++) {
        double *acc = part + b * (size_t)C;
        for (int c = 0; c < C; c++) acc[c] = 0.0;
        size_t r1 = (b + 1) * BLOCK_ROWS < rows ? (b + 1) * BLOCK_ROWS : rows;
        for (size_t r = b * BLOCK_ROWS; r < r1; r++) {
            const float *x = src + r * C;
            for (int c = 0; c < C; c++) acc[c] += x[c];
        }
    }
    sum_blocks(total, part, nb, C);
    for (int c = 0; c < C; c++) dst[c] += (float)total[c];
    free(part);
}

/* ---- dropout ------------------------------------------------------------------------- */

COMINE_CPU_CLONES
static void cpu_dropout_forward(float *out, uint8_t *mask, const float *in, size_t n, float p, bool training,
                                comine_rng *rng)
{
    if (!training || p <= 0.0f) {
        cpu_copy(out, in, n);
        if (training && mask) memset(mask, 1, n);
        return;
    }
    COMINE_ASSERT(mask != NULL && rng != NULL);
    if (p >= 1.0f) {
        memset(out, 0, n * sizeof(float));
        memset(mask, 0, n);
        return;
    }
    /* the draws are sequential (one stream, reproducible); applying them is parallel */
    for (size_t i = 0; i < n; i++) mask[i] = comine_rng_uniform(rng) >= p;
    float scale = 1.0f / (1.0f - p);
    size_t omp_work = n;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t i = 0; i < n; i++) out[i] = in[i] * ((float)mask[i] * scale); /* branch-free */
}

COMINE_CPU_CLONES
static void cpu_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p)
{
    if (p >= 1.0f) return;
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    size_t omp_work = n;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * ((float)mask[i] * scale);
}

/* ---- element-wise -------------------------------------------------------------------- */

COMINE_CPU_CLONES
static void cpu_add(float *out, const float *a, const float *b, size_t n)
{
    size_t omp_work = n;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

COMINE_CPU_CLONES
void comine_cpu_accumulate(float *dst, const float *src, size_t n)
{
    size_t omp_work = n;
    (void)omp_work;
    OMP_PARALLEL_FOR
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

/* ---- SGD ----------------------------------------------------------------------------- */

COMINE_CPU_CLONES
static void cpu_sgd_step(float *params, float *momentum_buf, const float *grads, size_t n, float lr, float momentum,
                         float weight_decay)
{
    size_t omp_work = n;
    (void)omp_work;
    if (momentum_buf && momentum != 0.0f) {
        OMP_PARALLEL_FOR
        for (size_t i = 0; i < n; i++) {
            float g = grads[i] + weight_decay * params[i];
            float v = momentum * momentum_buf[i] + g;
            momentum_buf[i] = v;
            params[i] -= lr * v;
        }
    } else {
        OMP_PARALLEL_FOR
        for (size_t i = 0; i < n; i++) params[i] -= lr * (grads[i] + weight_decay * params[i]);
    }
}

/* cpu_sgd_step's arithmetic on some rows, the rows spread over the threads (test_nn_optim
 * checks that both give the same bytes). */
static void cpu_sgd_step_rows(float *params, float *momentum_buf, const float *grads, const int *rows, int n_rows,
                              int row0, int D, float lr, float momentum, float weight_decay)
{
    size_t omp_work = (size_t)n_rows * D;
    (void)omp_work;
    const bool with_momentum = momentum_buf && momentum != 0.0f;
    OMP_PARALLEL_FOR
    for (int r = 0; r < n_rows; r++) {
        size_t at = (size_t)(rows[r] - row0) * D;
        float *p = params + at;
        const float *gr = grads + (size_t)r * D;
        if (with_momentum) {
            float *buf = momentum_buf + at;
            for (int i = 0; i < D; i++) {
                float g = gr[i] + weight_decay * p[i];
                float v = momentum * buf[i] + g;
                buf[i] = v;
                p[i] -= lr * v;
            }
        } else {
            for (int i = 0; i < D; i++) p[i] -= lr * (gr[i] + weight_decay * p[i]);
        }
    }
}

/* ---- the batch split of an eval forward ----------------------------------------------- */

/* Each part on one OpenMP thread; the regions nested inside it (comine's kernels, oneDNN's
 * primitives, made and run inside it) then run on that thread alone.  Without OpenMP there
 * is one part. */
static int cpu_split_parts(void) { return comine_num_threads(); }

static void cpu_run_split(int parts, void (*fn)(void *ctx, int part), void *ctx)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel num_threads(parts)
    {
        omp_set_num_threads(1);
        for (int p = omp_get_thread_num(); p < parts; p += omp_get_num_threads()) fn(ctx, p);
    }
#else
    for (int p = 0; p < parts; p++) fn(ctx, p);
#endif
}

/* ---- the table ----------------------------------------------------------------------- */

static const comine_backend cpu_backend = {
    .name = "cpu (oneDNN, OpenBLAS, OpenMP)",
    .set_threads = cpu_set_threads,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .zero = cpu_zero,
    .upload = cpu_copy,
    .download = cpu_copy,
    .copy = cpu_copy,
    .stage_input = cpu_stage_input,
    .alloc_bytes = cpu_alloc_bytes,
    .free_bytes = cpu_free_bytes,
    .upload_bytes = cpu_copy_bytes,
    .download_bytes = cpu_copy_bytes,
    .all_finite = cpu_all_finite,
    .gemm = comine_cpu_gemm,
    .conv_plan_create = comine_cpu_conv_plan_create,
    .conv_plan_free = comine_cpu_conv_plan_free,
    .conv_forward = comine_cpu_conv_forward,
    .conv_forward_fused = comine_cpu_conv_forward_fused,
    .conv_fuses_input_prelu = comine_cpu_conv_fuses_input_prelu,
    .conv_forward_fused_affine = comine_cpu_conv_forward_fused_affine,
    .conv_fuses_input_affine = comine_cpu_conv_fuses_input_affine,
    .conv_backward_data = comine_cpu_conv_backward_data,
    .conv_backward_data_write = comine_cpu_conv_backward_data_write,
    .conv_backward_weights = comine_cpu_conv_backward_weights,
    .conv_backward = comine_cpu_conv_backward,
    .batchnorm_forward = cpu_batchnorm_forward,
    .batchnorm_apply = cpu_batchnorm_apply,
    .batchnorm_backward = cpu_batchnorm_backward,
    .batchnorm_backward_write = cpu_batchnorm_backward_write,
    .prelu_forward = cpu_prelu_forward,
    .prelu_backward = cpu_prelu_backward,
    .prelu_backward_write = cpu_prelu_backward_write,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .add_bias = cpu_add_bias,
    .accumulate_colsum = cpu_accumulate_colsum,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .add = cpu_add,
    .accumulate = comine_cpu_accumulate,
    .l2_normalize_rows = comine_cpu_l2_normalize_rows,
    .arcface_loss = comine_cpu_arcface_loss,
    .arcface_cos_stats = comine_cpu_arcface_cos_stats,
    .arcface_dcos = comine_cpu_arcface_dcos,
    .arcface_col_coef = comine_cpu_arcface_col_coef,
    .arcface_demb = comine_cpu_arcface_demb,
    .arcface_dweight = comine_cpu_arcface_dweight,
    .subcenter_max = comine_cpu_subcenter_max,
    .subcenter_scatter = comine_cpu_subcenter_scatter,
    .sgd_step = cpu_sgd_step,
    .sgd_step_rows = cpu_sgd_step_rows,
    .split_parts = cpu_split_parts,
    .run_split = cpu_run_split,
};

const comine_backend *comine_backend_cpu(void) { return &cpu_backend; }
