/* test_eval_identify.c: TAR at any FAR, the ROC curve and the identification scores against
 * brute-force computations written here:
 *  - comine_tar_at_fars (and its top-k form with exactly the kept scores it needs) against
 *    comine_tar_at_far and a direct count on random scores with many ties;
 *  - comine_roc_curve: every point recounted from its threshold; the ROC file written, read
 *    back, and a bad one refused naming the file and line;
 *  - comine_identify_scores on small-integer embeddings (every dot product exact in float, so
 *    sgemm's order of summation cannot matter, and ties are frequent) against the full probe x
 *    gallery matrix: rank-1, rank-5 and TAR at four FARs, over several block sizes and a
 *    gallery wider than one sgemm block of columns;
 *  - the FAR list parser and the key text (tar_far_1e-4). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/eval.h"
#include "fixture.h"

static uint64_t rng_state = 88172645463325252ULL;
static uint32_t next_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static int cmp_desc(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a < b) - (a > b);
}

/* The rule of eval.h, written out: k = floor(far * negatives), t = the (k+1)-th largest
 * negative, TAR = positives above t; NAN when k < 1. */
static double brute_tar(const double *pos, long n_pos, const double *neg, long n_neg, double far)
{
    double *s = malloc((size_t)n_neg * sizeof(double));
    memcpy(s, neg, (size_t)n_neg * sizeof(double));
    qsort(s, (size_t)n_neg, sizeof(double), cmp_desc);
    long k = (long)floor(far * (double)n_neg);
    double r = NAN;
    if (k >= 1 && n_pos > 0) {
        double t = k < n_neg ? s[k] : -INFINITY;
        long hit = 0;
        for (long i = 0; i < n_pos; i++) hit += pos[i] > t;
        r = (double)hit / n_pos;
    }
    free(s);
    return r;
}

static bool same_value(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

static void test_tar_at_fars(void)
{
    int mark = fx_fail_count;
    enum { N = 20000 };
    float *s = malloc(N * sizeof(float));
    uint8_t *same = malloc(N);
    double *pos = malloc(N * sizeof(double)), *neg = malloc(N * sizeof(double));
    long np = 0, nn = 0;
    for (int i = 0; i < N; i++) {
        same[i] = next_u32() % 10 == 0;
        /* scores on a grid of 200 values: many ties */
        s[i] = (float)((int)(next_u32() % 200) + (same[i] ? 60 : 0)) / 256.0f;
        if (same[i]) pos[np++] = s[i];
        else neg[nn++] = s[i];
    }
    const double fars[] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5};
    const int nf = (int)(sizeof fars / sizeof fars[0]);
    double tar[16];
    comine_tar_at_fars(tar, fars, nf, s, same, N);
    for (int f = 0; f < nf; f++) {
        double one = comine_tar_at_far(s, same, N, fars[f]), ref = brute_tar(pos, np, neg, nn, fars[f]);
        FX_EXPECT(same_value(tar[f], ref) && same_value(one, ref), "FAR %g: tar_at_fars %.9g, tar_at_far %.9g, brute "
                  "force %.9g", fars[f], tar[f], one, ref);
    }
    /* the top-k form, given only the scores it says it needs */
    float *negf = malloc((size_t)nn * sizeof(float)), *posf = malloc((size_t)np * sizeof(float));
    for (long i = 0; i < nn; i++) negf[i] = (float)neg[i];
    for (long i = 0; i < np; i++) posf[i] = (float)pos[i];
    double *sorted = malloc((size_t)nn * sizeof(double));
    memcpy(sorted, neg, (size_t)nn * sizeof(double));
    qsort(sorted, (size_t)nn, sizeof(double), cmp_desc);
    for (long i = 0; i < nn; i++) negf[i] = (float)sorted[i];
    int64_t need = comine_far_top_needed(0.01, nn);
    double top[16];
    comine_tar_at_fars_top(top, fars, 5, posf, np, negf, need, nn);
    for (int f = 0; f < 5; f++)
        FX_EXPECT(same_value(top[f], tar[f]), "top-%lld form at FAR %g: %.9g, whole: %.9g", (long long)need, fars[f],
                  top[f], tar[f]);
    comine_tar_at_fars_top(top, fars + 5, 1, posf, np, negf, need, nn);
    FX_EXPECT(isnan(top[0]), "FAR 0.1 beyond the %lld kept scores gives %g, not NAN", (long long)need, top[0]);
    FX_SUMMARY(mark, "TAR at 7 FARs on %d scores (%ld positives, 200 distinct values): brute force, tar_at_far and "
               "the top-k form agree\n", N, np);
    free(s), free(same), free(pos), free(neg), free(negf), free(posf), free(sorted);
}

