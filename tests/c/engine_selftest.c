/* The engine's C self-test: the engine, its rings and converters and the
 * platform layer, run with a C "device" thread and a C "worker" (no Python,
 * no audio library), so the same checks run natively and, built for
 * Windows, under wine (scripts/cross-check). It asserts facts that hold on
 * a slow or busy machine: values, orders and counts, never how fast.
 *
 * Exit status 0 when every check passes; each failure prints one line. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "samples.h"

/* Built with DA_RT_GUARD (tests/c/rt_guard.c, Linux, tests/_engine): every
 * allocation and mutex lock the engine makes is counted, and those made on
 * a thread that called rt_guard_enter() are the device threads'. */
#ifdef DA_RT_GUARD
void rt_guard_enter(void);
long rt_guard_count(void);
#else
static void rt_guard_enter(void) {}
static long rt_guard_count(void) { return 0; }
#endif

static int failures;
#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            failures++;                                                                        \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                        \
            printf(__VA_ARGS__);                                                               \
            printf("\n");                                                                      \
        }                                                                                      \
    } while (0)

/* ---- the clock and timed waits ------------------------------------------------- */


/* The engine's constructors as the tests use them: the object, or NULL (and
 * `why` says what the engine said). */
static char why[256];
static da_engine *new_engine(uint32_t in_channels, int in_format, void *in_block,
                             uint32_t out_channels, int out_format, void *out_block,
                             uint32_t frames, uint32_t rate, int pipelined, double deadline) {
    da_engine *e = NULL;
    da_engine_new(&e, in_channels, in_format, in_block, out_channels, out_format, out_block,
                  frames, frames, rate, pipelined, deadline, why, sizeof why);
    return e;
}
static da_ring *new_ring(uint64_t capacity_frames, uint32_t frame_bytes) {
    da_ring *r = NULL;
    da_ring_new(&r, capacity_frames, frame_bytes, why, sizeof why);
    return r;
}
static da_agg *new_agg(uint32_t channels, uint32_t rate, uint32_t in_frames, uint32_t out_frames,
                       uint32_t fill) {
    da_agg *a = NULL;
    da_agg_new(&a, channels, rate, in_frames, out_frames, fill, why, sizeof why);
    return a;
}

static void test_clock_and_waits(void) {
    int64_t a = da_now_ns();
    da_sleep_ns(20000000);
    int64_t b = da_now_ns();
    CHECK(b - a >= 20000000, "a 20 ms sleep took %lld ns", (long long)(b - a));

    da_sem *s = da_sem_new();
    CHECK(s != NULL, "no semaphore");
    if (!s) return;
    CHECK(da_sem_trywait(s) == -EAGAIN, "an empty semaphore was taken");
    /* A timed wait that nobody ends returns -ETIMEDOUT, and not before its deadline. */
    int64_t until = da_now_ns() + 30000000;
    int r = da_sem_wait_until(s, until);
    int64_t woke = da_now_ns();
    CHECK(r == -ETIMEDOUT, "timed wait returned %d", r);
    CHECK(woke >= until, "timed wait ended %lld ns early", (long long)(until - woke));
    /* A deadline in the past still takes a posted count, at once. */
    da_sem_post(s);
    CHECK(da_sem_wait_until(s, da_now_ns() - 1000000) == 0, "a posted count was not taken");
    da_sem_post(s);
    da_sem_post(s);
    CHECK(da_sem_wait(s) == 0 && da_sem_trywait(s) == 0, "two posts are two counts");
    CHECK(da_sem_trywait(s) == -EAGAIN, "a third count appeared");
    da_sem_free(s);
}

/* ---- threads ------------------------------------------------------------------- */

typedef struct {
    da_sem *go, *back;
    atomic_int ran;
} pingpong;

static void *ponger(void *arg) {
    pingpong *p = arg;
    for (int i = 0; i < 100; i++) {
        while (da_sem_wait(p->go) != 0) {
        }
        atomic_fetch_add(&p->ran, 1);
        da_sem_post(p->back);
    }
    return NULL;
}

