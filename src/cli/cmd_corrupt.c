/* cmd_corrupt.c: `comine corrupt`: inject controlled label noise into a data set and write a
 * list file (path<TAB>label<TAB>flag; flag 0 clean, 1 flip, 2 outlier).  Optionally selects the
 * training identities first (--people, --min-per-id, --max-per-id) and takes the distractors
 * (outlier images) from the identities with too few images.  --duplicate splits identities in
 * two labels after the flips and outliers and writes OUT.duplicates.tsv (the pairs) and
 * OUT.classes.tsv (the name of every label; a new label is named NAME#2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "comine/core.h"
#include "comine/data.h"
#include "comine/noise.h"

const char comine_cmd_corrupt_summary[] = "inject label flips and outliers; write a list with truth flags";

/* Distractor identities must not be training identities: compare the names when both have them. */
static int check_disjoint(const char *dpath, const comine_dataset *dis, char **train_names, int num_train)
{
    if (!dis->class_names || !train_names) return 0;
    for (int d = 0; d < dis->num_classes; d++)
        for (int c = 0; c < num_train; c++)
            if (!strcmp(dis->class_names[d], train_names[c]))
                return cli_error("corrupt", "option --distractors: identity '%s' of %s is also a training identity "
                                 "(outliers must come from identities outside the training set)",
                                 train_names[c], dpath);
    return 0;
}

/* Print the library's last error (without its "corrupt: " prefix, the command names itself). */
static void report_error(void)
{
    const char *msg = comine_last_error();
    if (!strncmp(msg, "corrupt: ", 9)) msg += 9;
    fprintf(stderr, "comine corrupt: %s\n", msg);
}

