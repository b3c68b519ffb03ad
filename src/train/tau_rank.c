/* tau_rank.c: the noise rate from rank p-values (comine/estimate.h): each sample's p-value,
 * the share of the other labels that score above its own, and Storey's estimate of the share
 * of samples whose label is no better than a random one.  Used by cross-fitting
 * (tau_crossfit.c) and by `comine estimate --model`. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "comine/backend.h"
#include "comine/core.h"
#include "comine/estimate.h"

/* ---- Storey's estimate from rank p-values ----------------------------------------------- */

#define STOREY_GRID COMINE_STOREY_GRID /* lambda = 0.05, 0.10, .. 0.90 */
#define STOREY_BOOT 200

/* pi0(lambda) of every grid point from per-peer counts of p above each lambda; tail (n_peers,
 * STOREY_GRID): the null's share above each lambda (NULL: 1 - lambda). */
static void storey_curve(double *pi0, const int (*above)[STOREY_GRID], int m, int n_peers, const double *tail)
{
    for (int g = 0; g < STOREY_GRID; g++) {
        double lam = 0.05 * (g + 1), s = 0;
        for (int k = 0; k < n_peers; k++)
            s += above[k][g] / (m * (tail ? tail[k * STOREY_GRID + g] : 1 - lam));
        pi0[g] = s / n_peers;
    }
}

/* Adds row i's p-values to the counts above each lambda. */
static void storey_count(int (*above)[STOREY_GRID], const float *p, int i, int n_peers)
{
    for (int k = 0; k < n_peers; k++) {
        float v = p[2 * (size_t)i + k];
        for (int g = 0; g < STOREY_GRID && v > 0.05 * (g + 1); g++) above[k][g]++;
    }
}

comine_status comine_tau_storey(double *pi0, double *lambda, const float *p, int n, int n_peers, const double *tail,
                                uint64_t seed)
{
    *pi0 = NAN;
    if (lambda) *lambda = NAN;
    if (n_peers != 1 && n_peers != 2)
        return comine_fail(COMINE_ERR_ARG, "noise-rate estimate: %d peers (1 or 2)", n_peers);
    for (int g = 0; tail && g < n_peers * STOREY_GRID; g++)
        if (!(tail[g] > 0 && tail[g] <= 1))
            return comine_fail(COMINE_ERR_ARG, "noise-rate estimate: the null's share %g above lambda %.2f is "
                               "outside (0, 1]", tail[g], 0.05 * (g % STOREY_GRID + 1));
    int *rows = comine_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    int m = 0;
    for (int i = 0; i < n; i++) {
        bool ok = isfinite(p[2 * (size_t)i]) && (n_peers == 1 || isfinite(p[2 * (size_t)i + 1]));
        if (ok) rows[m++] = i;
    }
    if (m < 20) {
        free(rows);
        return comine_fail(COMINE_ERR_ARG, "noise-rate estimate: %d samples with a rank p-value under every peer "
                           "(need at least 20)", m);
    }
    int above[2][STOREY_GRID] = {{0}};
    for (int r = 0; r < m; r++) storey_count(above, p, rows[r], n_peers);
    double curve[STOREY_GRID], best = INFINITY;
    storey_curve(curve, (const int (*)[STOREY_GRID])above, m, n_peers, tail);
    for (int g = 0; g < STOREY_GRID; g++)
        if (curve[g] < best) best = curve[g];
    double mse[STOREY_GRID] = {0};
    comine_rng rng;
    comine_rng_seed(&rng, seed, 0x5703e7);
    for (int b = 0; b < STOREY_BOOT; b++) {
        int boot[2][STOREY_GRID] = {{0}};
        for (int r = 0; r < m; r++) storey_count(boot, p, rows[comine_rng_below(&rng, (uint32_t)m)], n_peers);
        double c[STOREY_GRID];
        storey_curve(c, (const int (*)[STOREY_GRID])boot, m, n_peers, tail);
        for (int g = 0; g < STOREY_GRID; g++) mse[g] += (c[g] - best) * (c[g] - best);
    }
    int pick = 0;
    for (int g = 1; g < STOREY_GRID; g++)
        if (mse[g] < mse[pick]) pick = g;
    free(rows);
    *pi0 = curve[pick] < 1 ? curve[pick] : 1;
    if (lambda) *lambda = 0.05 * (pick + 1);
    return COMINE_OK;
}

