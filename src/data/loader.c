/* loader.c: the threaded batch loader.  Worker threads (pthreads) each build whole batches:
 * read the encoded bytes (on the direct path below, the files of a whole batch at once where
 * the system allows: prefetch.c), decode, augment (flip, crop/scale jitter) and normalise into a
 * slot of a ring of `queue_depth + threads` batch buffers; the consumer takes batches in
 * step order.  The epoch order is a seeded shuffle of (seed, epoch), and each sample's
 * augmentation draws from an RNG seeded by (seed, epoch, position), so the batches do not
 * depend on the thread count.  Memory is bounded by the ring (decoded images are only
 * kept across epochs with opts.cache; without it and without jitter, a JPEG already at the
 * input size is decoded straight to floats).  A bad image is skipped (counted, logged, listed
 * once) under COMINE_ON_BAD_SKIP, or turns the batch into an error under FAIL. */
#include "data_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_HELD } slot_state;

typedef struct slot {
    slot_state state;
    comine_batch batch;
    comine_status status;   /* of the fill */
    char error[1024];
} slot;

struct comine_loader {
    const comine_dataset *ds;
    comine_loader_opts o;
    int nslots;
    slot *slots;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;   /* workers wait for a claimable step */
    pthread_cond_t cv_ready;  /* the consumer waits for its step; start_epoch waits for idle workers */
    /* epoch state (under mu) */
    int *order;               /* (n) sample indices of the epoch */
    int epoch, steps, next_claim, next_deliver, generation, busy;
    bool started, stopping;
    /* bad images (under mu) */
    uint8_t *bad_seen;        /* (n) */
    int bad_count, bad_cap;
    char **bad_items;
    /* decoded-image cache (opts.cache) */
    comine_image *cache;      /* (n) */
    uint8_t *cache_state;     /* (n) 0 = none, 1 = decoded, 2 = bad */
};

