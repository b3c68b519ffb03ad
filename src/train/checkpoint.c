/* checkpoint.c: the trainer's checkpoint file: everything a run needs to continue
 * exactly where it stopped.
 *
 * Layout (little-endian; every size explicit):
 *   "CMCK" u32 version=2 (3 with Partial FC)
 *   u32 n_peers, u32 K, u32 D, u32 S, [version 3: f32 sample_rate], u64 samples, u64 seed, i32 epoch, i32 step, i32 bad_in_a_row
 *   f64 x EPOCH_ACC_FIELDS   the running epoch's accumulators
 *   per peer: model record (model.h), f32 momentum[num_params], f32 head_weight[K S D],
 *             f32 head_momentum[K S D], u64 dropout_rng[4]
 *   i32 votes[samples], i32 rounds[samples], f32 cos_snapshot[2 samples]
 *   u32 CRC-32 of every byte before it
 * Written atomically (temporary file, fsync, rename); the CRC is verified before anything
 * is read back, so a torn or corrupted file is refused and the previous state stays.
 * S is the heads' sub-centres per class (Sub-center ArcFace; 1: plain); version 1 files have no
 * S field and are read as S = 1.  A resume with another S is refused, except S = 1 after
 * --subcenter-drop (trainer_subcenter.c makes the heads plain before the file is read).
 * A run of Partial FC (--sample-rate R < 1) writes version 3, which records R; versions 1 and
 * 2 are read as R = 1 (a run of R = 1 still writes version 2, byte for byte as before).  A
 * resume with another R is refused (the draws of the steps to come depend on it).
 *
 * Several ranks (dist.h): one file, the same layout, whatever P.  Every rank holds the same
 * backbones and trainer state; with the class-sharded head each rank holds its rows of the
 * heads and their momentum.  Saving is collective: rank 0 writes, and receives the other
 * ranks' head rows in rank order (the rows are consecutive classes), piece by piece, never the
 * whole head at once.  Loading: every rank reads the file and keeps its own rows. */
#include "train/trainer_impl.h"

#include <errno.h>

#include "comine/dist.h"
#include <stdlib.h>
#include <string.h>

#define CKPT_MAGIC "CMCK"
#define CKPT_VERSION 2u
#define CKPT_VERSION_NO_S 1u /* before the S field: S = 1 */
#define CKPT_VERSION_PFC 3u  /* with the sample rate (Partial FC) */

/* ---- writing --------------------------------------------------------------------------- */

static bool put(FILE *fp, const void *p, size_t size)
{
    return size == 0 || fwrite(p, 1, size, fp) == size;
}

static bool put_u32(FILE *fp, uint32_t v)
{
    uint8_t b[4];
    comine_put_le32(b, v);
    return put(fp, b, 4);
}

static bool put_u64(FILE *fp, uint64_t v)
{
    uint8_t b[8];
    comine_put_le64(b, v);
    return put(fp, b, 8);
}

static bool put_floats(FILE *fp, const float *x, size_t n)
{
    return put(fp, x, n * sizeof(float)); /* x86-64 and the targets comine builds for are little-endian */
}

enum { STAGE_FLOATS = 1 << 18 }; /* device memory goes through a 1 MiB host buffer */

/* n floats of device memory, downloaded piece by piece. */
static bool put_device(FILE *fp, const comine_backend *be, const float *x, size_t n, float *stage)
{
    bool ok = true;
    for (size_t at = 0; ok && at < n; at += STAGE_FLOATS) {
        size_t len = n - at < STAGE_FLOATS ? n - at : STAGE_FLOATS;
        comine_backend_download(be, stage, x + at, len);
        ok = put_floats(fp, stage, len);
    }
    return ok;
}

static bool put_acc(FILE *fp, const epoch_acc *a)
{
    _Static_assert(sizeof(epoch_acc) == EPOCH_ACC_FIELDS * sizeof(double), "epoch_acc holds only doubles");
    return put(fp, a, sizeof *a);
}

