/* test_data_loader.c: the threaded loader.  On a small folder data set made here (PNG and
 * JPEG of several sizes, plus zero-byte, truncated, corrupt and non-image files named
 * .jpg/.png), checks that batches are bit-identical with 1, 2 and 3 threads, that each
 * epoch has its own order, that resuming at a step gives the same batches, that the
 * pixels equal comine_image_to_input of the decoded file, that bad files are skipped,
 * counted and listed once (or fail the batch under ON_BAD_FAIL), and that the cache and
 * drop_last behave. */
#include <stdlib.h>
#include <string.h>

#include "comine/data.h"
#include "fixture.h"

static char dir[64] = "/tmp/comine_test_loader_XXXXXX";

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

static void make_dataset(void)
{
    for (int i = 0; i < 37; i++) {
        int w = 16 + (i % 4) * 6, h = 18 + (i % 3) * 5;
        comine_image img = {w, h, malloc((size_t)w * h * 3)};
        for (int k = 0; k < w * h * 3; k++) img.rgb[k] = (uint8_t)(k * (i + 3) + i * 11);
        char rel[64];
        if (i % 2) {
            snprintf(rel, sizeof rel, "faces/id%d/%02d.png", i % 5, i);
            char *p = comine_path_join(dir, rel);
            char *d = comine_path_dirname(p);
            comine_mkdirs(d);
            comine_image_save_png(&img, p);
            free(d);
            free(p);
        } else {
            uint8_t *jpg;
            size_t js;
            comine_image_encode_jpeg(&img, 90, &jpg, &js);
            snprintf(rel, sizeof rel, "faces/id%d/%02d.jpg", i % 5, i);
            put_bytes(rel, jpg, js);
            if (i == 4) put_bytes("faces/id1/truncated.jpg", jpg, js / 2);
            free(jpg);
        }
        free(img.rgb);
    }
    put_bytes("faces/id2/zero.jpg", "", 0);
    put_bytes("faces/id3/text.png", "this is not a png\n", 18);
    put_bytes("faces/id0/corrupt.jpg", "\xff\xd8\xff\xe0garbage garbage garbage", 27);
}

typedef struct run {
    int batches, total;
    float *images;   /* concatenated */
    int *labels, *indices, *sizes;
} run;

static run collect(const comine_dataset *ds, comine_loader_opts o, int epoch, int first_step, int *bad)
{
    run r = {0};
    comine_loader *l;
    if (comine_loader_create(&l, ds, &o) != COMINE_OK) {
        printf("FAIL: loader_create: %s\n", comine_last_error());
        fx_fail_count++;
        return r;
    }
    size_t per = (size_t)o.input * o.input * 3;
    r.images = malloc(sizeof(float) * per * ds->n);
    r.labels = malloc(sizeof(int) * ds->n);
    r.indices = malloc(sizeof(int) * ds->n);
    r.sizes = malloc(sizeof(int) * (ds->n + 1));
    for (int e = epoch; e <= epoch; e++) {
        comine_loader_start_epoch(l, e, first_step);
        comine_batch *b;
        while (comine_loader_next(l, &b) == COMINE_OK && b) {
            memcpy(r.images + per * r.total, b->images, sizeof(float) * per * b->n);
            memcpy(r.labels + r.total, b->labels, sizeof(int) * b->n);
            memcpy(r.indices + r.total, b->indices, sizeof(int) * b->n);
            r.sizes[r.batches++] = b->n;
            r.total += b->n;
            comine_loader_release(l, b);
        }
    }
    if (bad) *bad = comine_loader_bad_count(l);
    comine_loader_free(l);
    return r;
}

static void run_free(run *r)
{
    free(r->images);
    free(r->labels);
    free(r->indices);
    free(r->sizes);
}

static bool same_run(const run *a, const run *b, size_t per)
{
    return a->total == b->total && a->batches == b->batches && !memcmp(a->labels, b->labels, sizeof(int) * a->total) &&
           !memcmp(a->indices, b->indices, sizeof(int) * a->total) &&
           !memcmp(a->images, b->images, sizeof(float) * per * a->total) &&
           !memcmp(a->sizes, b->sizes, sizeof(int) * a->batches);
}