void comine_loader_opts_default(comine_loader_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 64;
    o->input = 112;
    o->threads = 2;
    o->queue_depth = 2;
    o->seed = 1;
    o->shuffle = true;
    o->flip = true;
    o->on_bad = COMINE_ON_BAD_SKIP;
    o->part = 0;
    o->parts = 1;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void comine_loader_sample_rng(comine_rng *rng, uint64_t seed, int epoch, int64_t position)
{
    uint64_t key = mix64(seed + 0x9e3779b97f4a7c15ULL * ((uint64_t)epoch + 1));
    key = mix64(key ^ ((uint64_t)position * 0xd1342543de82ef95ULL + 0x632be59bd9b4e019ULL));
    comine_rng_seed(rng, key, COMINE_STREAM_AUGMENT);
}

int comine_loader_steps_per_epoch(const comine_loader *l)
{
    int n = l->ds->n, b = l->o.batch;
    return l->o.drop_last ? n / b : (n + b - 1) / b;
}

static void record_bad(comine_loader *l, int index, const char *reason)
{
    pthread_mutex_lock(&l->mu);
    if (!l->bad_seen[index]) {
        l->bad_seen[index] = 1;
        if (l->bad_count == l->bad_cap) {
            l->bad_cap = l->bad_cap ? l->bad_cap * 2 : 16;
            l->bad_items = comine_realloc(l->bad_items, sizeof(char *) * l->bad_cap);
        }
        l->bad_items[l->bad_count++] = comine_strdup(reason);
        if (l->o.on_bad == COMINE_ON_BAD_SKIP) comine_warn("skipping bad image: %s", reason);
    }
    pthread_mutex_unlock(&l->mu);
}

/* A worker's reading: the files of a batch read at once where the system allows it
 * (prefetch, NULL otherwise), and one buffer for a file read on its own. */
typedef struct worker_io {
    comine_prefetch *prefetch;
    comine_bytes bytes;
} worker_io;

/* Decode sample `index` into *img (or borrow the cached copy: *owned = false). */
static comine_status get_image(comine_loader *l, int index, comine_image *img, bool *owned, comine_bytes *bytes)
{
    *owned = true;
    if (l->cache) {
        if (l->cache_state[index] == 1) {
            *img = l->cache[index];
            *owned = false;
            return COMINE_OK;
        }
    }
    comine_status st = comine_dataset_read_into(l->ds, index, bytes);
    if (st == COMINE_OK)
        st = comine_image_decode(img, bytes->data, bytes->size, comine_dataset_sample_name(l->ds, index));
    if (st == COMINE_OK && l->cache) {
        /* Each sample is decoded by one worker per epoch, so this slot has one writer. */
        l->cache[index] = *img;
        l->cache_state[index] = 1;
        *owned = false;
    }
    return st;
}

/* Sample `index` (the k-th of its batch) to the input floats at `out` without the cache and
 * without jitter: a JPEG at the input size goes from its bytes straight to floats, anything
 * else through the decoded image.  Both make the same draws and the same floats as
 * comine_image_augment_to_input. */
static comine_status load_direct(comine_loader *l, int index, int k, float *out, comine_rng *rng, worker_io *io)
{
    size_t size = 0;
    const uint8_t *data = io->prefetch ? comine_prefetch_bytes(io->prefetch, k, &size) : NULL;
    comine_status st = COMINE_OK;
    if (!data) {
        st = comine_dataset_read_into(l->ds, index, &io->bytes);
        if (st != COMINE_OK) return st;
        data = io->bytes.data;
        size = io->bytes.size;
    }
    const char *name = comine_dataset_sample_name(l->ds, index);
    comine_rng draws = *rng;
    bool flip = l->o.flip && comine_rng_uniform(&draws) < 0.5f;
    bool done = false;
    st = comine_image_jpeg_to_input(out, &done, data, size, name, l->o.input, flip);
    if (st == COMINE_OK && !done) {
        comine_image img;
        st = comine_image_decode(&img, data, size, name);
        if (st == COMINE_OK) {
            comine_image_augment_to_input(out, &img, l->o.input, l->o.flip, l->o.jitter, rng);
            comine_image_free(&img);
        }
    }
    return st;
}

static void fill_batch(comine_loader *l, slot *s, int step, int epoch, int gen, worker_io *io)
{
    comine_batch *b = &s->batch;
    const int in = l->o.input;
    const size_t per = (size_t)in * in * 3;
    int first = step * l->o.batch, last = first + l->o.batch;
    if (last > l->ds->n) last = l->ds->n;
    if (l->o.parts > 1) { /* this part's positions only */
        const int m = last - first;
        last = first + (int)((long long)m * (l->o.part + 1) / l->o.parts);
        first += (int)((long long)m * l->o.part / l->o.parts);
    }
    b->n = 0;
    b->step = step;
    s->status = COMINE_OK;
    const bool direct = !l->cache && l->o.jitter <= 0;
    if (direct && io->prefetch) comine_prefetch_read(io->prefetch, l->ds, l->order + first, last - first);
    for (int pos = first; pos < last; pos++) {
        if (__atomic_load_n(&l->generation, __ATOMIC_ACQUIRE) != gen) return; /* a new epoch started */
        int index = l->order[pos];
        comine_rng rng;
        comine_loader_sample_rng(&rng, l->o.seed, epoch, pos);
        float *out = b->images + per * b->n;
        comine_image img;
        bool owned = false;
        comine_status st = direct ? load_direct(l, index, pos - first, out, &rng, io)
                                  : get_image(l, index, &img, &owned, &io->bytes);
        if (st != COMINE_OK) {
            record_bad(l, index, comine_last_error());
            if (l->o.on_bad == COMINE_ON_BAD_FAIL) {
                s->status = st;
                snprintf(s->error, sizeof s->error, "%s", comine_last_error());
                return;
            }
            continue;
        }
        if (!direct) {
            comine_image_augment_to_input(out, &img, in, l->o.flip, l->o.jitter, &rng);
            if (owned) comine_image_free(&img);
        }
        b->labels[b->n] = l->ds->samples[index].label;
        b->indices[b->n] = index;
        b->truth[b->n] = l->ds->samples[index].truth;
        b->n++;
    }
}

static void *worker(void *arg)
{
    comine_loader *l = arg;
    worker_io io = {0};
    if (!l->cache && l->o.jitter <= 0 && comine_dataset_has_files(l->ds))
        io.prefetch = comine_prefetch_create(l->o.batch);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stopping &&
               !(l->started && l->next_claim < l->steps && l->next_claim < l->next_deliver + l->nslots &&
                 l->slots[l->next_claim % l->nslots].state == SLOT_FREE))
            pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->stopping) break;
        int step = l->next_claim++;
        slot *s = &l->slots[step % l->nslots];
        s->state = SLOT_FILLING;
        int gen = l->generation, epoch = l->epoch;
        l->busy++;
        pthread_mutex_unlock(&l->mu);
        fill_batch(l, s, step, epoch, gen, &io);
        pthread_mutex_lock(&l->mu);
        l->busy--;
        if (gen == l->generation) s->state = SLOT_READY;
        pthread_cond_broadcast(&l->cv_ready);
    }
    pthread_mutex_unlock(&l->mu);
    comine_prefetch_free(io.prefetch);
    comine_bytes_free(&io.bytes);
    return NULL;
}

