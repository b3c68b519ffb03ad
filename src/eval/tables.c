/* tables.c: the readers of run_files.h, for what the trainer writes into a run folder:
 * noise.csv (RFC-4180 CSV, one row per sample), cos_epoch<E>.csv and metrics.jsonl (one
 * flat JSON object of numbers / null per line).  Errors name the file and line. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comine/eval.h"

/* ---- CSV -------------------------------------------------------------------------- */
typedef struct csv_reader {
    char *p, *end;
    int line;          /* line of the record being read (1-based) */
    int next_line;
} csv_reader;

/* Next record, unquoted in place; returns the field count (0 at the end), -1 on a bad quote. */
static int csv_next(csv_reader *r, char **fields, int max)
{
    while (r->p < r->end && (*r->p == '\n' || *r->p == '\r')) {  /* skip blank lines */
        if (*r->p == '\n') r->next_line++;
        r->p++;
    }
    if (r->p >= r->end) return 0;
    r->line = r->next_line;
    int nf = 0;
    for (;;) {
        char *out = r->p, *start = r->p;
        if (*r->p == '"') {
            r->p++;
            for (;;) {
                if (r->p >= r->end) return -1;
                if (*r->p == '"') {
                    if (r->p + 1 < r->end && r->p[1] == '"') { *out++ = '"'; r->p += 2; continue; }
                    r->p++;
                    break;
                }
                if (*r->p == '\n') r->next_line++;
                *out++ = *r->p++;
            }
            if (r->p < r->end && *r->p != ',' && *r->p != '\n' && *r->p != '\r') return -1;
        } else {
            while (r->p < r->end && *r->p != ',' && *r->p != '\n' && *r->p != '\r') {
                if (*r->p == '"') return -1;
                out++, r->p++;
            }
        }
        char sep = r->p < r->end ? *r->p : '\n';
        *out = 0;
        if (nf < max) fields[nf] = start;
        nf++;
        if (r->p < r->end) r->p++;
        if (sep == ',') continue;
        if (sep == '\r' && r->p < r->end && *r->p == '\n') r->p++;
        r->next_line++;
        return nf;
    }
}

static bool field_int(const char *s, long *v) { return comine_parse_int(s, v); }

static bool field_double(const char *s, double *v)
{
    if (!*s) { *v = NAN; return true; }
    return comine_parse_double(s, v);
}

static comine_status csv_open(csv_reader *r, uint8_t **data, const char *path)
{
    size_t size;
    comine_status st = comine_read_file(path, data, &size);
    if (st) return st;
    r->p = (char *)*data;
    r->end = r->p + size;
    r->line = r->next_line = 1;
    return COMINE_OK;
}

/* The record's fields are the columns of `header` (comma-separated), each possibly after
 * blanks and before trailing characters such as a '\r'. */
static bool header_is(char **f, int nf, const char *header)
{
    int i = 0;
    for (const char *name = header; *name; i++) {
        size_t len = strcspn(name, ",");
        if (i >= nf) return false;
        const char *s = f[i];
        while (isspace((unsigned char)*s)) s++;
        if (strncmp(s, name, len)) return false;
        name += len + (name[len] == ',');
    }
    return i == nf;
}

void comine_noise_free(comine_noise_table *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) free(t->rows[i].path);
    free(t->rows);
    free(t->source);
    free(t);
}

