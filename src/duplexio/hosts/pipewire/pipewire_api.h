/* The PipeWire host's C side (pipewire.c), in cdef-parsable C: see engine_api.h.
 * Functions that can fail return 0 (or a count) or a negative errno code
 * and write why into (msg, len); see engine.h. Built only where
 * libpipewire-0.3's headers are (build.py; the host is unavailable
 * otherwise); libpipewire itself is loaded at run time. */

/* One stream: a filter node with input and output ports, linked to a node. */
typedef struct da_pw da_pw;
/* A connection told by the registry of device nodes and defaults. */
typedef struct da_pw_watch da_pw_watch;

DA_EXPORT int da_pw_load(char *msg, size_t len);
/* The graph as text lines, tab-separated: first "settings", rate, quantum,
 * forced quantum (0: none), min quantum, max quantum, default sink name,
 * default source name; then per audio node "node", id, media class, node
 * name, description, channels. The node count, or -ENOSPC when buf is short. */
DA_EXPORT int da_pw_list(char *buf, size_t len, char *msg, size_t msg_len);
DA_EXPORT int da_pw_watch_new(da_pw_watch **out, char *msg, size_t len);
/* 1: a device node came or went or a default moved; 0: nothing within
 * timeout_ms; -ECONNRESET: the server went away. */
DA_EXPORT int da_pw_watch_wait(da_pw_watch *w, int timeout_ms, char *msg, size_t len);
DA_EXPORT void da_pw_watch_free(da_pw_watch *w);
/* A stream playing to node `sink` and capturing from node `source` (NULL:
 * the sink's monitor), linked before this returns. follow: 1 to follow the
 * default sink, 2 the default source (relinked when it moves, with
 * DA_EV_DEVICE_CHANGED), 0 to stay. */
DA_EXPORT int da_pw_open(da_pw **out, da_engine *e, const char *sink, const char *source,
               uint32_t in_channels, uint32_t out_channels, uint32_t rate, uint32_t frames,
               int follow, char *msg, size_t len);
/* The node a default-following stream was last relinked to, into buf: 1,
 * or 0 when it never moved. */
DA_EXPORT int da_pw_moved_to(da_pw *p, char *buf, size_t len);
#define DA_PW_FOLLOW_SINK 1
#define DA_PW_FOLLOW_SOURCE 2
/* Frames: capture to cycle start, cycle start to playback (ports' latency
 * params; a sink's monitor loop adds one quantum). */
DA_EXPORT void da_pw_latency(da_pw *p, uint32_t *input, uint32_t *output);
DA_EXPORT void da_pw_free(da_pw *p);
