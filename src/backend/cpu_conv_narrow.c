/* cpu_conv_narrow.c: the eval forward of a network's first layer on RGB images (a dense
 * 3x3 convolution with 3 input channels, any stride and padding), a direct NHWC kernel for
 * AVX-512 with the epilogue (bias, PReLU, residual) applied in registers:
 *   out = prelu(conv(in, weight) + bias, alpha) + residual
 * oneDNN 2.6 runs MobileFaceNet's first layer (3 -> 128 channels, stride 2 at 112x112) at
 * about 64-80% of the FMA peak and its PReLU as a pass of its own over the largest
 * activation of the network.  Here a block of output pixels keeps the accumulators of up
 * to 128 output channels in registers over the 27 taps, each tap one broadcast input value
 * per pixel and one weight vector per 16 channels, read from a (27, OC) copy of the weights
 * that stays in L1: 2 pixels by up to 8 vectors, or 4 by 2 (32 channels) or 8 by 1 (16
 * channels, iresnet x0.25), so that at least 8 independent sums hide the latency of the
 * multiply-adds.  The input values come straight from the
 * NHWC input (a kernel row's 9 values are contiguous) where the pixels' windows lie inside
 * it, else from a copy with zeros for the padding.
 * Where it runs: AVX-512 CPUs, 3 input channels, 3x3, output channels a multiple of 16
 * (elsewhere oneDNN).  Its sums run bias first, then the taps in (kh, kw, c) order. */
#include "backend/cpu.h"
#include "core/cpu_dispatch.h"

#include <string.h>
#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif
#ifdef COMINE_CPU_X86
#include <immintrin.h>
#endif

enum { NARROW_C = 3, NARROW_K = 3, TAPS = NARROW_C * NARROW_K * NARROW_K, CHUNK = 128 };

bool comine_cpu_conv_narrow_supported(const comine_conv_geom *g)
{
    bool geometry = g->groups == 1 && g->C == NARROW_C && g->KH == NARROW_K && g->KW == NARROW_K &&
                    g->OC % 16 == 0;
#ifdef COMINE_CPU_X86
    return geometry && comine_cpu_x86_level() >= 4;
#else
    (void)geometry;
    return false;
#endif
}

#ifdef COMINE_CPU_X86
typedef struct narrow_job {
    const comine_conv_geom *g;
    float *out;
    const float *in, *wt, *bias, *alpha, *residual;
} narrow_job;

/* patch[ow][t] = the input value of tap t = (kh K + kw) C + c of output pixel ow of row
 * (n, oh), 0 in the padding */
static void gather_pixel(const narrow_job *j, float *restrict patch, int n, int oh, int ow)
{
    const comine_conv_geom *g = j->g;
    float *p = patch + (size_t)ow * TAPS;
    for (int kh = 0; kh < NARROW_K; kh++) {
        int ih = oh * g->stride - g->pad + kh;
        for (int kw = 0; kw < NARROW_K; kw++) {
            int iw = ow * g->stride - g->pad + kw;
            float *t = p + (kh * NARROW_K + kw) * NARROW_C;
            if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) {
                t[0] = t[1] = t[2] = 0.0f;
            } else {
                const float *x = j->in + (((size_t)n * g->H + ih) * g->W + iw) * NARROW_C;
                t[0] = x[0], t[1] = x[1], t[2] = x[2];
            }
        }
    }
}

/* NP (1 to 8) output pixels, NV vectors of channels from c0 on, into y (the first pixel's
 * output).  src[kh] points at the 9 input values (kw, c) of the first pixel's kernel row kh,
 * each further pixel's `next` floats further: in the input itself where the pixels' windows
 * lie inside it, else in gather_pixel's copy. */
static inline __attribute__((always_inline, target("avx512f"))) void
narrow_block(const narrow_job *j, const float *const *src, size_t next, float *restrict y, const float *restrict res,
             int c0, const int NV, const int NP)
{
    const int OC = j->g->OC;
    __m512 a[8][CHUNK / 16];
    for (int v = 0; v < NV; v++) {
        a[0][v] = j->bias ? _mm512_loadu_ps(j->bias + c0 + 16 * v) : _mm512_setzero_ps();
        for (int q = 1; q < NP; q++) a[q][v] = a[0][v];
    }
    const float *restrict w = j->wt + c0;
    for (int kh = 0; kh < NARROW_K; kh++) {
        const float *restrict x = src[kh];
        for (int t = 0; t < NARROW_K * NARROW_C; t++, w += OC) {
            __m512 xb[8];
            for (int q = 0; q < NP; q++) xb[q] = _mm512_set1_ps(x[(size_t)q * next + (size_t)t]);
            for (int v = 0; v < NV; v++) {
                const __m512 wv = _mm512_loadu_ps(w + 16 * v);
                for (int q = 0; q < NP; q++) a[q][v] = _mm512_fmadd_ps(wv, xb[q], a[q][v]);
            }
        }
    }
    for (int q = 0; q < NP; q++)
        for (int v = 0; v < NV; v++) {
            size_t o = (size_t)q * OC + c0 + 16 * v;
            __m512 r = a[q][v];
            if (j->alpha) {
                __m512 al = _mm512_loadu_ps(j->alpha + c0 + 16 * v);
                r = _mm512_mask_mul_ps(r, _mm512_cmp_ps_mask(r, _mm512_setzero_ps(), _CMP_LE_OQ), r, al);
            }
            if (res) r = _mm512_add_ps(r, _mm512_loadu_ps(res + o));
            _mm512_storeu_ps(y + o, r);
        }
}

