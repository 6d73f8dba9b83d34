// group_norm forward for float32 on the CPU: one XLA FFI custom call (jaxnn/_kernels/__init__.py
// builds and registers it; jaxnn/functional/_norm.py calls it).
//
// Why our own kernel: XLA cannot fuse a reduction with the elementwise pass that consumes it, so
// group_norm in XLA ops reads the input from memory at least twice and writes it once, in
// separate loops (2.9 ms on (4, 320, 64, 64) against torch's 2.0 ms, NHWC 5.6 against 2.4). This
// kernel, like torch's, takes each group's statistics and then writes its output while the group
// is still in cache. No library offers a group_norm for JAX on the CPU with torch's semantics.
//
// Statistics: one pass in double precision over d = x - k, where k is the group's first element
// (a shift removes the cancellation of E[x^2] - E[x]^2 when |mean| >> std). Since one sample's
// squared deviation is at most the sum of all of them, (mean - k)^2 <= m * var for a group of m
// values, so the shifted sums lose at most a factor m of double's precision: relative error of
// var below ~(m + log2 m) * 2^-53, far below float32's rounding for any m below 2^20 and still
// below it at 2^28. Output, in float32: y = ((x - hi) - lo) * (rstd * w) + b, the mean kept as
// an unevaluated sum hi + lo (see Params).
//
// Work is split over XLA's intra-op thread pool (ParallelFor). Outputs larger than the caches are
// written with streaming stores.
//
// Layouts, attribute `channels_last`:
//   0: x is (..., N, C, S) (NCHW with the spatial dimensions flattened), each group one
//      contiguous run of C/G * S values.
//   1: x is (..., N, S, C) (channels last).
// weight and bias are (..., C) with the leading dimensions either absent (size 1) or equal to x's
// leading ones (vmap). Outputs: y, x's shape; stats (..., N, G, 3): each group's mean as an
// unevaluated sum hi + lo of float32 values, and 1 / sqrt(var + eps).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#if defined(__SSE__)
#include <immintrin.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// Runs f(i) for i in [0, n) on the caller and on up to `threads - 1` tasks of XLA's intra-op
// pool. The caller claims items too and waits only for items that a started task claimed, so a
// pool whose threads are all busy (even with other such calls) cannot deadlock it: a task that
// starts late finds no items left and returns without touching `f`.
template <class F>
void ParallelFor(ffi::ThreadPool& pool, int64_t n, int64_t threads, const F& f) {
  threads = std::min(threads, n);
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
  struct State {
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
  };
  auto state = std::make_shared<State>();
  const F* fp = &f;
  auto run = [state, n, fp]() {
    for (;;) {
      int64_t i = state->next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      (*fp)(i);
      state->done.fetch_add(1, std::memory_order_release);
    }
  };
  for (int64_t t = 1; t < threads; ++t) {
    auto task = run;  // Schedule takes its task by value (an rvalue)
    pool.Schedule(std::move(task));
  }
  run();
  while (state->done.load(std::memory_order_acquire) < n) std::this_thread::yield();
}

// GCC/Clang vector extensions: 4 doubles, lowered to whatever the target has (SSE2's 2 lanes,
// AVX2's 4, AVX-512 merges pairs); the compiler does not vectorise a double reduction of float
// inputs by itself without -ffast-math, which would also license reassociating everything else.
typedef float V4f __attribute__((vector_size(16)));
typedef double V4d __attribute__((vector_size(32)));

