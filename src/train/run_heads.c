/* run_heads.c: read each peer's ArcFace head weights (K x D) out of a run's checkpoint.bin,
 * read-only, following the layout documented at the top of checkpoint.c:
 *   "CMCK" u32 version=2 (version 1: no S field, S = 1; version 3: the sample rate after S)
 *   u32 n_peers, u32 K, u32 D, u32 S, [f32 sample_rate], u64 samples, u64 seed, i32 epoch, i32 step, i32 bad_in_a_row
 *   f64 x 21   the running epoch's accumulators
 *   per peer: model record (model.h), f32 momentum[num_params], f32 head_weight[K S D],
 *             f32 head_momentum[K S D], u64 dropout_rng[4]
 *   i32 votes[samples], i32 rounds[samples], f32 cos_snapshot[2 samples]
 *   u32 CRC-32 of every byte before it
 * The file is streamed twice: once for the CRC, once to parse; only the heads stay in memory
 * (the momentum blocks are skipped), so a run of 10^5 classes costs its heads, not its file.
 * The sizes must add up to the file's length exactly, which also checks the accumulator count.
 *
 * Heads of S > 1 sub-centres per class (Sub-center ArcFace): each class is represented by its
 * dominant sub-centre, taken as the one of largest norm.  The checkpoint does not say which
 * sub-centre most of a class's samples chose (that needs the data and a forward), and the
 * sub-centre that wins a class's samples is the one their gradients grow, while weight decay
 * shrinks the others: the largest norm is the dominant one's proxy. */
#include "comine/run_heads.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "comine/backend.h"

#define HEADS_MAGIC "CMCK"
#define HEADS_VERSION 2u
#define HEADS_VERSION_NO_S 1u /* no S field: S = 1 */
#define HEADS_VERSION_PFC 3u  /* a Partial FC run's: f32 sample rate after S */
#define HEADS_MAX_S 1024
#define HEADS_ACC_FIELDS 21 /* f64 accumulators of the running epoch */

void comine_run_heads_free(comine_run_heads *h)
{
    if (!h) return;
    free(h->weight[0]);
    free(h->weight[1]);
    memset(h, 0, sizeof *h);
}

/* CRC-32 of the first `size` bytes of fp, from its start, 1 MiB at a time. */
static bool crc_of_prefix(FILE *fp, uint64_t size, uint32_t *crc)
{
    uint8_t *buf = comine_malloc(1 << 20);
    uint32_t c = 0;
    uint64_t left = size;
    bool ok = fseeko(fp, 0, SEEK_SET) == 0;
    while (ok && left > 0) {
        size_t want = left < (1u << 20) ? (size_t)left : (1u << 20);
        ok = fread(buf, 1, want, fp) == want;
        if (ok) c = comine_crc32(c, buf, want);
        left -= want;
    }
    free(buf);
    *crc = c;
    return ok;
}

static bool read_u32(FILE *fp, uint32_t *v)
{
    uint8_t b[4];
    if (fread(b, 1, 4, fp) != 4) return false;
    *v = comine_get_le32(b);
    return true;
}

static bool read_u64(FILE *fp, uint64_t *v)
{
    uint8_t b[8];
    if (fread(b, 1, 8, fp) != 8) return false;
    *v = comine_get_le64(b);
    return true;
}

static bool read_floats(FILE *fp, float *x, size_t n)
{
    if (fread(x, sizeof(float), n, fp) != n) return false;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        uint8_t b[4];
        memcpy(b, &x[i], 4);
        uint32_t u = comine_get_le32(b);
        memcpy(&x[i], &u, 4);
    }
#endif
    return true;
}

/* weight (K, D): of each class's S rows of sub (K S, D), the one of largest norm (the first
 * of equal norms; a non-finite row counts as the largest, so that the finiteness check sees it). */
static void dominant_subcenters(float *weight, const float *sub, int K, int S, int D)
{
    for (int c = 0; c < K; c++) {
        int best = 0;
        double best_ss = -1;
        for (int s = 0; s < S; s++) {
            const float *w = sub + ((size_t)c * S + s) * D;
            double ss = 0;
            for (int d = 0; d < D; d++) ss += (double)w[d] * w[d];
            if (!(ss <= best_ss)) { /* larger, or NaN */
                best = s;
                best_ss = ss;
                if (isnan(ss)) break;
            }
        }
        memcpy(weight + (size_t)c * D, sub + ((size_t)c * S + best) * D, (size_t)D * sizeof(float));
    }
}