__attribute__((target("avx512f"))) static void narrow_row(const narrow_job *j, float *patch, int r)
{
    const comine_conv_geom *g = j->g;
    const int OC = g->OC, OW = g->OW, S = g->stride, n = r / g->OH, oh = r % g->OH;
    const float *rows[NARROW_K];
    bool rows_in = true;
    for (int kh = 0; kh < NARROW_K; kh++) {
        int ih = oh * S - g->pad + kh;
        rows_in = rows_in && ih >= 0 && ih < g->H;
        rows[kh] = j->in + ((size_t)n * g->H + (ih < 0 ? 0 : ih)) * g->W * NARROW_C;
    }
    /* blocks of np pixels (ow .. ow + np - 1) whose windows lie inside the input read it
     * directly; the others are gathered */
    const int nv_max = (OC < CHUNK ? OC : CHUNK) / 16, np = nv_max == 1 ? 8 : nv_max == 2 ? 4 : 2;
    int first_in = (g->pad + S - 1) / S;                         /* first ow with iw >= 0 */
    int last_in = rows_in ? (g->W - NARROW_K + g->pad) / S : -1; /* last ow with iw + K <= W */
    for (int ow = 0; ow < OW; ow += np) {
        bool inside = ow >= first_in && ow + np - 1 <= last_in;
        if (!inside)
            for (int q = 0; q < np && ow + q < OW; q++) gather_pixel(j, patch, n, oh, ow + q);
    }
    float *y = j->out + (size_t)r * OW * OC;
    const float *res = j->residual ? j->residual + (size_t)r * OW * OC : NULL;
    for (int c0 = 0; c0 < OC; c0 += CHUNK) {
        int nv = (OC - c0 < CHUNK ? OC - c0 : CHUNK) / 16;
        for (int ow = 0; ow < OW; ow += np) {
            const float *src[NARROW_K];
            size_t next;
            if (ow >= first_in && ow + np - 1 <= last_in) {
                for (int kh = 0; kh < NARROW_K; kh++) src[kh] = rows[kh] + (size_t)(ow * S - g->pad) * NARROW_C;
                next = (size_t)S * NARROW_C;
            } else {
                for (int kh = 0; kh < NARROW_K; kh++) src[kh] = patch + (size_t)ow * TAPS + kh * NARROW_K * NARROW_C;
                next = TAPS;
            }
            float *yo = y + (size_t)ow * OC;
            const float *ro = res ? res + (size_t)ow * OC : NULL;
            if (ow + np <= OW && np == 8) {
                narrow_block(j, src, next, yo, ro, c0, 1, 8);
            } else if (ow + np <= OW && np == 4) {
                narrow_block(j, src, next, yo, ro, c0, 2, 4);
            } else if (ow + np <= OW) {
                switch (nv) {
                case 8: narrow_block(j, src, next, yo, ro, c0, 8, 2); break;
                case 4: narrow_block(j, src, next, yo, ro, c0, 4, 2); break;
                case 2: narrow_block(j, src, next, yo, ro, c0, 2, 2); break;
                default:
                    for (int v = 0; v < nv; v++) narrow_block(j, src, next, yo, ro, c0 + 16 * v, 1, 2);
                    break;
                }
            } else { /* the last pixels of a row, one at a time */
                for (int q = 0; ow + q < OW; q++) {
                    const float *one[NARROW_K];
                    for (int kh = 0; kh < NARROW_K; kh++) one[kh] = src[kh] + (size_t)q * next;
                    for (int v = 0; v < nv; v++)
                        narrow_block(j, one, 0, yo + (size_t)q * OC, ro ? ro + (size_t)q * OC : NULL, c0 + 16 * v,
                                     1, 1);
                }
            }
        }
    }
}
#endif

void comine_cpu_conv_narrow_forward(const comine_conv_geom *g, float *out, const float *in, const float *weight,
                                    const float *bias, const float *alpha, const float *residual, int N)
{
    COMINE_ASSERT(comine_cpu_conv_narrow_supported(g));
#ifdef COMINE_CPU_X86
    const int OC = g->OC, K2 = NARROW_K * NARROW_K;
    /* wt[(k C + c)][oc] = weight[oc][c][k] */
    float *wt = comine_cpu_thread_buf(CPU_BUF_NARROW_WEIGHTS, (size_t)TAPS * OC);
    for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < NARROW_C; c++)
            for (int k = 0; k < K2; k++)
                wt[((size_t)k * NARROW_C + c) * OC + oc] = weight[((size_t)oc * NARROW_C + c) * K2 + k];
    narrow_job job = {g, out, in, wt, bias, alpha, residual};
    const int rows = N * g->OH;
    const size_t patch_floats = (size_t)(g->OW + 1) * TAPS;
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel if ((size_t)rows * g->OW * OC > 32768 && !omp_in_parallel())
#endif
    {
        float *patch = comine_cpu_thread_buf(CPU_BUF_NARROW_PATCH, patch_floats);
#ifdef COMINE_HAVE_OPENMP
#pragma omp for schedule(static)
#endif
        for (int r = 0; r < rows; r++) narrow_row(&job, patch, r);
    }
#else
    (void)out, (void)in, (void)weight, (void)bias, (void)alpha, (void)residual, (void)N;
#endif
}
