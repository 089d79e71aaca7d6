/* The ALSA host's C side: libasound loaded with dlopen, one I/O thread per
 * stream.
 *
 * A duplex stream opens capture and playback on one PCM name with the same
 * rate and period size, pre-fills playback with silence and starts both
 * (linked with snd_pcm_link where the PCM allows it, else back to back).
 * The thread then reads one period and writes one period per cycle, so the
 * two directions stay in lockstep: the round trip is fixed by the start and
 * is measured every cycle, from the PCM delays (or, for the pulse plugin,
 * its ring positions; see where()), plus what the Python side found beyond
 * the PCM. After an xrun both directions are restarted the same way and the
 * round trip measured again; a lasting shift is reported as an xrun.
 *
 * The PCMs run in non-blocking mode and the thread waits in poll() on their
 * descriptors plus a wake pipe, so stop() never waits on a blocked read.
 * No ALSA header is needed: the few types and constants used are ALSA's
 * stable C ABI, declared here. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* ALSA is Linux's alone, and so is how one waits on it: poll() on the PCMs'
 * descriptors and a wake pipe. These are the only OS headers a host
 * includes; threads, clocks and loading come from the platform layer. */
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "samples.h"
#include "alsa_api.h"

typedef struct _snd_pcm snd_pcm_t;
typedef struct _snd_pcm_hw_params snd_pcm_hw_params_t;
typedef struct _snd_pcm_sw_params snd_pcm_sw_params_t;
typedef struct _snd_pcm_status snd_pcm_status_t;
typedef struct _snd_config snd_config_t;
typedef struct _snd_config_iterator *snd_config_iterator_t;
typedef unsigned long snd_pcm_uframes_t;
typedef long snd_pcm_sframes_t;
typedef void (*snd_lib_error_handler_t)(const char *, int, const char *, int, const char *, ...);

enum { PCM_PLAYBACK = 0, PCM_CAPTURE = 1 };
enum { PCM_NONBLOCK = 1 };
enum { ACCESS_RW_INTERLEAVED = 3 };
enum { FMT_S16_LE = 2, FMT_S32_LE = 10, FMT_FLOAT_LE = 14 };
enum { STATE_XRUN = 4, STATE_DISCONNECTED = 8 };
enum { CONFIG_COMPOUND = 1024 };
enum { TSTAMP_ENABLE = 1, TSTAMP_TYPE_MONOTONIC = 1 };

/* Silence queued ahead of the first written period (periods): one is
 * consumed while the first capture period fills, one absorbs jitter. */
#define PREFILL_PERIODS 2
#define BUFFER_PERIODS 4
#define MAX_FDS 16
/* A poll that sees nothing this long checks the PCM's state (ms). */
#define POLL_MS 500
/* Polls in a row with nothing: the device is taken as gone. A plugin PCM
 * whose server died (type jack) stays "running" and simply goes silent. */
#define SILENT_POLLS 6
/* Cycles the delays must stay off before a slip is reported. */
#define SLIP_CYCLES 8
/* Cycles after a (re)start in which a new measure is settling, not a slip. */
#define SETTLE_CYCLES (2 * SLIP_CYCLES)

