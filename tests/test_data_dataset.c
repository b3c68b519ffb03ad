/* test_data_dataset.c: opening folder trees and list files, and the LFW people parser.
 * Builds small data sets under /tmp and checks labels (sorted folder names), what is
 * ignored with a message (non-image files, empty identity folders), and that every bad
 * list (missing fields, non-numeric or negative labels, bad flags, label gaps, missing
 * paths, duplicates) is an error naming the list file and line. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comine/data.h"
#include "fixture.h"

static char dir[64] = "/tmp/comine_test_dataset_XXXXXX";

static void put(const char *rel, const char *text)
{
    char *p = comine_path_join(dir, rel);
    char *d = comine_path_dirname(p);
    comine_mkdirs(d);
    FILE *fp = fopen(p, "wb");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
    free(d);
    free(p);
}

static void put_pgm(const char *rel, int v)
{
    char buf[64];
    snprintf(buf, sizeof buf, "P2 2 2 255 %d %d %d %d\n", v, v, v, v);
    put(rel, buf);
}

static char *at(const char *rel)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", dir, rel);
    return buf;
}

/* Open must fail with a message containing every string in `want` (NULL-terminated). */
static void expect_open_error(const char *what, const char *list, const char *const *want)
{
    comine_dataset *ds = NULL;
    comine_status st = comine_dataset_open(&ds, at(list), NULL);
    const char *msg = comine_last_error();
    int ok = st != COMINE_OK && ds == NULL;
    for (int i = 0; ok && want[i]; i++) ok = strstr(msg, want[i]) != NULL;
    printf("%s %-30s -> %s\n", ok ? "ok  " : "FAIL", what, st == COMINE_OK ? "(opened!)" : msg);
    if (!ok) fx_fail_count++;
    comine_dataset_free(ds);
}

