/* backend_impl.h: the definition of `struct comine_backend`, the table of device
 * functions that nn.h's layers and optim.h's optimizer call.  A device (the CPU here,
 * CUDA later) fills one table; the layers, models, loss and trainer exist once.
 *
 * Conventions of every entry: outputs, then inputs, then sizes; pointers are device
 * memory from `alloc`; activations are NHWC, (rows, C) with channels innermost;
 * entries whose name says `accumulate` or that compute a gradient ADD (+=) into their
 * outputs; a NULL gradient output is skipped; zero sizes are valid and do nothing. */
#ifndef COMINE_BACKEND_IMPL_H
#define COMINE_BACKEND_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comine/backend.h"
#include "comine/core.h"
#include "comine/loss.h"

/* The geometry a convolution plan is made for (batch size excluded: plans cache per N). */
typedef struct comine_conv_geom {
    int C, H, W;      /* input channels and size */
    int OC, OH, OW;   /* output channels and size */
    int KH, KW, stride, pad, groups;
    bool has_bias;
} comine_conv_geom;

struct comine_backend {
    const char *name;
    void (*set_threads)(int n);

    /* memory */
    float *(*alloc)(size_t n_floats);
    void (*free)(float *p);
    void (*zero)(float *p, size_t n_floats);
    void (*upload)(float *dst_dev, const float *src_host, size_t n_floats);
    void (*download)(float *dst_host, const float *src_dev, size_t n_floats);
    void (*copy)(float *dst_dev, const float *src_dev, size_t n_floats);
    /* host data as device memory: host itself where the device reads host memory, else
     * scratch (n floats of device memory) after an upload */
    const float *(*stage_input)(float *scratch_dev, const float *src_host, size_t n_floats);
    /* untyped device memory (labels, masks, indices), zero-filled */
    void *(*alloc_bytes)(size_t bytes);
    void (*free_bytes)(void *p);
    void (*upload_bytes)(void *dst_dev, const void *src_host, size_t bytes);
    void (*download_bytes)(void *dst_host, const void *src_dev, size_t bytes);

    /* true when no element of x (n) is NaN or infinite */
    bool (*all_finite)(const float *x, size_t n);

    /* row-major C (M, N) = alpha * op(A) @ op(B) + beta * C */
    void (*gemm)(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);

    /* convolution plans: out (N, OH, OW, OC), in (N, H, W, C), weight (OC, C/groups, KH, KW) */
    void *(*conv_plan_create)(const comine_conv_geom *g);
    void (*conv_plan_free)(void *plan);
    void (*conv_forward)(void *plan, float *out, const float *in, const float *weight, const float *bias, int N);
    /* an eval forward with its epilogue: out = prelu(conv(prelu(in, in_alpha), weight) + bias,
     * alpha) + residual (in_alpha (C), alpha (OC) and residual (like out, not out itself) may
     * be NULL; in_alpha only where conv_fuses_input_prelu says so); weight_version != 0
     * promises that weight and bias stay unchanged while it does (the plan may keep them in
     * its own format).  NULL in a backend: conv_forward, prelu_forward and add instead. */
    void (*conv_forward_fused)(void *plan, float *out, const float *in, const float *in_alpha, const float *weight,
                               const float *bias, const float *alpha, const float *residual, int N,
                               uint64_t weight_version);
    /* true where the plan's conv_forward_fused takes an in_alpha (NULL: never) */
    bool (*conv_fuses_input_prelu)(void *plan);
    /* the same eval forward with a per-channel affine map on the input first (an eval batch
     * norm before a padded convolution, which cannot be folded into its weights: the
     * padding stays zero): out = prelu(conv(in * in_scale + in_shift, weight) + bias, alpha)
     * + residual, in_scale and in_shift (C); only where conv_fuses_input_affine says so
     * (NULL, both: never) */
    void (*conv_forward_fused_affine)(void *plan, float *out, const float *in, const float *in_scale,
                                      const float *in_shift, const float *weight, const float *bias,
                                      const float *alpha, const float *residual, int N, uint64_t weight_version);
    bool (*conv_fuses_input_affine)(void *plan);
    /* dinp += d out / d in */
    void (*conv_backward_data)(void *plan, float *dinp, const float *dout, const float *weight, int N);
    /* dinp = d out / d in (overwritten: no clearing and no extra pass when dinp is fresh) */
    void (*conv_backward_data_write)(void *plan, float *dinp, const float *dout, const float *weight, int N);
    /* dweight += ..., dbias += ... (either may be NULL) */
    void (*conv_backward_weights)(void *plan, float *dweight, float *dbias, const float *dout, const float *in,
                                  int N);
    /* Both backward passes of one layer in one call (what conv_backward_data, or _write when
     * overwrite, then conv_backward_weights do), with the work they share done once; dinp
     * and dweight not NULL, dbias may be.  NULL in a backend: those two calls. */
    void (*conv_backward)(void *plan, float *dinp, bool overwrite, float *dweight, float *dbias, const float *dout,
                          const float *in, const float *weight, int N);

