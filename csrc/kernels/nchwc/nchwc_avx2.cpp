// AVX2/FMA NCHWc kernels. The conv micro-kernel computes NP consecutive output pixels x NB
// 8-channel blocks (NB = 2: up to 6 pixels, 12 YMM accumulators; NB = 1: up to 8): per input
// lane it loads NB weight vectors and broadcasts the NP input values, NP*NB FMAs. Each pixel
// has its own input pointer, so a tile may span output rows (a 7x7 map is 49 pixels in 9
// tiles of 5-6, not 7 rows of 4+3), and every broadcast is pointer + tap offset + immediate.
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
#include "kernels/nchwc/nchwc_winograd_impl.h"

// LANES input lanes of tap offset t: w advances by NB*8 per lane. Pixel p reads lane l at
// xp[p][t + l] (NCHWc input, LS1) or xp[p][t + l*ls] (NCHW planes): base + index + immediate.
// Each pixel's broadcast and FMAs are one opaque asm statement: with plain intrinsics GCC
// rotated the 12 accumulators through vfmadd132/213 forms and parked 3 of them on the stack, a
// store-to-load round trip inside three FMA chains (4-6% of every conv layer). The asm reads x
// without telling GCC; x is the conv input, written only before conv_run starts.
template <int NP, int NB, bool LS1, int LANES>
inline __attribute__((always_inline)) void taps(const float* const (&xp)[NP], int64_t t, int64_t ls,
                                                const float*& w, __m256 (&acc)[NP][NB]) {
#pragma GCC unroll 8
  for (int l = 0; l < LANES; ++l) {
    const int64_t tl = LS1 ? t : t + l * ls;
    __m256 wv[NB];
#pragma GCC unroll 2
    for (int b = 0; b < NB; ++b) wv[b] = _mm256_loadu_ps(w + l * NB * 8 + b * 8);
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) {
      __m256 xv;
      if constexpr (NB == 2) {
        asm("vbroadcastss %c[off](%[x],%[t],4), %[v]\n\t"
            "vfmadd231ps %[w0], %[v], %[a0]\n\t"
            "vfmadd231ps %[w1], %[v], %[a1]"
            : [a0] "+x"(acc[p][0]), [a1] "+x"(acc[p][1]), [v] "=&x"(xv)
            : [x] "r"(xp[p]), [t] "r"(tl), [w0] "x"(wv[0]), [w1] "x"(wv[NB - 1]), [off] "i"(LS1 ? l * 4 : 0));
      } else {
        asm("vbroadcastss %c[off](%[x],%[t],4), %[v]\n\t"
            "vfmadd231ps %[w0], %[v], %[a0]"
            : [a0] "+x"(acc[p][0]), [v] "=&x"(xv)
            : [x] "r"(xp[p]), [t] "r"(tl), [w0] "x"(wv[0]), [off] "i"(LS1 ? l * 4 : 0));
      }
    }
  }
  w += LANES * NB * 8;
}

// All taps of the last, partial channel group (R of its 8 lanes present).
template <int NP, int NB, bool LS1, int R>
inline __attribute__((always_inline)) void rem_taps(const ConvRun& a, const float* const (&xp)[NP], const float*& w,
                                                    __m256 (&acc)[NP][NB]) {
  for (int i = 0; i < a.kh; ++i) {
    const int64_t tr = a.full_groups * a.gstride + i * a.rowstep;
    for (int j = 0; j < a.kw; ++j) {
      taps<NP, NB, LS1, R>(xp, tr + j * a.colstep, a.lstride, w, acc);
      w += (kLanes - R) * NB * 8;
    }
  }
}

// One pass of a tile over channel groups [g0, g1): the part of the taps whose weights are
// reused from L1 by the other tiles of a tile group (see conv_run).
struct Part {
  int64_t g0, g1;
  bool first, last;  // first: accumulators start at 0; last: adds the partial group, stores Y
  float* acc;        // partial sums between passes (NP*NB*8 floats)
};

