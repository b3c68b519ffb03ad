/* util.c: logging, RNG (xoshiro256** + splitmix64), clock, threads, CRC-32, number parsing. */
#include "comine/core.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifndef COMINE_HAVE_OPENMP
#include <dlfcn.h>
#endif
#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif

static comine_log_level log_level = COMINE_LOG_INFO;

void comine_log_set_level(comine_log_level level) { log_level = level; }

static FILE *progress_log;
static bool progress_quiet;

void comine_progress_set_quiet(bool quiet) { progress_quiet = quiet; }

static void log_stamped(const char *text)
{
    if (!progress_log) return;
    time_t now = time(NULL);
    struct tm tm;
    char stamp[32];
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(progress_log, "%s %s\n", stamp, text);
    fflush(progress_log);
}

void comine_log(comine_log_level level, const char *fmt, ...)
{
    if (level < log_level) return;
    static const char *prefix[] = {"debug: ", "", "warning: ", "error: "};
    char line[2048], full[2100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "comine: %s%s", prefix[level], line);
    fprintf(stderr, "%s\n", full);
    log_stamped(full);
}

void comine_progress(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n') line[--n] = 0;
    time_t now = time(NULL);
    struct tm tm;
    char stamp[16];
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    if (!progress_quiet) fprintf(stderr, "%s %s\n", stamp, line);
    log_stamped(line);
}

comine_status comine_progress_log_open(const char *path)
{
    comine_progress_log_close();
    progress_log = fopen(path, "a");
    if (!progress_log) return comine_fail(COMINE_ERR_IO, "%s: cannot open for appending: %s", path, strerror(errno));
    return COMINE_OK;
}

void comine_progress_log_close(void)
{
    if (progress_log) fclose(progress_log);
    progress_log = NULL;
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void comine_rng_seed(comine_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t comine_rng_u64(comine_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t comine_rng_below(comine_rng *r, uint32_t n)
{
    COMINE_ASSERT(n > 0);
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = comine_rng_u64(r); while (x >= limit);
    return (uint32_t)(x % n);
}

float comine_rng_uniform(comine_rng *r)
{
    return (float)(comine_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

float comine_rng_normal(comine_rng *r)
{
    double u1 = ((comine_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0, 1] */
    double u2 = (comine_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

void comine_rng_shuffle_int(comine_rng *r, int *a, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = comine_rng_below(r, (uint32_t)i);
        int t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

double comine_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int comine_num_threads(void)
{
#ifdef COMINE_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Without OpenMP of its own, comine's kernels run on one thread, but the libraries it calls
 * may still run on an OpenMP runtime (Debian's oneDNN does, on libgomp): its thread count is
 * set through that runtime when one is loaded, so that --threads N holds for them too. */
void comine_set_num_threads(int n)
{
    if (n <= 0) return;
#ifdef COMINE_HAVE_OPENMP
    omp_set_num_threads(n);
#else
    static void (*set)(int);
    static bool looked;
    if (!looked) {
        void *self = dlopen(NULL, RTLD_LAZY); /* the program and the libraries loaded with it */
        if (self) *(void **)&set = dlsym(self, "omp_set_num_threads");
        looked = true;
    }
    if (set) set(n);
#endif
}

size_t comine_peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024;
}

uint32_t comine_crc32(uint32_t crc, const void *data, size_t size)
{
    static uint32_t table[256];
    static int ready = 0;
    if (!ready) { /* benign race: every thread writes the same values */
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < size; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

bool comine_parse_int(const char *s, long *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool comine_parse_double(const char *s, double *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}
