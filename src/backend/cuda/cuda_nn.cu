/* cuda_nn.cu: the CUDA backend's layer kernels: batch norm, PReLU, ReLU, per-channel bias
 * and column sums, dropout's mask application, element-wise sums and the SGD step.  cpu.c
 * is the specification: the same formulas, the same float/double split, and the float
 * products and sums written with __fmul_rn/__fadd_rn where cpu.c's C (ISO mode, no
 * contraction) rounds each one, so that element-wise results match the CPU bit for bit.
 *
 * Activations are (rows, C), channels innermost.  A reduction over rows (batch statistics,
 * per-channel gradients) runs in double: PARTS row ranges, each summed by a block of
 * 32 channels x 8 row lanes, then the parts added in order by one thread per channel; the
 * result depends on rows and C only (not on the device or timing), though it rounds
 * differently from cpu.c's blocks of 256 rows. */
#include "backend/cuda/cuda_impl.h"

#include <math.h>

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

enum { TILE_C = 32, LANES = 8, MAX_PARTS = 1024 };

/* ---- row-range partitions of a column reduction -------------------------------------- */

typedef struct parts_t {
    int n;       /* parts */
    size_t rows; /* rows per part (the last may have fewer) */
} parts_t;

static parts_t make_parts(size_t rows)
{
    parts_t p = {1, 1};
    if (rows == 0) return p;
    size_t n = (rows + 255) / 256;
    if (n > MAX_PARTS) n = MAX_PARTS;
    if (n < 1) n = 1;
    p.rows = (rows + n - 1) / n;
    p.n = (int)((rows + p.rows - 1) / p.rows);
    if (p.n < 1) p.n = 1;
    return p;
}

static dim3 parts_grid(parts_t p, int C) { return dim3((unsigned)((C + TILE_C - 1) / TILE_C), (unsigned)p.n); }

/* Scratch for (k arrays of (parts, C) doubles) + extra floats, from the thread's slot 0. */
static double *parts_scratch(int k, parts_t p, int C, size_t extra_floats, float **extra)
{
    comine_cuda_ctx *c = comine_cuda_ctx_get();
    size_t nd = (size_t)k * p.n * C;
    float *s = comine_cuda_scratch(c, 0, 2 * nd + extra_floats + 2);
    if (extra) *extra = s + 2 * nd;
    return (double *)s;
}

/* Block reduction over the LANES row lanes of one channel (in lane order): thread (tx, 0)
 * gets the sums of its channel. */
static __device__ void lanes_sum2(double &a, double &b)
{
    __shared__ double sa[LANES][TILE_C], sb[LANES][TILE_C];
    sa[threadIdx.y][threadIdx.x] = a;
    sb[threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y == 0) {
        for (int l = 1; l < LANES; l++) {
            a += sa[l][threadIdx.x];
            b += sb[l][threadIdx.x];
        }
    }
}

/* ---- batch norm ---------------------------------------------------------------------- */

/* part (parts, C): sums of d and d^2, d = x - x[0] (cpu.c's shift by the first row) */
static __global__ void bn_stats_part(double *part, double *part_sq, const float *in, size_t rows, int C,
                                     size_t part_rows)
{
    int c = blockIdx.x * TILE_C + threadIdx.x;
    size_t r0 = blockIdx.y * part_rows, r1 = r0 + part_rows < rows ? r0 + part_rows : rows;
    double a = 0, b = 0;
    if (c < C) {
        float shift0 = in[c];
        for (size_t r = r0 + threadIdx.y; r < r1; r += LANES) {
            double d = (double)in[r * C + c] - shift0;
            a += d;
            b += d * d;
        }
    }
    lanes_sum2(a, b);
    if (threadIdx.y == 0 && c < C) {
        part[blockIdx.y * (size_t)C + c] = a;
        part_sq[blockIdx.y * (size_t)C + c] = b;
    }
}

