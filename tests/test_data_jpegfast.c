/* test_data_jpegfast.c: comine_image_jpeg_to_input, the loader's JPEG-to-floats path, against
 * the general path (comine_image_decode, i.e. tjDecompress2 to RGB, + comine_image_to_input):
 * the floats must be identical (memcmp), mirrored or not, on JPEGs encoded here (4:4:4, 4:2:2,
 * 4:2:0 and grayscale; odd and even sizes; random and smooth content; baseline and
 * progressive), and (run with --lfw, a CTest entry of its own) on every image of the LFW
 * crops (../shared/data/lfw112 beside the source tree, or $COMINE_LFW; skipped, exit 77,
 * when absent; other layouts, non-square and tiny images are left to the general path; some
 * must take the fast one).  Truncated and damaged JPEGs must fail with the same message on
 * both paths; a JPEG that lacks its own quantisation or Huffman tables must decode (or fail)
 * the same whatever image came before it.  The loader's batches with the fast path must equal those of the general
 * path (decode + comine_image_augment_to_input with each sample's RNG, and the cached loader). */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "comine/data.h"
#include "fixture.h"

static int fast_hits, fallbacks;

/* Returns false on a mismatch (printed). */
static bool check_bytes(const uint8_t *jpg, size_t n, const char *what, int side)
{
    comine_image img;
    comine_status st_old = comine_image_decode(&img, jpg, n, what);
    char msg_old[1024];
    snprintf(msg_old, sizeof msg_old, "%s", st_old == COMINE_OK ? "" : comine_last_error());
    bool ok = true;
    for (int flip = 0; flip < 2 && ok; flip++) {
        int size = st_old == COMINE_OK ? img.w : side;
        size_t per = (size_t)size * size * 3;
        float *want = malloc(sizeof(float) * per), *got = malloc(sizeof(float) * per);
        for (size_t i = 0; i < per; i++) got[i] = 12345.0f;
        bool done = false;
        comine_status st = comine_image_jpeg_to_input(got, &done, jpg, n, what, size, flip);
        if (st_old != COMINE_OK) {
            if (st == COMINE_OK && done) {
                printf("FAIL: %s: general path fails (%s), fast path decodes\n", what, msg_old);
                ok = false;
            } else if (st != COMINE_OK && (st != st_old || strcmp(comine_last_error(), msg_old))) {
                printf("FAIL: %s: fast path fails with \"%s\", general path with \"%s\"\n", what, comine_last_error(),
                       msg_old);
                ok = false;
            }
        } else if (st != COMINE_OK) {
            printf("FAIL: %s: fast path fails (%s), general path decodes\n", what, comine_last_error());
            ok = false;
        } else if (done) {
            comine_image_to_input(want, &img, size, flip);
            if (memcmp(want, got, sizeof(float) * per)) {
                size_t i = 0;
                while (want[i] == got[i]) i++;
                printf("FAIL: %s (%dx%d) flip %d: first difference at pixel (%zu, %zu) channel %zu: %g vs %g\n", what,
                       img.w, img.h, flip, i / 3 / size, i / 3 % size, i % 3, got[i], want[i]);
                ok = false;
            }
            fast_hits += flip == 0;
        } else {
            fallbacks += flip == 0;
            if (got[0] != 12345.0f) {
                printf("FAIL: %s: fast path not taken but output written\n", what);
                ok = false;
            }
        }
        free(want);
        free(got);
    }
    if (st_old == COMINE_OK) comine_image_free(&img);
    return ok;
}

static uint8_t *encode(const uint8_t *rgb, int w, int h, int subsamp, int quality, int flags, size_t *n)
{
    tjhandle tj = tjInitCompress();
    unsigned char *out = NULL;
    unsigned long size = 0;
    if (tjCompress2(tj, rgb, w, w * 3, h, TJPF_RGB, &out, &size, subsamp, quality, flags) != 0) {
        printf("FAIL: tjCompress2 %dx%d: %s\n", w, h, tjGetErrorStr2(tj));
        fx_fail_count++;
        tjDestroy(tj);
        return NULL;
    }
    tjDestroy(tj);
    uint8_t *copy = malloc(size);
    memcpy(copy, out, size);
    tjFree(out);
    *n = size;
    return copy;
}