comine_status comine_noise_load(comine_noise_table **out, const char *path)
{
    *out = NULL;
    uint8_t *data;
    csv_reader r;
    comine_status st = csv_open(&r, &data, path);
    if (st) return st;
    char *f[9];
    int nf = csv_next(&r, f, 9);
    if (nf <= 0 || !header_is(f, nf, COMINE_NOISE_HEADER)) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT, "%s:1: expected the header `" COMINE_NOISE_HEADER "`", path);
    }
    comine_noise_table *t = comine_calloc(1, sizeof *t);
    t->source = comine_strdup(path);
    t->has_truth = true;
    int cap = 0;
    while ((nf = csv_next(&r, f, 9)) != 0) {
        if (nf < 0) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: badly quoted field", path, r.line);
            goto fail;
        }
        if (nf != 8) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected 8 fields, found %d", path, r.line, nf);
            goto fail;
        }
        long index, label, votes, rounds, flagged, truth = -1;
        double score;
        const char *bad = NULL;
        if (!field_int(f[0], &index) || index < 0) bad = "index";
        else if (!field_int(f[2], &label) || label < 0) bad = "label";
        else if (!field_int(f[3], &votes) || votes < 0) bad = "votes";
        else if (!field_int(f[4], &rounds) || rounds < 0 || votes > rounds) bad = "rounds";
        else if (!field_double(f[5], &score) || !(score >= 0 && score <= 1)) bad = "score";
        else if (!field_int(f[6], &flagged) || (flagged != 0 && flagged != 1)) bad = "flagged";
        else if (f[7][0] && (!field_int(f[7], &truth) || truth < 0 || truth > 2)) bad = "truth";
        if (bad) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: bad value for column '%s'", path, r.line, bad);
            goto fail;
        }
        if (t->n == cap) {
            cap = cap ? cap * 2 : 1024;
            t->rows = comine_realloc(t->rows, (size_t)cap * sizeof *t->rows);
        }
        comine_noise_row *row = &t->rows[t->n++];
        row->index = (int)index;
        row->path = comine_strdup(f[1]);
        row->label = (int)label;
        row->votes = (int)votes;
        row->rounds = (int)rounds;
        row->score = score;
        row->flagged = (int)flagged;
        row->truth = (int)truth;
        if (truth < 0) t->has_truth = false;
    }
    if (t->n == 0) t->has_truth = false;
    free(data);
    *out = t;
    return COMINE_OK;
fail:
    free(data);
    comine_noise_free(t);
    return st;
}

void comine_cos_free(comine_cos_table *c)
{
    if (!c) return;
    free(c->index);
    free(c->label);
    free(c->truth);
    free(c->cos_a);
    free(c->cos_b);
    free(c);
}

comine_status comine_cos_load(comine_cos_table **out, const char *path)
{
    *out = NULL;
    uint8_t *data;
    csv_reader r;
    comine_status st = csv_open(&r, &data, path);
    if (st) return st;
    char *f[6];
    int nf = csv_next(&r, f, 6);
    if (nf <= 0 || !header_is(f, nf, COMINE_COS_HEADER)) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT, "%s:1: expected the header `" COMINE_COS_HEADER "`", path);
    }
    comine_cos_table *c = comine_calloc(1, sizeof *c);
    int cap = 0;
    while ((nf = csv_next(&r, f, 6)) != 0) {
        if (nf != 5) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected 5 fields, found %d", path, r.line, nf < 0 ? 0 : nf);
            goto fail;
        }
        long index, label, truth = -1;
        double ca, cb;
        if (!field_int(f[0], &index) || !field_int(f[1], &label) ||
            (f[2][0] && (!field_int(f[2], &truth) || truth < 0 || truth > 2)) || !field_double(f[3], &ca) ||
            !field_double(f[4], &cb)) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: bad number", path, r.line);
            goto fail;
        }
        if (c->n == cap) {
            cap = cap ? cap * 2 : 1024;
            c->index = comine_realloc(c->index, (size_t)cap * sizeof(int));
            c->label = comine_realloc(c->label, (size_t)cap * sizeof(int));
            c->truth = comine_realloc(c->truth, (size_t)cap * sizeof(int));
            c->cos_a = comine_realloc(c->cos_a, (size_t)cap * sizeof(double));
            c->cos_b = comine_realloc(c->cos_b, (size_t)cap * sizeof(double));
        }
        c->index[c->n] = (int)index;
        c->label[c->n] = (int)label;
        c->truth[c->n] = (int)truth;
        c->cos_a[c->n] = ca;
        c->cos_b[c->n] = cb;
        if (!isnan(cb)) c->has_b = true;  /* an empty field (NaN): not seen in that epoch */
        c->n++;
    }
    free(data);
    *out = c;
    return COMINE_OK;
fail:
    free(data);
    comine_cos_free(c);
    return st;
}

/* ---- JSON lines --------------------------------------------------------------------- */
void comine_jsonl_free(comine_jsonl *j)
{
    if (!j) return;
    for (int i = 0; i < j->n_keys; i++) free(j->keys[i]);
    free(j->keys);
    free(j->values);
    free(j);
}

int comine_jsonl_key(const comine_jsonl *j, const char *key)
{
    for (int i = 0; i < j->n_keys; i++)
        if (!strcmp(j->keys[i], key)) return i;
    return -1;
}

double comine_jsonl_get(const comine_jsonl *j, int row, const char *key)
{
    int k = comine_jsonl_key(j, key);
    if (k < 0 || row < 0 || row >= j->n_rows) return NAN;
    return j->values[(size_t)row * j->n_keys + k];
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    return s;
}

