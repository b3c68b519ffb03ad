/* test_train_estimate.c: the noise-rate estimators (comine/estimate.h) on synthetic statistics
 * drawn from known mixtures: the Gaussian mixture's weights, means and sds; the Beta mixture on
 * Beta draws (order statistics of uniforms); the mirror on a symmetric clean mode; the
 * estimate from a (n, 2) cosine table (missing cosines left out, one peer reads column 0 only,
 * the outside share of samples both peers place outside); Storey's estimate on rank p-values
 * (wrong labels uniform, right ones below 0.2 or 0.6: lambda must pass them), deterministic,
 * all random, all right; the rank p-values against label centres (ties, a zero centre, the
 * stride) and with the labels' own means added (leave-one-out, a label without samples, a
 * sample alone in its label), 600 rows against a float64 count, and the null law of a wrong
 * label's p-value (comine_rank_null) against the same count; Storey's estimate under a given
 * null; degenerate input and errors. */
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

    /* ---- Storey's estimate on rank p-values ---- */
    mark = fx_fail_count;
    float *pv = malloc(sizeof(float) * 2 * N);
    /* 30% wrong labels (uniform p); correct ones below 0.2 under peer A, 0.6 under peer B */
    int wrong = 0, known = 0;
    for (int i = 0; i < N; i++) {
        bool bad = comine_rng_uniform(&rng) < 0.3;
        pv[2 * i] = bad ? comine_rng_uniform(&rng) : 0.2f * comine_rng_uniform(&rng);
        pv[2 * i + 1] = bad ? comine_rng_uniform(&rng) : 0.6f * comine_rng_uniform(&rng);
        if (i % 97 == 3) pv[2 * i + 1] = NAN; /* left out */
        else wrong += bad, known++;
    }
    double want = (double)wrong / known, pi0, lam, pi0b, lamb;
    FX_EXPECT(comine_tau_storey(&pi0, &lam, pv, N, 2, NULL, 5) == COMINE_OK, "storey");
    FX_EXPECT(fabs(pi0 - want) < 0.03, "two peers: pi0 %.4f (truth %.4f) at lambda %.2f", pi0, want, lam);
    FX_EXPECT(lam >= 0.6 - 1e-9, "lambda %.2f past peer B's correct p-values (0.6): a smaller one over-counts", lam);
    FX_EXPECT(comine_tau_storey(&pi0b, &lamb, pv, N, 2, NULL, 5) == COMINE_OK && pi0b == pi0 && lamb == lam,
              "the same seed, the same estimate");
    FX_EXPECT(comine_tau_storey(&pi0b, &lamb, pv, N, 1, NULL, 5) == COMINE_OK && fabs(pi0b - want) < 0.03 &&
                  lamb >= 0.2,
              "peer A alone: pi0 %.4f at lambda %.2f", pi0b, lamb);
    /* a null that puts 0.9 of the uniform share above each lambda: the same lambda, pi0 / 0.9 */
    double tl[2 * COMINE_STOREY_GRID];
    for (int g = 0; g < 2 * COMINE_STOREY_GRID; g++) tl[g] = 0.9 * (1 - 0.05 * (g % COMINE_STOREY_GRID + 1));
    FX_EXPECT(comine_tau_storey(&pi0b, &lamb, pv, N, 2, tl, 5) == COMINE_OK && fabs(pi0b - pi0 / 0.9) < 1e-9 &&
              lamb == lam, "a null's tail: pi0 %.4f (want %.4f) at lambda %.2f", pi0b, pi0 / 0.9, lamb);
    tl[COMINE_STOREY_GRID + 4] = 0;
    FX_EXPECT(comine_tau_storey(&pi0b, NULL, pv, N, 2, tl, 5) != COMINE_OK, "a null's tail of 0 refused");
    for (int i = 0; i < N; i++) pv[2 * i] = comine_rng_uniform(&rng);
    FX_EXPECT(comine_tau_storey(&pi0b, NULL, pv, N, 1, NULL, 5) == COMINE_OK && pi0b > 0.95 && pi0b <= 1,
              "every label random: pi0 %.4f", pi0b);
    for (int i = 0; i < N; i++) pv[2 * i] = 0.01f * comine_rng_uniform(&rng);
    FX_EXPECT(comine_tau_storey(&pi0b, NULL, pv, N, 1, NULL, 5) == COMINE_OK && pi0b < 0.005,
              "every label right: pi0 %.4f", pi0b);
    FX_EXPECT(comine_tau_storey(&pi0b, NULL, pv, N, 3, NULL, 5) != COMINE_OK, "3 peers refused");
    FX_EXPECT(comine_tau_storey(&pi0b, NULL, pv, 19, 1, NULL, 5) != COMINE_OK, "19 samples refused");
    FX_SUMMARY(mark, "Storey: truth %.4f, two peers %.4f at lambda %.2f; all random, all right; errors\n", want, pi0,
               lam);

    /* ---- rank p-values against label centres ---- */
    mark = fx_fail_count;
    enum { K5 = 6, D4 = 4 };
    const float r2 = 0.70710678f;
    float centres[K5 * D4] = {1, 0, 0, 0, /* 0: x */ 0, 1, 0, 0, /* 1: y */ r2, r2, 0, 0, /* 2 */
                              0, 0, 0, 0, /* 3: no centre */ -1, 0, 0, 0, /* 4: -x */ 0, 0, 1, 0 /* 5: z */};
    float emb[K5 * D4];
    int labels[K5];
    for (int i = 0; i < K5; i++) {
        memcpy(emb + i * D4, (const float[D4]){1, 0, 0, 0}, sizeof(float) * D4);
        labels[i] = i;
    }
    float pp[2 * K5], cc[2 * K5];
    for (int i = 0; i < 2 * K5; i++) pp[i] = cc[i] = -7;
    comine_label_pvalues(pp, cc, 2, emb, labels, K5, D4, centres, K5, false, NULL);
    /* label: others above (ties half) of the 4 other centres */
    const float want_p[K5] = {0, 2.5f / 4, 1 / 4.f, NAN, 1, 2.5f / 4};
    for (int i = 0; i < K5; i++) {
        bool same = isnan(want_p[i]) ? isnan(pp[2 * i]) : fabsf(pp[2 * i] - want_p[i]) < 1e-6f;
        FX_EXPECT(same, "label %d: p %.4f (want %.4f)", i, pp[2 * i], want_p[i]);
        FX_EXPECT(pp[2 * i + 1] == -7 && cc[2 * i + 1] == -7, "stride 2: column 1 of row %d untouched", i);
    }
    FX_EXPECT(fabsf(cc[0] - 1) < 1e-6f && fabsf(cc[4] - r2) < 1e-6f && isnan(cc[6]) && fabsf(cc[8] + 1) < 1e-6f,
              "cosines %.4f %.4f %.4f %.4f", cc[0], cc[4], cc[6], cc[8]);
    /* many rows (several blocks) against a float64 count */
    enum { NR = 600, KR = 40, DR = 16 };
    float *re = malloc(sizeof(float) * NR * DR), *rc = malloc(sizeof(float) * KR * DR);
    float *rp = malloc(sizeof(float) * NR);
    int *rl = malloc(sizeof(int) * NR), off = 0;
    for (int i = 0; i < KR * DR; i++) rc[i] = (i / DR) == 7 ? 0 : 3 * comine_rng_normal(&rng); /* centre 7: none */
    for (int i = 0; i < NR; i++) {
        double ss = 0;
        for (int d = 0; d < DR; d++) {
            re[i * DR + d] = comine_rng_normal(&rng);
            ss += (double)re[i * DR + d] * re[i * DR + d];
        }
        for (int d = 0; d < DR; d++) re[i * DR + d] /= (float)sqrt(ss);
        rl[i] = (int)comine_rng_below(&rng, KR);
    }
    comine_label_pvalues(rp, NULL, 1, re, rl, NR, DR, rc, KR, false, NULL);
    for (int i = 0; i < NR; i++) {
        double cosk[KR];
        for (int j = 0; j < KR; j++) {
            double dot = 0, ss = 0;
            for (int d = 0; d < DR; d++) {
                dot += (double)re[i * DR + d] * rc[j * DR + d];
                ss += (double)rc[j * DR + d] * rc[j * DR + d];
            }
            cosk[j] = ss > 0 ? dot / sqrt(ss) : NAN;
        }
        if (rl[i] == 7) {
            off += !isnan(rp[i]);
            continue;
        }
        int above = 0;
        for (int j = 0; j < KR; j++) above += j != rl[i] && j != 7 && cosk[j] > cosk[rl[i]];
        off += fabsf(rp[i] - (float)above / (KR - 2)) > 1e-6f;
    }
    FX_EXPECT(off == 0, "%d of %d rows differ from the float64 count", off, NR);
    /* with the labels' own means (the larger cosine counts): label 38 has no sample (left out of the comparison),
     * label 39 one (that sample ranked by the centres alone) */
    for (int i = 0; i < NR; i++)
        if (rl[i] >= 38) rl[i] = 37;
    rl[5] = 39;
    double *msum = calloc((size_t)KR * DR, sizeof(double));
    int *mcount = calloc(KR, sizeof(int));
    for (int i = 0; i < NR; i++) {
        mcount[rl[i]]++;
        for (int d = 0; d < DR; d++) msum[rl[i] * DR + d] += re[i * DR + d];
    }
    comine_label_pvalues(rp, NULL, 1, re, rl, NR, DR, rc, KR, true, NULL);
    int off_m = 0;
    for (int i = 0; i < NR; i++) {
        int y = rl[i];
        bool means = mcount[y] >= 2;
        double score[KR];
        for (int j = 0; j < KR; j++) {
            double dot = 0, ss = 0, md = 0, ms = 0;
            for (int d = 0; d < DR; d++) {
                double mv = msum[j * DR + d] - (j == y ? re[i * DR + d] : 0);
                dot += (double)re[i * DR + d] * rc[j * DR + d];
                ss += (double)rc[j * DR + d] * rc[j * DR + d];
                md += re[i * DR + d] * mv;
                ms += mv * mv;
            }
            bool use = ss > 0 && (!means || mcount[j] > 0);
            score[j] = !use ? NAN : means ? fmax(dot / sqrt(ss), md / sqrt(ms)) : dot / sqrt(ss);
        }
        if (isnan(score[y])) {
            off_m += !isnan(rp[i]);
            continue;
        }
        int above = 0, others = 0;
        for (int j = 0; j < KR; j++) {
            if (j == y || isnan(score[j])) continue;
            others++;
            above += score[j] > score[y];
        }
        off_m += fabsf(rp[i] - (float)above / others) > 1e-6f;
    }
    FX_EXPECT(off_m == 0, "with the means: %d of %d rows differ from the float64 count", off_m, NR);
    /* the null law: each row moved to every other compared label z, z's p-value among the rest,
     * z weighted by its samples; against the same float64 scores */
    comine_rank_null nl;
    memset(&nl, 0, sizeof nl);
    comine_label_pvalues(NULL, NULL, 1, re, rl, NR, DR, rc, KR, true, &nl);
    double ref[COMINE_STOREY_GRID] = {0}, ref_rows = 0;
    for (int i = 0; i < NR; i++) {
        int y = rl[i];
        double full[KR];
        int nc = 0;
        for (int j = 0; j < KR; j++) {
            double dot = 0, ss = 0, md = 0, ms = 0;
            for (int d = 0; d < DR; d++) {
                double mv = msum[j * DR + d] - (j == y ? re[i * DR + d] : 0);
                dot += (double)re[i * DR + d] * rc[j * DR + d];
                ss += (double)rc[j * DR + d] * rc[j * DR + d];
                md += re[i * DR + d] * mv;
                ms += mv * mv;
            }
            bool in = ss > 0 && mcount[j] > (j == y ? 1 : 0);
            full[j] = in ? fmax(dot / sqrt(ss), md / sqrt(ms)) : NAN;
            nc += in;
        }
        if (y == 7 || nc < 2) continue; /* label 7 has no centre: not ranked */
        double all = 0, above[COMINE_STOREY_GRID] = {0};
        for (int z = 0; z < KR; z++) {
            if (z == y || isnan(full[z])) continue;
            int gt = 0, eq = 0;
            for (int c = 0; c < KR; c++)
                if (c != z && !isnan(full[c])) gt += full[c] > full[z], eq += full[c] == full[z];
            double pz = (gt + 0.5 * eq) / (nc - 1);
            all += mcount[z];
            for (int g = 0; g < COMINE_STOREY_GRID; g++) above[g] += pz > 0.05 * (g + 1) ? mcount[z] : 0;
        }
        for (int g = 0; g < COMINE_STOREY_GRID; g++) ref[g] += above[g] / all;
        ref_rows++;
    }
    int off_n = nl.rows != ref_rows;
    for (int g = 0; g < COMINE_STOREY_GRID; g++) off_n += fabs(nl.above[g] - ref[g]) > 1e-9 * ref_rows;
    FX_EXPECT(off_n == 0, "null: %g rows (want %g), above 0.5: %.6f (want %.6f)", nl.rows, ref_rows, nl.above[9],
              ref[9]);
    double tail[COMINE_STOREY_GRID];
    comine_rank_null_tail(tail, &nl, 1);
    FX_EXPECT(fabs(tail[15] - ref[15] / ref_rows) < 1e-12, "tail by image at 0.8: %.6f", tail[15]);
    comine_rank_null_tail(tail, &nl, 0.25);
    FX_EXPECT(fabs(tail[15] - (0.75 * 0.2 + 0.25 * ref[15] / ref_rows)) < 1e-12, "a quarter by image: %.6f", tail[15]);
    comine_rank_null_tail(tail, NULL, 1);
    FX_EXPECT(fabs(tail[0] - 0.95) < 1e-12 && fabs(tail[17] - 0.1) < 1e-12, "no null: uniform %.4f %.4f", tail[0],
              tail[17]);
    free(msum);
    free(mcount);
    free(re);
    free(rc);
    free(rp);
    free(rl);
    free(pv);
    FX_SUMMARY(mark, "rank p-values: ties half, a zero centre left out, stride; %d rows in blocks against float64\n",
               NR);

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
