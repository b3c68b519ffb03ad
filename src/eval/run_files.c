/* run_files.c: the writers and the rules of run_files.h: noise.csv (the noise votes of every
 * sample), cos_epoch<E>.csv (each sample's cos(theta_y) under both peers) and metrics.jsonl
 * (one JSON object per epoch), each written whole and atomically.  The readers of the same
 * files are in tables.c. */
#include "comine/run_files.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

double comine_noise_score(int votes, int rounds)
{
    return rounds > 0 ? (double)votes / rounds : 0.0;
}

bool comine_noise_flagged(int votes, int rounds, double threshold)
{
    return rounds > 0 && comine_noise_score(votes, rounds) >= threshold;
}

void comine_detection_figures(double tp, double fp, double fn, double *precision, double *recall, double *f1)
{
    *precision = tp + fp > 0 ? tp / (tp + fp) : 0.0;
    *recall = tp + fn > 0 ? tp / (tp + fn) : 0.0;
    *f1 = *precision + *recall > 0 ? 2 * *precision * *recall / (*precision + *recall) : 0.0;
}

static void csv_truth(FILE *fp, int truth)
{
    if (truth >= 0) fprintf(fp, "%d", truth);
}

comine_status comine_noise_write(const char *path, const comine_dataset *ds, const int32_t *votes,
                                 const int32_t *rounds, double threshold)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    FILE *fp = af.fp;
    fputs(COMINE_NOISE_HEADER "\n", fp);
    for (int i = 0; i < ds->n; i++) {
        const comine_sample *s = &ds->samples[i];
        fprintf(fp, "%d,", i);
        comine_csv_field(fp, s->path);
        fprintf(fp, ",%d,%d,%d,%.4f,%d,", s->label, votes[i], rounds[i], comine_noise_score(votes[i], rounds[i]),
                comine_noise_flagged(votes[i], rounds[i], threshold));
        csv_truth(fp, s->truth);
        fputc('\n', fp);
    }
    return comine_atomic_commit(&af);
}

comine_status comine_cos_write(const char *path, const comine_dataset *ds, const float *cos, int n_peers)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    FILE *fp = af.fp;
    fputs(COMINE_COS_HEADER "\n", fp);
    for (int i = 0; i < ds->n; i++) {
        const comine_sample *s = &ds->samples[i];
        fprintf(fp, "%d,%d,", i, s->label);
        csv_truth(fp, s->truth);
        for (int k = 0; k < 2; k++) {
            float c = cos[2 * (size_t)i + k];
            fputc(',', fp);
            if (k < n_peers && isfinite(c)) fprintf(fp, "%.5f", c);
        }
        fputc('\n', fp);
    }
    return comine_atomic_commit(&af);
}

/* Rewrite path keeping the lines whose "epoch" is below `epoch`, then `extra` (may be NULL). */
static comine_status rewrite_metrics(const char *path, int epoch, const char *extra)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (comine_path_exists(path)) {
        comine_status st = comine_read_file(path, &data, &size);
        if (st != COMINE_OK) return st;
    }
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) {
        free(data);
        return st;
    }
    char *p = (char *)data;
    while (p && *p) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        int e;
        if (sscanf(p, "{\"epoch\": %d", &e) == 1 && e < epoch) {
            fwrite(p, 1, len, af.fp);
            fputc('\n', af.fp);
        }
        p = nl ? nl + 1 : NULL;
    }
    free(data);
    if (extra) fprintf(af.fp, "%s\n", extra);
    return comine_atomic_commit(&af);
}

comine_status comine_metrics_append(const char *path, int epoch, const char *json_line)
{
    return rewrite_metrics(path, epoch, json_line);
}

comine_status comine_metrics_trim(const char *path, int epoch)
{
    if (!comine_path_exists(path)) return COMINE_OK;
    return rewrite_metrics(path, epoch, NULL);
}

/* NAME.tmp.<digits>, as comine_atomic_open names its temporary files. */
static bool is_temporary(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name) return false;
    for (t += 5; *t; t++)
        if (!isdigit((unsigned char)*t)) return false;
    return t[-1] != '.';
}

void comine_run_remove_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_temporary(e->d_name)) continue;
        char *path = comine_path_join(dir, e->d_name);
        if (unlink(path) == 0) comine_info("%s: removed a temporary file left by an interrupted run", path);
        free(path);
    }
    closedir(d);
}
