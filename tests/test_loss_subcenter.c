/* test_loss_subcenter.c: Sub-center ArcFace (loss.h, S > 1 sub-centres per class) against
 *  - PyTorch fixtures (tests/ref/gen_loss_subcenter.py): per-sample loss, cos th_y, p_target and
 *    the gradients w.r.t. emb and the (K S, D) weight for s = 32 / 64, both fallbacks, forms
 *    ARCFACE / MARGIN / MV and a per-sample mix with weights that include zeros; the label's
 *    dominant sub-centre is not always the first, so a gradient sent to another sub-centre fails;
 *  - finite differences of an independent double-precision evaluation (max over sub-centres);
 *  - the backend's subcenter_max on ties (lowest s) and NaN, and subcenter_scatter;
 *  - S = 1 through comine_arcface_init_subcenters is the plain head bit for bit, with no extra
 *    buffers; a backend without the sub-centre entries is refused with a message;
 *  - timing of S = 3 against S = 1 on a K = 10,575, D = 512 head, batch 32. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "comine/loss.h"
#include "fixture.h"

/* ---- an independent double-precision evaluation of sum_i sw_i loss_i --------------------- */
static double ref_psi(double c, double m, comine_fallback fb)
{
    double sine = sqrt(fmax(0.0, fmin(1.0, 1.0 - c * c)));
    double phi = c * cos(m) - sine * sin(m);
    if (fb == COMINE_FALLBACK_EASY) return c > 0 ? phi : c;
    return c > cos(M_PI - m) ? phi : c - m * sin(m);
}

/* cos (N, K) = max over the S sub-centres of each class; weight is (K S, D). */
static void ref_cos(double *cosk, const double *emb, const double *weight, int N, int D, int K, int S)
{
    for (int i = 0; i < N; i++) {
        const double *f = emb + (size_t)i * D;
        double fn = 0;
        for (int d = 0; d < D; d++) fn += f[d] * f[d];
        fn = fmax(sqrt(fn), 1e-12);
        for (int c = 0; c < K; c++) {
            double best = -INFINITY;
            for (int s = 0; s < S; s++) {
                const double *w = weight + ((size_t)c * S + s) * D;
                double dot = 0, wn = 0;
                for (int d = 0; d < D; d++) {
                    dot += f[d] * w[d];
                    wn += w[d] * w[d];
                }
                double v = dot / (fn * fmax(sqrt(wn), 1e-12));
                if (v > best) best = v;
            }
            cosk[(size_t)i * K + c] = best;
        }
    }
}

static double ref_total(double *loss, const double *emb, const double *weight, const int *labels,
                        const uint8_t *forms, const float *sw, int N, int D, int K, int S,
                        const comine_arcface_cfg *cfg)
{
    double *cosk = malloc((size_t)N * K * sizeof(double)), total = 0;
    ref_cos(cosk, emb, weight, N, D, K, S);
    for (int i = 0; i < N; i++) {
        const double *cr = cosk + (size_t)i * K;
        int y = labels[i], form = forms ? forms[i] : COMINE_FORM_ARCFACE;
        double m = form == COMINE_FORM_MARGIN ? (double)cfg->m + cfg->dm : cfg->m;
        double psi = ref_psi(cr[y], m, cfg->fallback), zy = cfg->s * psi, zmax = zy, sum = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < K; j++) {
                double z = j == y ? zy : cfg->s * cr[j];
                if (j != y && form == COMINE_FORM_MV && cr[j] > psi) z += cfg->s * ((double)cfg->t - 1) * (cr[j] + 1);
                if (pass == 0 && z > zmax) zmax = z;
                if (pass == 1) sum += exp(z - zmax);
            }
        double l = zmax + log(sum) - zy;
        if (loss) loss[i] = l;
        total += (sw ? sw[i] : 1.0) * l;
    }
    free(cosk);
    return total;
}

static double *to_double(const float *x, size_t n)
{
    double *o = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) o[i] = x[i];
    return o;
}

