/* dedup.h: duplicate identities (one person under two labels, as when two data sets are
 * merged).  Each label gets a vector (the mean embedding of its samples, all or the trusted
 * ones, its class centre in the ArcFace heads of a run, or both side by side); a blocked top-k
 * search (matrix products of row blocks, sgemm) finds every label's most similar other
 * labels in bounded memory, never a K x K matrix; the pairs from those lists are ranked by
 * similarity and kept when above a threshold read off the distribution of every label's
 * nearest-other-label similarity (median + k_sigma x robust spread, see
 * comine_dedup_threshold) and, by default, each the other's nearest label
 * (comine_dedup_select); a merge map relabels the list with one label per group of duplicates. */
#ifndef COMINE_DEDUP_H
#define COMINE_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include "comine/core.h"
#include "comine/data.h"
#include "comine/model.h"

/* ---- label vectors --------------------------------------------------------------------- */
/* Copy the rows of src (n, d) into columns [offset, offset + d) of x (n, stride), each row
 * scaled to length `len` (a zero row stays zero).  Placing blocks of lengths l_1 .. l_m with
 * sum l_i^2 = 1 side by side makes the inner product of two rows the weighted sum
 * sum l_i^2 cos_i of the blocks' cosines (equal weights: l_i = 1 / sqrt(m)). */
void comine_dedup_put_block(float *x, int n, int stride, int offset, const float *src, int d, float len);

/* Subtract the mean row from every row of src (n, d) in place (rows are first L2-normalised):
 * the direction all labels share (a network's embeddings and a head's centres are far from
 * zero-mean) then no longer inflates every cosine; put_block normalises again afterwards. */
void comine_dedup_center_rows(float *src, int n, int d);

/* The mean embedding of every label (ds's labels 0 .. ds->num_classes-1) over the samples with
 * use[i] != 0 (use NULL: all), L2-normalised; a label without such samples takes the mean of
 * all its samples (fallback[label] = 1, may be NULL), one without samples is a zero row.
 * Embeddings as comine_embed_dataset (flip test, ensemble of the models), computed `chunk`
 * samples at a time, so memory is the means plus one chunk.  means is (num_classes, emb_dim);
 * used (num_classes, may be NULL) gets the samples averaged per label. */
comine_status comine_dedup_label_means(float *means, int *used, uint8_t *fallback, comine_model *const *models,
                                       int n_models, const comine_dataset *ds, const uint8_t *use, int batch,
                                       int threads);

/* Embed samples idx[0 .. m) of ds (as comine_embed_dataset), 16 batches at a time, and hand
 * each chunk to visit(ctx, the chunk's sample indices, its embeddings (count, dim), count, dim). */
typedef void (*comine_dedup_visit_fn)(void *ctx, const int *idx, const float *emb, int count, int dim);
comine_status comine_dedup_embed_visit(comine_model *const *models, int n_models, const comine_dataset *ds,
                                       const int *idx, int m, int batch, int threads, comine_dedup_visit_fn visit,
                                       void *ctx);
/* sums (num_classes, emb_dim) += sign x the embeddings of samples idx[0 .. m), by label. */
comine_status comine_dedup_label_sums(double *sums, comine_model *const *models, int n_models,
                                      const comine_dataset *ds, const int *idx, int m, double sign, int batch,
                                      int threads);

/* ---- size-corrected scores (`comine dedup --score ratio`, the default) ----------------------
 * The cosine of two labels' mean embeddings is lower for small labels: the mean of a few faces
 * is shorter than that of many (|mean|^2 = 1/n + (1 - 1/n) w, w the label's mean cosine
 * between two of its faces), so the two halves of a split person, a few faces each, score
 * below two large labels of look-alikes.  The ratio score of labels a and b is
 *     r(a, b) = c(a, b) / sqrt(w'_a w'_b),
 * c(a, b) the mean cosine between a face of a and a face of b, w'_a label a's within-label mean
 * cosine shrunk towards the median w of the labels with >= 6 faces by `shrink` pseudo-pairs,
 *     w'_a = (p_a w_a + shrink x median) / (p_a + shrink),   p_a = n_a (n_a - 1) / 2
 * (a label of one or two faces says little about its own spread), at least 1e-3.  Two halves of
 * one set of faces score about 1, two people w_between / w_within.  Before it, each label of
 * n >= 3 faces drops its floor(trim x n) faces least like its mean (the wrong ones of a noisy
 * label).  Chosen on measured runs (docs/DEDUP.md): trim 0.2, shrink 3. */
#define COMINE_DEDUP_TRIM 0.2
#define COMINE_DEDUP_SHRINK 3.0

/* drop (n) = 1 for the floor(frac x c) samples of lowest cosine[i] of each label of c >= 3
 * samples with keep[i] != 0 (keep NULL: all), ties to the lower index; 0 elsewhere.  Returns
 * how many.  label (n) in 0 .. K - 1. */
int comine_dedup_trim_select(uint8_t *drop, const float *cosine, const int *label, const uint8_t *keep, int n, int K,
                             double frac);

/* The ratio vectors from per-label sums (K, d) of unit embeddings and counts (K): row a =
 * len x sums_a / (count_a sqrt(w'_a)), so that the inner product of rows a and b is len^2 r(a, b);
 * a label of count 0 is a zero row.  within (K, may be NULL) gets w'. */
void comine_dedup_ratio_vectors(float *vec, const double *sums, const int *count, int K, int d, double shrink,
                                float len, double *within);

