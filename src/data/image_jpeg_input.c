/* image_jpeg_input.c: the loader's fast path for JPEGs already at the input size.  TurboJPEG
 * decodes to its YUV planes; the chroma upsampling and YCbCr -> RGB conversion that
 * tjDecompress2 does next with its defaults (libjpeg-turbo's jdsample.c "fancy" triangle
 * filters, jdcolor.c's fixed-point tables) are redone here fused with the mirror and the
 * normalisation, so the floats equal comine_image_decode + comine_image_to_input bit for bit.
 * libjpeg upsamples chroma rows of two samples or fewer by replication instead: those images,
 * other layouts and other sizes are left to the general path.  Each stage runs over a band of
 * rows as one long row (the rows of a face crop are too short for the vector loops to pay off
 * one by one), and a band's buffers stay in the first-level cache.  The integer stages have
 * per-CPU versions (COMINE_CPU_CLONES) and the float stores an AVX-512, an AVX2 and a plain
 * version chosen at run time (core/cpu_dispatch.h), so a portable build runs them as a
 * native one; every version writes the same bytes and floats.  Assumes image.c's per-thread
 * decoder (image_impl.h); keeps its own per-thread scratch. */
#include "core/cpu_dispatch.h"
#include "image_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef COMINE_CPU_X86
#include <immintrin.h>
#endif

#define YCC_FIX(x) ((int32_t)((x) * 65536.0 + 0.5))
#define YCC_HALF ((int32_t)1 << 15)

/* Per-thread scratch for the planes, grown as needed and freed when the thread exits. */
typedef struct jpeg_scratch {
    uint8_t *buf;
    size_t cap;
} jpeg_scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *p)
{
    jpeg_scratch *s = p;
    free(s->buf);
    free(s);
}
static void scratch_key_create(void) { pthread_key_create(&scratch_key, scratch_destroy); }

static uint8_t *thread_scratch(size_t bytes)
{
    pthread_once(&scratch_once, scratch_key_create);
    jpeg_scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = comine_calloc(1, sizeof *s);
        pthread_setspecific(scratch_key, s);
    }
    if (s->cap < bytes) {
        free(s->buf);
        s->buf = comine_malloc(bytes);
        s->cap = bytes;
    }
    return s->buf;
}

/* h2v2, vertical half, for chroma rows r0 .. r1 - 1: output row 2r takes 3/4 of chroma row r and
 * 1/4 of row r - 1, row 2r + 1 3/4 of row r and 1/4 of row r + 1, the edge rows standing in for
 * the missing ones.  in is (ch, cw); sums is (2 * (r1 - r0), cw); halves is (2, r1 - r0, cw)
 * scratch: the upper and lower sums run as long vector loops, then their rows interleave. */
COMINE_CPU_CLONES
static void upsample_v2_sums(int16_t *restrict sums, int16_t *restrict halves, const uint8_t *restrict in, int cw,
                             int ch, int r0, int r1)
{
    const size_t lo = (size_t)r0 * cw, m = (size_t)(r1 - r0) * cw;
    int16_t *restrict up = halves, *restrict down = halves + m;
    const uint8_t *restrict here = in + lo;
    const size_t up_from = r0 == 0 ? (size_t)cw : 0, down_to = r1 == ch ? m - cw : m;
    for (size_t j = 0; j < up_from; j++) up[j] = (int16_t)(4 * here[j]);
    for (size_t j = up_from; j < m; j++) up[j] = (int16_t)(3 * here[j] + in[lo + j - cw]);
    for (size_t j = 0; j < down_to; j++) down[j] = (int16_t)(3 * here[j] + here[j + cw]);
    for (size_t j = down_to; j < m; j++) down[j] = (int16_t)(4 * here[j]);
    for (int r = 0; r < r1 - r0; r++) {
        memcpy(sums + (size_t)(2 * r) * cw, halves + (size_t)r * cw, sizeof(int16_t) * cw);
        memcpy(sums + (size_t)(2 * r + 1) * cw, halves + m + (size_t)r * cw, sizeof(int16_t) * cw);
    }
}