static char tmp_dir[256];

static const char *tmp_file(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmp_dir, name);
    return buf;
}

static void test_roc(void)
{
    char roc_path[512], bad_path[512];
    tmp_file(roc_path, sizeof roc_path, "roc.tsv");
    tmp_file(bad_path, sizeof bad_path, "bad.tsv");
    int mark = fx_fail_count;
    enum { N = 3000 };
    float s[N];
    uint8_t same[N];
    for (int i = 0; i < N; i++) {
        same[i] = next_u32() % 2;
        s[i] = (float)((int)(next_u32() % 100) + (same[i] ? 30 : 0)) / 128.0f;
    }
    comine_roc_point *roc;
    int n = comine_roc_curve(&roc, s, same, N);
    int n_pos = 0;
    for (int i = 0; i < N; i++) n_pos += same[i];
    FX_EXPECT(n > 2 && roc[0].far == 0 && roc[0].tar == 0 && roc[n - 1].far == 1 && roc[n - 1].tar == 1,
              "ROC ends: %d points", n);
    int bad = 0;
    for (int p = 0; p < n; p++) {
        int tp = 0, fp = 0;
        for (int i = 0; i < N; i++)
            if (s[i] > roc[p].threshold) (same[i] ? tp++ : fp++);
        if (roc[p].far != (double)fp / (N - n_pos) || roc[p].tar != (double)tp / n_pos) bad++;
        if (p && !(roc[p].threshold < roc[p - 1].threshold)) bad++;
    }
    FX_EXPECT(bad == 0, "%d ROC points disagree with a recount at their threshold", bad);
    FX_EXPECT(comine_roc_write(roc_path, roc, n) == COMINE_OK, "roc write: %s", comine_last_error());
    comine_roc_point *back = NULL;
    int nb = 0;
    FX_EXPECT(comine_roc_load(&back, &nb, roc_path) == COMINE_OK, "roc load: %s",
              comine_last_error());
    double max_err = 0;
    for (int p = 0; p < nb && nb == n; p++)
        max_err = fmax(max_err, fabs(back[p].far - roc[p].far) + fabs(back[p].tar - roc[p].tar));
    FX_EXPECT(nb == n && max_err < 1e-8, "ROC file round trip: %d of %d points, max error %g", nb, n, max_err);
    free(back);
    FILE *fp = fopen(bad_path, "w");
    FX_EXPECT(fp, "cannot write %s", bad_path);
    if (!fp) return;
    fprintf(fp, "threshold\tfar\ttar\n0.5\t0.1\t0.9\n0.4\t1.5\t1\n");
    fclose(fp);
    comine_status st = comine_roc_load(&back, &nb, bad_path);
    FX_EXPECT(st != COMINE_OK && strstr(comine_last_error(), "bad.tsv:3"),
              "a FAR of 1.5 on line 3 is refused naming file:line (got: %s)", st ? comine_last_error() : "accepted");
    FX_SUMMARY(mark, "ROC: %d points recounted, file round trip, bad file refused\n", n);
    free(roc);
}

