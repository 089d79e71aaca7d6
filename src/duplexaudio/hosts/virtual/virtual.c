/* The virtual host's device: a C thread that is the device's clock.
 *
 * Cycle k starts at t0 + k periods (absolute-time waits, so the clock does
 * not drift). Input block k holds frames [kF, kF + F) of the device's input
 * timeline, captured during the period before the cycle; output block k is
 * frames [kF, kF + F) of the output timeline. The loopback's wire takes what
 * was played at output frame j and captures it at input frame j + L, so the
 * round trip is exactly L frames; L >= F keeps it causal. Faults (disconnect,
 * buffer-size or rate change, a stalled clock) are requested from Python
 * through atomics and acted on by this thread, like a real device would. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "virtual_api.h"

struct da_virtual {
    da_engine *e;
    da_virtual_params p;
    float *in_buf, *out_buf;      /* interleaved scratch blocks */
    const float **in_ptrs;
    float **out_ptrs;
    float *ring;                  /* loopback wire, in_channels wide */
    uint64_t ring_frames;
    uint64_t signal_pos;          /* input device: where the signal is */
    da_thread *thread;
    int running;                  /* thread exists; Python-side only */
    da_sem *stop_sem;
    atomic_int stop;
    atomic_int fault;
    atomic_int_fast64_t fault_value;
    atomic_int_fast64_t stall_until;
    int glitch;                   /* clock thread only: flag the next cycle */
};

int da_virtual_new(da_virtual **out, da_engine *e, const da_virtual_params *p, char *msg,
                   size_t len) {
    *out = NULL;
    if (!e || !p || p->frames != da_engine_frames(e) || p->sample_rate == 0 ||
        (p->kind == DA_VIRTUAL_LOOPBACK && p->latency_frames < p->frames)) {
        snprintf(msg, len, "impossible device parameters (%u frames, %u Hz, latency %u frames)",
                 p ? p->frames : 0, p ? p->sample_rate : 0, p ? p->latency_frames : 0);
        return -EINVAL;
    }
    da_virtual *v = calloc(1, sizeof *v);
    if (!v) goto no_memory;
    v->e = e;
    v->p = *p;
    size_t in_ch = p->in_channels, out_ch = p->out_channels, f = p->frames;
    v->in_buf = calloc(in_ch * f + 1, sizeof(float));
    v->out_buf = calloc(out_ch * f + 1, sizeof(float));
    v->in_ptrs = calloc(in_ch + 1, sizeof(float *));
    v->out_ptrs = calloc(out_ch + 1, sizeof(float *));
    if (p->kind == DA_VIRTUAL_LOOPBACK) {
        v->ring_frames = (uint64_t)p->latency_frames + f;
        v->ring = calloc(v->ring_frames * (in_ch ? in_ch : 1), sizeof(float));
    }
    v->stop_sem = da_sem_new();
    if (!v->in_buf || !v->out_buf || !v->in_ptrs || !v->out_ptrs || !v->stop_sem ||
        (p->kind == DA_VIRTUAL_LOOPBACK && !v->ring)) {
        da_virtual_free(v);
        goto no_memory;
    }
    for (size_t c = 0; c < in_ch; c++) v->in_ptrs[c] = v->in_buf + c;
    for (size_t c = 0; c < out_ch; c++) v->out_ptrs[c] = v->out_buf + c;
    *out = v;
    return 0;
no_memory:
    snprintf(msg, len, "out of memory for a %u-frame device", p->frames);
    return -ENOMEM;
}

/* The input the device captures for frames [pos, pos + F). */
static void capture(da_virtual *v, uint64_t pos) {
    const da_virtual_params *p = &v->p;
    const uint32_t ch = p->in_channels, F = p->frames;
    if (!ch) return;
    if (p->kind == DA_VIRTUAL_LOOPBACK) {
        for (uint32_t f = 0; f < F; f++) {
            uint64_t at = pos + f;
            float *dst = v->in_buf + (size_t)f * ch;
            if (at < p->latency_frames) {
                memset(dst, 0, ch * sizeof(float));
            } else {
                memcpy(dst, v->ring + ((at - p->latency_frames) % v->ring_frames) * ch,
                       ch * sizeof(float));
            }
        }
    } else if (p->kind == DA_VIRTUAL_INPUT) {
        for (uint32_t f = 0; f < F; f++, v->signal_pos++) {
            float *dst = v->in_buf + (size_t)f * ch;
            uint64_t at = v->signal_pos;
            if (p->signal && p->signal_frames && p->signal_loop) at %= p->signal_frames;
            for (uint32_t c = 0; c < ch; c++)
                dst[c] = (p->signal && at < p->signal_frames && c < p->signal_channels)
                             ? p->signal[at * p->signal_channels + c]
                             : 0.0f;
        }
    }
}

/* What the device plays for frames [pos, pos + F); out == NULL: silence. */
static void play(da_virtual *v, uint64_t pos, const float *out) {
    const da_virtual_params *p = &v->p;
    if (p->kind != DA_VIRTUAL_LOOPBACK || !p->in_channels) return;
    const uint32_t ich = p->in_channels, och = p->out_channels;
    for (uint32_t f = 0; f < p->frames; f++) {
        float *dst = v->ring + ((pos + f) % v->ring_frames) * ich;
        for (uint32_t c = 0; c < ich; c++) dst[c] = (out && c < och) ? out[(size_t)f * och + c] : 0.0f;
    }
}

