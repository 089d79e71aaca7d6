/* The PulseAudio host's C side: libpulse loaded with dlopen; an I/O thread
 * per stream owns a pa_mainloop, a context and the stream's record and
 * playback streams, and drives the engine one block at a time.
 *
 * Duplex pairs a sink with its own monitor: both follow the sink's clock.
 * The thread reads exactly one block from the monitor and writes exactly
 * one block to the sink per cycle (lockstep), with the playback stream in
 * manual-start mode (prebuf 0), so the server never pauses it on underrun
 * and a sample written at playback position x always comes back at monitor
 * position x - c, where c is the distance between the two streams' server
 * counters (playback read index - record write index). c is read from the
 * server's timing information; the round trip is the prefill minus c.
 * The types and constants used are PulseAudio's stable C ABI, declared here. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "pulse_api.h"

typedef struct pa_mainloop pa_mainloop;
typedef struct pa_mainloop_api pa_mainloop_api;
typedef struct pa_context pa_context;
typedef struct pa_stream pa_stream;
typedef struct pa_operation pa_operation;
typedef uint64_t pa_usec_t;
typedef struct { int format; uint32_t rate; uint8_t channels; } pa_sample_spec;
typedef struct { uint8_t channels; int map[32]; } pa_channel_map;
typedef struct { uint8_t channels; uint32_t values[32]; } pa_cvolume;
typedef struct { uint32_t maxlength, tlength, prebuf, minreq, fragsize; } pa_buffer_attr;
typedef struct {
    struct { long tv_sec, tv_usec; } timestamp; /* struct timeval, as on Linux */
    int synchronized_clocks;
    pa_usec_t sink_usec, source_usec, transport_usec;
    int playing;
    int write_index_corrupt;
    int64_t write_index;
    int read_index_corrupt;
    int64_t read_index;
    pa_usec_t configured_sink_usec, configured_source_usec;
    int64_t since_underrun;
} pa_timing_info;
/* Leading fields of pa_server_info, pa_sink_info and pa_source_info. */
typedef struct {
    const char *user_name, *host_name, *server_version, *server_name;
    pa_sample_spec sample_spec;
    const char *default_sink_name, *default_source_name;
} pa_server_info;
typedef struct {
    const char *name;
    uint32_t index;
    const char *description;
    pa_sample_spec sample_spec;
    pa_channel_map channel_map;
    uint32_t owner_module;
    pa_cvolume volume;
    int mute;
    uint32_t monitor;           /* sink: monitor_source; source: monitor_of_sink */
    const char *monitor_name;   /* sink: monitor_source_name; source: monitor_of_sink_name */
} pa_device_info;

enum { CTX_READY = 4, CTX_FAILED = 5, CTX_TERMINATED = 6 };
enum { ST_READY = 2, ST_FAILED = 3, ST_TERMINATED = 4 };
enum { OP_RUNNING = 0 };
enum { SAMPLE_FLOAT32LE = 5 };
enum {
    F_START_CORKED = 0x1, F_INTERPOLATE = 0x2, F_AUTO_TIMING = 0x8, F_NO_REMAP_CHANNELS = 0x10,
    F_DONT_MOVE = 0x200,
    F_ADJUST_LATENCY = 0x2000
};
enum { CONTEXT_NOAUTOSPAWN = 1 };
enum { SUB_MASK_SINK = 0x1, SUB_MASK_SOURCE = 0x2, SUB_MASK_SERVER = 0x80 };

static struct {
    pa_mainloop *(*mainloop_new)(void);
    void (*mainloop_free)(pa_mainloop *);
    pa_mainloop_api *(*mainloop_get_api)(pa_mainloop *);
    int (*mainloop_iterate)(pa_mainloop *, int, int *);
    void (*mainloop_wakeup)(pa_mainloop *);
    pa_context *(*context_new)(pa_mainloop_api *, const char *);
    int (*context_connect)(pa_context *, const char *, int, const void *);
    int (*context_get_state)(pa_context *);
    void (*context_disconnect)(pa_context *);
    void (*context_unref)(pa_context *);
    int (*context_errno)(pa_context *);
    pa_operation *(*context_get_server_info)(pa_context *, void (*)(pa_context *, const pa_server_info *, void *), void *);
    pa_operation *(*context_get_sink_info_list)(pa_context *, void (*)(pa_context *, const pa_device_info *, int, void *), void *);
    pa_operation *(*context_get_source_info_list)(pa_context *, void (*)(pa_context *, const pa_device_info *, int, void *), void *);
    int (*operation_get_state)(pa_operation *);
    void (*operation_unref)(pa_operation *);
    const char *(*strerror)(int);
    pa_stream *(*stream_new)(pa_context *, const char *, const pa_sample_spec *, const pa_channel_map *);
    int (*stream_connect_playback)(pa_stream *, const char *, const pa_buffer_attr *, int, const pa_cvolume *, pa_stream *);
    int (*stream_connect_record)(pa_stream *, const char *, const pa_buffer_attr *, int);
    int (*stream_get_state)(pa_stream *);
    size_t (*stream_writable_size)(pa_stream *);
    size_t (*stream_readable_size)(pa_stream *);
    int (*stream_write)(pa_stream *, const void *, size_t, void (*)(void *), int64_t, int);
    int (*stream_peek)(pa_stream *, const void **, size_t *);
    int (*stream_drop)(pa_stream *);
    int (*stream_disconnect)(pa_stream *);
    void (*stream_unref)(pa_stream *);
    pa_operation *(*stream_cork)(pa_stream *, int, void (*)(pa_stream *, int, void *), void *);
    pa_operation *(*stream_update_timing_info)(pa_stream *, void (*)(pa_stream *, int, void *), void *);
    const pa_timing_info *(*stream_get_timing_info)(pa_stream *);
    int (*stream_get_latency)(pa_stream *, pa_usec_t *, int *);
    void (*stream_set_underflow_callback)(pa_stream *, void (*)(pa_stream *, void *), void *);
    void (*stream_set_overflow_callback)(pa_stream *, void (*)(pa_stream *, void *), void *);
    void (*stream_set_moved_callback)(pa_stream *, void (*)(pa_stream *, void *), void *);
    const char *(*stream_get_device_name)(pa_stream *);
    void (*context_set_subscribe_callback)(pa_context *, void (*)(pa_context *, int, uint32_t, void *), void *);
    pa_operation *(*context_subscribe)(pa_context *, int, void (*)(pa_context *, int, void *), void *);
    int (*mainloop_prepare)(pa_mainloop *, int);
    int (*mainloop_poll)(pa_mainloop *);
    int (*mainloop_dispatch)(pa_mainloop *);
} P;

