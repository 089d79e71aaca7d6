/* The JACK host's C side: libjack loaded with dlopen, one client per stream.
 *
 * JACK calls process() on its real-time thread once per cycle for all of a
 * client's ports, so input and output of a stream share one cycle and one
 * clock: duplex is exact. process() gathers the port buffers and the cycle's
 * times and hands them to the engine. Everything else (opening, ports,
 * connections, latency queries) runs on Python's threads through the small
 * wrappers below. No JACK header is needed: the few types and constants used
 * are JACK's stable C ABI, declared here. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "jack_api.h"

typedef uint32_t jack_nframes_t;
typedef uint64_t jack_time_t;
typedef struct jack_client jack_client_t;
typedef struct jack_port jack_port_t;
typedef struct { jack_nframes_t min, max; } jack_latency_range_t;

enum { JACK_NO_START_SERVER = 0x01, JACK_SERVER_NAME = 0x04 };
enum { JACK_CAPTURE_LATENCY = 0, JACK_PLAYBACK_LATENCY = 1 };
#define JACK_AUDIO_TYPE "32 bit float mono audio"
#define MAX_PORTS 256

static struct {
    jack_client_t *(*client_open)(const char *, int, int *, ...);
    int (*client_close)(jack_client_t *);
    const char *(*get_client_name)(jack_client_t *);
    int (*activate)(jack_client_t *);
    int (*deactivate)(jack_client_t *);
    int (*set_process_callback)(jack_client_t *, int (*)(jack_nframes_t, void *), void *);
    void (*on_info_shutdown)(jack_client_t *, void (*)(int, const char *, void *), void *);
    int (*set_xrun_callback)(jack_client_t *, int (*)(void *), void *);
    int (*set_buffer_size_callback)(jack_client_t *, int (*)(jack_nframes_t, void *), void *);
    int (*set_sample_rate_callback)(jack_client_t *, int (*)(jack_nframes_t, void *), void *);
    int (*set_latency_callback)(jack_client_t *, void (*)(int, void *), void *);
    jack_nframes_t (*get_sample_rate)(jack_client_t *);
    jack_nframes_t (*get_buffer_size)(jack_client_t *);
    jack_port_t *(*port_register)(jack_client_t *, const char *, const char *, unsigned long,
                                  unsigned long);
    void *(*port_get_buffer)(jack_port_t *, jack_nframes_t);
    const char *(*port_name)(const jack_port_t *);
    int (*connect)(jack_client_t *, const char *, const char *);
    const char **(*get_ports)(jack_client_t *, const char *, const char *, unsigned long);
    void (*free)(void *);
    int (*get_cycle_times)(const jack_client_t *, jack_nframes_t *, jack_time_t *, jack_time_t *,
                           float *);
    void (*port_get_latency_range)(jack_port_t *, int, jack_latency_range_t *);
    jack_port_t *(*port_by_name)(jack_client_t *, const char *);
    void (*set_error_function)(void (*)(const char *));
    void (*set_info_function)(void (*)(const char *));
    int (*set_port_registration_callback)(jack_client_t *, void (*)(uint32_t, int, void *), void *);
} J;

static void *libjack;

/* libjack reports errors through one process-wide function without a user
 * pointer, and prints them to stderr unless told otherwise. A call made for
 * Python points its own thread's sink at the caller's message buffer for
 * as long as it runs, so libjack's text for that call lands there; messages
 * on JACK's threads find no sink and are dropped. */
static _Thread_local struct {
    char *msg;
    size_t len;
} sink;

static void into_sink(const char *text) {
    if (sink.msg && sink.len) snprintf(sink.msg, sink.len, "%s", text);
}

static void capture_into(char *msg, size_t len) {
    if (len) msg[0] = '\0';
    sink.msg = msg;
    sink.len = len;
}

static void release_sink(void) {
    sink.msg = NULL;
    sink.len = 0;
}

