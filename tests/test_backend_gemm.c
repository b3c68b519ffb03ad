/* test_backend_gemm.c: the CPU backend's matrix product (cpu_gemm.c: OpenBLAS on one thread
 * per block, the blocks over the OpenMP threads) against a float64 product, for every
 * transpose, with padded leading dimensions, alpha and beta, K = 0, and shapes that run
 * whole, split by columns and split by rows (sizes that are not multiples of the block
 * alignment included), on 1, 2 and 3 threads and from inside a parallel region.  Also: two
 * calls give the same bits, and (with OpenMP) OpenBLAS stays on one thread whatever the
 * backend's thread count.
 * Tolerance: an element is a float32 sum of K products; with any summation order its error
 * is at most about K * 2^-24 * sum_k |a_ik b_kj| (plus the rounding of alpha's product and
 * of beta C), so the bound is 2 (K + 2) 2^-24 (|alpha| sum_k |a_ik b_kj| + |beta c_ij|). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comine/backend.h"
#include "comine/core.h"
#include "fixture.h"

#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif

static const comine_backend *be;

static float frand(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

typedef struct {
    int M, N, K, ta, tb, lda, ldb, ldc;
    float alpha, beta;
    float *A, *B, *C0; /* C0: C before the product */
} problem;

static void problem_make(problem *p, int M, int N, int K, int ta, int tb, float alpha, float beta, unsigned seed)
{
    *p = (problem){M, N, K, ta, tb, 0, 0, 0, alpha, beta, NULL, NULL, NULL};
    int a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;
    p->lda = a_cols + 3;
    p->ldb = b_cols + 5;
    p->ldc = N + 2;
    p->A = malloc(sizeof(float) * ((size_t)a_rows * p->lda + 1));
    p->B = malloc(sizeof(float) * ((size_t)b_rows * p->ldb + 1));
    p->C0 = malloc(sizeof(float) * (size_t)M * p->ldc);
    for (size_t i = 0; i < (size_t)a_rows * p->lda; i++) p->A[i] = frand(&seed);
    for (size_t i = 0; i < (size_t)b_rows * p->ldb; i++) p->B[i] = frand(&seed);
    for (size_t i = 0; i < (size_t)M * p->ldc; i++) p->C0[i] = frand(&seed);
}

static void problem_free(problem *p)
{
    free(p->A);
    free(p->B);
    free(p->C0);
}

static float *run(const problem *p)
{
    float *C = malloc(sizeof(float) * (size_t)p->M * p->ldc);
    memcpy(C, p->C0, sizeof(float) * (size_t)p->M * p->ldc);
    comine_backend_gemm(be, p->ta, p->tb, p->M, p->N, p->K, p->alpha, p->A, p->lda, p->B, p->ldb, p->beta, C, p->ldc);
    return C;
}

/* Checks C against the float64 product; the padding between C's rows must be untouched.
 * Returns 1 when it holds. */
static int check(const char *what, const problem *p, const float *C)
{
    double worst = 0;
    int bad = 0;
    for (int i = 0; i < p->M; i++) {
        for (int j = 0; j < p->N; j++) {
            double s = 0, mag = 0;
            for (int k = 0; k < p->K; k++) {
                double a = p->ta ? p->A[(size_t)k * p->lda + i] : p->A[(size_t)i * p->lda + k];
                double b = p->tb ? p->B[(size_t)j * p->ldb + k] : p->B[(size_t)k * p->ldb + j];
                s += a * b;
                mag += fabs(a * b);
            }
            double c0 = p->C0[(size_t)i * p->ldc + j];
            double ref = p->alpha * s + (p->beta == 0.0f ? 0.0 : p->beta * c0);
            double bound = 2.0 * (p->K + 2) * ldexp(1.0, -24) * (fabs(p->alpha) * mag + fabs(p->beta * c0)) + 1e-30;
            double err = fabs((double)C[(size_t)i * p->ldc + j] - ref);
            if (!(err <= bound)) bad++;
            if (err / bound > worst || err != err) worst = err / bound;
        }
        for (int j = p->N; j < p->ldc; j++)
            if (memcmp(&C[(size_t)i * p->ldc + j], &p->C0[(size_t)i * p->ldc + j], sizeof(float))) bad++;
    }
    printf("%s %-58s worst err/bound %.3g\n", bad ? "FAIL" : "ok  ", what, worst);
    if (bad) fx_fail_count++;
    return !bad;
}

/* Every transpose and a few alpha / beta on one shape, on the current thread count */
static void check_shape(int M, int N, int K, const char *why)
{
    const float ab[3][2] = {{1.0f, 0.0f}, {0.7f, 1.0f}, {-1.3f, 0.5f}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int c = 0; c < 3; c++) {
                problem p;
                problem_make(&p, M, N, K, ta, tb, ab[c][0], ab[c][1], (unsigned)(M * 131 + N * 7 + K + c + 4 * ta + 2 * tb));
                float *C = run(&p);
                char what[160];
                snprintf(what, sizeof what, "%dx%dx%d ta=%d tb=%d a=%.1f b=%.1f t=%d (%s)", M, N, K, ta, tb,
                         (double)ab[c][0], (double)ab[c][1], comine_num_threads(), why);
                check(what, &p, C);
                if (c == 1) { /* the same call again: the same bits */
                    float *again = run(&p);
                    FX_EXPECT(!memcmp(C, again, sizeof(float) * (size_t)M * p.ldc), "%s: a second call differs", what);
                    free(again);
                }
                free(C);
                problem_free(&p);
            }
}

/* Products made inside a parallel region, one per thread: they run whole on their thread */
static void check_nested(void)
{
    enum { T = 3 };
    problem p[T];
    float *C[T];
    for (int t = 0; t < T; t++) problem_make(&p[t], 96, 200, 130, t & 1, 0, 1.0f, 0.0f, 77u + (unsigned)t);
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for num_threads(T)
#endif
    for (int t = 0; t < T; t++) C[t] = run(&p[t]);
    for (int t = 0; t < T; t++) {
        char what[96];
        snprintf(what, sizeof what, "inside a parallel region, product %d of %d", t + 1, T);
        check(what, &p[t], C[t]);
        free(C[t]);
        problem_free(&p[t]);
    }
}

int main(void)
{
    be = comine_backend_cpu();
    const int threads[3] = {1, 2, 3};
    for (int i = 0; i < 3; i++) {
        comine_backend_set_threads(be, threads[i]);
        check_shape(7, 5, 3, "small: whole");
        check_shape(32, 1000, 96, "wide: by columns");
        check_shape(1003, 40, 64, "tall: by rows");
        check_shape(130, 131, 257, "square, odd");
        check_shape(17, 33, 2000, "long K");
#ifdef COMINE_HAVE_OPENMP /* without OpenMP, OpenBLAS keeps its own threads */
        FX_EXPECT(openblas_get_num_threads() == 1, "OpenBLAS runs %d threads with %d backend threads",
                  openblas_get_num_threads(), threads[i]);
#endif
    }
    comine_backend_set_threads(be, 2);
    check_nested();
    /* K = 0: C = beta C */
    problem p;
    problem_make(&p, 40, 50, 0, 0, 0, 1.0f, 0.5f, 5u);
    float *C = run(&p);
    check("K = 0 (C = beta C)", &p, C);
    free(C);
    problem_free(&p);
    return fx_finish("test_backend_gemm");
}
