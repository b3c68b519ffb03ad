/* nn.h: the layers of comine's networks, forward and backward, with PyTorch's semantics
 * and gradient signs, running on a backend (backend.h).
 *
 * Conventions (every function below):
 * - Activations are NHWC: an activation of N images, C channels, H x W is (N, H, W, C),
 *   channels innermost.  A 1-d feature batch (N, C) is the same thing with H = W = 1.
 *   Flatten is therefore free, in (H, W, C) order (PyTorch's is (C, H, W): a linear layer
 *   after a flatten sees its input columns permuted; tests permute fixture weights).
 * - Parameters have PyTorch's shapes and layouts: conv weight (OC, C/groups, KH, KW),
 *   linear weight (OUT, IN), per-channel vectors (C).
 * - Signature order: outputs, then inputs, then sizes.  Backward ACCUMULATES (+=) into
 *   every gradient it writes (dinp, dweight, ...); a NULL gradient pointer is skipped.
 * - Forward saves what backward needs in caller-owned named buffers (BN's mean and
 *   inverse std, dropout's mask).
 * - The batch size N is an argument of every call; backends cache their plans per shape. */
#ifndef COMINE_NN_H
#define COMINE_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comine/backend.h"
#include "comine/core.h"

/* ---- conv2d (any kernel, stride, padding, groups, incl. depthwise and GDC) ------------ */
typedef struct comine_conv2d {
    const comine_backend *be;
    int C, H, W;          /* input channels and size */
    int OC, OH, OW;       /* output channels and size */
    int KH, KW, stride, pad, groups;
    bool has_bias;
    void *plan;           /* backend-owned (e.g. cached oneDNN primitives per batch size) */
    /* comine_conv2d_forward_fused: nonzero while the weight and bias it is given stay the
     * same (the backend may keep them in its own format); 0 at init */
    uint64_t weight_version;
} comine_conv2d;

void comine_conv2d_init(comine_conv2d *l, const comine_backend *be, int C, int H, int W, int OC,
                        int KH, int KW, int stride, int pad, int groups, bool has_bias);
void comine_conv2d_free(comine_conv2d *l);
/* out is (N, OH, OW, OC), in is (N, H, W, C), weight is (OC, C/groups, KH, KW), bias (OC) or NULL */
void comine_conv2d_forward(comine_conv2d *l, float *out, const float *in, const float *weight,
                           const float *bias, int N);
/* An eval forward with an epilogue: out = prelu(conv(in, weight) + bias, prelu_alpha) + residual,
 * prelu_alpha (OC) and residual (N, OH, OW, OC) optional (NULL), residual not out itself; one
 * pass where the backend fuses them.  See weight_version above. */
void comine_conv2d_forward_fused(comine_conv2d *l, float *out, const float *in, const float *weight,
                                 const float *bias, const float *prelu_alpha, const float *residual, int N);
/* true where the backend runs comine_conv2d_forward_fused_in's input PReLU inside the
 * convolution (on the CPU: depthwise layers, AVX-512, channels a multiple of 16) */
bool comine_conv2d_fuses_input_prelu(const comine_conv2d *l);
/* The same with a PReLU on the input first: out = prelu(conv(prelu(in, in_alpha), weight) +
 * bias, prelu_alpha) + residual, in_alpha (C) or NULL; only where
 * comine_conv2d_fuses_input_prelu(l). */
void comine_conv2d_forward_fused_in(comine_conv2d *l, float *out, const float *in, const float *in_alpha,
                                    const float *weight, const float *bias, const float *prelu_alpha,
                                    const float *residual, int N);
/* true where the backend runs comine_conv2d_forward_fused_affine (on the CPU: dense 3x3
 * stride-1 layers with 16 to 128 channels, AVX-512) */
bool comine_conv2d_fuses_input_affine(const comine_conv2d *l);
/* The same with a per-channel affine map on the input first, the padding staying zero (an
 * eval batch norm before the convolution): out = prelu(conv(in * in_scale + in_shift, weight)
 * + bias, prelu_alpha) + residual, in_scale and in_shift (C); only where
 * comine_conv2d_fuses_input_affine(l). */
void comine_conv2d_forward_fused_affine(comine_conv2d *l, float *out, const float *in, const float *in_scale,
                                        const float *in_shift, const float *weight, const float *bias,
                                        const float *prelu_alpha, const float *residual, int N);
