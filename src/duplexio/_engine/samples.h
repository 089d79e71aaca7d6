/* Sample conversion (samples.c): the one converter, used by the engine and
 * by a host whose device speaks integers (ALSA). */
#ifndef DA_SAMPLES_H
#define DA_SAMPLES_H

#include <stddef.h>

/* Bytes per sample of a DA_FMT_* format (24-bit in an int32); 0 if unknown. */
size_t da_format_bytes(int fmt);
/* n float samples src[0], src[src_stride], ... into dst[index], dst[index +
 * step], ... in format fmt. */
void da_store(int fmt, void *dst, size_t index, size_t step, const float *src, size_t src_stride,
              size_t n);
/* n samples src[index], src[index + step], ... of format fmt into
 * dst[0], dst[dst_stride], ... as float. */
void da_load(int fmt, const void *src, size_t index, size_t step, float *dst, size_t dst_stride,
             size_t n);
/* n samples of the format's silence. */
void da_fill_equilibrium(int fmt, void *dst, size_t n);

#endif
