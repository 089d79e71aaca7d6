/* What the engine gives the hosts' C (each host folder): the per-cycle
 * entry point; threads, semaphores, the clock and run-time library loading
 * come from the platform layer (platform.h, which this includes). A host
 * whose device speaks integers includes samples.h (the one converter), one
 * that resamples resample.h; the engine's other units (engine_internal.h,
 * aggregate.h, ring.h) are its own. Python sees only engine_api.h, which
 * this includes, and each host's own <name>_api.h.
 *
 * The C boundary, for the engine and every host: a function that can fail
 * returns 0 (or a count) on success and a negative errno code on failure,
 * and writes why into a buffer its caller passes as its last two
 * parameters (char *msg, size_t len; da_say writes it); a constructor
 * returns its object through its first parameter. A function that writes
 * text into a caller's buffer returns -ENOSPC when the buffer is short, so
 * the caller can grow it. A function that cannot fail returns void. No host
 * keeps a message in a file-scope buffer. */
#ifndef DA_ENGINE_H
#define DA_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* Every function of the *_api.h headers is the shared library's interface
 * (loaded by Python with cffi's ABI mode); nothing else is exported. */
#if defined(_WIN32)
#define DA_EXPORT __declspec(dllexport)
#else
#define DA_EXPORT __attribute__((visibility("default")))
#endif

#include "engine_api.h"
#include "platform.h"

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

/* Write why a call failed into the caller's (msg, len), printf-style, and
 * return `code` (a negative errno): `return da_say(msg, len, -EINVAL, ...)`. */
int da_say(char *msg, size_t len, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Run fn(arg) on a helper thread and wait until timeout_ms at most: 0 when
 * it returned (or ran here, when no thread could be started), -ETIMEDOUT
 * when it did not: it is abandoned and goes on alone, so fn must own arg
 * (free what it frees). For closing calls into a library that can block
 * forever on a server that died. */
int da_run_within(void (*fn)(void *), void *arg, int timeout_ms);

#endif