static void *libpulse;

static const da_symbol SYMBOLS[] = {
    {&P.mainloop_new, "pa_mainloop_new"},
    {&P.mainloop_free, "pa_mainloop_free"},
    {&P.mainloop_get_api, "pa_mainloop_get_api"},
    {&P.mainloop_iterate, "pa_mainloop_iterate"},
    {&P.mainloop_wakeup, "pa_mainloop_wakeup"},
    {&P.context_new, "pa_context_new"},
    {&P.context_connect, "pa_context_connect"},
    {&P.context_get_state, "pa_context_get_state"},
    {&P.context_disconnect, "pa_context_disconnect"},
    {&P.context_unref, "pa_context_unref"},
    {&P.context_errno, "pa_context_errno"},
    {&P.context_get_server_info, "pa_context_get_server_info"},
    {&P.context_get_sink_info_list, "pa_context_get_sink_info_list"},
    {&P.context_get_source_info_list, "pa_context_get_source_info_list"},
    {&P.operation_get_state, "pa_operation_get_state"},
    {&P.operation_unref, "pa_operation_unref"},
    {&P.strerror, "pa_strerror"},
    {&P.stream_new, "pa_stream_new"},
    {&P.stream_connect_playback, "pa_stream_connect_playback"},
    {&P.stream_connect_record, "pa_stream_connect_record"},
    {&P.stream_get_state, "pa_stream_get_state"},
    {&P.stream_writable_size, "pa_stream_writable_size"},
    {&P.stream_readable_size, "pa_stream_readable_size"},
    {&P.stream_write, "pa_stream_write"},
    {&P.stream_peek, "pa_stream_peek"},
    {&P.stream_drop, "pa_stream_drop"},
    {&P.stream_disconnect, "pa_stream_disconnect"},
    {&P.stream_unref, "pa_stream_unref"},
    {&P.stream_cork, "pa_stream_cork"},
    {&P.stream_update_timing_info, "pa_stream_update_timing_info"},
    {&P.stream_get_timing_info, "pa_stream_get_timing_info"},
    {&P.stream_get_latency, "pa_stream_get_latency"},
    {&P.stream_set_underflow_callback, "pa_stream_set_underflow_callback"},
    {&P.stream_set_overflow_callback, "pa_stream_set_overflow_callback"},
    {&P.stream_set_moved_callback, "pa_stream_set_moved_callback"},
    {&P.stream_get_device_name, "pa_stream_get_device_name"},
    {&P.context_set_subscribe_callback, "pa_context_set_subscribe_callback"},
    {&P.context_subscribe, "pa_context_subscribe"},
    {&P.mainloop_prepare, "pa_mainloop_prepare"},
    {&P.mainloop_poll, "pa_mainloop_poll"},
    {&P.mainloop_dispatch, "pa_mainloop_dispatch"},
};

int da_pulse_load(char *msg, size_t len) {
    return da_load_library("libpulse.so.0", SYMBOLS, sizeof SYMBOLS / sizeof SYMBOLS[0], NULL,
                           &libpulse, msg, len);
}

/* A PulseAudio error code (pa_error_code_t) as the negative errno the C
 * boundary speaks; its text goes into the message. */
static int pa_errno(int pa) {
    switch (pa) {
    case 1: case 9: return -EACCES;        /* PA_ERR_ACCESS, PA_ERR_AUTHKEY */
    case 3: return -EINVAL;                /* PA_ERR_INVALID */
    case 5: return -ENOENT;                /* PA_ERR_NOENTITY */
    case 6: return -ECONNREFUSED;          /* PA_ERR_CONNECTIONREFUSED */
    case 8: return -ETIMEDOUT;             /* PA_ERR_TIMEOUT */
    case 11: case 12: return -ECONNRESET;  /* PA_ERR_CONNECTIONTERMINATED, PA_ERR_KILLED */
    case 13: return -EHOSTUNREACH;         /* PA_ERR_INVALIDSERVER */
    case 19: case 23: return -EOPNOTSUPP;  /* PA_ERR_NOTSUPPORTED, PA_ERR_NOTIMPLEMENTED */
    case 26: return -EBUSY;                /* PA_ERR_BUSY */
    default: return -EIO;
    }
}

