/* report.c: the report of a training run folder: PNG plots drawn with PLplot's C API
 * (pngcairo) of the per-epoch metrics (metrics.jsonl) and of the cos(theta_y) histograms of
 * clean and noisy samples (cos_epoch<E>.csv), a ROC panel of the ROC tables found in the run
 * folder (roc*.tsv) or given (comine eval --roc writes them), plus index.html with the plots
 * and the tables.
 * PLplot keeps global state, so one plot is drawn at a time under comine_plot_lock (the
 * helpers shared with plot.c are in plot_impl.h); without PLplot (COMINE_HAVE_PLPLOT
 * undefined) only index.html is written. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/eval.h"
#include "eval/plot_impl.h"

typedef struct series { const char *key, *label; } series;

typedef struct cos_file { int epoch; char *path; comine_cos_table *table; } cos_file;

typedef struct plot_entry { char file[128]; char caption[256]; } plot_entry;

typedef struct report {
    const char *run_dir, *out_dir;
    comine_jsonl *metrics;
    double *epoch;             /* (metrics->n_rows) */
    cos_file *cos;
    int n_cos;
    comine_noise_table *noise;
    plot_entry plots[64];
    int n_plots;
    char *roc_name[COMINE_PLOT_MAX_SERIES];    /* each ROC's file name (the legend) */
    comine_roc_point *roc[COMINE_PLOT_MAX_SERIES];
    int roc_n[COMINE_PLOT_MAX_SERIES];
    int n_roc;
} report;

static char *out_path(const char *dir, const char *file)
{
    return comine_path_join(dir, file);
}

/* A line plot of some metrics.jsonl keys against the epoch; false when no key has data. */
static bool plot_series(report *r, const char *file, const char *title, const char *ylabel, const series *s, int ns,
                        bool unit)
{
    const comine_jsonl *j = r->metrics;
    if (!j || j->n_rows == 0) return false;
    int present = 0;
    double ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < j->n_rows; i++) {
            double v = comine_jsonl_get(j, i, s[k].key);
            if (isfinite(v)) {
                present = 1;
                if (v < ymin) ymin = v;
                if (v > ymax) ymax = v;
            }
        }
    if (!present || !comine_report_have_plots()) return false;
#ifdef COMINE_HAVE_PLPLOT
    char *path = out_path(r->out_dir, file);
    size_t tl = strlen(path) + 32;
    char *tmp = comine_malloc(tl);
    snprintf(tmp, tl, "%s.tmp.%d.png", path, (int)getpid());
    double xmin = r->epoch[0], xmax = r->epoch[j->n_rows - 1];
    if (xmax <= xmin) { xmin -= 0.5; xmax += 0.5; }
    bool whole = unit && ymin >= 0 && ymax <= 1;
    if (whole) {  /* fractions: show the whole [0, 1], legend at the bottom right */
        ymin = -0.02;
        ymax = 1.02;
    } else {
        comine_plot_range_pad(&ymin, &ymax);
        comine_plot_legend_room(ymin, &ymax, ns);
    }
    PLFLT *x = comine_malloc((size_t)j->n_rows * sizeof(PLFLT)), *y = comine_malloc((size_t)j->n_rows * sizeof(PLFLT));
    const char *labels[8];
    PLINT colors[8];
    int nl = 0;
    pthread_mutex_lock(&comine_plot_lock);
    comine_plot_begin(tmp);
    comine_plot_frame(xmin, xmax, ymin, ymax, "epoch", ylabel, title);
    for (int k = 0; k < ns && nl < 8; k++) {
        int any = 0;
        PLINT col = 2 + k % 7;
        plcol0(col);
        plwidth(2.0);
        int m = 0;
        for (int i = 0; i <= j->n_rows; i++) {
            double v = i < j->n_rows ? comine_jsonl_get(j, i, s[k].key) : NAN;
            if (isfinite(v)) {
                x[m] = r->epoch[i];
                y[m++] = v;
                any = 1;
                continue;
            }
            if (m == 1) plpoin(1, x, y, 17);
            else if (m > 1) plline(m, x, y);
            m = 0;
        }
        if (any) {
            labels[nl] = s[k].label;
            colors[nl++] = col;
        }
    }
    plwidth(1.0);
    comine_plot_legend(nl, labels, colors, whole);
    bool ok = comine_plot_end(tmp, path);
    pthread_mutex_unlock(&comine_plot_lock);
    free(x);
    free(y);
    free(tmp);
    free(path);
    if (ok && r->n_plots < 64) {
        snprintf(r->plots[r->n_plots].file, sizeof r->plots[0].file, "%s", file);
        snprintf(r->plots[r->n_plots].caption, sizeof r->plots[0].caption, "%s", title);
        r->n_plots++;
    }
    return ok;