static __global__ void bn_stats_finish(float *scale, float *shift, float *save_mean, float *save_rstd,
                                       float *running_mean, float *running_var, const double *part,
                                       const double *part_sq, int nparts, const float *in, const float *gamma,
                                       const float *beta, size_t rows, int C, float momentum, float eps)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double s = 0, ss = 0;
    for (int p = 0; p < nparts; p++) {
        s += part[(size_t)p * C + c];
        ss += part_sq[(size_t)p * C + c];
    }
    double md = s / (double)rows;
    double v = ss / (double)rows - md * md;
    v = v > 0.0 ? v : 0.0;
    double mean = md + in[c];
    float mean_f = (float)mean, rstd_f = (float)(1.0 / sqrt(v + eps));
    if (save_mean) save_mean[c] = mean_f;
    if (save_rstd) save_rstd[c] = rstd_f;
    double unbiased = rows > 1 ? v * (double)rows / (double)(rows - 1) : v;
    if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
    if (running_var) running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * unbiased);
    double k = (gamma ? gamma[c] : 1.0) * (double)rstd_f;
    scale[c] = (float)k;
    shift[c] = (float)((beta ? beta[c] : 0.0) - (double)mean_f * k);
}

/* the training forward's scale and shift from saved statistics (cpu.c's train_scale_shift) */
static __global__ void bn_saved_scale_shift(float *scale, float *shift, const float *mean, const float *rstd,
                                            const float *gamma, const float *beta, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double k = (gamma ? gamma[c] : 1.0) * (double)rstd[c];
    scale[c] = (float)k;
    shift[c] = (float)((beta ? beta[c] : 0.0) - (double)mean[c] * k);
}

static __global__ void bn_eval_scale_shift(float *scale, float *shift, const float *running_mean,
                                           const float *running_var, const float *gamma, const float *beta, int C,
                                           float eps)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double k = (gamma ? gamma[c] : 1.0) / sqrt((double)running_var[c] + eps);
    scale[c] = (float)k;
    shift[c] = (float)((beta ? beta[c] : 0.0) - running_mean[c] * k);
}

static __global__ void scale_shift_kernel(float *out, const float *in, const float *scale, const float *shift,
                                          size_t n, int C)
{
    GRID_STRIDE(i, n)
    {
        int c = (int)(i % C);
        out[i] = __fadd_rn(__fmul_rn(in[i], scale[c]), shift[c]);
    }
}

static unsigned chan_blocks(int C) { return (unsigned)((C + 127) / 128); }

static void scale_shift(float *out, const float *in, const float *scale, const float *shift, size_t rows, int C)
{
    size_t n = rows * (size_t)C;
    if (n == 0) return;
    scale_shift_kernel<<<comine_cuda_blocks(n, 256), 256>>>(out, in, scale, shift, n, C);
    CUDA_LAUNCH_CHECK("scale_shift_kernel");
}

extern "C" void comine_cuda_batchnorm_forward(float *out, float *save_mean, float *save_rstd, float *running_mean,
                                              float *running_var, const float *in, const float *gamma,
                                              const float *beta, size_t rows, int C, bool training, float momentum,
                                              float eps)
{
    if (C == 0) return;
    parts_t p = make_parts(rows);
    float *ss;
    double *part = parts_scratch(2, p, C, 2 * (size_t)C, &ss);
    float *scale = ss, *shift = ss + C;
    if (!training) {
        bn_eval_scale_shift<<<chan_blocks(C), 128>>>(scale, shift, running_mean, running_var, gamma, beta, C, eps);
        CUDA_LAUNCH_CHECK("bn_eval_scale_shift");
        scale_shift(out, in, scale, shift, rows, C);
        return;
    }
    if (rows == 0) return;
    double *part_sq = part + (size_t)p.n * C;
    bn_stats_part<<<parts_grid(p, C), dim3(TILE_C, LANES)>>>(part, part_sq, in, rows, C, p.rows);
    CUDA_LAUNCH_CHECK("bn_stats_part");
    bn_stats_finish<<<chan_blocks(C), 128>>>(scale, shift, save_mean, save_rstd, running_mean, running_var, part,
                                             part_sq, p.n, in, gamma, beta, rows, C, momentum, eps);
    CUDA_LAUNCH_CHECK("bn_stats_finish");
    scale_shift(out, in, scale, shift, rows, C);
}

