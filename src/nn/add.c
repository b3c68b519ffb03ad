/* add.c: nn.h's residual add and gradient accumulation on the backend. */
#include "comine/nn.h"

#include "backend/backend_impl.h"

void comine_add_forward(const comine_backend *be, float *out, const float *a, const float *b, size_t n)
{
    be->add(out, a, b, n);
}

void comine_accumulate(const comine_backend *be, float *dst, const float *src, size_t n)
{
    be->accumulate(dst, src, n);
}
