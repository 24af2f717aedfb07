// AVX2/FMA depthwise 3x3 (2-D, dilation 1, stride 1 or 2): the nine taps are
// accumulated in registers for 8 outputs at a time from the zero-padded
// plane; stride 2 de-interleaves even/odd columns with shuffles. Other
// shapes use the generic loops.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/conv/conv.h"

namespace infopt {
namespace conv {
namespace {

// Even and odd elements of p[0..16).
inline void deinterleave(const float* p, __m256& even, __m256& odd) {
  const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
  even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
  odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

template <int S>
void depthwise3x3(const float* x, const float* w, const Geometry& g, float* y) {
  int64_t pd, ph, pw;
  const float* xp = padded_plane(x, g, pd, ph, pw);
  const int64_t ow = g.out[2], oh = g.out[1];
  __m256 wv[9];
  for (int i = 0; i < 9; ++i) wv[i] = _mm256_set1_ps(w[i]);
  alignas(32) float tail[8];
  for (int64_t oy = 0; oy < oh; ++oy) {
    const float* r0 = xp + (oy * g.s[1]) * pw;
    const float* rows[3] = {r0, r0 + pw, r0 + 2 * pw};
    float* yr = y + oy * ow;
    for (int64_t ox = 0; ox < ow; ox += 8) {
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      for (int ky = 0; ky < 3; ++ky) {
        if constexpr (S == 1) {
          const float* p = rows[ky] + ox;
          acc0 = _mm256_fmadd_ps(wv[ky * 3 + 0], _mm256_loadu_ps(p), acc0);
          acc1 = _mm256_fmadd_ps(wv[ky * 3 + 1], _mm256_loadu_ps(p + 1), acc1);
          acc0 = _mm256_fmadd_ps(wv[ky * 3 + 2], _mm256_loadu_ps(p + 2), acc0);
        } else {
          const float* p = rows[ky] + 2 * ox;
          __m256 e0, o0, e2, o2;
          deinterleave(p, e0, o0);
          deinterleave(p + 2, e2, o2);
          acc0 = _mm256_fmadd_ps(wv[ky * 3 + 0], e0, acc0);
          acc1 = _mm256_fmadd_ps(wv[ky * 3 + 1], o0, acc1);
          acc0 = _mm256_fmadd_ps(wv[ky * 3 + 2], e2, acc0);
        }
      }
      const __m256 acc = _mm256_add_ps(acc0, acc1);
      if (ox + 8 <= ow) {
        _mm256_storeu_ps(yr + ox, acc);
      } else {
        _mm256_store_ps(tail, acc);
        std::memcpy(yr + ox, tail, sizeof(float) * static_cast<size_t>(ow - ox));
      }
    }
  }
}

void depthwise_plane(const float* x, const float* w, const Geometry& g, float* y) {
  const bool k3 = g.nd == 2 && g.k[1] == 3 && g.k[2] == 3 && g.d[1] == 1 && g.d[2] == 1;
  // Stride-2 loads read up to 2*ow + 18 floats of a row; the plane slack covers the last row.
  if (k3 && g.s[1] == 1 && g.s[2] == 1) return depthwise3x3<1>(x, w, g, y);
  if (k3 && g.s[1] == 2 && g.s[2] == 2) return depthwise3x3<2>(x, w, g, y);
  depthwise_plane_generic(x, w, g, y);
}

}  // namespace

const Variant& avx2_variant() {
  static const Variant v{"infopt_f32_depthwise__avx2_3x3", Isa::Avx2, depthwise_plane};
  return v;
}

}  // namespace conv
}  // namespace infopt