/* ---- a connection, for listing devices and for streams ------------------ */

typedef struct {
    pa_mainloop *loop;
    pa_context *ctx;
} conn;

static int64_t now_ns(void) { return da_now_ns(); }

static void conn_close(conn *c) {
    if (c->ctx) {
        P.context_disconnect(c->ctx);
        P.context_unref(c->ctx);
    }
    if (c->loop) P.mainloop_free(c->loop);
    c->ctx = NULL;
    c->loop = NULL;
}

/* Connect (never autospawning a server) within timeout_ms; 0 or a negative errno. */
static int conn_open(conn *c, const char *server, const char *name, int timeout_ms, char *msg, size_t len) {
    memset(c, 0, sizeof *c);
    c->loop = P.mainloop_new();
    if (!c->loop) return -ENOMEM;
    c->ctx = P.context_new(P.mainloop_get_api(c->loop), name);
    if (!c->ctx || P.context_connect(c->ctx, server, CONTEXT_NOAUTOSPAWN, NULL) < 0) {
        int err = c->ctx ? pa_errno(P.context_errno(c->ctx)) : -ENOMEM;
        snprintf(msg, len, "%s", c->ctx ? P.strerror(P.context_errno(c->ctx)) : "out of memory");
        conn_close(c);
        return err;
    }
    int64_t until = now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int state = P.context_get_state(c->ctx);
        if (state == CTX_READY) return 0;
        if (state == CTX_FAILED || state == CTX_TERMINATED || now_ns() > until) {
            int late = now_ns() > until, pa = P.context_errno(c->ctx);
            snprintf(msg, len, "%s", late ? "timed out" : P.strerror(pa));
            conn_close(c);
            return late ? -ETIMEDOUT : pa_errno(pa);
        }
        P.mainloop_iterate(c->loop, 0, NULL);
        da_sleep_ns(1000000);
    }
}

/* Run an operation to its end: 0, or -ETIMEDOUT (also when it could not start). */
static int run_op(conn *c, pa_operation *op, int timeout_ms) {
    if (!op) return -ETIMEDOUT;
    int64_t until = now_ns() + (int64_t)timeout_ms * 1000000;
    while (P.operation_get_state(op) == OP_RUNNING && now_ns() < until) P.mainloop_iterate(c->loop, 1, NULL);
    int done = P.operation_get_state(op) != OP_RUNNING;
    P.operation_unref(op);
    return done ? 0 : -ETIMEDOUT;
}

/* ---- listing: one line per server / sink / source, tab-separated -------- */

typedef struct {
    char *buf;
    size_t len, used;
    int overflow;
} text;

static void put(text *t, const char *s) {
    for (; s && *s; s++) {
        if (t->used + 2 >= t->len) {
            t->overflow = 1;
            return;
        }
        char ch = *s;
        t->buf[t->used++] = (ch == '\t' || ch == '\n') ? ' ' : ch;
    }
    t->buf[t->used] = '\0';
}

static void put_raw(text *t, const char *s) {
    size_t n = strlen(s);
    if (t->used + n + 1 >= t->len) {
        t->overflow = 1;
        return;
    }
    memcpy(t->buf + t->used, s, n + 1);
    t->used += n;
}

static void on_server(pa_context *c, const pa_server_info *i, void *arg) {
    text *t = arg;
    char num[64];
    put_raw(t, "server\t");
    put(t, i->default_sink_name);
    put_raw(t, "\t");
    put(t, i->default_source_name);
    snprintf(num, sizeof num, "\t%u\t%u\t", i->sample_spec.rate, i->sample_spec.channels);
    put_raw(t, num);
    put(t, i->server_name);
    put_raw(t, "\n");
}

static void device_line(text *t, const char *kind, const pa_device_info *i) {
    char num[64];
    put_raw(t, kind);
    put_raw(t, "\t");
    put(t, i->name);
    put_raw(t, "\t");
    put(t, i->description);
    snprintf(num, sizeof num, "\t%u\t%u\t%d\t", i->sample_spec.rate, i->sample_spec.channels,
             i->sample_spec.format);
    put_raw(t, num);
    put(t, i->monitor_name ? i->monitor_name : "");
    put_raw(t, "\n");
}

static void on_sink(pa_context *c, const pa_device_info *i, int eol, void *arg) {
    if (eol <= 0 && i) device_line(arg, "sink", i);
}

static void on_source(pa_context *c, const pa_device_info *i, int eol, void *arg) {
    if (eol <= 0 && i) device_line(arg, "source", i);
}

