// parity comparison kernels, compiled at run time with NVRTC (src/compare/gpu.rs).
//
// One fused pass over an (expected, actual) pair of n elements computes, per block, the
// statistics of parity's allclose comparison (src/compare/mod.rs): isclose mismatch
// count, max abs and max rel error, the worst element, sum of |a - e|, dot(a, e),
// sum a^2, sum e^2 over finite pairs, and the non-finite mismatches by kind with the
// lowest index of one. Every value is widened to double first, exactly as the CPU path
// does, so each element's verdict is bit-identical to the CPU's.
//
// Determinism: block b owns the contiguous range [b * BLOCK_ELEMS, (b + 1) * BLOCK_ELEMS);
// thread t of the block takes elements t, t + THREADS, ... of that range in increasing
// order; the block's threads are merged by a fixed shared-memory tree; the block writes
// its partial (PARTIAL_WORDS 64-bit words) to partials[b]. No atomics: the host folds the
// partials in block order. Compile with --fmad=false so no multiply-add is contracted
// (the Rust emulation in gpu.rs then reproduces every partial bit for bit).
//
// Half and bfloat16 are read as raw 16-bit words and widened here, with no CUDA header.
//
// Keep THREADS, PER_THREAD and the partial layout in step with gpu.rs.

typedef unsigned long long u64;
typedef unsigned short u16;

#define THREADS 256
#define PER_THREAD 64
#define UNROLL 4
#define BLOCK_ELEMS (THREADS * PER_THREAD)
#define PARTIAL_WORDS 16
#define NONE_INDEX 0xffffffffffffffffull

struct Half16 { u16 bits; };
struct BFloat16 { u16 bits; };

__device__ __forceinline__ double widen(float v) { return (double)v; }
__device__ __forceinline__ double widen(double v) { return v; }

__device__ __forceinline__ double widen(BFloat16 v) {
    return (double)__int_as_float((int)((unsigned)v.bits << 16));
}

__device__ __forceinline__ double widen(Half16 v) {
    u64 sign = (u64)(v.bits >> 15) << 63;
    unsigned exponent = (v.bits >> 10) & 0x1f;
    u64 mantissa = v.bits & 0x3ff;
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24, exact in double.
        double magnitude = (double)mantissa * 5.9604644775390625e-08;
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31) {
        u64 bits = sign | (0x7ffull << 52) | (mantissa << 42);
        return __longlong_as_double((long long)bits);
    }
    u64 bits = sign | ((u64)(exponent - 15 + 1023) << 52) | (mantissa << 42);
    return __longlong_as_double((long long)bits);
}

struct State {
    u64 mismatched;
    double max_abs, max_rel, sum_abs, dot, sum_sq_actual, sum_sq_expected;
    double worst_excess, worst_abs;  // worst_abs == 0: no worst element yet
    u64 worst_index;
    u64 non_finite_pairs, nan_where_finite, inf_where_finite, not_nan, not_same_inf;
    u64 first_non_finite;  // NONE_INDEX: none
};

__device__ __forceinline__ void init(State &s) {
    s.mismatched = 0;
    s.max_abs = 0.0; s.max_rel = 0.0; s.sum_abs = 0.0; s.dot = 0.0;
    s.sum_sq_actual = 0.0; s.sum_sq_expected = 0.0;
    s.worst_excess = 0.0; s.worst_abs = 0.0; s.worst_index = 0;
    s.non_finite_pairs = 0; s.nan_where_finite = 0; s.inf_where_finite = 0;
    s.not_nan = 0; s.not_same_inf = 0;
    s.first_non_finite = NONE_INDEX;
}

__device__ __forceinline__ bool finite(double v) { return v - v == 0.0; }

// One element, the CPU rule (lanes.rs `add_float` / stats.rs `NonFinite::record`);
// elements reach a thread in increasing index order, so ties keep the lower index.
__device__ __forceinline__ void add(State &s, double e, double a, u64 index, double atol, double rtol) {
    if (finite(e) && finite(a)) {
        double abs = fabs(a - e);
        double magnitude = fabs(e);
        double allowed = atol + rtol * magnitude;
        s.mismatched += abs > allowed ? 1 : 0;
        s.sum_abs += abs;
        s.dot += a * e;
        s.sum_sq_actual += a * a;
        s.sum_sq_expected += e * e;
        if (abs > s.max_abs) s.max_abs = abs;
        if (magnitude > 0.0) {
            double rel = abs / magnitude;
            if (rel > s.max_rel) s.max_rel = rel;
        }
        if (abs > 0.0) {
            double excess = abs / allowed;
            if (excess > s.worst_excess || (excess == s.worst_excess && abs > s.worst_abs)) {
                s.worst_excess = excess;
                s.worst_abs = abs;
                s.worst_index = index;
            }
        }
        return;
    }
    s.non_finite_pairs += 1;
    bool mismatch = true;
    if (e != e) {
        mismatch = a == a;
        s.not_nan += mismatch ? 1 : 0;
    } else if (!finite(e)) {
        mismatch = a != e;
        s.not_same_inf += mismatch ? 1 : 0;
    } else if (a != a) {
        s.nan_where_finite += 1;
    } else {
        s.inf_where_finite += 1;
    }
    if (mismatch && index < s.first_non_finite) s.first_non_finite = index;
}

