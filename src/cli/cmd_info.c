/* cmd_info.c: `comine info`: version, backend, threads, the libraries in use, whether MPI is
 * built in, and the GPUs (when comine is built with CUDA). */
#include <stdio.h>

#include "cli/args.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/dist.h"
#include "comine/version.h"
#ifdef COMINE_HAVE_CUDA
#include "backend/cuda/cuda.h"
#endif

const char comine_cmd_info_summary[] = "print the version, backend, threads, libraries and GPUs";

int comine_cmd_info(int argc, char **argv)
{
    int threads;
    cli_opt opts[] = {
        {"threads", ARG_INT, &threads, "0", "threads to report for (0 = all cores)", NULL, 0, 4096, false},
        {0},
    };
    int rc = cli_parse("info", comine_cmd_info_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    const comine_backend *be = comine_backend_cpu();
    comine_backend_set_threads(be, threads);
    printf("comine %s\nbackend: %s\nthreads: %d\n", comine_version(), comine_backend_name(be), comine_num_threads());
#ifdef COMINE_HAVE_OPENMP
    printf("openmp: yes\n");
#else
    printf("openmp: no\n");
#endif
    printf("mpi: %s\n", comine_dist_built_with_mpi() ? "yes (train and bench under mpirun/srun)" : "no (built without MPI)");
#ifdef COMINE_HAVE_CUDA
    char why[256] = "", line[256];
    int n = comine_cuda_device_count(why, sizeof why);
    comine_cuda_versions(line, sizeof line);
    printf("cuda: yes (%s)\n", line);
    if (n == 0) printf("gpus: none (%s)\n", why);
    for (int d = 0; d < n; d++) {
        if (comine_cuda_device_describe(d, line, sizeof line) == COMINE_OK)
            printf("gpu cuda:%d: %s\n", d, line);
        else
            printf("gpu cuda:%d: %s\n", d, comine_last_error());
    }
#else
    printf("cuda: no (built without CUDA)\n");
#endif
    return 0;
}
