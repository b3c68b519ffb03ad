/* cpu_conv_pairs.c: the forward of a grouped convolution with two input and two output
 * channels per group (MobileFaceNet's 3x3 "conv_23" layer: 128 channels in 64 groups), a
 * direct NHWC kernel.  oneDNN 2.6 runs that geometry by padding each group's 2 channels
 * to a block of 16 (64 times the work: about 5 GFLOP/s on this CPU) or through its gemm
 * fallback; here each output pixel is OC accumulators and each tap two multiply-adds per
 * channel: out[c] += wa[c] in[c & ~1] + wb[c] in[c | 1], the duplicated even and odd
 * input lanes being one shuffle each (moveldup / movehdup).
 * The taps are written three times, for AVX-512, for AVX2 with FMA and in plain C, and
 * the version the CPU runs is picked on each call (cpu_dispatch.h): a portable build
 * runs the same instructions as a native one.
 * Optional epilogue, in order: PReLU with per-channel slopes, then a residual add.
 * Assumes NHWC activations and PyTorch's weight layout (OC, 2, KH, KW). */
#include "backend/cpu.h"
#include "core/cpu_dispatch.h"

#include <string.h>
#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif
#ifdef COMINE_CPU_X86
#include <immintrin.h>
#endif

bool comine_cpu_conv_pairs_supported(const comine_conv_geom *g)
{
    return g->groups > 1 && g->C == 2 * g->groups && g->OC == 2 * g->groups;
}

static _Thread_local float *wt_buf;
static _Thread_local size_t wt_cap;

/* acc (n floats, n even) += wa * in[even lanes duplicated] + wb * in[odd lanes duplicated],
 * from lane c on */
static inline void pair_taps_plain(float *restrict acc, const float *restrict x, const float *restrict wa,
                                   const float *restrict wb, int c, int n)
{
    for (; c < n; c += 2) {
        float e = x[c], o = x[c + 1];
        acc[c] += wa[c] * e + wb[c] * o;
        acc[c + 1] += wa[c + 1] * e + wb[c + 1] * o;
    }
}

static inline void pair_taps_c(float *restrict acc, const float *restrict x, const float *restrict wa,
                               const float *restrict wb, int n)
{
    pair_taps_plain(acc, x, wa, wb, 0, n);
}

#ifdef COMINE_CPU_X86
__attribute__((target("avx512f"))) static inline void pair_taps_avx512(float *restrict acc, const float *restrict x,
                                                                       const float *restrict wa,
                                                                       const float *restrict wb, int n)
{
    int c = 0;
    for (; c + 16 <= n; c += 16) {
        __m512 v = _mm512_loadu_ps(x + c), a = _mm512_loadu_ps(acc + c);
        a = _mm512_fmadd_ps(_mm512_loadu_ps(wa + c), _mm512_moveldup_ps(v), a);
        a = _mm512_fmadd_ps(_mm512_loadu_ps(wb + c), _mm512_movehdup_ps(v), a);
        _mm512_storeu_ps(acc + c, a);
    }
    pair_taps_plain(acc, x, wa, wb, c, n);
}

__attribute__((target("avx2,fma"))) static inline void pair_taps_avx2(float *restrict acc, const float *restrict x,
                                                                      const float *restrict wa,
                                                                      const float *restrict wb, int n)
{
    int c = 0;
    for (; c + 8 <= n; c += 8) {
        __m256 v = _mm256_loadu_ps(x + c), a = _mm256_loadu_ps(acc + c);
        a = _mm256_fmadd_ps(_mm256_loadu_ps(wa + c), _mm256_moveldup_ps(v), a);
        a = _mm256_fmadd_ps(_mm256_loadu_ps(wb + c), _mm256_movehdup_ps(v), a);
        _mm256_storeu_ps(acc + c, a);
    }
    pair_taps_plain(acc, x, wa, wb, c, n);
}
#endif

/* what one output row needs: out (N, OH, OW, OC), in (N, H, W, C), wt (K2, 2, OC) (see
 * comine_cpu_conv_pairs_forward), bias / alpha (OC) and residual (like out) or NULL */
typedef struct pairs_job {
    const comine_conv_geom *g;
    float *out;
    const float *in, *wt, *bias, *alpha, *residual;
} pairs_job;

typedef void pair_taps_fn(float *restrict acc, const float *restrict x, const float *restrict wa,
                          const float *restrict wb, int n);

