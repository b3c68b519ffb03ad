/* trainer_subcenter.c: `train --subcenter-drop E` (trainer_impl.h), the second stage of
 * Sub-center ArcFace (Deng et al., ECCV 2020) inside the run.  After epoch E each peer embeds
 * every sample (evaluation mode, comine_embed_dataset) and measures it against its label's S
 * sub-centres.  A class's dominant sub-centre is the one nearest to most of its samples (ties:
 * the lower s; a class without samples keeps s = 0); the peer's head becomes a plain ArcFace
 * head of the dominant sub-centres (their weights and momentum kept), so that no face keeps a
 * centre of its own.  In mode arcface the samples farther than the angle from their label's
 * dominant sub-centre (the paper's high-confident noise) are then left out of training for the
 * rest of the run; the other modes keep their own selection (two peers) or truth (oracle).
 * RUN/subcenter_dropped.csv lists the samples left out; on --resume past E the heads are made
 * plain before the checkpoint is read and the list is read back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/dist.h"
#include "comine/eval.h"
#include "comine/run_files.h"
#include "train/trainer_impl.h"

#define DROPPED_FILE "subcenter_dropped.csv"

/* cos_sub (n, S): each sample's cosine to its label's S sub-centres under peer p (weights
 * w_hat (K S, D), rows normalised), embedded a chunk at a time. */
static comine_status label_cosines(float *cos_sub, const trainer *t, comine_model *model, const float *w_hat, int S)
{
    const comine_dataset *ds = t->ds;
    const int D = t->D, batch = t->cfg->batch;
    const int threads = t->cfg->loader_threads > 0 ? t->cfg->loader_threads : 1;
    const int chunk = ds->n < 16 * batch ? ds->n : 16 * batch;
    float *emb = comine_alloc_floats((size_t)chunk * D);
    comine_dataset view = *ds;
    comine_status st = COMINE_OK;
    for (int first = 0; first < ds->n && st == COMINE_OK; first += chunk) {
        view.samples = ds->samples + first;
        view.n = ds->n - first < chunk ? ds->n - first : chunk;
        st = comine_embed_dataset(emb, &model, 1, &view, batch, threads, NULL);
        for (int i = 0; i < view.n && st == COMINE_OK; i++) {
            const float *e = emb + (size_t)i * D;
            double ee = 0;
            for (int c = 0; c < D; c++) ee += (double)e[c] * e[c];
            const double inv = ee > 0 ? 1.0 / sqrt(ee) : 0.0;
            const int y = view.samples[i].label;
            for (int s = 0; s < S; s++) {
                const float *w = w_hat + ((size_t)y * S + s) * D;
                double dot = 0;
                for (int c = 0; c < D; c++) dot += (double)e[c] * w[c];
                cos_sub[(size_t)(first + i) * S + s] = (float)(dot * inv);
            }
        }
    }
    comine_free_floats(emb);
    return st;
}

/* dominant (K): for each class the sub-centre nearest to most of its samples. */
static void dominant_subcentres(int *dominant, const float *cos_sub, const comine_dataset *ds, int K, int S)
{
    int *count = comine_calloc((size_t)K * S, sizeof(int));
    for (int i = 0; i < ds->n; i++) {
        const float *c = cos_sub + (size_t)i * S;
        int best = 0;
        for (int s = 1; s < S; s++)
            if (c[s] > c[best]) best = s;
        count[(size_t)ds->samples[i].label * S + best]++;
    }
    for (int k = 0; k < K; k++) {
        const int *ck = count + (size_t)k * S;
        int best = 0;
        for (int s = 1; s < S; s++)
            if (ck[s] > ck[best]) best = s;
        dominant[k] = best;
    }
    free(count);
}

/* Peer p's head made plain: row k the dominant sub-centre of class k (weight and momentum);
 * cos_dom (n) each sample's cosine to its label's dominant sub-centre.  Returns in *off the
 * samples whose nearest sub-centre of their label is not the dominant one. */
