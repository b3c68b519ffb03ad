/* noise.h: controlled label noise for experiments.  Label flips (closed-set noise: a wrong
 * training identity, uniformly or NT-style permuted inside the chosen subset) and outliers
 * (open-set noise: images of identities outside the training set given training labels,
 * replacing chosen samples or added), reproducible from a seed, every sample flagged with
 * its ground truth; duplicate identities (one person under two labels, as when two data sets
 * are merged), with the pairs as ground truth; plus the selection of training identities and
 * distractors from a folder data set (LFW-style: at least K images per person, at most M
 * kept), and the identity names of a sample list (classes files). */
#ifndef COMINE_NOISE_H
#define COMINE_NOISE_H

#include <stdbool.h>
#include <stdint.h>

#include "comine/core.h"
#include "comine/data.h"

typedef enum { COMINE_FLIP_UNIFORM = 0, COMINE_FLIP_PERMUTE = 1 } comine_flip_mode;
typedef enum { COMINE_OUTLIER_REPLACE = 0, COMINE_OUTLIER_ADD = 1 } comine_outlier_mode;

typedef struct comine_corrupt_opts {
    double flip;                       /* fraction of the training samples to flip, [0, 1) */
    double outlier;                    /* fraction of the training samples that become outliers, [0, 1) */
    comine_flip_mode flip_mode;
    comine_outlier_mode outlier_mode;
    uint64_t seed;
    bool keep_one;                     /* every identity keeps at least one of its own images, clean:
                                          the noisy samples are drawn among the others (for sets
                                          with few images per identity); changes the draw, so the
                                          same seed gives another set than without it */
} comine_corrupt_opts;

/* Counts: flips = round(flip * n); outliers = round((flip + outlier) * n) - flips, so that the
 * total noise is round((flip + outlier) * n) (40% of 3,678 = 736 flips + 735 outliers). */
void comine_corrupt_counts(int n, double flip, double outlier, int *flips, int *outliers);

/* Corrupt `n` training samples (labels in [0, num_classes)) with outliers drawn from
 * `distractors` (paths of images of other identities, without repetition).  Writes a new
 * array of *out_n samples (n, plus the outliers in add mode, appended at the end) with
 * their truth flags (an untouched sample keeps its own flag when it is known, else clean);
 * paths are copied.  The input's order is kept.  Flips and outliers
 * are disjoint sets of samples.  Errors: rates outside [0, 1), flip + outlier > 1, fewer
 * than 2 identities with flips, no distractors (or too few) with outliers, a permutation
 * that cannot make every chosen label wrong, keep_one with more noisy samples than the
 * identities can give. */
comine_status comine_corrupt(comine_sample **out, int *out_n, const comine_sample *train, int n, int num_classes,
                             const char *const *distractors, int num_distractors, const comine_corrupt_opts *o);
/* Free a sample array made by comine_corrupt (paths included). */
void comine_noise_samples_free(comine_sample *s, int n);

typedef struct comine_idsel_opts {
    int min_per_id;                    /* identities with fewer images become distractors (0 = keep all) */
    int max_per_id;                    /* keep at most this many images per identity, the first in order (0 = all) */
    const comine_people *people;       /* when not NULL: only these identities (comine_people_load) */
} comine_idsel_opts;

typedef struct comine_idsel {
    int n;                             /* training samples */
    comine_sample *train;              /* relabelled 0 .. num_classes-1 in the data set's order */
    int num_classes;
    char **class_names;                /* (num_classes) */
    int num_distractors;
    char **distractors;                /* paths of the images of the identities with < min_per_id images */
    int num_distractor_ids;
} comine_idsel;

/* Split a data set with class names (a folder data set) into training identities and
 * distractors.  People of the list absent from the data set are counted, not an error. */
comine_status comine_idsel_select(comine_idsel *sel, const comine_dataset *ds, const comine_idsel_opts *o);
void comine_idsel_free(comine_idsel *sel);

/* Write a list file "path<TAB>label<TAB>flag" atomically.  Relative sample paths are made
 * absolute (against the current folder), so that the list reads back from anywhere. */
comine_status comine_list_write(const char *path, const comine_sample *s, int n);

/* ---- duplicate identities ------------------------------------------------------------
 * The split draws from its own stream, so that flips and outliers of a seed are the same
 * with or without duplicates. */
#define COMINE_STREAM_DUPLICATE (COMINE_STREAM_NOISE + 256)

/* Identities to split: round(fraction * num_classes). */
int comine_duplicate_count(int num_classes, double fraction);

/* Split round(fraction * num_classes) identities in two labels, in place: the identities are
 * drawn uniformly among those with at least 2 samples; for each, floor(m / 2) of its m samples
 * (the samples carrying its label, drawn at random) get a new label.  New labels are appended:
 * the j-th split identity in ascending label order gets num_classes + j, so labels stay
 * contiguous (num_classes + *num_pairs of them).  Truth flags are untouched (a duplicate is not
 * a wrong image).  *pairs (malloc'd, NULL when none) is (*num_pairs, 2): original label, new
 * label, in ascending order.  Errors: fraction outside [0, 1), fewer identities with 2 samples
 * than asked. */
comine_status comine_duplicate_split(comine_sample *s, int n, int num_classes, double fraction, uint64_t seed,
                                     int **pairs, int *num_pairs);

/* Ground-truth pairs file (`comine corrupt --duplicate`): the line "label_a<TAB>label_b", then
 * one pair per line, label_a < label_b.  Written atomically; the reader accepts the file with or
 * without that header and names the file and line of a bad line. */
comine_status comine_duplicates_write(const char *path, const int *pairs, int num_pairs);
comine_status comine_duplicates_load(const char *path, int **pairs, int *num_pairs);

/* ---- identity names ------------------------------------------------------------------
 * A classes file has one "label<TAB>name" line per label, labels 0 .. K-1 in order (what
 * `comine train` writes as classes.tsv and `comine corrupt --duplicate` as OUT.classes.tsv). */
comine_status comine_classes_write(const char *path, char *const *names, int num_classes);
/* Reads a classes file for num_classes labels: every label 0 .. num_classes-1 once; errors
 * name the file and line. *names is (num_classes) malloc'd strings. */
comine_status comine_classes_load(const char *path, int num_classes, char ***names);
/* The name of every label of a sample list without names: the parent folder most of its
 * samples lie in (ties: the first seen), "label<N>" when its samples have no folder (RecordIO
 * keys) or it has no samples.  (num_classes) malloc'd strings. */
char **comine_label_names_from_paths(const comine_sample *s, int n, int num_classes);
void comine_names_free(char **names, int n);

#endif
