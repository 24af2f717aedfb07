// NCHWc (channel-blocked, 8 lanes) kernels: reorders, direct convolution, pools, per-channel
// affine (an inference BatchNormalization) with an activation.
//
// Layout: a value of NCHW shape [N, C, H, W] is stored as [N, ceil(C/8), H, W, 8]; channel c
// lives at [n, c / 8, h, w, c % 8], lanes past C hold 0 (kernels never let them change a
// result). One 8-float vector is one pixel of 8 channels, so pools and epilogues vectorise
// across lanes, and a conv micro-kernel reads 16 output channels of weights per input lane.
//
// Conv weights are packed once ([M/16 blocks][ceil(C/8)][KH][KW][8 ci][16 co], a trailing
// 8-channel block [..][8 ci][8 co] when M % 16 == 8; zero rows for ci >= C) and a run of output
// pixels of one 16- or 8-channel block is computed per call of the variant's conv_run: taps are
// reduced in registers and the epilogue (bias, residual, activation) runs before the one store
// of each output tile. (The AVX2 variant takes blocks with > 128 KiB of packed weights in
// passes over the channel groups, partial sums parked in a stack buffer; see conv_run there.)
#pragma once
#include <cstdint>
#include <vector>

#include "cpu_features.h"
#include "kernels/conv/conv_geometry.h"
#include "kernels/gemm/gemm.h"

namespace infopt {
class ThreadPool;
}

