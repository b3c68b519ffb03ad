/* cmd_clean.c: `comine clean`: the noise report of a training run (noise.csv): ranked
 * suspects (printed and written as CSV), a cleaned list file without the flagged samples
 * and/or a cleaned insightface RecordIO (.rec/.idx with the header record, the run's data
 * re-packed without them), and, when the data carries ground truth, detection precision /
 * recall / F1 and average precision. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/json_out.h"
#include "comine/core.h"
#include "comine/data.h"
#include "comine/eval.h"

/* The value of `--NAME V` / `--NAME=V` in RUN/args.txt (the trainer's command line, one
 * argument a line); NULL when absent.  Malloc'd. */
static char *run_arg(const char *run_dir, const char *name)
{
    char *path = comine_path_join(run_dir, "args.txt");
    uint8_t *data = NULL;
    size_t size;
    char *value = NULL;
    if (comine_path_exists(path) && comine_read_file(path, &data, &size) == COMINE_OK) {
        char flag[64];
        size_t fl = (size_t)snprintf(flag, sizeof flag, "--%s", name);
        for (char *line = (char *)data; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = 0;
            if (!strcmp(line, flag) && nl && nl[1]) {
                char *v = nl + 1, *e = strchr(v, '\n');
                free(value);
                value = e ? strndup(v, (size_t)(e - v)) : comine_strdup(v);
            } else if (!strncmp(line, flag, fl) && line[fl] == '=') {
                free(value);
                value = comine_strdup(line + fl + 1);
            }
            line = nl ? nl + 1 : NULL;
        }
    }
    free(data);
    free(path);
    return value;
}

/* The run's data set re-packed as insightface RecordIO without the flagged samples.  The data
 * set must be the run's: the same samples, paths and labels as noise.csv, in order. */
static comine_status write_clean_rec(const comine_noise_table *t, const char *run_dir, const char *data_arg,
                                     const char *root_arg, const char *out_rec, double threshold, int *kept,
                                     FILE *msg)
{
    char *data = data_arg ? comine_strdup(data_arg) : run_arg(run_dir, "data");
    char *root = root_arg ? comine_strdup(root_arg) : (data_arg ? NULL : run_arg(run_dir, "root"));
    comine_dataset *ds = NULL;
    bool *keep = NULL;
    comine_status st = COMINE_OK;
    if (!data) {
        st = comine_fail(COMINE_ERR_ARG, "%s: no --data in the run's args.txt: give the training data with --data",
                         run_dir);
        goto done;
    }
    comine_dataset_opts dopts = {root};
    if ((st = comine_dataset_open(&ds, data, &dopts))) {
        char why[1024];
        snprintf(why, sizeof why, "%s", comine_last_error());
        st = comine_fail(st, "the run's training data (%s%s): %s", data_arg ? "--data" : "from args.txt of ",
                         data_arg ? "" : run_dir, why);
        goto done;
    }
    if (ds->n != t->n) {
        st = comine_fail(COMINE_ERR_FORMAT, "%s has %d samples but %s has %d rows: not the data of this run (give "
                         "--data)", data, ds->n, t->source, t->n);
        goto done;
    }
    keep = comine_malloc((size_t)ds->n * sizeof(bool));
    *kept = 0;
    for (int i = 0; i < ds->n; i++) {
        const comine_noise_row *row = &t->rows[i];
        if (row->index != i || strcmp(row->path, ds->samples[i].path) || row->label != ds->samples[i].label) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: sample %d is %s label %d, but in %s it is %s label %d: not the "
                             "data of this run (give --data)", t->source, i + 2, row->index, row->path, row->label,
                             data, ds->samples[i].path, ds->samples[i].label);
            goto done;
        }
        keep[i] = !comine_noise_flagged(row->votes, row->rounds, threshold);
        *kept += keep[i];
    }
    int first = 0;
    while (first < ds->n && !keep[first]) first++;
    if (first == ds->n) {
        st = comine_fail(COMINE_ERR_ARG, "%s: every sample is flagged at --threshold %g: nothing to write", t->source,
                         threshold);
        goto done;
    }
    comine_image img;
    if ((st = comine_dataset_decode(ds, first, &img))) goto done;
    int width = img.w, height = img.h;
    comine_image_free(&img);
    size_t len = strlen(out_rec);
    char *prefix = comine_strdup(out_rec);
    prefix[len - 4] = 0;
    comine_pack_stats stats;
    st = comine_recordio_pack(ds, keep, width, height, prefix, &stats);
    free(prefix);
    if (!st) {
        int *count = comine_calloc((size_t)ds->num_classes + 1, sizeof(int)), emptied = 0;
        for (int i = 0; i < ds->n; i++) count[ds->samples[i].label] += keep[i] ? 1 : 0;
        for (int c = 0; c < ds->num_classes; c++) emptied += count[c] == 0;
        free(count);
        fprintf(msg, "cleaned RecordIO: %s (+ .idx, property): %d images of %d identities (labels kept; %d identities "
                "left without images)\n", out_rec, stats.images, stats.identities, emptied);
    }