static void synthetic(void)
{
    static const int sides[][2] = {{1, 1},   {2, 2},   {3, 3},   {4, 4},     {5, 5},     {6, 6},   {7, 7},
                                   {8, 8},   {9, 9},   {15, 15}, {16, 16},   {17, 17},   {31, 31}, {33, 33},
                                   {112, 112}, {113, 113}, {111, 111}, {3, 5}, {17, 33}, {113, 111}, {112, 96}};
    static const int samps[] = {TJSAMP_444, TJSAMP_422, TJSAMP_420, TJSAMP_GRAY, TJSAMP_440, TJSAMP_411};
    static const char *samp_names[] = {"444", "422", "420", "gray", "440", "411"};
    comine_rng rng;
    comine_rng_seed(&rng, 5, COMINE_STREAM_INIT);
    int before = fast_hits, bad = 0, fb = fallbacks;
    for (size_t s = 0; s < sizeof sides / sizeof sides[0]; s++) {
        int w = sides[s][0], h = sides[s][1];
        uint8_t *rgb = malloc((size_t)w * h * 3);
        for (int content = 0; content < 3; content++) {
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int c = 0; c < 3; c++) {
                        uint8_t *p = rgb + ((size_t)y * w + x) * 3 + c;
                        if (content == 0) *p = (uint8_t)comine_rng_below(&rng, 256);
                        else if (content == 1)
                            *p = (uint8_t)((x * 255 / (w > 1 ? w - 1 : 1) + y * 97 / h + c * 60) & 255);
                        else *p = (uint8_t)(c == 0 ? 255 * (x % 2) : c == 1 ? 255 * ((x / 3 + y) % 2) : 40 + y % 200);
                    }
            for (size_t k = 0; k < sizeof samps / sizeof samps[0]; k++)
                for (int prog = 0; prog < 2; prog++) {
                    int quality = content == 0 ? 95 : 40 + 25 * (int)(k % 3);
                    size_t n;
                    uint8_t *jpg = encode(rgb, w, h, samps[k], quality, prog ? TJFLAG_PROGRESSIVE : 0, &n);
                    if (!jpg) continue;
                    char what[128];
                    snprintf(what, sizeof what, "%dx%d %s content %d q%d%s", w, h, samp_names[k], content, quality,
                             prog ? " progressive" : "");
                    if (!check_bytes(jpg, n, what, w)) bad++;
                    free(jpg);
                }
        }
        free(rgb);
    }
    /* comine's own encoder (4:2:0 below quality 90, 4:4:4 above). */
    for (int side = 7; side <= 40; side += 11)
        for (int quality = 50; quality <= 95; quality += 45) {
            comine_image img = {side, side, malloc((size_t)side * side * 3)};
            for (int i = 0; i < side * side * 3; i++) img.rgb[i] = (uint8_t)(i * 7 + (i / 3) % 13);
            uint8_t *jpg;
            size_t n;
            if (comine_image_encode_jpeg(&img, quality, &jpg, &n) == COMINE_OK) {
                if (!check_bytes(jpg, n, "comine_image_encode_jpeg", side)) bad++;
                free(jpg);
            }
            free(img.rgb);
        }
    printf("%s encoded JPEGs: %d decoded on the fast path and compared with and without flip, %d left to the "
           "general path, %d mismatches\n",
           bad ? "FAIL" : "ok  ", fast_hits - before, fallbacks - fb, bad);
    if (bad || fast_hits == before) fx_fail_count++;
}

static void damaged(void)
{
    int w = 48;
    uint8_t *rgb = malloc((size_t)w * w * 3);
    for (int i = 0; i < w * w * 3; i++) rgb[i] = (uint8_t)((i * 31) ^ (i / 144));
    comine_rng rng;
    comine_rng_seed(&rng, 9, COMINE_STREAM_INIT);
    int bad = 0, cases = 0, hits = fast_hits;
    static const int samps[] = {TJSAMP_420, TJSAMP_422, TJSAMP_444, TJSAMP_GRAY};
    for (size_t k = 0; k < 4; k++)
        for (int prog = 0; prog < 2; prog++) {
            size_t n;
            uint8_t *jpg = encode(rgb, w, w, samps[k], 80, prog ? TJFLAG_PROGRESSIVE : 0, &n);
            if (!jpg) continue;
            uint8_t *copy = malloc(n);
            for (size_t cut = 1; cut < n; cut += 1 + cut / 8) {
                cases++;
                if (!check_bytes(jpg, cut, "truncated.jpg", w)) bad++;
            }
            for (int t = 0; t < 200; t++) {
                memcpy(copy, jpg, n);
                for (int f = 0; f < 1 + t % 4; f++)
                    copy[comine_rng_below(&rng, (uint32_t)n)] ^= (uint8_t)(1 + comine_rng_below(&rng, 255));
                cases++;
                if (!check_bytes(copy, n, "damaged.jpg", w)) bad++;
            }
            free(copy);
            free(jpg);
        }
    free(rgb);
    printf("%s %d truncated or damaged JPEGs (%d still decode): same result and message on both paths (%d "
           "mismatches)\n",
           bad ? "FAIL" : "ok  ", cases, fast_hits - hits, bad);
    if (bad) fx_fail_count++;
}

