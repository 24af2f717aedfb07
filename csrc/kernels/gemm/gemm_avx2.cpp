// AVX2/FMA 6x16 micro-kernel: 12 YMM accumulators, 2 for B, 1 broadcast of A.
// Only this file (and other *_avx2.cpp) is compiled with -mavx2 -mfma.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/elementwise/vmath_avx2.h"
#include "kernels/gemm/gemm.h"

#define INFOPT_GEMM_VMATH 1

namespace infopt {
namespace gemm {
namespace isa_avx2 {
#include "kernels/gemm/epilogue_impl.h"

constexpr int MR = 6, NR = 16;

// One 16-wide row of a tile: adds the old C (accumulate), then, with an
// epilogue, the row's bias, the residual and the activation, and stores.
// Relu and Clip keep NaN as the scalar epilogue does: max/min return their
// second operand when either is NaN.
template <bool EP>
inline void finish_row(float* p, __m256 lo, __m256 hi, bool accumulate, const Epilogue* ep, int64_t row,
                       int64_t j0) {
  if (accumulate) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(p));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(p + 8));
  }
  if constexpr (EP) {
    if (ep->bias.ptr && ep->bias.cs == 0) {
      const __m256 bv = _mm256_set1_ps(ep->bias.scale * ep->bias.ptr[row * ep->bias.rs]);
      lo = _mm256_add_ps(lo, bv);
      hi = _mm256_add_ps(hi, bv);
    } else if (ep->bias.ptr) {  // one bias row for all rows (MatMul + bias)
      const __m256 sv = _mm256_set1_ps(ep->bias.scale);
      lo = _mm256_fmadd_ps(sv, _mm256_loadu_ps(ep->bias.ptr + j0), lo);
      hi = _mm256_fmadd_ps(sv, _mm256_loadu_ps(ep->bias.ptr + j0 + 8), hi);
    }
    if (ep->residual.ptr) {
      const float* rp = ep->residual.ptr + row * ep->residual.rs + j0;
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(rp));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(rp + 8));
    }
    if (ep->act.kind == Act::Relu) {
      const __m256 z = _mm256_setzero_ps();
      lo = _mm256_max_ps(z, lo);
      hi = _mm256_max_ps(z, hi);
    } else if (ep->act.kind == Act::Clip) {
      const __m256 l = _mm256_set1_ps(ep->act.p0), u = _mm256_set1_ps(ep->act.p1);
      lo = _mm256_min_ps(u, _mm256_max_ps(l, lo));
      hi = _mm256_min_ps(u, _mm256_max_ps(l, hi));
    } else if (ep->act.kind == Act::Gelu) {  // the same polynomials apply_activation uses
      lo = vmath::gelu8(lo), hi = vmath::gelu8(hi);
    } else if (ep->act.kind == Act::GeluTanh) {
      lo = vmath::gelu_tanh8(lo), hi = vmath::gelu_tanh8(hi);
    } else if (ep->act.kind == Act::Sigmoid) {
      lo = vmath::sigmoid8(lo), hi = vmath::sigmoid8(hi);
    } else if (ep->act.kind == Act::Tanh) {
      lo = vmath::tanh8(lo), hi = vmath::tanh8(hi);
    }
  }
  _mm256_storeu_ps(p, lo);
  _mm256_storeu_ps(p + 8, hi);
}

