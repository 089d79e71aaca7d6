/* Two devices as one duplex device (aggregate.c): what the engine's cycles
 * call. Python's side (da_agg_new, ...) is in engine_api.h. */
#ifndef DA_AGGREGATE_H
#define DA_AGGREGATE_H

#include "engine.h"

/* The input device's cycle (its engine feeds the aggregate). */
void da_agg_push(da_agg *a, const float *const *in, size_t in_stride, uint32_t frames,
                 const da_cycle_time *t, int device_xrun);
/* The output device's cycle: the aggregate's input for it, one array per
 * channel, on the output's clock; *xrun set when the input is not
 * continuous with the last block's, *input_device_ns to the capture
 * instant of its first frame. */
const float *const *da_agg_pull(da_agg *a, uint32_t frames, const da_cycle_time *t, int *xrun,
                                int64_t *input_device_ns);

#endif
