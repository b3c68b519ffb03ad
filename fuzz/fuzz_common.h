/* fuzz_common.h: helpers shared by the libFuzzer harnesses of fuzz/: a private scratch
 * folder per process (the parsers read files by path) and writing the input bytes to a
 * file in it.  Header-only; every harness includes it once. */
#ifndef COMINE_FUZZ_COMMON_H
#define COMINE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/core.h"

/* The process's scratch folder (created on first use, under $TMPDIR or /tmp). */
static const char *fz_dir(void)
{
    static char dir[512];
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/comine-fuzz.%ld", tmp && *tmp ? tmp : "/tmp", (long)getpid());
        if (comine_mkdirs(dir) != COMINE_OK) {
            fprintf(stderr, "fuzz: cannot create %s\n", dir);
            abort();
        }
        comine_log_set_level(COMINE_LOG_ERROR);
    }
    return dir;
}

/* dir/name as a malloc'd path. */
static char *fz_path(const char *name)
{
    return comine_path_join(fz_dir(), name);
}

/* Write bytes to dir/name; returns the malloc'd path. */
static char *fz_write(const char *name, const uint8_t *data, size_t size)
{
    char *path = fz_path(name);
    FILE *fp = fopen(path, "wb");
    if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0) {
        fprintf(stderr, "fuzz: cannot write %s\n", path);
        abort();
    }
    return path;
}

static void fz_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t fz_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
