/* Program streams: the device thread itself plays from and records into
 * arrays (the user's formats), with no Python per block: `play`, `rec` and
 * `playrec` (engine_api.h says what Python sees). */
#include "engine_internal.h"

#include <errno.h>
#include <stdatomic.h>

/* ---- program streams ------------------------------------------------ */

int da_engine_program(da_engine *e, const void *play, uint64_t play_frames, void *record,
                      uint64_t record_frames, uint64_t total_frames, char *msg, size_t len) {
    if ((e->out_ch && play_frames && !play) || (e->in_ch && record_frames && !record) ||
        total_frames == 0 || total_frames < play_frames || total_frames < record_frames)
        return da_say(msg, len, -EINVAL, "a program of %llu frames (%llu played, %llu recorded)",
                      (unsigned long long)total_frames, (unsigned long long)play_frames,
                      (unsigned long long)record_frames);
    e->prog.play = e->out_ch ? play : NULL;
    e->prog.play_frames = e->out_ch ? play_frames : 0;
    e->prog.record = e->in_ch ? record : NULL;
    e->prog.record_frames = e->in_ch ? record_frames : 0;
    e->prog.total_frames = total_frames;
    e->prog.pos = 0;
    atomic_store(&e->prog.done, 0);
    atomic_store(&e->prog.xruns, 0);
    e->prog.on = 1;
    return 0;
}

void da_engine_program_status(da_engine *e, da_program_status *out) {
    uint64_t done = atomic_load_explicit(&e->prog.done, memory_order_acquire);
    out->frames_done = done;
    out->total_frames = e->prog.total_frames;
    out->started = done > 0;
    out->finished = e->prog.on && done >= e->prog.total_frames;
    out->input_device_ns = done ? e->prog.in_ns : 0;
    out->output_device_ns = done ? e->prog.out_ns : 0;
    out->xruns = atomic_load_explicit(&e->prog.xruns, memory_order_relaxed);
}

/* Frames of [pos, pos + frames) that fall before len. */
static uint32_t within(uint64_t pos, uint64_t len, uint32_t frames) {
    if (pos >= len) return 0;
    return len - pos < frames ? (uint32_t)(len - pos) : frames;
}

/* One block of a program: copy out of the play array, into the record
 * array, count. */
void program_run(da_engine *e, const float *const *in, size_t in_stride, float *const *out,
                 size_t out_stride, uint32_t frames, const da_cycle_time *t, int device_xrun) {
    const uint64_t pos = e->prog.pos;
    if (pos >= e->prog.total_frames) {
        engine_silence(e, out, out_stride, frames);
        return;
    }
    if (pos == 0) {
        e->prog.in_ns = t->input_device_ns;
        e->prog.out_ns = t->output_device_ns;
    } else if (device_xrun) {
        /* Frames were lost between blocks: the recording may have slipped. */
        atomic_fetch_add_explicit(&e->prog.xruns, 1, memory_order_relaxed);
    }
    const uint32_t n_play = within(pos, e->prog.play_frames, frames);
    engine_play_from(e, e->prog.play, pos, out, out_stride, n_play);
    for (uint32_t c = 0; c < e->out_ch; c++)
        for (uint32_t f = n_play; f < frames; f++) out[c][f * out_stride] = 0.0f;
    const uint32_t n_rec = within(pos, e->prog.record_frames, frames);
    for (uint32_t c = 0; c < e->in_ch && n_rec; c++)
        da_store(e->in_fmt, e->prog.record, (size_t)pos * e->in_ch + c, e->in_ch, in[c], in_stride,
                 n_rec);
    uint64_t next = pos + frames < e->prog.total_frames ? pos + frames : e->prog.total_frames;
    e->prog.pos = next;
    atomic_fetch_add_explicit(&e->callbacks, 1, memory_order_relaxed);
    atomic_store_explicit(&e->prog.done, next, memory_order_release);
    if (next == e->prog.total_frames) da_event_post(e, DA_EV_FINISHED, (int64_t)next);
}
