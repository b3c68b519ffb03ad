/* test_loss_arcface.c: the ArcFace head (loss.h) against
 *  - PyTorch fixtures (tests/ref/gen_loss.py): per-sample loss, p_target and the gradients
 *    w.r.t. emb and weight for s = 32 / 64, both fallbacks, forms ARCFACE / MARGIN / MV and
 *    a per-sample mix with weights that include zeros (backward must accumulate);
 *  - finite differences of an independent double-precision evaluation of the same loss,
 *    on random inputs and on targets just either side of each fallback's switch;
 *  - properties: mv with t = 1 is ARCFACE bit for bit; p_target of MARGIN and MV is never
 *    above ARCFACE's; cos_stats; and a K = 10,575, D = 512 head (directional derivative
 *    check and timing). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/loss.h"
#include "fixture.h"

/* ---- an independent double-precision evaluation of sum_i sw_i loss_i ------------- */
static double ref_psi(double c, double m, comine_fallback fb)
{
    double sine = sqrt(fmax(0.0, fmin(1.0, 1.0 - c * c)));
    double phi = c * cos(m) - sine * sin(m);
    if (fb == COMINE_FALLBACK_EASY) return c > 0 ? phi : c;
    return c > cos(M_PI - m) ? phi : c - m * sin(m);
}

static double ref_total(double *loss, const double *emb, const double *weight, const int *labels,
                        const uint8_t *forms, const float *sw, int N, int D, int K, const comine_arcface_cfg *cfg)
{
    double total = 0;
    double *wn = malloc((size_t)K * sizeof(double)), *z = malloc((size_t)K * sizeof(double));
    for (int j = 0; j < K; j++) {
        double ss = 0;
        for (int d = 0; d < D; d++) ss += weight[(size_t)j * D + d] * weight[(size_t)j * D + d];
        wn[j] = fmax(sqrt(ss), 1e-12);
    }
    for (int i = 0; i < N; i++) {
        const double *f = emb + (size_t)i * D;
        double fn = 0;
        for (int d = 0; d < D; d++) fn += f[d] * f[d];
        fn = fmax(sqrt(fn), 1e-12);
        int y = labels[i], form = forms ? forms[i] : COMINE_FORM_ARCFACE;
        double m = form == COMINE_FORM_MARGIN ? (double)cfg->m + cfg->dm : cfg->m;
        double cy = 0;
        for (int d = 0; d < D; d++) cy += f[d] * weight[(size_t)y * D + d];
        cy /= fn * wn[y];
        double psi = ref_psi(cy, m, cfg->fallback), zmax = cfg->s * psi;
        for (int j = 0; j < K; j++) {
            double c = 0;
            for (int d = 0; d < D; d++) c += f[d] * weight[(size_t)j * D + d];
            c /= fn * wn[j];
            z[j] = j == y ? cfg->s * psi : cfg->s * c;
            if (j != y && form == COMINE_FORM_MV && c > psi) z[j] += cfg->s * ((double)cfg->t - 1) * (c + 1);
            if (z[j] > zmax) zmax = z[j];
        }
        double sum = 0;
        for (int j = 0; j < K; j++) sum += exp(z[j] - zmax);
        double l = zmax + log(sum) - cfg->s * psi;
        if (loss) loss[i] = l;
        total += (sw ? sw[i] : 1.0) * l;
    }
    free(wn);
    free(z);
    return total;
}

static double *to_double(const float *x, size_t n)
{
    double *o = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) o[i] = x[i];
    return o;
}

/* Run the C head: loss (N) and the gradients (accumulated onto zeros). */
static void run_head(float *loss, float *demb, float *dweight, const float *emb, const float *weight, const int *labels,
                     const uint8_t *forms, const float *sw, int N, int D, int K, const comine_arcface_cfg *cfg)
{
    comine_arcface h;
    comine_arcface_init(&h, comine_backend_cpu(), D, K, N);
    comine_arcface_forward(&h, emb, weight, N);
    comine_arcface_loss(&h, loss, labels, forms, N, cfg);
    memset(demb, 0, (size_t)N * D * sizeof(float));
    memset(dweight, 0, (size_t)K * D * sizeof(float));
    comine_arcface_backward(&h, demb, dweight, emb, weight, labels, forms, sw, N, cfg);
    comine_arcface_free(&h);
}

