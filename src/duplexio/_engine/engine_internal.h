/* The engine's own view of a stream (engine.c, program.c, blocking.c):
 * struct da_engine, and what the three units share on the device thread.
 * Hosts never include this (engine.h is theirs).
 *
 * A stream is one of three modes, each in its own sub-structure and file:
 * a callback stream (the hand-over to the Python worker: the top-level
 * fields, engine.c), a program stream (`prog`, program.c) and a blocking
 * stream (`rings`, blocking.c). An aggregate links two engines (`agg`):
 * the input device's feeds the aggregate, the output device's pulls from
 * it (aggregate.c). */
#ifndef DA_ENGINE_INTERNAL_H
#define DA_ENGINE_INTERNAL_H

#include <stdatomic.h>

#include "aggregate.h"
#include "engine.h"
#include "samples.h"

#define EVENT_RING 64       /* events are rare: state changes, not xruns */
#define HANDOFF_LOG 65536   /* last hand-over times, for benchmarks */
#define TIMING_LOG 4096     /* last deadline anchors and wake-ups, for tests */
#define GAP_LOG DA_GAP_LOG  /* input gaps a blocking reader has yet to meet */

typedef struct {
    atomic_uint_fast64_t ready; /* index + 1 once code/value are written */
    int32_t code;
    int64_t value;
} event_slot;

/* Program mode: set before the first start, then device-thread only
 * (pos); Python reads the published copies (done, xruns, the instants). */
typedef struct {
    int on;
    const void *play;
    void *record;
    uint64_t play_frames, record_frames, total_frames, pos;
    int64_t in_ns, out_ns;
    atomic_uint_fast64_t done; /* release: the instants are written first */
    atomic_uint_fast64_t xruns;
} program_mode;

/* Blocking mode: set before the first start; then the device thread is the
 * only writer of what follows but the waiting flag. */
typedef struct {
    int on;
    da_ring *in, *out;
    uint64_t gap_pending; /* input frames missing since the last write */
    int gap_glitch;       /* a device glitch since the last write */
    int dropping;         /* the last input block was dropped */
    da_gap gap_log[GAP_LOG];
    atomic_uint_fast64_t gap_count; /* release: the entry is written first */
    atomic_uint_fast64_t overflows, overflow_frames, underflows, underflow_frames;
    atomic_uint_fast64_t input_lost, output_shift;
    da_sem *sem; /* posted when a reader or writer waits */
    atomic_int waiting;
} ring_mode;

/* An aggregate, set before the first start. feed: this engine's cycles go
 * into the aggregate (an input device's), its events and failure to
 * `forward` (the stream's engine). pull: this engine's input comes from the
 * aggregate (the output device's). */
typedef struct {
    da_agg *feed, *pull;
    da_engine *forward;
} agg_link;

struct da_engine {
    /* fixed at creation */
    uint32_t in_ch, out_ch, frames, rate;
    int in_fmt, out_fmt;
    int pipelined;
    int64_t deadline_ns, period_ns;
    void *in_block, *out_block; /* owned by Python */

    /* control, written by Python */
    atomic_int state;
    atomic_uint drain_left;

    /* hand-over (callback streams) */
    da_sem *work_sem, *done_sem;
    atomic_uint_fast64_t handed; /* seq of the last block handed over */
    atomic_uint_fast64_t done;   /* seq of the last block finished */
    atomic_int done_status;
    atomic_int quit;
    da_block_info info; /* written before work_sem is posted */

    /* device-thread only */
    uint64_t played; /* pipelined: last seq whose output was used */
    int pending_xrun;

    program_mode prog;
    ring_mode rings;
    agg_link agg;

    /* worker only */
    uint64_t working_seq;
    int64_t work_start_ns;
    int follow;            /* run where the device thread ran */
    int worker_cpu;        /* where the worker is pinned, -1: not */
    da_cpus allowed;       /* the worker's CPUs before it followed */
    atomic_int device_cpu; /* device thread's CPU at the last hand-over */

    /* stats: single writer each, read relaxed */
    atomic_uint_fast64_t cycles, callbacks, late, skipped, xruns;
    atomic_uint_fast64_t cb_total, cb_max, ho_total, ho_max, handoffs, ev_dropped, lost;
    atomic_int_fast64_t last_cycle_ns;
    atomic_int realtime, worker_realtime;
    uint32_t *handoff_log;
    int64_t (*timing_log)[2]; /* device thread writes, tests read */
    atomic_uint_fast64_t timings;

    /* events: many writers, one reader */
    da_sem *ev_sem;
    atomic_uint_fast64_t ev_write;
    atomic_uint_fast64_t ev_read;
    event_slot events[EVENT_RING];
};

/* ---- shared by the modes, on the device thread (engine.c) ----------------- */

/* Silence on every output channel. */
void engine_silence(const da_engine *e, float *const *out, size_t stride, uint32_t frames);
/* The device's output from an interleaved array in the user's format,
 * starting at frame `from`. */
void engine_play_from(const da_engine *e, const void *src, uint64_t from, float *const *out,
                      size_t stride, uint32_t frames);

/* ---- the modes' cycles ------------------------------------------------------ */

/* One block of a program stream (program.c). */
void program_run(da_engine *e, const float *const *in, size_t in_stride, float *const *out,
                 size_t out_stride, uint32_t frames, const da_cycle_time *t, int device_xrun);
/* One block of a blocking stream (blocking.c). */
void rings_run(da_engine *e, const float *const *in, size_t in_stride, float *const *out,
               size_t out_stride, uint32_t frames, const da_cycle_time *t, int device_xrun);
/* A draining blocking stream plays what was written before the drain: 1
 * when its output ring gave this block (blocking.c). */
int rings_drain(da_engine *e, float *const *out, size_t out_stride, uint32_t frames);
/* Wake a blocked reader or writer (blocking.c). */
void rings_wake(da_engine *e);

#endif
