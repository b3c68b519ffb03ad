/* detect.h: the noise report ranked by embeddings.  After a run, each sample is scored by the
 * cosine between its embedding (flip test, the ensemble of the run's peers, as
 * comine_embed_dataset) and the mean embedding of the other trusted samples of its label (the
 * samples the votes did not flag); the samples of lowest cosine are the suspects, as many as
 * the run's drop rate says.  Measured against the votes on the LFW protocol in
 * docs/EXPERIMENTS.md ("The noise report ranked by embeddings").
 *
 * The reference of sample i with label y is R = sum of the embeddings of the trusted samples of
 * y, minus e_i when i is trusted itself (leave one out); a label with no trusted sample takes all
 * its samples instead.  score_i = <e_i, R> / |R|.  A sample whose reference is empty (the only
 * sample of its label) has no score: scored[i] = 0. */
#ifndef COMINE_DETECT_H
#define COMINE_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "comine/core.h"
#include "comine/data.h"
#include "comine/model.h"

/* The scores from embeddings emb (n, dim), rows L2-normalised, labels in [0, K). */
void comine_detect_scores(float *score, uint8_t *scored, const float *emb, const int *labels,
                          const uint8_t *trusted, int n, int K, int dim);

/* The same from the models on every sample of ds (labels ds->samples[i].label).  The data set is
 * embedded chunk by chunk; the embeddings are kept for the second pass when they take at most
 * hold_bytes, else embedded again (the same chunks, so the same figures).  Memory: the label
 * sums (num_classes x emb_dim doubles), one chunk, and the embeddings when held.  progress: a
 * label for a line "LABEL: embedded i / n images (r/s, t s left)" every 2 s (NULL: quiet). */
comine_status comine_detect_scores_models(float *score, uint8_t *scored, comine_model *const *models, int n_models,
                                          const comine_dataset *ds, const uint8_t *trusted, int batch, int threads,
                                          size_t hold_bytes, const char *progress);

/* The verdict: among the scored samples, the round(rate x n_scored) of lowest score (ties to the
 * lower index); an unscored sample keeps the votes' verdict (vote_flag, may be NULL: not
 * flagged).  flag (n) gets 1 / 0; returns how many are flagged. */
int comine_detect_flag(uint8_t *flag, const float *score, const uint8_t *scored, const uint8_t *vote_flag, int n,
                       double rate);

#endif
