/* cmd_inspect.c: `comine inspect`: what a data set holds: identities, images, the
 * images-per-identity histogram, image sizes (every image is decoded), truth flags, and
 * every bad or ignored file with its reason, as text or one JSON object (--json).  --strict
 * exits 1 when anything is bad. */
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/json_out.h"
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

/* What inspect found: the data set's numbers, its image sizes and its bad files. */
typedef struct inspection {
    int *per;                 /* (num_classes) images per identity */
    int min, median, max;
    int hist[16];             /* identities per bin of edges[] */
    int flags[4];             /* unknown, clean, label flip, outlier */
    size_count *sizes;
    int nsizes;
    char **bad;
    int nbad;
} inspection;

static const int edges[] = {0, 1, 2, 3, 5, 10, 20, 50, 100, 1000, 1 << 30};
enum { NBINS = (int)(sizeof edges / sizeof edges[0]) - 1 };

static void bin_range(char *buf, size_t size, int b)
{
    if (edges[b + 1] - edges[b] == 1)
        snprintf(buf, size, "%d", edges[b]);
    else if (edges[b + 1] == 1 << 30)
        snprintf(buf, size, "%d+", edges[b]);
    else
        snprintf(buf, size, "%d-%d", edges[b], edges[b + 1] - 1);
}

static void count_labels(inspection *in, const comine_dataset *ds)
{
    in->per = comine_calloc(ds->num_classes, sizeof(int));
    for (int i = 0; i < ds->n; i++) in->per[ds->samples[i].label]++;
    int *sorted = comine_malloc(sizeof(int) * ds->num_classes);
    memcpy(sorted, in->per, sizeof(int) * ds->num_classes);
    qsort(sorted, ds->num_classes, sizeof(int), cmp_int);
    in->min = sorted[0];
    in->median = sorted[ds->num_classes / 2];
    in->max = sorted[ds->num_classes - 1];
    free(sorted);
    for (int b = 0; b < NBINS; b++)
        for (int c = 0; c < ds->num_classes; c++) in->hist[b] += in->per[c] >= edges[b] && in->per[c] < edges[b + 1];
    for (int i = 0; i < ds->n; i++) in->flags[ds->samples[i].truth + 1]++;
}

/* Decode every image; progress with the rate and the time left every 2 s unless quiet. */
static void decode_all(inspection *in, const comine_dataset *ds, bool quiet)
{
    int cap = 0;
    double t0 = comine_now(), last = t0;
    for (int i = 0; i < ds->n; i++) {
        comine_image img = {0};
        if (comine_dataset_decode(ds, i, &img) != COMINE_OK) {
            in->bad = comine_realloc(in->bad, sizeof(char *) * (in->nbad + 1));
            in->bad[in->nbad++] = comine_strdup(comine_last_error());
        } else {
            int k = 0;
            while (k < in->nsizes && !(in->sizes[k].w == img.w && in->sizes[k].h == img.h)) k++;
            if (k == in->nsizes) {
                if (in->nsizes == cap) {
                    cap = cap ? cap * 2 : 16;
                    in->sizes = comine_realloc(in->sizes, sizeof(size_count) * cap);
                }
                in->sizes[in->nsizes++] = (size_count){img.w, img.h, 0};
            }
            in->sizes[k].count++;
            comine_image_free(&img);
        }
        double now = comine_now();
        if (!quiet && now - last > 2.0) {
            double rate = (i + 1) / (now - t0);
            comine_progress("comine inspect: decoded %d / %d images (%.0f/s, %.0f s left)", i + 1, ds->n, rate,
                            (ds->n - i - 1) / rate);
            last = now;
        }
    }
    qsort(in->sizes, in->nsizes, sizeof(size_count), cmp_size_count);
}

