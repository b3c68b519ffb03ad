/* activation.c: nn.h's PReLU (one slope per channel, channels innermost) and ReLU on
 * the backend's kernels; the gradient at 0 is PyTorch's (x > 0 counts as positive). */
#include "comine/nn.h"

#include "backend/backend_impl.h"

void comine_prelu_forward(const comine_backend *be, float *out, const float *in, const float *alpha, size_t rows,
                          int C)
{
    COMINE_ASSERT(C >= 0);
    be->prelu_forward(out, in, alpha, rows, C);
}

void comine_prelu_backward(const comine_backend *be, float *dinp, float *dalpha, const float *dout,
                           const float *in, const float *alpha, size_t rows, int C)
{
    COMINE_ASSERT(C >= 0);
    if (!dinp && !dalpha) return;
    be->prelu_backward(dinp, dalpha, dout, in, alpha, rows, C);
}

void comine_prelu_backward_overwrite(const comine_backend *be, float *dinp, float *dalpha, const float *dout,
                                     const float *in, const float *alpha, size_t rows, int C)
{
    COMINE_ASSERT(C >= 0);
    if (!dinp && !dalpha) return;
    be->prelu_backward_write(dinp, dalpha, dout, in, alpha, rows, C);
}

void comine_relu_forward(const comine_backend *be, float *out, const float *in, size_t n)
{
    be->relu_forward(out, in, n);
}

void comine_relu_backward(const comine_backend *be, float *dinp, const float *dout, const float *in, size_t n)
{
    if (dinp) be->relu_backward(dinp, dout, in, n);
}