/* Central differences of ref_total w.r.t. every coordinate of emb and weight, against the
 * C gradients; and the C losses against the double ones. */
static void fd_check(const char *what, const float *emb, const float *weight, const int *labels, const uint8_t *forms,
                     const float *sw, int N, int D, int K, const comine_arcface_cfg *cfg)
{
    float *loss = malloc((size_t)N * sizeof(float)), *demb = malloc((size_t)N * D * sizeof(float));
    float *dweight = malloc((size_t)K * D * sizeof(float));
    run_head(loss, demb, dweight, emb, weight, labels, forms, sw, N, D, K, cfg);
    double *e = to_double(emb, (size_t)N * D), *w = to_double(weight, (size_t)K * D);
    double *lref = malloc((size_t)N * sizeof(double));
    ref_total(lref, e, w, labels, forms, sw, N, D, K, cfg);
    float *lref_f = malloc((size_t)N * sizeof(float)), *fde = malloc((size_t)N * D * sizeof(float));
    float *fdw = malloc((size_t)K * D * sizeof(float));
    for (int i = 0; i < N; i++) lref_f[i] = (float)lref[i];
    const double h = 1e-6;
    for (size_t k = 0; k < (size_t)N * D; k++) {
        double x = e[k];
        e[k] = x + h;
        double lp = ref_total(NULL, e, w, labels, forms, sw, N, D, K, cfg);
        e[k] = x - h;
        double lm = ref_total(NULL, e, w, labels, forms, sw, N, D, K, cfg);
        e[k] = x;
        fde[k] = (float)((lp - lm) / (2 * h));
    }
    for (size_t k = 0; k < (size_t)K * D; k++) {
        double x = w[k];
        w[k] = x + h;
        double lp = ref_total(NULL, e, w, labels, forms, sw, N, D, K, cfg);
        w[k] = x - h;
        double lm = ref_total(NULL, e, w, labels, forms, sw, N, D, K, cfg);
        w[k] = x;
        fdw[k] = (float)((lp - lm) / (2 * h));
    }
    char name[160];
    snprintf(name, sizeof name, "%s loss vs double", what);
    fx_check(name, loss, lref_f, (size_t)N, 1e-4, 1e-5);
    snprintf(name, sizeof name, "%s demb vs fd", what);
    fx_check(name, demb, fde, (size_t)N * D, 2e-4, 1e-3);
    snprintf(name, sizeof name, "%s dweight vs fd", what);
    fx_check(name, dweight, fdw, (size_t)K * D, 2e-4, 1e-3);
    free(loss); free(demb); free(dweight); free(e); free(w); free(lref); free(lref_f); free(fde); free(fdw);
}

/* emb row i with cos(emb_i, weight_y) = c exactly in real numbers, norm r. */
static void place(float *f, const float *wy, double c, double r, int D, comine_rng *rng)
{
    double wn = 0, u[1024], dot = 0, un = 0;
    for (int d = 0; d < D; d++) wn += (double)wy[d] * wy[d];
    wn = sqrt(wn);
    for (int d = 0; d < D; d++) u[d] = comine_rng_normal(rng);
    for (int d = 0; d < D; d++) dot += u[d] * wy[d] / wn;
    for (int d = 0; d < D; d++) u[d] -= dot * wy[d] / wn;
    for (int d = 0; d < D; d++) un += u[d] * u[d];
    un = sqrt(un);
    for (int d = 0; d < D; d++) f[d] = (float)(r * (c * wy[d] / wn + sqrt(1 - c * c) * u[d] / un));
}

