/* embed.c: flip-test embeddings of image files (or of a data set's samples, or of the images
 * of an insightface .bin) with one model or an ensemble, and the verification of models on a
 * pairs file or a .bin.  Images are decoded and preprocessed on worker threads
 * (comine_image_load or comine_image_decode, then comine_image_to_input, original and mirror),
 * then each model runs on the (2 * batch) inputs in inference mode, in pieces of its max_batch. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "comine/data.h"
#include "comine/eval.h"

typedef struct decode_job {
    const char *const *paths;     /* images by path, or */
    const comine_dataset *ds;     /* images by data set sample (any kind, RecordIO included), or */
    const comine_binset *bin;     /* images of an insightface .bin, in memory */
    int first, count;     /* images [first, first + count) of paths */
    int size;             /* network input side */
    float *inputs;        /* (2 * count, size, size, 3): originals, then mirrors */
    int next;             /* shared work counter */
    pthread_mutex_t lock;
    comine_status status; /* of the failure at the lowest index, */
    int error_index;      /* that index (work is handed out in order, so it is deterministic) */
    char error[1024];
} decode_job;

static void *decode_worker(void *arg)
{
    decode_job *job = arg;
    size_t per = (size_t)job->size * job->size * 3;
    comine_bytes bytes = {0}; /* this thread's encoded files, one at a time */
    for (;;) {
        pthread_mutex_lock(&job->lock);
        int i = job->status ? job->count : job->next++;
        pthread_mutex_unlock(&job->lock);
        if (i >= job->count) break;
        comine_image img;
        comine_status st;
        int k = job->first + i;
        if (job->paths) {
            st = comine_image_load(&img, job->paths[k]);
        } else if (job->bin) {
            char name[1024];
            snprintf(name, sizeof name, "%s: image %d (pair %d, byte %lld)", job->bin->source, k, k / 2,
                     (long long)job->bin->image_offset[k]);
            st = comine_image_decode(&img, job->bin->image[k], job->bin->image_size[k], name);
        } else {
            st = comine_dataset_read_into(job->ds, k, &bytes);
            if (!st) st = comine_image_decode(&img, bytes.data, bytes.size, job->ds->samples[k].path);
        }
        if (st) {
            pthread_mutex_lock(&job->lock);
            if (!job->status || i < job->error_index) {
                job->status = st;
                job->error_index = i;
                snprintf(job->error, sizeof job->error, "%s", comine_last_error());
            }
            pthread_mutex_unlock(&job->lock);
            break;
        }
        comine_image_to_input(job->inputs + (size_t)i * per, &img, job->size, false);
        comine_image_to_input(job->inputs + (size_t)(job->count + i) * per, &img, job->size, true);
        comine_image_free(&img);
    }
    comine_bytes_free(&bytes);
    return NULL;
}

static const char *progress_label;

void comine_embed_set_progress(const char *label) { progress_label = label; }

static void normalize(float *v, int d)
{
    double s = 0;
    for (int k = 0; k < d; k++) s += (double)v[k] * v[k];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.f;
    for (int k = 0; k < d; k++) v[k] *= inv;
}

static comine_status embed_images(float *emb, comine_model *const *models, int n_models, const char *const *paths,
                                  const comine_dataset *ds, const comine_binset *bin, int n_paths, int batch,
                                  int threads, double *images_per_s)
{
    COMINE_ASSERT(n_models >= 1 && batch >= 1);
    const comine_arch *arch = comine_model_arch(models[0]);
    int size = arch->input, dim = arch->emb_dim;
    for (int m = 0; m < n_models; m++) {
        const comine_arch *a = comine_model_arch(models[m]);
        if (a->input != size || a->emb_dim != dim)
            return comine_fail(COMINE_ERR_ARG, "ensemble models differ: input %d vs %d, embedding %d vs %d", a->input,
                               size, a->emb_dim, dim);
    }
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    double t0 = comine_now();
    size_t per = (size_t)size * size * 3;
    float *inputs = comine_alloc_floats((size_t)2 * batch * per);
    float *out = comine_alloc_floats((size_t)2 * batch * dim);
    pthread_t tid[64];
    comine_status st = COMINE_OK;
    double last = t0;
    for (int first = 0; first < n_paths && !st; first += batch) {
        double now = comine_now();
        if (progress_label && first > 0 && now - last >= 2.0) {
            double rate = first / (now - t0);
            comine_progress("%s: embedded %d / %d images (%.0f/s, %.0f s left)", progress_label, first, n_paths, rate,
                            (n_paths - first) / rate);
            last = now;
        }
        int count = n_paths - first < batch ? n_paths - first : batch;
        decode_job job = {.paths = paths, .ds = ds, .bin = bin, .first = first, .count = count, .size = size,
                          .inputs = inputs};
        pthread_mutex_init(&job.lock, NULL);
        int nt = threads < count ? threads : count, started = 0;
        for (int t = 1; t < nt; t++)
            if (!pthread_create(&tid[started], NULL, decode_worker, &job)) started++;
        decode_worker(&job);
        for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
        pthread_mutex_destroy(&job.lock);
        if (job.status) {
            st = comine_fail(job.status, "%s", job.error);
            break;
        }
        float *dst = emb + (size_t)first * dim;
        memset(dst, 0, (size_t)count * dim * sizeof(float));
        for (int m = 0; m < n_models; m++) {
            int mb = comine_model_max_batch(models[m]);
            for (int j = 0; j < 2 * count; j += mb)
                comine_model_forward(models[m], out + (size_t)j * dim, inputs + (size_t)j * per,
                                     2 * count - j < mb ? 2 * count - j : mb, false, NULL);
            for (int i = 0; i < count; i++) {
                float *e = out + (size_t)i * dim;
                const float *mirror = out + (size_t)(count + i) * dim;
                for (int k = 0; k < dim; k++) e[k] += mirror[k];
                normalize(e, dim);
                for (int k = 0; k < dim; k++) {
                    if (!isfinite(e[k])) {
                        if (bin)
                            st = comine_fail(COMINE_ERR_NUMERIC, "%s: image %d: the embedding of model %d is not "
                                             "finite", bin->source, first + i, m + 1);
                        else
                            st = comine_fail(COMINE_ERR_NUMERIC, "%s: the embedding of model %d is not finite",
                                             paths ? paths[first + i] : ds->samples[first + i].path, m + 1);
                        break;
                    }
                    dst[(size_t)i * dim + k] += e[k];
                }
            }
        }
        if (n_models > 1)
            for (int i = 0; i < count; i++) normalize(dst + (size_t)i * dim, dim);
    }
    comine_free_floats(inputs);
    comine_free_floats(out);
    double dt = comine_now() - t0;
    if (images_per_s) *images_per_s = dt > 0 ? n_paths / dt : 0;
    return st;
}