/* A JSON string at s (after the opening quote); copies the unescaped text into buf (basic
 * escapes; \uXXXX kept as '?'); returns the position after the closing quote or NULL. */
static const char *json_string(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    while (*s && *s != '"') {
        char c = *s++;
        if (c == '\\') {
            c = *s++;
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
                for (int i = 0; i < 4; i++)
                    if (!isxdigit((unsigned char)*s++)) return NULL;
                c = '?';
                break;
            case '"': case '\\': case '/': break;
            default: return NULL;
            }
        }
        if (n + 1 < cap) buf[n++] = c;
    }
    if (*s != '"') return NULL;
    buf[n] = 0;
    return s + 1;
}

comine_status comine_jsonl_load(comine_jsonl **out, const char *path)
{
    *out = NULL;
    uint8_t *data;
    size_t size;
    comine_status st = comine_read_file(path, &data, &size);
    if (st) return st;
    comine_jsonl *j = comine_calloc(1, sizeof *j);
    int row_cap = 0, key_cap = 0;
    char *s = (char *)data;
    char key[256], sval[256];
    for (int ln = 1; s && *s; ln++) {
        char *e = strchr(s, '\n');
        if (e) *e = 0;
        const char *p = skip_ws(s);
        char *next = e ? e + 1 : NULL;
        if (!*p) { s = next; continue; }
        if (*p != '{') {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected a JSON object", path, ln);
            goto fail;
        }
        if (j->n_rows == row_cap) {
            row_cap = row_cap ? row_cap * 2 : 64;
            j->values = comine_realloc(j->values, (size_t)row_cap * (j->n_keys ? j->n_keys : 1) * sizeof(double));
        }
        /* values is (rows, n_keys): a new key widens every row, so keep it rectangular. */
        int row = j->n_rows++;
        for (int k = 0; k < j->n_keys; k++) j->values[(size_t)row * j->n_keys + k] = NAN;
        p = skip_ws(p + 1);
        if (*p == '}') goto end_obj;
        for (;;) {
            if (*p != '"' || !(p = json_string(p + 1, key, sizeof key))) {
                st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected a key string", path, ln);
                goto fail;
            }
            p = skip_ws(p);
            if (*p != ':') {
                st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected ':' after key \"%s\"", path, ln, key);
                goto fail;
            }
            p = skip_ws(p + 1);
            double v;
            if (!strncmp(p, "null", 4)) { v = NAN; p += 4; }
            else if (!strncmp(p, "true", 4)) { v = 1; p += 4; }
            else if (!strncmp(p, "false", 5)) { v = 0; p += 5; }
            else if (!strncmp(p, "NaN", 3)) { v = NAN; p += 3; }
            else if (*p == '"') {
                if (!(p = json_string(p + 1, sval, sizeof sval))) {
                    st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: bad string value for \"%s\"", path, ln, key);
                    goto fail;
                }
                v = NAN;
            } else {
                char *q;
                v = strtod(p, &q);
                if (q == p) {
                    st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: value of \"%s\" is not a number or null", path, ln,
                                     key);
                    goto fail;
                }
                p = q;
            }
            int k = comine_jsonl_key(j, key);
            if (k < 0) {
                if (j->n_keys == key_cap) {
                    key_cap = key_cap ? key_cap * 2 : 32;
                    j->keys = comine_realloc(j->keys, (size_t)key_cap * sizeof(char *));
                }
                int old = j->n_keys, nk = old + 1;
                double *nv = comine_malloc((size_t)row_cap * nk * sizeof(double));
                for (int r = 0; r < j->n_rows; r++) {
                    for (int c = 0; c < old; c++) nv[(size_t)r * nk + c] = j->values[(size_t)r * old + c];
                    nv[(size_t)r * nk + old] = NAN;
                }
                free(j->values);
                j->values = nv;
                j->keys[old] = comine_strdup(key);
                j->n_keys = nk;
                k = old;
            }
            j->values[(size_t)row * j->n_keys + k] = v;
            p = skip_ws(p);
            if (*p == ',') { p = skip_ws(p + 1); continue; }
            if (*p == '}') break;
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected ',' or '}' after \"%s\"", path, ln, key);
            goto fail;
        }
    end_obj:
        p = skip_ws(p + 1);
        if (*p) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: text after the object", path, ln);
            goto fail;
        }
        s = next;
    }
    free(data);
    *out = j;
    return COMINE_OK;
fail:
    free(data);
    comine_jsonl_free(j);
    return st;
}
