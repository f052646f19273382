// A small persistent thread pool. Workers spin briefly after each job (training issues many
// short parallel loops back to back), then sleep on a condition variable. The spin is timed by
// the clock, not counted in `pause` instructions, whose length differs between CPUs by some 20x
// (26 ns on Zen 5): a spin that ends after 30 us instead of 0.5 ms made MLP training 6-7 % slower.
#define _GNU_SOURCE   // sched_getaffinity, CPU_COUNT
#include "strata_kernels.h"
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define SPIN_NS 500000L   // how long an idle worker spins before it sleeps

// Jobs alternate between two slots. `word` holds (generation << 32) and wakes the workers.
// A job's indices form one part that every thread takes from in turn, or (an owned job) one
// contiguous part per thread: thread k (the caller is 0) runs part k first, then takes what is
// left of the others, so the same thread keeps touching the same data from call to call. That
// matters when moving a cache line between the cores is slow (~340 ns there and back in the
// cloud host's slow windows, against ~70 ns otherwise).
// Owned parts are not the default: the convolutions train some 3 % slower with them on a core
// pair that shares its L3 (measured on Zen 5).
// Each part's cursor holds (generation << 32 | next index) and is claimed with a CAS on the
// whole word, so a late worker can never claim an index of a newer job; a new job rewrites the
// cursors before anything else in its slot, so a stale claim fails before the slot changes.
typedef struct {
    atomic_ulong cursor;
    atomic_long end;
    char pad[64 - 2 * sizeof(long)];
} part_t;

typedef struct {
    part_t part[MAX_THREADS];
    strata_task_fn fn;
    void *ctx;
    atomic_int parts;
    atomic_long finished;
    atomic_long published;   // now_ns() when the job was handed out
} slot_t;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;   // held by the caller of a job
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sleep_cond = PTHREAD_COND_INITIALIZER;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static slot_t slots[2];
static atomic_ulong word = 0;
static atomic_int sleepers = 0;
static atomic_uint pokes = 0;     // wakes sleeping workers without a job (strata_split_small_work)
static atomic_long poke_wakes = 0;   // workers woken so, for tests
static int num_threads = 1;       // threads that take part, caller included
static int started_workers = 0;   // worker pthreads alive
static _Thread_local int in_task = 0;
// A handoff is 85-110 ns when the host runs the two vCPUs close and 300-335 ns in its slow
// windows (Zen 5 cloud host; Tools/core_round_trip then reads 50-90 and ~340 ns). Small
// splits lose there: a batch-1 CNN forward took 0.103 ms on two threads and 0.083 ms on one.
#define FAR_HANDOFF_NS 170
// A measurement older than this says nothing: the next splits go ahead and measure again.
#define HANDOFF_FRESH_NS 20000000L
// How long the first worker takes to see a job it was spinning for (ns, an estimate below), and
// when it last saw one: strata_cores_far.
static atomic_long handoff_ns = 0;
static atomic_long handoff_at = 0;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline unsigned long gen_of(unsigned long w) { return w >> 32; }

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

// Runs part `home` of job g, then helps with the other parts.
static void run_indices(unsigned long g, int home) {
    slot_t *s = &slots[g & 1];
    int parts = atomic_load_explicit(&s->parts, memory_order_relaxed);
    if (parts < 1 || parts > MAX_THREADS) return;   // a newer job is being written
    for (int step = 0; step < parts; step++) {
        part_t *p = &s->part[(home + step) % parts];
        for (;;) {
            unsigned long c = atomic_load_explicit(&p->cursor, memory_order_acquire);
            if (gen_of(c) != g) return;
            long i = (long)(c & 0xffffffffUL);
            if (i >= atomic_load_explicit(&p->end, memory_order_relaxed)) break;
            if (!atomic_compare_exchange_weak_explicit(&p->cursor, &c, c + 1, memory_order_acq_rel,
                                                       memory_order_relaxed))
                continue;
            s->fn(s->ctx, i);
            atomic_fetch_add_explicit(&s->finished, 1, memory_order_release);
        }
    }
}

long strata_handoff_next_estimate(long estimate, long sample) {
    if (sample <= estimate) return sample;
    return estimate + (sample - estimate < 16 ? sample - estimate : 16);
}

