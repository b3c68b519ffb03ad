/* step.h: the Co-Mining training step, the one the trainer runs and `comine bench` times.
 *
 * A comine_peers holds the networks of a run (one, or the two peers A and B) with their
 * ArcFace heads, optimizer state and the buffers of a step.  comine_train_step runs one
 * mini-batch through them: forward both peers -> select (comining.h) -> each peer's
 * objective -> backward -> finiteness -> update.  It keeps no statistics: after it, the
 * caller reads what it needs for its reports from the whole batch's figures (loss_all,
 * cos_target_all, correct_all) and from the result (sets, objectives, mean cosines, the
 * noise votes in ps->noisy).
 *
 * Data parallel (dist.h, P ranks): every rank holds both peers whole and knows the whole
 * global batch's labels; rank r forwards and backwards only its rows (the slice
 * [r n / P, (r + 1) n / P), or those comine_step_input.rank_rows gives it).  The
 * per-sample losses of both peers are all-gathered, comine_select runs on the whole batch
 * identically on every rank, each rank applies its slice of the plan, and the gradients
 * (backbone; the head's too when it is whole) are summed over the ranks, which gives the
 * gradient one process computes on the whole batch except for batch norm: its batch
 * statistics are those of the rank's slice (as PyTorch DDP); the running statistics are
 * averaged over the ranks after every step, so that every rank holds the same backbone.
 * With K >= P classes the heads are sharded by class (loss.h): rank r holds classes
 * [r K / P, (r + 1) K / P) of both heads, the embeddings of the batch are all-gathered, the
 * losses come out of the shards' combined row statistics (the same on every rank) and the
 * embedding gradients are summed back.  With P = 1 the step is the serial one, bit for bit.
 * Partial FC (comine_peers_create_sampled, rate < 1): the step draws its classes (partial_fc.h)
 * and runs the class-sharded head over them, for any P (P = 1: one shard; ghost batch norm as
 * above): each rank gathers its sampled rows into a block, the block's gradients update those
 * rows and their momentum only. */
#ifndef COMINE_TRAIN_STEP_H
#define COMINE_TRAIN_STEP_H

#include <stdbool.h>
#include <stdint.h>

#include "comine/comining.h"
#include "comine/loss.h"
#include "comine/partial_fc.h"
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
    int rank, ranks;          /* this process and P (dist.h); 0 and 1 alone */
    int bn_groups;            /* ghost batch norm (one process): the step of bn_groups ranks, 1 = off */
    float *bn_ghost;          /* (2, num_buffers) host: each peer's running statistics averaged over the groups */
    /* the global batch's per-sample figures of the last step, for the reports (max_batch each):
     * plain losses, cos th_y, 1 = argmax of the cosines is the label; and the plans */
    float *loss_all[2], *cos_target_all[2];
    uint8_t *correct_all[2];
    uint8_t *form_all[2];
    float *weight_all[2];
    /* Partial FC (partial_fc.h; sample rate < 1): each step draws its classes, the same for both
     * peers and on every rank; the head runs as the class-sharded one over the draw (any P) */
    bool sampled;
    comine_pfc pfc;
} comine_peers;

/* n_peers networks of `arch` (peer k seeded from (seed, k)), K classes, global batches of at
 * most B; the rank and P come from dist.h (every rank builds the same initial networks). */
comine_status comine_peers_create(comine_peers *ps, const comine_backend *be, const comine_arch *arch, int n_peers,
                                  int K, int B, uint64_t seed);
/* The same with heads of S sub-centres per class (Sub-center ArcFace, loss.h; S <= 1: the
 * plain head, comine_peers_create).  COMINE_ERR_ARG for S > 1 with several ranks (the sharded
 * head has one centre per class) or on a backend without sub-centre kernels. */
comine_status comine_peers_create_subcenters(comine_peers *ps, const comine_backend *be, const comine_arch *arch,
                                             int n_peers, int K, int S, int B, uint64_t seed);
/* The same with Partial FC: each step's softmax over the batch's classes and a fraction
 * sample_rate of the others (partial_fc.h; 1 = every class: comine_peers_create_subcenters,
 * the same numbers).  COMINE_ERR_ARG for a rate outside (0, 1], for rate < 1 with S > 1,
 * on a backend other than the CPU's, or with fewer classes than ranks. */
comine_status comine_peers_create_sampled(comine_peers *ps, const comine_backend *be, const comine_arch *arch,
                                          int n_peers, int K, int S, int B, uint64_t seed, float sample_rate);
void comine_peers_free(comine_peers *ps);
/* Ghost batch norm, the one-process reference of a G-rank run (CPU backend, one rank): the
 * batch is cut into the G slices that G ranks would own; each slice is normalised with its
 * own batch statistics, the running statistics become the mean of the slices' updates, and
 * everything else is the one-process step.  Costs a second forward per step.  G = 1: off. */
void comine_peers_set_bn_groups(comine_peers *ps, int G);

/* One step's input: the global batch.  images is (n, S, S, 3), labels and truth_noisy are (n).
 * With rank_rows (P counts that sum to n; the loader cut the batch, each rank reading its
 * part), rank r owns rows [rank_rows[0] + ... + rank_rows[r - 1], + rank_rows[r]) and images
 * holds only this rank's rows; without, the even split comine_dist_slice and the whole batch. */
typedef struct comine_step_input {
    const float *images;
    const int *rank_rows;
    const int *labels;
    const uint8_t *truth_noisy;  /* 1 = the label is known wrong; needed by mode oracle only, else may be NULL */
    const uint8_t *excluded;     /* mode arcface: 1 = not learned from (--subcenter-drop); may be NULL */
    int n;
    float drop_rate;             /* r(e) of the epoch (comine_drop_rate) */
    float lr, momentum, weight_decay;
    bool poison_loss;            /* testing aid: every objective is NaN, so the step must be skipped */
    int64_t step;                /* the run's global step: Partial FC's draw is a function of (seed, step) */
} comine_step_input;

typedef struct comine_step_result {
    comine_sets sets;            /* |C|, |XA|, |XB|, |N| */
    double objective[2];         /* each peer's loss under its plan (what it was updated on) */
    double cos_target[2], cos_negative[2]; /* each peer's mean cos th_y and negative cosine (the batch) */
    bool applied;                /* false: a loss or gradient was not finite; nothing was updated and
                                    the batch-norm running statistics are as before the step */
} comine_step_result;

void comine_train_step(comine_step_result *res, comine_peers *ps, const comine_step_input *in,
                       const comine_select_cfg *select, const comine_arcface_cfg *head);

#endif
