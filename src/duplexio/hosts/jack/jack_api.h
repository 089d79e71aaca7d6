/* The JACK host's C side (jack.c), in cdef-parsable C: see engine_api.h.
 * Functions that can fail return 0 (or a count) or a negative errno code
 * and write why into (msg, len); see engine.h. */

/* The JACK host: libjack is loaded on first use; one client per stream. */
typedef struct da_jack da_jack;

DA_EXPORT int da_jack_load(char *msg, size_t len);
/* A client on `server` (NULL: libjack's default), never starting a server. */
DA_EXPORT int da_jack_open(da_jack **out, const char *client_name, const char *server, char *msg,
                 size_t len);
DA_EXPORT uint32_t da_jack_buffer_size(da_jack *j);
DA_EXPORT uint32_t da_jack_sample_rate(da_jack *j);
DA_EXPORT const char *da_jack_client_name(da_jack *j);
/* Port names, newline-joined into buf: the count, or -ENOSPC when buf is short. */
DA_EXPORT int da_jack_ports(da_jack *j, const char *pattern, unsigned long flags, char *buf, size_t len,
                  char *msg, size_t msg_len);
DA_EXPORT int da_jack_bind(da_jack *j, da_engine *e, uint32_t n_in, uint32_t n_out, char *msg, size_t len);
/* The full name of the stream's port `index` (output: 1), NULL beyond them. */
DA_EXPORT const char *da_jack_port_name(da_jack *j, int output, uint32_t index);
DA_EXPORT int da_jack_connect(da_jack *j, const char *source, const char *destination, char *msg,
                    size_t len);
DA_EXPORT int da_jack_activate(da_jack *j, char *msg, size_t len);
/* Frames: capture to cycle start, cycle start to playback (see jack.c). */
DA_EXPORT void da_jack_latency(da_jack *j, uint32_t *capture, uint32_t *playback);
DA_EXPORT void da_jack_set_graph_loop(da_jack *j, int graph_loop);
/* The latency range maximum of any port on the server, by full name: the
 * playback latency (playback: 1) or the capture latency. 0 or -ENOENT. */
DA_EXPORT int da_jack_named_port_latency(da_jack *j, const char *port, int playback, uint32_t *frames,
                               char *msg, size_t len);
/* Make an open client a watcher: told of ports registered and gone and of
 * the server going away (activates it). */
DA_EXPORT int da_jack_watch(da_jack *j, char *msg, size_t len);
/* 1: ports came or went; 0: nothing within timeout_ms; -ECONNRESET: the server went away. */
DA_EXPORT int da_jack_watch_wait(da_jack *j, int timeout_ms, char *msg, size_t len);
/* Close on a helper thread, waiting at most timeout_ms: 0, or -ETIMEDOUT
 * when libjack did not return (the client is abandoned, still bound to its
 * engine, which must then stay alive). */
DA_EXPORT int da_jack_close_within(da_jack *j, int timeout_ms, char *msg, size_t len);

/* Port flags for da_jack_ports (JackPortIsInput, JackPortIsOutput). */
#define DA_JACK_PORT_INPUT 1
#define DA_JACK_PORT_OUTPUT 2
