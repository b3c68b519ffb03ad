/* conv2d.c: nn.h's 2-d convolution (any kernel, stride, padding and groups, including
 * depthwise and MobileFaceNet's GDC) on a backend's convolution plans.  Output size as
 * PyTorch: floor((H + 2 pad - K) / stride) + 1. */
#include "comine/nn.h"

#include "backend/backend_impl.h"

void comine_conv2d_init(comine_conv2d *l, const comine_backend *be, int C, int H, int W, int OC, int KH, int KW,
                        int stride, int pad, int groups, bool has_bias)
{
    COMINE_ASSERT(C > 0 && OC > 0 && H > 0 && W > 0 && KH > 0 && KW > 0 && stride > 0 && pad >= 0);
    COMINE_ASSERT(groups > 0 && C % groups == 0 && OC % groups == 0);
    COMINE_ASSERT(H + 2 * pad >= KH && W + 2 * pad >= KW);
    l->be = be;
    l->C = C, l->H = H, l->W = W, l->OC = OC;
    l->KH = KH, l->KW = KW, l->stride = stride, l->pad = pad, l->groups = groups;
    l->has_bias = has_bias;
    l->weight_version = 0;
    l->OH = (H + 2 * pad - KH) / stride + 1;
    l->OW = (W + 2 * pad - KW) / stride + 1;
    comine_conv_geom g = {.C = C, .H = H, .W = W, .OC = OC, .OH = l->OH, .OW = l->OW, .KH = KH, .KW = KW,
                          .stride = stride, .pad = pad, .groups = groups, .has_bias = has_bias};
    l->plan = be->conv_plan_create(&g);
}

void comine_conv2d_free(comine_conv2d *l)
{
    if (l->plan) l->be->conv_plan_free(l->plan);
    l->plan = NULL;
}

void comine_conv2d_forward(comine_conv2d *l, float *out, const float *in, const float *weight, const float *bias,
                           int N)
{
    COMINE_ASSERT(l->plan != NULL && N >= 0);
    l->be->conv_forward(l->plan, out, in, weight, l->has_bias ? bias : NULL, N);
}

void comine_conv2d_forward_fused(comine_conv2d *l, float *out, const float *in, const float *weight,
                                 const float *bias, const float *prelu_alpha, const float *residual, int N)
{
    comine_conv2d_forward_fused_in(l, out, in, NULL, weight, bias, prelu_alpha, residual, N);
}

bool comine_conv2d_fuses_input_prelu(const comine_conv2d *l)
{
    COMINE_ASSERT(l->plan != NULL);
    return l->be->conv_forward_fused && l->be->conv_fuses_input_prelu && l->be->conv_fuses_input_prelu(l->plan);
}

void comine_conv2d_forward_fused_in(comine_conv2d *l, float *out, const float *in, const float *in_alpha,
                                    const float *weight, const float *bias, const float *prelu_alpha,
                                    const float *residual, int N)
{
    COMINE_ASSERT(l->plan != NULL && N >= 0);
    COMINE_ASSERT(!residual || residual != out);
    COMINE_ASSERT(!in_alpha || comine_conv2d_fuses_input_prelu(l));
    const comine_backend *be = l->be;
    if (be->conv_forward_fused) {
        be->conv_forward_fused(l->plan, out, in, in_alpha, weight, l->has_bias ? bias : NULL, prelu_alpha, residual,
                               N, l->weight_version);
        return;
    }
    be->conv_forward(l->plan, out, in, weight, l->has_bias ? bias : NULL, N);
    size_t rows = (size_t)N * l->OH * l->OW;
    if (prelu_alpha) be->prelu_forward(out, out, prelu_alpha, rows, l->OC);
    if (residual) be->add(out, out, residual, rows * (size_t)l->OC);
}

bool comine_conv2d_fuses_input_affine(const comine_conv2d *l)
{
    COMINE_ASSERT(l->plan != NULL);
    return l->be->conv_forward_fused_affine && l->be->conv_fuses_input_affine &&
           l->be->conv_fuses_input_affine(l->plan);
}

void comine_conv2d_forward_fused_affine(comine_conv2d *l, float *out, const float *in, const float *in_scale,
                                        const float *in_shift, const float *weight, const float *bias,
                                        const float *prelu_alpha, const float *residual, int N)
{
    COMINE_ASSERT(l->plan != NULL && N >= 0 && in_scale && in_shift);
    COMINE_ASSERT(!residual || residual != out);
    COMINE_ASSERT(comine_conv2d_fuses_input_affine(l));
    l->be->conv_forward_fused_affine(l->plan, out, in, in_scale, in_shift, weight, l->has_bias ? bias : NULL,
                                     prelu_alpha, residual, N, l->weight_version);
}

/* the backward passes asked for: one backend call where it has a combined one */
static void backward(comine_conv2d *l, float *dinp, bool overwrite, float *dweight, float *dbias, const float *dout,
                     const float *in, const float *weight, int N)
{
    COMINE_ASSERT(l->plan != NULL && N >= 0);
    const comine_backend *be = l->be;
    if (!l->has_bias) dbias = NULL;
    if (dinp && dweight && be->conv_backward) {
        be->conv_backward(l->plan, dinp, overwrite, dweight, dbias, dout, in, weight, N);
        return;
    }
    if (dinp && overwrite) be->conv_backward_data_write(l->plan, dinp, dout, weight, N);
    else if (dinp) be->conv_backward_data(l->plan, dinp, dout, weight, N);
    if (dweight || dbias) be->conv_backward_weights(l->plan, dweight, dbias, dout, in, N);
}

void comine_conv2d_backward(comine_conv2d *l, float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *in, const float *weight, int N)
{
    backward(l, dinp, false, dweight, dbias, dout, in, weight, N);
}

void comine_conv2d_backward_overwrite(comine_conv2d *l, float *dinp, float *dweight, float *dbias, const float *dout,
                                      const float *in, const float *weight, int N)
{
    backward(l, dinp, true, dweight, dbias, dout, in, weight, N);
}
