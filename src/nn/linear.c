/* linear.c: nn.h's fully connected layer, out = in @ weight^T + bias, as matrix
 * products on the backend (gemm with beta = 1 makes the backward accumulate). */
#include "comine/nn.h"

#include "backend/backend_impl.h"

void comine_linear_forward(const comine_backend *be, float *out, const float *in, const float *weight,
                           const float *bias, int N, int IN, int OUT)
{
    COMINE_ASSERT(N >= 0 && IN >= 0 && OUT >= 0);
    if (N == 0 || OUT == 0) return;
    /* out (N, OUT) = in (N, IN) @ weight^T, weight is (OUT, IN) */
    be->gemm(0, 1, N, OUT, IN, 1.0f, in, IN > 0 ? IN : 1, weight, IN > 0 ? IN : 1, 0.0f, out, OUT);
    if (bias) be->add_bias(out, bias, (size_t)N, OUT);
}

void comine_linear_backward(const comine_backend *be, float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *in, const float *weight, int N, int IN, int OUT)
{
    COMINE_ASSERT(N >= 0 && IN >= 0 && OUT >= 0);
    if (N == 0 || OUT == 0) return;
    int ld_in = IN > 0 ? IN : 1;
    /* dinp (N, IN) += dout (N, OUT) @ weight (OUT, IN) */
    if (dinp && IN > 0) be->gemm(0, 0, N, IN, OUT, 1.0f, dout, OUT, weight, ld_in, 1.0f, dinp, ld_in);
    /* dweight (OUT, IN) += dout^T (OUT, N) @ in (N, IN) */
    if (dweight && IN > 0) be->gemm(1, 0, OUT, IN, N, 1.0f, dout, OUT, in, ld_in, 1.0f, dweight, ld_in);
    if (dbias) be->accumulate_colsum(dbias, dout, (size_t)N, OUT);
}