int da_pulse_list(const char *server, int timeout_ms, char *buf, size_t len, char *msg,
                  size_t msg_len) {
    int err = da_pulse_load(msg, msg_len);
    if (err) return err;
    conn c;
    if ((err = conn_open(&c, server, "duplexio-probe", timeout_ms, msg, msg_len)) != 0)
        return err;
    text t = {buf, len, 0, 0};
    if (len) buf[0] = '\0';
    int r = run_op(&c, P.context_get_server_info(c.ctx, on_server, &t), timeout_ms);
    if (!r) r = run_op(&c, P.context_get_sink_info_list(c.ctx, on_sink, &t), timeout_ms);
    if (!r) r = run_op(&c, P.context_get_source_info_list(c.ctx, on_source, &t), timeout_ms);
    conn_close(&c);
    if (r) {
        snprintf(msg, msg_len, "the server did not answer within %d ms", timeout_ms);
        return r;
    }
    if (t.overflow) {
        snprintf(msg, msg_len, "the device list needs more than %zu bytes", len);
        return -ENOSPC;
    }
    return 0;
}

/* ---- watching: the server's own notices of sinks, sources and defaults --- */

struct da_pulse_watch {
    conn c;
    int changed; /* set by the subscription callback, inside da_pulse_watch_wait */
};

static void on_change(pa_context *c, int type, uint32_t index, void *arg) {
    (void)c, (void)type, (void)index;
    ((da_pulse_watch *)arg)->changed = 1;
}

int da_pulse_watch_new(da_pulse_watch **out, const char *server, int timeout_ms, char *msg,
                       size_t len) {
    *out = NULL;
    int err = da_pulse_load(msg, len);
    if (err) return err;
    da_pulse_watch *w = calloc(1, sizeof *w);
    if (!w) return -ENOMEM;
    if ((err = conn_open(&w->c, server, "duplexio-watch", timeout_ms, msg, len)) != 0) {
        free(w);
        return err;
    }
    P.context_set_subscribe_callback(w->c.ctx, on_change, w);
    err = run_op(&w->c, P.context_subscribe(w->c.ctx, SUB_MASK_SINK | SUB_MASK_SOURCE | SUB_MASK_SERVER,
                                            NULL, NULL), timeout_ms);
    if (err) {
        snprintf(msg, len, "the server did not take a subscription within %d ms", timeout_ms);
        conn_close(&w->c);
        free(w);
        return err;
    }
    *out = w;
    return 0;
}

/* Run the connection's loop until a notice comes or timeout_ms pass: 1 for
 * a notice, 0 for none, -ECONNRESET when the server went away. */
int da_pulse_watch_wait(da_pulse_watch *w, int timeout_ms, char *msg, size_t len) {
    const int64_t until = now_ns() + (int64_t)timeout_ms * 1000000;
    while (!w->changed) {
        int state = P.context_get_state(w->c.ctx);
        if (state == CTX_FAILED || state == CTX_TERMINATED) {
            snprintf(msg, len, "the server went away: %s", P.strerror(P.context_errno(w->c.ctx)));
            return -ECONNRESET;
        }
        int64_t left = until - now_ns();
        if (left <= 0) break;
        if (P.mainloop_prepare(w->c.loop, (int)(left / 1000)) < 0 || P.mainloop_poll(w->c.loop) < 0 ||
            P.mainloop_dispatch(w->c.loop) < 0) {
            snprintf(msg, len, "the connection's loop failed");
            return -ECONNRESET;
        }
    }
    int changed = w->changed;
    w->changed = 0;
    return changed;
}

void da_pulse_watch_free(da_pulse_watch *w) {
    if (!w) return;
    conn_close(&w->c);
    free(w);
}

/* ---- streams ---------------------------------------------------------------- */

#define FIFO_BLOCKS 64

/* Distinct lockstep offsets remembered (measure_offset); a run has one, or
 * two around a render. */
#define OFFSET_SLOTS 8

struct da_pulse {
    da_engine *engine;
    char *server, *sink, *source;   /* sink/source NULL: the server's default */
    uint32_t in_ch, out_ch, frames, rate, prefill;
    int follow_default;
    conn c;
    pa_stream *rec, *play;
    da_thread *thread;
    int running;
    da_sem *ready;
    atomic_int stop;
    int start_error;            /* the I/O thread's start: 0 or a negative errno */
    char message[256];          /* ... and why, for da_pulse_start's caller */

    /* I/O-thread only */
    float *fifo;                /* record data waiting to make a block */
    size_t fifo_frames;         /* frames in it */
    float *in_block, *out_block;
    const float **in_ptrs;
    float **out_ptrs;
    int64_t read_frames;        /* frames taken from the record stream into blocks */
    int64_t written_frames;     /* frames written to the playback stream, prefill included */
    int64_t origin_ns;          /* capture instant of the first frame read */
    int64_t callback_age_ns;    /* callback instant - capture instant, fixed at the first block */
    uint32_t lost_blocks;       /* blocks dropped since the last one handed over */
    atomic_int xrun;
    int offset_samples;
    pa_operation *op_play, *op_rec;
    int64_t offset_votes[OFFSET_SLOTS];
    int offset_counts[OFFSET_SLOTS];
    atomic_int_fast64_t round_trip;  /* frames; -1 until measured */
    atomic_int_fast64_t in_latency;
    atomic_int_fast64_t out_latency; /* an output-only stream's: its buffer and the sink's */
    char moved_to[256];         /* where the server last moved a default-following stream */
    atomic_int moved_seq;       /* 0: never moved; odd while moved_to is written */
};

