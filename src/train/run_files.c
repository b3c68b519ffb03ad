/* run_files.c: the report files of a run folder, each written whole and atomically:
 * metrics.jsonl (one JSON object per epoch), noise.csv (the noise votes of every sample)
 * and cos_epoch<E>.csv (each sample's cos(theta_y) under both peers). */
#include "train/trainer_impl.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void csv_truth(FILE *fp, int truth)
{
    if (truth >= 0) fprintf(fp, "%d", truth);
}

comine_status comine_run_write_noise_csv(const trainer *t, const char *path)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    FILE *fp = af.fp;
    fputs("index,path,label,votes,rounds,score,flagged,truth\n", fp);
    for (int i = 0; i < t->ds->n; i++) {
        const comine_sample *s = &t->ds->samples[i];
        double score = t->rounds[i] > 0 ? (double)t->votes[i] / t->rounds[i] : 0.0;
        fprintf(fp, "%d,", i);
        comine_csv_field(fp, s->path);
        fprintf(fp, ",%d,%d,%d,%.4f,%d,", s->label, t->votes[i], t->rounds[i], score,
                t->rounds[i] > 0 && score >= t->cfg->vote_threshold);
        csv_truth(fp, s->truth);
        fputc('\n', fp);
    }
    return comine_atomic_commit(&af);
}

comine_status comine_run_write_cos_csv(const trainer *t, const char *path)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    FILE *fp = af.fp;
    fputs("index,label,truth,cos_a,cos_b\n", fp);
    for (int i = 0; i < t->ds->n; i++) {
        const comine_sample *s = &t->ds->samples[i];
        fprintf(fp, "%d,%d,", i, s->label);
        csv_truth(fp, s->truth);
        for (int k = 0; k < 2; k++) {
            float c = t->cos_snapshot[2 * (size_t)i + k];
            fputc(',', fp);
            if (k < t->n_peers && isfinite(c)) fprintf(fp, "%.5f", c);
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

comine_status comine_run_append_metrics(const char *path, int epoch, const char *json_line)
{
    return rewrite_metrics(path, epoch, json_line);
}

comine_status comine_run_trim_metrics(const char *path, int epoch)
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