static void test_threads(void) {
    pingpong p = {da_sem_new(), da_sem_new(), 0};
    da_thread *t;
    int realtime = -1;
    CHECK(da_thread_start(&t, ponger, &p, 1, &realtime) == 0, "no thread");
    CHECK(realtime == 0 || realtime == 1, "realtime is %d", realtime);
    for (int i = 0; i < 100; i++) {
        da_sem_post(p.go);
        CHECK(da_sem_wait_until(p.back, da_now_ns() + 10000000000LL) == 0, "no answer %d", i);
        CHECK(atomic_load(&p.ran) == i + 1, "ran %d times at round %d", atomic_load(&p.ran), i);
    }
    da_thread_join(t);
    da_sem_free(p.go);
    da_sem_free(p.back);
}

/* ---- sample conversion --------------------------------------------------------- */

static void test_conversion(void) {
    const float in[] = {0.0f, 0.5f, -0.5f, 1.0f, -1.0f, 2.0f, -2.0f, 0.25f};
    const size_t n = sizeof in / sizeof in[0];
    const int formats[] = {DA_FMT_I16, DA_FMT_I24, DA_FMT_I32, DA_FMT_F32, DA_FMT_F64, DA_FMT_U8};
    for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
        int fmt = formats[k];
        unsigned char raw[8 * 8];
        float back[8];
        da_store(fmt, raw, 0, 1, in, 1, n);
        da_load(fmt, raw, 0, 1, back, 1, n);
        int is_float = fmt == DA_FMT_F32 || fmt == DA_FMT_F64;
        /* Integers clip to full scale; halves and quarters are exact in every format. */
        for (size_t i = 0; i < n; i++) {
            float want = is_float ? in[i] : (in[i] > 1.0f ? 1.0f : in[i] < -1.0f ? -1.0f : in[i]);
            float tol = is_float ? 0.0f : 1.0f / 64.0f; /* +1.0 is one step below in int formats */
            CHECK(fabsf(back[i] - want) <= tol, "format %d: %g came back as %g", fmt,
                  (double)in[i], (double)back[i]);
        }
        unsigned char quiet[4 * 8];
        float zero[4];
        da_fill_equilibrium(fmt, quiet, 4);
        da_load(fmt, quiet, 0, 1, zero, 1, 4);
        for (int i = 0; i < 4; i++) CHECK(zero[i] == 0.0f, "format %d: silence is %g", fmt, (double)zero[i]);
    }
    int16_t i16[3] = {16384, -16384, 32767};
    float f[3];
    CHECK(da_convert(i16, DA_FMT_I16, f, DA_FMT_F32, 3, why, sizeof why) == 0 && f[0] == 0.5f && f[1] == -0.5f,
          "int16 -> float32: %g %g", (double)f[0], (double)f[1]);
    CHECK(da_convert(i16, 99, f, DA_FMT_F32, 3, why, sizeof why) == -EINVAL, "an unknown format was accepted");
}

/* ---- the ring ------------------------------------------------------------------ */

static void test_ring(void) {
    da_ring *r = new_ring(100, 2 * sizeof(int32_t));
    CHECK(r && da_ring_capacity(r) == 100, "no ring");
    if (!r) return;
    int32_t frames[2 * 100], got[2 * 100];
    int32_t next_in = 0, next_out = 0;
    /* Writes and reads of sizes that wrap the ring at ever other places; a
     * write beyond the room takes what fits, a read beyond the data what is there. */
    for (int pass = 0; pass < 50; pass++) {
        uint64_t want = (uint64_t)(pass * 37 % 100) + 1, room = da_ring_writable(r);
        for (uint64_t i = 0; i < want; i++) frames[2 * i] = frames[2 * i + 1] = next_in + (int32_t)i;
        uint64_t w = da_ring_write(r, frames, want);
        CHECK(w == (want < room ? want : room), "pass %d wrote %llu of %llu (room %llu)", pass,
              (unsigned long long)w, (unsigned long long)want, (unsigned long long)room);
        next_in += (int32_t)w;
        uint64_t ask = (uint64_t)(pass * 53 % 100) + 1, have = da_ring_readable(r);
        uint64_t g = da_ring_read(r, got, ask);
        CHECK(g == (ask < have ? ask : have), "pass %d read %llu of %llu", pass,
              (unsigned long long)g, (unsigned long long)ask);
        for (uint64_t i = 0; i < g; i++)
            CHECK(got[2 * i] == next_out + (int32_t)i && got[2 * i + 1] == got[2 * i],
                  "pass %d frame %llu is %d, not %d", pass, (unsigned long long)i, got[2 * i],
                  next_out + (int32_t)i);
        next_out += (int32_t)g;
        CHECK(da_ring_write_total(r) == (uint64_t)next_in && da_ring_read_total(r) == (uint64_t)next_out,
              "pass %d totals %llu %llu", pass, (unsigned long long)da_ring_write_total(r),
              (unsigned long long)da_ring_read_total(r));
        CHECK(da_ring_readable(r) + da_ring_writable(r) == 100, "pass %d: room and data", pass);
    }
    da_ring_free(r);
    CHECK(new_ring(0, 4) == NULL && new_ring(4, 0) == NULL, "an empty ring was made");
}

