/* cpu_conv_dw.c: the eval forward of a depthwise convolution (one input and one output
 * channel per group: MobileFaceNet's 3x3 and 7x7 "dw" layers), a direct NHWC kernel for
 * AVX-512 and one for AVX2 that run two PReLUs inside them:
 *   out = prelu(conv(prelu(in, in_alpha), weight) + bias, alpha) + residual
 * in_alpha, alpha and residual optional.  The input PReLU is the epilogue of the
 * convolution before (model_exec.c hands it over when this layer alone reads its output),
 * so neither PReLU costs a pass over memory of its own.
 * Each thread takes a run of output rows.  The K input rows an output row reads are kept in
 * a ring of K rows of W + 2 pad pixels (the padding columns zero, one zero row for the
 * padding rows), each input row copied in once with the input PReLU applied and laid out
 * by blocks of 16 channels (8 with AVX2); then per block the K * K weight vectors stay in registers
 * while the block's outputs of the row are computed, four at a time, every tap a
 * multiply-add with its operand in the ring (in L1 or L2).  (Read in NHWC instead, with a
 * stride of C floats between pixels, the ring's lines fall into a few L1 sets when C is a
 * power of two: 1.5-2 times slower.)
 * Where it runs: AVX-512 CPUs with channels a multiple of 16, AVX2 + FMA CPUs with channels
 * a multiple of 8 (elsewhere oneDNN's kernel and an epilogue pass).  Its sums run bias
 * first, then the taps row by row, in float32 with one rounding per multiply-add: another
 * order than oneDNN's, the same floats in both versions. */
#include "backend/cpu.h"
#include "core/cpu_dispatch.h"

#include <string.h>
#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif
#ifdef COMINE_CPU_X86
#include <immintrin.h>
#endif

enum { DW_MAX_K = 7 };

bool comine_cpu_conv_dw_supported(const comine_conv_geom *g)
{
    bool geometry = g->groups > 1 && g->C == g->groups && g->OC == g->groups && g->C % 8 == 0 &&
                    g->KH == g->KW && g->KH <= DW_MAX_K && g->pad < g->KH && g->stride <= g->KH;
#ifdef COMINE_CPU_X86
    int level = comine_cpu_x86_level();
    return geometry && (level >= 4 ? g->C % 16 == 0 : level == 3);
#else
    (void)geometry;
    return false;
#endif
}

#ifdef COMINE_CPU_X86
/* what a run of rows needs: out (N, OH, OW, C), in (N, H, W, C), wt (K * K, C) */
typedef struct dw_job {
    const comine_conv_geom *g;
    float *out;
    const float *in, *wt, *bias, *in_alpha, *alpha, *residual;
} dw_job;

__attribute__((target("avx512f"))) static inline __m512 prelu16(__m512 v, __m512 a)
{
    return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LE_OQ), v, a);
}

/* ring row `dst` = prelu(input row ih of image n, in_alpha), in blocks of 16 channels:
 * dst[cb][x][0 .. 16) holds channels 16 cb .. of padded column x (W + 2 pad columns, the
 * padding zero), so that a block's pixels are 64 bytes apart */
__attribute__((target("avx512f"))) static void fill_row(const dw_job *j, float *restrict dst, int n, int ih)
{
    const comine_conv_geom *g = j->g;
    const int C = g->C, pad = g->pad, W = g->W, WP = W + 2 * pad;
    const float *restrict src = j->in + ((size_t)n * g->H + ih) * W * C;
    const float *restrict a = j->in_alpha;
    const __m512 zero = _mm512_setzero_ps();
    for (int cb = 0; cb < C / 16; cb++) {
        float *blk = dst + (size_t)cb * WP * 16;
        for (int x = 0; x < pad; x++) {
            _mm512_storeu_ps(blk + 16 * x, zero);
            _mm512_storeu_ps(blk + 16 * (W + pad + x), zero);
        }
    }
    for (int x = 0; x < W; x++) {
        const float *px = src + (size_t)x * C;
        float *to = dst + 16 * (size_t)(x + pad);
        for (int cb = 0; cb < C / 16; cb++) {
            __m512 v = _mm512_loadu_ps(px + 16 * cb);
            if (a) v = prelu16(v, _mm512_loadu_ps(a + 16 * cb));
            _mm512_storeu_ps(to + (size_t)cb * WP * 16, v);
        }
    }
}