static void *worker_main(void *arg) {
    long worker_id = (long)arg;
    unsigned long seen = 0;
    int fresh = 1;   // its first job found it starting, not spinning
    in_task = 1;
    for (;;) {
        unsigned long g;
        unsigned spins = 0;
        long spin_start = 0;
        int slept = 0;
        while ((g = gen_of(atomic_load_explicit(&word, memory_order_acquire))) == seen) {
            cpu_relax();
            if (++spins % 64 != 0) continue;   // the clock is read now and then, not every pause
            long t = now_ns();
            if (spin_start == 0) spin_start = t;
            if (t - spin_start < SPIN_NS) continue;
            pthread_mutex_lock(&sleep_lock);
            atomic_fetch_add(&sleepers, 1);
            unsigned poke = atomic_load(&pokes);
            while (gen_of(atomic_load(&word)) == seen && atomic_load(&pokes) == poke)
                pthread_cond_wait(&sleep_cond, &sleep_lock);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&sleep_lock);
            if (gen_of(atomic_load(&word)) == seen) {   // poked: spin again, ready for the next job
                atomic_fetch_add(&poke_wakes, 1);
                spin_start = 0;
                continue;
            }
            slept = 1;
        }
        seen = g;
        if (worker_id == 0 && !slept && !fresh) {
            // Falls to any lower sample at once, rises by at most 16 ns a sample: a handoff is never
            // faster than the cores allow, but an interrupt or a descheduled worker makes single
            // ones slow (1-6 us, now and then in a fast window).
            long t = now_ns(), d = t - atomic_load_explicit(&slots[g & 1].published, memory_order_relaxed);
            if (d >= 0) {
                long est = atomic_load_explicit(&handoff_ns, memory_order_relaxed);
                atomic_store_explicit(&handoff_ns, strata_handoff_next_estimate(est, d), memory_order_relaxed);
                atomic_store_explicit(&handoff_at, t, memory_order_relaxed);
            }
        }
        fresh = 0;
        // Workers beyond the current thread count sit this job out.
        if (worker_id < num_threads - 1) run_indices(g, (int)worker_id + 1);
    }
    return NULL;
}

static void start_workers(int wanted) {
    while (started_workers < wanted && started_workers < MAX_THREADS - 1) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker_main, (void *)(long)started_workers) != 0) {
            pthread_attr_destroy(&attr);
            break;
        }
        pthread_attr_destroy(&attr);
        started_workers++;
    }
}

int strata_cpu_quota_cores(const char *cpu_max) {
    long quota, period;
    if (!cpu_max || sscanf(cpu_max, "%ld %ld", &quota, &period) != 2 || quota <= 0 || period <= 0) return 0;
    long cores = (quota + period - 1) / period;
    return cores > MAX_THREADS ? MAX_THREADS : (int)cores;
}

// The first line of a small file, or an empty string.
static void read_line(const char *path, char *buf, int size) {
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(buf, size, f)) buf[0] = 0;
    fclose(f);
}

// The CPU quota of this process's cgroup in cores, 0 for none: cgroup v2 (cpu.max of its own
// group, or of the root a container sees), then v1 (cfs_quota_us, cfs_period_us).
static int cgroup_quota_cores(void) {
    char line[512], path[640], text[128];
    read_line("/proc/self/cgroup", line, sizeof line);
    if (strncmp(line, "0::/", 4) == 0) {
        line[strcspn(line, "\n")] = 0;
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", line + 3);
        read_line(path, text, sizeof text);
        int q = strata_cpu_quota_cores(text);
        if (q > 0) return q;
    }
    read_line("/sys/fs/cgroup/cpu.max", text, sizeof text);
    int q = strata_cpu_quota_cores(text);
    if (q > 0) return q;
    char quota[64], period[64];
    read_line("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", quota, sizeof quota);
    read_line("/sys/fs/cgroup/cpu/cpu.cfs_period_us", period, sizeof period);
    snprintf(text, sizeof text, "%s %s", quota, period);   // sscanf skips quota's newline
    return strata_cpu_quota_cores(text);
}

static int capped(long n, int quota) {
    if (quota > 0 && quota < n) n = quota;
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

int strata_available_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) n = CPU_COUNT(&set);
    return capped(n, cgroup_quota_cores());
}

int strata_machine_cores(void) { return capped(sysconf(_SC_NPROCESSORS_ONLN), cgroup_quota_cores()); }

static void pool_init(void) {
    long n = strata_available_cores();
    const char *env = getenv("STRATA_NUM_THREADS");
    if (env && atoi(env) > 0) n = atoi(env);
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    num_threads = (int)n;
}

void strata_set_num_threads(int n) {
    pthread_once(&pool_once, pool_init);
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    pthread_mutex_lock(&pool_lock);
    num_threads = n;
    pthread_mutex_unlock(&pool_lock);
}

int strata_get_num_threads(void) {
    pthread_once(&pool_once, pool_init);
    return num_threads;
}

// Many small indices are handed out as contiguous ranges (a few per thread), so threads do not
// fight over the shared counter once per index.
typedef struct {
    strata_task_fn fn;
    void *ctx;
    long n, chunk;
} range_job;

static void range_task(void *ctx, long t) {
    const range_job *r = ctx;
    long s = t * r->chunk, e = s + r->chunk < r->n ? s + r->chunk : r->n;
    for (long i = s; i < e; i++) r->fn(r->ctx, i);
}

static void dispatch(long n, strata_task_fn fn, void *ctx, int owned);