template <bool EP>
void kernel_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                 const Epilogue* ep, int64_t i0, int64_t j0) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  auto step = [&](int64_t n) {
#pragma GCC unroll 4
    for (int64_t k = 0; k < n; ++k) {
      const __m256 b0 = _mm256_load_ps(b);
      const __m256 b1 = _mm256_load_ps(b + 8);
      _mm_prefetch(reinterpret_cast<const char*>(b + 128), _MM_HINT_T0);
      __m256 av = _mm256_broadcast_ss(a + 0);
      c00 = _mm256_fmadd_ps(av, b0, c00);
      c01 = _mm256_fmadd_ps(av, b1, c01);
      av = _mm256_broadcast_ss(a + 1);
      c10 = _mm256_fmadd_ps(av, b0, c10);
      c11 = _mm256_fmadd_ps(av, b1, c11);
      av = _mm256_broadcast_ss(a + 2);
      c20 = _mm256_fmadd_ps(av, b0, c20);
      c21 = _mm256_fmadd_ps(av, b1, c21);
      av = _mm256_broadcast_ss(a + 3);
      c30 = _mm256_fmadd_ps(av, b0, c30);
      c31 = _mm256_fmadd_ps(av, b1, c31);
      av = _mm256_broadcast_ss(a + 4);
      c40 = _mm256_fmadd_ps(av, b0, c40);
      c41 = _mm256_fmadd_ps(av, b1, c41);
      av = _mm256_broadcast_ss(a + 5);
      c50 = _mm256_fmadd_ps(av, b0, c50);
      c51 = _mm256_fmadd_ps(av, b1, c51);
      a += MR;
      b += NR;
    }
  };
  // The C rows are prefetched one per `spread` k steps, not all six at the start: with a row
  // stride that is a multiple of 4 KiB (N = 1024, 2048) the six rows fall in one L1 set, where
  // the B panel holds four ways, and rows fetched early were evicted again before the final
  // loads (perf, 2048^3: the C loads took 8.5% of the kernel's samples, spread 2.2%).
  const int64_t spread = std::min<int64_t>(16, kc / MR);
  int64_t k = 0;
  for (int i = 0; i < MR; ++i, k += spread) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    step(spread);
  }
  step(kc - k);
  finish_row<EP>(c + 0 * ldc, c00, c01, accumulate, ep, i0 + 0, j0);
  finish_row<EP>(c + 1 * ldc, c10, c11, accumulate, ep, i0 + 1, j0);
  finish_row<EP>(c + 2 * ldc, c20, c21, accumulate, ep, i0 + 2, j0);
  finish_row<EP>(c + 3 * ldc, c30, c31, accumulate, ep, i0 + 3, j0);
  finish_row<EP>(c + 4 * ldc, c40, c41, accumulate, ep, i0 + 4, j0);
  finish_row<EP>(c + 5 * ldc, c50, c51, accumulate, ep, i0 + 5, j0);
}

void ukernel_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  kernel_6x16<false>(kc, a, b, c, ldc, accumulate, nullptr, 0, 0);
}

// m <= 4 rows of a 16-wide panel. With m <= 2, k is unrolled by two with
// separate accumulators so that 8 FMA chains overlap (FMA latency x 2 ports)
// while B streams from memory; with m = 3, 4 that would need 16+ accumulators
// plus the B vectors, more than the 16 YMM registers, and the spills made the
// 4-row tail of a 64-channel conv run at a quarter of the 6x16 kernel's rate:
// one set of 6 or 8 accumulators already keeps the FMA ports busy.
template <int M, bool EP = false>
void small_rows(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                const Epilogue* ep = nullptr, int64_t i0 = 0, int64_t j0 = 0) {
  // Named accumulators: with arrays GCC kept a stack copy of each one, stored every k step.
  __m256 l0 = _mm256_setzero_ps(), h0 = l0, l1 = l0, h1 = l0, l2 = l0, h2 = l0, l3 = l0, h3 = l0;
  int64_t k = 0;
  if constexpr (M <= 2) {
    __m256 m0 = l0, n0 = l0, m1 = l0, n1 = l0;  // odd k
    for (; k + 2 <= kc; k += 2) {
      _mm_prefetch(reinterpret_cast<const char*>(b + 256), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b + 272), _MM_HINT_T0);
      const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
      const __m256 b2 = _mm256_load_ps(b + 16), b3 = _mm256_load_ps(b + 24);
      __m256 x = _mm256_broadcast_ss(a), y = _mm256_broadcast_ss(a + MR);
      l0 = _mm256_fmadd_ps(x, b0, l0), h0 = _mm256_fmadd_ps(x, b1, h0);
      m0 = _mm256_fmadd_ps(y, b2, m0), n0 = _mm256_fmadd_ps(y, b3, n0);
      if constexpr (M > 1) {
        x = _mm256_broadcast_ss(a + 1), y = _mm256_broadcast_ss(a + MR + 1);
        l1 = _mm256_fmadd_ps(x, b0, l1), h1 = _mm256_fmadd_ps(x, b1, h1);
        m1 = _mm256_fmadd_ps(y, b2, m1), n1 = _mm256_fmadd_ps(y, b3, n1);
      }
      a += 2 * MR;
      b += 2 * NR;
    }
    l0 = _mm256_add_ps(l0, m0), h0 = _mm256_add_ps(h0, n0);
    l1 = _mm256_add_ps(l1, m1), h1 = _mm256_add_ps(h1, n1);
  }
