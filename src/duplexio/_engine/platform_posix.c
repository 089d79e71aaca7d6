/* The platform layer on POSIX systems: Linux (what every host was built
 * and tested on), and Darwin where it differs. See platform.h.
 *
 * Darwin, compiled here but never run: unnamed POSIX semaphores are not
 * implemented there (sem_init fails with ENOSYS) and there is no
 * sem_clockwait, so semaphores are libdispatch's, whose timed wait counts
 * on mach_absolute_time; the library's clock is therefore
 * mach_absolute_time too (also CoreAudio's host time). macOS has no CPU
 * affinity, so the worker never follows the device thread there. */
#if !defined(_WIN32)

#if defined(__linux__)
#define _GNU_SOURCE /* sched_getcpu, sched_setaffinity, RTLD_DEFAULT */
#endif
#include "engine.h" /* platform.h, and the exported declarations of engine_api.h */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__APPLE__)
#include <dispatch/dispatch.h>
#include <mach/mach_time.h>
#else
#include <semaphore.h>
#endif

/* ---- the clock ---------------------------------------------------------------- */

#if defined(__APPLE__)
static int64_t mach_to_ns(uint64_t ticks) {
    static mach_timebase_info_data_t base; /* constant per boot; a race writes the same */
    if (base.denom == 0) mach_timebase_info(&base);
    /* Split to keep ticks * numer inside 64 bits for centuries of uptime. */
    uint64_t whole = ticks / base.denom, rest = ticks % base.denom;
    return (int64_t)(whole * base.numer + rest * base.numer / base.denom);
}
int64_t da_now_ns(void) { return mach_to_ns(mach_absolute_time()); }
int64_t da_now_raw_ns(void) { return da_now_ns(); }
#else
static int64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
int64_t da_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t da_now_raw_ns(void) {
#if defined(CLOCK_MONOTONIC_RAW)
    return clock_ns(CLOCK_MONOTONIC_RAW);
#else
    return da_now_ns();
#endif
}
#endif

static struct timespec timespec_of(int64_t ns) {
    struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
    return ts;
}

void da_sleep_ns(int64_t ns) {
    struct timespec left = timespec_of(ns > 0 ? ns : 0);
    while (nanosleep(&left, &left) != 0 && errno == EINTR) {
    }
}

/* ---- semaphores ----------------------------------------------------------------- */

#if defined(__APPLE__)
struct da_sem {
    dispatch_semaphore_t sem;
};

da_sem *da_sem_new(void) {
    da_sem *s = calloc(1, sizeof *s);
    if (s && !(s->sem = dispatch_semaphore_create(0))) {
        free(s);
        s = NULL;
    }
    return s;
}
void da_sem_free(da_sem *s) {
    if (!s) return;
    dispatch_release(s->sem);
    free(s);
}
void da_sem_post(da_sem *s) { dispatch_semaphore_signal(s->sem); }
int da_sem_wait(da_sem *s) {
    dispatch_semaphore_wait(s->sem, DISPATCH_TIME_FOREVER);
    return 0;
}
int da_sem_wait_until(da_sem *s, int64_t until_ns) {
    /* dispatch_time counts from mach_absolute_time, our clock: a relative
     * wait from now ends at until_ns on it. */
    int64_t left = until_ns - da_now_ns();
    return dispatch_semaphore_wait(s->sem, dispatch_time(DISPATCH_TIME_NOW, left > 0 ? left : 0))
               ? -ETIMEDOUT
               : 0;
}
int da_sem_trywait(da_sem *s) {
    return dispatch_semaphore_wait(s->sem, DISPATCH_TIME_NOW) ? -EAGAIN : 0;
}
#else
struct da_sem {
    sem_t sem;
};

/* sem_clockwait (glibc 2.30, musl 1.2.5) waits on CLOCK_MONOTONIC, so a
 * change of the wall clock cannot stretch or cut a deadline. It is looked up
 * at run time, so one build runs on older C libraries too; there the wait is
 * sem_timedwait's on the wall clock, its deadline converted once (a step of
 * the wall clock during one wait moves that wait's end by as much). */
typedef int (*sem_clockwait_fn)(sem_t *, clockid_t, const struct timespec *);
static sem_clockwait_fn clockwait;
static pthread_once_t clockwait_once = PTHREAD_ONCE_INIT;
static void find_clockwait(void) {
#if !defined(DA_WITHOUT_CLOCKWAIT) /* defined by the self-test of the fallback */
    void *address = dlsym(RTLD_DEFAULT, "sem_clockwait");
    memcpy(&clockwait, &address, sizeof address); /* function pointer from void * */
#endif
}

