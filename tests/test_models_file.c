/* test_models_file.c: the model table and file format.
 * - parameter counts and FLOPs of iresnet18/34/50/100 and MobileFaceNet at full width equal
 *   PyTorch's (numbers printed by tests/ref/gen_models.py), the table is contiguous and
 *   the fixed embedding BN weight stays out of the trainable parameters;
 * - seeded init: same seed, same bits; statistics of the Kaiming-normal convolutions;
 * - save / load round trip: bit-identical parameters, buffers and embeddings; two records
 *   embedded in one stream (checkpoints) read back;
 * - every corruption (truncation at many points, a flipped byte in each part, wrong magic,
 *   wrong version, unknown architecture, table mismatch, trailing bytes) is an error with a
 *   message naming the file, never a crash. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "comine/model.h"
#include "fixture.h"

static const struct {
    const char *name;
    float width;
    int input;
    size_t all, trainable; /* torch: sum of numel over parameters() / those with requires_grad */
    double flops;
} expected[] = {
    {"iresnet18", 1.0f, 112, 24025600, 24025088, 5219909632.0},
    {"iresnet34", 1.0f, 112, 34139328, 34138816, 8919285760.0},
    {"iresnet50", 1.0f, 112, 43590848, 43590336, 12618661888.0},
    {"iresnet100", 1.0f, 112, 65156160, 65155648, 24179212288.0},
    {"mobilefacenet", 1.0f, 112, 2059520, 2059520, 875041792.0},
    {"iresnet18", 0.25f, 64, 1752064, 1751552, 110755840.0},
};

static void check_counts(const comine_backend *be)
{
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        comine_arch arch;
        FX_EXPECT(comine_arch_default(&arch, expected[i].name) == COMINE_OK, "arch %s", expected[i].name);
        arch.width = expected[i].width;
        arch.input = expected[i].input;
        comine_model *m;
        if (comine_model_create(&m, &arch, be, 1) != COMINE_OK) {
            printf("FAIL: create %s: %s\n", expected[i].name, comine_last_error());
            fx_fail_count++;
            continue;
        }
        size_t np = comine_model_num_params(m), fixed = 0, sum = 0, next = 0;
        bool contiguous = true;
        for (int t = 0; t < comine_model_num_tensors(m); t++) {
            const comine_tensor_info *ti = comine_model_tensor(m, t);
            size_t prod = 1;
            for (int d = 0; d < ti->ndim; d++) prod *= (size_t)ti->shape[d];
            if (ti->offset != next || prod != ti->size) contiguous = false;
            next += ti->size;
            sum += ti->size;
        }
        bool is_buf;
        int fw = comine_model_find_tensor(m, "features.weight", &is_buf);
        if (fw >= 0 && is_buf) fixed = comine_model_buffer_tensor(m, fw)->size;
        printf("%s %-14s width %-4g input %-3d params %zu (+%zu fixed) torch %zu / %zu trainable; %d tensors; "
               "FLOPs %.4g (torch %.4g)\n",
               np == expected[i].trainable && np + fixed == expected[i].all ? "ok  " : "FAIL", expected[i].name,
               (double)expected[i].width, expected[i].input, np, fixed, expected[i].all, expected[i].trainable,
               comine_model_num_tensors(m), comine_model_flops(m), expected[i].flops);
        FX_EXPECT(np == expected[i].trainable && np + fixed == expected[i].all, "%s parameter count", expected[i].name);
        FX_EXPECT(contiguous && sum == np, "%s: table not contiguous", expected[i].name);
        FX_EXPECT(comine_model_flops(m) == expected[i].flops, "%s FLOPs", expected[i].name);
        if (strncmp(expected[i].name, "iresnet", 7) == 0)
            FX_EXPECT(fw >= 0 && is_buf && fixed == (size_t)arch.emb_dim, "iresnet features.weight must be a buffer");
        comine_model_free(m);
    }
}

static comine_model *small_model(const comine_backend *be, uint64_t seed)
{
    comine_arch arch;
    COMINE_ASSERT(comine_arch_default(&arch, "iresnet18") == COMINE_OK);
    arch.width = 0.125f;
    arch.input = 32;
    comine_model *m;
    COMINE_ASSERT(comine_model_create(&m, &arch, be, 2) == COMINE_OK);
    comine_model_init(m, seed);
    return m;
}

