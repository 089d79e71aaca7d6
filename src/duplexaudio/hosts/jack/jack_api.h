/* The JACK host's C side (jack.c), in cdef-parsable C: see engine_api.h. */

/* The JACK host: libjack is loaded on first use; one client per stream. */
typedef struct da_jack da_jack;

int da_jack_load(void);
const char *da_jack_load_error(void);
const char *da_jack_last_message(void);
da_jack *da_jack_open(const char *client_name, const char *server, int *status);
void da_jack_close(da_jack *j);
uint32_t da_jack_buffer_size(da_jack *j);
uint32_t da_jack_sample_rate(da_jack *j);
const char *da_jack_client_name(da_jack *j);
int da_jack_ports(da_jack *j, const char *pattern, unsigned long flags, char *buf, size_t len);
int da_jack_bind(da_jack *j, da_engine *e, uint32_t n_in, uint32_t n_out);
const char *da_jack_port_name(da_jack *j, int output, uint32_t index);
int da_jack_connect(da_jack *j, const char *source, const char *destination);
int da_jack_activate(da_jack *j);
int da_jack_deactivate(da_jack *j);
/* Frames: capture to cycle start, cycle start to playback (see jack.c). */
void da_jack_latency(da_jack *j, uint32_t *capture, uint32_t *playback);
void da_jack_set_graph_loop(da_jack *j, int graph_loop);
/* The latency range maximum of any port on the server, by full name: the
 * playback latency (playback: 1) or the capture latency. 0 or -ENOENT. */
int da_jack_named_port_latency(da_jack *j, const char *port, int playback, uint32_t *frames);
int da_jack_lost(da_jack *j);
/* Close on a helper thread, waiting at most timeout_ms: 0, or -ETIMEDOUT
 * when libjack did not return (the client is abandoned, still bound to its
 * engine, which must then stay alive). */
int da_jack_close_within(da_jack *j, int timeout_ms);
