/* cmd_clean.c: `comine clean`: the noise report of a training run (noise.csv): ranked
 * suspects (printed and written as CSV), a cleaned list file without the flagged samples
 * and/or a cleaned insightface RecordIO (.rec/.idx with the header record, the run's data
 * re-packed without them), and, when the data carries ground truth, detection precision /
 * recall / F1 and average precision.  The suspects are ranked by the peers' embeddings
 * (comine/detect.h) when the run has its models, else by the training votes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/json_out.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/data.h"
#include "comine/detect.h"
#include "comine/eval.h"

/* Embeddings up to this size are kept between the two passes of the embedding ranking. */
#define HOLD_BYTES ((size_t)1 << 30)

/* The verdict on every sample: flag (n), the suspicion that orders them (higher first), and
 * with the embedding ranking the cosine to the label's trusted mean (scored[i] = 0: none). */
typedef struct verdict {
    bool embed;
    double rate;
    const char *models;
    uint8_t *flag, *scored;
    double *suspicion;
    float *cos;
    int n_flagged;
} verdict;

/* The run's data set (--data / --root, or the run's own), checked against noise.csv: the same
 * samples, paths and labels, in order. */
static comine_status open_run_data(comine_dataset **out, const comine_noise_table *t, const char *run_dir,
                                   const char *data_arg, const char *root_arg)
{
    char *data = data_arg ? comine_strdup(data_arg) : cli_run_arg(run_dir, "data");
    char *root = root_arg ? comine_strdup(root_arg) : (data_arg ? NULL : cli_run_arg(run_dir, "root"));
    comine_dataset *ds = NULL;
    comine_status st = COMINE_OK;
    *out = NULL;
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
    for (int i = 0; i < ds->n; i++) {
        const comine_noise_row *row = &t->rows[i];
        if (row->index != i || strcmp(row->path, ds->samples[i].path) || row->label != ds->samples[i].label) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: sample %d is %s label %d, but in %s it is %s label %d: not the "
                             "data of this run (give --data)", t->source, i + 2, row->index, row->path, row->label,
                             data, ds->samples[i].path, ds->samples[i].label);
            goto done;
        }
    }
    *out = ds;
    ds = NULL;
done:
    comine_dataset_free(ds);
    free(data);
    free(root);
    return st;
}

/* The run's data set re-packed as insightface RecordIO without the flagged samples. */
static comine_status write_clean_rec(const comine_dataset *ds, const uint8_t *flag, const char *out_rec, FILE *msg)
{
    int first = 0;
    while (first < ds->n && flag[first]) first++;
    if (first == ds->n) return comine_fail(COMINE_ERR_ARG, "every sample is flagged: nothing to write");
    bool *keep = comine_malloc((size_t)ds->n * sizeof(bool));
    for (int i = 0; i < ds->n; i++) keep[i] = !flag[i];
    comine_image img;
    comine_status st = comine_dataset_decode(ds, first, &img);
    if (st) goto done;
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
    return st;
}

/* The drop rate of the run's last epoch (metrics.jsonl), NAN when unknown. */
static double run_drop_rate(const char *run_dir)
{
    char *path = comine_path_join(run_dir, "metrics.jsonl");
    comine_jsonl *j = NULL;
    double rate = NAN;
    if (comine_path_exists(path) && comine_jsonl_load(&j, path) == COMINE_OK && j->n_rows > 0)
        rate = comine_jsonl_get(j, j->n_rows - 1, "drop_rate");
    comine_jsonl_free(j);
    free(path);
    return rate;
}

/* The embedding ranking: both peers' models (or peer A's alone), the samples the votes did not
 * flag as each label's reference, the run's drop rate (or --rate) as the share flagged. */
