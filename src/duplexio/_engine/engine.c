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
#include "engine_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int64_t da_frames_to_ns(int64_t frames, uint32_t rate) {
    int64_t r = (int64_t)rate, whole = frames / r, rest = frames % r;
    if (rest < 0) { rest += r; whole -= 1; }
    return whole * 1000000000LL + (2 * rest * 1000000000LL + r) / (2 * r);
}

/* ---- lifetime ------------------------------------------------------- */

int da_engine_new(da_engine **out, uint32_t in_channels, int in_format, void *in_block,
                  uint32_t out_channels, int out_format, void *out_block, uint32_t frames,
                  uint32_t device_frames, uint32_t sample_rate, int pipelined, double deadline,
                  char *msg, size_t len) {
    *out = NULL;
    if (frames == 0 || device_frames == 0 || sample_rate == 0 ||
        (in_channels && (!da_format_bytes(in_format) || !in_block)) ||
        (out_channels && (!da_format_bytes(out_format) || !out_block)) ||
        !(deadline > 0.0 && deadline <= 1.0))
        return da_say(msg, len, -EINVAL,
                      "no engine for %u-frame blocks on %u-frame periods at %u Hz, formats "
                      "%d/%d, deadline %g",
                      frames, device_frames, sample_rate, in_format, out_format, deadline);
    da_engine *e = calloc(1, sizeof *e);
    if (!e) return da_say(msg, len, -ENOMEM, "no memory for the stream's engine");
    e->in_ch = in_channels;
    e->out_ch = out_channels;
    e->in_fmt = in_format;
    e->out_fmt = out_format;
    e->frames = frames;
    e->device_frames = device_frames;
    e->rate = sample_rate;
    e->pipelined = pipelined;
    e->worker_cpu = -1;
    atomic_init(&e->device_cpu, -1);
    e->deadline_ns = (int64_t)(deadline * (double)device_frames * 1e9 / sample_rate);
    e->period_ns = da_frames_to_ns(frames, sample_rate);
    e->in_block = in_block;
    e->out_block = out_block;
    e->handoff_log = calloc(HANDOFF_LOG, sizeof(uint32_t));
    e->timing_log = calloc(TIMING_LOG, sizeof *e->timing_log);
    e->work_sem = da_sem_new();
    e->done_sem = da_sem_new();
    e->ev_sem = da_sem_new();
    e->rings.sem = da_sem_new();
    if (!e->handoff_log || !e->timing_log || !e->work_sem || !e->done_sem || !e->ev_sem ||
        !e->rings.sem) {
        da_engine_free(e);
        return da_say(msg, len, -ENOMEM, "no memory or semaphores for the stream's engine");
    }
    atomic_init(&e->state, DA_STATE_STOPPED);
    int err = reblock_init(e, msg, len);
    if (err) {
        da_engine_free(e);
        return err;
    }
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
    da_sem_free(e->rings.sem);
    free(e->handoff_log);
    free(e->timing_log);
    reblock_free(e);
    free(e);
}

uint32_t da_engine_frames(const da_engine *e) { return e->device_frames; }

uint32_t da_engine_reblock_latency(const da_engine *e) { return e->reblock.latency; }