static struct {
    int (*pcm_open)(snd_pcm_t **, const char *, int, int);
    int (*pcm_close)(snd_pcm_t *);
    int (*hw_malloc)(snd_pcm_hw_params_t **);
    void (*hw_free)(snd_pcm_hw_params_t *);
    int (*hw_any)(snd_pcm_t *, snd_pcm_hw_params_t *);
    int (*hw_channels_min)(const snd_pcm_hw_params_t *, unsigned *);
    int (*hw_channels_max)(const snd_pcm_hw_params_t *, unsigned *);
    int (*hw_rate_min)(const snd_pcm_hw_params_t *, unsigned *, int *);
    int (*hw_rate_max)(const snd_pcm_hw_params_t *, unsigned *, int *);
    int (*hw_period_min)(const snd_pcm_hw_params_t *, snd_pcm_uframes_t *, int *);
    int (*hw_period_max)(const snd_pcm_hw_params_t *, snd_pcm_uframes_t *, int *);
    int (*hw_buffer_min)(const snd_pcm_hw_params_t *, snd_pcm_uframes_t *);
    int (*hw_buffer_max)(const snd_pcm_hw_params_t *, snd_pcm_uframes_t *);
    int (*hw_test_format)(snd_pcm_t *, snd_pcm_hw_params_t *, int);
    int (*hw_set_access)(snd_pcm_t *, snd_pcm_hw_params_t *, int);
    int (*hw_set_format)(snd_pcm_t *, snd_pcm_hw_params_t *, int);
    int (*hw_set_channels)(snd_pcm_t *, snd_pcm_hw_params_t *, unsigned);
    int (*hw_set_rate)(snd_pcm_t *, snd_pcm_hw_params_t *, unsigned, int);
    int (*hw_set_period)(snd_pcm_t *, snd_pcm_hw_params_t *, snd_pcm_uframes_t, int);
    int (*hw_set_periods_near)(snd_pcm_t *, snd_pcm_hw_params_t *, unsigned *, int *);
    int (*hw_params)(snd_pcm_t *, snd_pcm_hw_params_t *);
    int (*hw_get_period)(const snd_pcm_hw_params_t *, snd_pcm_uframes_t *, int *);
    int (*hw_get_buffer)(const snd_pcm_hw_params_t *, snd_pcm_uframes_t *);
    int (*sw_malloc)(snd_pcm_sw_params_t **);
    void (*sw_free)(snd_pcm_sw_params_t *);
    int (*sw_current)(snd_pcm_t *, snd_pcm_sw_params_t *);
    int (*sw_start_threshold)(snd_pcm_t *, snd_pcm_sw_params_t *, snd_pcm_uframes_t);
    int (*sw_avail_min)(snd_pcm_t *, snd_pcm_sw_params_t *, snd_pcm_uframes_t);
    int (*sw_params)(snd_pcm_t *, snd_pcm_sw_params_t *);
    int (*sw_tstamp_mode)(snd_pcm_t *, snd_pcm_sw_params_t *, int);
    int (*sw_tstamp_type)(snd_pcm_t *, snd_pcm_sw_params_t *, int);
    int (*status_malloc)(snd_pcm_status_t **);
    void (*status_free)(snd_pcm_status_t *);
    int (*status)(snd_pcm_t *, snd_pcm_status_t *);
    void (*status_htstamp)(const snd_pcm_status_t *, struct timespec *);
    snd_pcm_uframes_t (*status_avail)(const snd_pcm_status_t *);
    snd_pcm_sframes_t (*status_delay)(const snd_pcm_status_t *);
    int (*prepare)(snd_pcm_t *);
    int (*start)(snd_pcm_t *);
    int (*drop)(snd_pcm_t *);
    snd_pcm_sframes_t (*readi)(snd_pcm_t *, void *, snd_pcm_uframes_t);
    snd_pcm_sframes_t (*writei)(snd_pcm_t *, const void *, snd_pcm_uframes_t);
    int (*recover)(snd_pcm_t *, int, int);
    int (*delay)(snd_pcm_t *, snd_pcm_sframes_t *);
    int (*link)(snd_pcm_t *, snd_pcm_t *);
    int (*unlink)(snd_pcm_t *);
    int (*state)(snd_pcm_t *);
    int (*poll_count)(snd_pcm_t *);
    int (*poll_fds)(snd_pcm_t *, struct pollfd *, unsigned);
    int (*poll_revents)(snd_pcm_t *, struct pollfd *, unsigned, unsigned short *);
    const char *(*strerror)(int);
    int (*name_hint)(int, const char *, void ***);
    char *(*name_get_hint)(const void *, const char *);
    int (*name_free_hint)(void **);
    int (*config_update_free_global)(void);
    int (*set_error_handler)(snd_lib_error_handler_t);
    int (*config_update_ref)(snd_config_t **);
    void (*config_unref)(snd_config_t *);
    int (*config_search)(snd_config_t *, const char *, snd_config_t **);
    int (*config_search_definition)(snd_config_t *, const char *, const char *, snd_config_t **);
    int (*config_delete)(snd_config_t *);
    int (*config_get_type)(const snd_config_t *);
    int (*config_get_id)(const snd_config_t *, const char **);
    int (*config_get_string)(const snd_config_t *, const char **);
    snd_config_iterator_t (*config_first)(const snd_config_t *);
    snd_config_iterator_t (*config_next)(const snd_config_iterator_t);
    snd_config_iterator_t (*config_end)(const snd_config_t *);
    snd_config_t *(*config_entry)(const snd_config_iterator_t);
} A;

static const da_symbol SYMBOLS[] = {
    {&A.pcm_open, "snd_pcm_open"},
    {&A.pcm_close, "snd_pcm_close"},
    {&A.hw_malloc, "snd_pcm_hw_params_malloc"},
    {&A.hw_free, "snd_pcm_hw_params_free"},
    {&A.hw_any, "snd_pcm_hw_params_any"},
    {&A.hw_channels_min, "snd_pcm_hw_params_get_channels_min"},
    {&A.hw_channels_max, "snd_pcm_hw_params_get_channels_max"},
    {&A.hw_rate_min, "snd_pcm_hw_params_get_rate_min"},
    {&A.hw_rate_max, "snd_pcm_hw_params_get_rate_max"},
    {&A.hw_period_min, "snd_pcm_hw_params_get_period_size_min"},
    {&A.hw_period_max, "snd_pcm_hw_params_get_period_size_max"},
    {&A.hw_buffer_min, "snd_pcm_hw_params_get_buffer_size_min"},
    {&A.hw_buffer_max, "snd_pcm_hw_params_get_buffer_size_max"},
    {&A.hw_test_format, "snd_pcm_hw_params_test_format"},
    {&A.hw_set_access, "snd_pcm_hw_params_set_access"},
    {&A.hw_set_format, "snd_pcm_hw_params_set_format"},
    {&A.hw_set_channels, "snd_pcm_hw_params_set_channels"},
    {&A.hw_set_rate, "snd_pcm_hw_params_set_rate"},
    {&A.hw_set_period, "snd_pcm_hw_params_set_period_size"},
    {&A.hw_set_periods_near, "snd_pcm_hw_params_set_periods_near"},
    {&A.hw_params, "snd_pcm_hw_params"},
    {&A.hw_get_period, "snd_pcm_hw_params_get_period_size"},
    {&A.hw_get_buffer, "snd_pcm_hw_params_get_buffer_size"},
    {&A.sw_malloc, "snd_pcm_sw_params_malloc"},
    {&A.sw_free, "snd_pcm_sw_params_free"},
    {&A.sw_current, "snd_pcm_sw_params_current"},
    {&A.sw_start_threshold, "snd_pcm_sw_params_set_start_threshold"},
    {&A.sw_avail_min, "snd_pcm_sw_params_set_avail_min"},
    {&A.sw_params, "snd_pcm_sw_params"},
    {&A.sw_tstamp_mode, "snd_pcm_sw_params_set_tstamp_mode"},
    {&A.sw_tstamp_type, "snd_pcm_sw_params_set_tstamp_type"},
    {&A.status_malloc, "snd_pcm_status_malloc"},
    {&A.status_free, "snd_pcm_status_free"},
    {&A.status, "snd_pcm_status"},
    {&A.status_htstamp, "snd_pcm_status_get_htstamp"},
    {&A.status_avail, "snd_pcm_status_get_avail"},
    {&A.status_delay, "snd_pcm_status_get_delay"},
    {&A.prepare, "snd_pcm_prepare"},
    {&A.start, "snd_pcm_start"},
    {&A.drop, "snd_pcm_drop"},
    {&A.readi, "snd_pcm_readi"},
    {&A.writei, "snd_pcm_writei"},
    {&A.recover, "snd_pcm_recover"},
    {&A.delay, "snd_pcm_delay"},
    {&A.link, "snd_pcm_link"},
    {&A.unlink, "snd_pcm_unlink"},
    {&A.state, "snd_pcm_state"},
    {&A.poll_count, "snd_pcm_poll_descriptors_count"},
    {&A.poll_fds, "snd_pcm_poll_descriptors"},
    {&A.poll_revents, "snd_pcm_poll_descriptors_revents"},
    {&A.strerror, "snd_strerror"},
    {&A.name_hint, "snd_device_name_hint"},
    {&A.name_get_hint, "snd_device_name_get_hint"},
    {&A.name_free_hint, "snd_device_name_free_hint"},
    {&A.config_update_free_global, "snd_config_update_free_global"},
    {&A.set_error_handler, "snd_lib_error_set_handler"},
    {&A.config_update_ref, "snd_config_update_ref"},
    {&A.config_unref, "snd_config_unref"},
    {&A.config_search, "snd_config_search"},
    {&A.config_search_definition, "snd_config_search_definition"},
    {&A.config_delete, "snd_config_delete"},
    {&A.config_get_type, "snd_config_get_type"},
    {&A.config_get_id, "snd_config_get_id"},
    {&A.config_get_string, "snd_config_get_string"},
    {&A.config_first, "snd_config_iterator_first"},
    {&A.config_next, "snd_config_iterator_next"},
    {&A.config_end, "snd_config_iterator_end"},
    {&A.config_entry, "snd_config_iterator_entry"},
};

