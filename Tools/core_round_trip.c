// How long one cache line takes to go from CPU 0 to CPU 1 and back: two threads, pinned, pass a
// counter back and forth 200,000 times. On the 2-vCPU cloud machines of BENCHMARKS.md this is
// about 60-90 ns most of the time and about 340 ns in windows of several seconds (the host then
// runs the two vCPUs far apart); batch-1 latency that hands work between threads moves with it.
//
//   gcc -O2 -o /tmp/core_round_trip Tools/core_round_trip.c -lpthread
//   for i in $(seq 10); do /tmp/core_round_trip; sleep 2; done
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

enum { ROUNDS = 200000 };
static _Atomic long turn __attribute__((aligned(64)));

static int pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *answer(void *arg) {
    (void)arg;
    pin(1);
    for (long i = 0; i < ROUNDS; i++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * i + 1) {}
        atomic_store_explicit(&turn, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

int main(void) {
    if (pin(0) != 0) {
        fprintf(stderr, "core_round_trip: cannot run on CPU 0 and CPU 1 (needs two CPUs)\n");
        return 1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, answer, NULL) != 0) {
        fprintf(stderr, "core_round_trip: cannot start the second thread\n");
        return 1;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < ROUNDS; i++) {
        atomic_store_explicit(&turn, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * i + 2) {}
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, NULL);
    printf("round trip %.0f ns\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / ROUNDS);
    return 0;
}