/* ---- the engine: a device thread and a worker ----------------------------------- */

enum { FRAMES = 64, CHANNELS = 2, RATE = 48000, CYCLES = 600 };

typedef struct {
    da_engine *e;
    float *in_block, *out_block; /* the user's blocks (float32, interleaved) */
    atomic_int blocks;           /* blocks the worker answered */
    atomic_int bad_seq;
    uint32_t frames; /* per block; 0: FRAMES */
} worker_state;

/* The worker: output = input * 2, as a user's callback would, and every
 * block's sequence number one more than the last. */
static void *worker(void *arg) {
    worker_state *w = arg;
    da_block_info info;
    uint64_t last = 0;
    int status = DA_BLOCK_NONE;
    const uint32_t frames = w->frames ? w->frames : FRAMES;
    while (da_worker_next(w->e, status, &info)) {
        if (info.seq <= last || info.frames != frames) atomic_fetch_add(&w->bad_seq, 1);
        last = info.seq;
        for (uint32_t i = 0; i < frames * CHANNELS; i++) w->out_block[i] = 2.0f * w->in_block[i];
        atomic_fetch_add(&w->blocks, 1);
        status = DA_BLOCK_OK;
    }
    return NULL;
}

/* One device cycle: planar input holding frame numbers, the output read back. */
typedef struct {
    float in[CHANNELS][FRAMES], out[CHANNELS][FRAMES];
    const float *in_ptrs[CHANNELS];
    float *out_ptrs[CHANNELS];
} device_cycle;

static void cycle_init(device_cycle *d) {
    for (int c = 0; c < CHANNELS; c++) {
        d->in_ptrs[c] = d->in[c];
        d->out_ptrs[c] = d->out[c];
    }
}

static void run_cycle(da_engine *e, device_cycle *d, uint64_t k, int xrun) {
    for (int c = 0; c < CHANNELS; c++)
        for (int f = 0; f < FRAMES; f++) d->in[c][f] = (float)((k * FRAMES + f) % 4096) / 8192.0f + c;
    da_cycle_time t = {0};
    int64_t now = da_now_ns();
    t.callback_ns = now;
    t.wakeup_ns = now;
    /* A generous deadline: the test is of the hand-over's logic, not of speed. */
    t.deadline_anchor_ns = now + 2000000000LL;
    t.input_device_ns = now;
    t.output_device_ns = now;
    da_engine_process(e, d->in_ptrs, 1, d->out_ptrs, 1, FRAMES, &t, xrun);
}

