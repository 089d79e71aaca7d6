/* The band-limited interpolator (resample.c): the aggregate's resampler and
 * the virtual host's drifting clocks use it. */
#ifndef DA_RESAMPLE_H
#define DA_RESAMPLE_H

#include <stddef.h>

#define DA_RS_HALF 40     /* taps each side of a position */
#define DA_RS_PHASES 256  /* tabulated fractional offsets */
/* Build the kernel table once (idempotent, thread-safe); before any device
 * thread calls da_rs_value. */
void da_rs_prepare(void);
/* The signal at position i + frac (0 <= frac < 1), where x points at sample
 * i and samples are `stride` floats apart: reads x[(1 - DA_RS_HALF) * stride]
 * to x[DA_RS_HALF * stride]. Allocates nothing, takes no lock. */
float da_rs_value(const float *x, size_t stride, double frac);

#endif