/* One output row, channel block cb, from the ring rows `rows` (fill_row's layout): the
 * K * K weight vectors in registers, four output pixels at a time, every tap a multiply-add
 * with its operand at a fixed offset from a row pointer (K and S constant where inlined for
 * MobileFaceNet's shapes).  The output PReLU always runs (slope 1 without one: the
 * identity, exactly). */
static inline __attribute__((always_inline, target("avx512f"))) void
dw_block(const dw_job *j, const float *const *rows, float *restrict y, const float *restrict res, int cb,
         const int K, const int S)
{
    const comine_conv_geom *g = j->g;
    const int C = g->C, OW = g->OW, c0 = 16 * cb;
    const size_t blk = (size_t)cb * (g->W + 2 * g->pad) * 16;
    __m512 w[DW_MAX_K * DW_MAX_K];
    for (int k = 0; k < K * K; k++) w[k] = _mm512_loadu_ps(j->wt + (size_t)k * C + c0);
    const __m512 b = j->bias ? _mm512_loadu_ps(j->bias + c0) : _mm512_setzero_ps();
    const __m512 al = j->alpha ? _mm512_loadu_ps(j->alpha + c0) : _mm512_set1_ps(1.0f);
    const float *rp[DW_MAX_K];
    for (int kh = 0; kh < K; kh++) rp[kh] = rows[kh] + blk;
    y += c0;
    if (res) res += c0;
    int ow = 0;
    for (; ow + 4 <= OW; ow += 4) {
        __m512 a0 = b, a1 = b, a2 = b, a3 = b;
        for (int kh = 0; kh < K; kh++) {
            const float *x = rp[kh] + (size_t)16 * S * ow;
            for (int kw = 0; kw < K; kw++) {
                const __m512 wk = w[kh * K + kw];
                a0 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(x + 16 * kw), a0);
                a1 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(x + 16 * (kw + S)), a1);
                a2 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(x + 16 * (kw + 2 * S)), a2);
                a3 = _mm512_fmadd_ps(wk, _mm512_loadu_ps(x + 16 * (kw + 3 * S)), a3);
            }
        }
        __m512 v[4] = {prelu16(a0, al), prelu16(a1, al), prelu16(a2, al), prelu16(a3, al)};
        for (int p = 0; p < 4; p++) {
            size_t o = (size_t)(ow + p) * C;
            if (res) v[p] = _mm512_add_ps(v[p], _mm512_loadu_ps(res + o));
            _mm512_storeu_ps(y + o, v[p]);
        }
    }
    for (; ow < OW; ow++) {
        __m512 a0 = b;
        for (int kh = 0; kh < K; kh++) {
            const float *x = rp[kh] + (size_t)16 * S * ow;
            for (int kw = 0; kw < K; kw++) a0 = _mm512_fmadd_ps(w[kh * K + kw], _mm512_loadu_ps(x + 16 * kw), a0);
        }
        __m512 v = prelu16(a0, al);
        size_t o = (size_t)ow * C;
        if (res) v = _mm512_add_ps(v, _mm512_loadu_ps(res + o));
        _mm512_storeu_ps(y + o, v);
    }
}

/* The AVX2 version: the same ring and order, blocks of 8 channels (pixels 32 bytes apart) */
__attribute__((target("avx2,fma"))) static inline __m256 prelu8(__m256 v, __m256 a)
{
    return _mm256_blendv_ps(v, _mm256_mul_ps(v, a), _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LE_OQ));
}

