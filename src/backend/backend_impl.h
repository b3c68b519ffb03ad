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

    /* row-major C (M, N) = alpha * op(A) @ op(B) + beta * C */
    void (*gemm)(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);

    /* convolution plans: out (N, OH, OW, OC), in (N, H, W, C), weight (OC, C/groups, KH, KW) */
    void *(*conv_plan_create)(const comine_conv_geom *g);
    void (*conv_plan_free)(void *plan);
    void (*conv_forward)(void *plan, float *out, const float *in, const float *weight, const float *bias, int N);
    /* dinp += d out / d in */
    void (*conv_backward_data)(void *plan, float *dinp, const float *dout, const float *weight, int N);
    /* dinp = d out / d in (overwritten: no clearing and no extra pass when dinp is fresh) */
    void (*conv_backward_data_write)(void *plan, float *dinp, const float *dout, const float *weight, int N);
    /* dweight += ..., dbias += ... (either may be NULL) */
    void (*conv_backward_weights)(void *plan, float *dweight, float *dbias, const float *dout, const float *in,
                                  int N);

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

    /* SGD with momentum and weight decay (optim.h) */
    void (*sgd_step)(float *params, float *momentum_buf, const float *grads, size_t n, float lr, float momentum,
                     float weight_decay);
};

#endif
