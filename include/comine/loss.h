/* loss.h: the ArcFace head with per-sample losses and the re-weighted forms of
 * ../METHOD.md (margin m + dm, and the mis-classified-vector form `mv`).  The `weight`
 * re-weighting is not a loss form: it is a per-sample weight, given by the selection.
 *
 * Use per step: forward (normalise, cosines; saved) -> loss (per-sample losses for any mix
 * of forms, from the saved cosines; cheap, may be called more than once) -> backward
 * (per-sample forms and weights: d total / d loss_i). */
#ifndef COMINE_LOSS_H
#define COMINE_LOSS_H

#include <stdbool.h>
#include <stdint.h>

#include "comine/backend.h"
#include "comine/core.h"

typedef enum { COMINE_FALLBACK_EASY = 0, COMINE_FALLBACK_INSIGHTFACE = 1 } comine_fallback;

/* Per-sample loss forms (uint8_t arrays of these). */
typedef enum {
    COMINE_FORM_ARCFACE = 0, /* psi(th_y) with margin m */
    COMINE_FORM_MARGIN = 1,  /* psi(th_y) with margin m + dm */
    COMINE_FORM_MV = 2       /* ArcFace target, negatives beating it scaled by h_j = e^{s(t-1)(cos+1)} */
} comine_loss_form;

typedef struct comine_arcface_cfg {
    float s;                 /* scale (64) */
    float m;                 /* additive angular margin (0.5) */
    comine_fallback fallback;
    float dm;                /* extra margin of COMINE_FORM_MARGIN (0.2) */
    float t;                 /* mv's t >= 1 (1.2) */
    int subcenters;          /* sub-centres per class (Sub-center ArcFace; 1, and 0 read as 1: the plain head) */
} comine_arcface_cfg;

void comine_arcface_cfg_default(comine_arcface_cfg *cfg);

/* Sub-center ArcFace (Deng et al., ECCV 2020): a head of K classes with S sub-centres has
 * weights (K S, D), row c S + s the sub-centre s of class c, and the class cosine is the best
 * of its sub-centres, cos th_ic = max_s <w_cs/|w_cs|, f_i/|f_i|>.  Everything after the
 * cosines (every form, both fallbacks, cos_target, p_target, correct, cos_stats) reads the
 * (N, K) class cosines as with S = 1; backward sends d/d cos th_ic to the sub-centre that gave
 * the max (ties: the lowest s), as torch.max does.  S = 1 is the plain head, the same code and
 * numbers.  The class-sharded head below takes S = 1 only. */
typedef struct comine_arcface {
    const comine_backend *be;
    int D, K, max_N;
    int max_K;         /* classes the K-sized buffers hold (comine_arcface_set_classes) */
    int S;             /* sub-centres per class: weights have K S rows */
    int N;             /* rows of the last forward */
    /* host memory, written by loss, per sample: */
    float *cos_target; /* (max_N) cos th_y */
    float *p_target;   /* (max_N) probability of the label under the sample's form */
    uint8_t *correct;  /* (max_N) 1 when argmax_j cos th_j == y */
    int *active;       /* (max_N) backward: indices of the samples of nonzero weight */
    /* device memory, saved by forward: */
    float *emb_norm;   /* (max_N) |f| */
    float *emb_hat;    /* (max_N, D) f / |f| */
    float *w_norm;     /* (K S) |w_j| */
    float *w_inv_norm; /* (K S) 1 / max(|w_j|, 1e-12) */
    float *w_hat;      /* (K S, D) w_j / |w_j| */
    float *cos;        /* (max_N, K) the class cosines */
    /* device memory, S > 1 only (NULL with S = 1): */
    float *cos_sub;    /* (max_N, K S) the sub-centres' cosines */
    int *sub_arg;      /* (max_N, K) the s of the max of each class */
    float *dcos_sub;   /* (max_N, K S) dcos scattered to the sub-centres, / |w_cs| */
    float *ones;       /* (K) 1: the / |w| of the class-level dcos is the sub-centre's, applied by the scatter */
    /* device memory: the per-sample inputs and outputs of loss and backward */
    int *dev_labels, *dev_active;             /* (max_N) */
    uint8_t *dev_form, *dev_correct;          /* (max_N) */
    float *dev_weight, *dev_loss, *dev_cos_target, *dev_p_target; /* (max_N) */
    /* device scratch of backward: only the samples of nonzero weight enter the matrix products */
    float *dcos;           /* (max_N, K) d loss / d cos_ij / |w_j| */
    float *emb_hat_active; /* (max_N, D) their normalised embeddings */
    float *demb_hat;       /* (max_N, D) d loss / d emb_hat of those samples */
    float *col_coef;       /* (K S) sum_i dcos_ij cos_ij / |w_j| (the projection of each w_j's gradient) */
    float *row_coef;       /* (max_N) sum_j dcos_ij cos_ij (the projection of each f_i's gradient) */
} comine_arcface;

