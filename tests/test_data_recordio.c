/* test_data_recordio.c: MXNet/insightface RecordIO.  Checks the record writer against
 * bytes written out by hand from dmlc-core's format (including the split at an aligned
 * magic value), reads back what it wrote, packs a small folder data set (one image holds
 * the magic at an aligned offset) and reads back identical bytes and labels, checks
 * insightface's header and identity records and `property`, reads an im2rec-style file
 * without header, and checks that an index that disagrees with the .rec is an error. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comine/data.h"
#include "fixture.h"

static char dir[64] = "/tmp/comine_test_recordio_XXXXXX";

static char *at(const char *rel)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, rel);
    return buf[k];
}

static void put_bytes(const char *path, const void *data, size_t size)
{
    char *d = comine_path_dirname(path);
    comine_mkdirs(d);
    free(d);
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fwrite(data, 1, size, fp);
        fclose(fp);
    }
}

static const uint8_t MAGIC[4] = {0x0a, 0x23, 0xd7, 0xce};

static void le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Write `data` as one record to a fresh file, return the file bytes. */
static uint8_t *write_one(const uint8_t *data, size_t size, size_t *file_size, int *parts)
{
    FILE *fp = fopen(at("one.rec"), "wb");
    comine_recordio_write_record(fp, data, size, parts);
    fclose(fp);
    uint8_t *bytes;
    comine_read_file(at("one.rec"), &bytes, file_size);
    return bytes;
}

