/* test_nn_layers.c: every layer of nn.h against PyTorch (tests/fixtures/nn_layers.bin,
 * made by tests/ref/gen_nn.py): forward outputs and every gradient, per tensor with
 * |got - ref| <= atol + rtol |ref|.  Gradients are checked on top of a non-zero
 * starting value (backward accumulates); conv plans are run at two batch sizes. */
#include <stdlib.h>
#include <string.h>

#include "comine/nn.h"
#include "fixture.h"

static const comine_backend *be;

/* copy of a fixture tensor (or zeros when t is NULL) in backend memory */
static float *dev_copy(const fx_tensor *t, size_t n)
{
    float *p = comine_backend_alloc(be, n);
    if (t) comine_backend_upload(be, p, t->data, n);
    return p;
}

static float *filled(size_t n, float v)
{
    float *p = comine_backend_alloc(be, n);
    for (size_t i = 0; i < n; i++) p[i] = v;
    return p;
}

/* check got - offset against ref */
static void check_acc(const char *what, const float *got, float offset, const fx_tensor *ref, double atol, double rtol)
{
    float *d = malloc(ref->size * sizeof(float) + 4);
    for (size_t i = 0; i < ref->size; i++) d[i] = got[i] - offset;
    fx_check(what, d, ref->data, ref->size, atol, rtol);
    free(d);
}

static const fx_tensor *get(const fx_file *f, const char *prefix, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    return fx_get(f, key);
}

static void test_conv(const fx_file *f, const char *name)
{
    const fx_tensor *meta = get(f, name, "meta");
    if (!meta) return;
    int v[10];
    for (int i = 0; i < 10; i++) v[i] = (int)meta->data[i];
    int N = v[0], C = v[1], H = v[2], W = v[3], OC = v[4], K = v[5], s = v[6], p = v[7], g = v[8], bias = v[9];
    const fx_tensor *x = get(f, name, "x"), *w = get(f, name, "w"), *out = get(f, name, "out");
    const fx_tensor *dout = get(f, name, "dout"), *dx = get(f, name, "dx"), *dw = get(f, name, "dw");
    const fx_tensor *b = bias ? get(f, name, "b") : NULL, *db = bias ? get(f, name, "db") : NULL;
    if (!x || !w || !out || !dout || !dx || !dw || (bias && (!b || !db))) return;
    comine_conv2d l;
    comine_conv2d_init(&l, be, C, H, W, OC, K, K, s, p, g, bias != 0);
    FX_EXPECT((size_t)N * l.OH * l.OW * OC == out->size, "%s: output size", name);
    printf("-- %s: N=%d C=%d %dx%d -> OC=%d %dx%d, k%d s%d p%d groups %d%s\n", name, N, C, H, W, OC, l.OH, l.OW, K, s,
           p, g, bias ? " bias" : "");
    float *dx_in = dev_copy(x, x->size), *dw_w = dev_copy(w, w->size), *db_b = b ? dev_copy(b, b->size) : NULL;
    float *d_out = comine_backend_alloc(be, out->size), *d_dout = dev_copy(dout, dout->size);
    float *g_dx = filled(dx->size, 0.5f), *g_dw = filled(dw->size, -0.25f), *g_db = bias ? filled(OC, 1.0f) : NULL;
    char what[96];
    /* run a different batch size first, then the fixture's, twice: the plan cache */
    int N1 = N > 1 ? N - 1 : 1;
    comine_conv2d_forward(&l, d_out, dx_in, dw_w, db_b, N1);
    for (int rep = 0; rep < 2; rep++) comine_conv2d_forward(&l, d_out, dx_in, dw_w, db_b, N);
    snprintf(what, sizeof what, "%s forward", name);
    fx_check(what, d_out, out->data, out->size, 1e-5, 1e-4);
    comine_conv2d_backward(&l, g_dx, g_dw, g_db, d_dout, dx_in, dw_w, N);
    snprintf(what, sizeof what, "%s dinp (accumulated onto 0.5)", name);
    check_acc(what, g_dx, 0.5f, dx, 1e-5, 1e-4);
    snprintf(what, sizeof what, "%s dweight (accumulated onto -0.25)", name);
    check_acc(what, g_dw, -0.25f, dw, 1e-5, 1e-4);
    if (bias) {
        snprintf(what, sizeof what, "%s dbias (accumulated onto 1)", name);
        check_acc(what, g_db, 1.0f, db, 1e-5, 1e-4);
    }
    /* a second backward doubles the gradients (accumulation, cached backward plans) */
    comine_conv2d_backward(&l, g_dx, g_dw, NULL, d_dout, dx_in, dw_w, N);
    float *twice = malloc(dw->size * sizeof(float));
    for (size_t i = 0; i < dw->size; i++) twice[i] = 2 * dw->data[i];
    check_acc("  second backward: dweight = 2 x ref", g_dw, -0.25f, &(fx_tensor){.size = dw->size, .data = twice},
              1e-5, 1e-4);
    free(twice);
    /* N = 0 does nothing */
    comine_conv2d_forward(&l, d_out, dx_in, dw_w, db_b, 0);
    comine_conv2d_backward(&l, g_dx, g_dw, g_db, d_dout, dx_in, dw_w, 0);
    comine_conv2d_free(&l);
    comine_backend_free(be, dx_in), comine_backend_free(be, dw_w), comine_backend_free(be, db_b);
    comine_backend_free(be, d_out), comine_backend_free(be, d_dout);
    comine_backend_free(be, g_dx), comine_backend_free(be, g_dw), comine_backend_free(be, g_db);
}

