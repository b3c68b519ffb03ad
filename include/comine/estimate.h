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
 * docs/NOISE_RATE.md, with the measurements behind it.
 * A network trained on the labels fits the wrong ones too, and every estimator above then gives
 * back the rate it dropped; cross-fitting (comine_tau_crossfit: networks trained on one half of
 * each label's samples rank the other half, Storey's estimate on the ranks) is what `--tau
 * auto` uses. */
#ifndef COMINE_ESTIMATE_H
#define COMINE_ESTIMATE_H

#include <stdbool.h>
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
    COMINE_TAU_RANK,     /* comine_tau_storey on the samples' rank p-values */
    COMINE_TAU_CROSSFIT, /* comine_tau_crossfit */
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
 * [0, 0.95]; the others are reported beside it.  Measured in docs/NOISE_RATE.md.
 * Errors: n_peers not 1 or 2, fewer than 4 samples with every cosine. */
comine_status comine_estimate_tau(comine_tau_estimate *e, const float *cos, int n, int n_peers,
                                  const uint8_t *outside);

#define COMINE_STOREY_GRID 18 /* Storey's lambda: 0.05, 0.10, .. 0.90 */

/* Storey's estimate of the share of samples whose label is no better than a random other
 * label: p (n, 2) holds each sample's rank p-value under each peer (the share of the other
 * labels whose centre is at least as near as its own label's, ties counted half; NAN = not
 * known), column 1 read when n_peers == 2.  A wrongly labelled sample that the network has
 * not fitted has the p-value of a random label; a correct one a small p.  So for any lambda in
 * (0, 1), pi0(lambda) = #{p > lambda} / (n T(lambda)) over-counts the wrong labels only by the
 * correct ones above lambda, T(lambda) being the share of a wrong label's p-values above
 * lambda: tail (n_peers x COMINE_STOREY_GRID, one row per peer, see comine_rank_null_tail),
 * or, with tail NULL, 1 - lambda (a uniform p).  lambda is chosen by the bootstrap of Storey,
 * Taylor and Siegmund (2004): on the grid 0.05 .. 0.90, the one whose 200 resampled pi0 lie
 * nearest, in mean square, to the smallest pi0 of the grid.  Each peer's pi0 is computed apart
 * and the two averaged.  *pi0 gets the estimate (at most 1), *lambda (may be NULL) the lambda
 * chosen.  Deterministic for a seed.  Errors: n_peers not 1 or 2, fewer than 20 samples with
 * every p, a tail outside (0, 1]. */
comine_status comine_tau_storey(double *pi0, double *lambda, const float *p, int n, int n_peers, const double *tail,
                                uint64_t seed);

/* The law of a wrong label's rank p-value, measured on the ranked samples themselves.  A
 * label that wrong samples reach at random, whatever its size (a label flipped to a random
 * other), ranks like a random label: a uniform p.  But where the wrong samples fall on images
 * at random (each image as likely as any other to be wrong, as in a scraped set), a label gets
 * them in proportion to its size, and a large label, well learnt, scores a stranger's face
 * lower than a small one does: their p-values lean high.  comine_label_pvalues measures that
 * law by moving each ranked sample to every other label z of its comparison and ranking z
 * there (among the labels but z, the sample's own label scored without it), z weighted by its
 * number of samples: above[g] sums over the samples the weighted share of the z with p >
 * lambda_g, rows counts the samples. */
typedef struct comine_rank_null {
    double above[COMINE_STOREY_GRID];
    double rows;
} comine_rank_null;

/* Adds one sample's row to nl: scores (K) the score of every label the sample is compared
 * with (NAN: left out), its own label y's computed without it; count (K) each label's samples
 * (a label of none is never a destination).  What comine_label_pvalues does for each of its
 * rows; rows are best spaced to at most COMINE_RANK_NULL_ROWS per data set (a sort of K per
 * row). */
#define COMINE_RANK_NULL_ROWS 4096
void comine_rank_null_add(comine_rank_null *nl, const float *scores, int K, int y, const int *count);

/* tail[g] (COMINE_STOREY_GRID) = (1 - by_image) (1 - lambda_g) + by_image x (the share of
 * nl's p-values above lambda_g): the null law when a share by_image of the wrong labels fell
 * on images at random and the rest on labels at random (nl NULL or empty: 1 - lambda_g). */