#pragma GCC unroll 4
  for (; k < kc; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 128), _MM_HINT_T0);
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    __m256 x = _mm256_broadcast_ss(a);
    l0 = _mm256_fmadd_ps(x, b0, l0), h0 = _mm256_fmadd_ps(x, b1, h0);
    if constexpr (M > 1) x = _mm256_broadcast_ss(a + 1), l1 = _mm256_fmadd_ps(x, b0, l1), h1 = _mm256_fmadd_ps(x, b1, h1);
    if constexpr (M > 2) x = _mm256_broadcast_ss(a + 2), l2 = _mm256_fmadd_ps(x, b0, l2), h2 = _mm256_fmadd_ps(x, b1, h2);
    if constexpr (M > 3) x = _mm256_broadcast_ss(a + 3), l3 = _mm256_fmadd_ps(x, b0, l3), h3 = _mm256_fmadd_ps(x, b1, h3);
    a += MR;
    b += NR;
  }
  finish_row<EP>(c, l0, h0, accumulate, ep, i0, j0);
  if constexpr (M > 1) finish_row<EP>(c + ldc, l1, h1, accumulate, ep, i0 + 1, j0);
  if constexpr (M > 2) finish_row<EP>(c + 2 * ldc, l2, h2, accumulate, ep, i0 + 2, j0);
  if constexpr (M > 3) finish_row<EP>(c + 3 * ldc, l3, h3, accumulate, ep, i0 + 3, j0);
}

void ukernel_small(int64_t m, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  switch (m) {
    case 1: return small_rows<1>(kc, a, b, c, ldc, accumulate);
    case 2: return small_rows<2>(kc, a, b, c, ldc, accumulate);
    case 3: return small_rows<3>(kc, a, b, c, ldc, accumulate);
    default: return small_rows<4>(kc, a, b, c, ldc, accumulate);
  }
}

constexpr int kRowPanels = 4;

// One row over four 16-wide panels: eight accumulators, four B streams read side by side.
void ukernel_row4(int64_t kc, const float* a, const float* b, int64_t panel_stride, float* c, bool accumulate) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  const float* b0 = b;
  const float* b1 = b + panel_stride;
  const float* b2 = b + 2 * panel_stride;
  const float* b3 = b + 3 * panel_stride;
  for (int64_t k = 0; k < kc; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(b0 + 256), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b1 + 256), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b2 + 256), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b3 + 256), _MM_HINT_T0);
    const __m256 x = _mm256_broadcast_ss(a);
    s0 = _mm256_fmadd_ps(x, _mm256_load_ps(b0), s0), s1 = _mm256_fmadd_ps(x, _mm256_load_ps(b0 + 8), s1);
    s2 = _mm256_fmadd_ps(x, _mm256_load_ps(b1), s2), s3 = _mm256_fmadd_ps(x, _mm256_load_ps(b1 + 8), s3);
    s4 = _mm256_fmadd_ps(x, _mm256_load_ps(b2), s4), s5 = _mm256_fmadd_ps(x, _mm256_load_ps(b2 + 8), s5);
    s6 = _mm256_fmadd_ps(x, _mm256_load_ps(b3), s6), s7 = _mm256_fmadd_ps(x, _mm256_load_ps(b3 + 8), s7);
    a += MR;
    b0 += NR, b1 += NR, b2 += NR, b3 += NR;
  }
  finish_row<false>(c, s0, s1, accumulate, nullptr, 0, 0);
  finish_row<false>(c + 16, s2, s3, accumulate, nullptr, 0, 0);
  finish_row<false>(c + 32, s4, s5, accumulate, nullptr, 0, 0);
  finish_row<false>(c + 48, s6, s7, accumulate, nullptr, 0, 0);
}