/* Directions of the K rows (zero rows stay zero); has[j] = row j is not zero. */
static int unit_rows(float *unit, uint8_t *has, const float *rows, int K, int D)
{
    int count = 0;
    for (int j = 0; j < K; j++) {
        const float *c = rows + (size_t)j * D;
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)c[d] * c[d];
        has[j] = ss > 0;
        count += has[j];
        float inv = ss > 0 ? (float)(1 / sqrt(ss)) : 0.f;
        for (int d = 0; d < D; d++) unit[(size_t)j * D + d] = c[d] * inv;
    }
    return count;
}

typedef struct scored {
    float s;
    int j;
} scored;

static int by_score_desc(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    return x->s > y->s ? -1 : x->s < y->s ? 1 : (x->j > y->j) - (x->j < y->j);
}

/* Adds one sample's row to the null: the sample moved to each label z of the comparison but
 * its own, z's p-value among the others, z weighted by its count of samples here.  full (K):
 * the labels' scores, NAN = not compared. */
static void null_row(comine_rank_null *nl, scored *buf, const float *full, int K, int y, const int *count)
{
    int nc = 0;
    for (int j = 0; j < K; j++)
        if (!isnan(full[j])) buf[nc++] = (scored){full[j], j};
    if (nc < 2) return;
    qsort(buf, (size_t)nc, sizeof *buf, by_score_desc);
    double all = 0, above[COMINE_STOREY_GRID] = {0};
    for (int a = 0; a < nc;) {
        int b = a;
        while (b < nc && buf[b].s == buf[a].s) b++;
        double pz = (a + 0.5 * (b - a - 1)) / (nc - 1);
        for (int k = a; k < b; k++) {
            int z = buf[k].j;
            if (z == y || count[z] == 0) continue;
            all += count[z];
            for (int g = 0; g < COMINE_STOREY_GRID && pz > 0.05 * (g + 1); g++) above[g] += count[z];
        }
        a = b;
    }
    if (all <= 0) return;
    for (int g = 0; g < COMINE_STOREY_GRID; g++) nl->above[g] += above[g] / all;
    nl->rows++;
}

void comine_rank_null_add(comine_rank_null *nl, const float *scores, int K, int y, const int *count)
{
    scored *buf = comine_malloc(sizeof(scored) * (size_t)(K > 0 ? K : 1));
    null_row(nl, buf, scores, K, y, count);
    free(buf);
}

void comine_rank_null_tail(double *tail, const comine_rank_null *nl, double by_image)
{
    for (int g = 0; g < COMINE_STOREY_GRID; g++) {
        double uniform = 1 - 0.05 * (g + 1);
        double image = nl && nl->rows > 0 ? nl->above[g] / nl->rows : uniform;
        tail[g] = (1 - by_image) * uniform + by_image * image;
    }
}

/* The row budget of the null: at most NULL_ROWS rows of one call, evenly spaced */
#define NULL_ROWS COMINE_RANK_NULL_ROWS

