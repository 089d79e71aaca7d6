/* The PulseAudio host's C side (pulse.c), in cdef-parsable C: see engine_api.h. */

typedef struct da_pulse da_pulse;

int da_pulse_load(void);
const char *da_pulse_load_error(void);
/* Server, sinks and sources as tab-separated lines (see pulse.c); 0 or an error. */
int da_pulse_list(const char *server, char *buf, size_t len, int timeout_ms);
/* sink/source NULL: the server's default; follow_default: report moves. */
da_pulse *da_pulse_new(da_engine *e, const char *server, const char *sink, const char *source,
                       uint32_t in_ch, uint32_t out_ch, uint32_t rate, uint32_t frames,
                       int follow_default);
int da_pulse_start(da_pulse *p, char *msg, size_t len);
void da_pulse_stop(da_pulse *p);
void da_pulse_free(da_pulse *p);
/* Frames: capture to first callback; round trip (-1 until the server's timing is read). */
void da_pulse_latency(da_pulse *p, int64_t *capture, int64_t *round_trip);