/* End a failed call: what failed, and libjack's own text when it gave one. */
static int fail(int code, char *msg, size_t len, const char *what) {
    release_sink();
    if (!len) return code;
    char said[256];
    snprintf(said, sizeof said, "%s", msg);
    if (said[0]) snprintf(msg, len, "%s: %s", what, said);
    else snprintf(msg, len, "%s", what);
    return code;
}

static const da_symbol SYMBOLS[] = {
    {&J.client_open, "jack_client_open"},
    {&J.client_close, "jack_client_close"},
    {&J.get_client_name, "jack_get_client_name"},
    {&J.activate, "jack_activate"},
    {&J.deactivate, "jack_deactivate"},
    {&J.set_process_callback, "jack_set_process_callback"},
    {&J.on_info_shutdown, "jack_on_info_shutdown"},
    {&J.set_xrun_callback, "jack_set_xrun_callback"},
    {&J.set_buffer_size_callback, "jack_set_buffer_size_callback"},
    {&J.set_sample_rate_callback, "jack_set_sample_rate_callback"},
    {&J.set_latency_callback, "jack_set_latency_callback"},
    {&J.get_sample_rate, "jack_get_sample_rate"},
    {&J.get_buffer_size, "jack_get_buffer_size"},
    {&J.port_register, "jack_port_register"},
    {&J.port_get_buffer, "jack_port_get_buffer"},
    {&J.port_name, "jack_port_name"},
    {&J.connect, "jack_connect"},
    {&J.get_ports, "jack_get_ports"},
    {&J.free, "jack_free"},
    {&J.get_cycle_times, "jack_get_cycle_times"},
    {&J.port_get_latency_range, "jack_port_get_latency_range"},
    {&J.port_by_name, "jack_port_by_name"},
    {&J.set_error_function, "jack_set_error_function"},
    {&J.set_info_function, "jack_set_info_function"},
    {&J.set_port_registration_callback, "jack_set_port_registration_callback"},
};

static void loaded(void) {
    J.set_error_function(into_sink);
    J.set_info_function(into_sink);
}

int da_jack_load(char *msg, size_t len) {
    return da_load_library("libjack.so.0", SYMBOLS, sizeof SYMBOLS / sizeof SYMBOLS[0], loaded,
                           &libjack, msg, len);
}

struct da_jack {
    jack_client_t *client;
    da_engine *engine;
    uint32_t n_in, n_out;
    jack_port_t *in_ports[MAX_PORTS], *out_ports[MAX_PORTS];
    const float *in_bufs[MAX_PORTS];
    float *out_bufs[MAX_PORTS];
    uint32_t frames, rate;
    atomic_uint capture_latency, playback_latency;
    atomic_int xrun;
    atomic_int lost;      /* the server is gone: make no more calls that talk to it */
    atomic_int graph_loop; /* ignore terminal latencies: the loop is one graph cycle */
    int active;
    int rt_checked;
    int time_is_raw;      /* libjack's clock: 0 unknown, 1 CLOCK_MONOTONIC_RAW, -1 ours */
    int anchored;         /* origin_ns/origin_frames are set */
    int64_t origin_ns;
    int64_t elapsed;      /* the timeline: frames since the origin, never a step back */
    jack_nframes_t last_frames; /* JACK's frame counter at the last cycle */
    da_sem *notice;       /* a watching client's: posted on a port registered or gone */
    atomic_int ports_changed;
};

/* jack_status_t bits (jack/types.h) worth a word of their own. */
enum { JACK_SERVER_FAILED = 0x10, JACK_VERSION_ERROR = 0x400, JACK_SHM_FAILURE = 0x200 };

