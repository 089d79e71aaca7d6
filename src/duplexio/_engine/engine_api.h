/* The engine's interface to Python, in the subset of C that cffi's cdef
 * parses: no includes, no guards, no macros but integer constants, and
 * DA_EXPORT (engine.h) before each function: the shared library exports it.
 * build.py feeds this file to cdef (DA_EXPORT removed) and engine.h includes
 * it, so the two sides can never disagree. */

/* Engine states, set by Python, read by the real-time side every cycle. */
#define DA_STATE_STOPPED 0
#define DA_STATE_RUNNING 1
#define DA_STATE_DRAINING 2
#define DA_STATE_FAILED 3

/* Events, posted by any thread, read by the stream's supervisor thread. */
#define DA_EV_NONE 0
#define DA_EV_DEVICE_LOST 1
#define DA_EV_BUFFER_SIZE_CHANGED 2
#define DA_EV_SAMPLE_RATE_CHANGED 3
#define DA_EV_DRAINED 4
#define DA_EV_CALLBACK_FAILED 5
#define DA_EV_BACKEND_ERROR 6
#define DA_EV_WAKE 7
#define DA_EV_DEVICE_CHANGED 8   /* not fatal: the server moved the stream */
#define DA_EV_FINISHED 9   /* a program stream has played and recorded everything */
#define DA_EV_CALLBACK_STOP 10   /* the callback raised CallbackStop or CallbackAbort */
#define DA_EV_LATENCY_CHANGED 11   /* the device's latency moved (value: by how many frames) */
#define DA_EV_DUPLEX_MOVED 12   /* the default a duplex stream follows moved, and its two
                                   directions cannot move together: fatal */

/* Sample formats: the values of duplexio.formats.SampleFormat. */
#define DA_FMT_I8 1
#define DA_FMT_I16 2
#define DA_FMT_I24 3
#define DA_FMT_I32 4
#define DA_FMT_I64 5
#define DA_FMT_U8 6
#define DA_FMT_U16 7
#define DA_FMT_U32 8
#define DA_FMT_U64 9
#define DA_FMT_F32 10
#define DA_FMT_F64 11

/* Status a worker reports for the block it finished. */
#define DA_BLOCK_NONE -1
#define DA_BLOCK_OK 0
#define DA_BLOCK_FAILED 1

typedef struct da_engine da_engine;

/* What the worker learns about the block it is handed. Times are
 * CLOCK_MONOTONIC nanoseconds. */
typedef struct {
    uint64_t seq;
    int64_t callback_ns;
    int64_t input_device_ns;
    int64_t output_device_ns;
    uint32_t frames;
    int32_t xrun;
    uint64_t lost_frames; /* input frames lost since the previous block (the
                             timestamps advanced by frames + lost_frames) */
} da_block_info;

typedef struct {
    uint64_t cycles;          /* device cycles while running or draining */
    uint64_t callbacks;       /* blocks whose callback finished in time */
    uint64_t late_blocks;     /* blocks whose callback missed the deadline */
    uint64_t skipped_blocks;  /* cycles not handed over: the worker was busy */
    uint64_t xruns;           /* glitches reported by the device or server */
    uint64_t callback_ns_total;
    uint64_t callback_ns_max;
    uint64_t handoff_ns_total; /* real-time side: hand-over to result */
    uint64_t handoff_ns_max;
    uint64_t handoffs;
    uint64_t events_dropped;
    uint64_t lost_cycles;     /* whole device cycles lost (glitches the host counted) */
    int64_t last_cycle_ns;
    int32_t realtime;         /* the device thread runs with SCHED_FIFO */
    int32_t worker_realtime;  /* the Python worker runs with SCHED_FIFO */
} da_stats;

typedef struct {
    int32_t code;
    int64_t value;
} da_event;

/* Every function here that can fail returns 0 (or a count) or a negative
 * errno code and writes why into the (msg, len) its caller passes last, as
 * every host's do (engine.h); a constructor returns its object through its
 * first parameter. */

/* The blocks are the Python side's numpy arrays (frames x channels, the
 * user's formats; a blocking stream's hold max(frames, device_frames));
 * they must outlive the engine. A callback stream gets `frames`-frame
 * blocks on a device running `device_frames`-frame periods: when the two
 * differ the engine re-blocks, which delays the output by
 * da_engine_reblock_latency frames. */