da_sem *da_sem_new(void) {
    pthread_once(&clockwait_once, find_clockwait);
    da_sem *s = calloc(1, sizeof *s);
    if (s && sem_init(&s->sem, 0, 0) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}
void da_sem_free(da_sem *s) {
    if (!s) return;
    sem_destroy(&s->sem);
    free(s);
}
void da_sem_post(da_sem *s) { sem_post(&s->sem); }
int da_sem_wait(da_sem *s) { return sem_wait(&s->sem) == 0 ? 0 : -EINTR; }
int da_sem_wait_until(da_sem *s, int64_t until_ns) {
    if (clockwait) { /* looked up by da_sem_new */
        struct timespec until = timespec_of(until_ns);
        while (clockwait(&s->sem, CLOCK_MONOTONIC, &until) != 0)
            if (errno != EINTR) return -ETIMEDOUT;
        return 0;
    }
    struct timespec until = timespec_of(clock_ns(CLOCK_REALTIME) + (until_ns - da_now_ns()));
    while (sem_timedwait(&s->sem, &until) != 0)
        if (errno != EINTR) return -ETIMEDOUT;
    return 0;
}
int da_sem_trywait(da_sem *s) { return sem_trywait(&s->sem) == 0 ? 0 : -EAGAIN; }
#endif

/* ---- threads ------------------------------------------------------------------- */

struct da_thread {
    pthread_t thread;
};

int da_thread_start(da_thread **thread, void *(*fn)(void *), void *arg, int want_realtime,
                    int *realtime) {
    *realtime = 0;
    da_thread *t = calloc(1, sizeof *t);
    if (!t) return ENOMEM;
    if (want_realtime) {
        pthread_attr_t attr;
        struct sched_param sp = {.sched_priority = 60};
        pthread_attr_init(&attr);
        pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
        pthread_attr_setschedparam(&attr, &sp);
        *realtime = pthread_create(&t->thread, &attr, fn, arg) == 0;
        pthread_attr_destroy(&attr);
    }
    int err = *realtime ? 0 : pthread_create(&t->thread, NULL, fn, arg);
    if (err) free(t);
    else *thread = t;
    return err;
}

void da_thread_join(da_thread *thread) {
    pthread_join(thread->thread, NULL);
    free(thread);
}

void da_thread_detach(da_thread *thread) {
    pthread_detach(thread->thread);
    free(thread);
}

int da_thread_is_realtime(void) {
    int policy;
    struct sched_param sp;
    return pthread_getschedparam(pthread_self(), &policy, &sp) == 0 &&
           (policy == SCHED_FIFO || policy == SCHED_RR);
}

int da_thread_make_realtime(int priority, char *msg, size_t len) {
    struct sched_param sp = {.sched_priority = priority};
    int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    if (err) {
        snprintf(msg, len, "SCHED_FIFO priority %d: %s", priority, strerror(err));
        return -err;
    }
    return 0;
}

/* ---- processors ---------------------------------------------------------------- */

#if defined(__linux__)
int da_cpu_current(void) { return sched_getcpu(); }
int da_cpu_allowed(da_cpus *out) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -errno;
    memset(out, 0, sizeof *out);
    for (int cpu = 0; cpu < CPU_SETSIZE && cpu < DA_CPU_MAX; cpu++)
        if (CPU_ISSET(cpu, &set)) out->bits[cpu / 64] |= (uint64_t)1 << (cpu % 64);
    return 0;
}
int da_cpu_pin(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one) == 0 ? 0 : -errno;
}
#else
int da_cpu_current(void) { return -1; }
int da_cpu_allowed(da_cpus *out) {
    memset(out, 0, sizeof *out);
    return -ENOSYS;
}
int da_cpu_pin(int cpu) { return -ENOSYS; }
#endif

/* ---- run-time linking ---------------------------------------------------------- */

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

int da_load_library(const char *name, const da_symbol *symbols, size_t count,
                    void (*loaded)(void), void **handle, char *msg, size_t len) {
    int r = 0;
    pthread_mutex_lock(&load_lock);
    if (!*handle) {
        void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(msg, len, "cannot load %s: %s", name, dlerror());
            r = -ENOENT;
        }
        for (size_t i = 0; h && i < count; i++) {
            void *address = dlsym(h, symbols[i].name);
            if (!address) {
                snprintf(msg, len, "%s lacks %s", name, symbols[i].name);
                dlclose(h);
                h = NULL;
                r = -ENOENT;
                break;
            }
            memcpy(symbols[i].slot, &address, sizeof address); /* function pointer from void * */
        }
        if (h && loaded) loaded();
        *handle = h;
    }
    pthread_mutex_unlock(&load_lock);
    return r;
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int da_platform_posix_unused;
#endif
