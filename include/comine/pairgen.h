/* pairgen.h: make a verification pairs list from a labelled data set (for data that has
 * none, such as comine's synthetic identities): matched pairs (two images of one identity)
 * and mismatched pairs (images of two identities), alternating, so that contiguous folds
 * are balanced.  Written as `pathA<TAB>pathB<TAB>same`, paths relative to the data set's
 * folder when they lie under it. */
#ifndef COMINE_PAIRGEN_H
#define COMINE_PAIRGEN_H

#include <stdint.h>

#include "comine/core.h"
#include "comine/data.h"

/* n_pairs matched + n_pairs mismatched, distinct pairs, seeded.  COMINE_ERR_ARG when the
 * data set cannot supply them (fewer than 2 identities, none with 2 images, too few
 * distinct pairs). */
comine_status comine_pairs_generate(const comine_dataset *ds, int n_pairs, uint64_t seed, const char *out_path);

#endif
