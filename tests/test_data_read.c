/* test_data_read.c: reading the encoded files of samples: comine_dataset_read_into (one
 * reused buffer) against comine_dataset_read on folder, list and RecordIO data sets (paths
 * under the list's root, above it and absolute; sizes that end exactly at the buffer's
 * capacity), its errors after the data set was opened (a missing file, a folder, a FIFO, each
 * named in the message; a zero-byte file reads as 0 bytes), and the loader's batch reads
 * (prefetch.c, where io_uring is available): the same bytes for every file they serve, and
 * every unusual file left to the plain reader.  When the batch reads are missing or serve
 * nothing, a probe of its own says whether they could: io_uring_setup, and a RWF_NOWAIT read
 * (preadv2) of a cached file in the test's folder.  If they could, that is a failure; if not
 * (no io_uring here, or a file system without RWF_NOWAIT, as tmpfs), the part is skipped
 * and the test exits 77 (CTest: skipped) when the rest passes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/io_uring.h>)
#include <linux/io_uring.h>
#define HAVE_IO_URING_H 1
#endif
#endif

#include "comine/data.h"
#include "data/data_internal.h"
#include "fixture.h"

static char dir[64] = "/tmp/comine_test_read_XXXXXX";

static char *at(const char *rel)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, rel);
    return buf;
}

/* A PGM header and then `size` bytes in all, each file different. */
static void put_sized(const char *rel, size_t size, int seed)
{
    char *p = comine_strdup(at(rel));
    char *d = comine_path_dirname(p);
    comine_mkdirs(d);
    uint8_t *data = malloc(size + 1);
    for (size_t i = 0; i < size; i++) data[i] = (uint8_t)(i * 31 + (size_t)seed * 7 + i / 253);
    memcpy(data, "P5 1 1 255 ", size < 11 ? size : 11);
    FILE *fp = fopen(p, "wb");
    if (fp) {
        fwrite(data, 1, size, fp);
        fclose(fp);
    }
    free(data);
    free(d);
    free(p);
}

/* Can this system make an io_uring?  0 when it can, else the errno of io_uring_setup. */
static int io_uring_probe(void)
{
#if defined(HAVE_IO_URING_H) && defined(__NR_io_uring_setup)
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd = (int)syscall(__NR_io_uring_setup, 8u, &p);
    if (fd < 0) return errno;
    close(fd);
    return 0;
#else
    return ENOSYS;
#endif
}

/* Does the file system of `path` take RWF_NOWAIT reads?  Reads the file (to the page cache),
 * then again with RWF_NOWAIT: 0 when that read returns the data, else its errno. */
static int nowait_probe(const char *path)
{
#ifdef RWF_NOWAIT
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return errno;
    while (read(fd, buf, sizeof buf) > 0) continue;
    struct iovec iov = {buf, sizeof buf};
    ssize_t got = preadv2(fd, &iov, 1, 0, RWF_NOWAIT);
    int err = got > 0 ? 0 : got == 0 ? EIO : errno;
    close(fd);
    return err;
#else
    (void)path;
    return EOPNOTSUPP;
#endif
}

/* read_into gives what comine_dataset_read gives, for every sample, in one reused buffer. */
static void compare_all(const comine_dataset *ds, const char *what)
{
    comine_bytes buf = {0};
    int same = 0, bad = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < ds->n; i++) {
            uint8_t *want;
            size_t n;
            comine_status a = comine_dataset_read(ds, i, &want, &n);
            comine_status b = comine_dataset_read_into(ds, i, &buf);
            if (a == COMINE_OK && b == COMINE_OK && buf.size == n && !memcmp(buf.data, want, n) && buf.data[n] == 0)
                same++;
            else {
                printf("FAIL %s: sample %d (%s): read %d (%zu bytes), read_into %d (%zu bytes)\n", what, i,
                       ds->samples[i].path, a, n, b, buf.size);
                bad++;
            }
            if (a == COMINE_OK) free(want);
        }
    printf("%s %s: %d reads equal to comine_dataset_read (twice over, one buffer of %zu bytes)\n",
           bad ? "FAIL" : "ok  ", what, same, buf.cap);
    if (bad) fx_fail_count++;
    comine_bytes_free(&buf);
}

static int index_of(const comine_dataset *ds, const char *rel)
{
    for (int i = 0; i < ds->n; i++)
        if (!strcmp(ds->samples[i].path, at(rel))) return i;
    return -1;
}

