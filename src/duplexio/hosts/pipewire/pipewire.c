/* The PipeWire host's C side: libpipewire-0.3 loaded at run time, SPA's
 * header-only helpers compiled in (the build needs libpipewire-0.3-dev's
 * headers; without them this host is left out).
 *
 * A stream is one pw_filter node with N input and M output DSP ports
 * (float32, planar). PipeWire calls its process function once per graph
 * cycle with every port's buffer, so input and output are one cycle on the
 * driver's clock; that function runs on PipeWire's data thread and hands
 * the cycle straight to da_engine_process. The host makes the links itself
 * (link-factory, not lingering: they go with the client), from the filter's
 * ports to the device node's ports, before the stream starts: so the first
 * block already flows through them, and no session manager policy decides
 * where a measurement stream goes.
 *
 * Timestamps: the driver's clock position (frames at the graph rate) from
 * the first cycle, so they step by exactly the cycle's duration, and by the
 * frames lost when the position jumps (flagged on that very block).
 * Latencies: what PipeWire reports to the filter's ports for their links
 * (SPA_PARAM_Latency: the sink's playback latency on our outputs, the
 * capture latency on our inputs), plus one quantum when the input is the
 * monitor of the sink we play to: that loop closes inside the graph, which
 * breaks it with one cycle's delay.
 *
 * Everything but process() runs on the connection's own thread loop. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pipewire/pipewire.h>
#include <pipewire/filter.h>
#include <pipewire/extensions/metadata.h>
#include <spa/param/audio/raw.h>
#include <spa/param/latency-utils.h>
#include <spa/utils/json.h>

#include "engine.h"
#include "pipewire_api.h"

/* ---- libpipewire, loaded at run time -------------------------------------------- */

static struct {
    void (*init)(int *, char ***);
    struct pw_thread_loop *(*thread_loop_new)(const char *, const struct spa_dict *);
    struct pw_loop *(*thread_loop_get_loop)(struct pw_thread_loop *);
    int (*thread_loop_start)(struct pw_thread_loop *);
    void (*thread_loop_stop)(struct pw_thread_loop *);
    void (*thread_loop_destroy)(struct pw_thread_loop *);
    void (*thread_loop_lock)(struct pw_thread_loop *);
    void (*thread_loop_unlock)(struct pw_thread_loop *);
    void (*thread_loop_signal)(struct pw_thread_loop *, bool);
    int (*thread_loop_timed_wait)(struct pw_thread_loop *, int);
    struct pw_context *(*context_new)(struct pw_loop *, struct pw_properties *, size_t);
    void (*context_destroy)(struct pw_context *);
    struct pw_core *(*context_connect)(struct pw_context *, struct pw_properties *, size_t);
    int (*core_disconnect)(struct pw_core *);
    struct pw_properties *(*properties_new)(const char *, ...);
    void (*properties_free)(struct pw_properties *);
    struct pw_filter *(*filter_new)(struct pw_core *, const char *, struct pw_properties *);
    void (*filter_add_listener)(struct pw_filter *, struct spa_hook *,
                                const struct pw_filter_events *, void *);
    void *(*filter_add_port)(struct pw_filter *, enum pw_direction, enum pw_filter_port_flags,
                             size_t, struct pw_properties *, const struct spa_pod **, uint32_t);
    int (*filter_connect)(struct pw_filter *, enum pw_filter_flags, const struct spa_pod **,
                          uint32_t);
    void (*filter_destroy)(struct pw_filter *);
    void *(*filter_get_dsp_buffer)(void *, uint32_t);
    uint32_t (*filter_get_node_id)(struct pw_filter *);
    void (*proxy_destroy)(struct pw_proxy *);
} W;

static const da_symbol SYMBOLS[] = {
    {&W.init, "pw_init"},
    {&W.thread_loop_new, "pw_thread_loop_new"},
    {&W.thread_loop_get_loop, "pw_thread_loop_get_loop"},
    {&W.thread_loop_start, "pw_thread_loop_start"},
    {&W.thread_loop_stop, "pw_thread_loop_stop"},
    {&W.thread_loop_destroy, "pw_thread_loop_destroy"},
    {&W.thread_loop_lock, "pw_thread_loop_lock"},
    {&W.thread_loop_unlock, "pw_thread_loop_unlock"},
    {&W.thread_loop_signal, "pw_thread_loop_signal"},
    {&W.thread_loop_timed_wait, "pw_thread_loop_timed_wait"},
    {&W.context_new, "pw_context_new"},
    {&W.context_destroy, "pw_context_destroy"},
    {&W.context_connect, "pw_context_connect"},
    {&W.core_disconnect, "pw_core_disconnect"},
    {&W.properties_new, "pw_properties_new"},
    {&W.properties_free, "pw_properties_free"},
    {&W.filter_new, "pw_filter_new"},
    {&W.filter_add_listener, "pw_filter_add_listener"},
    {&W.filter_add_port, "pw_filter_add_port"},
    {&W.filter_connect, "pw_filter_connect"},
    {&W.filter_destroy, "pw_filter_destroy"},
    {&W.filter_get_dsp_buffer, "pw_filter_get_dsp_buffer"},
    {&W.filter_get_node_id, "pw_filter_get_node_id"},
    {&W.proxy_destroy, "pw_proxy_destroy"},
};

static void *libpipewire;

static void loaded(void) { W.init(NULL, NULL); }

int da_pw_load(char *msg, size_t len) {
    return da_load_library("libpipewire-0.3.so.0", SYMBOLS, sizeof SYMBOLS / sizeof SYMBOLS[0],
                           loaded, &libpipewire, msg, len);
}