static void test_folder(void)
{
    put_pgm("faces/Zed/1.pgm", 10);
    put_pgm("faces/Zed/2.PGM", 20);
    put_pgm("faces/Amy/a.pgm", 30);
    put("faces/Amy/notes.txt", "not an image\n");
    put_pgm("faces/Bob/x.pgm", 40);
    put("faces/Bob/.hidden", "x");
    mkdir(at("faces/Empty"), 0777);
    put("faces/README", "a file outside identity folders\n");
    comine_dataset *ds;
    comine_status st = comine_dataset_open(&ds, at("faces"), NULL);
    FX_EXPECT(st == COMINE_OK, "open folder: %s", comine_last_error());
    if (st != COMINE_OK) return;
    int ok = ds->kind == COMINE_DATASET_FOLDER && comine_dataset_has_files(ds) &&
             !strcmp(comine_dataset_kind_name(ds->kind), "folder of identity folders") && ds->n == 4 &&
             ds->num_classes == 3 && !strcmp(ds->class_names[0], "Amy") &&
             !strcmp(ds->class_names[1], "Bob") && !strcmp(ds->class_names[2], "Zed") && ds->samples[0].label == 0 &&
             ds->samples[1].label == 1 && ds->samples[2].label == 2 && ds->samples[3].label == 2 && !ds->has_truth;
    printf("%s folder: 4 images, labels by sorted folder name (Amy 0, Bob 1, Zed 2)\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    int txt = 0, empty = 0, outside = 0;
    for (int i = 0; i < ds->num_problems; i++) {
        txt += strstr(ds->problems[i], "notes.txt") && strstr(ds->problems[i], "not an image") ? 1 : 0;
        empty += strstr(ds->problems[i], "Empty") && strstr(ds->problems[i], "empty identity folder") ? 1 : 0;
        outside += strstr(ds->problems[i], "README") ? 1 : 0;
    }
    ok = ds->num_problems == 3 && txt == 1 && empty == 1 && outside == 1;
    printf("%s folder: ignored and listed: non-image file, empty identity folder, file outside folders (%d)\n",
           ok ? "ok  " : "FAIL", ds->num_problems);
    if (!ok) fx_fail_count++;
    /* Reading a sample gives the file's bytes. */
    uint8_t *data;
    size_t size;
    FX_EXPECT(comine_dataset_read(ds, 1, &data, &size) == COMINE_OK && size > 0 && !memcmp(data, "P2 2 2 255 40", 13),
              "read Bob's image");
    free(data);
    FX_EXPECT(comine_dataset_write_classes(ds, at("classes.txt")) == COMINE_OK, "write classes");
    uint8_t *cls;
    FX_EXPECT(comine_read_file(at("classes.txt"), &cls, &size) == COMINE_OK && !strcmp((char *)cls, "0\tAmy\n1\tBob\n2\tZed\n"),
              "classes.txt content");
    free(cls);
    comine_dataset_free(ds);
    mkdir(at("nofaces"), 0777);
    mkdir(at("nofaces/A"), 0777);
    put("nofaces/A/x.txt", "x");
    expect_open_error("folder without images", "nofaces", (const char *const[]){"nofaces", "no images", NULL});
}

static void test_list(void)
{
    put_pgm("img/a.pgm", 1);
    put_pgm("img/b.pgm", 2);
    put_pgm("img/c.pgm", 3);
    put("good.txt", "# comment\nimg/a.pgm\t0\t0\r\n\nimg/b.pgm\t1\t1\nimg/c.pgm\t1\t2\n");
    comine_dataset *ds;
    comine_status st = comine_dataset_open(&ds, at("good.txt"), NULL);
    FX_EXPECT(st == COMINE_OK, "open list: %s", comine_last_error());
    if (st == COMINE_OK) {
        int ok = ds->kind == COMINE_DATASET_LIST && comine_dataset_has_files(ds) &&
                 !strcmp(comine_dataset_kind_name(ds->kind), "list file") && ds->n == 3 && ds->num_classes == 2 &&
                 ds->has_truth &&
                 ds->samples[0].truth == COMINE_TRUTH_CLEAN && ds->samples[1].truth == COMINE_TRUTH_FLIP &&
                 ds->samples[2].truth == COMINE_TRUTH_OUTLIER && ds->samples[2].label == 1 &&
                 !strcmp(ds->samples[0].path, at("img/a.pgm"));
        printf("%s list: comments, CRLF, blank lines; labels and truth flags read\n", ok ? "ok  " : "FAIL");
        if (!ok) fx_fail_count++;
        comine_dataset_free(ds);
    }
    /* --root: paths relative to another folder. */
    put("lists/rooted.txt", "a.pgm\t0\nb.pgm\t1\n");
    char *root = comine_strdup(at("img"));
    comine_dataset_opts o = {root};
    st = comine_dataset_open(&ds, at("lists/rooted.txt"), &o);
    free(root);
    int mark = fx_fail_count;
    FX_EXPECT(st == COMINE_OK && ds->n == 2 && !ds->has_truth && ds->samples[0].truth == COMINE_TRUTH_UNKNOWN,
              "list with root: %s", st ? comine_last_error() : "");
    if (st == COMINE_OK) {
        FX_SUMMARY(mark, "list: paths relative to opts.root\n");
        comine_dataset_free(ds);
    }

    put("missing_field.txt", "img/a.pgm\t0\nimg/b.pgm\n");
    expect_open_error("missing label field", "missing_field.txt", (const char *const[]){"missing_field.txt:2", "field", NULL});
    put("spaces.txt", "img/a.pgm 0\n");
    expect_open_error("space instead of tab", "spaces.txt", (const char *const[]){"spaces.txt:1", NULL});
    put("nonnum.txt", "img/a.pgm\t0\nimg/b.pgm\tone\n");
    expect_open_error("non-numeric label", "nonnum.txt", (const char *const[]){"nonnum.txt:2", "'one'", NULL});
    put("negative.txt", "img/a.pgm\t-1\n");
    expect_open_error("negative label", "negative.txt", (const char *const[]){"negative.txt:1", "-1", NULL});
    put("badflag.txt", "img/a.pgm\t0\t7\n");
    expect_open_error("flag out of range", "badflag.txt", (const char *const[]){"badflag.txt:1", "flag", NULL});
    put("gaps.txt", "img/a.pgm\t0\nimg/b.pgm\t3\nimg/c.pgm\t5\n");
    expect_open_error("label gaps", "gaps.txt", (const char *const[]){"gaps.txt", "1, 2, 4", NULL});
    put("huge.txt", "img/a.pgm\t0\nimg/b.pgm\t99999999\n");
    expect_open_error("huge label (gaps)", "huge.txt", (const char *const[]){"huge.txt", "largest label is 99999999", NULL});
    put("nofile.txt", "img/a.pgm\t0\nimg/zzz.pgm\t0\n");
    expect_open_error("path does not exist", "nofile.txt", (const char *const[]){"nofile.txt:2", "zzz.pgm", "does not exist", NULL});
    put("dup.txt", "img/a.pgm\t0\nimg/b.pgm\t0\nimg/a.pgm\t0\n");
    expect_open_error("duplicate entry", "dup.txt", (const char *const[]){"dup.txt:3", "duplicate", "line 1", NULL});
    put("folderpath.txt", "img\t0\n");
    expect_open_error("path is a folder", "folderpath.txt", (const char *const[]){"folderpath.txt:1", "folder", NULL});
    put("empty.txt", "# nothing\n\n");
    expect_open_error("empty list", "empty.txt", (const char *const[]){"empty.txt", "no samples", NULL});
    put("fields4.txt", "img/a.pgm\t0\t0\textra\n");
    expect_open_error("four fields", "fields4.txt", (const char *const[]){"fields4.txt:1", "4", NULL});
    expect_open_error("list does not exist", "absent.txt", (const char *const[]){"absent.txt", NULL});
}

static void test_people(void)
{
    put("people.txt", "3\nAnn\t2\nBo_B\t10\r\nCy\t1\n");
    comine_people p;
    comine_status st = comine_people_load(&p, at("people.txt"));
    int ok = st == COMINE_OK && p.n == 3 && !strcmp(p.names[1], "Bo_B") && p.counts[1] == 10 && p.counts[2] == 1;
    printf("%s people file: 3 people, names and counts\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    if (st == COMINE_OK) comine_people_free(&p);
    put("people_bad1.txt", "4\nAnn\t2\n");
    st = comine_people_load(&p, at("people_bad1.txt"));
    ok = st != COMINE_OK && strstr(comine_last_error(), "4 people");
    printf("%s people file: count disagrees -> %s\n", ok ? "ok  " : "FAIL", comine_last_error());
    if (!ok) fx_fail_count++;
    put("people_bad2.txt", "1\nAnn two\n");
    st = comine_people_load(&p, at("people_bad2.txt"));
    ok = st != COMINE_OK && strstr(comine_last_error(), "people_bad2.txt:2");
    printf("%s people file: bad line -> %s\n", ok ? "ok  " : "FAIL", comine_last_error());
    if (!ok) fx_fail_count++;
}

int main(void)
{
    comine_log_set_level(COMINE_LOG_ERROR + 1);
    if (!mkdtemp(dir)) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    test_folder();
    test_list();
    test_people();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    return fx_finish("test_data_dataset");
}
