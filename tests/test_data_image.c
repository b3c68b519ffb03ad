/* test_data_image.c: image decoding and preprocessing.  Decodes JPEG, PNG, PGM and PPM
 * files made here (8- and 16-bit, binary and text, grey and colour), checks that every kind
 * of bad input fails with a message naming it, and checks resize (area when shrinking,
 * bilinear when growing), flip, crop boxes and (x - 127.5) / 128 against hand computations. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

#include "comine/data.h"
#include "fixture.h"

static comine_image make_image(int w, int h, unsigned seed)
{
    comine_image img = {w, h, malloc((size_t)w * h * 3)};
    for (int i = 0; i < w * h * 3; i++) img.rgb[i] = (uint8_t)((i * 37u + seed * 101u + (i / 7) * 13u) & 0xff);
    return img;
}

static int max_diff(const comine_image *a, const comine_image *b)
{
    if (a->w != b->w || a->h != b->h) return 1000;
    int m = 0;
    for (int i = 0; i < a->w * a->h * 3; i++) {
        int d = abs((int)a->rgb[i] - (int)b->rgb[i]);
        if (d > m) m = d;
    }
    return m;
}

static void expect_bad(const char *what, const uint8_t *data, size_t size, const char *must_contain)
{
    comine_image img;
    comine_status st = comine_image_decode(&img, data, size, "case.img");
    const char *msg = comine_last_error();
    bool ok = st != COMINE_OK && strstr(msg, "case.img") && (!must_contain || strstr(msg, must_contain));
    printf("%s bad input: %-28s -> %s\n", ok ? "ok  " : "FAIL", what, st == COMINE_OK ? "(decoded!)" : msg);
    if (!ok) fx_fail_count++;
    if (st == COMINE_OK) comine_image_free(&img);
}

static void test_codecs(void)
{
    char dir[] = "/tmp/comine_test_image_XXXXXX";
    FX_EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    char path[512];

    /* PNG: lossless round trip. */
    comine_image a = make_image(23, 17, 1), b;
    snprintf(path, sizeof path, "%s/a.png", dir);
    FX_EXPECT(comine_image_save_png(&a, path) == COMINE_OK, "save png: %s", comine_last_error());
    FX_EXPECT(comine_image_load(&b, path) == COMINE_OK, "load png: %s", comine_last_error());
    int d = max_diff(&a, &b);
    printf("%s PNG round trip 23x17: max |diff| = %d (want 0)\n", d == 0 ? "ok  " : "FAIL", d);
    if (d) fx_fail_count++;
    comine_image_free(&b);
    /* The PNG encoder gives the bytes of the saved file; an empty image is refused. */
    uint8_t *encoded, *file;
    size_t encoded_size, file_size;
    FX_EXPECT(comine_image_encode_png(&a, &encoded, &encoded_size) == COMINE_OK, "encode png: %s", comine_last_error());
    FX_EXPECT(comine_read_file(path, &file, &file_size) == COMINE_OK, "read png: %s", comine_last_error());
    bool same = encoded_size == file_size && !memcmp(encoded, file, encoded_size);
    printf("%s PNG encode to memory: %zu bytes, %s the saved file\n", same ? "ok  " : "FAIL", encoded_size,
           same ? "the same as" : "NOT the same as");
    if (!same) fx_fail_count++;
    free(encoded);
    free(file);
    comine_image empty = {0, 0, NULL};
    FX_EXPECT(comine_image_encode_png(&empty, &encoded, &encoded_size) == COMINE_ERR_ARG && !encoded,
              "empty image refused");

    /* JPEG: a smooth image at quality 100 comes back within a few levels. */
    comine_image s = {32, 24, malloc(32 * 24 * 3)};
    for (int y = 0; y < 24; y++)
        for (int x = 0; x < 32; x++) {
            s.rgb[(y * 32 + x) * 3] = (uint8_t)(x * 6);
            s.rgb[(y * 32 + x) * 3 + 1] = (uint8_t)(y * 8);
            s.rgb[(y * 32 + x) * 3 + 2] = 128;
        }
    uint8_t *jpg;
    size_t jsize;
    FX_EXPECT(comine_image_encode_jpeg(&s, 100, &jpg, &jsize) == COMINE_OK, "jpeg encode");
    FX_EXPECT(comine_image_decode(&b, jpg, jsize, "mem.jpg") == COMINE_OK, "jpeg decode: %s", comine_last_error());
    d = max_diff(&s, &b);
    printf("%s JPEG q100 round trip 32x24: max |diff| = %d (want <= 4)\n", d <= 4 ? "ok  " : "FAIL", d);
    if (d > 4) fx_fail_count++;
    comine_image_free(&b);
    uint8_t *none;
    size_t nsize;
    FX_EXPECT(comine_image_encode_jpeg(&s, 0, &none, &nsize) == COMINE_ERR_ARG && !none, "quality 0 refused");

    /* Bad JPEGs: truncated, corrupt body, header only, zero bytes. */
    uint8_t *jpg2;
    size_t j2;
    comine_image big = make_image(96, 96, 5);
    FX_EXPECT(comine_image_encode_jpeg(&big, 90, &jpg2, &j2) == COMINE_OK, "jpeg encode");
    comine_image_free(&big);
    expect_bad("truncated JPEG (60%)", jpg2, j2 * 6 / 10, NULL);
    expect_bad("JPEG header only (20 bytes)", jpg2, 20, NULL);
    uint8_t *corrupt = malloc(j2);
    memcpy(corrupt, jpg2, j2);
    for (size_t i = 6; i < 60; i++) corrupt[i] = (uint8_t)(i * 7);
    expect_bad("corrupt JPEG (garbled header)", corrupt, j2, NULL);
    memcpy(corrupt, jpg2, j2);
    for (size_t i = j2 / 2; i < j2; i++) corrupt[i] = 0xff;
    expect_bad("corrupt JPEG (garbled data)", corrupt, j2, NULL);
    free(corrupt);
    /* The decoder recovers after the bad streams (TurboJPEG keeps state after some of them). */
    int mark = fx_fail_count;
    FX_EXPECT(comine_image_decode(&b, jpg2, j2, "good-after-bad.jpg") == COMINE_OK && b.w == 96,
              "good JPEG after bad ones: %s", comine_last_error());
    comine_image_free(&b);
    FX_SUMMARY(mark, "a good JPEG decodes after the corrupt ones\n");
    expect_bad("zero-byte file", jpg2, 0, "empty");
    expect_bad("text file", (const uint8_t *)"hello world\n", 12, "not an image");
    free(jpg2);
    free(jpg);

    /* Bad PNGs: truncated, flipped bits in the data. */
    uint8_t *png;
    size_t psize;
    FX_EXPECT(comine_read_file(path, &png, &psize) == COMINE_OK, "read png");
    expect_bad("truncated PNG", png, psize / 2, NULL);
    png[psize / 2] ^= 0x55;
    expect_bad("corrupt PNG (CRC)", png, psize, NULL);
    free(png);

    /* PGM/PPM made by hand: binary grey, binary colour, text, 16-bit. */
    uint8_t pgm[64];
    int n = snprintf((char *)pgm, sizeof pgm, "P5\n# grey\n3 2\n255\n");
    const uint8_t grey[6] = {0, 50, 100, 150, 200, 255};
    memcpy(pgm + n, grey, 6);
    FX_EXPECT(comine_image_decode(&b, pgm, (size_t)n + 6, "p5") == COMINE_OK, "P5: %s", comine_last_error());
    int ok = b.w == 3 && b.h == 2;
    for (int i = 0; ok && i < 6; i++) ok = b.rgb[3 * i] == grey[i] && b.rgb[3 * i + 1] == grey[i] && b.rgb[3 * i + 2] == grey[i];
    printf("%s P5 grey 3x2 -> 3 channels equal to the grey values\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    comine_image_free(&b);
    expect_bad("truncated P5", pgm, (size_t)n + 4, "truncated");

    uint8_t ppm[64];
    n = snprintf((char *)ppm, sizeof ppm, "P6 2 1 255\n");
    const uint8_t rgb[6] = {1, 2, 3, 250, 251, 252};
    memcpy(ppm + n, rgb, 6);
    FX_EXPECT(comine_image_decode(&b, ppm, (size_t)n + 6, "p6") == COMINE_OK, "P6: %s", comine_last_error());
    ok = b.w == 2 && b.h == 1 && !memcmp(b.rgb, rgb, 6);
    printf("%s P6 colour 2x1 bytes\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    comine_image_free(&b);

    const char *p3 = "P3\n2 1\n15\n0 15 5  10 3 15\n";
    FX_EXPECT(comine_image_decode(&b, (const uint8_t *)p3, strlen(p3), "p3") == COMINE_OK, "P3: %s", comine_last_error());
    const uint8_t p3want[6] = {0, 255, 85, 170, 51, 255};
    ok = b.w == 2 && b.h == 1 && !memcmp(b.rgb, p3want, 6);
    printf("%s P3 text maxval 15 scaled to 0..255\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    comine_image_free(&b);

    uint8_t p16[64];
    n = snprintf((char *)p16, sizeof p16, "P5 2 1 65535\n");
    const uint8_t v16[4] = {0xff, 0xff, 0x80, 0x00}; /* 65535, 32768 */
    memcpy(p16 + n, v16, 4);
    FX_EXPECT(comine_image_decode(&b, p16, (size_t)n + 4, "p16") == COMINE_OK, "P5 16: %s", comine_last_error());
    ok = b.w == 2 && b.rgb[0] == 255 && b.rgb[3] == 128;
    printf("%s P5 16-bit big-endian scaled (255, %d)\n", ok ? "ok  " : "FAIL", b.w == 2 ? b.rgb[3] : -1);
    if (!ok) fx_fail_count++;
    comine_image_free(&b);
    expect_bad("P6 huge size in header", (const uint8_t *)"P6 99999 99999 255\n\x01", 21, "out of range");
    expect_bad("P5 maxval 0", (const uint8_t *)"P5 1 1 0\n\x01", 10, "maxval");

    /* Grey JPEG decodes to three equal channels. */
    comine_image g = make_image(16, 16, 3);
    for (int i = 0; i < 256; i++) g.rgb[3 * i + 1] = g.rgb[3 * i + 2] = g.rgb[3 * i];
    FX_EXPECT(comine_image_encode_jpeg(&g, 95, &jpg, &jsize) == COMINE_OK, "jpeg encode");
    FX_EXPECT(comine_image_decode(&b, jpg, jsize, "g.jpg") == COMINE_OK, "decode");
    ok = 1;
    for (int i = 0; i < 256; i++) ok &= abs(b.rgb[3 * i] - b.rgb[3 * i + 1]) <= 1 && abs(b.rgb[3 * i] - b.rgb[3 * i + 2]) <= 1;
    printf("%s grey-content JPEG -> 3 (nearly) equal channels\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    comine_image_free(&b);
    free(jpg);
    comine_image_free(&g);

    FX_EXPECT(comine_image_sniff((const uint8_t *)"\xff\xd8\xff", 3) && !comine_image_sniff((const uint8_t *)"GIF8", 4), "sniff");
    FX_EXPECT(comine_image_path_has_ext("a/b.JPG") && comine_image_path_has_ext("x.pgm") && !comine_image_path_has_ext("x.txt") &&
                  !comine_image_path_has_ext("dir.jpg/file"), "extensions");
    comine_image_free(&a);
    comine_image_free(&s);
    unlink(path);
    rmdir(dir);
}

/* PNG flavours other than 8-bit RGB, written with libpng here: RGBA, grey+alpha, 16-bit grey,
 * palette.  Alpha is dropped (as PIL's convert("RGB")), 16-bit values scale by 255/65535. */
static void test_png_flavours(void)
{
    struct {
        const char *what;
        png_uint_32 format;
        uint8_t bytes[16];
        uint8_t cmap[6];
        uint8_t want[6];
    } cases[] = {
        {"RGBA 8-bit", PNG_FORMAT_RGBA, {200, 100, 50, 0, 10, 20, 30, 128}, {0}, {200, 100, 50, 10, 20, 30}},
        {"grey+alpha 8-bit", PNG_FORMAT_GA, {77, 0, 150, 255}, {0}, {77, 77, 77, 150, 150, 150}},
        {"grey 16-bit", PNG_FORMAT_LINEAR_Y, {0xff, 0xff, 0x00, 0x80}, {0}, {255, 255, 255, 128, 128, 128}},
        {"palette", PNG_FORMAT_RGB_COLORMAP, {0, 1}, {255, 0, 0, 0, 0, 255}, {255, 0, 0, 0, 0, 255}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        png_image pi;
        memset(&pi, 0, sizeof pi);
        pi.version = PNG_IMAGE_VERSION;
        pi.width = 2;
        pi.height = 1;
        pi.format = cases[c].format;
        if (cases[c].format == PNG_FORMAT_RGB_COLORMAP) pi.colormap_entries = 2;
        uint8_t buf[1024];
        png_alloc_size_t size = sizeof buf;
        const void *cmap = cases[c].format == PNG_FORMAT_RGB_COLORMAP ? cases[c].cmap : NULL;
        int w_ok = png_image_write_to_memory(&pi, buf, &size, 0, cases[c].bytes, 0, cmap);
        comine_image img;
        comine_status st = w_ok ? comine_image_decode(&img, buf, size, cases[c].what) : COMINE_ERR_IO;
        int ok = st == COMINE_OK && img.w == 2 && img.h == 1 && !memcmp(img.rgb, cases[c].want, 6);
        printf("%s PNG %-18s -> %d %d %d  %d %d %d\n", ok ? "ok  " : "FAIL", cases[c].what, st ? -1 : img.rgb[0],
               st ? -1 : img.rgb[1], st ? -1 : img.rgb[2], st ? -1 : img.rgb[3], st ? -1 : img.rgb[4], st ? -1 : img.rgb[5]);
        if (!ok) fx_fail_count++;
        if (st == COMINE_OK) comine_image_free(&img);
    }
}

/* Mutated and truncated copies of valid JPEG, PNG and PGM files: every one must either decode
 * to a sane image or fail with a message; never crash (run under ASan/UBSan to see it). */
static void test_mutations(void)
{
    comine_image img = make_image(40, 32, 21), out;
    uint8_t *files[3];
    size_t sizes[3];
    comine_image_encode_jpeg(&img, 80, &files[0], &sizes[0]);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = 40;
    pi.height = 32;
    pi.format = PNG_FORMAT_RGB;
    png_alloc_size_t psize = 0;
    png_image_write_to_memory(&pi, NULL, &psize, 0, img.rgb, 0, NULL);
    files[1] = malloc(psize);
    png_image_write_to_memory(&pi, files[1], &psize, 0, img.rgb, 0, NULL);
    sizes[1] = psize;
    files[2] = malloc(40 * 32 * 3 + 32);
    int n = snprintf((char *)files[2], 32, "P6\n40 32\n255\n");
    memcpy(files[2] + n, img.rgb, 40 * 32 * 3);
    sizes[2] = (size_t)n + 40 * 32 * 3;
    comine_rng r;
    comine_rng_seed(&r, 99, COMINE_STREAM_EVAL);
    int decoded = 0, failed = 0, insane = 0;
    for (int f = 0; f < 3; f++) {
        uint8_t *buf = malloc(sizes[f]);
        for (int t = 0; t < 400; t++) {
            memcpy(buf, files[f], sizes[f]);
            size_t len = sizes[f];
            int kind = t % 4;
            if (kind == 0) len = 1 + comine_rng_below(&r, (uint32_t)len); /* truncate */
            int flips = kind == 3 ? 1 : 1 + (int)comine_rng_below(&r, 8);
            for (int k = 0; kind != 0 && k < flips; k++) {
                size_t at = comine_rng_below(&r, (uint32_t)(len < 64 || kind == 2 ? len : 64)); /* kind 2: headers */
                buf[at] = (uint8_t)comine_rng_u64(&r);
            }
            if (comine_image_decode(&out, buf, len, "mutant") == COMINE_OK) {
                decoded++;
                insane += out.w <= 0 || out.h <= 0 || !out.rgb;
                comine_image_free(&out);
            } else {
                failed++;
                insane += strstr(comine_last_error(), "mutant") == NULL;
            }
        }
        free(buf);
        free(files[f]);
    }
    int ok = insane == 0 && decoded + failed == 1200;
    printf("%s 1200 mutated/truncated JPEG, PNG, PPM files: %d decoded, %d failed with a message, no crash\n",
           ok ? "ok  " : "FAIL", decoded, failed);
    if (!ok) fx_fail_count++;
    comine_image_free(&img);
}

static float norm(double v) { return (float)((v - 127.5) / 128.0); }

static void test_resize(void)
{
    /* Area shrink 4x4 -> 2x2: each output is the mean of a 2x2 block. */
    comine_image img = make_image(4, 4, 7);
    float out[2 * 2 * 3], want[2 * 2 * 3];
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++)
            for (int c = 0; c < 3; c++) {
                double s = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) s += img.rgb[((2 * y + dy) * 4 + 2 * x + dx) * 3 + c];
                want[(y * 2 + x) * 3 + c] = norm(s / 4);
            }
    comine_image_to_input(out, &img, 2, false);
    fx_check("area 4x4->2x2 == block means", out, want, 12, 1e-5, 0);
    /* Flipped: columns mirrored. */
    float outf[12], wantf[12];
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++)
            for (int c = 0; c < 3; c++) wantf[(y * 2 + x) * 3 + c] = want[(y * 2 + 1 - x) * 3 + c];
    comine_image_to_input(outf, &img, 2, true);
    fx_check("area 4x4->2x2 flipped", outf, wantf, 12, 1e-5, 0);
    comine_image_free(&img);

    /* Area shrink 3 -> 2 (scale 1.5): out0 = (p0 + 0.5 p1) / 1.5, out1 = (0.5 p1 + p2) / 1.5 per axis. */
    img = make_image(3, 3, 9);
    double wt[2][3] = {{1 / 1.5, 0.5 / 1.5, 0}, {0, 0.5 / 1.5, 1 / 1.5}};
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++)
            for (int c = 0; c < 3; c++) {
                double s = 0;
                for (int sy = 0; sy < 3; sy++)
                    for (int sx = 0; sx < 3; sx++) s += wt[y][sy] * wt[x][sx] * img.rgb[(sy * 3 + sx) * 3 + c];
                want[(y * 2 + x) * 3 + c] = norm(s);
            }
    comine_image_to_input(out, &img, 2, false);
    fx_check("area 3x3->2x2 fractional overlaps", out, want, 12, 1e-5, 0);
    comine_image_free(&img);

    /* Bilinear growth 2 -> 4: source x = (j + 0.5) / 2 - 0.5, clamped: 0, 0.25, 0.75, 1. */
    img = make_image(2, 2, 11);
    double pos[4] = {0, 0.25, 0.75, 1};
    float big[4 * 4 * 3], wantb[4 * 4 * 3];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 3; c++) {
                double ty = pos[y], tx = pos[x];
                double p00 = img.rgb[(0 * 2 + 0) * 3 + c], p01 = img.rgb[(0 * 2 + 1) * 3 + c];
                double p10 = img.rgb[(1 * 2 + 0) * 3 + c], p11 = img.rgb[(1 * 2 + 1) * 3 + c];
                double v = (1 - ty) * ((1 - tx) * p00 + tx * p01) + ty * ((1 - tx) * p10 + tx * p11);
                wantb[(y * 4 + x) * 3 + c] = norm(v);
            }
    comine_image_to_input(big, &img, 4, false);
    fx_check("bilinear 2x2->4x4 half-pixel centres", big, wantb, 48, 1e-5, 0);
    comine_image_free(&img);

    /* Same size: plain normalisation; value 0 -> -0.99609375, 255 -> 0.99609375. */
    comine_image one = {2, 1, malloc(6)};
    const uint8_t px[6] = {0, 255, 128, 1, 2, 3};
    memcpy(one.rgb, px, 6);
    float w1[6];
    for (int i = 0; i < 6; i++) w1[i] = norm(px[i]);
    /* 2x1 to 2x2 grows vertically only: both rows equal the source row. */
    float o2[12], w2[12];
    comine_image_to_input(o2, &one, 2, false);
    for (int i = 0; i < 12; i++) w2[i] = w1[i % 6];
    fx_check("2x1 -> 2x2 (rows repeat), (x-127.5)/128", o2, w2, 12, 1e-6, 0);
    FX_EXPECT(fabsf(w1[0] + 0.99609375f) < 1e-7 && fabsf(w1[1] - 0.99609375f) < 1e-7, "normalisation constants");
    comine_image_free(&one);

    /* A crop box: the central 2x2 of a 4x4 at size 2 is the central pixels themselves. */
    img = make_image(4, 4, 13);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 2; x++)
            for (int c = 0; c < 3; c++) want[(y * 2 + x) * 3 + c] = norm(img.rgb[((y + 1) * 4 + x + 1) * 3 + c]);
    comine_image_box_to_input(out, &img, 1, 1, 2, 2, 2, false);
    fx_check("crop box (1,1,2,2) of 4x4 at size 2", out, want, 12, 1e-6, 0);
    /* Augmentation with jitter 0 and flip off: exactly the plain conversion, same draws used. */
    comine_rng r;
    comine_rng_seed(&r, 5, COMINE_STREAM_AUGMENT);
    float aug[12], plain[12];
    comine_image_augment_to_input(aug, &img, 2, false, 0, &r);
    comine_image_to_input(plain, &img, 2, false);
    fx_check("augment(flip off, jitter 0) == plain", aug, plain, 12, 0, 0);
    comine_image_free(&img);
}

int main(void)
{
    comine_log_set_level(COMINE_LOG_ERROR);
    test_codecs();
    test_png_flavours();
    test_mutations();
    test_resize();
    return fx_finish("test_data_image");
}
