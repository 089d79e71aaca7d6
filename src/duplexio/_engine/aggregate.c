/* Two devices on two clocks made one duplex device.
 *
 * The output device is the master: the aggregate's timeline is its frame
 * count, and its device thread runs the stream's cycle. The input device's
 * thread only feeds a ring (da_agg_push). Each output cycle pulls its input
 * from the ring (da_agg_pull) through the band-limited interpolator
 * (resample.c) at a ratio of input frames per output frame that a control
 * loop sets, so that the input frame read at the start of every block is
 * the one that reached the ring `fill` before the block's cycle start.
 *
 * Time comes from both devices' own cycle starts (when each input block
 * reached the ring, when each output cycle began), each filtered by a
 * delay-locked loop: a second-order loop that gives a smooth instant and
 * period per frame, wide at first to settle fast, then narrow to keep
 * jitter out. Arrival, not the capture instants a host reports, sets the
 * read position: the fill is then slack the ring really has, whatever a
 * host's latency figure (a PulseAudio monitor's can be hundreds of ms, and
 * known only once it runs). The capture instant of what is read is that
 * arrival less the input's own latency (its timestamps: cycle start less
 * capture instant), so the callback's timestamps stay what they are on
 * every stream. From those, the target read position of every output cycle;
 * the ratio is the two periods' quotient (the drift, fed forward) plus a
 * proportional-integral correction on the distance to the target. Once
 * locked the read position holds to a fraction of a frame, so the round
 * trip a stream reports (both latencies plus the fill) is what the
 * audio takes.
 *
 * Faults: frames the input device lost are zeros in the ring (its timeline
 * stays continuous) and the block that reads them is flagged; an input
 * block dropped because the ring was full, a stop, or a target that moved
 * by more than the loop corrects breaks the timeline: the read position is
 * set afresh (counted in `jumps`) and that block flagged. The output's
 * timeline never jumps: it is the master.
 *
 * Threads: one producer (the input device's), one consumer (the output
 * device's), Python reads the status. Neither device thread allocates or
 * takes a lock here: the ring is lock-free, the time base crosses over in
 * a sequence lock the consumer retries, and every buffer is made by
 * da_agg_new. */
#include "aggregate.h"

#include "engine.h"
#include "resample.h"
#include "ring.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define GAPS 64             /* input gaps the consumer has yet to meet */
#define KP 0.02             /* of the distance to the target, corrected per block */
#define KI (KP * KP / 4.0)  /* critically damped with KP */
/* The ratio stays within 3 % of the nominal: two clocks each up to 1 % off
 * (the most a virtual device may be made, far beyond real hardware's
 * hundreds of ppm), and the loop's corrections on top. A pair further apart
 * (two nominal rates, most likely) is reported, never followed unlocked. */
#define MAX_RATIO_STEP 0.03
#define MAX_DRIFT_PPM 25000.0
#define PI_ 3.14159265358979323846

/* ---- delay-locked loop: a device's frame instants, filtered ---------------- */

typedef struct {
    int init;
    uint64_t n;     /* the frame `t` is the instant of */
    double t;       /* ns, monotonic clock */
    double pf;      /* ns per frame */
    double elapsed; /* ns since the loop started, for its bandwidth */
} dll;

/* Frame n was at instant `at`. A measurement that misses the prediction by
 * more than 20 ms is a new timeline (a restart, a stall): start again. */
static void dll_update(dll *d, uint64_t n, double at, double nominal_pf) {
    if (d->init && n > d->n) {
        const double frames = (double)(n - d->n);
        const double predicted = d->t + frames * d->pf;
        const double err = at - predicted;
        if (fabs(err) < 20e6) {
            const double span = frames * d->pf;
            d->elapsed += span;
            const double hz = d->elapsed < 1e9 ? 4.0 : d->elapsed < 3e9 ? 1.0 : 0.3;
            const double w = 2.0 * PI_ * hz * span * 1e-9;
            d->t = predicted + 1.41421356237309505 * w * err;
            d->pf += w * w * err / frames;
            d->n = n;
            return;
        }
    }
    d->init = 1;
    d->n = n;
    d->t = at;
    d->pf = nominal_pf;
    d->elapsed = 0.0;
}

/* ---- the aggregate ------------------------------------------------------ */

struct da_agg {
    uint32_t ch, rate, in_frames, out_frames;
    double fill_ns, nominal_pf;
    uint64_t jump_frames;
    da_ring *ring; /* interleaved float32 frames; its write total is the input frame index */

