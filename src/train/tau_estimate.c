/* tau_estimate.c: the noise-rate estimators of comine/estimate.h: two-component Gaussian and
 * Beta mixtures fitted by EM, the mirror of the clean mode, the share placed outside the label
 * by every peer, and the rule that picks one.  Everything is in double precision over the
 * per-sample values; memory is the values plus one array of responsibilities. */
#include "comine/estimate.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "comine/run_heads.h"

#define EM_MAX_ITER 500
#define EM_TOL 1e-9
#define SD_FLOOR 1e-3
#define BETA_EPS 1e-4

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of sorted v (n >= 1), linear between order statistics. */
static double quantile_sorted(const double *v, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)pos;
    if (i >= n - 1) return v[n - 1];
    return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

static double *sorted_copy(const double *x, int n)
{
    double *v = comine_malloc(sizeof(double) * (size_t)n);
    memcpy(v, x, sizeof(double) * (size_t)n);
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return v;
}

/* Component 0 the one of smaller mean. */
static void order_low_first(comine_mixture2 *m)
{
    if (m->mean[0] <= m->mean[1]) return;
    double t;
#define SWAP(f) (t = m->f[0], m->f[0] = m->f[1], m->f[1] = t)
    SWAP(weight);
    SWAP(mean);
    SWAP(sd);
    SWAP(alpha);
    SWAP(beta);
#undef SWAP
}

/* ---- Gaussian mixture ------------------------------------------------------------------ */

static double log_normal(double x, double mu, double sd)
{
    double z = (x - mu) / sd;
    return -0.5 * z * z - log(sd) - 0.5 * log(2 * M_PI);
}

comine_status comine_mixture_gauss2(comine_mixture2 *m, const double *x, int n)
{
    if (n < 4) return comine_fail(COMINE_ERR_ARG, "noise-rate mixture: %d values (need at least 4)", n);
    memset(m, 0, sizeof *m);
    double *v = sorted_copy(x, n);
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    double sd0 = sqrt(var / n) / 2;
    if (sd0 < SD_FLOOR) sd0 = SD_FLOOR;
    m->mean[0] = quantile_sorted(v, n, 0.1);
    m->mean[1] = quantile_sorted(v, n, 0.9);
    free(v);
    m->sd[0] = m->sd[1] = sd0;
    m->weight[0] = m->weight[1] = 0.5;
    double *r = comine_malloc(sizeof(double) * (size_t)n); /* responsibility of component 0 */
    double prev = -INFINITY;
    int it;
    for (it = 0; it < EM_MAX_ITER; it++) {
        double ll = 0;
        for (int i = 0; i < n; i++) {
            double l0 = log(m->weight[0]) + log_normal(x[i], m->mean[0], m->sd[0]);
            double l1 = log(m->weight[1]) + log_normal(x[i], m->mean[1], m->sd[1]);
            double mx = l0 > l1 ? l0 : l1;
            double s = exp(l0 - mx) + exp(l1 - mx);
            r[i] = exp(l0 - mx) / s;
            ll += mx + log(s);
        }
        m->log_likelihood = ll;
        if (ll - prev < EM_TOL * n) break;
        prev = ll;
        double n0 = 0, s0 = 0, s1 = 0;
        for (int i = 0; i < n; i++) {
            n0 += r[i];
            s0 += r[i] * x[i];
            s1 += (1 - r[i]) * x[i];
        }
        double n1 = n - n0;
        if (n0 < 1e-9 || n1 < 1e-9) break; /* one component took everything */
        m->mean[0] = s0 / n0;
        m->mean[1] = s1 / n1;
        double q0 = 0, q1 = 0;
        for (int i = 0; i < n; i++) {
            q0 += r[i] * (x[i] - m->mean[0]) * (x[i] - m->mean[0]);
            q1 += (1 - r[i]) * (x[i] - m->mean[1]) * (x[i] - m->mean[1]);
        }
        m->sd[0] = fmax(sqrt(q0 / n0), SD_FLOOR);
        m->sd[1] = fmax(sqrt(q1 / n1), SD_FLOOR);
        m->weight[0] = n0 / n;
        m->weight[1] = n1 / n;
    }
    free(r);
    m->iterations = it;
    m->alpha[0] = m->alpha[1] = m->beta[0] = m->beta[1] = NAN;
    order_low_first(m);
    return COMINE_OK;
}

/* ---- Beta mixture ---------------------------------------------------------------------- */

static double log_beta_pdf(double u, double a, double b)
{
    return (a - 1) * log(u) + (b - 1) * log1p(-u) - (lgamma(a) + lgamma(b) - lgamma(a + b));
}