static void check_init(const comine_backend *be)
{
    comine_model *a = small_model(be, 11), *b = small_model(be, 11), *c = small_model(be, 12);
    size_t n = comine_model_num_params(a);
    FX_EXPECT(!memcmp(comine_model_params(a), comine_model_params(b), n * sizeof(float)), "same seed, other bits");
    FX_EXPECT(memcmp(comine_model_params(a), comine_model_params(c), n * sizeof(float)), "other seed, same bits");
    int checked = 0;
    for (int t = 0; t < comine_model_num_tensors(a); t++) {
        const comine_tensor_info *ti = comine_model_tensor(a, t);
        const float *p = comine_model_params(a) + ti->offset;
        if (!strcmp(ti->name, "layer4.1.conv2.weight")) { /* 64 x 64 x 3 x 3: std sqrt(2 / 576) */
            double s = 0, s2 = 0;
            for (size_t k = 0; k < ti->size; k++) {
                s += p[k];
                s2 += (double)p[k] * p[k];
            }
            double mean = s / ti->size, sd = sqrt(s2 / ti->size - mean * mean), want = sqrt(2.0 / 576);
            printf("%s kaiming %s: mean %.4f std %.5f (want %.5f)\n", fabs(sd / want - 1) < 0.03 ? "ok  " : "FAIL",
                   ti->name, mean, sd, want);
            FX_EXPECT(fabs(sd / want - 1) < 0.03 && fabs(mean) < 0.01, "kaiming statistics");
            checked++;
        }
        if (!strcmp(ti->name, "fc.weight") || !strcmp(ti->name, "fc.bias")) {
            double bound = 1.0 / sqrt(256.0), mx = 0;
            for (size_t k = 0; k < ti->size; k++) mx = fmax(mx, fabs(p[k]));
            FX_EXPECT(mx <= bound && mx > 0.9 * bound, "%s: max %g, bound %g", ti->name, mx, bound);
            checked++;
        }
        if (!strcmp(ti->name, "layer1.0.prelu.weight")) {
            FX_EXPECT(p[0] == 0.25f, "prelu 0.25");
            checked++;
        }
        if (!strcmp(ti->name, "bn1.weight") || !strcmp(ti->name, "bn1.bias")) {
            FX_EXPECT(p[0] == (ti->name[4] == 'w' ? 1.0f : 0.0f), "bn init");
            checked++;
        }
    }
    for (int t = 0; t < comine_model_num_buffer_tensors(a); t++) {
        const comine_tensor_info *ti = comine_model_buffer_tensor(a, t);
        const float *p = comine_model_buffers(a) + ti->offset;
        float want = strstr(ti->name, "running_mean") ? 0.0f : 1.0f;
        for (size_t k = 0; k < ti->size; k++)
            if (p[k] != want) {
                FX_EXPECT(0, "buffer %s[%zu] = %g, want %g", ti->name, k, p[k], want);
                break;
            }
    }
    printf("%s init: seeded, %d tensors spot-checked, buffers 0/1\n", fx_fail_count ? "FAIL" : "ok  ", checked);
    comine_model_free(a);
    comine_model_free(b);
    comine_model_free(c);
}

static void write_bytes(const char *path, const uint8_t *d, size_t n)
{
    FILE *fp = fopen(path, "wb");
    COMINE_ASSERT(fp && fwrite(d, 1, n, fp) == n && fclose(fp) == 0);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void set_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes both checksums after a deliberate edit (to reach the checks behind them). */
static void fix_crcs(uint8_t *d, size_t n)
{
    size_t hend = 16 + le32(d + 12);
    set_le32(d + hend, comine_crc32(0, d, hend));
    set_le32(d + n - 4, comine_crc32(0, d, n - 4));
}

/* Loading `d` must fail with a message naming the file and containing `want`. */
static int expect_error(const comine_backend *be, const char *path, const uint8_t *d, size_t n, const char *want,
                        const char *what)
{
    write_bytes(path, d, n);
    comine_model *m = NULL;
    comine_status st = comine_model_load(&m, path, be, 2);
    const char *msg = comine_last_error();
    int ok = st != COMINE_OK && m == NULL && strstr(msg, path) && (!want || strstr(msg, want));
    if (!ok) {
        printf("FAIL %s: status %s, message '%s' (want '%s')\n", what, comine_status_name(st), msg, want ? want : "");
        fx_fail_count++;
    } else {
        printf("ok   %-22s %zu bytes -> %s\n", what, n, msg);
    }
    comine_model_free(m);
    return ok;
}

static size_t find_bytes(const uint8_t *d, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(d + i, s, k)) return i;
    return 0;
}