#else
    return false;
#endif
}

/* Histogram of cos(theta_y) of one peer, split by truth (clean / noisy / unknown). */
static bool plot_hist(report *r, const cos_file *cf, bool peer_b)
{
    if (!comine_report_have_plots()) return false;
#ifdef COMINE_HAVE_PLPLOT
    enum { NB = 40 };
    const comine_cos_table *c = cf->table;
    const double *v = peer_b ? c->cos_b : c->cos_a;
    double count[3][NB] = {{0}};
    int total[3] = {0};
    for (int i = 0; i < c->n; i++) {
        if (!isfinite(v[i])) continue;
        int g = c->truth[i] < 0 ? 2 : (c->truth[i] > 0 ? 1 : 0);
        int b = (int)floor((v[i] + 1.0) / 2.0 * NB);
        if (b < 0) b = 0;
        if (b >= NB) b = NB - 1;
        count[g][b] += 1;
        total[g]++;
    }
    if (total[0] + total[1] + total[2] == 0) return false;
    int nl_groups = (total[0] > 0) + (total[1] > 0) + (total[2] > 0);
    double ymax = 0;
    for (int g = 0; g < 3; g++)
        for (int b = 0; b < NB; b++) {
            if (total[g]) count[g][b] /= total[g];
            if (count[g][b] > ymax) ymax = count[g][b];
        }
    char file[128], title[160], caption[256];
    snprintf(file, sizeof file, "cos_epoch%d_%s.png", cf->epoch, peer_b ? "b" : "a");
    snprintf(title, sizeof title, "cos(#gh#dy#u) of peer %s after epoch %d", peer_b ? "B" : "A", cf->epoch);
    snprintf(caption, sizeof caption, "cos(theta_y) of peer %s after epoch %d (clean %d, noisy %d, unknown %d "
             "samples)", peer_b ? "B" : "A", cf->epoch, total[0], total[1], total[2]);
    char *path = out_path(r->out_dir, file);
    size_t tl = strlen(path) + 32;
    char *tmp = comine_malloc(tl);
    snprintf(tmp, tl, "%s.tmp.%d.png", path, (int)getpid());
    static const char *const names[3] = {"truly clean", "truly noisy", "truth unknown"};
    const char *labels[3];
    PLINT colors[3];
    int nl = 0;
    pthread_mutex_lock(&comine_plot_lock);
    comine_plot_begin(tmp);
    double top = ymax * 1.05;
    comine_plot_legend_room(0.0, &top, nl_groups);
    comine_plot_frame(-1.0, 1.0, 0.0, top, "cos(#gh#dy#u)", "fraction of the group", title);
    for (int g = 0; g < 3; g++) {
        if (!total[g]) continue;
        PLINT col = g == 0 ? 4 : (g == 1 ? 5 : 7);
        PLFLT x[2 * NB + 2], y[2 * NB + 2];
        int m = 0;
        x[m] = -1.0; y[m++] = 0;
        for (int b = 0; b < NB; b++) {
            double lo = -1.0 + 2.0 * b / NB, hi = -1.0 + 2.0 * (b + 1) / NB;
            x[m] = lo; y[m++] = count[g][b];
            x[m] = hi; y[m++] = count[g][b];
        }
        x[m] = 1.0; y[m++] = 0;
        plcol0(col);
        plwidth(2.0);
        plline(m, x, y);
        labels[nl] = names[g];
        colors[nl++] = col;
    }
    plwidth(1.0);
    comine_plot_legend(nl, labels, colors, false);
    bool ok = comine_plot_end(tmp, path);
    pthread_mutex_unlock(&comine_plot_lock);
    free(tmp);
    free(path);
    if (ok && r->n_plots < 64) {
        snprintf(r->plots[r->n_plots].file, sizeof r->plots[0].file, "%s", file);
        snprintf(r->plots[r->n_plots].caption, sizeof r->plots[0].caption, "%s", caption);
        r->n_plots++;
    }
    return ok;
#else
    (void)r;
    (void)cf;
    (void)peer_b;
    return false;
#endif
}

