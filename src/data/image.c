/* image.c: image decoding (JPEG through TurboJPEG, PNG through libpng's simplified API,
 * binary and text PGM/PPM) and the PNG and JPEG encoders.  Also the per-thread JPEG decoder
 * and header checks that the JPEG-to-input path (image_jpeg_input.c) shares (image_impl.h).
 * Every decoder reports a bad image through comine_fail with the caller's name for it;
 * none of them trusts a size field before checking it against the bytes present. */
#include "image_impl.h"

#include <ctype.h>
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Images larger than this are refused (a corrupt header must not trigger a huge allocation). */
#define MAX_SIDE 32768
#define MAX_PIXELS (64u * 1024u * 1024u)

void comine_image_free(comine_image *img)
{
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

static bool size_ok(long w, long h)
{
    return w > 0 && h > 0 && w <= MAX_SIDE && h <= MAX_SIDE && (uint64_t)w * (uint64_t)h <= MAX_PIXELS;
}

/* One decompressor per thread and image.  libjpeg keeps the quantisation and Huffman tables
 * of one stream for the next (for abbreviated streams), so a damaged file that lacks its own
 * tables would decode with the tables of whatever image the thread read before: each image
 * gets a new decompressor (about 0.1 us), made at its header and kept until the next image
 * or until the thread exits. */
static pthread_key_t decoder_key;
static pthread_once_t decoder_once = PTHREAD_ONCE_INIT;

static void decoder_destroy(void *h) { tjDestroy(h); }
static void decoder_key_create(void) { pthread_key_create(&decoder_key, decoder_destroy); }

void comine_jpeg_decoder_drop(void)
{
    pthread_once(&decoder_once, decoder_key_create);
    tjhandle h = pthread_getspecific(decoder_key);
    if (h) tjDestroy(h);
    pthread_setspecific(decoder_key, NULL);
}

/* A new decompressor for the next image, with no tables from earlier ones. */
tjhandle comine_jpeg_decoder(void)
{
    comine_jpeg_decoder_drop();
    tjhandle h = tjInitDecompress();
    if (h) pthread_setspecific(decoder_key, h);
    return h;
}

/* A decoder that failed may keep state from the bad stream (TurboJPEG 2.1 does after a
 * header with no frame): drop it so that the next image starts clean. */
comine_status comine_jpeg_fail(tjhandle tj, const char *name, const char *what)
{
    comine_status st = comine_fail(COMINE_ERR_FORMAT, "%s: %s (%s)", name, what, tjGetErrorStr2(tj));
    comine_jpeg_decoder_drop();
    return st;
}

/* The header checks every JPEG decode starts with; on success *tj is this thread's decoder. */
comine_status comine_jpeg_header(tjhandle *tj_out, int *w, int *h, int *subsamp, int *colorspace, const uint8_t *data,
                                 size_t size, const char *name)
{
    tjhandle tj = comine_jpeg_decoder();
    *tj_out = tj;
    if (!tj) return comine_fail(COMINE_ERR_NOMEM, "%s: cannot create a JPEG decoder", name);
    *w = *h = *subsamp = *colorspace = 0;
    if (tjDecompressHeader3(tj, data, (unsigned long)size, w, h, subsamp, colorspace) != 0)
        return comine_jpeg_fail(tj, name, "corrupt JPEG header");
    if (*w <= 0 || *h <= 0) return comine_jpeg_fail(tj, name, "corrupt JPEG header: no image frame");
    if (!size_ok(*w, *h)) {
        comine_jpeg_decoder_drop();
        return comine_fail(COMINE_ERR_FORMAT, "%s: JPEG size %dx%d out of range", name, *w, *h);
    }
    if (*colorspace == TJCS_CMYK || *colorspace == TJCS_YCCK)
        return comine_fail(COMINE_ERR_FORMAT, "%s: CMYK JPEG is not supported", name);
    return COMINE_OK;
}

static comine_status decode_jpeg(comine_image *img, const uint8_t *data, size_t size, const char *name)
{
    tjhandle tj;
    int w, h, subsamp, colorspace;
    comine_status st = comine_jpeg_header(&tj, &w, &h, &subsamp, &colorspace, data, size, name);
    if (st != COMINE_OK) return st;
    uint8_t *rgb = comine_malloc((size_t)w * h * 3);
    if (tjDecompress2(tj, data, (unsigned long)size, rgb, w, w * 3, h, TJPF_RGB, 0) != 0) {
        /* Warnings (a truncated stream, for one) count as corrupt: the pixels are not all there. */
        free(rgb);
        return comine_jpeg_fail(tj, name, "corrupt or truncated JPEG");
    }
    img->w = w;
    img->h = h;
    img->rgb = rgb;
    return COMINE_OK;
}

static comine_status decode_png(comine_image *img, const uint8_t *data, size_t size, const char *name)
{
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, data, size))
        return comine_fail(COMINE_ERR_FORMAT, "%s: corrupt PNG (%s)", name, pi.message);
    if (!size_ok((long)pi.width, (long)pi.height)) {
        png_image_free(&pi);
        return comine_fail(COMINE_ERR_FORMAT, "%s: PNG size %ux%u out of range", name, pi.width, pi.height);
    }
    /* libpng's simplified API takes 16-bit files as linear light: read those as 16-bit linear and
     * scale, so that 16-bit values map to v * 255 / 65535 (no gamma curve).  8-bit files with alpha:
     * read RGBA (not premultiplied at 8 bits) and drop alpha, as PIL's convert("RGB") does. */
    bool wide = (pi.format & PNG_FORMAT_FLAG_LINEAR) != 0;
    bool alpha = !wide && (pi.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    pi.format = wide ? PNG_FORMAT_LINEAR_RGB : alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    size_t bytes = PNG_IMAGE_SIZE(pi);
    uint8_t *rgb = comine_malloc(bytes);
    if (!png_image_finish_read(&pi, NULL, rgb, 0, NULL)) {
        comine_status st = comine_fail(COMINE_ERR_FORMAT, "%s: corrupt or truncated PNG (%s)", name, pi.message);
        png_image_free(&pi);
        free(rgb);
        return st;
    }
    if (wide) {
        size_t n = (size_t)pi.width * pi.height * 3;
        const uint16_t *v = (const uint16_t *)rgb;
        for (size_t i = 0; i < n; i++) rgb[i] = (uint8_t)(((uint32_t)v[i] * 255u + 32767u) / 65535u);
    }
    if (alpha) {
        size_t n = (size_t)pi.width * pi.height;
        for (size_t i = 0; i < n; i++) {
            rgb[3 * i] = rgb[4 * i];
            rgb[3 * i + 1] = rgb[4 * i + 1];
            rgb[3 * i + 2] = rgb[4 * i + 2];
        }
    }
    img->w = (int)pi.width;
    img->h = (int)pi.height;
    img->rgb = rgb;
    png_image_free(&pi);
    return COMINE_OK;
}