    /* batch norm over (rows, C); see nn.h for the semantics */
    void (*batchnorm_forward)(float *out, float *save_mean, float *save_rstd, float *running_mean,
                              float *running_var, const float *in, const float *gamma, const float *beta,
                              size_t rows, int C, bool training, float momentum, float eps);
    /* the output of a training forward again, from the statistics it saved (bit-identical) */
    void (*batchnorm_apply)(float *out, const float *in, const float *save_mean, const float *save_rstd,
                            const float *gamma, const float *beta, size_t rows, int C);
    void (*batchnorm_backward)(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in,
                               const float *save_mean, const float *save_rstd, const float *gamma, size_t rows,
                               int C);
    /* the same with dinp overwritten (=), for the first writer of a gradient */
    void (*batchnorm_backward_write)(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in,
                                     const float *save_mean, const float *save_rstd, const float *gamma, size_t rows,
                                     int C);

    /* activations */
    void (*prelu_forward)(float *out, const float *in, const float *alpha, size_t rows, int C);
    void (*prelu_backward)(float *dinp, float *dalpha, const float *dout, const float *in, const float *alpha,
                           size_t rows, int C);
    void (*prelu_backward_write)(float *dinp, float *dalpha, const float *dout, const float *in, const float *alpha,
                                 size_t rows, int C); /* dinp overwritten */
    void (*relu_forward)(float *out, const float *in, size_t n);
    void (*relu_backward)(float *dinp, const float *dout, const float *in, size_t n);

    /* per-channel vectors over (rows, C): out[r, c] += bias[c]; dst[c] += sum_r src[r, c] */
    void (*add_bias)(float *out, const float *bias, size_t rows, int C);
    void (*accumulate_colsum)(float *dst, const float *src, size_t rows, int C);

    /* dropout: mask bytes are 1 where kept; kept values scaled by 1 / (1 - p) */
    void (*dropout_forward)(float *out, uint8_t *mask, const float *in, size_t n, float p, bool training,
                            comine_rng *rng);
    void (*dropout_backward)(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p);

    /* element-wise */
    void (*add)(float *out, const float *a, const float *b, size_t n);
    void (*accumulate)(float *dst, const float *src, size_t n);

