/* Counts the allocations and mutex locks made on device threads, for the
 * engine's self-test built with DA_RT_GUARD (tests/_engine/test_selftest.py).
 * Linked with -Wl,--wrap for each function, so every call the engine's
 * objects make goes through here first; a thread that called
 * rt_guard_enter() is a device thread, and any such call on it is counted.
 * GNU ld only: the test that uses it runs on Linux. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
int __real_pthread_mutex_lock(pthread_mutex_t *m);

static _Thread_local int device_thread;
static atomic_long counted;

void rt_guard_enter(void) { device_thread = 1; }
long rt_guard_count(void) { return atomic_load(&counted); }

static void seen(void) {
    if (device_thread) atomic_fetch_add(&counted, 1);
}

void *__wrap_malloc(size_t n) {
    seen();
    return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
    seen();
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n) {
    seen();
    return __real_realloc(p, n);
}

void __wrap_free(void *p) {
    seen();
    __real_free(p);
}

int __wrap_pthread_mutex_lock(pthread_mutex_t *m) {
    seen();
    return __real_pthread_mutex_lock(m);
}
