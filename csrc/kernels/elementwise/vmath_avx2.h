// AVX2/FMA transcendental functions on 8 floats. Include only from *_avx2.cpp
// files (they need -mavx2 -mfma). Accuracy against float64, measured over the
// whole float range in tests/cpu/test_vmath.py:
//   exp      <= 2 ulp (x > 88.72 -> inf; x < -103.9 -> 0; NaN propagates)
//   sigmoid  <= 3 ulp relative, tanh <= 3 ulp (x + small-|x| branch)
//   erf      <= 4.5e-7 absolute (one rational function; 1 for |x| >= 3.92)
// Polynomials: a degree-7 Taylor series of e^r on |r| <= ln2/2; tanh's odd
// Taylor series below |x| = 0.3; erf: a rational a P(a^2) / Q(a^2) (degrees 5
// and 5 in a^2) fitted for this project on [0, 3.92] by linearised least squares
// reweighted towards minimax (Lawson); float64 fit error 1.6e-8, the rest is
// float32 rounding. It replaced a two-branch form with an exp (2.5x the work).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace infopt {
namespace vmath {

inline __m256 exp8(__m256 x) {
  const __m256 nan_mask = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.f)), _mm256_set1_ps(89.f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2 in two steps (ln2 split into a short high part and the rest).
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.f / 5040.f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 720.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  // 2^n as two factors so n in [-150, 129] never leaves the exponent range of
  // either factor; overflow and underflow then happen in the final products.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  return _mm256_blendv_ps(y, x, nan_mask);
}

// exp(x) with results below the normal range (x < -87.3) flushed to +0 (NaN still
// propagates). For softmax-style sums, where such a term is below the rounding
// of the row's largest term (>= 1): producing subnormals costs a microcode assist
// per element, which made masked attention rows (mask -1e4 or float32 min) ~30%
// slower.
inline __m256 exp8_flush(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.3f);
  const __m256 e = exp8(_mm256_max_ps(lo, x));  // max(lo, NaN) is NaN
  return _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), e);
}

inline __m256 sigmoid8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

inline __m256 tanh8(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.f));
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.f), x);
  const __m256 one = _mm256_set1_ps(1.f);
  // |x| >= 0.3: 1 - 2 / (e^{2|x|} + 1); saturates to 1 through e^{2|x|} = inf.
  const __m256 e = exp8(_mm256_add_ps(a, a));
  const __m256 big = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.f), _mm256_add_ps(e, one)));
  // |x| < 0.3: odd Taylor series to x^9 (next term < 5e-8 relative).
  const __m256 t = _mm256_mul_ps(a, a);
  __m256 p = _mm256_set1_ps(62.f / 2835.f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-17.f / 315.f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(2.f / 15.f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.f / 3.f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, t), a, a);
  const __m256 r = _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.3f), _CMP_LT_OQ));
  const __m256 nan_mask = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  return _mm256_blendv_ps(_mm256_or_ps(r, sign), x, nan_mask);
}

inline __m256 erf8(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.f));
  // erf(3.92) is within 1e-7 of 1; the fit ends there (NaN handled below).
  const __m256 a = _mm256_min_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.f), x), _mm256_set1_ps(3.92f));
  const __m256 t = _mm256_mul_ps(a, a);
  // erf(a) = a P(a^2) / Q(a^2): one division instead of a second branch with an exp.
  __m256 p = _mm256_set1_ps(2.0347589705e-06f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(2.8747896497e-04f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(3.8682638727e-03f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(5.3060281752e-02f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.9276243640e-01f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.1283790224e+00f));
  __m256 q = _mm256_set1_ps(3.8070871717e-05f);
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(1.1881017763e-03f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(1.5172165460e-02f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(1.1508396310e-01f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(5.0416292790e-01f));
  q = _mm256_fmadd_ps(q, t, _mm256_set1_ps(1.f));
  const __m256 r = _mm256_min_ps(_mm256_div_ps(_mm256_mul_ps(a, p), q), _mm256_set1_ps(1.f));
  const __m256 nan_mask = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  return _mm256_blendv_ps(_mm256_or_ps(r, sign), x, nan_mask);
}

// 0.5 x (1 + erf(x / sqrt 2))
inline __m256 gelu8(__m256 x) {
  const __m256 e = erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f)));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
inline __m256 gelu_tanh8(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 in = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.f), tanh8(in)));
}

// Applies f to n floats; the tail goes through an 8-float staging buffer so
// every element takes the same vector path (scalar and vector tails agree).
template <class F>
inline void map8(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t k = 0; k < n - i; ++k) buf[k] = x[i + k];
    _mm256_store_ps(buf, f(_mm256_load_ps(buf)));
    for (int64_t k = 0; k < n - i; ++k) y[i + k] = buf[k];
  }
}

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax8(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace vmath
}  // namespace infopt
