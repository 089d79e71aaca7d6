/* The real-time engine: the per-stream hand-over between a device thread
 * (C, never touches the GIL) and the Python worker thread that runs the
 * user's callback.
 *
 * The device thread calls da_engine_process once per cycle. It converts the
 * device's input into the user's block, posts the block to the worker and,
 * in same-cycle mode, waits for the result until a deadline inside the
 * period. A block that misses the deadline is played as silence, counted,
 * and flagged as an xrun on the next block. Sequence numbers, not semaphore
 * counts, decide whether a result belongs to the current block: a late
 * worker still posts "done" after the device thread gave up on it.
 *
 * Threads: one device thread (writer of the real-time fields), one worker
 * (writer of the worker fields), any number of event posters, one event
 * reader (the supervisor). */
#include "engine.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_RING 64       /* events are rare: state changes, not xruns */
#define HANDOFF_LOG 65536   /* last hand-over times, for benchmarks */
#define TIMING_LOG 4096     /* last deadline anchors and wake-ups, for tests */
#define GAP_LOG DA_GAP_LOG  /* input gaps a blocking reader has yet to meet */

typedef struct {
    atomic_uint_fast64_t ready; /* index + 1 once code/value are written */
    int32_t code;
    int64_t value;
} event_slot;

struct da_engine {
    /* fixed at creation */
    uint32_t in_ch, out_ch, frames, rate;
    int in_fmt, out_fmt;
    int pipelined;
    int64_t deadline_ns, period_ns;
    void *in_block, *out_block;        /* owned by Python */

    /* control, written by Python */
    atomic_int state;
    atomic_uint drain_left;

    /* hand-over */
    da_sem *work_sem, *done_sem;
    atomic_uint_fast64_t handed;   /* seq of the last block handed over */
    atomic_uint_fast64_t done;     /* seq of the last block finished */
    atomic_int done_status;
    atomic_int quit;
    da_block_info info;            /* written before work_sem is posted */

    /* device-thread only */
    uint64_t played;               /* pipelined: last seq whose output was used */
    int pending_xrun;

    /* program mode: set before the first start, then device-thread only
     * (prog_pos); Python reads the published copies below */
    int program;
    const void *play;
    void *record;
    uint64_t play_frames, record_frames, total_frames, prog_pos;
    int64_t prog_in_ns, prog_out_ns;
    atomic_uint_fast64_t prog_done;   /* release: the instants are written first */
    atomic_uint_fast64_t prog_xruns;

    /* aggregate: set before the first start. feed: this engine's cycles
     * go into the aggregate (an input device's), its events and failure to
     * `forward` (the stream's engine). pull: this engine's input comes from
     * the aggregate (the output device's). */
    da_agg *feed, *pull;
    da_engine *forward;

    /* blocking streams: set before the first start; then the device thread
     * is the only writer of what follows but the waiting flags */
    int rings;
    da_ring *in_ring, *out_ring;
    uint64_t gap_pending;              /* input frames missing since the last write */
    int gap_glitch;                    /* a device glitch since the last write */
    int dropping;                      /* the last input block was dropped */
    da_gap gap_log[GAP_LOG];
    atomic_uint_fast64_t gap_count;    /* release: the entry is written first */
    atomic_uint_fast64_t overflows, overflow_frames, underflows, underflow_frames;
    atomic_uint_fast64_t input_lost, output_shift;
    da_sem *ring_sem;                  /* posted when a reader or writer waits */
    atomic_int ring_waiting;

    /* worker only */
    uint64_t working_seq;
    int64_t work_start_ns;
    int follow;                        /* run where the device thread ran */
    int worker_cpu;                    /* where the worker is pinned, -1: not */
    da_cpus allowed;                   /* the worker's CPUs before it followed */
    atomic_int device_cpu;             /* device thread's CPU at the last hand-over */

    /* stats: single writer each, read relaxed */
    atomic_uint_fast64_t cycles, callbacks, late, skipped, xruns;
    atomic_uint_fast64_t cb_total, cb_max, ho_total, ho_max, handoffs, ev_dropped, lost;
    atomic_int_fast64_t last_cycle_ns;
    atomic_int realtime, worker_realtime;
    uint32_t *handoff_log;
    int64_t (*timing_log)[2];          /* device thread writes, tests read */
    atomic_uint_fast64_t timings;

    /* events: many writers, one reader */
    da_sem *ev_sem;
    atomic_uint_fast64_t ev_write;
    atomic_uint_fast64_t ev_read;
    event_slot events[EVENT_RING];
};

