/* binset_write.c: insightface verification sets (.bin) written as the pickle
 * (bins, issame_list) of protocol 2 (Python-2 str images, as the distributed files) or 3
 * (bytes); the reader is binset.c.  Images are written as given (their encoded bytes). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/eval.h"
#include "eval/binset_impl.h"

/* ---- writing ------------------------------------------------------------------------------ */
#define BATCH 1000  /* items per APPENDS, as Python's pickler */

struct comine_binset_writer {
    comine_atomic_file af;
    int protocol;
    int images;          /* added so far */
    int in_batch;        /* items since the open MARK */
    bool failed;
};

static void put_len(uint8_t *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
}

comine_status comine_binset_writer_open(comine_binset_writer **out, const char *path, int protocol)
{
    *out = NULL;
    if (protocol != 2 && protocol != 3)
        return comine_fail(COMINE_ERR_ARG, "%s: pickle protocol %d cannot be written (2 or 3)", path, protocol);
    comine_binset_writer *w = comine_calloc(1, sizeof *w);
    comine_status st = comine_atomic_open(&w->af, path);
    if (st) {
        free(w);
        return st;
    }
    w->protocol = protocol;
    uint8_t head[3] = {OP_PROTO, (uint8_t)protocol, OP_EMPTY_LIST};
    fwrite(head, 1, sizeof head, w->af.fp);
    *out = w;
    return COMINE_OK;
}

comine_status comine_binset_writer_add(comine_binset_writer *w, const uint8_t *data, size_t size)
{
    uint8_t h[6];
    int hn;
    if (size >= (w->protocol == 2 ? 0x80000000ULL : 0x100000000ULL)) {
        w->failed = true;
        return comine_fail(COMINE_ERR_ARG, "%s: image %d of %zu bytes is too large for pickle protocol %d",
                           w->af.path, w->images, size, w->protocol);
    }
    if (w->in_batch == 0) fputc(OP_MARK, w->af.fp);
    if (size < 256) {
        h[0] = w->protocol == 2 ? OP_SHORT_BINSTRING : OP_SHORT_BINBYTES;
        h[1] = (uint8_t)size;
        hn = 2;
    } else {
        h[0] = w->protocol == 2 ? OP_BINSTRING : OP_BINBYTES;
        put_len(h + 1, size, 4);
        hn = 5;
    }
    fwrite(h, 1, (size_t)hn, w->af.fp);
    if (size) fwrite(data, 1, size, w->af.fp);
    if (++w->in_batch == BATCH) {
        fputc(OP_APPENDS, w->af.fp);
        w->in_batch = 0;
    }
    w->images++;
    return COMINE_OK;
}

void comine_binset_writer_abort(comine_binset_writer *w)
{
    if (!w) return;
    comine_atomic_abort(&w->af);
    free(w);
}

comine_status comine_binset_writer_finish(comine_binset_writer *w, const uint8_t *same, int n)
{
    if (w->failed || n < 1 || w->images != 2 * n) {
        comine_status st = w->failed ? COMINE_ERR_ARG
                                     : comine_fail(COMINE_ERR_ARG, "%s: %d images written for %d pairs (expected %d)",
                                                   w->af.path, w->images, n, 2 * n);
        comine_binset_writer_abort(w);
        return st;
    }
    FILE *fp = w->af.fp;
    if (w->in_batch) fputc(OP_APPENDS, fp);
    fputc(OP_EMPTY_LIST, fp);
    for (int first = 0; first < n; first += BATCH) {
        int k = n - first < BATCH ? n - first : BATCH;
        fputc(OP_MARK, fp);
        for (int i = first; i < first + k; i++) fputc(same[i] ? OP_NEWTRUE : OP_NEWFALSE, fp);
        fputc(OP_APPENDS, fp);
    }
    fputc(OP_TUPLE2, fp);
    fputc(OP_STOP, fp);
    comine_status st = comine_atomic_commit(&w->af);
    free(w);
    return st;
}

comine_status comine_binset_write(const char *path, const comine_binset *set, int protocol)
{
    comine_binset_writer *w;
    comine_status st = comine_binset_writer_open(&w, path, protocol);
    if (st) return st;
    for (int i = 0; i < 2 * set->n; i++) {
        if ((st = comine_binset_writer_add(w, set->image[i], set->image_size[i]))) {
            comine_binset_writer_abort(w);
            return st;
        }
    }
    return comine_binset_writer_finish(w, set->same, set->n);
}