/* h2v2, horizontal half: 3/4 of the nearer column sum and 1/4 of the next one, / 16 with
 * libjpeg's alternating rounding (+8 left, +7 right), the edge column standing in for the
 * missing one.  sums is (rows, cw); out is (rows, 2 * cw).  One pass over all rows as one
 * long row, then the first and last column of every row are redone. */
COMINE_CPU_CLONES
static void upsample_h2_sums(uint8_t *restrict out, const int16_t *restrict sums, int cw, int rows)
{
    const size_t n = (size_t)rows * cw;
    for (size_t i = 1; i + 1 < n; i++) {
        int here = 3 * sums[i];
        out[2 * i] = (uint8_t)((here + sums[i - 1] + 8) >> 4);
        out[2 * i + 1] = (uint8_t)((here + sums[i + 1] + 7) >> 4);
    }
    for (int r = 0; r < rows; r++) {
        size_t first = (size_t)r * cw, last = first + cw - 1;
        out[2 * first] = (uint8_t)((4 * sums[first] + 8) >> 4);
        out[2 * first + 1] = (uint8_t)((3 * sums[first] + sums[first + 1] + 7) >> 4);
        out[2 * last] = (uint8_t)((3 * sums[last] + sums[last - 1] + 8) >> 4);
        out[2 * last + 1] = (uint8_t)((4 * sums[last] + 7) >> 4);
    }
}

/* h2v1: 3/4 of the nearer sample and 1/4 of the next one across, / 4 with alternating rounding
 * (+1 left, +2 right).  in is (rows, cw); out is (rows, 2 * cw); the same one-pass scheme. */
COMINE_CPU_CLONES
static void upsample_h2v1(uint8_t *restrict out, const uint8_t *restrict in, int cw, int rows)
{
    const size_t n = (size_t)rows * cw;
    for (size_t i = 1; i + 1 < n; i++) {
        int here = 3 * in[i];
        out[2 * i] = (uint8_t)((here + in[i - 1] + 1) >> 2);
        out[2 * i + 1] = (uint8_t)((here + in[i + 1] + 2) >> 2);
    }
    for (int r = 0; r < rows; r++) {
        size_t first = (size_t)r * cw, last = first + cw - 1;
        out[2 * first] = in[first];
        out[2 * first + 1] = (uint8_t)((3 * in[first] + in[first + 1] + 2) >> 2);
        out[2 * last] = (uint8_t)((3 * in[last] + in[last - 1] + 1) >> 2);
        out[2 * last + 1] = in[last];
    }
}

static inline int32_t clamp_u8(int32_t v)
{
    v = v < 0 ? 0 : v;
    return v > 255 ? 255 : v;
}

/* floor(x * c / 65536) for int16 x and c: the high half of the product (one vector multiply). */
static inline int16_t mul_high(int16_t x, int16_t c)
{
    return (int16_t)(((int32_t)x * c) >> 16);
}

/* jdcolor.c's ycc_rgb_convert, its tables written out as the expressions they hold:
 *   R - Y = (FIX(1.402) Cr + 1/2) >> 16,  B - Y = (FIX(1.772) Cb + 1/2) >> 16,
 *   G - Y = (1/2 - FIX(0.34414) Cb - FIX(0.71414) Cr) >> 16   (Cb, Cr centred on 0, ONE_HALF = 1/2).
 * R and B in 16-bit lanes, exactly: FIX(1.402) = 65536 + 26345 and FIX(1.772) = 131072 - 14942
 * take out whole multiples of Cr and Cb, and (c x + 32768) >> 16 = ((c 2x >> 16) + 1) >> 1.
 * All planes are (n). */