static void on_xrun(pa_stream *s, void *arg) { atomic_store(&((da_pulse *)arg)->xrun, 1); }

/* The server moved a stream of ours (its default changed). One direction
 * follows: the first block from the new device is flagged and the move
 * reported. A duplex stream's two streams are moved one by one, each on its
 * own, so their lockstep (and the round trip) would not hold: it ends. */
static void on_moved(pa_stream *s, void *arg) {
    da_pulse *p = arg;
    if (!p->follow_default) return;
    if (p->in_ch && p->out_ch) {
        da_engine_fail(p->engine, DA_EV_DUPLEX_MOVED, 0);
        return;
    }
    const char *name = P.stream_get_device_name(s);
    const int seq = atomic_load(&p->moved_seq);
    atomic_store(&p->moved_seq, seq + 1);
    snprintf(p->moved_to, sizeof p->moved_to, "%s", name ? name : "");
    atomic_store(&p->moved_seq, seq + 2);
    atomic_store(&p->xrun, 1);
    da_event_post(p->engine, DA_EV_DEVICE_CHANGED, 0);
}

int da_pulse_moved_to(da_pulse *p, char *buf, size_t len) {
    for (;;) {
        const int seq = atomic_load(&p->moved_seq);
        if (seq == 0) {
            if (len) buf[0] = '\0';
            return 0;
        }
        if (seq & 1) continue; /* the I/O thread is writing it: a few bytes */
        snprintf(buf, len, "%s", p->moved_to);
        if (atomic_load(&p->moved_seq) == seq) return 1;
    }
}

int da_pulse_new(da_pulse **out, da_engine *e, const char *server, const char *sink,
                 const char *source, uint32_t in_ch, uint32_t out_ch, uint32_t rate, uint32_t frames,
                 int follow_default, char *msg, size_t len) {
    *out = NULL;
    int err = da_pulse_load(msg, len);
    if (err) return err;
    da_pulse *p = calloc(1, sizeof *p);
    if (!p) goto no_memory;
    p->engine = e;
    p->server = server ? strdup(server) : NULL;
    p->sink = sink ? strdup(sink) : NULL;
    p->source = source ? strdup(source) : NULL;
    p->in_ch = in_ch;
    p->out_ch = out_ch;
    p->rate = rate;
    p->frames = frames;
    p->prefill = 2 * frames;
    p->follow_default = follow_default;
    p->fifo = calloc((size_t)FIFO_BLOCKS * frames * (in_ch ? in_ch : 1), sizeof(float));
    p->in_block = calloc((size_t)frames * (in_ch ? in_ch : 1), sizeof(float));
    p->out_block = calloc((size_t)frames * (out_ch ? out_ch : 1), sizeof(float));
    p->in_ptrs = calloc(in_ch + 1, sizeof(float *));
    p->out_ptrs = calloc(out_ch + 1, sizeof(float *));
    p->ready = da_sem_new();
    atomic_store(&p->round_trip, -1);
    if (!p->ready || !p->fifo || !p->in_block || !p->out_block || !p->in_ptrs || !p->out_ptrs ||
        (server && !p->server) || (sink && !p->sink) || (source && !p->source)) {
        da_pulse_free(p);
        goto no_memory;
    }
    for (uint32_t c = 0; c < in_ch; c++) p->in_ptrs[c] = p->in_block + c;
    for (uint32_t c = 0; c < out_ch; c++) p->out_ptrs[c] = p->out_block + c;
    *out = p;
    return 0;
no_memory:
    snprintf(msg, len, "out of memory for a %u-frame stream", frames);
    return -ENOMEM;
}

/* The record or playback stream, connected and corked: 0 or a negative
 * errno, with why in p->message. */
static int open_stream(da_pulse *p, int record, pa_stream **out) {
    pa_sample_spec spec = {SAMPLE_FLOAT32LE, p->rate, (uint8_t)(record ? p->in_ch : p->out_ch)};
    pa_stream *s = P.stream_new(p->c.ctx, record ? "duplexio capture" : "duplexio playback",
                                &spec, NULL);
    if (!s) {
        int pa = P.context_errno(p->c.ctx);
        snprintf(p->message, sizeof p->message, "cannot create the %s stream (%u Hz, %u channels): %s",
                 record ? "record" : "playback", spec.rate, spec.channels, P.strerror(pa));
        return pa_errno(pa);
    }
    uint32_t frame_bytes = spec.channels * sizeof(float);
    /* Channel k is the device's channel k, by index: the server's own mapping
     * by name would play a mono stream on every channel of a stereo sink
     * (and mix them all into a mono record). */
    int flags =
        F_START_CORKED | F_INTERPOLATE | F_AUTO_TIMING | F_ADJUST_LATENCY | F_NO_REMAP_CHANNELS;
    if (!p->follow_default) flags |= F_DONT_MOVE;
    P.stream_set_underflow_callback(s, on_xrun, p);
    P.stream_set_overflow_callback(s, on_xrun, p);
    P.stream_set_moved_callback(s, on_moved, p);
    pa_buffer_attr attr = {(uint32_t)-1, (uint32_t)-1, (uint32_t)-1, (uint32_t)-1, (uint32_t)-1};
    int r;
    if (record) {
        attr.fragsize = p->frames * frame_bytes;
        /* Duplex records the sink's monitor; "@DEFAULT_MONITOR@" follows the default sink. */
        const char *dev = p->source ? p->source : (p->out_ch ? "@DEFAULT_MONITOR@" : NULL);
        r = P.stream_connect_record(s, dev, &attr, flags);
    } else {
        attr.tlength = (p->prefill + p->frames) * frame_bytes;
        attr.minreq = p->frames * frame_bytes;
        attr.prebuf = 0; /* manual start: no pause (and no shift) on underrun */
        r = P.stream_connect_playback(s, p->sink, &attr, flags, NULL, NULL);
    }
    if (r < 0) {
        int pa = P.context_errno(p->c.ctx);
        snprintf(p->message, sizeof p->message, "cannot connect the %s stream to '%s': %s",
                 record ? "record" : "playback",
                 record ? (p->source ? p->source : "the default") : (p->sink ? p->sink : "the default"),
                 P.strerror(pa));
        P.stream_unref(s);
        return pa_errno(pa);
    }
    *out = s;
    return 0;
}

