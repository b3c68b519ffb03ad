/* reader_files.c: the readers of data sets whose samples are image files: a folder of
 * identity folders (labels by the folders' names, sorted bytewise) and a list file
 * (`path<TAB>label[<TAB>flag]`, or, for a name ending in .lst, MXNet's im2rec list
 * `index<TAB>label[<TAB>label...]<TAB>path` or insightface's `aligned<TAB>path<TAB>label
 * [<TAB>4 bbox<TAB>10 landmark values]`; the first label is the identity).  Problems a person must fix in a list (syntax, missing
 * files, label gaps, duplicates) are errors at open time, each naming the file and line;
 * files of a folder tree that merely are not images, and empty identity folders, are skipped
 * and listed in ds->problems.  Whether an image decodes is only known when it is decoded.
 * Both keep their root folder open (ds->impl): a sample under it is opened by its path
 * below the root (openat), which spares the kernel the walk down to the root; the loader's
 * batch reads (prefetch.c) open files the same way through file_at. */
#include "data_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the root folder of a folder or list data set ------------------------------------ */

/* The folder that sample paths were joined to, open; -1 when it could not be opened. */
typedef struct files_root {
    int fd;
    char *prefix;        /* the root as joined: "ROOT/" */
    size_t prefix_len;
} files_root;

static files_root *files_root_open(const char *root)
{
    files_root *r = comine_calloc(1, sizeof *r);
    r->fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* comine_path_join(root, rel) is exactly prefix + rel. */
    size_t n = strlen(root);
    r->prefix = comine_malloc(n + 2);
    memcpy(r->prefix, root, n);
    if (n && root[n - 1] != '/') r->prefix[n++] = '/';
    r->prefix[n] = 0;
    r->prefix_len = n;
    return r;
}

static void files_root_close(files_root *r)
{
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    free(r->prefix);
    free(r);
}

static void files_close(void *impl)
{
    files_root_close(impl);
}

/* ---- folder trees -------------------------------------------------------------------- */

/* A folder entry: its name and what readdir says it is (DT_UNKNOWN: ask stat). */
typedef struct entry {
    char *name;
    unsigned char type;
} entry;

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* Sorted entries of a folder (no "." entries, no hidden files). */
static comine_status list_folder(const char *dir, entry **out, int *count)
{
    *out = NULL;
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return comine_fail(COMINE_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    int cap = 0, n = 0;
    entry *v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = comine_realloc(v, sizeof(entry) * cap);
        }
        v[n].name = comine_strdup(e->d_name);
        v[n].type = e->d_type;
        n++;
    }
    closedir(d);
    if (n) qsort(v, n, sizeof(entry), cmp_entry);
    *out = v;
    *count = n;
    return COMINE_OK;
}

/* Is the entry a folder / a regular file?  readdir's type when it knows, else stat. */
static bool entry_is(const entry *e, const char *path, bool want_dir)
{
    if (e->type == DT_DIR) return want_dir;
    if (e->type == DT_REG) return !want_dir;
    struct stat sb;
    if (stat(path, &sb) != 0) return false;
    return want_dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode);
}

static void free_entries(entry *v, int n)
{
    for (int i = 0; i < n; i++) free(v[i].name);
    free(v);
}

static void add_sample(comine_dataset *ds, int *cap, char *path, int label, int truth)
{
    if (ds->n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        ds->samples = comine_realloc(ds->samples, sizeof(comine_sample) * *cap);
    }
    comine_sample *s = &ds->samples[ds->n++];
    s->path = path;
    s->label = label;
    s->truth = (int8_t)truth;
    s->rec_offset = -1;
}

