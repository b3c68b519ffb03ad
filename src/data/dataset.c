/* dataset.c: opening a face data set: a folder of identity folders (labels by sorted
 * folder name), a list file (`path<TAB>label[<TAB>flag]`), or insightface/MXNet RecordIO
 * (recordio.c).  Problems a human must fix (list syntax, missing files, label gaps,
 * duplicates) are errors at open time, each naming the file and line; files that merely
 * are not images, and empty identity folders, are skipped and listed in ds->problems.
 * Whether an image decodes is only known at decode time (the loader, inspect, pack).
 * Folder and list data sets keep their root folder open: a sample under it is opened by
 * its path below the root (openat), which spares the kernel the walk down to the root.
 * Also: the LFW people-file parser. */
#include "data_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* At most this many problems are logged one by one at open time before the error returns. */
#define MAX_LOGGED 20

void comine_dataset_add_problem(comine_dataset *ds, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ds->problems = comine_realloc(ds->problems, sizeof(char *) * (ds->num_problems + 1));
    ds->problems[ds->num_problems++] = comine_strdup(buf);
}

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

void comine_dataset_free(comine_dataset *ds)
{
    if (!ds) return;
    for (int i = 0; i < ds->n; i++) free(ds->samples[i].path);
    free(ds->samples);
    if (ds->class_names)
        for (int c = 0; c < ds->num_classes; c++) free(ds->class_names[c]);
    free(ds->class_names);
    for (int i = 0; i < ds->num_problems; i++) free(ds->problems[i]);
    free(ds->problems);
    if (ds->kind == COMINE_DATASET_RECORDIO) {
        if (ds->impl) comine_recordio_close(ds->impl);
    } else {
        files_root_close(ds->impl);
    }
    free(ds->source);
    free(ds);
}

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

static comine_status open_folder(comine_dataset *ds, const char *root)
{
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
    if (pl->count < MAX_LOGGED) comine_error("%s", buf);
    pl->count++;
}

comine_status comine_dataset_check_gaps(const comine_dataset *ds, const char *source)
{
    if (ds->num_classes <= 0) return COMINE_OK;
    if (ds->num_classes > 4 * ds->n + 4096) {
        /* Fewer samples than labels: gaps for sure; say so without counting to a huge label. */
        int top = 0;
        for (int i = 1; i < ds->n; i++)
            if (ds->samples[i].label > ds->samples[top].label) top = i;
        return comine_fail(COMINE_ERR_FORMAT,
                           "%s: labels must be 0..C-1 without gaps, but the largest label is %d with only %d sample(s) "
                           "(%s)", source, ds->samples[top].label, ds->n, comine_dataset_sample_name(ds, top));
    }
    int *seen = comine_calloc(ds->num_classes, sizeof(int));
    for (int i = 0; i < ds->n; i++) seen[ds->samples[i].label]++;
    int missing = 0;
    char buf[512];
    size_t k = 0;
    buf[0] = 0;
    for (int c = 0; c < ds->num_classes; c++) {
        if (seen[c]) continue;
        if (missing < 12 && k < sizeof buf - 32) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", missing ? ", " : "", c);
        missing++;
    }
    free(seen);
    if (!missing) return COMINE_OK;
    return comine_fail(COMINE_ERR_FORMAT,
                       "%s: labels must be 0..%d without gaps, but %d label(s) have no samples: %s%s",
                       source, ds->num_classes - 1, missing, buf, missing > 12 ? ", ..." : "");
}