static void test_fixtures(void)
{
    fx_file fx;
    if (fx_load(&fx, fx_path("loss_arcface.bin"))) {
        fx_fail_count++;
        return;
    }
    static const char *fbs[] = {"easy", "insightface"}, *sets[] = {"arcface", "margin", "mv", "mixed"};
    static const int scales[] = {32, 64};
    for (int si = 0; si < 2; si++)
        for (int fi = 0; fi < 2; fi++)
            for (int ci = 0; ci < 4; ci++) {
                char pre[64], nm[128];
                snprintf(pre, sizeof pre, "s%d_%s_%s/", scales[si], fbs[fi], sets[ci]);
#define GET(x) (snprintf(nm, sizeof nm, "%s%s", pre, x), fx_get(&fx, nm))
                const fx_tensor *cfgt = GET("cfg"), *emb = GET("emb"), *weight = GET("weight"),
                                *lab = GET("labels"), *fo = GET("forms"), *sw = GET("sample_weight"),
                                *loss = GET("loss"), *pt = GET("p_target"), *demb = GET("demb"),
                                *dweight = GET("dweight");
#undef GET
                if (!cfgt || !emb || !weight || !lab || !fo || !sw || !loss || !pt || !demb || !dweight) continue;
                int N = emb->dims[0], D = emb->dims[1], K = weight->dims[0];
                comine_arcface_cfg cfg = {.s = cfgt->data[0], .m = cfgt->data[1],
                                          .fallback = (comine_fallback)(int)cfgt->data[2], .dm = cfgt->data[3],
                                          .t = cfgt->data[4]};
                int labels[64];
                uint8_t forms[64];
                for (int i = 0; i < N; i++) {
                    labels[i] = (int)lab->data[i];
                    forms[i] = (uint8_t)fo->data[i];
                }
                comine_arcface h;
                comine_arcface_init(&h, comine_backend_cpu(), D, K, N);
                comine_arcface_forward(&h, emb->data, weight->data, N);
                float got_loss[64];
                comine_arcface_loss(&h, got_loss, labels, forms, N, &cfg);
                /* backward accumulates: start from ones and subtract them */
                float *ge = malloc((size_t)N * D * sizeof(float)), *gw = malloc((size_t)K * D * sizeof(float));
                for (int k = 0; k < N * D; k++) ge[k] = 1.0f;
                for (int k = 0; k < K * D; k++) gw[k] = 1.0f;
                comine_arcface_backward(&h, ge, gw, emb->data, weight->data, labels, forms, sw->data, N, &cfg);
                for (int k = 0; k < N * D; k++) ge[k] -= 1.0f;
                for (int k = 0; k < K * D; k++) gw[k] -= 1.0f;
                char what[128];
                snprintf(what, sizeof what, "%sloss", pre);
                fx_check(what, got_loss, loss->data, (size_t)N, 1e-4, 1e-5);
                snprintf(what, sizeof what, "%sp_target", pre);
                fx_check(what, h.p_target, pt->data, (size_t)N, 1e-6, 1e-4);
                snprintf(what, sizeof what, "%sdemb", pre);
                fx_check(what, ge, demb->data, (size_t)N * D, 1e-4, 1e-4);
                snprintf(what, sizeof what, "%sdweight", pre);
                fx_check(what, gw, dweight->data, (size_t)K * D, 1e-4, 1e-4);
                /* zero-weight samples leave their demb rows untouched */
                for (int i = 0; i < N; i++)
                    if (sw->data[i] == 0.0f)
                        for (int d = 0; d < D; d++)
                            FX_EXPECT(ge[i * D + d] == 0.0f, "%s sample %d has weight 0 but a gradient", pre, i);
                free(ge);
                free(gw);
                comine_arcface_free(&h);
            }
    fx_free(&fx);
}

static void test_finite_differences(void)
{
    const int N = 6, D = 12, K = 9;
    comine_rng rng;
    comine_rng_seed(&rng, 7, COMINE_STREAM_EVAL);
    float emb[6 * 12], weight[9 * 12], sw[6];
    int labels[6];
    uint8_t forms[6];
    for (int scale = 0; scale < 2; scale++)
        for (int pass = 0; pass < 2; pass++)
            for (int fb = 0; fb < 2; fb++)
                for (int form = 0; form < 3; form++) {
                    comine_arcface_cfg cfg;
                    comine_arcface_cfg_default(&cfg);
                    cfg.s = scale ? 64.0f : 32.0f;
                    cfg.fallback = (comine_fallback)fb;
                    double m = form == COMINE_FORM_MARGIN ? (double)cfg.m + cfg.dm : cfg.m;
                    double thr = fb == COMINE_FALLBACK_EASY ? 0.0 : cos(M_PI - m);
                    for (int k = 0; k < K * D; k++) weight[k] = comine_rng_normal(&rng) * 0.3f;
                    /* targets: just above and just below the switch (of this form's margin), and others;
                     * in the mixed pass the switch is the first sample's form's */
                    double cs[6] = {thr + 0.02, thr - 0.02, thr + 0.005, thr - 0.005, 0.7, -0.3};
                    for (int i = 0; i < N; i++) {
                        labels[i] = (int)comine_rng_below(&rng, K);
                        forms[i] = (uint8_t)(pass ? (form + i) % 3 : form);
                        sw[i] = pass ? (float)(i % 3) * 0.5f : 1.0f / N;
                        place(emb + i * D, weight + labels[i] * D, cs[i], 0.5 + 2 * comine_rng_uniform(&rng), D, &rng);
                    }
                    char what[96];
                    static const char *form_names[] = {"arcface", "margin", "mv"};
                    snprintf(what, sizeof what, "fd s=%g %s %s%s", cfg.s, fb ? "insightface" : "easy",
                             pass ? "mixed from " : "", form_names[form]);
                    fd_check(what, emb, weight, labels, forms, sw, N, D, K, &cfg);
                }
}