/* dinp is (N, H, W, C) or NULL; dweight like weight; dbias (OC) or NULL; all accumulate */
void comine_conv2d_backward(comine_conv2d *l, float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *in, const float *weight, int N);
/* The same, except that dinp (when not NULL) is OVERWRITTEN with the input gradient rather
 * than accumulated into: for a gradient this layer is the first to write, it saves
 * clearing dinp and a pass over it.  dweight and dbias accumulate as above. */
void comine_conv2d_backward_overwrite(comine_conv2d *l, float *dinp, float *dweight, float *dbias,
                                      const float *dout, const float *in, const float *weight, int N);

/* ---- batch norm (2-d over N*H*W rows, 1-d over N rows: the same op in NHWC) ------------ */
/* out, in are (rows, C); gamma, beta, running_mean, running_var, save_mean, save_rstd are (C).
 * training: batch statistics (biased variance for normalising, unbiased for the running
 * update), running = (1 - momentum) * running + momentum * batch; save_* written.
 * eval: running statistics, save_* untouched.  gamma/beta NULL = no affine. */
void comine_batchnorm_forward(const comine_backend *be, float *out, float *save_mean, float *save_rstd,
                              float *running_mean, float *running_var, const float *in,
                              const float *gamma, const float *beta, size_t rows, int C,
                              bool training, float momentum, float eps);
/* out = the output of the training forward that saved save_mean and save_rstd, computed again
 * from `in` (bit-identical): a model keeps a BN's input and recomputes its output for the backward */
void comine_batchnorm_apply(const comine_backend *be, float *out, const float *in, const float *save_mean,
                            const float *save_rstd, const float *gamma, const float *beta, size_t rows, int C);
/* training-mode backward (batch statistics) */
void comine_batchnorm_backward(const comine_backend *be, float *dinp, float *dgamma, float *dbeta,
                               const float *dout, const float *in, const float *save_mean,
                               const float *save_rstd, const float *gamma, size_t rows, int C);
/* the same with dinp OVERWRITTEN (=), for the first writer of a gradient; dgamma and dbeta accumulate */
void comine_batchnorm_backward_overwrite(const comine_backend *be, float *dinp, float *dgamma, float *dbeta,
                                         const float *dout, const float *in, const float *save_mean,
                                         const float *save_rstd, const float *gamma, size_t rows, int C);

/* ---- PReLU (one slope per channel) and ReLU ----------------------------------------------- */
/* out, in are (rows, C), alpha is (C) */
void comine_prelu_forward(const comine_backend *be, float *out, const float *in, const float *alpha,
                          size_t rows, int C);
void comine_prelu_backward(const comine_backend *be, float *dinp, float *dalpha, const float *dout,
                           const float *in, const float *alpha, size_t rows, int C);
/* the same with dinp OVERWRITTEN (=), for the first writer of a gradient; dalpha accumulates */
void comine_prelu_backward_overwrite(const comine_backend *be, float *dinp, float *dalpha, const float *dout,
                                     const float *in, const float *alpha, size_t rows, int C);
void comine_relu_forward(const comine_backend *be, float *out, const float *in, size_t n);
void comine_relu_backward(const comine_backend *be, float *dinp, const float *dout, const float *in, size_t n);

/* ---- linear: out = in @ weight^T + bias ------------------------------------------------- */
/* out is (N, OUT), in is (N, IN), weight is (OUT, IN), bias is (OUT) or NULL */
void comine_linear_forward(const comine_backend *be, float *out, const float *in, const float *weight,
                           const float *bias, int N, int IN, int OUT);
void comine_linear_backward(const comine_backend *be, float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *in, const float *weight, int N, int IN, int OUT);

/* ---- dropout (inverted: kept values scaled by 1/(1-p)); mask is (n) bytes ---------------- */
void comine_dropout_forward(const comine_backend *be, float *out, uint8_t *mask, const float *in, size_t n,
                            float p, bool training, comine_rng *rng);
void comine_dropout_backward(const comine_backend *be, float *dinp, const float *dout, const uint8_t *mask,
                             size_t n, float p);

/* ---- residual add: out = a + b; its backward is dout accumulated into both inputs -------- */
void comine_add_forward(const comine_backend *be, float *out, const float *a, const float *b, size_t n);
void comine_accumulate(const comine_backend *be, float *dst, const float *src, size_t n); /* dst += src */

#endif
