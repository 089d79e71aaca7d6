/* Blocking streams: the engine's side of the rings. For a stream built
 * without a callback the device thread fills the input ring and drains the
 * output ring itself; Python reads and writes the other ends (blocking.py). */
#include "engine_internal.h"

#include <errno.h>
#include <stdatomic.h>

/* ---- blocking streams: the rings' engine side ------------------------ */

int da_engine_rings(da_engine *e, da_ring *input_ring, da_ring *output_ring, char *msg,
                    size_t len) {
    if (e->prog.on || (!input_ring && !output_ring) || (input_ring && !e->in_ch) ||
        (output_ring && !e->out_ch))
        return da_say(msg, len, -EINVAL, "rings that do not match the stream's directions");
    e->rings.in = input_ring;
    e->rings.out = output_ring;
    e->rings.on = 1;
    return 0;
}

#define LOAD(x) atomic_load_explicit(&e->x, memory_order_relaxed)
void da_engine_ring_status(da_engine *e, da_ring_status *out) {
    out->overflows = LOAD(rings.overflows);
    out->overflow_frames = LOAD(rings.overflow_frames);
    out->underflows = LOAD(rings.underflows);
    out->underflow_frames = LOAD(rings.underflow_frames);
    out->input_lost_frames = LOAD(rings.input_lost);
    out->output_shift_frames = LOAD(rings.output_shift);
    out->gaps = atomic_load_explicit(&e->rings.gap_count, memory_order_acquire);
    out->xruns = LOAD(xruns);
}
#undef LOAD

size_t da_engine_gaps(da_engine *e, uint64_t first, da_gap *out, size_t max) {
    uint64_t n = atomic_load_explicit(&e->rings.gap_count, memory_order_acquire);
    if (first + GAP_LOG < n) first = n - GAP_LOG; /* older entries are overwritten */
    size_t count = 0;
    for (uint64_t i = first; i < n && count < max; i++) out[count++] = e->rings.gap_log[i % GAP_LOG];
    return count;
}

/* Wake a blocked reader or writer (it re-checks): a flag exchanged to 0, so
 * a cycle nobody waits on costs one atomic operation and no system call. */
void rings_wake(da_engine *e) {
    if (atomic_exchange(&e->rings.waiting, 0)) da_sem_post(e->rings.sem);
}

int da_engine_ring_wait(da_engine *e, int output, uint64_t frames, int64_t timeout_ns) {
    da_ring *r = output ? e->rings.out : e->rings.in;
    if (!r) return -EPIPE;
    const int64_t until = timeout_ns < 0 ? 0 : da_now_ns() + timeout_ns;
    for (;;) {
        /* Flag first, then look: a cycle after the look sees the flag. */
        atomic_store(&e->rings.waiting, 1);
        if ((output ? da_ring_writable(r) : da_ring_readable(r)) >= frames) return 1;
        int state = atomic_load(&e->state);
        if (state != DA_STATE_RUNNING && state != DA_STATE_DRAINING) return -EPIPE;
        if (timeout_ns < 0) {
            if (da_sem_wait(e->rings.sem) != 0) return 0; /* a signal: the caller looks again */
        } else if (da_sem_wait_until(e->rings.sem, until) != 0) {
            return (output ? da_ring_writable(r) : da_ring_readable(r)) >= frames;
        }
    }
}

/* The device's output from the output ring: what it holds, up to a block,
 * then silence. Returns the frames that came from the ring. */
static uint32_t play_ring(da_engine *e, float *const *out, size_t stride, uint32_t frames) {
    uint32_t got = (uint32_t)da_ring_read(e->rings.out, e->out_block, frames);
    da_fill_equilibrium(e->out_fmt,
                        (char *)e->out_block + (size_t)got * e->out_ch * da_format_bytes(e->out_fmt),
                        (size_t)(frames - got) * e->out_ch);
    engine_play_from(e, e->out_block, 0, out, stride, frames);
    return got;
}

/* A blocking stream's cycle: the input into its ring, the output from its
 * ring. A full input ring drops the block (counted; the gap is logged at
 * the next block that fits, so consecutive drops are one gap); a short
 * output ring plays silence for the rest (counted). Frames the device lost
 * are a gap in the input and a shift of the output timeline alike. */
void rings_run(da_engine *e, const float *const *in, size_t in_stride, float *const *out,
               size_t out_stride, uint32_t frames, const da_cycle_time *t, int device_xrun) {
    const uint64_t lost = device_xrun ? (uint64_t)t->lost_cycles * frames : 0;
    if (e->rings.in) {
        e->rings.gap_pending += lost;
        /* A glitch that lost no whole cycle still breaks the input's
         * continuity: the reader that meets it must be told. */
        e->rings.gap_glitch |= device_xrun;
        atomic_fetch_add_explicit(&e->rings.input_lost, lost, memory_order_relaxed);
        if (da_ring_writable(e->rings.in) >= frames) {
            if (e->rings.gap_pending || e->rings.gap_glitch) {
                uint64_t n = atomic_load_explicit(&e->rings.gap_count, memory_order_relaxed);
                e->rings.gap_log[n % GAP_LOG] =
                    (da_gap){.at = da_ring_write_total(e->rings.in), .lost = e->rings.gap_pending};
                atomic_store_explicit(&e->rings.gap_count, n + 1, memory_order_release);
                e->rings.gap_pending = 0;
                e->rings.gap_glitch = 0;
            }
            for (uint32_t c = 0; c < e->in_ch; c++)
                da_store(e->in_fmt, e->in_block, c, e->in_ch, in[c], in_stride, frames);
            da_ring_write(e->rings.in, e->in_block, frames);
            e->rings.dropping = 0;
        } else {
            if (!e->rings.dropping) atomic_fetch_add_explicit(&e->rings.overflows, 1, memory_order_relaxed);
            e->rings.dropping = 1;
            e->rings.gap_pending += frames;
            atomic_fetch_add_explicit(&e->rings.overflow_frames, frames, memory_order_relaxed);
            atomic_fetch_add_explicit(&e->rings.input_lost, frames, memory_order_relaxed);
        }
    }
    if (e->rings.out) {
        uint32_t got = play_ring(e, out, out_stride, frames);
        if (got < frames) {
            atomic_fetch_add_explicit(&e->rings.underflows, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&e->rings.underflow_frames, frames - got, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&e->rings.output_shift, lost + (frames - got), memory_order_relaxed);
    } else {
        engine_silence(e, out, out_stride, frames);
    }
    atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
    rings_wake(e);
}

int rings_drain(da_engine *e, float *const *out, size_t out_stride, uint32_t frames) {
    if (!e->rings.out || !da_ring_readable(e->rings.out)) return 0;
    play_ring(e, out, out_stride, frames);
    rings_wake(e);
    return 1;
}
