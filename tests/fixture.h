/* fixture.h: read the named-tensor fixture files written by tests/ref/fixture.py, and the
 * comparison and finite-difference helpers every numeric test uses; the checks' counts and
 * the exit status (1 when a check failed; 77, which CTest shows as skipped, when none failed
 * but a part could not run for want of a dependency; else 0).  Header-only. */
#ifndef COMINE_TESTS_FIXTURE_H
#define COMINE_TESTS_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx_tensor {
    char name[128];
    int ndim;
    int dims[8];
    size_t size;
    float *data;
} fx_tensor;

typedef struct fx_file {
    int count;
    fx_tensor *t;
} fx_file;

static int fx_fail_count = 0;
static int fx_skip_count = 0;

/* The exit status of a test that could not run a part for want of a dependency; CMakeLists.txt
 * gives it to CTest as SKIP_RETURN_CODE. */
#define FX_SKIPPED 77

static inline int fx_load(fx_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "FAIL: cannot open fixture %s (run tests/ref/gen_fixtures.py)\n", path);
        return -1;
    }
    char magic[4];
    uint32_t ver, cnt;
    if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "CMFX", 4) || fread(&ver, 4, 1, fp) != 1 ||
        fread(&cnt, 4, 1, fp) != 1 || ver != 1) {
        fprintf(stderr, "FAIL: %s is not a fixture file\n", path);
        fclose(fp);
        return -1;
    }
    f->count = (int)cnt;
    f->t = calloc(cnt ? cnt : 1, sizeof(fx_tensor));
    for (uint32_t i = 0; i < cnt; i++) {
        fx_tensor *t = &f->t[i];
        uint32_t nl, nd;
        if (fread(&nl, 4, 1, fp) != 1 || nl >= sizeof t->name || fread(t->name, 1, nl, fp) != nl ||
            fread(&nd, 4, 1, fp) != 1 || nd > 8) goto bad;
        t->name[nl] = 0;
        t->ndim = (int)nd;
        t->size = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint32_t v;
            if (fread(&v, 4, 1, fp) != 1) goto bad;
            t->dims[d] = (int)v;
            t->size *= v;
        }
        t->data = malloc(t->size * sizeof(float) + 64);
        if (fread(t->data, sizeof(float), t->size, fp) != t->size) goto bad;
    }
    fclose(fp);
    return 0;
bad:
    fprintf(stderr, "FAIL: %s is truncated or corrupt\n", path);
    fclose(fp);
    return -1;
}

static inline const fx_tensor *fx_get(const fx_file *f, const char *name)
{
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    fprintf(stderr, "FAIL: fixture has no tensor '%s'\n", name);
    fx_fail_count++;
    return NULL;
}

static inline void fx_free(fx_file *f)
{
    for (int i = 0; i < f->count; i++) free(f->t[i].data);
    free(f->t);
    memset(f, 0, sizeof *f);
}

/* Path of a fixture under tests/fixtures/. */
static inline const char *fx_path(const char *file)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/tests/fixtures/%s", COMINE_SOURCE_DIR, file);
    return buf;
}

/* Compare got against ref with |got - ref| <= atol + rtol * |ref| elementwise; prints the
 * max error and counts a failure.  Returns 1 when it holds. */
static inline int fx_check(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol)
{
    double max_abs = 0, max_excess = -1e30;
    size_t worst = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        double lim = atol + rtol * fabs((double)ref[i]);
        if (!(d <= lim)) ok = 0; /* catches NaN */
        if (d > max_abs || d != d) max_abs = d;
        if (d - lim > max_excess || d != d) { max_excess = d - lim; worst = i; }
    }
    printf("%s %-44s n=%-8zu max|err|=%.3g (atol %.1g rtol %.1g)%s\n", ok ? "ok  " : "FAIL", what, n, max_abs, atol,
           rtol, ok ? "" : "");
    if (!ok) {
        printf("     worst at %zu: got %.9g ref %.9g\n", worst, got[worst], ref[worst]);
        fx_fail_count++;
    }
    return ok;
}

/* Check a condition and count a failure. */
#define FX_EXPECT(cond, ...) \
    do { \
        if (!(cond)) { printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); fx_fail_count++; } \
    } while (0)

/* A line that sums up the checks made since `mark` (the value of fx_fail_count before them):
 * "ok   ..." when none of them failed, else "FAIL ..." (the failures are already counted). */
#define FX_SUMMARY(mark, ...) \
    do { printf("%s ", fx_fail_count == (mark) ? "ok  " : "FAIL"); printf(__VA_ARGS__); } while (0)

/* A part of the test that cannot run here (a missing dependency): says why and counts it. */
#define FX_SKIP(...) \
    do { printf("skipped: "); printf(__VA_ARGS__); printf("\n"); fx_skip_count++; } while (0)

/* Exit code for main(): prints a summary of the checks; 1 when one failed, FX_SKIPPED when
 * none failed but a part was skipped, else 0. */
static inline int fx_finish(const char *test)
{
    if (fx_fail_count) {
        printf("%s: %d check(s) FAILED\n", test, fx_fail_count);
        return 1;
    }
    if (fx_skip_count) {
        printf("%s: the checks that ran passed; %d part(s) skipped (see above)\n", test, fx_skip_count);
        return FX_SKIPPED;
    }
    printf("%s: all checks passed\n", test);
    return 0;
}

#endif
