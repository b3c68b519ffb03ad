/* test_data_lfw.c: an optional check on the real LFW crops (../shared/data/lfw112 beside
 * the source tree, or $COMINE_LFW): the folder opens with 5,749 identities and 13,233
 * images, the people files parse and agree with the folders, and a loader pass over the
 * first 512 images gives values inside [-1, 1].  Prints "skipped" and exits 77 (CTest:
 * skipped) when the data is absent. */
#include <stdlib.h>
#include <string.h>

#include "comine/data.h"
#include "fixture.h"

int main(void)
{
    comine_log_set_level(COMINE_LOG_WARN);
    char root[4096];
    const char *env = getenv("COMINE_LFW");
    if (env && env[0])
        snprintf(root, sizeof root, "%s", env);
    else
        snprintf(root, sizeof root, "%s/../shared/data/lfw112", COMINE_SOURCE_DIR);
    char images[4200], people_path[4200];
    snprintf(images, sizeof images, "%s/images", root);
    snprintf(people_path, sizeof people_path, "%s/lists/peopleDevTrain.txt", root);
    if (!comine_path_is_dir(images)) {
        FX_SKIP("%s absent (the LFW crops: ../shared/data/lfw112 beside the source tree, or $COMINE_LFW)", images);
        return fx_finish("test_data_lfw");
    }
    comine_dataset *ds;
    if (comine_dataset_open(&ds, images, NULL) != COMINE_OK) {
        printf("FAIL: %s\n", comine_last_error());
        return 1;
    }
    int ok = ds->n == 13233 && ds->num_classes == 5749 && ds->num_problems == 0;
    printf("%s LFW folder: %d images, %d identities, %d ignored (want 13233, 5749, 0)\n", ok ? "ok  " : "FAIL", ds->n,
           ds->num_classes, ds->num_problems);
    if (!ok) fx_fail_count++;

    comine_people p;
    if (comine_people_load(&p, people_path) == COMINE_OK) {
        int *per = calloc(ds->num_classes, sizeof(int));
        for (int i = 0; i < ds->n; i++) per[ds->samples[i].label]++;
        int agree = 0;
        for (int k = 0; k < p.n; k++) {
            int lo = 0, hi = ds->num_classes - 1, found = -1;
            while (lo <= hi) {
                int mid = (lo + hi) / 2, c = strcmp(ds->class_names[mid], p.names[k]);
                if (!c) { found = mid; break; }
                if (c < 0) lo = mid + 1; else hi = mid - 1;
            }
            agree += found >= 0 && per[found] == p.counts[k];
        }
        ok = p.n == 4038 && agree == p.n;
        printf("%s peopleDevTrain: %d people, %d with the folder's image count\n", ok ? "ok  " : "FAIL", p.n, agree);
        if (!ok) fx_fail_count++;
        free(per);
        comine_people_free(&p);
    } else {
        printf("FAIL: %s\n", comine_last_error());
        fx_fail_count++;
    }

    int keep = ds->n < 512 ? ds->n : 512;
    int full = ds->n;
    ds->n = keep; /* a view of the first images */
    comine_loader_opts o;
    comine_loader_opts_default(&o);
    o.batch = 64;
    o.input = 64;
    o.threads = 2;
    o.jitter = 0.05f;
    comine_loader *l;
    double lo = 1e9, hi = -1e9;
    int seen = 0;
    if (comine_loader_create(&l, ds, &o) == COMINE_OK) {
        comine_loader_start_epoch(l, 0, 0);
        comine_batch *b;
        double t0 = comine_now();
        while (comine_loader_next(l, &b) == COMINE_OK && b) {
            for (size_t k = 0; k < (size_t)b->n * 64 * 64 * 3; k++) {
                if (b->images[k] < lo) lo = b->images[k];
                if (b->images[k] > hi) hi = b->images[k];
            }
            seen += b->n;
            comine_loader_release(l, b);
        }
        printf("     loader: %d images in %.2f s\n", seen, comine_now() - t0);
        comine_loader_free(l);
    }
    ok = seen == keep && lo >= -1.0 && hi <= 1.0 && lo < -0.9 && hi > 0.9;
    printf("%s loader over %d LFW images at 64x64: values in [%.4f, %.4f]\n", ok ? "ok  " : "FAIL", seen, lo, hi);
    if (!ok) fx_fail_count++;
    ds->n = full;
    comine_dataset_free(ds);
    return fx_finish("test_data_lfw");
}