static void html_escape(FILE *fp, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '&': fputs("&amp;", fp); break;
        case '"': fputs("&quot;", fp); break;
        default: fputc(*s, fp);
        }
    }
}

static void html_num(FILE *fp, double v)
{
    if (isfinite(v)) fprintf(fp, "<td>%.5g</td>", v);
    else fputs("<td>&ndash;</td>", fp);
}

static int cmp_cos_file(const void *x, const void *y)
{
    const cos_file *a = x, *b = y;
    return (a->epoch > b->epoch) - (a->epoch < b->epoch);
}

static comine_status find_cos_files(report *r)
{
    DIR *d = opendir(r->run_dir);
    if (!d) return comine_fail(COMINE_ERR_IO, "%s: cannot open the run folder", r->run_dir);
    struct dirent *e;
    int cap = 0;
    comine_status st = COMINE_OK;
    while ((e = readdir(d))) {
        int epoch, len = 0;
        if (sscanf(e->d_name, "cos_epoch%d.csv%n", &epoch, &len) != 1 || len != (int)strlen(e->d_name)) continue;
        if (r->n_cos == cap) {
            cap = cap ? cap * 2 : 8;
            r->cos = comine_realloc(r->cos, (size_t)cap * sizeof *r->cos);
        }
        cos_file *cf = &r->cos[r->n_cos];
        cf->epoch = epoch;
        cf->path = comine_path_join(r->run_dir, e->d_name);
        cf->table = NULL;
        r->n_cos++;
        st = comine_cos_load(&cf->table, cf->path);
        if (st) break;
    }
    closedir(d);
    if (r->n_cos > 1) qsort(r->cos, (size_t)r->n_cos, sizeof *r->cos, cmp_cos_file);
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static comine_status add_roc(report *r, const char *path)
{
    if (r->n_roc == COMINE_PLOT_MAX_SERIES)
        return comine_fail(COMINE_ERR_ARG, "%s: at most %d ROC tables in a report", path, COMINE_PLOT_MAX_SERIES);
    comine_status st = comine_roc_load(&r->roc[r->n_roc], &r->roc_n[r->n_roc], path);
    if (st) return st;
    const char *base = strrchr(path, '/');
    r->roc_name[r->n_roc++] = comine_strdup(base ? base + 1 : path);
    return COMINE_OK;
}

/* RUN/roc*.tsv (sorted by name), then the given files. */
static comine_status find_rocs(report *r, const char *const *given, int n_given)
{
    DIR *d = opendir(r->run_dir);
    if (!d) return comine_fail(COMINE_ERR_IO, "%s: cannot open the run folder", r->run_dir);
    char *names[COMINE_PLOT_MAX_SERIES + 1];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len >= 7 && !strncmp(e->d_name, "roc", 3) && !strcmp(e->d_name + len - 4, ".tsv") &&
            n <= COMINE_PLOT_MAX_SERIES)
            names[n++] = comine_strdup(e->d_name);
    }
    closedir(d);
    if (n > 1) qsort(names, (size_t)n, sizeof(char *), cmp_str);
    comine_status st = COMINE_OK;
    for (int i = 0; i < n; i++) {
        char *path = comine_path_join(r->run_dir, names[i]);
        if (!st) st = add_roc(r, path);
        free(path);
        free(names[i]);
    }
    for (int i = 0; i < n_given && !st; i++) st = add_roc(r, given[i]);
    return st;
}

