/* test_eval_binset.c: insightface verification sets (.bin).  Reads the pickles Python itself
 * wrote (tests/fixtures/binset/py_p2..5.bin, py2str_p2.bin: tests/ref/binset_pickles.py) and
 * checks every image's bytes and issame against pairs.tsv and the image files; round-trips
 * comine's writer (protocols 2 and 3, lists longer than one APPENDS batch); reads the
 * hand-made forms Python's unpickler also reads (BINBYTES8, MARK ... LIST / TUPLE, bytes());
 * and checks that every malformed input (each prefix of a file, foreign opcodes and
 * callables, wrong shapes) is refused with the file, the byte offset and what was expected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/data.h"
#include "comine/eval.h"
#include "fixture.h"

#define DIR COMINE_SOURCE_DIR "/tests/fixtures/binset"

typedef struct ref_pairs {
    int n;
    char *a[1024], *b[1024];
    uint8_t same[1024];
} ref_pairs;

static int read_pairs(ref_pairs *r)
{
    FILE *fp = fopen(DIR "/pairs.tsv", "r");
    if (!fp) return -1;
    char line[1024], a[512], b[512];
    int same;
    r->n = 0;
    while (fgets(line, sizeof line, fp) && r->n < 1024) {
        if (sscanf(line, "%511[^\t]\t%511[^\t]\t%d", a, b, &same) != 3) break;
        r->a[r->n] = comine_path_join(DIR, a);
        r->b[r->n] = comine_path_join(DIR, b);
        r->same[r->n++] = (uint8_t)same;
    }
    fclose(fp);
    return 0;
}

/* The set must hold exactly the pairs of pairs.tsv, image bytes equal to the files. */
static void check_against_pairs(const comine_binset *set, const ref_pairs *r, const char *what)
{
    int bad_bytes = 0, bad_same = 0, decoded = 0;
    for (int k = 0; k < r->n && k < set->n; k++) {
        bad_same += set->same[k] != r->same[k];
        for (int side = 0; side < 2; side++) {
            uint8_t *data;
            size_t size;
            if (comine_read_file(side ? r->b[k] : r->a[k], &data, &size)) {
                bad_bytes++;
                continue;
            }
            int i = 2 * k + side;
            if (set->image_size[i] != size || memcmp(set->image[i], data, size)) bad_bytes++;
            free(data);
            if (k < 12) {  /* a few through the image decoder */
                comine_image img;
                if (comine_image_decode(&img, set->image[i], set->image_size[i], "bin image") == COMINE_OK) {
                    decoded++;
                    comine_image_free(&img);
                }
            }
        }
    }
    bool ok = set->n == r->n && !bad_bytes && !bad_same && decoded == 24;
    printf("%s %-34s %d pairs (expected %d), %d images differ, %d issame differ, %d/24 decoded\n", ok ? "ok  " : "FAIL",
           what, set->n, r->n, bad_bytes, bad_same, decoded);
    if (!ok) fx_fail_count++;
}

static bool sets_equal(const comine_binset *x, const comine_binset *y)
{
    if (x->n != y->n || memcmp(x->same, y->same, (size_t)x->n)) return false;
    for (int i = 0; i < 2 * x->n; i++)
        if (x->image_size[i] != y->image_size[i] || memcmp(x->image[i], y->image[i], x->image_size[i])) return false;
    return true;
}

/* Parsing must fail with "NAME: byte OFFSET:" and every needle in the message. */
static void expect_error(const char *what, const void *data, size_t size, long offset, const char *n1,
                         const char *n2)
{
    comine_binset *set = NULL;
    comine_status st = comine_binset_parse(&set, data, size, "bad.bin");
    const char *msg = st ? comine_last_error() : "(accepted)";
    char head[64];
    snprintf(head, sizeof head, "bad.bin: byte %ld: ", offset);
    bool ok = st == COMINE_ERR_FORMAT && !strncmp(msg, head, strlen(head)) && (!n1 || strstr(msg, n1)) &&
              (!n2 || strstr(msg, n2));
    printf("%s %-30s -> %s\n", ok ? "ok  " : "FAIL", what, msg);
    if (!ok) fx_fail_count++;
    comine_binset_free(set);
}

#define EXPECT_ERROR(what, lit, off, n1, n2) expect_error(what, lit, sizeof(lit) - 1, off, n1, n2)

