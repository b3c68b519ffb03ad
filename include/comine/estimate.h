/* estimate.h: the noise rate (tau) estimated from the two peers at the end of the warm-up,
 * before the drop rate grows (`--tau auto`, `comine estimate`).  What the trainer has then is
 * every sample's cos(theta_y) under each peer (the cos_epoch<E>.csv table of the run folder);
 * with a model and a data set, also whether each peer places a sample outside its label.
 * Every estimator reads the per-sample statistic x_i = the mean over the peers of
 * cos(theta_y) (samples with a missing cosine are left out):
 *   mixture  two-component Gaussian mixture fitted by EM on x; tau = weight of the low one
 *   beta     two-component Beta mixture on (x + 1) / 2 (EM, weighted moments); tau likewise
 *   mirror   the high (clean) mode's upper side is free of wrong labels: clean mass = twice
 *            the mass above the mode of x (Gaussian kernel density, Silverman's bandwidth);
 *            tau = 1 - that
 *   outside  the share of samples that every peer places outside their label (argmax of
 *            the cosines != label); only when those flags are given
 * The rule that picks `tau` among them is documented at comine_estimate_tau and in
 * docs/EXPERIMENTS.md ("Duplicates and the noise rate"), with the measurements behind it. */
#ifndef COMINE_ESTIMATE_H
#define COMINE_ESTIMATE_H

#include <stdint.h>

#include "comine/core.h"
#include "comine/model.h"

/* A two-component mixture on one variable; component 0 is the low one (smaller mean). */
typedef struct comine_mixture2 {
    double weight[2], mean[2], sd[2];
    /* Beta components: the shape parameters on (x + 1) / 2 (NAN for a Gaussian mixture) */
    double alpha[2], beta[2];
    double log_likelihood;
    int iterations;
} comine_mixture2;

/* EM for two Gaussians on x (n); starts from the 10th and 90th percentiles, runs until the
 * log-likelihood gains less than 1e-9 per sample or 500 iterations; each sd floored at 1e-3.
 * Errors: fewer than 4 values. */
comine_status comine_mixture_gauss2(comine_mixture2 *m, const double *x, int n);

/* EM for two Beta laws on (x + 1) / 2, x in [-1, 1] (clipped to 1e-4 inside the ends); the
 * M-step matches each component's weighted mean and variance (method of moments).  Starts
 * from the split at the 30th percentile.  mean / sd are reported on x's scale. */
comine_status comine_mixture_beta2(comine_mixture2 *m, const double *x, int n);

/* 1 - 2 x (share of x above the mode of its kernel density), clamped to [0, 1]; mode (may be
 * NULL) gets the mode.  NAN when n < 2. */
double comine_tau_mirror(const double *x, int n, double *mode);

typedef enum {
    COMINE_TAU_MIXTURE,
    COMINE_TAU_BETA,
    COMINE_TAU_MIRROR,
    COMINE_TAU_OUTSIDE,
} comine_tau_method;
const char *comine_tau_method_name(comine_tau_method m);

typedef struct comine_tau_estimate {
    double tau;                  /* the estimate, by the rule of comine_estimate_tau */
    comine_tau_method method;    /* the estimator it comes from */
    double mixture, beta, mirror, outside; /* each estimator, NAN when it cannot be computed */
    comine_mixture2 gauss, beta_fit;
    double mode;                 /* of the mirror estimator */
    int n;                       /* samples used (a cosine under every peer) */
    int n_peers;
} comine_tau_estimate;

/* The noise rate from the peers' per-sample cosines at the end of the warm-up.
 *   cos      (n, 2): cos(theta_y) under peer A and B (the trainer's cos snapshot, the layout
 *            of comine_cos_write); column 1 is read only when n_peers == 2; NAN = unseen
 *   outside  (n, 2) or NULL: 1 where that peer's largest cosine is not the label's
 * Rule: tau = the Beta mixture's low weight, or, when the flags are given, the smaller of it
 * and the outside share (each of the two fails by counting clean samples as noisy: the clean
 * mode's lower tail split off, clean samples the peers have not learnt yet); clamped to
 * [0, 0.95]; the others are reported beside it.  Measured in docs/EXPERIMENTS.md, "Duplicate
 * identities and the noise rate".
 * Errors: n_peers not 1 or 2, fewer than 4 samples with every cosine. */
comine_status comine_estimate_tau(comine_tau_estimate *e, const float *cos, int n, int n_peers,
                                  const uint8_t *outside);

/* The peers' backbones held in a run's checkpoint.bin (the state the checkpoint resumes at:
 * after a run stopped at the end of the warm-up, the warm-up's networks), for embedding with
 * the run's own heads (comine_run_heads_load reads those).  The file is first checked whole by
 * comine_run_heads_load (checksum, sizes); models (2) gets n_peers models, the rest NULL. */
comine_status comine_run_peer_models_load(comine_model **models, int *n_peers, const char *checkpoint_path,
                                          const comine_backend *be, int max_batch);

#endif
