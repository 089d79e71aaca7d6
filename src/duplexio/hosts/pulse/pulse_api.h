/* The PulseAudio host's C side (pulse.c), in cdef-parsable C: see engine_api.h.
 * Functions that can fail return 0 or a negative errno code (PulseAudio's
 * own codes are translated) and write why into (msg, len); see engine.h. */

typedef struct da_pulse da_pulse;
typedef struct da_pulse_watch da_pulse_watch;

DA_EXPORT int da_pulse_load(char *msg, size_t len);
/* Server, sinks and sources as tab-separated lines (see pulse.c) into buf:
 * 0, -ENOSPC when buf is short, or another negative errno. */
DA_EXPORT int da_pulse_list(const char *server, int timeout_ms, char *buf, size_t len, char *msg,
                  size_t msg_len);
/* A connection subscribed to the server's sink, source and server notices. */
DA_EXPORT int da_pulse_watch_new(da_pulse_watch **out, const char *server, int timeout_ms, char *msg,
                       size_t len);
/* 1: a notice came; 0: none within timeout_ms; -ECONNRESET: the server went away. */
DA_EXPORT int da_pulse_watch_wait(da_pulse_watch *w, int timeout_ms, char *msg, size_t len);
DA_EXPORT void da_pulse_watch_free(da_pulse_watch *w);
/* sink/source NULL: the server's default; follow_default: report moves. */
DA_EXPORT int da_pulse_new(da_pulse **out, da_engine *e, const char *server, const char *sink,
                 const char *source, uint32_t in_ch, uint32_t out_ch, uint32_t rate, uint32_t frames,
                 int follow_default, char *msg, size_t len);
DA_EXPORT int da_pulse_start(da_pulse *p, char *msg, size_t len);
/* The sink or source the server last moved a default-following stream to,
 * into buf: 1, or 0 when it was never moved. */
DA_EXPORT int da_pulse_moved_to(da_pulse *p, char *buf, size_t len);
DA_EXPORT void da_pulse_stop(da_pulse *p);
DA_EXPORT void da_pulse_free(da_pulse *p);
/* Frames: capture to first callback; round trip (-1 until the server's timing is read). */
DA_EXPORT void da_pulse_latency(da_pulse *p, int64_t *capture, int64_t *round_trip, int64_t *playback);