DA_EXPORT int da_engine_new(da_engine **out, uint32_t in_channels, int in_format, void *in_block,
                            uint32_t out_channels, int out_format, void *out_block,
                            uint32_t frames, uint32_t device_frames, uint32_t sample_rate,
                            int pipelined, double deadline, char *msg, size_t len);
DA_EXPORT uint32_t da_engine_reblock_latency(const da_engine *e);
DA_EXPORT void da_engine_free(da_engine *e);
DA_EXPORT void da_engine_set_state(da_engine *e, int state, uint32_t drain_cycles);
DA_EXPORT int da_engine_state(da_engine *e);
DA_EXPORT void da_engine_stats(da_engine *e, da_stats *out);
DA_EXPORT size_t da_engine_handoff_log(da_engine *e, uint32_t *out, size_t max);

/* Program streams: the device thread itself plays from and records into
 * arrays (the user's formats, frames x channels, interleaved), with no
 * Python per block. Set before the first start; the arrays must outlive the
 * engine. The program runs total_frames (>= both lengths: the rest is
 * silence, e.g. for output still in flight), then posts DA_EV_FINISHED and
 * plays silence. -EINVAL for a missing array or a short total. */
typedef struct {
    uint64_t frames_done;      /* of total_frames; moves a block at a time */
    uint64_t total_frames;
    int64_t input_device_ns;   /* capture instant of the program's first input frame */
    int64_t output_device_ns;  /* playback instant of its first output frame */
    uint64_t xruns;            /* device glitches after the first block: alignment may slip */
    int32_t started;           /* the first block ran: the instants are set */
    int32_t finished;
} da_program_status;

DA_EXPORT int da_engine_program(da_engine *e, const void *play, uint64_t play_frames,
                                void *record, uint64_t record_frames, uint64_t total_frames,
                                char *msg, size_t len);
DA_EXPORT void da_engine_program_status(da_engine *e, da_program_status *out);

/* Blocking streams (ring.c): a lock-free single-producer single-consumer
 * ring of whole frames. For a stream built without a callback the device
 * thread fills the input ring and drains the output ring itself; Python
 * reads and writes the other ends. Totals are running frame counts. */
typedef struct da_ring da_ring;
DA_EXPORT int da_ring_new(da_ring **out, uint64_t capacity_frames, uint32_t frame_bytes,
                          char *msg, size_t len);
DA_EXPORT void da_ring_free(da_ring *r);
DA_EXPORT uint64_t da_ring_capacity(const da_ring *r);
DA_EXPORT uint64_t da_ring_readable(da_ring *r);
DA_EXPORT uint64_t da_ring_writable(da_ring *r);
DA_EXPORT uint64_t da_ring_read(da_ring *r, void *dst, uint64_t frames);
DA_EXPORT uint64_t da_ring_write(da_ring *r, const void *src, uint64_t frames);
DA_EXPORT uint64_t da_ring_read_total(da_ring *r);
DA_EXPORT uint64_t da_ring_write_total(da_ring *r);

/* Input frames missing from the ring before ring frame `at` (its running
 * position): dropped because the ring was full, or lost by the device. A
 * device glitch that lost no whole cycle (a restart or re-alignment of its
 * directions) is logged too, with lost = 0: the input is not continuous
 * there, and a duplex stream's round trip may have changed. */
typedef struct {
    uint64_t at;
    uint64_t lost;
} da_gap;

typedef struct {
    uint64_t overflows;         /* runs of input blocks dropped: the ring was full */
    uint64_t overflow_frames;
    uint64_t underflows;        /* output blocks short of data: silence filled in */
    uint64_t underflow_frames;
    uint64_t input_lost_frames; /* all input missing from the ring (overflow + device) */
    uint64_t output_shift_frames; /* output timeline not taken from the ring
                                     (underflow + device): written data plays
                                     this much later than its count */
    uint64_t gaps;              /* gaps logged so far (da_engine_gaps) */
    uint64_t xruns;             /* device glitches so far (as stats.xruns) */
} da_ring_status;

/* Give a stream its rings (either may be NULL) before its first start. The
 * engine then runs no worker: each cycle's input goes into `in`, the output
 * comes from `out` (silence where it runs short). The rings must outlive
 * the engine's device use. -EINVAL for a program stream, or no ring. */
DA_EXPORT int da_engine_rings(da_engine *e, da_ring *input_ring, da_ring *output_ring, char *msg,
                              size_t len);
