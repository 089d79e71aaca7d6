/* The ALSA host's C side (alsa.c), in cdef-parsable C: see engine_api.h.
 * Functions that can fail return 0 (or a count) or a negative errno code
 * (ALSA's own) and write why into (msg, len); see engine.h. */

typedef struct da_alsa da_alsa;

/* What the hardware parameters of one direction of a PCM allow. */
typedef struct {
    uint32_t channels_min, channels_max;
    uint32_t rate_min, rate_max;
    uint64_t period_min, period_max;   /* frames */
    uint64_t buffer_min, buffer_max;   /* frames */
    uint32_t formats;                  /* DA_ALSA_FMT_* bits the PCM offers */
} da_alsa_caps;

#define DA_ALSA_FMT_F32 1
#define DA_ALSA_FMT_S32 2
#define DA_ALSA_FMT_S16 4

DA_EXPORT int da_alsa_load(char *msg, size_t len);
/* Forget the loaded configuration: the next call re-reads ALSA_CONFIG_PATH. */
DA_EXPORT void da_alsa_reload_config(void);
/* PCM hints as records "name\x01description\x01ioid\x02" (ioid empty: both
 * ways). Returns the count, -ENOSPC when buf is too small, or a negative errno. */
DA_EXPORT int da_alsa_hints(char *buf, size_t len, char *msg, size_t msg_len);
/* Open one direction (capture: 1), read its hw params, close. 0 or -errno. */
DA_EXPORT int da_alsa_probe(const char *name, int capture, da_alsa_caps *out, char *msg, size_t len);

#define DA_ALSA_SERVED_JACK 1
#define DA_ALSA_SERVED_PULSE 2
/* Which server's plugin serves PCM `name` in one direction, from the
 * configuration: DA_ALSA_SERVED_JACK when it is (or wraps) a `type jack` PCM,
 * with the JACK ports it connects to in buf (each name ended by \x01, in
 * channel order); DA_ALSA_SERVED_PULSE when it is a `type pulse` PCM; 0 for
 * any other; -ENOSPC when buf is short; or a negative errno. */
DA_EXPORT int da_alsa_served_by(const char *name, int capture, char *buf, size_t len, char *msg,
                      size_t msg_len);

/* A stream on one PCM name: capture and/or playback, one I/O thread. */
DA_EXPORT int da_alsa_new(da_alsa **out, da_engine *e, const char *name, uint32_t in_ch, uint32_t out_ch,
                uint32_t rate, uint32_t frames, char *msg, size_t len);
DA_EXPORT int da_alsa_start(da_alsa *a, char *msg, size_t len);
DA_EXPORT void da_alsa_stop(da_alsa *a);
DA_EXPORT void da_alsa_free(da_alsa *a);
/* Frames: capture delay and playback delay as last measured (-1: not yet). */
DA_EXPORT void da_alsa_latency(da_alsa *a, int64_t *capture, int64_t *playback);
/* 1 when snd_pcm_link joined capture and playback (they start as one). */
DA_EXPORT int da_alsa_linked(da_alsa *a);
/* How the round trip is measured, set before start. by_position: from the
 * ring positions (avail), which a server plugin keeps in step with its
 * stream positions, rather than from its delay estimates; play_ahead: how far
 * its playback position runs ahead of the server's (frames). The outside
 * figures are what lies beyond the PCM (a server's ports), added to each
 * direction. replays_on_drop: the playback PCM repeats what it last played
 * once dropped (the jack PCM), so stopping lets it play silence first. */
DA_EXPORT void da_alsa_set_model(da_alsa *a, int by_position, int64_t play_ahead, int64_t capture_outside,
                       int64_t playback_outside, int replays_on_drop);