int da_jack_open(da_jack **out, const char *client_name, const char *server, char *msg,
                 size_t len) {
    *out = NULL;
    int err = da_jack_load(msg, len);
    if (err) return err;
    da_jack *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(msg, len, "out of memory");
        return -ENOMEM;
    }
    int options = JACK_NO_START_SERVER | (server ? JACK_SERVER_NAME : 0);
    int status = 0;
    capture_into(msg, len);
    j->client = J.client_open(client_name, options, &status, server);
    release_sink();
    if (!j->client) {
        free(j);
        const char *why = status & JACK_SERVER_FAILED ? "it is not running"
                          : status & JACK_VERSION_ERROR ? "its protocol version differs from libjack's"
                          : status & JACK_SHM_FAILURE ? "its shared memory cannot be reached"
                          : msg[0] ? NULL : "the server refused the client";
        char said[256];
        snprintf(said, sizeof said, "%s", msg);
        snprintf(msg, len, "%s (status 0x%x)", why ? why : said, status & 0xFFFF);
        return -ECONNREFUSED;
    }
    j->frames = J.get_buffer_size(j->client);
    j->rate = J.get_sample_rate(j->client);
    *out = j;
    return 0;
}

uint32_t da_jack_buffer_size(da_jack *j) { return j->frames; }
uint32_t da_jack_sample_rate(da_jack *j) { return j->rate; }
const char *da_jack_client_name(da_jack *j) { return J.get_client_name(j->client); }

/* Port names matching a regex pattern and JACK port flags, newline-joined
 * into buf. Returns the count, or -ENOSPC when buf is too small. */
int da_jack_ports(da_jack *j, const char *pattern, unsigned long flags, char *buf, size_t len,
                  char *msg, size_t msg_len) {
    capture_into(msg, msg_len);
    const char **names = J.get_ports(j->client, pattern, JACK_AUDIO_TYPE, flags);
    release_sink();
    size_t used = 0;
    int count = 0;
    if (len) buf[0] = '\0';
    for (; names && names[count]; count++) {
        size_t n = strlen(names[count]);
        if (used + n + 2 > len) {
            J.free(names);
            snprintf(msg, msg_len, "the port list needs more than %zu bytes", len);
            return -ENOSPC;
        }
        memcpy(buf + used, names[count], n);
        used += n;
        buf[used++] = '\n';
        buf[used] = '\0';
    }
    if (names) J.free(names);
    return count;
}

static void update_latency(da_jack *j) {
    uint32_t cap = 0, play = 0;
    jack_latency_range_t r;
    for (uint32_t c = 0; c < j->n_in; c++) {
        J.port_get_latency_range(j->in_ports[c], JACK_CAPTURE_LATENCY, &r);
        if (r.max > cap) cap = r.max;
    }
    for (uint32_t c = 0; c < j->n_out; c++) {
        J.port_get_latency_range(j->out_ports[c], JACK_PLAYBACK_LATENCY, &r);
        if (r.max > play) play = r.max;
    }
    atomic_store(&j->capture_latency, cap);
    atomic_store(&j->playback_latency, play);
}

/* JACK's latency semantics: a sample in an input buffer reached the
 * outside world capture_latency frames before the cycle started; one written
 * during the cycle reaches it playback_latency frames after. Ports connected
 * to no terminal port report 0, yet a loop through the graph (own ports, or
 * another client) takes one cycle: a sample written now is read next cycle.
 * So with no terminal latency, the output counts one period. jackd's
 * loopback driver (-L) copies after exactly one cycle but reports the main
 * driver's latencies; graph_loop makes the host treat it as the graph loop
 * it is. */
static void da_jack_latency_now(da_jack *j, uint32_t frames, uint32_t *capture, uint32_t *playback) {
    int graph = atomic_load(&j->graph_loop);
    uint32_t cap = graph ? 0 : atomic_load(&j->capture_latency);
    uint32_t play = graph ? 0 : atomic_load(&j->playback_latency);
    *capture = cap;
    *playback = play ? play : frames;
}

