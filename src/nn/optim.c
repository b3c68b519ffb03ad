/* optim.c: optim.h's SGD step (through the backend) and learning-rate schedules.
 * Schedule = base schedule (constant, step, cosine) times a linear warm-up factor
 * min(1, epoch / warmup_epochs): warm-up composes with any of them. */
#include "comine/optim.h"

#include <math.h>

#include "backend/backend_impl.h"

void comine_sgd_step(const comine_backend *be, float *params, float *momentum_buf, const float *grads, size_t n,
                     float lr, float momentum, float weight_decay)
{
    if (n == 0) return;
    be->sgd_step(params, momentum_buf, grads, n, lr, momentum, weight_decay);
}

void comine_sgd_step_rows(const comine_backend *be, float *params, float *momentum_buf, const float *grads,
                          const int *rows, int n_rows, int row0, int D, float lr, float momentum, float weight_decay)
{
    COMINE_ASSERT(be->sgd_step_rows != NULL && n_rows >= 0 && D >= 1);
    if (n_rows == 0) return;
    be->sgd_step_rows(params, momentum_buf, grads, rows, n_rows, row0, D, lr, momentum, weight_decay);
}

double comine_lr_at(const comine_lr_schedule *s, double epoch)
{
    if (epoch < 0) epoch = 0;
    double lr = s->base_lr;
    switch (s->kind) {
    case COMINE_LR_CONSTANT:
        break;
    case COMINE_LR_STEP: {
        int n = s->n_milestones < 16 ? s->n_milestones : 16;
        for (int i = 0; i < n; i++)
            if (epoch >= s->milestones[i]) lr *= s->gamma;
        break;
    }
    case COMINE_LR_COSINE: {
        double t = s->total_epochs > 0 ? epoch / s->total_epochs : 1.0;
        if (t > 1.0) t = 1.0;
        lr = s->min_lr + (s->base_lr - s->min_lr) * 0.5 * (1.0 + cos(M_PI * t));
        break;
    }
    }
    if (s->warmup_epochs > 0 && epoch < s->warmup_epochs) lr *= epoch / s->warmup_epochs;
    return lr;
}