done:
    free(keep);
    comine_dataset_free(ds);
    free(data);
    free(root);
    return st;
}

/* One JSON object: the counts, the files written, the top suspects and the detection. */
static void print_json(const comine_noise_table *t, const char *noise_path, const char *sus_path, const char *out,
                       const char *out_rec, double threshold, const int *order, int n_sus, int show,
                       const comine_detection *d, int known)
{
    printf("{\"noise\": ");
    cli_json_str(stdout, noise_path);
    printf(", \"samples\": %d, \"suspects\": %d, \"kept\": %d, \"vote_threshold\": ", t->n, n_sus, t->n - n_sus);
    cli_json_num(stdout, threshold);
    printf(", \"suspects_file\": ");
    cli_json_str(stdout, sus_path);
    printf(", \"cleaned_list\": ");
    if (out) cli_json_str(stdout, out);
    else printf("null");
    printf(", \"cleaned_rec\": ");
    if (out_rec) cli_json_str(stdout, out_rec);
    else printf("null");
    printf(", \"top\": [");
    for (int r = 0; r < show; r++) {
        const comine_noise_row *row = &t->rows[order[r]];
        printf("%s{\"rank\": %d, \"index\": %d, \"label\": %d, \"votes\": %d, \"rounds\": %d, \"score\": ", r ? ", " : "",
               r + 1, row->index, row->label, row->votes, row->rounds);
        cli_json_num(stdout, row->score);
        printf(", \"truth\": ");
        if (row->truth >= 0) printf("%d", row->truth);
        else printf("null");
        printf(", \"path\": ");
        cli_json_str(stdout, row->path);
        printf("}");
    }
    printf("], \"detection\": ");
    if (d) {
        printf("{\"samples_with_truth\": %d, \"truly_noisy\": %d, \"precision\": ", known, d->tp + d->fn);
        cli_json_num(stdout, d->precision);
        printf(", \"recall\": ");
        cli_json_num(stdout, d->recall);
        printf(", \"f1\": ");
        cli_json_num(stdout, d->f1);
        printf(", \"average_precision\": ");
        cli_json_num(stdout, d->average_precision);
        printf(", \"tp\": %d, \"fp\": %d, \"fn\": %d}", d->tp, d->fp, d->fn);
    } else {
        printf("null");
    }
    printf("}\n");
}

const char comine_cmd_clean_summary[] = "rank suspected wrong labels of a run and write a cleaned list or .rec";

