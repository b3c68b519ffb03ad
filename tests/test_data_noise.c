/* test_data_noise.c: label-noise injection on in-memory samples: exact counts, flips never keep
 * their label, permute mode all wrong (also with many shared labels), outliers only from the
 * distractors (distinct images, training labels), clean samples untouched, add mode, same seed
 * same output, every error case; the identity selection (min/max per identity, people list);
 * a list file that reads back through comine_dataset_open with its truth flags; duplicate
 * identities (the split, its pairs and classes files, names from folders). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comine/core.h"
#include "comine/data.h"
#include "comine/noise.h"
#include "fixture.h"

/* n samples over C identities with uneven sizes: sample i has label (i * i) % C. */
static comine_sample *make_train(int n, int C)
{
    comine_sample *s = calloc((size_t)n, sizeof *s);
    for (int i = 0; i < n; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "train/%d.jpg", i);
        s[i].path = strdup(buf);
        s[i].label = (int)(((long)i * i) % C);
        s[i].truth = COMINE_TRUTH_UNKNOWN;
        s[i].rec_offset = -1;
    }
    return s;
}

static int quiet = 0; /* print one line per check_corrupt call unless set */

static char **make_distractors(int m)
{
    char **d = calloc((size_t)m, sizeof *d);
    for (int i = 0; i < m; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "distract/%d.jpg", i);
        d[i] = strdup(buf);
    }
    return d;
}

/* Checks every property of one corrupted array; returns the failures found. */
static void check_corrupt(const char *what, const comine_sample *train, int n, int C, char **dis, int nd,
                          const comine_corrupt_opts *o)
{
    comine_sample *s;
    int m, mark = fx_fail_count;
    comine_status st = comine_corrupt(&s, &m, train, n, C, (const char *const *)dis, nd, o);
    FX_EXPECT(st == COMINE_OK, "%s: %s", what, comine_last_error());
    if (st != COMINE_OK) return;
    int nf, no;
    comine_corrupt_counts(n, o->flip, o->outlier, &nf, &no);
    int kinds[3] = {0, 0, 0}, kept_label = 0, bad_clean = 0, bad_outlier = 0, dup_outlier = 0, bad_label = 0;
    char *used = calloc((size_t)nd, 1);
    FX_EXPECT(m == n + (o->outlier_mode == COMINE_OUTLIER_ADD ? no : 0), "%s: %d samples out", what, m);
    for (int i = 0; i < m; i++) {
        FX_EXPECT(s[i].truth >= 0 && s[i].truth <= 2, "%s: bad truth %d", what, s[i].truth);
        if (s[i].truth < 0 || s[i].truth > 2) continue;
        kinds[s[i].truth]++;
        if (s[i].label < 0 || s[i].label >= C) bad_label++;
        if (s[i].truth == COMINE_TRUTH_CLEAN)
            bad_clean += i >= n || s[i].label != train[i].label || strcmp(s[i].path, train[i].path) != 0;
        if (s[i].truth == COMINE_TRUTH_FLIP) {
            kept_label += s[i].label == train[i].label;
            bad_clean += strcmp(s[i].path, train[i].path) != 0;
        }
        if (s[i].truth == COMINE_TRUTH_OUTLIER) {
            int k;
            if (sscanf(s[i].path, "distract/%d.jpg", &k) != 1 || k < 0 || k >= nd) {
                bad_outlier++;
            } else {
                dup_outlier += used[k];
                used[k] = 1;
            }
        }
    }
    if (o->outlier_mode == COMINE_OUTLIER_ADD)
        for (int i = n; i < m; i++) FX_EXPECT(s[i].truth == COMINE_TRUTH_OUTLIER, "%s: added sample %d not an outlier", what, i);
    FX_EXPECT(kinds[1] == nf && kinds[2] == no, "%s: %d flips %d outliers, want %d %d", what, kinds[1], kinds[2], nf, no);
    FX_EXPECT(kept_label == 0, "%s: %d flipped samples kept their label", what, kept_label);
    FX_EXPECT(bad_clean == 0, "%s: %d clean/flipped samples changed path or label", what, bad_clean);
    FX_EXPECT(bad_outlier == 0 && dup_outlier == 0, "%s: %d outliers not from distractors, %d repeated", what,
              bad_outlier, dup_outlier);
    FX_EXPECT(bad_label == 0, "%s: %d labels out of range", what, bad_label);
    if (o->flip_mode == COMINE_FLIP_PERMUTE) { /* the flipped subset's labels are a permutation of its own */
        int *hist = calloc((size_t)C, sizeof(int));
        for (int i = 0; i < n; i++)
            if (s[i].truth == COMINE_TRUTH_FLIP) {
                hist[train[i].label]++;
                hist[s[i].label]--;
            }
        int off = 0;
        for (int c = 0; c < C; c++) off += hist[c] != 0;
        FX_EXPECT(off == 0, "%s: permuted labels are not a permutation of the subset's labels", what);
        free(hist);
    }
    /* same seed, same output; another seed, another output */
    comine_sample *s2, *s3;
    int m2, m3;
    comine_corrupt(&s2, &m2, train, n, C, (const char *const *)dis, nd, o);
    comine_corrupt_opts o3 = *o;
    o3.seed = o->seed + 1;
    comine_corrupt(&s3, &m3, train, n, C, (const char *const *)dis, nd, &o3);
    int same = m2 == m, differ = 0;
    for (int i = 0; i < m && same; i++)
        same = s[i].label == s2[i].label && s[i].truth == s2[i].truth && !strcmp(s[i].path, s2[i].path);
    for (int i = 0; i < m && i < m3; i++) differ += s[i].label != s3[i].label || s[i].truth != s3[i].truth;
    FX_EXPECT(same, "%s: same seed gave a different output", what);
    FX_EXPECT(differ > 0 || nf + no == 0, "%s: another seed gave the same output", what);
    if (!quiet || fx_fail_count != mark)
        FX_SUMMARY(mark, "%-34s n=%d C=%d: clean %d flip %d outlier %d; kept label %d; seed-reproducible %s\n", what,
                   n, C, kinds[0], kinds[1], kinds[2], kept_label, same ? "yes" : "NO");
    comine_noise_samples_free(s, m);
    comine_noise_samples_free(s2, m2);
    comine_noise_samples_free(s3, m3);
    free(used);
}