void comine_arcface_init(comine_arcface *h, const comine_backend *be, int D, int K, int max_N);
/* A head of K classes with S >= 1 sub-centres each (S = 1: comine_arcface_init).  COMINE_ERR_ARG
 * (h untouched) when S > 1 and the backend has no sub-centre kernels. */
comine_status comine_arcface_init_subcenters(comine_arcface *h, const comine_backend *be, int D, int K, int S,
                                             int max_N);
void comine_arcface_free(comine_arcface *h);
/* Partial FC (partial_fc.h): make the head one of K >= 0 classes for the next forward (S = 1);
 * the class-sized buffers grow when K is above max_K (their contents are per step) and never
 * shrink.  K = 0 (a shard with no sampled class): the shard calls below see no class. */
void comine_arcface_set_classes(comine_arcface *h, int K);

/* emb is (N, D), weight is (K S, D), both device memory: normalise both, cosines (N, K)
 * (with S > 1 the max over each class's sub-centres) saved in h.  labels, form, loss and sample weights below are host memory. */
void comine_arcface_forward(comine_arcface *h, const float *emb, const float *weight, int N);
/* loss (N): -log p_y under each sample's form (form NULL = all COMINE_FORM_ARCFACE);
 * labels (N) in [0, K).  Fills cos_target, p_target, correct. */
void comine_arcface_loss(comine_arcface *h, float *loss, const int *labels, const uint8_t *form, int N,
                         const comine_arcface_cfg *cfg);
/* demb (N, D) and dweight (K S, D) accumulate d(sum_i sample_weight[i] * loss_i) under each
 * sample's form; samples of weight 0 contribute nothing (and cost nothing).  emb and weight
 * must hold the values given to the last forward (weight enters a matrix product). */
void comine_arcface_backward(comine_arcface *h, float *demb, float *dweight, const float *emb,
                             const float *weight, const int *labels, const uint8_t *form,
                             const float *sample_weight, int N, const comine_arcface_cfg *cfg);
/* Diagnostics of the last forward+loss: mean cos th_y and mean negative cosine. */
void comine_arcface_cos_stats(const comine_arcface *h, const int *labels, int N, double *mean_target,
                              double *mean_negative);

/* ---- the class-sharded head (CPU backend) ----------------------------------------------------
 * A head of Ktot classes split over P shards: shard r is a comine_arcface of K = its classes
 * [c0, c0 + K), with its rows of the weights; every shard sees all N embeddings.  The caller
 * combines the shards' per-row numbers between the calls (over ranks: dist.h's all-reduce):
 *   forward on every shard (cosines of its classes)
 *   shard_target: cos th_y where the shard owns y, else 0        -> sum over shards = target_cos
 *   shard_max:    the row's largest logit on the shard (the target logit included) and largest
 *                 cosine                                         -> max over shards = zmax, max_cos
 *   shard_sum:    sum of e^{z_j - zmax} and of cos th_j over the shard's negatives (j != y)
 *                                                                -> sum over shards = neg_sum, neg_cos_sum
 *   shard_loss:   per-sample losses (as comine_arcface_loss, correct = cos th_y is the largest
 *                 cosine), on any shard: the same on every one
 *   shard_backward: demb (N, D) accumulates this shard's part of d(sum_i weight_i loss_i)/d emb
 *                 (sum over shards = the full head's), dweight (K, D) accumulates the shard's rows.
 * Every form (plain, margin, mv; weight through sample_weight) and both fallbacks: the target
 * logit is computed from target_cos on every shard.  The same numbers as the full head up to
 * the order of the sums. */
void comine_arcface_shard_target(const comine_arcface *h, float *target_cos, const int *labels, int c0, int N);
void comine_arcface_shard_max(const comine_arcface *h, double *zmax, float *max_cos, const float *target_cos,
                              const int *labels, const uint8_t *form, int c0, int N, const comine_arcface_cfg *cfg);
void comine_arcface_shard_sum(const comine_arcface *h, double *neg_sum, double *neg_cos_sum, const double *zmax,
                              const float *target_cos, const int *labels, const uint8_t *form, int c0, int N,
                              const comine_arcface_cfg *cfg);
/* loss (N); fills h's cos_target, p_target, correct. */
void comine_arcface_shard_loss(comine_arcface *h, float *loss, const float *target_cos, const double *zmax,
                               const double *neg_sum, const float *max_cos, const uint8_t *form, int N,
                               const comine_arcface_cfg *cfg);
void comine_arcface_shard_backward(comine_arcface *h, float *demb, float *dweight, const float *weight,
                                   const int *labels, const uint8_t *form, const float *sample_weight,
                                   const float *target_cos, const double *zmax, const double *neg_sum, int c0, int N,
                                   const comine_arcface_cfg *cfg);

#endif