static comine_status drop_peer(trainer *t, comine_peer *p, float *cos_dom, int *off)
{
    const int K = t->K, S = p->head.S, D = t->D, n = t->ds->n;
    const size_t kd = (size_t)K * S * D;
    float *w = comine_malloc(sizeof(float) * kd), *mom = comine_malloc(sizeof(float) * kd);
    float *w_hat = comine_malloc(sizeof(float) * kd);
    comine_backend_download(t->be, w, p->head_weight, kd);
    comine_backend_download(t->be, mom, p->head_momentum, kd);
    for (size_t r = 0; r < (size_t)K * S; r++) {
        const float *src = w + r * D;
        double ss = 0;
        for (int c = 0; c < D; c++) ss += (double)src[c] * src[c];
        const double inv = 1.0 / fmax(sqrt(ss), 1e-12);
        for (int c = 0; c < D; c++) w_hat[r * D + c] = (float)(src[c] * inv);
    }
    float *cos_sub = comine_malloc(sizeof(float) * (size_t)n * S);
    int *dominant = comine_malloc(sizeof(int) * (size_t)K);
    comine_status st = label_cosines(cos_sub, t, p->model, w_hat, S);
    if (st == COMINE_OK) {
        dominant_subcentres(dominant, cos_sub, t->ds, K, S);
        *off = 0;
        for (int i = 0; i < n; i++) {
            const float *c = cos_sub + (size_t)i * S;
            const int d = dominant[t->ds->samples[i].label];
            cos_dom[i] = c[d];
            int best = 0;
            for (int s = 1; s < S; s++)
                if (c[s] > c[best]) best = s;
            *off += best != d;
        }
        for (int k = 0; k < K; k++) { /* compact in place: row k <- row k S + dominant[k] */
            memmove(w + (size_t)k * D, w + ((size_t)k * S + dominant[k]) * D, sizeof(float) * D);
            memmove(mom + (size_t)k * D, mom + ((size_t)k * S + dominant[k]) * D, sizeof(float) * D);
        }
        st = comine_peer_replace_head(p, K, 1, w, mom);
    }
    free(dominant);
    free(cos_sub);
    free(w_hat);
    free(mom);
    free(w);
    return st;
}

static comine_status write_dropped(const trainer *t, const float *cos_dom)
{
    char *path = comine_path_join(t->cfg->out, DROPPED_FILE);
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    free(path);
    if (st != COMINE_OK) return st;
    fprintf(af.fp, "index,path,label,cos_dominant\n");
    for (int i = 0; i < t->ds->n; i++) {
        if (!t->excluded[i]) continue;
        fprintf(af.fp, "%d,", i);
        comine_csv_field(af.fp, comine_dataset_sample_name(t->ds, i));
        fprintf(af.fp, ",%d,%.6f\n", t->ds->samples[i].label, (double)cos_dom[i]);
    }
    return comine_atomic_commit(&af);
}

comine_status comine_trainer_subcenter_drop(trainer *t)
{
    const comine_train_cfg *cfg = t->cfg;
    const int n = t->ds->n, S = t->peers.peer[0].head.S;
    const bool writer = comine_dist_rank() == 0;
    const double t0 = comine_now(), cos_limit = cos(cfg->subcenter_drop_angle * 3.14159265358979323846 / 180.0);
    float *cos_dom = comine_malloc(sizeof(float) * (size_t)n * t->peers.n);
    comine_status st = COMINE_OK;
    int off[2] = {0, 0};
    for (int k = 0; k < t->peers.n && st == COMINE_OK; k++)
        st = drop_peer(t, &t->peers.peer[k], cos_dom + (size_t)k * n, &off[k]);
    int dropped = 0;
    double tp = 0, fp = 0, fn = 0;
    if (st == COMINE_OK && cfg->select.mode == COMINE_MODE_ARCFACE) {
        t->excluded = comine_calloc((size_t)n, 1);
        for (int i = 0; i < n; i++) {
            t->excluded[i] = !(cos_dom[i] >= cos_limit);
            dropped += t->excluded[i];
            const bool noisy = comine_truth_noisy(t->ds->samples[i].truth);
            tp += t->excluded[i] && noisy;
            fp += t->excluded[i] && !noisy;
            fn += !t->excluded[i] && noisy;
        }
        if (writer) st = write_dropped(t, cos_dom);
    }
    if (st == COMINE_OK && writer) {
        char peers[96];
        if (t->peers.n == 2)
            snprintf(peers, sizeof peers, "%d and %d samples", off[0], off[1]);
        else
            snprintf(peers, sizeof peers, "%d samples", off[0]);
        comine_progress("--subcenter-drop: after epoch %d the heads keep each class's dominant sub-centre of %d "
                        "(%s were nearest to another); %.1f s",
                        t->epoch + 1, S, peers, comine_now() - t0);
        if (t->excluded) {
            char truth[96] = "";
            if (t->ds->has_truth) {
                double p, r, f1;
                comine_detection_figures(tp, fp, fn, &p, &r, &f1);
                snprintf(truth, sizeof truth, "; against the list's truth: precision %.3f, recall %.3f", p, r);
            }
            comine_progress("--subcenter-drop: %d of %d samples farther than %g degrees from their label's dominant "
                            "sub-centre are left out from now on (%s/%s%s)",
                            dropped, n, (double)cfg->subcenter_drop_angle, cfg->out, DROPPED_FILE, truth);
        }
    }
    free(cos_dom);
    return st;
}

