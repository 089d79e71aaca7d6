/* The platform layer: everything the engine and the hosts' device threads
 * need from the operating system, behind one small interface. Of the
 * engine and the portable hosts (virtual, portaudio), nothing outside
 * platform_*.c includes an OS header, and this file includes only standard
 * C, so they compile unchanged for every target. The Linux-only hosts
 * include what their libraries need (ALSA's poll loop: <poll.h>, <unistd.h>;
 * PipeWire's SPA headers).
 *
 * Implementations: platform_posix.c (Linux, and Darwin where it differs:
 * no sem_clockwait, no unnamed POSIX semaphores, no CPU affinity) and
 * platform_win32.c. Each guards itself with #if, so every file compiles
 * on every target and the one that does not apply is empty.
 *
 * Errors are negative errno codes (<errno.h> is standard C), as at the
 * rest of the C boundary (engine.h). */
#ifndef DA_PLATFORM_H
#define DA_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* ---- the clock ---------------------------------------------------------------- */

/* The library's monotonic clock in nanoseconds: CLOCK_MONOTONIC on Linux,
 * mach_absolute_time on Darwin (the clock CoreAudio's host times and
 * dispatch_time use), QueryPerformanceCounter on Windows. Every timestamp a
 * stream reports is on this clock. (Declared for Python in engine_api.h.) */
int64_t da_now_ns(void);
/* A second clock some libraries stamp with: Linux's CLOCK_MONOTONIC_RAW
 * (jackd2's); elsewhere the same as da_now_ns. */
int64_t da_now_raw_ns(void);
/* Sleep at least ns (interruptions resume the sleep). */
void da_sleep_ns(int64_t ns);

/* ---- semaphores ----------------------------------------------------------------- */

/* A counting semaphore, starting at 0. Allocated (NULL: out of memory),
 * because its size differs per platform and no OS type may leak here. */
typedef struct da_sem da_sem;
da_sem *da_sem_new(void);
void da_sem_free(da_sem *s);
/* Safe from a real-time thread: never blocks, never allocates. */
void da_sem_post(da_sem *s);
/* Take s, waiting as long as it takes: 0, or -EINTR (look again). */
int da_sem_wait(da_sem *s);
/* Take s, waiting until until_ns on da_now_ns's clock at the latest
 * (interruptions resume the wait): 0, or -ETIMEDOUT. */
int da_sem_wait_until(da_sem *s, int64_t until_ns);
/* Take s if it can be taken now: 0, or -EAGAIN. */
int da_sem_trywait(da_sem *s);

/* ---- threads ------------------------------------------------------------------- */

typedef struct da_thread da_thread;
/* Start a thread running fn(arg): real-time (SCHED_FIFO 60; Windows: time
 * critical) when want_realtime and the system allows it, else an ordinary
 * thread. 0 or a positive errno; *realtime says which it got. */
int da_thread_start(da_thread **thread, void *(*fn)(void *), void *arg, int want_realtime,
                    int *realtime);
/* Wait for the thread to end and release it. */
void da_thread_join(da_thread *thread);
/* Release it without waiting: it ends on its own. */
void da_thread_detach(da_thread *thread);
/* Whether the calling thread runs at real-time priority. */
int da_thread_is_realtime(void);
/* Make the calling thread real-time at `priority` (1..99, SCHED_FIFO's
 * scale): 0, or a negative errno with the reason in msg. */
int da_thread_make_realtime(int priority, char *msg, size_t len);

/* ---- processors ---------------------------------------------------------------- */

#define DA_CPU_MAX 1024
typedef struct {
    uint64_t bits[DA_CPU_MAX / 64];
} da_cpus;
/* The CPU the calling thread runs on, or -1 where the system does not say. */
int da_cpu_current(void);
/* The CPUs the calling thread may run on: 0, or -ENOSYS (no affinity here). */
int da_cpu_allowed(da_cpus *out);
/* Keep the calling thread on one CPU: 0, or a negative errno. */
int da_cpu_pin(int cpu);
static inline int da_cpus_has(const da_cpus *set, int cpu) {
    return cpu >= 0 && cpu < DA_CPU_MAX && (set->bits[cpu / 64] >> (cpu % 64)) & 1u;
}

/* ---- run-time linking ---------------------------------------------------------- */

/* Load the library at `name` (a soname, a file path) once per process and
 * resolve every symbol into its slot (a function pointer's address), then
 * call `loaded` (may be NULL). *handle is the host's process-wide handle;
 * one process-wide lock serialises every load. 0 (also when already
 * loaded), or -ENOENT with the reason in msg (nothing stays loaded). */
typedef struct {
    void *slot;
    const char *name;
} da_symbol;
int da_load_library(const char *name, const da_symbol *symbols, size_t count,
                    void (*loaded)(void), void **handle, char *msg, size_t len);

#endif