__attribute__((target("avx2,fma"))) static void fill_row8(const dw_job *j, float *restrict dst, int n, int ih)
{
    const comine_conv_geom *g = j->g;
    const int C = g->C, pad = g->pad, W = g->W, WP = W + 2 * pad;
    const float *restrict src = j->in + ((size_t)n * g->H + ih) * W * C;
    const float *restrict a = j->in_alpha;
    const __m256 zero = _mm256_setzero_ps();
    for (int cb = 0; cb < C / 8; cb++) {
        float *blk = dst + (size_t)cb * WP * 8;
        for (int x = 0; x < pad; x++) {
            _mm256_storeu_ps(blk + 8 * x, zero);
            _mm256_storeu_ps(blk + 8 * (W + pad + x), zero);
        }
    }
    for (int x = 0; x < W; x++) {
        const float *px = src + (size_t)x * C;
        float *to = dst + 8 * (size_t)(x + pad);
        for (int cb = 0; cb < C / 8; cb++) {
            __m256 v = _mm256_loadu_ps(px + 8 * cb);
            if (a) v = prelu8(v, _mm256_loadu_ps(a + 8 * cb));
            _mm256_storeu_ps(to + (size_t)cb * WP * 8, v);
        }
    }
}

static inline __attribute__((always_inline, target("avx2,fma"))) void
dw_block8(const dw_job *j, const float *const *rows, float *restrict y, const float *restrict res, int cb,
          const int K, const int S)
{
    const comine_conv_geom *g = j->g;
    const int C = g->C, OW = g->OW, c0 = 8 * cb;
    const size_t blk = (size_t)cb * (g->W + 2 * g->pad) * 8;
    __m256 w[DW_MAX_K * DW_MAX_K];
    for (int k = 0; k < K * K; k++) w[k] = _mm256_loadu_ps(j->wt + (size_t)k * C + c0);
    const __m256 b = j->bias ? _mm256_loadu_ps(j->bias + c0) : _mm256_setzero_ps();
    const __m256 al = j->alpha ? _mm256_loadu_ps(j->alpha + c0) : _mm256_set1_ps(1.0f);
    const float *rp[DW_MAX_K];
    for (int kh = 0; kh < K; kh++) rp[kh] = rows[kh] + blk;
    y += c0;
    if (res) res += c0;
    int ow = 0;
    for (; ow + 4 <= OW; ow += 4) {
        __m256 a0 = b, a1 = b, a2 = b, a3 = b;
        for (int kh = 0; kh < K; kh++) {
            const float *x = rp[kh] + (size_t)8 * S * ow;
            for (int kw = 0; kw < K; kw++) {
                const __m256 wk = w[kh * K + kw];
                a0 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(x + 8 * kw), a0);
                a1 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(x + 8 * (kw + S)), a1);
                a2 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(x + 8 * (kw + 2 * S)), a2);
                a3 = _mm256_fmadd_ps(wk, _mm256_loadu_ps(x + 8 * (kw + 3 * S)), a3);
            }
        }
        __m256 v[4] = {prelu8(a0, al), prelu8(a1, al), prelu8(a2, al), prelu8(a3, al)};
        for (int p = 0; p < 4; p++) {
            size_t o = (size_t)(ow + p) * C;
            if (res) v[p] = _mm256_add_ps(v[p], _mm256_loadu_ps(res + o));
            _mm256_storeu_ps(y + o, v[p]);
        }
    }
    for (; ow < OW; ow++) {
        __m256 a0 = b;
        for (int kh = 0; kh < K; kh++) {
            const float *x = rp[kh] + (size_t)8 * S * ow;
            for (int kw = 0; kw < K; kw++) a0 = _mm256_fmadd_ps(w[kh * K + kw], _mm256_loadu_ps(x + 8 * kw), a0);
        }
        __m256 v = prelu8(a0, al);
        size_t o = (size_t)ow * C;
        if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res + o));
        _mm256_storeu_ps(y + o, v);
    }
}

__attribute__((target("avx2,fma"))) static void dw_row8(const dw_job *j, const float *const *rows, float *y,
                                                        const float *res)
{
    const int K = j->g->KH, S = j->g->stride;
    for (int cb = 0; cb < j->g->C / 8; cb++) {
        if (K == 3 && S == 1) dw_block8(j, rows, y, res, cb, 3, 1);
        else if (K == 3 && S == 2) dw_block8(j, rows, y, res, cb, 3, 2);
        else dw_block8(j, rows, y, res, cb, K, S);
    }
}

