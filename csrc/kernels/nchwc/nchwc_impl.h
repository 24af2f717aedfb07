// Reorders and pools of the NCHWc family, compiled once per ISA: include inside a per-ISA
// namespace (the baseline and AVX2 copies must never merge at link time). Plain loops over the
// 8 lanes on purpose: with the AVX2 file's flags each becomes one YMM operation per pixel
// (except MaxPool's NaN-keeping max, which GCC left scalar: it has an explicit AVX2 branch).
// The including file must include <algorithm>, <cstring>, <limits> and nchwc.h first.

using infopt::Geometry;
using infopt::valid_range;
using infopt::nchwc::kLanes;

inline void reorder_to(const float* x, int64_t C, int64_t HW, int64_t cb, int64_t s0, int64_t s1, float* y) {
  const int64_t c0 = cb * kLanes;
  const int lanes = static_cast<int>(std::min<int64_t>(kLanes, C - c0));
  const float* xc = x + c0 * HW;
  if (lanes == kLanes) {
    for (int64_t s = s0; s < s1; ++s) {
      float* d = y + s * kLanes;
      for (int l = 0; l < kLanes; ++l) d[l] = xc[l * HW + s];
    }
    return;
  }
  for (int64_t s = s0; s < s1; ++s) {
    float* d = y + s * kLanes;
    for (int l = 0; l < kLanes; ++l) d[l] = l < lanes ? xc[l * HW + s] : 0.f;
  }
}

inline void reorder_from(const float* x, int lanes, int64_t HW, int64_t s0, int64_t s1, float* y) {
  if (lanes == kLanes) {
    for (int64_t s = s0; s < s1; ++s) {
      const float* src = x + s * kLanes;
      for (int l = 0; l < kLanes; ++l) y[l * HW + s] = src[l];
    }
    return;
  }
  for (int l = 0; l < lanes; ++l)
    for (int64_t s = s0; s < s1; ++s) y[l * HW + s] = x[s * kLanes + l];
}

// The taps [t0, t1) of a window starting at column x0 that fall inside the row (valid_range),
// without its two divisions for the (usual) window that lies inside.
inline void col_taps(int64_t x0, const Geometry& g, int64_t& t0, int64_t& t1) {
  if (x0 >= 0 && x0 + (g.k[2] - 1) * g.d[2] < g.in[2]) {
    t0 = 0, t1 = g.k[2];
    return;
  }
  valid_range(g.k[2], g.d[2], x0, g.in[2], t0, t1);
}

// max that keeps a NaN from either side (ONNX propagates NaN)
inline float max_nan(float m, float v) { return (v > m || v != v) ? v : m; }

#if defined(__AVX2__)
// Max of n >= 1 vectors p[0], p[step], ... that keeps a NaN of any of them (ONNX propagates NaN):
// max_ps(v, m) returns m when either is NaN, so a NaN in the running max m (the first tap) stays,
// and the NaNs of the other taps are found by unordered compares of pairs (one compare per two
// taps) and blended in at the end.
inline __m256 max_taps(const float* p, int64_t step, int64_t n) {
  __m256 m = _mm256_loadu_ps(p), nan = _mm256_setzero_ps();
  int64_t i = 1;
  for (; i + 1 < n; i += 2) {
    const __m256 a = _mm256_loadu_ps(p + i * step), b = _mm256_loadu_ps(p + (i + 1) * step);
    m = _mm256_max_ps(a, _mm256_max_ps(b, m));
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
  }
  if (i < n) {
    const __m256 a = _mm256_loadu_ps(p + i * step);
    m = _mm256_max_ps(a, m);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  }
  return _mm256_blendv_ps(m, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()), nan);
}

// Separable max pool of one output row (no column dilation): the vertical max of every input
// column the row's windows touch, once, then each window's horizontal max over those columns.
// A 3x3 stride-2 window thus reads each input pixel of its rows once, not 1.5 times, and
// compares half as often.
constexpr int64_t kSeparableCols = 512;
inline bool maxpool_row_separable(const float* x, const Geometry& g, int64_t oy, float* y) {
  const int64_t W = g.in[2], y0 = oy * g.s[1] - g.pb[1];
  const int64_t c0 = std::max<int64_t>(0, -g.pb[2]);
  const int64_t c1 = std::min(W, (g.out[2] - 1) * g.s[2] - g.pb[2] + g.k[2]);
  if (g.d[2] != 1 || c1 - c0 > kSeparableCols) return false;
  int64_t ky0, ky1;
  valid_range(g.k[1], g.d[1], y0, g.in[1], ky0, ky1);
  alignas(32) float col[kSeparableCols * kLanes];
  if (ky1 <= ky0) {  // no input row in the window (all padding): -inf, as the general path gives
    for (int64_t ox = 0; ox < g.out[2]; ++ox)
      _mm256_storeu_ps(y + ox * kLanes, _mm256_set1_ps(-std::numeric_limits<float>::infinity()));
    return true;
  }
  const float* top = x + (y0 + ky0 * g.d[1]) * W * kLanes;
  const int64_t rows = ky1 - ky0, rstep = g.d[1] * W * kLanes;
  for (int64_t c = c0; c < c1; ++c) _mm256_store_ps(col + (c - c0) * kLanes, max_taps(top + c * kLanes, rstep, rows));
  for (int64_t ox = 0; ox < g.out[2]; ++ox) {
    const int64_t x0 = ox * g.s[2] - g.pb[2];
    int64_t kx0, kx1;
    col_taps(x0, g, kx0, kx1);
    if (kx1 <= kx0) {
      _mm256_storeu_ps(y + ox * kLanes, _mm256_set1_ps(-std::numeric_limits<float>::infinity()));
      continue;
    }
    _mm256_storeu_ps(y + ox * kLanes, max_taps(col + (x0 + kx0 - c0) * kLanes, kLanes, kx1 - kx0));
  }
  return true;
}
#endif