static void expect_error(const char *what, const comine_sample *train, int n, int C, char **dis, int nd,
                         const comine_corrupt_opts *o)
{
    comine_sample *s = NULL;
    int m = 0;
    int mark = fx_fail_count;
    comine_status st = comine_corrupt(&s, &m, train, n, C, (const char *const *)dis, nd, o);
    FX_EXPECT(st != COMINE_OK && s == NULL, "%s: accepted", what);
    FX_SUMMARY(mark, "error %-30s -> %s\n", what, st != COMINE_OK ? comine_last_error() : "(accepted!)");
    comine_noise_samples_free(s, m);
}

/* Duplicate identities: counts, halves, appended labels, the pairs, the same seed the same
 * output, flips and outliers untouched by the split; the pairs and classes files; names from
 * paths. */
static void test_duplicates(void)
{
    int n = 200, C = 20, mark = fx_fail_count;
    comine_sample *base = make_train(n, C); /* label (i * i) % 20: uneven sizes, some identities empty */
    int count[20] = {0}, eligible = 0;
    for (int i = 0; i < n; i++) count[base[i].label]++;
    for (int c = 0; c < C; c++) eligible += count[c] >= 2;
    FX_EXPECT(comine_duplicate_count(C, 0.1) == 2 && comine_duplicate_count(C, 0.26) == 5 &&
              comine_duplicate_count(C, 0) == 0, "duplicate counts");
    comine_sample *s = calloc((size_t)n, sizeof *s), *again = calloc((size_t)n, sizeof *again);
    memcpy(s, base, sizeof *s * (size_t)n);
    memcpy(again, base, sizeof *s * (size_t)n);
    int *pairs = NULL, np = 0, *pairs2 = NULL, np2 = 0;
    double rate = 0.2; /* 4 of the eligible identities */
    comine_status st = comine_duplicate_split(s, n, C, rate, 5, &pairs, &np);
    FX_EXPECT(st == COMINE_OK && np == 4, "split: %s, %d pairs", comine_last_error(), np);
    int after[24] = {0}, bad = 0;
    for (int i = 0; i < n; i++) {
        FX_EXPECT(s[i].label >= 0 && s[i].label < C + np, "label %d out of range", s[i].label);
        if (s[i].label >= 0 && s[i].label < C + np) after[s[i].label]++;
        if (s[i].truth != base[i].truth || s[i].path != base[i].path) bad++;
        /* a moved sample goes to its own identity's new label */
        if (s[i].label != base[i].label) {
            int j = s[i].label - C;
            if (j < 0 || j >= np || pairs[2 * j] != base[i].label) bad++;
        }
    }
    for (int j = 0; j < np && st == COMINE_OK; j++) {
        int a = pairs[2 * j], b = pairs[2 * j + 1];
        FX_EXPECT(b == C + j && (j == 0 || a > pairs[2 * j - 2]), "pair %d: %d %d", j, a, b);
        FX_EXPECT(count[a] >= 2 && after[b] == count[a] / 2 && after[a] == count[a] - count[a] / 2,
                  "identity %d of %d samples split %d + %d", a, count[a], after[a], after[b]);
    }
    FX_EXPECT(bad == 0, "split: %d samples changed path or truth, or moved to another identity's label", bad);
    st = comine_duplicate_split(again, n, C, rate, 5, &pairs2, &np2);
    int same = st == COMINE_OK && np2 == np && !memcmp(pairs, pairs2, sizeof(int) * 2 * (size_t)np);
    for (int i = 0; i < n && same; i++) same = again[i].label == s[i].label;
    FX_EXPECT(same, "split: the same seed gave another split");
    free(pairs2);
    memcpy(again, base, sizeof *s * (size_t)n);
    st = comine_duplicate_split(again, n, C, rate, 6, &pairs2, &np2);
    int differ = 0;
    for (int i = 0; i < n; i++) differ += again[i].label != s[i].label;
    FX_EXPECT(st == COMINE_OK && differ > 0, "split: seeds 5 and 6 gave the same split");
    free(pairs2);
    FX_SUMMARY(mark, "duplicates: %d of %d identities split in halves, new labels %d..%d, same seed same split\n",
               np, C, C, C + np - 1);
    mark = fx_fail_count;

    /* rate 0: nothing changes; errors */
    memcpy(again, base, sizeof *s * (size_t)n);
    st = comine_duplicate_split(again, n, C, 0.0, 5, &pairs2, &np2);
    FX_EXPECT(st == COMINE_OK && np2 == 0 && pairs2 == NULL && !memcmp(again, base, sizeof *s * (size_t)n),
              "split at rate 0 changed something");
    FX_EXPECT(comine_duplicate_split(again, n, C, 1.0, 5, &pairs2, &np2) != COMINE_OK, "split rate 1 accepted");
    FX_EXPECT(comine_duplicate_split(again, n, C, -0.1, 5, &pairs2, &np2) != COMINE_OK, "split rate -0.1 accepted");
    st = comine_duplicate_split(again, n, C, 0.95, 5, &pairs2, &np2);
    FX_EXPECT(st != COMINE_OK && strstr(comine_last_error(), "at least 2 samples"),
              "split of more identities than have 2 samples: %s", comine_last_error());
    FX_SUMMARY(mark, "duplicates: %d identities with >= 2 samples; rate 0 changes nothing; bad rates refused\n",
               eligible);
    mark = fx_fail_count;

    /* flips then a split: the flips (labels and flags) are those of the same seed without it */
    comine_sample *noisy, *noisy2;
    int m, m2;
    comine_corrupt_opts o = {.flip = 0.2, .seed = 9};
    FX_EXPECT(comine_corrupt(&noisy, &m, base, n, C, NULL, 0, &o) == COMINE_OK, "corrupt: %s", comine_last_error());
    FX_EXPECT(comine_corrupt(&noisy2, &m2, base, n, C, NULL, 0, &o) == COMINE_OK, "corrupt: %s", comine_last_error());
    int *p3 = NULL, n3 = 0;
    FX_EXPECT(comine_duplicate_split(noisy2, m2, C, 0.1, 9, &p3, &n3) == COMINE_OK, "split: %s", comine_last_error());
    int changed = 0;
    for (int i = 0; i < m; i++) {
        int l = noisy2[i].label;
        for (int j = 0; j < n3; j++)
            if (l == p3[2 * j + 1]) l = p3[2 * j];
        changed += l != noisy[i].label || noisy2[i].truth != noisy[i].truth || strcmp(noisy[i].path, noisy2[i].path);
    }
    FX_EXPECT(changed == 0, "flips with a split: %d samples differ from the flips alone (split undone)", changed);
    comine_noise_samples_free(noisy, m);
    comine_noise_samples_free(noisy2, m2);
    free(p3);

    /* the pairs file and the classes file round trip */
    char dir[] = "/tmp/comine_dup_test.XXXXXX";
    FX_EXPECT(mkdtemp(dir) != NULL, "mkdtemp");
    char path[256], cpath[256];
    snprintf(path, sizeof path, "%s/x.duplicates.tsv", dir);
    snprintf(cpath, sizeof cpath, "%s/x.classes.tsv", dir);
    int want[4] = {9, 3, 1, 5}; /* written as 3 9 and 1 5 */
    FX_EXPECT(comine_duplicates_write(path, want, 2) == COMINE_OK, "pairs write: %s", comine_last_error());
    int *got = NULL, ng = 0;
    FX_EXPECT(comine_duplicates_load(path, &got, &ng) == COMINE_OK && ng == 2 && got[0] == 3 && got[1] == 9 &&
              got[2] == 1 && got[3] == 5, "pairs read back: %d pairs", ng);
    free(got);
    FILE *fp = fopen(path, "w");
    fprintf(fp, "0\t1\n2\tx\n");
    fclose(fp);
    st = comine_duplicates_load(path, &got, &ng);
    FX_EXPECT(st != COMINE_OK && strstr(comine_last_error(), ":2:"), "bad pairs line: %s", comine_last_error());
    char *names[3] = {"Ann", "Bob", "Ann#2"};
    FX_EXPECT(comine_classes_write(cpath, names, 3) == COMINE_OK, "classes write: %s", comine_last_error());
    char **back = NULL;
    FX_EXPECT(comine_classes_load(cpath, 3, &back) == COMINE_OK && !strcmp(back[2], "Ann#2") &&
              !strcmp(back[0], "Ann"), "classes read back");
    comine_names_free(back, 3);
    FX_EXPECT(comine_classes_load(cpath, 4, &back) != COMINE_OK, "classes of 3 labels read for 4");
    FX_EXPECT(comine_classes_load(cpath, 2, &back) != COMINE_OK, "classes of 3 labels read for 2");
    unlink(path);
    unlink(cpath);
    rmdir(dir);

    /* names from paths: the parent folder most samples lie in */
    comine_sample ns[5] = {{.path = "r/Ann/1.jpg", .label = 0}, {.path = "r/Bob/1.jpg", .label = 0},
                           {.path = "r/Ann/2.jpg", .label = 0}, {.path = "rec:7", .label = 1},
                           {.path = "/abs/Cid/x.png", .label = 2}};
    char **nm = comine_label_names_from_paths(ns, 5, 4);
    FX_EXPECT(!strcmp(nm[0], "Ann") && !strcmp(nm[1], "label1") && !strcmp(nm[2], "Cid") && !strcmp(nm[3], "label3"),
              "names from paths: %s %s %s %s", nm[0], nm[1], nm[2], nm[3]);
    comine_names_free(nm, 4);
    FX_SUMMARY(mark, "duplicates: flips then a split; pairs and classes files round trip; names from folders\n");

    free(pairs);
    free(s);
    free(again);
    comine_noise_samples_free(base, n);
}

