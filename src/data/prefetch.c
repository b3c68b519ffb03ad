/* prefetch.c: the files of a batch of samples read with a few system calls for the whole
 * batch.  Read one by one, a file costs three system calls (openat, read, close), each a
 * microsecond or more in a virtual machine, about as much as the rest of its loading; here the
 * opens, then the reads, then the closes of the batch each go to the kernel at once through
 * io_uring (Linux 5.6 or later).  The reads take only what the page cache holds (RWF_NOWAIT:
 * no wait on a disk, nor on a FIFO), and a second read checks that the first one reached the
 * end of the file.  Only that plain case is served: a file that cannot be opened, is not
 * cached, does not fit its share of the buffer, is empty or fails in any way is left to
 * comine_dataset_read_into, which reads it again (waiting on the disk as it must) and reports
 * what is wrong with it.  Where io_uring is missing or refused (another system, an old kernel,
 * a seccomp filter, the io_uring_disabled sysctl, a file system without RWF_NOWAIT) there is
 * no prefetching and the loader reads file by file.  Only data sets whose samples are files
 * of their own are read here (their reader's file_at says where each file opens from), never
 * RecordIO.  One prefetcher belongs to one thread. */
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/io_uring.h>) && __has_include(<linux/fs.h>)
#include <sys/syscall.h>
#if defined(__NR_io_uring_setup) && defined(__NR_io_uring_enter)
#define HAVE_IO_URING 1
#endif
#endif
#endif

#ifdef HAVE_IO_URING

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <unistd.h>

/* Buffer bytes per file at first, and the most the buffer of a batch grows to. */
#define FIRST_SHARE ((size_t)32 << 10)
#define MAX_BUFFER ((size_t)64 << 20)
/* A result slot whose operation did not run. */
#define NOT_RUN INT_MIN

struct comine_prefetch {
    int ring;                       /* the io_uring descriptor */
    void *sq_map, *cq_map, *sqe_map;
    size_t sq_map_size, cq_map_size, sqe_map_size;
    unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
    struct io_uring_sqe *sqes;
    struct io_uring_cqe *cqes;
    unsigned queued;                /* operations written since the last submission */
    bool broken;                    /* the kernel refused: nothing is read here any more */
    int max_files, count;
    size_t share;                   /* buffer bytes per file */
    bool grow;                      /* a file of the last batch was over its share */
    uint8_t *buf;                   /* (max_files, share) */
    int *fd;                        /* (max_files) open descriptor, or -1 */
    int *res;                       /* (max_files) result of the file's last operation, or NOT_RUN */
    int64_t *got;                   /* (max_files) bytes read, or -1: left to the plain reader */
};

static void unmap(void *p, size_t n)
{
    if (p && p != MAP_FAILED) munmap(p, n);
}

void comine_prefetch_free(comine_prefetch *pf)
{
    if (!pf) return;
    if (pf->cq_map != pf->sq_map) unmap(pf->cq_map, pf->cq_map_size);
    unmap(pf->sq_map, pf->sq_map_size);
    unmap(pf->sqe_map, pf->sqe_map_size);
    if (pf->ring >= 0) close(pf->ring);
    free(pf->buf);
    free(pf->fd);
    free(pf->res);
    free(pf->got);
    free(pf);
}

