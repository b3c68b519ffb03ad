/* test_eval_pairs.c: pairs files (LFW `10 300` fold blocks, `N` sets split as KFold, generic
 * lists, unique images), the clear errors on bad pairs files (bad lines, wrong counts, missing
 * images), and the readers of the trainer's outputs (noise.csv with RFC-4180 quoting,
 * cos_epoch<E>.csv, metrics.jsonl with null and missing keys). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comine/eval.h"
#include "fixture.h"

static char tmp_dir[256];

static void write_text(const char *name, const char *text)
{
    char *p = comine_path_join(tmp_dir, name);
    FILE *fp = fopen(p, "w");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
    free(p);
}

static char *tpath(const char *name) { return comine_path_join(tmp_dir, name); }

static void touch_image(const char *name, int num)
{
    char rel[256];
    snprintf(rel, sizeof rel, "img/%s", name);
    char *d = tpath(rel);
    comine_mkdirs(d);
    free(d);
    snprintf(rel, sizeof rel, "img/%s/%s_%04d.jpg", name, name, num);
    write_text(rel, "x");
}

/* Loading must fail and the message must contain every one of `needles`. */
static void expect_error(const char *file_text, const char *what, const char *n1, const char *n2)
{
    write_text("bad.txt", file_text);
    char *f = tpath("bad.txt"), *root = tpath("img");
    comine_pairs *p = NULL;
    comine_status st = comine_pairs_load(&p, f, root);
    const char *msg = st ? comine_last_error() : "";
    bool ok = st != COMINE_OK && strstr(msg, f) && (!n1 || strstr(msg, n1)) && (!n2 || strstr(msg, n2));
    printf("%s %-28s -> %s\n", ok ? "ok  " : "FAIL", what, st ? msg : "(accepted)");
    if (!ok) fx_fail_count++;
    comine_pairs_free(p);
    free(f);
    free(root);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "test_eval_pairs_tmp.%d", (int)getpid());
    comine_mkdirs(tmp_dir);
    const char *names[] = {"Alice_A", "Bob_B", "Carol_C"};
    for (int n = 0; n < 3; n++)
        for (int k = 1; k <= 3; k++) touch_image(names[n], k);

    /* `10 300`: fold f is the f-th block of 600 lines */
    {
        size_t cap = 10 * 600 * 40 + 64, len = 0;
        char *text = malloc(cap);
        len += (size_t)snprintf(text + len, cap - len, "10\t300\n");
        for (int f = 0; f < 10; f++) {
            for (int i = 0; i < 300; i++)
                len += (size_t)snprintf(text + len, cap - len, "%s\t%d\t%d\n", names[i % 3], 1 + i % 3, 1 + (i + 1) % 3);
            for (int i = 0; i < 300; i++)
                len += (size_t)snprintf(text + len, cap - len, "%s %d %s %d\n", names[i % 3], 1 + i % 3,
                                        names[(i + 1) % 3], 1 + (i + 2) % 3);
        }
        write_text("lfw10.txt", text);
        free(text);
        char *f = tpath("lfw10.txt"), *root = tpath("img");
        comine_pairs *p;
        comine_status st = comine_pairs_load(&p, f, root);
        FX_EXPECT(!st, "load %s: %s", f, comine_last_error());
        if (!st) {
            int bad = 0;
            for (int i = 0; i < p->n; i++) bad += p->fold[i] != i / 600 || p->same[i] != ((i % 600) < 300);
            FX_EXPECT(p->n == 6000 && p->folds == 10 && p->file_folds && bad == 0 && p->n_images == 6,
                      "10x300: n %d folds %d bad %d images %d", p->n, p->folds, bad, p->n_images);
            printf("%s 10 300 file: %d pairs, %d folds, pair i in fold i/600 (%d wrong), %d unique images (6 expected)\n",
                   bad || p->n_images != 6 ? "FAIL" : "ok  ", p->n, p->folds, bad, p->n_images);
            char want[512];
            snprintf(want, sizeof want, "%s/Bob_B/Bob_B_0002.jpg", root);
            FX_EXPECT(!strcmp(p->images[p->a[1]], want), "image path %s, expected %s", p->images[p->a[1]], want);
            comine_pairs_free(p);
        }
        free(f);
        free(root);
    }
    /* `N` file: each half (matched, mismatched) split into contiguous folds */
    {
        write_text("lfw1.txt", "6\nAlice_A 1 2\nBob_B 1 3\nCarol_C 2 3\nAlice_A 1 2\nBob_B 2 3\nCarol_C 1 2\n"
                               "Alice_A 1 Bob_B 2\nBob_B 1 Carol_C 1\nCarol_C 3 Alice_A 3\nAlice_A 2 Carol_C 2\n"
                               "Bob_B 3 Alice_A 1\nCarol_C 1 Bob_B 1\n");
        char *f = tpath("lfw1.txt"), *root = tpath("img");
        comine_pairs *p;
        comine_status st = comine_pairs_load(&p, f, root);
        FX_EXPECT(!st, "load %s: %s", f, comine_last_error());
        if (!st) {
            /* 6 + 6 pairs in 6 folds: fold f = matched pair f and mismatched pair f */
            const int want[12] = {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5};
            int bad = 0;
            for (int i = 0; i < 12; i++) bad += p->fold[i] != want[i] || p->same[i] != (i < 6);
            int mark = fx_fail_count;
            FX_EXPECT(p->n == 12 && p->folds == 6 && !p->file_folds && bad == 0, "N file folds wrong (%d)", bad);
            FX_SUMMARY(mark, "N file: 6 + 6 pairs, fold f = matched f + mismatched f (%d wrong)\n", bad);
            comine_pairs_free(p);
        }
        free(f);
        free(root);
    }
    /* generic list, relative to the list's folder */
    {
        write_text("list.tsv", "img/Alice_A/Alice_A_0001.jpg\timg/Alice_A/Alice_A_0002.jpg\t1\n"
                               "img/Alice_A/Alice_A_0001.jpg\timg/Bob_B/Bob_B_0001.jpg\t0\r\n"
                               "\n"
                               "img/Bob_B/Bob_B_0001.jpg\timg/Bob_B/Bob_B_0003.jpg\ttrue\n");
        char *f = tpath("list.tsv");
        comine_pairs *p;
        comine_status st = comine_pairs_load(&p, f, NULL);
        FX_EXPECT(!st, "load %s: %s", f, comine_last_error());
        if (!st) {
            bool ok = p->n == 3 && p->n_images == 4 && p->same[0] == 1 && p->same[1] == 0 && p->same[2] == 1 &&
                      p->folds == 3 && p->a[1] == p->a[0] && p->b[1] == p->a[2];
            FX_EXPECT(ok, "list: n %d images %d folds %d", p->n, p->n_images, p->folds);
            printf("%s generic list: %d pairs, %d unique images\n", ok ? "ok  " : "FAIL", p->n, p->n_images);
            comine_pairs_free(p);
        }
        free(f);
    }
    /* errors name the file and the line */
    expect_error("2\nAlice_A 1 2\nBob_B 1 2\nAlice_A 1 Bob_B 2\n", "wrong count", ":1: header",
                 "promises 4 pair lines (1 fold(s) of 2 matched + 2 mismatched), found 3");
    expect_error("1 2\nAlice_A 1 2\nBob_B x 2\nAlice_A 1 Bob_B 2\nBob_B 1 Carol_C 2\n", "bad matched line", ":3:",
                 "matched pair");
    expect_error("1\nAlice_A 1 2\nAlice_A 1 2\n", "mismatched expected", ":3:", "mismatched pair");
    expect_error("1\nAlice_A 1 9\nAlice_A 1 Bob_B 2\n", "missing image", ":2:", "Alice_A_0009.jpg does not exist");
    expect_error("a.jpg\tb.jpg\tmaybe\n", "bad list line", ":1:", "same = 1/0");
    expect_error("", "empty file", "empty", NULL);

    /* noise.csv with quoting */
    {
        write_text("noise.csv", "index,path,label,votes,rounds,score,flagged,truth\n"
                                "0,a/x.jpg,3,0,4,0,0,0\n"
                                "1,\"b,\"\"q\"\"/y.jpg\",5,3,4,0.75,1,1\n"
                                "2,c.jpg,1,0,0,0,0,\n");
        char *f = tpath("noise.csv");
        comine_noise_table *t;
        comine_status st = comine_noise_load(&t, f);
        FX_EXPECT(!st, "noise load: %s", comine_last_error());
        if (!st) {
            bool ok = t->n == 3 && !strcmp(t->rows[1].path, "b,\"q\"/y.jpg") && t->rows[1].votes == 3 &&
                      fabs(t->rows[1].score - 0.75) < 1e-12 && t->rows[2].truth == -1 && !t->has_truth;
            FX_EXPECT(ok, "noise.csv parsed wrong");
            printf("%s noise.csv: %d rows, quoted path '%s'\n", ok ? "ok  " : "FAIL", t->n, t->rows[1].path);
            comine_noise_free(t);
        }
        write_text("noise.csv", "index,path,label,votes,rounds,score,flagged,truth\n0,a.jpg,3,5,4,0,0,0\n");
        st = comine_noise_load(&t, f);
        int mark = fx_fail_count;
        FX_EXPECT(st && strstr(comine_last_error(), ":2:"), "votes > rounds must fail naming line 2");
        FX_SUMMARY(mark, "noise.csv bad row -> %s\n", st ? comine_last_error() : "(accepted)");
        free(f);
    }
    /* cos csv and metrics.jsonl */
    {
        /* row 2: a sample the epoch did not reach (its batch was dropped): both fields empty */
        write_text("cos_epoch4.csv", "index,label,truth,cos_a,cos_b\n0,1,0,0.5,\n1,2,,-0.25,\n2,2,0,,\n");
        char *f = tpath("cos_epoch4.csv");
        comine_cos_table *c;
        int mark = fx_fail_count;
        comine_status st = comine_cos_load(&c, f);
        FX_EXPECT(!st && c->n == 3 && !c->has_b && c->truth[1] == -1 && c->cos_a[1] == -0.25 && isnan(c->cos_a[2]),
                  "cos csv parsed wrong");
        if (!st) comine_cos_free(c);
        FX_SUMMARY(mark, "cos_epoch csv (single peer, a sample not seen)\n");
        write_text("cos_epoch4.csv", "index,label,truth,cos_a,cos_b\n0,1,0,0.5,\n1,2,,x,\n");
        st = comine_cos_load(&c, f);
        mark = fx_fail_count;
        FX_EXPECT(st && strstr(comine_last_error(), ":3:"), "a bad cos value must fail naming line 3");
        FX_SUMMARY(mark, "bad cos csv -> %s\n", st ? comine_last_error() : "(accepted)");
        free(f);
        write_text("m.jsonl", "{\"epoch\": 0, \"loss_a\": 2.5, \"loss_b\": null}\n\n"
                              "{\"epoch\":1,\"loss_a\":1.5e0,\"det_f1\":0.75, \"mode\": \"comining\"}\n");
        f = tpath("m.jsonl");
        comine_jsonl *j;
        st = comine_jsonl_load(&j, f);
        FX_EXPECT(!st, "jsonl: %s", comine_last_error());
        if (!st) {
            bool ok = j->n_rows == 2 && comine_jsonl_get(j, 1, "loss_a") == 1.5 && isnan(comine_jsonl_get(j, 0, "loss_b")) &&
                      isnan(comine_jsonl_get(j, 0, "det_f1")) && comine_jsonl_get(j, 1, "det_f1") == 0.75 &&
                      isnan(comine_jsonl_get(j, 0, "absent")) && comine_jsonl_get(j, 1, "epoch") == 1;
            FX_EXPECT(ok, "jsonl values wrong");
            printf("%s metrics.jsonl: %d rows, %d keys\n", ok ? "ok  " : "FAIL", j->n_rows, j->n_keys);
            comine_jsonl_free(j);
        }
        write_text("m.jsonl", "{\"epoch\": 0}\n{\"epoch\": [1]}\n");
        st = comine_jsonl_load(&j, f);
        mark = fx_fail_count;
        FX_EXPECT(st && strstr(comine_last_error(), ":2:"), "bad jsonl must fail naming line 2");
        FX_SUMMARY(mark, "bad metrics.jsonl -> %s\n", st ? comine_last_error() : "(accepted)");
        free(f);
    }
    /* npy readable by numpy */
    {
        float m[6] = {1, 2, 3, 4, 5, -6.5f};
        char *f = tpath("e.npy");
        comine_status st = comine_npy_write_f32(f, m, 2, 3);
        FX_EXPECT(!st, "npy write: %s", comine_last_error());
        struct stat sb;
        FX_EXPECT(stat(f, &sb) == 0 && sb.st_size == 128 + 24, "npy size %lld", (long long)sb.st_size);
        if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0) {
            char cmd[1024];
            snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c \"import numpy as np; a = np.load('%s'); "
                     "assert a.dtype == np.float32 and a.shape == (2, 3) and a[1, 2] == -6.5 and a[0, 1] == 2, a\"", f);
            int rc = system(cmd);
            FX_EXPECT(rc == 0, "numpy.load of %s failed", f);
            printf("%s npy (2, 3) float32 read back by numpy.load\n", rc ? "FAIL" : "ok  ");
        } else {
            FX_SKIP("npy read back by numpy.load (no /usr/bin/python3 with numpy; Debian: apt-get install python3-numpy)");
        }
        free(f);
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmp_dir);
    return fx_finish("test_eval_pairs");
}