COMINE_CPU_CLONES
static void ycc_to_rgb(uint8_t *restrict red, uint8_t *restrict green, uint8_t *restrict blue,
                       const uint8_t *restrict luma, const uint8_t *restrict cb, const uint8_t *restrict cr, size_t n)
{
    const int32_t cr_g = YCC_FIX(0.71414), cb_g = YCC_FIX(0.34414);
    for (size_t i = 0; i < n; i++) {
        const int16_t y = luma[i], b = (int16_t)(cb[i] - 128), r = (int16_t)(cr[i] - 128);
        const int16_t r_y = (int16_t)(r + ((mul_high((int16_t)(2 * r), 26345) + 1) >> 1));
        const int16_t b_y = (int16_t)(2 * b + ((mul_high((int16_t)(2 * b), -14942) + 1) >> 1));
        const int16_t g_y = (int16_t)((YCC_HALF - cb_g * b - cr_g * r) >> 16);
        red[i] = (uint8_t)clamp_u8(y + r_y);
        green[i] = (uint8_t)clamp_u8(y + g_y);
        blue[i] = (uint8_t)clamp_u8(y + b_y);
    }
}

/* (x - 127.5) / 128 of n bytes, as comine_image_box_to_input writes it.  Where the CPU has
 * them the floats go out with non-temporal stores: the loader writes batches far larger than
 * the caches, and streaming spares reading every line of them before overwriting it (the
 * caller ends the image with store_fence).  One multiply and one subtract per float in every
 * version: the same floats. */
static void bytes_to_input_c(float *restrict out, const uint8_t *restrict in, size_t n)
{
    const float inv = 1.0f / 128.0f, off = 127.5f * inv;
    for (size_t i = 0; i < n; i++) out[i] = (float)in[i] * inv - off;
}

#ifdef COMINE_CPU_X86
__attribute__((target("avx512f"))) static void bytes_to_input_avx512(float *restrict out, const uint8_t *restrict in,
                                                                     size_t n)
{
    const float inv = 1.0f / 128.0f, off = 127.5f * inv;
    size_t i = 0;
    for (; i < n && ((uintptr_t)(out + i) & 63); i++) out[i] = (float)in[i] * inv - off;
    const __m512 scale = _mm512_set1_ps(inv), shift = _mm512_set1_ps(off);
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(in + i))));
        _mm512_stream_ps(out + i, _mm512_sub_ps(_mm512_mul_ps(x, scale), shift));
    }
    for (; i < n; i++) out[i] = (float)in[i] * inv - off;
}

__attribute__((target("avx2"))) static void bytes_to_input_avx2(float *restrict out, const uint8_t *restrict in,
                                                                size_t n)
{
    const float inv = 1.0f / 128.0f, off = 127.5f * inv;
    size_t i = 0;
    for (; i < n && ((uintptr_t)(out + i) & 31); i++) out[i] = (float)in[i] * inv - off;
    const __m256 scale = _mm256_set1_ps(inv), shift = _mm256_set1_ps(off);
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(in + i))));
        _mm256_stream_ps(out + i, _mm256_sub_ps(_mm256_mul_ps(x, scale), shift));
    }
    for (; i < n; i++) out[i] = (float)in[i] * inv - off;
}
#endif

typedef void bytes_to_input_fn(float *restrict out, const uint8_t *restrict in, size_t n);

static bytes_to_input_fn *bytes_to_input_for_cpu(void)
{
#ifdef COMINE_CPU_X86
    int level = comine_cpu_x86_level();
    if (level >= 4) return bytes_to_input_avx512;
    if (level >= 3) return bytes_to_input_avx2;
#endif
    return bytes_to_input_c;
}

/* Orders the non-temporal stores of bytes_to_input before whatever follows (the hand-over of
 * the batch to another thread). */
static void store_fence(void)
{
#ifdef COMINE_CPU_X86
    _mm_sfence();
#endif
}

/* Planes (h, stride) to the input (h, w, 3), mirrored when flip, (x - 127.5) / 128 as
 * comine_image_box_to_input writes it.  rgb is (h, w, 3) scratch. */