    /* ArcFace head (loss.h, loss/arcface.c).  Rows normalised: out (rows, D) = in / max(|in|, eps),
     * norm (rows) = |in|, inv_norm (rows, may be NULL) = 1 / max(|in|, eps). */
    void (*l2_normalize_rows)(float *out, float *norm, float *inv_norm, const float *in, int rows, int D);
    /* per sample i < N of cos (N, K): loss under form[i] (form NULL: all COMINE_FORM_ARCFACE),
     * cos th_y, p_y, and whether the label has the largest cosine */
    void (*arcface_loss)(float *loss, float *cos_target, float *p_target, uint8_t *correct, const float *cos,
                         const int *labels, const uint8_t *form, int N, int K, const comine_arcface_cfg *cfg);
    /* means over the N rows of cos th_y and of the negatives' cosines */
    void (*arcface_cos_stats)(double *mean_target, double *mean_negative, const float *cos, const int *labels, int N,
                              int K);
    /* backward, for the na samples active[0 .. na) (nonzero sample_weight): row p of dcos (na, K)
     * = d(sum_i weight_i loss_i) / d cos_{active[p], j} / |w_j|; row_coef[p] = sum_j of that
     * gradient (before / |w_j|) times cos; emb_hat_active row p = emb_hat row active[p] */
    void (*arcface_dcos)(float *dcos, float *row_coef, float *emb_hat_active, const float *cos, const float *emb_hat,
                         const float *w_inv_norm, const int *active, int na, const int *labels, const uint8_t *form,
                         const float *sample_weight, int K, int D, const comine_arcface_cfg *cfg);
    /* col_coef (K) = sum_p dcos[p, j] cos[active[p], j] */
    void (*arcface_col_coef)(float *col_coef, const float *dcos, const float *cos, const int *active, int na, int K);
    /* demb row active[p] += (demb_hat row p - row_coef[p] emb_hat row active[p]) / |emb| */
    void (*arcface_demb)(float *demb, const float *demb_hat, const float *emb_hat, const float *emb_norm,
                         const float *row_coef, const int *active, int na, int D);
    /* dweight row j -= col_coef[j] w_hat row j (rows of norm above eps) */
    void (*arcface_dweight)(float *dweight, const float *w_hat, const float *w_norm, const float *col_coef, int K,
                            int D);
    /* Sub-center ArcFace (loss.h; both NULL in a backend without it: heads of S > 1 are refused).
     * subcenter_max: cos (N, K), arg (N, K) from cos_sub (N, K S) of S >= 2 sub-centres per class
     * (column c S + s = sub-centre s of class c): cos[i, c] = max_s cos_sub[i, c S + s] and
     * arg[i, c] = the first s that attains it (a strict `>` scan from s = 0, so ties take the
     * lowest s); a NaN among a class's sub-centres gives cos NaN and arg the first NaN's s. */
    void (*subcenter_max)(float *cos, int *arg, const float *cos_sub, int N, int K, int S);
    /* subcenter_scatter: dcos_sub (na, K S) overwritten (every element written): row p, column
     * c S + s = dcos[p, c] * w_inv_norm[c S + s] where s == arg[active[p], c], else 0.
     * dcos is (na, K) compact rows (arcface_dcos's, made with a w_inv_norm of ones), arg is
     * subcenter_max's (N, K), active (na) the sample of each row, w_inv_norm (K S). */
    void (*subcenter_scatter)(float *dcos_sub, const float *dcos, const int *arg, const int *active,
                              const float *w_inv_norm, int na, int K, int S);

    /* SGD with momentum and weight decay (optim.h) */
    void (*sgd_step)(float *params, float *momentum_buf, const float *grads, size_t n, float lr, float momentum,
                     float weight_decay);
    /* the same SGD on some rows of (., D) params and momentum_buf: row rows[i] - row0 with the
     * gradient row i of grads (n_rows, D) compact (Partial FC; NULL where not implemented) */
    void (*sgd_step_rows)(float *params, float *momentum_buf, const float *grads, const int *rows, int n_rows,
                          int row0, int D, float lr, float momentum, float weight_decay);

    /* An eval forward split over the batch (model_exec.c): fn(ctx, part) for every part in
     * [0, parts) at once, each part on a thread of its own whose kernels run on that one
     * thread.  split_parts() is how many parts run at once (the compute threads).  NULL in a
     * backend: no split, the kernels share the threads layer by layer. */
    int (*split_parts)(void);
    void (*run_split)(int parts, void (*fn)(void *ctx, int part), void *ctx);
};

#endif