int64_t da_frames_to_ns(int64_t frames, uint32_t rate) {
    int64_t r = (int64_t)rate, whole = frames / r, rest = frames % r;
    if (rest < 0) { rest += r; whole -= 1; }
    return whole * 1000000000LL + (2 * rest * 1000000000LL + r) / (2 * r);
}

/* ---- lifetime ------------------------------------------------------- */

int da_engine_new(da_engine **out, uint32_t in_channels, int in_format, void *in_block,
                  uint32_t out_channels, int out_format, void *out_block, uint32_t frames,
                  uint32_t sample_rate, int pipelined, double deadline, char *msg, size_t len) {
    *out = NULL;
    if (frames == 0 || sample_rate == 0 ||
        (in_channels && (!da_format_bytes(in_format) || !in_block)) ||
        (out_channels && (!da_format_bytes(out_format) || !out_block)) ||
        !(deadline > 0.0 && deadline <= 1.0))
        return da_say(msg, len, -EINVAL,
                      "no engine for %u frames at %u Hz, formats %d/%d, deadline %g", frames,
                      sample_rate, in_format, out_format, deadline);
    da_engine *e = calloc(1, sizeof *e);
    if (!e) return da_say(msg, len, -ENOMEM, "no memory for the stream's engine");
    e->in_ch = in_channels;
    e->out_ch = out_channels;
    e->in_fmt = in_format;
    e->out_fmt = out_format;
    e->frames = frames;
    e->rate = sample_rate;
    e->pipelined = pipelined;
    e->worker_cpu = -1;
    atomic_init(&e->device_cpu, -1);
    e->deadline_ns = (int64_t)(deadline * (double)frames * 1e9 / sample_rate);
    e->period_ns = da_frames_to_ns(frames, sample_rate);
    e->in_block = in_block;
    e->out_block = out_block;
    e->handoff_log = calloc(HANDOFF_LOG, sizeof(uint32_t));
    e->timing_log = calloc(TIMING_LOG, sizeof *e->timing_log);
    e->work_sem = da_sem_new();
    e->done_sem = da_sem_new();
    e->ev_sem = da_sem_new();
    e->ring_sem = da_sem_new();
    if (!e->handoff_log || !e->timing_log || !e->work_sem || !e->done_sem || !e->ev_sem ||
        !e->ring_sem) {
        da_engine_free(e);
        return da_say(msg, len, -ENOMEM, "no memory or semaphores for the stream's engine");
    }
    atomic_init(&e->state, DA_STATE_STOPPED);
    *out = e;
    return 0;
}

int da_say(char *msg, size_t len, int code, const char *fmt, ...) {
    if (msg && len) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(msg, len, fmt, args);
        va_end(args);
    }
    return code;
}

void da_engine_free(da_engine *e) {
    if (!e) return;
    da_sem_free(e->work_sem);
    da_sem_free(e->done_sem);
    da_sem_free(e->ev_sem);
    da_sem_free(e->ring_sem);
    free(e->handoff_log);
    free(e->timing_log);
    free(e);
}

uint32_t da_engine_frames(const da_engine *e) { return e->frames; }

static void ring_wake(da_engine *e);

void da_engine_set_state(da_engine *e, int state, uint32_t drain_cycles) {
    if (atomic_load(&e->state) == DA_STATE_FAILED) return; /* failure is final */
    atomic_store(&e->drain_left, drain_cycles);
    atomic_store(&e->state, state);
    ring_wake(e); /* a blocked read() or write() re-checks whether to go on */
}

int da_engine_state(da_engine *e) { return atomic_load(&e->state); }

void da_engine_set_realtime(da_engine *e, int realtime) { atomic_store(&e->realtime, realtime); }

#define LOAD(x) atomic_load_explicit(&e->x, memory_order_relaxed)
void da_engine_stats(da_engine *e, da_stats *out) {
    out->cycles = LOAD(cycles);
    out->callbacks = LOAD(callbacks);
    out->late_blocks = LOAD(late);
    out->skipped_blocks = LOAD(skipped);
    out->xruns = LOAD(xruns);
    out->callback_ns_total = LOAD(cb_total);
    out->callback_ns_max = LOAD(cb_max);
    out->handoff_ns_total = LOAD(ho_total);
    out->handoff_ns_max = LOAD(ho_max);
    out->handoffs = LOAD(handoffs);
    out->events_dropped = LOAD(ev_dropped);
    out->lost_cycles = LOAD(lost);
    out->last_cycle_ns = LOAD(last_cycle_ns);
    out->realtime = LOAD(realtime);
    out->worker_realtime = LOAD(worker_realtime);
}