/* TAR at FAR <= far read off a ROC (the best TAR among its points at or below that FAR). */
static double roc_tar_at(const comine_roc_point *roc, int n, double far)
{
    double best = NAN;
    for (int i = 0; i < n; i++)
        if (roc[i].far <= far && (isnan(best) || roc[i].tar > best)) best = roc[i].tar;
    return best;
}

static void plot_rocs(report *r)
{
    if (r->n_roc == 0 || !comine_report_have_plots()) return;
    char *path = out_path(r->out_dir, "roc.png");
    const comine_roc_point *curves[COMINE_PLOT_MAX_SERIES];
    for (int i = 0; i < r->n_roc; i++) curves[i] = r->roc[i];
    comine_status st = comine_plot_roc(path, curves, r->roc_n, (const char *const *)r->roc_name, r->n_roc,
                                       "ROC (verification)");
    if (st) comine_warn("%s", comine_last_error());
    else if (r->n_plots < 64) {
        snprintf(r->plots[r->n_plots].file, sizeof r->plots[0].file, "roc.png");
        snprintf(r->plots[r->n_plots].caption, sizeof r->plots[0].caption, "ROC: TAR against FAR (log axis) of %d "
                 "table(s)", r->n_roc);
        r->n_plots++;
    }
    free(path);
}

