/* dist.c: dist.h over MPI_COMM_WORLD (COMINE_HAVE_MPI), or one rank without it.  MPI is
 * initialised only when a launcher started the process, so a plain `comine train` never
 * touches MPI and stays the serial program it always was. */
#include "comine/dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef COMINE_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;
static bool g_started = false, g_mpi = false;
static double g_bytes_sent = 0;

bool comine_dist_built_with_mpi(void)
{
#ifdef COMINE_HAVE_MPI
    return true;
#else
    return false;
#endif
}

int comine_dist_rank(void) { return g_rank; }
int comine_dist_size(void) { return g_size; }
double comine_dist_bytes_sent(void) { return g_bytes_sent; }

void comine_dist_slice(int n, int r, int P, int *lo, int *hi)
{
    *lo = (int)((long long)n * r / P);
    *hi = (int)((long long)n * (r + 1) / P);
}

/* The number of processes a launcher says it started (0: no launcher seen), and which
 * variable said so. */
static int launcher_size(const char **name)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            *name = vars[i];
            return atoi(v) > 0 ? atoi(v) : 1;
        }
    }
    return 0;
}

void comine_dist_abort(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "comine: rank %d of %d: %s\n", g_rank, g_size, msg);
    fflush(stderr);
#ifdef COMINE_HAVE_MPI
    if (g_mpi) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    exit(1);
}

#ifdef COMINE_HAVE_MPI
/* Every MPI call goes through this: a failure stops the job naming the rank, the call and
 * where it was made. */
#define MPI_CHECK(call)                                                                                \
    do {                                                                                               \
        int mpi_rc_ = (call);                                                                          \
        if (mpi_rc_ != MPI_SUCCESS) {                                                                  \
            char mpi_msg_[MPI_MAX_ERROR_STRING];                                                       \
            int mpi_len_ = 0;                                                                          \
            MPI_Error_string(mpi_rc_, mpi_msg_, &mpi_len_);                                            \
            comine_dist_abort("%s failed at %s:%d: %s", #call, __FILE__, __LINE__, mpi_msg_);          \
        }                                                                                              \
    } while (0)

/* MPI counts are int: long arrays go in pieces. */
#define MPI_CHUNK ((size_t)1 << 28)
#endif

comine_status comine_dist_init(void)
{
    if (g_started) return COMINE_OK;
    const char *var = NULL;
    int launched = launcher_size(&var);
#ifdef COMINE_HAVE_MPI
    if (launched > 0) {
        int provided = 0;
        MPI_CHECK(MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided));
        g_mpi = true;
        MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
        MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &g_rank));
        MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &g_size));
    }
#else
    if (launched > 1)
        return comine_fail(COMINE_ERR_ARG,
                           "started as one of %d processes (%s=%d), but this comine was built without MPI: "
                           "the processes would each write the same run folder; rebuild with -DCOMINE_MPI=ON "
                           "(Debian: libopenmpi-dev) or run one process",
                           launched, var, launched);
#endif
    g_started = true;
    return COMINE_OK;
}

void comine_dist_finalize(void)
{
#ifdef COMINE_HAVE_MPI
    if (g_mpi) MPI_Finalize();
    g_mpi = false;
#endif
}

void comine_dist_allreduce_sum_f32(float *x, size_t n)
{
    if (g_size > 1) g_bytes_sent += (double)n * sizeof *x;
#ifdef COMINE_HAVE_MPI
    if (g_size > 1)
        for (size_t at = 0; at < n; at += MPI_CHUNK) {
            size_t len = n - at < MPI_CHUNK ? n - at : MPI_CHUNK;
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x + at, (int)len, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
        }
#else
    (void)x;
#endif
}

void comine_dist_allreduce_sum_f64(double *x, size_t n)
{
    if (g_size > 1) g_bytes_sent += (double)n * sizeof *x;
#ifdef COMINE_HAVE_MPI
    if (g_size > 1)
        for (size_t at = 0; at < n; at += MPI_CHUNK) {
            size_t len = n - at < MPI_CHUNK ? n - at : MPI_CHUNK;
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x + at, (int)len, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
        }
#else
    (void)x;
#endif
}

void comine_dist_allreduce_max_f32(float *x, size_t n)
{
    if (g_size > 1) g_bytes_sent += (double)n * sizeof *x;
#ifdef COMINE_HAVE_MPI
    if (g_size > 1)
        for (size_t at = 0; at < n; at += MPI_CHUNK) {
            size_t len = n - at < MPI_CHUNK ? n - at : MPI_CHUNK;
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x + at, (int)len, MPI_FLOAT, MPI_MAX, MPI_COMM_WORLD));
        }
#else
    (void)x;
#endif
}

void comine_dist_allreduce_max_f64(double *x, size_t n)
{
    if (g_size > 1) g_bytes_sent += (double)n * sizeof *x;
#ifdef COMINE_HAVE_MPI
    if (g_size > 1)
        for (size_t at = 0; at < n; at += MPI_CHUNK) {
            size_t len = n - at < MPI_CHUNK ? n - at : MPI_CHUNK;
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x + at, (int)len, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
        }
#else
    (void)x;
#endif
}

void comine_dist_send(const void *buf, size_t bytes, int to)
{
    g_bytes_sent += (double)bytes;
#ifdef COMINE_HAVE_MPI
    for (size_t at = 0; at < bytes; at += MPI_CHUNK) {
        size_t len = bytes - at < MPI_CHUNK ? bytes - at : MPI_CHUNK;
        MPI_CHECK(MPI_Send((const char *)buf + at, (int)len, MPI_BYTE, to, 0, MPI_COMM_WORLD));
    }
#else
    (void)buf;
    (void)to;
    comine_dist_abort("comine_dist_send: one rank has no one to send to");
#endif
}

