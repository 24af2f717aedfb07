// AVX2/FMA attention inner kernels. rows_gemm keeps a block of up to 6 rows x
// 16 columns of C in 12 accumulators, broadcasting A straight from its rows
// and loading B rows as vectors, so neither Q/K^T nor P/V is packed; the
// column tail (< 8) uses masked loads and stores so B and C are never touched
// past column n.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/attention/attention.h"
#include "kernels/elementwise/vmath_avx2.h"

namespace infopt {
namespace attention {
namespace {

constexpr int kRows = 6;

inline __m256i tail_mask(int64_t n) {  // lanes [0, n) set, n in [1, 8)
  alignas(32) static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits + 8 - n));
}

// R rows x (8 * V) columns at column j; V in {1, 2}; `masked` covers the last
// partial vector of a row (V == 1 only).
template <int R, int V, bool masked>
inline void block(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                  const float* scale, __m256i mask) {
  __m256 acc[R][V];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < k; ++p) {
    __m256 bv[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      bv[v] = masked ? _mm256_maskload_ps(b + p * ldb, mask) : _mm256_loadu_ps(b + p * ldb + 8 * v);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + p);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m256 s = _mm256_set1_ps(scale[r]);
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) {
      const __m256 y = _mm256_mul_ps(acc[r][v], s);
      if (masked) {
        _mm256_maskstore_ps(c + r * ldc, mask, y);
      } else {
        _mm256_storeu_ps(c + r * ldc + 8 * v, y);
      }
    }
  }
}

template <int R>
void row_panel(int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
               const float* scale) {
  const __m256i none = _mm256_setzero_si256();
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) block<R, 2, false>(k, a, lda, b + j, ldb, c + j, ldc, scale, none);
  if (j + 8 <= n) {
    block<R, 1, false>(k, a, lda, b + j, ldb, c + j, ldc, scale, none);
    j += 8;
  }
  if (j < n) block<R, 1, true>(k, a, lda, b + j, ldb, c + j, ldc, scale, tail_mask(n - j));
}

void rows_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
               int64_t ldc, float alpha, const float* row_scale) {
  float scale[kRows];
  for (int64_t i = 0; i < m; i += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, m - i);
    for (int64_t r = 0; r < rows; ++r) scale[r] = row_scale ? row_scale[i + r] : alpha;
    const float* ai = a + i * lda;
    float* ci = c + i * ldc;
    switch (rows) {
      case 6: row_panel<6>(n, k, ai, lda, b, ldb, ci, ldc, scale); break;
      case 5: row_panel<5>(n, k, ai, lda, b, ldb, ci, ldc, scale); break;
      case 4: row_panel<4>(n, k, ai, lda, b, ldb, ci, ldc, scale); break;
      case 3: row_panel<3>(n, k, ai, lda, b, ldb, ci, ldc, scale); break;
      case 2: row_panel<2>(n, k, ai, lda, b, ldb, ci, ldc, scale); break;
      default: row_panel<1>(n, k, ai, lda, b, ldb, ci, ldc, scale); break;
    }
  }
}

float exp_row(float* x, int64_t n, const float* mask) {
  const int64_t nv = n / 8 * 8;
  const __m256 neg_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 vmx = neg_inf;
  for (int64_t j = 0; j < nv; j += 8) {
    __m256 v = _mm256_loadu_ps(x + j);
    if (mask) {
      v = _mm256_add_ps(v, _mm256_loadu_ps(mask + j));
      _mm256_storeu_ps(x + j, v);
    }
    vmx = _mm256_max_ps(vmx, v);
  }
  // The tail is staged in a buffer padded with -inf, whose exp adds 0 to the sum.
  alignas(32) float tail[8];
  const int64_t nt = n - nv;
  if (nt) {
    _mm256_store_ps(tail, neg_inf);
    for (int64_t j = 0; j < nt; ++j) tail[j] = x[nv + j] + (mask ? mask[nv + j] : 0.f);
    vmx = _mm256_max_ps(vmx, _mm256_load_ps(tail));
  }
  float mx = vmath::hmax8(vmx);
  if (std::isinf(mx) && mx < 0) mx = 0.f;  // all -inf: exp gives zeros, not NaN
  const __m256 m = _mm256_set1_ps(mx);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= nv; j += 16) {
    const __m256 e0 = vmath::exp8_flush(_mm256_sub_ps(_mm256_loadu_ps(x + j), m));
    const __m256 e1 = vmath::exp8_flush(_mm256_sub_ps(_mm256_loadu_ps(x + j + 8), m));
    _mm256_storeu_ps(x + j, e0);
    _mm256_storeu_ps(x + j + 8, e1);
    s0 = _mm256_add_ps(s0, e0);
    s1 = _mm256_add_ps(s1, e1);
  }
  for (; j < nv; j += 8) {
    const __m256 e = vmath::exp8_flush(_mm256_sub_ps(_mm256_loadu_ps(x + j), m));
    _mm256_storeu_ps(x + j, e);
    s0 = _mm256_add_ps(s0, e);
  }
  if (nt) {
    const __m256 e = vmath::exp8_flush(_mm256_sub_ps(_mm256_load_ps(tail), m));
    _mm256_store_ps(tail, e);
    s1 = _mm256_add_ps(s1, e);
    for (int64_t t = 0; t < nt; ++t) x[nv + t] = tail[t];
  }
  return vmath::hsum8(_mm256_add_ps(s0, s1));
}

}  // namespace

const Variant& avx2_variant() {
  static const Variant v{"infopt_f32_attention__avx2_6x16", Isa::Avx2, rows_gemm, exp_row};
  return v;
}

}  // namespace attention
}  // namespace infopt