static void test_bn(const fx_file *f, const char *name)
{
    const fx_tensor *x = get(f, name, "x"), *gamma = get(f, name, "gamma"), *beta = get(f, name, "beta");
    const fx_tensor *rm0 = get(f, name, "running_mean0"), *rv0 = get(f, name, "running_var0");
    const fx_tensor *out_eval = get(f, name, "out_eval"), *out = get(f, name, "out"), *dout = get(f, name, "dout");
    const fx_tensor *dx = get(f, name, "dx"), *dgamma = get(f, name, "dgamma"), *dbeta = get(f, name, "dbeta");
    const fx_tensor *rm = get(f, name, "running_mean"), *rv = get(f, name, "running_var");
    if (!x || !gamma || !beta || !rm0 || !rv0 || !out_eval || !out || !dout || !dx || !dgamma || !dbeta || !rm || !rv)
        return;
    int C = (int)gamma->size;
    size_t rows = x->size / C;
    printf("-- %s: rows=%zu C=%d\n", name, rows, C);
    float *d_x = dev_copy(x, x->size), *d_g = dev_copy(gamma, C), *d_b = dev_copy(beta, C);
    float *d_rm = dev_copy(rm0, C), *d_rv = dev_copy(rv0, C);
    float *d_out = comine_backend_alloc(be, x->size), *d_dout = dev_copy(dout, dout->size);
    float *mean = comine_backend_alloc(be, C), *rstd = comine_backend_alloc(be, C);
    char what[96];
    comine_batchnorm_forward(be, d_out, mean, rstd, d_rm, d_rv, d_x, d_g, d_b, rows, C, false, 0.1f, 1e-5f);
    snprintf(what, sizeof what, "%s eval forward", name);
    fx_check(what, d_out, out_eval->data, out_eval->size, 1e-5, 1e-4);
    comine_batchnorm_forward(be, d_out, mean, rstd, d_rm, d_rv, d_x, d_g, d_b, rows, C, true, 0.1f, 1e-5f);
    snprintf(what, sizeof what, "%s train forward", name);
    fx_check(what, d_out, out->data, out->size, 1e-5, 1e-4);
    {
        float *again = comine_backend_alloc(be, x->size);
        comine_batchnorm_apply(be, again, d_x, mean, rstd, d_g, d_b, rows, C);
        snprintf(what, sizeof what, "%s apply from the saved statistics: the training output, bit for bit", name);
        FX_EXPECT(!memcmp(again, d_out, x->size * sizeof(float)), "%s", what);
        comine_backend_free(be, again);
    }
    snprintf(what, sizeof what, "%s running_mean", name);
    fx_check(what, d_rm, rm->data, C, 1e-6, 1e-5);
    snprintf(what, sizeof what, "%s running_var (unbiased)", name);
    fx_check(what, d_rv, rv->data, C, 1e-6, 1e-5);
    float *g_dx = filled(x->size, 0.5f), *g_dg = filled(C, 0.5f), *g_db = filled(C, 0.5f);
    comine_batchnorm_backward(be, g_dx, g_dg, g_db, d_dout, d_x, mean, rstd, d_g, rows, C);
    snprintf(what, sizeof what, "%s dinp (accumulated)", name);
    check_acc(what, g_dx, 0.5f, dx, 1e-5, 1e-4);
    snprintf(what, sizeof what, "%s dgamma (accumulated)", name);
    check_acc(what, g_dg, 0.5f, dgamma, 1e-5, 1e-4);
    snprintf(what, sizeof what, "%s dbeta (accumulated)", name);
    check_acc(what, g_db, 0.5f, dbeta, 1e-5, 1e-4);
    float *ptrs[] = {d_x, d_g, d_b, d_rm, d_rv, d_out, d_dout, mean, rstd, g_dx, g_dg, g_db};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) comine_backend_free(be, ptrs[i]);
}