// Merges `b` into `a`; sums in the order a + b. The worst element is the maximum of
// (excess, abs, lower index), a total order, so the merge order cannot change it.
__device__ __forceinline__ void merge(State &a, const State &b) {
    a.mismatched += b.mismatched;
    if (b.max_abs > a.max_abs) a.max_abs = b.max_abs;
    if (b.max_rel > a.max_rel) a.max_rel = b.max_rel;
    a.sum_abs += b.sum_abs;
    a.dot += b.dot;
    a.sum_sq_actual += b.sum_sq_actual;
    a.sum_sq_expected += b.sum_sq_expected;
    if (b.worst_abs > 0.0) {
        bool worse = a.worst_abs == 0.0 || b.worst_excess > a.worst_excess ||
            (b.worst_excess == a.worst_excess &&
             (b.worst_abs > a.worst_abs || (b.worst_abs == a.worst_abs && b.worst_index < a.worst_index)));
        if (worse) {
            a.worst_excess = b.worst_excess;
            a.worst_abs = b.worst_abs;
            a.worst_index = b.worst_index;
        }
    }
    a.non_finite_pairs += b.non_finite_pairs;
    a.nan_where_finite += b.nan_where_finite;
    a.inf_where_finite += b.inf_where_finite;
    a.not_nan += b.not_nan;
    a.not_same_inf += b.not_same_inf;
    if (b.first_non_finite < a.first_non_finite) a.first_non_finite = b.first_non_finite;
}

__device__ __forceinline__ u64 word(double v) { return (u64)__double_as_longlong(v); }

template <typename T>
__device__ void compare_block(const T *__restrict__ expected, const T *__restrict__ actual, u64 n, double atol, double rtol,
                              u64 *partials) {
    __shared__ State shared[THREADS];
    unsigned t = threadIdx.x;
    u64 start = (u64)blockIdx.x * BLOCK_ELEMS;
    u64 end = start + BLOCK_ELEMS < n ? start + BLOCK_ELEMS : n;
    State s;
    init(s);
    // UNROLL loads of each tensor in flight per thread, then the elements in index
    // order: the same per-thread order as one element at a time.
    u64 i = start + t;
    for (; i + (UNROLL - 1) * THREADS < end; i += UNROLL * THREADS) {
        double ev[UNROLL], av[UNROLL];
#pragma unroll
        for (int k = 0; k < UNROLL; k++) {
            ev[k] = widen(expected[i + k * THREADS]);
            av[k] = widen(actual[i + k * THREADS]);
        }
#pragma unroll
        for (int k = 0; k < UNROLL; k++) add(s, ev[k], av[k], i + k * THREADS, atol, rtol);
    }
    for (; i < end; i += THREADS) {
        add(s, widen(expected[i]), widen(actual[i]), i, atol, rtol);
    }
    shared[t] = s;
    __syncthreads();
    for (unsigned stride = THREADS / 2; stride > 0; stride >>= 1) {
        if (t < stride) merge(shared[t], shared[t + stride]);
        __syncthreads();
    }
    if (t == 0) {
        const State &r = shared[0];
        u64 *out = partials + (u64)blockIdx.x * PARTIAL_WORDS;
        out[0] = r.mismatched;
        out[1] = word(r.max_abs);
        out[2] = word(r.max_rel);
        out[3] = word(r.sum_abs);
        out[4] = word(r.dot);
        out[5] = word(r.sum_sq_actual);
        out[6] = word(r.sum_sq_expected);
        out[7] = word(r.worst_excess);
        out[8] = word(r.worst_abs);
        out[9] = r.worst_index;
        out[10] = r.non_finite_pairs;
        out[11] = r.nan_where_finite;
        out[12] = r.inf_where_finite;
        out[13] = r.not_nan;
        out[14] = r.not_same_inf;
        out[15] = r.first_non_finite;
    }
}

extern "C" __global__ void __launch_bounds__(THREADS, 3)
parity_compare_f32(const float *e, const float *a, u64 n, double atol, double rtol, u64 *partials) {
    compare_block(e, a, n, atol, rtol, partials);
}

extern "C" __global__ void __launch_bounds__(THREADS, 3)
parity_compare_f64(const double *e, const double *a, u64 n, double atol, double rtol, u64 *partials) {
    compare_block(e, a, n, atol, rtol, partials);
}

extern "C" __global__ void __launch_bounds__(THREADS, 3)
parity_compare_f16(const Half16 *e, const Half16 *a, u64 n, double atol, double rtol, u64 *partials) {
    compare_block(e, a, n, atol, rtol, partials);
}

extern "C" __global__ void __launch_bounds__(THREADS, 3)
parity_compare_bf16(const BFloat16 *e, const BFloat16 *a, u64 n, double atol, double rtol, u64 *partials) {
    compare_block(e, a, n, atol, rtol, partials);
}
