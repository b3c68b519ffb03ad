/* file.c: whole-file reads, atomic writes (temp + fsync + rename), folders and paths. */
#include "comine/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

comine_status comine_read_file(const char *path, uint8_t **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return comine_fail(COMINE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return comine_fail(COMINE_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = comine_malloc(n + 1);
    size_t got = n ? fread(buf, 1, n, fp) : 0;
    int err = ferror(fp);
    fclose(fp);
    if (got != n || err) {
        free(buf);
        return comine_fail(COMINE_ERR_IO, "%s: read error (%zu of %zu bytes)", path, got, n);
    }
    buf[n] = 0;
    *data = buf;
    *size = n;
    return COMINE_OK;
}

static void fsync_dir_of(const char *path)
{
    char *dir = comine_path_dirname(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

comine_status comine_atomic_open(comine_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->path = comine_strdup(path);
    af->tmp_path = comine_malloc(n);
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        comine_status st = comine_fail(COMINE_ERR_IO, "%s: cannot create: %s", af->tmp_path, strerror(errno));
        free(af->path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return st;
    }
    return COMINE_OK;
}

static void atomic_release(comine_atomic_file *af)
{
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

comine_status comine_atomic_commit(comine_atomic_file *af)
{
    if (!af->fp) return comine_fail(COMINE_ERR_IO, "atomic write: file not open");
    int bad = ferror(af->fp);
    if (fflush(af->fp) != 0) bad = 1;
    int saved_errno = errno;
    if (!bad && fsync(fileno(af->fp)) != 0) {
        bad = 1;
        saved_errno = errno;
    }
    if (fclose(af->fp) != 0 && !bad) {
        bad = 1;
        saved_errno = errno;
    }
    af->fp = NULL;
    if (bad) {
        unlink(af->tmp_path);
        comine_status st = comine_fail(COMINE_ERR_IO, "%s: write failed (%s); the previous file is kept",
                                       af->path, strerror(saved_errno ? saved_errno : EIO));
        atomic_release(af);
        return st;
    }
    if (rename(af->tmp_path, af->path) != 0) {
        comine_status st = comine_fail(COMINE_ERR_IO, "%s: cannot rename into place: %s", af->path, strerror(errno));
        unlink(af->tmp_path);
        atomic_release(af);
        return st;
    }
    fsync_dir_of(af->path);
    atomic_release(af);
    return COMINE_OK;
}

void comine_atomic_abort(comine_atomic_file *af)
{
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    atomic_release(af);
}

comine_status comine_write_file_atomic(const char *path, const void *data, size_t size)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st != COMINE_OK) return st;
    if (size && fwrite(data, 1, size, af.fp) != size) {
        int e = errno;
        comine_atomic_abort(&af);
        return comine_fail(COMINE_ERR_IO, "%s: write failed (%s); the previous file is kept", path, strerror(e));
    }
    return comine_atomic_commit(&af);
}

bool comine_path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool comine_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

comine_status comine_mkdirs(const char *path)
{
    char *p = comine_strdup(path);
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == 0) {
            char c = p[i];
            p[i] = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                comine_status st = comine_fail(COMINE_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
                free(p);
                return st;
            }
            p[i] = c;
        }
    }
    free(p);
    if (!comine_path_is_dir(path)) return comine_fail(COMINE_ERR_IO, "%s: exists and is not a folder", path);
    return COMINE_OK;
}

char *comine_path_join(const char *dir, const char *rel)
{
    if (rel[0] == '/' || !dir || !dir[0]) return comine_strdup(rel);
    size_t a = strlen(dir), b = strlen(rel);
    char *s = comine_malloc(a + b + 2);
    memcpy(s, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') s[k++] = '/';
    memcpy(s + k, rel, b + 1);
    return s;
}

char *comine_path_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return comine_strdup(".");
    if (slash == path) return comine_strdup("/");
    size_t n = (size_t)(slash - path);
    char *s = comine_malloc(n + 1);
    memcpy(s, path, n);
    s[n] = 0;
    return s;
}

void comine_csv_field(FILE *fp, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, fp);
        return;
    }
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"') fputc('"', fp);
        fputc(*s, fp);
    }
    fputc('"', fp);
}