static void test_engine_handover(void) {
    float *in_block = calloc(FRAMES * CHANNELS, sizeof(float));
    float *out_block = calloc(FRAMES * CHANNELS, sizeof(float));
    da_engine *e = new_engine(CHANNELS, DA_FMT_F32, in_block, CHANNELS, DA_FMT_F32, out_block,
                                 FRAMES, RATE, 0, 1.0);
    CHECK(e != NULL, "no engine");
    if (!e) return;
    worker_state w = {e, in_block, out_block, 0, 0, FRAMES};
    da_thread *t;
    int realtime;
    CHECK(da_thread_start(&t, worker, &w, 0, &realtime) == 0, "no worker");
    da_engine_set_state(e, DA_STATE_RUNNING, 0);
    device_cycle d;
    cycle_init(&d);
    int wrong = 0;
    for (uint64_t k = 0; k < CYCLES; k++) {
        run_cycle(e, &d, k, k == 100);
        for (int c = 0; c < CHANNELS; c++)
            for (int f = 0; f < FRAMES; f++) wrong += d.out[c][f] != 2.0f * d.in[c][f];
    }
    CHECK(wrong == 0, "%d output samples were not the worker's answer", wrong);
    da_stats s;
    da_engine_stats(e, &s);
    CHECK(s.cycles == CYCLES && s.callbacks == CYCLES && s.late_blocks == 0 &&
              s.skipped_blocks == 0,
          "cycles %llu callbacks %llu late %llu skipped %llu", (unsigned long long)s.cycles,
          (unsigned long long)s.callbacks, (unsigned long long)s.late_blocks,
          (unsigned long long)s.skipped_blocks);
    CHECK(s.xruns == 1, "the device's one glitch counted %llu times", (unsigned long long)s.xruns);
    CHECK(atomic_load(&w.blocks) == CYCLES && atomic_load(&w.bad_seq) == 0,
          "the worker answered %d blocks, %d out of order", atomic_load(&w.blocks),
          atomic_load(&w.bad_seq));

    /* A failure from the device side reaches the event reader; later cycles
     * play silence and reach no worker. */
    da_event ev;
    CHECK(da_event_wait(e, 20000000, &ev) == 0, "an event nobody posted");
    da_engine_fail(e, DA_EV_DEVICE_LOST, 7);
    CHECK(da_event_wait(e, 1000000000, &ev) == 1 && ev.code == DA_EV_DEVICE_LOST && ev.value == 7,
          "the failure did not arrive");
    run_cycle(e, &d, CYCLES, 0);
    CHECK(d.out[0][0] == 0.0f && atomic_load(&w.blocks) == CYCLES, "a failed stream ran a block");

    da_worker_quit(e);
    da_thread_join(t);
    da_engine_free(e);
    free(in_block);
    free(out_block);
}

/* ---- re-blocking: N-frame blocks on FRAMES-frame device periods ----------------- */

enum { REBLOCK_CYCLES = 400 };

typedef struct {
    da_engine *e;
    uint32_t frames; /* the blocks' */
    int pipelined;
    int wrong, lost;
    uint32_t latency;
} reblock_run;

/* The device thread: every output frame is twice the input frame played
 * `latency` frames earlier (the worker doubles), silence before; no
 * allocation, no lock. */
static void *reblock_device(void *arg) {
    reblock_run *r = arg;
    rt_guard_enter();
    device_cycle d;
    cycle_init(&d);
    for (uint64_t k = 0; k < REBLOCK_CYCLES; k++) {
        run_cycle(r->e, &d, k, 0);
        for (int c = 0; c < CHANNELS; c++)
            for (int f = 0; f < FRAMES; f++) {
                const int64_t from = (int64_t)(k * FRAMES + (uint64_t)f) - r->latency;
                const float want =
                    from < 0 ? 0.0f : 2.0f * ((float)(from % 4096) / 8192.0f + (float)c);
                r->wrong += d.out[c][f] != want;
            }
    }
    return NULL;
}