/* ---- a connection: thread loop, context, core, registry --------------------------- */

#define MAX_NODES 256
#define MAX_PORTS 1024
#define NAME_LEN 256

typedef struct {
    uint32_t id;
    char name[NAME_LEN], description[NAME_LEN], media_class[64];
    char position[NAME_LEN]; /* audio.position: its channels in order, "FL,FR" */
    uint32_t channels;
} node_info;

typedef struct {
    uint32_t id, node;
    uint32_t index;   /* port.id: its place among the node's ports of its direction */
    char channel[16]; /* audio.channel: "FL", "AUX3", ... or "" */
    int output;       /* port.direction "out" */
    int monitor;      /* port.monitor */
} port_info;

typedef struct {
    struct pw_thread_loop *loop;
    struct pw_context *context;
    struct pw_core *core;
    struct pw_registry *registry;
    struct spa_hook core_listener, registry_listener;
    struct pw_metadata *settings, *defaults;
    struct spa_hook settings_listener, defaults_listener;
    int sync_seq, synced;
    atomic_int broken;          /* the server went away */
    /* what the registry showed, under the loop's lock */
    node_info nodes[MAX_NODES];
    uint32_t n_nodes;
    port_info ports[MAX_PORTS];
    uint32_t n_ports;
    char default_sink[NAME_LEN], default_source[NAME_LEN];
    uint32_t rate, quantum, force_quantum, force_rate, min_quantum, max_quantum;
    void (*node_removed)(void *user, uint32_t id);
    void (*defaults_changed)(void *user);
    void *user;
    da_sem *notice; /* a watcher's: posted when a device node comes or goes, a
                       default moves or the server goes away */
} conn;

static void notice(conn *c) {
    if (c->notice) da_sem_post(c->notice);
}

static void copy_text(char *dst, size_t len, const char *src) {
    snprintf(dst, len, "%s", src ? src : "");
}

static void on_core_done(void *data, uint32_t id, int seq) {
    conn *c = data;
    if (id == PW_ID_CORE && seq == c->sync_seq) {
        c->synced = 1;
        W.thread_loop_signal(c->loop, false);
    }
}

static void on_core_error(void *data, uint32_t id, int seq, int res, const char *message) {
    conn *c = data;
    if (id == PW_ID_CORE && res == -EPIPE) { /* the connection to the server broke */
        atomic_store(&c->broken, 1);
        notice(c);
        if (c->node_removed) c->node_removed(c->user, SPA_ID_INVALID);
        W.thread_loop_signal(c->loop, false);
    }
}

static const struct pw_core_events core_events = {
    PW_VERSION_CORE_EVENTS,
    .done = on_core_done,
    .error = on_core_error,
};

static uint32_t dict_uint(const struct spa_dict *props, const char *key, uint32_t fallback) {
    const char *v = spa_dict_lookup(props, key);
    return v ? (uint32_t)strtoul(v, NULL, 10) : fallback;
}

/* The "name" of a default.audio.* metadata value: {"name":"..."}. */
static void json_name(const char *value, char *out, size_t len) {
    struct spa_json it[2];
    char key[32];
    out[0] = '\0';
    if (!value) return;
    spa_json_init(&it[0], value, strlen(value));
    if (spa_json_enter_object(&it[0], &it[1]) <= 0) return;
    while (spa_json_get_string(&it[1], key, sizeof key) > 0) {
        if (strcmp(key, "name") == 0) {
            spa_json_get_string(&it[1], out, (int)len);
            return;
        }
        const char *skip;
        if (spa_json_next(&it[1], &skip) <= 0) return;
    }
}

static int on_settings(void *data, uint32_t subject, const char *key, const char *type,
                       const char *value) {
    conn *c = data;
    uint32_t v = value ? (uint32_t)strtoul(value, NULL, 10) : 0;
    if (!key) return 0;
    if (!strcmp(key, "clock.rate")) c->rate = v;
    else if (!strcmp(key, "clock.quantum")) c->quantum = v;
    else if (!strcmp(key, "clock.force-quantum")) c->force_quantum = v;
    else if (!strcmp(key, "clock.force-rate")) c->force_rate = v;
    else if (!strcmp(key, "clock.min-quantum")) c->min_quantum = v;
    else if (!strcmp(key, "clock.max-quantum")) c->max_quantum = v;
    return 0;
}

static int on_defaults(void *data, uint32_t subject, const char *key, const char *type,
                       const char *value) {
    conn *c = data;
    if (!key) return 0;
    if (!strcmp(key, "default.audio.sink")) json_name(value, c->default_sink, NAME_LEN);
    else if (!strcmp(key, "default.audio.source")) json_name(value, c->default_source, NAME_LEN);
    else return 0;
    notice(c);
    if (c->defaults_changed) c->defaults_changed(c->user);
    return 0;
}

static const struct pw_metadata_events settings_events = {
    PW_VERSION_METADATA_EVENTS, .property = on_settings};
static const struct pw_metadata_events defaults_events = {
    PW_VERSION_METADATA_EVENTS, .property = on_defaults};