// Shifted sums over a contiguous run: s1 += x - k, s2 += (x - k)^2, in double.
inline void ShiftedSums(const float* x, int64_t m, double k, double& s1, double& s2) {
  V4d a1[4] = {}, a2[4] = {};
  int64_t i = 0;
  for (; i + 16 <= m; i += 16) {
    for (int u = 0; u < 4; ++u) {
      V4f xv;
      std::memcpy(&xv, x + i + 4 * u, sizeof(xv));
      const V4d d = __builtin_convertvector(xv, V4d) - k;
      a1[u] += d;
      a2[u] += d * d;
    }
  }
  const V4d t1 = (a1[0] + a1[1]) + (a1[2] + a1[3]), t2 = (a2[0] + a2[1]) + (a2[2] + a2[3]);
  for (int j = 0; j < 4; ++j) {
    s1 += t1[j];
    s2 += t2[j];
  }
  for (; i < m; ++i) {
    const double d = static_cast<double>(x[i]) - k;
    s1 += d;
    s2 += d * d;
  }
}

// The group's statistics from its shifted sums. `float_ok`: whether the float32 output formula
// (Params) is safe for the group: no value's x - hi can overflow (|x - mean| <= sqrt(m * var):
// one squared deviation is at most their sum) and the float32 scale of any finite weight stays a
// normal number; otherwise (data near float32's range, std above ~1e30, or tiny variances with
// eps 0) the output is computed in double (AffineRunD; channels last: the sample in double),
// rounded once. Subnormal inputs read as 0: XLA's CPU threads flush them (as XLA's own code does).
struct Stats {
  double mean, rstd;
  bool float_ok;
};

inline Stats Finish(double s1, double s2, int64_t m, double k, double eps) {
  const double md = s1 / static_cast<double>(m);
  const double var = std::max(s2 / static_cast<double>(m) - md * md, 0.0);
  const double mean = k + md, rstd = 1.0 / std::sqrt(var + eps);
  const bool float_ok = std::fabs(mean) + std::sqrt(static_cast<double>(m) * var) < 0x1p126 && rstd < 0x1p100 &&
                        rstd > 0x1p-100;
  return {mean, rstd, float_ok};
}

// Whether one channel's float32 parameters are usable (a weight of 0 gives scale 0: fine).
inline bool ScaleOk(double scale) {
  return scale == 0.0 || (std::fabs(scale) >= 0x1p-125 && std::fabs(scale) < 0x1p126);
}

// One output value: ((x - hi) - lo) * scale + shift in float32. mean = hi + lo (hi its float32
// rounding): x - hi is exact for x near the mean (Sterbenz), so data with |mean| >> std keeps
// float32's precision, where torch's x * scale + (b - mean * scale) cancels.
struct Params {
  float hi, lo, scale, shift;
};

inline Params MakeParams(double mean, double rstd, double w, double b) {
  const float hi = static_cast<float>(mean);
  return {hi, static_cast<float>(mean - hi), static_cast<float>(rstd * w), static_cast<float>(b)};
}

typedef float V8f __attribute__((vector_size(32)));

// The statistics for the derivatives: mean as hi + lo (float32 each) and rstd. An rstd below
// float32's normal range (std above 2^126) would be flushed to 0 and make the derivatives 0,
// silently; it is written as nan instead, so the derivatives of that group are nan (torch's
// float32 kernels give nan there for the output too).
inline void WriteStats(float* out, double mean, double rstd) {
  const float hi = static_cast<float>(mean);
  out[0] = hi;
  out[1] = static_cast<float>(mean - hi);
  out[2] = rstd >= 0x1p-126 || rstd == 0.0 || std::isnan(rstd) ? static_cast<float>(rstd) : std::nanf("");
}

// Streaming (non-temporal) stores skip reading each output cache line before writing it: for
// outputs larger than the caches a third less memory traffic. Where the target has no such
// instruction, a plain store.
inline void Store8(float* y, V8f v, bool stream) {
#if defined(__AVX__)
  if (stream) return _mm256_stream_ps(y, reinterpret_cast<__m256>(v));
#elif defined(__SSE__)
  if (stream) {
    V4f lo4 = {v[0], v[1], v[2], v[3]}, hi4 = {v[4], v[5], v[6], v[7]};
    _mm_stream_ps(y, reinterpret_cast<__m128>(lo4));
    return _mm_stream_ps(y + 4, reinterpret_cast<__m128>(hi4));
  }
#endif
  std::memcpy(y, &v, sizeof(v));
}