/* CRC of the bytes written so far, read back from the temporary file. */
static comine_status crc_of_file(const char *path, uint32_t *crc)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return comine_fail(COMINE_ERR_IO, "%s: cannot reopen: %s", path, strerror(errno));
    uint8_t *buf = comine_malloc(1 << 20);
    uint32_t c = 0;
    size_t got;
    while ((got = fread(buf, 1, 1 << 20, fp)) > 0) c = comine_crc32(c, buf, got);
    int err = ferror(fp);
    fclose(fp);
    free(buf);
    if (err) return comine_fail(COMINE_ERR_IO, "%s: read error", path);
    *crc = c;
    return COMINE_OK;
}

/* The head rows of one peer (weights or momentum), in class order: this rank's, then on rank 0
 * those received from ranks 1 .. P-1 (sharded head). */
static bool put_head_rows(FILE *fp, const trainer *t, const comine_peer *p, const float *rows, float *stage)
{
    size_t local = comine_peer_head_floats(p);
    bool ok = put_device(fp, t->be, rows, local, stage);
    if (!p->sharded) return ok;
    for (int r = 1; r < comine_dist_size(); r++) {
        int lo, hi;
        comine_dist_slice(p->classes, r, comine_dist_size(), &lo, &hi);
        size_t n = (size_t)(hi - lo) * p->head.D;
        for (size_t at = 0; at < n; at += STAGE_FLOATS) {
            size_t len = n - at < STAGE_FLOATS ? n - at : STAGE_FLOATS;
            comine_dist_recv(stage, len * sizeof(float), r);
            ok = ok && put_floats(fp, stage, len);
        }
    }
    return ok;
}

/* Ranks other than 0: their head rows to rank 0, in the order put_head_rows takes them. */
static void send_head_rows(const trainer *t)
{
    float *stage = comine_malloc(STAGE_FLOATS * sizeof(float));
    for (int k = 0; k < t->peers.n; k++) {
        const comine_peer *p = &t->peers.peer[k];
        size_t n = comine_peer_head_floats(p);
        const float *rows[2] = {p->head_weight, p->head_momentum};
        for (int w = 0; w < 2; w++)
            for (size_t at = 0; at < n; at += STAGE_FLOATS) {
                size_t len = n - at < STAGE_FLOATS ? n - at : STAGE_FLOATS;
                comine_backend_download(t->be, stage, rows[w] + at, len);
                comine_dist_send(stage, len * sizeof(float), 0);
            }
    }
    free(stage);
}