static void on_global(void *data, uint32_t id, uint32_t permissions, const char *type,
                      uint32_t version, const struct spa_dict *props) {
    conn *c = data;
    if (!props) return;
    if (!strcmp(type, PW_TYPE_INTERFACE_Node) && c->n_nodes < MAX_NODES) {
        const char *cls = spa_dict_lookup(props, PW_KEY_MEDIA_CLASS);
        if (!cls || (strcmp(cls, "Audio/Sink") && strcmp(cls, "Audio/Source") &&
                     strcmp(cls, "Audio/Duplex")))
            return;
        node_info *n = &c->nodes[c->n_nodes++];
        n->id = id;
        copy_text(n->name, sizeof n->name, spa_dict_lookup(props, PW_KEY_NODE_NAME));
        copy_text(n->description, sizeof n->description,
                  spa_dict_lookup(props, PW_KEY_NODE_DESCRIPTION));
        copy_text(n->media_class, sizeof n->media_class, cls);
        n->channels = dict_uint(props, PW_KEY_AUDIO_CHANNELS, 0);
        copy_text(n->position, sizeof n->position, spa_dict_lookup(props, SPA_KEY_AUDIO_POSITION));
        notice(c);
    } else if (!strcmp(type, PW_TYPE_INTERFACE_Port) && c->n_ports < MAX_PORTS) {
        port_info *p = &c->ports[c->n_ports++];
        const char *dir = spa_dict_lookup(props, PW_KEY_PORT_DIRECTION);
        const char *mon = spa_dict_lookup(props, PW_KEY_PORT_MONITOR);
        p->id = id;
        p->node = dict_uint(props, PW_KEY_NODE_ID, SPA_ID_INVALID);
        p->index = dict_uint(props, PW_KEY_PORT_ID, UINT32_MAX);
        copy_text(p->channel, sizeof p->channel, spa_dict_lookup(props, PW_KEY_AUDIO_CHANNEL));
        p->output = dir && !strcmp(dir, "out");
        p->monitor = mon && !strcmp(mon, "true");
    } else if (!strcmp(type, PW_TYPE_INTERFACE_Metadata)) {
        const char *name = spa_dict_lookup(props, PW_KEY_METADATA_NAME);
        if (!name) return;
        if (!strcmp(name, "settings") && !c->settings) {
            c->settings = pw_registry_bind(c->registry, id, type, PW_VERSION_METADATA, 0);
            if (c->settings)
                pw_metadata_add_listener(c->settings, &c->settings_listener, &settings_events, c);
        } else if (!strcmp(name, "default") && !c->defaults) {
            c->defaults = pw_registry_bind(c->registry, id, type, PW_VERSION_METADATA, 0);
            if (c->defaults)
                pw_metadata_add_listener(c->defaults, &c->defaults_listener, &defaults_events, c);
        }
    }
}

static void on_global_remove(void *data, uint32_t id) {
    conn *c = data;
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].id == id) {
            c->nodes[i] = c->nodes[--c->n_nodes];
            notice(c);
            if (c->node_removed) c->node_removed(c->user, id);
            break;
        }
    for (uint32_t i = 0; i < c->n_ports; i++)
        if (c->ports[i].id == id) {
            c->ports[i] = c->ports[--c->n_ports];
            break;
        }
}

static const struct pw_registry_events registry_events = {
    PW_VERSION_REGISTRY_EVENTS,
    .global = on_global,
    .global_remove = on_global_remove,
};

/* Wait (loop locked) until the server has answered everything asked so far. */
static int roundtrip(conn *c, int seconds) {
    c->synced = 0;
    c->sync_seq = pw_core_sync(c->core, PW_ID_CORE, c->sync_seq);
    while (!c->synced && !atomic_load(&c->broken))
        if (W.thread_loop_timed_wait(c->loop, seconds) != 0) return -ETIMEDOUT;
    return atomic_load(&c->broken) ? -ECONNRESET : 0;
}

static void conn_close(conn *c) {
    if (c->loop) W.thread_loop_stop(c->loop);
    if (c->settings) W.proxy_destroy((struct pw_proxy *)c->settings);
    if (c->defaults) W.proxy_destroy((struct pw_proxy *)c->defaults);
    if (c->registry) W.proxy_destroy((struct pw_proxy *)c->registry);
    if (c->core) W.core_disconnect(c->core);
    if (c->context) W.context_destroy(c->context);
    if (c->loop) W.thread_loop_destroy(c->loop);
    memset(c, 0, sizeof *c);
}

/* Connect (never starting a server) and learn the graph: nodes, ports,
 * settings, defaults. Returns with the loop running and unlocked. */
static int conn_open(conn *c, const char *name, char *msg, size_t len) {
    memset(c, 0, sizeof *c);
    c->rate = 48000;
    c->loop = W.thread_loop_new(name, NULL);
    if (!c->loop) goto no_memory;
    c->context = W.context_new(W.thread_loop_get_loop(c->loop), NULL, 0);
    if (!c->context) goto no_memory;
    if (W.thread_loop_start(c->loop) < 0) goto no_memory;
    W.thread_loop_lock(c->loop);
    c->core = W.context_connect(c->context, NULL, 0);
    if (!c->core) {
        int err = errno ? errno : ECONNREFUSED;
        W.thread_loop_unlock(c->loop);
        snprintf(msg, len, "cannot connect to PipeWire: %s", strerror(err));
        conn_close(c);
        return -ECONNREFUSED;
    }
    pw_core_add_listener(c->core, &c->core_listener, &core_events, c);
    c->registry = pw_core_get_registry(c->core, PW_VERSION_REGISTRY, 0);
    pw_registry_add_listener(c->registry, &c->registry_listener, &registry_events, c);
    /* Two round trips: the globals, then the metadata bound from them. */
    int r = roundtrip(c, 5);
    if (!r) r = roundtrip(c, 5);
    W.thread_loop_unlock(c->loop);
    if (r) {
        snprintf(msg, len, "PipeWire did not answer: %s", strerror(-r));
        conn_close(c);
    }
    return r;
no_memory:
    snprintf(msg, len, "cannot make a PipeWire thread loop or context");
    conn_close(c);
    return -ENOMEM;
}

