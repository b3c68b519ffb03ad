/* pairs.c: verification pairs files.  LFW's format (first line `N`, or `F N` for F folds,
 * then per fold N matched lines `Name n1 n2` and N mismatched lines `Name1 n1 Name2 n2`,
 * images Name/Name_000n.jpg under a root) and generic `pathA<TAB>pathB<TAB>same` lists.
 * Unique images are collected once (pairs share images) through a small hash table. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/eval.h"

void comine_kfold_assign(int *fold, int n, int k)
{
    COMINE_ASSERT(k >= 1 && n >= 0);
    int base = n / k, extra = n % k, i = 0;
    for (int f = 0; f < k; f++) {
        int size = base + (f < extra ? 1 : 0);
        for (int j = 0; j < size; j++) fold[i++] = f;
    }
}

/* ---- a string -> index table for unique image paths ---- */
typedef struct path_table {
    char **names;
    int n, cap;
    int *slots;   /* (nslots) index + 1, 0 = empty */
    size_t nslots;
} path_table;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static void table_grow(path_table *t)
{
    size_t ns = t->nslots ? t->nslots * 2 : 1024;
    int *slots = comine_calloc(ns, sizeof(int));
    for (int i = 0; i < t->n; i++) {
        size_t h = hash_str(t->names[i]) & (ns - 1);
        while (slots[h]) h = (h + 1) & (ns - 1);
        slots[h] = i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = ns;
}

/* Index of `name` (takes ownership of it), adding it when new; *added says which. */
static int table_add(path_table *t, char *name, bool *added)
{
    if ((size_t)(t->n + 1) * 2 > t->nslots) table_grow(t);
    size_t h = hash_str(name) & (t->nslots - 1);
    while (t->slots[h]) {
        int i = t->slots[h] - 1;
        if (!strcmp(t->names[i], name)) {
            free(name);
            *added = false;
            return i;
        }
        h = (h + 1) & (t->nslots - 1);
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->names = comine_realloc(t->names, (size_t)t->cap * sizeof(char *));
    }
    t->names[t->n] = name;
    t->slots[h] = t->n + 1;
    *added = true;
    return t->n++;
}

void comine_pairs_free(comine_pairs *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_images; i++) free(p->images[i]);
    free(p->images);
    free(p->a);
    free(p->b);
    free(p->same);
    free(p->fold);
    free(p->source);
    free(p);
}

/* Split a line into at most `max` tokens at any of `seps`; returns the count (max + 1 when
 * there are more). */
static int split(char *line, const char *seps, char **tok, int max)
{
    int n = 0;
    char *s = line;
    for (;;) {
        while (*s && strchr(seps, *s)) s++;
        if (!*s) break;
        if (n == max) return max + 1;
        tok[n++] = s;
        while (*s && !strchr(seps, *s)) s++;
        if (*s) *s++ = 0;
    }
    return n;
}

static bool parse_pos_int(const char *s, long *v)
{
    return comine_parse_int(s, v) && *v >= 0;
}

static char *lfw_path(const char *root, const char *name, long num)
{
    size_t n = strlen(name) * 2 + 32;
    char *rel = comine_malloc(n);
    snprintf(rel, n, "%s/%s_%04ld.jpg", name, name, num);
    char *full = comine_path_join(root, rel);
    free(rel);
    return full;
}

static bool is_blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return false;
    return true;
}