comine_status comine_run_heads_load(comine_run_heads *h, const char *path)
{
    memset(h, 0, sizeof *h);
    FILE *fp = fopen(path, "rb");
    if (!fp) return comine_fail(COMINE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return comine_fail(COMINE_ERR_IO, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    char magic[4] = {0};
    if (size < 12 || fread(magic, 1, 4, fp) != 4 || memcmp(magic, HEADS_MAGIC, 4) != 0) {
        fclose(fp);
        return comine_fail(COMINE_ERR_FORMAT, "%s: not a comine checkpoint", path);
    }
    uint32_t crc = 0, stored = 0;
    if (!crc_of_prefix(fp, size - 4, &crc) || !read_u32(fp, &stored)) {
        fclose(fp);
        return comine_fail(COMINE_ERR_IO, "%s: read error", path);
    }
    if (crc != stored) {
        fclose(fp);
        return comine_fail(COMINE_ERR_FORMAT, "%s: checksum mismatch: the checkpoint is truncated or corrupted", path);
    }
    comine_status st = COMINE_OK;
    uint32_t version = 0, n_peers = 0, K = 0, D = 0, S = 1, rate_bits = 0, epoch = 0, step = 0, bad = 0;
    uint64_t samples = 0, seed = 0;
    bool ok = fseeko(fp, 4, SEEK_SET) == 0 && read_u32(fp, &version);
    if (!ok || (version != HEADS_VERSION && version != HEADS_VERSION_NO_S && version != HEADS_VERSION_PFC)) {
        fclose(fp);
        return comine_fail(COMINE_ERR_FORMAT, "%s: unsupported checkpoint version %u (this reader knows %u)", path,
                           version, HEADS_VERSION_PFC);
    }
    ok = read_u32(fp, &n_peers) && read_u32(fp, &K) && read_u32(fp, &D) &&
         (version == HEADS_VERSION_NO_S || read_u32(fp, &S)) &&
         (version != HEADS_VERSION_PFC || read_u32(fp, &rate_bits)) && read_u64(fp, &samples) && read_u64(fp, &seed) &&
         read_u32(fp, &epoch) && read_u32(fp, &step) && read_u32(fp, &bad);
    if (!ok || n_peers < 1 || n_peers > 2 || K < 1 || D < 1 || S < 1 || K > (1u << 30) || D > (1u << 20) ||
        S > HEADS_MAX_S || (uint64_t)K * S * D * 8 > size) {
        fclose(fp);
        return comine_fail(COMINE_ERR_FORMAT, "%s: impossible sizes (peers %u, classes %u, dim %u, sub-centres %u)",
                           path, n_peers, K, D, S);
    }
    h->n_peers = (int)n_peers;
    h->K = (int)K;
    h->D = (int)D;
    h->samples = samples;
    h->seed = seed;
    h->epoch = (int32_t)epoch;
    h->step = (int32_t)step;
    h->subcenters = (int)S;
    size_t kd = (size_t)K * D, ksd = kd * S;
    if (fseeko(fp, (off_t)(HEADS_ACC_FIELDS * 8), SEEK_CUR) != 0) ok = false;
    h->peers_at = (int64_t)ftello(fp);
    float *sub = NULL;
    const comine_backend *be = comine_backend_cpu();
    for (int k = 0; ok && k < h->n_peers; k++) {
        comine_model *m = NULL;
        st = comine_model_read(&m, fp, path, be, 1);
        if (st != COMINE_OK) break;
        if (k == 0) h->arch = *comine_model_arch(m);
        size_t num_params = comine_model_num_params(m);
        comine_model_free(m);
        h->weight[k] = malloc(kd * sizeof(float));
        if (S > 1 && !sub) sub = malloc(ksd * sizeof(float));
        if (!h->weight[k] || (S > 1 && !sub)) {
            st = comine_fail(COMINE_ERR_NOMEM, "%s: no memory for a head of %u x %u x %u", path, K, S, D);
            break;
        }
        ok = fseeko(fp, (off_t)(num_params * sizeof(float)), SEEK_CUR) == 0 &&
             read_floats(fp, S > 1 ? sub : h->weight[k], ksd) &&
             fseeko(fp, (off_t)(ksd * sizeof(float) + 4 * 8), SEEK_CUR) == 0;
        if (ok && S > 1) dominant_subcenters(h->weight[k], sub, (int)K, (int)S, (int)D);
    }
    free(sub);
    if (st == COMINE_OK) {
        off_t at = ftello(fp);
        uint64_t tail = samples * (4 + 4 + 8) + 4;
        if (!ok || at < 0 || (uint64_t)at + tail != size)
            st = comine_fail(COMINE_ERR_FORMAT, "%s: the checkpoint's sizes do not add up (another layout?)", path);
    }
    fclose(fp);
    if (st != COMINE_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", comine_last_error());
        comine_run_heads_free(h);
        return comine_fail(st, "%s", why);
    }
    for (int k = 0; k < h->n_peers; k++)
        for (size_t i = 0; i < kd; i++)
            if (!isfinite(h->weight[k][i])) {
                int peer = k;
                comine_run_heads_free(h);
                return comine_fail(COMINE_ERR_NUMERIC, "%s: the head of peer %c holds non-finite weights", path,
                                   'A' + peer);
            }
    return COMINE_OK;
}