/* Shapes from a mean and variance on (0, 1); the variance is kept below mean (1 - mean). */
static void beta_moments(double mean, double var, double *a, double *b)
{
    double cap = mean * (1 - mean);
    if (var > 0.99 * cap) var = 0.99 * cap;
    if (var < 1e-8) var = 1e-8;
    double f = cap / var - 1;
    *a = mean * f;
    *b = (1 - mean) * f;
}

comine_status comine_mixture_beta2(comine_mixture2 *m, const double *x, int n)
{
    if (n < 4) return comine_fail(COMINE_ERR_ARG, "noise-rate Beta mixture: %d values (need at least 4)", n);
    memset(m, 0, sizeof *m);
    double *u = comine_malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) {
        double t = (x[i] + 1) / 2;
        u[i] = t < BETA_EPS ? BETA_EPS : t > 1 - BETA_EPS ? 1 - BETA_EPS : t;
    }
    double *v = sorted_copy(u, n);
    double split = quantile_sorted(v, n, 0.3);
    free(v);
    double *r = comine_malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++) r[i] = u[i] < split ? 1.0 : 0.0;
    double prev = -INFINITY;
    int it;
    for (it = 0; it < EM_MAX_ITER; it++) {
        /* M-step from the responsibilities */
        double n0 = 0, s0 = 0, s1 = 0;
        for (int i = 0; i < n; i++) {
            n0 += r[i];
            s0 += r[i] * u[i];
            s1 += (1 - r[i]) * u[i];
        }
        double n1 = n - n0;
        if (n0 < 1e-9 || n1 < 1e-9) break;
        double mu0 = s0 / n0, mu1 = s1 / n1, q0 = 0, q1 = 0;
        for (int i = 0; i < n; i++) {
            q0 += r[i] * (u[i] - mu0) * (u[i] - mu0);
            q1 += (1 - r[i]) * (u[i] - mu1) * (u[i] - mu1);
        }
        beta_moments(mu0, q0 / n0, &m->alpha[0], &m->beta[0]);
        beta_moments(mu1, q1 / n1, &m->alpha[1], &m->beta[1]);
        m->weight[0] = n0 / n;
        m->weight[1] = n1 / n;
        m->mean[0] = 2 * mu0 - 1;
        m->mean[1] = 2 * mu1 - 1;
        m->sd[0] = 2 * sqrt(q0 / n0);
        m->sd[1] = 2 * sqrt(q1 / n1);
        /* E-step */
        double ll = 0;
        for (int i = 0; i < n; i++) {
            double l0 = log(m->weight[0]) + log_beta_pdf(u[i], m->alpha[0], m->beta[0]);
            double l1 = log(m->weight[1]) + log_beta_pdf(u[i], m->alpha[1], m->beta[1]);
            double mx = l0 > l1 ? l0 : l1;
            double s = exp(l0 - mx) + exp(l1 - mx);
            r[i] = exp(l0 - mx) / s;
            ll += mx + log(s) - log(2.0); /* density on x's scale */
        }
        m->log_likelihood = ll;
        if (ll - prev < EM_TOL * n) break;
        prev = ll;
    }
    m->iterations = it;
    free(r);
    free(u);
    order_low_first(m);
    return COMINE_OK;
}

/* ---- mirror of the clean mode -------------------------------------------------------- */