/* Reading sample `rel` fails with every string of want (NULL-terminated) in the message. */
static void expect_read_error(const comine_dataset *ds, const char *rel, const char *what, const char *const *want)
{
    comine_bytes buf = {malloc(64), 7, 64}; /* a buffer in use */
    int i = index_of(ds, rel);
    comine_status st = i >= 0 ? comine_dataset_read_into(ds, i, &buf) : COMINE_OK;
    const char *msg = comine_last_error();
    bool ok = i >= 0 && st == COMINE_ERR_IO && buf.size == 0 && strstr(msg, at(rel));
    for (int k = 0; ok && want[k]; k++) ok = strstr(msg, want[k]) != NULL;
    uint8_t *data = NULL;
    size_t n;
    comine_status plain = i >= 0 ? comine_dataset_read(ds, i, &data, &n) : COMINE_OK;
    ok = ok && plain == COMINE_ERR_IO && data == NULL;
    printf("%s read_into %-24s -> %s\n", ok ? "ok  " : "FAIL", what, st == COMINE_OK ? "(read!)" : msg);
    if (!ok) fx_fail_count++;
    comine_bytes_free(&buf);
}

static void folder(void)
{
    /* Sizes around the first exact allocation (the first file's size + 2) and the doubling. */
    static const size_t sizes[] = {100, 101, 102, 99, 203, 204, 205, 4096, 5000, 40000, 70001, 12};
    char rel[64];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        snprintf(rel, sizeof rel, "faces/id%zu/%02zu.pgm", k % 3, k);
        put_sized(rel, sizes[k], (int)k);
    }
    put_sized("faces/id0/zero.pgm", 0, 0);
    put_sized("faces/id1/gone.pgm", 50, 1);
    put_sized("faces/id1/folder.pgm", 50, 2);
    put_sized("faces/id2/fifo.pgm", 50, 3);
    comine_dataset *ds;
    if (comine_dataset_open(&ds, at("faces"), NULL) != COMINE_OK) {
        printf("FAIL open: %s\n", comine_last_error());
        fx_fail_count++;
        return;
    }
    compare_all(ds, "folder");

    comine_bytes buf = {0};
    int z = index_of(ds, "faces/id0/zero.pgm");
    comine_status st = comine_dataset_read_into(ds, z, &buf);
    bool ok = st == COMINE_OK && buf.size == 0 && buf.data && buf.data[0] == 0;
    printf("%s read_into a zero-byte file: 0 bytes, as comine_dataset_read (the decoder names it)\n",
           ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    comine_bytes_free(&buf);

    /* The files change after the data set was opened. */
    unlink(at("faces/id1/gone.pgm"));
    unlink(at("faces/id1/folder.pgm"));
    mkdir(at("faces/id1/folder.pgm"), 0777);
    unlink(at("faces/id2/fifo.pgm"));
    bool fifo = mkfifo(at("faces/id2/fifo.pgm"), 0666) == 0;
    expect_read_error(ds, "faces/id1/gone.pgm", "a missing file", (const char *const[]){"cannot open", NULL});
    expect_read_error(ds, "faces/id1/folder.pgm", "a folder", (const char *const[]){"not a regular file", NULL});
    if (fifo)
        expect_read_error(ds, "faces/id2/fifo.pgm", "a FIFO (no wait)",
                          (const char *const[]){"not a regular file", NULL});

    /* The loader's batch reads. */
    comine_prefetch *pf = comine_prefetch_create(8);
    int uring = pf ? 0 : io_uring_probe();
    if (!pf && uring == 0) {
        printf("FAIL comine_prefetch_create failed, but io_uring_setup works here\n");
        fx_fail_count++;
    } else if (!pf) {
        FX_SKIP("batch reads: io_uring unavailable here (io_uring_setup: %s); the loader reads file by file",
                strerror(uring));
    } else {
        int served = 0, left = 0, bad = 0;
        int big = index_of(ds, "faces/id1/10.pgm"); /* 70001 bytes: over the first share */
        for (int round = 0; round < 3; round++) {
            for (int first = 0; first < ds->n; first += 8) {
                int idx[8], n = 0;
                for (int i = first; i < ds->n && n < 8; i++) idx[n++] = i;
                comine_prefetch_read(pf, ds, idx, n);
                for (int k = 0; k < n; k++) {
                    size_t size;
                    const uint8_t *got = comine_prefetch_bytes(pf, k, &size);
                    comine_status plain = comine_dataset_read_into(ds, idx[k], &buf);
                    if (!got) {
                        left++;
                        continue;
                    }
                    served++;
                    if (plain != COMINE_OK || size != buf.size || memcmp(got, buf.data, size) || got[size] != 0) {
                        printf("FAIL batch read of %s differs from read_into\n", ds->samples[idx[k]].path);
                        bad++;
                    }
                    if (idx[k] == z || idx[k] == index_of(ds, "faces/id1/gone.pgm") ||
                        idx[k] == index_of(ds, "faces/id1/folder.pgm") ||
                        idx[k] == index_of(ds, "faces/id2/fifo.pgm")) {
                        printf("FAIL batch read served %s\n", ds->samples[idx[k]].path);
                        bad++;
                    }
                }
            }
        }
        /* The large file is left at first, then served once the shares have grown. */
        int idx[1] = {big};
        size_t size = 0;
        comine_prefetch_read(pf, ds, idx, 1);
        bool big_ok = comine_prefetch_bytes(pf, 0, &size) && size == 70001;
        int nowait = served == 0 ? nowait_probe(ds->samples[big].path) : 0;
        if (served == 0 && nowait != 0) {
            FX_SKIP("batch reads: the file system of %s refuses RWF_NOWAIT reads (preadv2: %s), as tmpfs does; the "
                    "loader reads file by file", dir, strerror(nowait));
        } else {
            /* 11 files of a usual size in each of 3 rounds: an odd file does not stop the batch reads. */
            ok = !bad && served >= 3 * 11 && left >= 3 * 4 && big_ok;
            printf("%s batch reads: %d files served as read_into reads them, %d left to it (missing, folder, "
                   "FIFO, empty, large at first)%s\n",
                   ok ? "ok  " : "FAIL", served, left, big_ok ? "" : "; the large file was never served");
            if (!ok) fx_fail_count++;
        }
        comine_prefetch_free(pf);
    }
    comine_bytes_free(&buf);

    /* RecordIO: read_into gives the payloads; batch reads serve nothing there. */
    comine_dataset *sub;
    put_sized("packme/a/1.pgm", 300, 9);
    put_sized("packme/a/2.pgm", 301, 8);
    put_sized("packme/b/3.pgm", 30000, 7);
    if (comine_dataset_open(&sub, at("packme"), NULL) == COMINE_OK) {
        comine_pack_stats stats;
        comine_dataset *rec = NULL;
        if (comine_recordio_pack(sub, NULL, 1, 1, at("rec/train"), &stats) == COMINE_OK &&
            comine_dataset_open(&rec, at("rec/train.rec"), NULL) == COMINE_OK) {
            compare_all(rec, "RecordIO");
            comine_prefetch *p2 = comine_prefetch_create(4);
            if (p2) {
                int idx[3] = {0, 1, 2};
                size_t size;
                comine_prefetch_read(p2, rec, idx, 3);
                ok = !comine_prefetch_bytes(p2, 0, &size) && !comine_prefetch_bytes(p2, 2, &size);
                printf("%s batch reads leave RecordIO samples to read_into\n", ok ? "ok  " : "FAIL");
                if (!ok) fx_fail_count++;
                comine_prefetch_free(p2);
            }
        } else {
            printf("FAIL pack: %s\n", comine_last_error());
            fx_fail_count++;
        }
        comine_dataset_free(rec);
        comine_dataset_free(sub);
    }
    comine_dataset_free(ds);
}