/* output row r (image r / OH, row r % OH), with `taps` inlined into each version below */
static inline __attribute__((always_inline)) void pairs_row(const pairs_job *j, int r, pair_taps_fn *taps)
{
    enum { CHUNK = 128 }; /* accumulators per pass: 8 AVX-512 registers' worth */
    const comine_conv_geom *g = j->g;
    const int C = g->C, OC = g->OC;
    int n = r / g->OH, oh = r % g->OH;
    float acc[CHUNK];
    for (int ow = 0; ow < g->OW; ow++) {
        size_t o_off = (((size_t)n * g->OH + oh) * g->OW + ow) * OC;
        for (int c0 = 0; c0 < OC; c0 += CHUNK) {
            int nc = OC - c0 < CHUNK ? OC - c0 : CHUNK;
            if (j->bias) memcpy(acc, j->bias + c0, (size_t)nc * sizeof(float));
            else memset(acc, 0, (size_t)nc * sizeof(float));
            for (int kh = 0; kh < g->KH; kh++) {
                int ih = oh * g->stride - g->pad + kh;
                if (ih < 0 || ih >= g->H) continue;
                for (int kw = 0; kw < g->KW; kw++) {
                    int iw = ow * g->stride - g->pad + kw;
                    if (iw < 0 || iw >= g->W) continue;
                    const float *x = j->in + (((size_t)n * g->H + ih) * g->W + iw) * C + c0;
                    const float *wa = j->wt + (size_t)(kh * g->KW + kw) * 2 * OC + c0;
                    taps(acc, x, wa, wa + OC, nc);
                }
            }
            float *y = j->out + o_off + c0;
            if (j->alpha)
                for (int c = 0; c < nc; c++) {
                    float v = acc[c], a = j->alpha[c0 + c], pos = v > 0.0f ? v : 0.0f, neg = v > 0.0f ? 0.0f : v;
                    acc[c] = pos + a * neg;
                }
            if (j->residual)
                for (int c = 0; c < nc; c++) y[c] = acc[c] + j->residual[o_off + c0 + c];
            else memcpy(y, acc, (size_t)nc * sizeof(float));
        }
    }
}

typedef void pairs_row_fn(const pairs_job *j, int r);

static void pairs_row_c(const pairs_job *j, int r) { pairs_row(j, r, pair_taps_c); }
#ifdef COMINE_CPU_X86
__attribute__((target("avx512f"))) static void pairs_row_avx512(const pairs_job *j, int r)
{
    pairs_row(j, r, pair_taps_avx512);
}
__attribute__((target("avx2,fma"))) static void pairs_row_avx2(const pairs_job *j, int r)
{
    pairs_row(j, r, pair_taps_avx2);
}
#endif

static pairs_row_fn *pairs_row_for_cpu(void)
{
#ifdef COMINE_CPU_X86
    int level = comine_cpu_x86_level();
    if (level >= 4) return pairs_row_avx512;
    if (level >= 3) return pairs_row_avx2;
#endif
    return pairs_row_c;
}

/* out (N, OH, OW, OC) = prelu(conv(in, weight) + bias) + residual; in (N, H, W, C),
 * weight (OC, 2, KH, KW), bias (OC) / alpha (OC) / residual (like out) or NULL. */
void comine_cpu_conv_pairs_forward(const comine_conv_geom *g, float *out, const float *in, const float *weight,
                                   const float *bias, const float *alpha, const float *residual, int N)
{
    COMINE_ASSERT(comine_cpu_conv_pairs_supported(g));
    const int OC = g->OC, K2 = g->KH * g->KW;
    /* wt[k][j][oc] = weight[oc][j][k]: the coefficient of input lane (oc & ~1) + j at tap k */
    size_t n_wt = (size_t)K2 * 2 * OC;
    if (n_wt > wt_cap) {
        comine_free_floats(wt_buf);
        wt_cap = n_wt;
        wt_buf = comine_alloc_floats(wt_cap);
    }
    float *wt = wt_buf;
    for (int oc = 0; oc < OC; oc++)
        for (int j = 0; j < 2; j++)
            for (int k = 0; k < K2; k++) wt[((size_t)k * 2 + j) * OC + oc] = weight[((size_t)oc * 2 + j) * K2 + k];
    pairs_job job = {g, out, in, wt, bias, alpha, residual};
    pairs_row_fn *row = pairs_row_for_cpu();
    const int rows = N * g->OH;
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static) if ((size_t)rows * g->OW * OC > 32768)
#endif
    for (int r = 0; r < rows; r++) row(&job, r);
}