static comine_status open_folder(comine_dataset *ds, const char *root, const comine_dataset_opts *opts)
{
    (void)opts;
    entry *ids;
    int nids;
    comine_status st = list_folder(root, &ids, &nids);
    if (st != COMINE_OK) return st;
    ds->impl = files_root_open(root);
    int cap = 0;
    for (int i = 0; i < nids; i++) {
        char *idpath = comine_path_join(root, ids[i].name);
        if (!entry_is(&ids[i], idpath, true)) {
            comine_dataset_add_problem(ds, "%s: not in an identity folder, ignored", idpath);
            free(idpath);
            continue;
        }
        entry *files;
        int nfiles;
        st = list_folder(idpath, &files, &nfiles);
        if (st != COMINE_OK) {
            comine_dataset_add_problem(ds, "%s", comine_last_error());
            free(idpath);
            continue;
        }
        int label = ds->num_classes, before = ds->n;
        for (int f = 0; f < nfiles; f++) {
            char *path = comine_path_join(idpath, files[f].name);
            if (!comine_image_path_has_ext(path)) {
                comine_dataset_add_problem(ds, "%s: not an image file (extension), ignored", path);
                free(path);
            } else if (!entry_is(&files[f], path, false)) {
                comine_dataset_add_problem(ds, "%s: not a regular file (a folder, or a broken link), ignored", path);
                free(path);
            } else {
                add_sample(ds, &cap, path, label, COMINE_TRUTH_UNKNOWN);
            }
        }
        free_entries(files, nfiles);
        if (ds->n == before) {
            comine_dataset_add_problem(ds, "%s: empty identity folder (no images), skipped: it gets no label", idpath);
        } else {
            ds->class_names = comine_realloc(ds->class_names, sizeof(char *) * (ds->num_classes + 1));
            ds->class_names[ds->num_classes++] = comine_strdup(ids[i].name);
        }
        free(idpath);
    }
    free_entries(ids, nids);
    if (ds->n == 0) return comine_fail(COMINE_ERR_FORMAT, "%s: no images in identity folders (one folder per identity expected)", root);
    return COMINE_OK;
}

/* ---- list files ---------------------------------------------------------------------- */

/* A string set for duplicate detection: open addressing, FNV-1a. */
typedef struct str_set {
    size_t cap;
    const char **keys;
    int *lines;
} str_set;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

/* Returns the line of an earlier equal key, or 0 after inserting it. */
static int str_set_insert(str_set *set, const char *key, int line)
{
    size_t mask = set->cap - 1, i = fnv1a(key) & mask;
    while (set->keys[i]) {
        if (!strcmp(set->keys[i], key)) return set->lines[i];
        i = (i + 1) & mask;
    }
    set->keys[i] = key;
    set->lines[i] = line;
    return 0;
}

typedef struct problem_log {
    int count;
    char first[1024];
} problem_log;