static void test_act(const fx_file *f)
{
    const fx_tensor *x = fx_get(f, "prelu.x"), *a = fx_get(f, "prelu.alpha"), *out = fx_get(f, "prelu.out");
    const fx_tensor *dout = fx_get(f, "prelu.dout"), *dx = fx_get(f, "prelu.dx"), *da = fx_get(f, "prelu.dalpha");
    if (x && a && out && dout && dx && da) {
        int C = (int)a->size;
        size_t rows = x->size / C;
        printf("-- prelu: rows=%zu C=%d\n", rows, C);
        float *o = comine_backend_alloc(be, x->size), *gx = filled(x->size, 0.5f), *ga = filled(C, 0.5f);
        comine_prelu_forward(be, o, x->data, a->data, rows, C);
        fx_check("prelu forward", o, out->data, out->size, 1e-6, 1e-6);
        comine_prelu_backward(be, gx, ga, dout->data, x->data, a->data, rows, C);
        check_acc("prelu dinp (accumulated)", gx, 0.5f, dx, 1e-6, 1e-5);
        check_acc("prelu dalpha (accumulated)", ga, 0.5f, da, 1e-5, 1e-5);
        comine_backend_free(be, o), comine_backend_free(be, gx), comine_backend_free(be, ga);
    }
    x = fx_get(f, "relu.x"), out = fx_get(f, "relu.out"), dout = fx_get(f, "relu.dout"), dx = fx_get(f, "relu.dx");
    if (x && out && dout && dx) {
        printf("-- relu: n=%zu\n", x->size);
        float *o = comine_backend_alloc(be, x->size), *gx = filled(x->size, 0.5f);
        comine_relu_forward(be, o, x->data, x->size);
        fx_check("relu forward", o, out->data, out->size, 0, 0);
        comine_relu_backward(be, gx, dout->data, x->data, x->size);
        check_acc("relu dinp (accumulated)", gx, 0.5f, dx, 1e-6, 1e-6);
        comine_backend_free(be, o), comine_backend_free(be, gx);
    }
}