__attribute__((target("avx512f"))) static void dw_row16(const dw_job *j, const float *const *rows, float *y,
                                                        const float *res)
{
    const int K = j->g->KH, S = j->g->stride;
    for (int cb = 0; cb < j->g->C / 16; cb++) {
        if (K == 3 && S == 1) dw_block(j, rows, y, res, cb, 3, 1);
        else if (K == 3 && S == 2) dw_block(j, rows, y, res, cb, 3, 2);
        else dw_block(j, rows, y, res, cb, K, S);
    }
}

/* output rows [r0, r1) (row r: image r / OH, row r % OH), ring: (K + 1) ring rows; wide:
 * the AVX-512 version (blocks of 16 channels), else AVX2 (blocks of 8) */
static void dw_rows(const dw_job *j, int r0, int r1, float *ring, bool wide)
{
    const comine_conv_geom *g = j->g;
    const int C = g->C, K = g->KH, S = g->stride;
    const size_t row_floats = (size_t)(g->W + 2 * g->pad) * C;
    float *zero = ring + (size_t)K * row_floats;
    memset(zero, 0, row_floats * sizeof(float));
    long held[DW_MAX_K]; /* the input row (n H + ih) each ring row holds, -1 none */
    for (int k = 0; k < K; k++) held[k] = -1;
    const float *rows[DW_MAX_K];
    for (int r = r0; r < r1; r++) {
        int n = r / g->OH, oh = r % g->OH;
        for (int kh = 0; kh < K; kh++) {
            int ih = oh * S - g->pad + kh;
            if (ih < 0 || ih >= g->H) {
                rows[kh] = zero;
                continue;
            }
            int slot = ih % K;
            long want = (long)n * g->H + ih;
            if (held[slot] != want) {
                if (wide) fill_row(j, ring + (size_t)slot * row_floats, n, ih);
                else fill_row8(j, ring + (size_t)slot * row_floats, n, ih);
                held[slot] = want;
            }
            rows[kh] = ring + (size_t)slot * row_floats;
        }
        size_t o_off = (size_t)r * g->OW * C;
        float *y = j->out + o_off;
        const float *res = j->residual ? j->residual + o_off : NULL;
        if (wide) dw_row16(j, rows, y, res);
        else dw_row8(j, rows, y, res);
    }
}
#endif

void comine_cpu_conv_dw_forward(const comine_conv_geom *g, float *out, const float *in, const float *in_alpha,
                                const float *weight, const float *bias, const float *alpha, const float *residual,
                                int N)
{
    COMINE_ASSERT(comine_cpu_conv_dw_supported(g));
#ifdef COMINE_CPU_X86
    const int C = g->C, K2 = g->KH * g->KW;
    /* wt[k][c] = weight[c][0][k] */
    float *wt = comine_cpu_thread_buf(CPU_BUF_DW_WEIGHTS, (size_t)K2 * C);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < K2; k++) wt[(size_t)k * C + c] = weight[(size_t)c * K2 + k];
    dw_job job = {g, out, in, wt, bias, in_alpha, alpha, residual};
    const bool wide = comine_cpu_x86_level() >= 4;
    const int rows = N * g->OH;
    const size_t ring_floats = (size_t)(g->KH + 1) * (g->W + 2 * g->pad) * C;
#ifdef COMINE_HAVE_OPENMP
    int threads = 1;
    if (!omp_in_parallel() && (size_t)rows * g->OW * C > 32768) threads = omp_get_max_threads();
    if (threads > rows) threads = rows;
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
        int t = 0, nt = 1;
#ifdef COMINE_HAVE_OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int r0 = (int)((long)rows * t / nt), r1 = (int)((long)rows * (t + 1) / nt);
        if (r0 < r1) dw_rows(&job, r0, r1, comine_cpu_thread_buf(CPU_BUF_DW_RING, ring_floats), wide);
    }
#else
    (void)out, (void)in, (void)in_alpha, (void)weight, (void)bias, (void)alpha, (void)residual, (void)N;
#endif
}
