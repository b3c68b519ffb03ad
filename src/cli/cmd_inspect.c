/* cmd_inspect.c: `comine inspect`: what a data set holds: identities, images, the
 * images-per-identity histogram, image sizes (every image is decoded), truth flags, and
 * every bad or ignored file with its reason.  --strict exits 1 when anything is bad. */
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "comine/data.h"

const char comine_cmd_inspect_summary[] = "describe a data set and list every bad file";

typedef struct size_count {
    int w, h, count;
} size_count;

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

static int cmp_size_count(const void *a, const void *b)
{
    const size_count *x = a, *y = b;
    return y->count - x->count;
}

int comine_cmd_inspect(int argc, char **argv)
{
    const char *data = NULL, *root = NULL;
    bool strict = false, quiet = false;
    cli_opt opts[] = {
        {"data", ARG_STR, &data, NULL, "data set: a folder of identity folders, a list file or a .rec file", NULL, 0, 0, true},
        {"root", ARG_STR, &root, NULL, "list files: folder the paths are relative to (default: the list's folder)"},
        {"strict", ARG_FLAG, &strict, NULL, "exit 1 when any file is bad or was ignored"},
        {"quiet", ARG_FLAG, &quiet, NULL, "no progress messages"},
        {0},
    };
    int rc = cli_parse("inspect", comine_cmd_inspect_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    comine_dataset_opts dopts = {root};
    comine_dataset *ds;
    if (comine_dataset_open(&ds, data, &dopts) != COMINE_OK) {
        fprintf(stderr, "comine inspect: %s\n", comine_last_error());
        return 1;
    }
    printf("data: %s (%s)\n", data, comine_dataset_kind_name(ds->kind));
    printf("identities: %d\nimages: %d\n", ds->num_classes, ds->n);

    /* Images per identity. */
    int *per = comine_calloc(ds->num_classes, sizeof(int));
    for (int i = 0; i < ds->n; i++) per[ds->samples[i].label]++;
    int *sorted = comine_malloc(sizeof(int) * ds->num_classes);
    memcpy(sorted, per, sizeof(int) * ds->num_classes);
    qsort(sorted, ds->num_classes, sizeof(int), cmp_int);
    printf("images per identity: min %d, median %d, mean %.2f, max %d\n", sorted[0], sorted[ds->num_classes / 2],
           (double)ds->n / ds->num_classes, sorted[ds->num_classes - 1]);
    static const int edges[] = {0, 1, 2, 3, 5, 10, 20, 50, 100, 1000, 1 << 30};
    const int nbins = (int)(sizeof edges / sizeof edges[0]) - 1;
    printf("histogram (images per identity: identities):\n");
    for (int b = 0; b < nbins; b++) {
        int cnt = 0;
        for (int c = 0; c < ds->num_classes; c++) cnt += per[c] >= edges[b] && per[c] < edges[b + 1];
        if (!cnt) continue;
        char range[32];
        if (edges[b + 1] - edges[b] == 1)
            snprintf(range, sizeof range, "%d", edges[b]);
        else if (edges[b + 1] == 1 << 30)
            snprintf(range, sizeof range, "%d+", edges[b]);
        else
            snprintf(range, sizeof range, "%d-%d", edges[b], edges[b + 1] - 1);
        printf("  %-9s %d\n", range, cnt);
    }
    free(sorted);
    free(per);

    /* Truth flags. */
    int flags[4] = {0};
    for (int i = 0; i < ds->n; i++) flags[ds->samples[i].truth + 1]++;
    if (flags[1] + flags[2] + flags[3])
        printf("truth flags: clean %d, label flip %d, outlier %d, unknown %d\n", flags[1], flags[2], flags[3], flags[0]);
    else
        printf("truth flags: none\n");

    /* Decode every image. */
    int nsizes = 0, cap = 0, bad = 0;
    size_count *sizes = NULL;
    char **bad_items = NULL;
    double t0 = comine_now(), last = t0;
    for (int i = 0; i < ds->n; i++) {
        comine_image img = {0};
        comine_status st = comine_dataset_decode(ds, i, &img);
        if (st != COMINE_OK) {
            bad_items = comine_realloc(bad_items, sizeof(char *) * (bad + 1));
            bad_items[bad++] = comine_strdup(comine_last_error());
        } else {
            int k = 0;
            while (k < nsizes && !(sizes[k].w == img.w && sizes[k].h == img.h)) k++;
            if (k == nsizes) {
                if (nsizes == cap) {
                    cap = cap ? cap * 2 : 16;
                    sizes = comine_realloc(sizes, sizeof(size_count) * cap);
                }
                sizes[nsizes++] = (size_count){img.w, img.h, 0};
            }
            sizes[k].count++;
            comine_image_free(&img);
        }
        double now = comine_now();
        if (!quiet && now - last > 2.0) {
            fprintf(stderr, "comine inspect: decoded %d / %d images (%.0f/s)\n", i + 1, ds->n, (i + 1) / (now - t0));
            last = now;
        }
    }
    qsort(sizes, nsizes, sizeof(size_count), cmp_size_count);
    printf("image sizes (%d distinct):\n", nsizes);
    for (int k = 0; k < nsizes && k < 10; k++) printf("  %dx%d: %d\n", sizes[k].w, sizes[k].h, sizes[k].count);
    if (nsizes > 10) printf("  ... %d more sizes\n", nsizes - 10);
    free(sizes);
    printf("ignored at open: %d\n", ds->num_problems);
    for (int i = 0; i < ds->num_problems; i++) printf("  %s\n", ds->problems[i]);
    printf("bad images: %d\n", bad);
    for (int i = 0; i < bad; i++) {
        printf("  %s\n", bad_items[i]);
        free(bad_items[i]);
    }
    free(bad_items);
    int problems = bad + ds->num_problems;
    comine_dataset_free(ds);
    if (strict && problems) {
        fprintf(stderr, "comine inspect: --strict: %d bad or ignored file(s)\n", problems);
        return 1;
    }
    return 0;
}
