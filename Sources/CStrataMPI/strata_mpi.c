#include "strata_mpi.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
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

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int strata_mpi_allreduce_sum_float_deadline(float *buffer, int64_t count, int64_t max_per_call,
                                            double timeout_seconds, int *timed_out) {
    if (timed_out) *timed_out = 0;
    if (timeout_seconds <= 0) return strata_mpi_allreduce_sum_float(buffer, count, max_per_call);
    if (count < 0) return MPI_ERR_COUNT;
    int64_t limit = call_limit(max_per_call);
    for (int64_t start = 0; start < count; start += limit) {
        int64_t n = count - start < limit ? count - start : limit;
        MPI_Request request;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, buffer + start, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request);
        if (rc != MPI_SUCCESS) return rc;
        double deadline = now_seconds() + timeout_seconds;
        for (long polls = 0;; polls++) {
            int done = 0;
            rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) return rc;
            if (done) break;
            // The clock is read every 256 polls; after a second of waiting the poll also sleeps
            // a little, leaving the core to a process that is still computing.
            if ((polls & 255) == 255) {
                double t = now_seconds();
                if (t > deadline) {
                    if (timed_out) *timed_out = 1;
                    return MPI_ERR_OTHER;
                }
                if (t > deadline - timeout_seconds + 1) {
                    struct timespec nap = {0, 200000};
                    nanosleep(&nap, NULL);
                }
            }
        }
    }
    return MPI_SUCCESS;
}

// The stop handler's state: written before it is installed or with plain stores it reads whole.
static char stop_activity[256] = "the start";
static char stop_program[64] = "strata";
static int stop_rank = -1;
static struct sigaction previous_term;

void strata_mpi_set_activity(const char *activity) {
    if (!activity) return;
    size_t n = strlen(activity);
    if (n > sizeof stop_activity - 1) n = sizeof stop_activity - 1;
    memcpy(stop_activity, activity, n);
    stop_activity[n] = '\0';
}

static void put(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void on_stop(int sig) {
    char rank[24];
    int r = stop_rank < 0 ? 0 : stop_rank, k = 0;
    char digits[16];
    do { digits[k++] = (char)('0' + r % 10); r /= 10; } while (r > 0 && k < 15);
    int j = 0;
    while (k > 0) rank[j++] = digits[--k];
    rank[j] = '\0';
    if (stop_program[0]) {
        put(stop_program);
        put(": ");
    }
    put("error: rank ");
    put(rank);
    put(" stopped: another process of the run died or failed during ");
    put(stop_activity);
    put(" (mpirun ended the others); resume from the last checkpoint (--resume), on any number of processes\n");
    if (previous_term.sa_handler != SIG_DFL && previous_term.sa_handler != SIG_IGN && previous_term.sa_handler != NULL) {
        sigaction(sig, &previous_term, NULL);
        raise(sig);
        return;
    }
    _exit(1);
}

void strata_mpi_install_stop_handler(const char *program, int rank) {
    static int installed = 0;
    if (program) {
        size_t n = strlen(program);
        if (n > sizeof stop_program - 1) n = sizeof stop_program - 1;
        memcpy(stop_program, program, n);
        stop_program[n] = '\0';
    }
    stop_rank = rank;
    if (installed) return;
    installed = 1;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, &previous_term);
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