static void *libasound;

/* libasound prints every failed open to stderr; our errors carry the code. */
static void quiet(const char *file, int line, const char *fn, int err, const char *fmt, ...) {}

static void loaded(void) { A.set_error_handler(quiet); }

int da_alsa_load(char *msg, size_t len) {
    return da_load_library("libasound.so.2", SYMBOLS, sizeof SYMBOLS / sizeof SYMBOLS[0], loaded,
                           &libasound, msg, len);
}

void da_alsa_reload_config(void) { A.config_update_free_global(); }

/* ---- discovery -------------------------------------------------------------- */

static size_t put(char *buf, size_t len, size_t used, const char *s, int *overflow) {
    for (; s && *s; s++) {
        /* Hint descriptions span lines; keep our line format intact. */
        char c = (*s == '\n' || *s == '\t') ? ' ' : *s;
        if (used + 2 > len) {
            *overflow = 1;
            return used;
        }
        buf[used++] = c;
    }
    return used;
}

/* Too little room for a text result: say so, for the caller to grow buf. */
static int short_buffer(size_t len, char *msg, size_t msg_len) {
    snprintf(msg, msg_len, "the text needs more than %zu bytes", len);
    return -ENOSPC;
}

int da_alsa_hints(char *buf, size_t len, char *msg, size_t msg_len) {
    void **hints = NULL;
    int err = A.name_hint(-1, "pcm", &hints);
    if (err < 0) {
        snprintf(msg, msg_len, "cannot read the PCM hints: %s", A.strerror(err));
        return err;
    }
    size_t used = 0;
    int count = 0, overflow = 0;
    for (void **h = hints; *h; h++) {
        char *name = A.name_get_hint(*h, "NAME");
        char *desc = A.name_get_hint(*h, "DESC");
        char *ioid = A.name_get_hint(*h, "IOID");
        used = put(buf, len, used, name, &overflow);
        used = put(buf, len, used, "\x01", &overflow);
        used = put(buf, len, used, desc, &overflow);
        used = put(buf, len, used, "\x01", &overflow);
        used = put(buf, len, used, ioid, &overflow);
        used = put(buf, len, used, "\x02", &overflow);
        free(name);
        free(desc);
        free(ioid);
        count++;
    }
    A.name_free_hint(hints);
    if (len) buf[used < len ? used : len - 1] = '\0';
    return overflow ? short_buffer(len, msg, msg_len) : count;
}

int da_alsa_probe(const char *name, int capture, da_alsa_caps *out, char *msg, size_t len) {
    snd_pcm_t *pcm = NULL;
    snd_pcm_hw_params_t *hw = NULL;
    memset(out, 0, sizeof *out);
    const char *way = capture ? "capture" : "playback";
    int err = A.pcm_open(&pcm, name, capture ? PCM_CAPTURE : PCM_PLAYBACK, PCM_NONBLOCK);
    if (err < 0) {
        snprintf(msg, len, "does not open for %s: %s", way, A.strerror(err));
        return err;
    }
    if ((err = A.hw_malloc(&hw)) < 0) goto done;
    if ((err = A.hw_any(pcm, hw)) < 0) goto done;
    unsigned u;
    int dir = 0;
    snd_pcm_uframes_t f;
    if (A.hw_channels_min(hw, &u) == 0) out->channels_min = u;
    if (A.hw_channels_max(hw, &u) == 0) out->channels_max = u;
    if (A.hw_rate_min(hw, &u, &dir) == 0) out->rate_min = u;
    if (A.hw_rate_max(hw, &u, &dir) == 0) out->rate_max = u;
    if (A.hw_period_min(hw, &f, &dir) == 0) out->period_min = f;
    if (A.hw_period_max(hw, &f, &dir) == 0) out->period_max = f;
    if (A.hw_buffer_min(hw, &f) == 0) out->buffer_min = f;
    if (A.hw_buffer_max(hw, &f) == 0) out->buffer_max = f;
    if (A.hw_test_format(pcm, hw, FMT_FLOAT_LE) == 0) out->formats |= DA_ALSA_FMT_F32;
    if (A.hw_test_format(pcm, hw, FMT_S32_LE) == 0) out->formats |= DA_ALSA_FMT_S32;
    if (A.hw_test_format(pcm, hw, FMT_S16_LE) == 0) out->formats |= DA_ALSA_FMT_S16;
done:
    if (err < 0) snprintf(msg, len, "cannot read its %s parameters: %s", way, A.strerror(err));
    if (hw) A.hw_free(hw);
    A.pcm_close(pcm);
    return err < 0 ? err : 0;
}