    /* producer (the input device's thread) */
    float *scratch, *zeros; /* one input block, interleaved */
    dll in_dll;
    /* The input time base, (frame, instant, ns per frame), under a sequence
     * lock: odd while the producer writes. */
    atomic_uint seq;
    atomic_uint_fast64_t tb_n;
    _Atomic double tb_t, tb_pf;
    atomic_uint_fast64_t generation; /* the input timeline broke */
    atomic_int_fast64_t input_latency_ns; /* the input's cycle start less its capture instant */
    atomic_int_fast64_t input_cycle_ns;   /* the last input block's cycle start; 0: none yet */
    atomic_int clocks_settled;            /* both clocks measured past their loops' first second */
    uint64_t gap_at[GAPS];
    atomic_uint_fast64_t gaps_written;
    atomic_uint_fast64_t overruns;

    /* consumer (the output device's thread) */
    dll out_dll;
    uint64_t out_n;
    int cached; /* the last whole input time base read */
    uint64_t cached_n;
    double cached_t, cached_pf;
    int acquired;
    uint64_t generation_seen, gaps_read;
    double p, integ, last_ratio;
    float *hist; /* input frames [hist_base, hist_base + hist_len), interleaved */
    int64_t hist_base;
    uint64_t hist_len, hist_cap;
    float *planar;
    float **ptrs;
    uint64_t lock_run;
    int64_t first_pull_ns;

    /* status, for Python */
    _Atomic double drift_ppm, error_frames;
    atomic_int locked;
    atomic_uint_fast64_t locks, jumps, underruns;
    atomic_int_fast64_t first_lock_ns;
};

int da_agg_new(da_agg **out, uint32_t channels, uint32_t sample_rate, uint32_t input_frames,
               uint32_t output_frames, uint32_t fill_frames, char *msg, size_t len) {
    *out = NULL;
    if (!channels || !sample_rate || !input_frames || !output_frames || !fill_frames)
        return da_say(msg, len, -EINVAL,
                      "no aggregate of %u channels at %u Hz, blocks %u/%u, fill %u", channels,
                      sample_rate, input_frames, output_frames, fill_frames);
    da_agg *a = calloc(1, sizeof *a);
    if (!a) return da_say(msg, len, -ENOMEM, "no memory for the aggregate");
    a->ch = channels;
    a->rate = sample_rate;
    a->in_frames = input_frames;
    a->out_frames = output_frames;
    a->nominal_pf = 1e9 / sample_rate;
    a->fill_ns = fill_frames * a->nominal_pf;
    a->jump_frames = output_frames > 64 ? output_frames : 64;
    /* The ring holds the fill several times over: what is in flight, and
     * slack for an output thread that woke late. */
    uint64_t cap = 4 * ((uint64_t)fill_frames + input_frames + output_frames);
    a->ring = da_ring_alloc(cap, channels * (uint32_t)sizeof(float));
    a->scratch = calloc((size_t)input_frames * channels, sizeof(float));
    a->zeros = calloc((size_t)input_frames * channels, sizeof(float));
    /* The window of one output block at the fastest ratio, the kernel on
     * both sides, and room to discard through. */
    a->hist_cap = (uint64_t)(output_frames * (1.0 + MAX_RATIO_STEP) * 2) + 2 * DA_RS_HALF + 64;
    a->hist = calloc((size_t)a->hist_cap * channels, sizeof(float));
    a->planar = calloc((size_t)output_frames * channels, sizeof(float));
    a->ptrs = calloc(channels, sizeof(float *));
    if (!a->ring || !a->scratch || !a->zeros || !a->hist || !a->planar || !a->ptrs) {
        da_agg_free(a);
        return da_say(msg, len, -ENOMEM, "no memory for the aggregate's buffers");
    }
    for (uint32_t c = 0; c < channels; c++) a->ptrs[c] = a->planar + (size_t)c * output_frames;
    atomic_init(&a->first_lock_ns, -1);
    a->first_pull_ns = -1;
    a->last_ratio = 1.0;
    da_rs_prepare();
    *out = a;
    return 0;
}

void da_agg_free(da_agg *a) {
    if (!a) return;
    da_ring_free(a->ring);
    free(a->scratch);
    free(a->zeros);
    free(a->hist);
    free(a->planar);
    free(a->ptrs);
    free(a);
}