static const node_info *node_named(const conn *c, const char *name) {
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (!strcmp(c->nodes[i].name, name)) return &c->nodes[i];
    return NULL;
}

/* ---- listing ---------------------------------------------------------------------- */

/* A node's channels: audio.channels, else its audio.position's entries (a
 * pipewire-pulse null sink sets only that), else its non-monitor ports. */
static uint32_t node_channels(const conn *c, const node_info *n) {
    if (n->channels) return n->channels;
    uint32_t count = 0;
    if (n->position[0]) {
        count = 1;
        for (const char *q = n->position; *q; q++) count += *q == ',';
        return count;
    }
    const int sink = strstr(n->media_class, "Sink") != NULL;
    for (uint32_t i = 0; i < c->n_ports; i++) {
        const port_info *p = &c->ports[i];
        if (p->node == n->id && !p->monitor && p->output != sink) count++;
    }
    return count;
}

int da_pw_list(char *buf, size_t len, char *msg, size_t msg_len) {
    conn c;
    int r = conn_open(&c, "duplexio-list", msg, msg_len);
    if (r) return r;
    W.thread_loop_lock(c.loop);
    size_t at = 0;
    int wrote = snprintf(buf, len, "settings\t%u\t%u\t%u\t%u\t%u\t%s\t%s\n",
                         c.force_rate ? c.force_rate : c.rate, c.quantum, c.force_quantum,
                         c.min_quantum, c.max_quantum, c.default_sink, c.default_source);
    at += wrote > 0 ? (size_t)wrote : 0;
    int count = 0;
    for (uint32_t i = 0; i < c.n_nodes; i++) {
        const node_info *n = &c.nodes[i];
        wrote = snprintf(at < len ? buf + at : NULL, at < len ? len - at : 0,
                         "node\t%u\t%s\t%s\t%s\t%u\n", n->id, n->media_class, n->name,
                         n->description, node_channels(&c, n));
        at += wrote > 0 ? (size_t)wrote : 0;
        count++;
    }
    W.thread_loop_unlock(c.loop);
    conn_close(&c);
    if (at + 1 > len) return -ENOSPC;
    return count;
}

/* ---- watching: device nodes and defaults, as the registry tells ------------------ */

struct da_pw_watch {
    conn c;
};

int da_pw_watch_new(da_pw_watch **out, char *msg, size_t len) {
    *out = NULL;
    da_pw_watch *w = calloc(1, sizeof *w);
    da_sem *sem = da_sem_new();
    if (!w || !sem) {
        free(w);
        if (sem) da_sem_free(sem);
        snprintf(msg, len, "out of memory");
        return -ENOMEM;
    }
    int r = conn_open(&w->c, "duplexio-watch", msg, len);
    if (r) {
        da_sem_free(sem);
        free(w);
        return r;
    }
    W.thread_loop_lock(w->c.loop);
    w->c.notice = sem; /* what the first listing saw needs no notice */
    W.thread_loop_unlock(w->c.loop);
    *out = w;
    return 0;
}

int da_pw_watch_wait(da_pw_watch *w, int timeout_ms, char *msg, size_t len) {
    int came = 0;
    if (!atomic_load(&w->c.broken))
        came = da_sem_wait_until(w->c.notice, da_now_ns() + (int64_t)timeout_ms * 1000000) == 0;
    while (da_sem_trywait(w->c.notice) == 0) came = 1; /* one listing answers them all */
    if (atomic_load(&w->c.broken)) {
        snprintf(msg, len, "the PipeWire server went away");
        return -ECONNRESET;
    }
    return came;
}

void da_pw_watch_free(da_pw_watch *w) {
    if (!w) return;
    da_sem *sem = w->c.notice;
    conn_close(&w->c); /* stops the loop first: no notice after this */
    if (sem) da_sem_free(sem);
    free(w);
}

/* ---- a stream: one filter node --------------------------------------------------- */

#define MAX_CHANNELS 64

struct da_pw {
    conn c;
    da_engine *e;
    struct pw_filter *filter;
    struct spa_hook filter_listener;
    void *in_ports[MAX_CHANNELS], *out_ports[MAX_CHANNELS];
    /* Our output ports' buffer areas (SPA_IO_Buffers), from io_changed: the
     * data thread reads whether the peer took the last buffer. */
    struct spa_io_buffers *_Atomic out_io[MAX_CHANNELS];
    uint32_t in_ch, out_ch, rate, frames;
    char sink[NAME_LEN], source[NAME_LEN];   /* "" when absent */
    uint32_t target_ids[2];                  /* the nodes linked to */
    struct pw_proxy *links[2 * MAX_CHANNELS];
    uint32_t n_links;
    int graph_loop;                          /* input is the monitor of our sink */
    /* A quantum on top of what the ports report: where the input is the
     * monitor of our sink (that loop closes a cycle later), and for an
     * output-only stream, whose block the sink consumes during the cycle,
     * played by its end, as a duplex stream's output on that sink is (a
     * null sink reports 0 otherwise, and stop() drains by this figure). */
    int out_cycle;
    int follow;                              /* 1: the default sink, 2: the default source */
    atomic_uint in_latency, out_latency;     /* frames, from the ports' latency params */
    /* data thread only */
    const float *in_bufs[MAX_CHANNELS];
    float *out_bufs[MAX_CHANNELS];
    float *scratch;
    int started;
    uint64_t next_pos;             /* the driver position the next cycle should have */
    uint64_t timeline;             /* frames of the stream's timeline at this cycle */
    int64_t origin_ns;
    int rt_checked;
    int finished_late; /* the last cycle ended after the driver's next wake-up */
    uint64_t seen_next;            /* the position the last cycle led to */
    atomic_int steady;             /* cycles in a row that followed on */
    atomic_int moved;              /* relinked to a new default: flag the next block */
    int ever_moved;                /* loop thread; read under the loop's lock */
};