comine_status comine_checkpoint_save(const trainer *t, const char *path)
{
    if (comine_dist_rank() != 0) {
        if (t->peers.n > 0 && t->peers.peer[0].sharded) send_head_rows(t);
        return COMINE_OK;
    }
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    FILE *fp = af.fp;
    const bool pfc = t->cfg->sample_rate < 1.0f;
    bool ok = put(fp, CKPT_MAGIC, 4) && put_u32(fp, pfc ? CKPT_VERSION_PFC : CKPT_VERSION) &&
              put_u32(fp, (uint32_t)t->peers.n) && put_u32(fp, (uint32_t)t->K) && put_u32(fp, (uint32_t)t->D) &&
              put_u32(fp, (uint32_t)(t->peers.peer[0].head.S > 1 ? t->peers.peer[0].head.S : 1)) &&
              (!pfc || put_floats(fp, &t->cfg->sample_rate, 1)) &&
              put_u64(fp, (uint64_t)t->ds->n) &&
              put_u64(fp, t->cfg->seed) && put_u32(fp, (uint32_t)t->epoch) && put_u32(fp, (uint32_t)t->step) &&
              put_u32(fp, (uint32_t)t->bad_in_a_row) && put_acc(fp, &t->acc);
    float *stage = comine_malloc(STAGE_FLOATS * sizeof(float));
    for (int k = 0; ok && k < t->peers.n; k++) {
        const comine_peer *p = &t->peers.peer[k];
        st = comine_model_write(p->model, fp);
        if (st != COMINE_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", comine_last_error());
            free(stage);
            comine_atomic_abort(&af);
            return comine_fail(st, "%s: cannot write the checkpoint (%s); the previous one is kept", path, why);
        }
        ok = put_device(fp, t->be, p->momentum, comine_model_num_params(p->model), stage) &&
             put_head_rows(fp, t, p, p->head_weight, stage) && put_head_rows(fp, t, p, p->head_momentum, stage);
        for (int i = 0; ok && i < 4; i++) ok = put_u64(fp, p->dropout_rng.s[i]);
    }
    free(stage);
    ok = ok && put(fp, t->votes, (size_t)t->ds->n * 4) && put(fp, t->rounds, (size_t)t->ds->n * 4) &&
         put_floats(fp, t->cos_snapshot, (size_t)t->ds->n * 2);
    if (!ok || fflush(fp) != 0) {
        int e = errno;
        comine_atomic_abort(&af);
        return comine_fail(COMINE_ERR_IO, "%s: cannot write the checkpoint (%s); the previous one is kept", path,
                           strerror(e ? e : EIO));
    }
    uint32_t crc = 0;
    st = crc_of_file(af.tmp_path, &crc);
    if (st != COMINE_OK) {
        comine_atomic_abort(&af);
        return st;
    }
    if (!put_u32(fp, crc)) {
        int e = errno;
        comine_atomic_abort(&af);
        return comine_fail(COMINE_ERR_IO, "%s: cannot write the checkpoint (%s); the previous one is kept", path,
                           strerror(e ? e : EIO));
    }
    st = comine_atomic_commit(&af);
    if (st != COMINE_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", comine_last_error());
        return comine_fail(st, "cannot write the checkpoint: %s", why);
    }
    return COMINE_OK;
}

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p;
    size_t left;
    bool ok;
} reader;

static void get(reader *r, void *dst, size_t size)
{
    if (!r->ok || r->left < size) {
        r->ok = false;
        return;
    }
    memcpy(dst, r->p, size);
    r->p += size;
    r->left -= size;
}

static void skip(reader *r, size_t size)
{
    if (!r->ok || r->left < size) {
        r->ok = false;
        return;
    }
    r->p += size;
    r->left -= size;
}

/* n floats into device memory, uploaded piece by piece. */
static void get_device(reader *r, const comine_backend *be, float *dst, size_t n)
{
    if (!r->ok || r->left / sizeof(float) < n) {
        r->ok = false;
        return;
    }
    float *stage = comine_malloc(STAGE_FLOATS * sizeof(float));
    for (size_t at = 0; at < n; at += STAGE_FLOATS) {
        size_t len = n - at < STAGE_FLOATS ? n - at : STAGE_FLOATS;
        get(r, stage, len * sizeof(float));
        comine_backend_upload(be, dst + at, stage, len);
    }
    free(stage);
}

static uint32_t get_u32(reader *r)
{
    uint8_t b[4] = {0};
    get(r, b, 4);
    return comine_get_le32(b);
}

static uint64_t get_u64(reader *r)
{
    uint8_t b[8] = {0};
    get(r, b, 8);
    return comine_get_le64(b);
}