/* PNM header token reader: skips white space and '#' comments; returns false at the end. */
static bool pnm_token(const uint8_t *d, size_t n, size_t *pos, long *value)
{
    size_t p = *pos;
    for (;;) {
        while (p < n && isspace(d[p])) p++;
        if (p < n && d[p] == '#') {
            while (p < n && d[p] != '\n' && d[p] != '\r') p++;
            continue;
        }
        break;
    }
    if (p >= n || !isdigit(d[p])) return false;
    long v = 0;
    while (p < n && isdigit(d[p])) {
        v = v * 10 + (d[p] - '0');
        if (v > 100000000) return false;
        p++;
    }
    *pos = p;
    *value = v;
    return true;
}

static comine_status decode_pnm(comine_image *img, const uint8_t *data, size_t size, const char *name)
{
    char kind = (char)data[1];
    int channels = (kind == '2' || kind == '5') ? 1 : 3;
    bool binary = kind == '5' || kind == '6';
    size_t pos = 2;
    long w, h, maxval;
    if (!pnm_token(data, size, &pos, &w) || !pnm_token(data, size, &pos, &h) || !pnm_token(data, size, &pos, &maxval))
        return comine_fail(COMINE_ERR_FORMAT, "%s: corrupt P%c header", name, kind);
    if (!size_ok(w, h)) return comine_fail(COMINE_ERR_FORMAT, "%s: P%c size %ldx%ld out of range", name, kind, w, h);
    if (maxval < 1 || maxval > 65535)
        return comine_fail(COMINE_ERR_FORMAT, "%s: P%c maxval %ld out of range (1..65535)", name, kind, maxval);
    size_t count = (size_t)w * h * channels;
    uint8_t *rgb = comine_malloc((size_t)w * h * 3);
    uint8_t *vals = channels == 3 ? rgb : comine_malloc(count);
    if (binary) {
        if (pos >= size || !isspace(data[pos])) goto truncated;
        pos++; /* exactly one white-space byte before the raster */
        size_t bps = maxval > 255 ? 2 : 1;
        if (size - pos < count * bps) goto truncated;
        const uint8_t *r = data + pos;
        for (size_t i = 0; i < count; i++) {
            long v = bps == 2 ? (r[2 * i] << 8) | r[2 * i + 1] : r[i];
            if (v > maxval) v = maxval;
            vals[i] = (uint8_t)((v * 255 + maxval / 2) / maxval);
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            long v;
            if (!pnm_token(data, size, &pos, &v)) goto truncated;
            if (v > maxval) v = maxval;
            vals[i] = (uint8_t)((v * 255 + maxval / 2) / maxval);
        }
    }
    if (channels == 1) {
        for (size_t i = 0; i < count; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = vals[i];
        free(vals);
    }
    img->w = (int)w;
    img->h = (int)h;
    img->rgb = rgb;
    return COMINE_OK;
truncated:
    if (vals != rgb) free(vals);
    free(rgb);
    return comine_fail(COMINE_ERR_FORMAT, "%s: truncated P%c data (%ldx%ld, %zu bytes)", name, kind, w, h, size);
}

bool comine_image_sniff(const uint8_t *data, size_t size)
{
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return true;
    if (size >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8)) return true;
    if (size >= 3 && data[0] == 'P' && data[1] >= '2' && data[1] <= '6' && data[1] != '4' && isspace(data[2]))
        return true;
    return false;
}

