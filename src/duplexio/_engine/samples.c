/* Sample conversion: the one converter between the user's formats and the
 * float32 a device thread works in, used by the engine and by every host
 * whose device speaks another format (ALSA's s16/s32).
 *
 * Codes are DA_FMT_* (duplexio.formats.SampleFormat's values). The rules
 * match formats.to_float / from_float bit for bit (tests compare them):
 * integers of b bits scale by 2^(b-1), round half to even, clip to the
 * format's range; unsigned formats are offset by 2^(b-1); float formats are
 * cast as they are. The one NaN rule: NaN becomes silence (the format's
 * equilibrium) in an integer format and stays NaN in a float format.
 *
 * No allocation, no locks: safe on a device thread. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "samples.h"

#include "engine.h"

static int fmt_bits(int f) {
    switch (f) {
    case DA_FMT_I8: case DA_FMT_U8: return 8;
    case DA_FMT_I16: case DA_FMT_U16: return 16;
    case DA_FMT_I24: return 24;
    case DA_FMT_I32: case DA_FMT_U32: case DA_FMT_F32: return 32;
    case DA_FMT_I64: case DA_FMT_U64: case DA_FMT_F64: return 64;
    default: return 0;
    }
}

size_t da_format_bytes(int fmt) {
    return fmt == DA_FMT_I24 ? 4 : (size_t)fmt_bits(fmt) / 8; /* 24 bits in an int32 */
}

static int64_t quantize(double x, double scale) {
    double hi = scale - 1.0;
    if (hi >= scale) hi = nextafter(scale, 0.0); /* 64-bit: scale-1 rounds up */
    if (x != x) return 0;                        /* NaN: silence */
    double v = x * scale;
    if (v < -scale) v = -scale;
    else if (v > hi) v = hi;
    return (int64_t)nearbyint(v);
}

/* dst[index + i*step] = sample i of a strided source, as one of the two
 * source types (float from a device, double for da_convert). */
#define STORE_ALL(SRC)                                                                          \
    do {                                                                                        \
        const int bits = fmt_bits(fmt);                                                         \
        const double scale = ldexp(1.0, bits - 1);                                              \
        const uint64_t offset = bits ? 1ULL << (bits - 1) : 0;                                  \
        switch (fmt) {                                                                          \
        case DA_FMT_F32: STORE_LOOP(float, x); break;                                           \
        case DA_FMT_F64: STORE_LOOP(double, x); break;                                          \
        case DA_FMT_I8: STORE_LOOP(int8_t, quantize(x, scale)); break;                          \
        case DA_FMT_I16: STORE_LOOP(int16_t, quantize(x, scale)); break;                        \
        case DA_FMT_I24: case DA_FMT_I32: STORE_LOOP(int32_t, quantize(x, scale)); break;       \
        case DA_FMT_I64: STORE_LOOP(int64_t, quantize(x, scale)); break;                        \
        case DA_FMT_U8: STORE_LOOP(uint8_t, (uint64_t)quantize(x, scale) + offset); break;      \
        case DA_FMT_U16: STORE_LOOP(uint16_t, (uint64_t)quantize(x, scale) + offset); break;    \
        case DA_FMT_U32: STORE_LOOP(uint32_t, (uint64_t)quantize(x, scale) + offset); break;    \
        case DA_FMT_U64: STORE_LOOP(uint64_t, (uint64_t)quantize(x, scale) + offset); break;    \
        default: break;                                                                         \
        }                                                                                       \
    } while (0)
#define STORE_LOOP(T, EXPR)                                                                     \
    do {                                                                                        \
        T *d = (T *)dst;                                                                        \
        for (size_t i = 0; i < n; i++) {                                                        \
            double x = (double)src[i * src_stride];                                             \
            d[index + i * step] = (T)(EXPR);                                                    \
        }                                                                                       \
    } while (0)

void da_store(int fmt, void *dst, size_t index, size_t step, const float *src, size_t src_stride,
              size_t n) {
    STORE_ALL(src);
}

static void store_double(int fmt, void *dst, size_t index, size_t step, const double *src,
                         size_t src_stride, size_t n) {
    STORE_ALL(src);
}
#undef STORE_LOOP
#undef STORE_ALL

/* Sample i of src in [-1, 1) (integers) or as it is (floats). */
static double load_one(int fmt, const void *src, size_t i, double scale) {
    switch (fmt) {
    case DA_FMT_F32: return ((const float *)src)[i];
    case DA_FMT_F64: return ((const double *)src)[i];
    case DA_FMT_I8: return ((const int8_t *)src)[i] / scale;
    case DA_FMT_I16: return ((const int16_t *)src)[i] / scale;
    case DA_FMT_I24: case DA_FMT_I32: return ((const int32_t *)src)[i] / scale;
    case DA_FMT_I64: return (double)((const int64_t *)src)[i] / scale;
    case DA_FMT_U8: return ((int)((const uint8_t *)src)[i] - 128) / scale;
    case DA_FMT_U16: return ((int32_t)((const uint16_t *)src)[i] - 32768) / scale;
    case DA_FMT_U32: return ((int64_t)((const uint32_t *)src)[i] - 2147483648LL) / scale;
    case DA_FMT_U64: return (double)(int64_t)(((const uint64_t *)src)[i] - (1ULL << 63)) / scale;
    default: return 0.0;
    }
}

void da_load(int fmt, const void *src, size_t index, size_t step, float *dst, size_t dst_stride,
             size_t n) {
    const double scale = ldexp(1.0, fmt_bits(fmt) - 1);
    if (fmt == DA_FMT_F32 && step == 1 && dst_stride == 1) {
        memcpy(dst, (const float *)src + index, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++)
        dst[i * dst_stride] = (float)load_one(fmt, src, index + i * step, scale);
}

void da_fill_equilibrium(int fmt, void *dst, size_t n) {
    if (fmt < DA_FMT_U8 || fmt > DA_FMT_U64) {
        memset(dst, 0, n * da_format_bytes(fmt));
        return;
    }
    const double zero = 0.0;
    for (size_t i = 0; i < n; i++) store_double(fmt, dst, i, 1, &zero, 0, 1);
}

int da_convert(const void *src, int src_format, void *dst, int dst_format, size_t n, char *msg,
               size_t len) {
    if (!fmt_bits(src_format) || !fmt_bits(dst_format))
        return da_say(msg, len, -EINVAL, "no conversion from format %d to %d", src_format,
                      dst_format);
    const double scale = ldexp(1.0, fmt_bits(src_format) - 1);
    for (size_t i = 0; i < n; i++) {
        double x = load_one(src_format, src, i, scale);
        store_double(dst_format, dst, i, 1, &x, 0, 1);
    }
    return 0;
}
