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
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "resample.h"
#include "virtual_api.h"

/* ---- the cable ------------------------------------------------------------ */

#define WIRE_FRAMES 32768u  /* 0.68 s at 48 kHz: far beyond any cable's delay */
#define WIRE_RECORDS 1024u  /* cycles whose timing the reader can look back on */

typedef struct {
    uint64_t j0;    /* wire frame of the cycle's first frame */
    uint32_t frames;
    double t0, dt;  /* its playback instant (ns), and ns per frame of the output clock */
} wire_record;

struct da_wire {
    uint32_t ch;
    /* Each frame is stored twice, at i and at i + WIRE_FRAMES, so that the
     * interpolator's window is always one contiguous run. */
    float *data;
    wire_record rec[WIRE_RECORDS];
    atomic_uint_fast64_t records;  /* release: the frames and the record come first */
    uint64_t written;              /* the writer's next wire frame */
    atomic_int writer;             /* an output stream holds the wire */
};

da_wire *da_wire_new(uint32_t channels) {
    if (channels == 0) return NULL;
    da_wire *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->ch = channels;
    w->data = calloc((size_t)2 * WIRE_FRAMES * channels, sizeof(float));
    if (!w->data) {
        free(w);
        return NULL;
    }
    da_rs_prepare(); /* the reader interpolates on a device thread: table first */
    return w;
}

void da_wire_free(da_wire *w) {
    if (!w) return;
    free(w->data);
    free(w);
}

/* The output clock's cycle: frames [w->written, + F) are played from t0 on. */
static void wire_play(da_wire *w, const float *out, uint32_t och, uint32_t F, double t0,
                      double dt) {
    const uint32_t ch = w->ch;
    for (uint32_t f = 0; f < F; f++) {
        const uint64_t i = (w->written + f) % WIRE_FRAMES;
        float *a = w->data + i * ch, *b = w->data + (i + WIRE_FRAMES) * ch;
        for (uint32_t c = 0; c < ch; c++) a[c] = b[c] = (out && c < och) ? out[(size_t)f * och + c] : 0.0f;
    }
    const uint64_t n = atomic_load_explicit(&w->records, memory_order_relaxed);
    w->rec[n % WIRE_RECORDS] = (wire_record){.j0 = w->written, .frames = F, .t0 = t0, .dt = dt};
    atomic_store_explicit(&w->records, n + 1, memory_order_release);
    w->written += F;
}

/* What the wire carries at instant t (ns): the played signal, interpolated
 * between the output clock's frames; silence where nothing was played then
 * (or not yet: a delay shorter than the output's block and the kernel). */
static void wire_capture(da_wire *w, float *dst, uint32_t ich, double t) {
    const uint64_t n = atomic_load_explicit(&w->records, memory_order_acquire);
    for (uint32_t c = 0; c < ich; c++) dst[c] = 0.0f;
    if (!n) return;
    const wire_record *last = &w->rec[(n - 1) % WIRE_RECORDS];
    const uint64_t end = last->j0 + last->frames; /* frames written */
    for (uint64_t back = 0; back < n && back < WIRE_RECORDS - 1; back++) {
        const wire_record *r = &w->rec[(n - 1 - back) % WIRE_RECORDS];
        if (r->t0 > t) continue;
        const double x = (double)r->j0 + (t - r->t0) / r->dt;
        if (x >= (double)(r->j0 + r->frames) && back) return; /* the output was not playing */
        const double xf = floor(x);
        const uint64_t i = (uint64_t)xf;
        if (i + DA_RS_HALF >= end || i + WIRE_FRAMES < end + DA_RS_HALF) return;
        const uint64_t start = (i - (DA_RS_HALF - 1)) % WIRE_FRAMES;
        const float *at = w->data + (start + DA_RS_HALF - 1) * w->ch;
        for (uint32_t c = 0; c < ich && c < w->ch; c++) dst[c] = da_rs_value(at + c, w->ch, x - xf);
        return;
    }
}

/* ---- the device ----------------------------------------------------------- */

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
    int wire_writer;              /* this device holds its wire for writing */
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
    if (p->wire && p->kind == DA_VIRTUAL_OUTPUT) {
        int none = 0;
        if (!atomic_compare_exchange_strong(&p->wire->writer, &none, 1)) {
            da_virtual_free(v);
            snprintf(msg, len, "the cable's output is in use by another stream");
            return -EBUSY;
        }
        v->wire_writer = 1;
    }
    for (size_t c = 0; c < in_ch; c++) v->in_ptrs[c] = v->in_buf + c;
    for (size_t c = 0; c < out_ch; c++) v->out_ptrs[c] = v->out_buf + c;
    *out = v;
    return 0;
no_memory:
    snprintf(msg, len, "out of memory for a %u-frame device", p->frames);
    return -ENOMEM;
}

