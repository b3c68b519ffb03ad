/* noise.c: label-noise injection (flips and outliers) on in-memory sample arrays, the
 * selection of training identities and distractors from a folder data set, and list-file
 * output (see comine/noise.h; duplicate identities and label names: noise_labels.c).  Flips
 * and outliers draw from one RNG stream (COMINE_STREAM_NOISE) seeded by the caller's seed, in
 * a fixed order. */
#include "comine/noise.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void comine_corrupt_counts(int n, double flip, double outlier, int *flips, int *outliers)
{
    long nf = lround(flip * n);
    long total = lround((flip + outlier) * n);
    if (nf > n) nf = n;
    if (total > n) total = n;
    if (total < nf) total = nf;
    *flips = (int)nf;
    *outliers = (int)(total - nf);
}

void comine_noise_samples_free(comine_sample *s, int n)
{
    if (!s) return;
    for (int i = 0; i < n; i++) free(s[i].path);
    free(s);
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Give every chosen sample (indices `idx`, m of them) a label of another chosen sample so
 * that none keeps its own: shuffle the chosen labels, then repair each fixed point by a swap
 * with a position j where neither sample would get its own label back.  Such a j exists
 * whenever no label holds more than half of the chosen samples (checked by the caller). */
static void permute_labels(comine_sample *out, const int *idx, int m, comine_rng *rng)
{
    int *orig = comine_malloc(sizeof(int) * (size_t)m);
    int *perm = comine_malloc(sizeof(int) * (size_t)m);
    for (int i = 0; i < m; i++) orig[i] = perm[i] = out[idx[i]].label;
    comine_rng_shuffle_int(rng, perm, (size_t)m);
    for (int i = 0; i < m; i++) {
        if (perm[i] != orig[i]) continue;
        int start = (int)comine_rng_below(rng, (uint32_t)m), j = -1;
        for (int t = 0; t < m; t++) {
            int k = (start + t) % m;
            if (perm[k] != orig[i] && orig[k] != perm[i]) {
                j = k;
                break;
            }
        }
        COMINE_ASSERT(j >= 0);
        int tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (int i = 0; i < m; i++) {
        COMINE_ASSERT(perm[i] != orig[i]);
        out[idx[i]].label = perm[i];
    }
    free(orig);
    free(perm);
}

/* The largest number of chosen samples that share one label. */
static int max_label_share(const comine_sample *s, const int *idx, int m, int num_classes)
{
    int *count = comine_calloc((size_t)num_classes, sizeof(int));
    int best = 0;
    for (int i = 0; i < m; i++) {
        int c = ++count[s[idx[i]].label];
        if (c > best) best = c;
    }
    free(count);
    return best;
}

/* keep_one: reorder `order` so that its first `m` samples never hold all the samples of an
 * identity: walking the drawn order, a sample that is the last one left of its identity is put
 * back after the chosen ones.  False when fewer than m samples can be chosen so. */
static bool keep_one_reorder(int *order, int n, int m, const comine_sample *s, int num_classes)
{
    int *left = comine_calloc((size_t)num_classes, sizeof(int));
    int *kept = comine_malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) left[s[i].label]++;
    int chosen = 0, nkept = 0;
    for (int k = 0; k < n; k++) {
        int i = order[k];
        if (chosen < m && left[s[i].label] > 1) {
            left[s[i].label]--;
            order[chosen++] = i;
        } else {
            kept[nkept++] = i;
        }
    }
    memcpy(order + chosen, kept, sizeof(int) * (size_t)nkept);
    free(kept);
    free(left);
    return chosen == m;
}

comine_status comine_corrupt(comine_sample **out, int *out_n, const comine_sample *train, int n, int num_classes,
                             const char *const *distractors, int num_distractors, const comine_corrupt_opts *o)
{
    *out = NULL;
    *out_n = 0;
    if (!(o->flip >= 0.0 && o->flip < 1.0))
        return comine_fail(COMINE_ERR_ARG, "corrupt: the flip rate %g is outside [0, 1)", o->flip);
    if (!(o->outlier >= 0.0 && o->outlier < 1.0))
        return comine_fail(COMINE_ERR_ARG, "corrupt: the outlier rate %g is outside [0, 1)", o->outlier);
    if (o->flip + o->outlier > 1.0 + 1e-12)
        return comine_fail(COMINE_ERR_ARG, "corrupt: flip + outlier = %g is more than 1 (they are disjoint fractions "
                           "of the training samples)", o->flip + o->outlier);
    if (n < 1) return comine_fail(COMINE_ERR_ARG, "corrupt: no training samples");
    if (num_classes < 1) return comine_fail(COMINE_ERR_ARG, "corrupt: no training identities");
    for (int i = 0; i < n; i++)
        if (train[i].label < 0 || train[i].label >= num_classes)
            return comine_fail(COMINE_ERR_ARG, "corrupt: sample %d (%s) has label %d outside [0, %d)", i,
                               train[i].path ? train[i].path : "?", train[i].label, num_classes);
    int nflip, nout;
    comine_corrupt_counts(n, o->flip, o->outlier, &nflip, &nout);
    if (nflip > 0 && num_classes < 2)
        return comine_fail(COMINE_ERR_ARG, "corrupt: label flips need at least 2 training identities (have %d)",
                           num_classes);
    if (nout > 0 && num_distractors <= 0)
        return comine_fail(COMINE_ERR_ARG, "corrupt: %d outliers requested (rate %g) but there are no distractor "
                           "images (give --distractors, or --min-per-id to take them from the data)", nout, o->outlier);
    if (nout > num_distractors)
        return comine_fail(COMINE_ERR_ARG, "corrupt: not enough distractor images: %d outliers requested, %d available",
                           nout, num_distractors);
    if (o->flip_mode == COMINE_FLIP_PERMUTE && nflip == 1)
        return comine_fail(COMINE_ERR_ARG, "corrupt: a permutation cannot make a single flipped label wrong "
                           "(flip rate %g of %d samples chooses 1); use --flip-mode uniform or a larger rate", o->flip, n);

    comine_rng rng;
    comine_rng_seed(&rng, o->seed, COMINE_STREAM_NOISE);
    int *order = comine_malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) order[i] = i;
    comine_rng_shuffle_int(&rng, order, (size_t)n);
    if (o->flip_mode == COMINE_FLIP_PERMUTE && nflip > 0) {
        /* a permutation can make every label wrong only when no label holds more than half
         * of the chosen samples: draw the subset again until it holds (a fixed count of tries) */
        int tries = 0;
        while (2 * max_label_share(train, order, nflip, num_classes) > nflip) {
            if (++tries == 100) {
                free(order);
                return comine_fail(COMINE_ERR_ARG, "corrupt: --flip-mode permute: in 100 draws of %d samples one "
                                   "identity always held more than half of them, so a permutation cannot make "
                                   "every label wrong; use --flip-mode uniform", nflip);
            }
            comine_rng_shuffle_int(&rng, order, (size_t)n);
        }
    }

    if (o->keep_one) {
        int m = nflip + (o->outlier_mode == COMINE_OUTLIER_ADD ? 0 : nout);
        bool ok = keep_one_reorder(order, n, m, train, num_classes);
        if (ok && o->flip_mode == COMINE_FLIP_PERMUTE && nflip > 0 &&
            2 * max_label_share(train, order, nflip, num_classes) > nflip) {
            free(order);
            return comine_fail(COMINE_ERR_ARG, "corrupt: --keep-one with --flip-mode permute: one identity holds more "
                               "than half of the %d flipped samples, so a permutation cannot make every label "
                               "wrong; use --flip-mode uniform", nflip);
        }
        if (!ok) {
            free(order);
            return comine_fail(COMINE_ERR_ARG, "corrupt: --keep-one: %d noisy samples requested, but keeping one image "
                               "of each of the %d identities leaves only %d", m, num_classes, n - num_classes);
        }
    }
    int total = n + (o->outlier_mode == COMINE_OUTLIER_ADD ? nout : 0);
    comine_sample *s = comine_calloc((size_t)total, sizeof(comine_sample));
    for (int i = 0; i < n; i++) {
        s[i].path = comine_strdup(train[i].path);
        s[i].label = train[i].label;
        /* untouched samples keep a known flag (noise added on top of noise stays recorded) */
        s[i].truth = train[i].truth > 0 ? train[i].truth : COMINE_TRUTH_CLEAN;
        s[i].rec_offset = train[i].rec_offset;
    }
    /* flips: the first nflip samples of the order */
    if (o->flip_mode == COMINE_FLIP_PERMUTE) {
        if (nflip > 0) permute_labels(s, order, nflip, &rng);
    } else {
        for (int k = 0; k < nflip; k++) {
            comine_sample *x = &s[order[k]];
            int r = (int)comine_rng_below(&rng, (uint32_t)(num_classes - 1));
            x->label = r >= x->label ? r + 1 : r;
        }
    }
    for (int k = 0; k < nflip; k++) s[order[k]].truth = COMINE_TRUTH_FLIP;
    /* outliers: distinct distractor images, each with a uniformly drawn training label */
    if (nout > 0) {
        int *pick = comine_malloc(sizeof(int) * (size_t)num_distractors);
        for (int i = 0; i < num_distractors; i++) pick[i] = i;
        comine_rng_shuffle_int(&rng, pick, (size_t)num_distractors);
        for (int k = 0; k < nout; k++) {
            comine_sample *x = o->outlier_mode == COMINE_OUTLIER_ADD ? &s[n + k] : &s[order[nflip + k]];
            free(x->path);
            x->path = comine_strdup(distractors[pick[k]]);
            x->label = (int)comine_rng_below(&rng, (uint32_t)num_classes);
            x->truth = COMINE_TRUTH_OUTLIER;
            x->rec_offset = -1;
        }
        free(pick);
    }
    free(order);
    /* a distractor image that is also a training image would appear twice (list readers reject that) */
    const char **paths = comine_malloc(sizeof(char *) * (size_t)total);
    for (int i = 0; i < total; i++) paths[i] = s[i].path;
    qsort(paths, (size_t)total, sizeof(char *), cmp_strp);
    const char *dup = NULL;
    for (int i = 1; i < total && !dup; i++)
        if (!strcmp(paths[i - 1], paths[i])) dup = paths[i];
    if (dup) {
        comine_status st = comine_fail(COMINE_ERR_ARG, "corrupt: %s would appear twice in the output: a distractor "
                                       "image is also a training image", dup);
        free(paths);
        comine_noise_samples_free(s, total);
        return st;
    }
    free(paths);
    /* an identity that had samples must keep at least one (a list with a label gap does not read back) */
    int *before = comine_calloc((size_t)num_classes, sizeof(int)), *after = comine_calloc((size_t)num_classes, sizeof(int));
    for (int i = 0; i < n; i++) before[train[i].label]++;
    for (int i = 0; i < total; i++) after[s[i].label]++;
    int emptied = -1;
    for (int c = 0; c < num_classes && emptied < 0; c++)
        if (before[c] > 0 && after[c] == 0) emptied = c;
    free(before);
    free(after);
    if (emptied >= 0) {
        comine_noise_samples_free(s, total);
        return comine_fail(COMINE_ERR_ARG, "corrupt: identity %d lost all its samples to the noise (rates %g + %g); "
                           "use lower rates or another seed", emptied, o->flip, o->outlier);
    }
    *out = s;
    *out_n = total;
    return COMINE_OK;
}