comine_status comine_trainer_subcenter_check(const comine_train_cfg *cfg)
{
    if (cfg->subcenter_drop <= 0) return COMINE_OK;
    if (cfg->head.subcenters < 2)
        return comine_fail(COMINE_ERR_ARG, "--subcenter-drop %d: needs --subcenters K with K >= 2 (there is no "
                                           "sub-centre to drop)", cfg->subcenter_drop);
    if (cfg->subcenter_drop >= cfg->epochs)
        return comine_fail(COMINE_ERR_ARG, "--subcenter-drop %d: the run has %d epochs; the drop must come before "
                                           "the last", cfg->subcenter_drop, cfg->epochs);
    if (!(cfg->subcenter_drop_angle > 0 && cfg->subcenter_drop_angle <= 180))
        return comine_fail(COMINE_ERR_ARG, "--subcenter-drop-angle %g: not an angle in (0, 180] degrees",
                           (double)cfg->subcenter_drop_angle);
    return COMINE_OK;
}

/* The checkpoint's S field (header: "CMCK", u32 version >= 2, u32 peers, K, D, S). */
bool comine_trainer_subcenter_dropped(const trainer *t, const char *checkpoint)
{
    if (t->cfg->subcenter_drop <= 0 || t->peers.peer[0].head.S < 2) return false;
    FILE *fp = fopen(checkpoint, "rb");
    if (!fp) return false;
    unsigned char h[24];
    size_t got = fread(h, 1, sizeof h, fp);
    fclose(fp);
    if (got != sizeof h || memcmp(h, "CMCK", 4) || h[4] < 2) return false;
    return ((uint32_t)h[20] | (uint32_t)h[21] << 8 | (uint32_t)h[22] << 16 | (uint32_t)h[23] << 24) == 1u;
}

comine_status comine_trainer_subcenter_plain_heads(trainer *t)
{
    for (int k = 0; k < t->peers.n; k++) {
        comine_peer *p = &t->peers.peer[k];
        const size_t kd = (size_t)t->K * t->D;
        float *zero = comine_calloc(kd, sizeof(float));
        comine_status st = comine_peer_replace_head(p, t->K, 1, zero, zero);
        free(zero);
        if (st != COMINE_OK) return st;
    }
    return COMINE_OK;
}

comine_status comine_trainer_subcenter_restore(trainer *t)
{
    const comine_train_cfg *cfg = t->cfg;
    if (cfg->select.mode != COMINE_MODE_ARCFACE) return COMINE_OK;
    char *path = comine_path_join(cfg->out, DROPPED_FILE);
    uint8_t *data = NULL;
    size_t size = 0;
    comine_status st = comine_read_file(path, &data, &size);
    if (st != COMINE_OK) {
        st = comine_fail(COMINE_ERR_IO, "%s: cannot read the samples --subcenter-drop left out (the checkpoint was "
                                        "written after the drop): %s", path, comine_last_error());
        free(path);
        return st;
    }
    const int n = t->ds->n;
    t->excluded = comine_calloc((size_t)n, 1);
    char *text = (char *)data, *line = strchr(text, '\n');
    if (!line || strncmp(text, "index,", 6) != 0)
        st = comine_fail(COMINE_ERR_FORMAT, "%s: line 1: expected the header \"index,path,label,cos_dominant\"", path);
    for (int at = 2, prev = -1; st == COMINE_OK && line && line[1]; at++) {
        char *end;
        long i = strtol(line + 1, &end, 10);
        if (end == line + 1 || *end != ',' || i <= prev || i >= n) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s: line %d: expected a sample index above %d and below %d", path, at,
                             prev, n);
            break;
        }
        t->excluded[i] = 1;
        prev = (int)i;
        line = strchr(line + 1, '\n');
    }
    free(data);
    free(path);
    return st;
}