DA_EXPORT void da_engine_ring_status(da_engine *e, da_ring_status *out);
/* Gaps number `first` onwards (oldest first) into out; returns how many.
 * Only the last DA_GAP_LOG are kept: older ones are gone (the totals still count). */
#define DA_GAP_LOG 4096
DA_EXPORT size_t da_engine_gaps(da_engine *e, uint64_t first, da_gap *out, size_t max);
/* Wait until the input ring holds `frames` (output=0) or the output ring
 * has room for them (output=1), for timeout_ns at most (< 0: forever).
 * 1: there; 0: timed out; -EPIPE: the stream is not running (stopped,
 * paused, failed or closed), so waiting would not help. Nothing to say
 * beyond that, so no message. */
DA_EXPORT int da_engine_ring_wait(da_engine *e, int output, uint64_t frames, int64_t timeout_ns);

/* Two devices made one duplex device (aggregate.c). The output device's
 * clock is the master: its device thread pulls the input from a ring the
 * input device's thread fills, through an adaptive band-limited resampler
 * whose ratio a control loop sets from both devices' timestamps, so that
 * every input frame reaches the callback `fill_frames` after it reached
 * the ring. */
typedef struct da_agg da_agg;
typedef struct {
    double drift_ppm;       /* the input clock against the output's, measured */
    double error_frames;    /* the read position against its target, last cycle */
    int32_t locked;         /* within a frame of the target for a quarter second */
    uint64_t locks;         /* times the lock was (re)gained */
    uint64_t jumps;         /* times the read position was set afresh (flagged) */
    uint64_t underruns;     /* output cycles that found the input short */
    uint64_t overruns;      /* input blocks dropped: the ring was full */
    int64_t first_lock_ns;  /* from the first pulled cycle to the first lock; -1: none */
    int64_t input_latency_ns; /* the input device's cycle start less its capture instant */
    int64_t input_cycle_ns;   /* the input's last block's cycle start (monotonic ns); 0: none */
    int32_t clocks_settled;   /* drift_ppm is past the clock loops' first second */
    double max_drift_ppm;     /* the most drift the loop follows; beyond it the stream fails */
} da_agg_status;
DA_EXPORT int da_agg_new(da_agg **out, uint32_t channels, uint32_t sample_rate,
                         uint32_t input_frames, uint32_t output_frames, uint32_t fill_frames,
                         char *msg, size_t len);
DA_EXPORT void da_agg_free(da_agg *a);
DA_EXPORT void da_agg_status_get(da_agg *a, da_agg_status *out);
/* input_side's cycles feed the aggregate; its events and failure go to
 * `stream` (the stream's engine). output_side: its input comes from the
 * aggregate. Before the first start; -EINVAL for engines that cannot. */
DA_EXPORT int da_engine_feed(da_engine *input_side, da_agg *a, da_engine *stream, char *msg,
                             size_t len);
DA_EXPORT int da_engine_pull(da_engine *stream, da_agg *a, char *msg, size_t len);

DA_EXPORT int da_worker_next(da_engine *e, int status, da_block_info *info);
DA_EXPORT void da_worker_quit(da_engine *e);
/* Called on the worker thread itself: SCHED_FIFO at `priority` (below the
 * device thread's). 0, or a negative errno (-EPERM: not allowed) with why.
 * Granted on a same-cycle stream, the worker then runs on the device
 * thread's CPU, following it when it moves (engine.c, follow_device_cpu). */
DA_EXPORT int da_worker_realtime(da_engine *e, int priority, char *msg, size_t len);
/* The last blocks' deadline anchors and the device thread's wake-ups (ns,
 * pairs, oldest first), for tests and benchmarks; returns how many. */
DA_EXPORT size_t da_engine_timing_log(da_engine *e, int64_t *anchor, int64_t *wakeup, size_t max);

DA_EXPORT void da_event_post(da_engine *e, int code, int64_t value);
DA_EXPORT int da_event_wait(da_engine *e, int64_t timeout_ns, da_event *ev);

DA_EXPORT int64_t da_now_ns(void);
/* frames -> ns, rounded half up like duplexio.timing.frames_to_ns, exact
 * for any stream length (no overflow for centuries at any rate). */
DA_EXPORT int64_t da_frames_to_ns(int64_t frames, uint32_t rate);
/* n samples from one format to another by the engine's rules (samples.c);
 * -EINVAL for an unknown format. */
DA_EXPORT int da_convert(const void *src, int src_format, void *dst, int dst_format, size_t n,
                         char *msg, size_t len);
