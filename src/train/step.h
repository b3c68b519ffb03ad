/* step.h: the Co-Mining training step, the one the trainer runs and `comine bench` times.
 *
 * A comine_peers holds the networks of a run (one, or the two peers A and B) with their
 * ArcFace heads, optimizer state and the buffers of a step.  comine_train_step runs one
 * mini-batch through them: forward both peers -> select (comining.h) -> each peer's
 * objective -> backward -> finiteness -> update.  It keeps no statistics: after it, the
 * caller reads what it needs for its reports from the peers (per-sample losses, cosines)
 * and from the result (sets, objectives, the noise votes in ps->noisy). */
#ifndef COMINE_TRAIN_STEP_H
#define COMINE_TRAIN_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "comine/comining.h"
#include "comine/loss.h"
#include "train/peer.h"

typedef struct comine_peers {
    const comine_backend *be;
    int n;                    /* 1 or 2 */
    comine_peer peer[2];      /* A, B */
    int max_batch;
    uint8_t *noisy;           /* (max_batch) the last step's N: 1 = a noise vote */
    float *images;            /* (max_batch, S, S, 3) device copy of the batch (unused where the device
                                 reads host memory) */
    size_t image_floats;      /* S * S * 3 */
    void *select_scratch;     /* comine_select_scratch_bytes(max_batch) */
} comine_peers;

/* n_peers networks of `arch` (peer k seeded from (seed, k)), K classes, batches of at most B. */
comine_status comine_peers_create(comine_peers *ps, const comine_backend *be, const comine_arch *arch, int n_peers,
                                  int K, int B, uint64_t seed);
void comine_peers_free(comine_peers *ps);

/* One step's input.  images is (n, S, S, 3), labels and truth_noisy are (n). */
typedef struct comine_step_input {
    const float *images;
    const int *labels;
    const uint8_t *truth_noisy;  /* 1 = the label is known wrong; needed by mode oracle only, else may be NULL */
    int n;
    float drop_rate;             /* r(e) of the epoch (comine_drop_rate) */
    float lr, momentum, weight_decay;
    bool poison_loss;            /* testing aid: every objective is NaN, so the step must be skipped */
} comine_step_input;

typedef struct comine_step_result {
    comine_sets sets;            /* |C|, |XA|, |XB|, |N| */
    double objective[2];         /* each peer's loss under its plan (what it was updated on) */
    bool applied;                /* false: a loss or gradient was not finite; nothing was updated and
                                    the batch-norm running statistics are as before the step */
} comine_step_result;

void comine_train_step(comine_step_result *res, comine_peers *ps, const comine_step_input *in,
                       const comine_select_cfg *select, const comine_arcface_cfg *head);

#endif
