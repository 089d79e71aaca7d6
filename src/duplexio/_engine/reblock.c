/* Re-blocking: a callback stream asked for N-frame blocks on a device that
 * runs M-frame periods (engine_internal.h, reblock_mode).
 *
 * Each cycle the device's M input frames join the gathered input; every
 * time N are there, that block is handed to the worker and awaited in the
 * same cycle (or, pipelined, collected when the next block is handed), and
 * its N output frames join a FIFO from which the device takes its M. The
 * FIFO starts with L = N - gcd(N, M) frames of silence: input position p
 * completes its block by the cycle that plays output position p + L, for
 * every p (positions stay multiples of gcd(N, M), so what is gathered never
 * exceeds L). So the round trip grows by exactly L frames, the same for
 * every block, and every block's timestamps follow from its position in
 * the cycle that completed it.
 *
 * Every block position appends exactly N frames to the FIFO, whether its
 * callback ran, was late or was skipped; lost device cycles advance both
 * sides by the same number of frames. The FIFO never holds more than
 * L + M + N frames. */
#include "engine_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t gcd(uint32_t a, uint32_t b) {
    while (b) {
        uint32_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

int reblock_init(da_engine *e, char *msg, size_t len) {
    reblock_mode *r = &e->reblock;
    if (e->frames == e->device_frames) return 0;
    r->latency = e->frames - gcd(e->frames, e->device_frames);
    r->cap = r->latency + e->device_frames + 2 * e->frames;
    r->acc = calloc((size_t)e->in_ch * e->frames + 1, sizeof(float));
    r->fifo = calloc((size_t)e->out_ch * r->cap + 1, sizeof(float));
    r->acc_planes = calloc((size_t)e->in_ch + 1, sizeof *r->acc_planes);
    if (!r->acc || !r->fifo || !r->acc_planes)
        return da_say(msg, len, -ENOMEM, "no memory to re-block %u-frame periods into %u frames",
                      e->device_frames, e->frames);
    for (uint32_t c = 0; c < e->in_ch; c++) r->acc_planes[c] = r->acc + (size_t)c * e->frames;
    r->on = 1;
    return 0;
}

void reblock_free(da_engine *e) {
    free(e->reblock.acc);
    free(e->reblock.fifo);
    free((void *)e->reblock.acc_planes);
}

/* ---- the FIFO of output frames (planar, `cap` frames per channel) --------- */

/* Append n frames: the worker's output block (the user's format), or
 * silence when block is NULL. */
static void fifo_put(da_engine *e, const void *block, uint32_t n) {
    reblock_mode *r = &e->reblock;
    const uint32_t tail = (r->head + r->level) % r->cap;
    const uint32_t first = n < r->cap - tail ? n : r->cap - tail;
    for (uint32_t c = 0; c < e->out_ch; c++) {
        float *plane = r->fifo + (size_t)c * r->cap;
        if (block) {
            da_load(e->out_fmt, block, c, e->out_ch, plane + tail, 1, first);
            da_load(e->out_fmt, block, (size_t)first * e->out_ch + c, e->out_ch, plane, 1,
                    n - first);
        } else {
            memset(plane + tail, 0, first * sizeof(float));
            memset(plane, 0, (n - first) * sizeof(float));
        }
    }
    r->level += n;
}

static void fifo_drop(reblock_mode *r, uint32_t n) {
    r->head = (r->head + n) % r->cap;
    r->level -= n;
}

/* The device's period from the FIFO's oldest frames. */
static void fifo_take(da_engine *e, float *const *out, size_t stride) {
    reblock_mode *r = &e->reblock;
    const uint32_t M = e->device_frames, n = r->level < M ? r->level : M;
    for (uint32_t c = 0; c < e->out_ch; c++) {
        const float *plane = r->fifo + (size_t)c * r->cap;
        for (uint32_t f = 0; f < n; f++) out[c][f * stride] = plane[(r->head + f) % r->cap];
        for (uint32_t f = n; f < M; f++) out[c][f * stride] = 0.0f;
    }
    fifo_drop(r, n);
}

static void restart(da_engine *e) {
    reblock_mode *r = &e->reblock;
    r->fill = 0;
    r->head = 0;
    r->level = 0;
    fifo_put(e, NULL, r->latency);
}

/* ---- blocks ----------------------------------------------------------------- */

/* Pipelined: the previous block's output, once it is there, takes this
 * block's place in the FIFO (silence if it failed or never came). */
static void put_previous(da_engine *e) {
    const uint64_t handed = atomic_load(&e->handed);
    const int ok = handed != e->played && atomic_load(&e->done) == handed &&
                   atomic_load(&e->done_status) == DA_BLOCK_OK;
    fifo_put(e, ok ? e->out_block : NULL, e->frames);
    if (ok) atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
    e->played = handed;
}

/* Run the gathered block, whose first frame is `offset` frames after the
 * first of the cycle `t` describes (negative: it began in earlier cycles). */
static void run_block(da_engine *e, const da_cycle_time *t, int64_t offset) {
    const reblock_mode *r = &e->reblock;
    da_cycle_time b = *t;
    b.callback_ns = t->callback_ns + da_frames_to_ns(offset, e->rate);
    b.input_device_ns = t->input_device_ns + da_frames_to_ns(offset, e->rate);
    b.output_device_ns = t->output_device_ns + da_frames_to_ns(offset + r->latency, e->rate);
    /* The worker may still hold an earlier block (pipelined, or late): it
     * has until this cycle's deadline to give it back. */
    engine_await_idle(e, t);
    if (engine_worker_busy(e, e->frames)) {
        fifo_put(e, NULL, e->frames);
        return;
    }
    if (e->pipelined) put_previous(e);
    int64_t posted;
    const uint64_t seq = engine_hand_over(e, r->acc_planes, 1, e->frames, &b, &posted);
    if (e->pipelined) return;
    const int ok = engine_await_result(e, seq, posted, &b);
    fifo_put(e, ok ? e->out_block : NULL, e->frames);
    if (ok) atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
}

/* Device cycles were lost: `gap` frames that never came, just before this
 * cycle. A block they complete runs with silence in their place; blocks
 * wholly inside them are lost (their input was never there), and the FIFO
 * drops the output the lost cycles would have played. Both blocks they
 * touch are flagged, and each counts its share of the lost frames (the
 * silence in it, or the blocks skipped before it): the shares add up to
 * `gap`, which the cycle's check has already counted as pending. */
static void lost_frames(da_engine *e, const da_cycle_time *t, uint64_t gap) {
    reblock_mode *r = &e->reblock;
    const uint32_t N = e->frames;
    uint64_t rest = gap;
    if (r->fill) {
        const uint32_t z = rest < N - r->fill ? (uint32_t)rest : N - r->fill;
        for (uint32_t c = 0; c < e->in_ch; c++)
            memset((float *)r->acc_planes[c] + r->fill, 0, z * sizeof(float));
        r->fill += z;
        rest -= z;
        if (r->fill == N) {
            r->fill = 0;
            e->pending_lost -= rest; /* this block's share: its silence */
            run_block(e, t, -(int64_t)rest - N);
            e->pending_lost += rest;
            e->pending_xrun = 1;
        }
    }
    const uint64_t skipped = rest / N * N;
    rest -= skipped;
    /* The lost cycles would have played the FIFO's oldest `gap` frames, and
     * then the skipped blocks' output, silent: what is left of that stays. */
    const uint32_t played = gap < r->level ? (uint32_t)gap : r->level;
    fifo_drop(r, played);
    if (skipped > gap - played) fifo_put(e, NULL, (uint32_t)(skipped - (gap - played)));
    /* A gap that ended inside the block it began in left that block going,
     * its silence in place: it goes on from there. */
    if (r->fill) return;
    for (uint32_t c = 0; c < e->in_ch; c++)
        memset((float *)r->acc_planes[c], 0, rest * sizeof(float));
    r->fill = (uint32_t)rest;
}

void reblock_run(da_engine *e, const float *const *in, size_t in_stride, float *const *out,
                 size_t out_stride, const da_cycle_time *t, int device_xrun) {
    reblock_mode *r = &e->reblock;
    const uint32_t N = e->frames, M = e->device_frames;
    if (atomic_exchange(&r->reset, 0)) restart(e);
    if (device_xrun && t->lost_cycles) lost_frames(e, t, (uint64_t)t->lost_cycles * M);
    for (uint32_t taken = 0; taken < M;) {
        const uint32_t n = N - r->fill < M - taken ? N - r->fill : M - taken;
        for (uint32_t c = 0; c < e->in_ch; c++) {
            float *dst = (float *)r->acc_planes[c] + r->fill;
            for (uint32_t f = 0; f < n; f++) dst[f] = in[c][(size_t)(taken + f) * in_stride];
        }
        r->fill += n;
        taken += n;
        if (r->fill == N) {
            r->fill = 0;
            run_block(e, t, (int64_t)taken - N);
        }
    }
    fifo_take(e, out, out_stride);
}

void reblock_drain(da_engine *e, float *const *out, size_t out_stride) {
    /* The block still in flight (pipelined) plays after what is queued. */
    if (e->pipelined && atomic_load(&e->handed) != e->played &&
        atomic_load(&e->done) == atomic_load(&e->handed))
        put_previous(e);
    fifo_take(e, out, out_stride);
}