comine_status comine_loader_create(comine_loader **out, const comine_dataset *ds, const comine_loader_opts *o)
{
    *out = NULL;
    if (!ds || ds->n <= 0) return comine_fail(COMINE_ERR_ARG, "loader: empty data set");
    if (o->batch < 1) return comine_fail(COMINE_ERR_ARG, "loader: batch must be >= 1 (got %d)", o->batch);
    if (o->input < 8 || o->input > 1024) return comine_fail(COMINE_ERR_ARG, "loader: input size %d out of range 8..1024", o->input);
    if (o->threads < 1 || o->threads > 256) return comine_fail(COMINE_ERR_ARG, "loader: threads %d out of range 1..256", o->threads);
    if (o->queue_depth < 0) return comine_fail(COMINE_ERR_ARG, "loader: queue depth must be >= 0");
    if (!(o->jitter >= 0 && o->jitter <= 0.5f)) return comine_fail(COMINE_ERR_ARG, "loader: jitter %g out of range 0..0.5", o->jitter);
    if (o->parts > 1 && (o->part < 0 || o->part >= o->parts))
        return comine_fail(COMINE_ERR_ARG, "loader: part %d of %d out of range", o->part, o->parts);
    if (o->drop_last && ds->n < o->batch)
        return comine_fail(COMINE_ERR_ARG, "loader: %d samples make no full batch of %d (drop_last)", ds->n, o->batch);
    comine_loader *l = comine_calloc(1, sizeof *l);
    l->ds = ds;
    l->o = *o;
    if (l->o.queue_depth == 0) l->o.queue_depth = 2;
    l->nslots = l->o.queue_depth + l->o.threads;
    l->slots = comine_calloc(l->nslots, sizeof(slot));
    const size_t per = (size_t)o->input * o->input * 3;
    for (int i = 0; i < l->nslots; i++) {
        comine_batch *b = &l->slots[i].batch;
        b->images = comine_alloc_floats(per * o->batch);
        b->labels = comine_calloc(o->batch, sizeof(int));
        b->indices = comine_calloc(o->batch, sizeof(int));
        b->truth = comine_calloc(o->batch, sizeof(int8_t));
    }
    l->order = comine_malloc(sizeof(int) * ds->n);
    l->bad_seen = comine_calloc(ds->n, 1);
    if (o->cache) {
        l->cache = comine_calloc(ds->n, sizeof(comine_image));
        l->cache_state = comine_calloc(ds->n, 1);
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_ready, NULL);
    l->threads = comine_calloc(o->threads, sizeof(pthread_t));
    for (int t = 0; t < o->threads; t++) {
        if (pthread_create(&l->threads[t], NULL, worker, l) != 0) {
            l->o.threads = t;
            comine_loader_free(l);
            return comine_fail(COMINE_ERR_NOMEM, "loader: cannot start thread %d", t);
        }
    }
    *out = l;
    return COMINE_OK;
}

