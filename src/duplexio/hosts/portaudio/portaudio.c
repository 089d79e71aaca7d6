/* The PortAudio host's C side: libportaudio loaded at run time (the
 * system's or the copy in sounddevice's wheels), one PortAudio stream per
 * duplexio stream.
 *
 * PortAudio's callback thread is the device thread: the callback hands
 * each block straight to da_engine_process, planar float32 in and out
 * (paNonInterleaved), so no Python and no copy runs there. A duplex stream
 * is one PortAudio stream with both directions, so input and output arrive
 * in one callback; whether they are on one clock depends on the host API
 * (the Python side decides which devices may run duplex).
 *
 * Timestamps: the cycle's start is the first callback's wake-up plus the
 * frames run since, so it advances by exactly one block per callback (and
 * by the lost blocks when PortAudio's own stream time shows a whole block
 * missing beside an xrun flag). The device instants are that start minus
 * the input latency and plus the output latency PortAudio reports for the
 * stream (Pa_GetStreamInfo), which is therefore also stream.latency.
 *
 * A watchdog thread per running stream notices a stream PortAudio ended on
 * its own (ALSA error, JACK server gone: PortAudio's JACK host API just
 * stops calling back) and fails the engine with DA_EV_DEVICE_LOST.
 *
 * No PortAudio header is needed: the types and constants used are
 * PortAudio's stable C ABI (v19), declared here. Portable C only: threads,
 * the clock and loading come from the platform layer. */
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "portaudio_api.h"

/* ---- PortAudio's ABI ---------------------------------------------------------- */

typedef int PaError;
typedef int PaDeviceIndex;
typedef int PaHostApiIndex;
typedef double PaTime;
typedef unsigned long PaSampleFormat;
typedef unsigned long PaStreamFlags;
typedef unsigned long PaStreamCallbackFlags;
typedef void PaStream;

typedef struct {
    int structVersion;
    const char *name;
    PaHostApiIndex hostApi;
    int maxInputChannels;
    int maxOutputChannels;
    PaTime defaultLowInputLatency;
    PaTime defaultLowOutputLatency;
    PaTime defaultHighInputLatency;
    PaTime defaultHighOutputLatency;
    double defaultSampleRate;
} PaDeviceInfo;

typedef struct {
    int structVersion;
    int type;
    const char *name;
    int deviceCount;
    PaDeviceIndex defaultInputDevice;
    PaDeviceIndex defaultOutputDevice;
} PaHostApiInfo;

typedef struct {
    PaDeviceIndex device;
    int channelCount;
    PaSampleFormat sampleFormat;
    PaTime suggestedLatency;
    void *hostApiSpecificStreamInfo;
} PaStreamParameters;

typedef struct {
    PaTime inputBufferAdcTime;
    PaTime currentTime;
    PaTime outputBufferDacTime;
} PaStreamCallbackTimeInfo;

typedef struct {
    int structVersion;
    PaTime inputLatency;
    PaTime outputLatency;
    double sampleRate;
} PaStreamInfo;

typedef struct {
    int hostApiType;
    long errorCode;
    const char *errorText;
} PaHostErrorInfo;

typedef int PaStreamCallback(const void *input, void *output, unsigned long frames,
                             const PaStreamCallbackTimeInfo *time, PaStreamCallbackFlags flags,
                             void *user);
typedef void PaStreamFinishedCallback(void *user);

#define paFloat32 ((PaSampleFormat)0x00000001)
#define paNonInterleaved ((PaSampleFormat)0x80000000)
#define paClipOff ((PaStreamFlags)0x00000001)
#define paDitherOff ((PaStreamFlags)0x00000002)
#define paFramesPerBufferUnspecified 0UL
#define paFormatIsSupported 0
#define paNoDevice (-1)
#define paInputUnderflow ((PaStreamCallbackFlags)0x1)
#define paInputOverflow ((PaStreamCallbackFlags)0x2)
#define paOutputUnderflow ((PaStreamCallbackFlags)0x4)
#define paOutputOverflow ((PaStreamCallbackFlags)0x8)
#define paContinue 0
/* PaErrorCode values that mean something to the caller. */
#define paNotInitialized (-10000)
#define paUnanticipatedHostError (-9999)
#define paInvalidChannelCount (-9998)
#define paInvalidSampleRate (-9997)
#define paInvalidDevice (-9996)
#define paInvalidFlag (-9995)
#define paSampleFormatNotSupported (-9994)
#define paBadIODeviceCombination (-9993)
#define paInsufficientMemory (-9992)
#define paBufferTooBig (-9991)
#define paBufferTooSmall (-9990)
#define paTimedOut (-9987)
#define paDeviceUnavailable (-9985)