static void test_identify_scores(int n_probes, int n_gallery, int dim, int block)
{
    int mark = fx_fail_count;
    float *P = malloc((size_t)n_probes * dim * sizeof(float)), *G = malloc((size_t)n_gallery * dim * sizeof(float));
    int *own = malloc((size_t)n_probes * sizeof(int));
    for (int i = 0; i < n_gallery * dim; i++) G[i] = (float)((int)(next_u32() % 7) - 3);
    for (int i = 0; i < n_probes; i++) {
        own[i] = (int)(next_u32() % (unsigned)(n_gallery < 50 ? n_gallery : 50));
        for (int d = 0; d < dim; d++)  /* near its own gallery row, often tied with others */
            P[(size_t)i * dim + d] = G[(size_t)own[i] * dim + d] + (float)((int)(next_u32() % 3) - 1);
    }
    const double fars[] = {1e-5, 1e-4, 1e-3, 1e-2};
    comine_identify_result res;
    memset(&res, 0, sizeof res);
    comine_status st = comine_identify_scores(&res, P, own, n_probes, G, n_gallery, dim, fars, 4, block, NULL, NULL);
    FX_EXPECT(st == COMINE_OK, "identify_scores: %s", st ? comine_last_error() : "");
    /* brute force over the whole matrix */
    long n_imp = (long)n_probes * (n_gallery - 1);
    double *gen = malloc((size_t)n_probes * sizeof(double)), *imp = malloc((size_t)n_imp * sizeof(double));
    long m = 0;
    int hit1 = 0, hit5 = 0;
    for (int i = 0; i < n_probes; i++) {
        int above = 0;
        double g = 0;
        for (int d = 0; d < dim; d++) g += (double)P[(size_t)i * dim + d] * G[(size_t)own[i] * dim + d];
        gen[i] = g;
        for (int j = 0; j < n_gallery; j++) {
            if (j == own[i]) continue;
            double s = 0;
            for (int d = 0; d < dim; d++) s += (double)P[(size_t)i * dim + d] * G[(size_t)j * dim + d];
            imp[m++] = s;
            above += s >= g;  /* a tie is a miss */
        }
        hit1 += above < 1;
        hit5 += above < 5;
    }
    FX_EXPECT(res.rank1 == (double)hit1 / n_probes && res.rank5 == (double)hit5 / n_probes,
              "rank-1 %.6f (brute force %.6f), rank-5 %.6f (%.6f)", res.rank1, (double)hit1 / n_probes, res.rank5,
              (double)hit5 / n_probes);
    FX_EXPECT(res.impostor_pairs == n_imp && res.genuine_pairs == n_probes && res.probes == n_probes,
              "pair counts %lld / %lld", (long long)res.genuine_pairs, (long long)res.impostor_pairs);
    for (int f = 0; f < 4; f++) {
        double ref = brute_tar(gen, n_probes, imp, n_imp, fars[f]);
        FX_EXPECT(same_value(res.tar[f], ref), "TAR@FAR=%g: %.9g, brute force %.9g", fars[f], res.tar[f], ref);
    }
    FX_SUMMARY(mark, "identification %d probes x %d gallery (dim %d, %d probes per block): rank-1 %.4f rank-5 %.4f "
               "TAR@1e-3 %.4f TAR@1e-2 %.4f = brute force\n", n_probes, n_gallery, dim, block, res.rank1, res.rank5,
               res.tar[2], res.tar[3]);
    free(P), free(G), free(own), free(gen), free(imp);
}

static void test_far_text(void)
{
    int mark = fx_fail_count;
    const double v[] = {1e-6, 1e-4, 1e-2, 2.5e-3, 0.5, 3e-5};
    const char *want[] = {"1e-6", "1e-4", "1e-2", "2.5e-3", "5e-1", "3e-5"};
    for (int i = 0; i < 6; i++) {
        char buf[32];
        comine_far_text(buf, sizeof buf, v[i]);
        FX_EXPECT(!strcmp(buf, want[i]), "far text of %g: '%s', want '%s'", v[i], buf, want[i]);
    }
    double fars[COMINE_MAX_FARS];
    int n;
    FX_EXPECT(comine_far_list_parse(fars, &n, "1e-6,1e-5,1e-4,1e-5", "--far") == COMINE_OK && n == 3 &&
              fars[2] == 1e-4, "parse 1e-6,1e-5,1e-4,1e-5: %d FARs", n);
    FX_EXPECT(comine_far_list_parse(fars, &n, "1e-3,2", "--far") != COMINE_OK && strstr(comine_last_error(), "'2'"),
              "FAR 2 refused");
    FX_EXPECT(comine_far_list_parse(fars, &n, "1e-3,,1e-2", "--far") != COMINE_OK, "an empty item refused");
    FX_EXPECT(comine_far_list_parse(fars, &n, "abc", "--far") != COMINE_OK, "'abc' refused");
    FX_SUMMARY(mark, "FAR list parsing and key text\n");
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "%s/test_eval_identify.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        printf("FAIL cannot make a temporary folder\n");
        return 1;
    }
    test_far_text();
    test_tar_at_fars();
    test_roc();
    test_identify_scores(40, 30, 3, 7);
    test_identify_scores(97, 5000, 12, 16);
    test_identify_scores(200, 4500, 2, 0);
    char path[512];
    remove(tmp_file(path, sizeof path, "roc.tsv"));
    remove(tmp_file(path, sizeof path, "bad.tsv"));
    rmdir(tmp_dir);
    return fx_finish("test_eval_identify");
}