extern "C" void comine_cuda_batchnorm_apply(float *out, const float *in, const float *save_mean,
                                            const float *save_rstd, const float *gamma, const float *beta,
                                            size_t rows, int C)
{
    if (C == 0 || rows == 0) return;
    float *ss;
    parts_scratch(0, make_parts(1), C, 2 * (size_t)C, &ss);
    bn_saved_scale_shift<<<chan_blocks(C), 128>>>(ss, ss + C, save_mean, save_rstd, gamma, beta, C);
    CUDA_LAUNCH_CHECK("bn_saved_scale_shift");
    scale_shift(out, in, ss, ss + C, rows, C);
}

/* part (parts, C): sums of dy and of dy (x - mean) (x - mean in float, as cpu.c) */
static __global__ void bn_bwd_part(double *part, double *part_xmu, const float *dout, const float *in,
                                   const float *save_mean, size_t rows, int C, size_t part_rows)
{
    int c = blockIdx.x * TILE_C + threadIdx.x;
    size_t r0 = blockIdx.y * part_rows, r1 = r0 + part_rows < rows ? r0 + part_rows : rows;
    double a = 0, b = 0;
    if (c < C) {
        float m = save_mean[c];
        for (size_t r = r0 + threadIdx.y; r < r1; r += LANES) {
            float dy = dout[r * C + c];
            a += dy;
            b += (double)dy * (double)__fsub_rn(in[r * C + c], m);
        }
    }
    lanes_sum2(a, b);
    if (threadIdx.y == 0 && c < C) {
        part[blockIdx.y * (size_t)C + c] = a;
        part_xmu[blockIdx.y * (size_t)C + c] = b;
    }
}

static __global__ void bn_bwd_finish(float *ka, float *kb, float *kc, float *dgamma, float *dbeta, const double *part,
                                     const double *part_xmu, int nparts, const float *save_mean,
                                     const float *save_rstd, const float *gamma, size_t rows, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double sum_dy = 0, sum_dy_xmu = 0;
    for (int p = 0; p < nparts; p++) {
        sum_dy += part[(size_t)p * C + c];
        sum_dy_xmu += part_xmu[(size_t)p * C + c];
    }
    double rstd = save_rstd[c];
    if (dgamma) dgamma[c] += (float)(sum_dy_xmu * rstd);
    if (dbeta) dbeta[c] += (float)sum_dy;
    double a = (gamma ? gamma[c] : 1.0) * rstd;
    double k3 = rstd * rstd * sum_dy_xmu / (double)rows;
    ka[c] = (float)a;
    kb[c] = (float)(a * k3);
    kc[c] = (float)(a * (k3 * save_mean[c] - sum_dy / (double)rows));
}

/* dinp = (or +=) ka dy - kb x + kc */
static __global__ void bn_bwd_apply(float *dinp, const float *dout, const float *in, const float *ka, const float *kb,
                                    const float *kc, size_t n, int C, bool overwrite)
{
    GRID_STRIDE(i, n)
    {
        int c = (int)(i % C);
        float v = __fadd_rn(__fsub_rn(__fmul_rn(ka[c], dout[i]), __fmul_rn(kb[c], in[i])), kc[c]);
        dinp[i] = overwrite ? v : __fadd_rn(dinp[i], v);
    }
}

static void batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in,
                               const float *save_mean, const float *save_rstd, const float *gamma, size_t rows, int C,
                               bool overwrite)
{
    if (rows == 0 || C == 0) return;
    parts_t p = make_parts(rows);
    float *k;
    double *part = parts_scratch(2, p, C, 3 * (size_t)C, &k);
    double *part_xmu = part + (size_t)p.n * C;
    bn_bwd_part<<<parts_grid(p, C), dim3(TILE_C, LANES)>>>(part, part_xmu, dout, in, save_mean, rows, C, p.rows);
    CUDA_LAUNCH_CHECK("bn_bwd_part");
    bn_bwd_finish<<<chan_blocks(C), 128>>>(k, k + C, k + 2 * C, dgamma, dbeta, part, part_xmu, p.n, save_mean,
                                           save_rstd, gamma, rows, C);
    CUDA_LAUNCH_CHECK("bn_bwd_finish");
    if (!dinp) return;
    size_t n = rows * (size_t)C;
    bn_bwd_apply<<<comine_cuda_blocks(n, 256), 256>>>(dinp, dout, in, k, k + C, k + 2 * C, n, C, overwrite);
    CUDA_LAUNCH_CHECK("bn_bwd_apply");
}