static comine_status rank_by_embeddings(verdict *v, const comine_noise_table *t, const comine_dataset *ds,
                                        const char *run_dir, const uint8_t *vote_flag, double rate, int batch,
                                        int threads, int decode_threads, bool quiet)
{
    comine_model *models[2] = {NULL, NULL};
    char *paths[2] = {comine_path_join(run_dir, "peer_a.model"), comine_path_join(run_dir, "peer_b.model")};
    int n_models = comine_path_exists(paths[1]) ? 2 : 1;
    uint8_t *trusted = comine_malloc((size_t)t->n);
    comine_status st = COMINE_OK;
    v->models = n_models == 2 ? "peer_a.model + peer_b.model" : "peer_a.model";
    if (!(rate >= 0)) rate = run_drop_rate(run_dir);
    if (!(rate >= 0 && rate <= 1)) {
        st = comine_fail(COMINE_ERR_ARG, "%s/metrics.jsonl gives no drop_rate: give the share of samples to flag "
                         "with --rate", run_dir);
        goto done;
    }
    v->rate = rate;
    const comine_backend *be = comine_backend_cpu();
    comine_backend_set_threads(be, threads);
    for (int m = 0; m < n_models; m++)
        if ((st = comine_model_load(&models[m], paths[m], be, 2 * batch))) goto done;
    for (int i = 0; i < t->n; i++) trusted[i] = !vote_flag[i];
    v->cos = comine_malloc(sizeof(float) * (size_t)t->n);
    if ((st = comine_detect_scores_models(v->cos, v->scored, models, n_models, ds, trusted, batch, decode_threads,
                                          HOLD_BYTES, quiet ? NULL : "comine clean")))
        goto done;
    v->n_flagged = comine_detect_flag(v->flag, v->cos, v->scored, vote_flag, t->n, rate);
    for (int i = 0; i < t->n; i++)
        v->suspicion[i] = v->scored[i] ? 1.0 - v->cos[i] : (v->flag[i] ? 3.0 : -1.0);
done:
    for (int m = 0; m < 2; m++) {
        if (models[m]) comine_model_free(models[m]);
        free(paths[m]);
    }
    free(trusted);
    return st;
}

/* Sample order: suspicion descending, then index. */
typedef struct ranked {
    double s;
    int i;
} ranked;
static int by_suspicion(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* order (n): the flagged samples first, then the rest, each part by suspicion. */
static void rank_samples(int *order, const verdict *v, int n)
{
    ranked *r = comine_malloc(sizeof(ranked) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) r[i] = (ranked){v->suspicion[i], i};
    qsort(r, (size_t)n, sizeof(ranked), by_suspicion);
    int k = 0;
    for (int p = 0; p < 2; p++)
        for (int j = 0; j < n; j++)
            if ((v->flag[r[j].i] != 0) == (p == 0)) order[k++] = r[j].i;
    free(r);
}

/* One JSON object: the counts, the files written, the ranking, the top suspects and the detection. */
static void print_json(const comine_noise_table *t, const char *noise_path, const char *sus_path, const char *out,
                       const char *out_rec, double threshold, const verdict *v, const int *order, int show,
                       const comine_detection *d, int known)
{
    printf("{\"noise\": ");
    cli_json_str(stdout, noise_path);
    printf(", \"samples\": %d, \"suspects\": %d, \"kept\": %d, \"ranking\": \"%s\", \"rate\": ", t->n, v->n_flagged,
           t->n - v->n_flagged, v->embed ? "embed" : "votes");
    if (v->embed) cli_json_num(stdout, v->rate);
    else printf("null");
    printf(", \"vote_threshold\": ");
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
        if (v->embed) {
            printf(", \"cos\": ");
            if (v->scored[order[r]]) cli_json_num(stdout, v->cos[order[r]]);
            else printf("null");
        }
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

static comine_status write_suspects(const char *path, const comine_noise_table *t, const verdict *v,
                                    const int *order)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st) return st;
    fprintf(af.fp, "rank,index,path,label,votes,rounds,score,truth%s\n", v->embed ? ",cos" : "");
    for (int r = 0; r < v->n_flagged; r++) {
        const comine_noise_row *row = &t->rows[order[r]];
        fprintf(af.fp, "%d,%d,", r + 1, row->index);
        comine_csv_field(af.fp, row->path);
        fprintf(af.fp, ",%d,%d,%d,%.6g,", row->label, row->votes, row->rounds, row->score);
        if (row->truth >= 0) fprintf(af.fp, "%d", row->truth);
        if (v->embed && v->scored[order[r]]) fprintf(af.fp, ",%.6f", v->cos[order[r]]);
        else if (v->embed) fputc(',', af.fp);
        fputc('\n', af.fp);
    }
    return comine_atomic_commit(&af);
}

static comine_status write_cleaned_list(const char *path, const comine_noise_table *t, const uint8_t *flag)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st) return st;
    for (int i = 0; i < t->n; i++) {
        const comine_noise_row *row = &t->rows[i];
        if (flag[i]) continue;
        if (row->truth >= 0) fprintf(af.fp, "%s\t%d\t%d\n", row->path, row->label, row->truth);
        else fprintf(af.fp, "%s\t%d\n", row->path, row->label);
    }
    return comine_atomic_commit(&af);
}