static void list(void)
{
    put_sized("root/x/a.pgm", 500, 1);
    put_sized("root/b.pgm", 501, 2);
    put_sized("elsewhere/c.pgm", 502, 3);
    put_sized("lists/d.pgm", 503, 4);
    char text[1024];
    snprintf(text, sizeof text, "x/a.pgm\t0\nb.pgm\t1\n../elsewhere/c.pgm\t0\n%s\t1\n", at("lists/d.pgm"));
    FILE *fp = fopen(at("lists/train.txt"), "wb");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
    comine_dataset_opts o = {0};
    char *root = comine_strdup(at("root"));
    o.root = root;
    comine_dataset *ds;
    if (comine_dataset_open(&ds, at("lists/train.txt"), &o) != COMINE_OK) {
        printf("FAIL open list: %s\n", comine_last_error());
        fx_fail_count++;
    } else {
        compare_all(ds, "list (paths below the root, above it, absolute)");
        comine_dataset_free(ds);
    }
    /* A root that does not exist: every path is absolute, read as given. */
    char *b = comine_strdup(at("root/b.pgm"));
    snprintf(text, sizeof text, "%s\t0\n%s\t1\n", b, at("lists/d.pgm"));
    free(b);
    fp = fopen(at("lists/absolute.txt"), "wb");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
    o.root = at("no/such/folder");
    if (comine_dataset_open(&ds, at("lists/absolute.txt"), &o) != COMINE_OK) {
        printf("FAIL open list: %s\n", comine_last_error());
        fx_fail_count++;
    } else {
        compare_all(ds, "list under a root that does not exist");
        comine_dataset_free(ds);
    }
    free(root);
}

int main(void)
{
    comine_log_set_level(COMINE_LOG_ERROR + 1);
    if (!mkdtemp(dir)) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    folder();
    list();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    return fx_finish("test_data_read");
}
