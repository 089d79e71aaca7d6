/* The PortAudio host's C side (portaudio.c), in cdef-parsable C: see engine_api.h.
 * Functions that can fail return 0 (or a count) or a negative errno code
 * and write why into (msg, len); see engine.h. */

/* One PortAudio stream bound to an engine. */
typedef struct da_pa da_pa;

/* Load libportaudio from `path` (a soname or a file) once per process. */
DA_EXPORT int da_pa_load(const char *path, char *msg, size_t len);
/* Pa_Initialize / Pa_Terminate (PortAudio counts them): the device list is
 * PortAudio's as of the last initialisation. */
DA_EXPORT int da_pa_initialize(char *msg, size_t len);
DA_EXPORT void da_pa_terminate(void);
/* PortAudio's version text ("" before loading). */
DA_EXPORT const char *da_pa_version(void);
/* Every device, one per line, fields split by tabs: index, host API name,
 * host API type id, device name, max input channels, max output channels,
 * default rate, default low input latency (s), default low output latency
 * (s), default input of its host API (0/1), default output (0/1). The
 * count, or -ENOSPC when buf is short. */
DA_EXPORT int da_pa_devices(char *buf, size_t len, char *msg, size_t msg_len);
/* Whether `device` takes these channels (0: none) at `rate` in float32:
 * 0, or a negative errno with PortAudio's reason. */
DA_EXPORT int da_pa_supports(int device, int in_channels, int out_channels, double rate, char *msg,
                   size_t len);
/* Open a stream of `frames` per callback (0: the host API's own size,
 * for JACK: the server's) on `device`, bound to `e`. exact_times: the
 * host API's callback times are exact (JACK), so a change in the span
 * between capture and playback times ends the stream (DA_EV_LATENCY_CHANGED). */
DA_EXPORT int da_pa_open(da_pa **out, da_engine *e, int device, uint32_t in_channels,
               uint32_t out_channels, uint32_t rate, uint32_t frames, double suggested_latency,
               int exact_times, char *msg, size_t len);
DA_EXPORT int da_pa_start(da_pa *p, char *msg, size_t len);
DA_EXPORT void da_pa_stop(da_pa *p);
/* Frames: capture to callback, callback to playback (Pa_GetStreamInfo). */
DA_EXPORT void da_pa_latency(da_pa *p, uint32_t *input, uint32_t *output);
DA_EXPORT void da_pa_free(da_pa *p);
/* da_pa_free on a helper thread, waiting timeout_ms at most: 0, or
 * -ETIMEDOUT when PortAudio did not return (the stream is abandoned, still
 * bound to its engine, which must then stay alive, and PortAudio must not
 * be terminated under it). */
DA_EXPORT int da_pa_close_within(da_pa *p, int timeout_ms, char *msg, size_t len);

/* Host API type ids (PaHostApiTypeId). */
#define DA_PA_COREAUDIO 5
#define DA_PA_ASIO 3
#define DA_PA_ALSA 8
#define DA_PA_JACK 12
#define DA_PA_WASAPI 13