void comine_loader_start_epoch(comine_loader *l, int epoch, int first_step)
{
    pthread_mutex_lock(&l->mu);
    __atomic_add_fetch(&l->generation, 1, __ATOMIC_RELEASE);
    l->started = false;
    while (l->busy > 0) pthread_cond_wait(&l->cv_ready, &l->mu);
    for (int i = 0; i < l->nslots; i++)
        if (l->slots[i].state != SLOT_HELD) l->slots[i].state = SLOT_FREE;
    int n = l->ds->n;
    for (int i = 0; i < n; i++) l->order[i] = i;
    if (l->o.shuffle) {
        comine_rng r;
        comine_rng_seed(&r, mix64(l->o.seed + 0x9e3779b97f4a7c15ULL * ((uint64_t)epoch + 1)), COMINE_STREAM_SHUFFLE);
        comine_rng_shuffle_int(&r, l->order, (size_t)n);
    }
    l->epoch = epoch;
    l->steps = comine_loader_steps_per_epoch(l);
    if (first_step < 0) first_step = 0;
    if (first_step > l->steps) first_step = l->steps;
    l->next_claim = l->next_deliver = first_step;
    l->started = true;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
}

comine_status comine_loader_next(comine_loader *l, comine_batch **batch)
{
    *batch = NULL;
    pthread_mutex_lock(&l->mu);
    if (!l->started) {
        pthread_mutex_unlock(&l->mu);
        return comine_fail(COMINE_ERR_ARG, "loader: comine_loader_start_epoch was not called");
    }
    if (l->next_deliver >= l->steps) {
        pthread_mutex_unlock(&l->mu);
        return COMINE_OK;
    }
    int step = l->next_deliver;
    slot *s = &l->slots[step % l->nslots];
    if (s->state == SLOT_HELD) {
        pthread_mutex_unlock(&l->mu);
        return comine_fail(COMINE_ERR_ARG,
                           "loader: all %d batch buffers (queue_depth + threads) are held; release one first", l->nslots);
    }
    while (!(s->state == SLOT_READY && s->batch.step == step)) pthread_cond_wait(&l->cv_ready, &l->mu);
    l->next_deliver++;
    if (s->status != COMINE_OK) {
        comine_status st = comine_fail(s->status, "%s", s->error);
        s->state = SLOT_FREE;
        l->next_deliver = l->steps; /* the epoch ends at the error */
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        return st;
    }
    s->state = SLOT_HELD;
    pthread_mutex_unlock(&l->mu);
    *batch = &s->batch;
    return COMINE_OK;
}

void comine_loader_release(comine_loader *l, comine_batch *batch)
{
    if (!batch) return;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->nslots; i++)
        if (&l->slots[i].batch == batch && l->slots[i].state == SLOT_HELD) l->slots[i].state = SLOT_FREE;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
}

int comine_loader_bad_count(const comine_loader *l)
{
    return l->bad_count;
}

const char *comine_loader_bad_item(const comine_loader *l, int i)
{
    return i >= 0 && i < l->bad_count ? l->bad_items[i] : NULL;
}

void comine_loader_free(comine_loader *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stopping = true;
    __atomic_add_fetch(&l->generation, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    for (int t = 0; t < l->o.threads; t++) pthread_join(l->threads[t], NULL);
    free(l->threads);
    for (int i = 0; i < l->nslots; i++) {
        comine_free_floats(l->slots[i].batch.images);
        free(l->slots[i].batch.labels);
        free(l->slots[i].batch.indices);
        free(l->slots[i].batch.truth);
    }
    free(l->slots);
    free(l->order);
    free(l->bad_seen);
    for (int i = 0; i < l->bad_count; i++) free(l->bad_items[i]);
    free(l->bad_items);
    if (l->cache) {
        for (int i = 0; i < l->ds->n; i++) free(l->cache[i].rgb);
        free(l->cache);
        free(l->cache_state);
    }
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_ready);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
