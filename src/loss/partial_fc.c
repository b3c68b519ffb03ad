/* partial_fc.c: Partial FC's class draw and the gather and scatter of the sampled rows
 * (partial_fc.h).  O(K) per draw (the marks and the negatives' list) on every rank; the
 * rows move through host memory (the class-sharded head is the CPU backend's). */
#include "comine/partial_fc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

comine_status comine_pfc_init(comine_pfc *s, int K, float rate, uint64_t seed, int max_N)
{
    COMINE_ASSERT(K >= 1 && max_N >= 1);
    if (!(rate > 0.0f && rate <= 1.0f))
        return comine_fail(COMINE_ERR_ARG, "--sample-rate %g: must be in (0, 1] (the fraction of the classes in "
                                           "each step's softmax)", (double)rate);
    memset(s, 0, sizeof *s);
    s->K = K;
    s->rate = rate;
    s->seed = seed;
    s->max_N = max_N;
    s->classes = comine_malloc((size_t)K * sizeof(int));
    s->labels = comine_malloc((size_t)max_N * sizeof(int));
    s->mark = comine_malloc((size_t)K);
    s->pool = comine_malloc((size_t)K * sizeof(int));
    return COMINE_OK;
}

void comine_pfc_free(comine_pfc *s)
{
    free(s->classes);
    free(s->labels);
    free(s->mark);
    free(s->pool);
    memset(s, 0, sizeof *s);
}

int comine_pfc_count(int K, float rate, int n_pos)
{
    int n = (int)floor((double)rate * K);
    if (n < n_pos) n = n_pos;
    return n < K ? n : K;
}

/* The first position whose class is >= c. */
static int lower_bound(const int *classes, int count, int c)
{
    int lo = 0, hi = count;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (classes[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The position of class c in the ascending list (present). */
static int position(const int *classes, int count, int c)
{
    int p = lower_bound(classes, count, c);
    COMINE_ASSERT(p < count && classes[p] == c);
    return p;
}

void comine_pfc_draw(comine_pfc *s, const int *labels, int N, uint64_t step)
{
    COMINE_ASSERT(N >= 1 && N <= s->max_N);
    const int K = s->K;
    memset(s->mark, 0, (size_t)K);
    int n_pos = 0;
    for (int i = 0; i < N; i++) {
        COMINE_ASSERT(labels[i] >= 0 && labels[i] < K);
        n_pos += !s->mark[labels[i]];
        s->mark[labels[i]] = 1;
    }
    const int count = comine_pfc_count(K, s->rate, n_pos), n_neg = count - n_pos;
    if (n_neg > 0) {
        int pool_n = 0;
        for (int c = 0; c < K; c++)
            if (!s->mark[c]) s->pool[pool_n++] = c;
        comine_rng rng; /* (seed, step) only: the same on every rank, whatever P */
        comine_rng_seed(&rng, s->seed ^ (0x9e3779b97f4a7c15ULL * (step + 1)), COMINE_STREAM_PFC);
        for (int i = 0; i < n_neg; i++) {
            int j = i + (int)comine_rng_below(&rng, (uint32_t)(pool_n - i));
            int c = s->pool[j];
            s->pool[j] = s->pool[i];
            s->pool[i] = c;
            s->mark[c] = 1;
        }
    }
    int n = 0;
    for (int c = 0; c < K; c++)
        if (s->mark[c]) s->classes[n++] = c;
    COMINE_ASSERT(n == count);
    s->count = count;
    for (int i = 0; i < N; i++) s->labels[i] = position(s->classes, count, labels[i]);
}

void comine_pfc_range(const comine_pfc *s, int lo, int hi, int *pos_lo, int *pos_hi)
{
    *pos_lo = lower_bound(s->classes, s->count, lo);
    *pos_hi = lower_bound(s->classes, s->count, hi);
}

void comine_pfc_gather(float *block, const float *rows, const int *classes, int n, int row0, int D)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int i = 0; i < n; i++)
        memcpy(block + (size_t)i * D, rows + (size_t)(classes[i] - row0) * D, (size_t)D * sizeof(float));
}

void comine_pfc_scatter(float *rows, const float *block, const int *classes, int n, int row0, int D)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int i = 0; i < n; i++)
        memcpy(rows + (size_t)(classes[i] - row0) * D, block + (size_t)i * D, (size_t)D * sizeof(float));
}
