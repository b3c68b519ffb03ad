/* cpu.h: what the CPU backend's files share: the oneDNN convolution plans of cpu_conv.c,
 * the ArcFace kernels of cpu_arcface.c and the matrix product of cpu_gemm.c (entries of
 * the table in cpu.c), and the vectorised accumulate. */
#ifndef COMINE_BACKEND_CPU_H
#define COMINE_BACKEND_CPU_H

#include "backend/backend_impl.h"

void *comine_cpu_conv_plan_create(const comine_conv_geom *g);
void comine_cpu_conv_plan_free(void *plan);
void comine_cpu_conv_forward(void *plan, float *out, const float *in, const float *weight, const float *bias, int N);
/* out = prelu(conv(prelu(in, in_alpha), weight) + bias, alpha) + residual (in_alpha, alpha,
 * residual or NULL; in_alpha only where comine_cpu_conv_fuses_input_prelu; residual is not
 * out); weight_version != 0: weight and bias are unchanged while it is */
void comine_cpu_conv_forward_fused(void *plan, float *out, const float *in, const float *in_alpha,
                                   const float *weight, const float *bias, const float *alpha, const float *residual,
                                   int N, uint64_t weight_version);
bool comine_cpu_conv_fuses_input_prelu(void *plan);
/* the same with in * in_scale + in_shift as the input (per channel); only where
 * comine_cpu_conv_fuses_input_affine (cpu_conv_wf4.c's layers) */
void comine_cpu_conv_forward_fused_affine(void *plan, float *out, const float *in, const float *in_scale,
                                          const float *in_shift, const float *weight, const float *bias,
                                          const float *alpha, const float *residual, int N,
                                          uint64_t weight_version);
bool comine_cpu_conv_fuses_input_affine(void *plan);
void comine_cpu_conv_backward_data(void *plan, float *dinp, const float *dout, const float *weight, int N);
void comine_cpu_conv_backward_data_write(void *plan, float *dinp, const float *dout, const float *weight, int N);
void comine_cpu_conv_backward(void *plan, float *dinp, bool overwrite, float *dweight, float *dbias, const float *dout,
                              const float *in, const float *weight, int N);
void comine_cpu_conv_backward_weights(void *plan, float *dweight, float *dbias, const float *dout, const float *in,
                                      int N);

/* grouped convolutions with 2 input and 2 output channels per group (cpu_conv_pairs.c) */
bool comine_cpu_conv_pairs_supported(const comine_conv_geom *g);
void comine_cpu_conv_pairs_forward(const comine_conv_geom *g, float *out, const float *in, const float *weight,
                                   const float *bias, const float *alpha, const float *residual, int N);

/* depthwise convolutions, AVX-512 (channels a multiple of 16) or AVX2 (8) (cpu_conv_dw.c); eval only:
 * out = prelu(conv(prelu(in, in_alpha), weight) + bias, alpha) + residual */
bool comine_cpu_conv_dw_supported(const comine_conv_geom *g);
void comine_cpu_conv_dw_forward(const comine_conv_geom *g, float *out, const float *in, const float *in_alpha,
                                const float *weight, const float *bias, const float *alpha, const float *residual,
                                int N);

/* a first layer on RGB images: dense 3x3 convolutions with 3 input channels, AVX-512,
 * output channels a multiple of 16 (cpu_conv_narrow.c); eval only:
 * out = prelu(conv(in, weight) + bias, alpha) + residual */
bool comine_cpu_conv_narrow_supported(const comine_conv_geom *g);
void comine_cpu_conv_narrow_forward(const comine_conv_geom *g, float *out, const float *in, const float *weight,
                                    const float *bias, const float *alpha, const float *residual, int N);

/* ArcFace head kernels (cpu_arcface.c) */
void comine_cpu_l2_normalize_rows(float *out, float *norm, float *inv_norm, const float *in, int rows, int D);
void comine_cpu_arcface_loss(float *loss, float *cos_target, float *p_target, uint8_t *correct, const float *cos,
                             const int *labels, const uint8_t *form, int N, int K, const comine_arcface_cfg *cfg);
void comine_cpu_arcface_cos_stats(double *mean_target, double *mean_negative, const float *cos, const int *labels,
                                  int N, int K);
void comine_cpu_arcface_dcos(float *dcos, float *row_coef, float *emb_hat_active, const float *cos,
                             const float *emb_hat, const float *w_inv_norm, const int *active, int na,
                             const int *labels, const uint8_t *form, const float *sample_weight, int K, int D,
                             const comine_arcface_cfg *cfg);
void comine_cpu_arcface_col_coef(float *col_coef, const float *dcos, const float *cos, const int *active, int na,
                                 int K);
void comine_cpu_arcface_demb(float *demb, const float *demb_hat, const float *emb_hat, const float *emb_norm,
                             const float *row_coef, const int *active, int na, int D);
void comine_cpu_arcface_dweight(float *dweight, const float *w_hat, const float *w_norm, const float *col_coef, int K,
                                int D);
void comine_cpu_subcenter_max(float *cos, int *arg, const float *cos_sub, int N, int K, int S);
void comine_cpu_subcenter_scatter(float *dcos_sub, const float *dcos, const int *arg, const int *active,
                                  const float *w_inv_norm, int na, int K, int S);

/* C = alpha op(A) op(B) + beta C, row-major (cpu_gemm.c: OpenBLAS on one thread per block,
 * the blocks over the OpenMP threads) */
void comine_cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc);

/* dst += src (OpenMP, vectorised) */
void comine_cpu_accumulate(float *dst, const float *src, size_t n);

/* This thread's buffer `which`, grown to at least n floats (contents not kept); freed when
 * the thread ends */
enum {
    CPU_BUF_GRAD,       /* an input gradient before it is added to the caller's */
    CPU_BUF_WEIGHTS,    /* weights in a primitive's format during a call */
    CPU_BUF_FLIPPED,    /* the transposed weights of a flipped forward */
    CPU_BUF_WINO_SRC,   /* blocked activations around a Winograd convolution */
    CPU_BUF_WINO_DST,
    CPU_BUF_PAIRS,      /* the grouped 3x3 kernel's rearranged weights */
    CPU_BUF_DW_WEIGHTS, /* the depthwise kernel's rearranged weights */
    CPU_BUF_DW_RING,    /* the depthwise kernel's input rows */
    CPU_BUF_NARROW_WEIGHTS, /* the first-layer kernel's rearranged weights */
    CPU_BUF_NARROW_PATCH,   /* the first-layer kernel's gathered input row */
    CPU_BUF_OWN_CONV,   /* cpu_conv_wf2.c's tiles and products, cpu_conv_im2col.c's windows */
    CPU_BUF_SCRATCHPAD, /* oneDNN primitives' scratchpads */
    CPU_BUF_COUNT
};
float *comine_cpu_thread_buf(int which, size_t n);

#endif