static void list_problem(problem_log *pl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void list_problem(problem_log *pl, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (pl->count == 0) snprintf(pl->first, sizeof pl->first, "%s", buf);
    if (pl->count < COMINE_DATASET_MAX_LOGGED) comine_error("%s", buf);
    pl->count++;
}

static bool is_number(const char *s)
{
    double v;
    return comine_parse_double(s, &v);
}

/* One line of a .lst file cut into nf fields: the path and the label, or false with *why set.
 * im2rec writes `index<TAB>label...<TAB>path` (labels as floats, "3.000000"); insightface's
 * face2rec2 reads `aligned<TAB>path<TAB>label[<TAB>bbox x4[<TAB>landmark x10]]`.  A second
 * field that is a number makes the line im2rec's. */
static bool lst_line(char **fields, int nf, const char **path, long *label, char *why, size_t why_size)
{
    double v;
    long index;
    if (nf < 3) {
        snprintf(why, why_size, "expected `index<TAB>label<TAB>path` (MXNet .lst) or `aligned<TAB>path<TAB>label` "
                 "(insightface .lst), found %d tab-separated field(s)", nf);
        return false;
    }
    if (is_number(fields[1])) {
        if (!comine_parse_int(fields[0], &index) || index < 0) {
            snprintf(why, why_size, "index '%s' is not a non-negative integer (MXNet .lst: index<TAB>label<TAB>path)",
                     fields[0]);
            return false;
        }
        for (int f = 2; f < nf - 1; f++)
            if (!is_number(fields[f])) {
                snprintf(why, why_size, "label column %d '%s' is not a number (MXNet .lst: index<TAB>label...<TAB>path)",
                         f + 1, fields[f]);
                return false;
            }
        comine_parse_double(fields[1], &v);
        if (v != floor(v) || v < 0 || v > 100000000) {
            snprintf(why, why_size, "label '%s' is not an identity 0 .. 100000000", fields[1]);
            return false;
        }
        *path = fields[nf - 1];
        *label = (long)v;
        return true;
    }
    if (nf != 3 && nf != 7 && nf != 17) {
        snprintf(why, why_size, "insightface .lst lines have 3, 7 or 17 fields (aligned, path, label, 4 bbox, 10 "
                 "landmark values), found %d", nf);
        return false;
    }
    if (!comine_parse_int(fields[0], &index) || !comine_parse_int(fields[2], label)) {
        snprintf(why, why_size, "expected `aligned<TAB>path<TAB>label` with integers aligned and label ('%s', '%s'), "
                 "or MXNet's index<TAB>label<TAB>path", fields[0], fields[2]);
        return false;
    }
    for (int f = 3; f < nf; f++)
        if (!is_number(fields[f])) {
            snprintf(why, why_size, "bbox / landmark column %d '%s' is not a number", f + 1, fields[f]);
            return false;
        }
    *path = fields[1];
    return true;
}

static comine_status open_list(comine_dataset *ds, const char *list, const comine_dataset_opts *opts)
{
    size_t list_len = strlen(list);
    bool lst = list_len > 4 && !strcmp(list + list_len - 4, ".lst");
    uint8_t *text;
    size_t size;
    comine_status st = comine_read_file(list, &text, &size);
    if (st != COMINE_OK) return st;
    char *base = opts && opts->root ? comine_strdup(opts->root) : comine_path_dirname(list);
    ds->impl = files_root_open(base);
    problem_log pl = {0};
    int cap = 0, with_flag = 0, max_label = -1;
    size_t nlines = 1;
    for (size_t i = 0; i < size; i++) nlines += text[i] == '\n';
    str_set set = {0};
    set.cap = 16;
    while (set.cap < nlines * 2) set.cap *= 2;
    set.keys = comine_calloc(set.cap, sizeof(char *));
    set.lines = comine_calloc(set.cap, sizeof(int));
    int *sample_line = NULL;
    char *p = (char *)text, *end = (char *)text + size;
    for (int line = 1; p < end; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *next = nl ? nl + 1 : end;
        char *e = nl ? nl : end;
        if (e > p && e[-1] == '\r') e--;
        *e = 0;
        char *s = p;
        p = next;
        if (strlen(s) != (size_t)(e - s)) {
            list_problem(&pl, "%s:%d: contains a NUL byte (not a text list)", list, line);
            continue;
        }
        char *t = s;
        while (*t == ' ' || *t == '\t') t++;
        if (*t == 0 || *t == '#') continue;
        char *fields[32];
        int nf = 0;
        char *q = s;
        for (;;) {
            if (nf < 32) fields[nf] = q;
            nf++;
            char *tab = strchr(q, '\t');
            if (!tab) break;
            *tab = 0;
            q = tab + 1;
        }
        long label, flag = COMINE_TRUTH_UNKNOWN;
        const char *rel = fields[0];
        if (lst) {
            char why[512];
            if (nf > 32 || !lst_line(fields, nf, &rel, &label, why, sizeof why)) {
                list_problem(&pl, "%s:%d: %s", list, line, nf > 32 ? "more than 32 tab-separated fields" : why);
                continue;
            }
        } else if (nf < 2 || nf > 3) {
            list_problem(&pl, "%s:%d: expected `path<TAB>label[<TAB>flag]`, found %d tab-separated field(s)%s", list,
                         line, nf, nf == 1 && strchr(s, ' ') ? " (fields are separated by TABs, not spaces)" : "");
            continue;
        }
        if (!rel[0]) {
            list_problem(&pl, "%s:%d: empty path", list, line);
            continue;
        }
        if (!lst && !comine_parse_int(fields[1], &label)) {
            list_problem(&pl, "%s:%d: label '%s' is not an integer", list, line, fields[1]);
            continue;
        }
        if (label < 0 || label > 100000000) {
            list_problem(&pl, "%s:%d: label %ld out of range (0 .. 100000000)", list, line, label);
            continue;
        }
        if (!lst && nf == 3) {
            if (!comine_parse_int(fields[2], &flag) || flag < 0 || flag > 2) {
                list_problem(&pl, "%s:%d: flag '%s' must be 0 (clean), 1 (label flip) or 2 (outlier)", list, line,
                             fields[2]);
                continue;
            }
            with_flag++;
        }
        char *path = comine_path_join(base, rel);
        struct stat sb;
        if (stat(path, &sb) != 0) {
            list_problem(&pl, "%s:%d: %s does not exist", list, line, path);
            free(path);
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            list_problem(&pl, "%s:%d: %s is a folder, not an image", list, line, path);
            free(path);
            continue;
        }
        add_sample(ds, &cap, path, (int)label, (int)flag);
        sample_line = comine_realloc(sample_line, sizeof(int) * cap);
        sample_line[ds->n - 1] = line;
        if (label > max_label) max_label = (int)label;
    }
    for (int i = 0; i < ds->n; i++) {
        int earlier = str_set_insert(&set, ds->samples[i].path, sample_line[i]);
        if (earlier)
            list_problem(&pl, "%s:%d: duplicate entry %s (first at line %d)", list, sample_line[i],
                         ds->samples[i].path, earlier);
    }
    free(set.keys);
    free(set.lines);
    free(sample_line);
    free(base);
    free(text);
    if (pl.count)
        return comine_fail(COMINE_ERR_FORMAT, "%s%s", pl.first,
                           pl.count > 1 ? " (and more problems in the list: see the messages above)" : "");
    if (ds->n == 0) return comine_fail(COMINE_ERR_FORMAT, "%s: no samples (empty list)", list);
    ds->num_classes = max_label + 1;
    ds->has_truth = with_flag == ds->n;
    return comine_dataset_check_gaps(ds, list);
}

/* ---- reading the files of samples ---------------------------------------------------- */

/* Asked the first time a file fills the buffer (or gives nothing, or fails): it must be a
 * regular file, and its size says how far to grow the buffer (*cap). */
static comine_status check_regular(size_t *cap, int fd, const char *name, const comine_bytes *buf)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) return comine_fail(COMINE_ERR_IO, "%s: not a regular file", name);
    size_t need = (size_t)sb.st_size + 2; /* the 0 after the data, and room to see the end */
    *cap = need > 2 * buf->cap ? need : 2 * buf->cap;
    return COMINE_OK;
}