static void node_removed(void *user, uint32_t id) {
    da_pw *p = user;
    if (id == SPA_ID_INVALID || id == p->target_ids[0] || id == p->target_ids[1])
        da_engine_fail(p->e, DA_EV_DEVICE_LOST, 0);
}

static int make_links(da_pw *p, char *msg, size_t len);

/* The graph's default moved (loop thread, locked): a stream that follows it
 * is relinked to the new node and goes on there, and says so. */
static void defaults_changed(void *user) {
    da_pw *p = user;
    const char *now = p->follow == 1 ? p->c.default_sink : p->c.default_source;
    const char *was = p->follow == 1 ? p->sink : p->source;
    if (!p->follow || !now[0] || !strcmp(now, was)) return;
    const node_info *n = node_named(&p->c, now);
    if (!n) return;
    for (uint32_t i = 0; i < p->n_links; i++) W.proxy_destroy(p->links[i]);
    p->n_links = 0;
    if (p->follow == 1) {
        copy_text(p->sink, sizeof p->sink, now);
        p->target_ids[1] = n->id;
        if (p->graph_loop) p->target_ids[0] = n->id;
    } else {
        copy_text(p->source, sizeof p->source, now);
        p->target_ids[0] = n->id;
    }
    char why[256];
    if (make_links(p, why, sizeof why) < 0) {
        da_engine_fail(p->e, DA_EV_DEVICE_LOST, 0);
        return;
    }
    p->ever_moved = 1;
    atomic_store(&p->moved, 1); /* the first block through the new links says so */
    da_event_post(p->e, DA_EV_DEVICE_CHANGED, 0);
}

static void on_filter_state(void *data, enum pw_filter_state old, enum pw_filter_state state,
                            const char *error) {
    da_pw *p = data;
    if (state == PW_FILTER_STATE_ERROR) da_engine_fail(p->e, DA_EV_DEVICE_LOST, 0);
    W.thread_loop_signal(p->c.loop, false);
}

static void on_io_changed(void *data, void *port, uint32_t id, void *area, uint32_t size) {
    da_pw *p = data;
    if (id != SPA_IO_Buffers) return;
    for (uint32_t c = 0; c < p->out_ch; c++)
        if (p->out_ports[c] == port) atomic_store(&p->out_io[c], (struct spa_io_buffers *)area);
}

/* A port learns the latency of what it is linked to: an input port the
 * capture latency upstream, an output port the playback latency downstream. */
static void on_param_changed(void *data, void *port, uint32_t id, const struct spa_pod *param) {
    da_pw *p = data;
    struct spa_latency_info info;
    if (!port || id != SPA_PARAM_Latency || !param || spa_latency_parse(param, &info) < 0) return;
    const int input = info.direction == SPA_DIRECTION_OUTPUT; /* capture side reaches inputs */
    const double frames = info.max_quantum * p->frames + info.max_rate +
                          (double)info.max_ns * p->rate / SPA_NSEC_PER_SEC;
    atomic_store(input ? &p->in_latency : &p->out_latency, (unsigned)(frames + 0.5));
}

/* PipeWire's data thread, once per graph cycle. Never allocates, never takes
 * a lock Python can hold, never calls into Python, never blocks past the
 * engine's deadline. */
