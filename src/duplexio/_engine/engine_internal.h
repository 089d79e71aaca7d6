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

/* Re-blocking: a callback stream whose blocks (`frames`) are not the
 * device's period (`device_frames`). Input gathers in `acc` until a block
 * is whole; the callback runs in the cycle that completes it; its output
 * joins `fifo`, which starts `latency` frames full so that every cycle
 * finds its period there. Device-thread only, but `reset`. */
typedef struct {
    int on;
    uint32_t latency;      /* frames - gcd(frames, device_frames) */
    uint32_t fill;         /* input frames gathered in acc */
    float *acc;            /* in_ch planes of `frames` */
    float *fifo;           /* out_ch planes of `cap` */
    uint32_t cap, head, level;
    const float **acc_planes;
    atomic_int reset;      /* set by a start: begin again from the prefill */
} reblock_mode;

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
    uint32_t device_frames; /* the device's period: frames, unless re-blocked */
    int in_fmt, out_fmt;
    int pipelined;
    int64_t deadline_ns; /* after a cycle's anchor: a fraction of the device period */
    int64_t period_ns;   /* of one block */
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
    uint64_t pending_lost; /* input frames the next block's callback will not have seen */

    program_mode prog;
    ring_mode rings;
    reblock_mode reblock;
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

/* The callback stream's steps for one block (engine.c): 1 when the worker
 * is still on an earlier block (this one is lost to it: counted and
 * flagged, and the caller plays silence); post a block; wait for its result
 * until the cycle's deadline. */
int engine_worker_busy(da_engine *e, uint32_t frames);
uint64_t engine_hand_over(da_engine *e, const float *const *in, size_t in_stride, uint32_t frames,
                          const da_cycle_time *t, int64_t *posted);
int engine_await_result(da_engine *e, uint64_t seq, int64_t posted, const da_cycle_time *t);
/* Wait until the worker has finished what it was handed, or the cycle's deadline. */
void engine_await_idle(da_engine *e, const da_cycle_time *t);
/* Frames' duration after a cycle's anchor by which a block must be finished. */
int64_t engine_deadline(const da_engine *e, const da_cycle_time *t);

/* ---- the modes' cycles ------------------------------------------------------ */

/* Re-blocking (reblock.c): made with the engine, reset by a start. */
int reblock_init(da_engine *e, char *msg, size_t len);
void reblock_free(da_engine *e);
/* One device cycle of a re-blocked callback stream, and one while draining. */
void reblock_run(da_engine *e, const float *const *in, size_t in_stride, float *const *out,
                 size_t out_stride, const da_cycle_time *t, int device_xrun);
void reblock_drain(da_engine *e, float *const *out, size_t out_stride);

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