void comine_rank_null_tail(double *tail, const comine_rank_null *nl, double by_image);

/* Each sample's rank p-value and cos(theta_y) against label centres: emb (n, D) normalised
 * embeddings, labels (n), centres (K, D) (any length; a zero row is no centre and is left
 * out).  A label's score is its centre's cosine; with add_means, the larger of that and the
 * cosine to the mean of these n embeddings of that label, the sample itself left out of its
 * own label's (a label whose centre was learnt from mostly wrong samples is rescued by its
 * faces here, one with few faces here by its centre).  Labels with no embedding here are then
 * left out of the comparison, and a sample alone in its label is ranked by the centres only.
 * p[i * stride] = the share of the other labels whose score is above the label's (ties count
 * half), cos[i * stride] = the cosine to the label's centre (either may be NULL); NAN where the
 * label has no centre.  null (may be NULL): the null law of comine_rank_null is added to it,
 * from at most 4096 of the samples, evenly spaced.  The products go through the backend's GEMM
 * by blocks of rows: memory n x K floats is never held. */
void comine_label_pvalues(float *p, float *cos, int stride, const float *emb, const int *labels, int n, int D,
                          const float *centres, int K, bool add_means, comine_rank_null *null);

#define COMINE_CROSSFIT_FOLDS_MAX 10

/* Cross-fitting's settings (comine_crossfit_opts_default: 2 folds, 8 epochs, 1 round). */
typedef struct comine_crossfit_opts {
    int folds;  /* parts each label's samples are split into, 2 to COMINE_CROSSFIT_FOLDS_MAX */
    int epochs; /* epochs of each fold's network (mode arcface) */
    int rounds; /* 1 to 9 */
    /* the share of the wrong labels taken to have fallen on images at random (the rest on
     * labels at random): Storey's null is comine_rank_null_tail's with it; 0 to 1 */
    double by_image;
} comine_crossfit_opts;

void comine_crossfit_opts_default(comine_crossfit_opts *o); /* by_image 0.5 */

struct comine_train_cfg;
/* The noise rate of a data set by cross-fitting (`train --tau auto`, `comine estimate --data`):
 * each label's samples are shuffled with the seed and split in o->folds folds of equal size
 * (within one); for each fold, a network of base's architecture is trained in mode arcface for
 * o->epochs on the label's other folds, and that fold is embedded and ranked against its
 * ArcFace head and the means of its own labels (comine_label_pvalues with add_means: the
 * centres of labels whose training folds were mostly wrong are helped by the held-out faces).
 * The runs are dir/half1 and dir/half2 with 2 folds (half h trains on fold h and ranks the
 * other), dir/fold1 .. dir/foldF with more (fold f's run ranks fold f); resumed when present.
 * A network that has not seen a sample cannot have fitted its label: a wrong label ranks like
 * a random one.  tau = comine_tau_storey over every fold's p-values, its null measured on the
 * ranked samples (comine_rank_null_tail with o->by_image).  With rounds > 1, each
 * further round trains the networks again (dir/roundR/...) without the ceil(tau m) samples
 * of largest p-value in the last round, and ranks every sample again (a label whose kept
 * training folds are empty keeps its last p-values); tau is the last round's.  Collective
 * under MPI (every rank trains; rank 0 ranks the samples and broadcasts the result).
 * *lambda and *n (may be NULL): Storey's lambda, the samples ranked; pvalues (may be NULL;
 * the data set's n, rank 0 only): each sample's p-value (NAN: not ranked).  Errors: options
 * out of range, a data set with fewer than 2 labels of 2 samples or more, training errors. */
comine_status comine_tau_crossfit(double *tau, double *lambda, int *n, float *pvalues,
                                  const struct comine_train_cfg *base, const comine_crossfit_opts *o,
                                  const char *dir);

/* The peers' backbones held in a run's checkpoint.bin (the state the checkpoint resumes at:
 * after a run stopped at the end of the warm-up, the warm-up's networks), for embedding with
 * the run's own heads (comine_run_heads_load reads those).  The file is first checked whole by
 * comine_run_heads_load (checksum, sizes); models (2) gets n_peers models, the rest NULL. */
comine_status comine_run_peer_models_load(comine_model **models, int *n_peers, const char *checkpoint_path,
                                          const comine_backend *be, int max_batch);

#endif