int main(void)
{
    int f, o, mark = fx_fail_count;
    comine_corrupt_counts(3678, 0.2, 0.2, &f, &o);
    FX_EXPECT(f == 736 && o == 735, "counts for 3678 at 20%% + 20%%: %d + %d, want 736 + 735", f, o);
    FX_SUMMARY(mark, "counts: 3678 samples at 0.2 + 0.2 -> %d flips + %d outliers (METHOD.md's reference)\n", f, o);

    const int n = 1000, C = 37, ND = 400;
    comine_sample *train = make_train(n, C);
    char **dis = make_distractors(ND);
    comine_corrupt_opts opt = {.flip = 0.2, .outlier = 0.2, .seed = 5};
    check_corrupt("uniform flips + replace outliers", train, n, C, dis, ND, &opt);
    opt.flip_mode = COMINE_FLIP_PERMUTE;
    check_corrupt("permute flips + replace outliers", train, n, C, dis, ND, &opt);
    opt.outlier_mode = COMINE_OUTLIER_ADD;
    opt.flip = 0.45;
    opt.outlier = 0.3;
    check_corrupt("permute flips + added outliers", train, n, C, dis, ND, &opt);
    comine_sample *two = make_train(n, 2), *one = make_train(n, 1);
    check_corrupt("uniform flips only, 2 identities", two, n, 2, dis, ND, &(comine_corrupt_opts){.flip = 0.3, .seed = 1});
    check_corrupt("outliers only", train, n, C, dis, ND, &(comine_corrupt_opts){.outlier = 0.35, .seed = 2});
    check_corrupt("no noise", train, n, C, dis, ND, &(comine_corrupt_opts){.seed = 2});

    /* keep_one: 300 identities of 2 or 3 images at 30% + 30% noise: every identity keeps a
     * clean image of its own and the other properties hold; without it, this draw empties an
     * identity (refused); more noise than keep-one allows is refused */
    {
        const int nk = 750, Ck = 300;
        comine_sample *few = calloc(nk, sizeof *few);
        for (int i = 0; i < nk; i++) {
            char buf[64];
            snprintf(buf, sizeof buf, "few/%d.jpg", i);
            few[i].path = strdup(buf);
            few[i].label = i % Ck;
            few[i].truth = COMINE_TRUTH_UNKNOWN;
            few[i].rec_offset = -1;
        }
        comine_corrupt_opts ko = {.flip = 0.3, .outlier = 0.3, .seed = 9, .keep_one = true};
        check_corrupt("keep-one, 2-3 images per identity", few, nk, Ck, dis, ND, &ko);
        comine_sample *s;
        int m;
        mark = fx_fail_count;
        FX_EXPECT(comine_corrupt(&s, &m, few, nk, Ck, (const char *const *)dis, ND, &ko) == COMINE_OK, "%s",
                  comine_last_error());
        char *has = calloc(Ck, 1);
        int missing = 0;
        for (int i = 0; i < m; i++)
            if (s[i].truth == COMINE_TRUTH_CLEAN) has[s[i].label] = 1;
        for (int c = 0; c < Ck; c++) missing += !has[c];
        free(has);
        comine_noise_samples_free(s, m);
        FX_EXPECT(missing == 0, "%d identities without a clean image of their own with keep-one", missing);
        FX_SUMMARY(mark, "keep-one: every one of the %d identities keeps a clean image of its own\n", Ck);
        ko.keep_one = false;
        expect_error("the same without keep-one", few, nk, Ck, dis, ND, &ko);
        expect_error("keep-one, 61% noise of 2.5/id", few, nk, Ck, dis, ND,
                     &(comine_corrupt_opts){.flip = 0.31, .outlier = 0.30, .seed = 9, .keep_one = true});
        comine_noise_samples_free(few, nk);
    }

    /* permute with heavily shared labels: 3 identities, one holding 45% of the samples */
    comine_sample *skew = make_train(400, 3);
    for (int i = 0; i < 400; i++) skew[i].label = i < 180 ? 0 : i < 300 ? 1 : 2;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        quiet = seed < 20;
        check_corrupt("permute, 3 ids 45/30/25%, 20 seeds", skew, 400, 3, dis, ND,
                      &(comine_corrupt_opts){.flip = 0.4, .flip_mode = COMINE_FLIP_PERMUTE, .seed = seed});
    }
    quiet = 0;
    /* and one holding 90%: every subset of 300 is dominated by it -> a clear error */
    for (int i = 0; i < 400; i++) skew[i].label = i < 360 ? 0 : 1;
    expect_error("permute, one identity 90%", skew, 400, 2, dis, ND,
                 &(comine_corrupt_opts){.flip = 0.75, .flip_mode = COMINE_FLIP_PERMUTE, .seed = 1});
    comine_noise_samples_free(skew, 400);

    /* errors */
    expect_error("flip -0.1", train, n, C, dis, ND, &(comine_corrupt_opts){.flip = -0.1});
    expect_error("flip 1", train, n, C, dis, ND, &(comine_corrupt_opts){.flip = 1.0});
    expect_error("outlier 1", train, n, C, dis, ND, &(comine_corrupt_opts){.outlier = 1.0});
    expect_error("flip 0.6 + outlier 0.5", train, n, C, dis, ND, &(comine_corrupt_opts){.flip = 0.6, .outlier = 0.5});
    expect_error("flips with 1 identity", one, n, 1, dis, ND, &(comine_corrupt_opts){.flip = 0.1});
    expect_error("outliers without distractors", train, n, C, NULL, 0, &(comine_corrupt_opts){.outlier = 0.1});
    expect_error("too few distractors", train, n, C, dis, 50, &(comine_corrupt_opts){.outlier = 0.1});
    expect_error("permute a single sample", train, n, C, dis, ND,
                 &(comine_corrupt_opts){.flip = 0.001, .flip_mode = COMINE_FLIP_PERMUTE});
    char *saved = dis[7];
    dis[7] = train[500].path; /* a distractor that is also a training image */
    expect_error("distractor is a training image", train, n, C, dis, 8, &(comine_corrupt_opts){.outlier = 0.008, .seed = 1});
    dis[7] = saved;
    train[3].label = C;
    expect_error("label out of range", train, n, C, dis, ND, &(comine_corrupt_opts){.flip = 0.1});
    train[3].label = 9 % C;

    /* identity selection on an in-memory folder-like data set: identity c has c + 1 images */
    comine_dataset ds = {0};
    ds.kind = COMINE_DATASET_FOLDER;
    ds.source = "mem";
    ds.num_classes = 8;
    char *names[8] = {"Ann", "Bob", "Cid", "Dee", "Eve", "Fay", "Gus", "Hal"};
    ds.class_names = names;
    ds.samples = calloc(36, sizeof(comine_sample));
    for (int c = 0; c < 8; c++)
        for (int k = 0; k <= c; k++) {
            char buf[64];
            snprintf(buf, sizeof buf, "img/%s_%d.jpg", names[c], k);
            comine_sample *x = &ds.samples[ds.n++];
            x->path = strdup(buf);
            x->label = c;
            x->truth = COMINE_TRUTH_UNKNOWN;
            x->rec_offset = -1;
        }
    comine_idsel sel;
    mark = fx_fail_count;
    comine_status st = comine_idsel_select(&sel, &ds, &(comine_idsel_opts){.min_per_id = 5, .max_per_id = 6});
    FX_EXPECT(st == COMINE_OK, "select: %s", comine_last_error());
    /* identities with >= 5 images: Eve(5) Fay(6) Gus(7) Hal(8) -> 5 + 6 + 6 + 6 = 23 kept;
     * distractors: Ann..Dee = 1 + 2 + 3 + 4 = 10 images */
    FX_EXPECT(sel.num_classes == 4 && sel.n == 23 && sel.num_distractors == 10 && sel.num_distractor_ids == 4,
              "select: %d ids %d images %d distractors of %d ids", sel.num_classes, sel.n, sel.num_distractors,
              sel.num_distractor_ids);
    FX_EXPECT(sel.num_classes == 4 && !strcmp(sel.class_names[0], "Eve") && !strcmp(sel.class_names[3], "Hal"),
              "select: class names");
    FX_EXPECT(sel.n == 23 && sel.train[22].label == 3 && !strcmp(sel.train[22].path, "img/Hal_5.jpg"),
              "select: last kept sample %s", sel.n ? sel.train[sel.n - 1].path : "-");
    FX_SUMMARY(mark, "select min 5 max 6: %d identities, %d images, %d distractors of %d identities\n",
               sel.num_classes, sel.n, sel.num_distractors, sel.num_distractor_ids);
    comine_idsel_free(&sel);
    mark = fx_fail_count;
    char *listed[3] = {"Bob", "Gus", "Zed"};
    comine_people people = {.n = 3, .names = listed, .counts = NULL};
    st = comine_idsel_select(&sel, &ds, &(comine_idsel_opts){.min_per_id = 3, .people = &people});
    FX_EXPECT(st == COMINE_OK && sel.num_classes == 1 && sel.n == 7 && sel.num_distractors == 2,
              "select with people: %d ids %d images %d distractors", sel.num_classes, sel.n, sel.num_distractors);
    FX_SUMMARY(mark, "select people {Bob, Gus, Zed} min 3: %d identity (%s), %d images, %d distractors\n",
               sel.num_classes, sel.num_classes ? sel.class_names[0] : "-", sel.n, sel.num_distractors);
    comine_idsel_free(&sel);
    mark = fx_fail_count;
    st = comine_idsel_select(&sel, &ds, &(comine_idsel_opts){.min_per_id = 50});
    FX_EXPECT(st != COMINE_OK, "select min 50 accepted");
    FX_SUMMARY(mark, "error select min 50 -> %s\n", st != COMINE_OK ? comine_last_error() : "(accepted!)");

    /* a list file that reads back with its truth flags */
    char tmpl[] = "/tmp/comine_noise_test_XXXXXX";
    char *root = mkdtemp(tmpl);
    FX_EXPECT(root != NULL, "mkdtemp failed");
    char old_cwd[4096];
    if (root && getcwd(old_cwd, sizeof old_cwd) && chdir(root) == 0) {
        /* the list reader checks that files exist: make the paths used, relative to root */
        mkdir("train", 0755);
        mkdir("distract", 0755);
        for (int i = 0; i < 200; i++) fclose(fopen(train[i].path, "w"));
        for (int i = 0; i < ND; i++) fclose(fopen(dis[i], "w"));
        comine_sample *s;
        int m;
        /* every label keeps samples (list readers reject label gaps): labels i % C */
        comine_sample *small = make_train(200, C);
        for (int i = 0; i < 200; i++) small[i].label = i % C;
        st = comine_corrupt(&s, &m, small, 200, C, (const char *const *)dis, ND,
                            &(comine_corrupt_opts){.flip = 0.3, .outlier = 0.1, .seed = 3});
        FX_EXPECT(st == COMINE_OK, "corrupt for the list: %s", comine_last_error());
        comine_noise_samples_free(small, 200);
        char *list = comine_path_join(root, "noisy.txt");
        st = comine_list_write(list, s, m);
        FX_EXPECT(st == COMINE_OK, "list write: %s", comine_last_error());
        comine_dataset *back = NULL;
        mark = fx_fail_count;
        st = comine_dataset_open(&back, list, NULL);
        FX_EXPECT(st == COMINE_OK, "list read back: %s", comine_last_error());
        if (back) {
            int diff = back->n != m;
            char cwd[4096];
            FX_EXPECT(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
            for (int i = 0; i < m && !diff; i++) {
                char want[4200];
                snprintf(want, sizeof want, "%s/%s", cwd, s[i].path);
                diff += back->samples[i].label != s[i].label || back->samples[i].truth != s[i].truth ||
                        strcmp(back->samples[i].path, want) != 0;
            }
            FX_EXPECT(!diff && back->has_truth, "list read back differs (n %d vs %d, has_truth %d)", back->n, m,
                      back->has_truth);
            FX_SUMMARY(mark, "list file: %d samples read back with labels, truth flags and absolute paths\n", back->n);
            comine_dataset_free(back);
        }
        comine_sample bad = {.path = "a\tb.jpg", .label = 0, .truth = 0};
        FX_EXPECT(comine_list_write(list, &bad, 1) != COMINE_OK, "a path with a tab was written");
        comine_noise_samples_free(s, m);
        unlink(list);
        free(list);
        for (int i = 0; i < 200; i++) unlink(train[i].path);
        for (int i = 0; i < ND; i++) unlink(dis[i]);
        rmdir("train");
        rmdir("distract");
        FX_EXPECT(chdir(old_cwd) == 0, "chdir back");
        rmdir(root);
    }

    for (int i = 0; i < ds.n; i++) free(ds.samples[i].path);
    free(ds.samples);
    comine_noise_samples_free(train, n);
    comine_noise_samples_free(two, n);
    comine_noise_samples_free(one, n);
    for (int i = 0; i < ND; i++) free(dis[i]);
    free(dis);
    test_duplicates();
    return fx_finish("test_data_noise");
}