size_t da_engine_handoff_log(da_engine *e, uint32_t *out, size_t max) {
    uint64_t n = LOAD(handoffs);
    size_t count = n < HANDOFF_LOG ? (size_t)n : HANDOFF_LOG;
    if (count > max) count = max;
    for (size_t i = 0; i < count; i++) out[i] = e->handoff_log[(n - count + i) % HANDOFF_LOG];
    return count;
}

size_t da_engine_timing_log(da_engine *e, int64_t *anchor, int64_t *wakeup, size_t max) {
    uint64_t n = atomic_load(&e->timings);
    size_t count = n < TIMING_LOG ? (size_t)n : TIMING_LOG;
    if (count > max) count = max;
    for (size_t i = 0; i < count; i++) {
        const int64_t *entry = e->timing_log[(n - count + i) % TIMING_LOG];
        anchor[i] = entry[0];
        wakeup[i] = entry[1];
    }
    return count;
}
#undef LOAD

/* ---- events ---------------------------------------------------------- */

void da_event_post(da_engine *e, int code, int64_t value) {
    if (e->forward) {
        da_event_post(e->forward, code, value);
        return;
    }
    uint64_t idx = atomic_load(&e->ev_write);
    do {
        if (idx - atomic_load(&e->ev_read) >= EVENT_RING) {
            /* The reader is a full ring behind: count, never block a device thread. */
            atomic_fetch_add(&e->ev_dropped, 1);
            return;
        }
    } while (!atomic_compare_exchange_weak(&e->ev_write, &idx, idx + 1));
    event_slot *s = &e->events[idx % EVENT_RING];
    s->code = code;
    s->value = value;
    atomic_store_explicit(&s->ready, idx + 1, memory_order_release);
    da_sem_post(e->ev_sem);
}

int da_event_wait(da_engine *e, int64_t timeout_ns, da_event *ev) {
    if (da_sem_wait_until(e->ev_sem, da_now_ns() + (timeout_ns > 0 ? timeout_ns : 0)) != 0)
        return 0;
    uint64_t r = atomic_load(&e->ev_read);
    event_slot *s = &e->events[r % EVENT_RING];
    /* A poster claims its slot before filling it: wait the few
     * instructions that takes. */
    while (atomic_load_explicit(&s->ready, memory_order_acquire) != r + 1) {
    }
    ev->code = s->code;
    ev->value = s->value;
    atomic_store(&e->ev_read, r + 1);
    return 1;
}

void da_engine_fail(da_engine *e, int event, int64_t value) {
    if (e->forward) { /* an aggregate's input device: the stream fails */
        atomic_store(&e->state, DA_STATE_FAILED);
        da_engine_fail(e->forward, event, value);
        return;
    }
    atomic_store(&e->state, DA_STATE_FAILED);
    da_event_post(e, event, value);
    ring_wake(e);
}

/* ---- aggregates ----------------------------------------------------- */

int da_engine_feed(da_engine *input_side, da_agg *a, da_engine *stream, char *msg, size_t len) {
    if (!a || !stream || stream == input_side || !input_side->in_ch || input_side->out_ch ||
        input_side->program || input_side->rings)
        return da_say(msg, len, -EINVAL, "only an input-only engine feeds an aggregate");
    input_side->feed = a;
    input_side->forward = stream;
    return 0;
}

int da_engine_pull(da_engine *stream, da_agg *a, char *msg, size_t len) {
    if (!a || !stream->in_ch || stream->feed)
        return da_say(msg, len, -EINVAL, "only a stream with input pulls from an aggregate");
    stream->pull = a;
    return 0;
}

/* ---- blocking streams: the rings' engine side ------------------------ */

int da_engine_rings(da_engine *e, da_ring *input_ring, da_ring *output_ring, char *msg,
                    size_t len) {
    if (e->program || (!input_ring && !output_ring) || (input_ring && !e->in_ch) ||
        (output_ring && !e->out_ch))
        return da_say(msg, len, -EINVAL, "rings that do not match the stream's directions");
    e->in_ring = input_ring;
    e->out_ring = output_ring;
    e->rings = 1;
    return 0;
}

