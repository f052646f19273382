// A small C layer over Open MPI for StrataDistributed. mpi.h's handles (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_SUM, MPI_IN_PLACE) are macros that Swift cannot import, so every call on the
// world communicator goes through a plain C function here. Each returns an MPI error code:
// STRATA_MPI_SUCCESS (0) or the code MPI returned, which strata_mpi_error_string describes.
// This header does not include mpi.h.
#ifndef STRATA_MPI_H
#define STRATA_MPI_H

#include <stddef.h>
#include <stdint.h>

#define STRATA_MPI_SUCCESS 0

// MPI_Init_thread asking for MPI_THREAD_FUNNELED (only the thread that initialised calls MPI);
// the level granted is written to *funneled_granted as 1 (funneled or more) or 0. Then the world
// communicator's error handler is set to MPI_ERRORS_RETURN, so a failing call returns its code
// instead of aborting every process.
int strata_mpi_init(int *funneled_granted);
// 1 when MPI_Init has run (and MPI_Finalized says so for the second), else 0.
int strata_mpi_is_initialized(void);
int strata_mpi_is_finalized(void);
int strata_mpi_finalize(void);

int strata_mpi_rank(int *rank);
int strata_mpi_size(int *size);
int strata_mpi_barrier(void);

// Broadcasts count floats from root's buffer into every other rank's, in calls of at most
// max_per_call elements (MPI counts are int; values above INT_MAX are lowered to it).
int strata_mpi_broadcast_float(float *buffer, int64_t count, int root, int64_t max_per_call);
// In-place sum of count floats over all ranks (MPI_IN_PLACE), in calls of at most max_per_call.
int strata_mpi_allreduce_sum_float(float *buffer, int64_t count, int64_t max_per_call);
// Every rank sends count floats; output (count * size floats) receives them in rank order.
// count must be at most INT_MAX (MPI_ERR_COUNT otherwise).
int strata_mpi_allgather_float(const float *input, int64_t count, float *output);

// In-place sum as strata_mpi_allreduce_sum_float, through MPI_Iallreduce and MPI_Test, giving up
// after timeout_seconds (<= 0: never) without an answer: then *timed_out is set to 1 and
// MPI_ERR_OTHER returned. The request of a timed-out call stays pending: the process cannot
// take part in collectives any more and should exit without MPI_Finalize.
int strata_mpi_allreduce_sum_float_deadline(float *buffer, int64_t count, int64_t max_per_call,
                                            double timeout_seconds, int *timed_out);

// What the collectives are doing now ("gradient all-reduce at epoch 1, step 17"), copied (at most
// 255 bytes) for the message of the stop handler.
void strata_mpi_set_activity(const char *activity);
// On SIGTERM (what mpirun sends the other processes when one of them dies or fails) writes
// "<program>: error: rank R stopped: ... during <activity> ..." on stderr (without "<program>: "
// when program is empty), then runs the handler
// that was installed before (if any) or exits with status 1. Async-signal-safe.
void strata_mpi_install_stop_handler(const char *program, int rank);

// MPI's own text for an error code (MPI_Error_string), e.g. "MPI_ERR_ROOT: invalid root".
void strata_mpi_error_string(int code, char *out, size_t capacity);

#endif