comine_status comine_pairs_load(comine_pairs **out, const char *file, const char *root)
{
    *out = NULL;
    uint8_t *data;
    size_t size;
    comine_status st = comine_read_file(file, &data, &size);
    if (st) return st;
    if (memchr(data, 0, size)) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT, "%s: not a text pairs file (contains NUL bytes)", file);
    }

    /* Lines, with their numbers; \r\n accepted. */
    int n_lines = 0, cap = 0;
    char **lines = NULL;
    int *line_no = NULL;
    char *s = (char *)data;
    for (int ln = 1; *s || s < (char *)data + size; ln++) {
        char *e = strchr(s, '\n');
        if (e) *e = 0;
        size_t len = strlen(s);
        if (len && s[len - 1] == '\r') s[len - 1] = 0;
        if (!is_blank(s)) {
            if (n_lines == cap) {
                cap = cap ? cap * 2 : 1024;
                lines = comine_realloc(lines, (size_t)cap * sizeof(char *));
                line_no = comine_realloc(line_no, (size_t)cap * sizeof(int));
            }
            lines[n_lines] = s;
            line_no[n_lines++] = ln;
        }
        if (!e) break;
        s = e + 1;
    }
    comine_pairs *p = comine_calloc(1, sizeof *p);
    p->source = comine_strdup(file);
    path_table tab = {0};
    char *dir = NULL;
    if (n_lines == 0) {
        st = comine_fail(COMINE_ERR_FORMAT, "%s: empty pairs file", file);
        goto done;
    }

    char *tok[6];
    char first[256];
    snprintf(first, sizeof first, "%s", lines[0]);
    int nt = split(first, " \t", tok, 5);
    long v1 = -1, v2 = -1;
    bool lfw = (nt == 1 && parse_pos_int(tok[0], &v1)) ||
               (nt == 2 && parse_pos_int(tok[0], &v1) && parse_pos_int(tok[1], &v2));
    if (lfw) {
        long folds = nt == 2 ? v1 : 1, per = nt == 2 ? v2 : v1;
        if (folds < 1 || folds > COMINE_VERIFY_MAX_FOLDS || per < 1 || per > 10000000) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: bad header '%s' (expected `N` or `FOLDS N`, N >= 1, "
                             "1 <= FOLDS <= %d)", file, line_no[0], lines[0], COMINE_VERIFY_MAX_FOLDS);
            goto done;
        }
        if (!root) {
            st = comine_fail(COMINE_ERR_ARG, "%s: an LFW pairs file needs the image root folder (--root)", file);
            goto done;
        }
        long expect = folds * 2 * per;
        if (n_lines - 1 != expect) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: header '%s' promises %ld pair lines (%ld fold(s) of %ld matched "
                             "+ %ld mismatched), found %d", file, line_no[0], lines[0], expect, folds, per, per,
                             n_lines - 1);
            goto done;
        }
        p->n = (int)expect;
        p->folds = nt == 2 ? (int)folds : (p->n >= 10 ? 10 : p->n);
        p->file_folds = nt == 2;
        p->a = comine_malloc((size_t)p->n * sizeof(int));
        p->b = comine_malloc((size_t)p->n * sizeof(int));
        p->same = comine_malloc((size_t)p->n);
        p->fold = comine_malloc((size_t)p->n * sizeof(int));
        /* `N` files: the matched half and the mismatched half are each split into contiguous
         * folds, so fold f holds the f-th tenth of both (as LFW View 2's 300 + 300 folds). */
        if (nt == 1) {
            comine_kfold_assign(p->fold, (int)per, p->folds < per ? p->folds : (int)per);
            comine_kfold_assign(p->fold + per, (int)per, p->folds < per ? p->folds : (int)per);
            if (p->folds > per) p->folds = (int)per;
        }
        for (int i = 0; i < p->n; i++) {
            int ln = line_no[i + 1];
            bool matched = (i % (2 * per)) < per;
            if (nt == 2) p->fold[i] = (int)(i / (2 * per));
            int k = split(lines[i + 1], " \t", tok, 4);
            long n1, n2;
            if (matched) {
                if (k != 3 || !comine_parse_int(tok[1], &n1) || !comine_parse_int(tok[2], &n2) || n1 < 1 || n2 < 1) {
                    st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected a matched pair `Name n1 n2` (image numbers "
                                     ">= 1): pair %ld of the %ld matched pairs of fold %ld", file, ln,
                                     (long)(i % (2 * per)) + 1, per, (long)(i / (2 * per)) + 1);
                    goto done;
                }
                p->same[i] = 1;
            } else {
                if (k != 4 || !comine_parse_int(tok[1], &n1) || !comine_parse_int(tok[3], &n2) || n1 < 1 || n2 < 1) {
                    st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected a mismatched pair `Name1 n1 Name2 n2` (image "
                                     "numbers >= 1): pair %ld of the %ld mismatched pairs of fold %ld", file, ln,
                                     (long)(i % (2 * per)) - per + 1, per, (long)(i / (2 * per)) + 1);
                    goto done;
                }
                p->same[i] = 0;
            }
            const char *name_b = matched ? tok[0] : tok[2];
            char *pa = lfw_path(root, tok[0], n1), *pb = lfw_path(root, name_b, n2);
            for (int side = 0; side < 2; side++) {
                char *path = side ? pb : pa;
                bool added;
                if (!comine_path_exists(path)) {
                    st = comine_fail(COMINE_ERR_IO, "%s:%d: image %s does not exist", file, ln, path);
                    free(side ? pb : pa);
                    if (!side) free(pb);
                    goto done;
                }
                int idx = table_add(&tab, path, &added);
                if (side) p->b[i] = idx; else p->a[i] = idx;
            }
        }
    } else {
        /* generic list: pathA<TAB>pathB<TAB>same */
        dir = root ? comine_strdup(root) : comine_path_dirname(file);
        p->n = n_lines;
        p->a = comine_malloc((size_t)p->n * sizeof(int));
        p->b = comine_malloc((size_t)p->n * sizeof(int));
        p->same = comine_malloc((size_t)p->n);
        p->fold = comine_malloc((size_t)p->n * sizeof(int));
        for (int i = 0; i < p->n; i++) {
            int ln = line_no[i];
            int k = split(lines[i], "\t", tok, 3);
            const char *sv = k == 3 ? tok[2] : "";
            while (k == 3 && isspace((unsigned char)*sv)) sv++;
            char sbuf[16];
            snprintf(sbuf, sizeof sbuf, "%s", sv);
            for (char *q = sbuf + strlen(sbuf); q > sbuf && isspace((unsigned char)q[-1]);) *--q = 0;
            int same;
            if (!strcmp(sbuf, "1") || !strcasecmp(sbuf, "true")) same = 1;
            else if (!strcmp(sbuf, "0") || !strcasecmp(sbuf, "false")) same = 0;
            else {
                st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected `pathA<TAB>pathB<TAB>same` with same = 1/0 "
                                 "(or an LFW header `N` / `FOLDS N` on the first line)", file, ln);
                goto done;
            }
            p->same[i] = (uint8_t)same;
            for (int side = 0; side < 2; side++) {
                char *path = comine_path_join(dir, tok[side]);
                bool added;
                if (!comine_path_exists(path)) {
                    st = comine_fail(COMINE_ERR_IO, "%s:%d: image %s does not exist", file, ln, path);
                    free(path);
                    goto done;
                }
                int idx = table_add(&tab, path, &added);
                if (side) p->b[i] = idx; else p->a[i] = idx;
            }
        }
        if (p->n < 2) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s: needs at least 2 pairs, found %d", file, p->n);
            goto done;
        }
        p->folds = p->n >= 10 ? 10 : p->n;
        comine_kfold_assign(p->fold, p->n, p->folds);
    }
    int n_pos = 0;
    for (int i = 0; i < p->n; i++) n_pos += p->same[i];
    if (n_pos == 0 || n_pos == p->n) {
        st = comine_fail(COMINE_ERR_FORMAT, "%s: needs both matched and mismatched pairs (found %d matched of %d)", file,
                         n_pos, p->n);
        goto done;
    }
    st = COMINE_OK;
done:
    p->images = tab.names;
    p->n_images = tab.n;
    free(tab.slots);
    free(dir);
    free(lines);
    free(line_no);
    free(data);
    if (st) {
        comine_pairs_free(p);
        return st;
    }
    *out = p;
    return COMINE_OK;
}
