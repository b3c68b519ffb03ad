/* synth_write.c: synthetic data sets on disk: OUT/<identity>/<nnnn>.png|jpg for every
 * identity and image, and a contact sheet of them in one PNG.  The images come from
 * comine_synth_image (synth.c), the PNG and JPEG bytes from the image encoders (image.c).
 * Identities are written in parallel under OpenMP; the files do not depend on the thread
 * count, since each image depends only on (seed, identity, image). */
#include "comine/synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void comine_synth_identity_name(char *buf, size_t size, int index)
{
    snprintf(buf, size, "id%05d", index);
}

/* Write one file through PATH.tmp and a rename: a crash never leaves a half-written image
 * under its final name.  No fsync per image (thousands of them): the data set can be made again. */
static comine_status write_bytes(const char *path, const void *data, size_t size)
{
    size_t n = strlen(path) + 8;
    char *tmp = comine_malloc(n);
    snprintf(tmp, n, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        comine_status st = comine_fail(COMINE_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    size_t put = fwrite(data, 1, size, fp);
    int bad = put != size || fflush(fp) != 0;
    bad |= fclose(fp) != 0;
    if (bad || rename(tmp, path) != 0) {
        comine_status st = comine_fail(COMINE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return COMINE_OK;
}

static comine_status write_one(const char *out_dir, const comine_synth_opts *o, int id, int k)
{
    char name[16], file[32];
    comine_synth_identity_name(name, sizeof name, id);
    snprintf(file, sizeof file, "%s/%04d.%s", name, k, o->format == COMINE_SYNTH_JPEG ? "jpg" : "png");
    char *path = comine_path_join(out_dir, file);
    comine_image img;
    comine_synth_image(&img, o->seed, id, k, o->size);
    uint8_t *data = NULL;
    size_t size = 0;
    comine_status st = o->format == COMINE_SYNTH_JPEG ? comine_image_encode_jpeg(&img, o->jpeg_quality, &data, &size)
                                                      : comine_image_encode_png(&img, &data, &size);
    if (st == COMINE_OK) {
        st = write_bytes(path, data, size);
    } else {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", comine_last_error());
        st = comine_fail(st, "%s: %s", path, msg);
    }
    free(data);
    comine_image_free(&img);
    free(path);
    return st;
}

comine_status comine_synth_write(const char *out_dir, const comine_synth_opts *o)
{
    if (o->ids < 1) return comine_fail(COMINE_ERR_ARG, "synth: need at least 1 identity (got %d)", o->ids);
    if (o->per_id < 1) return comine_fail(COMINE_ERR_ARG, "synth: need at least 1 image per identity (got %d)", o->per_id);
    if (o->size < 16 || o->size > 1024) return comine_fail(COMINE_ERR_ARG, "synth: size %d is outside [16, 1024]", o->size);
    if (o->format == COMINE_SYNTH_JPEG && (o->jpeg_quality < 1 || o->jpeg_quality > 100))
        return comine_fail(COMINE_ERR_ARG, "synth: JPEG quality %d is outside [1, 100]", o->jpeg_quality);
    /* the names are id00000 .. id99999 */
    if (o->first_id < 0 || o->ids > 100000 || o->first_id > 100000 - o->ids)
        return comine_fail(COMINE_ERR_ARG, "synth: identities %ld .. %ld are outside 0 .. 99999", (long)o->first_id,
                           (long)o->first_id + o->ids - 1);
    for (int id = o->first_id; id < o->first_id + o->ids; id++) {
        char name[16];
        comine_synth_identity_name(name, sizeof name, id);
        char *dir = comine_path_join(out_dir, name);
        comine_status st = comine_mkdirs(dir);
        free(dir);
        if (st != COMINE_OK) return st;
    }
    long total = (long)o->ids * o->per_id;
    long done = 0;
    int failed = 0;
    comine_status first = COMINE_OK;
    char first_msg[512] = "";
    double t0 = comine_now(), last = t0;
    /* one identity per iteration; every image depends only on (seed, identity, image) */
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (int id = 0; id < o->ids; id++) {
        int ok = 1;
        for (int k = 0; k < o->per_id && ok; k++) {
            comine_status st = write_one(out_dir, o, o->first_id + id, k);
            if (st != COMINE_OK) {
                ok = 0;
#ifdef COMINE_HAVE_OPENMP
#pragma omp critical(comine_synth_err)
#endif
                {
                    if (!failed) {
                        first = st;
                        snprintf(first_msg, sizeof first_msg, "%s", comine_last_error());
                    }
                    failed = 1;
                }
            }
        }
#ifdef COMINE_HAVE_OPENMP
#pragma omp critical(comine_synth_progress)
#endif
        {
            done += o->per_id;
            double now = comine_now();
            if (o->progress && (now - last > 1.0 || done == total)) {
                fprintf(stderr, "synth: %ld / %ld images (%.0f images/s)\n", done, total,
                        done / fmax(now - t0, 1e-9));
                last = now;
            }
        }
    }
    if (failed) return comine_fail(first, "%s", first_msg);
    return COMINE_OK;
}

comine_status comine_synth_grid(const char *png_path, uint64_t seed, int ids, int per_id, int size)
{
    if (ids < 1 || per_id < 1 || size < 16 || size > 1024)
        return comine_fail(COMINE_ERR_ARG, "synth grid: bad shape %d x %d of %d px", ids, per_id, size);
    const int gap = 2;
    comine_image grid;
    grid.w = per_id * (size + gap) + gap;
    grid.h = ids * (size + gap) + gap;
    grid.rgb = comine_malloc((size_t)grid.w * grid.h * 3);
    memset(grid.rgb, 255, (size_t)grid.w * grid.h * 3);
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1)
#endif
    for (int id = 0; id < ids; id++)
        for (int k = 0; k < per_id; k++) {
            comine_image img;
            comine_synth_image(&img, seed, id, k, size);
            for (int i = 0; i < size; i++)
                memcpy(grid.rgb + ((size_t)(gap + id * (size + gap) + i) * grid.w + gap + k * (size + gap)) * 3,
                       img.rgb + (size_t)i * size * 3, (size_t)size * 3);
            comine_image_free(&img);
        }
    comine_status st = comine_image_save_png(&grid, png_path);
    free(grid.rgb);
    return st;
}
