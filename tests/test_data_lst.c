/* test_data_lst.c: MXNet / insightface .lst lists read as list data sets: im2rec's
 * `index<TAB>label[<TAB>label...]<TAB>path` (labels written as floats, the first one the
 * identity) and insightface's `aligned<TAB>path<TAB>label[<TAB>bbox x4<TAB>landmark x10]`,
 * relative to the list's folder or --root; each malformed line refused with file:line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comine/data.h"
#include "fixture.h"

static char dir[256];

static void write_text(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp) {
        printf("FAIL cannot write %s\n", path);
        exit(1);
    }
    fputs(text, fp);
    fclose(fp);
}

static void write_image(const char *name, uint8_t shade)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t rgb[8 * 8 * 3];
    memset(rgb, shade, sizeof rgb);
    comine_image img = {8, 8, rgb};
    if (comine_image_save_png(&img, path)) {
        printf("FAIL %s\n", comine_last_error());
        exit(1);
    }
}

/* Opens NAME (in dir) and checks its labels and the paths' last characters. */
static void expect_list(const char *what, const char *name, int n, const int *labels, const char *const *files)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    comine_dataset *ds = NULL;
    comine_status st = comine_dataset_open(&ds, path, NULL);
    int mark = fx_fail_count;
    FX_EXPECT(st == COMINE_OK, "%s: %s", what, st ? comine_last_error() : "");
    if (st) return;
    FX_EXPECT(ds->kind == COMINE_DATASET_LIST && ds->n == n, "%s: %d samples, want %d", what, ds->n, n);
    for (int i = 0; i < n && i < ds->n; i++) {
        size_t lp = strlen(ds->samples[i].path), lf = strlen(files[i]);
        FX_EXPECT(ds->samples[i].label == labels[i] && lp >= lf && !strcmp(ds->samples[i].path + lp - lf, files[i]) &&
                  ds->samples[i].truth == COMINE_TRUTH_UNKNOWN, "%s: sample %d is %s label %d, want %s label %d",
                  what, i, ds->samples[i].path, ds->samples[i].label, files[i], labels[i]);
    }
    comine_image img;
    st = comine_dataset_decode(ds, n - 1, &img);
    FX_EXPECT(st == COMINE_OK && img.w == 8, "%s: the last image decodes", what);
    if (!st) comine_image_free(&img);
    FX_SUMMARY(mark, "%s: %d samples, labels and paths as written\n", what, n);
    comine_dataset_free(ds);
}

static void expect_error(const char *what, const char *name, const char *text, const char *needle)
{
    write_text(name, text);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    comine_dataset *ds = NULL;
    comine_log_set_level(COMINE_LOG_ERROR + 1);
    comine_status st = comine_dataset_open(&ds, path, NULL);
    comine_log_set_level(COMINE_LOG_WARN);
    bool ok = st != COMINE_OK && strstr(comine_last_error(), needle);
    printf("%s %s: %s\n", ok ? "ok  " : "FAIL", what, st ? comine_last_error() : "accepted");
    if (!ok) fx_fail_count++;
    comine_dataset_free(ds);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/test_data_lst.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        printf("FAIL mkdtemp\n");
        return 1;
    }
    char sub[300];
    snprintf(sub, sizeof sub, "%s/a", dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof sub, "%s/b", dir);
    mkdir(sub, 0755);
    write_image("a/1.png", 10);
    write_image("a/2.png", 20);
    write_image("b/1.png", 30);
    write_image("b/2.png", 40);

    const char *files[] = {"a/1.png", "a/2.png", "b/1.png", "b/2.png"};
    const int labels[] = {0, 0, 1, 1};
    write_text("im2rec.lst", "0\t0.000000\ta/1.png\n1\t0.000000\ta/2.png\n2\t1.000000\tb/1.png\n3\t1\tb/2.png\n");
    expect_list("im2rec .lst (index, label, path)", "im2rec.lst", 4, labels, files);
    write_text("multi.lst", "5\t0.000000\t7.500000\t3\ta/1.png\n6\t0\t2\t1\ta/2.png\n7\t1.000000\t0\t0\tb/1.png\n"
                            "8\t1\t0\t0\tb/2.png\n");
    expect_list("im2rec .lst with 3 label columns (the first is the identity)", "multi.lst", 4, labels, files);
    write_text("insight.lst", "1\ta/1.png\t0\n0\ta/2.png\t0\n1\tb/1.png\t1\t0\t0\t112\t112\n"
                              "1\tb/2.png\t1\t0\t0\t112\t112\t38.3\t73.5\t56.0\t41.7\t70.7\t51.6\t51.5\t71.7\t92.4\t92.2\n");
    expect_list("insightface .lst (aligned, path, label[, bbox, landmarks])", "insight.lst", 4, labels, files);

    expect_error("an index that is not an integer names file:line", "bad1.lst", "0\t0\ta/1.png\nx\t1\tb/1.png\n",
                 "bad1.lst:2");
    expect_error("a non-numeric label column names file:line", "bad2.lst", "0\t0\tzz\ta/1.png\n", "bad2.lst:1");
    expect_error("a fractional label names file:line", "bad3.lst", "0\t0\ta/1.png\n1\t1.5\tb/1.png\n", "bad3.lst:2");
    expect_error("two fields name file:line", "bad4.lst", "0\t0\ta/1.png\na/2.png\t0\n", "bad4.lst:2");
    expect_error("a 5-field insightface line names file:line", "bad5.lst", "1\ta/1.png\t0\t1\t2\n", "bad5.lst:1");
    expect_error("a missing image names file:line", "bad6.lst", "0\t0\ta/1.png\n\n1\t1\tb/9.png\n", "bad6.lst:3");
    expect_error("a label gap is refused", "bad7.lst", "0\t0\ta/1.png\n1\t2\tb/1.png\n", "bad7.lst");

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    return fx_finish("test_data_lst");
}