inline void maxpool_row(const float* x, const Geometry& g, int64_t oy, bool, float* y) {
#if defined(__AVX2__)
  if (maxpool_row_separable(x, g, oy, y)) return;
#endif
  const int64_t W = g.in[2], y0 = oy * g.s[1] - g.pb[1];
  int64_t ky0, ky1;
  valid_range(g.k[1], g.d[1], y0, g.in[1], ky0, ky1);
  for (int64_t ox = 0; ox < g.out[2]; ++ox) {
    const int64_t x0 = ox * g.s[2] - g.pb[2];
    int64_t kx0, kx1;
    col_taps(x0, g, kx0, kx1);
#if defined(__AVX2__)
    // max_nan's branch kept GCC from vectorising the lane loop (scalar compares, a jump per
    // lane: SqueezeNet's pools took 6 ms). max_ps(v, m) returns m when either is NaN, so a NaN
    // tap is tracked in its own mask and merged at the end.
    __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity()), nan = _mm256_setzero_ps();
    for (int64_t ky = ky0; ky < ky1; ++ky) {
      const int64_t row = (y0 + ky * g.d[1]) * W + x0;
      for (int64_t kx = kx0; kx < kx1; ++kx) {
        const __m256 v = _mm256_loadu_ps(x + (row + kx * g.d[2]) * kLanes);
        m = _mm256_max_ps(v, m);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      }
    }
    _mm256_storeu_ps(y + ox * kLanes, _mm256_blendv_ps(m, _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN()), nan));
#else
    float m[kLanes];
    for (int l = 0; l < kLanes; ++l) m[l] = -std::numeric_limits<float>::infinity();
    for (int64_t ky = ky0; ky < ky1; ++ky) {
      const int64_t row = (y0 + ky * g.d[1]) * W + x0;
      for (int64_t kx = kx0; kx < kx1; ++kx) {
        const float* p = x + (row + kx * g.d[2]) * kLanes;
        for (int l = 0; l < kLanes; ++l) m[l] = max_nan(m[l], p[l]);
      }
    }
    for (int l = 0; l < kLanes; ++l) y[ox * kLanes + l] = m[l];
#endif
  }
}

inline void avgpool_row(const float* x, const Geometry& g, int64_t oy, bool count_include_pad, float* y) {
  const int64_t H = g.in[1], W = g.in[2], y0 = oy * g.s[1] - g.pb[1];
  int64_t ky0, ky1, py0, py1;
  valid_range(g.k[1], g.d[1], y0, H, ky0, ky1);
  // count_include_pad counts the explicit padding, not the ceil_mode overhang past it
  valid_range(g.k[1], g.d[1], y0 + g.pb[1], H + g.pb[1] + g.pe[1], py0, py1);
  for (int64_t ox = 0; ox < g.out[2]; ++ox) {
    const int64_t x0 = ox * g.s[2] - g.pb[2];
    int64_t kx0, kx1;
    col_taps(x0, g, kx0, kx1);
    float s[kLanes] = {};
    for (int64_t ky = ky0; ky < ky1; ++ky) {
      const int64_t row = (y0 + ky * g.d[1]) * W + x0;
      for (int64_t kx = kx0; kx < kx1; ++kx) {
        const float* p = x + (row + kx * g.d[2]) * kLanes;
        for (int l = 0; l < kLanes; ++l) s[l] += p[l];
      }
    }
    int64_t cnt = (ky1 - ky0) * (kx1 - kx0);
    if (count_include_pad) {
      int64_t px0, px1;
      valid_range(g.k[2], g.d[2], x0 + g.pb[2], W + g.pb[2] + g.pe[2], px0, px1);
      cnt = (py1 - py0) * (px1 - px0);
    }
    const float div = cnt > 0 ? static_cast<float>(cnt) : 1.f;
    for (int l = 0; l < kLanes; ++l) y[ox * kLanes + l] = cnt > 0 ? s[l] / div : 0.f;
  }
}

inline void global_avgpool(const float* x, int64_t S, float* y) {
  double s[kLanes] = {};
  for (int64_t i = 0; i < S; ++i) {
    const float* p = x + i * kLanes;
    for (int l = 0; l < kLanes; ++l) s[l] += p[l];
  }
  for (int l = 0; l < kLanes; ++l) y[l] = S > 0 ? static_cast<float>(s[l] / static_cast<double>(S)) : 0.f;
}