// Output pixels [q, q + NP) of the run; x0[p] is pixel p's input at tap (0, 0), group 0.
template <int NP, int NB, bool LS1>
inline __attribute__((always_inline)) void tile_body(const ConvRun& a, const float* const* x0, int64_t q,
                                                     const Part& part) {
  const float* xp[NP];
#pragma GCC unroll 8
  for (int p = 0; p < NP; ++p) xp[p] = x0[p];
  __m256 acc[NP][NB];
#pragma GCC unroll 8
  for (int p = 0; p < NP; ++p)
#pragma GCC unroll 2
    for (int b = 0; b < NB; ++b) {
      acc[p][b] = part.first ? _mm256_setzero_ps() : _mm256_load_ps(part.acc + (p * NB + b) * 8);
    }
  const int64_t ls = a.lstride;
  const int kh = a.kh, kw = a.kw;
  const float* w = a.w + part.g0 * kh * kw * kLanes * NB * 8;
  for (int64_t g = part.g0; g < part.g1; ++g) {
    for (int i = 0; i < kh; ++i) {
      const int64_t tr = g * a.gstride + i * a.rowstep;
      for (int j = 0; j < kw; ++j) taps<NP, NB, LS1, 8>(xp, tr + j * a.colstep, ls, w, acc);
    }
  }
  if (!part.last) {
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p)
#pragma GCC unroll 2
      for (int b = 0; b < NB; ++b) _mm256_store_ps(part.acc + (p * NB + b) * 8, acc[p][b]);
    return;
  }
  switch (a.rem_lanes) {  // compile-time lane counts: C = 3 (a first conv) is all remainder
    case 1: rem_taps<NP, NB, LS1, 1>(a, xp, w, acc); break;
    case 2: rem_taps<NP, NB, LS1, 2>(a, xp, w, acc); break;
    case 3: rem_taps<NP, NB, LS1, 3>(a, xp, w, acc); break;
    case 4: rem_taps<NP, NB, LS1, 4>(a, xp, w, acc); break;
    case 5: rem_taps<NP, NB, LS1, 5>(a, xp, w, acc); break;
    case 6: rem_taps<NP, NB, LS1, 6>(a, xp, w, acc); break;
    case 7: rem_taps<NP, NB, LS1, 7>(a, xp, w, acc); break;
    default: break;
  }
  // Epilogue in registers. Relu and Clip keep NaN as the scalar path does (max/min return the
  // second operand when either is NaN).
  const gemm::Act kind = a.act.kind;
