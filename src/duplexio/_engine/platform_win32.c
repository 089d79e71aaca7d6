/* The platform layer on Windows (Win32 API; MinGW and MSVC). See platform.h.
 *
 * Compiled here for x86_64-windows-gnu and run under wine by the engine's
 * C self-test (scripts/cross-check); never run on Windows itself.
 * Real-time means THREAD_PRIORITY_TIME_CRITICAL, the highest an ordinary
 * process may ask for; a host whose library owns the audio thread
 * (PortAudio: WASAPI, ASIO) brings its own, already raised. */
#if defined(_WIN32)

#define WIN32_LEAN_AND_MEAN
#include "engine.h" /* platform.h, and the exported declarations of engine_api.h */

#include <errno.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

/* ---- the clock ---------------------------------------------------------------- */

int64_t da_now_ns(void) {
    static LARGE_INTEGER frequency; /* fixed at boot; a race writes the same */
    LARGE_INTEGER now;
    if (frequency.QuadPart == 0) QueryPerformanceFrequency(&frequency);
    QueryPerformanceCounter(&now);
    /* Split to keep the product inside 64 bits at any frequency. */
    int64_t f = frequency.QuadPart, whole = now.QuadPart / f, rest = now.QuadPart % f;
    return whole * 1000000000LL + rest * 1000000000LL / f;
}
int64_t da_now_raw_ns(void) { return da_now_ns(); }

/* Milliseconds to wait for `ns`, rounded up: Windows waits in whole ms,
 * and ending early would be a missed deadline reported as a timeout. */
static DWORD wait_ms(int64_t ns) {
    if (ns <= 0) return 0;
    int64_t ms = (ns + 999999) / 1000000;
    return ms >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)ms;
}

void da_sleep_ns(int64_t ns) {
    const int64_t until = da_now_ns() + ns;
    for (int64_t left = ns; left > 0; left = until - da_now_ns()) Sleep(wait_ms(left));
}

/* ---- semaphores ----------------------------------------------------------------- */

struct da_sem {
    HANDLE handle;
};

da_sem *da_sem_new(void) {
    da_sem *s = calloc(1, sizeof *s);
    if (s && !(s->handle = CreateSemaphoreW(NULL, 0, LONG_MAX, NULL))) {
        free(s);
        s = NULL;
    }
    return s;
}
void da_sem_free(da_sem *s) {
    if (!s) return;
    CloseHandle(s->handle);
    free(s);
}
void da_sem_post(da_sem *s) { ReleaseSemaphore(s->handle, 1, NULL); }
int da_sem_wait(da_sem *s) { return WaitForSingleObject(s->handle, INFINITE) == WAIT_OBJECT_0 ? 0 : -EINTR; }
int da_sem_wait_until(da_sem *s, int64_t until_ns) {
    /* The wait can end a little before the deadline on the coarse timer:
     * wait again for what is left, so a timeout means the deadline passed. */
    for (;;) {
        DWORD r = WaitForSingleObject(s->handle, wait_ms(until_ns - da_now_ns()));
        if (r == WAIT_OBJECT_0) return 0;
        if (r != WAIT_TIMEOUT || da_now_ns() >= until_ns) return -ETIMEDOUT;
    }
}
int da_sem_trywait(da_sem *s) { return WaitForSingleObject(s->handle, 0) == WAIT_OBJECT_0 ? 0 : -EAGAIN; }

/* ---- threads ------------------------------------------------------------------- */

struct da_thread {
    HANDLE handle;
    void *(*fn)(void *);
    void *arg;
};

static DWORD WINAPI trampoline(LPVOID param) {
    da_thread *t = param;
    t->fn(t->arg);
    return 0;
}

int da_thread_start(da_thread **thread, void *(*fn)(void *), void *arg, int want_realtime,
                    int *realtime) {
    *realtime = 0;
    da_thread *t = calloc(1, sizeof *t);
    if (!t) return ENOMEM;
    t->fn = fn;
    t->arg = arg;
    /* Suspended, so the priority is set before the first instruction runs. */
    t->handle = CreateThread(NULL, 0, trampoline, t, CREATE_SUSPENDED, NULL);
    if (!t->handle) {
        free(t);
        return EAGAIN;
    }
    if (want_realtime) *realtime = SetThreadPriority(t->handle, THREAD_PRIORITY_TIME_CRITICAL) != 0;
    ResumeThread(t->handle);
    *thread = t;
    return 0;
}

/* The trampoline reads t until fn returns, so t is freed only after the
 * thread ended (join) or by whoever outlives it (detach keeps it: a few
 * bytes per detached thread, which only an abandoned close makes). */
void da_thread_join(da_thread *thread) {
    WaitForSingleObject(thread->handle, INFINITE);
    CloseHandle(thread->handle);
    free(thread);
}

void da_thread_detach(da_thread *thread) { CloseHandle(thread->handle); }

int da_thread_is_realtime(void) {
    return GetThreadPriority(GetCurrentThread()) >= THREAD_PRIORITY_TIME_CRITICAL;
}

int da_thread_make_realtime(int priority, char *msg, size_t len) {
    if (SetThreadPriority(GetCurrentThread(), THREAD_PRIORITY_TIME_CRITICAL)) return 0;
    snprintf(msg, len, "THREAD_PRIORITY_TIME_CRITICAL (for priority %d): error %lu", priority,
             (unsigned long)GetLastError());
    return -EPERM;
}

/* ---- processors ---------------------------------------------------------------- */

int da_cpu_current(void) { return (int)GetCurrentProcessorNumber(); }

int da_cpu_allowed(da_cpus *out) {
    DWORD_PTR process, system;
    memset(out, 0, sizeof *out);
    if (!GetProcessAffinityMask(GetCurrentProcess(), &process, &system)) return -ENOSYS;
    out->bits[0] = (uint64_t)process;
    return 0;
}

int da_cpu_pin(int cpu) {
    if (cpu < 0 || cpu >= (int)(8 * sizeof(DWORD_PTR))) return -EINVAL;
    return SetThreadAffinityMask(GetCurrentThread(), (DWORD_PTR)1 << cpu) ? 0 : -EPERM;
}

/* ---- run-time linking ---------------------------------------------------------- */

static SRWLOCK load_lock = SRWLOCK_INIT;

int da_load_library(const char *name, const da_symbol *symbols, size_t count,
                    void (*loaded)(void), void **handle, char *msg, size_t len) {
    int r = 0;
    AcquireSRWLockExclusive(&load_lock);
    if (!*handle) {
        HMODULE h = LoadLibraryA(name);
        if (!h) {
            snprintf(msg, len, "cannot load %s: error %lu", name, (unsigned long)GetLastError());
            r = -ENOENT;
        }
        for (size_t i = 0; h && i < count; i++) {
            FARPROC address = GetProcAddress(h, symbols[i].name);
            if (!address) {
                snprintf(msg, len, "%s lacks %s", name, symbols[i].name);
                FreeLibrary(h);
                h = NULL;
                r = -ENOENT;
                break;
            }
            memcpy(symbols[i].slot, &address, sizeof address);
        }
        if (h && loaded) loaded();
        *handle = (void *)h;
    }
    ReleaseSRWLockExclusive(&load_lock);
    return r;
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int da_platform_win32_unused;
#endif