/* Forward, loss and backward of a head of S sub-centres (gradients accumulated onto zeros). */
static void run_head(float *loss, float *demb, float *dweight, const float *emb, const float *weight, const int *labels,
                     const uint8_t *forms, const float *sw, int N, int D, int K, int S, comine_arcface_cfg *cfg)
{
    comine_arcface h;
    cfg->subcenters = S;
    COMINE_ASSERT(comine_arcface_init_subcenters(&h, comine_backend_cpu(), D, K, S, N) == COMINE_OK);
    comine_arcface_forward(&h, emb, weight, N);
    comine_arcface_loss(&h, loss, labels, forms, N, cfg);
    memset(demb, 0, (size_t)N * D * sizeof(float));
    memset(dweight, 0, (size_t)K * S * D * sizeof(float));
    comine_arcface_backward(&h, demb, dweight, emb, weight, labels, forms, sw, N, cfg);
    comine_arcface_free(&h);
}

static void test_fixtures(void)
{
    fx_file fx;
    if (fx_load(&fx, fx_path("loss_subcenter.bin"))) {
        fx_fail_count++;
        return;
    }
    static const char *fbs[] = {"easy", "insightface"}, *sets[] = {"arcface", "margin", "mv", "mixed"};
    static const int scales[] = {32, 64};
    int off_first = 0; /* labels whose dominant sub-centre is not the first */
    for (int si = 0; si < 2; si++)
        for (int fi = 0; fi < 2; fi++)
            for (int ci = 0; ci < 4; ci++) {
                char pre[64], nm[128];
                snprintf(pre, sizeof pre, "s%d_%s_%s/", scales[si], fbs[fi], sets[ci]);
#define GET(x) (snprintf(nm, sizeof nm, "%s%s", pre, x), fx_get(&fx, nm))
                const fx_tensor *cfgt = GET("cfg"), *emb = GET("emb"), *weight = GET("weight"), *lab = GET("labels"),
                                *dom = GET("dominant"), *fo = GET("forms"), *sw = GET("sample_weight"),
                                *loss = GET("loss"), *ct = GET("cos_target"), *pt = GET("p_target"),
                                *demb = GET("demb"), *dweight = GET("dweight");
#undef GET
                if (!cfgt || !emb || !weight || !lab || !dom || !fo || !sw || !loss || !ct || !pt || !demb ||
                    !dweight) {
                    FX_EXPECT(0, "%s: a tensor is missing from loss_subcenter.bin", pre);
                    continue;
                }
                const int N = emb->dims[0], D = emb->dims[1], S = (int)cfgt->data[5], KS = weight->dims[0],
                          K = KS / S;
                comine_arcface_cfg cfg = {.s = cfgt->data[0], .m = cfgt->data[1],
                                          .fallback = (comine_fallback)(int)cfgt->data[2], .dm = cfgt->data[3],
                                          .t = cfgt->data[4], .subcenters = S};
                int labels[64];
                uint8_t forms[64];
                for (int i = 0; i < N; i++) {
                    labels[i] = (int)lab->data[i];
                    forms[i] = (uint8_t)fo->data[i];
                    off_first += dom->data[i] != 0.0f;
                }
                comine_arcface h;
                COMINE_ASSERT(comine_arcface_init_subcenters(&h, comine_backend_cpu(), D, K, S, N) == COMINE_OK);
                comine_arcface_forward(&h, emb->data, weight->data, N);
                float got_loss[64];
                comine_arcface_loss(&h, got_loss, labels, forms, N, &cfg);
                /* backward accumulates: start from ones and subtract them */
                float *ge = malloc((size_t)N * D * sizeof(float)), *gw = malloc((size_t)KS * D * sizeof(float));
                for (int k = 0; k < N * D; k++) ge[k] = 1.0f;
                for (int k = 0; k < KS * D; k++) gw[k] = 1.0f;
                comine_arcface_backward(&h, ge, gw, emb->data, weight->data, labels, forms, sw->data, N, &cfg);
                for (int k = 0; k < N * D; k++) ge[k] -= 1.0f;
                for (int k = 0; k < KS * D; k++) gw[k] -= 1.0f;
                char what[128];
                snprintf(what, sizeof what, "%sloss", pre);
                fx_check(what, got_loss, loss->data, (size_t)N, 1e-4, 1e-5);
                snprintf(what, sizeof what, "%scos_target", pre);
                fx_check(what, h.cos_target, ct->data, (size_t)N, 1e-6, 1e-6);
                snprintf(what, sizeof what, "%sp_target", pre);
                fx_check(what, h.p_target, pt->data, (size_t)N, 1e-6, 1e-4);
                snprintf(what, sizeof what, "%sdemb", pre);
                fx_check(what, ge, demb->data, (size_t)N * D, 1e-4, 1e-4);
                snprintf(what, sizeof what, "%sdweight", pre);
                fx_check(what, gw, dweight->data, (size_t)KS * D, 1e-4, 1e-4);
                /* the arg-max the forward saved is the sub-centre the fixture placed the target on */
                for (int i = 0; i < N; i++)
                    FX_EXPECT(h.sub_arg[(size_t)i * K + labels[i]] == (int)dom->data[i],
                              "%s sample %d: arg-max sub-centre %d, placed on %d", pre, i,
                              h.sub_arg[(size_t)i * K + labels[i]], (int)dom->data[i]);
                for (int i = 0; i < N; i++)
                    if (sw->data[i] == 0.0f)
                        for (int d = 0; d < D; d++)
                            FX_EXPECT(ge[i * D + d] == 0.0f, "%s sample %d has weight 0 but a gradient", pre, i);
                free(ge);
                free(gw);
                comine_arcface_free(&h);
            }
    FX_EXPECT(off_first > 0, "the fixture never places a target on a sub-centre other than the first");
    fx_free(&fx);
}

