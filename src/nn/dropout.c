/* dropout.c: nn.h's inverted dropout: in training each value is kept with probability
 * 1 - p (mask byte 1) and scaled by 1 / (1 - p); in eval it is the identity.  The mask
 * comes from the caller's RNG stream, so a run is reproducible. */
#include "comine/nn.h"

#include "backend/backend_impl.h"

void comine_dropout_forward(const comine_backend *be, float *out, uint8_t *mask, const float *in, size_t n, float p,
                            bool training, comine_rng *rng)
{
    COMINE_ASSERT(p >= 0.0f && p <= 1.0f);
    be->dropout_forward(out, mask, in, n, p, training, rng);
}

void comine_dropout_backward(const comine_backend *be, float *dinp, const float *dout, const uint8_t *mask, size_t n,
                             float p)
{
    COMINE_ASSERT(p >= 0.0f && p <= 1.0f);
    if (dinp) be->dropout_backward(dinp, dout, mask, n, p);
}