void da_engine_set_state(da_engine *e, int state, uint32_t drain_cycles) {
    if (atomic_load(&e->state) == DA_STATE_FAILED) return; /* failure is final */
    atomic_store(&e->drain_left, drain_cycles);
    if (state == DA_STATE_RUNNING) atomic_store(&e->reblock.reset, 1);
    atomic_store(&e->state, state);
    rings_wake(e); /* a blocked read() or write() re-checks whether to go on */
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
    if (e->agg.forward) {
        da_event_post(e->agg.forward, code, value);
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
    if (e->agg.forward) { /* an aggregate's input device: the stream fails */
        atomic_store(&e->state, DA_STATE_FAILED);
        da_engine_fail(e->agg.forward, event, value);
        return;
    }
    atomic_store(&e->state, DA_STATE_FAILED);
    da_event_post(e, event, value);
    rings_wake(e);
}

/* ---- aggregates ----------------------------------------------------- */

int da_engine_feed(da_engine *input_side, da_agg *a, da_engine *stream, char *msg, size_t len) {
    if (!a || !stream || stream == input_side || !input_side->in_ch || input_side->out_ch ||
        input_side->prog.on || input_side->rings.on)
        return da_say(msg, len, -EINVAL, "only an input-only engine feeds an aggregate");
    input_side->agg.feed = a;
    input_side->agg.forward = stream;
    return 0;
}

int da_engine_pull(da_engine *stream, da_agg *a, char *msg, size_t len) {
    if (!a || !stream->in_ch || stream->agg.feed)
        return da_say(msg, len, -EINVAL, "only a stream with input pulls from an aggregate");
    stream->agg.pull = a;
    return 0;
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

void engine_silence(const da_engine *e, float *const *out, size_t stride, uint32_t frames) {
    for (uint32_t c = 0; c < e->out_ch; c++)
        for (uint32_t f = 0; f < frames; f++) out[c][f * stride] = 0.0f;
}

void engine_play_from(const da_engine *e, const void *src, uint64_t from, float *const *out,
                      size_t stride, uint32_t frames) {
    for (uint32_t c = 0; c < e->out_ch; c++)
        da_load(e->out_fmt, src, (size_t)from * e->out_ch + c, e->out_ch, out[c], stride, frames);
}

/* Pipelined: the previous block's result, if it is finished and unused. */
static void play_previous(da_engine *e, float *const *out, size_t stride, uint32_t frames) {
    uint64_t handed = atomic_load(&e->handed);
    if (handed != e->played && atomic_load(&e->done) == handed &&
        atomic_load(&e->done_status) == DA_BLOCK_OK) {
        engine_play_from(e, e->out_block, 0, out, stride, frames);
        atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
    } else {
        engine_silence(e, out, stride, frames);
    }
    e->played = handed;
}


/* Step 1: is this a cycle to run? A block of a size the user did not agree
 * to never goes further (the host must catch size changes first), nor does
 * any block of a stopped stream. A running cycle is counted, with its
 * glitch, which the next block handed over carries. */
static int accept_cycle(da_engine *e, int state, float *const *out, size_t out_stride,
                        uint32_t frames, const da_cycle_time *t, int device_xrun) {
    if (frames != e->device_frames) {
        engine_silence(e, out, out_stride, frames);
        if (state != DA_STATE_FAILED) da_engine_fail(e, DA_EV_BUFFER_SIZE_CHANGED, frames);
        return 0;
    }
    if (state != DA_STATE_RUNNING && state != DA_STATE_DRAINING) {
        engine_silence(e, out, out_stride, frames);
        return 0;
    }
    atomic_fetch_add_explicit(&e->cycles, 1, memory_order_relaxed);
    atomic_store_explicit(&e->last_cycle_ns, t->callback_ns, memory_order_relaxed);
    if (device_xrun) {
        atomic_fetch_add_explicit(&e->xruns, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&e->lost, t->lost_cycles, memory_order_relaxed);
        e->pending_xrun = 1;
        e->pending_lost += (uint64_t)t->lost_cycles * frames;
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
    if (rings_drain(e, out, out_stride, frames)) return;
    if (e->reblock.on) reblock_drain(e, out, out_stride);
    else if (e->pipelined) play_previous(e, out, out_stride, frames);
    else engine_silence(e, out, out_stride, frames);
    unsigned left = atomic_load(&e->drain_left);
    if (left <= 1) {
        atomic_store(&e->state, DA_STATE_STOPPED);
        da_event_post(e, DA_EV_DRAINED, 0);
    } else {
        atomic_store(&e->drain_left, left - 1);
    }
}

/* Step 3: the worker is still on an earlier block, so its buffers are busy
 * and this block is lost to it (counted and flagged; the caller plays
 * silence). */
int engine_worker_busy(da_engine *e, uint32_t frames) {
    uint64_t handed = atomic_load(&e->handed);
    if (atomic_load(&e->done) == handed) return 0;
    if (e->pipelined && e->played != handed) {
        atomic_fetch_add_explicit(&e->late, 1, memory_order_relaxed);
        e->played = handed; /* its output would now be a period late */
    } else {
        atomic_fetch_add_explicit(&e->skipped, 1, memory_order_relaxed);
    }
    e->pending_xrun = 1;
    e->pending_lost += frames;
    return 1;
}

/* Step 4: convert the input into the user's block and post it to the
 * worker. Returns the block's sequence number, and when it was posted. */
uint64_t engine_hand_over(da_engine *e, const float *const *in, size_t in_stride, uint32_t frames,
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
    e->info.lost_frames = e->pending_lost;
    e->pending_xrun = 0;
    e->pending_lost = 0;
    atomic_store_explicit(&e->device_cpu, da_cpu_current(), memory_order_relaxed);
    *posted = da_now_ns();
    atomic_store(&e->handed, seq);
    da_sem_post(e->work_sem);
    return seq;
}

/* Step 5, same-cycle: wait for block `seq` until the deadline. 1 when its
 * result is there and good; a miss is counted and flagged on the next block.
 * A late worker's "done" is told apart by its sequence number. */
int64_t engine_deadline(const da_engine *e, const da_cycle_time *t) {
    int64_t until = t->deadline_anchor_ns + e->deadline_ns;
    if (t->deadline_limit_ns && t->deadline_limit_ns < until) until = t->deadline_limit_ns;
    return until;
}

void engine_await_idle(da_engine *e, const da_cycle_time *t) {
    const int64_t until = engine_deadline(e, t);
    while (atomic_load(&e->done) != atomic_load(&e->handed))
        if (da_sem_wait_until(e->done_sem, until) != 0) break;
}

int engine_await_result(da_engine *e, uint64_t seq, int64_t posted, const da_cycle_time *t) {
    const int64_t until = engine_deadline(e, t);
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
    if (e->agg.feed) { /* an aggregate's input device: its input goes to the ring */
        if (frames == e->device_frames && (state == DA_STATE_RUNNING || state == DA_STATE_DRAINING))
            da_agg_push(e->agg.feed, in, in_stride, frames, t, device_xrun);
        else if (frames != e->device_frames && state != DA_STATE_FAILED)
            da_engine_fail(e, DA_EV_BUFFER_SIZE_CHANGED, frames);
        return;
    }
    if (!accept_cycle(e, state, out, out_stride, frames, t, device_xrun)) return;
    da_cycle_time pulled;
    if (e->agg.pull) { /* an aggregate: the input on this device's clock */
        int gap = 0;
        pulled = *t;
        in = da_agg_pull(e->agg.pull, frames, t, &gap, &pulled.input_device_ns);
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
    if (e->prog.on) {
        program_run(e, in, in_stride, out, out_stride, frames, t, device_xrun);
        return;
    }
    if (e->rings.on) {
        rings_run(e, in, in_stride, out, out_stride, frames, t, device_xrun);
        return;
    }
    if (e->reblock.on) {
        reblock_run(e, in, in_stride, out, out_stride, t, device_xrun);
        return;
    }
    if (engine_worker_busy(e, frames)) {
        engine_silence(e, out, out_stride, frames);
        return;
    }
    if (e->pipelined) play_previous(e, out, out_stride, frames);
    int64_t posted;
    const uint64_t seq = engine_hand_over(e, in, in_stride, frames, t, &posted);
    if (e->pipelined) return;
    if (engine_await_result(e, seq, posted, t)) {
        engine_play_from(e, e->out_block, 0, out, out_stride, frames);
        atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
    } else {
        engine_silence(e, out, out_stride, frames);
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