/* ---- what lies beyond a plugin PCM ------------------------------------------------ */

#define MAX_JACK_PORTS 64

/* The `capture_ports` or `playback_ports` of a `type jack` definition, in
 * channel order, as lines into buf. Returns the count, -ENOSPC if buf is short. */
static int list_jack_ports(snd_config_t *jack, int capture, char *buf, size_t len) {
    snd_config_t *ports;
    const char *by_channel[MAX_JACK_PORTS] = {0};
    int count = 0, overflow = 0;
    if (A.config_search(jack, capture ? "capture_ports" : "playback_ports", &ports) < 0 ||
        A.config_get_type(ports) != CONFIG_COMPOUND)
        return 0;
    for (snd_config_iterator_t i = A.config_first(ports); i != A.config_end(ports);
         i = A.config_next(i)) {
        snd_config_t *n = A.config_entry(i);
        const char *id, *port;
        if (A.config_get_id(n, &id) < 0 || A.config_get_string(n, &port) < 0) continue;
        int channel = atoi(id);
        if (channel >= 0 && channel < MAX_JACK_PORTS) by_channel[channel] = port;
    }
    size_t used = 0;
    for (int c = 0; c < MAX_JACK_PORTS; c++) {
        if (!by_channel[c]) continue;
        used = put(buf, len, used, by_channel[c], &overflow);
        used = put(buf, len, used, "\x01", &overflow);
        count++;
    }
    if (len) buf[used < len ? used : len - 1] = '\0';
    return overflow ? -ENOSPC : count;
}

/* Follow a definition down its slaves (plug, route, rate, asym's direction,
 * ...) to a `type jack` one, or stop at a `type pulse` one; a few levels
 * only, configurations can loop. DA_ALSA_SERVED_* or 0, or -ENOSPC. */
static int find_server(snd_config_t *top, snd_config_t *pcm, int capture, int depth, char *buf,
                       size_t len) {
    snd_config_t *n;
    const char *s;
    if (depth > 8) return 0;
    if (A.config_search(pcm, "type", &n) == 0 && A.config_get_string(n, &s) == 0) {
        if (strcmp(s, "jack") == 0)
            return list_jack_ports(pcm, capture, buf, len) < 0 ? -ENOSPC : DA_ALSA_SERVED_JACK;
        /* Only the PCM itself: a plug in front could resample its positions. */
        if (strcmp(s, "pulse") == 0) return depth == 0 ? DA_ALSA_SERVED_PULSE : 0;
    }
    const char *keys[] = {capture ? "capture.pcm" : "playback.pcm", "slave.pcm"};
    for (size_t k = 0; k < 2; k++) {
        if (A.config_search(pcm, keys[k], &n) < 0) continue;
        if (A.config_get_type(n) == CONFIG_COMPOUND)
            return find_server(top, n, capture, depth + 1, buf, len);
        snd_config_t *def;
        if (A.config_get_string(n, &s) < 0 || A.config_search_definition(top, "pcm", s, &def) < 0)
            return 0;
        int r = find_server(top, def, capture, depth + 1, buf, len);
        A.config_delete(def);
        return r;
    }
    return 0;
}

int da_alsa_served_by(const char *name, int capture, char *buf, size_t len, char *msg,
                      size_t msg_len) {
    snd_config_t *top, *def;
    if (len) buf[0] = '\0';
    /* A reference to the loaded configuration: safe against a reload. */
    int err = A.config_update_ref(&top);
    if (err < 0) {
        snprintf(msg, msg_len, "cannot read the configuration: %s", A.strerror(err));
        return err;
    }
    int r = A.config_search_definition(top, "pcm", name, &def); /* >= 0: found */
    if (r >= 0) {
        r = find_server(top, def, capture, 0, buf, len);
        A.config_delete(def);
    } else {
        r = 0; /* no definition of its own (a hw: name, say): served by nobody */
    }
    A.config_unref(top);
    return r == -ENOSPC ? short_buffer(len, msg, msg_len) : r;
}

/* ---- streams ------------------------------------------------------------------ */

struct da_alsa {
    da_engine *engine;
    uint32_t in_ch, out_ch, rate, frames;
    snd_pcm_t *cap, *play;
    snd_pcm_status_t *cap_status, *play_status;
    int cap_fmt, play_fmt;       /* the device's sample format, ALSA codes */
    uint64_t play_buffer;        /* frames */
    void *cap_raw, *play_raw;    /* one period in the device's format */
    float *in_block, *out_block; /* one period, float32 interleaved */
    const float **in_ptrs;
    float **out_ptrs;
    struct pollfd pfds[MAX_FDS + 1];
    int wake[2];
    da_thread *thread;
    int running;
    int linked;
    atomic_int stop;
    atomic_uint_fast64_t written; /* playback frames written, for da_alsa_stop */
    atomic_llong cap_latency, play_latency; /* frames, fixed between restarts */
    int64_t cap_outside, play_outside; /* frames beyond the PCM (a server's ports) */
    int by_position;    /* measure from the ring positions, not the delays */
    int64_t play_ahead; /* frames the playback position runs ahead of the server's */
    int silent_polls; /* POLL_MS waits in a row that saw nothing */
    int measured;     /* the latencies of this run of the PCMs are set */
    int64_t measured_sum; /* their sum when measured */
    int off_cycles;   /* cycles in a row the sum has been off */
    int run_cycles;   /* cycles since the PCMs were (re)started */
    int restarted;    /* this run of the PCMs follows a glitch, not start() */
    int replays_on_drop; /* the playback PCM repeats what it last played once dropped */
    int xrun;         /* flag the next block */
    int64_t origin_ns;
    int64_t elapsed;  /* frames since the origin */
};

