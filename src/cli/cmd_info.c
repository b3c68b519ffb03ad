/* cmd_info.c: `comine info`: version, backend, threads and the libraries in use. */
#include <stdio.h>

#include "cli/args.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/version.h"

const char comine_cmd_info_summary[] = "print the version, backend, threads and libraries";

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
    return 0;
}
