/* optim.h: SGD with momentum and weight decay (PyTorch semantics) and learning-rate
 * schedules (step milestones, cosine, linear warm-up).  Works on flat buffers: a network's
 * parameters, gradients and momentum are each one contiguous block. */
#ifndef COMINE_OPTIM_H
#define COMINE_OPTIM_H

#include <stddef.h>

#include "comine/backend.h"

/* PyTorch's torch.optim.SGD (dampening 0, no Nesterov):
 *   g = grad + weight_decay * p;  buf = momentum * buf + g  (buf starts at 0);  p -= lr * buf */
void comine_sgd_step(const comine_backend *be, float *params, float *momentum_buf, const float *grads,
                     size_t n, float lr, float momentum, float weight_decay);
/* The same step on some rows of (., D) params and momentum_buf (Partial FC: the rows a step drew):
 * row rows[i] - row0 steps with the gradient row i of grads (n_rows, D); the other rows and their
 * momentum are untouched.  The same numbers as comine_sgd_step on those rows.  CPU backend. */
void comine_sgd_step_rows(const comine_backend *be, float *params, float *momentum_buf, const float *grads,
                          const int *rows, int n_rows, int row0, int D, float lr, float momentum, float weight_decay);

typedef enum { COMINE_LR_CONSTANT, COMINE_LR_STEP, COMINE_LR_COSINE } comine_lr_kind;

typedef struct comine_lr_schedule {
    comine_lr_kind kind;
    double base_lr;
    double warmup_epochs;   /* linear from ~0 to base_lr over this many epochs (0 = none) */
    double total_epochs;    /* cosine: decays to min_lr at total_epochs */
    double min_lr;
    int n_milestones;       /* step: lr *= gamma at each milestone epoch */
    double milestones[16];
    double gamma;
} comine_lr_schedule;

/* lr at a fractional epoch (epoch + step / steps_per_epoch):
 *   constant: base_lr;  step: base_lr * gamma^(number of milestones <= epoch);
 *   cosine: min_lr + (base_lr - min_lr) (1 + cos(pi min(epoch / total_epochs, 1))) / 2
 *   (it stays at min_lr past total_epochs);
 * times the warm-up factor min(1, epoch / warmup_epochs) when warmup_epochs > 0 (0 at
 * epoch 0, as insightface's warm-up). */
double comine_lr_at(const comine_lr_schedule *s, double epoch);

#endif
