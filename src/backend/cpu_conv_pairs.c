/* cpu_conv_pairs.c: the forward of a grouped convolution with two input and two output
 * channels per group (MobileFaceNet's 3x3 "conv_23" layer: 128 channels in 64 groups), a
 * direct NHWC kernel.  oneDNN 2.6 runs that geometry by padding each group's 2 channels
 * to a block of 16 (64 times the work: about 5 GFLOP/s on this CPU) or through its gemm
 * fallback; here each output pixel is OC accumulators and each tap two multiply-adds per
 * channel: out[c] += wa[c] in[c & ~1] + wb[c] in[c | 1], the duplicated even and odd
 * input lanes being one shuffle each (moveldup / movehdup); the AVX-512 row instead adds
 * w_same[c] in[c] + w_other[c] in[c ^ 1], one shuffle in all.
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
__attribute__((target("avx2,fma"))) static void pairs_row_avx2(const pairs_job *j, int r)
{
    pairs_row(j, r, pair_taps_avx2);
}

/* The AVX-512 row: two output pixels at a time, the accumulators of NV 16-channel vectors
 * of both kept in registers over the taps (each weight vector loaded once for the two
 * pixels), then PReLU and the residual as in pairs_row.  Its weights are laid out by lane
 * (wt_lanes below): each tap is acc += w_same x + w_other swap(x), where swap exchanges the
 * two lanes of every pair, one shuffle per input vector instead of pair_taps_avx512's two
 * (10-15% faster at 56x56, 128 channels, 4 images, one thread); the odd lanes add their
 * two products in the other order than pair_taps_avx512, which rounds differently. */
#define SWAP_PAIRS 0xB1 /* lanes (1, 0, 3, 2) of each 128-bit quarter */
static inline __attribute__((always_inline, target("avx512f"))) void
pairs_block_avx512(const pairs_job *j, int n, int oh, int ow, int np, int c0, const int NV)
{
    const comine_conv_geom *g = j->g;
    const int C = g->C, OC = g->OC;
    __m512 a0[8], a1[8];
    for (int v = 0; v < NV; v++) {
        a0[v] = j->bias ? _mm512_loadu_ps(j->bias + c0 + 16 * v) : _mm512_setzero_ps();
        a1[v] = a0[v];
    }
    for (int kh = 0; kh < g->KH; kh++) {
        int ih = oh * g->stride - g->pad + kh;
        if (ih < 0 || ih >= g->H) continue;
        const float *row = j->in + ((size_t)n * g->H + ih) * g->W * C + c0;
        for (int kw = 0; kw < g->KW; kw++) {
            int iw0 = ow * g->stride - g->pad + kw, iw1 = iw0 + g->stride;
            bool in0 = iw0 >= 0 && iw0 < g->W, in1 = np == 2 && iw1 >= 0 && iw1 < g->W;
            const float *wa = j->wt + (size_t)(kh * g->KW + kw) * 2 * OC + c0, *wb = wa + OC;
            const float *x0 = row + (size_t)iw0 * C, *x1 = row + (size_t)iw1 * C;
            if (in0 && in1) {
                for (int v = 0; v < NV; v++) {
                    __m512 va = _mm512_loadu_ps(wa + 16 * v), vb = _mm512_loadu_ps(wb + 16 * v);
                    __m512 u = _mm512_loadu_ps(x0 + 16 * v), w = _mm512_loadu_ps(x1 + 16 * v);
                    a0[v] = _mm512_fmadd_ps(va, u, a0[v]);
                    a0[v] = _mm512_fmadd_ps(vb, _mm512_permute_ps(u, SWAP_PAIRS), a0[v]);
                    a1[v] = _mm512_fmadd_ps(va, w, a1[v]);
                    a1[v] = _mm512_fmadd_ps(vb, _mm512_permute_ps(w, SWAP_PAIRS), a1[v]);
                }
            } else if (in0) {
                for (int v = 0; v < NV; v++) {
                    __m512 u = _mm512_loadu_ps(x0 + 16 * v);
                    a0[v] = _mm512_fmadd_ps(_mm512_loadu_ps(wa + 16 * v), u, a0[v]);
                    a0[v] = _mm512_fmadd_ps(_mm512_loadu_ps(wb + 16 * v), _mm512_permute_ps(u, SWAP_PAIRS), a0[v]);
                }
            } else if (in1) {
                for (int v = 0; v < NV; v++) {
                    __m512 w = _mm512_loadu_ps(x1 + 16 * v);
                    a1[v] = _mm512_fmadd_ps(_mm512_loadu_ps(wa + 16 * v), w, a1[v]);
                    a1[v] = _mm512_fmadd_ps(_mm512_loadu_ps(wb + 16 * v), _mm512_permute_ps(w, SWAP_PAIRS), a1[v]);
                }
            }
        }
    }
    for (int p = 0; p < np; p++) {
        const size_t o_off = (((size_t)n * g->OH + oh) * g->OW + ow + p) * OC + c0;
        float acc[128];
        if (p == 0)
            for (int v = 0; v < NV; v++) _mm512_storeu_ps(acc + 16 * v, a0[v]);
        else
            for (int v = 0; v < NV; v++) _mm512_storeu_ps(acc + 16 * v, a1[v]);
        const int nc = 16 * NV;
        if (j->alpha)
            for (int c = 0; c < nc; c++) {
                float x = acc[c], al = j->alpha[c0 + c], pos = x > 0.0f ? x : 0.0f, neg = x > 0.0f ? 0.0f : x;
                acc[c] = pos + al * neg;
            }
        float *y = j->out + o_off;
        if (j->residual)
            for (int c = 0; c < nc; c++) y[c] = acc[c] + j->residual[o_off + c];
        else memcpy(y, acc, (size_t)nc * sizeof(float));
    }
}