int comine_cmd_corrupt(int argc, char **argv)
{
    const char *data, *out, *distractors, *people_path, *flip_mode, *outlier_mode;
    double flip, outlier, duplicate;
    int min_per_id, max_per_id;
    unsigned long long seed;
    bool keep_one;
    cli_opt opts[] = {
        {"data", ARG_STR, &data, NULL, "training data (a folder of identity folders, or a list file)", NULL, 0, 0, true},
        {"out", ARG_STR, &out, NULL, "list file to write", NULL, 0, 0, true},
        {"flip", ARG_FLOAT, &flip, "0", "fraction of the samples given a wrong training label, [0, 1)", NULL, 0, 0,
         false},
        {"outlier", ARG_FLOAT, &outlier, "0", "fraction of the samples that become outliers, [0, 1)", NULL, 0, 0,
         false},
        {"duplicate", ARG_FLOAT, &duplicate, "0", "fraction of the identities split in two labels (a random half "
         "of each one's images gets a new label; pairs in OUT.duplicates.tsv), [0, 1)", NULL, 0, 0, false},
        {"flip-mode", ARG_CHOICE, &flip_mode, "uniform", "uniform: another identity at random; permute: labels "
         "permuted inside the flipped subset, all wrong", "uniform|permute", 0, 0, false},
        {"outlier-mode", ARG_CHOICE, &outlier_mode, "replace", "replace: an outlier replaces a chosen sample; add: "
         "outliers are added", "replace|add", 0, 0, false},
        {"distractors", ARG_STR, &distractors, NULL, "images of identities outside the training set (folder or "
         "list); default with --min-per-id: the identities with fewer images", NULL, 0, 0, false},
        {"people", ARG_STR, &people_path, NULL, "LFW people file: only these identities of --data", NULL, 0, 0,
         false},
        {"min-per-id", ARG_INT, &min_per_id, "0", "training identities need at least this many images; the others "
         "are distractors (0 = all train)", NULL, 0, 1000000, false},
        {"max-per-id", ARG_INT, &max_per_id, "0", "keep at most this many images per identity (0 = all)", NULL, 0,
         1000000, false},
        {"keep-one", ARG_FLAG, &keep_one, NULL, "every identity keeps at least one of its own images, clean (for "
         "few images per identity; the same seed then draws another set)"},
        {"seed", ARG_U64, &seed, "1", "random seed (same seed, same output)", NULL, 0, 0, false},
        {0},
    };
    int rc = cli_parse("corrupt", comine_cmd_corrupt_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_check_out_file("corrupt", "out", out))) return rc;
    if (!(flip >= 0 && flip < 1)) return cli_error("corrupt", "option --flip: %g is outside [0, 1)", flip);
    if (!(outlier >= 0 && outlier < 1)) return cli_error("corrupt", "option --outlier: %g is outside [0, 1)", outlier);
    if (!(duplicate >= 0 && duplicate < 1))
        return cli_error("corrupt", "option --duplicate: %g is outside [0, 1)", duplicate);
    if (flip + outlier > 1.0 + 1e-12)
        return cli_error("corrupt", "options --flip and --outlier: %g + %g is more than 1", flip, outlier);
    if (max_per_id > 0 && min_per_id > max_per_id)
        return cli_error("corrupt", "option --min-per-id: %d is more than --max-per-id %d", min_per_id, max_per_id);

    comine_dataset *ds = NULL, *dis = NULL;
    comine_people people = {0};
    comine_idsel sel = {0};
    comine_sample *noisy = NULL;
    int n_noisy = 0, status = 1;
    int *dup_pairs = NULL, num_dup = 0, names_n = 0;
    char **names = NULL;
    char *dup_path = NULL, *classes_path = NULL;
    bool selecting = people_path || min_per_id > 0 || max_per_id > 0;
    const char **dpaths = NULL;
    int num_d = 0, num_d_ids = 0;

    comine_status st = comine_dataset_open(&ds, data, NULL);
    if (st != COMINE_OK) goto fail;
    if (!comine_dataset_has_files(ds)) {
        status = cli_error("corrupt", "option --data: %s is %s; corrupt writes a list of image files, so it "
                           "needs a folder or a list", data, comine_dataset_kind_name(ds->kind));
        goto done;
    }
    const comine_sample *train = ds->samples;
    int n = ds->n, num_classes = ds->num_classes;
    char **train_names = ds->class_names;
    if (selecting) {
        if (people_path && (st = comine_people_load(&people, people_path)) != COMINE_OK) goto fail;
        comine_idsel_opts so = {.min_per_id = min_per_id, .max_per_id = max_per_id,
                                 .people = people_path ? &people : NULL};
        if ((st = comine_idsel_select(&sel, ds, &so)) != COMINE_OK) goto fail;
        train = sel.train;
        n = sel.n;
        num_classes = sel.num_classes;
        train_names = sel.class_names;
        char kept[48] = "all kept";
        if (max_per_id > 0) snprintf(kept, sizeof kept, "at most %d kept each", max_per_id);
        printf("selected: %d identities with >= %d images (%s), %d images%s%s\n", sel.num_classes, min_per_id, kept,
               sel.n, people_path ? ", people of " : "", people_path ? people_path : "");
        if (!distractors && min_per_id > 0)
            printf("distractor pool: %d images of %d identities with < %d images\n", sel.num_distractors,
                   sel.num_distractor_ids, min_per_id);
    }
    if (distractors) {
        if ((st = comine_dataset_open(&dis, distractors, NULL)) != COMINE_OK) goto fail;
        if (!comine_dataset_has_files(dis)) {
            status = cli_error("corrupt", "option --distractors: %s is %s; give a folder or a list", distractors,
                               comine_dataset_kind_name(dis->kind));
            goto done;
        }
        if ((status = check_disjoint(distractors, dis, train_names, num_classes)) != 0) goto done;
        status = 1;
        dpaths = comine_malloc(sizeof(char *) * (size_t)dis->n);
        for (int i = 0; i < dis->n; i++) dpaths[i] = dis->samples[i].path;
        num_d = dis->n;
        num_d_ids = dis->num_classes;
        printf("distractor pool: %d images of %d identities from %s\n", num_d, num_d_ids, distractors);
    } else if (selecting) {
        dpaths = (const char **)sel.distractors;
        num_d = sel.num_distractors;
        num_d_ids = sel.num_distractor_ids;
    }

    comine_corrupt_opts co = {
        .flip = flip, .outlier = outlier,
        .flip_mode = strcmp(flip_mode, "permute") ? COMINE_FLIP_UNIFORM : COMINE_FLIP_PERMUTE,
        .outlier_mode = strcmp(outlier_mode, "add") ? COMINE_OUTLIER_REPLACE : COMINE_OUTLIER_ADD,
        .seed = seed,
        .keep_one = keep_one,
    };
    if ((st = comine_corrupt(&noisy, &n_noisy, train, n, num_classes, dpaths, num_d, &co)) != COMINE_OK) goto fail;
    if (duplicate > 0) {
        if ((st = comine_duplicate_split(noisy, n_noisy, num_classes, duplicate, seed, &dup_pairs, &num_dup)) !=
            COMINE_OK)
            goto fail;
        /* names: the data set's, else each label's folder; a new label is its identity's name + "#2" */
        names_n = num_classes + num_dup;
        names = comine_calloc((size_t)names_n, sizeof(char *));
        char **base = train_names ? NULL : comine_label_names_from_paths(train, n, num_classes);
        for (int c = 0; c < num_classes; c++) names[c] = comine_strdup(train_names ? train_names[c] : base[c]);
        comine_names_free(base, train_names ? 0 : num_classes);
        for (int j = 0; j < num_dup; j++) {
            const char *from = names[dup_pairs[2 * j]];
            size_t len = strlen(from) + 3;
            names[num_classes + j] = comine_malloc(len);
            snprintf(names[num_classes + j], len, "%s#2", from);
        }
        size_t pl = strlen(out) + 32;
        dup_path = comine_malloc(pl);
        classes_path = comine_malloc(pl);
        snprintf(dup_path, pl, "%s.duplicates.tsv", out);
        snprintf(classes_path, pl, "%s.classes.tsv", out);
    }
    if ((st = comine_list_write(out, noisy, n_noisy)) != COMINE_OK) goto fail;
    if (duplicate > 0) {
        if ((st = comine_duplicates_write(dup_path, dup_pairs, num_dup)) != COMINE_OK) goto fail;
        if ((st = comine_classes_write(classes_path, names, names_n)) != COMINE_OK) goto fail;
    }

    int kinds[3] = {0, 0, 0};
    for (int i = 0; i < n_noisy; i++) kinds[noisy[i].truth]++;
    printf("corrupt: %d samples, %d identities, %d flips (%s), %d outliers (%s), seed %llu\n", n_noisy, num_classes,
           kinds[COMINE_TRUTH_FLIP], flip_mode, kinds[COMINE_TRUTH_OUTLIER], outlier_mode, seed);
    printf("  clean %d (%.1f%%)  flip %d (%.1f%%)  outlier %d (%.1f%%)\n", kinds[0], 100.0 * kinds[0] / n_noisy,
           kinds[1], 100.0 * kinds[1] / n_noisy, kinds[2], 100.0 * kinds[2] / n_noisy);
    if (duplicate > 0)
        printf("  duplicates: %d identities split in two labels (%d -> %d labels, rate %g); pairs in %s, names in "
               "%s\n", num_dup, num_classes, num_classes + num_dup, duplicate, dup_path, classes_path);
    printf("  written to %s\n", out);
    status = 0;
    goto done;
fail:
    report_error();
    status = 1;
done:
    free(dup_pairs);
    comine_names_free(names, names_n);
    free(dup_path);
    free(classes_path);
    comine_noise_samples_free(noisy, n_noisy);
    if (dis) free(dpaths);
    comine_idsel_free(&sel);
    comine_people_free(&people);
    comine_dataset_free(dis);
    comine_dataset_free(ds);
    return status;
}