/* emb row with cos(emb, w) = c exactly in real numbers, norm r. */
static void place(float *f, const float *w, double c, double r, int D, comine_rng *rng)
{
    double wn = 0, u[256], dot = 0, un = 0;
    for (int d = 0; d < D; d++) wn += (double)w[d] * w[d];
    wn = sqrt(wn);
    for (int d = 0; d < D; d++) u[d] = comine_rng_normal(rng);
    for (int d = 0; d < D; d++) dot += u[d] * w[d] / wn;
    for (int d = 0; d < D; d++) u[d] -= dot * w[d] / wn;
    for (int d = 0; d < D; d++) un += u[d] * u[d];
    un = sqrt(un);
    for (int d = 0; d < D; d++) f[d] = (float)(r * (c * w[d] / wn + sqrt(1 - c * c) * u[d] / un));
}

/* The smallest gap between a class's best and second-best sub-centre, over all rows. */
static double min_gap(const float *emb, const float *weight, int N, int D, int K, int S)
{
    double *e = to_double(emb, (size_t)N * D), *w = to_double(weight, (size_t)K * S * D), gap = INFINITY;
    double *one = malloc((size_t)N * K * S * sizeof(double));
    ref_cos(one, e, w, N, D, K * S, 1);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < K; c++) {
            const double *v = one + (size_t)i * K * S + (size_t)c * S;
            double a = -INFINITY, b = -INFINITY;
            for (int s = 0; s < S; s++)
                if (v[s] > a) {
                    b = a;
                    a = v[s];
                } else if (v[s] > b) {
                    b = v[s];
                }
            gap = fmin(gap, a - b);
        }
    free(one);
    free(e);
    free(w);
    return gap;
}

/* Central differences of ref_total against the C gradients, on random heads whose arg-max is
 * clear (a gap of 1e-3, far above the step). */