static void test_linear(const fx_file *f)
{
    const fx_tensor *x = fx_get(f, "linear.x"), *w = fx_get(f, "linear.w"), *b = fx_get(f, "linear.b");
    const fx_tensor *out = fx_get(f, "linear.out"), *dout = fx_get(f, "linear.dout"), *dx = fx_get(f, "linear.dx");
    const fx_tensor *dw = fx_get(f, "linear.dw"), *db = fx_get(f, "linear.db");
    if (!x || !w || !b || !out || !dout || !dx || !dw || !db) return;
    int N = x->dims[0], IN = x->dims[1], OUT = w->dims[0];
    printf("-- linear: N=%d IN=%d OUT=%d\n", N, IN, OUT);
    float *o = comine_backend_alloc(be, out->size), *gx = filled(dx->size, 0.5f), *gw = filled(dw->size, 0.5f);
    float *gb = filled(OUT, 0.5f);
    comine_linear_forward(be, o, x->data, w->data, b->data, N, IN, OUT);
    fx_check("linear forward", o, out->data, out->size, 1e-5, 1e-5);
    comine_linear_backward(be, gx, gw, gb, dout->data, x->data, w->data, N, IN, OUT);
    check_acc("linear dinp (accumulated)", gx, 0.5f, dx, 1e-5, 1e-5);
    check_acc("linear dweight (accumulated)", gw, 0.5f, dw, 1e-5, 1e-5);
    check_acc("linear dbias (accumulated)", gb, 0.5f, db, 1e-5, 1e-5);
    /* N = 0 and a NULL bias are valid */
    comine_linear_forward(be, o, x->data, w->data, NULL, 0, IN, OUT);
    comine_linear_backward(be, gx, gw, gb, dout->data, x->data, w->data, 0, IN, OUT);
    comine_backend_free(be, o), comine_backend_free(be, gx), comine_backend_free(be, gw), comine_backend_free(be, gb);
}

static void test_dropout(void)
{
    enum { n = 20000 };
    float *in = comine_backend_alloc(be, n), *out = comine_backend_alloc(be, n), *dx = comine_backend_alloc(be, n);
    uint8_t *mask = malloc(n);
    comine_rng rng;
    comine_rng_seed(&rng, 7, COMINE_STREAM_DROPOUT);
    for (size_t i = 0; i < n; i++) in[i] = comine_rng_normal(&rng);
    /* p = 0 and eval: identity */
    comine_dropout_forward(be, out, mask, in, n, 0.0f, true, &rng);
    fx_check("dropout p=0 train: identity", out, in, n, 0, 0);
    comine_dropout_forward(be, out, mask, in, n, 0.5f, false, &rng);
    fx_check("dropout p=0.5 eval: identity", out, in, n, 0, 0);
    const float ps[] = {0.1f, 0.5f, 0.8f};
    for (int k = 0; k < 3; k++) {
        float p = ps[k];
        comine_dropout_forward(be, out, mask, in, n, p, true, &rng);
        size_t kept = 0, bad = 0;
        for (size_t i = 0; i < n; i++) {
            kept += mask[i];
            float want = mask[i] ? in[i] / (1.0f - p) : 0.0f;
            if (fabsf(out[i] - want) > 1e-6f * (1 + fabsf(want))) bad++;
        }
        double frac = (double)kept / n, sd = sqrt((1 - p) * p / n);
        printf("%s dropout p=%.1f: kept %.4f (expect %.4f +- %.4f), %zu values off the mask\n",
               fabs(frac - (1 - p)) < 5 * sd && !bad ? "ok  " : "FAIL", p, frac, 1 - p, 5 * sd, bad);
        if (!(fabs(frac - (1 - p)) < 5 * sd) || bad) fx_fail_count++;
        for (size_t i = 0; i < n; i++) dx[i] = 1.0f;
        comine_dropout_backward(be, dx, in, mask, n, p);
        bad = 0;
        for (size_t i = 0; i < n; i++) {
            float want = 1.0f + (mask[i] ? in[i] / (1.0f - p) : 0.0f);
            if (fabsf(dx[i] - want) > 1e-6f * (1 + fabsf(want))) bad++;
        }
        FX_EXPECT(bad == 0, "dropout p=%.1f backward: %zu values differ from 1 + mask * dout / (1 - p)", p, bad);
    }
    /* same seed, same mask */
    comine_rng r1, r2;
    comine_rng_seed(&r1, 3, COMINE_STREAM_DROPOUT);
    comine_rng_seed(&r2, 3, COMINE_STREAM_DROPOUT);
    uint8_t *mask2 = malloc(n);
    comine_dropout_forward(be, out, mask, in, n, 0.3f, true, &r1);
    comine_dropout_forward(be, dx, mask2, in, n, 0.3f, true, &r2);
    int mark = fx_fail_count;
    FX_EXPECT(!memcmp(mask, mask2, n), "dropout: the same seed gives the same mask");
    FX_SUMMARY(mark, "dropout: reproducible from the seed\n");
    free(mask2);
    free(mask);
    comine_backend_free(be, in), comine_backend_free(be, out), comine_backend_free(be, dx);
}