void comine_label_pvalues(float *p, float *cos, int stride, const float *emb, const int *labels, int n, int D,
                          const float *centres, int K, bool add_means, comine_rank_null *null)
{
    float *unit = comine_alloc_floats((size_t)K * D);
    uint8_t *has = comine_calloc((size_t)K, 1);
    unit_rows(unit, has, centres, K, D);
    int *count = comine_calloc((size_t)K, sizeof(int));
    for (int i = 0; i < n; i++)
        if (labels[i] >= 0 && labels[i] < K) count[labels[i]]++;
    /* with add_means: each label's sum of these embeddings and its norm */
    float *sum = NULL;
    double *sum_ss = NULL;
    if (add_means) {
        sum = comine_alloc_floats((size_t)K * D);
        memset(sum, 0, sizeof(float) * (size_t)K * D);
        sum_ss = comine_calloc((size_t)K, sizeof(double));
        for (int i = 0; i < n; i++) {
            int y = labels[i];
            if (y < 0 || y >= K) continue;
            for (int d = 0; d < D; d++) sum[(size_t)y * D + d] += emb[(size_t)i * D + d];
        }
        for (int j = 0; j < K; j++)
            for (int d = 0; d < D; d++) sum_ss[j] += (double)sum[(size_t)j * D + d] * sum[(size_t)j * D + d];
    }
    enum { CHUNK = 256 };
    float *dots = comine_alloc_floats((size_t)CHUNK * K);
    float *mdots = add_means ? comine_alloc_floats((size_t)CHUNK * K) : NULL;
    float *score = comine_alloc_floats((size_t)K), *full = null ? comine_alloc_floats((size_t)K) : NULL;
    scored *buf = null ? comine_malloc(sizeof(scored) * (size_t)(K > 0 ? K : 1)) : NULL;
    int null_every = (n + NULL_ROWS - 1) / NULL_ROWS;
    for (int i0 = 0; i0 < n; i0 += CHUNK) {
        int m = n - i0 < CHUNK ? n - i0 : CHUNK;
        comine_backend_gemm(comine_backend_cpu(), 0, 1, m, K, D, 1.0f, emb + (size_t)i0 * D, D, unit, D, 0.0f, dots,
                            K);
        if (add_means)
            comine_backend_gemm(comine_backend_cpu(), 0, 1, m, K, D, 1.0f, emb + (size_t)i0 * D, D, sum, D, 0.0f,
                                mdots, K);
        for (int t = 0; t < m; t++) {
            int i = i0 + t, y = labels[i];
            const float *row = dots + (size_t)t * K;
            bool ok = y >= 0 && y < K && has[y];
            /* the means are added when the label has another sample here (else the head alone) */
            bool means = ok && add_means && count[y] >= 2;
            bool in_null = ok && null && i % null_every == 0;
            int others = 0;
            for (int j = 0; j < K; j++) {
                /* the label's score with the means: the larger of its centre's cosine and its
                 * mean's (the sample's own label's mean without the sample) */
                float best = row[j];
                bool mean_here = add_means && count[j] > (j == y ? 1 : 0);
                if (has[j] && mean_here) {
                    const float *e = emb + (size_t)i * D;
                    double md = mdots[(size_t)t * K + j], ss = sum_ss[j];
                    if (j == y) {
                        double ee = 0;
                        for (int d = 0; d < D; d++) ee += (double)e[d] * e[d];
                        md -= ee;
                        ss += -2 * (double)mdots[(size_t)t * K + j] + ee;
                    }
                    float mc = ss > 1e-24 ? (float)(md / sqrt(ss)) : 0.f;
                    if (mc > best) best = mc;
                }
                bool use = has[j] && (!means || count[j] > 0);
                score[j] = !use ? NAN : means ? best : row[j];
                /* the null compares, as a sample moved out of y would be, the labels that keep
                 * a sample here */
                if (in_null) full[j] = has[j] && (!add_means || mean_here) ? (add_means ? best : row[j]) : NAN;
            }
            float own = ok ? score[y] : NAN;
            int above = 0, ties = 0;
            if (ok)
                for (int j = 0; j < K; j++) {
                    if (j == y || isnan(score[j])) continue;
                    others++;
                    above += score[j] > own;
                    ties += score[j] == own;
                }
            ok = ok && others > 0;
            if (p) p[(size_t)i * stride] = ok ? (float)((above + 0.5 * ties) / others) : NAN;
            if (cos) cos[(size_t)i * stride] = ok ? row[y] : NAN;
            if (in_null) null_row(null, buf, full, K, y, count);
        }
    }
    free(buf);
    comine_free_floats(full);
    comine_free_floats(score);
    comine_free_floats(mdots);
    comine_free_floats(dots);
    comine_free_floats(sum);
    free(sum_ss);
    free(count);
    comine_free_floats(unit);
    free(has);
}