static void write_html(FILE *fp, const report *r)
{
    fputs("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>comine run report</title>\n<style>\n"
          "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;font-size:0.85em}\n"
          "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f0f0f0}\n"
          "figure{display:inline-block;margin:0.5em}img{max-width:100%;border:1px solid #ddd}\n"
          "</style></head><body>\n<h1>comine run report</h1>\n<p>Run folder: <code>", fp);
    html_escape(fp, r->run_dir);
    fputs("</code></p>\n", fp);

    fputs("<h2>Plots</h2>\n", fp);
    if (!comine_report_have_plots())
        fputs("<p>Plots are unavailable: this comine was built without PLplot, or PLplot has no pngcairo driver "
              "(Debian: plplot-driver-cairo).</p>\n", fp);
    else if (r->n_plots == 0)
        fputs("<p>No plots: the run folder has no metrics or cos files with data.</p>\n", fp);
    for (int i = 0; i < r->n_plots; i++) {
        fputs("<figure><img src=\"", fp);
        html_escape(fp, r->plots[i].file);
        fputs("\" alt=\"", fp);
        html_escape(fp, r->plots[i].caption);
        fputs("\"><figcaption>", fp);
        html_escape(fp, r->plots[i].caption);
        fputs("</figcaption></figure>\n", fp);
    }

    if (r->n_roc) {
        static const double fars[] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1};
        fputs("<h2>ROC (verification)</h2>\n<p>TAR at FAR &le; f, read off each curve.</p>\n<table><tr><th>ROC "
              "table</th><th>points</th>", fp);
        for (int f = 0; f < 6; f++) fprintf(fp, "<th>TAR@FAR=%g</th>", fars[f]);
        fputs("</tr>\n", fp);
        for (int i = 0; i < r->n_roc; i++) {
            fputs("<tr><td>", fp);
            html_escape(fp, r->roc_name[i]);
            fprintf(fp, "</td><td>%d</td>", r->roc_n[i]);
            for (int f = 0; f < 6; f++) html_num(fp, roc_tar_at(r->roc[i], r->roc_n[i], fars[f]));
            fputs("</tr>\n", fp);
        }
        fputs("</table>\n", fp);
    }

    if (r->noise) {
        const comine_noise_table *t = r->noise;
        int flagged = 0;
        for (int i = 0; i < t->n; i++) flagged += t->rows[i].flagged;
        fprintf(fp, "<h2>Noise detection (noise.csv)</h2>\n<p>%d samples, %d flagged (score &ge; 0.5).</p>\n", t->n,
                flagged);
        double *score = comine_malloc((size_t)(t->n ? t->n : 1) * sizeof(double));
        int *truth = comine_malloc((size_t)(t->n ? t->n : 1) * sizeof(int));
        int known = 0;
        for (int i = 0; i < t->n; i++) {
            score[i] = t->rows[i].score;
            truth[i] = t->rows[i].truth;
            known += truth[i] >= 0;
        }
        if (known) {
            comine_detection d;
            comine_detection_eval(&d, score, truth, t->n, 0.5);
            fprintf(fp, "<table><tr><th>threshold</th><th>precision</th><th>recall</th><th>F1</th><th>average "
                        "precision</th><th>TP</th><th>FP</th><th>FN</th></tr>\n<tr><td>0.5</td>");
            html_num(fp, d.precision);
            html_num(fp, d.recall);
            html_num(fp, d.f1);
            html_num(fp, d.average_precision);
            fprintf(fp, "<td>%d</td><td>%d</td><td>%d</td></tr></table>\n", d.tp, d.fp, d.fn);
        }
        free(score);
        free(truth);
    }

    if (r->n_cos) {
        fputs("<h2>cos(&theta;<sub>y</sub>) by ground truth</h2>\n<table><tr><th>epoch</th><th>peer</th><th>clean "
              "n</th><th>clean mean</th><th>noisy n</th><th>noisy mean</th><th>unknown n</th><th>unknown mean</th>"
              "</tr>\n", fp);
        for (int f = 0; f < r->n_cos; f++) {
            const comine_cos_table *c = r->cos[f].table;
            for (int peer = 0; peer < (c->has_b ? 2 : 1); peer++) {
                const double *v = peer ? c->cos_b : c->cos_a;
                double sum[3] = {0};
                int cnt[3] = {0};
                for (int i = 0; i < c->n; i++) {
                    if (!isfinite(v[i])) continue;
                    int g = c->truth[i] < 0 ? 2 : (c->truth[i] > 0 ? 1 : 0);
                    sum[g] += v[i];
                    cnt[g]++;
                }
                fprintf(fp, "<tr><td>%d</td><td>%s</td>", r->cos[f].epoch, peer ? "B" : "A");
                for (int g = 0; g < 3; g++) {
                    fprintf(fp, "<td>%d</td>", cnt[g]);
                    html_num(fp, cnt[g] ? sum[g] / cnt[g] : NAN);
                }
                fputs("</tr>\n", fp);
            }
        }
        fputs("</table>\n", fp);
    }

    const comine_jsonl *j = r->metrics;
    fputs("<h2>Per-epoch metrics (metrics.jsonl)</h2>\n", fp);
    if (!j || j->n_rows == 0) {
        fputs("<p>No metrics.jsonl in the run folder.</p>\n", fp);
    } else {
        fputs("<table><tr>", fp);
        for (int k = 0; k < j->n_keys; k++) {
            fputs("<th>", fp);
            html_escape(fp, j->keys[k]);
            fputs("</th>", fp);
        }
        fputs("</tr>\n", fp);
        for (int i = 0; i < j->n_rows; i++) {
            fputs("<tr>", fp);
            for (int k = 0; k < j->n_keys; k++) html_num(fp, j->values[(size_t)i * j->n_keys + k]);
            fputs("</tr>\n", fp);
        }
        fputs("</table>\n", fp);
    }
    fputs("</body></html>\n", fp);
}

comine_status comine_report_write(const char *run_dir, const char *out_dir, int *plots_made)
{
    return comine_report_write_rocs(run_dir, out_dir, NULL, 0, plots_made);
}

