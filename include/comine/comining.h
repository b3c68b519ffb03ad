/* comining.h: the method, as one pure function of per-sample loss arrays.
 *
 * Given the two peers' per-sample losses on the same mini-batch and the epoch's drop rate,
 * it splits the batch into C (both agree clean), XA / XB (exchanged), N (both distrust:
 * noisy) and answers, for each peer, the loss form and weight of every sample.  Every mode
 * of ../METHOD.md is a different answer; the rest of the training step does not know which
 * mode runs.  Ties: lower index first. */
#ifndef COMINE_COMINING_H
#define COMINE_COMINING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    COMINE_MODE_ARCFACE = 0, /* 1 peer, whole batch */
    COMINE_MODE_SELF,        /* A on GA, B on GB */
    COMINE_MODE_NLD,         /* both on the batch minus N, plain */
    COMINE_MODE_COTEACH,     /* A on GB, B on GA, plain */
    COMINE_MODE_COMINING,    /* A on C~ + XA, B on C~ + XB */
    COMINE_MODE_ORACLE       /* 1 peer, truly clean samples only */
} comine_mode;

typedef enum { COMINE_REWEIGHT_MARGIN = 0, COMINE_REWEIGHT_WEIGHT, COMINE_REWEIGHT_MV } comine_reweight;

/* When comining's re-weighting of C is in force over the epochs (see comine_reweight_share). */
typedef enum {
    COMINE_RW_ALWAYS = 0, /* from the first epoch (the paper's) */
    COMINE_RW_FROM_TK,    /* from epoch tk on, once the drop rate has grown to tau */
    COMINE_RW_RAMP        /* growing with the drop rate: a share min(e / tk, 1) of it */
} comine_reweight_schedule;

typedef struct comine_select_cfg {
    comine_mode mode;
    comine_reweight reweight; /* comining only: how C is re-weighted */
    float w;                  /* COMINE_REWEIGHT_WEIGHT: C's losses count w times (>= 1) */
    comine_reweight_schedule schedule; /* comining only: when the re-weighting applies */
} comine_select_cfg;

typedef struct comine_sets {
    int n;               /* batch size */
    int keep;            /* k = round((1 - r) n), at least 1 */
    int n_clean;         /* |C| */
    int n_exchanged_a;   /* |XA| = |GB \ GA| */
    int n_exchanged_b;   /* |XB| = |GA \ GB| */
    int n_noisy;         /* |N| */
} comine_sets;
/* For the 1-peer modes (arcface, oracle) there is no selection: keep = n_clean = the size of
 * the update set (n, or the truly clean samples), the other counts 0. */

/* r(e) = tau * min(e / tk, 1), e 0-based (tk <= 0: tau from the start). */
float comine_drop_rate(int epoch, float tau, int tk);
/* k = round((1 - r) n), clamped to [1, n] (n >= 1). */
int comine_keep_count(int n, float drop_rate);
bool comine_mode_two_peers(comine_mode mode);
bool comine_mode_detects(comine_mode mode); /* modes whose N is a noise vote */
const char *comine_mode_name(comine_mode mode);
bool comine_mode_parse(const char *s, comine_mode *mode);
const char *comine_reweight_name(comine_reweight r);
bool comine_reweight_parse(const char *s, comine_reweight *r);
/* The share of the re-weighting in force at epoch e (0-based) of a drop-rate warm-up of tk
 * epochs: ALWAYS 1; FROM_TK 0 before epoch tk, then 1; RAMP min(e / tk, 1) (tk <= 0: 1).  The
 * trainer applies it as dm * share (margin), 1 + (w - 1) * share (weight), 1 + (t - 1) * share
 * (mv): share 0 is the plain form, 1 the configured one. */
float comine_reweight_share(comine_reweight_schedule s, int epoch, int tk);
const char *comine_reweight_schedule_name(comine_reweight_schedule s);
bool comine_reweight_schedule_parse(const char *s, comine_reweight_schedule *out);

/* The collapse of METHOD.md: a peer whose mean target cosine and mean negative cosine are
 * both below -0.5 has driven every cosine towards -1 and stopped learning. */
bool comine_collapsed(double mean_target_cos, double mean_negative_cos);

/* One peer's answer: for each sample of the batch, the loss form (comine_loss_form) and the
 * weight in the peer's loss; weight 0 = not learned from.  Weights are normalised by the size
 * of the peer's update set, so the peer's loss is sum_i weight[i] * loss_i.  Caller-owned
 * arrays of n. */
typedef struct comine_peer_plan {
    uint8_t *form;
    float *weight;
} comine_peer_plan;

/* What the selection answers for a batch.  The caller points plan_a, plan_b (unused by the
 * 1-peer modes) and noisy at arrays of n; comine_select fills them and sets. */
typedef struct comine_selection {
    comine_peer_plan plan_a, plan_b;
    uint8_t *noisy;     /* (n) 1 for the samples in N: the noise votes (all 0 for modes that do not detect) */
    comine_sets sets;
} comine_selection;

/* Bytes of scratch comine_select needs for batches of up to n samples. */
size_t comine_select_scratch_bytes(int n);

/* In:  loss_a, loss_b (n): per-sample plain ArcFace losses (loss_b unused for 1-peer modes);
 *      truth_noisy (n): 1 where the label is known wrong (oracle only; may be NULL otherwise).
 * Out: sel (see comine_selection).
 * Scratch: comine_select_scratch_bytes(n) bytes owned by the caller; nothing is allocated.
 * n may be 1; ties break to the lower index. */
void comine_select(comine_selection *sel, const float *loss_a, const float *loss_b, const uint8_t *truth_noisy,
                   int n, float drop_rate, const comine_select_cfg *cfg, void *scratch);

#endif
