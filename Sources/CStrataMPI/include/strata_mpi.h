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

// MPI's own text for an error code (MPI_Error_string), e.g. "MPI_ERR_ROOT: invalid root".
void strata_mpi_error_string(int code, char *out, size_t capacity);

#endif