bool comine_image_path_has_ext(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return false;
    static const char *exts[] = {".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".pnm"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (!strcasecmp(dot, exts[i])) return true;
    return false;
}

comine_status comine_image_decode(comine_image *img, const uint8_t *data, size_t size, const char *name)
{
    img->w = img->h = 0;
    img->rgb = NULL;
    if (!name) name = "image";
    if (size == 0) return comine_fail(COMINE_ERR_FORMAT, "%s: empty file (0 bytes)", name);
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return decode_jpeg(img, data, size, name);
    if (size >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8)) return decode_png(img, data, size, name);
    if (comine_image_sniff(data, size)) return decode_pnm(img, data, size, name);
    return comine_fail(COMINE_ERR_FORMAT, "%s: not an image (no JPEG, PNG or PGM/PPM signature)", name);
}

comine_status comine_image_load(comine_image *img, const char *path)
{
    uint8_t *data;
    size_t size;
    img->w = img->h = 0;
    img->rgb = NULL;
    comine_status st = comine_read_file(path, &data, &size);
    if (st != COMINE_OK) return st;
    st = comine_image_decode(img, data, size, path);
    free(data);
    return st;
}

comine_status comine_image_encode_png(const comine_image *img, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return comine_fail(COMINE_ERR_ARG, "PNG encode: no image");
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)img->w;
    pi.height = (png_uint_32)img->h;
    pi.format = PNG_FORMAT_RGB;
    png_alloc_size_t bytes = 0;
    if (!png_image_write_to_memory(&pi, NULL, &bytes, 0, img->rgb, 0, NULL))
        return comine_fail(COMINE_ERR_FORMAT, "PNG encoding failed (%s)", pi.message);
    uint8_t *buf = comine_malloc(bytes);
    if (!png_image_write_to_memory(&pi, buf, &bytes, 0, img->rgb, 0, NULL)) {
        free(buf);
        return comine_fail(COMINE_ERR_FORMAT, "PNG encoding failed (%s)", pi.message);
    }
    *data = buf;
    *size = bytes;
    return COMINE_OK;
}

comine_status comine_image_save_png(const comine_image *img, const char *path)
{
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0)
        return comine_fail(COMINE_ERR_ARG, "%s: no image to save", path);
    uint8_t *buf;
    size_t bytes;
    comine_status st = comine_image_encode_png(img, &buf, &bytes);
    if (st != COMINE_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", comine_last_error());
        return comine_fail(st, "%s: %s", path, msg);
    }
    st = comine_write_file_atomic(path, buf, bytes);
    free(buf);
    return st;
}

comine_status comine_image_encode_jpeg(const comine_image *img, int quality, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return comine_fail(COMINE_ERR_ARG, "JPEG encode: no image");
    if (quality < 1 || quality > 100)
        return comine_fail(COMINE_ERR_ARG, "JPEG encode: quality %d out of range 1..100", quality);
    tjhandle tj = tjInitCompress();
    if (!tj) return comine_fail(COMINE_ERR_NOMEM, "JPEG encode: cannot create an encoder");
    unsigned char *out = NULL;
    unsigned long out_size = 0;
    int subsamp = quality >= 90 ? TJSAMP_444 : TJSAMP_420;
    if (tjCompress2(tj, img->rgb, img->w, img->w * 3, img->h, TJPF_RGB, &out, &out_size, subsamp, quality, 0) != 0) {
        comine_status st = comine_fail(COMINE_ERR_FORMAT, "JPEG encode failed: %s", tjGetErrorStr2(tj));
        tjFree(out);
        tjDestroy(tj);
        return st;
    }
    *data = comine_malloc(out_size);
    memcpy(*data, out, out_size);
    *size = out_size;
    tjFree(out);
    tjDestroy(tj);
    return COMINE_OK;
}
