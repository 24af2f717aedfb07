// Winograd F(m x m, 3 x 3) convolution on NCHWc (stride 1, dilation 1, group 1), m = 2 or 4.
//
// An output tile of m x m pixels is A^T [(G g G^T) . (B^T d B)] A for the (m+2) x (m+2) input
// patch d under it and each 3 x 3 filter g: per (input, output) channel pair, (m+2)^2
// multiplies instead of 9 m^2 (F(2,3): 16 vs 36, F(4,3): 36 vs 144). Summed over input
// channels, the product becomes one [tiles x C] x [C x M] matrix product per point xi of the
// (m+2)^2, which is exactly a 1x1 NCHWc conv: V (the transformed patches) laid out as an image
// of `tiles` pixels and C channels, U = G g G^T packed like 1x1 conv weights. So the variant's
// own conv micro-kernel does the multiplies, and the transforms are a few vector adds per tile
// and channel group (nchwc_winograd_impl.h).
//
// Matrices (B^T, G, A^T) are Lavin & Gray's (arXiv:1509.09308), points 0, +-1 (+-2 for m = 4).
// Float32 error grows with m: on O(1) data about 3e-7 (m = 2) and 6e-6 (m = 4) absolute per
// output, against ~1e-7 for the direct sum; U is computed in double.
//
// A task is a chunk of tiles of one image (and a range of 16-channel output blocks when an
// image has too few tiles to keep the threads busy): it transforms its tiles' patches of all
// input channels into V (<= ~256 KiB, stays in L2), then per output block multiplies all
// points (U's slice of the block is read once per task) into M (A^2 x 16 x tiles floats, L1)
// and transforms M back straight into Y with the bias / residual / activation epilogue.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/nchwc/nchwc.h"
#include "runtime/tensor.h"
#include "runtime/thread_pool.h"