#define LOAD(x) atomic_load_explicit(&e->x, memory_order_relaxed)
void da_engine_ring_status(da_engine *e, da_ring_status *out) {
    out->overflows = LOAD(overflows);
    out->overflow_frames = LOAD(overflow_frames);
    out->underflows = LOAD(underflows);
    out->underflow_frames = LOAD(underflow_frames);
    out->input_lost_frames = LOAD(input_lost);
    out->output_shift_frames = LOAD(output_shift);
    out->gaps = atomic_load_explicit(&e->gap_count, memory_order_acquire);
    out->xruns = LOAD(xruns);
}
#undef LOAD

size_t da_engine_gaps(da_engine *e, uint64_t first, da_gap *out, size_t max) {
    uint64_t n = atomic_load_explicit(&e->gap_count, memory_order_acquire);
    if (first + GAP_LOG < n) first = n - GAP_LOG; /* older entries are overwritten */
    size_t count = 0;
    for (uint64_t i = first; i < n && count < max; i++) out[count++] = e->gap_log[i % GAP_LOG];
    return count;
}

/* Wake a blocked reader or writer (it re-checks): a flag exchanged to 0, so
 * a cycle nobody waits on costs one atomic operation and no system call. */
static void ring_wake(da_engine *e) {
    if (atomic_exchange(&e->ring_waiting, 0)) da_sem_post(e->ring_sem);
}

int da_engine_ring_wait(da_engine *e, int output, uint64_t frames, int64_t timeout_ns) {
    da_ring *r = output ? e->out_ring : e->in_ring;
    if (!r) return -EPIPE;
    const int64_t until = timeout_ns < 0 ? 0 : da_now_ns() + timeout_ns;
    for (;;) {
        /* Flag first, then look: a cycle after the look sees the flag. */
        atomic_store(&e->ring_waiting, 1);
        if ((output ? da_ring_writable(r) : da_ring_readable(r)) >= frames) return 1;
        int state = atomic_load(&e->state);
        if (state != DA_STATE_RUNNING && state != DA_STATE_DRAINING) return -EPIPE;
        if (timeout_ns < 0) {
            if (da_sem_wait(e->ring_sem) != 0) return 0; /* a signal: the caller looks again */
        } else if (da_sem_wait_until(e->ring_sem, until) != 0) {
            return (output ? da_ring_writable(r) : da_ring_readable(r)) >= frames;
        }
    }
}

/* ---- program streams ------------------------------------------------ */

int da_engine_program(da_engine *e, const void *play, uint64_t play_frames, void *record,
                      uint64_t record_frames, uint64_t total_frames, char *msg, size_t len) {
    if ((e->out_ch && play_frames && !play) || (e->in_ch && record_frames && !record) ||
        total_frames == 0 || total_frames < play_frames || total_frames < record_frames)
        return da_say(msg, len, -EINVAL, "a program of %llu frames (%llu played, %llu recorded)",
                      (unsigned long long)total_frames, (unsigned long long)play_frames,
                      (unsigned long long)record_frames);
    e->play = e->out_ch ? play : NULL;
    e->play_frames = e->out_ch ? play_frames : 0;
    e->record = e->in_ch ? record : NULL;
    e->record_frames = e->in_ch ? record_frames : 0;
    e->total_frames = total_frames;
    e->prog_pos = 0;
    atomic_store(&e->prog_done, 0);
    atomic_store(&e->prog_xruns, 0);
    e->program = 1;
    return 0;
}

void da_engine_program_status(da_engine *e, da_program_status *out) {
    uint64_t done = atomic_load_explicit(&e->prog_done, memory_order_acquire);
    out->frames_done = done;
    out->total_frames = e->total_frames;
    out->started = done > 0;
    out->finished = e->program && done >= e->total_frames;
    out->input_device_ns = done ? e->prog_in_ns : 0;
    out->output_device_ns = done ? e->prog_out_ns : 0;
    out->xruns = atomic_load_explicit(&e->prog_xruns, memory_order_relaxed);
}

/* ---- the worker side (a Python thread, GIL released by cffi) --------- */

static void max_store(atomic_uint_fast64_t *m, uint64_t v) {
    if (v > atomic_load_explicit(m, memory_order_relaxed))
        atomic_store_explicit(m, v, memory_order_relaxed);
}

/* A same-cycle hand-over is a strict relay: the device thread posts the
 * block and sleeps until the worker answers, so the two never run at once.
 * On the same CPU that relay is two local context switches; across CPUs
 * each wake-up is an inter-processor interrupt to an idle CPU, which costs
 * device-thread CPU and hand-over time on every block. So a real-time
 * worker moves to the device thread's CPU when that changes (one syscall
 * per migration, none per block), within the CPUs it was allowed. A
 * normal-priority worker stays free: pinned, it could not escape a busy
 * CPU; and a pipelined worker runs beside the device thread by design. */