static void test_reblocking(void) {
    /* Below, above, a multiple, neither; same-cycle and pipelined. */
    const uint32_t sizes[] = {16, 100, 256, 160};
    for (int pipelined = 0; pipelined < 2; pipelined++)
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            const uint32_t n = sizes[i];
            float *in_block = calloc((size_t)n * CHANNELS, sizeof(float));
            float *out_block = calloc((size_t)n * CHANNELS, sizeof(float));
            da_engine *e = NULL;
            da_engine_new(&e, CHANNELS, DA_FMT_F32, in_block, CHANNELS, DA_FMT_F32, out_block, n,
                          FRAMES, RATE, pipelined, 1.0, why, sizeof why);
            CHECK(e != NULL, "no re-blocking engine: %s", why);
            if (!e) return;
            worker_state w = {e, in_block, out_block, 0, 0, n};
            da_thread *worker_thread, *device;
            int realtime;
            CHECK(da_thread_start(&worker_thread, worker, &w, 0, &realtime) == 0, "no worker");
            uint32_t a = n, b = FRAMES;
            while (b) {
                const uint32_t t = a % b;
                a = b;
                b = t;
            }
            reblock_run r = {e, n, pipelined, 0, 0, n - a + (pipelined ? n : 0)};
            CHECK(da_engine_frames(e) == FRAMES &&
                      da_engine_reblock_latency(e) == n - a,
                  "%u on %u: device period %u, latency %u", n, FRAMES, da_engine_frames(e),
                  da_engine_reblock_latency(e));
            da_engine_set_state(e, DA_STATE_RUNNING, 0);
            CHECK(da_thread_start(&device, reblock_device, &r, 0, &realtime) == 0, "no device");
            da_thread_join(device);
            CHECK(r.wrong == 0, "%u on %u (pipelined %d): %d output samples wrong", n, FRAMES,
                  pipelined, r.wrong);
            CHECK(atomic_load(&w.bad_seq) == 0 &&
                      atomic_load(&w.blocks) >= (int)(REBLOCK_CYCLES * FRAMES / n) - 1,
                  "%u on %u: %d blocks, %d of a wrong size or order", n, FRAMES,
                  atomic_load(&w.blocks), atomic_load(&w.bad_seq));
            da_worker_quit(e);
            da_thread_join(worker_thread);
            da_engine_free(e);
            free(in_block);
            free(out_block);
        }
    CHECK(rt_guard_count() == 0, "re-blocking: %ld allocations or locks on the device thread",
          rt_guard_count());
}

/* ---- the engine with rings: a blocking reader on its own thread ----------------- */

typedef struct {
    da_engine *e;
    da_ring *ring;
    uint64_t frames_read;
    int discontinuities;
} reader_state;

static void *reader(void *arg) {
    reader_state *r = arg;
    int16_t block[FRAMES * CHANNELS];
    int64_t expect = 0;
    while (r->frames_read < (uint64_t)CYCLES * FRAMES) {
        int w = da_engine_ring_wait(r->e, 0, FRAMES, 5000000000LL);
        if (w < 0) break;
        if (w == 0) continue;
        uint64_t n = da_ring_read(r->ring, block, FRAMES);
        for (uint64_t i = 0; i < n; i++) {
            /* Channel 0 carries the frame number (mod 4096) at 1/8192 of full scale each. */
            int64_t value = block[i * CHANNELS] / 4;
            if (value != expect % 4096) r->discontinuities++;
            expect = value + 1;
        }
        r->frames_read += n;
    }
    return NULL;
}