static struct {
    PaError (*Initialize)(void);
    PaError (*Terminate)(void);
    const char *(*GetErrorText)(PaError);
    const char *(*GetVersionText)(void);
    const PaHostErrorInfo *(*GetLastHostErrorInfo)(void);
    PaDeviceIndex (*GetDeviceCount)(void);
    const PaDeviceInfo *(*GetDeviceInfo)(PaDeviceIndex);
    const PaHostApiInfo *(*GetHostApiInfo)(PaHostApiIndex);
    PaError (*IsFormatSupported)(const PaStreamParameters *, const PaStreamParameters *, double);
    PaError (*OpenStream)(PaStream **, const PaStreamParameters *, const PaStreamParameters *,
                          double, unsigned long, PaStreamFlags, PaStreamCallback *, void *);
    PaError (*StartStream)(PaStream *);
    PaError (*AbortStream)(PaStream *);
    PaError (*CloseStream)(PaStream *);
    PaError (*IsStreamActive)(PaStream *);
    const PaStreamInfo *(*GetStreamInfo)(PaStream *);
} P;

static const da_symbol SYMBOLS[] = {
    {&P.Initialize, "Pa_Initialize"},
    {&P.Terminate, "Pa_Terminate"},
    {&P.GetErrorText, "Pa_GetErrorText"},
    {&P.GetVersionText, "Pa_GetVersionText"},
    {&P.GetLastHostErrorInfo, "Pa_GetLastHostErrorInfo"},
    {&P.GetDeviceCount, "Pa_GetDeviceCount"},
    {&P.GetDeviceInfo, "Pa_GetDeviceInfo"},
    {&P.GetHostApiInfo, "Pa_GetHostApiInfo"},
    {&P.IsFormatSupported, "Pa_IsFormatSupported"},
    {&P.OpenStream, "Pa_OpenStream"},
    {&P.StartStream, "Pa_StartStream"},
    {&P.AbortStream, "Pa_AbortStream"},
    {&P.CloseStream, "Pa_CloseStream"},
    {&P.IsStreamActive, "Pa_IsStreamActive"},
    {&P.GetStreamInfo, "Pa_GetStreamInfo"},
};

static void *libportaudio;

int da_pa_load(const char *path, char *msg, size_t len) {
    return da_load_library(path, SYMBOLS, sizeof SYMBOLS / sizeof SYMBOLS[0], NULL,
                           &libportaudio, msg, len);
}

const char *da_pa_version(void) { return libportaudio ? P.GetVersionText() : ""; }

/* A PaError as a negative errno, with PortAudio's text (and the host API's
 * own, for an error PortAudio passes through) in msg. */
static int pa_fail(PaError err, const char *what, char *msg, size_t len) {
    const char *text = P.GetErrorText(err);
    if (err == paUnanticipatedHostError) {
        const PaHostErrorInfo *host = P.GetLastHostErrorInfo();
        snprintf(msg, len, "%s: %s (host error %ld: %s)", what, text, host ? host->errorCode : 0L,
                 host && host->errorText ? host->errorText : "");
    } else {
        snprintf(msg, len, "%s: %s", what, text);
    }
    switch (err) {
    case paInvalidDevice:
    case paDeviceUnavailable: return -ENODEV;
    case paInvalidChannelCount:
    case paInvalidSampleRate:
    case paInvalidFlag:
    case paSampleFormatNotSupported:
    case paBadIODeviceCombination:
    case paBufferTooBig:
    case paBufferTooSmall: return -EINVAL;
    case paInsufficientMemory: return -ENOMEM;
    case paTimedOut: return -ETIMEDOUT;
    default: return -EIO;
    }
}

int da_pa_initialize(char *msg, size_t len) {
    PaError err = P.Initialize();
    return err ? pa_fail(err, "Pa_Initialize", msg, len) : 0;
}

void da_pa_terminate(void) { P.Terminate(); }