static void follow_device_cpu(da_engine *e) {
    const int cpu = atomic_load_explicit(&e->device_cpu, memory_order_relaxed);
    if (!e->follow || cpu < 0 || cpu == e->worker_cpu || !da_cpus_has(&e->allowed, cpu)) return;
    if (da_cpu_pin(cpu) == 0) e->worker_cpu = cpu;
    else e->follow = 0; /* refused (a cgroup's cpuset): stay as we are */
}

int da_worker_next(da_engine *e, int status, da_block_info *info) {
    if (status != DA_BLOCK_NONE && e->working_seq) {
        uint64_t took = (uint64_t)(da_now_ns() - e->work_start_ns);
        atomic_fetch_add_explicit(&e->cb_total, took, memory_order_relaxed);
        max_store(&e->cb_max, took);
        atomic_store(&e->done_status, status);
        atomic_store(&e->done, e->working_seq);
        e->working_seq = 0;
        da_sem_post(e->done_sem);
    }
    for (;;) {
        if (atomic_load(&e->quit)) return 0;
        if (da_sem_wait(e->work_sem) != 0) continue; /* EINTR */
        if (atomic_load(&e->quit)) return 0;
        if (atomic_load(&e->handed) == atomic_load(&e->done)) continue; /* stale post */
        break;
    }
    follow_device_cpu(e);
    e->work_start_ns = da_now_ns();
    *info = e->info;
    e->working_seq = info->seq;
    if (e->out_ch) da_fill_equilibrium(e->out_fmt, e->out_block, (size_t)e->out_ch * e->frames);
    return 1;
}

int da_worker_realtime(da_engine *e, int priority, char *msg, size_t len) {
    char why[200] = "";
    int err = da_thread_make_realtime(priority, why, sizeof why);
    atomic_store(&e->worker_realtime, err == 0);
    e->follow = !err && !e->pipelined && da_cpu_allowed(&e->allowed) == 0;
    if (err) snprintf(msg, len, "the Python worker: %s", why);
    return err;
}

void da_worker_quit(da_engine *e) {
    atomic_store(&e->quit, 1);
    da_sem_post(e->work_sem);
}

/* ---- the device side ------------------------------------------------- *
 * Called on the device's real-time thread. Must never: allocate, take a
 * lock, call into Python, or wait past the deadline. */

static void silence(const da_engine *e, float *const *out, size_t stride, uint32_t frames) {
    for (uint32_t c = 0; c < e->out_ch; c++)
        for (uint32_t f = 0; f < frames; f++) out[c][f * stride] = 0.0f;
}

/* The device's output from an interleaved array in the user's format,
 * starting at frame `from`. */
static void play_from(const da_engine *e, const void *src, uint64_t from, float *const *out,
                      size_t stride, uint32_t frames) {
    for (uint32_t c = 0; c < e->out_ch; c++)
        da_load(e->out_fmt, src, (size_t)from * e->out_ch + c, e->out_ch, out[c], stride, frames);
}

/* Pipelined: the previous block's result, if it is finished and unused. */
static void play_previous(da_engine *e, float *const *out, size_t stride, uint32_t frames) {
    uint64_t handed = atomic_load(&e->handed);
    if (handed != e->played && atomic_load(&e->done) == handed &&
        atomic_load(&e->done_status) == DA_BLOCK_OK) {
        play_from(e, e->out_block, 0, out, stride, frames);
        atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
    } else {
        silence(e, out, stride, frames);
    }
    e->played = handed;
}

/* Frames of [pos, pos + frames) that fall before len. */
static uint32_t within(uint64_t pos, uint64_t len, uint32_t frames) {
    if (pos >= len) return 0;
    return len - pos < frames ? (uint32_t)(len - pos) : frames;
}

/* One block of a program: copy out of the play array, into the record
 * array, count. */