COMINE_CPU_CLONES
static void planes_to_input(float *restrict out, uint8_t *restrict rgb, const uint8_t *red, const uint8_t *green,
                            const uint8_t *blue, int w, int h, size_t stride, bool flip)
{
    static bytes_to_input_fn *_Atomic chosen;
    bytes_to_input_fn *bytes_to_input = chosen;
    if (!bytes_to_input) chosen = bytes_to_input = bytes_to_input_for_cpu();
    const size_t row = (size_t)w * 3;
    if (stride == (size_t)w) {
        /* Without padding the planes interleave as one long row.  Read backwards, that row is
         * the band mirrored and upside down: its rows then go out bottom up. */
        const size_t n = (size_t)w * h;
        const uint8_t *restrict r = red, *restrict g = green, *restrict b = blue;
        if (!flip) {
            for (size_t x = 0; x < n; x++) {
                rgb[3 * x] = r[x];
                rgb[3 * x + 1] = g[x];
                rgb[3 * x + 2] = b[x];
            }
            bytes_to_input(out, rgb, n * 3);
            return;
        }
        for (size_t x = 0; x < n; x++) {
            rgb[3 * x] = r[n - 1 - x];
            rgb[3 * x + 1] = g[n - 1 - x];
            rgb[3 * x + 2] = b[n - 1 - x];
        }
        for (int y = 0; y < h; y++) bytes_to_input(out + (size_t)y * row, rgb + (size_t)(h - 1 - y) * row, row);
        return;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *restrict r = red + (size_t)y * stride, *restrict g = green + (size_t)y * stride,
                                *restrict b = blue + (size_t)y * stride;
        uint8_t *restrict dst = rgb + (size_t)y * row;
        for (int x = 0; x < w; x++) {
            const int sx = flip ? w - 1 - x : x;
            dst[3 * x] = r[sx];
            dst[3 * x + 1] = g[sx];
            dst[3 * x + 2] = b[sx];
        }
    }
    bytes_to_input(out, rgb, row * h);
}

/* The header fields the fast path needs, read from the markers up to the first SOS without
 * TurboJPEG (tjDecompressHeader3 parses the whole header, tables included, and the decode
 * parses it again): the size and sampling of an 8-bit baseline, extended or progressive
 * Huffman frame, and its colour space as libjpeg infers it (jdapimin.c: a JFIF APP0 marker
 * means YCbCr; without JFIF or Adobe markers, component ids 1, 2, 3 do).  Only the layouts the
 * fast path takes are recognised, and only when nothing else could change libjpeg's reading
 * of them: false otherwise, and the caller asks TurboJPEG. */