static void test_properties(void)
{
    const int N = 64, D = 32, K = 100;
    comine_rng rng;
    comine_rng_seed(&rng, 11, COMINE_STREAM_EVAL);
    float *emb = malloc(N * D * sizeof(float)), *weight = malloc(K * D * sizeof(float));
    int labels[64];
    uint8_t f_arc[64], f_margin[64], f_mv[64];
    float sw[64];
    for (int i = 0; i < N; i++) {
        f_arc[i] = COMINE_FORM_ARCFACE;
        f_margin[i] = COMINE_FORM_MARGIN;
        f_mv[i] = COMINE_FORM_MV;
        sw[i] = 1.0f / N;
    }
    comine_arcface h;
    comine_arcface_init(&h, comine_backend_cpu(), D, K, N);
    int above = 0, exact_fail = 0, checked = 0;
    for (int trial = 0; trial < 40; trial++) {
        for (int k = 0; k < N * D; k++) emb[k] = comine_rng_normal(&rng);
        for (int k = 0; k < K * D; k++) weight[k] = comine_rng_normal(&rng);
        for (int i = 0; i < N; i++) {
            labels[i] = (int)comine_rng_below(&rng, K);
            /* half the samples pulled toward their class, some pushed past the switch */
            double c = -0.99 + 1.98 * comine_rng_uniform(&rng);
            if (i % 2) place(emb + i * D, weight + labels[i] * D, c, 1.0 + comine_rng_uniform(&rng), D, &rng);
        }
        comine_arcface_cfg cfg;
        comine_arcface_cfg_default(&cfg);
        cfg.s = trial % 2 ? 64.0f : 32.0f;
        cfg.fallback = (comine_fallback)(trial / 2 % 2);
        comine_arcface_forward(&h, emb, weight, N);
        float l_arc[64], l_margin[64], l_mv[64], p_arc[64], p_margin[64], p_mv[64];
        comine_arcface_loss(&h, l_arc, labels, f_arc, N, &cfg);
        memcpy(p_arc, h.p_target, sizeof p_arc);
        comine_arcface_loss(&h, l_margin, labels, f_margin, N, &cfg);
        memcpy(p_margin, h.p_target, sizeof p_margin);
        comine_arcface_loss(&h, l_mv, labels, f_mv, N, &cfg);
        memcpy(p_mv, h.p_target, sizeof p_mv);
        for (int i = 0; i < N; i++) {
            above += p_margin[i] > p_arc[i] || p_mv[i] > p_arc[i] || l_margin[i] < l_arc[i] || l_mv[i] < l_arc[i];
            checked++;
        }
        /* mv with t = 1 is ARCFACE exactly: losses and gradients */
        cfg.t = 1.0f;
        float l_mv1[64];
        comine_arcface_loss(&h, l_mv1, labels, f_mv, N, &cfg);
        exact_fail += memcmp(l_mv1, l_arc, sizeof l_arc) != 0;
        if (trial < 4) {
            float *ga = calloc((size_t)N * D, sizeof(float)), *gb = calloc((size_t)N * D, sizeof(float));
            float *wa = calloc((size_t)K * D, sizeof(float)), *wb = calloc((size_t)K * D, sizeof(float));
            comine_arcface_backward(&h, ga, wa, emb, weight, labels, f_arc, sw, N, &cfg);
            comine_arcface_backward(&h, gb, wb, emb, weight, labels, f_mv, sw, N, &cfg);
            exact_fail += memcmp(ga, gb, (size_t)N * D * sizeof(float)) != 0;
            exact_fail += memcmp(wa, wb, (size_t)K * D * sizeof(float)) != 0;
            free(ga); free(gb); free(wa); free(wb);
        }
    }
    printf("%s p_target(MARGIN), p_target(MV) <= p_target(ARCFACE) on %d random samples: %d above\n",
           above ? "FAIL" : "ok  ", checked, above);
    FX_EXPECT(above == 0, "%d samples with a re-weighted p_target above ArcFace's", above);
    printf("%s mv with t = 1 equals ARCFACE bit for bit (losses x40, gradients x4): %d differ\n",
           exact_fail ? "FAIL" : "ok  ", exact_fail);
    FX_EXPECT(exact_fail == 0, "mv with t = 1 differs from ARCFACE");

    /* all weights 0: backward leaves the gradients as they were */
    {
        float zero_w[64] = {0};
        float *ge = malloc((size_t)N * D * sizeof(float)), *gw = malloc((size_t)K * D * sizeof(float));
        for (int k = 0; k < N * D; k++) ge[k] = 0.5f;
        for (int k = 0; k < K * D; k++) gw[k] = 0.5f;
        comine_arcface_backward(&h, ge, gw, emb, weight, labels, f_mv, zero_w, N, &(comine_arcface_cfg){
            .s = 64, .m = 0.5f, .fallback = COMINE_FALLBACK_EASY, .dm = 0.2f, .t = 1.2f});
        int same = 1;
        for (int k = 0; k < N * D; k++) same &= ge[k] == 0.5f;
        for (int k = 0; k < K * D; k++) same &= gw[k] == 0.5f;
        printf("%s backward with all sample weights 0 leaves demb and dweight unchanged\n", same ? "ok  " : "FAIL");
        FX_EXPECT(same, "weight-0 backward changed the gradients");
        free(ge);
        free(gw);
    }

    /* cos_stats and correct against a direct computation from the saved cosines */
    double mt, mn, rt = 0, rn = 0;
    comine_arcface_cos_stats(&h, labels, N, &mt, &mn);
    int correct_ok = 1;
    for (int i = 0; i < N; i++) {
        int best = 0;
        for (int j = 0; j < K; j++) {
            if (h.cos[i * K + j] > h.cos[i * K + best]) best = j;
            if (j == labels[i]) rt += h.cos[i * K + j];
            else rn += h.cos[i * K + j];
        }
        correct_ok &= h.correct[i] == (best == labels[i]);
    }
    rt /= N;
    rn /= (double)N * (K - 1);
    printf("%s cos_stats: mean target %.6f (direct %.6f), mean negative %.6f (direct %.6f); correct flags %s\n",
           fabs(mt - rt) < 1e-6 && fabs(mn - rn) < 1e-6 && correct_ok ? "ok  " : "FAIL", mt, rt, mn, rn,
           correct_ok ? "match" : "differ");
    FX_EXPECT(fabs(mt - rt) < 1e-6 && fabs(mn - rn) < 1e-6, "cos_stats differ");
    FX_EXPECT(correct_ok, "correct flags differ");
    comine_arcface_free(&h);
    free(emb);
    free(weight);
}