int comine_cmd_clean(int argc, char **argv)
{
    const char *run_dir, *out, *suspects_path, *out_rec, *data, *root;
    double threshold = -1;
    int top;
    bool json;
    cli_opt opts[] = {
        {"run", ARG_STR, &run_dir, NULL, "training run folder (with noise.csv)", NULL, 0, 0, true},
        {"out", ARG_STR, &out, NULL, "cleaned list file to write (path<TAB>label[<TAB>truth]); this and/or --out-rec",
         NULL, 0, 0, false},
        {"out-rec", ARG_STR, &out_rec, NULL, "cleaned insightface RecordIO to write: CLEAN.rec, CLEAN.idx and property "
         "beside them (header record 0, labels kept), the run's data without the flagged samples", NULL, 0, 0, false},
        {"data", ARG_STR, &data, NULL, "with --out-rec: the run's training data (default: --data of RUN/args.txt)",
         NULL, 0, 0, false},
        {"root", ARG_STR, &root, NULL, "with --out-rec and a list --data: its root (default: --root of RUN/args.txt)",
         NULL, 0, 0, false},
        {"vote-threshold", ARG_FLOAT, &threshold, NULL, "a sample is removed when votes/rounds >= this (default: the "
         "run's --vote-threshold, else 0.5)", NULL, 0, 1, false},
        {"threshold", ARG_ALIAS, NULL, "vote-threshold"},
        {"suspects", ARG_STR, &suspects_path, NULL, "ranked suspects CSV (default RUN/suspects.csv)", NULL, 0, 0, false},
        {"top", ARG_INT, &top, "20", "suspects to print", NULL, 0, 1000000, false},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object (counts, files, the top suspects, detection)"},
        {0},
    };
    int rc = cli_parse("clean", comine_cmd_clean_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_check_out_file("clean", "out", out))) return rc;
    if ((rc = cli_check_out_file("clean", "out-rec", out_rec))) return rc;
    if (!cli_given(opts, "vote-threshold")) {
        char *v = run_arg(run_dir, "vote-threshold");
        threshold = 0.5;
        if (v && (!comine_parse_double(v, &threshold) || !(threshold > 0 && threshold <= 1))) {
            fprintf(stderr, "comine clean: %s/args.txt: --vote-threshold '%s' is not a number in (0, 1]\n", run_dir, v);
            free(v);
            return 1;
        }
        free(v);
    }
    if (threshold <= 0)
        return cli_error("clean", "option --vote-threshold: must be > 0 (0 would remove every sample)");
    if (!out && !out_rec) return cli_error("clean", "option --out or --out-rec: give one of them (or both)");
    size_t orl = out_rec ? strlen(out_rec) : 0;
    if (out_rec && (orl < 5 || strcmp(out_rec + orl - 4, ".rec")))
        return cli_error("clean", "option --out-rec: a file name ending in .rec (the .idx is written beside it), not %s",
                         out_rec);
    if (!out_rec && (data || root)) return cli_error("clean", "options --data and --root go with --out-rec");

    char *noise_path = comine_path_join(run_dir, "noise.csv");
    char *sus_path = suspects_path ? comine_strdup(suspects_path) : comine_path_join(run_dir, "suspects.csv");
    comine_noise_table *t = NULL;
    int *order = NULL;
    double *score = NULL;
    int *truth = NULL;
    comine_status st = comine_noise_load(&t, noise_path);
    if (st) goto done;
    order = comine_malloc((size_t)(t->n ? t->n : 1) * sizeof(int));
    comine_noise_rank(order, t);

    /* the flagged rows first, each part in rank order: the suspects are order[0 .. n_sus) */
    int n_sus = 0, known = 0;
    int *rest = comine_malloc((size_t)(t->n ? t->n : 1) * sizeof(int));
    int n_rest = 0;
    for (int r = 0; r < t->n; r++) {
        const comine_noise_row *row = &t->rows[order[r]];
        if (comine_noise_flagged(row->votes, row->rounds, threshold)) order[n_sus++] = order[r];
        else rest[n_rest++] = order[r];
        known += row->truth >= 0;
    }
    memcpy(order + n_sus, rest, (size_t)n_rest * sizeof(int));
    free(rest);
    /* suspects, most suspicious first */
    comine_atomic_file af;
    if ((st = comine_atomic_open(&af, sus_path))) goto done;
    fprintf(af.fp, "rank,index,path,label,votes,rounds,score,truth\n");
    for (int r = 0; r < n_sus; r++) {
        const comine_noise_row *row = &t->rows[order[r]];
        fprintf(af.fp, "%d,%d,", r + 1, row->index);
        comine_csv_field(af.fp, row->path);
        fprintf(af.fp, ",%d,%d,%d,%.6g,", row->label, row->votes, row->rounds, row->score);
        if (row->truth >= 0) fprintf(af.fp, "%d", row->truth);
        fputc('\n', af.fp);
    }
    if ((st = comine_atomic_commit(&af))) goto done;
    /* the cleaned list, in sample order */
    if (out) {
        if ((st = comine_atomic_open(&af, out))) goto done;
        for (int i = 0; i < t->n; i++) {
            const comine_noise_row *row = &t->rows[i];
            if (comine_noise_flagged(row->votes, row->rounds, threshold)) continue;
            if (row->truth >= 0) fprintf(af.fp, "%s\t%d\t%d\n", row->path, row->label, row->truth);
            else fprintf(af.fp, "%s\t%d\n", row->path, row->label);
        }
        if ((st = comine_atomic_commit(&af))) goto done;
    }
    int kept = 0;
    if (out_rec && (st = write_clean_rec(t, run_dir, data, root, out_rec, threshold, &kept, json ? stderr : stdout)))
        goto done;
    comine_detection d = {0};
    if (known) {
        score = comine_malloc((size_t)t->n * sizeof(double));
        truth = comine_malloc((size_t)t->n * sizeof(int));
        for (int i = 0; i < t->n; i++) {
            score[i] = comine_noise_score(t->rows[i].votes, t->rows[i].rounds);
            truth[i] = t->rows[i].truth;
        }
        comine_detection_eval(&d, score, truth, t->n, threshold);
    }
    int show = top < n_sus ? top : n_sus;
    if (json) {
        print_json(t, noise_path, sus_path, out, out_rec, threshold, order, n_sus, show, known ? &d : NULL, known);
        goto done;
    }

    printf("%s: %d samples, %d suspects (score >= %g), %d kept\n", noise_path, t->n, n_sus, threshold, t->n - n_sus);
    if (show) printf("%5s %8s %6s %5s %6s %5s  %s\n", "rank", "index", "label", "votes", "score", "truth", "path");
    for (int r = 0; r < show; r++) {
        const comine_noise_row *row = &t->rows[order[r]];
        char tb[8];
        snprintf(tb, sizeof tb, "%d", row->truth);
        printf("%5d %8d %6d %2d/%-2d %6.3f %5s  %s\n", r + 1, row->index, row->label, row->votes, row->rounds,
               row->score, row->truth >= 0 ? tb : "-", row->path);
    }
    printf("suspects: %s\n", sus_path);
    if (out) printf("cleaned list: %s\n", out);
    if (known) {
        printf("detection (%d samples with ground truth, %d truly noisy): precision %.4f recall %.4f F1 %.4f "
               "average precision %.4f (TP %d FP %d FN %d)\n",
               known, d.tp + d.fn, d.precision, d.recall, d.f1, d.average_precision, d.tp, d.fp, d.fn);
    }
done:
    if (st) fprintf(stderr, "comine clean: %s\n", comine_last_error());
    free(order);
    free(score);
    free(truth);
    comine_noise_free(t);
    free(noise_path);
    free(sus_path);
    return st ? 1 : 0;
}
