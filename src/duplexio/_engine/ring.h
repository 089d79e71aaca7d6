/* The lock-free ring (ring.c) for the engine's own use; Python's side is in
 * engine_api.h. */
#ifndef DA_RING_H
#define DA_RING_H

#include "engine.h"

/* A ring for the engine's own use (the aggregate's); NULL when the sizes are
 * zero or memory is short. da_ring_new is the same for Python. */
da_ring *da_ring_alloc(uint64_t capacity_frames, uint32_t frame_bytes);

#endif