static void test_finite_differences(void)
{
    enum { N = 6, D = 12, K = 7, S = 3 };
    comine_rng rng;
    comine_rng_seed(&rng, 17, COMINE_STREAM_EVAL);
    float emb[N * D], weight[K * S * D], sw[N], loss[N], demb[N * D], dweight[K * S * D];
    int labels[N];
    uint8_t forms[N];
    for (int trial = 0; trial < 8; trial++) {
        comine_arcface_cfg cfg;
        comine_arcface_cfg_default(&cfg);
        cfg.s = trial % 2 ? 64.0f : 32.0f;
        cfg.fallback = (comine_fallback)(trial / 2 % 2);
        do {
            for (int k = 0; k < K * S * D; k++) weight[k] = comine_rng_normal(&rng) * (0.2f + 0.1f * (k / D % 4));
            for (int i = 0; i < N; i++) {
                labels[i] = (int)comine_rng_below(&rng, K);
                forms[i] = (uint8_t)((i + trial) % 3);
                sw[i] = trial >= 4 ? (float)(i % 3) * 0.5f : 1.0f / N;
                int s = (int)comine_rng_below(&rng, S);
                double c = -0.95 + 1.9 * comine_rng_uniform(&rng);
                place(emb + i * D, weight + ((size_t)labels[i] * S + s) * D, c, 0.5 + 2 * comine_rng_uniform(&rng), D,
                      &rng);
            }
        } while (min_gap(emb, weight, N, D, K, S) < 1e-3);
        run_head(loss, demb, dweight, emb, weight, labels, forms, sw, N, D, K, S, &cfg);
        double *e = to_double(emb, N * D), *w = to_double(weight, K * S * D), lref[N];
        float lref_f[N], fde[N * D], fdw[K * S * D];
        ref_total(lref, e, w, labels, forms, sw, N, D, K, S, &cfg);
        for (int i = 0; i < N; i++) lref_f[i] = (float)lref[i];
        const double step = 1e-6;
        for (int pass = 0; pass < 2; pass++) {
            double *x = pass ? w : e;
            float *fd = pass ? fdw : fde;
            for (size_t k = 0; k < (size_t)(pass ? K * S * D : N * D); k++) {
                double x0 = x[k];
                x[k] = x0 + step;
                double lp = ref_total(NULL, e, w, labels, forms, sw, N, D, K, S, &cfg);
                x[k] = x0 - step;
                double lm = ref_total(NULL, e, w, labels, forms, sw, N, D, K, S, &cfg);
                x[k] = x0;
                fd[k] = (float)((lp - lm) / (2 * step));
            }
        }
        char name[128];
        snprintf(name, sizeof name, "fd S=3 s=%g %s%s loss vs double", cfg.s, trial / 2 % 2 ? "insightface" : "easy",
                 trial >= 4 ? " weighted" : "");
        fx_check(name, loss, lref_f, N, 1e-4, 1e-5);
        snprintf(name, sizeof name, "fd S=3 s=%g %s%s demb vs fd", cfg.s, trial / 2 % 2 ? "insightface" : "easy",
                 trial >= 4 ? " weighted" : "");
        fx_check(name, demb, fde, N * D, 2e-4, 1e-3);
        snprintf(name, sizeof name, "fd S=3 s=%g %s%s dweight vs fd", cfg.s, trial / 2 % 2 ? "insightface" : "easy",
                 trial >= 4 ? " weighted" : "");
        fx_check(name, dweight, fdw, K * S * D, 2e-4, 1e-3);
        free(e);
        free(w);
    }
}

/* The backend's two entries on hand-made rows: ties take the lowest s, NaN propagates, the
 * scatter writes every element. */