extern "C" void comine_cuda_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                                               const float *in, const float *save_mean, const float *save_rstd,
                                               const float *gamma, size_t rows, int C)
{
    batchnorm_backward(dinp, dgamma, dbeta, dout, in, save_mean, save_rstd, gamma, rows, C, false);
}

extern "C" void comine_cuda_batchnorm_backward_write(float *dinp, float *dgamma, float *dbeta, const float *dout,
                                                     const float *in, const float *save_mean, const float *save_rstd,
                                                     const float *gamma, size_t rows, int C)
{
    batchnorm_backward(dinp, dgamma, dbeta, dout, in, save_mean, save_rstd, gamma, rows, C, true);
}

/* ---- activations --------------------------------------------------------------------- */

static __global__ void prelu_forward_kernel(float *out, const float *in, const float *alpha, size_t n, int C)
{
    GRID_STRIDE(i, n)
    {
        float x = in[i];
        float pos = x > 0.0f ? x : 0.0f, neg = x > 0.0f ? 0.0f : x;
        out[i] = __fadd_rn(pos, __fmul_rn(alpha[i % C], neg));
    }
}

extern "C" void comine_cuda_prelu_forward(float *out, const float *in, const float *alpha, size_t rows, int C)
{
    size_t n = rows * (size_t)C;
    if (n == 0) return;
    prelu_forward_kernel<<<comine_cuda_blocks(n, 256), 256>>>(out, in, alpha, n, C);
    CUDA_LAUNCH_CHECK("prelu_forward_kernel");
}

/* dinp (or NULL) = / += slope dy; part (parts, C) = sums of min(x, 0) dy */
static __global__ void prelu_bwd_part(double *part, float *dinp, const float *dout, const float *in,
                                      const float *alpha, size_t rows, int C, size_t part_rows, bool overwrite)
{
    int c = blockIdx.x * TILE_C + threadIdx.x;
    size_t r0 = blockIdx.y * part_rows, r1 = r0 + part_rows < rows ? r0 + part_rows : rows;
    double a = 0, unused = 0;
    if (c < C) {
        float al = alpha[c];
        for (size_t r = r0 + threadIdx.y; r < r1; r += LANES) {
            size_t i = r * C + c;
            float x = in[i], dy = dout[i];
            bool pos = x > 0.0f;
            float slope = pos ? 1.0f : al, xneg = pos ? 0.0f : x;
            if (dinp) dinp[i] = overwrite ? __fmul_rn(slope, dy) : __fadd_rn(dinp[i], __fmul_rn(slope, dy));
            a += (double)__fmul_rn(xneg, dy);
        }
    }
    lanes_sum2(a, unused);
    if (threadIdx.y == 0 && c < C) part[blockIdx.y * (size_t)C + c] = a;
}

static __global__ void prelu_bwd_input(float *dinp, const float *dout, const float *in, const float *alpha, size_t n,
                                       int C, bool overwrite)
{
    GRID_STRIDE(i, n)
    {
        float v = __fmul_rn(in[i] > 0.0f ? 1.0f : alpha[i % C], dout[i]);
        dinp[i] = overwrite ? v : __fadd_rn(dinp[i], v);
    }
}

/* dst[c] += (float) sum of the parts of column c, in order */
static __global__ void parts_finish(float *dst, const double *part, int nparts, int C)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double s = 0;
    for (int p = 0; p < nparts; p++) s += part[(size_t)p * C + c];
    dst[c] += (float)s;
}

