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
} comine_arcface_cfg;

void comine_arcface_cfg_default(comine_arcface_cfg *cfg);

typedef struct comine_arcface {
    const comine_backend *be;
    int D, K, max_N;
    int N;             /* rows of the last forward */
    /* host memory, written by loss, per sample: */
    float *cos_target; /* (max_N) cos th_y */
    float *p_target;   /* (max_N) probability of the label under the sample's form */
    uint8_t *correct;  /* (max_N) 1 when argmax_j cos th_j == y */
    int *active;       /* (max_N) backward: indices of the samples of nonzero weight */
    /* device memory, saved by forward: */
    float *emb_norm;   /* (max_N) |f| */
    float *emb_hat;    /* (max_N, D) f / |f| */
    float *w_norm;     /* (K) |w_j| */
    float *w_inv_norm; /* (K) 1 / max(|w_j|, 1e-12) */
    float *w_hat;      /* (K, D) w_j / |w_j| */
    float *cos;        /* (max_N, K) */
    /* device memory: the per-sample inputs and outputs of loss and backward */
    int *dev_labels, *dev_active;             /* (max_N) */
    uint8_t *dev_form, *dev_correct;          /* (max_N) */
    float *dev_weight, *dev_loss, *dev_cos_target, *dev_p_target; /* (max_N) */
    /* device scratch of backward: only the samples of nonzero weight enter the matrix products */
    float *dcos;           /* (max_N, K) d loss / d cos_ij / |w_j| */
    float *emb_hat_active; /* (max_N, D) their normalised embeddings */
    float *demb_hat;       /* (max_N, D) d loss / d emb_hat of those samples */
    float *col_coef;       /* (K) sum_i dcos_ij cos_ij / |w_j| (the projection of each w_j's gradient) */
    float *row_coef;       /* (max_N) sum_j dcos_ij cos_ij (the projection of each f_i's gradient) */
} comine_arcface;

void comine_arcface_init(comine_arcface *h, const comine_backend *be, int D, int K, int max_N);
void comine_arcface_free(comine_arcface *h);

/* emb is (N, D), weight is (K, D), both device memory: normalise both, cosines (N, K)
 * saved in h.  labels, form, loss and sample weights below are host memory. */
void comine_arcface_forward(comine_arcface *h, const float *emb, const float *weight, int N);
/* loss (N): -log p_y under each sample's form (form NULL = all COMINE_FORM_ARCFACE);
 * labels (N) in [0, K).  Fills cos_target, p_target, correct. */
void comine_arcface_loss(comine_arcface *h, float *loss, const int *labels, const uint8_t *form, int N,
                         const comine_arcface_cfg *cfg);
/* demb (N, D) and dweight (K, D) accumulate d(sum_i sample_weight[i] * loss_i) under each
 * sample's form; samples of weight 0 contribute nothing (and cost nothing).  emb and weight
 * must hold the values given to the last forward (weight enters a matrix product). */
void comine_arcface_backward(comine_arcface *h, float *demb, float *dweight, const float *emb,
                             const float *weight, const int *labels, const uint8_t *form,
                             const float *sample_weight, int N, const comine_arcface_cfg *cfg);
/* Diagnostics of the last forward+loss: mean cos th_y and mean negative cosine. */
void comine_arcface_cos_stats(const comine_arcface *h, const int *labels, int N, double *mean_target,
                              double *mean_negative);

#endif