int da_jack_named_port_latency(da_jack *j, const char *port, int playback, uint32_t *frames,
                               char *msg, size_t len) {
    jack_port_t *p = J.port_by_name(j->client, port);
    if (!p) {
        snprintf(msg, len, "no port '%s' on the server", port);
        return -ENOENT;
    }
    jack_latency_range_t r = {0, 0};
    J.port_get_latency_range(p, playback ? JACK_PLAYBACK_LATENCY : JACK_CAPTURE_LATENCY, &r);
    *frames = r.max;
    return 0;
}

/* ---- callbacks from JACK ------------------------------------------------ */

/* Move the timeline on to this cycle from JACK's frame counter, on JACK's
 * thread, the cycle it happens: one period on from the last cycle, or, when
 * whole cycles were lost (the counter jumped), that many periods more, with
 * *lost set; when the counter stood still or went back, one period on all
 * the same (timestamps never step 0 or backwards). Returns 1 when the step
 * was not exactly one period: a glitch for the block that follows it. */
static int advance(da_jack *j, jack_nframes_t cur, jack_nframes_t n, uint32_t *lost) {
    const int32_t step = (int32_t)(cur - j->last_frames); /* wraps like JACK's counter */
    j->last_frames = cur;
    *lost = 0;
    if (step == (int32_t)n) {
        j->elapsed += n;
        return 0;
    }
    uint32_t periods = step > (int32_t)n ? ((uint32_t)step + n / 2) / n : 1; /* >= 1 */
    *lost = periods - 1;
    j->elapsed += (int64_t)periods * n;
    return 1;
}

/* JACK's real-time thread, once per cycle. Never allocates, never takes a
 * lock Python can hold, never calls into Python, never blocks past the
 * engine's deadline. */
static int on_process(jack_nframes_t n, void *arg) {
    da_jack *j = arg;
    int64_t now = da_now_ns();
    if (!j->rt_checked) {
        da_engine_set_realtime(j->engine, da_thread_is_realtime());
        j->rt_checked = 1;
    }
    for (uint32_t c = 0; c < j->n_in; c++) j->in_bufs[c] = J.port_get_buffer(j->in_ports[c], n);
    for (uint32_t c = 0; c < j->n_out; c++) j->out_bufs[c] = J.port_get_buffer(j->out_ports[c], n);
    jack_nframes_t cur_frames = 0;
    jack_time_t cur_us = 0, next_us;
    float period_us;
    int64_t start = now;
    if (J.get_cycle_times(j->client, &cur_frames, &cur_us, &next_us, &period_us) == 0) {
        /* jackd2 counts on CLOCK_MONOTONIC_RAW, PipeWire's libjack on
         * CLOCK_MONOTONIC; the cycle started moments ago, so whichever clock
         * is near it is libjack's. Convert to ours (CLOCK_MONOTONIC). */
        int64_t raw = da_now_raw_ns();
        start = (int64_t)cur_us * 1000;
        if (!j->time_is_raw) {
            int64_t to_raw = start > raw ? start - raw : raw - start;
            int64_t to_mono = start > now ? start - now : now - start;
            j->time_is_raw = to_raw < to_mono ? 1 : -1;
        }
        if (j->time_is_raw > 0) start += now - raw;
    }
    da_cycle_time t = {0};
    int glitch = 0;
    if (!j->anchored) {
        j->origin_ns = start;
        j->elapsed = 0;
        j->last_frames = cur_frames;
        j->anchored = 1;
    } else {
        glitch = advance(j, cur_frames, n, &t.lost_cycles);
    }
    /* Timestamps count the server's frames from the first cycle: sample-exact
     * (the smoothed cycle start jitters by microseconds), on the device's
     * clock, anchored to ours once per activation. */
    int64_t cycle = j->origin_ns + da_frames_to_ns(j->elapsed, j->rate);
    t.callback_ns = cycle;
    /* The deadline runs from this thread's own wake-up: JACK's smoothed cycle
     * start can lie well before it under load, which would leave the worker
     * no time. The server allows the client until the next cycle (asynchronous
     * mode), so the engine's limit of one period is the bound. */
    t.wakeup_ns = now;
    t.deadline_anchor_ns = now;
    uint32_t capture, playback;
    da_jack_latency_now(j, n, &capture, &playback);
    t.input_device_ns = cycle - da_frames_to_ns(capture, j->rate);
    t.output_device_ns = cycle + da_frames_to_ns(playback, j->rate);
    /* The xrun callback (another thread, a cycle or more late) still counts:
     * the server saw a glitch this counter may not show. */
    da_engine_process(j->engine, j->in_bufs, 1, j->out_bufs, 1, n, &t,
                      glitch | atomic_exchange(&j->xrun, 0));
    return 0;
}