/* The engine's code for an ALSA sample format we open (see configure()). */
static int engine_format(int alsa_fmt) {
    return alsa_fmt == FMT_FLOAT_LE ? DA_FMT_F32 : alsa_fmt == FMT_S32_LE ? DA_FMT_I32 : DA_FMT_I16;
}

static size_t sample_bytes(int fmt) { return da_format_bytes(engine_format(fmt)); }

/* hw and sw params of one direction; the format is the best the PCM offers. */
static int configure(snd_pcm_t *pcm, uint32_t ch, uint32_t rate, uint32_t frames, int *fmt,
                     uint64_t *buffer_frames, char *msg, size_t len) {
    snd_pcm_hw_params_t *hw = NULL;
    snd_pcm_sw_params_t *sw = NULL;
    int err;
    const char *what = "allocating parameters";
    if ((err = A.hw_malloc(&hw)) < 0 || (err = A.sw_malloc(&sw)) < 0) goto done;
    what = "reading its parameters";
    if ((err = A.hw_any(pcm, hw)) < 0) goto done;
    what = "interleaved access";
    if ((err = A.hw_set_access(pcm, hw, ACCESS_RW_INTERLEAVED)) < 0) goto done;
    const int order[] = {FMT_FLOAT_LE, FMT_S32_LE, FMT_S16_LE};
    err = -EINVAL;
    for (size_t i = 0; i < 3 && err < 0; i++)
        if (A.hw_test_format(pcm, hw, order[i]) == 0 && (err = A.hw_set_format(pcm, hw, order[i])) == 0)
            *fmt = order[i];
    what = "a float32, s32 or s16 sample format";
    if (err < 0) goto done;
    what = "the channel count";
    if ((err = A.hw_set_channels(pcm, hw, ch)) < 0) goto done;
    what = "the sample rate";
    if ((err = A.hw_set_rate(pcm, hw, rate, 0)) < 0) goto done;
    what = "the period size";
    if ((err = A.hw_set_period(pcm, hw, frames, 0)) < 0) goto done;
    unsigned periods = BUFFER_PERIODS;
    int dir = 0;
    what = "the buffer size";
    if ((err = A.hw_set_periods_near(pcm, hw, &periods, &dir)) < 0) goto done;
    what = "the hardware parameters";
    if ((err = A.hw_params(pcm, hw)) < 0) goto done;
    snd_pcm_uframes_t got = 0, buffer = 0;
    A.hw_get_period(hw, &got, &dir);
    A.hw_get_buffer(hw, &buffer);
    *buffer_frames = buffer;
    if (got != frames || buffer < (snd_pcm_uframes_t)frames * PREFILL_PERIODS + frames) {
        err = -EINVAL;
        snprintf(msg, len, "the PCM chose a period of %lu and a buffer of %lu frames, not %u and %u",
                 got, buffer, frames, frames * (PREFILL_PERIODS + 1));
        goto out;
    }
    what = "the software parameters";
    if ((err = A.sw_current(pcm, sw)) < 0) goto done;
    /* We start the PCMs ourselves, both at once: never on the first write. */
    if ((err = A.sw_start_threshold(pcm, sw, buffer * 2)) < 0) goto done;
    if ((err = A.sw_avail_min(pcm, sw, frames)) < 0) goto done;
    /* Status timestamps on our clock (see where()); a PCM that cannot is
     * caught there, by its timestamps not being on it. */
    A.sw_tstamp_mode(pcm, sw, TSTAMP_ENABLE);
    A.sw_tstamp_type(pcm, sw, TSTAMP_TYPE_MONOTONIC);
    err = A.sw_params(pcm, sw);
done:
    if (err < 0) snprintf(msg, len, "%s: %s", what, A.strerror(err));
out:
    if (hw) A.hw_free(hw);
    if (sw) A.sw_free(sw);
    return err < 0 ? err : 0;
}

void da_alsa_free(da_alsa *a) {
    if (!a) return;
    da_alsa_stop(a);
    if (a->linked) A.unlink(a->cap);
    if (a->cap) A.pcm_close(a->cap);
    if (a->play) A.pcm_close(a->play);
    if (a->cap_status) A.status_free(a->cap_status);
    if (a->play_status) A.status_free(a->play_status);
    if (a->wake[0] >= 0) close(a->wake[0]);
    if (a->wake[1] >= 0) close(a->wake[1]);
    free(a->cap_raw);
    free(a->play_raw);
    free(a->in_block);
    free(a->out_block);
    free(a->in_ptrs);
    free(a->out_ptrs);
    free(a);
}

/* Open and configure one direction of PCM `name` for the stream; 0 or -errno
 * with the reason in msg. */
static int open_one(da_alsa *a, const char *name, int capture, snd_pcm_t **pcm, int *fmt,
                    uint64_t *buffer, char *msg, size_t len) {
    const char *way = capture ? "capture" : "playback";
    int err = A.pcm_open(pcm, name, capture ? PCM_CAPTURE : PCM_PLAYBACK, PCM_NONBLOCK);
    if (err < 0) {
        *pcm = NULL;
        snprintf(msg, len, "cannot open '%s' for %s: %s", name, way, A.strerror(err));
        return err;
    }
    char why[200] = "";
    uint32_t ch = capture ? a->in_ch : a->out_ch;
    if ((err = configure(*pcm, ch, a->rate, a->frames, fmt, buffer, why, sizeof why)) < 0)
        snprintf(msg, len, "%s on '%s' refused %s", way, name, why);
    return err;
}