static void check_file(const comine_backend *be)
{
    char path[256], bad[256], stream[256];
    snprintf(path, sizeof path, "test_models_file.%ld.cmm", (long)getpid());
    snprintf(bad, sizeof bad, "test_models_file.%ld.bad.cmm", (long)getpid());
    snprintf(stream, sizeof stream, "test_models_file.%ld.stream", (long)getpid());

    comine_model *a = small_model(be, 5);
    const int N = 2, D = comine_model_arch(a)->emb_dim;
    float images[2 * 32 * 32 * 3], ea[2 * 512], eb[2 * 512];
    comine_rng rng;
    comine_rng_seed(&rng, 3, COMINE_STREAM_SYNTH);
    for (size_t k = 0; k < sizeof images / sizeof images[0]; k++) images[k] = 2 * comine_rng_uniform(&rng) - 1;
    comine_model_forward(a, ea, images, N, true, NULL); /* moves the running statistics */
    comine_model_forward(a, ea, images, N, false, NULL);

    FX_EXPECT(comine_model_save(a, path) == COMINE_OK, "save: %s", comine_last_error());
    comine_model *b = NULL;
    FX_EXPECT(comine_model_load(&b, path, be, 2) == COMINE_OK, "load: %s", comine_last_error());
    if (b) {
        FX_EXPECT(!strcmp(comine_model_arch(b)->name, "iresnet18") && comine_model_arch(b)->width == 0.125f &&
                      comine_model_arch(b)->input == 32 && comine_model_arch(b)->emb_dim == D,
                  "architecture round trip");
        int same_p = !memcmp(comine_model_params(a), comine_model_params(b), comine_model_num_params(a) * 4);
        int same_b = !memcmp(comine_model_buffers(a), comine_model_buffers(b), comine_model_num_buffers(a) * 4);
        comine_model_forward(b, eb, images, N, false, NULL);
        int same_e = !memcmp(ea, eb, sizeof(float) * N * D);
        printf("%s round trip: params %s, buffers %s, embeddings %s (bit-identical)\n",
               same_p && same_b && same_e ? "ok  " : "FAIL", same_p ? "same" : "DIFFER", same_b ? "same" : "DIFFER",
               same_e ? "same" : "DIFFER");
        FX_EXPECT(same_p && same_b && same_e, "round trip");
        comine_model_free(b);
    }

    /* two records in one stream, with other bytes around them (a checkpoint) */
    comine_model *c = small_model(be, 6);
    FILE *fp = fopen(stream, "w+b");
    COMINE_ASSERT(fp);
    fputs("head", fp);
    FX_EXPECT(comine_model_write(a, fp) == COMINE_OK && comine_model_write(c, fp) == COMINE_OK, "write records");
    fputs("tail", fp);
    rewind(fp);
    char word[5] = {0};
    comine_model *ra = NULL, *rc = NULL;
    FX_EXPECT(fread(word, 1, 4, fp) == 4, "stream head");
    FX_EXPECT(comine_model_read(&ra, fp, stream, be, 1) == COMINE_OK, "read A: %s", comine_last_error());
    FX_EXPECT(comine_model_read(&rc, fp, stream, be, 1) == COMINE_OK, "read C: %s", comine_last_error());
    FX_EXPECT(fread(word, 1, 4, fp) == 4 && !strcmp(word, "tail"), "stream tail");
    if (ra && rc) {
        int ok = !memcmp(comine_model_params(a), comine_model_params(ra), comine_model_num_params(a) * 4) &&
                 !memcmp(comine_model_params(c), comine_model_params(rc), comine_model_num_params(c) * 4);
        printf("%s two records in one stream read back\n", ok ? "ok  " : "FAIL");
        FX_EXPECT(ok, "stream records");
    }
    comine_model_free(ra);
    comine_model_free(rc);
    fclose(fp);
    remove(stream);

    /* copy_state */
    comine_model_copy_state(c, a);
    FX_EXPECT(!memcmp(comine_model_params(a), comine_model_params(c), comine_model_num_params(a) * 4) &&
                  !memcmp(comine_model_buffers(a), comine_model_buffers(c), comine_model_num_buffers(a) * 4),
              "copy_state");
    comine_model_free(c);

    /* corruption */
    uint8_t *d;
    size_t n;
    COMINE_ASSERT(comine_read_file(path, &d, &n) == COMINE_OK);
    uint8_t *e = malloc(n + 8);
    size_t hend = 16 + le32(d + 12), params_at = hend + 4, bufs_at = params_at + 4 * comine_model_num_params(a);
    printf("     file: %zu bytes (header %zu, params at %zu, buffers at %zu)\n", n, hend, params_at, bufs_at);
    int cases = 0, passed = 0;
    size_t cuts[] = {0, 3, 8, 12, 15, 16, 40, hend / 2, hend, hend + 2, params_at + 1, (params_at + bufs_at) / 2,
                     bufs_at, bufs_at + 7, n - 4, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cases++;
        passed += expect_error(be, bad, d, cuts[i], "truncated", "truncated file");
    }
    size_t flips[] = {20, hend - 1, hend + 1, params_at + 100, bufs_at + 8, n - 2};
    const char *flip_msg[] = {"checksum", "checksum", "checksum", "checksum", "checksum", "checksum"};
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        memcpy(e, d, n);
        e[flips[i]] ^= 0x10;
        cases++;
        passed += expect_error(be, bad, e, n, flip_msg[i], "flipped byte");
    }
    memcpy(e, d, n);
    e[0] = 'X';
    cases++;
    passed += expect_error(be, bad, e, n, "magic", "wrong magic");
    memcpy(e, d, n);
    set_le32(e + 8, 2);
    cases++;
    passed += expect_error(be, bad, e, n, "version", "wrong version");
    memcpy(e, d, n);
    e[find_bytes(e, hend, "iresnet18") + 8] = '9'; /* "iresnet19" with valid checksums */
    fix_crcs(e, n);
    cases++;
    passed += expect_error(be, bad, e, n, "unknown architecture", "unknown architecture");
    memcpy(e, d, n);
    e[find_bytes(e, hend, "layer2.0.conv1.weight") + 5] = '3'; /* a renamed tensor */
    fix_crcs(e, n);
    cases++;
    passed += expect_error(be, bad, e, n, "table mismatch", "table mismatch");
    memcpy(e, d, n);
    {   /* input 32 -> 64: a valid architecture whose table no longer matches */
        size_t at = find_bytes(e, hend, "iresnet18") + 9 + 4;
        set_le32(e + at, 64);
        fix_crcs(e, n);
    }
    cases++;
    passed += expect_error(be, bad, e, n, "table mismatch", "other input size");
    memcpy(e, d, n);
    set_le32(e + 12, 0x7fffffff);
    cases++;
    passed += expect_error(be, bad, e, n, NULL, "huge header size");
    memcpy(e, d, n);
    memcpy(e + n, "junk", 4);
    cases++;
    passed += expect_error(be, bad, e, n + 4, "unexpected bytes", "trailing bytes");
    comine_model *none = NULL;
    cases++;
    if (comine_model_load(&none, "no/such/model.cmm", be, 1) != COMINE_OK && !none &&
        strstr(comine_last_error(), "no/such/model.cmm"))
        passed++;
    else
        fx_fail_count++;
    printf("%s corrupted files: %d of %d cases gave a clear error (last: %s)\n", passed == cases ? "ok  " : "FAIL",
           passed, cases, comine_last_error());
    free(d);
    free(e);
    remove(path);
    remove(bad);
    comine_model_free(a);
}

int main(void)
{
    const comine_backend *be = comine_backend_cpu();
    check_counts(be);
    check_init(be);
    check_file(be);
    return fx_finish("test_models_file");
}