double comine_tau_mirror(const double *x, int n, double *mode_out)
{
    if (mode_out) *mode_out = NAN;
    if (n < 2) return NAN;
    double *v = sorted_copy(x, n);
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += v[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (v[i] - mean) * (v[i] - mean);
    double sd = sqrt(var / (n - 1));
    double iqr = quantile_sorted(v, n, 0.75) - quantile_sorted(v, n, 0.25);
    double spread = iqr > 0 && iqr / 1.349 < sd ? iqr / 1.349 : sd;
    double h = 0.9 * spread * pow(n, -0.2); /* Silverman's rule */
    if (!(h > 0)) {
        free(v);
        if (mode_out) *mode_out = mean;
        return 0.0;
    }
    /* density on a grid of 0.001 over the data's range; kernel cut at 5 h (v is sorted) */
    double lo = v[0], hi = v[n - 1], best = -1, mode = lo;
    int first = 0;
    for (double g = lo; g <= hi + 1e-12; g += 0.001) {
        while (first < n && v[first] < g - 5 * h) first++;
        double d = 0;
        for (int i = first; i < n && v[i] <= g + 5 * h; i++) {
            double z = (v[i] - g) / h;
            d += exp(-0.5 * z * z);
        }
        if (d > best) {
            best = d;
            mode = g;
        }
    }
    int above = 0, at = 0;
    for (int i = 0; i < n; i++) {
        above += v[i] > mode;
        at += v[i] == mode;
    }
    free(v);
    if (mode_out) *mode_out = mode;
    double tau = 1 - 2 * (above + 0.5 * at) / n;
    return tau < 0 ? 0 : tau > 1 ? 1 : tau;
}

/* ---- the estimate ---------------------------------------------------------------------- */

const char *comine_tau_method_name(comine_tau_method m)
{
    switch (m) {
    case COMINE_TAU_MIXTURE: return "mixture";
    case COMINE_TAU_BETA: return "beta";
    case COMINE_TAU_MIRROR: return "mirror";
    case COMINE_TAU_OUTSIDE: return "outside";
    case COMINE_TAU_RANK: return "rank";
    case COMINE_TAU_CROSSFIT: return "crossfit";
    }
    return "?";
}

comine_status comine_estimate_tau(comine_tau_estimate *e, const float *cos, int n, int n_peers,
                                  const uint8_t *outside)
{
    memset(e, 0, sizeof *e);
    e->tau = e->mixture = e->beta = e->mirror = e->outside = e->mode = NAN;
    if (n_peers != 1 && n_peers != 2)
        return comine_fail(COMINE_ERR_ARG, "noise-rate estimate: %d peers (1 or 2)", n_peers);
    double *x = comine_malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    int m = 0, out_all = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        bool seen = true, out = true;
        for (int k = 0; k < n_peers; k++) {
            float c = cos[2 * (size_t)i + k];
            if (!isfinite(c)) seen = false;
            s += c;
            if (outside && !outside[2 * (size_t)i + k]) out = false;
        }
        if (!seen) continue;
        x[m++] = s / n_peers;
        out_all += out;
    }
    e->n = m;
    e->n_peers = n_peers;
    if (m < 4) {
        free(x);
        return comine_fail(COMINE_ERR_ARG, "noise-rate estimate: %d samples with a cosine under every peer "
                           "(need at least 4)", m);
    }
    comine_status st = comine_mixture_gauss2(&e->gauss, x, m);
    if (st == COMINE_OK) st = comine_mixture_beta2(&e->beta_fit, x, m);
    if (st == COMINE_OK) {
        e->mixture = e->gauss.weight[0];
        e->beta = e->beta_fit.weight[0];
        e->mirror = comine_tau_mirror(x, m, &e->mode);
        if (outside) e->outside = (double)out_all / m;
        /* the rule (docs/NOISE_RATE.md): the Beta mixture, or the smaller of it and the outside share when the flags are known.  Each
         * fails by counting clean samples as noisy (the clean mode's lower tail split off; clean
         * samples the peers have not learnt yet), so the smaller is the less contaminated. */
        bool use_outside = outside && e->outside < e->beta;
        e->method = use_outside ? COMINE_TAU_OUTSIDE : COMINE_TAU_BETA;
        double t = use_outside ? e->outside : e->beta;
        e->tau = t < 0 ? 0 : t > 0.95 ? 0.95 : t;
    }
    free(x);
    return st;
}

/* ---- the peers of a checkpoint ----------------------------------------------------------- */

/* The checkpoint's layout (src/train/checkpoint.c, docs/FORMATS.md): the header, then per
 * peer (from run_heads' peers_at): model record, f32 momentum[num_params], f32 head[K S D],
 * f32 head momentum[K S D], u64 rng[4]; then the per-sample arrays and the CRC. */

comine_status comine_run_peer_models_load(comine_model **models, int *n_peers, const char *path,
                                          const comine_backend *be, int max_batch)
{
    models[0] = models[1] = NULL;
    *n_peers = 0;
    comine_run_heads h;
    comine_status st = comine_run_heads_load(&h, path); /* checksum, version, sizes */
    if (st != COMINE_OK) return st;
    int peers = h.n_peers;
    size_t kd = (size_t)h.K * h.subcenters * h.D;
    int64_t peers_at = h.peers_at;
    comine_run_heads_free(&h);
    FILE *fp = fopen(path, "rb");
    if (!fp) return comine_fail(COMINE_ERR_IO, "%s: cannot open", path);
    bool ok = fseeko(fp, (off_t)peers_at, SEEK_SET) == 0;
    for (int k = 0; ok && k < peers && st == COMINE_OK; k++) {
        st = comine_model_read(&models[k], fp, path, be, max_batch);
        if (st != COMINE_OK) break;
        off_t skip = (off_t)((comine_model_num_params(models[k]) + 2 * kd) * sizeof(float) + 4 * 8);
        ok = fseeko(fp, skip, SEEK_CUR) == 0;
    }
    fclose(fp);
    if (st == COMINE_OK && !ok) st = comine_fail(COMINE_ERR_FORMAT, "%s: cannot seek past peer records", path);
    if (st != COMINE_OK) {
        for (int k = 0; k < 2; k++)
            if (models[k]) comine_model_free(models[k]);
        models[0] = models[1] = NULL;
        return st;
    }
    *n_peers = peers;
    return COMINE_OK;
}
