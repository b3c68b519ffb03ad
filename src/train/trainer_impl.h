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
    int *rank_rows;         /* (P) each rank's rows of the batch (trainer_batch.c) */
    int *batch_labels, *batch_indices; /* (B) the whole batch, gathered over the ranks */
    int8_t *batch_truth;
    /* position */
    int epoch, step;        /* the next step to run */
    epoch_acc acc;
    int bad_in_a_row;
    float tau;              /* the drop rate's target: cfg->tau, or with --tau auto 0 until estimated */
    double tau_estimate;    /* --tau auto: the estimate (NAN before) */
    uint8_t *excluded;      /* (n) --subcenter-drop in mode arcface: 1 = left out of training (NULL before) */
    uint8_t *batch_excluded; /* (B) the batch's */
} trainer;

/* trainer_tau.c: --tau auto, before the trainer is made: reads RUN/tau_estimate.json when an
 * earlier start of the run wrote it, else estimates tau by cross-fitting (RUN/tau_crossfit/)
 * and writes it (rank 0); sets cfg->tau to the rate the run drops (at most 0.9) and msg to
 * the line to print. */
comine_status comine_trainer_tau_auto(comine_train_cfg *cfg, char *msg, size_t msg_size);

/* trainer_merge.c: --merge-duplicates.  comine_trainer_merge after the warm-up's last epoch
 * (every rank; rank 0 writes merge_map.tsv, duplicates.csv, classes.tsv); before the peers are
 * made on --resume, comine_trainer_merge_restore relabels the data set as the merge did when
 * the checkpoint was written after it. */
comine_status comine_trainer_merge(trainer *t);
comine_status comine_trainer_merge_restore(trainer *t);

/* trainer_subcenter.c: --subcenter-drop.  comine_trainer_subcenter_drop after epoch
 * cfg->subcenter_drop - 1: each peer's head keeps each class's dominant sub-centre (S becomes 1);
 * in mode arcface t->excluded marks the samples farther than the angle from it (rank 0 writes
 * RUN/subcenter_dropped.csv).  On --resume from a checkpoint written after the drop:
 * comine_trainer_subcenter_plain_heads before the checkpoint is read (it holds plain heads),
 * comine_trainer_subcenter_restore after (reads the list back). */
comine_status comine_trainer_subcenter_check(const comine_train_cfg *cfg);
comine_status comine_trainer_subcenter_drop(trainer *t);
bool comine_trainer_subcenter_dropped(const trainer *t, const char *checkpoint);
comine_status comine_trainer_subcenter_plain_heads(trainer *t);
comine_status comine_trainer_subcenter_restore(trainer *t);

/* trainer_init.c: --init: each peer's backbone from cfg->init[0] (peer B from cfg->init[1] when
 * given), refused naming the file when the model's network differs from the run's. */
comine_status comine_trainer_init_backbones(trainer *t);

/* trainer_batch.c: each rank's loader reads its part of every batch (loader opts part/parts);
 * comine_trainer_gather_batch makes *whole the global batch: labels, indices and truth of
 * every rank's rows (gathered), the images of this rank's (part's), t->rank_rows set. */
void comine_trainer_batch_init(trainer *t);
void comine_trainer_batch_free(trainer *t);
void comine_trainer_gather_batch(trainer *t, const comine_batch *part, comine_batch *whole);

/* checkpoint.c */
comine_status comine_checkpoint_save(const trainer *t, const char *path);
comine_status comine_checkpoint_load(trainer *t, const char *path);

#endif