// m == MR or m <= 4 rows of a full 16-wide panel, epilogue in registers.
void ukernel_ep(int64_t m, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                const Epilogue& ep, int64_t i0, int64_t j0) {
  switch (m) {
    case 1: return small_rows<1, true>(kc, a, b, c, ldc, accumulate, &ep, i0, j0);
    case 2: return small_rows<2, true>(kc, a, b, c, ldc, accumulate, &ep, i0, j0);
    case 3: return small_rows<3, true>(kc, a, b, c, ldc, accumulate, &ep, i0, j0);
    case 4: return small_rows<4, true>(kc, a, b, c, ldc, accumulate, &ep, i0, j0);
    default: return kernel_6x16<true>(kc, a, b, c, ldc, accumulate, &ep, i0, j0);
  }
}

// A 6-row panel of row-major A, 8 columns at a time: the 6 row vectors (plus 2 zero rows) are
// transposed in registers and each column's 6 values stored with one 8-float store that the
// next column's store partly overwrites (the last one masked). The scalar gather it replaces
// took 14% of MiniLM's run (every MatMul packs its activations).
void pack_a_panel6(const float* src, int64_t rs, int64_t kc, float* dst) {
  const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    const __m256 r0 = _mm256_loadu_ps(src + k), r1 = _mm256_loadu_ps(src + rs + k);
    const __m256 r2 = _mm256_loadu_ps(src + 2 * rs + k), r3 = _mm256_loadu_ps(src + 3 * rs + k);
    const __m256 r4 = _mm256_loadu_ps(src + 4 * rs + k), r5 = _mm256_loadu_ps(src + 5 * rs + k);
    const __m256 z = _mm256_setzero_ps();
    // 8x8 transpose of rows r0..r5, 0, 0
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, z, 0x44), u5 = _mm256_shuffle_ps(t4, z, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, z, 0x44), u7 = _mm256_shuffle_ps(t5, z, 0xEE);
    // column j: rows 0-3 in the low 128 bits of u(j%4) (j < 4) or high (j >= 4); rows 4-5 likewise
    float* d = dst + k * MR;
    _mm256_storeu_ps(d + 0 * MR, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(d + 1 * MR, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(d + 2 * MR, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(d + 3 * MR, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(d + 4 * MR, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(d + 5 * MR, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(d + 6 * MR, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_maskstore_ps(d + 7 * MR, six, _mm256_permute2f128_ps(u3, u7, 0x31));
  }
  for (; k < kc; ++k)
    for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[i * rs + k];
}

}  // namespace isa_avx2

const Variant& avx2_variant() {
  static const Variant v{"infopt_f32_gemm__avx2_6x16", Isa::Avx2, isa_avx2::MR, isa_avx2::NR,
                         isa_avx2::ukernel_6x16, isa_avx2::apply_epilogue, isa_avx2::apply_activation,
                         isa_avx2::ukernel_small, isa_avx2::ukernel_ep, isa_avx2::pack_a_panel6,
                         isa_avx2::ukernel_row4, isa_avx2::kRowPanels};
  return v;
}

}  // namespace gemm
}  // namespace infopt