static void test_kernels(void)
{
    const comine_backend *be = comine_backend_cpu();
    enum { N = 2, K = 3, S = 3 };
    const float nan = NAN;
    float cos_sub[N * K * S] = {0.1f, 0.5f, 0.5f, /**/ 0.2f, 0.2f, 0.2f, /**/ -0.3f, -0.1f, -0.2f,
                                nan,  0.9f, 0.1f, /**/ 0.4f, nan,  0.8f, /**/ 0.7f,  0.6f,  0.5f};
    float cosk[N * K];
    int arg[N * K];
    be->subcenter_max(cosk, arg, cos_sub, N, K, S);
    static const int want_arg[N * K] = {1, 0, 1, 0, 1, 0};
    static const float want_cos[N * K] = {0.5f, 0.2f, -0.1f, NAN, NAN, 0.7f};
    int ok = 1;
    for (int k = 0; k < N * K; k++)
        ok &= arg[k] == want_arg[k] && (isnan(want_cos[k]) ? isnan(cosk[k]) : cosk[k] == want_cos[k]);
    printf("%s subcenter_max: ties take the lowest s, NaN propagates (arg of the first NaN)\n", ok ? "ok  " : "FAIL");
    FX_EXPECT(ok, "subcenter_max differs from torch.max's semantics");

    float dcos[2 * K] = {1, 2, 3, 4, 5, 6}, inv[K * S], out[2 * K * S];
    for (int j = 0; j < K * S; j++) inv[j] = 1.0f + j;
    for (int j = 0; j < 2 * K * S; j++) out[j] = 99.0f;
    int active[2] = {1, 0};
    be->subcenter_scatter(out, dcos, arg, active, inv, 2, K, S);
    /* row 0 is sample 1 (args 0, 1, 0), row 1 sample 0 (args 1, 0, 1) */
    float want[2 * K * S] = {1 * 1, 0, 0, 0, 2 * 5, 0, 3 * 7, 0, 0, /**/ 0, 4 * 2, 0, 5 * 4, 0, 0, 0, 6 * 8, 0};
    ok = memcmp(out, want, sizeof out) == 0;
    printf("%s subcenter_scatter: dcos at each class's arg-max times its 1/|w|, 0 elsewhere\n", ok ? "ok  " : "FAIL");
    FX_EXPECT(ok, "subcenter_scatter wrote the wrong values");
}

/* S = 1 through init_subcenters is comine_arcface_init: no extra buffers, the same bits. */
static void test_s1_identical(void)
{
    enum { N = 16, D = 32, K = 50 };
    comine_rng rng;
    comine_rng_seed(&rng, 23, COMINE_STREAM_EVAL);
    float *emb = malloc(N * D * sizeof(float)), *weight = malloc(K * D * sizeof(float)), sw[N];
    int labels[N];
    uint8_t forms[N];
    for (int k = 0; k < N * D; k++) emb[k] = comine_rng_normal(&rng);
    for (int k = 0; k < K * D; k++) weight[k] = comine_rng_normal(&rng);
    for (int i = 0; i < N; i++) {
        labels[i] = (int)comine_rng_below(&rng, K);
        forms[i] = (uint8_t)(i % 3);
        sw[i] = i % 5 == 4 ? 0.0f : 0.25f * (1 + i % 3);
    }
    comine_arcface_cfg cfg;
    comine_arcface_cfg_default(&cfg);
    comine_arcface a, b;
    comine_arcface_init(&a, comine_backend_cpu(), D, K, N);
    COMINE_ASSERT(comine_arcface_init_subcenters(&b, comine_backend_cpu(), D, K, 1, N) == COMINE_OK);
    int same = !b.cos_sub && !b.sub_arg && !b.dcos_sub && !b.ones && b.S == 1;
    float la[N], lb[N];
    float *ga = calloc(N * D, sizeof(float)), *gb = calloc(N * D, sizeof(float));
    float *wa = calloc(K * D, sizeof(float)), *wb = calloc(K * D, sizeof(float));
    comine_arcface *hs[2] = {&a, &b};
    float *ls[2] = {la, lb}, *gs[2] = {ga, gb}, *ws[2] = {wa, wb};
    for (int k = 0; k < 2; k++) {
        comine_arcface_forward(hs[k], emb, weight, N);
        comine_arcface_loss(hs[k], ls[k], labels, forms, N, &cfg);
        comine_arcface_backward(hs[k], gs[k], ws[k], emb, weight, labels, forms, sw, N, &cfg);
    }
    same = same && memcmp(la, lb, sizeof la) == 0 && memcmp(a.cos, b.cos, sizeof(float) * N * K) == 0 &&
           memcmp(ga, gb, sizeof(float) * N * D) == 0 && memcmp(wa, wb, sizeof(float) * K * D) == 0 &&
           memcmp(a.p_target, b.p_target, sizeof(float) * N) == 0;
    printf("%s S = 1 through init_subcenters: the plain head bit for bit, no sub-centre buffers\n",
           same ? "ok  " : "FAIL");
    FX_EXPECT(same, "S = 1 differs from the plain head");
    comine_arcface_free(&a);
    comine_arcface_free(&b);
    free(emb); free(weight); free(ga); free(gb); free(wa); free(wb);

    /* a backend without the entries refuses S > 1 (and still takes S = 1) */
    struct comine_backend bare = *comine_backend_cpu();
    bare.subcenter_max = NULL;
    bare.subcenter_scatter = NULL;
    comine_arcface h;
    comine_status st = comine_arcface_init_subcenters(&h, &bare, D, K, 3, N);
    int refused = st == COMINE_ERR_ARG && strstr(comine_last_error(), "sub-centre") != NULL;
    printf("%s a backend without sub-centre kernels refuses S = 3: %s\n", refused ? "ok  " : "FAIL",
           comine_last_error());
    FX_EXPECT(refused, "S > 1 accepted on a backend without the kernels");
    st = comine_arcface_init_subcenters(&h, &bare, D, K, 1, N);
    FX_EXPECT(st == COMINE_OK, "S = 1 refused on a backend without the sub-centre kernels");
    if (st == COMINE_OK) comine_arcface_free(&h);
}

