/* bench_loader.c: images per second of comine's loader (read + decode + flip + normalise
 * to 112x112 floats, one epoch in shuffled order) with 1 and 2 threads, against the bare
 * libjpeg-turbo decode of the same files (tjDecompress2 to RGB from memory, one thread,
 * no file reads) and against read + bare decode.  Data: ../shared/data/lfw112 (or the
 * folder given as the first argument); prints "skipped" when it is absent.
 * Usage: bench_loader [IMAGES_FOLDER] [MAX_IMAGES] [REPEATS]   (default: all images, 3) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>

#include "comine/data.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A measurement: images per wall second and per CPU second (the machine may be shared). */
typedef struct rate {
    double wall, cpu;
} rate;

static void keep_best(rate *best, double n, double wall_s, double cpu_s)
{
    if (n / wall_s > best->wall) best->wall = n / wall_s;
    if (n / cpu_s > best->cpu) best->cpu = n / cpu_s;
}

static void loader_epoch(rate *best, const comine_dataset *ds, int threads, float jitter)
{
    comine_loader_opts o;
    comine_loader_opts_default(&o);
    o.batch = 64;
    o.input = 112;
    o.threads = threads;
    o.jitter = jitter;
    o.seed = 3;
    comine_loader *l;
    if (comine_loader_create(&l, ds, &o) != COMINE_OK) {
        fprintf(stderr, "bench_loader: %s\n", comine_last_error());
        exit(1);
    }
    double t0 = comine_now(), c0 = cpu_now();
    comine_loader_start_epoch(l, 0, 0);
    comine_batch *b;
    int n = 0;
    while (comine_loader_next(l, &b) == COMINE_OK && b) {
        n += b->n;
        comine_loader_release(l, b);
    }
    keep_best(best, n, comine_now() - t0, cpu_now() - c0);
    comine_loader_free(l);
}

/* libjpeg-turbo alone: tjDecompress2 to RGB, from memory (bytes != NULL) or reading each file. */
static void bare_decode(rate *best, const comine_dataset *ds, uint8_t **bytes, size_t *sizes, uint8_t *rgb)
{
    tjhandle tj = tjInitDecompress();
    double t0 = comine_now(), c0 = cpu_now();
    for (int i = 0; i < ds->n; i++) {
        uint8_t *d = bytes ? bytes[i] : NULL;
        size_t s = bytes ? sizes[i] : 0;
        if (!bytes && comine_dataset_read(ds, i, &d, &s) != COMINE_OK) exit(1);
        int w, h, ss, cs;
        if (tjDecompressHeader3(tj, d, (unsigned long)s, &w, &h, &ss, &cs) != 0 || (size_t)w * h > 4096u * 4096u ||
            tjDecompress2(tj, d, (unsigned long)s, rgb, w, w * 3, h, TJPF_RGB, 0) != 0) {
            fprintf(stderr, "bench_loader: %s: %s\n", ds->samples[i].path, tjGetErrorStr2(tj));
            exit(1);
        }
        if (!bytes) free(d);
    }
    keep_best(best, ds->n, comine_now() - t0, cpu_now() - c0);
    tjDestroy(tj);
}

int main(int argc, char **argv)
{
    char folder[4096];
    if (argc > 1 && argv[1][0])
        snprintf(folder, sizeof folder, "%s", argv[1]);
    else {
        /* CMake compiles with the absolute path of this file: <source>/bench/bench_loader.c. */
        char *bench_dir = comine_path_dirname(__FILE__);
        char *source_dir = comine_path_dirname(bench_dir);
        snprintf(folder, sizeof folder, "%s/../shared/data/lfw112/images", source_dir);
        free(bench_dir);
        free(source_dir);
    }
    if (!comine_path_is_dir(folder)) {
        printf("skipped: %s absent\n", folder);
        return 0;
    }
    comine_log_set_level(COMINE_LOG_WARN);
    comine_dataset *ds;
    if (comine_dataset_open(&ds, folder, NULL) != COMINE_OK) {
        fprintf(stderr, "bench_loader: %s\n", comine_last_error());
        return 1;
    }
    int full = ds->n;
    if (argc > 2 && atoi(argv[2]) > 0 && atoi(argv[2]) < ds->n) ds->n = atoi(argv[2]);
    int reps = argc > 3 && atoi(argv[3]) > 0 ? atoi(argv[3]) : 3;
    int n = ds->n;
    printf("data: %s, %d images\n", folder, n);

    /* Warm the page cache and keep the bytes for the bare decode. */
    uint8_t **bytes = malloc(sizeof(uint8_t *) * n);
    size_t *sizes = malloc(sizeof(size_t) * n);
    double t0 = comine_now();
    for (int i = 0; i < n; i++)
        if (comine_dataset_read(ds, i, &bytes[i], &sizes[i]) != COMINE_OK) {
            fprintf(stderr, "bench_loader: %s\n", comine_last_error());
            return 1;
        }
    double read_s = comine_now() - t0;

    /* Interleaved repeats, best of each: the machine may be shared. */
    uint8_t *rgb = malloc((size_t)4096 * 4096 * 3);
    rate bare = {0}, read_bare = {0}, l1 = {0}, l2 = {0}, l2j = {0};
    for (int rep = 0; rep < reps; rep++) {
        bare_decode(&bare, ds, bytes, sizes, rgb);
        bare_decode(&read_bare, ds, NULL, NULL, rgb);
        loader_epoch(&l1, ds, 1, 0);
        loader_epoch(&l2, ds, 2, 0);
        loader_epoch(&l2j, ds, 2, 0.1f);
    }
    free(rgb);
    for (int i = 0; i < n; i++) free(bytes[i]);
    free(bytes);
    free(sizes);
    printf("first read of the files: %.0f files/s; best of %d runs each; rates per wall second and per CPU second\n",
           n / read_s, reps);
    printf("%-22s %9s %9s\n", "", "img/s", "img/cpu-s");
    printf("%-22s %9.0f %9.0f  tjDecompress2 from memory, 1 thread\n", "bare_decode_1t", bare.wall, bare.cpu);
    printf("%-22s %9.0f %9.0f  file read + tjDecompress2, 1 thread\n", "read_plus_decode_1t", read_bare.wall, read_bare.cpu);
    printf("%-22s %9.0f %9.0f  read, decode, flip, normalise to 112x112 floats\n", "loader_1t", l1.wall, l1.cpu);
    printf("%-22s %9.0f %9.0f\n", "loader_2t", l2.wall, l2.cpu);
    printf("%-22s %9.0f %9.0f  plus crop/scale jitter (resampling)\n", "loader_2t_jitter0.1", l2j.wall, l2j.cpu);
    printf("ratio loader_1t / bare_decode_1t       wall %.2f  cpu %.2f\n", l1.wall / bare.wall, l1.cpu / bare.cpu);
    printf("ratio loader_1t / read_plus_decode_1t  wall %.2f  cpu %.2f\n", l1.wall / read_bare.wall, l1.cpu / read_bare.cpu);
    printf("ratio loader_2t / bare_decode_1t       wall %.2f  cpu %.2f\n", l2.wall / bare.wall, l2.cpu / bare.cpu);
    printf("RESULT bare=%.0f readbare=%.0f l1=%.0f l2=%.0f l2j=%.0f bare_cpu=%.0f l1_cpu=%.0f n=%d\n", bare.wall,
           read_bare.wall, l1.wall, l2.wall, l2j.wall, bare.cpu, l1.cpu, n);
    ds->n = full;
    comine_dataset_free(ds);
    return 0;
}