// Streaming stores are weakly ordered: each thread that made them fences before it reports its
// item done (ParallelFor's release then publishes them).
inline void StreamFence() {
#if defined(__SSE__)
  _mm_sfence();
#endif
}

inline bool Aligned32(const float* p) { return (reinterpret_cast<uintptr_t>(p) & 31) == 0; }

// y = (x - mean) * scale + shift in double, rounded once: the safe path for extreme groups.
inline void AffineRunD(const float* x, float* y, int64_t m, double mean, double scale, double shift) {
  for (int64_t i = 0; i < m; ++i) y[i] = static_cast<float>((static_cast<double>(x[i]) - mean) * scale + shift);
}

// y = ((x - hi) - lo) * scale + shift over a run of m values, one set of parameters.
inline void AffineRun(const float* x, float* y, int64_t m, Params p, bool stream) {
  int64_t i = 0;
  if (stream) {
    for (; i < m && !Aligned32(y + i); ++i) y[i] = ((x[i] - p.hi) - p.lo) * p.scale + p.shift;
  }
  for (; i + 8 <= m; i += 8) {
    V8f xv;
    std::memcpy(&xv, x + i, sizeof(xv));
    Store8(y + i, ((xv - p.hi) - p.lo) * p.scale + p.shift, stream);
  }
  for (; i < m; ++i) y[i] = ((x[i] - p.hi) - p.lo) * p.scale + p.shift;
}

// The same over one channels-last row of c values, parameters per channel (structure of arrays).
inline void AffineRow(const float* x, float* y, int64_t c, const float* hi, const float* lo, const float* scale,
                      const float* shift, bool stream) {
  int64_t i = 0;
  for (; i + 8 <= c; i += 8) {
    V8f xv, h, l, sc, sh;
    std::memcpy(&xv, x + i, sizeof(xv));
    std::memcpy(&h, hi + i, sizeof(h));
    std::memcpy(&l, lo + i, sizeof(l));
    std::memcpy(&sc, scale + i, sizeof(sc));
    std::memcpy(&sh, shift + i, sizeof(sh));
    Store8(y + i, ((xv - h) - l) * sc + sh, stream && Aligned32(y + i));
  }
  for (; i < c; ++i) y[i] = ((x[i] - hi[i]) - lo[i]) * scale[i] + shift[i];
}

int64_t Threads(ffi::ThreadPool& pool, int64_t bytes) {
  // at most one thread per 256 KiB of input: scheduling a task costs microseconds
  return std::max<int64_t>(std::min<int64_t>(pool.num_threads(), bytes >> 18), 1);
}

constexpr int64_t kStreamBytes = int64_t{4} << 20;  // stream outputs larger than ~an L2 cache