int da_alsa_new(da_alsa **out, da_engine *e, const char *name, uint32_t in_ch, uint32_t out_ch,
                uint32_t rate, uint32_t frames, char *msg, size_t len) {
    *out = NULL;
    int err = -ENOMEM;
    snprintf(msg, len, "out of memory");
    da_alsa *a = calloc(1, sizeof *a);
    if (!a) return err;
    a->engine = e;
    a->in_ch = in_ch;
    a->out_ch = out_ch;
    a->rate = rate;
    a->frames = frames;
    a->wake[0] = a->wake[1] = -1;
    atomic_store(&a->cap_latency, -1);
    atomic_store(&a->play_latency, -1);
    if (pipe2(a->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        err = -errno;
        snprintf(msg, len, "cannot make the I/O thread's wake pipe: %s", strerror(errno));
        goto fail;
    }
    if (in_ch && (err = open_one(a, name, 1, &a->cap, &a->cap_fmt, &(uint64_t){0}, msg, len)) < 0)
        goto fail;
    if (out_ch &&
        (err = open_one(a, name, 0, &a->play, &a->play_fmt, &a->play_buffer, msg, len)) < 0)
        goto fail;
    err = -ENOMEM;
    snprintf(msg, len, "out of memory");
    if ((in_ch && A.status_malloc(&a->cap_status) < 0) ||
        (out_ch && A.status_malloc(&a->play_status) < 0))
        goto fail;
    if (in_ch && (!(a->cap_raw = calloc((size_t)frames * in_ch, 4)) ||
                  !(a->in_block = calloc((size_t)frames * in_ch, sizeof(float))) ||
                  !(a->in_ptrs = calloc(in_ch, sizeof *a->in_ptrs))))
        goto fail;
    if (out_ch && (!(a->play_raw = calloc((size_t)frames * out_ch, 4)) ||
                   !(a->out_block = calloc((size_t)frames * out_ch, sizeof(float))) ||
                   !(a->out_ptrs = calloc(out_ch, sizeof *a->out_ptrs))))
        goto fail;
    for (uint32_t c = 0; c < in_ch; c++) a->in_ptrs[c] = a->in_block + c;
    for (uint32_t c = 0; c < out_ch; c++) a->out_ptrs[c] = a->out_block + c;
    /* One start and one clock for both directions where the PCM allows it
     * (hardware); plugin PCMs answer ENOSYS and are started back to back. */
    if (a->cap && a->play) a->linked = A.link(a->cap, a->play) == 0;
    *out = a;
    return 0;
fail:
    da_alsa_free(a);
    return err;
}

/* (Re)start the PCMs from scratch: silence queued on playback, both started
 * as close together as we can. The lockstep distance is set here. */
static int prime(da_alsa *a) {
    int err;
    if (a->cap) A.drop(a->cap);
    if (a->play && !a->linked) A.drop(a->play);
    if (a->cap && (err = A.prepare(a->cap)) < 0) return err;
    if (a->play && !a->linked && (err = A.prepare(a->play)) < 0) return err;
    if (a->play) {
        /* The playback buffer is empty after prepare: this never blocks. */
        memset(a->play_raw, 0, (size_t)a->frames * a->out_ch * sample_bytes(a->play_fmt));
        for (int i = 0; i < PREFILL_PERIODS; i++) {
            snd_pcm_sframes_t n = A.writei(a->play, a->play_raw, a->frames);
            if (n < 0) return (int)n;
        }
    }
    if (a->cap && (err = A.start(a->cap)) < 0) return err;
    if (a->play && !(a->cap && a->linked) && (err = A.start(a->play)) < 0) return err;
    a->measured = 0;
    a->run_cycles = 0;
    if (atomic_load(&a->cap_latency) < 0) {
        /* Until the first measure: the period being read, the silence queued. */
        atomic_store(&a->cap_latency, a->cap ? a->frames + a->cap_outside : 0);
        atomic_store(&a->play_latency, a->play ? PREFILL_PERIODS * a->frames + a->play_outside : 0);
    }
    return 0;
}

/* Wait until pcm is ready for `events`: 0 ready (or worth retrying), 1 stop
 * asked, <0 an error. Bounded: a silent PCM is checked every POLL_MS. */
static int wait_for(da_alsa *a, snd_pcm_t *pcm) {
    int n = A.poll_count(pcm);
    if (n < 0) return n;
    if (n > MAX_FDS) n = MAX_FDS;
    n = A.poll_fds(pcm, a->pfds, (unsigned)n);
    if (n < 0) return n;
    a->pfds[n].fd = a->wake[0];
    a->pfds[n].events = POLLIN;
    a->pfds[n].revents = 0;
    int r = poll(a->pfds, (nfds_t)n + 1, POLL_MS);
    if (atomic_load(&a->stop)) return 1;
    if (r < 0) return errno == EINTR ? 0 : -errno;
    int state = A.state(pcm);
    if (state == STATE_DISCONNECTED) return -ENODEV;
    if (state == STATE_XRUN) return -EPIPE;
    if (r == 0) return ++a->silent_polls >= SILENT_POLLS ? -ENODEV : 0;
    a->silent_polls = 0;
    unsigned short revents = 0;
    A.poll_revents(pcm, a->pfds, (unsigned)n, &revents);
    if (revents & (POLLERR | POLLNVAL)) return -EIO;
    return 0;
}

/* Read or write one whole period; 0, 1 when stop was asked, or <0. */
static int transfer(da_alsa *a, snd_pcm_t *pcm, void *raw, uint32_t ch, int fmt, int capture) {
    uint32_t done = 0;
    size_t frame_bytes = (size_t)ch * sample_bytes(fmt);
    while (done < a->frames) {
        char *at = (char *)raw + done * frame_bytes;
        snd_pcm_sframes_t n =
            capture ? A.readi(pcm, at, a->frames - done) : A.writei(pcm, at, a->frames - done);
        if (n >= 0) {
            done += (uint32_t)n;
        } else if (n == -EAGAIN) {
            int w = wait_for(a, pcm);
            if (w) return w;
        } else {
            return (int)n;
        }
        if (atomic_load(&a->stop)) return 1;
    }
    return 0;
}

/* One PCM's status now: its delay, or (by_position) its ring fill from the
 * ring positions, and when the PCM took them, on our clock (or `now`). */
static int status_of(da_alsa *a, snd_pcm_t *pcm, snd_pcm_status_t *st, int capture, int64_t now,
                     snd_pcm_sframes_t *frames, int64_t *at) {
    int err = A.status(pcm, st);
    if (err < 0) return err;
    if (a->by_position) {
        snd_pcm_sframes_t avail = (snd_pcm_sframes_t)A.status_avail(st);
        *frames = capture ? avail : (snd_pcm_sframes_t)a->play_buffer - avail;
    } else {
        *frames = A.status_delay(st);
    }
    struct timespec ts;
    A.status_htstamp(st, &ts);
    int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    /* A timestamp off our clock (none, or not monotonic) is not used. */
    *at = (t > 0 && t <= now && now - t < 1000000000) ? t : now;
    return 0;
}

/* Where this cycle's frames are, just after the read, and when (`at`, the
 * capture PCM's status time, else playback's): capture's figure is how old
 * the first frame of the period just read is, playback's how long the first
 * frame written now waits to be played. Read from the PCM delays, or, for a
 * plugin whose ring positions follow its server's stream positions
 * (by_position, the pulse PCM), from the positions: its delays add the
 * server's latency estimates, which jitter and count a sink's latency that a
 * loop through its monitor never waits for. Plus what lies beyond the PCM
 * (a jack PCM's ports). */
static int where(da_alsa *a, int64_t now, int64_t *cap, int64_t *play, int64_t *at) {
    snd_pcm_sframes_t c = 0, p = 0;
    int64_t play_at = now;
    int err;
    *at = now;
    if (a->cap && (err = status_of(a, a->cap, a->cap_status, 1, now, &c, at)) < 0) return err;
    if (a->play && (err = status_of(a, a->play, a->play_status, 0, now, &p, &play_at)) < 0)
        return err;
    if (!a->cap) *at = play_at;
    if (a->by_position) {
        p -= a->play_ahead;
        if (p < 0) {
            c += p; /* the sum is what the positions fix: keep it whole */
            p = 0;
        }
    }
    *cap = a->cap ? (c > 0 ? c : 0) + a->frames + a->cap_outside : 0;
    *play = a->play ? (p > 0 ? p : 0) + a->play_outside : 0;
    return 0;
}

/* Every cycle: in lockstep the sum of the two figures stays put while the
 * parts jitter. A server that stalls the directions unevenly (a stopped
 * pulseaudio) shifts it without any xrun from the plugin: when it stays off
 * by more than half a period for SLIP_CYCLES cycles, the new distance is
 * measured and the block flagged as an xrun. In the first SETTLE_CYCLES of a
 * run the figures are still settling (the pulse PCM's first one is far off)
 * and a new measure is not a slip. Returns when the PCM took its figures. */
static int64_t track_latency(da_alsa *a, int64_t now) {
    int64_t cap, play, at;
    if (where(a, now, &cap, &play, &at) != 0) return now;
    int64_t sum = cap + play;
    a->run_cycles++;
    /* While a run settles (its first SETTLE_CYCLES), the latest figure is
     * the best one: the first can be taken before the server has caught up. */
    int64_t off = sum - a->measured_sum;
    if (off < 0) off = -off;
    if (a->measured && a->run_cycles > SETTLE_CYCLES) {
        if (off * 2 <= a->frames) a->off_cycles = 0;
        if (off * 2 <= a->frames || ++a->off_cycles < SLIP_CYCLES) return at;
        a->xrun = 1;
    } else if (a->measured && a->restarted && off * 2 > a->frames) {
        /* Settling after a glitch, and the distance moved by more than half
         * a period: what the blocks since the glitch said is no longer so.
         * Flagged, so that no block carries a figure the audio has left
         * (under load the pulse PCM's first cycles after a restart moved it,
         * unflagged). A stream's first cycles settle too; that
         * is said once for all (docs/hosts/alsa.md), not flagged. */
        a->xrun = 1;
    }
    atomic_store(&a->cap_latency, cap);
    atomic_store(&a->play_latency, play);
    a->measured_sum = sum;
    a->off_cycles = 0;
    a->measured = 1;
    return at;
}

static int recoverable(int err) { return err == -EPIPE || err == -ESTRPIPE || err == -EINTR; }

/* Output only: wait for room for one period in the playback buffer. */
static int await_room(da_alsa *a) {
    int err = 0;
    while (err == 0) {
        snd_pcm_sframes_t d = 0;
        err = A.delay(a->play, &d);
        if (err < 0 || d + (snd_pcm_sframes_t)a->frames <= (snd_pcm_sframes_t)a->play_buffer) break;
        err = wait_for(a, a->play);
    }
    return err;
}

/* Anchor the stream's timeline where the PCM says its figures held (`at`),
 * not at our wake-up, which comes later by however late we were woken.
 * After a restart the time the glitch took becomes whole lost periods and
 * the origin stays: timestamps keep to the block grid (docs/concepts.md,
 * "Lost cycles are flagged"), within half a period of what the PCM says.
 * Returns the whole periods lost. */
static uint32_t anchor(da_alsa *a, int64_t at, int glitched) {
    const int64_t origin = at - da_frames_to_ns(a->elapsed, a->rate);
    if (!glitched) {
        a->origin_ns = origin;
        return 0;
    }
    const int64_t gap = origin - a->origin_ns, period = da_frames_to_ns(a->frames, a->rate);
    const uint32_t lost = gap > period / 2 ? (uint32_t)((gap + period / 2) / period) : 0;
    a->elapsed += (int64_t)lost * a->frames;
    return lost;
}

/* One block: the engine's cycle on the period read, then the period written.
 * Frame-exact from the anchor: a block is F frames later than the last. */
static int run_block(da_alsa *a, int64_t now, uint32_t lost) {
    const uint32_t F = a->frames;
    da_cycle_time t = {0};
    t.callback_ns = a->origin_ns + da_frames_to_ns(a->elapsed, a->rate);
    t.wakeup_ns = now;
    t.deadline_anchor_ns = now;
    t.input_device_ns = t.callback_ns - da_frames_to_ns(atomic_load(&a->cap_latency), a->rate);
    t.output_device_ns = t.callback_ns + da_frames_to_ns(atomic_load(&a->play_latency), a->rate);
    t.lost_cycles = lost;
    if (a->cap) da_load(engine_format(a->cap_fmt), a->cap_raw, 0, 1, a->in_block, 1, (size_t)F * a->in_ch);
    da_engine_process(a->engine, a->in_ptrs, a->in_ch, a->out_ptrs, a->out_ch, F, &t, a->xrun);
    a->xrun = 0;
    a->elapsed += F;
    if (!a->play) return 0;
    da_store(engine_format(a->play_fmt), a->play_raw, 0, 1, a->out_block, 1, (size_t)F * a->out_ch);
    const int err = transfer(a, a->play, a->play_raw, a->out_ch, a->play_fmt, 0);
    if (err == 0) atomic_fetch_add(&a->written, F);
    return err;
}

/* A glitch: restart both directions together so the lockstep distance is
 * set again, re-measured and reported. 0 when the PCMs run again. */
static int restart_after(da_alsa *a, int err) {
    snd_pcm_t *which = a->cap ? a->cap : a->play;
    int r = A.recover(which, err, 1);
    if (r == 0) r = prime(a);
    if (r == 0) {
        a->restarted = 1;
        a->xrun = 1;
    }
    return r;
}

/* The I/O thread's cycle: read a period, run the engine, write a period.
 * It never allocates, never takes a lock Python can hold, never calls into
 * Python, and never waits past POLL_MS without checking stop. */
static void *io_thread(void *arg) {
    da_alsa *a = arg;
    int anchored = 0, glitched = 0;
    while (!atomic_load(&a->stop)) {
        int err = 0;
        uint32_t lost = 0;
        if (a->cap) err = transfer(a, a->cap, a->cap_raw, a->in_ch, a->cap_fmt, 1);
        else err = await_room(a);
        if (err == 0) {
            const int64_t now = da_now_ns();
            const int64_t at = track_latency(a, now);
            if (!anchored) lost = anchor(a, at, glitched);
            anchored = 1;
            err = run_block(a, now, lost);
        }
        if (err == 1 || atomic_load(&a->stop)) break;
        if (err == 0) continue;
        if (recoverable(err) && (err = restart_after(a, err)) == 0) {
            anchored = 0; /* time went on without frames: measure how much */
            glitched = 1;
            continue;
        }
        da_engine_fail(a->engine, DA_EV_DEVICE_LOST, err);
        break;
    }
    return NULL;
}

int da_alsa_start(da_alsa *a, char *msg, size_t len) {
    if (a->running) return 0;
    char drain[64];
    while (read(a->wake[0], drain, sizeof drain) > 0) {
    }
    atomic_store(&a->stop, 0);
    a->restarted = 0;
    int err = prime(a);
    if (err < 0) {
        snprintf(msg, len, "cannot start the PCM: %s", A.strerror(err));
        return err;
    }
    a->xrun = 0;
    a->silent_polls = 0;
    int rt = 0;
    if ((err = da_thread_start(&a->thread, io_thread, a, 1, &rt)) != 0) {
        snprintf(msg, len, "cannot start the I/O thread: %s", strerror(err));
        return -err;
    }
    da_engine_set_realtime(a->engine, rt);
    a->running = 1;
    return 0;
}

void da_alsa_stop(da_alsa *a) {
    if (!a->running) return;
    if (a->play && a->replays_on_drop) {
        /* The engine is stopped: the thread writes silence. Let it write a
         * whole buffer of it and a period more, which it can only do once
         * the PCM has played everything before: a plugin that repeats what
         * it last played after snd_pcm_drop (the jack PCM of
         * libasound2-plugins 1.2.7 does, until the stream closes: the block
         * stop() had just played, again and again) then repeats silence.
         * Bounded, for a PCM that no longer plays. A pause on such a PCM
         * thus lets its buffer play (a few periods) before it halts. */
        const uint64_t until = atomic_load(&a->written) + a->play_buffer + a->frames;
        const int64_t period = da_frames_to_ns(a->frames, a->rate);
        const int64_t deadline =
            da_now_ns() + 2 * da_frames_to_ns(a->play_buffer + 2 * a->frames, a->rate) + 200000000;
        while (atomic_load(&a->written) < until && da_now_ns() < deadline) da_sleep_ns(period / 4);
    }
    atomic_store(&a->stop, 1);
    /* Wakes the thread's poll; it checks stop at least every POLL_MS anyway. */
    ssize_t ignored = write(a->wake[1], "x", 1);
    (void)ignored;
    da_thread_join(a->thread);
    a->running = 0;
    if (a->cap) A.drop(a->cap);
    if (a->play && !(a->cap && a->linked)) A.drop(a->play);
}

void da_alsa_latency(da_alsa *a, int64_t *capture, int64_t *playback) {
    *capture = atomic_load(&a->cap_latency);
    *playback = atomic_load(&a->play_latency);
}

int da_alsa_linked(da_alsa *a) { return a->linked; }

void da_alsa_set_model(da_alsa *a, int by_position, int64_t play_ahead, int64_t capture_outside,
                       int64_t playback_outside, int replays_on_drop) {
    a->replays_on_drop = replays_on_drop;
    a->by_position = by_position;
    a->play_ahead = play_ahead;
    a->cap_outside = capture_outside;
    a->play_outside = playback_outside;
}