static void prelu_backward(float *dinp, float *dalpha, const float *dout, const float *in, const float *alpha,
                           size_t rows, int C, bool overwrite)
{
    if (rows == 0 || C == 0) return;
    size_t n = rows * (size_t)C;
    if (!dalpha) {
        if (!dinp) return;
        prelu_bwd_input<<<comine_cuda_blocks(n, 256), 256>>>(dinp, dout, in, alpha, n, C, overwrite);
        CUDA_LAUNCH_CHECK("prelu_bwd_input");
        return;
    }
    parts_t p = make_parts(rows);
    double *part = parts_scratch(1, p, C, 0, NULL);
    prelu_bwd_part<<<parts_grid(p, C), dim3(TILE_C, LANES)>>>(part, dinp, dout, in, alpha, rows, C, p.rows,
                                                              overwrite);
    CUDA_LAUNCH_CHECK("prelu_bwd_part");
    parts_finish<<<chan_blocks(C), 128>>>(dalpha, part, p.n, C);
    CUDA_LAUNCH_CHECK("parts_finish");
}

extern "C" void comine_cuda_prelu_backward(float *dinp, float *dalpha, const float *dout, const float *in,
                                           const float *alpha, size_t rows, int C)
{
    prelu_backward(dinp, dalpha, dout, in, alpha, rows, C, false);
}

extern "C" void comine_cuda_prelu_backward_write(float *dinp, float *dalpha, const float *dout, const float *in,
                                                 const float *alpha, size_t rows, int C)
{
    prelu_backward(dinp, dalpha, dout, in, alpha, rows, C, true);
}

static __global__ void relu_forward_kernel(float *out, const float *in, size_t n)
{
    GRID_STRIDE(i, n) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

static __global__ void relu_backward_kernel(float *dinp, const float *dout, const float *in, size_t n)
{
    GRID_STRIDE(i, n) dinp[i] = __fadd_rn(dinp[i], in[i] > 0.0f ? dout[i] : 0.0f);
}

extern "C" void comine_cuda_relu_forward(float *out, const float *in, size_t n)
{
    if (n == 0) return;
    relu_forward_kernel<<<comine_cuda_blocks(n, 256), 256>>>(out, in, n);
    CUDA_LAUNCH_CHECK("relu_forward_kernel");
}

extern "C" void comine_cuda_relu_backward(float *dinp, const float *dout, const float *in, size_t n)
{
    if (n == 0) return;
    relu_backward_kernel<<<comine_cuda_blocks(n, 256), 256>>>(dinp, dout, in, n);
    CUDA_LAUNCH_CHECK("relu_backward_kernel");
}

/* ---- per-channel vectors ------------------------------------------------------------- */

static __global__ void add_bias_kernel(float *out, const float *bias, size_t n, int C)
{
    GRID_STRIDE(i, n) out[i] = __fadd_rn(out[i], bias[i % C]);
}

extern "C" void comine_cuda_add_bias(float *out, const float *bias, size_t rows, int C)
{
    size_t n = rows * (size_t)C;
    if (n == 0) return;
    add_bias_kernel<<<comine_cuda_blocks(n, 256), 256>>>(out, bias, n, C);
    CUDA_LAUNCH_CHECK("add_bias_kernel");
}

static __global__ void colsum_part(double *part, const float *src, size_t rows, int C, size_t part_rows)
{
    int c = blockIdx.x * TILE_C + threadIdx.x;
    size_t r0 = blockIdx.y * part_rows, r1 = r0 + part_rows < rows ? r0 + part_rows : rows;
    double a = 0, unused = 0;
    if (c < C)
        for (size_t r = r0 + threadIdx.y; r < r1; r += LANES) a += src[r * C + c];
    lanes_sum2(a, unused);
    if (threadIdx.y == 0 && c < C) part[blockIdx.y * (size_t)C + c] = a;
}

extern "C" void comine_cuda_accumulate_colsum(float *dst, const float *src, size_t rows, int C)
{
    if (rows == 0 || C == 0) return;
    parts_t p = make_parts(rows);
    double *part = parts_scratch(1, p, C, 0, NULL);
    colsum_part<<<parts_grid(p, C), dim3(TILE_C, LANES)>>>(part, src, rows, C, p.rows);
    CUDA_LAUNCH_CHECK("colsum_part");
    parts_finish<<<chan_blocks(C), 128>>>(dst, part, p.n, C);
    CUDA_LAUNCH_CHECK("parts_finish");
}

/* ---- dropout (the mask comes from the host: cuda_backend.c) -------------------------- */

static __global__ void dropout_apply_kernel(float *out, const float *in, const uint8_t *mask, size_t n, float scale)
{
    GRID_STRIDE(i, n) out[i] = __fmul_rn(in[i], __fmul_rn((float)mask[i], scale));
}

static __global__ void dropout_backward_kernel(float *dinp, const float *dout, const uint8_t *mask, size_t n,
                                               float scale)
{
    GRID_STRIDE(i, n) dinp[i] = __fadd_rn(dinp[i], __fmul_rn(dout[i], __fmul_rn((float)mask[i], scale)));
}

extern "C" void comine_cuda_dropout_apply(float *out, const float *in, const uint8_t *mask, size_t n, float scale)
{
    if (n == 0) return;
    dropout_apply_kernel<<<comine_cuda_blocks(n, 256), 256>>>(out, in, mask, n, scale);
    CUDA_LAUNCH_CHECK("dropout_apply_kernel");
}

extern "C" void comine_cuda_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p)
{
    if (n == 0 || p >= 1.0f) return;
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    dropout_backward_kernel<<<comine_cuda_blocks(n, 256), 256>>>(dinp, dout, mask, n, scale);
    CUDA_LAUNCH_CHECK("dropout_backward_kernel");
}

