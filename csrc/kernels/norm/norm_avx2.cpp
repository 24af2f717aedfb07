// AVX2/FMA row kernels: 8-lane max / exp-sum / scale passes for softmax (terms
// below the normal range flushed to 0, see vmath::exp8_flush) and a
// two-pass (mean, then centred variance) LayerNormalization.
#include <immintrin.h>

#include <cmath>
#include <limits>

#include "kernels/elementwise/vmath_avx2.h"
#include "kernels/norm/norm.h"

namespace infopt {
namespace norm {
namespace {

using vmath::exp8_flush;

inline __m256 load_tail(const float* p, int64_t n) {  // n in [0, 8)
  alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t k = 0; k < n; ++k) buf[k] = p[k];
  return _mm256_load_ps(buf);
}
void softmax_row(const float* x, float* y, int64_t n, bool log) {
  const int64_t nv = n / 8 * 8, tail = n - nv;
  __m256 vmx = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t k = 0; k < nv; k += 8) vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(x + k));
  float mx = vmath::hmax8(vmx);
  for (int64_t k = nv; k < n; ++k) mx = std::max(mx, x[k]);
  if (std::isinf(mx) && mx < 0) mx = 0.f;
  const __m256 m = _mm256_set1_ps(mx);
  __m256 acc = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k < nv; k += 8) {
    const __m256 e = exp8_flush(_mm256_sub_ps(_mm256_loadu_ps(x + k), m));
    if (!log) _mm256_storeu_ps(y + k, e);
    acc = _mm256_add_ps(acc, e);
  }
  float sum = vmath::hsum8(acc);
  if (tail) {
    alignas(32) float buf[8];
    _mm256_store_ps(buf, exp8_flush(_mm256_sub_ps(load_tail(x + nv, tail), m)));
    for (int64_t j = 0; j < tail; ++j) {
      if (!log) y[nv + j] = buf[j];
      sum += buf[j];
    }
  }
  if (log) {
    const __m256 lse = _mm256_set1_ps(std::log(sum) + mx);
    for (k = 0; k < nv; k += 8) _mm256_storeu_ps(y + k, _mm256_sub_ps(_mm256_loadu_ps(x + k), lse));
    for (k = nv; k < n; ++k) y[k] = x[k] - (std::log(sum) + mx);
  } else {
    const float inv = 1.f / sum;
    const __m256 vi = _mm256_set1_ps(inv);
    for (k = 0; k < nv; k += 8) _mm256_storeu_ps(y + k, _mm256_mul_ps(_mm256_loadu_ps(y + k), vi));
    for (k = nv; k < n; ++k) y[k] *= inv;
  }
}

void layernorm_row(const float* x, float* y, int64_t n, const float* scale, const float* bias, float eps, float* mean,
                   float* inv_std) {
  const int64_t nv = n / 8 * 8, tail = n - nv;
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= nv; k += 16) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + k));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + k + 8));
  }
  for (; k < nv; k += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + k));
  if (tail) s1 = _mm256_add_ps(s1, load_tail(x + nv, tail));
  const float mf = n ? vmath::hsum8(_mm256_add_ps(s0, s1)) / static_cast<float>(n) : 0.f;
  const __m256 m = _mm256_set1_ps(mf);
  s0 = _mm256_setzero_ps();
  s1 = _mm256_setzero_ps();
  for (k = 0; k + 16 <= nv; k += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + k), m), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + k + 8), m);
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
  }
  for (; k < nv; k += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + k), m);
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  float var = vmath::hsum8(_mm256_add_ps(s0, s1));
  for (k = nv; k < n; ++k) var += (x[k] - mf) * (x[k] - mf);
  var = n ? var / static_cast<float>(n) : 0.f;
  const float is = 1.f / std::sqrt(var + eps);
  const __m256 vis = _mm256_set1_ps(is);
  auto row = [&](int64_t j, __m256 xv) {
    __m256 r = _mm256_mul_ps(_mm256_sub_ps(xv, m), vis);
    if (scale) r = _mm256_mul_ps(r, _mm256_loadu_ps(scale + j));
    if (bias) r = _mm256_add_ps(r, _mm256_loadu_ps(bias + j));
    return r;
  };
  for (k = 0; k < nv; k += 8) _mm256_storeu_ps(y + k, row(k, _mm256_loadu_ps(x + k)));
  for (k = nv; k < n; ++k) {
    float r = (x[k] - mf) * is;
    if (scale) r *= scale[k];
    if (bias) r += bias[k];
    y[k] = r;
  }
  if (mean) *mean = mf;
  if (inv_std) *inv_std = is;
}

// d^-beta for the betas networks use, from sqrt and division (within a few ulp); other betas
// fall back to std::pow per position.
template <int kBeta4>  // 4 * beta: 2, 3 or 4
inline __m256 inv_pow(__m256 d) {
  if (kBeta4 == 4) return d;
  const __m256 r = _mm256_sqrt_ps(d);
  return kBeta4 == 2 ? r : _mm256_mul_ps(r, _mm256_sqrt_ps(r));  // d^0.5 or d^0.75
}

template <int kBeta4>
void lrn_vec(const float* const* win, int nwin, const float* x, float* y, int64_t n, float bias, float scale) {
  const __m256 b = _mm256_set1_ps(bias), sc = _mm256_set1_ps(scale);
  for (int64_t i = 0; i + 8 <= n; i += 8) {
    __m256 s = _mm256_setzero_ps();
    for (int w = 0; w < nwin; ++w) {
      const __m256 v = _mm256_loadu_ps(win[w] + i);
      s = _mm256_fmadd_ps(v, v, s);
    }
    _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_loadu_ps(x + i), inv_pow<kBeta4>(_mm256_fmadd_ps(sc, s, b))));
  }
}

void lrn_run(const float* const* win, int nwin, const float* x, float* y, int64_t n, float bias, float scale,
             float beta) {
  int64_t done = n / 8 * 8;  // positions the vector path covers (none for other betas)
  if (beta == 0.75f) {
    lrn_vec<3>(win, nwin, x, y, done, bias, scale);
  } else if (beta == 0.5f) {
    lrn_vec<2>(win, nwin, x, y, done, bias, scale);
  } else if (beta == 1.f) {
    lrn_vec<4>(win, nwin, x, y, done, bias, scale);
  } else {
    done = 0;
  }
  for (int64_t i = done; i < n; ++i) {
    float s = 0.f;
    for (int w = 0; w < nwin; ++w) s += win[w][i] * win[w][i];
    y[i] = x[i] / std::pow(bias + scale * s, beta);
  }
}

}  // namespace

const Variant& avx2_variant() {
  static const Variant v{"infopt_f32_norm__avx2", Isa::Avx2, softmax_row, layernorm_row, lrn_run};
  return v;
}

}  // namespace norm
}  // namespace infopt