void da_agg_status_get(da_agg *a, da_agg_status *out) {
    out->drift_ppm = atomic_load_explicit(&a->drift_ppm, memory_order_relaxed);
    out->error_frames = atomic_load_explicit(&a->error_frames, memory_order_relaxed);
    out->locked = atomic_load_explicit(&a->locked, memory_order_relaxed);
    out->locks = atomic_load_explicit(&a->locks, memory_order_relaxed);
    out->jumps = atomic_load_explicit(&a->jumps, memory_order_relaxed);
    out->underruns = atomic_load_explicit(&a->underruns, memory_order_relaxed);
    out->overruns = atomic_load_explicit(&a->overruns, memory_order_relaxed);
    out->first_lock_ns = atomic_load_explicit(&a->first_lock_ns, memory_order_relaxed);
    out->input_latency_ns = atomic_load_explicit(&a->input_latency_ns, memory_order_relaxed);
    out->input_cycle_ns = atomic_load_explicit(&a->input_cycle_ns, memory_order_relaxed);
    out->clocks_settled = atomic_load_explicit(&a->clocks_settled, memory_order_relaxed);
    out->max_drift_ppm = MAX_DRIFT_PPM;
}

/* ---- producer ------------------------------------------------------------ */

static void broken(da_agg *a) {
    atomic_fetch_add_explicit(&a->generation, 1, memory_order_release);
    a->in_dll.init = 0;
}

static void publish(da_agg *a) {
    atomic_fetch_add_explicit(&a->seq, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&a->tb_n, a->in_dll.n, memory_order_relaxed);
    atomic_store_explicit(&a->tb_t, a->in_dll.t, memory_order_relaxed);
    atomic_store_explicit(&a->tb_pf, a->in_dll.pf, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->seq, 1, memory_order_release);
}

void da_agg_push(da_agg *a, const float *const *in, size_t in_stride, uint32_t frames,
                 const da_cycle_time *t, int device_xrun) {
    if (frames != a->in_frames) return; /* the engine failed the stream already */
    /* Every block counts as a sign of life, even one the ring cannot take:
     * the stream's supervisor times out an input that gives none. */
    atomic_store_explicit(&a->input_cycle_ns, t->callback_ns, memory_order_relaxed);
    uint64_t lost = device_xrun ? (uint64_t)t->lost_cycles * frames : 0;
    /* Lost frames become zeros, so that frame numbers keep time. */
    while (lost) {
        const uint64_t n = lost < frames ? lost : frames;
        if (da_ring_writable(a->ring) < n) break;
        da_ring_write(a->ring, a->zeros, n);
        lost -= n;
    }
    const uint64_t at = da_ring_write_total(a->ring);
    if (lost || da_ring_writable(a->ring) < frames) {
        /* Full: the output side is not reading (stopped, or stalled). */
        atomic_fetch_add_explicit(&a->overruns, 1, memory_order_relaxed);
        broken(a);
        return;
    }
    if (device_xrun) {
        const uint64_t w = atomic_load_explicit(&a->gaps_written, memory_order_relaxed);
        a->gap_at[w % GAPS] = at; /* the consumer is GAPS behind at worst: then */
        atomic_store_explicit(&a->gaps_written, w + 1, memory_order_release);
    }
    for (uint32_t c = 0; c < a->ch; c++)
        for (uint32_t f = 0; f < frames; f++)
            a->scratch[(size_t)f * a->ch + c] = in[c][f * in_stride];
    da_ring_write(a->ring, a->scratch, frames);
    dll_update(&a->in_dll, at, (double)t->callback_ns, a->nominal_pf);
    /* The input's latency as its first block gives it, kept: a host whose
     * figure moves by a block now and then (PulseAudio's) would otherwise
     * move the round trip, which must hold. */
    if (atomic_load_explicit(&a->input_latency_ns, memory_order_relaxed) <= 0)
        atomic_store_explicit(&a->input_latency_ns, t->callback_ns - t->input_device_ns,
                              memory_order_relaxed);
    publish(a);
}

/* ---- consumer ------------------------------------------------------------ */

/* The input time base; 0 while there is none. A read the producer
 * overlaps is retried a few times, then the last whole one is used: this
 * thread must not spin on a producer that may be preempted mid-write (on
 * one CPU, by this very thread). */
static int time_base(da_agg *a, uint64_t *n, double *t, double *pf) {
    for (int tries = 0; tries < 4; tries++) {
        const unsigned s1 = atomic_load_explicit(&a->seq, memory_order_acquire);
        if (s1 & 1u) continue;
        const uint64_t n1 = atomic_load_explicit(&a->tb_n, memory_order_relaxed);
        const double t1 = atomic_load_explicit(&a->tb_t, memory_order_relaxed);
        const double pf1 = atomic_load_explicit(&a->tb_pf, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&a->seq, memory_order_relaxed) != s1) continue;
        if (s1 != 0) {
            a->cached_n = n1;
            a->cached_t = t1;
            a->cached_pf = pf1;
            a->cached = 1;
        }
        break;
    }
    *n = a->cached_n;
    *t = a->cached_t;
    *pf = a->cached_pf;
    return a->cached;
}

