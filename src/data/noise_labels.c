/* noise_labels.c: duplicate identities (one identity split in two labels; the pairs file of
 * the truth) and the names of labels (classes files, names from the sample paths), see
 * comine/noise.h.  The duplicate split draws from its own RNG stream (COMINE_STREAM_DUPLICATE),
 * so adding it changes nothing else of a corruption. */
#include "comine/noise.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- duplicate identities ---------------------------------------------------------------- */

int comine_duplicate_count(int num_classes, double fraction)
{
    long d = lround(fraction * num_classes);
    if (d < 0) d = 0;
    if (d > num_classes) d = num_classes;
    return (int)d;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

comine_status comine_duplicate_split(comine_sample *s, int n, int num_classes, double fraction, uint64_t seed,
                                     int **pairs, int *num_pairs)
{
    *pairs = NULL;
    *num_pairs = 0;
    if (!(fraction >= 0.0 && fraction < 1.0))
        return comine_fail(COMINE_ERR_ARG, "corrupt: the duplicate rate %g is outside [0, 1)", fraction);
    int want = comine_duplicate_count(num_classes, fraction);
    if (want == 0) return COMINE_OK;
    for (int i = 0; i < n; i++)
        if (s[i].label < 0 || s[i].label >= num_classes)
            return comine_fail(COMINE_ERR_ARG, "corrupt: sample %d (%s) has label %d outside [0, %d)", i,
                               s[i].path ? s[i].path : "?", s[i].label, num_classes);
    int *count = comine_calloc((size_t)num_classes, sizeof(int));
    for (int i = 0; i < n; i++) count[s[i].label]++;
    int *eligible = comine_malloc(sizeof(int) * (size_t)num_classes), num_eligible = 0;
    for (int c = 0; c < num_classes; c++)
        if (count[c] >= 2) eligible[num_eligible++] = c;
    if (num_eligible < want) {
        free(count);
        free(eligible);
        return comine_fail(COMINE_ERR_ARG, "corrupt: %d identities to split in two labels (duplicate rate %g of %d) "
                           "but only %d have at least 2 samples", want, fraction, num_classes, num_eligible);
    }
    comine_rng rng;
    comine_rng_seed(&rng, seed, COMINE_STREAM_DUPLICATE);
    comine_rng_shuffle_int(&rng, eligible, (size_t)num_eligible);
    qsort(eligible, (size_t)want, sizeof(int), cmp_int);
    int *out = comine_malloc(sizeof(int) * 2 * (size_t)want);
    int *new_label = comine_malloc(sizeof(int) * (size_t)num_classes);
    for (int c = 0; c < num_classes; c++) new_label[c] = -1;
    for (int j = 0; j < want; j++) {
        new_label[eligible[j]] = num_classes + j;
        out[2 * j] = eligible[j];
        out[2 * j + 1] = num_classes + j;
    }
    /* the samples of each split identity, in sample order; a shuffle picks the half that moves */
    int *first = comine_calloc((size_t)num_classes + 1, sizeof(int));
    for (int c = 0; c < num_classes; c++) first[c + 1] = first[c] + (new_label[c] >= 0 ? count[c] : 0);
    int *members = comine_malloc(sizeof(int) * (size_t)(first[num_classes] ? first[num_classes] : 1));
    int *fill = comine_calloc((size_t)num_classes, sizeof(int));
    for (int i = 0; i < n; i++) {
        int c = s[i].label;
        if (new_label[c] >= 0) members[first[c] + fill[c]++] = i;
    }
    for (int j = 0; j < want; j++) {
        int c = eligible[j], m = count[c];
        int *mem = members + first[c];
        comine_rng_shuffle_int(&rng, mem, (size_t)m);
        for (int k = 0; k < m / 2; k++) s[mem[k]].label = new_label[c];
    }
    free(fill);
    free(members);
    free(first);
    free(new_label);
    free(count);
    free(eligible);
    *pairs = out;
    *num_pairs = want;
    return COMINE_OK;
}

comine_status comine_duplicates_write(const char *path, const int *pairs, int num_pairs)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    fprintf(af.fp, "label_a\tlabel_b\n");
    for (int j = 0; j < num_pairs; j++) {
        int a = pairs[2 * j], b = pairs[2 * j + 1];
        fprintf(af.fp, "%d\t%d\n", a < b ? a : b, a < b ? b : a);
    }
    return comine_atomic_commit(&af);
}

/* The next line of a text buffer, NUL-terminated in place (CR dropped); NULL at the end. */
static char *next_line(char **cursor)
{
    char *p = *cursor;
    if (!p || !*p) return NULL;
    char *e = strchr(p, '\n');
    if (e) {
        *e = 0;
        *cursor = e + 1;
    } else {
        *cursor = p + strlen(p);
    }
    size_t len = strlen(p);
    if (len && p[len - 1] == '\r') p[len - 1] = 0;
    return p;
}