/* Returns 1 when the thread must end (stop requested or device gone). */
static int handle_faults(da_virtual *v) {
    int fault = atomic_exchange(&v->fault, DA_FAULT_NONE);
    int64_t value = atomic_load(&v->fault_value);
    switch (fault) {
    case DA_FAULT_DISCONNECT: da_engine_fail(v->e, DA_EV_DEVICE_LOST, 0); return 1;
    case DA_FAULT_BUFFER_SIZE: da_engine_fail(v->e, DA_EV_BUFFER_SIZE_CHANGED, value); return 1;
    case DA_FAULT_SAMPLE_RATE: da_engine_fail(v->e, DA_EV_SAMPLE_RATE_CHANGED, value); return 1;
    case DA_FAULT_GLITCH: v->glitch = 1; break;
    default: break;
    }
    /* A stalled clock: no cycles at all until the stall ends or stop. */
    int64_t until;
    while ((until = atomic_load(&v->stall_until)) > da_now_ns()) {
        int64_t step = da_now_ns() + 5000000LL;
        if (da_sem_wait_until(v->stop_sem, until < step ? until : step) == 0) return 1;
        if (atomic_load(&v->fault) != DA_FAULT_NONE) return handle_faults(v);
    }
    return atomic_load(&v->stop);
}

/* The device's clock: one cycle per period, on time. Like every device
 * thread it never allocates, never takes a lock Python can hold and never
 * calls into Python; it waits only for its next period (or stop). */
static void *clock_thread(void *arg) {
    da_virtual *v = arg;
    const da_virtual_params *p = &v->p;
    const uint32_t F = p->frames, rate = p->sample_rate;
    const int64_t period = da_frames_to_ns(F, rate);
    const int64_t round_trip = da_frames_to_ns(p->latency_frames, rate);
    const int64_t t0 = da_now_ns() + period;
    uint64_t k = 0;
    memset(v->ring, 0, v->ring ? v->ring_frames * (p->in_channels ? p->in_channels : 1) * sizeof(float) : 0);

    for (;;) {
        int64_t due = t0 + da_frames_to_ns((int64_t)(k * F), rate);
        if (da_sem_wait_until(v->stop_sem, due) == 0 || handle_faults(v)) break;

        int64_t now = da_now_ns();
        /* A glitch that costs no cycle, as a device that restarted in time. */
        int xrun = v->glitch;
        v->glitch = 0;
        uint64_t missed = 0;
        if (now - due >= period) {
            /* Woke a period or more late (or the clock was stalled): those
             * cycles are lost, as on a device whose buffer overran. */
            missed = (uint64_t)((now - due) / period);
            for (uint64_t m = 0; m < missed; m++) play(v, (k + m) * F, NULL);
            if (p->kind == DA_VIRTUAL_INPUT) v->signal_pos += missed * F;
            k += missed;
            due = t0 + da_frames_to_ns((int64_t)(k * F), rate);
            xrun = 1;
        }
        capture(v, k * F);
        da_cycle_time t = {0};
        /* The cycle's start on the clock's own grid: timestamps advance by
         * exactly F frames per cycle, lost ones included. */
        t.callback_ns = due;
        t.wakeup_ns = now;
        /* From the wake-up, and never past the next cycle's due time. */
        t.deadline_anchor_ns = now;
        t.deadline_limit_ns = due + period;
        t.input_device_ns = due - period;
        t.output_device_ns = t.input_device_ns + round_trip;
        t.lost_cycles = (uint32_t)missed;
        da_engine_process(v->e, v->in_ptrs, p->in_channels, v->out_ptrs, p->out_channels, F, &t, xrun);
        play(v, k * F, v->out_buf);
        k++;
    }
    return NULL;
}

int da_virtual_start(da_virtual *v, char *msg, size_t len) {
    if (v->running) return 0;
    atomic_store(&v->stop, 0);
    while (da_sem_trywait(v->stop_sem) == 0) {
    }
    int rt = 0;
    int err = da_thread_start(&v->thread, clock_thread, v, v->p.realtime, &rt);
    if (err) {
        snprintf(msg, len, "cannot start the device clock thread: %s", strerror(err));
        return -err;
    }
    da_engine_set_realtime(v->e, rt);
    v->running = 1;
    return 0;
}

void da_virtual_stop(da_virtual *v) {
    if (!v->running) return;
    atomic_store(&v->stop, 1);
    da_sem_post(v->stop_sem);
    da_thread_join(v->thread);
    v->running = 0;
}

void da_virtual_free(da_virtual *v) {
    if (!v) return;
    da_virtual_stop(v);
    da_sem_free(v->stop_sem);
    free(v->in_buf);
    free(v->out_buf);
    free(v->in_ptrs);
    free(v->out_ptrs);
    free(v->ring);
    free(v);
}

void da_virtual_fault(da_virtual *v, int fault, int64_t value) {
    atomic_store(&v->fault_value, value);
    atomic_store(&v->fault, fault);
}

void da_virtual_stall(da_virtual *v, int64_t until_ns) {
    atomic_store(&v->stall_until, until_ns);
}
