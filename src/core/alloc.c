/* alloc.c: checked allocation; a failure reports the call site and aborts. */
#include "comine/core.h"

#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t size, const char *file, int line)
{
    fprintf(stderr, "comine: out of memory allocating %zu bytes at %s:%d\n", size, file, line);
    exit(3);
}

void *comine_malloc_check(size_t size, const char *file, int line)
{
    void *p = malloc(size ? size : 1);
    if (!p) out_of_memory(size, file, line);
    return p;
}

void *comine_calloc_check(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) out_of_memory(n * size, file, line);
    return p;
}

void *comine_realloc_check(void *p, size_t size, const char *file, int line)
{
    void *q = realloc(p, size ? size : 1);
    if (!q) out_of_memory(size, file, line);
    return q;
}

char *comine_strdup_check(const char *s, const char *file, int line)
{
    size_t n = strlen(s) + 1;
    char *d = comine_malloc_check(n, file, line);
    memcpy(d, s, n);
    return d;
}

float *comine_alloc_floats_check(size_t n, const char *file, int line)
{
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    if (bytes == 0) bytes = 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) out_of_memory(bytes, file, line);
    memset(p, 0, bytes);
    return p;
}

void comine_free_floats(float *p)
{
    free(p);
}
