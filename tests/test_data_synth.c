/* test_data_synth.c: synthetic faces: determinism (same seed, same bytes; other seeds and
 * images differ), independence from the thread count, the folder layout written by
 * comine_synth_write and its round trip through comine_dataset_open (PNG is lossless, so the
 * decoded pixels must equal the rendered ones), identities that differ more than images of
 * one identity, argument errors, and the rendering speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/core.h"
#include "comine/data.h"
#include "comine/synth.h"
#include "fixture.h"

static double mean_abs_diff(const comine_image *a, const comine_image *b)
{
    double s = 0;
    size_t n = (size_t)a->w * a->h * 3;
    for (size_t i = 0; i < n; i++) s += abs((int)a->rgb[i] - (int)b->rgb[i]);
    return s / n;
}

static double pixel_std(const comine_image *a)
{
    size_t n = (size_t)a->w * a->h * 3;
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++) m += a->rgb[i];
    m /= n;
    for (size_t i = 0; i < n; i++) v += (a->rgb[i] - m) * (a->rgb[i] - m);
    return sqrt(v / n);
}

static int files_equal(const char *a, const char *b)
{
    uint8_t *da, *db;
    size_t na, nb;
    if (comine_read_file(a, &da, &na) != COMINE_OK) return 0;
    if (comine_read_file(b, &db, &nb) != COMINE_OK) {
        free(da);
        return 0;
    }
    int eq = na == nb && !memcmp(da, db, na);
    free(da);
    free(db);
    return eq;
}

int main(void)
{
    /* determinism */
    comine_image a, b, c, d;
    comine_synth_image(&a, 7, 3, 5, 48);
    comine_synth_image(&b, 7, 3, 5, 48);
    comine_synth_image(&c, 8, 3, 5, 48);
    comine_synth_image(&d, 7, 3, 6, 48);
    int mark = fx_fail_count;
    FX_EXPECT(a.w == 48 && a.h == 48, "image size %dx%d", a.w, a.h);
    FX_EXPECT(!memcmp(a.rgb, b.rgb, 48 * 48 * 3), "same seed/identity/image gives different bytes");
    FX_EXPECT(memcmp(a.rgb, c.rgb, 48 * 48 * 3) != 0, "different seeds give identical images");
    FX_EXPECT(memcmp(a.rgb, d.rgb, 48 * 48 * 3) != 0, "two images of one identity are identical");
    FX_EXPECT(pixel_std(&a) > 10.0, "image is nearly flat (std %.1f)", pixel_std(&a));
    FX_SUMMARY(mark, "determinism: same seed identical (48x48), seed 7 vs 8 differ by %.1f, image 5 vs 6 by %.1f "
               "(mean |diff| of 255)\n", mean_abs_diff(&a, &c), mean_abs_diff(&a, &d));
    comine_image_free(&a);
    comine_image_free(&b);
    comine_image_free(&c);
    comine_image_free(&d);

    /* identity traits do not depend on how many identities are made, and differ between identities */
    comine_synth_identity i1, i2, i3;
    comine_synth_identity_of(&i1, 11, 4);
    comine_synth_identity_of(&i2, 11, 4);
    comine_synth_identity_of(&i3, 11, 5);
    FX_EXPECT(!memcmp(&i1, &i2, sizeof i1), "identity traits are not a function of (seed, index)");
    FX_EXPECT(memcmp(&i1, &i3, sizeof i1) != 0, "two identities have the same traits");

    /* nearest class mean on raw pixels: better than chance, far from perfect (16 ids x 12 images, 32 px) */
    enum { IDS = 16, PER = 12, S = 32 };
    float *mean = calloc((size_t)IDS * S * S * 3, sizeof(float));
    float *imgs = malloc(sizeof(float) * IDS * PER * S * S * 3);
    for (int id = 0; id < IDS; id++)
        for (int k = 0; k < PER; k++) {
            comine_image im;
            comine_synth_image(&im, 21, id, k, S);
            for (int p = 0; p < S * S * 3; p++) {
                imgs[((size_t)id * PER + k) * S * S * 3 + p] = im.rgb[p];
                mean[(size_t)id * S * S * 3 + p] += im.rgb[p] / (float)PER;
            }
            comine_image_free(&im);
        }
    int nearest_ok = 0;
    for (int id = 0; id < IDS; id++)
        for (int k = 0; k < PER; k++) {
            const float *x = imgs + ((size_t)id * PER + k) * S * S * 3;
            int best = -1;
            double bd = 1e30;
            for (int j = 0; j < IDS; j++) {
                double dd = 0;
                for (int p = 0; p < S * S * 3; p++) {
                    float m = mean[(size_t)j * S * S * 3 + p];
                    if (j == id) m = (m * PER - x[p]) / (PER - 1); /* leave the image out of its own mean */
                    dd += (x[p] - m) * (x[p] - m);
                }
                if (dd < bd) bd = dd, best = j;
            }
            nearest_ok += best == id;
        }
    double nn_acc = (double)nearest_ok / (IDS * PER);
    mark = fx_fail_count;
    FX_EXPECT(nn_acc > 2.0 / IDS, "identities are indistinguishable (%.3f)", nn_acc);
    FX_EXPECT(nn_acc < 0.95, "raw pixels separate identities too easily (%.3f)", nn_acc);
    FX_SUMMARY(mark, "nearest class mean (leave one out) on raw pixels: %.1f%% (chance %.1f%%; identities are told apart, but not trivially)\n",
               100 * nn_acc, 100.0 / IDS);
    free(mean);
    free(imgs);

    /* writing a folder data set: layout, thread independence, read back */
    char tmpl[] = "/tmp/comine_synth_test_XXXXXX";
    char *root = mkdtemp(tmpl);
    FX_EXPECT(root != NULL, "mkdtemp failed");
    if (!root) return fx_finish("test_data_synth");
    char *d1 = comine_path_join(root, "one"), *d2 = comine_path_join(root, "two");
    comine_synth_opts so = {.ids = 5, .per_id = 4, .size = 40, .seed = 99, .format = COMINE_SYNTH_PNG,
                            .jpeg_quality = 90, .progress = false};
    comine_set_num_threads(1);
    double t0 = comine_now();
    mark = fx_fail_count;
    comine_status st = comine_synth_write(d1, &so);
    double dt = comine_now() - t0;
    FX_EXPECT(st == COMINE_OK, "synth write: %s", comine_last_error());
    comine_set_num_threads(2);
    st = comine_synth_write(d2, &so);
    FX_EXPECT(st == COMINE_OK, "synth write (2 threads): %s", comine_last_error());
    int same = 0, total = 0;
    for (int id = 0; id < so.ids; id++)
        for (int k = 0; k < so.per_id; k++) {
            char rel[64];
            snprintf(rel, sizeof rel, "id%05d/%04d.png", id, k);
            char *p1 = comine_path_join(d1, rel), *p2 = comine_path_join(d2, rel);
            same += files_equal(p1, p2);
            total++;
            free(p1);
            free(p2);
        }
    FX_EXPECT(same == total, "1 vs 2 threads: %d of %d files identical", same, total);
    FX_SUMMARY(mark, "folder layout id%%05d/%%04d.png: %d files, identical with 1 and 2 threads: %d\n", total, same);
    mark = fx_fail_count;

    comine_dataset *ds = NULL;
    st = comine_dataset_open(&ds, d1, NULL);
    FX_EXPECT(st == COMINE_OK, "dataset_open: %s", comine_last_error());
    if (ds) {
        FX_EXPECT(ds->n == so.ids * so.per_id, "read back %d samples, wrote %d", ds->n, so.ids * so.per_id);
        FX_EXPECT(ds->num_classes == so.ids, "read back %d identities, wrote %d", ds->num_classes, so.ids);
        FX_EXPECT(ds->class_names && !strcmp(ds->class_names[2], "id00002"), "class name 2 is not id00002");
        comine_image got, want;
        int sample = 2 * so.per_id + 3;
        st = comine_image_load(&got, ds->samples[sample].path);
        FX_EXPECT(st == COMINE_OK, "image_load: %s", comine_last_error());
        comine_synth_image(&want, so.seed, ds->samples[sample].label, 3, so.size);
        if (st == COMINE_OK) {
            FX_EXPECT(got.w == 40 && got.h == 40 && !memcmp(got.rgb, want.rgb, 40 * 40 * 3),
                      "decoded PNG differs from the rendered image");
            comine_image_free(&got);
        }
        comine_image_free(&want);
        FX_SUMMARY(mark, "read back with comine_dataset_open: %d samples, %d identities, PNG pixels equal the render\n",
                   ds->n, ds->num_classes);
        comine_dataset_free(ds);
    }
    printf("     speed: %.0f images/s at 40x40 on one thread (render + PNG + write)\n",
           so.ids * so.per_id / (dt > 0 ? dt : 1e-9));

    /* JPEG output */
    char *d3 = comine_path_join(root, "jpg");
    so.format = COMINE_SYNTH_JPEG;
    so.ids = 2;
    so.per_id = 2;
    st = comine_synth_write(d3, &so);
    FX_EXPECT(st == COMINE_OK, "synth write jpg: %s", comine_last_error());
    char *j = comine_path_join(d3, "id00001/0001.jpg");
    FX_EXPECT(comine_path_exists(j), "%s missing", j);
    free(j);

    /* argument errors */
    mark = fx_fail_count;
    comine_synth_opts bad = so;
    bad.ids = 0;
    FX_EXPECT(comine_synth_write(d3, &bad) == COMINE_ERR_ARG, "ids 0 accepted");
    bad = so;
    bad.size = 8;
    FX_EXPECT(comine_synth_write(d3, &bad) == COMINE_ERR_ARG, "size 8 accepted");
    bad = so;
    bad.jpeg_quality = 0;
    FX_EXPECT(comine_synth_write(d3, &bad) == COMINE_ERR_ARG, "JPEG quality 0 accepted");
    bad = so;
    bad.first_id = 99999;
    FX_EXPECT(comine_synth_write(d3, &bad) == COMINE_ERR_ARG, "identities 99999 .. 100000 accepted");
    bad.first_id = -1;
    FX_EXPECT(comine_synth_write(d3, &bad) == COMINE_ERR_ARG, "first identity -1 accepted");
    FX_SUMMARY(mark, "errors: ids 0, size 8, JPEG quality 0, names past id99999 rejected (%s)\n", comine_last_error());

    /* the last name, id99999, is written */
    mark = fx_fail_count;
    comine_synth_opts last = so;
    last.first_id = 99999;
    last.ids = 1;
    last.per_id = 1;
    st = comine_synth_write(d3, &last);
    FX_EXPECT(st == COMINE_OK, "synth write id99999: %s", comine_last_error());
    j = comine_path_join(d3, "id99999/0000.jpg");
    FX_EXPECT(comine_path_exists(j), "%s missing", j);
    free(j);
    FX_SUMMARY(mark, "the last identity name id99999 written\n");

    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) printf("     (could not remove %s)\n", root);
    free(d1);
    free(d2);
    free(d3);
    return fx_finish("test_data_synth");
}