static int streams_ready(da_pulse *p, char *msg, size_t len) {
    int64_t until = now_ns() + 10000000000LL;
    for (;;) {
        int rs = p->rec ? P.stream_get_state(p->rec) : ST_READY;
        int ps = p->play ? P.stream_get_state(p->play) : ST_READY;
        if (rs == ST_READY && ps == ST_READY) return 0;
        if (rs == ST_FAILED || ps == ST_FAILED || rs == ST_TERMINATED || ps == ST_TERMINATED ||
            now_ns() > until) {
            int late = now_ns() > until, pa = P.context_errno(p->c.ctx);
            snprintf(msg, len, "the server refused the stream (sink '%s', source '%s'): %s",
                     p->sink ? p->sink : "default", p->source ? p->source : "default",
                     late ? "not ready within 10 s" : P.strerror(pa));
            return late ? -ETIMEDOUT : pa ? pa_errno(pa) : -ENODEV;
        }
        P.mainloop_iterate(p->c.loop, 1, NULL);
    }
}

/* Record data waiting in the server becomes FIFO frames. When this thread
 * fell so far behind the server (held off the CPU for FIFO_BLOCKS blocks)
 * that the FIFO would overflow, the oldest frames go, in
 * whole blocks: positions stay on the block grid, so the next block's
 * timestamps step by whole periods (docs/concepts.md, "Lost cycles are
 * flagged"), counted in lost_blocks and flagged. */
static void pull_record(da_pulse *p) {
    const size_t frame = p->in_ch * sizeof(float), F = p->frames;
    const size_t cap = (size_t)FIFO_BLOCKS * F;
    while (P.stream_readable_size(p->rec) > 0) {
        const void *data;
        size_t bytes;
        if (P.stream_peek(p->rec, &data, &bytes) < 0 || bytes == 0) break;
        size_t n = bytes / frame, skip = 0;
        if (p->fifo_frames + n > cap) {
            /* drop <= fifo_frames + n: cap holds at least one block */
            size_t drop = (p->fifo_frames + n - cap + F - 1) / F * F;
            size_t old = drop < p->fifo_frames ? drop : p->fifo_frames;
            memmove(p->fifo, p->fifo + old * p->in_ch, (p->fifo_frames - old) * frame);
            p->fifo_frames -= old;
            skip = drop - old; /* the rest of the drop is the oldest new data */
            p->read_frames += (int64_t)drop;
            p->lost_blocks += (uint32_t)(drop / F);
            atomic_store(&p->xrun, 1);
        }
        float *to = p->fifo + p->fifo_frames * p->in_ch;
        if (data) memcpy(to, (const char *)data + skip * frame, (n - skip) * frame);
        else memset(to, 0, (n - skip) * frame); /* a hole */
        p->fifo_frames += n - skip;
        P.stream_drop(p->rec);
    }
}

/* The lockstep offset c = playback read index - record write index, in
 * frames: both counters advance in the same render of the sink, so c is fixed
 * while the loop keeps lockstep. Both streams are asked for fresh timing at
 * once; each answer carries the instant it was taken. Repeated while the
 * stream warms up; the most frequent value wins, and the round trip
 * (prefill - c) is fixed before the first block reaches the user. */
#define OFFSET_SAMPLES 12
/* Snapshots further apart than this (s) may straddle a render: not counted. */
#define SNAPSHOT_SKEW 0.0005

/* One pair of timing snapshots: its offset's vote, when the two were taken
 * close enough together. The counters move in render-sized steps, not
 * continuously: two snapshots taken within a fraction of a millisecond
 * almost always fall between the same two renders, and then their raw
 * difference is exact. */
