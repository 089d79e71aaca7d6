/* The part of libjack's ABI the benchmarks' C clients use, declared here so
 * that no JACK headers are needed (Debian ships them apart); the programs
 * link libjack.so.0 by path. */
#ifndef BENCH_JACK_ABI_H
#define BENCH_JACK_ABI_H

#include <stdint.h>

typedef struct jack_client jack_client_t;
typedef struct jack_port jack_port_t;
typedef uint32_t jack_nframes_t;
typedef int (*process_fn)(jack_nframes_t, void *);
typedef int (*xrun_fn)(void *);
jack_client_t *jack_client_open(const char *, int, int *, ...);
int jack_client_close(jack_client_t *);
jack_port_t *jack_port_register(jack_client_t *, const char *, const char *, unsigned long,
                                unsigned long);
const char *jack_port_name(const jack_port_t *);
void *jack_port_get_buffer(jack_port_t *, jack_nframes_t);
int jack_set_process_callback(jack_client_t *, process_fn, void *);
int jack_set_xrun_callback(jack_client_t *, xrun_fn, void *);
int jack_activate(jack_client_t *);
int jack_deactivate(jack_client_t *);
int jack_connect(jack_client_t *, const char *, const char *);
jack_nframes_t jack_last_frame_time(const jack_client_t *);

enum { NO_START_SERVER = 0x01, IS_INPUT = 0x1, IS_OUTPUT = 0x2, MAX_CHANNELS = 32 };

#endif