comine_status comine_duplicates_load(const char *path, int **pairs, int *num_pairs)
{
    *pairs = NULL;
    *num_pairs = 0;
    uint8_t *data;
    size_t size;
    comine_status st = comine_read_file(path, &data, &size);
    if (st != COMINE_OK) return st;
    char *cursor = (char *)data, *line;
    int cap = 16, m = 0, lineno = 0;
    int *out = comine_malloc(sizeof(int) * 2 * (size_t)cap);
    while ((line = next_line(&cursor))) {
        lineno++;
        if (!*line || line[0] == '#') continue;
        if (lineno == 1 && !strcmp(line, "label_a\tlabel_b")) continue;
        char *tab = strchr(line, '\t');
        long a, b;
        if (tab) *tab = 0;
        if (!tab || !comine_parse_int(line, &a) || !comine_parse_int(tab + 1, &b) || a < 0 || b < 0 || a == b ||
            a > 0x7fffffffL || b > 0x7fffffffL) {
            free(out);
            free(data);
            return comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected 'label_a<TAB>label_b' (two different labels >= 0)",
                               path, lineno);
        }
        if (m == cap) {
            cap *= 2;
            out = comine_realloc(out, sizeof(int) * 2 * (size_t)cap);
        }
        out[2 * m] = (int)(a < b ? a : b);
        out[2 * m + 1] = (int)(a < b ? b : a);
        m++;
    }
    free(data);
    *pairs = out;
    *num_pairs = m;
    return COMINE_OK;
}

/* ---- identity names ------------------------------------------------------------------------ */

void comine_names_free(char **names, int n)
{
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

comine_status comine_classes_write(const char *path, char *const *names, int num_classes)
{
    for (int c = 0; c < num_classes; c++)
        if (strpbrk(names[c], "\t\n\r"))
            return comine_fail(COMINE_ERR_ARG, "%s: the name of label %d contains a tab or a line break", path, c);
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    for (int c = 0; c < num_classes; c++) fprintf(af.fp, "%d\t%s\n", c, names[c]);
    return comine_atomic_commit(&af);
}

comine_status comine_classes_load(const char *path, int num_classes, char ***names)
{
    *names = NULL;
    uint8_t *data;
    size_t size;
    comine_status st = comine_read_file(path, &data, &size);
    if (st != COMINE_OK) return st;
    char **out = comine_calloc((size_t)(num_classes > 0 ? num_classes : 1), sizeof(char *));
    char *cursor = (char *)data, *line;
    int lineno = 0, seen = 0;
    while ((line = next_line(&cursor))) {
        lineno++;
        if (!*line) continue;
        char *tab = strchr(line, '\t');
        long label;
        if (tab) *tab = 0;
        if (!tab || !comine_parse_int(line, &label)) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected 'label<TAB>name'", path, lineno);
            break;
        }
        if (label < 0 || label >= num_classes) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: label %ld outside [0, %d) (the file belongs to another data "
                             "set)", path, lineno, label, num_classes);
            break;
        }
        if (out[label]) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: label %ld given twice", path, lineno, label);
            break;
        }
        out[label] = comine_strdup(tab + 1);
        seen++;
    }
    free(data);
    if (st == COMINE_OK && seen != num_classes)
        st = comine_fail(COMINE_ERR_FORMAT, "%s: names for %d labels, the data set has %d", path, seen, num_classes);
    if (st != COMINE_OK) {
        comine_names_free(out, num_classes);
        return st;
    }
    *names = out;
    return COMINE_OK;
}

/* The parent folder's name of a path: [*start, *start + *len); false when there is none. */
static bool parent_name(const char *path, const char **start, size_t *len)
{
    const char *last = strrchr(path, '/');
    if (!last || last == path) return false;
    const char *p = last;
    while (p > path && p[-1] != '/') p--;
    if (p == last) return false;
    *start = p;
    *len = (size_t)(last - p);
    return true;
}

char **comine_label_names_from_paths(const comine_sample *s, int n, int num_classes)
{
    char **names = comine_calloc((size_t)(num_classes > 0 ? num_classes : 1), sizeof(char *));
    /* samples grouped by label (a counting sort), then the most frequent parent of each group */
    int *first = comine_calloc((size_t)num_classes + 1, sizeof(int));
    for (int i = 0; i < n; i++)
        if (s[i].label >= 0 && s[i].label < num_classes) first[s[i].label + 1]++;
    for (int c = 0; c < num_classes; c++) first[c + 1] += first[c];
    int *members = comine_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    int *fill = comine_calloc((size_t)num_classes, sizeof(int));
    for (int i = 0; i < n; i++)
        if (s[i].label >= 0 && s[i].label < num_classes) members[first[s[i].label] + fill[s[i].label]++] = i;
    for (int c = 0; c < num_classes; c++) {
        const char *best = NULL;
        size_t best_len = 0;
        int best_count = 0;
        for (int a = first[c]; a < first[c + 1]; a++) {
            const char *pa;
            size_t la;
            if (!parent_name(s[members[a]].path, &pa, &la)) continue;
            if (best && la == best_len && !memcmp(pa, best, la)) continue; /* counted already */
            int cnt = 0;
            for (int b = a; b < first[c + 1]; b++) {
                const char *pb;
                size_t lb;
                if (parent_name(s[members[b]].path, &pb, &lb) && lb == la && !memcmp(pa, pb, la)) cnt++;
            }
            if (cnt > best_count) {
                best = pa;
                best_len = la;
                best_count = cnt;
            }
            if (2 * best_count > first[c + 1] - first[c]) break; /* a majority: nothing can beat it */
        }
        if (best) {
            names[c] = comine_malloc(best_len + 1);
            memcpy(names[c], best, best_len);
            names[c][best_len] = 0;
        } else {
            char buf[32];
            snprintf(buf, sizeof buf, "label%d", c);
            names[c] = comine_strdup(buf);
        }
    }
    free(fill);
    free(members);
    free(first);
    return names;
}