ffi::Error GroupNormImpl(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> weight,
                         ffi::Buffer<ffi::F32> bias, ffi::ResultBuffer<ffi::F32> y,
                         ffi::ResultBuffer<ffi::F32> stats, int64_t groups, double eps, bool channels_last) {
  auto dims = x.dimensions();
  if (dims.size() < 3) return ffi::Error::InvalidArgument("jaxnn group_norm kernel: x must have rank >= 3");
  const int64_t c = channels_last ? dims[dims.size() - 1] : dims[dims.size() - 2];
  const int64_t s = channels_last ? dims[dims.size() - 2] : dims[dims.size() - 1];
  int64_t n = 1;
  for (size_t i = 0; i + 2 < dims.size(); ++i) n *= dims[i];
  if (groups <= 0 || c % groups != 0) return ffi::Error::InvalidArgument("jaxnn group_norm kernel: bad groups");
  auto wdims = weight.dimensions();
  if (wdims.size() == 0 || wdims[wdims.size() - 1] != c || weight.element_count() != bias.element_count())
    return ffi::Error::InvalidArgument("jaxnn group_norm kernel: bad weight/bias shape");
  if (static_cast<int64_t>(stats->element_count()) != n * groups * 3)
    return ffi::Error::InvalidArgument("jaxnn group_norm kernel: bad stats shape");
  if (n == 0 || c == 0 || s == 0) return ffi::Error::Success();
  const int64_t wrows = static_cast<int64_t>(weight.element_count()) / c;
  if (wrows <= 0 || n % wrows != 0) return ffi::Error::InvalidArgument("jaxnn group_norm kernel: bad weight rows");
  const int64_t per_wrow = n / wrows;  // samples per row of weight (vmap: one row per batch entry)
  const int64_t cg = c / groups;
  const int64_t m = cg * s;  // values per group
  const float* xp = x.typed_data();
  const float* wp = weight.typed_data();
  const float* bp = bias.typed_data();
  float* yp = y->typed_data();
  float* st = stats->typed_data();  // per (n, g): the mean as hi + lo, and rstd
  const int64_t bytes = n * c * s * static_cast<int64_t>(sizeof(float));
  const int64_t threads = Threads(pool, bytes);
  const bool stream = bytes >= kStreamBytes;

  if (!channels_last) {
    // One item per (n, g): the statistics of its contiguous run, then its output while the run
    // is still in cache.
    ParallelFor(pool, n * groups, threads, [&](int64_t row) {
      const int64_t ni = row / groups, g = row % groups;
      const float* xr = xp + row * m;
      float* yr = yp + row * m;
      const double k = xr[0];
      double s1 = 0, s2 = 0;
      ShiftedSums(xr, m, k, s1, s2);
      const Stats t = Finish(s1, s2, m, k, eps);
      WriteStats(st + row * 3, t.mean, t.rstd);
      const float* w = wp + (ni / per_wrow) * c + g * cg;
      const float* b = bp + (ni / per_wrow) * c + g * cg;
      for (int64_t j = 0; j < cg; ++j) {
        const double scale = t.rstd * static_cast<double>(w[j]);
        if (t.float_ok && ScaleOk(scale))
          AffineRun(xr + j * s, yr + j * s, s, MakeParams(t.mean, t.rstd, w[j], b[j]), stream);
        else
          AffineRunD(xr + j * s, yr + j * s, s, t.mean, scale, static_cast<double>(b[j]));
      }
      if (stream) StreamFence();
    });
    return ffi::Error::Success();
  }

  // Channels last, one sample at a time (its input then stays in the last-level cache between
  // the passes): pass 1 sums each channel over blocks of positions (channels as vector lanes),
  // the blocks' sums are combined per group, pass 2 writes. Samples under 1 MiB are instead
  // spread over the threads whole, one sample per item.
  const int64_t sample_bytes = s * c * static_cast<int64_t>(sizeof(float));
  const bool by_sample = n > 1 && sample_bytes < (int64_t{1} << 20);
  const int64_t inner_threads = by_sample ? 1 : std::max<int64_t>(std::min(threads, sample_bytes >> 18), 1);
  const int64_t block_target = std::max<int64_t>(1, (int64_t{1} << 15) / c);  // ~128 KiB of input
  // at most 4 blocks per thread: the per-block sums (2 * c doubles each) stay small for any c
  const int64_t blocks = std::min((s + block_target - 1) / block_target, 4 * inner_threads);
  const int64_t block = (s + blocks - 1) / blocks;
  auto sample = [&](int64_t ni) {
    const float* xn = xp + ni * s * c;
    float* yn = yp + ni * s * c;
    std::vector<double> shift_k(static_cast<size_t>(c));  // each channel's group shift
    for (int64_t ch = 0; ch < c; ++ch) shift_k[ch] = xn[(ch / cg) * cg];
    std::vector<double> part(static_cast<size_t>(blocks * 2 * c));
    ParallelFor(pool, blocks, inner_threads, [&](int64_t bi) {
      const int64_t s0 = bi * block, se = std::min(s, s0 + block);
      const double* k = shift_k.data();
      double* p1 = part.data() + bi * 2 * c;
      double* p2 = p1 + c;
      std::fill(p1, p1 + 2 * c, 0.0);
      int64_t si = s0;
      for (; si + 4 <= se; si += 4) {  // four rows per load and store of the accumulators
        const float* r0 = xn + si * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const double d0 = static_cast<double>(r0[ch]) - k[ch];
          const double d1 = static_cast<double>(r0[c + ch]) - k[ch];
          const double d2 = static_cast<double>(r0[2 * c + ch]) - k[ch];
          const double d3 = static_cast<double>(r0[3 * c + ch]) - k[ch];
          p1[ch] += (d0 + d1) + (d2 + d3);
          p2[ch] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
        }
      }
      for (; si < se; ++si) {
        const float* row = xn + si * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const double d = static_cast<double>(row[ch]) - k[ch];
          p1[ch] += d;
          p2[ch] += d * d;
        }
      }
    });
    const float* w = wp + (ni / per_wrow) * c;
    const float* b = bp + (ni / per_wrow) * c;
    std::vector<float> prm(static_cast<size_t>(4 * c));  // AffineRow's parameters, structure of arrays
    std::vector<double> dprm(static_cast<size_t>(3 * c));  // the double path: mean, scale, shift
    bool float_ok = true;
    for (int64_t g = 0; g < groups; ++g) {
      double s1 = 0, s2 = 0;
      for (int64_t bi = 0; bi < blocks; ++bi) {
        const double* p1 = part.data() + bi * 2 * c;
        for (int64_t j = g * cg; j < (g + 1) * cg; ++j) {
          s1 += p1[j];
          s2 += p1[c + j];
        }
      }
      const Stats t = Finish(s1, s2, m, shift_k[g * cg], eps);
      WriteStats(st + (ni * groups + g) * 3, t.mean, t.rstd);
      for (int64_t j = g * cg; j < (g + 1) * cg; ++j) {
        const Params p = MakeParams(t.mean, t.rstd, w[j], b[j]);
        prm[j] = p.hi;
        prm[c + j] = p.lo;
        prm[2 * c + j] = p.scale;
        prm[3 * c + j] = p.shift;
        dprm[j] = t.mean;
        dprm[c + j] = t.rstd * static_cast<double>(w[j]);
        dprm[2 * c + j] = static_cast<double>(b[j]);
        float_ok = float_ok && t.float_ok && ScaleOk(dprm[c + j]);
      }
    }
    ParallelFor(pool, blocks, inner_threads, [&](int64_t bi) {
      const int64_t s0 = bi * block, se = std::min(s, s0 + block);
      const float* pr = prm.data();
      const double* dp = dprm.data();
      for (int64_t si = s0; si < se; ++si) {
        if (float_ok) {
          AffineRow(xn + si * c, yn + si * c, c, pr, pr + c, pr + 2 * c, pr + 3 * c, stream);
        } else {  // a group with extreme statistics: this sample in double
          const float* x = xn + si * c;
          float* y = yn + si * c;
          for (int64_t ch = 0; ch < c; ++ch)
            y[ch] = static_cast<float>((static_cast<double>(x[ch]) - dp[ch]) * dp[c + ch] + dp[2 * c + ch]);
        }
      }
      if (stream) StreamFence();
    });
  };
  if (by_sample) {
    ParallelFor(pool, n, threads, sample);
  } else {
    for (int64_t ni = 0; ni < n; ++ni) sample(ni);
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxnnGroupNormF32, GroupNormImpl,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Attr<int64_t>("groups")
                                  .Attr<double>("eps")
                                  .Attr<bool>("channels_last"));
