/* The floor of bench/jack_vs_peers.py: a copy-through JACK client in C.
 *
 *     c_client SECONDS CHANNELS [busy]
 *
 * Registers CHANNELS input and output ports, copies each input to its output
 * in the process callback, wires them to system:*, runs SECONDS and prints
 * one JSON line about a window that starts 0.5 s after the start (as the
 * Python rows): callbacks, discontinuities of jack_last_frame_time (and how
 * many an xrun callback flagged before the block that showed them), cycles
 * lost, CPU seconds of the process and of the process thread, and the
 * window's edges on CLOCK_MONOTONIC (to count the server's xruns in it). With "busy" a second thread spins the whole time, the C counterpart
 * of the benchmark's busy Python thread.
 *
 * No JACK headers are needed: jack_abi.h declares the few functions used.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "jack_abi.h"

static jack_client_t *client;
static jack_port_t *in_ports[MAX_CHANNELS], *out_ports[MAX_CHANNELS];
static int channels;
static atomic_int xrun_seen, spinning = 1;
/* Written by the process callback, read at the window's edges. */
static _Atomic uint64_t callbacks, discontinuities, flagged, lost;
static _Atomic int64_t thread_cpu_ns; /* the process thread's CPU at its last callback */
static jack_nframes_t last_frame;

typedef struct {
    uint64_t callbacks, discontinuities, flagged, lost;
    int64_t thread_cpu_ns;
} counts;

static counts snapshot(void) {
    counts c = {callbacks, discontinuities, flagged, lost, thread_cpu_ns};
    return c;
}

static int on_xrun(void *arg) {
    (void)arg;
    atomic_store(&xrun_seen, 1);
    return 0;
}

static int process(jack_nframes_t frames, void *arg) {
    (void)arg;
    for (int c = 0; c < channels; c++)
        memcpy(jack_port_get_buffer(out_ports[c], frames), jack_port_get_buffer(in_ports[c], frames),
               frames * sizeof(float));
    jack_nframes_t now = jack_last_frame_time(client);
    int xrun = atomic_exchange(&xrun_seen, 0);
    if (callbacks && now - last_frame != frames) {
        discontinuities++;
        flagged += xrun;
        if (now - last_frame > frames) lost += (now - last_frame) / frames - 1;
    }
    last_frame = now;
    struct timespec cpu;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
    thread_cpu_ns = (int64_t)cpu.tv_sec * 1000000000LL + cpu.tv_nsec;
    callbacks++;
    return 0;
}

static void *spin(void *arg) {
    (void)arg;
    volatile uint64_t n = 0;
    while (atomic_load_explicit(&spinning, memory_order_relaxed)) n++;
    return NULL;
}

/* CPU seconds of the spinning thread so far (0 without one). */
static double busy_cpu(pthread_t *thread) {
    clockid_t clock;
    struct timespec t;
    if (!thread || pthread_getcpuclockid(*thread, &clock) || clock_gettime(clock, &t)) return 0;
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double seconds_of(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec * 1e-6; }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s SECONDS CHANNELS [busy]\n", argv[0]);
        return 2;
    }
    double seconds = atof(argv[1]);
    channels = atoi(argv[2]);
    if (channels < 1 || channels > MAX_CHANNELS) return 2;
    int status = 0;
    client = jack_client_open("bench-c-client", NO_START_SERVER, &status);
    if (!client) {
        fprintf(stderr, "jack_client_open failed, status 0x%x\n", status);
        return 1;
    }
    char name[32];
    for (int c = 0; c < channels; c++) {
        snprintf(name, sizeof name, "in_%d", c + 1);
        in_ports[c] = jack_port_register(client, name, "32 bit float mono audio", IS_INPUT, 0);
        snprintf(name, sizeof name, "out_%d", c + 1);
        out_ports[c] = jack_port_register(client, name, "32 bit float mono audio", IS_OUTPUT, 0);
        if (!in_ports[c] || !out_ports[c]) return 1;
    }
    jack_set_process_callback(client, process, NULL);
    jack_set_xrun_callback(client, on_xrun, NULL);
    pthread_t busy;
    int with_busy = argc > 3 && strcmp(argv[3], "busy") == 0;
    if (with_busy) pthread_create(&busy, NULL, spin, NULL);
    if (jack_activate(client)) return 1;
    for (int c = 0; c < channels; c++) {
        char system[64];
        snprintf(system, sizeof system, "system:capture_%d", c + 1);
        jack_connect(client, system, jack_port_name(in_ports[c]));
        snprintf(system, sizeof system, "system:playback_%d", c + 1);
        jack_connect(client, jack_port_name(out_ports[c]), system);
    }
    /* The measured window: after the start, before the end (as the Python rows). */
    usleep(500000);
    struct timespec window[2];
    struct rusage r0, r1;
    double busy0 = busy_cpu(with_busy ? &busy : NULL);
    getrusage(RUSAGE_SELF, &r0);
    clock_gettime(CLOCK_MONOTONIC, &window[0]);
    counts c0 = snapshot();
    usleep((useconds_t)(seconds * 1e6));
    counts c1 = snapshot();
    clock_gettime(CLOCK_MONOTONIC, &window[1]);
    getrusage(RUSAGE_SELF, &r1);
    double busy1 = busy_cpu(with_busy ? &busy : NULL);
    jack_deactivate(client);
    atomic_store(&spinning, 0);
    if (with_busy) pthread_join(busy, NULL);
    jack_client_close(client);
    /* The spinning thread is load, not client: its CPU comes off the process's. */
    double process_cpu = seconds_of(r1.ru_utime) - seconds_of(r0.ru_utime) +
                         seconds_of(r1.ru_stime) - seconds_of(r0.ru_stime) - (busy1 - busy0);
    printf("{\"callbacks\": %llu, \"discontinuities\": %llu, \"flagged\": %llu, \"lost\": %llu, "
           "\"process_cpu_s\": %.6f, \"audio_cpu_s\": %.6f, \"start_s\": %.6f, \"end_s\": %.6f}\n",
           (unsigned long long)(c1.callbacks - c0.callbacks),
           (unsigned long long)(c1.discontinuities - c0.discontinuities),
           (unsigned long long)(c1.flagged - c0.flagged), (unsigned long long)(c1.lost - c0.lost),
           process_cpu, (double)(c1.thread_cpu_ns - c0.thread_cpu_ns) * 1e-9,
           (double)window[0].tv_sec + (double)window[0].tv_nsec * 1e-9,
           (double)window[1].tv_sec + (double)window[1].tv_nsec * 1e-9);
    return 0;
}