/* Forward (+ loss) and backward of a K = 10,575, D = 512 head, batch 32: S = 3 against S = 1. */
static void test_timing(void)
{
    enum { N = 32, D = 512, K = 10575, REPS = 5 };
    comine_rng rng;
    comine_rng_seed(&rng, 5, COMINE_STREAM_EVAL);
    float *weight = malloc((size_t)K * 3 * D * sizeof(float)), *emb = malloc((size_t)N * D * sizeof(float));
    float *demb = calloc((size_t)N * D, sizeof(float)), *dweight = calloc((size_t)K * 3 * D, sizeof(float));
    for (size_t k = 0; k < (size_t)K * 3 * D; k++) weight[k] = 0.01f * comine_rng_normal(&rng);
    for (size_t k = 0; k < (size_t)N * D; k++) emb[k] = comine_rng_normal(&rng);
    int labels[N];
    float sw[N], loss[N];
    for (int i = 0; i < N; i++) {
        labels[i] = (int)comine_rng_below(&rng, K);
        sw[i] = 1.0f / N;
    }
    double ms[2][2];
    for (int v = 0; v < 2; v++) {
        const int S = v ? 3 : 1;
        comine_arcface_cfg cfg;
        comine_arcface_cfg_default(&cfg);
        cfg.subcenters = S;
        comine_arcface h;
        COMINE_ASSERT(comine_arcface_init_subcenters(&h, comine_backend_cpu(), D, K, S, N) == COMINE_OK);
        double fwd[REPS], bwd[REPS];
        for (int r = -1; r < REPS; r++) { /* r = -1: warm-up */
            double t0 = comine_now();
            comine_arcface_forward(&h, emb, weight, N);
            comine_arcface_loss(&h, loss, labels, NULL, N, &cfg);
            double t1 = comine_now();
            comine_arcface_backward(&h, demb, dweight, emb, weight, labels, NULL, sw, N, &cfg);
            double t2 = comine_now();
            if (r >= 0) {
                fwd[r] = t1 - t0;
                bwd[r] = t2 - t1;
            }
        }
        double f = fwd[0], b = bwd[0];
        for (int r = 1; r < REPS; r++) {
            f = fmin(f, fwd[r]);
            b = fmin(b, bwd[r]);
        }
        ms[v][0] = f * 1e3;
        ms[v][1] = b * 1e3;
        int finite = 1;
        for (int i = 0; i < N; i++) finite &= isfinite(loss[i]);
        FX_EXPECT(finite, "S = %d: non-finite losses", S);
        comine_arcface_free(&h);
    }
    printf("info N=%d D=%d K=%d (best of %d, %d threads): S=1 forward+loss %.1f ms, backward %.1f ms; "
           "S=3 forward+loss %.1f ms, backward %.1f ms\n",
           N, D, K, REPS, comine_num_threads(), ms[0][0], ms[0][1], ms[1][0], ms[1][1]);
    free(weight); free(emb); free(demb); free(dweight);
}

int main(void)
{
    test_fixtures();
    test_finite_differences();
    test_kernels();
    test_s1_identical();
    test_timing();
    return fx_finish("test_loss_subcenter");
}