/* Precision / recall / F1 of the flags and the average precision of the suspicion ranking. */
static int detection(comine_detection *d, const comine_noise_table *t, const verdict *v)
{
    int known = 0;
    for (int i = 0; i < t->n; i++) known += t->rows[i].truth >= 0;
    if (!known) return 0;
    double *f = comine_malloc((size_t)t->n * sizeof(double));
    int *truth = comine_malloc((size_t)t->n * sizeof(int));
    comine_detection ranking;
    for (int i = 0; i < t->n; i++) {
        f[i] = v->flag[i];
        truth[i] = t->rows[i].truth;
    }
    comine_detection_eval(d, f, truth, t->n, 0.5);
    comine_detection_eval(&ranking, v->suspicion, truth, t->n, INFINITY);
    d->average_precision = ranking.average_precision;
    free(f);
    free(truth);
    return known;
}

const char comine_cmd_clean_summary[] = "rank suspected wrong labels of a run and write a cleaned list or .rec";

int comine_cmd_clean(int argc, char **argv)
{
    const char *run_dir, *out, *suspects_path, *out_rec, *data, *root, *rank;
    double threshold = -1, rate;
    int top, batch, threads, decode_threads;
    bool json, quiet;
    cli_opt opts[] = {
        {"run", ARG_STR, &run_dir, NULL, "training run folder (with noise.csv)", NULL, 0, 0, true},
        {"out", ARG_STR, &out, NULL, "cleaned list file to write (path<TAB>label[<TAB>truth]); this and/or --out-rec",
         NULL, 0, 0, false},
        {"out-rec", ARG_STR, &out_rec, NULL, "cleaned insightface RecordIO to write: CLEAN.rec, CLEAN.idx and property "
         "beside them (header record 0, labels kept), the run's data without the flagged samples", NULL, 0, 0, false},
        {"rank", ARG_CHOICE, &rank, "auto", "how suspects are found: embed (the samples of lowest cosine between "
         "their embedding by the run's peers and the mean of their label's samples the votes kept, as many as the "
         "run's drop rate), votes (votes/rounds >= the vote threshold), auto (embed when the run has peer_a.model)",
         "auto|embed|votes", 0, 0, false},
        {"rate", ARG_FLOAT, &rate, NULL, "with embed: the share of samples to flag (default: the drop rate of the "
         "run's last epoch in metrics.jsonl)", NULL, 0, 1, false},
        {"data", ARG_STR, &data, NULL, "with embed or --out-rec: the run's training data (default: --data of "
         "RUN/args.txt)", NULL, 0, 0, false},
        {"root", ARG_STR, &root, NULL, "with a list --data: its root (default: --root of RUN/args.txt)", NULL, 0, 0,
         false},
        {"vote-threshold", ARG_FLOAT, &threshold, NULL, "votes/rounds at which a sample is flagged by the votes (and, "
         "with embed, left out of its label's mean) (default: the run's --vote-threshold, else 0.5)", NULL, 0, 1,
         false},
        {"threshold", ARG_ALIAS, NULL, "vote-threshold"},
        {"suspects", ARG_STR, &suspects_path, NULL, "ranked suspects CSV (default RUN/suspects.csv)", NULL, 0, 0, false},
        {"top", ARG_INT, &top, "20", "suspects to print", NULL, 0, 1000000, false},
        {"batch", ARG_INT, &batch, "64", "with embed: images per forward", NULL, 1, 4096, false},
        {"threads", ARG_INT, &threads, "0", "with embed: compute threads (0 = all cores)", NULL, 0, 4096, false},
        {"decode-threads", ARG_INT, &decode_threads, "4", "with embed: image decoding threads", NULL, 1, 64, false},
        {"quiet", ARG_FLAG, &quiet, NULL, "no progress lines while embedding"},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object (counts, files, the top suspects, detection)"},
        {0},
    };
    int rc = cli_parse("clean", comine_cmd_clean_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_check_out_file("clean", "out", out))) return rc;
    if ((rc = cli_check_out_file("clean", "out-rec", out_rec))) return rc;
    if (!cli_given(opts, "vote-threshold")) {
        char *v = cli_run_arg(run_dir, "vote-threshold");
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
    char *peer_a = comine_path_join(run_dir, "peer_a.model");
    bool have_models = comine_path_exists(peer_a);
    free(peer_a);
    verdict v = {.embed = !strcmp(rank, "embed") || (!strcmp(rank, "auto") && have_models)};
    if (!v.embed && (data || root) && !out_rec)
        return cli_error("clean", "options --data and --root go with --out-rec or --rank embed");
    if (!v.embed && cli_given(opts, "rate")) return cli_error("clean", "option --rate goes with --rank embed");
    if (!cli_given(opts, "rate")) rate = -1; /* the run's drop rate */
    if (v.embed && !have_models)
        return cli_error("clean", "option --rank embed: %s has no peer_a.model (the run has not finished); use "
                         "--rank votes", run_dir);

    char *noise_path = comine_path_join(run_dir, "noise.csv");
    char *sus_path = suspects_path ? comine_strdup(suspects_path) : comine_path_join(run_dir, "suspects.csv");
    comine_noise_table *t = NULL;
    comine_dataset *ds = NULL;
    int *order = NULL;
    uint8_t *vote_flag = NULL;
    comine_status st = comine_noise_load(&t, noise_path);
    if (st) goto done;
    int n1 = t->n ? t->n : 1;
    vote_flag = comine_malloc((size_t)n1);
    v.flag = comine_malloc((size_t)n1);
    v.scored = comine_calloc((size_t)n1, 1);
    v.suspicion = comine_malloc(sizeof(double) * (size_t)n1);
    for (int i = 0; i < t->n; i++) {
        vote_flag[i] = comine_noise_flagged(t->rows[i].votes, t->rows[i].rounds, threshold);
        v.flag[i] = vote_flag[i];
        v.suspicion[i] = comine_noise_score(t->rows[i].votes, t->rows[i].rounds);
        v.n_flagged += vote_flag[i];
    }
    if ((v.embed || out_rec) && (st = open_run_data(&ds, t, run_dir, data, root))) goto done;
    if (v.embed && (st = rank_by_embeddings(&v, t, ds, run_dir, vote_flag, rate, batch, threads, decode_threads,
                                              quiet)))
        goto done;
    order = comine_malloc(sizeof(int) * (size_t)n1);
    rank_samples(order, &v, t->n);
    if ((st = write_suspects(sus_path, t, &v, order))) goto done;
    if (out && (st = write_cleaned_list(out, t, v.flag))) goto done;
    if (out_rec && (st = write_clean_rec(ds, v.flag, out_rec, json ? stderr : stdout))) goto done;
    comine_detection d = {0};
    int known = detection(&d, t, &v);
    int show = top < v.n_flagged ? top : v.n_flagged;
    if (json) {
        print_json(t, noise_path, sus_path, out, out_rec, threshold, &v, order, show, known ? &d : NULL, known);
        goto done;
    }

    if (v.embed)
        printf("%s: %d samples, %d suspects (the share %.4g of lowest cosine to their label's kept samples, embedded "
               "by %s), %d kept\n", noise_path, t->n, v.n_flagged, v.rate, v.models, t->n - v.n_flagged);
    else
        printf("%s: %d samples, %d suspects (score >= %g), %d kept\n", noise_path, t->n, v.n_flagged, threshold,
               t->n - v.n_flagged);
    if (show) printf("%5s %8s %6s %5s %6s %s%5s  %s\n", "rank", "index", "label", "votes", "score", v.embed ? "   cos " : "",
                     "truth", "path");
    for (int r = 0; r < show; r++) {
        const comine_noise_row *row = &t->rows[order[r]];
        char tb[8], cb[16] = "";
        snprintf(tb, sizeof tb, "%d", row->truth);
        if (v.embed && v.scored[order[r]]) snprintf(cb, sizeof cb, "%6.3f ", v.cos[order[r]]);
        else if (v.embed) snprintf(cb, sizeof cb, "%6s ", "-");
        printf("%5d %8d %6d %2d/%-2d %6.3f %s%5s  %s\n", r + 1, row->index, row->label, row->votes, row->rounds,
               row->score, cb, row->truth >= 0 ? tb : "-", row->path);
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
    free(vote_flag);
    free(v.flag);
    free(v.scored);
    free(v.suspicion);
    free(v.cos);
    comine_dataset_free(ds);
    comine_noise_free(t);
    free(noise_path);
    free(sus_path);
    return st ? 1 : 0;
}