comine_status comine_report_write_rocs(const char *run_dir, const char *out_dir, const char *const *roc_files,
                                       int n_roc_files, int *plots_made)
{
    if (plots_made) *plots_made = 0;
    if (!comine_path_is_dir(run_dir)) return comine_fail(COMINE_ERR_IO, "%s: not a folder", run_dir);
    comine_status st = comine_mkdirs(out_dir);
    if (st) return st;
    report r = {.run_dir = run_dir, .out_dir = out_dir};
    char *mpath = comine_path_join(run_dir, "metrics.jsonl");
    char *npath = comine_path_join(run_dir, "noise.csv");
    if (comine_path_exists(mpath)) {
        st = comine_jsonl_load(&r.metrics, mpath);
        if (st) goto done;
        r.epoch = comine_malloc((size_t)(r.metrics->n_rows ? r.metrics->n_rows : 1) * sizeof(double));
        for (int i = 0; i < r.metrics->n_rows; i++) {
            double e = comine_jsonl_get(r.metrics, i, "epoch");
            r.epoch[i] = isfinite(e) ? e : i;
        }
    }
    if (comine_path_exists(npath) && (st = comine_noise_load(&r.noise, npath))) goto done;
    if ((st = find_cos_files(&r))) goto done;
    if ((st = find_rocs(&r, roc_files, n_roc_files))) goto done;
    if (!r.metrics && !r.noise && r.n_cos == 0 && r.n_roc == 0) {
        st = comine_fail(COMINE_ERR_IO, "%s: no metrics.jsonl, noise.csv, cos_epoch<E>.csv or roc*.tsv: not a run "
                         "folder", run_dir);
        goto done;
    }

    static const series loss[] = {{"loss_a", "peer A"}, {"loss_b", "peer B"}};
    static const series acc[] = {{"train_acc_a", "peer A"}, {"train_acc_b", "peer B"}};
    static const series drop[] = {{"drop_rate", "drop rate"}};
    static const series sets[] = {{"n_clean", "clean (both agree)"}, {"n_exchanged_a", "exchanged to A"},
                                  {"n_exchanged_b", "exchanged to B"}, {"n_noisy", "noisy (dropped)"}};
    static const series det[] = {{"det_precision", "precision"}, {"det_recall", "recall"}, {"det_f1", "F1"}};
    static const series val[] = {{"val_acc_a", "peer A"}, {"val_acc_b", "peer B"}, {"val_acc_ensemble", "A+B"}};
    static const series cosines[] = {{"cos_target_a", "A: target"}, {"cos_target_b", "B: target"},
                                     {"cos_negative_a", "A: negatives"}, {"cos_negative_b", "B: negatives"}};
    plot_series(&r, "loss.png", "training loss", "loss", loss, 2, false);
    plot_series(&r, "train_acc.png", "training accuracy", "accuracy", acc, 2, true);
    plot_series(&r, "drop_rate.png", "drop rate r(e)", "fraction of the batch", drop, 1, false);
    plot_series(&r, "set_sizes.png", "set sizes per epoch", "samples", sets, 4, false);
    plot_series(&r, "detection.png", "noise detection", "fraction", det, 3, true);
    plot_series(&r, "val_acc.png", "validation accuracy", "accuracy", val, 3, true);
    plot_series(&r, "cosines.png", "mean cos(theta) of the target and the negative classes", "cosine", cosines, 4,
                false);
    plot_rocs(&r);
    for (int f = 0; f < r.n_cos; f++) {
        plot_hist(&r, &r.cos[f], false);
        if (r.cos[f].table->has_b) plot_hist(&r, &r.cos[f], true);
    }

    char *hpath = comine_path_join(out_dir, "index.html");
    comine_atomic_file af;
    st = comine_atomic_open(&af, hpath);
    if (!st) {
        write_html(af.fp, &r);
        st = comine_atomic_commit(&af);
    }
    free(hpath);
    if (plots_made) *plots_made = r.n_plots;
done:
    free(mpath);
    free(npath);
    comine_jsonl_free(r.metrics);
    free(r.epoch);
    comine_noise_free(r.noise);
    for (int f = 0; f < r.n_cos; f++) {
        free(r.cos[f].path);
        comine_cos_free(r.cos[f].table);
    }
    free(r.cos);
    for (int i = 0; i < r.n_roc; i++) {
        free(r.roc[i]);
        free(r.roc_name[i]);
    }
    return st;
}