static void test_records(void)
{
    /* Hand-made expectation: data = MAGIC "xyz" -> part 1 (cflag 1, 0 bytes), part 3 (cflag 3, "xyz"), 1 pad byte. */
    uint8_t data[7] = {0x0a, 0x23, 0xd7, 0xce, 'x', 'y', 'z'};
    uint8_t want[20];
    memcpy(want, MAGIC, 4);
    le32(want + 4, 1u << 29);
    memcpy(want + 8, MAGIC, 4);
    le32(want + 12, 3u << 29 | 3);
    memcpy(want + 16, "xyz", 3);
    want[19] = 0;
    size_t fs;
    int parts;
    uint8_t *got = write_one(data, 7, &fs, &parts);
    int ok = fs == 20 && !memcmp(got, want, 20) && parts == 2;
    printf("%s writer bytes == dmlc-core layout for MAGIC+\"xyz\" (%zu bytes, %d parts)\n", ok ? "ok  " : "FAIL", fs, parts);
    if (!ok) fx_fail_count++;
    free(got);
    /* A whole record: cflag 0, length 5, padded to 8. */
    got = write_one((const uint8_t *)"hello", 5, &fs, &parts);
    ok = fs == 16 && got[7] == 0 && got[4] == 5 && !memcmp(got + 8, "hello\0\0\0", 8) && parts == 1;
    printf("%s writer bytes for a 5-byte record (cflag 0, 3 pad bytes)\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    free(got);

    /* Round trips: magic at aligned offsets (start, middle, twice in a row, end), unaligned, none. */
    struct { const char *what; int pos[3]; int len; int parts; } cases[] = {
        {"no magic", {-1, -1, -1}, 37, 1},
        {"magic at offset 0", {0, -1, -1}, 16, 2},
        {"magic at 8 and 12 (adjacent)", {8, 12, -1}, 30, 3},
        {"magic at the aligned end", {28, -1, -1}, 32, 2},
        {"magic at unaligned offset 6", {6, -1, -1}, 21, 1},
        {"magic at 4, length 9", {4, -1, -1}, 9, 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t buf[64];
        for (int i = 0; i < cases[c].len; i++) buf[i] = (uint8_t)(i * 29 + 3);
        for (int k = 0; k < 3; k++)
            if (cases[c].pos[k] >= 0) memcpy(buf + cases[c].pos[k], MAGIC, 4);
        got = write_one(buf, (size_t)cases[c].len, &fs, &parts);
        free(got);
        int fd = open(at("one.rec"), O_RDONLY);
        uint8_t *back;
        size_t bsize;
        int64_t next;
        comine_status st = comine_recordio_read_record(fd, (int64_t)fs, 0, "one.rec", &back, &bsize, &next);
        close(fd);
        ok = st == COMINE_OK && bsize == (size_t)cases[c].len && !memcmp(back, buf, bsize) && next == (int64_t)fs &&
             parts == cases[c].parts && fs % 4 == 0;
        printf("%s round trip: %-30s len %2d parts %d file %zu bytes\n", ok ? "ok  " : "FAIL", cases[c].what, cases[c].len,
               parts, fs);
        if (!ok) fx_fail_count++;
        if (st == COMINE_OK) free(back);
    }
}

/* A 12x1 8-bit PGM whose pixels 0-3 and 4-7 are the magic bytes.  In an image record the
 * data is the 24-byte IRHeader, the 12-byte header "P5 12 1 255\n", then the pixels, so pixel p
 * sits at record offset 36 + p: both copies are at aligned offsets and the record splits. */
static size_t magic_pgm(uint8_t *out)
{
    int n = snprintf((char *)out, 64, "P5 12 1 255\n");
    for (int i = 0; i < 12; i++) out[n + i] = (uint8_t)(100 + i);
    memcpy(out + n + 0, MAGIC, 4);
    memcpy(out + n + 4, MAGIC, 4);
    return (size_t)n + 12;
}

static void test_pack(void)
{
    /* A folder data set: 3 identities, PNG, JPEG and PGM files. */
    comine_image img = {16, 16, malloc(16 * 16 * 3)};
    for (int i = 0; i < 16 * 16 * 3; i++) img.rgb[i] = (uint8_t)(i * 7);
    comine_mkdirs(at("faces/A"));
    comine_mkdirs(at("faces/B"));
    comine_mkdirs(at("faces/C"));
    comine_image_save_png(&img, at("faces/A/1.png"));
    uint8_t *jpg;
    size_t jsize;
    comine_image_encode_jpeg(&img, 85, &jpg, &jsize);
    put_bytes(at("faces/A/2.jpg"), jpg, jsize);
    put_bytes(at("faces/C/3.jpg"), jpg, jsize);
    free(jpg);
    uint8_t pgm[64];
    size_t psize = magic_pgm(pgm);
    put_bytes(at("faces/B/magic.pgm"), pgm, psize);
    free(img.rgb);

    comine_dataset *src, *rec;
    FX_EXPECT(comine_dataset_open(&src, at("faces"), NULL) == COMINE_OK, "open faces: %s", comine_last_error());
    comine_pack_stats stats;
    comine_status st = comine_recordio_pack(src, NULL, 16, 16, at("out/train"), &stats);
    FX_EXPECT(st == COMINE_OK, "pack: %s", comine_last_error());
    int ok = stats.images == 4 && stats.identities == 3 && stats.split_records == 1;
    printf("%s pack: %d images, %d identities, %d record(s) split at the magic (want 4, 3, 1)\n", ok ? "ok  " : "FAIL",
           stats.images, stats.identities, stats.split_records);
    if (!ok) fx_fail_count++;

    /* Read back through the folder (train.rec + train.idx inside). */
    st = comine_dataset_open(&rec, at("out"), NULL);
    FX_EXPECT(st == COMINE_OK, "open rec: %s", comine_last_error());
    if (st != COMINE_OK) return;
    ok = rec->kind == COMINE_DATASET_RECORDIO && !comine_dataset_has_files(rec) &&
         !strcmp(comine_dataset_kind_name(rec->kind), "RecordIO") && rec->n == 4 && rec->num_classes == 3;
    int same = 0;
    for (int i = 0; ok && i < rec->n; i++) {
        uint8_t *a, *b;
        size_t as, bs;
        comine_dataset_read(src, i, &a, &as);
        comine_dataset_read(rec, i, &b, &bs);
        same += as == bs && !memcmp(a, b, as) && src->samples[i].label == rec->samples[i].label;
        free(a);
        free(b);
    }
    ok = ok && same == 4;
    printf("%s read back: %d/4 payloads byte-identical with the same labels (incl. the magic-holding PGM)\n",
           ok ? "ok  " : "FAIL", same);
    if (!ok) fx_fail_count++;

    /* insightface layout: header record 0, identity records 5..7, property. */
    int fd = open(at("out/train.rec"), O_RDONLY);
    struct stat sb;
    fstat(fd, &sb);
    uint8_t *r;
    size_t rs;
    int64_t next;
    float lab[2];
    st = comine_recordio_read_record(fd, sb.st_size, 0, "train.rec", &r, &rs, &next);
    ok = st == COMINE_OK && rs == 32 && r[0] == 2;
    if (ok) memcpy(lab, r + 24, 8);
    ok = ok && lab[0] == 5.0f && lab[1] == 8.0f;
    printf("%s header record: flag 2, labels [%g, %g] (want [5, 8])\n", ok ? "ok  " : "FAIL", ok ? lab[0] : -1.0, ok ? lab[1] : -1.0);
    if (!ok) fx_fail_count++;
    if (st == COMINE_OK) free(r);
    uint8_t *idx;
    size_t isize;
    comine_read_file(at("out/train.idx"), &idx, &isize);
    int lines = 0;
    for (size_t i = 0; i < isize; i++) lines += idx[i] == '\n';
    /* Identity record of B (key 6): images [3, 4). */
    char *p6 = strstr((char *)idx, "\n6\t");
    long off6 = p6 ? atol(p6 + 3) : -1;
    st = comine_recordio_read_record(fd, sb.st_size, off6, "train.rec", &r, &rs, &next);
    ok = lines == 8 && st == COMINE_OK && rs == 32 && r[0] == 2;
    if (ok) memcpy(lab, r + 24, 8);
    ok = ok && lab[0] == 3.0f && lab[1] == 4.0f;
    printf("%s identity record key 6 (B): labels [3, 4); index has %d lines (want 8)\n", ok ? "ok  " : "FAIL", lines);
    if (!ok) fx_fail_count++;
    if (st == COMINE_OK) free(r);
    close(fd);
    free(idx);
    uint8_t *prop;
    size_t prs;
    ok = comine_read_file(at("out/property"), &prop, &prs) == COMINE_OK && !strcmp((char *)prop, "3,16,16\n");
    printf("%s property: \"3,16,16\"\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    if (ok) free(prop);
    comine_dataset_free(rec);
    comine_dataset_free(src);
}

static void test_truth_and_im2rec(void)
{
    /* A list with truth flags keeps them through pack (id2 = 1 + flag). */
    uint8_t pgm[64];
    size_t ps = magic_pgm(pgm);
    put_bytes(at("l/a.pgm"), pgm, ps);
    put_bytes(at("l/b.pgm"), pgm, ps - 1);
    put_bytes(at("l/list.txt"), "a.pgm\t1\t2\nb.pgm\t0\t0\n", 20);
    comine_dataset *src, *rec;
    FX_EXPECT(comine_dataset_open(&src, at("l/list.txt"), NULL) == COMINE_OK, "open list: %s", comine_last_error());
    comine_pack_stats stats;
    FX_EXPECT(comine_recordio_pack(src, NULL, 12, 1, at("l/packed"), &stats) == COMINE_OK, "pack list");
    comine_status st = comine_dataset_open(&rec, at("l/packed.rec"), NULL);
    int ok = st == COMINE_OK && rec->has_truth && rec->n == 2 && rec->samples[0].label == 0 &&
             rec->samples[0].truth == COMINE_TRUTH_CLEAN && rec->samples[1].truth == COMINE_TRUTH_OUTLIER;
    printf("%s truth flags survive pack (key order = label order)\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    if (st == COMINE_OK) comine_dataset_free(rec);
    comine_dataset_free(src);

    /* im2rec style: no header record, keys 0.., one label-vector record (flag 2, first label counts). */
    FILE *fp = fopen(at("im2rec.rec"), "wb");
    FILE *ix = fopen(at("im2rec.idx"), "w");
    long pos = 0;
    for (int k = 0; k < 3; k++) {
        uint8_t rec_data[24 + 8 + 64];
        memset(rec_data, 0, 24);
        float label = (float)(k == 2 ? 0 : k);
        int nl = k == 1 ? 2 : 0;
        le32(rec_data, (uint32_t)nl);
        uint32_t lb;
        float zero = 0, v[2] = {1.0f, 7.0f};
        memcpy(&lb, nl ? &zero : &label, 4);
        le32(rec_data + 4, lb);
        le32(rec_data + 8, (uint32_t)k);
        if (nl) memcpy(rec_data + 24, v, 8);
        memcpy(rec_data + 24 + nl * 4, pgm, ps);
        fprintf(ix, "%d\t%ld\n", k, pos);
        comine_recordio_write_record(fp, rec_data, 24 + (size_t)nl * 4 + ps, NULL);
        pos = ftell(fp);
    }
    fclose(fp);
    fclose(ix);
    st = comine_dataset_open(&rec, at("im2rec.rec"), NULL);
    ok = st == COMINE_OK && rec->n == 3 && rec->num_classes == 2 && rec->samples[0].label == 0 && rec->samples[1].label == 1 &&
         rec->samples[2].label == 0 && !rec->has_truth;
    if (ok) {
        uint8_t *d;
        size_t ds;
        ok = comine_dataset_read(rec, 1, &d, &ds) == COMINE_OK && ds == ps && !memcmp(d, pgm, ps);
        if (ok) free(d);
    }
    printf("%s im2rec file without header: 3 images, label vector -> first label, payload intact\n", ok ? "ok  " : "FAIL");
    if (!ok) fx_fail_count++;
    if (st == COMINE_OK) comine_dataset_free(rec);
}

static void expect_open_error(const char *what, const char *path, const char *want1, const char *want2)
{
    comine_dataset *ds = NULL;
    comine_status st = comine_dataset_open(&ds, path, NULL);
    const char *msg = comine_last_error();
    int ok = st != COMINE_OK && strstr(msg, want1) && (!want2 || strstr(msg, want2));
    printf("%s %-28s -> %s\n", ok ? "ok  " : "FAIL", what, st == COMINE_OK ? "(opened!)" : msg);
    if (!ok) fx_fail_count++;
    comine_dataset_free(ds);
}

static void copy_pack(const char *name, const char *idx_text, size_t rec_cut)
{
    uint8_t *rec;
    size_t rs;
    comine_read_file(at("out/train.rec"), &rec, &rs);
    char p[64];
    snprintf(p, sizeof p, "bad/%s.rec", name);
    put_bytes(at(p), rec, rs - rec_cut);
    free(rec);
    snprintf(p, sizeof p, "bad/%s.idx", name);
    put_bytes(at(p), idx_text, strlen(idx_text));
}

static void test_bad_index(void)
{
    uint8_t *idx;
    size_t is;
    comine_read_file(at("out/train.idx"), &idx, &is);
    char text[1024];
    /* Shift key 2's offset by 4 bytes. */
    long k2 = atol(strstr((char *)idx, "\n2\t") + 3);
    char *shifted = comine_strdup((char *)idx);
    char *line2 = strstr(shifted, "\n2\t") + 3;
    char num[32];
    snprintf(num, sizeof num, "%ld", k2 + 4);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(line2 - shifted), shifted, num, strchr(line2, '\n'));
    copy_pack("shifted", text, 0);
    expect_open_error("index offset off by 4", at("bad/shifted.rec"), "bad magic", "shifted.idx line 3");
    /* Key 3 points past the end of the file. */
    snprintf(text, sizeof text, "%.*s999999%s", (int)(strstr(shifted, "\n3\t") + 3 - shifted), shifted,
             strchr(strstr(shifted, "\n3\t") + 1, '\n'));
    copy_pack("past", text, 0);
    expect_open_error("index offset past the end", at("bad/past.rec"), "past.idx line 4", "key 3");
    /* A key the header promises is missing. */
    snprintf(text, sizeof text, "%.*s%s", (int)(strstr((char *)idx, "\n4\t") + 1 - (char *)idx), (char *)idx,
             strchr(strstr((char *)idx, "\n4\t") + 1, '\n') + 1);
    copy_pack("missing", text, 0);
    expect_open_error("index lacks key 4", at("bad/missing.rec"), "missing.idx has no key 4", NULL);
    /* Malformed line. */
    snprintf(text, sizeof text, "%sseven\teight\n", (char *)idx);
    copy_pack("syntax", text, 0);
    expect_open_error("index line not numbers", at("bad/syntax.idx"), "syntax.idx:9", NULL);
    /* Truncated .rec: the last identity record is cut. */
    copy_pack("cut", (char *)idx, 20);
    expect_open_error("truncated .rec", at("bad/cut.rec"), "cut.rec", NULL);
    /* Two keys at one offset. */
    snprintf(text, sizeof text, "%s9\t0\n", (char *)idx);
    copy_pack("same", text, 0);
    expect_open_error("two keys, one offset", at("bad/same.rec"), "same offset", NULL);
    put_bytes(at("bad/noidx.rec"), "x", 1);
    expect_open_error("no .idx beside the .rec", at("bad/noidx.rec"), "noidx.idx", NULL);
    free(shifted);
    free(idx);
}

/* Random byte changes in a packed .rec: open either fails with a message or gives a data set
 * whose every payload reads or fails cleanly; never a crash (ASan/UBSan runs show it). */
static void test_mutated_rec(void)
{
    uint8_t *rec, *idx;
    size_t rs, is;
    comine_read_file(at("out/train.rec"), &rec, &rs);
    comine_read_file(at("out/train.idx"), &idx, &is);
    put_bytes(at("mut/m.idx"), idx, is);
    comine_rng r;
    comine_rng_seed(&r, 5, COMINE_STREAM_EVAL);
    uint8_t *buf = malloc(rs);
    int opened = 0, refused = 0, reads = 0, bad_msgs = 0;
    for (int t = 0; t < 200; t++) {
        memcpy(buf, rec, rs);
        size_t len = rs;
        if (t % 3 == 0) len = comine_rng_below(&r, (uint32_t)rs);
        for (int k = 0; k < 1 + t % 4; k++) buf[comine_rng_below(&r, (uint32_t)len ? (uint32_t)len : 1)] ^= (uint8_t)(1u << (t % 8));
        put_bytes(at("mut/m.rec"), buf, len);
        comine_dataset *ds;
        if (comine_dataset_open(&ds, at("mut/m.rec"), NULL) != COMINE_OK) {
            refused++;
            bad_msgs += strstr(comine_last_error(), "m.") == NULL;
            continue;
        }
        opened++;
        for (int i = 0; i < ds->n; i++) {
            uint8_t *d;
            size_t sz;
            if (comine_dataset_read(ds, i, &d, &sz) == COMINE_OK) {
                comine_image img;
                if (comine_image_decode(&img, d, sz, comine_dataset_sample_name(ds, i)) == COMINE_OK) comine_image_free(&img);
                free(d);
                reads++;
            }
        }
        comine_dataset_free(ds);
    }
    int ok = opened + refused == 200 && bad_msgs == 0;
    printf("%s 200 damaged .rec files: %d refused at open with a message, %d opened (%d payloads read), no crash\n",
           ok ? "ok  " : "FAIL", refused, opened, reads);
    if (!ok) fx_fail_count++;
    free(buf);
    free(rec);
    free(idx);
}

int main(void)
{
    comine_log_set_level(COMINE_LOG_ERROR + 1);
    if (!mkdtemp(dir)) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    test_records();
    test_pack();
    test_truth_and_im2rec();
    test_bad_index();
    test_mutated_rec();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    return fx_finish("test_data_recordio");
}
