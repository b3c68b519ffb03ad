/* merge.h: merging duplicate identities inside a training run (`train --merge-duplicates`):
 * once dedup has found that labels a and b are one person, the two class centres of every
 * peer's ArcFace head become one and the samples are relabelled, so that the two halves stop
 * pushing each other apart.  A merge is a label map new_label (K) onto 0 .. K_new - 1, as
 * comine_dedup_merge_map writes it (groups numbered in the order of their smallest label, so a
 * label that merges with nothing keeps its relative order).  These functions work on host
 * arrays; the trainer downloads the heads, merges, and uploads them into heads of K_new rows. */
#ifndef COMINE_MERGE_H
#define COMINE_MERGE_H

#include <stdint.h>

#include "comine/core.h"
#include "comine/data.h"

/* The map that merges label b into label a (a != b) and closes the gap left by the larger of
 * the two: new_label (K).  Returns K - 1. */
int comine_merge_pair_map(int *new_label, int K, int a, int b);

/* Checks a map: every new_label[j] in [0, K_new) and every group 0 .. K_new - 1 used.
 * Errors name the first bad label. */
comine_status comine_merge_check_map(const int *new_label, int K, int K_new);

/* One head merged by a map.
 *   weight_out (K_new, D), momentum_out (K_new, D) or NULL: the merged head
 *   weight (K, D), momentum (K, D) or NULL: the head before
 * A group of one label keeps its row and momentum unchanged.  A group of several: its centre
 * is the mean of the members' unit rows, normalised, then scaled to the members' mean norm
 * (ArcFace reads only directions; the norm keeps the step size of the row's gradient); its
 * momentum restarts at zero. */
void comine_merge_head(float *weight_out, float *momentum_out, const float *weight, const float *momentum,
                       const int *new_label, int K, int D, int K_new);

/* Relabel the samples of a data set by the map and set num_classes to K_new; class_names
 * (when present) become those of each group's smallest label.  Errors: a map of another K. */
comine_status comine_merge_relabel(comine_dataset *ds, const int *new_label, int K, int K_new);

/* group_size (K_new): how many old labels each group holds. */
void comine_merge_group_sizes(int *group_size, const int *new_label, int K, int K_new);
/* The noise votes of the samples whose label took part in a merge (a group of several labels)
 * restart: votes and rounds (ds->n) set to zero for them.  ds is relabelled already
 * (comine_merge_relabel); group_size (ds->num_classes) as comine_merge_group_sizes.  Returns how
 * many samples restarted. */
int comine_merge_reset_votes(int32_t *votes, int32_t *rounds, const comine_dataset *ds, const int *group_size);

#endif