/* Append text to buf at *at, then `end`; in a name (raw = 0) tabs and
 * newlines become spaces, since they split the fields and the lines. */
static void put_field(char *buf, size_t len, size_t *at, const char *text, char end, int raw) {
    for (const char *c = text ? text : ""; *c; c++) {
        if (*at + 1 < len) buf[*at] = (!raw && (*c == '\t' || *c == '\n')) ? ' ' : *c;
        (*at)++;
    }
    if (*at + 1 < len) buf[*at] = end;
    (*at)++;
}

int da_pa_devices(char *buf, size_t len, char *msg, size_t msg_len) {
    PaDeviceIndex count = P.GetDeviceCount();
    if (count < 0) return pa_fail(count, "Pa_GetDeviceCount", msg, msg_len);
    size_t at = 0;
    for (PaDeviceIndex i = 0; i < count; i++) {
        const PaDeviceInfo *d = P.GetDeviceInfo(i);
        const PaHostApiInfo *h = d ? P.GetHostApiInfo(d->hostApi) : NULL;
        if (!d || !h) continue;
        char numbers[256];
        snprintf(numbers, sizeof numbers, "%d", i);
        put_field(buf, len, &at, numbers, '\t', 1);
        put_field(buf, len, &at, h->name, '\t', 0);
        snprintf(numbers, sizeof numbers, "%d", h->type);
        put_field(buf, len, &at, numbers, '\t', 1);
        put_field(buf, len, &at, d->name, '\t', 0);
        snprintf(numbers, sizeof numbers, "%d\t%d\t%.17g\t%.17g\t%.17g\t%d\t%d", d->maxInputChannels,
                 d->maxOutputChannels, d->defaultSampleRate, d->defaultLowInputLatency,
                 d->defaultLowOutputLatency, h->defaultInputDevice == i,
                 h->defaultOutputDevice == i);
        put_field(buf, len, &at, numbers, '\n', 1);
    }
    if (at + 1 > len) return -ENOSPC;
    buf[at] = '\0';
    return (int)count;
}

static void set_params(PaStreamParameters *p, int device, int channels, double latency) {
    memset(p, 0, sizeof *p);
    p->device = device;
    p->channelCount = channels;
    p->sampleFormat = paFloat32 | paNonInterleaved;
    p->suggestedLatency = latency;
}

int da_pa_supports(int device, int in_channels, int out_channels, double rate, char *msg,
                   size_t len) {
    PaStreamParameters in, out;
    set_params(&in, device, in_channels, 0.0);
    set_params(&out, device, out_channels, 0.0);
    PaError err = P.IsFormatSupported(in_channels ? &in : NULL, out_channels ? &out : NULL, rate);
    return err == paFormatIsSupported ? 0 : pa_fail(err, "Pa_IsFormatSupported", msg, len);
}

/* ---- a stream ----------------------------------------------------------------- */

struct da_pa {
    da_engine *e;
    PaStream *stream;
    uint32_t in_ch, out_ch, rate, frames;
    uint32_t in_latency, out_latency; /* frames, from Pa_GetStreamInfo */
    /* device thread only */
    int started;               /* a first callback set the origin */
    int64_t origin_ns;         /* the first callback's wake-up */
    uint64_t position;         /* frames run since, lost ones included */
    double last_time;          /* the last callback's PortAudio stream time */
    int exact_times;           /* PortAudio's time info is exact here (JACK) */
    int64_t span;              /* its capture-to-playback span, frames (-1: not yet) */
    int rt_checked;
    const float **silence;     /* in_ch pointers to a silent block */
    float **discard;           /* where an input-only stream's engine writes */
    float *scratch;            /* the block both point at */
    /* watchdog */
    da_thread *watchdog;
    da_sem *watchdog_stop;
    atomic_int running;
};

/* PortAudio's callback thread, once per block. Never allocates, never takes
 * a lock Python can hold, never calls into Python, never blocks past the
 * engine's deadline. */