/* The whole score under one model (or an ensemble): the label sums of the samples with
 * use[i] != 0 (use NULL: all; a label with none uses all its samples), the trim, then
 * comine_dedup_ratio_vectors into vec (K, emb_dim).  The trim needs every sample's cosine to
 * its label's mean: from the embeddings kept in memory when they take at most cache_bytes
 * (one pass over the images), else from a second pass, and a third over the dropped samples,
 * which are subtracted.  used (K, may be NULL) gets the samples kept per label; *dropped (may
 * be NULL) how many were trimmed; *one_pass (may be NULL) whether the images were embedded
 * once. */
comine_status comine_dedup_label_ratio(float *vec, int *used, int *dropped, bool *one_pass,
                                       comine_model *const *models, int n_models, const comine_dataset *ds,
                                       const uint8_t *use, double trim, double shrink, float len, size_t cache_bytes,
                                       int batch, int threads);

/* ---- search ------------------------------------------------------------------------------ */
/* For every row i of x (n, d) (rows L2-normalised, so scores are cosines), the k other rows of
 * highest inner product, in descending order, ties to the lower index: nbr (n, k) indices and
 * sim (n, k) scores; -1 and -INFINITY pad the lists when n - 1 < k.  The products are computed
 * tile by tile (block x block, sgemm), each tile once (the upper triangle of block pairs:
 * its rows update the row block, its transpose the column block).  Memory besides x, nbr and
 * sim: 2 block^2 floats.  block <= 0: 2048.  Errors: n < 1, d < 1, k < 1. */
comine_status comine_dedup_topk(int *nbr, float *sim, const float *x, int n, int d, int k, int block);

/* ---- pairs -------------------------------------------------------------------------------- */
typedef struct comine_dedup_pair {
    int a, b;          /* labels, a < b */
    float score;       /* similarity of the two labels' vectors */
} comine_dedup_pair;

/* Every distinct pair {i, j} with j in i's list or i in j's (the candidates), sorted by score
 * descending, then (a, b) ascending.  Returns the count; *pairs is malloc'd. */
int comine_dedup_candidates(comine_dedup_pair **pairs, const int *nbr, const float *sim, int n, int k);

/* The automatic threshold, from the nearest-other-label similarities s_1 .. s_n (nearest[i] =
 * sim[i * k], padding ignored):
 *   threshold = median(s) + k_sigma * sigma,   sigma = 1.4826 * median(|s - median(s)|)
 * (the MAD, scaled to a normal law's standard deviation).  Most labels' nearest neighbour is
 * another person; a duplicate's is its twin, in the upper tail.  The median and the MAD stay
 * those of the bulk as long as fewer than half the labels have a twin.  The default k_sigma
 * (2 for the cosine of two labels' vectors, 1.5 for the ratio score) and the mutual-neighbour
 * condition of comine_dedup_select were chosen on measured runs (docs/EVALUATION.md,
 * "Duplicate identities"; docs/DEDUP.md).  rule (may be NULL) gets the numbers. */
#define COMINE_DEDUP_K_SIGMA 2.0
#define COMINE_DEDUP_K_SIGMA_RATIO 1.5
typedef struct comine_dedup_rule {
    int n;             /* labels with a neighbour */
    double median, sigma, k_sigma, threshold;
} comine_dedup_rule;
double comine_dedup_threshold(const float *sim, int n, int k, double k_sigma, comine_dedup_rule *rule);

/* The candidates judged duplicate: score > threshold and, when `mutual`, each label the other's
 * nearest other label (nbr[a * k] == b and nbr[b * k] == a).  is_dup (n_cand) gets 1 / 0;
 * returns how many. */
int comine_dedup_select(uint8_t *is_dup, const comine_dedup_pair *cand, int n_cand, const int *nbr, int k,
                        double threshold, bool mutual);

/* The whole rule on label vectors x (n, d), as `comine dedup` applies it: the top-k search
 * (comine_dedup_topk, tiles of `block`), the candidates, the automatic threshold at k_sigma
 * (or `threshold` when it is finite) and the selection (mutual or not).  *pairs (malloc'd, may
 * be empty) gets the pairs judged duplicate, highest score first, and *n_pairs their count;
 * rule (may be NULL) the threshold's numbers.  Memory: the lists (n x top_k) and the tiles.
 * For a trainer merging duplicates at the end of the warm-up: comine_dedup_label_means and
 * comine_dedup_put_block, then this, then comine_dedup_merge_map. */
comine_status comine_dedup_find(comine_dedup_pair **pairs, int *n_pairs, const float *x, int n, int d, int top_k,
                                double k_sigma, double threshold, bool mutual, int block, comine_dedup_rule *rule);

/* Union of the duplicate pairs into groups: new_label (n) maps each label to its group, groups
 * numbered 0 .. (return value - 1) in the order of their smallest label (a list relabelled with
 * it has no gaps). */
int comine_dedup_merge_map(int *new_label, int n, const comine_dedup_pair *pairs, int n_pairs);

/* Precision and recall of found pairs against true pairs ((n_true, 2) labels, any order). */
typedef struct comine_dedup_eval {
    int found, truth, tp;
    double precision, recall, f1;
} comine_dedup_eval;
void comine_dedup_evaluate(comine_dedup_eval *e, const comine_dedup_pair *found, int n_found, const int *true_pairs,
                           int n_true);

#endif