comine_status comine_embed_files(float *emb, comine_model *const *models, int n_models, const char *const *paths,
                                 int n_paths, int batch, int threads, double *images_per_s)
{
    return embed_images(emb, models, n_models, paths, NULL, NULL, n_paths, batch, threads, images_per_s);
}

comine_status comine_embed_dataset(float *emb, comine_model *const *models, int n_models, const comine_dataset *ds,
                                   int batch, int threads, double *images_per_s)
{
    return embed_images(emb, models, n_models, NULL, ds, NULL, ds->n, batch, threads, images_per_s);
}

comine_status comine_embed_binset(float *emb, comine_model *const *models, int n_models, const comine_binset *set,
                                  int batch, int threads, double *images_per_s)
{
    return embed_images(emb, models, n_models, NULL, NULL, set, 2 * set->n, batch, threads, images_per_s);
}

/* sc[i] = <emb[a[i]], emb[b[i]]>, or of rows 2i and 2i + 1 when a is NULL. */
static void cosine_scores(float *sc, const float *emb, int dim, const int *a, const int *b, int n)
{
    for (int i = 0; i < n; i++) {
        const float *ea = emb + (size_t)(a ? a[i] : 2 * i) * dim, *eb = emb + (size_t)(b ? b[i] : 2 * i + 1) * dim;
        double dot = 0;
        for (int k = 0; k < dim; k++) dot += (double)ea[k] * eb[k];
        sc[i] = (float)dot;
    }
}

comine_status comine_verify_models_threads(comine_verify_result *res, comine_model *const *models, int n_models,
                                           const comine_pairs *pairs, int batch, int threads, float *scores)
{
    double t0 = comine_now();
    int dim = comine_model_arch(models[0])->emb_dim;
    float *emb = comine_alloc_floats((size_t)pairs->n_images * dim);
    double ips = 0;
    comine_status st = comine_embed_files(emb, models, n_models, (const char *const *)pairs->images,
                                          pairs->n_images, batch, threads, &ips);
    if (st) {
        comine_free_floats(emb);
        return st;
    }
    float *own = scores ? NULL : comine_malloc((size_t)pairs->n * sizeof(float));
    float *sc = scores ? scores : own;
    cosine_scores(sc, emb, dim, pairs->a, pairs->b, pairs->n);
    comine_verify_scores(res, sc, pairs->same, pairs->fold, pairs->n, pairs->folds);
    res->embed_images_per_s = ips;
    res->seconds = comine_now() - t0;
    free(own);
    comine_free_floats(emb);
    return COMINE_OK;
}

comine_status comine_verify_models(comine_verify_result *res, comine_model *const *models, int n_models,
                                   const comine_pairs *pairs, int batch, float *scores)
{
    return comine_verify_models_threads(res, models, n_models, pairs, batch, 4, scores);
}

comine_status comine_verify_binset(comine_verify_result *res, comine_model *const *models, int n_models,
                                   const comine_binset *set, int folds, int batch, int threads, float *scores)
{
    int n_same = 0;
    for (int i = 0; i < set->n; i++) n_same += set->same[i];
    if (folds < 1 || folds > COMINE_VERIFY_MAX_FOLDS || folds > set->n)
        return comine_fail(COMINE_ERR_ARG, "%s: %d folds for %d pairs (expected 1 .. min(pairs, %d))", set->source,
                           folds, set->n, COMINE_VERIFY_MAX_FOLDS);
    if (n_same == 0 || n_same == set->n)
        return comine_fail(COMINE_ERR_FORMAT, "%s: needs both matched and mismatched pairs (found %d matched of %d)",
                           set->source, n_same, set->n);
    double t0 = comine_now();
    int dim = comine_model_arch(models[0])->emb_dim;
    float *emb = comine_alloc_floats((size_t)2 * set->n * dim);
    double ips = 0;
    comine_status st = comine_embed_binset(emb, models, n_models, set, batch, threads, &ips);
    if (st) {
        comine_free_floats(emb);
        return st;
    }
    float *own = scores ? NULL : comine_malloc((size_t)set->n * sizeof(float));
    float *sc = scores ? scores : own;
    cosine_scores(sc, emb, dim, NULL, NULL, set->n);
    int *fold = comine_malloc((size_t)set->n * sizeof(int));
    comine_kfold_assign(fold, set->n, folds);
    comine_verify_scores(res, sc, set->same, fold, set->n, folds);
    res->embed_images_per_s = ips;
    res->seconds = comine_now() - t0;
    free(fold);
    free(own);
    comine_free_floats(emb);
    return COMINE_OK;
}
