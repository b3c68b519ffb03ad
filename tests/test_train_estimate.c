/* test_train_estimate.c: the noise-rate estimators (comine/estimate.h) on synthetic statistics
 * drawn from known mixtures: the Gaussian mixture's weights, means and sds; the Beta mixture on
 * Beta draws (order statistics of uniforms); the mirror on a symmetric clean mode; the
 * estimate from a (n, 2) cosine table (missing cosines left out, one peer reads column 0 only,
 * the outside share of samples both peers place outside); degenerate input and errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/core.h"
#include "comine/estimate.h"
#include "fixture.h"

/* The a-th smallest of a + b - 1 uniforms: Beta(a, b) for integers a, b >= 1. */
static double beta_draw(comine_rng *r, int a, int b)
{
    double u[64];
    int m = a + b - 1;
    for (int i = 0; i < m; i++) u[i] = comine_rng_uniform(r);
    for (int i = 0; i < a; i++) /* partial selection sort: u[a-1] the a-th smallest */
        for (int j = i + 1; j < m; j++)
            if (u[j] < u[i]) {
                double t = u[i];
                u[i] = u[j];
                u[j] = t;
            }
    return u[a - 1];
}

int main(void)
{
    comine_rng rng;
    comine_rng_seed(&rng, 11, 0);
    enum { N = 20000 };
    double *x = malloc(sizeof(double) * N);

    /* ---- Gaussian mixture: 30% N(0.05, 0.12^2) + 70% N(0.55, 0.10^2) ---- */
    int mark = fx_fail_count;
    for (int i = 0; i < N; i++)
        x[i] = i < 0.3 * N ? 0.05 + 0.12 * comine_rng_normal(&rng) : 0.55 + 0.10 * comine_rng_normal(&rng);
    comine_mixture2 g;
    FX_EXPECT(comine_mixture_gauss2(&g, x, N) == COMINE_OK, "gauss2 fit");
    FX_EXPECT(fabs(g.weight[0] - 0.3) < 0.015, "low weight %.4f (0.3)", g.weight[0]);
    FX_EXPECT(fabs(g.mean[0] - 0.05) < 0.01 && fabs(g.mean[1] - 0.55) < 0.01, "means %.4f %.4f", g.mean[0], g.mean[1]);
    FX_EXPECT(fabs(g.sd[0] - 0.12) < 0.01 && fabs(g.sd[1] - 0.10) < 0.01, "sds %.4f %.4f", g.sd[0], g.sd[1]);
    FX_EXPECT(fabs(g.weight[0] + g.weight[1] - 1) < 1e-9, "weights sum to %.12f", g.weight[0] + g.weight[1]);
    FX_SUMMARY(mark, "Gaussian mixture: weight %.4f (0.30), means %.3f %.3f (0.05 0.55), sds %.3f %.3f (0.12 0.10), "
               "%d iterations\n", g.weight[0], g.mean[0], g.mean[1], g.sd[0], g.sd[1], g.iterations);

    /* the same values in another order: the same fit (the start is from quantiles) */
    mark = fx_fail_count;
    for (int i = 0; i < N / 2; i++) {
        double t = x[i];
        x[i] = x[N - 1 - i];
        x[N - 1 - i] = t;
    }
    comine_mixture2 g2;
    comine_mixture_gauss2(&g2, x, N);
    FX_EXPECT(fabs(g2.weight[0] - g.weight[0]) < 1e-6, "reversed order: %.8f vs %.8f", g2.weight[0], g.weight[0]);
    FX_SUMMARY(mark, "Gaussian mixture: independent of the order of the values\n");

    /* ---- Beta mixture: 25% Beta(2, 8) + 75% Beta(8, 3) on (x + 1) / 2 ---- */
    mark = fx_fail_count;
    for (int i = 0; i < N; i++) x[i] = 2 * (i < N / 4 ? beta_draw(&rng, 2, 8) : beta_draw(&rng, 8, 3)) - 1;
    comine_mixture2 b;
    FX_EXPECT(comine_mixture_beta2(&b, x, N) == COMINE_OK, "beta2 fit");
    FX_EXPECT(fabs(b.weight[0] - 0.25) < 0.02, "low weight %.4f (0.25)", b.weight[0]);
    FX_EXPECT(fabs(b.alpha[0] - 2) < 0.4 && fabs(b.beta[0] - 8) < 1.6, "low shapes %.2f %.2f (2 8)", b.alpha[0],
              b.beta[0]);
    FX_EXPECT(fabs(b.alpha[1] - 8) < 1.6 && fabs(b.beta[1] - 3) < 0.6, "high shapes %.2f %.2f (8 3)", b.alpha[1],
              b.beta[1]);
    FX_SUMMARY(mark, "Beta mixture: weight %.4f (0.25), shapes (%.2f, %.2f) (%.2f, %.2f) (2 8, 8 3)\n", b.weight[0],
               b.alpha[0], b.beta[0], b.alpha[1], b.beta[1]);

    /* ---- mirror: 80% N(0.55, 0.1^2) symmetric + 20% N(0, 0.1^2) ---- */
    mark = fx_fail_count;
    for (int i = 0; i < N; i++)
        x[i] = i < 0.2 * N ? 0.1 * comine_rng_normal(&rng) : 0.55 + 0.1 * comine_rng_normal(&rng);
    double mode;
    double mir = comine_tau_mirror(x, N, &mode);
    FX_EXPECT(fabs(mir - 0.2) < 0.03, "mirror %.4f (0.2)", mir);
    FX_EXPECT(fabs(mode - 0.55) < 0.03, "mode %.4f (0.55)", mode);
    for (int i = 0; i < N; i++) x[i] = 0.55 + 0.1 * comine_rng_normal(&rng);
    double mir0 = comine_tau_mirror(x, N, NULL);
    FX_EXPECT(mir0 < 0.03, "mirror of a clean symmetric mode %.4f (0)", mir0);
    FX_SUMMARY(mark, "mirror: %.4f (0.20), mode %.3f (0.55); clean only %.4f (0)\n", mir, mode, mir0);

    /* ---- the estimate from a cosine table ---- */
    mark = fx_fail_count;
    enum { M = 10000 };
    float *cos = malloc(sizeof(float) * 2 * M);
    uint8_t *outside = malloc(2 * M);
    int noisy = 0, both_out = 0, missing = 0;
    for (int i = 0; i < M; i++) {
        bool bad = comine_rng_uniform(&rng) < 0.25;
        noisy += bad;
        double mu = bad ? 0.05 : 0.55, common = comine_rng_normal(&rng);
        cos[2 * i] = (float)(mu + 0.09 * common + 0.03 * comine_rng_normal(&rng));
        cos[2 * i + 1] = (float)(mu + 0.09 * common + 0.03 * comine_rng_normal(&rng));
        outside[2 * i] = bad || comine_rng_uniform(&rng) < 0.1;
        outside[2 * i + 1] = bad || comine_rng_uniform(&rng) < 0.1;
        if (i % 100 == 7) { /* not seen by peer B this epoch */
            cos[2 * i + 1] = NAN;
            missing++;
            noisy -= bad;
            continue;
        }
        both_out += outside[2 * i] && outside[2 * i + 1];
    }
    comine_tau_estimate e;
    FX_EXPECT(comine_estimate_tau(&e, cos, M, 2, outside) == COMINE_OK, "estimate");
    double truth = (double)noisy / (M - missing);
    FX_EXPECT(e.n == M - missing, "samples used %d (want %d)", e.n, M - missing);
    FX_EXPECT(fabs(e.mixture - truth) < 0.02, "mixture %.4f (truth %.4f)", e.mixture, truth);
    FX_EXPECT(fabs(e.beta - truth) < 0.03, "beta %.4f (truth %.4f)", e.beta, truth);
    FX_EXPECT(fabs(e.outside - (double)both_out / (M - missing)) < 1e-12, "outside %.6f vs %.6f", e.outside,
              (double)both_out / (M - missing));
    FX_EXPECT(fabs(e.tau - fmin(e.outside, e.beta)) < 1e-12 &&
                  e.method == (e.outside < e.beta ? COMINE_TAU_OUTSIDE : COMINE_TAU_BETA),
              "tau %.4f by %s: the smaller of outside %.4f and beta %.4f", e.tau, comine_tau_method_name(e.method),
              e.outside, e.beta);
    /* the outside share below the Beta mixture's: the rule takes it */
    for (int i = 0; i < M; i++) outside[2 * i] = outside[2 * i + 1] = 0;
    comine_tau_estimate e0;
    FX_EXPECT(comine_estimate_tau(&e0, cos, M, 2, outside) == COMINE_OK && e0.outside == 0 && e0.tau == 0 &&
                  e0.method == COMINE_TAU_OUTSIDE, "no sample outside: tau %.4f by %s", e0.tau,
              comine_tau_method_name(e0.method));
    FX_SUMMARY(mark, "estimate (n, 2): %d of %d samples (B's missing left out), truth %.4f: mixture %.4f beta %.4f "
               "mirror %.4f outside %.4f; tau %.4f (%s)\n", e.n, M, truth, e.mixture, e.beta, e.mirror, e.outside,
               e.tau, comine_tau_method_name(e.method));

    mark = fx_fail_count;
    comine_tau_estimate e1;
    FX_EXPECT(comine_estimate_tau(&e1, cos, M, 1, NULL) == COMINE_OK, "one peer");
    FX_EXPECT(e1.n == M, "one peer reads column 0 only: %d samples (want %d)", e1.n, M);
    FX_EXPECT(isnan(e1.outside), "no flags: outside NAN (%g)", e1.outside);
    FX_EXPECT(fabs(e1.mixture - 0.25) < 0.03, "one peer: mixture %.4f", e1.mixture);
    FX_EXPECT(fabs(e1.tau - e1.beta) < 1e-12 && e1.method == COMINE_TAU_BETA, "without flags: tau %.4f by %s (the "
              "Beta mixture %.4f)", e1.tau, comine_tau_method_name(e1.method), e1.beta);
    FX_SUMMARY(mark, "one peer: %d samples, mixture %.4f, outside unknown, tau %.4f (%s)\n", e1.n, e1.mixture, e1.tau,
               comine_tau_method_name(e1.method));

    /* ---- degenerate input and errors ---- */
    mark = fx_fail_count;
    for (int i = 0; i < 100; i++) x[i] = 0.5;
    comine_mixture2 d;
    FX_EXPECT(comine_mixture_gauss2(&d, x, 100) == COMINE_OK && isfinite(d.weight[0]), "constant values: %g",
              d.weight[0]);
    FX_EXPECT(comine_mixture_beta2(&d, x, 100) == COMINE_OK && isfinite(d.weight[0]), "constant values (beta): %g",
              d.weight[0]);
    double mc = comine_tau_mirror(x, 100, NULL);
    FX_EXPECT(isfinite(mc) && mc >= 0 && mc <= 1, "constant values (mirror): %g", mc);
    FX_EXPECT(comine_mixture_gauss2(&d, x, 3) != COMINE_OK, "3 values refused");
    FX_EXPECT(comine_estimate_tau(&e, cos, M, 3, NULL) != COMINE_OK, "3 peers refused");
    float few[8] = {0.1f, NAN, 0.2f, 0.3f, NAN, NAN, 0.5f, 0.5f};
    FX_EXPECT(comine_estimate_tau(&e, few, 4, 2, NULL) != COMINE_OK, "2 usable samples refused");
    FX_SUMMARY(mark, "degenerate input: constant values fit without NaN; too few values, 3 peers refused\n");

    free(cos);
    free(outside);
    free(x);
    return fx_finish("test_train_estimate");
}