/* ---- selection of training identities and distractors ------------------------------ */

typedef struct named {
    const char *name;
    int index;
} named;

static int cmp_named(const void *a, const void *b)
{
    return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

void comine_idsel_free(comine_idsel *sel)
{
    if (!sel) return;
    comine_noise_samples_free(sel->train, sel->n);
    for (int c = 0; c < sel->num_classes; c++) free(sel->class_names[c]);
    free(sel->class_names);
    for (int i = 0; i < sel->num_distractors; i++) free(sel->distractors[i]);
    free(sel->distractors);
    memset(sel, 0, sizeof *sel);
}

comine_status comine_idsel_select(comine_idsel *sel, const comine_dataset *ds, const comine_idsel_opts *o)
{
    memset(sel, 0, sizeof *sel);
    if (!ds->class_names)
        return comine_fail(COMINE_ERR_ARG, "%s: selecting identities needs identity names (a folder data set: one "
                           "folder per identity)", ds->source);
    if (o->min_per_id < 0 || o->max_per_id < 0)
        return comine_fail(COMINE_ERR_ARG, "select: --min-per-id and --max-per-id must be >= 0");
    if (o->max_per_id > 0 && o->min_per_id > o->max_per_id)
        return comine_fail(COMINE_ERR_ARG, "select: --min-per-id %d is more than --max-per-id %d", o->min_per_id,
                           o->max_per_id);
    int C = ds->num_classes;
    bool *allowed = comine_malloc(sizeof(bool) * (size_t)C);
    int *count = comine_calloc((size_t)C, sizeof(int));
    int *new_label = comine_malloc(sizeof(int) * (size_t)C);
    for (int i = 0; i < ds->n; i++) count[ds->samples[i].label]++;
    if (o->people) {
        named *sorted = comine_malloc(sizeof(named) * (size_t)(C ? C : 1));
        for (int c = 0; c < C; c++) {
            sorted[c].name = ds->class_names[c];
            sorted[c].index = c;
        }
        qsort(sorted, (size_t)C, sizeof(named), cmp_named);
        for (int c = 0; c < C; c++) allowed[c] = false;
        int absent = 0;
        for (int p = 0; p < o->people->n; p++) {
            named key = {o->people->names[p], -1};
            const named *hit = bsearch(&key, sorted, (size_t)C, sizeof(named), cmp_named);
            if (hit) allowed[hit->index] = true;
            else absent++;
        }
        free(sorted);
        if (absent) comine_warn("select: %d of %d listed people have no folder in %s", absent, o->people->n, ds->source);
    } else {
        for (int c = 0; c < C; c++) allowed[c] = true;
    }
    int ntrain_ids = 0, ndis = 0;
    for (int c = 0; c < C; c++) {
        new_label[c] = -1;
        if (!allowed[c]) continue;
        if (count[c] >= o->min_per_id) {
            new_label[c] = ntrain_ids++;
        } else {
            sel->num_distractor_ids++;
            ndis += count[c];
        }
    }
    if (ntrain_ids == 0) {
        free(allowed);
        free(count);
        free(new_label);
        return comine_fail(COMINE_ERR_ARG, "%s: no identity has at least %d images%s", ds->source, o->min_per_id,
                           o->people ? " among the listed people" : "");
    }
    sel->num_classes = ntrain_ids;
    sel->class_names = comine_malloc(sizeof(char *) * (size_t)ntrain_ids);
    for (int c = 0; c < C; c++)
        if (new_label[c] >= 0) sel->class_names[new_label[c]] = comine_strdup(ds->class_names[c]);
    sel->distractors = comine_malloc(sizeof(char *) * (size_t)(ndis ? ndis : 1));
    sel->train = comine_malloc(sizeof(comine_sample) * (size_t)ds->n);
    int *kept = comine_calloc((size_t)C, sizeof(int));
    for (int i = 0; i < ds->n; i++) {
        const comine_sample *x = &ds->samples[i];
        int c = x->label;
        if (!allowed[c]) continue;
        if (new_label[c] < 0) {
            sel->distractors[sel->num_distractors++] = comine_strdup(x->path);
        } else if (o->max_per_id <= 0 || kept[c] < o->max_per_id) {
            kept[c]++;
            comine_sample *y = &sel->train[sel->n++];
            y->path = comine_strdup(x->path);
            y->label = new_label[c];
            y->truth = COMINE_TRUTH_CLEAN;
            y->rec_offset = x->rec_offset;
        }
    }
    free(kept);
    free(allowed);
    free(count);
    free(new_label);
    return COMINE_OK;
}

/* ---- list files ------------------------------------------------------------------ */

comine_status comine_list_write(const char *path, const comine_sample *s, int n)
{
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return comine_fail(COMINE_ERR_IO, "cannot read the current folder: %s", strerror(errno));
    for (int i = 0; i < n; i++)
        if (strpbrk(s[i].path, "\t\n\r"))
            return comine_fail(COMINE_ERR_ARG, "%s: sample %d's path contains a tab or a line break: '%s'", path, i,
                               s[i].path);
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    for (int i = 0; i < n; i++) {
        const char *p = s[i].path;
        if (p[0] == '/') fprintf(af.fp, "%s\t%d", p, s[i].label);
        else fprintf(af.fp, "%s/%s\t%d", cwd, p[0] == '.' && p[1] == '/' ? p + 2 : p, s[i].label);
        if (s[i].truth >= 0) fprintf(af.fp, "\t%d", s[i].truth);
        fputc('\n', af.fp);
    }
    return comine_atomic_commit(&af);
}