static void on_process(void *data, struct spa_io_position *pos) {
    da_pw *p = data;
    const int64_t now = da_now_ns();
    const uint32_t n = (uint32_t)pos->clock.duration;
    /* Read once: `pos` is the driver's own, and it moves on to the next cycle
     * while this one may still be running. */
    const uint64_t next_nsec = pos->clock.next_nsec;
    if (!p->rt_checked) {
        da_engine_set_realtime(p->e, da_thread_is_realtime());
        p->rt_checked = 1;
    }
    if (pos->clock.rate.denom != p->rate) {
        /* Before any block at the new rate reaches the user. */
        if (da_engine_state(p->e) != DA_STATE_FAILED)
            da_engine_fail(p->e, DA_EV_SAMPLE_RATE_CHANGED, pos->clock.rate.denom);
        return;
    }
    /* An input port with no buffer this cycle: its peer has not delivered
     * (it ran late); silence goes in its place, and the cycle is a glitch. */
    int missing = 0;
    for (uint32_t c = 0; c < p->in_ch; c++) {
        const float *b = W.filter_get_dsp_buffer(p->in_ports[c], n);
        missing |= !b;
        p->in_bufs[c] = b ? b : p->scratch;
    }
    /* An output port whose peer has not yet taken our last buffer: pw_filter
     * holds this cycle's output back to the next one, so it reaches the sink
     * a cycle late (seen at a 64-frame quantum beside a busy jackd: an impulse
     * back at 128, everything else unbroken). One with no free buffer plays
     * nothing this cycle. Both are glitches of the loop. */
    for (uint32_t c = 0; c < p->out_ch; c++) {
        struct spa_io_buffers *io = atomic_load(&p->out_io[c]);
        missing |= io && io->status == SPA_STATUS_HAVE_DATA;
        float *b = W.filter_get_dsp_buffer(p->out_ports[c], n);
        missing |= !b;
        p->out_bufs[c] = b ? b : p->scratch;
    }
    /* How settled the graph is around the new node, for da_pw_open. */
    atomic_store(&p->steady, pos->clock.position == p->seen_next ? atomic_load(&p->steady) + 1 : 0);
    p->seen_next = pos->clock.position + n;
    uint32_t lost = 0;
    int glitch = 0;
    /* The timeline starts at the stream's first running cycle: before it the
     * graph may still move the new node between drivers (seen: a position
     * jump in the first cycles), which is no glitch of the stream's. */
    if (da_engine_state(p->e) == DA_STATE_STOPPED) p->started = 0;
    if (!p->started) {
        p->started = 1;
        p->origin_ns = (int64_t)pos->clock.nsec;
        p->timeline = 0;
    } else if (pos->clock.position != p->next_pos) {
        /* The driver's clock moved on by more than our last cycle: cycles ran
         * without us (whole cycles, rounded up). Or it did not move on (seen
         * under load: process called twice at one position) or went back (a
         * reset): the stream's own timeline goes on by one block regardless,
         * so timestamps never stand still or run back. Flagged either way. */
        glitch = 1;
        if (pos->clock.position > p->next_pos && n)
            lost = (uint32_t)((pos->clock.position - p->next_pos + n - 1) / n);
    }
    p->timeline += (uint64_t)lost * n;
    /* Woken after the cycle should have ended, or the last cycle finished
     * after it: the driver began its next cycle without this node's output
     * (PipeWire 0.3.65 counts no xrun for that, only the profiler sees it),
     * which then reaches the sink a cycle late: an impulse back one quantum
     * late, the position unbroken. Not lost, but the loop slipped: flag it,
     * on the block where the late cycle is known. */
    if (next_nsec && now > (int64_t)next_nsec) glitch = 1;
    glitch |= missing | p->finished_late | atomic_exchange(&p->moved, 0);
    p->next_pos = pos->clock.position + n;
    da_cycle_time t = {0};
    t.callback_ns = p->origin_ns + da_frames_to_ns((int64_t)p->timeline, p->rate);
    t.wakeup_ns = now;
    t.deadline_anchor_ns = now;
    t.deadline_limit_ns = next_nsec > (uint64_t)now ? (int64_t)next_nsec : 0;
    t.input_device_ns = t.callback_ns - da_frames_to_ns(atomic_load(&p->in_latency), p->rate);
    t.output_device_ns = t.callback_ns + da_frames_to_ns(atomic_load(&p->out_latency) +
                                                              (p->out_cycle ? n : 0),
                                                          p->rate);
    t.lost_cycles = lost;
    da_engine_process(p->e, p->in_bufs, 1, p->out_bufs, 1, n, &t, glitch);
    /* Under load this thread can be woken so late in its cycle that it
     * finishes after the next one began: the output missed this cycle, and
     * the next block says so. */
    p->finished_late = next_nsec && da_now_ns() > (int64_t)next_nsec;
    p->timeline += n;
}

static const struct pw_filter_events filter_events = {
    PW_VERSION_FILTER_EVENTS,
    .state_changed = on_filter_state,
    .io_changed = on_io_changed,
    .param_changed = on_param_changed,
    .process = on_process,
};

/* Where `channel` stands in a node's audio.position ("FL,FR,..."), or -1. */
static int position_of(const char *position, const char *channel) {
    if (!channel[0]) return -1;
    const size_t len = strlen(channel);
    int k = 0;
    for (const char *at = position; *at; k++) {
        const char *end = strchr(at, ',');
        const size_t n = end ? (size_t)(end - at) : strlen(at);
        if (n == len && !strncmp(at, channel, len)) return k;
        if (!end) break;
        at = end + 1;
    }
    return -1;
}

/* The ports of node `node` in one direction (monitor ports apart), in channel
 * order: by the port's audio.channel within the node's audio.position, else
 * by port.id (its place among the node's ports, which is also how our own
 * filter's ports are numbered). Never by global id: PipeWire reuses freed
 * ids, so a later port can have a smaller one (seen: out_1 linked to
 * playback_FR after a few streams had come and gone). */
static uint32_t ports_of(const conn *c, uint32_t node, int output, int monitor, uint32_t *ids,
                         uint32_t max) {
    uint64_t keyed[MAX_CHANNELS];
    const char *position = "";
    for (uint32_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].id == node) position = c->nodes[i].position;
    if (max > MAX_CHANNELS) max = MAX_CHANNELS;
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_ports; i++) {
        const port_info *q = &c->ports[i];
        if (q->node != node || q->output != output || q->monitor != monitor || n >= max) continue;
        const int at = position_of(position, q->channel);
        /* Positioned ports first, in position order; the rest by port.id. */
        const uint64_t rank = at >= 0 ? (uint64_t)at : (1ull << 32) + q->index;
        keyed[n++] = rank << 20 | i; /* i < MAX_PORTS (2^10): the sort is stable */
    }
    for (uint32_t i = 1; i < n; i++) /* insertion sort: a handful of ports */
        for (uint32_t j = i; j > 0 && keyed[j - 1] > keyed[j]; j--) {
            const uint64_t t = keyed[j];
            keyed[j] = keyed[j - 1];
            keyed[j - 1] = t;
        }
    for (uint32_t i = 0; i < n; i++) ids[i] = c->ports[keyed[i] & 0xfffff].id;
    return n;
}

