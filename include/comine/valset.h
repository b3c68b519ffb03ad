/* valset.h: validation sets for training: an insightface .bin or a pairs file, loaded once and
 * verified against the peers of a run as often as the trainer asks.
 *
 * The pair's score reuses the peers' embeddings: each image is embedded once per peer (flip
 * test, normalised), and the pair's embedding of an image is normalize(e_A + e_B), which is
 * what comine_verify_models gives for the ensemble {A, B}, without embedding again. */
#ifndef COMINE_VALSET_H
#define COMINE_VALSET_H

#include "comine/eval.h"
#include "comine/model.h"

typedef struct comine_valset {
    char name[64];          /* short name for reports and metric keys: the file name without its
                               extension, reduced to [a-z0-9_] ("lfw", "cfp_fp", "agedb_30") */
    comine_pairs *pairs;    /* a pairs file, or */
    comine_binset *bin;     /* an insightface .bin (10 contiguous folds, as insightface) */
    int n_images;           /* images to embed */
    int folds;
} comine_valset;

/* A path ending in .bin is read as an insightface .bin; anything else as a pairs file (LFW `N`
 * or `F N` format, or pathA<TAB>pathB<TAB>same), its images under root (NULL: the file's folder). */
comine_status comine_valset_open(comine_valset **out, const char *path, const char *root);
void comine_valset_free(comine_valset *v);

/* res[k] for peer k (k < n_peers) and, with two peers, res[2] for the pair; each image is
 * embedded once per peer.  batch: images decoded at a time (each model runs them and their
 * mirrors in pieces of its max_batch); threads: decoding threads.  embed_images_per_s is over
 * both peers' embeddings, seconds the whole call's. */
comine_status comine_valset_verify(comine_verify_result res[3], const comine_valset *v, comine_model *const *peers,
                                   int n_peers, int batch, int threads);

#endif
