/* What the engine gives the hosts' C (each host folder): the per-cycle
 * entry point, sample conversion, timing helpers, thread start and run-time
 * library loading. Python sees only engine_api.h, which this includes, and
 * each host's own <name>_api.h.
 *
 * The C boundary, for every host: a function that can fail returns 0 (or a
 * count) on success and a negative errno code on failure, and writes why
 * into a buffer its caller passes as its last two parameters (char *msg,
 * size_t len). A function that writes text into a caller's buffer returns
 * -ENOSPC when the buffer is short, so the caller can grow it. A function
 * that cannot fail returns void. No host keeps a message in a file-scope
 * buffer. */
#ifndef DA_ENGINE_H
#define DA_ENGINE_H

#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "engine_api.h"

/* ---- the per-cycle entry point ---------------------------------------------- */

/* Where a cycle sits in time, given by the host's device thread. */
typedef struct {
    int64_t callback_ns;        /* the cycle's start on the stream's timeline */
    int64_t wakeup_ns;          /* when the device thread woke for it (da_now_ns) */
    int64_t deadline_anchor_ns; /* start the worker's deadline from here: the
                                   wake-up, never an estimate before it */
    int64_t deadline_limit_ns;  /* and end it by here at the latest (0: no limit
                                   but the period): what the device allows */
    int64_t input_device_ns;    /* capture instant of the first input frame */
    int64_t output_device_ns;   /* playback instant of the first output frame */
    uint32_t lost_cycles;       /* whole cycles lost before this one (counted) */
} da_cycle_time;

/* One device cycle, called from the host's real-time thread. Channel c of
 * the device's float32 input is in[c][0], in[c][stride], ...; likewise
 * out. Never blocks longer than the deadline, never allocates, never takes
 * a lock Python can hold. Writes silence where Python gave nothing.
 * device_xrun: frames were lost, repeated or late before this cycle (the
 * host's own synchronous check); the block handed over carries the flag,
 * and t->lost_cycles says how many whole cycles went. */
void da_engine_process(da_engine *e, const float *const *in, size_t in_stride,
                       float *const *out, size_t out_stride, uint32_t frames,
                       const da_cycle_time *t, int device_xrun);

/* For host drivers: whether the device thread runs real-time. */
void da_engine_set_realtime(da_engine *e, int realtime);
uint32_t da_engine_frames(const da_engine *e);

/* Fail the stream from a device thread: post the event and stop handing
 * blocks to Python, so no block of a changed size ever reaches the user. */
void da_engine_fail(da_engine *e, int event, int64_t value);

/* ---- sample conversion (samples.c): the one converter ----------------------- */

/* Bytes per sample of a DA_FMT_* format (24-bit in an int32); 0 if unknown. */
size_t da_format_bytes(int fmt);
/* n float samples src[0], src[src_stride], ... into dst[index], dst[index +
 * step], ... in format fmt. */
void da_store(int fmt, void *dst, size_t index, size_t step, const float *src, size_t src_stride,
              size_t n);
/* n samples src[index], src[index + step], ... of format fmt into
 * dst[0], dst[dst_stride], ... as float. */
void da_load(int fmt, const void *src, size_t index, size_t step, float *dst, size_t dst_stride,
             size_t n);
/* n samples of the format's silence. */
void da_fill_equilibrium(int fmt, void *dst, size_t n);

/* ---- time and threads ------------------------------------------------------- */

/* CLOCK_MONOTONIC nanoseconds as a timespec. */
struct timespec da_timespec(int64_t ns);
/* Take sem, waiting until until_ns on CLOCK_MONOTONIC at the latest
 * (interruptions resume the wait): 0, or -ETIMEDOUT. */
int da_sem_wait_until(sem_t *sem, int64_t until_ns);

/* Start a host's device thread: SCHED_FIFO when want_realtime and the
 * system allows it, else an ordinary thread. 0 or an errno; *realtime says
 * which it got. */
int da_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg, int want_realtime,
                    int *realtime);

/* ---- run-time linking ------------------------------------------------------- */

/* dlopen `soname` once per process and resolve every symbol into its slot
 * (a function pointer's address), then call `loaded` (may be NULL). *handle
 * is the host's process-wide handle, `lock` serialises loads. 0 (also when
 * already loaded), or -ENOENT with the reason in msg (nothing stays loaded). */
typedef struct {
    void *slot;
    const char *name;
} da_symbol;
int da_load_library(const char *soname, const da_symbol *symbols, size_t count,
                    void (*loaded)(void), void **handle, pthread_mutex_t *lock, char *msg,
                    size_t len);

#endif