/* jpg without its segments of one marker type (before the first SOS); *n is updated. */
static uint8_t *strip_marker(const uint8_t *jpg, size_t *n, int marker)
{
    uint8_t *out = malloc(*n);
    size_t p = 2, o = 2;
    memcpy(out, jpg, 2);
    while (p + 4 <= *n && jpg[p] == 0xff && jpg[p + 1] != 0xda) {
        size_t len = 2 + ((size_t)jpg[p + 2] << 8 | jpg[p + 3]);
        if (jpg[p + 1] != marker) {
            memcpy(out + o, jpg + p, len);
            o += len;
        }
        p += len;
    }
    memcpy(out + o, jpg + p, *n - p);
    *n = o + *n - p;
    return out;
}

typedef struct decode_result {
    comine_status st, st_fast;
    char msg[512], msg_fast[512];
    comine_image img;
    float *fast;
} decode_result;

static decode_result decode_both(const uint8_t *jpg, size_t n, int side)
{
    decode_result r;
    memset(&r, 0, sizeof r);
    r.st = comine_image_decode(&r.img, jpg, n, "tableless.jpg");
    if (r.st != COMINE_OK) snprintf(r.msg, sizeof r.msg, "%s", comine_last_error());
    r.fast = calloc((size_t)side * side * 3, sizeof(float));
    bool done = false;
    r.st_fast = comine_image_jpeg_to_input(r.fast, &done, jpg, n, "tableless.jpg", side, false);
    if (r.st_fast != COMINE_OK) snprintf(r.msg_fast, sizeof r.msg_fast, "%s", comine_last_error());
    return r;
}

static bool same_result(const decode_result *a, const decode_result *b, int side)
{
    if (a->st != b->st || a->st_fast != b->st_fast || strcmp(a->msg, b->msg) || strcmp(a->msg_fast, b->msg_fast))
        return false;
    if (a->st == COMINE_OK && (a->img.w != b->img.w || a->img.h != b->img.h ||
                               memcmp(a->img.rgb, b->img.rgb, (size_t)a->img.w * a->img.h * 3)))
        return false;
    return !memcmp(a->fast, b->fast, sizeof(float) * side * side * 3);
}

static void decode_result_free(decode_result *r)
{
    if (r->st == COMINE_OK) comine_image_free(&r->img);
    free(r->fast);
}

/* libjpeg keeps one stream's quantisation and Huffman tables for the next: a file that lacks
 * its own must decode the same (or fail the same) whatever image the thread decoded before. */
