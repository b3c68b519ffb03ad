/* cmd_pack.c: `comine pack`: write a folder or list data set as insightface RecordIO
 * (PREFIX.rec, PREFIX.idx and `property` beside them).  Every image is decoded first
 * (unless --no-check) so that a bad file is reported, and skipped or fatal by --on-bad. */
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "comine/data.h"

const char comine_cmd_pack_summary[] = "pack a folder or list data set into insightface RecordIO (.rec/.idx)";

int comine_cmd_pack(int argc, char **argv)
{
    const char *data = NULL, *out = NULL, *root = NULL, *on_bad = NULL;
    bool no_check = false;
    cli_opt opts[] = {
        {"data", ARG_STR, &data, NULL, "data set: a folder of identity folders or a list file", NULL, 0, 0, true},
        {"out", ARG_STR, &out, NULL, "output prefix: writes PREFIX.rec, PREFIX.idx and property beside them", NULL, 0, 0, true},
        {"root", ARG_STR, &root, NULL, "list files: folder the paths are relative to (default: the list's folder)"},
        {"on-bad", ARG_CHOICE, &on_bad, "skip", "an image that does not decode: leave it out, or stop", "skip|fail"},
        {"no-check", ARG_FLAG, &no_check, NULL, "do not decode the images first (copy the bytes as they are)"},
        {0},
    };
    int rc = cli_parse("pack", comine_cmd_pack_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    size_t ol = strlen(out);
    if (ol >= 4 && (!strcmp(out + ol - 4, ".rec") || !strcmp(out + ol - 4, ".idx")))
        return cli_error("pack", "option --out: give the prefix without .rec/.idx (got %s)", out);
    comine_dataset_opts dopts = {root};
    comine_dataset *ds;
    if (comine_dataset_open(&ds, data, &dopts) != COMINE_OK) {
        fprintf(stderr, "comine pack: %s\n", comine_last_error());
        return 1;
    }
    if (ds->kind == COMINE_DATASET_RECORDIO) comine_info("re-packing RecordIO %s", data);
    bool *keep = comine_malloc(sizeof(bool) * ds->n);
    int width = 0, height = 0, bad = 0, mixed = 0;
    double t0 = comine_now();
    for (int i = 0; i < ds->n; i++) {
        keep[i] = true;
        if (no_check) continue;
        comine_image img = {0};
        comine_status st = comine_dataset_decode(ds, i, &img);
        if (st != COMINE_OK) {
            fprintf(stderr, "comine pack: bad image: %s\n", comine_last_error());
            if (!strcmp(on_bad, "fail")) {
                free(keep);
                comine_dataset_free(ds);
                return 1;
            }
            keep[i] = false;
            bad++;
            continue;
        }
        if (!width) {
            width = img.w;
            height = img.h;
        } else if (img.w != width || img.h != height) {
            mixed++;
        }
        comine_image_free(&img);
        if (ds->n > 5000 && (i + 1) % 5000 == 0)
            fprintf(stderr, "comine pack: checked %d / %d images (%.0f/s)\n", i + 1, ds->n, (i + 1) / (comine_now() - t0));
    }
    if (!width) width = height = 112;
    if (mixed) comine_warn("%d images differ from the first one's size %dx%d (property says %dx%d)", mixed, width, height, width, height);
    comine_pack_stats stats;
    comine_status st = comine_recordio_pack(ds, keep, width, height, out, &stats);
    free(keep);
    if (st != COMINE_OK) {
        fprintf(stderr, "comine pack: %s\n", comine_last_error());
        comine_dataset_free(ds);
        return 1;
    }
    printf("packed %d images of %d identities into %s.rec / %s.idx (%d records split at the magic value)\n",
           stats.images, stats.identities, out, out, stats.split_records);
    if (bad) printf("left out %d bad image(s) (listed above)\n", bad);
    if (ds->num_problems) printf("ignored %d non-image file(s) or empty folder(s) (listed above)\n", ds->num_problems);
    comine_dataset_free(ds);
    return 0;
}