static void test_engine_rings(void) {
    int16_t in_block[FRAMES * CHANNELS], out_block[FRAMES * CHANNELS];
    da_engine *e = new_engine(CHANNELS, DA_FMT_I16, in_block, CHANNELS, DA_FMT_I16, out_block,
                                 FRAMES, RATE, 0, 1.0);
    /* Room for every cycle: a slow reader must not lose a frame here. */
    da_ring *in = new_ring((uint64_t)CYCLES * FRAMES, CHANNELS * sizeof(int16_t));
    da_ring *out = new_ring(4 * FRAMES, CHANNELS * sizeof(int16_t));
    CHECK(e && in && out && da_engine_rings(e, in, out, why, sizeof why) == 0, "no blocking engine");
    if (!e || !in || !out) return;
    /* What is written before the start plays from the first cycle. */
    int16_t queued[2 * FRAMES * CHANNELS];
    for (int i = 0; i < 2 * FRAMES * CHANNELS; i++) queued[i] = (int16_t)(100 + i / CHANNELS);
    CHECK(da_ring_write(out, queued, 2 * FRAMES) == 2 * FRAMES, "the output ring refused");
    reader_state r = {e, in, 0, 0};
    da_engine_set_state(e, DA_STATE_RUNNING, 0);
    da_thread *t;
    int realtime;
    CHECK(da_thread_start(&t, reader, &r, 0, &realtime) == 0, "no reader");
    device_cycle d;
    cycle_init(&d);
    int played_wrong = 0;
    for (uint64_t k = 0; k < CYCLES; k++) {
        run_cycle(e, &d, k, 0);
        for (int f = 0; f < FRAMES && k < 2; f++) {
            float want = (float)(100 + k * FRAMES + f) / 32768.0f;
            played_wrong += d.out[0][f] != want || d.out[1][f] != want;
        }
    }
    da_thread_join(t);
    CHECK(played_wrong == 0, "%d frames queued before the start played wrong", played_wrong);
    CHECK(r.frames_read == (uint64_t)CYCLES * FRAMES && r.discontinuities == 0,
          "read %llu frames with %d discontinuities", (unsigned long long)r.frames_read,
          r.discontinuities);
    da_ring_status st;
    da_engine_ring_status(e, &st);
    CHECK(st.overflows == 0 && st.underflows == CYCLES - 2 &&
              st.underflow_frames == (uint64_t)(CYCLES - 2) * FRAMES,
          "overflows %llu underflows %llu (%llu frames)", (unsigned long long)st.overflows,
          (unsigned long long)st.underflows, (unsigned long long)st.underflow_frames);
    /* A stopped stream ends a wait at once: waiting would not help. */
    da_engine_set_state(e, DA_STATE_STOPPED, 0);
    CHECK(da_engine_ring_wait(e, 0, FRAMES, -1) == -EPIPE, "a wait on a stopped stream");
    da_engine_free(e);
    da_ring_free(in);
    da_ring_free(out);
}

/* ---- an aggregate: two device threads on two clocks ------------------------------ */

enum { AGG_IN = 96, AGG_OUT = 128, AGG_SECONDS = 3, AGG_FILL = 600 };
#define AGG_PPM 500.0
#define PI_ 3.14159265358979323846

typedef struct {
    da_engine *e;
    int input;           /* the input device (a 500 ppm fast clock) or the output */
    int64_t t0;
    atomic_int *stop;
    da_sem *sleep;       /* made before the thread: it allocates nothing itself */
} agg_device;

/* A device thread: cycles at its clock's absolute times, as the virtual
 * host's does. The input captures a 997 Hz sine at its own instants. */
static void *agg_device_thread(void *arg) {
    agg_device *d = arg;
    rt_guard_enter();
    const uint32_t F = d->input ? AGG_IN : AGG_OUT;
    const double period = F * 1e9 / RATE / (d->input ? 1.0 + AGG_PPM * 1e-6 : 1.0);
    float in[CHANNELS][AGG_IN], out[CHANNELS][AGG_OUT];
    const float *in_ptrs[CHANNELS] = {in[0], in[1]};
    float *out_ptrs[CHANNELS] = {out[0], out[1]};
    for (uint64_t k = 0; !atomic_load(d->stop); k++) {
        const int64_t due = d->t0 + (int64_t)llround((double)k * period);
        da_sem_wait_until(d->sleep, due);
        da_cycle_time t = {0};
        t.callback_ns = due;
        t.wakeup_ns = da_now_ns();
        t.deadline_anchor_ns = t.wakeup_ns;
        t.input_device_ns = due - (int64_t)llround(period);
        t.output_device_ns = due + 1000000;
        if (d->input)
            for (uint32_t f = 0; f < F; f++) {
                const double at = (double)(t.input_device_ns - d->t0) + f * period / F;
                in[0][f] = in[1][f] = (float)(0.5 * sin(2 * PI_ * 997.0 * at * 1e-9));
            }
        da_engine_process(d->e, in_ptrs, 1, out_ptrs, 1, F, &t, 0);
    }
    return NULL;
}