static void parallel_for(long n, strata_task_fn fn, void *ctx, int owned) {
    if (n <= 0) return;
    pthread_once(&pool_once, pool_init);
    long ranges = 4L * num_threads;
    if (num_threads > 1 && n > 2 * ranges && !in_task) {
        range_job r = {fn, ctx, n, (n + ranges - 1) / ranges};
        dispatch((n + r.chunk - 1) / r.chunk, range_task, &r, owned);
        return;
    }
    dispatch(n, fn, ctx, owned);
}

void strata_parallel_for(long n, strata_task_fn fn, void *ctx) { parallel_for(n, fn, ctx, 0); }
void strata_parallel_for_owned(long n, strata_task_fn fn, void *ctx) { parallel_for(n, fn, ctx, 1); }

static void dispatch(long n, strata_task_fn fn, void *ctx, int owned) {
    if (n == 1 || num_threads <= 1 || in_task || n > 0x7fffffffL ||
        pthread_mutex_trylock(&pool_lock) != 0) {
        for (long i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    if (started_workers < num_threads - 1) start_workers(num_threads - 1);
    unsigned long g = gen_of(atomic_load(&word)) + 1;
    slot_t *s = &slots[g & 1];
    int parts = !owned ? 1 : n < num_threads ? (int)n : num_threads;
    // Cursors first: from here on, a worker still in job g - 2 can claim nothing in this slot.
    for (int k = 0; k < parts; k++)
        atomic_store(&s->part[k].cursor, g << 32 | (unsigned long)(n * k / parts));
    atomic_thread_fence(memory_order_seq_cst);
    for (int k = 0; k < parts; k++)
        atomic_store_explicit(&s->part[k].end, n * (k + 1) / parts, memory_order_relaxed);
    atomic_store_explicit(&s->parts, parts, memory_order_relaxed);
    s->fn = fn;
    s->ctx = ctx;
    atomic_store_explicit(&s->finished, 0, memory_order_relaxed);
    atomic_store_explicit(&s->published, now_ns(), memory_order_relaxed);
    atomic_store(&word, g << 32);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&sleep_cond);
        pthread_mutex_unlock(&sleep_lock);
    }
    in_task = 1;
    run_indices(g, 0);
    in_task = 0;
    while (atomic_load_explicit(&s->finished, memory_order_acquire) < n) cpu_relax();
    pthread_mutex_unlock(&pool_lock);
}

long strata_handoff_ns(void) {
    long at = atomic_load_explicit(&handoff_at, memory_order_relaxed);
    return at && now_ns() - at < HANDOFF_FRESH_NS ? atomic_load_explicit(&handoff_ns, memory_order_relaxed) : -1;
}

static atomic_int far_forced = -1;
int strata_cores_far(void) {
    int f = atomic_load_explicit(&far_forced, memory_order_relaxed);
    if (f >= 0) return f;
    return strata_handoff_ns() > FAR_HANDOFF_NS;
}

// Batch-1 work while the workers sleep (calls spaced more than SPIN_NS apart, a camera's frames):
// waking one (a futex and, in a VM, an interrupt to an idle vCPU) cost more than splitting a
// small convolution gained (Fashion CNN, calls 1 ms apart: 0.107 ms split, 0.094 on one
// thread). Work above WAKE_MIN_MACS wakes them as any job does; ASLEEP_POKE_AFTER small
// decisions within ASLEEP_WINDOW_NS (back-to-back calls after a pause) wake them without a job,
// so that the calls after split again.
#define WAKE_MIN_MACS 8e6
#define ASLEEP_WINDOW_NS 1000000L
#define ASLEEP_POKE_AFTER 16
static atomic_long asleep_since = 0;
static atomic_int asleep_count = 0;
int strata_workers_asleep(void) { return atomic_load(&sleepers); }
long strata_workers_poked(void) { return atomic_load(&poke_wakes); }

int strata_split_small_work(double macs) {
    if (atomic_load_explicit(&far_forced, memory_order_relaxed) < 0 && num_threads > 1 &&
        atomic_load_explicit(&sleepers, memory_order_relaxed) > 0) {
        if (macs >= WAKE_MIN_MACS) return 1;
        long t = now_ns();
        if (t - atomic_load_explicit(&asleep_since, memory_order_relaxed) > ASLEEP_WINDOW_NS) {
            atomic_store_explicit(&asleep_since, t, memory_order_relaxed);
            atomic_store_explicit(&asleep_count, 0, memory_order_relaxed);
        }
        if (atomic_fetch_add_explicit(&asleep_count, 1, memory_order_relaxed) + 1 == ASLEEP_POKE_AFTER) {
            pthread_mutex_lock(&sleep_lock);
            atomic_fetch_add(&pokes, 1);
            pthread_cond_broadcast(&sleep_cond);
            pthread_mutex_unlock(&sleep_lock);
        }
        return 0;
    }
    return !strata_cores_far();
}
void strata_force_cores_far(int far) {
    atomic_store_explicit(&far_forced, far < 0 ? -1 : far > 0, memory_order_relaxed);
}