void comine_dist_recv(void *buf, size_t bytes, int from)
{
#ifdef COMINE_HAVE_MPI
    for (size_t at = 0; at < bytes; at += MPI_CHUNK) {
        size_t len = bytes - at < MPI_CHUNK ? bytes - at : MPI_CHUNK;
        MPI_CHECK(MPI_Recv((char *)buf + at, (int)len, MPI_BYTE, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    }
#else
    (void)buf;
    (void)bytes;
    (void)from;
    comine_dist_abort("comine_dist_recv: one rank has no one to receive from");
#endif
}

void comine_dist_allreduce_max_i32(int *x, size_t n)
{
    if (g_size > 1) g_bytes_sent += (double)n * sizeof *x;
#ifdef COMINE_HAVE_MPI
    if (g_size > 1) MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
#else
    (void)x;
#endif
}

void comine_dist_allgatherv(void *out, const void *in, const int *counts, size_t elem_size)
{
    size_t offset = 0;
    for (int r = 0; r < g_rank; r++) offset += (size_t)counts[r];
    size_t mine = (size_t)counts[g_rank] * elem_size;
    if (g_size > 1) g_bytes_sent += (double)mine;
    char *dst = (char *)out + offset * elem_size;
    if (g_size == 1 || !g_mpi) {
        if (dst != in && mine) memmove(dst, in, mine);
        return;
    }
#ifdef COMINE_HAVE_MPI
    int rc_counts[g_size], displs[g_size];
    int at = 0;
    for (int r = 0; r < g_size; r++) {
        rc_counts[r] = (int)((size_t)counts[r] * elem_size);
        displs[r] = at;
        at += rc_counts[r];
    }
    if (dst != in && mine) memmove(dst, in, mine);
    MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, rc_counts, displs, MPI_BYTE, MPI_COMM_WORLD));
#endif
}

void comine_dist_broadcast(void *buf, size_t bytes, int root)
{
    if (g_rank == root && g_size > 1) g_bytes_sent += (double)bytes;
#ifdef COMINE_HAVE_MPI
    if (g_size > 1)
        for (size_t at = 0; at < bytes; at += MPI_CHUNK) {
            size_t len = bytes - at < MPI_CHUNK ? bytes - at : MPI_CHUNK;
            MPI_CHECK(MPI_Bcast((char *)buf + at, (int)len, MPI_BYTE, root, MPI_COMM_WORLD));
        }
#else
    (void)buf;
#endif
}

void comine_dist_barrier(void)
{
#ifdef COMINE_HAVE_MPI
    if (g_size > 1) MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
#endif
}

/* ---- bucketed all-reduce ------------------------------------------------------------------ */

struct comine_dist_buckets {
    size_t bucket;      /* floats per bucket (<= MPI_CHUNK) */
    float *x;
    size_t n;
    size_t started;     /* buckets started, counted from the end of x */
    size_t count, cap;  /* buckets of x; requests held */
#ifdef COMINE_HAVE_MPI
    MPI_Request *req;
#endif
};

comine_dist_buckets *comine_dist_buckets_create(size_t bucket)
{
    comine_dist_buckets *b = comine_calloc(1, sizeof *b);
    b->bucket = bucket < 1 ? 1 : bucket > ((size_t)1 << 28) ? (size_t)1 << 28 : bucket;
    return b;
}

void comine_dist_buckets_free(comine_dist_buckets *b)
{
    if (!b) return;
#ifdef COMINE_HAVE_MPI
    free(b->req);
#endif
    free(b);
}

void comine_dist_buckets_begin(comine_dist_buckets *b, float *x, size_t n)
{
    COMINE_ASSERT(b->x == NULL || b->started == b->count); /* the last one finished */
    b->x = x;
    b->n = n;
    b->started = 0;
    b->count = (n + b->bucket - 1) / b->bucket;
#ifdef COMINE_HAVE_MPI
    if (b->count > b->cap) {
        b->cap = b->count;
        b->req = comine_realloc(b->req, b->cap * sizeof *b->req);
    }
#endif
}

void comine_dist_buckets_ready(comine_dist_buckets *b, size_t from)
{
    if (g_size == 1 || !g_mpi) {
        b->started = b->count;
        return;
    }
#ifdef COMINE_HAVE_MPI
    while (b->started < b->count) {
        size_t hi = b->n - b->started * b->bucket, lo = hi > b->bucket ? hi - b->bucket : 0;
        if (lo < from) break;
        g_bytes_sent += (double)(hi - lo) * sizeof(float);
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, b->x + lo, (int)(hi - lo), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                                 &b->req[b->started]));
        b->started++;
    }
    /* let the started ones progress (Open MPI moves them inside MPI calls) */
    int done = 0;
    if (b->started > 0) MPI_CHECK(MPI_Testall((int)b->started, b->req, &done, MPI_STATUSES_IGNORE));
#endif
}

void comine_dist_buckets_finish(comine_dist_buckets *b)
{
    comine_dist_buckets_ready(b, 0);
#ifdef COMINE_HAVE_MPI
    if (g_size > 1 && g_mpi && b->count > 0) MPI_CHECK(MPI_Waitall((int)b->count, b->req, MPI_STATUSES_IGNORE));
#endif
}