static void run_program(da_engine *e, const float *const *in, size_t in_stride,
                        float *const *out, size_t out_stride, uint32_t frames,
                        const da_cycle_time *t, int device_xrun) {
    const uint64_t pos = e->prog_pos;
    if (pos >= e->total_frames) {
        silence(e, out, out_stride, frames);
        return;
    }
    if (pos == 0) {
        e->prog_in_ns = t->input_device_ns;
        e->prog_out_ns = t->output_device_ns;
    } else if (device_xrun) {
        /* Frames were lost between blocks: the recording may have slipped. */
        atomic_fetch_add_explicit(&e->prog_xruns, 1, memory_order_relaxed);
    }
    const uint32_t n_play = within(pos, e->play_frames, frames);
    play_from(e, e->play, pos, out, out_stride, n_play);
    for (uint32_t c = 0; c < e->out_ch; c++)
        for (uint32_t f = n_play; f < frames; f++) out[c][f * out_stride] = 0.0f;
    const uint32_t n_rec = within(pos, e->record_frames, frames);
    for (uint32_t c = 0; c < e->in_ch && n_rec; c++)
        da_store(e->in_fmt, e->record, (size_t)pos * e->in_ch + c, e->in_ch, in[c], in_stride,
                 n_rec);
    uint64_t next = pos + frames < e->total_frames ? pos + frames : e->total_frames;
    e->prog_pos = next;
    atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
    atomic_store_explicit(&e->prog_done, next, memory_order_release);
    if (next == e->total_frames) da_event_post(e, DA_EV_FINISHED, (int64_t)next);
}

/* The device's output from the output ring: what it holds, up to a block,
 * then silence. Returns the frames that came from the ring. */
static uint32_t play_ring(da_engine *e, float *const *out, size_t stride, uint32_t frames) {
    uint32_t got = (uint32_t)da_ring_read(e->out_ring, e->out_block, frames);
    da_fill_equilibrium(e->out_fmt,
                        (char *)e->out_block + (size_t)got * e->out_ch * da_format_bytes(e->out_fmt),
                        (size_t)(frames - got) * e->out_ch);
    play_from(e, e->out_block, 0, out, stride, frames);
    return got;
}

/* A blocking stream's cycle: the input into its ring, the output from its
 * ring. A full input ring drops the block (counted; the gap is logged at
 * the next block that fits, so consecutive drops are one gap); a short
 * output ring plays silence for the rest (counted). Frames the device lost
 * are a gap in the input and a shift of the output timeline alike. */