/* ---- element-wise -------------------------------------------------------------------- */

static __global__ void add_kernel(float *out, const float *a, const float *b, size_t n)
{
    GRID_STRIDE(i, n) out[i] = __fadd_rn(a[i], b[i]);
}

extern "C" void comine_cuda_add(float *out, const float *a, const float *b, size_t n)
{
    if (n == 0) return;
    add_kernel<<<comine_cuda_blocks(n, 256), 256>>>(out, a, b, n);
    CUDA_LAUNCH_CHECK("add_kernel");
}

extern "C" void comine_cuda_accumulate(float *dst, const float *src, size_t n)
{
    if (n == 0) return;
    add_kernel<<<comine_cuda_blocks(n, 256), 256>>>(dst, dst, src, n);
    CUDA_LAUNCH_CHECK("add_kernel");
}

/* ---- SGD (cpu.c's formula, each product and sum rounded as there) -------------------- */

static __global__ void sgd_momentum_kernel(float *params, float *buf, const float *grads, size_t n, float lr,
                                           float momentum, float weight_decay)
{
    GRID_STRIDE(i, n)
    {
        float g = __fadd_rn(grads[i], __fmul_rn(weight_decay, params[i]));
        float v = __fadd_rn(__fmul_rn(momentum, buf[i]), g);
        buf[i] = v;
        params[i] = __fsub_rn(params[i], __fmul_rn(lr, v));
    }
}

static __global__ void sgd_plain_kernel(float *params, const float *grads, size_t n, float lr, float weight_decay)
{
    GRID_STRIDE(i, n)
    {
        float g = __fadd_rn(grads[i], __fmul_rn(weight_decay, params[i]));
        params[i] = __fsub_rn(params[i], __fmul_rn(lr, g));
    }
}

extern "C" void comine_cuda_sgd_step(float *params, float *momentum_buf, const float *grads, size_t n, float lr,
                                     float momentum, float weight_decay)
{
    if (n == 0) return;
    if (momentum_buf && momentum != 0.0f)
        sgd_momentum_kernel<<<comine_cuda_blocks(n, 256), 256>>>(params, momentum_buf, grads, n, lr, momentum,
                                                                 weight_decay);
    else
        sgd_plain_kernel<<<comine_cuda_blocks(n, 256), 256>>>(params, grads, n, lr, weight_decay);
    CUDA_LAUNCH_CHECK("sgd_kernel");
}