/* Make hist hold input frames [lo, hi): drop what is before lo, read what
 * is missing from the ring (skipping what the read position jumped over,
 * zeros for what the ring no longer has). 0, or -1 when the ring ran short
 * (the rest is zeros). */
static int fill_history(da_agg *a, int64_t lo, int64_t hi) {
    const uint32_t ch = a->ch;
    if (a->hist_len == 0 || lo < a->hist_base) {
        a->hist_base = lo;
        a->hist_len = 0;
    } else if (lo > a->hist_base) {
        const uint64_t drop = (uint64_t)(lo - a->hist_base) < a->hist_len
                                  ? (uint64_t)(lo - a->hist_base) : a->hist_len;
        memmove(a->hist, a->hist + drop * ch, (a->hist_len - drop) * ch * sizeof(float));
        a->hist_len -= drop;
        a->hist_base = a->hist_len ? a->hist_base + (int64_t)drop : lo;
    }
    if (hi - a->hist_base > (int64_t)a->hist_cap) return -1; /* cannot happen within bounds */
    int status = 0;
    while (a->hist_base + (int64_t)a->hist_len < hi) {
        const int64_t next = a->hist_base + (int64_t)a->hist_len;
        float *tail = a->hist + a->hist_len * ch;
        const int64_t r = (int64_t)da_ring_read_total(a->ring);
        uint64_t n;
        if (next < r) { /* gone from the ring (or before its start): silence */
            n = (uint64_t)((r < hi ? r : hi) - next);
            memset(tail, 0, n * ch * sizeof(float));
        } else if (next > r) { /* jumped over: discard through the free room */
            uint64_t skip = (uint64_t)(next - r), room = a->hist_cap - a->hist_len;
            if (da_ring_read(a->ring, tail, skip < room ? skip : room) == 0) {
                status = -1;
                break;
            }
            continue;
        } else {
            n = da_ring_read(a->ring, tail, (uint64_t)(hi - next));
            if (n == 0) {
                status = -1;
                break;
            }
        }
        a->hist_len += n;
    }
    if (status) { /* the input is late: zeros for the rest of this block */
        const uint64_t want = (uint64_t)(hi - a->hist_base);
        memset(a->hist + a->hist_len * ch, 0, (want - a->hist_len) * ch * sizeof(float));
        a->hist_len = want;
    }
    return status;
}

static void silence_block(da_agg *a, uint32_t frames) {
    memset(a->planar, 0, (size_t)frames * a->ch * sizeof(float));
}

/* The read position's error against its target (frames). A first cycle, a
 * restart or an error beyond jump_frames sets the position afresh (flagged,
 * counted) and reports no error. */
static double position_error(da_agg *a, double target, uint64_t lost, int *xrun) {
    if (a->acquired) a->p += (double)lost * a->last_ratio;
    double e = target - a->p;
    if (!a->acquired || fabs(e) > (double)a->jump_frames) {
        a->p = target;
        e = 0.0;
        a->integ = 0.0;
        a->hist_len = 0;
        a->gaps_read = atomic_load_explicit(&a->gaps_written, memory_order_acquire);
        a->acquired = 1;
        a->lock_run = 0;
        atomic_store_explicit(&a->locked, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&a->jumps, 1, memory_order_relaxed);
        *xrun = 1;
    }
    return e;
}

/* The resampling ratio for this block: the clocks' ratio, corrected by the
 * PI loop on the position error, within MAX_RATIO_STEP of 1. */
static double loop_ratio(da_agg *a, double ratio, double e, uint32_t frames) {
    double r = ratio + a->integ + KP * e / frames;
    a->integ += KI * e / frames;
    if (a->integ > 1e-3) a->integ = 1e-3;
    if (a->integ < -1e-3) a->integ = -1e-3;
    if (r > 1.0 + MAX_RATIO_STEP) r = 1.0 + MAX_RATIO_STEP;
    if (r < 1.0 - MAX_RATIO_STEP) r = 1.0 - MAX_RATIO_STEP;
    return r;
}

/* Frames the input device lost are zeros in the ring: flag the block whose
 * kernel first reaches them (input frames before `hi`). */