static void run_rings(da_engine *e, const float *const *in, size_t in_stride, float *const *out,
                      size_t out_stride, uint32_t frames, const da_cycle_time *t,
                      int device_xrun) {
    const uint64_t lost = device_xrun ? (uint64_t)t->lost_cycles * frames : 0;
    if (e->in_ring) {
        e->gap_pending += lost;
        /* A glitch that lost no whole cycle still breaks the input's
         * continuity: the reader that meets it must be told. */
        e->gap_glitch |= device_xrun;
        atomic_fetch_add_explicit(&e->input_lost, lost, memory_order_relaxed);
        if (da_ring_writable(e->in_ring) >= frames) {
            if (e->gap_pending || e->gap_glitch) {
                uint64_t n = atomic_load_explicit(&e->gap_count, memory_order_relaxed);
                e->gap_log[n % GAP_LOG] =
                    (da_gap){.at = da_ring_write_total(e->in_ring), .lost = e->gap_pending};
                atomic_store_explicit(&e->gap_count, n + 1, memory_order_release);
                e->gap_pending = 0;
                e->gap_glitch = 0;
            }
            for (uint32_t c = 0; c < e->in_ch; c++)
                da_store(e->in_fmt, e->in_block, c, e->in_ch, in[c], in_stride, frames);
            da_ring_write(e->in_ring, e->in_block, frames);
            e->dropping = 0;
        } else {
            if (!e->dropping) atomic_fetch_add_explicit(&e->overflows, 1, memory_order_relaxed);
            e->dropping = 1;
            e->gap_pending += frames;
            atomic_fetch_add_explicit(&e->overflow_frames, frames, memory_order_relaxed);
            atomic_fetch_add_explicit(&e->input_lost, frames, memory_order_relaxed);
        }
    }
    if (e->out_ring) {
        uint32_t got = play_ring(e, out, out_stride, frames);
        if (got < frames) {
            atomic_fetch_add_explicit(&e->underflows, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&e->underflow_frames, frames - got, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&e->output_shift, lost + (frames - got), memory_order_relaxed);
    } else {
        silence(e, out, out_stride, frames);
    }
    atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
    ring_wake(e);
}

/* Step 1: is this a cycle to run? A block of a size the user did not agree
 * to never goes further (the host must catch size changes first), nor does
 * any block of a stopped stream. A running cycle is counted, with its
 * glitch, which the next block handed over carries. */
static int accept_cycle(da_engine *e, int state, float *const *out, size_t out_stride,
                        uint32_t frames, const da_cycle_time *t, int device_xrun) {
    if (frames != e->frames) {
        silence(e, out, out_stride, frames);
        if (state != DA_STATE_FAILED) da_engine_fail(e, DA_EV_BUFFER_SIZE_CHANGED, frames);
        return 0;
    }
    if (state != DA_STATE_RUNNING && state != DA_STATE_DRAINING) {
        silence(e, out, out_stride, frames);
        return 0;
    }
    atomic_fetch_add_explicit(&e->cycles, 1, memory_order_relaxed);
    atomic_store_explicit(&e->last_cycle_ns, t->callback_ns, memory_order_relaxed);
    if (device_xrun) {
        atomic_fetch_add_explicit(&e->xruns, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->lost, t->lost_cycles, memory_order_relaxed);
        e->pending_xrun = 1;
    }
    uint64_t n = atomic_load_explicit(&e->timings, memory_order_relaxed);
    e->timing_log[n % TIMING_LOG][0] = t->deadline_anchor_ns;
    e->timing_log[n % TIMING_LOG][1] = t->wakeup_ns;
    atomic_store_explicit(&e->timings, n + 1, memory_order_release);
    return 1;
}

/* Step 2, draining: what is still in flight plays (pipelined), then silence
 * until the drain cycles are done. */
static void drain(da_engine *e, float *const *out, size_t out_stride, uint32_t frames) {
    if (e->out_ring && da_ring_readable(e->out_ring)) {
        /* A blocking stream plays what was written before the drain starts. */
        play_ring(e, out, out_stride, frames);
        ring_wake(e);
        return;
    }
    if (e->pipelined) play_previous(e, out, out_stride, frames);
    else silence(e, out, out_stride, frames);
    unsigned left = atomic_load(&e->drain_left);
    if (left <= 1) {
        atomic_store(&e->state, DA_STATE_STOPPED);
        da_event_post(e, DA_EV_DRAINED, 0);
    } else {
        atomic_store(&e->drain_left, left - 1);
    }
}

/* Step 3: the worker is still on an earlier block, so its buffers are busy
 * and this cycle is lost to it (counted, flagged, silent). */
static int worker_busy(da_engine *e, float *const *out, size_t out_stride, uint32_t frames) {
    uint64_t handed = atomic_load(&e->handed);
    if (atomic_load(&e->done) == handed) return 0;
    if (e->pipelined && e->played != handed) {
        atomic_fetch_add_explicit(&e->late, 1, memory_order_relaxed);
        e->played = handed; /* its output would now be a period late */
    } else {
        atomic_fetch_add_explicit(&e->skipped, 1, memory_order_relaxed);
    }
    e->pending_xrun = 1;
    silence(e, out, out_stride, frames);
    return 1;
}

/* Step 4: convert the input into the user's block and post it to the
 * worker. Returns the block's sequence number, and when it was posted. */
static uint64_t hand_over(da_engine *e, const float *const *in, size_t in_stride, uint32_t frames,
                          const da_cycle_time *t, int64_t *posted) {
    const uint64_t seq = atomic_load(&e->handed) + 1;
    for (uint32_t c = 0; c < e->in_ch; c++)
        da_store(e->in_fmt, e->in_block, c, e->in_ch, in[c], in_stride, frames);
    e->info.seq = seq;
    e->info.callback_ns = t->callback_ns;
    e->info.input_device_ns = t->input_device_ns;
    /* Pipelined: this block's output is played one cycle later. */
    e->info.output_device_ns = t->output_device_ns + (e->pipelined ? e->period_ns : 0);
    e->info.frames = frames;
    e->info.xrun = e->pending_xrun;
    e->pending_xrun = 0;
    atomic_store_explicit(&e->device_cpu, da_cpu_current(), memory_order_relaxed);
    *posted = da_now_ns();
    atomic_store(&e->handed, seq);
    da_sem_post(e->work_sem);
    return seq;
}

/* Step 5, same-cycle: wait for block `seq` until the deadline. 1 when its
 * result is there and good; a miss is counted and flagged on the next block.
 * A late worker's "done" is told apart by its sequence number. */
static int await_result(da_engine *e, uint64_t seq, int64_t posted, const da_cycle_time *t) {
    int64_t until = t->deadline_anchor_ns + e->deadline_ns;
    if (t->deadline_limit_ns && t->deadline_limit_ns < until) until = t->deadline_limit_ns;
    while (atomic_load(&e->done) != seq)
        if (da_sem_wait_until(e->done_sem, until) != 0) break;
    if (atomic_load(&e->done) != seq) {
        atomic_fetch_add_explicit(&e->late, 1, memory_order_relaxed);
        e->pending_xrun = 1;
        return 0;
    }
    uint64_t took = (uint64_t)(da_now_ns() - posted);
    uint64_t n = atomic_fetch_add_explicit(&e->handoffs, 1, memory_order_relaxed);
    e->handoff_log[n % HANDOFF_LOG] = took > UINT32_MAX ? UINT32_MAX : (uint32_t)took;
    atomic_fetch_add_explicit(&e->ho_total, took, memory_order_relaxed);
    max_store(&e->ho_max, took);
    return atomic_load(&e->done_status) == DA_BLOCK_OK;
}

void da_engine_process(da_engine *e, const float *const *in, size_t in_stride,
                       float *const *out, size_t out_stride, uint32_t frames,
                       const da_cycle_time *t, int device_xrun) {
    const int state = atomic_load(&e->state);
    if (e->feed) { /* an aggregate's input device: its input goes to the ring */
        if (frames == e->frames && (state == DA_STATE_RUNNING || state == DA_STATE_DRAINING))
            da_agg_push(e->feed, in, in_stride, frames, t, device_xrun);
        else if (frames != e->frames && state != DA_STATE_FAILED)
            da_engine_fail(e, DA_EV_BUFFER_SIZE_CHANGED, frames);
        return;
    }
    if (!accept_cycle(e, state, out, out_stride, frames, t, device_xrun)) return;
    da_cycle_time pulled;
    if (e->pull) { /* an aggregate: the input on this device's clock */
        int gap = 0;
        pulled = *t;
        in = da_agg_pull(e->pull, frames, t, &gap, &pulled.input_device_ns);
        in_stride = 1;
        t = &pulled;
        if (gap) { /* the input is not continuous: flagged on this block, counted */
            atomic_fetch_add_explicit(&e->xruns, 1, memory_order_relaxed);
            e->pending_xrun = 1;
            device_xrun = 1;
        }
    }
    if (state == DA_STATE_DRAINING) {
        drain(e, out, out_stride, frames);
        return;
    }
    if (e->program) {
        run_program(e, in, in_stride, out, out_stride, frames, t, device_xrun);
        return;
    }
    if (e->rings) {
        run_rings(e, in, in_stride, out, out_stride, frames, t, device_xrun);
        return;
    }
    if (worker_busy(e, out, out_stride, frames)) return;
    if (e->pipelined) play_previous(e, out, out_stride, frames);
    int64_t posted;
    const uint64_t seq = hand_over(e, in, in_stride, frames, t, &posted);
    if (e->pipelined) return;
    if (await_result(e, seq, posted, t)) {
        play_from(e, e->out_block, 0, out, out_stride, frames);
        atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
    } else {
        silence(e, out, out_stride, frames);
    }
}

/* ---- bounded calls ---------------------------------------------------- */

typedef struct {
    void (*fn)(void *);
    void *arg;
    da_sem *done;
    atomic_int state; /* 0 running, 1 abandoned by the caller, 2 finished */
} bounded_call;

static void *bounded_thread(void *raw) {
    bounded_call *c = raw;
    c->fn(c->arg);
    da_sem_post(c->done);
    if (atomic_exchange(&c->state, 2) == 1) { /* the caller left: clean up alone */
        da_sem_free(c->done);
        free(c);
    }
    return NULL;
}

int da_run_within(void (*fn)(void *), void *arg, int timeout_ms) {
    bounded_call *c = calloc(1, sizeof *c);
    da_thread *thread;
    int realtime;
    if (c) {
        c->fn = fn;
        c->arg = arg;
        c->done = da_sem_new();
    }
    if (!c || !c->done || da_thread_start(&thread, bounded_thread, c, 0, &realtime) != 0) {
        if (c) da_sem_free(c->done);
        free(c);
        fn(arg); /* no helper: the caller runs it, unbounded */
        return 0;
    }
    int r = da_sem_wait_until(c->done, da_now_ns() + (int64_t)timeout_ms * 1000000);
    if (r == 0 || atomic_exchange(&c->state, 1) == 2) {
        da_thread_join(thread);
        da_sem_free(c->done);
        free(c);
        return 0;
    }
    da_thread_detach(thread);
    return -ETIMEDOUT;
}