static void test_add(void)
{
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {0.5f, -1, 2, 0, 1}, o[5], want[5] = {1.5f, 1, 5, 4, 6};
    comine_add_forward(be, o, a, b, 5);
    fx_check("add forward", o, want, 5, 0, 0);
    comine_accumulate(be, o, a, 5);
    float want2[5] = {2.5f, 3, 8, 8, 11};
    fx_check("accumulate", o, want2, 5, 0, 0);
    comine_add_forward(be, o, a, b, 0);
}

/* zero sizes, one row, odd channel counts: valid and finite */
static void test_edge_sizes(void)
{
    float x[7] = {1, -2, 3, 0.5f, -1, 2, 9}, out[7], mean[7], rstd[7], rm[7] = {0}, rv[7] = {1, 1, 1, 1, 1, 1, 1};
    float dx[7] = {0}, dg[7] = {0}, db[7] = {0}, g[7] = {1, 1, 1, 1, 1, 1, 1}, b[7] = {0};
    int mark = fx_fail_count;
    comine_batchnorm_forward(be, out, mean, rstd, rm, rv, x, g, b, 0, 7, true, 0.1f, 1e-5f);
    comine_batchnorm_forward(be, out, mean, rstd, rm, rv, x, g, b, 1, 7, true, 0.1f, 1e-5f);
    comine_batchnorm_backward(be, dx, dg, db, x, x, mean, rstd, g, 1, 7);
    int finite = 1;
    for (int c = 0; c < 7; c++) finite &= isfinite(out[c]) && isfinite(rv[c]) && isfinite(dx[c]) && fabsf(out[c]) < 1e-3f;
    FX_EXPECT(finite, "batchnorm with one row: finite, normalised to ~0");
    comine_prelu_forward(be, out, x, g, 0, 7);
    comine_prelu_backward(be, dx, dg, x, x, g, 0, 7);
    comine_relu_forward(be, out, x, 0);
    comine_dropout_forward(be, out, NULL, x, 0, 0.5f, false, NULL);
    /* a conv with N = 1 and odd sizes: 5 channels, 7x3, stride 2 */
    comine_conv2d l;
    comine_conv2d_init(&l, be, 5, 7, 3, 3, 3, 3, 2, 1, 1, true);
    float *in = filled(7 * 3 * 5, 1.0f), *w = filled(3 * 5 * 9, 0.1f), *bias = filled(3, 0.5f);
    float *o = filled((size_t)l.OH * l.OW * 3, 0.0f);
    comine_conv2d_forward(&l, o, in, w, bias, 1);
    /* output (1, 1) sees 3 rows x 2 columns (the third is padding) of 5 channels: 30 * 0.1 + 0.5 */
    float centre = o[((size_t)1 * l.OW + 1) * 3];
    FX_EXPECT(l.OH == 4 && l.OW == 2 && fabsf(centre - 3.5f) < 1e-5f, "odd conv: OH %d OW %d centre %g", l.OH, l.OW,
              centre);
    FX_SUMMARY(mark, "edge sizes: rows 0 and 1 for batch norm, n = 0 activations, N = 1 conv 7x3 -> %dx%d\n", l.OH,
               l.OW);
    comine_conv2d_free(&l);
    comine_backend_free(be, in), comine_backend_free(be, w), comine_backend_free(be, bias), comine_backend_free(be, o);
}

int main(void)
{
    be = comine_backend_cpu();
    printf("backend: %s, %d thread(s)\n", comine_backend_name(be), comine_num_threads());
    fx_file f;
    if (fx_load(&f, fx_path("nn_layers.bin"))) return 1;
    const char *convs[] = {"conv3x3_s1", "conv3x3_s2_bias", "conv1x1_s2", "dw3x3", "gdc7x7", "grouped3x3"};
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) test_conv(&f, convs[i]);
    test_bn(&f, "bn2d");
    test_bn(&f, "bn1d");
    test_act(&f);
    test_linear(&f);
    test_dropout();
    test_add();
    test_edge_sizes();
    fx_free(&f);
    return fx_finish("test_nn_layers");
}