int main(void)
{
    comine_log_set_level(COMINE_LOG_ERROR + 1);
    if (!mkdtemp(dir)) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    make_dataset();
    comine_dataset *ds;
    char *faces = comine_path_join(dir, "faces");
    if (comine_dataset_open(&ds, faces, NULL) != COMINE_OK) {
        printf("FAIL: open: %s\n", comine_last_error());
        return 1;
    }
    free(faces);
    printf("data set: %d files, %d identities (4 of the files are bad)\n", ds->n, ds->num_classes);
    comine_loader_opts o;
    comine_loader_opts_default(&o);
    o.batch = 8;
    o.input = 20;
    o.seed = 7;
    o.jitter = 0.1f;
    size_t per = (size_t)o.input * o.input * 3;

    /* Thread count does not change anything. */
    run r1, r2, r3;
    int bad1, bad2;
    o.threads = 1;
    r1 = collect(ds, o, 0, 0, &bad1);
    o.threads = 2;
    r2 = collect(ds, o, 0, 0, &bad2);
    o.threads = 3;
    o.queue_depth = 1;
    r3 = collect(ds, o, 0, 0, NULL);
    int ok = same_run(&r1, &r2, per) && same_run(&r1, &r3, per);
    printf("%s epoch 0 identical with 1, 2 and 3 threads (%d batches, %d samples, flip + jitter on)\n", ok ? "ok  " : "FAIL",
           r1.batches, r1.total);
    if (!ok) fx_fail_count++;
    ok = r1.total == ds->n - 4 && bad1 == 4 && bad2 == 4 && r1.batches == (ds->n + 7) / 8;
    printf("%s %d good samples delivered, %d bad skipped (want %d, 4), %d steps\n", ok ? "ok  " : "FAIL", r1.total, bad1,
           ds->n - 4, r1.batches);
    if (!ok) fx_fail_count++;
    /* Every good sample exactly once. */
    int *seen = calloc(ds->n, sizeof(int));
    for (int i = 0; i < r1.total; i++) seen[r1.indices[i]]++;
    int once = 0;
    for (int i = 0; i < ds->n; i++) once += seen[i] == 1;
    FX_EXPECT(once == ds->n - 4, "each good sample once per epoch (%d)", once);
    free(seen);

    /* Parts (one per rank): part q of 3 reads positions [q m / 3, (q + 1) m / 3) of every batch of
     * m; the parts' batches one after the other are the whole loader's batch, bad images
     * skipped by the part that met them. */
    {
        run part[3];
        int bad_parts = 0, bad_q;
        for (int q = 0; q < 3; q++) {
            comine_loader_opts op = o;
            op.part = q;
            op.parts = 3;
            part[q] = collect(ds, op, 0, 0, &bad_q);
            bad_parts += bad_q;
        }
        bool same = part[0].batches == r1.batches && part[1].batches == r1.batches && part[2].batches == r1.batches;
        int at[3] = {0, 0, 0}, whole = 0;
        for (int j = 0; same && j < r1.batches; j++) {
            int n = 0;
            for (int q = 0; q < 3 && same; q++) {
                int m = part[q].sizes[j];
                same = !memcmp(part[q].indices + at[q], r1.indices + whole + n, sizeof(int) * m) &&
                       !memcmp(part[q].images + per * at[q], r1.images + per * (whole + n), sizeof(float) * per * m);
                at[q] += m;
                n += m;
            }
            same = same && n == r1.sizes[j];
            whole += n;
        }
        FX_EXPECT(same && whole == r1.total && bad_parts == 4,
                  "3 parts: each batch is the parts' rows one after the other (%d samples, %d bad)", whole, bad_parts);
        comine_loader_opts op = o;
        op.part = 3;
        op.parts = 3;
        comine_loader *l = NULL;
        FX_EXPECT(comine_loader_create(&l, ds, &op) != COMINE_OK && l == NULL, "part 3 of 3 refused");
        for (int q = 0; q < 3; q++) run_free(&part[q]);
    }

    /* Another epoch: another order; resume at step 2 gives the tail of the same epoch. */
    o.threads = 2;
    o.queue_depth = 2;
    run e1 = collect(ds, o, 1, 0, NULL), e1r = collect(ds, o, 1, 2, NULL);
    ok = e1.total == r1.total && memcmp(e1.indices, r1.indices, sizeof(int) * r1.total) != 0;
    printf("%s epoch 1 has a different order than epoch 0\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    int skip = e1.sizes[0] + e1.sizes[1];
    ok = e1r.batches == e1.batches - 2 && e1r.total == e1.total - skip &&
         !memcmp(e1r.indices, e1.indices + skip, sizeof(int) * e1r.total) &&
         !memcmp(e1r.images, e1.images + per * skip, sizeof(float) * per * e1r.total);
    printf("%s start_epoch(1, 2) == epoch 1 from step 2 (%d batches)\n", ok ? "ok  " : "FAIL", e1r.batches);
    if (!ok) fx_fail_count++;

    /* Pixels: no augmentation, no shuffle -> comine_image_to_input of each file. */
    o.flip = false;
    o.jitter = 0;
    o.shuffle = false;
    run plain = collect(ds, o, 0, 0, NULL);
    float *want = malloc(sizeof(float) * per);
    double maxerr = 0;
    int prev = -1, ordered = 1;
    for (int i = 0; i < plain.total; i++) {
        comine_image img;
        uint8_t *d;
        size_t sz;
        comine_dataset_read(ds, plain.indices[i], &d, &sz);
        comine_image_decode(&img, d, sz, "x");
        free(d);
        comine_image_to_input(want, &img, o.input, false);
        comine_image_free(&img);
        for (size_t k = 0; k < per; k++) {
            double e = fabs(want[k] - plain.images[per * i + k]);
            if (e > maxerr) maxerr = e;
        }
        ordered &= plain.indices[i] > prev;
        prev = plain.indices[i];
    }
    ok = maxerr == 0 && ordered;
    printf("%s unshuffled, unaugmented batches == comine_image_to_input of each file (max err %g), in order\n",
           ok ? "ok  " : "FAIL", maxerr);
    if (!ok) fx_fail_count++;
    free(want);

    /* Flip only: a flipped sample is the mirror of the plain one (same rows, reversed columns). */
    o.flip = true;
    run flipped = collect(ds, o, 0, 0, NULL);
    int mirrored = 0, unchanged = 0;
    for (int i = 0; i < flipped.total; i++) {
        const float *a = plain.images + per * i, *b = flipped.images + per * i;
        if (!memcmp(a, b, sizeof(float) * per)) {
            unchanged++;
            continue;
        }
        int m = 1;
        for (int y = 0; y < o.input && m; y++)
            for (int x = 0; x < o.input && m; x++)
                m = !memcmp(a + ((size_t)y * o.input + x) * 3, b + ((size_t)y * o.input + o.input - 1 - x) * 3, 12);
        mirrored += m;
    }
    ok = mirrored + unchanged == flipped.total && mirrored > 5 && unchanged > 5;
    printf("%s random flip: %d mirrored, %d unchanged of %d\n", ok ? "ok  " : "FAIL", mirrored, unchanged, flipped.total);
    if (!ok) fx_fail_count++;

    /* Cache: same batches in two epochs as without. */
    o.flip = true;
    o.jitter = 0.1f;
    o.shuffle = true;
    o.cache = true;
    run c0 = collect(ds, o, 0, 0, NULL);
    ok = same_run(&c0, &r1, per);
    printf("%s cache on: epoch 0 identical to the uncached run\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    o.cache = false;

    /* drop_last: only full batches. */
    o.drop_last = true;
    run dl = collect(ds, o, 0, 0, NULL);
    ok = dl.batches == ds->n / 8;
    printf("%s drop_last: %d steps (want %d)\n", ok ? "ok  " : "FAIL", dl.batches, ds->n / 8);
    if (!ok) fx_fail_count++;
    o.drop_last = false;

    /* ON_BAD_FAIL: the epoch stops with an error that names the bad file; the list names each once. */
    o.on_bad = COMINE_ON_BAD_FAIL;
    o.shuffle = false;
    comine_loader *l;
    comine_loader_create(&l, ds, &o);
    comine_loader_start_epoch(l, 0, 0);
    comine_batch *b;
    comine_status st;
    int got = 0;
    while ((st = comine_loader_next(l, &b)) == COMINE_OK && b) {
        got++;
        comine_loader_release(l, b);
    }
    const char *msg = comine_last_error();
    ok = st == COMINE_ERR_FORMAT && strstr(msg, dir) && (strstr(msg, "corrupt.jpg") || strstr(msg, "truncated.jpg") ||
                                                        strstr(msg, "zero.jpg") || strstr(msg, "text.png"));
    printf("%s ON_BAD_FAIL: stops after %d batch(es): %s\n", ok ? "ok  " : "FAIL", got, msg);
    if (!ok) fx_fail_count++;
    comine_loader_free(l);

    o.on_bad = COMINE_ON_BAD_SKIP;
    comine_loader_create(&l, ds, &o);
    for (int e = 0; e < 2; e++) {
        comine_loader_start_epoch(l, e, 0);
        while (comine_loader_next(l, &b) == COMINE_OK && b) comine_loader_release(l, b);
    }
    ok = comine_loader_bad_count(l) == 4;
    for (int i = 0; i < comine_loader_bad_count(l); i++) printf("     bad: %s\n", comine_loader_bad_item(l, i));
    printf("%s SKIP: 4 bad files listed once after 2 epochs\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    /* Holding more batches than the ring has is an error, not a hang. */
    comine_loader_start_epoch(l, 0, 0);
    comine_batch *held[8];
    int nheld = 0;
    while (nheld < 8 && (st = comine_loader_next(l, &held[nheld])) == COMINE_OK && held[nheld]) nheld++;
    ok = st == COMINE_ERR_ARG && nheld >= o.queue_depth;
    printf("%s holding batches: %d held, then an error instead of a hang (%s)\n", ok ? "ok  " : "FAIL", nheld,
           st == COMINE_OK ? "no error" : comine_last_error());
    if (!ok) fx_fail_count++;
    for (int i = 0; i < nheld; i++) comine_loader_release(l, held[i]);
    comine_loader_start_epoch(l, 0, 3); /* restart mid-epoch with work in flight */
    int rest = 0;
    while (comine_loader_next(l, &b) == COMINE_OK && b) {
        rest++;
        comine_loader_release(l, b);
    }
    FX_EXPECT(rest == comine_loader_steps_per_epoch(l) - 3, "restart mid-epoch: %d batches", rest);
    comine_loader_free(l);

    run_free(&r1);
    run_free(&r2);
    run_free(&r3);
    run_free(&e1);
    run_free(&e1r);
    run_free(&plain);
    run_free(&flipped);
    run_free(&c0);
    run_free(&dl);
    comine_dataset_free(ds);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    return fx_finish("test_data_loader");
}