/* The input the device captures for frames [pos, pos + F), the first at
 * instant t0 (ns), one every dt. */
static void capture(da_virtual *v, uint64_t pos, double t0, double dt) {
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
    } else if (p->kind == DA_VIRTUAL_INPUT && p->wire) {
        for (uint32_t f = 0; f < F; f++)
            wire_capture(p->wire, v->in_buf + (size_t)f * ch, ch, t0 + f * dt);
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

/* The clock's rate at `elapsed` seconds from its start, against the
 * monotonic clock: 1 + ppm, the ppm wandering as a sine when asked. */
static double clock_rate(const da_virtual_params *p, double elapsed) {
    double ppm = p->clock_ppm;
    if (p->wander_ppm != 0.0 && p->wander_seconds > 0.0)
        ppm += p->wander_ppm * sin(2.0 * 3.14159265358979323846 * elapsed / p->wander_seconds);
    return 1.0 + ppm * 1e-6;
}

/* The device's clock: one cycle per period, on time. Like every device
 * thread it never allocates, never takes a lock Python can hold and never
 * calls into Python; it waits only for its next period (or stop). A clock
 * with an offset in ppm (or a wander) times its cycles in double precision
 * from its start; one without keeps the exact integer grid. */
static void *clock_thread(void *arg) {
    da_virtual *v = arg;
    const da_virtual_params *p = &v->p;
    const uint32_t F = p->frames, rate = p->sample_rate;
    const int exact = p->clock_ppm == 0.0 && p->wander_ppm == 0.0;
    const double nominal = (double)da_frames_to_ns(F, rate);
    const int64_t round_trip = da_frames_to_ns(p->latency_frames, rate);
    const int64_t t0 = da_now_ns() + (int64_t)nominal;
    double due_d = (double)t0;  /* the next cycle's start, off the exact grid */
    uint64_t k = 0;
    memset(v->ring, 0, v->ring ? v->ring_frames * (p->in_channels ? p->in_channels : 1) * sizeof(float) : 0);

    for (;;) {
        /* Off the grid, the true period (not its whole nanoseconds: 2666667
         * for 2666666.67 would be 0.125 ppm of drift of its own). */
        double period = exact ? nominal
                              : F * 1e9 / rate / clock_rate(p, (due_d - (double)t0) * 1e-9);
        int64_t due = exact ? t0 + da_frames_to_ns((int64_t)(k * F), rate) : (int64_t)llround(due_d);
        if (da_sem_wait_until(v->stop_sem, due) == 0 || handle_faults(v)) break;

        int64_t now = da_now_ns();
        /* A glitch that costs no cycle, as a device that restarted in time. */
        int xrun = v->glitch;
        v->glitch = 0;
        uint64_t missed = 0;
        if ((double)(now - due) >= period) {
            /* Woke a period or more late (or the clock was stalled): those
             * cycles are lost, as on a device whose buffer overran. */
            missed = (uint64_t)((double)(now - due) / period);
            for (uint64_t m = 0; m < missed; m++) play(v, (k + m) * F, NULL);
            if (p->kind == DA_VIRTUAL_INPUT) v->signal_pos += missed * F;
            k += missed;
            due_d += (double)missed * period;
            due = exact ? t0 + da_frames_to_ns((int64_t)(k * F), rate) : (int64_t)llround(due_d);
            xrun = 1;
        }
        da_cycle_time t = {0};
        /* The cycle's start on the clock's own grid: timestamps advance by
         * exactly F frames per cycle, lost ones included. */
        t.callback_ns = due;
        t.wakeup_ns = now;
        /* From the wake-up, and never past the next cycle's due time. */
        t.deadline_anchor_ns = now;
        t.deadline_limit_ns = due + (int64_t)period;
        t.input_device_ns = due - (int64_t)llround(period);
        t.output_device_ns = t.input_device_ns + round_trip;
        t.lost_cycles = (uint32_t)missed;
        capture(v, k * F, (double)t.input_device_ns, period / F);
        da_engine_process(v->e, v->in_ptrs, p->in_channels, v->out_ptrs, p->out_channels, F, &t, xrun);
        play(v, k * F, v->out_buf);
        /* A cable's output: lost cycles played nothing, which the wire's
         * records show as a gap in time. */
        if (v->wire_writer)
            wire_play(p->wire, v->out_buf, p->out_channels, F, (double)t.output_device_ns, period / F);
        k++;
        due_d += period;
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
    if (v->wire_writer) atomic_store(&v->p.wire->writer, 0);
    free(v);
}

void da_virtual_fault(da_virtual *v, int fault, int64_t value) {
    atomic_store(&v->fault_value, value);
    atomic_store(&v->fault, fault);
}

void da_virtual_stall(da_virtual *v, int64_t until_ns) {
    atomic_store(&v->stall_until, until_ns);
}