static void print_text(const inspection *in, const comine_dataset *ds, const char *data)
{
    printf("data: %s (%s)\n", data, comine_dataset_kind_name(ds->kind));
    printf("identities: %d\nimages: %d\n", ds->num_classes, ds->n);
    printf("images per identity: min %d, median %d, mean %.2f, max %d\n", in->min, in->median,
           (double)ds->n / ds->num_classes, in->max);
    printf("histogram (images per identity: identities):\n");
    for (int b = 0; b < NBINS; b++) {
        if (!in->hist[b]) continue;
        char range[32];
        bin_range(range, sizeof range, b);
        printf("  %-9s %d\n", range, in->hist[b]);
    }
    const int *f = in->flags;
    if (f[1] + f[2] + f[3])
        printf("truth flags: clean %d, label flip %d, outlier %d, unknown %d\n", f[1], f[2], f[3], f[0]);
    else
        printf("truth flags: none\n");
    printf("image sizes (%d distinct):\n", in->nsizes);
    for (int k = 0; k < in->nsizes && k < 10; k++)
        printf("  %dx%d: %d\n", in->sizes[k].w, in->sizes[k].h, in->sizes[k].count);
    if (in->nsizes > 10) printf("  ... %d more sizes\n", in->nsizes - 10);
    printf("ignored at open: %d\n", ds->num_problems);
    for (int i = 0; i < ds->num_problems; i++) printf("  %s\n", ds->problems[i]);
    printf("bad images: %d\n", in->nbad);
    for (int i = 0; i < in->nbad; i++) printf("  %s\n", in->bad[i]);
}

/* One JSON object: every number of the text output, every size, every ignored and bad file. */
static void print_json(const inspection *in, const comine_dataset *ds, const char *data)
{
    printf("{\"data\": ");
    cli_json_str(stdout, data);
    printf(", \"kind\": ");
    cli_json_str(stdout, comine_dataset_kind_name(ds->kind));
    printf(", \"identities\": %d, \"images\": %d, \"per_identity\": {\"min\": %d, \"median\": %d, \"mean\": ",
           ds->num_classes, ds->n, in->min, in->median);
    cli_json_num(stdout, (double)ds->n / ds->num_classes);
    printf(", \"max\": %d}, \"histogram\": [", in->max);
    bool first = true;
    for (int b = 0; b < NBINS; b++) {
        if (!in->hist[b]) continue;
        char range[32];
        bin_range(range, sizeof range, b);
        printf("%s{\"images\": \"%s\", \"identities\": %d}", first ? "" : ", ", range, in->hist[b]);
        first = false;
    }
    const int *f = in->flags;
    printf("], \"truth\": {\"clean\": %d, \"label_flip\": %d, \"outlier\": %d, \"unknown\": %d}, \"sizes\": [", f[1],
           f[2], f[3], f[0]);
    for (int k = 0; k < in->nsizes; k++)
        printf("%s{\"w\": %d, \"h\": %d, \"count\": %d}", k ? ", " : "", in->sizes[k].w, in->sizes[k].h,
               in->sizes[k].count);
    printf("], \"ignored\": [");
    for (int i = 0; i < ds->num_problems; i++) {
        if (i) printf(", ");
        cli_json_str(stdout, ds->problems[i]);
    }
    printf("], \"bad\": [");
    for (int i = 0; i < in->nbad; i++) {
        if (i) printf(", ");
        cli_json_str(stdout, in->bad[i]);
    }
    printf("]}\n");
}

int comine_cmd_inspect(int argc, char **argv)
{
    const char *data = NULL, *root = NULL;
    bool strict = false, quiet = false, json = false;
    cli_opt opts[] = {
        {"data", ARG_STR, &data, NULL, "data set: a folder of identity folders, a list file or a .rec file", NULL, 0, 0, true},
        {"root", ARG_STR, &root, NULL, "list files: folder the paths are relative to (default: the list's folder)"},
        {"strict", ARG_FLAG, &strict, NULL, "exit 1 when any file is bad or was ignored"},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object (every count, size, ignored and bad file)"},
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
    inspection in = {0};
    count_labels(&in, ds);
    decode_all(&in, ds, quiet);
    if (json)
        print_json(&in, ds, data);
    else
        print_text(&in, ds, data);
    int problems = in.nbad + ds->num_problems;
    for (int i = 0; i < in.nbad; i++) free(in.bad[i]);
    free(in.bad);
    free(in.sizes);
    free(in.per);
    comine_dataset_free(ds);
    if (strict && problems) {
        fprintf(stderr, "comine inspect: --strict: %d bad or ignored file(s)\n", problems);
        return 1;
    }
    return 0;
}