/* K = 10,575, D = 512: directional derivative against the double evaluation, and time. */
static void test_large(void)
{
    const int N = 64, D = 512, K = 10575;
    comine_rng rng;
    comine_rng_seed(&rng, 3, COMINE_STREAM_EVAL);
    float *emb = malloc((size_t)N * D * sizeof(float)), *weight = malloc((size_t)K * D * sizeof(float));
    float *demb = calloc((size_t)N * D, sizeof(float)), *dweight = calloc((size_t)K * D, sizeof(float));
    int *labels = malloc(N * sizeof(int));
    uint8_t *forms = malloc(N);
    float *sw = malloc(N * sizeof(float)), *loss = malloc(N * sizeof(float));
    for (size_t k = 0; k < (size_t)K * D; k++) weight[k] = comine_rng_normal(&rng) * 0.05f;
    for (int i = 0; i < N; i++) {
        labels[i] = (int)comine_rng_below(&rng, K);
        forms[i] = (uint8_t)(i % 3);
        sw[i] = i % 4 == 3 ? 0.0f : 1.0f / N;
        place(emb + (size_t)i * D, weight + (size_t)labels[i] * D, -0.9 + 1.8 * comine_rng_uniform(&rng),
              1.0 + 3 * comine_rng_uniform(&rng), D, &rng);
    }
    comine_arcface_cfg cfg;
    comine_arcface_cfg_default(&cfg);
    comine_arcface h;
    comine_arcface_init(&h, comine_backend_cpu(), D, K, N);
    comine_arcface_forward(&h, emb, weight, N); /* warm-up */
    double t0 = comine_now();
    const int reps = 3;
    for (int r = 0; r < reps; r++) {
        comine_arcface_forward(&h, emb, weight, N);
        comine_arcface_loss(&h, loss, labels, forms, N, &cfg);
        memset(demb, 0, (size_t)N * D * sizeof(float));
        memset(dweight, 0, (size_t)K * D * sizeof(float));
        comine_arcface_backward(&h, demb, dweight, emb, weight, labels, forms, sw, N, &cfg);
    }
    double ms = (comine_now() - t0) / reps * 1e3;
    printf("info N=%d D=%d K=%d forward+loss+backward: %.1f ms per step (%d threads; 3 products of %.2f GFLOP)\n",
           N, D, K, ms, comine_num_threads(), 2.0 * N * K * D * 1e-9);

    double *e = to_double(emb, (size_t)N * D), *w = to_double(weight, (size_t)K * D);
    double lref_min = 1e300;
    double *lref = malloc(N * sizeof(double));
    ref_total(lref, e, w, labels, forms, sw, N, D, K, &cfg);
    float lf[64];
    for (int i = 0; i < N; i++) {
        lf[i] = (float)lref[i];
        lref_min = fmin(lref_min, lref[i]);
    }
    fx_check("K=10575 D=512 loss vs double", loss, lf, N, 1e-4, 1e-5);
    for (int dir = 0; dir < 2; dir++) {
        double *ve = malloc((size_t)N * D * sizeof(double)), *vw = malloc((size_t)K * D * sizeof(double));
        double analytic = 0;
        for (size_t k = 0; k < (size_t)N * D; k++) {
            ve[k] = comine_rng_normal(&rng) * (dir == 0);
            analytic += ve[k] * demb[k];
        }
        for (size_t k = 0; k < (size_t)K * D; k++) {
            vw[k] = comine_rng_normal(&rng) * (dir == 1);
            analytic += vw[k] * dweight[k];
        }
        const double step = 1e-5;
        for (size_t k = 0; k < (size_t)N * D; k++) e[k] += step * ve[k];
        for (size_t k = 0; k < (size_t)K * D; k++) w[k] += step * vw[k];
        double lp = ref_total(NULL, e, w, labels, forms, sw, N, D, K, &cfg);
        for (size_t k = 0; k < (size_t)N * D; k++) e[k] -= 2 * step * ve[k];
        for (size_t k = 0; k < (size_t)K * D; k++) w[k] -= 2 * step * vw[k];
        double lm = ref_total(NULL, e, w, labels, forms, sw, N, D, K, &cfg);
        for (size_t k = 0; k < (size_t)N * D; k++) e[k] += step * ve[k];
        for (size_t k = 0; k < (size_t)K * D; k++) w[k] += step * vw[k];
        float fd = (float)((lp - lm) / (2 * step)), an = (float)analytic;
        fx_check(dir == 0 ? "K=10575 D=512 <demb, v> vs fd" : "K=10575 D=512 <dweight, v> vs fd", &an, &fd, 1,
                 1e-3, 1e-3);
        free(ve);
        free(vw);
    }
    for (int i = 0; i < N; i++)
        if (sw[i] == 0.0f)
            for (int d = 0; d < D; d++) FX_EXPECT(demb[(size_t)i * D + d] == 0.0f, "weight-0 sample %d moved", i);
    comine_arcface_free(&h);
    free(e); free(w); free(lref); free(emb); free(weight); free(demb); free(dweight); free(labels); free(forms);
    free(sw); free(loss);
}

int main(void)
{
    test_fixtures();
    test_finite_differences();
    test_properties();
    test_large();
    return fx_finish("test_loss_arcface");
}
