/* The source and the floor of bench/blocking_read.py: a ramp in C.
 *
 *     c_ramp source CHANNELS        plays the ramp on ramp:out_N until killed
 *     c_ramp read SECONDS CHANNELS  reads it on its own inputs (the floor)
 *
 * The source writes frame k of the server's timeline as (k mod 2^20) / 2^20
 * on every channel (exact in float32), from jack_last_frame_time, so a cycle
 * the server lost is a gap in the ramp too. The reader, a client named
 * "ramp-reader", checks every frame in its process callback (C on JACK's
 * real-time thread: nothing can be late but the server) and prints one JSON
 * line: frames read, frames lost, discontinuities. JACK orders a client
 * after the clients it reads from, so there is no race in this loop.
 *
 * No JACK headers are needed: jack_abi.h declares the few functions used.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jack_abi.h"
#define SCALE (1u << 20)

static jack_client_t *client;
static jack_port_t *ports[MAX_CHANNELS];
static int channels;
static volatile sig_atomic_t stop;
/* The reader's counts, written by its process callback. */
static _Atomic uint64_t frames_read, frames_lost, discontinuities;
static int64_t last = -1; /* the last ramp tick seen, -1 before the first */

static int play(jack_nframes_t n, void *arg) {
    (void)arg;
    jack_nframes_t k = jack_last_frame_time(client);
    for (int c = 0; c < channels; c++) {
        float *out = jack_port_get_buffer(ports[c], n);
        for (jack_nframes_t i = 0; i < n; i++) out[i] = (float)((k + i) % SCALE) / (float)SCALE;
    }
    return 0;
}

static int check(jack_nframes_t n, void *arg) {
    (void)arg;
    const float *in = jack_port_get_buffer(ports[0], n);
    for (jack_nframes_t i = 0; i < n; i++) {
        int64_t tick = (int64_t)(in[i] * (float)SCALE + 0.5f);
        if (last >= 0) {
            int64_t step = (tick - last + SCALE) % SCALE;
            if (step != 1) {
                discontinuities++;
                frames_lost += (uint64_t)((step - 1 + SCALE) % SCALE);
            }
        }
        if (tick || last >= 0) last = tick; /* silence before the ramp arrives */
    }
    frames_read += n;
    return 0;
}

static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv) {
    int reading = argc == 4 && !strcmp(argv[1], "read");
    if (!reading && !(argc == 3 && !strcmp(argv[1], "source"))) {
        fprintf(stderr, "usage: %s source CHANNELS | %s read SECONDS CHANNELS\n", argv[0], argv[0]);
        return 2;
    }
    channels = atoi(argv[reading ? 3 : 2]);
    if (channels < 1 || channels > MAX_CHANNELS) return 2;
    int status = 0;
    client = jack_client_open(reading ? "ramp-reader" : "ramp", NO_START_SERVER, &status);
    if (!client) {
        fprintf(stderr, "cannot connect to jackd (status 0x%x)\n", status);
        return 1;
    }
    for (int c = 0; c < channels; c++) {
        char name[16];
        snprintf(name, sizeof name, reading ? "in_%d" : "out_%d", c + 1);
        ports[c] = jack_port_register(client, name, "32 bit float mono audio",
                                      reading ? IS_INPUT : IS_OUTPUT, 0);
    }
    jack_set_process_callback(client, reading ? check : play, NULL);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (jack_activate(client)) return 1;
    if (reading) {
        for (int c = 0; c < channels; c++) {
            char from[32];
            snprintf(from, sizeof from, "ramp:out_%d", c + 1);
            jack_connect(client, from, jack_port_name(ports[c]));
        }
        usleep((useconds_t)(atof(argv[2]) * 1e6));
        printf("{\"frames_read\": %llu, \"frames_lost\": %llu, \"discontinuities\": %llu}\n",
               (unsigned long long)frames_read, (unsigned long long)frames_lost,
               (unsigned long long)discontinuities);
    } else {
        printf("ready\n");
        fflush(stdout);
        while (!stop) pause();
    }
    jack_client_close(client);
    return 0;
}