comine_prefetch *comine_prefetch_create(int max_files)
{
    if (max_files < 1 || max_files > 4096) return NULL;
    comine_prefetch *pf = comine_calloc(1, sizeof *pf);
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    pf->ring = (int)syscall(__NR_io_uring_setup, (unsigned)max_files, &p);
    if (pf->ring < 0) {
        free(pf);
        return NULL;
    }
    pf->sq_map_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    pf->cq_map_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    const bool single = p.features & IORING_FEAT_SINGLE_MMAP;
    if (single) {
        if (pf->cq_map_size > pf->sq_map_size) pf->sq_map_size = pf->cq_map_size;
        pf->cq_map_size = pf->sq_map_size;
    }
    const int prot = PROT_READ | PROT_WRITE, flags = MAP_SHARED | MAP_POPULATE;
    pf->sq_map = mmap(NULL, pf->sq_map_size, prot, flags, pf->ring, IORING_OFF_SQ_RING);
    pf->cq_map = single ? pf->sq_map : mmap(NULL, pf->cq_map_size, prot, flags, pf->ring, IORING_OFF_CQ_RING);
    pf->sqe_map_size = p.sq_entries * sizeof(struct io_uring_sqe);
    pf->sqe_map = mmap(NULL, pf->sqe_map_size, prot, flags, pf->ring, IORING_OFF_SQES);
    if (pf->sq_map == MAP_FAILED || pf->cq_map == MAP_FAILED || pf->sqe_map == MAP_FAILED) {
        comine_prefetch_free(pf);
        return NULL;
    }
    uint8_t *sq = pf->sq_map, *cq = pf->cq_map;
    pf->sq_tail = (unsigned *)(void *)(sq + p.sq_off.tail);
    pf->sq_mask = (unsigned *)(void *)(sq + p.sq_off.ring_mask);
    pf->sq_array = (unsigned *)(void *)(sq + p.sq_off.array);
    pf->cq_head = (unsigned *)(void *)(cq + p.cq_off.head);
    pf->cq_tail = (unsigned *)(void *)(cq + p.cq_off.tail);
    pf->cq_mask = (unsigned *)(void *)(cq + p.cq_off.ring_mask);
    pf->cqes = (struct io_uring_cqe *)(void *)(cq + p.cq_off.cqes);
    pf->sqes = pf->sqe_map;
    pf->max_files = max_files;
    pf->share = FIRST_SHARE;
    while ((size_t)max_files * pf->share > MAX_BUFFER) pf->share /= 2;
    /* Zeroed: memory checkers do not see the kernel fill it. */
    pf->buf = comine_calloc((size_t)max_files, pf->share);
    pf->fd = comine_malloc(sizeof(int) * max_files);
    pf->res = comine_malloc(sizeof(int) * max_files);
    pf->got = comine_malloc(sizeof(int64_t) * max_files);
    return pf;
}

/* The next submission entry, cleared, for an operation on file k; the caller fills in the rest. */
static struct io_uring_sqe *queue_op(comine_prefetch *pf, int opcode, int fd, int k)
{
    const unsigned slot = (*pf->sq_tail + pf->queued++) & *pf->sq_mask;
    struct io_uring_sqe *e = &pf->sqes[slot];
    memset(e, 0, sizeof *e);
    e->opcode = (uint8_t)opcode;
    e->fd = fd;
    e->user_data = (uint64_t)k;
    pf->sq_array[slot] = slot;
    pf->res[k] = NOT_RUN;
    return e;
}

/* Take the completions that are there: res[k] of each. */
static unsigned reap(comine_prefetch *pf)
{
    unsigned head = *pf->cq_head, n = 0;
    const unsigned tail = __atomic_load_n(pf->cq_tail, __ATOMIC_ACQUIRE);
    for (; head != tail; head++, n++) {
        const struct io_uring_cqe *c = &pf->cqes[head & *pf->cq_mask];
        pf->res[c->user_data] = c->res;
    }
    __atomic_store_n(pf->cq_head, head, __ATOMIC_RELEASE);
    return n;
}

/* Hand the queued operations to the kernel and wait for all those it took.  False when it
 * refused some (their results stay NOT_RUN): the prefetcher is broken from then on. */
static bool run_queued(comine_prefetch *pf)
{
    const unsigned n = pf->queued;
    pf->queued = 0;
    __atomic_store_n(pf->sq_tail, *pf->sq_tail + n, __ATOMIC_RELEASE);
    unsigned submitted = 0, done = 0;
    while (done < submitted || (submitted < n && !pf->broken)) {
        /* One call when all goes well: submit the rest, then wait for as many completions. */
        const unsigned submit = pf->broken ? 0 : n - submitted, wait = submit ? submit : submitted - done;
        long ret = syscall(__NR_io_uring_enter, pf->ring, submit, wait, IORING_ENTER_GETEVENTS, NULL, 0);
        if (ret < 0 && errno != EINTR) {
            /* Refused (out of memory, say): what it took still completes.  A wait alone fails
             * only by a signal. */
            COMINE_ASSERT(submit > 0);
            pf->broken = true;
        } else if (ret == 0 && submit > 0) {
            pf->broken = true; /* took none, and said nothing */
        } else if (ret > 0 && submit > 0) {
            submitted += (unsigned)ret;
        }
        done += reap(pf);
    }
    return !pf->broken;
}

static void close_all(comine_prefetch *pf)
{
    for (int k = 0; k < pf->count; k++)
        if (pf->fd[k] >= 0) queue_op(pf, IORING_OP_CLOSE, pf->fd[k], k);
    run_queued(pf);
    /* Those the kernel did not take are closed the plain way. */
    for (int k = 0; k < pf->count; k++)
        if (pf->fd[k] >= 0 && pf->res[k] == NOT_RUN) close(pf->fd[k]);
}

