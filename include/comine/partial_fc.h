/* partial_fc.h: Partial FC (An et al., "Partial FC: Training 10 Million Identities on a Single
 * Machine", ICCVW 2021) for the ArcFace head: each step's softmax runs over the classes of
 * the global batch (the positives) plus a random fraction R of the others.
 *
 * The draw is a function of (seed, step, the batch's labels) only: every rank of a
 * class-sharded run draws the same classes whatever P, and a resumed run draws what the
 * uninterrupted one drew.  Of K classes with n_pos distinct positives, the step keeps
 *   count = max(n_pos, floor(R K))   (insightface's int(sample_rate * num_local), taken over
 *                                     the whole head, not per rank)
 * classes: every positive and count - n_pos negatives drawn uniformly without replacement
 * (a partial Fisher-Yates shuffle of the negatives, ascending, with xoshiro256** seeded from
 * (seed, step)).  R = 1 keeps every class (the trainer does not sample at all then).
 *
 * The sampled classes are listed ascending, so that a shard's classes [lo, hi) are one run
 * [pos_lo, pos_hi) of positions, and the sampled head is loss.h's class-sharded head over
 * the positions: labels become positions, shard r's c0 is its pos_lo.  The rows of the
 * sampled classes are gathered into a compact block for the step; the trainer's SGD then steps
 * those rows in place (optim.h's comine_sgd_step_rows), and comine_pfc_scatter writes a block
 * back where a caller needs it. */
#ifndef COMINE_PARTIAL_FC_H
#define COMINE_PARTIAL_FC_H

#include <stdint.h>

#include "comine/core.h"

typedef struct comine_pfc {
    int K;          /* classes of the whole head */
    float rate;     /* R in (0, 1] */
    uint64_t seed;
    int max_N;      /* labels per draw */
    int count;      /* classes of the last draw */
    int *classes;   /* (K) the last draw's classes, ascending (the first `count`) */
    int *labels;    /* (max_N) each sample's label as its position in `classes` */
    uint8_t *mark;  /* (K) scratch: 1 = drawn */
    int *pool;      /* (K) scratch: the negatives being shuffled */
} comine_pfc;

/* COMINE_ERR_ARG (s untouched) when rate is not in (0, 1]. */
comine_status comine_pfc_init(comine_pfc *s, int K, float rate, uint64_t seed, int max_N);
void comine_pfc_free(comine_pfc *s);
/* max(n_pos, floor(rate K)), at most K: how many classes a draw keeps. */
int comine_pfc_count(int K, float rate, int n_pos);
/* Draw step `step`'s classes for the labels (N) in [0, K) of the global batch; fills
 * classes, count and labels. */
void comine_pfc_draw(comine_pfc *s, const int *labels, int N, uint64_t step);
/* The positions [*pos_lo, *pos_hi) of the last draw's classes in [lo, hi). */
void comine_pfc_range(const comine_pfc *s, int lo, int hi, int *pos_lo, int *pos_hi);
/* block (n, D) = rows[classes[i] - row0] for i < n (host memory). */
void comine_pfc_gather(float *block, const float *rows, const int *classes, int n, int row0, int D);
/* rows[classes[i] - row0] = block (n, D) for i < n. */
void comine_pfc_scatter(float *rows, const float *block, const int *classes, int n, int row0, int D);

#endif
