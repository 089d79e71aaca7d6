/* Internal header for the engine and the host drivers written in C.
 * Python sees only engine_api.h; this adds what a device thread calls. */
#ifndef DA_ENGINE_H
#define DA_ENGINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "engine_api.h"

/* Where a cycle sits in time, given by the host's device thread. */
typedef struct {
    int64_t callback_ns;        /* when the cycle really started */
    int64_t deadline_anchor_ns; /* start the worker's deadline from here */
    int64_t input_device_ns;    /* capture instant of the first input frame */
    int64_t output_device_ns;   /* playback instant of the first output frame */
} da_cycle_time;

/* One device cycle, called from the host's real-time thread. Channel c of
 * the device's float32 input is in[c][0], in[c][stride], ...; likewise
 * out. Never blocks longer than the deadline, never allocates, never takes
 * a lock Python can hold. Writes silence where Python gave nothing. */
void da_engine_process(da_engine *e, const float *const *in, size_t in_stride,
                       float *const *out, size_t out_stride, uint32_t frames,
                       const da_cycle_time *t, int device_xrun);

/* For host drivers: whether the device thread runs real-time. */
void da_engine_set_realtime(da_engine *e, int realtime);
uint32_t da_engine_frames(const da_engine *e);

/* Fail the stream from a device thread: post the event and stop handing
 * blocks to Python, so no block of a changed size ever reaches the user. */
void da_engine_fail(da_engine *e, int event, int64_t value);

/* Start a host's device thread: SCHED_FIFO when want_realtime and the
 * system allows it, else an ordinary thread. 0 or an errno; *realtime says
 * which it got. */
int da_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg, int want_realtime,
                    int *realtime);

/* Run-time linking for hosts: dlopen `soname` and resolve every symbol into
 * its slot (a function pointer's address). 0, or -1 with a message in err
 * (nothing stays loaded then). */
typedef struct {
    void *slot;
    const char *name;
} da_symbol;
int da_load_library(const char *soname, const da_symbol *symbols, size_t count, void **handle,
                    char *err, size_t len);

#endif