__attribute__((target("avx512f"))) static void pairs_row_avx512(const pairs_job *j, int r)
{
    const comine_conv_geom *g = j->g;
    if (g->OC % 16) {
        pairs_row(j, r, pair_taps_avx512);
        return;
    }
    int n = r / g->OH, oh = r % g->OH;
    for (int ow = 0; ow < g->OW; ow += 2) {
        int np = g->OW - ow < 2 ? 1 : 2;
        for (int c0 = 0; c0 < g->OC; c0 += 128) {
            switch ((g->OC - c0 < 128 ? g->OC - c0 : 128) / 16) {
            case 1: pairs_block_avx512(j, n, oh, ow, np, c0, 1); break;
            case 2: pairs_block_avx512(j, n, oh, ow, np, c0, 2); break;
            case 3: pairs_block_avx512(j, n, oh, ow, np, c0, 3); break;
            case 4: pairs_block_avx512(j, n, oh, ow, np, c0, 4); break;
            case 5: pairs_block_avx512(j, n, oh, ow, np, c0, 5); break;
            case 6: pairs_block_avx512(j, n, oh, ow, np, c0, 6); break;
            case 7: pairs_block_avx512(j, n, oh, ow, np, c0, 7); break;
            default: pairs_block_avx512(j, n, oh, ow, np, c0, 8); break;
            }
        }
    }
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
    float *wt = comine_cpu_thread_buf(CPU_BUF_PAIRS, n_wt);
    pairs_row_fn *row = pairs_row_for_cpu();
    /* wt_lanes (the AVX-512 row's, OC a multiple of 16): wt[k][0][oc] the coefficient of
     * oc's own input lane, wt[k][1][oc] of the other lane of its pair */
    bool wt_lanes = false;
#ifdef COMINE_CPU_X86
    wt_lanes = row == pairs_row_avx512 && OC % 16 == 0;
#endif
    for (int oc = 0; oc < OC; oc++)
        for (int j = 0; j < 2; j++) {
            int from = wt_lanes ? j ^ (oc & 1) : j;
            for (int k = 0; k < K2; k++) wt[((size_t)k * 2 + j) * OC + oc] = weight[((size_t)oc * 2 + from) * K2 + k];
        }
    pairs_job job = {g, out, in, wt, bias, alpha, residual};
    const int rows = N * g->OH;
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static) if ((size_t)rows * g->OW * OC > 32768)
#endif
    for (int r = 0; r < rows; r++) row(&job, r);
}