/* Every proper prefix of a file is refused (never accepted, never a crash), naming an offset. */
static void prefixes(const char *path)
{
    uint8_t *data;
    size_t size;
    if (comine_read_file(path, &data, &size)) {
        FX_EXPECT(0, "cannot read %s", path);
        return;
    }
    int accepted = 0, unnamed = 0;
    for (size_t n = 0; n < size; n++) {
        uint8_t *copy = malloc(n ? n : 1);  /* exact size: ASan catches a read past it */
        memcpy(copy, data, n);
        comine_binset *set = NULL;
        if (comine_binset_parse(&set, copy, n, "cut.bin") == COMINE_OK) accepted++;
        else if (!strstr(comine_last_error(), "cut.bin: byte ")) unnamed++;
        comine_binset_free(set);
        free(copy);
    }
    bool ok = !accepted && !unnamed;
    printf("%s %zu prefixes of %s: %d accepted, %d without an offset\n", ok ? "ok  " : "FAIL", size,
           strrchr(path, '/') + 1, accepted, unnamed);
    if (!ok) fx_fail_count++;
    free(data);
}

int main(void)
{
    ref_pairs r;
    if (read_pairs(&r) || r.n != 510) {
        printf("FAIL cannot read %s/pairs.tsv (510 pairs)\n", DIR);
        return 1;
    }

    /* ---- Python's own pickles ---- */
    static const char *files[] = {"py_p2.bin", "py_p3.bin", "py_p4.bin", "py_p5.bin", "py2str_p2.bin"};
    static const int protocol[] = {2, 3, 4, 5, 2};
    comine_binset *py3 = NULL;
    for (int f = 0; f < 5; f++) {
        char path[1024], what[128];
        snprintf(path, sizeof path, "%s/%s", DIR, files[f]);
        comine_binset *set = NULL;
        if (comine_binset_load(&set, path) != COMINE_OK) {
            printf("FAIL load %s: %s\n", files[f], comine_last_error());
            fx_fail_count++;
            continue;
        }
        FX_EXPECT(set->protocol == protocol[f], "%s: protocol %d, expected %d", files[f], set->protocol, protocol[f]);
        snprintf(what, sizeof what, "Python pickle %s", files[f]);
        check_against_pairs(set, &r, what);
        if (f == 1) py3 = set;
        else comine_binset_free(set);
    }
    if (!py3) return fx_finish("test_eval_binset");

    /* ---- comine's writer, read back ---- */
    char tmp[256];
    snprintf(tmp, sizeof tmp, "test_eval_binset_tmp.%d", (int)getpid());
    comine_mkdirs(tmp);
    for (int p = 2; p <= 3; p++) {
        char path[512];
        snprintf(path, sizeof path, "%s/comine_p%d.bin", tmp, p);
        comine_binset *back = NULL;
        comine_status st = comine_binset_write(path, py3, p);
        if (!st) st = comine_binset_load(&back, path);
        bool ok = !st && back->protocol == p && sets_equal(py3, back);
        printf("%s comine writer, protocol %d: %s\n", ok ? "ok  " : "FAIL", p,
               st ? comine_last_error() : "read back equal");
        if (!ok) fx_fail_count++;
        if (back) check_against_pairs(back, &r, p == 2 ? "comine p2 (Python 2 str)" : "comine p3 (bytes)");
        comine_binset_free(back);
        remove(path);
    }
    /* more than one APPENDS batch of 1000 in both lists, empty and short images */
    {
        enum { N = 1001 };
        char path[512];
        snprintf(path, sizeof path, "%s/many.bin", tmp);
        static uint8_t img[300], same[N];
        for (int i = 0; i < 300; i++) img[i] = (uint8_t)(i * 7);
        comine_binset_writer *w;
        comine_status st = comine_binset_writer_open(&w, path, 2);
        for (int i = 0; i < 2 * N && !st; i++) st = comine_binset_writer_add(w, img, (size_t)(i % 301));
        for (int i = 0; i < N; i++) same[i] = (uint8_t)(i % 3 == 0);
        if (!st) st = comine_binset_writer_finish(w, same, N);
        comine_binset *back = NULL;
        if (!st) st = comine_binset_load(&back, path);
        bool ok = !st && back->n == N && !memcmp(back->same, same, N);
        for (int i = 0; ok && i < 2 * N; i++)
            ok = back->image_size[i] == (size_t)(i % 301) && !memcmp(back->image[i], img, back->image_size[i]);
        printf("%s writer, %d pairs (2 APPENDS batches each), images of 0..300 bytes: %s\n", ok ? "ok  " : "FAIL", N,
               st ? comine_last_error() : "read back equal");
        if (!ok) fx_fail_count++;
        comine_binset_free(back);
        st = comine_binset_writer_open(&w, path, 3);
        if (!st) st = comine_binset_writer_add(w, img, 10);
        if (!st) st = comine_binset_writer_finish(w, same, 1);
        FX_EXPECT(st == COMINE_ERR_ARG && strstr(comine_last_error(), "1 images written for 1 pairs"),
                  "writer: a missing image is refused (%s)", comine_last_error());
        FX_EXPECT(comine_binset_writer_open(&w, path, 4) == COMINE_ERR_ARG, "writer: protocol 4 refused");
        remove(path);
    }
    rmdir(tmp);
    comine_binset_free(py3);

    /* ---- forms Python's unpickler reads that its pickler does not write here ---- */
    {
        static const uint8_t forms[] =
            "\x80\x04(("
            "\x8e\x04\x00\x00\x00\x00\x00\x00\x00\xff\xd8\xff\xe0" "r\x07\x00\x00\x00"
            "\x8e\x02\x00\x00\x00\x00\x00\x00\x00PN" "j\x07\x00\x00\x00" "C\x03" "abc" "j\x07\x00\x00\x00" "C\x01xl"
            "]\x88" "a\x89" "a\x89" "at.";
        comine_binset *set = NULL;
        comine_status st = comine_binset_parse(&set, forms, sizeof forms - 1, "forms.bin");
        bool ok = !st && set->n == 3 && set->same[0] == 1 && set->same[1] == 0 && set->same[2] == 0 &&
                  set->image_size[2] == 4 && !memcmp(set->image[2], "\xff\xd8\xff\xe0", 4) &&
                  set->image_size[3] == 3 && set->image_offset[1] == 22;
        printf("%s BINBYTES8, LONG_BINPUT/GET, MARK..LIST, APPEND, MARK..TUPLE: %s\n", ok ? "ok  " : "FAIL",
               st ? comine_last_error() : "read");
        if (!ok) fx_fail_count++;
        comine_binset_free(set);
        /* Python 3's protocol-2 bytes: _codecs.encode(text, 'latin1') and bytes() for b'' */
        static const uint8_t p2[] =
            "\x80\x02]q\x00(c_codecs\nencode\nq\x01X\x04\x00\x00\x00\xc3\xbf\xc3\x98q\x02X\x06\x00\x00\x00latin1q\x03"
            "\x86q\x04Rq\x05" "c__builtin__\nbytes\nq\x06)Rq\x07" "e]q\x08\x89" "a\x86q\x09.";
        st = comine_binset_parse(&set, p2, sizeof p2 - 1, "p2.bin");
        ok = !st && set->n == 1 && set->image_size[0] == 2 && set->image[0][0] == 0xff && set->image[0][1] == 0xd8 &&
             set->image_size[1] == 0 && set->same[0] == 0;
        printf("%s protocol-2 _codecs.encode(latin-1 text) and bytes(): %s\n", ok ? "ok  " : "FAIL",
               st ? comine_last_error() : "read");
        if (!ok) fx_fail_count++;
        comine_binset_free(set);
    }

    /* ---- malformed input ---- */
    EXPECT_ERROR("empty", "", 0, "empty file", NULL);
    EXPECT_ERROR("not a pickle", "hello", 0, "0x68", "expected a pickle starting with PROTO");
    EXPECT_ERROR("protocol 1", "\x80\x01].", 1, "protocol 1", "expected 2 to 5");
    EXPECT_ERROR("protocol 6", "\x80\x06].", 1, "protocol 6", NULL);
    EXPECT_ERROR("only PROTO", "\x80", 1, "ends after PROTO", NULL);
    EXPECT_ERROR("no STOP", "\x80\x03]q\x00", 5, "before the pickle's STOP", NULL);
    EXPECT_ERROR("a dict", "\x80\x03}q\x00.", 2, "EMPTY_DICT (0x7d)", "not part of an insightface");
    EXPECT_ERROR("os.system", "\x80\x02" "cos\nsystem\nq\x00.", 2, "os.system", "expected only _codecs.encode");
    EXPECT_ERROR("numpy array", "\x80\x02" "cnumpy.core.multiarray\n_reconstruct\n.", 2,
                 "numpy.core.multiarray._reconstruct", NULL);
    EXPECT_ERROR("GLOBAL without name", "\x80\x02" "c_codecs\nencode", 2, "without its name line", NULL);
    EXPECT_ERROR("a list", "\x80\x03].", 3, "holds a list", "expected the tuple (bins, issame_list)");
    EXPECT_ERROR("tuple of 3", "\x80\x03]]]\x87.", 6, "tuple whose length is not 2", NULL);
    EXPECT_ERROR("bins a bool", "\x80\x03\x88]\x86.", 5, "first item of the tuple is a bool", NULL);
    EXPECT_ERROR("issame bytes", "\x80\x03]C\x01x\x86.", 3, "second item of the tuple is bytes", NULL);
    EXPECT_ERROR("issame empty", "\x80\x03]]\x86.", 3, "issame_list is empty", NULL);
    EXPECT_ERROR("3 images, 1 bool", "\x80\x03](C\x01" "aC\x01" "bC\x01" "ce]\x88" "a\x86.", 2, "bins holds 3 images",
                 "two images per pair (2)");
    EXPECT_ERROR("issame holds bytes", "\x80\x03](C\x01" "aC\x01" "be](C\x01" "ce\x86.", 13, "issame_list[0] is bytes",
                 "expected a bool");
    EXPECT_ERROR("bins holds a bool", "\x80\x03](C\x01" "a\x89" "e]\x88" "a\x86.", 2, "bins[1] is a bool", NULL);
    EXPECT_ERROR("unknown memo", "\x80\x03]h\x05.", 3, "memo key 5", "no earlier BINPUT");
    EXPECT_ERROR("put on empty", "\x80\x03q\x00.", 2, "BINPUT (0x71) needs 1 value", NULL);
    EXPECT_ERROR("after STOP", "\x80\x03](C\x01" "aC\x01" "be]\x88" "a\x86.xx", 16, "2 bytes after the pickle's STOP",
                 NULL);
    EXPECT_ERROR("short BINBYTES", "\x80\x03](C\x09" "ab", 4, "SHORT_BINBYTES (0x43) of 9 bytes runs past the end",
                 NULL);
    EXPECT_ERROR("cut length", "\x80\x03](B\x01\x00", 7, "ends inside the 4-byte operand of BINBYTES", NULL);
    EXPECT_ERROR("negative BINSTRING", "\x80\x02](T\xff\xff\xff\xffx", 4, "negative length", NULL);
    EXPECT_ERROR("huge BINBYTES8", "\x80\x04(\x8e\xff\xff\xff\xff\xff\xff\xff\xffx", 3, "runs past the end", NULL);
    EXPECT_ERROR("huge FRAME", "\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x80].", 2, "FRAME of", "runs past the end");
    EXPECT_ERROR("issame 2", "\x80\x03]K\x02.", 3, "BININT1 (0x4b) 2", "expected a bool");
    EXPECT_ERROR("APPEND to tuple", "\x80\x03)\x88" "a.", 4, "APPEND (0x61) to a tuple", "expected a list");
    EXPECT_ERROR("APPENDS no list", "\x80\x03(\x88" "e.", 4, "APPENDS (0x65) with no list", NULL);
    EXPECT_ERROR("LIST no MARK", "\x80\x03\x88l.", 3, "LIST (0x6c) without an open MARK", NULL);
    EXPECT_ERROR("TUPLE2 of one", "\x80\x03]\x86.", 3, "TUPLE2 (0x86) needs 2 values", NULL);
    EXPECT_ERROR("two values at STOP", "\x80\x03]].", 4, "STOP with 2 values", NULL);
    EXPECT_ERROR("open MARK at STOP", "\x80\x03](.", 4, "MARK still open", NULL);
    EXPECT_ERROR("PROTO again", "\x80\x03\x80\x03.", 2, "PROTO (0x80) again", NULL);
    EXPECT_ERROR("not latin-1",
                 "\x80\x02" "c_codecs\nencode\nX\x02\x00\x00\x00\xc4\x80X\x06\x00\x00\x00latin1\x86R.", 18,
                 "not UTF-8 of code points 0..255", NULL);
    EXPECT_ERROR("encode utf-8", "\x80\x02" "c_codecs\nencode\nX\x01\x00\x00\x00" "aX\x05\x00\x00\x00utf-8\x86R.", 35,
                 "REDUCE (0x52) calls the callable _codecs.encode with a tuple", NULL);
    EXPECT_ERROR("unknown opcode", "\x80\x03\xff.", 2, "0xff (no pickle opcode)", NULL);
    {
        comine_binset *set = NULL;
        comine_status st = comine_binset_load(&set, DIR "/no_such.bin");
        FX_EXPECT(st == COMINE_ERR_IO && strstr(comine_last_error(), "no_such.bin: cannot open"),
                  "missing file: %s", comine_last_error());
    }
    prefixes(DIR "/py_p2.bin");
    prefixes(DIR "/py_p4.bin");
    prefixes(DIR "/py2str_p2.bin");
    for (int k = 0; k < r.n; k++) {
        free(r.a[k]);
        free(r.b[k]);
    }
    return fx_finish("test_eval_binset");
}