/* The whole of the open file `fd` into buf with as few system calls as it allows: one read of
 * all the free capacity, which comes back short at the end of a regular file.  The type and
 * size are asked (fstat) only when the bytes fill the buffer, when there are none, or when
 * the read fails. */
static comine_status read_fd_into(comine_bytes *buf, int fd, const char *name)
{
    bool checked = false;
    size_t cap;
    comine_status st = COMINE_OK;
    buf->size = 0;
    for (;;) {
        if (buf->cap - buf->size < 2) {
            cap = 2 * buf->cap;
            if (!checked && (st = check_regular(&cap, fd, name, buf)) != COMINE_OK) break;
            checked = true;
            buf->data = comine_realloc(buf->data, cap);
            buf->cap = cap;
        }
        size_t room = buf->cap - 1 - buf->size;
        ssize_t got = read(fd, buf->data + buf->size, room);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int err = errno;
            if (checked || (st = check_regular(&cap, fd, name, buf)) == COMINE_OK)
                st = comine_fail(COMINE_ERR_IO, "%s: read error: %s", name, strerror(err));
            break;
        }
        buf->size += (size_t)got;
        if ((size_t)got < room) break;
    }
    /* Nothing from something that is not a regular file (a FIFO without a writer) fails too. */
    if (st == COMINE_OK && buf->size == 0 && !checked) st = check_regular(&cap, fd, name, buf);
    if (st != COMINE_OK) {
        buf->size = 0;
        return st;
    }
    buf->data[buf->size] = 0;
    return COMINE_OK;
}

static int files_file_at(const comine_dataset *ds, int i, const char **path)
{
    const files_root *root = ds->impl;
    const char *whole = ds->samples[i].path;
    if (root && root->fd >= 0 && !strncmp(whole, root->prefix, root->prefix_len) && whole[root->prefix_len]) {
        *path = whole + root->prefix_len;
        return root->fd;
    }
    *path = whole;
    return AT_FDCWD;
}

/* Sample i of a folder or list data set, opened below the open root when it lies under it (no
 * walk from "/" down to the root).  O_NONBLOCK: a FIFO fails instead of waiting for a writer. */
static comine_status files_read_into(const comine_dataset *ds, int i, comine_bytes *buf)
{
    const char *path = ds->samples[i].path, *below;
    const int dir = files_file_at(ds, i, &below);
    int fd = openat(dir, below, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        buf->size = 0;
        return comine_fail(COMINE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    comine_status st = read_fd_into(buf, fd, path);
    close(fd);
    return st;
}

static const char *files_sample_name(const comine_dataset *ds, int i)
{
    return ds->samples[i].path;
}

static bool is_folder(const char *path)
{
    return comine_path_is_dir(path);
}

/* Asked last: whatever no other reader takes is a list file. */
static bool is_anything(const char *path)
{
    (void)path;
    return true;
}

const comine_dataset_reader comine_reader_folder = {
    .kind = COMINE_DATASET_FOLDER,
    .name = "folder of identity folders",
    .claims = is_folder,
    .open = open_folder,
    .read_into = files_read_into,
    .sample_name = files_sample_name,
    .file_at = files_file_at,
    .close = files_close,
};

const comine_dataset_reader comine_reader_list = {
    .kind = COMINE_DATASET_LIST,
    .name = "list file",
    .claims = is_anything,
    .open = open_list,
    .read_into = files_read_into,
    .sample_name = files_sample_name,
    .file_at = files_file_at,
    .close = files_close,
};
