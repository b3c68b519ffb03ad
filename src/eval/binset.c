/* binset.c: insightface verification sets (lfw.bin, cfp_fp.bin, agedb_30.bin): a Python
 * pickle of (bins, issame_list), read without a general unpickler.  The file is mapped (or
 * read whole), its opcodes run on binset_pickle.c's stack machine, and the result must be
 * exactly (list of 2n bytes, list of n bools); image bytes point into the mapped file.  The
 * writer is binset_write.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comine/eval.h"
#include "eval/binset_impl.h"

/* ---- the set ------------------------------------------------------------------------------ */
typedef struct binset_impl {
    void *map;             /* mmap'd file, or */
    size_t map_size;
    uint8_t *copy;         /* the file read whole */
    uint8_t **owned;       /* latin-1 buffers */
    int n_owned;
} binset_impl;

void comine_binset_free(comine_binset *set)
{
    if (!set) return;
    binset_impl *im = set->impl;
    if (im) {
        if (im->map) munmap(im->map, im->map_size);
        free(im->copy);
        for (int i = 0; i < im->n_owned; i++) free(im->owned[i]);
        free(im->owned);
        free(im);
    }
    free(set->image);
    free(set->image_size);
    free(set->image_offset);
    free(set->same);
    free(set->source);
    free(set);
}

/* The result must be (list of 2n bytes, list of n bools), n >= 1. */
static comine_status take(pk *p, int top, int64_t stop_at, comine_binset *set)
{
    if (!comine_pk_is_kind(p, top, K_TUPLE) || p->boxes[p->values[top].box].n != 2)
        return comine_pk_fail_at(p, stop_at, "the pickle holds %s%s; expected the tuple (bins, issame_list) of an insightface "
                       "verification set", comine_pk_describe(p, top),
                       comine_pk_is_kind(p, top, K_TUPLE) ? " whose length is not 2" : "");
    const box *t = &p->boxes[p->values[top].box];
    int bins = t->items[0], issame = t->items[1];
    if (!comine_pk_is_kind(p, bins, K_LIST))
        return comine_pk_fail_at(p, bins >= 0 ? p->values[bins].at : stop_at, "the first item of the tuple is %s; expected "
                       "bins, the list of encoded images", comine_pk_describe(p, bins));
    if (!comine_pk_is_kind(p, issame, K_LIST))
        return comine_pk_fail_at(p, issame >= 0 ? p->values[issame].at : stop_at, "the second item of the tuple is %s; "
                       "expected issame_list, the list of bools", comine_pk_describe(p, issame));
    const box *b = &p->boxes[p->values[bins].box], *s = &p->boxes[p->values[issame].box];
    if (s->n < 1)
        return comine_pk_fail_at(p, p->values[issame].at, "issame_list is empty (expected one bool per pair)");
    if (b->n != 2 * s->n)
        return comine_pk_fail_at(p, p->values[bins].at, "bins holds %d images and issame_list %d bools; expected two images "
                       "per pair (%d)", b->n, s->n, 2 * s->n);
    for (int i = 0; i < s->n; i++)
        if (s->items[i] != V_TRUE && s->items[i] != V_FALSE)
            return comine_pk_fail_at(p, p->values[s->items[i]].at, "issame_list[%d] is %s (expected a bool)", i,
                           comine_pk_describe(p, s->items[i]));
    for (int i = 0; i < b->n; i++)
        if (!comine_pk_is_kind(p, b->items[i], K_BYTES))
            return comine_pk_fail_at(p, b->items[i] >= 0 ? p->values[b->items[i]].at : p->values[bins].at,
                           "bins[%d] is %s (expected the bytes of an encoded image)", i, comine_pk_describe(p, b->items[i]));
    set->n = s->n;
    set->image = comine_malloc((size_t)b->n * sizeof(uint8_t *));
    set->image_size = comine_malloc((size_t)b->n * sizeof(size_t));
    set->image_offset = comine_malloc((size_t)b->n * sizeof(int64_t));
    set->same = comine_malloc((size_t)s->n);
    for (int i = 0; i < b->n; i++) {
        const value *v = &p->values[b->items[i]];
        set->image[i] = v->data;
        set->image_size[i] = (size_t)v->len;
        set->image_offset[i] = v->at;
    }
    for (int i = 0; i < s->n; i++) set->same[i] = s->items[i] == V_TRUE;
    return COMINE_OK;
}

static comine_status parse_into(comine_binset *set, const uint8_t *data, size_t size)
{
    pk p = {.name = set->source, .data = data, .size = size};
    int top = -1;
    int64_t stop_at = 0;
    comine_status st = comine_pk_run(&p, &top, &stop_at);
    if (!st && p.pos != size)
        st = comine_pk_fail_at(&p, (int64_t)p.pos, "%zu bytes after the pickle's STOP at byte %lld (expected the end of the "
                     "file)", size - p.pos, (long long)stop_at);
    if (!st) st = take(&p, top, stop_at, set);
    if (!st) set->protocol = data[1];
    binset_impl *im = set->impl;
    im->owned = p.owned;
    im->n_owned = p.n_owned;
    comine_pk_free(&p);
    return st;
}

static comine_binset *binset_new(const char *name)
{
    comine_binset *set = comine_calloc(1, sizeof *set);
    set->source = comine_strdup(name);
    set->impl = comine_calloc(1, sizeof(binset_impl));
    return set;
}

comine_status comine_binset_parse(comine_binset **out, const uint8_t *data, size_t size, const char *name)
{
    *out = NULL;
    comine_binset *set = binset_new(name ? name : "pickle");
    comine_status st = parse_into(set, data, size);
    if (st) {
        comine_binset_free(set);
        return st;
    }
    *out = set;
    return COMINE_OK;
}

comine_status comine_binset_load(comine_binset **out, const char *path)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return comine_fail(COMINE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return comine_fail(COMINE_ERR_IO, "%s: not a regular file", path);
    }
    comine_binset *set = binset_new(path);
    binset_impl *im = set->impl;
    size_t size = (size_t)sb.st_size;
    const uint8_t *data = NULL;
    if (size > 0) {
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            im->map = m;
            im->map_size = size;
            data = m;
        }
    }
    close(fd);
    if (!data && size > 0) {
        size_t got;
        comine_status st = comine_read_file(path, &im->copy, &got);
        if (st) {
            comine_binset_free(set);
            return st;
        }
        data = im->copy;
        size = got;
    }
    comine_status st = parse_into(set, data, size);
    if (st) {
        comine_binset_free(set);
        return st;
    }
    *out = set;
    return COMINE_OK;
}
