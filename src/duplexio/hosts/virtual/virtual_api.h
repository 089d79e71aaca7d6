/* The virtual host's C side (virtual.c), in cdef-parsable C: see engine_api.h. */

#define DA_VIRTUAL_LOOPBACK 0
#define DA_VIRTUAL_OUTPUT 1
#define DA_VIRTUAL_INPUT 2

#define DA_FAULT_NONE 0
#define DA_FAULT_DISCONNECT 1
#define DA_FAULT_BUFFER_SIZE 2
#define DA_FAULT_SAMPLE_RATE 3
#define DA_FAULT_GLITCH 4

typedef struct da_virtual da_virtual;

/* A cable between two virtual devices on two clocks: what the output device
 * plays reaches the input device at the instant it is played (the output's
 * latency is the cable's delay), read at the input clock's own instants
 * through the engine's band-limited interpolator. One output stream writes
 * at a time; any number of input streams read. */
typedef struct da_wire da_wire;
DA_EXPORT da_wire *da_wire_new(uint32_t channels);
DA_EXPORT void da_wire_free(da_wire *w);

typedef struct {
    int kind;
    uint32_t in_channels;
    uint32_t out_channels;
    uint32_t frames;
    uint32_t sample_rate;
    uint32_t latency_frames;   /* round trip of the loop; output latency + one period */
    const float *signal;       /* input device: interleaved, signal_channels wide */
    uint64_t signal_frames;
    uint32_t signal_channels;
    int signal_loop;
    int realtime;              /* ask for SCHED_FIFO; falls back quietly */
    double clock_ppm;          /* the clock runs this much fast (ppm; < 0: slow) */
    double wander_ppm;         /* and wanders this much about it, as a sine... */
    double wander_seconds;     /* ...of this period */
    da_wire *wire;             /* output: plays into it; input: captures from it */
} da_virtual_params;

/* Output: -EBUSY when the wire already has a writer (another stream). */
DA_EXPORT int da_virtual_new(da_virtual **out, da_engine *e, const da_virtual_params *p, char *msg,
                   size_t len);
DA_EXPORT int da_virtual_start(da_virtual *v, char *msg, size_t len);
DA_EXPORT void da_virtual_stop(da_virtual *v);
DA_EXPORT void da_virtual_free(da_virtual *v);
DA_EXPORT void da_virtual_fault(da_virtual *v, int fault, int64_t value);
DA_EXPORT void da_virtual_stall(da_virtual *v, int64_t until_ns);