static void count_snapshot(da_pulse *p) {
    const pa_timing_info *tp = P.stream_get_timing_info(p->play);
    const pa_timing_info *tr = P.stream_get_timing_info(p->rec);
    if (!tp || !tr || tp->read_index_corrupt || tr->write_index_corrupt || !tp->playing) return;
    const double dt = (double)(tr->timestamp.tv_sec - tp->timestamp.tv_sec) +
                      (double)(tr->timestamp.tv_usec - tp->timestamp.tv_usec) * 1e-6;
    if (fabs(dt) >= SNAPSHOT_SKEW) return;
    const int64_t c = tp->read_index / (int64_t)(p->out_ch * sizeof(float)) -
                      tr->write_index / (int64_t)(p->in_ch * sizeof(float));
    int slot = -1;
    for (int i = 0; i < OFFSET_SLOTS && slot < 0; i++)
        if (p->offset_counts[i] && p->offset_votes[i] == c) slot = i;
    for (int i = 0; i < OFFSET_SLOTS && slot < 0; i++)
        if (!p->offset_counts[i]) {
            slot = i;
            p->offset_votes[i] = c;
        }
    if (slot >= 0) p->offset_counts[slot]++;
    p->offset_samples++;
}

/* The offset with the most votes fixes the round trip. pipewire-pulse's
 * monitor reaches the record stream one graph cycle later than its counters
 * say, whatever the quantum, and the quantum is not visible through the
 * protocol: the round trip reported there is one quantum short. */
static void settle_offset(da_pulse *p) {
    int top = 0;
    for (int i = 1; i < OFFSET_SLOTS; i++)
        if (p->offset_counts[i] > p->offset_counts[top]) top = i;
    atomic_store(&p->round_trip, (int64_t)p->prefill - p->offset_votes[top]);
}

static void measure_offset(da_pulse *p) {
    if (p->op_play || p->op_rec) {
        if ((p->op_play && P.operation_get_state(p->op_play) == OP_RUNNING) ||
            (p->op_rec && P.operation_get_state(p->op_rec) == OP_RUNNING))
            return; /* the last request is still out */
        P.operation_unref(p->op_play);
        P.operation_unref(p->op_rec);
        p->op_play = p->op_rec = NULL;
        count_snapshot(p);
        if (p->offset_samples >= OFFSET_SAMPLES) {
            settle_offset(p);
            return;
        }
    }
    p->op_play = P.stream_update_timing_info(p->play, NULL, NULL);
    p->op_rec = P.stream_update_timing_info(p->rec, NULL, NULL);
}

/* A block that keeps lockstep while the offset is measured: silence out. */
static void idle_block(da_pulse *p) {
    const uint32_t F = p->frames;
    p->fifo_frames -= F;
    memmove(p->fifo, p->fifo + (size_t)F * p->in_ch, p->fifo_frames * p->in_ch * sizeof(float));
    p->read_frames += F;
    memset(p->out_block, 0, (size_t)F * p->out_ch * sizeof(float));
    P.stream_write(p->play, p->out_block, (size_t)F * p->out_ch * sizeof(float), NULL, 0, 0);
    p->written_frames += F;
}

static void process_block(da_pulse *p, int64_t now) {
    const uint32_t F = p->frames;
    if (p->in_ch) {
        memcpy(p->in_block, p->fifo, (size_t)F * p->in_ch * sizeof(float));
        p->fifo_frames -= F;
        memmove(p->fifo, p->fifo + (size_t)F * p->in_ch, p->fifo_frames * p->in_ch * sizeof(float));
    }
    int64_t rt = atomic_load(&p->round_trip);
    if (rt < 0) rt = p->prefill;
    da_cycle_time t = {0};
    t.callback_ns = now;
    t.wakeup_ns = now;
    t.deadline_anchor_ns = now;
    int xrun = atomic_exchange(&p->xrun, 0);
    if (p->in_ch) {
        if (!p->origin_ns) {
            pa_usec_t lat = 0;
            int neg = 0;
            if (P.stream_get_latency(p->rec, &lat, &neg) < 0) lat = 0;
            int64_t age = (int64_t)lat * 1000 + da_frames_to_ns((int64_t)p->fifo_frames + F, p->rate);
            p->origin_ns = now - age - da_frames_to_ns(p->read_frames, p->rate);
            p->callback_age_ns = age;
            atomic_store(&p->in_latency, (int64_t)(age * (int64_t)p->rate / 1000000000LL));
        }
        /* Frame-exact on the sink's clock from the first block on; the
         * callback instant too, a fixed age after its first frame, since the
         * I/O thread's own wake-ups come in bursts of several blocks. */
        t.input_device_ns = p->origin_ns + da_frames_to_ns(p->read_frames, p->rate);
        t.output_device_ns = t.input_device_ns + da_frames_to_ns(rt, p->rate);
        t.callback_ns = t.input_device_ns + p->callback_age_ns;
        t.lost_cycles = p->lost_blocks;
        p->lost_blocks = 0;
    } else {
        pa_usec_t lat = 0;
        int neg = 0;
        if (P.stream_get_latency(p->play, &lat, &neg) < 0) lat = 0;
        const int64_t ahead = neg ? 0 : (int64_t)lat * 1000;
        t.output_device_ns = now + ahead;
        t.input_device_ns = t.output_device_ns;
        /* What stop() must let play: all the server holds of ours, and this
         * block on top of it. */
        atomic_store(&p->out_latency, ahead * (int64_t)p->rate / 1000000000LL + F);
    }
    da_engine_process(p->engine, p->in_ptrs, p->in_ch, p->out_ptrs, p->out_ch, F, &t, xrun);
    p->read_frames += p->in_ch ? F : 0;
    if (p->out_ch) {
        P.stream_write(p->play, p->out_block, (size_t)F * p->out_ch * sizeof(float), NULL, 0, 0);
        p->written_frames += F;
    }
}

