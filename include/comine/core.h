/* core.h: what every part of comine uses: status codes and error messages, checked
 * allocation and I/O, always-on assertions, logging, a seeded RNG, a clock, and atomic
 * file writes.  Nothing here knows about networks or data sets. */
#ifndef COMINE_CORE_H
#define COMINE_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>

/* ---- status ----------------------------------------------------------------------
 * Library functions that can fail on user input return a comine_status and leave a
 * message (naming the input file, line or record) in a thread-local buffer. */
typedef enum {
    COMINE_OK = 0,
    COMINE_ERR_IO,       /* a file could not be opened, read or written */
    COMINE_ERR_FORMAT,   /* an input file is malformed */
    COMINE_ERR_ARG,      /* an argument or option is invalid */
    COMINE_ERR_NOMEM,    /* allocation failed */
    COMINE_ERR_NUMERIC,  /* non-finite numbers */
    COMINE_ERR_INTERRUPTED
} comine_status;

/* Set the thread's error message (printf format); returns `code` for `return comine_fail(...)`. */
comine_status comine_fail(comine_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *comine_last_error(void);
const char *comine_status_name(comine_status s);

/* ---- assertions that stay on in release builds ---------------------------------- */
void comine_abort(const char *file, int line, const char *what) __attribute__((noreturn));
#define COMINE_ASSERT(cond) \
    do { if (!(cond)) comine_abort(__FILE__, __LINE__, #cond); } while (0)

/* ---- checked allocation and I/O (report the call site and abort) --------------- */
void *comine_malloc_check(size_t size, const char *file, int line);
void *comine_calloc_check(size_t n, size_t size, const char *file, int line);
void *comine_realloc_check(void *p, size_t size, const char *file, int line);
char *comine_strdup_check(const char *s, const char *file, int line);
#define comine_malloc(sz)      comine_malloc_check((sz), __FILE__, __LINE__)
#define comine_calloc(n, sz)   comine_calloc_check((n), (sz), __FILE__, __LINE__)
#define comine_realloc(p, sz)  comine_realloc_check((p), (sz), __FILE__, __LINE__)
#define comine_strdup(s)       comine_strdup_check((s), __FILE__, __LINE__)

/* 64-byte aligned float buffers, zero-filled; free with comine_free_floats. */
float *comine_alloc_floats_check(size_t n, const char *file, int line);
#define comine_alloc_floats(n) comine_alloc_floats_check((n), __FILE__, __LINE__)
void comine_free_floats(float *p);

/* Read a whole file; returns COMINE_OK and a malloc'd buffer (with a NUL after it). */
comine_status comine_read_file(const char *path, uint8_t **data, size_t *size);

/* Atomic writes: write to PATH.tmp.<pid>, fflush, fsync, rename over PATH (and fsync
 * the folder).  A failure (full disk, ...) leaves the previous PATH intact. */
typedef struct comine_atomic_file {
    FILE *fp;
    char *path;
    char *tmp_path;
} comine_atomic_file;
comine_status comine_atomic_open(comine_atomic_file *af, const char *path);
comine_status comine_atomic_commit(comine_atomic_file *af); /* closes; checks every error */
void comine_atomic_abort(comine_atomic_file *af);           /* closes and removes the temp */
/* Convenience: write one buffer atomically. */
comine_status comine_write_file_atomic(const char *path, const void *data, size_t size);

/* Write one CSV field, quoted as RFC 4180 when it holds a comma, a quote or a line break. */
void comine_csv_field(FILE *fp, const char *s);

/* mkdir -p; returns COMINE_OK when the folder exists afterwards. */
comine_status comine_mkdirs(const char *path);
bool comine_path_is_dir(const char *path);
bool comine_path_exists(const char *path);
/* Join a folder and a relative path into a malloc'd string (an absolute `rel` is kept). */
char *comine_path_join(const char *dir, const char *rel);
/* The folder part of a path, malloc'd ("." when none). */
char *comine_path_dirname(const char *path);

/* ---- logging ----------------------------------------------------------------------
 * Messages go to stderr with a prefix; COMINE_LOG_QUIET silences info. */
typedef enum { COMINE_LOG_DEBUG, COMINE_LOG_INFO, COMINE_LOG_WARN, COMINE_LOG_ERROR } comine_log_level;
void comine_log_set_level(comine_log_level level);
void comine_log(comine_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define comine_info(...)  comine_log(COMINE_LOG_INFO, __VA_ARGS__)
#define comine_warn(...)  comine_log(COMINE_LOG_WARN, __VA_ARGS__)
#define comine_error(...) comine_log(COMINE_LOG_ERROR, __VA_ARGS__)
/* Progress of long work: one line on stderr starting with the local time ("12:04:31 "), and
 * the same line with the date ("2026-12-05 12:04:31 ") in the progress log when one is open.
 * Log lines (comine_log) go to the progress log too.  One log at a time; opening appends. */
void comine_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
comine_status comine_progress_log_open(const char *path);
/* true: progress lines go to the progress log only, not to stderr (a quiet run still logs) */
void comine_progress_set_quiet(bool quiet);
void comine_progress_log_close(void);

/* ---- random numbers -----------------------------------------------------------------
 * xoshiro256** seeded through splitmix64 from (seed, stream): one stream per purpose
 * (init, shuffle, augment, dropout, noise injection) so that purposes never share draws. */
typedef struct comine_rng { uint64_t s[4]; } comine_rng;
enum {
    COMINE_STREAM_INIT = 1, COMINE_STREAM_SHUFFLE, COMINE_STREAM_AUGMENT, COMINE_STREAM_DROPOUT,
    COMINE_STREAM_NOISE, COMINE_STREAM_SYNTH, COMINE_STREAM_EVAL,
    COMINE_STREAM_PFC = 64 /* Partial FC's class draws (partial_fc.h); apart from dropout's 4 + 16 k */
};
void comine_rng_seed(comine_rng *r, uint64_t seed, uint64_t stream);
uint64_t comine_rng_u64(comine_rng *r);
uint32_t comine_rng_below(comine_rng *r, uint32_t n); /* uniform in [0, n), unbiased */
float comine_rng_uniform(comine_rng *r);               /* [0, 1) */
float comine_rng_normal(comine_rng *r);                /* N(0, 1), Box-Muller */
void comine_rng_shuffle_int(comine_rng *r, int *a, size_t n); /* Fisher-Yates */

/* ---- time and threads ---------------------------------------------------------------- */
double comine_now(void);          /* monotonic seconds */
int comine_num_threads(void);     /* OpenMP threads in use (1 without OpenMP) */
void comine_set_num_threads(int n); /* OpenMP threads; n <= 0 keeps the default (the backend sets BLAS) */
size_t comine_peak_rss_bytes(void);

/* ---- checksums ---------------------------------------------------------------------- */
uint32_t comine_crc32(uint32_t crc, const void *data, size_t size); /* start with crc = 0 */

/* ---- little-endian bytes (every comine file format is little-endian) ---------------- */
static inline uint32_t comine_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t comine_get_le64(const uint8_t *p)
{
    return (uint64_t)comine_get_le32(p) | (uint64_t)comine_get_le32(p + 4) << 32;
}
static inline void comine_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void comine_put_le64(uint8_t *p, uint64_t v)
{
    comine_put_le32(p, (uint32_t)v);
    comine_put_le32(p + 4, (uint32_t)(v >> 32));
}

/* Parse a whole string as a number; false on trailing garbage, overflow or empty input. */
bool comine_parse_int(const char *s, long *out);
bool comine_parse_double(const char *s, double *out);

#endif
