#include "strata_mpi.h"

#include <limits.h>
#include <string.h>
#include <mpi.h>

int strata_mpi_init(int *funneled_granted) {
    int provided = MPI_THREAD_SINGLE;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    if (funneled_granted) *funneled_granted = provided >= MPI_THREAD_FUNNELED;
    return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

int strata_mpi_is_initialized(void) {
    int flag = 0;
    MPI_Initialized(&flag);
    return flag != 0;
}

int strata_mpi_is_finalized(void) {
    int flag = 0;
    MPI_Finalized(&flag);
    return flag != 0;
}

int strata_mpi_finalize(void) { return MPI_Finalize(); }

int strata_mpi_rank(int *rank) { return MPI_Comm_rank(MPI_COMM_WORLD, rank); }

int strata_mpi_size(int *size) { return MPI_Comm_size(MPI_COMM_WORLD, size); }

int strata_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

// The elements one call carries: at least 1, at most INT_MAX.
static int64_t call_limit(int64_t max_per_call) {
    if (max_per_call < 1) return 1;
    return max_per_call > INT_MAX ? INT_MAX : max_per_call;
}

int strata_mpi_broadcast_float(float *buffer, int64_t count, int root, int64_t max_per_call) {
    if (count < 0) return MPI_ERR_COUNT;
    int64_t limit = call_limit(max_per_call);
    for (int64_t start = 0; start < count; start += limit) {
        int64_t n = count - start < limit ? count - start : limit;
        int rc = MPI_Bcast(buffer + start, (int)n, MPI_FLOAT, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

int strata_mpi_allreduce_sum_float(float *buffer, int64_t count, int64_t max_per_call) {
    if (count < 0) return MPI_ERR_COUNT;
    int64_t limit = call_limit(max_per_call);
    for (int64_t start = 0; start < count; start += limit) {
        int64_t n = count - start < limit ? count - start : limit;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buffer + start, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

int strata_mpi_allgather_float(const float *input, int64_t count, float *output) {
    if (count < 0 || count > INT_MAX) return MPI_ERR_COUNT;
    if (count == 0) return MPI_SUCCESS;
    return MPI_Allgather(input, (int)count, MPI_FLOAT, output, (int)count, MPI_FLOAT, MPI_COMM_WORLD);
}

void strata_mpi_error_string(int code, char *out, size_t capacity) {
    if (!out || capacity == 0) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS || length <= 0) {
        length = 0;
        text[0] = '\0';
    }
    if (length >= MPI_MAX_ERROR_STRING) length = MPI_MAX_ERROR_STRING - 1;
    text[length] = '\0';
    size_t n = (size_t)length < capacity - 1 ? (size_t)length : capacity - 1;
    memcpy(out, text, n);
    out[n] = '\0';
}