static void test_aggregate(void) {
    const uint64_t total = (uint64_t)AGG_SECONDS * RATE;
    float *record = calloc(total * CHANNELS, sizeof(float));
    float *play = calloc(total * CHANNELS, sizeof(float));
    float *user_in = calloc(AGG_OUT * CHANNELS, sizeof(float));
    float *user_out = calloc(AGG_OUT * CHANNELS, sizeof(float));
    float *side_in = calloc(AGG_IN * CHANNELS, sizeof(float));
    da_engine *stream = new_engine(CHANNELS, DA_FMT_F32, user_in, CHANNELS, DA_FMT_F32,
                                      user_out, AGG_OUT, RATE, 0, 0.8);
    da_engine *input = new_engine(CHANNELS, DA_FMT_F32, side_in, 0, DA_FMT_F32, NULL, AGG_IN,
                                     RATE, 0, 1.0);
    da_agg *agg = new_agg(CHANNELS, RATE, AGG_IN, AGG_OUT, AGG_FILL);
    CHECK(stream && input && agg && record && play, "aggregate: set-up");
    if (!stream || !input || !agg || !record || !play) return;
    CHECK(da_engine_feed(input, agg, stream, why, sizeof why) == 0, "aggregate: feed");
    CHECK(da_engine_pull(stream, agg, why, sizeof why) == 0, "aggregate: pull");
    CHECK(da_engine_feed(stream, agg, stream, why, sizeof why) == -EINVAL, "aggregate: a stream cannot feed itself");
    CHECK(da_engine_program(stream, play, total, record, total, total, why, sizeof why) == 0, "aggregate: program");
    da_engine_set_state(stream, DA_STATE_RUNNING, 0);
    da_engine_set_state(input, DA_STATE_RUNNING, 0);
    atomic_int stop = 0;
    const int64_t t0 = da_now_ns() + 5000000;
    agg_device devices[2] = {{input, 1, t0, &stop, da_sem_new()},
                             {stream, 0, t0 + 1000000, &stop, da_sem_new()}};
    da_thread *threads[2];
    int rt;
    for (int i = 0; i < 2; i++)
        CHECK(da_thread_start(&threads[i], agg_device_thread, &devices[i], 0, &rt) == 0,
              "aggregate: device thread %d", i);
    da_program_status ps;
    const int64_t give_up = da_now_ns() + (int64_t)(AGG_SECONDS + 10) * 1000000000LL;
    do {
        da_sleep_ns(10000000);
        da_engine_program_status(stream, &ps);
    } while (!ps.finished && da_now_ns() < give_up);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        da_thread_join(threads[i]);
        da_sem_free(devices[i].sleep);
    }
    da_agg_status st;
    da_agg_status_get(agg, &st);
    CHECK(ps.finished, "aggregate: the program finished");
    CHECK(st.locks >= 1 && st.first_lock_ns > 0, "aggregate: locked (%lld ns)",
          (long long)st.first_lock_ns);
    CHECK(fabs(st.drift_ppm - AGG_PPM) < 5.0, "aggregate: drift %.3f ppm for %.1f", st.drift_ppm,
          AGG_PPM);
    CHECK(fabs(st.error_frames) < 1.0, "aggregate: read position %.3f frames off", st.error_frames);
    /* The sine came through onto the output's clock: at 997 Hz * (1 + ppm)
     * there, its last second a clean sine (the peak of a 997 Hz sine
     * sampled at 48 kHz, within the resampler's flatness). */
    float peak = 0.0f;
    for (uint64_t i = (total - RATE) * CHANNELS; i < total * CHANNELS; i++)
        if (fabsf(record[i]) > peak) peak = fabsf(record[i]);
    CHECK(peak > 0.49f && peak < 0.501f, "aggregate: the sine's peak %.4f", (double)peak);
    CHECK(rt_guard_count() == 0, "aggregate: %ld allocations or locks on the device threads",
          rt_guard_count());
    da_engine_free(input);
    da_engine_free(stream);
    da_agg_free(agg);
    free(record);
    free(play);
    free(user_in);
    free(user_out);
    free(side_in);
}

int main(void) {
    test_clock_and_waits();
    test_threads();
    test_conversion();
    test_ring();
    test_engine_handover();
    test_reblocking();
    test_engine_rings();
    test_aggregate();
    if (failures) {
        printf("engine self-test: %d check(s) failed\n", failures);
        return 1;
    }
    printf("engine self-test: all checks passed\n");
    return 0;
}