static comine_status open_list(comine_dataset *ds, const char *list, const comine_dataset_opts *opts)
{
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
        char *fields[4];
        int nf = 0;
        char *q = s;
        for (;;) {
            if (nf < 4) fields[nf] = q;
            nf++;
            char *tab = strchr(q, '\t');
            if (!tab) break;
            *tab = 0;
            q = tab + 1;
        }
        if (nf < 2 || nf > 3) {
            list_problem(&pl, "%s:%d: expected `path<TAB>label[<TAB>flag]`, found %d tab-separated field(s)%s", list,
                         line, nf, nf == 1 && strchr(s, ' ') ? " (fields are separated by TABs, not spaces)" : "");
            continue;
        }
        long label, flag = COMINE_TRUTH_UNKNOWN;
        if (!fields[0][0]) {
            list_problem(&pl, "%s:%d: empty path", list, line);
            continue;
        }
        if (!comine_parse_int(fields[1], &label)) {
            list_problem(&pl, "%s:%d: label '%s' is not an integer", list, line, fields[1]);
            continue;
        }
        if (label < 0 || label > 100000000) {
            list_problem(&pl, "%s:%d: label %ld out of range (0 .. 100000000)", list, line, label);
            continue;
        }
        if (nf == 3) {
            if (!comine_parse_int(fields[2], &flag) || flag < 0 || flag > 2) {
                list_problem(&pl, "%s:%d: flag '%s' must be 0 (clean), 1 (label flip) or 2 (outlier)", list, line,
                             fields[2]);
                continue;
            }
            with_flag++;
        }
        char *path = comine_path_join(base, fields[0]);
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

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

comine_status comine_dataset_open(comine_dataset **out, const char *path, const comine_dataset_opts *opts)
{
    *out = NULL;
    if (!path || !path[0]) return comine_fail(COMINE_ERR_ARG, "no data set path given");
    if (!comine_path_exists(path)) return comine_fail(COMINE_ERR_IO, "%s: does not exist", path);
    comine_dataset *ds = comine_calloc(1, sizeof *ds);
    ds->source = comine_strdup(path);
    comine_status st;
    if (comine_path_is_dir(path)) {
        /* An insightface data set folder holds train.rec + train.idx. */
        char *rec = comine_path_join(path, "train.rec");
        char *idx = comine_path_join(path, "train.idx");
        bool is_rec = comine_path_exists(rec) && comine_path_exists(idx);
        free(idx);
        if (is_rec) {
            ds->kind = COMINE_DATASET_RECORDIO;
            st = comine_recordio_open_dataset(ds, rec);
        } else {
            ds->kind = COMINE_DATASET_FOLDER;
            st = open_folder(ds, path);
        }
        free(rec);
    } else if (ends_with(path, ".rec") || ends_with(path, ".idx")) {
        ds->kind = COMINE_DATASET_RECORDIO;
        char *rec = comine_strdup(path);
        memcpy(rec + strlen(rec) - 4, ".rec", 4);
        st = comine_recordio_open_dataset(ds, rec);
        free(rec);
    } else {
        ds->kind = COMINE_DATASET_LIST;
        st = open_list(ds, path, opts);
    }
    if (st != COMINE_OK) {
        comine_dataset_free(ds);
        return st;
    }
    for (int i = 0; i < ds->num_problems && i < MAX_LOGGED; i++) comine_warn("%s", ds->problems[i]);
    if (ds->num_problems > MAX_LOGGED) comine_warn("... %d more skipped files", ds->num_problems - MAX_LOGGED);
    *out = ds;
    return COMINE_OK;
}

const char *comine_dataset_sample_name(const comine_dataset *ds, int i)
{
    static _Thread_local char buf[4096];
    if (ds->kind != COMINE_DATASET_RECORDIO) return ds->samples[i].path;
    const comine_recordio_state *rs = ds->impl;
    snprintf(buf, sizeof buf, "%s record %s (offset %lld)", rs->rec_path, ds->samples[i].path + 4,
             (long long)ds->samples[i].rec_offset);
    return buf;
}

void comine_bytes_free(comine_bytes *b)
{
    if (!b) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

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

int comine_dataset_sample_at(const comine_dataset *ds, int i, const char **path)
{
    const files_root *root = ds->kind != COMINE_DATASET_RECORDIO ? ds->impl : NULL;
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
static comine_status read_sample_file(const comine_dataset *ds, int i, comine_bytes *buf)
{
    const char *path = ds->samples[i].path, *below;
    const int dir = comine_dataset_sample_at(ds, i, &below);
    int fd = openat(dir, below, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        buf->size = 0;
        return comine_fail(COMINE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    comine_status st = read_fd_into(buf, fd, path);
    close(fd);
    return st;
}

comine_status comine_dataset_read_into(const comine_dataset *ds, int i, comine_bytes *buf)
{
    COMINE_ASSERT(i >= 0 && i < ds->n);
    if (ds->kind != COMINE_DATASET_RECORDIO) return read_sample_file(ds, i, buf);
    uint8_t *data;
    size_t size;
    buf->size = 0;
    comine_status st = comine_recordio_read_payload(ds, i, &data, &size);
    if (st != COMINE_OK) return st;
    if (buf->cap < size + 1) {
        free(buf->data);
        buf->data = comine_malloc(size + 1);
        buf->cap = size + 1;
    }
    memcpy(buf->data, data, size);
    buf->data[size] = 0;
    buf->size = size;
    free(data);
    return COMINE_OK;
}

comine_status comine_dataset_read(const comine_dataset *ds, int i, uint8_t **data, size_t *size)
{
    COMINE_ASSERT(i >= 0 && i < ds->n);
    *data = NULL;
    *size = 0;
    if (ds->kind == COMINE_DATASET_RECORDIO) return comine_recordio_read_payload(ds, i, data, size);
    /* From an empty buffer the first step is the fstat, so the bytes get an exact allocation. */
    comine_bytes buf = {0};
    comine_status st = read_sample_file(ds, i, &buf);
    if (st != COMINE_OK) {
        comine_bytes_free(&buf);
        return st;
    }
    *data = buf.data;
    *size = buf.size;
    return COMINE_OK;
}

comine_status comine_dataset_write_classes(const comine_dataset *ds, const char *path)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    for (int c = 0; c < ds->num_classes; c++) {
        if (ds->class_names)
            fprintf(af.fp, "%d\t%s\n", c, ds->class_names[c]);
        else
            fprintf(af.fp, "%d\t%d\n", c, c);
    }
    return comine_atomic_commit(&af);
}

/* ---- LFW people files -------------------------------------------------------------------- */

void comine_people_free(comine_people *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->names[i]);
    free(p->names);
    free(p->counts);
    memset(p, 0, sizeof *p);
}

comine_status comine_people_load(comine_people *out, const char *path)
{
    memset(out, 0, sizeof *out);
    uint8_t *text;
    size_t size;
    comine_status st = comine_read_file(path, &text, &size);
    if (st != COMINE_OK) return st;
    char *save = NULL;
    long declared = -1;
    int line = 0, cap = 0;
    st = COMINE_OK;
    for (char *s = strtok_r((char *)text, "\n", &save); s; s = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t len = strlen(s);
        if (len && s[len - 1] == '\r') s[--len] = 0;
        if (!len) continue;
        if (declared < 0) {
            if (!comine_parse_int(s, &declared) || declared < 0) {
                st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected the number of people, found '%s'", path, line, s);
                break;
            }
            continue;
        }
        char *tab = strchr(s, '\t');
        long n;
        if (!tab || tab == s || !comine_parse_int(tab + 1, &n) || n < 1) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected `Name<TAB>images` (images >= 1), found '%s'", path,
                             line, s);
            break;
        }
        *tab = 0;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 256;
            out->names = comine_realloc(out->names, sizeof(char *) * cap);
            out->counts = comine_realloc(out->counts, sizeof(int) * cap);
        }
        out->names[out->n] = comine_strdup(s);
        out->counts[out->n++] = (int)n;
    }
    free(text);
    if (st == COMINE_OK && declared < 0) st = comine_fail(COMINE_ERR_FORMAT, "%s: empty people file", path);
    if (st == COMINE_OK && declared != out->n)
        st = comine_fail(COMINE_ERR_FORMAT, "%s: the first line says %ld people, the file lists %d", path, declared,
                         out->n);
    if (st != COMINE_OK) comine_people_free(out);
    return st;
}

comine_status comine_dataset_decode(const comine_dataset *ds, int i, comine_image *img)
{
    uint8_t *data;
    size_t size;
    comine_status st = comine_dataset_read(ds, i, &data, &size);
    if (st != COMINE_OK) return st;
    st = comine_image_decode(img, data, size, comine_dataset_sample_name(ds, i));
    free(data);
    return st;
}
