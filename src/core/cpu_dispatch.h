/* cpu_dispatch.h: per-CPU versions of comine's own kernels (the CPU backend's, the JPEG
 * loader's), so that a portable build (baseline x86-64, no -march=native) runs them as fast
 * as a native one.
 *
 * COMINE_CPU_CLONES before a function asks GCC for three versions of it, compiled for
 * x86-64-v4 (AVX-512), x86-64-v3 (AVX2, FMA) and the build's own target, and for one
 * resolver (a glibc ifunc) that picks the one the CPU runs at load time.  The OpenMP
 * regions inside such a function are cloned with it (GCC 12 outlines them before it
 * clones, and the outlined bodies keep the attribute), so `omp parallel for` loops
 * vectorise for the wider registers too.  The kernels are written without FMA
 * contraction (-std=c11 implies -ffp-contract=off) and without reassociation: every
 * version computes the same floats.
 * It expands to nothing where it cannot work or is not needed: other CPUs and
 * compilers (clang 14 clones a function but not its outlined OpenMP regions, which keep
 * the baseline target: docs/PERFORMANCE.md), a build that already targets AVX2 or better
 * (-march=native on a recent CPU), and sanitizer builds (an ifunc resolver runs before the
 * sanitizer's runtime).
 *
 * comine_cpu_x86_level() is for the kernels written with intrinsics (cpu_conv_pairs.c,
 * cpu_conv_dw.c, image_jpeg_input.c, ...):
 * 4 where the CPU and the OS run AVX-512F, 3 where they run AVX2 and FMA, else 1.  The
 * environment variable COMINE_CPU_LEVEL (1, 3 or 4) lowers it, never raises it: the tests
 * run the AVX2 kernels on an AVX-512 CPU that way (the target_clones versions are picked
 * once at load time and are not affected; they compute the same floats anyway). */
#ifndef COMINE_CPU_DISPATCH_H
#define COMINE_CPU_DISPATCH_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define COMINE_CPU_X86 1
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COMINE_CPU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define COMINE_CPU_SANITIZED 1
#endif
#endif

#if defined(COMINE_CPU_X86) && !defined(__clang__) && __GNUC__ >= 12 && defined(__gnu_linux__) && \
    !defined(__AVX2__) && !defined(COMINE_CPU_SANITIZED)
#define COMINE_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define COMINE_CPU_CLONES
#endif

#ifdef COMINE_CPU_X86
#include <stdlib.h>

static inline int comine_cpu_x86_level(void)
{
    __builtin_cpu_init();
    int level = 1;
    if (__builtin_cpu_supports("avx512f")) level = 4;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 3;
    const char *cap = getenv("COMINE_CPU_LEVEL");
    if (cap && *cap >= '1' && *cap <= '4' && cap[1] == '\0' && *cap - '0' < level) level = *cap - '0';
    return level;
}
#endif

#endif