#pragma GCC unroll 2
  for (int b = 0; b < NB; ++b) {
    const __m256 bv = a.bias ? _mm256_loadu_ps(a.bias + b * 8) : _mm256_setzero_ps();
    float* y = a.y + b * a.ystride + q * kLanes;
    const float* z = a.z ? a.z + b * a.ystride + q * kLanes : nullptr;
#pragma GCC unroll 8
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

template <int NP, int NB, bool LS1>
void tile(const ConvRun& a, const float* const* x0, int64_t q, const Part& part) {
  tile_body<NP, NB, LS1>(a, x0, q, part);
}

// `count` consecutive tiles of NP pixels from output pixel q, all channel groups in one pass:
// one call per run of equal tiles, so the pixel pointers advance incrementally and the run's
// fields stay in registers (a call per tile, with its pointer array built by the caller, was
// ~15% of a 1x1 conv with 64 input channels).
template <int NP, int NB, bool LS1>
void tiles(const ConvRun& a, int64_t q, int64_t count) {
  const Part part{0, a.full_groups, true, true, nullptr};
  int64_t ow = q % a.ow;
  const float* row = a.x + q / a.ow * a.ohstride;
  for (int64_t t = 0; t < count; ++t, q += NP) {
    const float* xp[NP];
#pragma GCC unroll 8
    for (int p = 0; p < NP; ++p) {
      xp[p] = row + ow * a.pstride;
      if (++ow == a.ow) ow = 0, row += a.ohstride;
    }
    tile_body<NP, NB, LS1>(a, xp, q, part);
  }
}

using TileFn = void (*)(const ConvRun&, const float* const*, int64_t, const Part&);
using TilesFn = void (*)(const ConvRun&, int64_t, int64_t);
// Pixels per tile: 6 x 16 channels (12 accumulators), 8 x 8 channels (8 pixel pointers).
constexpr int kMaxNp2 = 6, kMaxNp1 = 8;
// Tiles per tile group, and the packed weights of one block above which a group's tiles take
// the channel groups in passes of at most kPassBytes of weights (see conv_run).
constexpr int kGroupTiles = 8;
constexpr int64_t kSplitBytes = 128 * 1024, kPassBytes = 16 * 1024;

// Per tile width NP (index; 0 unused): one tile of a weight pass, and a run of equal tiles.
struct TileFns {
  TileFn one;
  TilesFn run;
};

template <int NB, bool LS1, size_t... I>
constexpr std::array<TileFns, sizeof...(I) + 1> make_table(std::index_sequence<I...>) {
  return {TileFns{nullptr, nullptr},
          TileFns{&tile<static_cast<int>(I) + 1, NB, LS1>, &tiles<static_cast<int>(I) + 1, NB, LS1>}...};
}

template <int NB, bool LS1>
const TileFns* table() {
  static constexpr auto t = make_table<NB, LS1>(std::make_index_sequence<NB == 2 ? kMaxNp2 : kMaxNp1>{});
  return t.data();
}

// Tiles are balanced (a run of 14 is 5+5+4, not 6+6+2): a tile of fewer than 4 pixels has too
// few accumulator chains to hide the FMA latency. A block's weights are streamed once per tile;
// when they exceed kSplitBytes (3x3 convs with C >= 256) they no longer stay in L2 next to the
// input (a 7x7 map with C = 512 ran at 3/4 of the C = 128 rate). The tiles of a group of up to
// 8 then take the channel groups in passes of <= 16 KiB of weights, keeping partial sums in a
// stack buffer between passes: the first tile of a pass reads that slice from L2, the next
// ones from L1, and while they run the next slice is prefetched from L3 into L2 (together
// +15% on that layer; smaller weights measured the same either way).
void conv_run(const ConvRun& a) {
  const int maxp = a.nb == 2 ? kMaxNp2 : kMaxNp1;
  const TileFns* fns = a.nb == 2 ? (a.lstride == 1 ? table<2, true>() : table<2, false>())
                                 : (a.lstride == 1 ? table<1, true>() : table<1, false>());
  const int64_t len = a.q1 - a.q0, ntiles = (len + maxp - 1) / maxp;
  if (ntiles <= 0) return;
  const int64_t base = len / ntiles, extra = len % ntiles;
  const int64_t group_bytes = int64_t{a.kh} * a.kw * kLanes * a.nb * 8 * static_cast<int64_t>(sizeof(float));
  const int64_t groups = a.full_groups + (a.rem_lanes ? 1 : 0);
  const int64_t per_pass = groups * group_bytes > kSplitBytes ? std::max<int64_t>(1, kPassBytes / group_bytes)
                                                              : std::max<int64_t>(1, a.full_groups);
  const int64_t passes = std::max<int64_t>(1, (a.full_groups + per_pass - 1) / per_pass);
  if (passes == 1) {
    if (extra) fns[base + 1].run(a, a.q0, extra);
    if (ntiles > extra) fns[base].run(a, a.q0 + extra * (base + 1), ntiles - extra);
    return;
  }
  alignas(32) float accbuf[kGroupTiles][kMaxNp2 * 2 * 8];
  const float* x0[kGroupTiles][kMaxNp1];
  int nps[kGroupTiles];
  int64_t qs[kGroupTiles];
  int64_t q = a.q0, oh = q / a.ow, ow = q % a.ow;
  // tile groups balanced too (9 tiles: 5 + 4, not 8 + 1 whose last tile gets no reuse)
  const int64_t ngroups = (ntiles + kGroupTiles - 1) / kGroupTiles;
  const int64_t gbase = ntiles / ngroups, gextra = ntiles % ngroups;
  const int64_t slice_floats = group_bytes / static_cast<int64_t>(sizeof(float)) * per_pass;
  int64_t t0 = 0;
  for (int64_t gi = 0; t0 < ntiles; ++gi) {
    const int nt = static_cast<int>(std::min<int64_t>(gbase + (gi < gextra ? 1 : 0), ntiles - t0));
    for (int t = 0; t < nt; ++t) {
      const int np = static_cast<int>(base + (t0 + t < extra ? 1 : 0));
      nps[t] = np;
      qs[t] = q;
      for (int p = 0; p < np; ++p) {
        x0[t][p] = a.x + oh * a.ohstride + ow * a.pstride;
        if (++ow == a.ow) ow = 0, ++oh;
      }
      q += np;
    }
    t0 += nt;
    for (int64_t s = 0; s < passes; ++s) {
      const Part part0{s * per_pass, std::min(a.full_groups, (s + 1) * per_pass), s == 0, s == passes - 1, nullptr};
      // the next pass's weight slice (or the next tile group's first) into L2, spread over
      // this pass's tiles, which read theirs from L1
      const float* next = a.w + ((s + 1) % passes) * slice_floats;
      const int64_t lines = passes > 1 ? slice_floats / 16 : 0, per_tile = (lines + nt - 1) / nt;
      for (int t = 0; t < nt; ++t) {
        for (int64_t l = t * per_tile; l < std::min(lines, (t + 1) * per_tile); ++l) {
          _mm_prefetch(reinterpret_cast<const char*>(next + l * 16), _MM_HINT_T1);
        }
        Part part = part0;
        part.acc = accbuf[t];
        fns[nps[t]].one(a, x0[t], qs[t], part);
      }
    }
  }
}

// One FMA per pixel; Relu and Clip in registers (keeping NaN, as the conv epilogue does), the
// padded lanes masked to 0 before the store. K and MASKED are compile-time so the loop carries
// no branch.
template <gemm::Act K, bool MASKED>
void scale_shift_regs(const float* x, int64_t n, __m256 s, __m256 b, __m256 keep, const gemm::Activation& act,
                      float* y) {
  const __m256 lo = _mm256_set1_ps(K == gemm::Act::Clip ? act.p0 : 0.f), hi = _mm256_set1_ps(act.p1);
  for (int64_t p = 0; p < n; ++p) {
    __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(x + p * kLanes), s, b);
    if (K == gemm::Act::Relu) v = _mm256_max_ps(lo, v);
    if (K == gemm::Act::Clip) v = _mm256_min_ps(hi, _mm256_max_ps(lo, v));
    if (MASKED) v = _mm256_and_ps(v, keep);
    _mm256_storeu_ps(y + p * kLanes, v);
  }
}

