/* trainer_impl.h: the trainer's state, shared by the epoch loop (trainer.c) and the
 * checkpoint reader/writer (checkpoint.c). */
#ifndef COMINE_TRAINER_IMPL_H
#define COMINE_TRAINER_IMPL_H

#include "comine/trainer.h"
#include "train/step.h"

/* Accumulators of the running epoch (checkpointed, so a resumed epoch reports the same). */
typedef struct epoch_acc {
    double loss[2], objective[2], correct[2], cos_target[2], cos_negative[2];
    double n_clean, n_exchanged_a, n_exchanged_b, n_noisy;
    double det_tp, det_fp, det_fn;
    double batches, samples, skipped_steps, seconds;
} epoch_acc;

#define EPOCH_ACC_FIELDS 21 /* doubles in epoch_acc */

typedef struct trainer {
    const comine_train_cfg *cfg;
    const comine_backend *be;
    comine_dataset *ds;
    comine_loader *loader;
    comine_peers peers;     /* one or two networks, heads, optimizer state */
    comine_lr_schedule lr;  /* cfg->lr with the run's length filled in */
    int K, D, B, steps_per_epoch;
    /* per training sample */
    int32_t *votes, *rounds;
    float *cos_snapshot;    /* (n, 2) cos(theta_y) under A and B in the last epoch */
    /* per batch */
    uint8_t *truth_noisy;
    /* position */
    int epoch, step;        /* the next step to run */
    epoch_acc acc;
    int bad_in_a_row;
} trainer;

/* checkpoint.c */
comine_status comine_checkpoint_save(const trainer *t, const char *path);
comine_status comine_checkpoint_load(trainer *t, const char *path);

#endif