namespace infopt {
namespace nchwc {

constexpr int kLanes = 8;

inline int64_t blocks_of(int64_t c) { return (c + kLanes - 1) / kLanes; }

// A run of consecutive output pixels q in [q0, q1) (row-major over OH x OW, so a run may span
// rows) of one image and one output-channel block (nb 8-channel blocks, nb = 1 or 2).
struct ConvRun {
  // Input of output pixel (oh, ow), tap (kh, kw), channel group g, lane l:
  // x[oh*ohstride + ow*pstride + kh*rowstep + kw*colstep + g*gstride + l*lstride].
  const float* x;
  int64_t ohstride, pstride, rowstep, colstep, gstride, lstride;
  int64_t ow;           // output row width
  int64_t q0, q1;
  int64_t full_groups;  // groups of 8 input channels all present
  int rem_lanes;        // channels of the last, partial group (0 when C % 8 == 0)
  int kh, kw;
  const float* w;  // packed block: [groups][kh][kw][8][nb*8]
  int nb;
  float* y;         // block b, pixel q at y[b*ystride + q*8 + lane]
  int64_t ystride;
  const float* z;   // residual, same layout as y, or null
  const float* bias;  // nb*8 floats or null
  gemm::Activation act;
  gemm::ActivationFn act_fn;  // applies any activation to contiguous floats (this ISA's)
};

using ConvRunFn = void (*)(const ConvRun& a);

// [N, C, HW] -> [N, Cb, HW, 8]: the pixels [s0, s1) of group `cb`; x is the image, y the group.
using ReorderToFn = void (*)(const float* x, int64_t C, int64_t HW, int64_t cb, int64_t s0, int64_t s1, float* y);
// [Cb, HW, 8] -> [C, HW]: `lanes` channels of one group, pixels [s0, s1); y is channel 0 of the group.
using ReorderFromFn = void (*)(const float* x, int lanes, int64_t HW, int64_t s0, int64_t s1, float* y);
// One output row `oy` of one 8-channel plane (x: H*W*8 floats, y: OW*8 floats).
using PoolRowFn = void (*)(const float* x, const Geometry& g, int64_t oy, bool count_include_pad, float* y);
// Mean of S pixels of one plane into 8 floats.
using GlobalPoolFn = void (*)(const float* x, int64_t S, float* y);
// n pixels of one 8-channel plane: y = act(x * scale + shift) per lane (scale, shift: 8 floats),
// lanes >= `lanes` of y set to 0 whatever x holds there; act_fn is this ISA's activation.
using ScaleShiftFn = void (*)(const float* x, int64_t n, const float* scale, const float* shift, int lanes,
                              const gemm::Activation& act, gemm::ActivationFn act_fn, float* y);

// Winograd F(m x m, 3 x 3), m = 2 or 4 (A = m + 2 points per axis); see nchwc_winograd.cpp.
// The input transform of tiles [t0, t0 + count) (row-major over tw tiles per row) of one image
// [groups, h, w, 8]: tile (ty, tx) reads the A x A pixels from row ty*m - top, column
// tx*m - left, zeros outside the image. Point xi of group g of tile t goes to
// v[(xi*groups + g)*vstride + (t - t0)*8].
struct WinoInput {
  const float* x;
  int64_t h, w, top, left, groups, tw, t0, count;
  float* v;
  int64_t vstride;
};
// The output transform of the same tiles for nb 8-channel blocks: point xi of block b of tile t
// at m[(xi*nb + b)*mstride + (t - t0)*8]; output pixel (r, c) of block b at
// y[b*ystride + (r*ow + c)*8] (z likewise, the residual, or null) for r < oh, c < ow.
struct WinoOutput {
  const float* m;
  int64_t mstride;
  int nb;
  int64_t tw, t0, count, oh, ow;
  float* y;
  const float* z;
  int64_t ystride;
  const float* bias;  // nb*8 floats or null
  gemm::Activation act;
  gemm::ActivationFn act_fn;
};
using WinoInputFn = void (*)(const WinoInput& a);
using WinoOutputFn = void (*)(const WinoOutput& a);

struct Variant {
  const char* name;
  Isa isa;
  ConvRunFn conv_run;
  ReorderToFn reorder_to;
  ReorderFromFn reorder_from;
  PoolRowFn maxpool_row;
  PoolRowFn avgpool_row;
  GlobalPoolFn global_avgpool;
  ScaleShiftFn scale_shift;
  WinoInputFn wino_input[2];  // F(2x2, 3x3), F(4x4, 3x3)
  WinoOutputFn wino_output[2];
};

// Packed weight floats for W [M, C, KH, KW] and the packing itself (dst of that size).
int64_t packed_size(int64_t M, int64_t C, int64_t KH, int64_t KW);
void pack_weights(const float* w, int64_t M, int64_t C, int64_t KH, int64_t KW, int64_t m0, int64_t m1, float* dst);

// Winograd F(m x m, 3 x 3) convolution (nchwc_winograd.cpp): weights transformed once, then per
// task a chunk of tiles transformed, multiplied per point by the variant's conv_run (as 1x1
// convs) and transformed back with the epilogue.
int winograd_auto_tile(int64_t M, int64_t C);  // the m auto packs for W [M, C, 3, 3], 0: direct
// Estimated cost of the conv with tile m (0: direct) for N images of OH x OW outputs: auto
// runs the direct conv instead of its packed tile where that is cheaper for the run's shape.
double conv3x3_cost(int m, int64_t N, int64_t M, int64_t C, int64_t OH, int64_t OW);
int64_t wino_packed_size(int m, int64_t M, int64_t C);
void wino_pack_weights(int m, const float* w, int64_t M, int64_t C, float* dst);
struct WinoConv {
  const float* x;  // NCHWc input [N, ceil(C/8), H, W, 8]; output pixel (0, 0) reads from (-top, -left)
  int64_t H, W, top, left;
  int64_t N, C, M, OH, OW;
  const float* u;  // wino_pack_weights
  const float* bias;
  const float* z;
  float* y;
  gemm::Activation act;
  gemm::ActivationFn act_fn;
};
void winograd_conv(const Variant& v, int m, const WinoConv& a, ThreadPool* pool);

const std::vector<const Variant*>& variants();
const Variant& variant_for(Isa isa);
const Variant& scalar_variant();
#if defined(INFOPT_HAVE_AVX2)
const Variant& avx2_variant();
#endif

}  // namespace nchwc
}  // namespace infopt