static bool jpeg_quick_header(int *w, int *h, int *subsamp, int *colorspace, const uint8_t *data, size_t size)
{
    bool jfif = false, adobe = false, frame = false;
    int ncomp = 0, ids[3] = {0, 0, 0}, hs[3] = {0, 0, 0}, vs[3] = {0, 0, 0};
    size_t p = 2; /* after SOI */
    for (;;) {
        if (p >= size || data[p] != 0xff) return false;
        while (p < size && data[p] == 0xff) p++; /* fill bytes */
        if (p + 3 > size) return false;
        const int marker = data[p];
        const size_t len = (size_t)data[p + 1] << 8 | data[p + 2]; /* counts its own two bytes */
        const uint8_t *seg = data + p + 3;
        if (len < 2 || p + 1 + len > size) return false;
        if (marker == 0xda) break; /* SOS */
        if (marker == 0xc0 || marker == 0xc1 || marker == 0xc2) {
            if (frame || len < 8 || seg[0] != 8) return false;
            ncomp = seg[5];
            if ((ncomp != 1 && ncomp != 3) || len != 8 + 3 * (size_t)ncomp) return false;
            *h = seg[1] << 8 | seg[2];
            *w = seg[3] << 8 | seg[4];
            for (int c = 0; c < ncomp; c++) {
                ids[c] = seg[6 + 3 * c];
                hs[c] = seg[7 + 3 * c] >> 4;
                vs[c] = seg[7 + 3 * c] & 15;
            }
            frame = true;
        } else if (marker == 0xe0) {
            if (len >= 2 + 14 && !memcmp(seg, "JFIF", 5)) jfif = true;
        } else if (marker == 0xee) {
            adobe = true;
        } else if (!((marker >= 0xe1 && marker <= 0xef) || marker == 0xfe || marker == 0xdb || marker == 0xc4 ||
                     marker == 0xdd)) {
            return false; /* another frame type, arithmetic coding, or a marker out of place */
        }
        p += 1 + len;
    }
    if (!frame || *w <= 0 || *h <= 0) return false;
    if (ncomp == 1) {
        *subsamp = TJSAMP_GRAY;
        *colorspace = TJCS_GRAY;
        return hs[0] == 1 && vs[0] == 1;
    }
    if (!(jfif || (!adobe && ids[0] == 1 && ids[1] == 2 && ids[2] == 3))) return false;
    if (hs[1] != 1 || vs[1] != 1 || hs[2] != 1 || vs[2] != 1) return false;
    if (hs[0] == 1 && vs[0] == 1) *subsamp = TJSAMP_444;
    else if (hs[0] == 2 && vs[0] == 1) *subsamp = TJSAMP_422;
    else if (hs[0] == 2 && vs[0] == 2) *subsamp = TJSAMP_420;
    else return false;
    *colorspace = TJCS_YCbCr;
    return true;
}

