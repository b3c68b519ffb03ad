/* valset.c: validation sets (a .bin or a pairs file) verified against one or two peers, the
 * pair's score from the peers' own embeddings (valset.h). */
#include "comine/valset.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void set_name(comine_valset *v, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = 0;
    for (const char *p = base; *p && *p != '.' && n + 1 < sizeof v->name; p++)
        v->name[n++] = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '_';
    v->name[n] = 0;
    if (!n) snprintf(v->name, sizeof v->name, "val");
}

comine_status comine_valset_open(comine_valset **out, const char *path, const char *root)
{
    *out = NULL;
    comine_valset *v = comine_calloc(1, sizeof *v);
    set_name(v, path);
    size_t len = strlen(path);
    comine_status st;
    if (len > 4 && !strcmp(path + len - 4, ".bin")) {
        st = comine_binset_load(&v->bin, path);
        if (!st) {
            v->n_images = 2 * v->bin->n;
            v->folds = v->bin->n < 10 ? v->bin->n : 10;
            int n_same = 0;
            for (int i = 0; i < v->bin->n; i++) n_same += v->bin->same[i];
            if (n_same == 0 || n_same == v->bin->n)
                st = comine_fail(COMINE_ERR_FORMAT, "%s: a validation set needs both matched and mismatched pairs "
                                 "(found %d matched of %d)", path, n_same, v->bin->n);
        }
    } else {
        st = comine_pairs_load(&v->pairs, path, root);
        if (!st) {
            v->n_images = v->pairs->n_images;
            v->folds = v->pairs->folds;
        }
    }
    if (st) {
        comine_valset_free(v);
        return st;
    }
    *out = v;
    return COMINE_OK;
}

void comine_valset_free(comine_valset *v)
{
    if (!v) return;
    if (v->pairs) comine_pairs_free(v->pairs);
    if (v->bin) comine_binset_free(v->bin);
    free(v);
}

/* sc[i] = <emb[a[i]], emb[b[i]]>, or of rows 2i and 2i + 1 when a is NULL. */
static void scores_of(float *sc, const float *emb, int dim, const int *a, const int *b, int n)
{
    for (int i = 0; i < n; i++) {
        const float *ea = emb + (size_t)(a ? a[i] : 2 * i) * dim, *eb = emb + (size_t)(b ? b[i] : 2 * i + 1) * dim;
        double dot = 0;
        for (int k = 0; k < dim; k++) dot += (double)ea[k] * eb[k];
        sc[i] = (float)dot;
    }
}

static void verify_embeddings(comine_verify_result *res, const comine_valset *v, const float *emb, int dim,
                              const int *fold, float *sc)
{
    int n = v->bin ? v->bin->n : v->pairs->n;
    scores_of(sc, emb, dim, v->bin ? NULL : v->pairs->a, v->bin ? NULL : v->pairs->b, n);
    comine_verify_scores(res, sc, v->bin ? v->bin->same : v->pairs->same, fold, n, v->folds);
}

comine_status comine_valset_verify(comine_verify_result res[3], const comine_valset *v, comine_model *const *peers,
                                   int n_peers, int batch, int threads)
{
    COMINE_ASSERT(n_peers == 1 || n_peers == 2);
    double t0 = comine_now();
    int dim = comine_model_arch(peers[0])->emb_dim;
    if (n_peers == 2 && comine_model_arch(peers[1])->emb_dim != dim)
        return comine_fail(COMINE_ERR_ARG, "the peers' embeddings differ in size (%d, %d)", dim,
                           comine_model_arch(peers[1])->emb_dim);
    int n = v->bin ? v->bin->n : v->pairs->n;
    size_t per = (size_t)v->n_images * dim;
    float *emb = comine_alloc_floats(per * n_peers);
    float *sc = comine_malloc((size_t)n * sizeof(float));
    int *fold = v->bin ? comine_malloc((size_t)n * sizeof(int)) : v->pairs->fold;
    if (v->bin) comine_kfold_assign(fold, n, v->folds);
    comine_status st = COMINE_OK;
    double embed_seconds = 0;
    for (int k = 0; k < n_peers && !st; k++) {
        double ips = 0;
        if (v->bin) st = comine_embed_binset(emb + k * per, &peers[k], 1, v->bin, batch, threads, &ips);
        else st = comine_embed_files(emb + k * per, &peers[k], 1, (const char *const *)v->pairs->images,
                                     v->n_images, batch, threads, &ips);
        embed_seconds += ips > 0 ? v->n_images / ips : 0;
        if (!st) verify_embeddings(&res[k], v, emb + k * per, dim, fold, sc);
    }
    if (!st && n_peers == 2) { /* the pair: normalize(e_A + e_B), as the ensemble's embedding */
        float *pair = emb; /* peer A's rows are not needed any more */
        for (int i = 0; i < v->n_images; i++) {
            float *e = pair + (size_t)i * dim;
            const float *eb = emb + per + (size_t)i * dim;
            for (int d = 0; d < dim; d++) e[d] += eb[d];
            double s = 0;
            for (int d = 0; d < dim; d++) s += (double)e[d] * e[d];
            float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.f;
            for (int d = 0; d < dim; d++) e[d] *= inv;
        }
        verify_embeddings(&res[2], v, pair, dim, fold, sc);
    }
    double dt = comine_now() - t0;
    for (int k = 0; k < (n_peers == 2 ? 3 : 1) && !st; k++) {
        res[k].embed_images_per_s = embed_seconds > 0 ? (double)n_peers * v->n_images / embed_seconds : 0;
        res[k].seconds = dt;
    }
    if (v->bin) free(fold);
    free(sc);
    comine_free_floats(emb);
    return st;
}