static void flag_gaps(da_agg *a, int64_t hi, int *xrun) {
    const uint64_t gaps = atomic_load_explicit(&a->gaps_written, memory_order_acquire);
    if (gaps - a->gaps_read > GAPS) { /* more gaps than remembered: flag, go on */
        a->gaps_read = gaps - GAPS;
        *xrun = 1;
    }
    while (a->gaps_read < gaps && (int64_t)a->gap_at[a->gaps_read % GAPS] < hi) {
        a->gaps_read++;
        *xrun = 1;
    }
}

/* The block itself: each output frame k read at input position p + k * r. */
static void resample_block(da_agg *a, uint32_t frames, double r) {
    for (uint32_t k = 0; k < frames; k++) {
        const double pos = a->p + k * r;
        const double whole = floor(pos);
        const float *at = a->hist + (size_t)((int64_t)whole - a->hist_base) * a->ch;
        for (uint32_t c = 0; c < a->ch; c++) a->ptrs[c][k] = da_rs_value(at + c, a->ch, pos - whole);
    }
    a->p += frames * r;
    a->last_ratio = r;
    a->out_n += frames;
}

/* Locked: within a frame of the target for a quarter second, with the
 * clocks' loops past their wide first second (the input's started with the
 * output's, give or take a cycle). Published with the drift and the error. */
static void publish_lock(da_agg *a, double e, double ratio, uint32_t frames, int64_t now) {
    a->lock_run = fabs(e) < 1.0 ? a->lock_run + frames : 0;
    const int settled = a->out_dll.elapsed > 1.25e9;
    atomic_store_explicit(&a->clocks_settled, settled, memory_order_relaxed);
    const int locked = atomic_load_explicit(&a->locked, memory_order_relaxed);
    if (!locked && settled && a->lock_run >= a->rate / 4) {
        atomic_store_explicit(&a->locked, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&a->locks, 1, memory_order_relaxed);
        if (atomic_load_explicit(&a->first_lock_ns, memory_order_relaxed) < 0)
            atomic_store_explicit(&a->first_lock_ns, now - a->first_pull_ns, memory_order_relaxed);
    } else if (locked && fabs(e) > 2.0) {
        atomic_store_explicit(&a->locked, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&a->drift_ppm, (ratio + a->integ - 1.0) * 1e6, memory_order_relaxed);
    atomic_store_explicit(&a->error_frames, e, memory_order_relaxed);
}

const float *const *da_agg_pull(da_agg *a, uint32_t frames, const da_cycle_time *t, int *xrun,
                                int64_t *input_device_ns) {
    *xrun = 0;
    *input_device_ns = t->callback_ns - (int64_t)llround(a->fill_ns) -
                       atomic_load_explicit(&a->input_latency_ns, memory_order_relaxed);
    if (frames > a->out_frames) frames = a->out_frames; /* the engine refuses those first */
    if (a->first_pull_ns < 0) a->first_pull_ns = t->callback_ns;

    const uint64_t lost = (uint64_t)t->lost_cycles * frames;
    a->out_n += lost;
    const int was = a->out_dll.init;
    dll_update(&a->out_dll, a->out_n, (double)t->callback_ns, a->nominal_pf);
    if (was && a->out_dll.elapsed == 0.0) a->acquired = 0; /* the output restarted */

    uint64_t tb_n;
    double tb_t, tb_pf;
    if (!time_base(a, &tb_n, &tb_t, &tb_pf)) { /* no input yet */
        silence_block(a, frames);
        a->out_n += frames;
        return (const float *const *)a->ptrs;
    }
    const uint64_t generation = atomic_load_explicit(&a->generation, memory_order_acquire);
    if (generation != a->generation_seen) {
        a->generation_seen = generation;
        a->acquired = 0;
    }
    /* Input frames per output frame, from the two clocks' periods. */
    const double ratio = a->out_dll.pf / tb_pf;
    const double target = (double)tb_n + (a->out_dll.t - a->fill_ns - tb_t) / tb_pf;
    const double e = position_error(a, target, lost, xrun);
    const double r = loop_ratio(a, ratio, e, frames);
    const int64_t lo = (int64_t)floor(a->p) - (DA_RS_HALF - 1);
    const int64_t hi = (int64_t)floor(a->p + (frames - 1) * r) + DA_RS_HALF + 1;
    flag_gaps(a, hi, xrun);
    if (fill_history(a, lo, hi) != 0) {
        atomic_fetch_add_explicit(&a->underruns, 1, memory_order_relaxed);
        a->acquired = 0; /* set afresh next cycle */
        *xrun = 1;
    }
    resample_block(a, frames, r);
    publish_lock(a, e, ratio, frames, t->callback_ns);
    return (const float *const *)a->ptrs;
}
