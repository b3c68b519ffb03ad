/* trainer_impl.h: the trainer's state, shared by the epoch loop (trainer.c), the
 * checkpoint reader/writer (checkpoint.c) and the run-folder reports (run_files.c). */
#ifndef COMINE_TRAINER_IMPL_H
#define COMINE_TRAINER_IMPL_H

#include "comine/trainer.h"
#include "train/peer.h"

typedef comine_peer peer;

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
    int n_peers;            /* 1 or 2 */
    peer peers[2];
    int K, D, B, steps_per_epoch;
    /* per training sample */
    int32_t *votes, *rounds;
    float *cos_snapshot;    /* (n, 2) cos(theta_y) under A and B in the last epoch */
    /* per batch */
    uint8_t *noisy, *truth_noisy;
    /* position */
    int epoch, step;        /* the next step to run */
    epoch_acc acc;
    int bad_in_a_row;
} trainer;

/* checkpoint.c */
comine_status comine_checkpoint_save(const trainer *t, const char *path);
comine_status comine_checkpoint_load(trainer *t, const char *path);

/* run_files.c */
comine_status comine_run_write_noise_csv(const trainer *t, const char *path);
comine_status comine_run_write_cos_csv(const trainer *t, const char *path);
/* Append one JSON line for `epoch` to path, dropping any lines of epochs >= epoch first. */
comine_status comine_run_append_metrics(const char *path, int epoch, const char *json_line);
/* Keep only the lines of epochs < epoch (after a resume). */
comine_status comine_run_trim_metrics(const char *path, int epoch);
/* Remove the temporary files (NAME.tmp.<pid>) an interrupted writer left in the run folder. */
void comine_run_remove_temporaries(const char *dir);

#endif
