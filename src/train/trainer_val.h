/* trainer_val.h: validation during training (`train --val A,B --val-every N`).  Every set
 * (an insightface .bin or a pairs file, valset.h) is verified on each peer and, with two
 * peers, on the pair (its score from the peers' embeddings).  Results go to
 *   metrics.jsonl   at each epoch end: val_<set>_a, val_<set>_b, val_<set>_pair per set, and
 *                   val_acc_a, val_acc_b, val_acc_ensemble for the first set
 *   val.jsonl       one line per validation: {"epoch", "step", "global_step", the same keys}
 *   best_a.model, best_b.model   each peer at its best accuracy on the first set so far
 *   best.json       those accuracies and where they were reached (read back on --resume)
 * Rank 0 alone validates and writes. */
#ifndef COMINE_TRAINER_VAL_H
#define COMINE_TRAINER_VAL_H

#include <stddef.h>
#include <stdint.h>

#include "comine/trainer.h"
#include "comine/valset.h"

typedef struct comine_valrun {
    int n;                  /* sets */
    comine_valset **sets;
    char (*key)[64];        /* each set's name in metric keys (unique) */
    double best[2];         /* best accuracy of peers A and B on the first set (-1: none yet) */
    int64_t best_step[2];   /* the global step it was reached at */
    const char *out;
    int batch, threads;
} comine_valrun;

/* Opens every set of cfg->val (comma-separated; pairs files read their images under
 * cfg->val_root or their own folder).  No sets: v->n = 0 and nothing else happens.  With
 * cfg->resume, best.json (when present) gives the best accuracies so far. */
comine_status comine_valrun_open(comine_valrun *v, const comine_train_cfg *cfg);
void comine_valrun_free(comine_valrun *v);

/* Drops the lines of val.jsonl after global_step (a resumed run repeats them). */
comine_status comine_valrun_trim(const comine_valrun *v, int64_t global_step);

/* Verifies the peers (n_peers models) on every set at (epoch, step, global_step): appends a
 * line to val.jsonl, saves best_a/best_b.model when a peer improves on the first set, and
 * appends the metric fields (`, "key": value`) to json (len bytes of size used).  res0 (3)
 * gets the first set's results.  Progress lines name each set's accuracies. */
comine_status comine_valrun_verify(comine_valrun *v, comine_model *const *peers, int n_peers, int epoch, int step,
                                   int64_t global_step, char *json, size_t size, size_t *len,
                                   comine_verify_result res0[3]);

#endif
