/* trainer_batch.c: the global batch of a step when each of P ranks reads only its part.
 *
 * Rank r's loader decodes positions [r m / P, (r + 1) m / P) of every batch of m positions
 * (the even split of comine_dist_slice) and skips its bad images itself; the ranks' counts and
 * sample indices are then all-gathered, and the labels and truth of the whole batch looked up
 * in the data set.  The global batch is the ranks' parts one after the other: the one-process
 * batch, bad images skipped, in the same order; rank r owns its own rows of it. */
#include "train/trainer_impl.h"

#include <stdlib.h>

#include "comine/dist.h"

void comine_trainer_batch_init(trainer *t)
{
    const int P = comine_dist_size();
    t->rank_rows = comine_calloc((size_t)P, sizeof(int));
    t->batch_labels = comine_calloc((size_t)t->B, sizeof(int));
    t->batch_indices = comine_calloc((size_t)t->B, sizeof(int));
    t->batch_truth = comine_calloc((size_t)t->B, 1);
}

void comine_trainer_batch_free(trainer *t)
{
    free(t->rank_rows);
    free(t->batch_labels);
    free(t->batch_indices);
    free(t->batch_truth);
}

void comine_trainer_gather_batch(trainer *t, const comine_batch *part, comine_batch *whole)
{
    const int P = comine_dist_size();
    *whole = *part;
    if (P == 1) {
        t->rank_rows[0] = part->n;
        return;
    }
    int ones[P];
    for (int r = 0; r < P; r++) ones[r] = 1;
    comine_dist_allgatherv(t->rank_rows, &part->n, ones, sizeof(int));
    int n = 0;
    for (int r = 0; r < P; r++) n += t->rank_rows[r];
    COMINE_ASSERT(n <= t->B);
    comine_dist_allgatherv(t->batch_indices, part->indices, t->rank_rows, sizeof(int));
    for (int i = 0; i < n; i++) {
        const comine_sample *s = &t->ds->samples[t->batch_indices[i]];
        t->batch_labels[i] = s->label;
        t->batch_truth[i] = s->truth;
    }
    whole->n = n;
    whole->labels = t->batch_labels;
    whole->indices = t->batch_indices;
    whole->truth = t->batch_truth;
}
