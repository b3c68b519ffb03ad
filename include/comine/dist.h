/* dist.h: the communication layer of multi-process training.  The trainer asks for
 * "all-reduce these gradients" or "all-gather these losses", never for MPI by name, so
 * that another transport (NCCL) can sit behind the same calls.
 *
 * Built with MPI (COMINE_MPI=AUTO|ON, compile definition COMINE_HAVE_MPI) the calls go to
 * MPI_COMM_WORLD; built without it, or started without a launcher, there is one rank and
 * every call is a copy or nothing.  A binary built without MPI but started by a launcher
 * with more than one process (mpirun, srun: OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_SIZE,
 * SLURM_STEP_NUM_TASKS) refuses to run: P copies would write one run folder.
 *
 * Every MPI call is checked; a failure stops the whole job (comine_dist_abort) with a
 * message that names the rank, the call, the file and the line.  Buffers are host memory. */
#ifndef COMINE_DIST_H
#define COMINE_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "comine/core.h"

/* Starts the layer once per process (later calls do nothing).  Reads the launcher's
 * environment; initialises MPI where the binary has it and a launcher started it.
 * COMINE_ERR_ARG (with the reason) for the refusal above. */
comine_status comine_dist_init(void);
/* Ends MPI where init started it (after the last collective call). */
void comine_dist_finalize(void);
/* True when the binary was built with MPI. */
bool comine_dist_built_with_mpi(void);

int comine_dist_rank(void); /* 0 .. size - 1 (0 before init) */
int comine_dist_size(void); /* P (1 before init) */

/* In place, over all ranks, elementwise: x = sum_r x_r. */
void comine_dist_allreduce_sum_f32(float *x, size_t n);
void comine_dist_allreduce_sum_f64(double *x, size_t n);
/* In place, elementwise: x = max_r x_r. */
void comine_dist_allreduce_max_f32(float *x, size_t n);
void comine_dist_allreduce_max_f64(double *x, size_t n);
void comine_dist_allreduce_max_i32(int *x, size_t n);
/* An all-reduce (sum, in place) of x (n floats) in buckets of `bucket` floats, started from
 * the end of x as the caller declares its values final (ready: [from, n) is final), each
 * bucket a non-blocking all-reduce that runs while the caller computes the rest (a model's
 * backward: comine_model_backward_notify); finish starts what is left and waits for all.
 * Every rank makes the same calls of begin and finish; ready may differ (a rank with no rows
 * calls none).  The result is that of comine_dist_allreduce_sum_f32 cut at the same buckets. */
typedef struct comine_dist_buckets comine_dist_buckets;
comine_dist_buckets *comine_dist_buckets_create(size_t bucket);
void comine_dist_buckets_free(comine_dist_buckets *b);
void comine_dist_buckets_begin(comine_dist_buckets *b, float *x, size_t n);
void comine_dist_buckets_ready(comine_dist_buckets *b, size_t from);
void comine_dist_buckets_finish(comine_dist_buckets *b);
/* Gather of rank-ordered slices: rank r gives counts[r] elements of elem_size bytes from
 * `in`; out (sum of counts) receives them in rank order on every rank.  in may lie inside
 * out at its own offset (then it is not copied). */
void comine_dist_allgatherv(void *out, const void *in, const int *counts, size_t elem_size);
/* Point to point: bytes from this rank to rank `to`, and from rank `from` into buf (blocking). */
void comine_dist_send(const void *buf, size_t bytes, int to);
void comine_dist_recv(void *buf, size_t bytes, int from);
/* bytes from root to every rank. */
void comine_dist_broadcast(void *buf, size_t bytes, int root);
void comine_dist_barrier(void);
/* Stops every rank of the job: prints "comine: rank R of P: <message>" on stderr and exits
 * non-zero (MPI_Abort).  Does not return. */
void comine_dist_abort(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Bytes this rank has handed to the collectives since start (a communication figure for the
 * benchmark: each call counts its input once, whatever the algorithm moves; 0 with one rank). */
double comine_dist_bytes_sent(void);

/* The slice of a global batch of n samples that rank r of P owns: [*lo, *hi), in rank
 * order, sizes differing by at most one (n * r / P rounded down). */
void comine_dist_slice(int n, int r, int P, int *lo, int *hi);

#endif