template <gemm::Act K>
void scale_shift_regs(const float* x, int64_t n, __m256 s, __m256 b, __m256 keep, bool masked,
                      const gemm::Activation& act, float* y) {
  if (masked) {
    scale_shift_regs<K, true>(x, n, s, b, keep, act, y);
  } else {
    scale_shift_regs<K, false>(x, n, s, b, keep, act, y);
  }
}

// Other activations: the affine part of up to 256 pixels (8 KiB, stays in L1), the
// activation function over them, then the padded lanes zeroed (after it: Sigmoid(0) != 0).
void scale_shift(const float* x, int64_t n, const float* scale, const float* shift, int lanes,
                 const gemm::Activation& act, gemm::ActivationFn act_fn, float* y) {
  const __m256 s = _mm256_loadu_ps(scale), b = _mm256_loadu_ps(shift);
  const __m256 keep = _mm256_castsi256_ps(
      _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  const bool masked = lanes < kLanes;
  switch (act.kind) {
    case gemm::Act::None: return scale_shift_regs<gemm::Act::None>(x, n, s, b, keep, masked, act, y);
    case gemm::Act::Relu: return scale_shift_regs<gemm::Act::Relu>(x, n, s, b, keep, masked, act, y);
    case gemm::Act::Clip: return scale_shift_regs<gemm::Act::Clip>(x, n, s, b, keep, masked, act, y);
    default: break;
  }
  constexpr int64_t kPiece = 256;
  for (int64_t p0 = 0; p0 < n; p0 += kPiece) {
    const int64_t m = std::min(kPiece, n - p0);
    float* yp = y + p0 * kLanes;
    scale_shift_regs<gemm::Act::None, false>(x + p0 * kLanes, m, s, b, keep, act, yp);
    act_fn(yp, m * kLanes, act);
    if (masked)
      for (int64_t p = 0; p < m; ++p) _mm256_storeu_ps(yp + p * kLanes, _mm256_and_ps(_mm256_loadu_ps(yp + p * kLanes), keep));
  }
}

}  // namespace isa_avx2

const Variant& avx2_variant() {
  static const Variant v{"infopt_f32_nchwc8__avx2_6x16", Isa::Avx2, isa_avx2::conv_run,
                         isa_avx2::reorder_to, isa_avx2::reorder_from, isa_avx2::maxpool_row,
                         isa_avx2::avgpool_row, isa_avx2::global_avgpool, isa_avx2::scale_shift,
                         {isa_avx2::wino_input<2>, isa_avx2::wino_input<4>},
                         {isa_avx2::wino_output<2>, isa_avx2::wino_output<4>}};
  return v;
}

}  // namespace nchwc
}  // namespace infopt