static void on_shutdown(int code, const char *reason, void *arg) {
    da_jack *j = arg;
    atomic_store(&j->lost, 1);
    da_engine_fail(j->engine, DA_EV_DEVICE_LOST, code);
}

static int on_xrun(void *arg) {
    da_jack *j = arg;
    atomic_store(&j->xrun, 1); /* counted and flagged by the next cycle */
    return 0;
}

static int on_buffer_size(jack_nframes_t n, void *arg) {
    da_jack *j = arg;
    if (n != j->frames) da_engine_fail(j->engine, DA_EV_BUFFER_SIZE_CHANGED, n);
    return 0;
}

static int on_sample_rate(jack_nframes_t rate, void *arg) {
    da_jack *j = arg;
    if (rate != j->rate) da_engine_fail(j->engine, DA_EV_SAMPLE_RATE_CHANGED, rate);
    return 0;
}

static void on_latency(int mode, void *arg) { update_latency(arg); }

/* ---- set-up from Python --------------------------------------------------- */

int da_jack_bind(da_jack *j, da_engine *e, uint32_t n_in, uint32_t n_out, char *msg, size_t len) {
    if (n_in > MAX_PORTS || n_out > MAX_PORTS) {
        snprintf(msg, len, "%u inputs and %u outputs: at most %d ports each way", n_in, n_out,
                 MAX_PORTS);
        return -EINVAL;
    }
    j->engine = e;
    char name[32];
    capture_into(msg, len);
    for (uint32_t c = 0; c < n_in; c++) {
        snprintf(name, sizeof name, "in_%u", c + 1);
        if (!(j->in_ports[c] = J.port_register(j->client, name, JACK_AUDIO_TYPE, 0x1, 0)))
            return fail(-EIO, msg, len, "cannot register an input port");
        j->n_in = c + 1;
    }
    for (uint32_t c = 0; c < n_out; c++) {
        snprintf(name, sizeof name, "out_%u", c + 1);
        if (!(j->out_ports[c] = J.port_register(j->client, name, JACK_AUDIO_TYPE, 0x2, 0)))
            return fail(-EIO, msg, len, "cannot register an output port");
        j->n_out = c + 1;
    }
    if (J.set_process_callback(j->client, on_process, j) || J.set_xrun_callback(j->client, on_xrun, j) ||
        J.set_buffer_size_callback(j->client, on_buffer_size, j) ||
        J.set_sample_rate_callback(j->client, on_sample_rate, j) ||
        J.set_latency_callback(j->client, on_latency, j))
        return fail(-EIO, msg, len, "cannot set the client's callbacks");
    J.on_info_shutdown(j->client, on_shutdown, j);
    release_sink();
    return 0;
}

const char *da_jack_port_name(da_jack *j, int output, uint32_t index) {
    if (output) return index < j->n_out ? J.port_name(j->out_ports[index]) : NULL;
    return index < j->n_in ? J.port_name(j->in_ports[index]) : NULL;
}

int da_jack_connect(da_jack *j, const char *source, const char *destination, char *msg,
                    size_t len) {
    if (atomic_load(&j->lost)) {
        snprintf(msg, len, "the server is gone");
        return -ENODEV;
    }
    capture_into(msg, len);
    int r = J.connect(j->client, source, destination);
    if (r == 0 || r == EEXIST) { /* already connected is connected */
        release_sink();
        return 0;
    }
    return fail(-EIO, msg, len, "the server refused the connection");
}