static int on_callback(const void *input, void *output, unsigned long frames,
                       const PaStreamCallbackTimeInfo *ti, PaStreamCallbackFlags flags,
                       void *user) {
    da_pa *p = user;
    const int64_t now = da_now_ns();
    if (!p->rt_checked) {
        da_engine_set_realtime(p->e, da_thread_is_realtime());
        p->rt_checked = 1;
    }
    int glitch =
        (flags & (paInputUnderflow | paInputOverflow | paOutputUnderflow | paOutputOverflow)) != 0;
    uint32_t lost = 0;
    if (!p->started) {
        p->started = 1;
        p->origin_ns = now;
    } else if (ti && ti->currentTime > p->last_time) {
        /* PortAudio's stream time moved on by whole blocks more than the
         * block just run: those blocks were lost. Its clock is the host
         * API's (JACK's frame time, the monotonic clock for ALSA), so
         * anything short of a whole missing block is jitter, not loss. */
        const double gap = (ti->currentTime - p->last_time) * p->rate - (double)p->frames;
        /* On JACK the stream time is the server's frame counter, read once a
         * cycle: half a block or more beyond one block is a cycle this
         * client did not run, whether or not PortAudio says so (its xrun
         * flag comes from JACK's xrun callback, on another thread: a block
         * or more late, or not at all; seen, an impulse lost unflagged).
         * Elsewhere (ALSA's monotonic clock, callbacks in bursts) only a
         * flagged block is read for loss. */
        if (p->exact_times && gap >= (double)p->frames / 2) glitch = 1;
        if (glitch && gap >= (double)p->frames)
            lost = (uint32_t)floor(gap / (double)p->frames + 0.25);
    }
    if (ti) p->last_time = ti->currentTime;
    if (p->exact_times && ti && p->in_ch && p->out_ch) {
        /* JACK's times are its ports' latencies around the cycle: exact, so
         * a change is the graph's latency changing under the stream (a new
         * buffer size, which PortAudio absorbs without telling). The
         * reported round trip would be wrong from here on: end the stream. */
        int64_t span = llround((ti->outputBufferDacTime - ti->inputBufferAdcTime) * p->rate);
        if (p->span < 0) {
            p->span = span;
        } else if (span != p->span && da_engine_state(p->e) != DA_STATE_FAILED) {
            da_engine_fail(p->e, DA_EV_LATENCY_CHANGED, span - p->span);
        }
    }
    p->position += (uint64_t)lost * p->frames;
    da_cycle_time t = {0};
    t.callback_ns = p->origin_ns + da_frames_to_ns((int64_t)p->position, p->rate);
    t.wakeup_ns = now;
    t.deadline_anchor_ns = now;
    t.input_device_ns = t.callback_ns - da_frames_to_ns(p->in_latency, p->rate);
    t.output_device_ns = t.callback_ns + da_frames_to_ns(p->out_latency, p->rate);
    t.lost_cycles = lost;
    /* PortAudio may pass no input for a cycle it could not capture (it
     * flags it): the engine gets silence, never a NULL channel. */
    const float *const *in = (const float *const *)p->silence;
    if (p->in_ch && input) in = (const float *const *)input;
    float *const *out = p->out_ch ? (float *const *)output : p->discard;
    da_engine_process(p->e, in, 1, out, 1, (uint32_t)frames, &t, glitch || lost);
    p->position += frames;
    return paContinue;
}

/* Polls the stream while it should run: PortAudio ending it on its own
 * (an ALSA error, the JACK server gone) is the device lost. */
static void *watchdog(void *arg) {
    da_pa *p = arg;
    while (da_sem_wait_until(p->watchdog_stop, da_now_ns() + 50000000LL) != 0) {
        if (!atomic_load(&p->running)) break;
        if (P.IsStreamActive(p->stream) != 1) {
            da_engine_fail(p->e, DA_EV_DEVICE_LOST, 0);
            break;
        }
    }
    return NULL;
}

