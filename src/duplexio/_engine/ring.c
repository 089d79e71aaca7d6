/* The engine's one ring buffer: lock-free, one producer and one consumer,
 * whole frames of a fixed size. Blocking streams use one per direction: the
 * device thread is the producer of the input ring and the consumer of the
 * output ring, the Python caller of read()/write() the other side.
 *
 * Positions are running totals of frames (64 bits: centuries at any rate),
 * so "full" and "empty" need no spare slot and a total is also a position
 * on the stream's timeline. Each side stores only its own total, with
 * release order after its copy; the other side loads it with acquire order
 * before trusting the frames it covers. */
#include "ring.h"

#include "engine.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct da_ring {
    uint64_t capacity;              /* frames */
    uint32_t frame_bytes;
    unsigned char *data;
    atomic_uint_fast64_t written;   /* producer's total */
    atomic_uint_fast64_t read;      /* consumer's total */
};

da_ring *da_ring_alloc(uint64_t capacity_frames, uint32_t frame_bytes) {
    if (capacity_frames == 0 || frame_bytes == 0 || capacity_frames > SIZE_MAX / frame_bytes)
        return NULL;
    da_ring *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->data = malloc((size_t)(capacity_frames * frame_bytes));
    if (!r->data) {
        free(r);
        return NULL;
    }
    r->capacity = capacity_frames;
    r->frame_bytes = frame_bytes;
    atomic_init(&r->written, 0);
    atomic_init(&r->read, 0);
    return r;
}

int da_ring_new(da_ring **out, uint64_t capacity_frames, uint32_t frame_bytes, char *msg,
                size_t len) {
    *out = NULL;
    if (capacity_frames == 0 || frame_bytes == 0)
        return da_say(msg, len, -EINVAL, "a ring of %llu frames of %u bytes holds nothing",
                      (unsigned long long)capacity_frames, frame_bytes);
    *out = da_ring_alloc(capacity_frames, frame_bytes);
    if (!*out)
        return da_say(msg, len, -ENOMEM, "no memory for a ring of %llu frames of %u bytes",
                      (unsigned long long)capacity_frames, frame_bytes);
    return 0;
}

void da_ring_free(da_ring *r) {
    if (!r) return;
    free(r->data);
    free(r);
}

uint64_t da_ring_capacity(const da_ring *r) { return r->capacity; }

uint64_t da_ring_readable(da_ring *r) {
    return atomic_load_explicit(&r->written, memory_order_acquire) -
           atomic_load_explicit(&r->read, memory_order_relaxed);
}

uint64_t da_ring_writable(da_ring *r) {
    return r->capacity - (atomic_load_explicit(&r->written, memory_order_relaxed) -
                          atomic_load_explicit(&r->read, memory_order_acquire));
}

uint64_t da_ring_read_total(da_ring *r) { return atomic_load(&r->read); }
uint64_t da_ring_write_total(da_ring *r) { return atomic_load(&r->written); }

/* Copy `frames` frames between the ring at running position `pos` and a
 * flat buffer, in at most two pieces (the wrap). */
static void copy(da_ring *r, uint64_t pos, unsigned char *flat, uint64_t frames, int into_ring) {
    const size_t fb = r->frame_bytes;
    uint64_t at = pos % r->capacity;
    uint64_t first = frames < r->capacity - at ? frames : r->capacity - at;
    unsigned char *ring = r->data + at * fb;
    if (into_ring) {
        memcpy(ring, flat, first * fb);
        memcpy(r->data, flat + first * fb, (frames - first) * fb);
    } else {
        memcpy(flat, ring, first * fb);
        memcpy(flat + first * fb, r->data, (frames - first) * fb);
    }
}

uint64_t da_ring_write(da_ring *r, const void *src, uint64_t frames) {
    uint64_t w = atomic_load_explicit(&r->written, memory_order_relaxed);
    uint64_t room = r->capacity - (w - atomic_load_explicit(&r->read, memory_order_acquire));
    if (frames > room) frames = room;
    copy(r, w, (unsigned char *)src, frames, 1);
    atomic_store_explicit(&r->written, w + frames, memory_order_release);
    return frames;
}

uint64_t da_ring_read(da_ring *r, void *dst, uint64_t frames) {
    uint64_t rd = atomic_load_explicit(&r->read, memory_order_relaxed);
    uint64_t have = atomic_load_explicit(&r->written, memory_order_acquire) - rd;
    if (frames > have) frames = have;
    copy(r, rd, dst, frames, 0);
    atomic_store_explicit(&r->read, rd + frames, memory_order_release);
    return frames;
}