static void tableless(void)
{
    int w = 48;
    uint8_t *rgb = malloc((size_t)w * w * 3);
    for (int i = 0; i < w * w * 3; i++) rgb[i] = (uint8_t)((i * 29) ^ (i / 96));
    size_t n_prog, n_base;
    uint8_t *prog = encode(rgb, w, w, TJSAMP_420, 50, TJFLAG_PROGRESSIVE, &n_prog); /* own Huffman tables */
    uint8_t *base = encode(rgb, w, w, TJSAMP_444, 95, 0, &n_base);                  /* standard tables */
    if (!prog || !base) {
        free(prog);
        free(base);
        free(rgb);
        return;
    }
    size_t n_dqt = n_base, n_dht = n_base;
    uint8_t *no_dqt = strip_marker(base, &n_dqt, 0xdb), *no_dht = strip_marker(base, &n_dht, 0xc4);
    decode_result whole = decode_both(base, n_base, w);
    struct { const char *name; uint8_t *jpg; size_t n; } cases[] = {{"no DQT", no_dqt, n_dqt}, {"no DHT", no_dht, n_dht}};
    for (int c = 0; c < 2; c++) {
        decode_result first = decode_both(cases[c].jpg, cases[c].n, w);
        decode_result other = decode_both(prog, n_prog, w);
        decode_result again = decode_both(cases[c].jpg, cases[c].n, w);
        bool same = other.st == COMINE_OK && same_result(&first, &again, w);
        /* without DQT the stream cannot decode; without DHT libjpeg takes the standard tables,
         * the ones the encoder used */
        bool expected = c == 0 ? first.st != COMINE_OK && first.st_fast != COMINE_OK && strstr(first.msg, "tableless.jpg")
                               : same_result(&first, &whole, w);
        printf("%s JPEG with %s: the same result before and after another image (%s)\n",
               same && expected ? "ok  " : "FAIL", cases[c].name,
               first.st == COMINE_OK ? "decodes with the standard tables" : first.msg);
        if (!same || !expected) fx_fail_count++;
        decode_result_free(&first);
        decode_result_free(&other);
        decode_result_free(&again);
    }
    decode_result_free(&whole);
    free(no_dqt);
    free(no_dht);
    free(prog);
    free(base);
    free(rgb);
}

static void lfw(void)
{
    char images[4200];
    const char *env = getenv("COMINE_LFW");
    if (env && env[0])
        snprintf(images, sizeof images, "%s/images", env);
    else
        snprintf(images, sizeof images, "%s/../shared/data/lfw112/images", COMINE_SOURCE_DIR);
    if (!comine_path_is_dir(images)) {
        FX_SKIP("%s absent (the LFW crops: ../shared/data/lfw112 beside the source tree, or $COMINE_LFW)", images);
        return;
    }
    comine_dataset *ds;
    if (comine_dataset_open(&ds, images, NULL) != COMINE_OK) {
        printf("FAIL: open %s: %s\n", images, comine_last_error());
        fx_fail_count++;
        return;
    }
    int before = fast_hits, fb = fallbacks, bad = 0;
    for (int i = 0; i < ds->n; i++) {
        uint8_t *data;
        size_t n;
        if (comine_dataset_read(ds, i, &data, &n) != COMINE_OK) {
            printf("FAIL: %s\n", comine_last_error());
            bad++;
            continue;
        }
        if (!check_bytes(data, n, ds->samples[i].path, 112)) bad++;
        free(data);
    }
    bool ok = !bad && fast_hits > before;
    printf("%s LFW: %d images, %d decoded on the fast path and compared with and without flip, %d left to the "
           "general path, %d mismatches\n",
           ok ? "ok  " : "FAIL", ds->n, fast_hits - before, fallbacks - fb, bad);
    if (!ok) fx_fail_count++;
    comine_dataset_free(ds);
}

/* ---- the loader ---- */

static char dir[64] = "/tmp/comine_test_jpegfast_XXXXXX";

static void put_bytes(const char *rel, const void *data, size_t size)
{
    char *p = comine_path_join(dir, rel);
    char *d = comine_path_dirname(p);
    comine_mkdirs(d);
    FILE *fp = fopen(p, "wb");
    if (fp) {
        fwrite(data, 1, size, fp);
        fclose(fp);
    }
    free(d);
    free(p);
}

/* One epoch's images, concatenated; NULL on failure. */
static float *epoch_images(const comine_dataset *ds, comine_loader_opts o, int epoch, int *total)
{
    comine_loader *l;
    if (comine_loader_create(&l, ds, &o) != COMINE_OK) return NULL;
    size_t per = (size_t)o.input * o.input * 3;
    float *all = calloc(per * ds->n + 1, sizeof(float));
    *total = 0;
    comine_loader_start_epoch(l, epoch, 0);
    comine_batch *b;
    while (comine_loader_next(l, &b) == COMINE_OK && b) {
        memcpy(all + per * *total, b->images, sizeof(float) * per * b->n);
        *total += b->n;
        comine_loader_release(l, b);
    }
    comine_loader_free(l);
    return all;
}