namespace infopt {
namespace nchwc {
namespace {

// G (A x 3) of F(2,3) and F(4,3).
constexpr double kG2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
constexpr double kG4[6][3] = {{1.0 / 4, 0, 0},
                              {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                              {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                              {1.0 / 24, 1.0 / 12, 1.0 / 6},
                              {1.0 / 24, -1.0 / 12, 1.0 / 6},
                              {0, 0, 1}};

// Transformed weights of one tile size: at most this many bytes (per layer) go to m = 4, then
// to m = 2; larger layers stay direct (their transformed weights, 16/9 or 4x the direct ones,
// would be streamed from L3/DRAM per tile chunk).
constexpr int64_t kTile4Bytes = int64_t{3} << 20, kTile2Bytes = int64_t{5} << 20;
// V per task (floats): the chunk of tiles whose transformed patches stay in L2 with U's slice.
constexpr int64_t kChunkFloats = 64 * 1024;

}  // namespace

int winograd_auto_tile(int64_t M, int64_t C) {
  if (C < 16 || M < 16) return 0;  // a short product per point: the transforms would dominate
  if (wino_packed_size(4, M, C) * 4 <= kTile4Bytes) return 4;
  if (wino_packed_size(2, M, C) * 4 <= kTile2Bytes) return 2;
  return 0;
}

// Cost model of one 3x3 stride-1 conv, fitted in model on the dev machine (2 threads; ResNet-50,
// SqueezeNet and DenseNet layers, whose weights come from L3/DRAM every run): multiplies at the
// direct or the Winograd product rate, the transforms per element, and the weights read once at
// the rate they stream in. The weight term is why Winograd loses on small maps: U is 16/9
// (m = 2) or 4x (m = 4) the direct weights while the multiplies it saves shrink with the pixels
// and the tiles' overhang grows (a 13x13 map in 4x4 tiles computes 16x16). Units: seconds on 2
// threads of that machine; only the comparison matters.
double conv3x3_cost(int m, int64_t N, int64_t M, int64_t C, int64_t OH, int64_t OW) {
  constexpr double kDirectFlops = 150e9, kProductFlops = 110e9, kTransformSec = 0.25e-9, kWeightBytes = 10e9;
  const double mc = static_cast<double>(M) * static_cast<double>(blocks_of(C) * kLanes);
  if (m == 0) return 2.0 * mc * 9 * static_cast<double>(N * OH * OW) / kDirectFlops + 4.0 * mc * 9 / kWeightBytes;
  const double a2 = (m + 2) * (m + 2);
  const double tiles = static_cast<double>(N * ((OH + m - 1) / m) * ((OW + m - 1) / m));
  const double elems = tiles * a2 * static_cast<double>(blocks_of(C) * kLanes + M);
  return 2.0 * mc * a2 * tiles / kProductFlops + elems * kTransformSec + 4.0 * mc * a2 / kWeightBytes;
}

int64_t wino_packed_size(int m, int64_t M, int64_t C) { return M * (m + 2) * (m + 2) * blocks_of(C) * kLanes; }

// U = G g G^T per (output, input) channel; the 16-channel block at mb (a trailing 8-channel one)
// is [xi][Cb*8 inputs][16 outputs] at mb * A^2 * Cb*8, zero for inputs past C: each point's
// slice is a packed 1x1 conv weight block.
void wino_pack_weights(int m, const float* w, int64_t M, int64_t C, float* dst) {
  const int A = m + 2;
  const double(*G)[3] = m == 2 ? kG2 : kG4;
  const int64_t Cb8 = blocks_of(C) * kLanes, A2 = A * A;
  std::fill(dst, dst + wino_packed_size(m, M, C), 0.f);
  for (int64_t o = 0; o < M; ++o) {
    const int64_t mb = o / 16 * 16, nbw = std::min<int64_t>(16, M - mb), j = o - mb;
    float* blk = dst + mb * A2 * Cb8;
    for (int64_t c = 0; c < C; ++c) {
      const float* g = w + (o * C + c) * 9;
      double gg[6][3];  // G g
      for (int i = 0; i < A; ++i)
        for (int k = 0; k < 3; ++k) gg[i][k] = G[i][0] * g[k] + G[i][1] * g[3 + k] + G[i][2] * g[6 + k];
      for (int i = 0; i < A; ++i)
        for (int k = 0; k < A; ++k) {
          const double u = gg[i][0] * G[k][0] + gg[i][1] * G[k][1] + gg[i][2] * G[k][2];
          blk[((i * A + k) * Cb8 + c) * nbw + j] = static_cast<float>(u);
        }
    }
  }
}

void winograd_conv(const Variant& v, int m, const WinoConv& a, ThreadPool* pool) {
  const int A = m + 2, A2 = A * A, slot = m == 2 ? 0 : 1;
  const int64_t Cb = blocks_of(a.C), Cb8 = Cb * kLanes;
  const int64_t TH = (a.OH + m - 1) / m, TW = (a.OW + m - 1) / m, T = TH * TW;
  const int64_t nob = (a.M + 15) / 16, Mb = a.M / kLanes;

  // Balanced chunks of at most the V budget, their count rounded up to a multiple of the
  // threads while chunks keep >= 8 tiles (micro-tiles of >= 4 keep the FMA chains busy; 49
  // tiles in chunks of 7 ran as 4 + 3); then output-block groups until there are 2 tasks
  // per thread (a 7x7 map has 16 or 4 tiles).
  const int threads = pool->available();
  const int64_t per_tile = A2 * Cb8;
  const int64_t tb_max = std::max<int64_t>(8, kChunkFloats / per_tile);
  int64_t chunks = (T + tb_max - 1) / tb_max;
  if (threads > 1) {
    const int64_t rounded = (a.N * chunks + threads - 1) / threads * threads / a.N;
    if (rounded > chunks && T / rounded >= 8) chunks = rounded;
  }
  const int64_t tb = (T + chunks - 1) / chunks;
  chunks = (T + tb - 1) / tb;
  const int64_t target = threads > 1 ? 2 * threads : 1;
  const int64_t ogroups = std::min(nob, std::max<int64_t>(1, (target + a.N * chunks - 1) / (a.N * chunks)));
  const int64_t per_group = (nob + ogroups - 1) / ogroups;

  ConvRun base{};  // one point's product: V (tb "pixels", C channels) x U slice -> M
  base.pstride = kLanes;
  base.gstride = tb * kLanes;
  base.lstride = 1;
  base.full_groups = a.C / kLanes;
  base.rem_lanes = static_cast<int>(a.C % kLanes);  // lanes past C of V hold the input's garbage
  base.kh = base.kw = 1;
  base.ystride = tb * kLanes;  // no bias, residual or activation: those go with A^T M A

  pool->run_tasks(a.N * chunks * ogroups, [&](int64_t task) {
    const int64_t og = task % ogroups, chunk = task / ogroups % chunks, n = task / (ogroups * chunks);
    const int64_t t0 = chunk * tb, count = std::min(T, t0 + tb) - t0;
    float* V = scratch_floats(5, static_cast<size_t>(per_tile * tb));
    float* Mt = scratch_floats(6, static_cast<size_t>(A2 * 16 * tb));
    v.wino_input[slot](WinoInput{a.x + n * Cb * a.H * a.W * kLanes, a.H, a.W, a.top, a.left, Cb, TW, t0, count, V,
                                  tb * kLanes});
    for (int64_t ob = og * per_group; ob < std::min(nob, (og + 1) * per_group); ++ob) {
      const int64_t m0 = ob * 16;
      const int nb = static_cast<int>(std::min<int64_t>(2, (a.M - m0) / kLanes));
      const float* u = a.u + m0 * A2 * Cb8;
      ConvRun r = base;
      r.ow = count;
      r.q1 = count;
      r.nb = nb;
      for (int xi = 0; xi < A2; ++xi) {
        r.x = V + xi * Cb * tb * kLanes;
        r.w = u + xi * Cb8 * nb * kLanes;
        r.y = Mt + xi * nb * tb * kLanes;
        v.conv_run(r);
      }
      const int64_t yoff = (n * Mb + m0 / kLanes) * a.OH * a.OW * kLanes;
      v.wino_output[slot](WinoOutput{Mt, tb * kLanes, nb, TW, t0, count, a.OH, a.OW, a.y + yoff,
                                     a.z ? a.z + yoff : nullptr, a.OH * a.OW * kLanes,
                                     a.bias ? a.bias + m0 : nullptr, a.act, a.act_fn});
    }
  });
}

}  // namespace nchwc
}  // namespace infopt