int da_jack_activate(da_jack *j, char *msg, size_t len) {
    if (atomic_load(&j->lost)) {
        snprintf(msg, len, "the server is gone");
        return -ENODEV;
    }
    if (j->active) return 0;
    j->anchored = 0; /* re-anchored on the first cycle, before process can run */
    capture_into(msg, len);
    if (J.activate(j->client) != 0) return fail(-ENODEV, msg, len, "the server refused");
    release_sink();
    j->active = 1;
    update_latency(j);
    return 0;
}

static void deactivate(da_jack *j) {
    if (!j->active) return;
    j->active = 0;
    /* With the server gone there is nobody to deactivate with. */
    if (!atomic_load(&j->lost)) J.deactivate(j->client);
}

void da_jack_latency(da_jack *j, uint32_t *capture, uint32_t *playback) {
    if (j->active && !atomic_load(&j->lost)) update_latency(j);
    da_jack_latency_now(j, j->frames, capture, playback);
}

void da_jack_set_graph_loop(da_jack *j, int graph_loop) { atomic_store(&j->graph_loop, graph_loop); }

static void close_client(da_jack *j) {
    if (!j) return;
    deactivate(j);
    J.client_close(j->client);
    if (j->notice) da_sem_free(j->notice);
    free(j);
}

/* ---- watching: ports registered and gone, the server gone ----------------- */

/* On JACK's notification thread. A device is a client with audio ports, so
 * ports coming and going are what changes the device list (a client without
 * ports, like the host's probes, is none). */
static void on_port_registration(uint32_t port, int registered, void *arg) {
    (void)port, (void)registered;
    da_jack *j = arg;
    atomic_store(&j->ports_changed, 1);
    da_sem_post(j->notice);
}

static void on_watch_shutdown(int code, const char *reason, void *arg) {
    (void)code, (void)reason;
    da_jack *j = arg;
    atomic_store(&j->lost, 1);
    da_sem_post(j->notice);
}

int da_jack_watch(da_jack *j, char *msg, size_t len) {
    j->notice = da_sem_new();
    if (!j->notice) {
        snprintf(msg, len, "out of memory");
        return -ENOMEM;
    }
    J.on_info_shutdown(j->client, on_watch_shutdown, j);
    capture_into(msg, len);
    if (J.set_port_registration_callback(j->client, on_port_registration, j) != 0)
        return fail(-ENODEV, msg, len, "the server refused a port registration callback");
    if (J.activate(j->client) != 0) return fail(-ENODEV, msg, len, "the server refused");
    release_sink();
    j->active = 1;
    return 0;
}

int da_jack_watch_wait(da_jack *j, int timeout_ms, char *msg, size_t len) {
    if (!atomic_load(&j->lost) && !atomic_load(&j->ports_changed))
        da_sem_wait_until(j->notice, da_now_ns() + (int64_t)timeout_ms * 1000000);
    while (da_sem_trywait(j->notice) == 0) {} /* one listing answers every notice so far */
    if (atomic_load(&j->lost)) {
        snprintf(msg, len, "the server went away");
        return -ECONNRESET;
    }
    return atomic_exchange(&j->ports_changed, 0);
}

/* Closing can block inside libjack: pipewire-jack 0.3.65 was seen to
 * deadlock between jack_deactivate and its own event thread, now and then,
 * under load. So the caller waits a bounded time (da_run_within); a close
 * that does not return is abandoned and frees the client if it ever ends. */
static void close_client_void(void *j) { close_client(j); }

int da_jack_close_within(da_jack *j, int timeout_ms, char *msg, size_t len) {
    if (da_run_within(close_client_void, j, timeout_ms) == 0) return 0;
    snprintf(msg, len, "libjack did not return from closing the client within %d ms", timeout_ms);
    return -ETIMEDOUT;
}