static void loader(bool with_bad)
{
    const int input = 24;
    const char *top = with_bad ? "faces" : "clean";
    comine_rng rng;
    comine_rng_seed(&rng, 3, COMINE_STREAM_INIT);
    for (int i = 0; i < 30; i++) {
        int w = i % 5 == 4 ? 30 : input;
        comine_image img = {w, w, malloc((size_t)w * w * 3)};
        for (int k = 0; k < w * w * 3; k++)
            img.rgb[k] = (uint8_t)(k / 3 * (i + 1) + 40 * (k % 3) + comine_rng_below(&rng, 30));
        char rel[64];
        if (i % 7 == 6) {
            snprintf(rel, sizeof rel, "%s/id%d/%02d.png", top, i % 4, i);
            char *p = comine_path_join(dir, rel);
            char *d = comine_path_dirname(p);
            comine_mkdirs(d);
            comine_image_save_png(&img, p);
            free(d);
            free(p);
        } else {
            uint8_t *jpg;
            size_t n;
            comine_image_encode_jpeg(&img, i % 3 ? 75 : 95, &jpg, &n);
            snprintf(rel, sizeof rel, "%s/id%d/%02d.jpg", top, i % 4, i);
            put_bytes(rel, jpg, n);
            if (with_bad && i == 3) put_bytes("faces/id1/truncated.jpg", jpg, n / 2);
            free(jpg);
        }
        free(img.rgb);
    }
    if (with_bad) {
        put_bytes("faces/id2/zero.jpg", "", 0);
        put_bytes("faces/id0/corrupt.jpg", "\xff\xd8\xff\xe0garbage garbage garbage", 27);
    }
    comine_dataset *ds;
    char *faces = comine_path_join(dir, top);
    if (comine_dataset_open(&ds, faces, NULL) != COMINE_OK) {
        printf("FAIL: open: %s\n", comine_last_error());
        fx_fail_count++;
        free(faces);
        return;
    }
    free(faces);
    comine_loader_opts o;
    comine_loader_opts_default(&o);
    o.batch = 7;
    o.input = input;
    o.seed = 11;
    size_t per = (size_t)input * input * 3;
    bool ok = true;
    int total = 0, cached_total = 0, epochs = 0;
    for (int threads = 1; threads <= 2; threads++)
        for (int epoch = 0; epoch < 2; epoch++) {
            o.threads = threads;
            o.cache = false;
            float *fast = epoch_images(ds, o, epoch, &total);
            o.cache = true;
            float *general = epoch_images(ds, o, epoch, &cached_total);
            ok = ok && fast && general && total == cached_total &&
                 !memcmp(fast, general, sizeof(float) * per * total);
            if (!with_bad && fast && total == ds->n) {
                /* No sample is skipped: epoch position p holds batch sample p; redo it by hand. */
                comine_loader *l;
                comine_loader_create(&l, ds, &o);
                comine_loader_start_epoch(l, epoch, 0);
                comine_batch *b;
                int p = 0;
                float *want = malloc(sizeof(float) * per);
                while (comine_loader_next(l, &b) == COMINE_OK && b) {
                    for (int k = 0; k < b->n; k++, p++) {
                        comine_image img;
                        comine_rng r;
                        comine_loader_sample_rng(&r, o.seed, epoch, p);
                        if (comine_dataset_decode(ds, b->indices[k], &img) != COMINE_OK) {
                            ok = false;
                            continue;
                        }
                        comine_image_augment_to_input(want, &img, input, o.flip, o.jitter, &r);
                        ok = ok && !memcmp(want, fast + per * p, sizeof(float) * per);
                        comine_image_free(&img);
                    }
                    comine_loader_release(l, b);
                }
                free(want);
                comine_loader_free(l);
                ok = ok && p == total;
            }
            free(fast);
            free(general);
            epochs++;
        }
    printf("%s loader%s: %d epochs of %d samples, fast path == cached general path%s (memcmp)\n", ok ? "ok  " : "FAIL",
           with_bad ? " with bad files" : "", epochs, total, with_bad ? "" : " == decode + augment by hand");
    if (!ok) fx_fail_count++;
    comine_dataset_free(ds);
}

int main(int argc, char **argv)
{
    comine_log_set_level(COMINE_LOG_ERROR + 1);
    if (argc > 1 && !strcmp(argv[1], "--lfw")) {
        lfw();
        return fx_finish("test_data_jpegfast --lfw");
    }
    synthetic();
    damaged();
    tableless();
    if (!mkdtemp(dir)) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    loader(false);
    loader(true);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    return fx_finish("test_data_jpegfast");
}