comine_status comine_checkpoint_load(trainer *t, const char *path)
{
    uint8_t *data;
    size_t size;
    comine_status st = comine_read_file(path, &data, &size);
    if (st != COMINE_OK) return st;
    if (size < 12 || memcmp(data, CKPT_MAGIC, 4) != 0) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT, "%s: not a comine checkpoint", path);
    }
    uint32_t stored = comine_get_le32(data + size - 4);
    if (comine_crc32(0, data, size - 4) != stored) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT, "%s: checksum mismatch: the checkpoint is truncated or corrupted",
                           path);
    }
    reader r = {data + 4, size - 8, true};
    uint32_t version = get_u32(&r);
    uint32_t n_peers = get_u32(&r), K = get_u32(&r), D = get_u32(&r);
    uint32_t S = version == CKPT_VERSION_NO_S ? 1u : get_u32(&r);
    float rate = 1.0f;
    if (version == CKPT_VERSION_PFC) {
        uint32_t bits = get_u32(&r);
        memcpy(&rate, &bits, sizeof rate);
    }
    uint64_t n = get_u64(&r), seed = get_u64(&r);
    int32_t epoch = (int32_t)get_u32(&r), step = (int32_t)get_u32(&r), bad = (int32_t)get_u32(&r);
    if (!r.ok || (version != CKPT_VERSION && version != CKPT_VERSION_NO_S && version != CKPT_VERSION_PFC)) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT, "%s: unsupported checkpoint version %u", path, version);
    }
    if (rate != t->cfg->sample_rate) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT,
                           "%s: the checkpoint's run has --sample-rate %g, this run %g (the sample rate must be the "
                           "run's)",
                           path, (double)rate, (double)t->cfg->sample_rate);
    }
    const int run_S = t->peers.peer[0].head.S > 1 ? t->peers.peer[0].head.S : 1;
    if ((int)n_peers == t->peers.n && (int)K == t->K && S != (uint32_t)run_S) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT,
                           "%s: the checkpoint's heads have %u sub-centres per class, this run %d (--subcenters "
                           "must be the run's)",
                           path, S, run_S);
    }
    if ((int)n_peers != t->peers.n || (int)K != t->K || (int)D != t->D || n != (uint64_t)t->ds->n ||
        seed != t->cfg->seed) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT,
                           "%s: the checkpoint belongs to another run (peers %u, classes %u, dim %u, samples %llu, "
                           "seed %llu; this run: %d, %d, %d, %d, %llu)",
                           path, n_peers, K, D, (unsigned long long)n, (unsigned long long)seed, t->peers.n, t->K,
                           t->D, t->ds->n, (unsigned long long)t->cfg->seed);
    }
    if (epoch < 0 || epoch > t->cfg->epochs || step < 0 || step > t->steps_per_epoch || bad < 0) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT, "%s: bad position (epoch %d step %d, %d bad steps; the run has %d epochs)",
                           path, epoch, step, bad, t->cfg->epochs);
    }
    get(&r, &t->acc, sizeof t->acc);
    size_t kd = (size_t)K * S * D;
    for (int k = 0; r.ok && k < t->peers.n; k++) {
        comine_peer *p = &t->peers.peer[k];
        FILE *mem = fmemopen((void *)r.p, r.left, "rb");
        if (!mem) {
            free(data);
            return comine_fail(COMINE_ERR_IO, "%s: cannot read the model records", path);
        }
        comine_model *m = NULL;
        st = comine_model_read(&m, mem, path, t->be, t->B);
        long used = ftell(mem);
        fclose(mem);
        if (st != COMINE_OK) {
            free(data);
            return st;
        }
        if (comine_model_num_params(m) != comine_model_num_params(p->model)) {
            comine_model_free(m);
            free(data);
            return comine_fail(COMINE_ERR_FORMAT, "%s: the checkpoint's network differs from --net/--width/--input",
                               path);
        }
        comine_model_copy_state(p->model, m);
        comine_model_free(m);
        r.p += used;
        r.left -= (size_t)used;
        get_device(&r, t->be, p->momentum, comine_model_num_params(p->model));
        /* this rank's rows of the head (all of them without sharding) */
        size_t before = (size_t)p->class_lo * D, mine = comine_peer_head_floats(p), after = kd - before - mine;
        for (int w = 0; w < 2; w++) {
            skip(&r, before * sizeof(float));
            get_device(&r, t->be, w == 0 ? p->head_weight : p->head_momentum, mine);
            skip(&r, after * sizeof(float));
        }
        for (int i = 0; i < 4; i++) p->dropout_rng.s[i] = get_u64(&r);
    }
    get(&r, t->votes, n * 4);
    get(&r, t->rounds, n * 4);
    get(&r, t->cos_snapshot, n * 2 * sizeof(float));
    free(data);
    if (!r.ok || r.left != 0) return comine_fail(COMINE_ERR_FORMAT, "%s: the checkpoint's sizes do not add up", path);
    t->epoch = epoch;
    t->step = step;
    t->bad_in_a_row = bad;
    return COMINE_OK;
}