void comine_prefetch_read(comine_prefetch *pf, const comine_dataset *ds, const int *samples, int n)
{
    COMINE_ASSERT(n >= 0 && n <= pf->max_files);
    pf->count = n;
    for (int k = 0; k < n; k++) {
        pf->fd[k] = -1;
        pf->got[k] = -1;
    }
    if (pf->broken || !comine_dataset_has_files(ds) || n == 0) return;
    if (pf->grow && (size_t)pf->max_files * pf->share * 2 <= MAX_BUFFER) {
        pf->share *= 2;
        free(pf->buf);
        pf->buf = comine_calloc((size_t)pf->max_files, pf->share);
    }
    pf->grow = false;
    /* The opens.  O_NONBLOCK: a FIFO is opened without waiting for a writer (and then left). */
    for (int k = 0; k < n; k++) {
        const char *path;
        int dir = ds->reader->file_at(ds, samples[k], &path);
        struct io_uring_sqe *e = queue_op(pf, IORING_OP_OPENAT, dir, k);
        e->addr = (uint64_t)(uintptr_t)path;
        e->open_flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
    }
    run_queued(pf);
    for (int k = 0; k < n; k++) {
        if (pf->res[k] >= 0) pf->fd[k] = pf->res[k];
        if (pf->res[k] == -EINVAL) pf->broken = true; /* a kernel without IORING_OP_OPENAT */
    }
    /* The reads, each into the file's share of the buffer with one byte kept for the 0 after
     * the data; a read that fills the share may have stopped short of the end. */
    for (int k = 0; k < n && !pf->broken; k++) {
        if (pf->fd[k] < 0) continue;
        struct io_uring_sqe *e = queue_op(pf, IORING_OP_READ, pf->fd[k], k);
        e->addr = (uint64_t)(uintptr_t)(pf->buf + (size_t)k * pf->share);
        e->len = (uint32_t)(pf->share - 1);
        e->rw_flags = RWF_NOWAIT;
    }
    if (!pf->broken) run_queued(pf);
    bool refused = false, read_some = false;
    for (int k = 0; k < n && !pf->broken; k++) {
        if (pf->fd[k] < 0) continue;
        refused |= pf->res[k] == -EOPNOTSUPP; /* RWF_NOWAIT, from a folder or a device say */
        read_some |= pf->res[k] > 0;
        if (pf->res[k] > 0 && (size_t)pf->res[k] < pf->share - 1) pf->got[k] = pf->res[k];
        if (pf->res[k] == (int)(pf->share - 1)) pf->grow = true;
    }
    if (refused && !read_some) pf->broken = true; /* a file system without RWF_NOWAIT */
    /* The end of each file: a read from where the first one stopped must find nothing (a
     * short read can also mean that the rest is not in the page cache). */
    for (int k = 0; k < n && !pf->broken; k++) {
        if (pf->got[k] < 0) continue;
        struct io_uring_sqe *e = queue_op(pf, IORING_OP_READ, pf->fd[k], k);
        e->addr = (uint64_t)(uintptr_t)(pf->buf + (size_t)k * pf->share + (size_t)pf->got[k]);
        e->len = 1;
        e->off = (uint64_t)pf->got[k];
        e->rw_flags = RWF_NOWAIT;
    }
    if (!pf->broken) run_queued(pf);
    for (int k = 0; k < n; k++) {
        if (pf->got[k] < 0) continue;
        if (pf->broken || pf->res[k] != 0) {
            pf->got[k] = -1;
            continue;
        }
        pf->buf[(size_t)k * pf->share + (size_t)pf->got[k]] = 0;
    }
    close_all(pf);
}

const uint8_t *comine_prefetch_bytes(const comine_prefetch *pf, int k, size_t *size)
{
    COMINE_ASSERT(k >= 0 && k < pf->count);
    if (pf->got[k] < 0) return NULL;
    *size = (size_t)pf->got[k];
    return pf->buf + (size_t)k * pf->share;
}

#else /* no io_uring */

comine_prefetch *comine_prefetch_create(int max_files)
{
    (void)max_files;
    return NULL;
}
void comine_prefetch_free(comine_prefetch *pf) { (void)pf; }
void comine_prefetch_read(comine_prefetch *pf, const comine_dataset *ds, const int *samples, int n)
{
    (void)pf, (void)ds, (void)samples, (void)n;
}
const uint8_t *comine_prefetch_bytes(const comine_prefetch *pf, int k, size_t *size)
{
    (void)pf, (void)k, (void)size;
    return NULL;
}

#endif