static int link_ports(da_pw *p, uint32_t out_port, uint32_t in_port) {
    char a[16], b[16];
    snprintf(a, sizeof a, "%u", out_port);
    snprintf(b, sizeof b, "%u", in_port);
    struct pw_properties *props = W.properties_new(PW_KEY_LINK_OUTPUT_PORT, a,
                                                   PW_KEY_LINK_INPUT_PORT, b,
                                                   PW_KEY_OBJECT_LINGER, "false", NULL);
    if (!props) return -ENOMEM;
    struct pw_proxy *link = pw_core_create_object(p->c.core, "link-factory", PW_TYPE_INTERFACE_Link,
                                                  PW_VERSION_LINK, &props->dict, 0);
    W.properties_free(props);
    if (!link) return -ENOMEM;
    p->links[p->n_links++] = link;
    return 0;
}

/* Link the filter's ports to the targets' (loop locked). Channel k of the
 * stream goes to the target's k-th port, modulo its port count. */
static int make_links(da_pw *p, char *msg, size_t len) {
    uint32_t ours[MAX_CHANNELS], theirs[MAX_CHANNELS];
    const uint32_t me = W.filter_get_node_id(p->filter);
    if (p->out_ch) { /* our output ports to the sink's playback (input) ports */
        uint32_t n_ours = ports_of(&p->c, me, 1, 0, ours, MAX_CHANNELS);
        uint32_t n_theirs = ports_of(&p->c, p->target_ids[1], 0, 0, theirs, MAX_CHANNELS);
        if (n_ours < p->out_ch || !n_theirs) {
            snprintf(msg, len, "PipeWire shows %u of our %u output ports and %u playback ports of '%s'",
                     n_ours, p->out_ch, n_theirs, p->sink);
            return -ENODEV;
        }
        for (uint32_t k = 0; k < p->out_ch; k++)
            if (link_ports(p, ours[k], theirs[k % n_theirs]) < 0) return -ENOMEM;
    }
    if (p->in_ch) { /* the target's output (capture or monitor) ports to our inputs */
        uint32_t n_ours = ports_of(&p->c, me, 0, 0, ours, MAX_CHANNELS);
        /* A sink's monitor ports, or a source's capture ports. */
        int from_monitor = p->graph_loop || (p->source[0] == '\0');
        uint32_t n_theirs = ports_of(&p->c, p->target_ids[0], 1, from_monitor, theirs, MAX_CHANNELS);
        if (!n_theirs && from_monitor) /* a sink whose monitor ports are plain outputs */
            n_theirs = ports_of(&p->c, p->target_ids[0], 1, 0, theirs, MAX_CHANNELS);
        if (n_ours < p->in_ch || !n_theirs) {
            snprintf(msg, len, "PipeWire shows %u of our %u input ports and %u capture ports of '%s'",
                     n_ours, p->in_ch, n_theirs, p->source[0] ? p->source : p->sink);
            return -ENODEV;
        }
        for (uint32_t k = 0; k < p->in_ch; k++)
            if (link_ports(p, theirs[k % n_theirs], ours[k]) < 0) return -ENOMEM;
    }
    return 0;
}

/* How long da_pw_open waits for the server: a round trip at most (seconds);
 * for the filter's own node and ports, in one-second waits; and for the
 * graph to settle around the new node, in steps of STEADY_STEP_NS. */
#define ROUNDTRIP_S 5
#define OWN_PORTS_TRIES 50
#define STEADY_CYCLES 8
#define STEADY_STEP_NS 10000000
#define STEADY_STEPS 200

/* The filter of the stream: its ports (in_1.., out_1..) and the connection. */
static int make_filter(da_pw *p, char *msg, size_t len) {
    char latency[32];
    snprintf(latency, sizeof latency, "%u/%u", p->frames, p->rate);
    p->filter = W.filter_new(p->c.core, "duplexio",
                             W.properties_new(PW_KEY_MEDIA_TYPE, "Audio",
                                              PW_KEY_MEDIA_CATEGORY, "Duplex",
                                              PW_KEY_MEDIA_ROLE, "DSP",
                                              PW_KEY_NODE_LATENCY, latency,
                                              PW_KEY_NODE_ALWAYS_PROCESS, "true", NULL));
    if (!p->filter) return da_say(msg, len, -ENOMEM, "cannot make a PipeWire filter");
    W.filter_add_listener(p->filter, &p->filter_listener, &filter_events, p);
    for (uint32_t k = 0; k < p->in_ch + p->out_ch; k++) {
        const int output = k >= p->in_ch;
        char name[32];
        snprintf(name, sizeof name, "%s_%u", output ? "out" : "in", output ? k - p->in_ch + 1 : k + 1);
        void *port = W.filter_add_port(p->filter, output ? PW_DIRECTION_OUTPUT : PW_DIRECTION_INPUT,
                                       PW_FILTER_PORT_FLAG_MAP_BUFFERS, sizeof(uint64_t),
                                       W.properties_new(PW_KEY_FORMAT_DSP, "32 bit float mono audio",
                                                        PW_KEY_PORT_NAME, name, NULL),
                                       NULL, 0);
        if (!port) return da_say(msg, len, -ENOMEM, "cannot add port %s", name);
        if (output) p->out_ports[k - p->in_ch] = port;
        else p->in_ports[k] = port;
    }
    if (W.filter_connect(p->filter, PW_FILTER_FLAG_RT_PROCESS, NULL, 0) < 0)
        return da_say(msg, len, -EIO, "cannot connect the PipeWire filter");
    return 0;
}

/* Until the server shows the filter's node and all its ports (loop locked). */
static int await_own_ports(da_pw *p) {
    conn *c = &p->c;
    int r = 0;
    for (int tries = 0; tries < OWN_PORTS_TRIES; tries++) {
        if ((r = roundtrip(c, ROUNDTRIP_S)) != 0) break;
        uint32_t ids[MAX_CHANNELS];
        const uint32_t me = W.filter_get_node_id(p->filter);
        if (me != SPA_ID_INVALID && ports_of(c, me, 0, 0, ids, MAX_CHANNELS) >= p->in_ch &&
            ports_of(c, me, 1, 0, ids, MAX_CHANNELS) >= p->out_ch)
            break;
        W.thread_loop_timed_wait(c->loop, 1);
    }
    return r;
}

