/* identify.c: face identification as MegaFace reports it: probes searched in a gallery of
 * enrolled identities plus distractors.  The split of a gallery data set into enrolled images
 * and probes, the recursive list of distractor images, the embeddings (comine_embed_files, in
 * chunks with progress), and the scores: probe x gallery cosines by the CPU backend's sgemm
 * in blocks of probes x gallery columns, reduced on the fly to each probe's genuine score
 * and five best impostor scores (rank-1 / rank-5) and to the largest impostor scores over
 * all probes (a min-heap sized by the largest FAR asked), from which TAR at FAR follows by
 * comine_tar_at_fars_top.  The rules are in eval.h. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "comine/backend.h"
#include "comine/data.h"
#include "comine/eval.h"

enum { TOP_RANK = 5, GALLERY_BLOCK = 4096, MAX_DEPTH = 32 };
#define MAX_KEPT_IMPOSTORS ((int64_t)1 << 28)

/* ---- the largest impostor scores: a min-heap of at most cap values ---- */
typedef struct top_heap {
    float *v;
    int64_t n, cap;
} top_heap;

static void heap_push(top_heap *h, float s)
{
    if (s != s) return;  /* a NaN score (a broken model) is no impostor above any threshold */
    if (h->n < h->cap) {
        int64_t i = h->n++;
        while (i > 0) {
            int64_t parent = (i - 1) / 2;
            if (h->v[parent] <= s) break;
            h->v[i] = h->v[parent];
            i = parent;
        }
        h->v[i] = s;
        return;
    }
    if (!(s > h->v[0])) return;
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1] < h->v[c]) c++;
        if (h->v[c] >= s) break;
        h->v[i] = h->v[c];
        i = c;
    }
    h->v[i] = s;
}

static int cmp_float_desc(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a < b) - (a > b);
}

/* best (TOP_RANK, descending) += s */
static inline void top_insert(float *best, float s)
{
    if (!(s > best[TOP_RANK - 1])) return;
    int i = TOP_RANK - 1;
    while (i > 0 && best[i - 1] < s) {
        best[i] = best[i - 1];
        i--;
    }
    best[i] = s;
}

comine_status comine_identify_scores(comine_identify_result *res, const float *probe_emb, const int *probe_gallery,
                                     int n_probes, const float *gallery_emb, int n_gallery, int dim,
                                     const double *fars, int n_fars, int block, comine_progress_fn progress,
                                     void *progress_ctx)
{
    double t0 = comine_now();
    int identities = res->identities, distractors = res->distractors, probe_ids = res->probe_identities;
    memset(res, 0, sizeof *res);
    res->identities = identities;
    res->distractors = distractors;
    res->probe_identities = probe_ids;
    if (n_probes < 1) return comine_fail(COMINE_ERR_ARG, "identification: no probes (every identity has one image?)");
    if (n_gallery < 1 || dim < 1) return comine_fail(COMINE_ERR_ARG, "identification: an empty gallery");
    if (n_fars < 0 || n_fars > COMINE_MAX_FARS) return comine_fail(COMINE_ERR_ARG, "identification: %d FARs", n_fars);
    for (int i = 0; i < n_probes; i++)
        if (probe_gallery[i] < 0 || probe_gallery[i] >= n_gallery)
            return comine_fail(COMINE_ERR_ARG, "identification: probe %d's gallery row %d is not in 0..%d", i,
                               probe_gallery[i], n_gallery - 1);
    if (block <= 0) block = 256;
    res->probes = n_probes;
    res->gallery = n_gallery;
    res->n_fars = n_fars;
    res->genuine_pairs = n_probes;
    res->impostor_pairs = (int64_t)n_probes * (n_gallery - 1);
    double max_far = 0;
    for (int f = 0; f < n_fars; f++) {
        res->fars[f] = fars[f];
        max_far = fars[f] > max_far ? fars[f] : max_far;
    }
    top_heap heap = {0};
    heap.cap = n_fars ? comine_far_top_needed(max_far, res->impostor_pairs) : 0;
    if (heap.cap > MAX_KEPT_IMPOSTORS)
        return comine_fail(COMINE_ERR_ARG, "identification: FAR %g of %lld impostor pairs keeps %lld scores, more than "
                           "%lld: ask for smaller FARs", max_far, (long long)res->impostor_pairs, (long long)heap.cap,
                           (long long)MAX_KEPT_IMPOSTORS);
    heap.v = comine_malloc((size_t)(heap.cap ? heap.cap : 1) * sizeof(float));
    float *genuine = comine_malloc((size_t)n_probes * sizeof(float));
    float *best = comine_malloc((size_t)n_probes * TOP_RANK * sizeof(float));
    for (size_t i = 0; i < (size_t)n_probes * TOP_RANK; i++) best[i] = -INFINITY;
    int gb = n_gallery < GALLERY_BLOCK ? n_gallery : GALLERY_BLOCK;
    int pb = block < n_probes ? block : n_probes;
    float *sim = comine_malloc((size_t)pb * gb * sizeof(float));  /* (pb, gb) */
    for (int p0 = 0; p0 < n_probes; p0 += pb) {
        int pn = n_probes - p0 < pb ? n_probes - p0 : pb;
        for (int g0 = 0; g0 < n_gallery; g0 += gb) {
            int gn = n_gallery - g0 < gb ? n_gallery - g0 : gb;
            comine_backend_gemm(comine_backend_cpu(), 0, 1, pn, gn, dim, 1.0f, probe_emb + (size_t)p0 * dim, dim,
                                gallery_emb + (size_t)g0 * dim, dim, 0.0f, sim, gn);
            for (int i = 0; i < pn; i++) {
                const float *row = sim + (size_t)i * gn;
                float *top = best + (size_t)(p0 + i) * TOP_RANK;
                int own = probe_gallery[p0 + i] - g0;
                for (int j = 0; j < gn; j++) {
                    if (j == own) {
                        genuine[p0 + i] = row[j];
                        continue;
                    }
                    top_insert(top, row[j]);
                    if (heap.cap) heap_push(&heap, row[j]);
                }
            }
        }
        if (progress) progress(progress_ctx, "scoring probes", p0 + pn, n_probes);
    }
    int hit1 = 0, hit5 = 0;
    for (int i = 0; i < n_probes; i++) {
        hit1 += genuine[i] > best[(size_t)i * TOP_RANK];
        hit5 += genuine[i] > best[(size_t)i * TOP_RANK + TOP_RANK - 1];
    }
    res->rank1 = (double)hit1 / n_probes;
    res->rank5 = (double)hit5 / n_probes;
    qsort(heap.v, (size_t)heap.n, sizeof(float), cmp_float_desc);
    comine_tar_at_fars_top(res->tar, fars, n_fars, genuine, n_probes, heap.v, heap.n, res->impostor_pairs);
    res->seconds = comine_now() - t0;
    free(sim);
    free(best);
    free(genuine);
    free(heap.v);
    return COMINE_OK;
}

