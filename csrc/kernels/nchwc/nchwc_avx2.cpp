// AVX2/FMA NCHWc kernels. The conv micro-kernel computes NP consecutive output pixels of one
// row x NB 8-channel blocks (NB = 2: up to 6 pixels, 12 YMM accumulators; NB = 1: up to 12):
// per input lane it loads NB weight vectors and broadcasts the NP input values, NP*NB FMAs.
// The input pixel stride is a template constant for NCHWc input at stride 1 or 2 (8 or 16
// floats), so every load is base + immediate; other strides and plain NCHW input (lane stride
// = plane size) use run-time strides. Row tiles are balanced (14 = 5+5+4, not 6+6+2): a tile
// of fewer than 4 pixels has too few accumulator chains to hide the FMA latency.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <utility>

#include "kernels/nchwc/nchwc.h"

namespace infopt {
namespace nchwc {
namespace isa_avx2 {
#include "kernels/nchwc/nchwc_impl.h"

// The lanes [0, LANES) (or [0, lanes) when LANES == 0) of one tap: w advances by NB*8 per lane.
template <int NP, int NB, int PS, bool LS1, int LANES>
inline __attribute__((always_inline)) void taps(const float* xt, int64_t ps, int64_t ls, int lanes, const float*& w,
                                                __m256 (&acc)[NP][NB]) {
  const int64_t pstep = PS ? PS : ps;
  const int n = LANES ? LANES : lanes;
#pragma GCC unroll 8
  for (int l = 0; l < n; ++l) {
    const float* xl = LS1 ? xt + l : xt + l * ls;
    __m256 wv[NB];
#pragma GCC unroll 2
    for (int b = 0; b < NB; ++b) wv[b] = _mm256_loadu_ps(w + b * 8);
#pragma GCC unroll 12
    for (int p = 0; p < NP; ++p) {
      const __m256 xv = _mm256_broadcast_ss(xl + p * pstep);
#pragma GCC unroll 2
      for (int b = 0; b < NB; ++b) acc[p][b] = _mm256_fmadd_ps(xv, wv[b], acc[p][b]);
    }
    w += NB * 8;
  }
}

template <int NP, int NB, int PS, bool LS1>
void tile(const ConvRow& a, int64_t o) {
  __m256 acc[NP][NB];
#pragma GCC unroll 12
  for (int p = 0; p < NP; ++p)
#pragma GCC unroll 2
    for (int b = 0; b < NB; ++b) acc[p][b] = _mm256_setzero_ps();
  const int64_t ps = a.pstride, ls = a.lstride;
  const float* x = a.x + o * ps;
  const float* w = a.w;
  const int kh = a.kh, kw = a.kw;
  for (int64_t g = 0; g < a.full_groups; ++g) {
    const float* xg = x + g * a.gstride;
    for (int i = 0; i < kh; ++i) {
      const float* xr = xg + i * a.rowstep;
      for (int j = 0; j < kw; ++j) taps<NP, NB, PS, LS1, 8>(xr + j * a.colstep, ps, ls, 8, w, acc);
    }
  }
  if (a.rem_lanes) {
    const float* xg = x + a.full_groups * a.gstride;
    const int rem = a.rem_lanes;
    for (int i = 0; i < kh; ++i) {
      const float* xr = xg + i * a.rowstep;
      for (int j = 0; j < kw; ++j) {
        taps<NP, NB, PS, LS1, 0>(xr + j * a.colstep, ps, ls, rem, w, acc);
        w += (kLanes - rem) * NB * 8;
      }
    }
  }
  // Epilogue in registers. Relu and Clip keep NaN as the scalar path does (max/min return the
  // second operand when either is NaN).
  const gemm::Act kind = a.act.kind;
#pragma GCC unroll 2
  for (int b = 0; b < NB; ++b) {
    const __m256 bv = a.bias ? _mm256_loadu_ps(a.bias + b * 8) : _mm256_setzero_ps();
    float* y = a.y + b * a.ystride + o * kLanes;
    const float* z = a.z ? a.z + b * a.ystride + o * kLanes : nullptr;
#pragma GCC unroll 12
    for (int p = 0; p < NP; ++p) {
      __m256 v = _mm256_add_ps(acc[p][b], bv);
      if (z) v = _mm256_add_ps(v, _mm256_loadu_ps(z + p * 8));
      if (kind == gemm::Act::Relu) {
        v = _mm256_max_ps(_mm256_setzero_ps(), v);
      } else if (kind == gemm::Act::Clip) {
        v = _mm256_min_ps(_mm256_set1_ps(a.act.p1), _mm256_max_ps(_mm256_set1_ps(a.act.p0), v));
      }
      _mm256_storeu_ps(y + p * 8, v);
    }
    if (kind != gemm::Act::None && kind != gemm::Act::Relu && kind != gemm::Act::Clip) {
      a.act_fn(y, NP * kLanes, a.act);
    }
  }
}

using TileFn = void (*)(const ConvRow&, int64_t);
constexpr int kMaxNp2 = 6, kMaxNp1 = 12;

template <int NB, int PS, bool LS1, size_t... I>
constexpr std::array<TileFn, sizeof...(I) + 1> make_table(std::index_sequence<I...>) {
  return {nullptr, &tile<static_cast<int>(I) + 1, NB, PS, LS1>...};
}

template <int NB, int PS, bool LS1>
const TileFn* table() {
  static constexpr auto t = make_table<NB, PS, LS1>(std::make_index_sequence<NB == 2 ? kMaxNp2 : kMaxNp1>{});
  return t.data();
}

template <int NB>
const TileFn* pick(const ConvRow& a) {
  if (a.lstride == 1 && a.pstride == 8) return table<NB, 8, true>();
  if (a.lstride == 1 && a.pstride == 16) return table<NB, 16, true>();
  if (a.lstride == 1) return table<NB, 0, true>();
  return table<NB, 0, false>();
}

void conv_row(const ConvRow& a) {
  const int maxp = a.nb == 2 ? kMaxNp2 : kMaxNp1;
  const TileFn* fns = a.nb == 2 ? pick<2>(a) : pick<1>(a);
  const int64_t ntiles = (a.ow + maxp - 1) / maxp;
  if (ntiles == 0) return;
  const int64_t base = a.ow / ntiles, extra = a.ow % ntiles;
  int64_t o = 0;
  for (int64_t t = 0; t < ntiles; ++t) {
    const int64_t np = base + (t < extra ? 1 : 0);
    fns[np](a, o);
    o += np;
  }
}

}  // namespace isa_avx2

const Variant& avx2_variant() {
  static const Variant v{"infopt_f32_nchwc8__avx2_6x16", Isa::Avx2, isa_avx2::conv_row,
                         isa_avx2::reorder_to, isa_avx2::reorder_from, isa_avx2::maxpool_row,
                         isa_avx2::avgpool_row, isa_avx2::global_avgpool};
  return v;
}

}  // namespace nchwc
}  // namespace infopt