static int healthy(da_pulse *p) {
    if (P.context_get_state(p->c.ctx) != CTX_READY) return 0;
    if (p->rec && P.stream_get_state(p->rec) != ST_READY) return 0;
    if (p->play && P.stream_get_state(p->play) != ST_READY) return 0;
    return 1;
}

/* The stream's I/O thread: connects, then runs libpulse's main loop and the
 * engine one block at a time. It never takes a lock Python can hold, never
 * calls into Python and never waits on anything but the server; what
 * allocates is libpulse's own loop, never the per-block path. */
static void *io_thread(void *arg) {
    da_pulse *p = arg;
    int err = conn_open(&p->c, p->server, "duplexio", 10000, p->message, sizeof p->message);
    if (!err && p->in_ch) err = open_stream(p, 1, &p->rec);
    if (!err && p->out_ch) err = open_stream(p, 0, &p->play);
    if (!err) err = streams_ready(p, p->message, sizeof p->message);
    if (!err && p->play) {
        /* Silence ahead of the first block: the loop's fixed distance. */
        size_t bytes = (size_t)p->prefill * p->out_ch * sizeof(float);
        float *zeros = calloc(1, bytes);
        if (zeros) {
            P.stream_write(p->play, zeros, bytes, NULL, 0, 0);
            free(zeros);
        }
        p->written_frames = p->prefill;
    }
    if (!err) {
        /* Uncork both in one go: the server handles them back to back. */
        if (p->rec) P.operation_unref(P.stream_cork(p->rec, 0, NULL, NULL));
        if (p->play) P.operation_unref(P.stream_cork(p->play, 0, NULL, NULL));
    }
    p->start_error = err;
    da_sem_post(p->ready);
    if (err) return NULL;

    while (!atomic_load(&p->stop)) {
        if (P.mainloop_iterate(p->c.loop, 1, NULL) < 0 || !healthy(p)) {
            if (!atomic_load(&p->stop)) da_engine_fail(p->engine, DA_EV_DEVICE_LOST, 0);
            break;
        }
        if (p->rec) pull_record(p);
        for (;;) {
            if (p->in_ch && p->fifo_frames < p->frames) break;
            if (!p->in_ch && P.stream_writable_size(p->play) < (size_t)p->frames * p->out_ch * sizeof(float))
                break;
            if (p->rec && p->play && atomic_load(&p->round_trip) < 0) {
                measure_offset(p);
                idle_block(p);
                continue;
            }
            process_block(p, da_now_ns());
        }
    }
    return NULL;
}

int da_pulse_start(da_pulse *p, char *msg, size_t len) {
    if (p->running) return 0;
    atomic_store(&p->stop, 0);
    p->fifo_frames = 0;
    p->read_frames = 0;
    p->written_frames = 0;
    p->origin_ns = 0;
    p->lost_blocks = 0;
    p->offset_samples = 0;
    memset(p->offset_counts, 0, sizeof p->offset_counts);
    atomic_store(&p->round_trip, -1);
    /* Until the server says: the buffer asked of it (prefill and a block). */
    atomic_store(&p->out_latency, (int64_t)p->prefill + p->frames);
    int rt = 0;
    int err = da_thread_start(&p->thread, io_thread, p, 1, &rt);
    if (err) {
        snprintf(msg, len, "cannot start the I/O thread: %s", strerror(err));
        return -err;
    }
    da_engine_set_realtime(p->engine, rt);
    p->running = 1;
    while (da_sem_wait(p->ready) != 0) {
    }
    if (p->start_error) {
        snprintf(msg, len, "%s", p->message);
        da_pulse_stop(p);
        return p->start_error;
    }
    return 0;
}

void da_pulse_stop(da_pulse *p) {
    if (!p->running) return;
    atomic_store(&p->stop, 1);
    if (p->c.loop) P.mainloop_wakeup(p->c.loop);
    da_thread_join(p->thread);
    p->running = 0;
    if (p->op_play) P.operation_unref(p->op_play);
    if (p->op_rec) P.operation_unref(p->op_rec);
    p->op_play = p->op_rec = NULL;
    if (p->rec) {
        P.stream_disconnect(p->rec);
        P.stream_unref(p->rec);
        p->rec = NULL;
    }
    if (p->play) {
        P.stream_disconnect(p->play);
        P.stream_unref(p->play);
        p->play = NULL;
    }
    conn_close(&p->c);
}

void da_pulse_free(da_pulse *p) {
    if (!p) return;
    da_pulse_stop(p);
    da_sem_free(p->ready);
    free(p->server);
    free(p->sink);
    free(p->source);
    free(p->fifo);
    free(p->in_block);
    free(p->out_block);
    free(p->in_ptrs);
    free(p->out_ptrs);
    free(p);
}

void da_pulse_latency(da_pulse *p, int64_t *capture, int64_t *round_trip, int64_t *playback) {
    *capture = atomic_load(&p->in_latency);
    *playback = atomic_load(&p->out_latency);
    *round_trip = atomic_load(&p->round_trip);
}