/* ---- distractors: image files under a folder, recursively, sorted by path ---- */
typedef struct path_list {
    char **v;
    int n, cap;
} path_list;

static void path_list_add(path_list *l, char *p)
{
    if (l->n == l->cap) l->v = comine_realloc(l->v, (size_t)(l->cap = l->cap ? 2 * l->cap : 256) * sizeof(char *));
    l->v[l->n++] = p;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static comine_status list_images(path_list *out, const char *dir, int depth)
{
    if (depth > MAX_DEPTH) return comine_fail(COMINE_ERR_IO, "%s: folders nested deeper than %d (a link loop?)", dir,
                                              MAX_DEPTH);
    DIR *d = opendir(dir);
    if (!d) return comine_fail(COMINE_ERR_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
    path_list names = {0};
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') path_list_add(&names, comine_strdup(e->d_name));
    closedir(d);
    if (names.n) qsort(names.v, (size_t)names.n, sizeof(char *), cmp_str);
    comine_status st = COMINE_OK;
    for (int i = 0; i < names.n; i++) {
        char *path = comine_path_join(dir, names.v[i]);
        struct stat sb;
        if (!st && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            st = list_images(out, path, depth + 1);
            free(path);
        } else if (!st && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && comine_image_path_has_ext(path)) {
            path_list_add(out, path);
        } else {
            free(path);
        }
        free(names.v[i]);
    }
    free(names.v);
    return st;
}

/* ---- the whole protocol ---- */
comine_status comine_identify(comine_identify_result *res, comine_model *const *models, int n_models,
                              const comine_identify_opts *o)
{
    double t0 = comine_now();
    memset(res, 0, sizeof *res);
    comine_dataset *ds = NULL;
    path_list distract = {0};
    const char **paths = NULL;
    int *probe_gallery = NULL, *first = NULL, *taken = NULL;
    float *emb = NULL;
    comine_status st = comine_dataset_open(&ds, o->gallery, NULL);
    if (st) goto done;
    if (!comine_dataset_has_files(ds)) {
        st = comine_fail(COMINE_ERR_ARG, "%s: a gallery must be image files (a folder of identity folders or a list), "
                         "not a %s", o->gallery, comine_dataset_kind_name(ds->kind));
        goto done;
    }
    if (o->distractors) {
        if (!comine_path_is_dir(o->distractors)) {
            st = comine_fail(COMINE_ERR_IO, "%s: the distractors must be a folder of images", o->distractors);
            goto done;
        }
        if ((st = list_images(&distract, o->distractors, 0))) goto done;
        if (distract.n == 0) {
            st = comine_fail(COMINE_ERR_IO, "%s: no image files in the distractor folder", o->distractors);
            goto done;
        }
        if (o->max_distractors > 0 && o->max_distractors < distract.n) {
            for (int i = o->max_distractors; i < distract.n; i++) free(distract.v[i]);
            distract.n = o->max_distractors;
        }
    }
    /* the split: per identity, the first sample enrolled, the next probe_per_id ones probes */
    int C = ds->num_classes;
    first = comine_malloc((size_t)C * sizeof(int));
    taken = comine_calloc((size_t)C, sizeof(int));
    for (int c = 0; c < C; c++) first[c] = -1;
    int n_probes = 0;
    for (int i = 0; i < ds->n; i++) {
        int c = ds->samples[i].label;
        if (first[c] < 0) first[c] = i;
        else if (o->probe_per_id <= 0 || taken[c] < o->probe_per_id) taken[c]++, n_probes++;
    }
    int n_ids = 0;
    int *row_of = comine_malloc((size_t)C * sizeof(int));  /* gallery row of each identity */
    for (int c = 0; c < C; c++) {
        row_of[c] = first[c] >= 0 ? n_ids++ : -1;
        res->probe_identities += taken[c] > 0;
    }
    int n_gallery = n_ids + distract.n, n_all = n_gallery + n_probes;
    paths = comine_malloc((size_t)(n_all ? n_all : 1) * sizeof(char *));
    probe_gallery = comine_malloc((size_t)(n_probes ? n_probes : 1) * sizeof(int));
    for (int c = 0; c < C; c++)
        if (first[c] >= 0) paths[row_of[c]] = ds->samples[first[c]].path;
    for (int i = 0; i < distract.n; i++) paths[n_ids + i] = distract.v[i];
    memset(taken, 0, (size_t)C * sizeof(int));
    int k = 0;
    for (int i = 0; i < ds->n; i++) {
        int c = ds->samples[i].label;
        if (i == first[c] || (o->probe_per_id > 0 && taken[c] >= o->probe_per_id)) continue;
        taken[c]++;
        paths[n_gallery + k] = ds->samples[i].path;
        probe_gallery[k++] = row_of[c];
    }
    free(row_of);
    res->identities = n_ids;
    res->distractors = distract.n;
    if (n_probes == 0) {
        st = comine_fail(COMINE_ERR_ARG, "%s: no probes: every identity has a single image (an identity needs 2 or "
                         "more: one enrolled, the rest probes)", o->gallery);
        goto done;
    }
    /* embeddings, in chunks so that long work shows progress */
    int dim = comine_model_arch(models[0])->emb_dim;
    emb = comine_malloc((size_t)n_all * dim * sizeof(float));
    int chunk = o->batch * 16 > 1024 ? o->batch * 16 : 1024;
    double embed_s = 0;
    for (int off = 0; off < n_all; off += chunk) {
        int cnt = n_all - off < chunk ? n_all - off : chunk;
        double ips = 0, t = comine_now();
        st = comine_embed_files(emb + (size_t)off * dim, models, n_models, paths + off, cnt, o->batch, o->threads, &ips);
        if (st) goto done;
        embed_s += comine_now() - t;
        if (o->progress) o->progress(o->progress_ctx, "embedding images", off + cnt, n_all);
    }
    res->embed_images_per_s = embed_s > 0 ? n_all / embed_s : 0;
    int ids = res->identities, pids = res->probe_identities, nd = res->distractors;
    double eps = res->embed_images_per_s;
    st = comine_identify_scores(res, emb + (size_t)n_gallery * dim, probe_gallery, n_probes, emb, n_gallery, dim,
                                o->fars, o->n_fars, 0, o->progress, o->progress_ctx);
    res->identities = ids;
    res->probe_identities = pids;
    res->distractors = nd;
    res->embed_images_per_s = eps;
    res->seconds = comine_now() - t0;
done:
    free(emb);
    free(paths);
    free(probe_gallery);
    free(first);
    free(taken);
    for (int i = 0; i < distract.n; i++) free(distract.v[i]);
    free(distract.v);
    comine_dataset_free(ds);
    return st;
}
