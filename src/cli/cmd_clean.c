/* cmd_clean.c: `comine clean`: the noise report of a training run (noise.csv): ranked
 * suspects (printed and written as CSV), a cleaned list file without the flagged samples, and,
 * when the data carries ground truth, detection precision / recall / F1 and average precision. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "comine/core.h"
#include "comine/eval.h"

const char comine_cmd_clean_summary[] = "rank suspected wrong labels of a run and write a cleaned list";

int comine_cmd_clean(int argc, char **argv)
{
    const char *run_dir, *out, *suspects_path;
    double threshold;
    int top;
    cli_opt opts[] = {
        {"run", ARG_STR, &run_dir, NULL, "training run folder (with noise.csv)", NULL, 0, 0, true},
        {"out", ARG_STR, &out, NULL, "cleaned list file to write (path<TAB>label[<TAB>truth])", NULL, 0, 0, true},
        {"threshold", ARG_FLOAT, &threshold, "0.5", "a sample is removed when votes/rounds >= this", NULL, 0, 1, false},
        {"suspects", ARG_STR, &suspects_path, NULL, "ranked suspects CSV (default RUN/suspects.csv)", NULL, 0, 0, false},
        {"top", ARG_INT, &top, "20", "suspects to print", NULL, 0, 1000000, false},
        {0},
    };
    int rc = cli_parse("clean", comine_cmd_clean_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if (threshold <= 0) return cli_error("clean", "option --threshold: must be > 0 (0 would remove every sample)");

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
    if ((st = comine_atomic_open(&af, out))) goto done;
    for (int i = 0; i < t->n; i++) {
        const comine_noise_row *row = &t->rows[i];
        if (comine_noise_flagged(row->votes, row->rounds, threshold)) continue;
        if (row->truth >= 0) fprintf(af.fp, "%s\t%d\t%d\n", row->path, row->label, row->truth);
        else fprintf(af.fp, "%s\t%d\n", row->path, row->label);
    }
    if ((st = comine_atomic_commit(&af))) goto done;

    printf("%s: %d samples, %d suspects (score >= %g), %d kept\n", noise_path, t->n, n_sus, threshold, t->n - n_sus);
    int show = top < n_sus ? top : n_sus;
    if (show) printf("%5s %8s %6s %5s %6s %5s  %s\n", "rank", "index", "label", "votes", "score", "truth", "path");
    for (int r = 0; r < show; r++) {
        const comine_noise_row *row = &t->rows[order[r]];
        char tb[8];
        snprintf(tb, sizeof tb, "%d", row->truth);
        printf("%5d %8d %6d %2d/%-2d %6.3f %5s  %s\n", r + 1, row->index, row->label, row->votes, row->rounds,
               row->score, row->truth >= 0 ? tb : "-", row->path);
    }
    printf("suspects: %s\ncleaned list: %s\n", sus_path, out);
    if (known) {
        score = comine_malloc((size_t)t->n * sizeof(double));
        truth = comine_malloc((size_t)t->n * sizeof(int));
        for (int i = 0; i < t->n; i++) {
            score[i] = comine_noise_score(t->rows[i].votes, t->rows[i].rounds);
            truth[i] = t->rows[i].truth;
        }
        comine_detection d;
        comine_detection_eval(&d, score, truth, t->n, threshold);
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