comine_status comine_image_jpeg_to_input(float *out, bool *done, const uint8_t *data, size_t bytes,
                                         const char *name, int size, bool flip)
{
    // out is (size, size, 3), written only when *done comes back true
    *done = false;
    if (!name) name = "image";
    if (bytes < 3 || data[0] != 0xff || data[1] != 0xd8 || data[2] != 0xff) return COMINE_OK;
    tjhandle tj;
    int w, h, subsamp, colorspace;
    const bool quick = jpeg_quick_header(&w, &h, &subsamp, &colorspace, data, bytes);
    if (quick) {
        tj = comine_jpeg_decoder();
        if (!tj) return comine_fail(COMINE_ERR_NOMEM, "%s: cannot create a JPEG decoder", name);
    } else {
        comine_status st = comine_jpeg_header(&tj, &w, &h, &subsamp, &colorspace, data, bytes, name);
        if (st != COMINE_OK) return st;
    }
    if (w != size || h != size) return COMINE_OK;
    const bool gray = colorspace == TJCS_GRAY && subsamp == TJSAMP_GRAY;
    const bool ycc = colorspace == TJCS_YCbCr &&
                     (subsamp == TJSAMP_444 || subsamp == TJSAMP_422 || subsamp == TJSAMP_420);
    if (!gray && !ycc) return COMINE_OK;
    const int nplanes = gray ? 1 : 3;
    int pw[3] = {0, 0, 0}, ph[3] = {0, 0, 0};
    size_t plane_bytes = 0;
    for (int p = 0; p < nplanes; p++) {
        pw[p] = tjPlaneWidth(p, w, subsamp);
        ph[p] = tjPlaneHeight(p, h, subsamp);
        if (pw[p] <= 0 || ph[p] <= 0) return COMINE_OK;
        plane_bytes += (size_t)pw[p] * ph[p];
    }
    const int cw = pw[1], ch = ph[1];
    if (ycc && subsamp != TJSAMP_444 && cw <= 2) return COMINE_OK;
    /* Every full-resolution plane has the luma plane's layout: 2 * cw == pw[0], 2 * ch == ph[0]
     * when the chroma is subsampled that way, so one index runs over all of them. */
    const size_t stride = (size_t)pw[0];
    if (ycc && subsamp != TJSAMP_444 && (2 * (size_t)cw != stride || (subsamp == TJSAMP_420 ? 2 * ch : ch) != ph[0]))
        return COMINE_OK;
    /* The stages run over bands of output rows small enough to stay in the first-level cache.
     * scratch: the decoded planes, then per band: column sums (2, band, cw) and their halves
     * (band, cw), full-resolution Cb, Cr, R, G, B (band, stride) and interleaved RGB (band, w, 3) */
    const int band = 16;
    const size_t sums_elems = ycc ? (size_t)band * cw : 0, band_px = (size_t)band * stride;
    uint8_t *buf = thread_scratch(plane_bytes + 2 + sizeof(int16_t) * 3 * sums_elems + 5 * band_px +
                                  3 * (size_t)band * w);
    unsigned char *plane[3] = {buf, NULL, NULL};
    int strides[3] = {pw[0], pw[1], pw[2]};
    for (int p = 1; p < nplanes; p++) plane[p] = plane[p - 1] + (size_t)pw[p - 1] * ph[p - 1];
    int16_t *sums_cb = (int16_t *)(void *)(buf + ((plane_bytes + 1) & ~(size_t)1));
    int16_t *sums_cr = sums_cb + sums_elems, *halves = sums_cr + sums_elems;
    uint8_t *cb = (uint8_t *)(halves + sums_elems), *cr = cb + band_px, *red = cr + band_px;
    uint8_t *green = red + band_px, *blue = green + band_px, *rgb = blue + band_px;
    if (tjDecompressToYUVPlanes(tj, data, (unsigned long)bytes, plane, w, strides, h, 0) != 0) {
        /* Warnings count as corrupt, as in comine_image_decode.  A header TurboJPEG has not
         * seen yet gets comine_image_decode's message for a bad header when it is one.  Either way the next
         * image starts on a new decoder, as after any failure (a decoder keeps the Huffman
         * tables of earlier images, which a stream missing one of its own would use). */
        if (!quick) return comine_jpeg_fail(tj, name, "corrupt or truncated JPEG");
        char why[512];
        snprintf(why, sizeof why, "%s", tjGetErrorStr2(tj));
        comine_jpeg_decoder_drop();
        comine_status st = comine_jpeg_header(&tj, &w, &h, &subsamp, &colorspace, data, bytes, name);
        if (st != COMINE_OK) return st;
        comine_jpeg_decoder_drop();
        return comine_fail(COMINE_ERR_FORMAT, "%s: corrupt or truncated JPEG (%s)", name, why);
    }
    for (int y0 = 0; y0 < h; y0 += band) {
        const int y1 = y0 + band < ph[0] ? y0 + band : ph[0], rows = (y1 < h ? y1 : h) - y0;
        float *dst = out + (size_t)y0 * w * 3;
        const uint8_t *luma = plane[0] + (size_t)y0 * stride;
        if (gray) {
            planes_to_input(dst, rgb, luma, luma, luma, w, rows, stride, flip);
            continue;
        }
        const uint8_t *full_cb = plane[1] + (size_t)y0 * stride, *full_cr = plane[2] + (size_t)y0 * stride;
        if (subsamp == TJSAMP_420) {
            upsample_v2_sums(sums_cb, halves, plane[1], cw, ch, y0 / 2, y1 / 2);
            upsample_v2_sums(sums_cr, halves, plane[2], cw, ch, y0 / 2, y1 / 2);
            upsample_h2_sums(cb, sums_cb, cw, y1 - y0);
            upsample_h2_sums(cr, sums_cr, cw, y1 - y0);
            full_cb = cb;
            full_cr = cr;
        } else if (subsamp == TJSAMP_422) {
            upsample_h2v1(cb, plane[1] + (size_t)y0 * cw, cw, y1 - y0);
            upsample_h2v1(cr, plane[2] + (size_t)y0 * cw, cw, y1 - y0);
            full_cb = cb;
            full_cr = cr;
        }
        ycc_to_rgb(red, green, blue, luma, full_cb, full_cr, (size_t)(y1 - y0) * stride);
        planes_to_input(dst, rgb, red, green, blue, w, rows, stride, flip);
    }
    store_fence();
    *done = true;
    return COMINE_OK;
}