int da_pa_open(da_pa **out, da_engine *e, int device, uint32_t in_channels,
               uint32_t out_channels, uint32_t rate, uint32_t frames, double suggested_latency,
               int exact_times, char *msg, size_t len) {
    *out = NULL;
    if (!e || (frames && frames != da_engine_frames(e)) || (!in_channels && !out_channels) ||
        in_channels > 64) {
        snprintf(msg, len, "impossible stream parameters (%u in, %u out, %u frames)", in_channels,
                 out_channels, frames);
        return -EINVAL;
    }
    da_pa *p = calloc(1, sizeof *p);
    if (!p || !(p->watchdog_stop = da_sem_new())) {
        free(p);
        snprintf(msg, len, "out of memory");
        return -ENOMEM;
    }
    p->e = e;
    p->in_ch = in_channels;
    p->out_ch = out_channels;
    p->rate = rate;
    p->exact_times = exact_times;
    p->span = -1;
    p->frames = da_engine_frames(e);
    /* One zeroed block, never written: the input of a cycle PortAudio could
     * not capture. (An input-only stream has no output channels, so the
     * engine writes nothing through `discard`; it only must not be NULL.) */
    p->scratch = calloc(p->frames, sizeof(float));
    p->silence = calloc(in_channels + 1, sizeof(float *));
    p->discard = calloc(1, sizeof(float *));
    if (!p->scratch || !p->silence || !p->discard) {
        da_pa_free(p);
        snprintf(msg, len, "out of memory");
        return -ENOMEM;
    }
    for (uint32_t c = 0; c < in_channels; c++) p->silence[c] = p->scratch;
    p->discard[0] = p->scratch;
    PaStreamParameters in, outp;
    set_params(&in, device, (int)in_channels, suggested_latency);
    set_params(&outp, device, (int)out_channels, suggested_latency);
    /* No clipping or dithering: the engine hands float32 as the user made it. */
    PaError err = P.OpenStream(&p->stream, in_channels ? &in : NULL, out_channels ? &outp : NULL,
                               (double)rate, frames ? frames : paFramesPerBufferUnspecified,
                               paClipOff | paDitherOff, on_callback, p);
    if (err) {
        p->stream = NULL;
        da_pa_free(p);
        return pa_fail(err, "Pa_OpenStream", msg, len);
    }
    const PaStreamInfo *info = P.GetStreamInfo(p->stream);
    if (info) {
        p->in_latency = in_channels ? (uint32_t)lround(info->inputLatency * rate) : 0;
        p->out_latency = out_channels ? (uint32_t)lround(info->outputLatency * rate) : 0;
    }
    *out = p;
    return 0;
}

int da_pa_start(da_pa *p, char *msg, size_t len) {
    if (atomic_load(&p->running)) return 0;
    p->started = 0;
    p->position = 0;
    p->span = -1;
    p->rt_checked = 0;
    PaError err = P.StartStream(p->stream);
    if (err) return pa_fail(err, "Pa_StartStream", msg, len);
    while (da_sem_trywait(p->watchdog_stop) == 0) {
    }
    atomic_store(&p->running, 1);
    int realtime;
    int terr = da_thread_start(&p->watchdog, watchdog, p, 0, &realtime);
    if (terr) {
        atomic_store(&p->running, 0);
        P.AbortStream(p->stream);
        snprintf(msg, len, "cannot start the stream's watchdog thread: %s", strerror(terr));
        return -terr;
    }
    return 0;
}

void da_pa_stop(da_pa *p) {
    if (!atomic_exchange(&p->running, 0)) return;
    da_sem_post(p->watchdog_stop);
    da_thread_join(p->watchdog);
    p->watchdog = NULL;
    /* Abort, not stop: the engine is already stopped, so nothing is left to
     * drain. And only a stream that still runs: PortAudio's JACK host API
     * waits up to ten minutes for a callback to confirm the stop, which
     * never comes once the server is gone (PortAudio then marks it inactive). */
    if (P.IsStreamActive(p->stream) == 1) P.AbortStream(p->stream);
}

void da_pa_latency(da_pa *p, uint32_t *input, uint32_t *output) {
    *input = p->in_latency;
    *output = p->out_latency;
}

void da_pa_free(da_pa *p) {
    if (!p) return;
    da_pa_stop(p);
    if (p->stream) P.CloseStream(p->stream);
    da_sem_free(p->watchdog_stop);
    free(p->scratch);
    free((void *)p->silence);
    free(p->discard);
    free(p);
}

/* Closing can block inside PortAudio: its JACK host API waits ten minutes
 * for a server that died to confirm the stream's removal. So the close is
 * bounded (da_run_within); one that does not return is abandoned. */
static void free_void(void *p) { da_pa_free(p); }

int da_pa_close_within(da_pa *p, int timeout_ms, char *msg, size_t len) {
    if (da_run_within(free_void, p, timeout_ms) == 0) return 0;
    snprintf(msg, len, "PortAudio did not return from closing the stream within %d ms",
             timeout_ms);
    return -ETIMEDOUT;
}
