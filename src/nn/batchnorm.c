/* batchnorm.c: nn.h's batch norm, 2-d (rows = N*H*W in NHWC) and 1-d (rows = N) alike,
 * on the backend's kernels: PyTorch's BatchNorm semantics (biased variance to
 * normalise, unbiased for the running update, running = (1 - m) running + m batch). */
#include "comine/nn.h"

#include "backend/backend_impl.h"

void comine_batchnorm_forward(const comine_backend *be, float *out, float *save_mean, float *save_rstd,
                              float *running_mean, float *running_var, const float *in, const float *gamma,
                              const float *beta, size_t rows, int C, bool training, float momentum, float eps)
{
    COMINE_ASSERT(C >= 0 && eps >= 0.0f);
    COMINE_ASSERT(training || (running_mean && running_var));
    be->batchnorm_forward(out, save_mean, save_rstd, running_mean, running_var, in, gamma, beta, rows, C, training,
                          momentum, eps);
}

void comine_batchnorm_apply(const comine_backend *be, float *out, const float *in, const float *save_mean,
                            const float *save_rstd, const float *gamma, const float *beta, size_t rows, int C)
{
    COMINE_ASSERT(C >= 0);
    be->batchnorm_apply(out, in, save_mean, save_rstd, gamma, beta, rows, C);
}

void comine_batchnorm_backward(const comine_backend *be, float *dinp, float *dgamma, float *dbeta,
                               const float *dout, const float *in, const float *save_mean, const float *save_rstd,
                               const float *gamma, size_t rows, int C)
{
    COMINE_ASSERT(C >= 0);
    if (!dinp && !dgamma && !dbeta) return;
    be->batchnorm_backward(dinp, dgamma, dbeta, dout, in, save_mean, save_rstd, gamma, rows, C);
}

void comine_batchnorm_backward_overwrite(const comine_backend *be, float *dinp, float *dgamma, float *dbeta,
                                         const float *dout, const float *in, const float *save_mean,
                                         const float *save_rstd, const float *gamma, size_t rows, int C)
{
    COMINE_ASSERT(C >= 0);
    if (!dinp && !dgamma && !dbeta) return;
    be->batchnorm_backward_write(dinp, dgamma, dbeta, dout, in, save_mean, save_rstd, gamma, rows, C);
}