/* Until the graph has settled around the new node (loop locked): right
 * after linking, its first cycles can repeat a position, which a stream
 * started then would see as glitches. STEADY_CYCLES cycles that follow on,
 * or two seconds (a stream that starts anyway flags what it meets). */
static void await_steady(da_pw *p) {
    for (int step = 0; step < STEADY_STEPS && atomic_load(&p->steady) < STEADY_CYCLES; step++) {
        W.thread_loop_unlock(p->c.loop);
        da_sleep_ns(STEADY_STEP_NS);
        W.thread_loop_lock(p->c.loop);
    }
}

int da_pw_open(da_pw **out, da_engine *e, const char *sink, const char *source,
               uint32_t in_channels, uint32_t out_channels, uint32_t rate, uint32_t frames,
               int follow, char *msg, size_t len) {
    *out = NULL;
    if (!e || frames != da_engine_frames(e) || in_channels > MAX_CHANNELS ||
        out_channels > MAX_CHANNELS || (!in_channels && !out_channels) ||
        (out_channels && !sink) || (in_channels && !sink && !source))
        return da_say(msg, len, -EINVAL, "impossible stream parameters");
    da_pw *p = calloc(1, sizeof *p);
    /* Room for any quantum PipeWire may run (up to 8192), so a cycle of a
     * size we did not agree to can be silenced before the engine refuses it. */
    if (!p || !(p->scratch = calloc(frames > 8192 ? frames : 8192, sizeof(float)))) {
        free(p);
        return da_say(msg, len, -ENOMEM, "out of memory");
    }
    p->e = e;
    p->in_ch = in_channels;
    p->out_ch = out_channels;
    p->rate = rate;
    p->frames = frames;
    copy_text(p->sink, sizeof p->sink, sink);
    copy_text(p->source, sizeof p->source, source);
    p->graph_loop = in_channels && out_channels && !source;
    p->out_cycle = p->graph_loop || !in_channels;
    p->follow = follow;
    p->target_ids[0] = p->target_ids[1] = SPA_ID_INVALID;
    int r = conn_open(&p->c, "duplexio-stream", msg, len);
    if (r) {
        free(p->scratch);
        free(p);
        return r;
    }
    conn *c = &p->c;
    c->user = p;
    W.thread_loop_lock(c->loop);
    const node_info *playback = sink && *sink ? node_named(c, sink) : NULL;
    const node_info *capture = source && *source ? node_named(c, source) : playback;
    if ((out_channels && !playback) || (in_channels && !capture)) {
        r = da_say(msg, len, -ENODEV, "PipeWire has no node '%s'",
                   out_channels && !playback ? sink : (source ? source : sink));
        goto fail;
    }
    p->target_ids[1] = playback ? playback->id : SPA_ID_INVALID;
    p->target_ids[0] = capture ? capture->id : SPA_ID_INVALID;
    r = make_filter(p, msg, len);
    if (r == 0) r = await_own_ports(p);
    if (r == 0) r = make_links(p, msg, len);
    if (r == 0) r = roundtrip(c, ROUNDTRIP_S); /* the links exist before the stream starts */
    if (r) goto fail;
    await_steady(p);
    c->node_removed = node_removed;
    c->defaults_changed = defaults_changed;
    W.thread_loop_unlock(c->loop);
    *out = p;
    return 0;
fail:
    if (!msg[0]) snprintf(msg, len, "PipeWire: %s", strerror(-r));
    W.thread_loop_unlock(c->loop);
    da_pw_free(p);
    return r;
}

int da_pw_moved_to(da_pw *p, char *buf, size_t len) {
    W.thread_loop_lock(p->c.loop);
    const int moved = p->ever_moved;
    snprintf(buf, len, "%s", moved ? (p->follow == 1 ? p->sink : p->source) : "");
    W.thread_loop_unlock(p->c.loop);
    return moved;
}

void da_pw_latency(da_pw *p, uint32_t *input, uint32_t *output) {
    *input = p->in_ch ? atomic_load(&p->in_latency) : 0;
    /* The graph-loop cycle is the quantum the stream runs at. */
    *output = p->out_ch ? atomic_load(&p->out_latency) + (p->out_cycle ? p->frames : 0) : 0;
}

void da_pw_free(da_pw *p) {
    if (!p) return;
    if (p->c.loop) {
        W.thread_loop_lock(p->c.loop);
        p->c.node_removed = NULL;
        p->c.defaults_changed = NULL;
        /* The node goes first, its links with it (they belong to this
         * client), then a roundtrip lets the server settle. Removing the
         * links first left the node alive and unlinked while the graph
         * changed around it, and the server's messages to it carry eventfds:
         * one that arrived after the node was destroyed (libpipewire 0.3.65
         * drops those without closing their fds) was lost. With several
         * threads running streams at once some were, even with a roundtrip
         * between links and node; in this order none is
         * (tests/hosts/test_pipewire.py). */
        if (p->filter) {
            W.filter_destroy(p->filter);
            if (!atomic_load(&p->c.broken)) roundtrip(&p->c, 1);
        }
        for (uint32_t i = 0; i < p->n_links; i++) W.proxy_destroy(p->links[i]);
        W.thread_loop_unlock(p->c.loop);
    }
    conn_close(&p->c);
    free(p->scratch);
    free(p);
}
